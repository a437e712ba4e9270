"""Lesions across scans: visibility, matching, tumour-to-blood ratio and the time-point choice.

Inputs are the store's ``measurements`` table (lesion rows: ``kind == "lesion"``, ``voi`` =
lesion id) and the lesion table of the baseline FDG PET/CT read (``lesions.csv``: ``patient``,
``lesion``, ``fdg_positive``, ``long_axis_mm``, ...). Lesion ids are compared as text
(``1``, ``1.0`` and ``"1"`` are the same lesion). A *scan* is a patient, a series and a
nominal time point (``nominal_hours``); every scan with at least one measurement row (organ
or lesion) counts as performed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from immunopet.analysis.biodistribution import SERIES_ORDER, _flag, _ordered, _require_columns
from immunopet.analysis.tables import format_n_of
from immunopet.errors import InputError

__all__ = [
    "TBR_COLUMNS",
    "VISIBILITY_SUMMARY_COLUMNS",
    "LesionMatch",
    "LesionVisibility",
    "TimePointChoice",
    "lesion_visibility",
    "match_lesions",
    "recommend_time_point",
    "tumour_to_blood_ratio",
]

VISIBILITY_SUMMARY_COLUMNS: Final = (
    "series",
    "nominal_hours",
    "time_point",
    "group",
    "visible",
    "total",
    "percent",
    "text",
)
"""Columns of :attr:`LesionVisibility.summary`."""

TBR_COLUMNS: Final = (
    "series",
    "nominal_hours",
    "n_lesions",
    "n_patients",
    "lesion_mean",
    "lesion_sd",
    "n_reference",
    "reference_mean",
    "reference_sd",
    "ratio",
    "hours_pi_mean",
    "selection",
)
"""Columns of :func:`tumour_to_blood_ratio`."""

LESION_TABLE_COLUMNS: Final = ("patient", "lesion", "fdg_positive", "long_axis_mm")
"""Columns the lesion table must have for visibility (others are kept)."""


# ---------------------------------------------------------------------------- helpers
def _lesion_id(value: Any) -> str:
    """A lesion id as text: integers and integer-valued floats without a decimal part."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip()


def _hours_label(hours: float) -> str:
    return f"{hours:g} h"


def _strict_bool(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    truthy, falsy = {"true", "1", "yes"}, {"false", "0", "no"}
    values = []
    for label, value in zip(frame.index, frame[column], strict=True):
        if isinstance(value, bool | np.bool_):
            values.append(bool(value))
            continue
        text = str(value).strip().lower()
        if isinstance(value, int | float | np.integer | np.floating) and not pd.isna(value):
            text = "1" if value == 1 else "0" if value == 0 else text
        if text in truthy:
            values.append(True)
        elif text in falsy:
            values.append(False)
        else:
            raise InputError(
                "not a yes/no value",
                file=what,
                tag=f"row {label!r}, column {column}",
                value=value,
                expected="True or False",
            )
    return pd.Series(values, index=frame.index, dtype=bool)


def _lesion_table(lesions_table: pd.DataFrame) -> pd.DataFrame:
    _require_columns(lesions_table, LESION_TABLE_COLUMNS, "lesions_table")
    out = pd.DataFrame(
        {
            "patient": lesions_table["patient"].astype(str).str.strip().to_numpy(),
            "lesion": [_lesion_id(v) for v in lesions_table["lesion"]],
            "fdg_positive": _strict_bool(lesions_table, "fdg_positive", "lesions_table").to_numpy(),
            "long_axis_mm": pd.to_numeric(lesions_table["long_axis_mm"], errors="raise")
            .astype("float64")
            .to_numpy(),
        }
    )
    twice = out.duplicated(["patient", "lesion"])
    if twice.any():
        bad = out[twice].iloc[0]
        raise InputError(
            "a lesion is listed twice",
            file="lesions_table",
            tag="lesion",
            value=f"{bad['patient']}/{bad['lesion']}",
            expected="one row per patient and lesion",
        )
    return out


def _lesion_rows(measurements: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Lesion rows with ``patient``/``series``/``lesion`` as text and numeric hours."""
    _require_columns(
        measurements,
        ("patient", "series", "hours_pi", "nominal_hours", "voi", "kind", *extra),
        "measurements",
    )
    rows = measurements[measurements["kind"].astype(str) == "lesion"].copy()
    rows["patient"] = rows["patient"].astype(str)
    rows["series"] = rows["series"].astype(str)
    # object even when empty (every scan failed), so that it merges with the lesion table
    rows["lesion"] = pd.Series([_lesion_id(v) for v in rows["voi"]], index=rows.index, dtype=object)
    rows["nominal_hours"] = pd.to_numeric(rows["nominal_hours"]).astype("float64")
    rows["hours_pi"] = pd.to_numeric(rows["hours_pi"]).astype("float64")
    if rows["nominal_hours"].isna().any():
        bad = rows[rows["nominal_hours"].isna()].iloc[0]
        raise InputError(
            "lesion row without a nominal time point",
            file="measurements",
            tag="nominal_hours",
            value=f"lesion {bad['lesion']} of {bad['patient']}/{bad['series']}",
            expected="the scheduled hours after injection (72, 120, ...)",
        )
    twice = rows.duplicated(["patient", "series", "nominal_hours", "lesion"])
    if twice.any():
        bad = rows[twice].iloc[0]
        raise InputError(
            "a lesion is measured twice in one scan",
            file="measurements",
            tag="voi",
            value=f"lesion {bad['lesion']} of {bad['patient']}/{bad['series']} "
            f"at {bad['nominal_hours']:g} h",
            expected="one row per lesion per scan",
        )
    return rows


def _scans(measurements: pd.DataFrame) -> pd.DataFrame:
    """Distinct (patient, series, nominal_hours) of every measurement row."""
    _require_columns(measurements, ("patient", "series", "nominal_hours"), "measurements")
    scans = pd.DataFrame(
        {
            "patient": measurements["patient"].astype(str).to_numpy(),
            "series": measurements["series"].astype(str).to_numpy(),
            "nominal_hours": pd.to_numeric(measurements["nominal_hours"]).to_numpy(
                dtype=np.float64
            ),
        }
    )
    return scans.dropna().drop_duplicates().reset_index(drop=True)


def _series_key(values: Collection[str]) -> dict[str, int]:
    return _ordered(set(values), SERIES_ORDER)


# ---------------------------------------------------------------------------- visibility
@dataclass(frozen=True)
class LesionVisibility:
    """Which lesions were seen on which scan, and the counts in the study's form.

    Attributes
    ----------
    per_scan : pandas.DataFrame
        One row per lesion (of the lesion table, plus measured lesions it lacks when
        ``unknown_lesions="fdg-negative"``) per scan of its patient: ``patient``, ``lesion``,
        ``series``, ``nominal_hours``, ``fdg_positive``, ``long_axis_mm``, ``large`` (long
        axis >= the size limit), ``measured`` (a VOI exists), ``method``, ``value`` (the
        metric of the rule), ``threshold`` (quantitative rule) and ``visible``.
    summary : pandas.DataFrame
        FDG-positive lesions visible per series and time point, and at any time point of the
        series (``time_point == "any"``, ``nominal_hours`` NaN), for all of them and for the
        large ones: columns :data:`VISIBILITY_SUMMARY_COLUMNS`, ``text`` as "26 of 102 (25%)".
    tracer_positive : pandas.DataFrame
        Per series and time point: ``tracer_positive`` (visible lesions, FDG-positive or not),
        ``fdg_positive``, ``fdg_negative``, ``percent_fdg_positive`` and ``text`` (FDG-positive
        of all tracer-positive, "26 of 50 (52%)").
    fdg_negative_both : pandas.DataFrame
        Per series: tracer-positive FDG-negative lesions at the first and at the second of
        ``both_hours`` and at both (same lesion id): ``series``, ``first_hours``,
        ``second_hours``, ``n_first``, ``n_second``, ``n_both``.
    rule : str
        The rule in words, for the report.
    """

    per_scan: pd.DataFrame
    summary: pd.DataFrame
    tracer_positive: pd.DataFrame
    fdg_negative_both: pd.DataFrame
    rule: str


def _visible_reader(rows: pd.DataFrame) -> pd.Series:
    method = rows["method"].astype(str).str.strip().str.lower() if "method" in rows else None
    if method is None:
        raise InputError(
            "the reader rule needs the VOI method",
            file="measurements",
            tag="method",
            value="missing",
            expected="a method column ('sphere' = 1 cm³ placeholder) or a visible column",
        )
    by_method = (method != "sphere").to_numpy(dtype=bool)
    if "visible" in rows.columns:
        explicit = rows["visible"].notna().to_numpy()
        if explicit.any():
            by_method = by_method.copy()
            given = _strict_bool(rows[explicit], "visible", "measurements")
            by_method[explicit] = given.to_numpy(dtype=bool)
    return pd.Series(by_method, index=rows.index, dtype=bool)


def lesion_visibility(
    measurements: pd.DataFrame,
    lesions_table: pd.DataFrame,
    *,
    rule: Literal["reader", "quantitative"] = "reader",
    k_sd: float = 3.0,
    reference: str = "blood_pool",
    metric: Literal["suv_peak", "suv_max", "suv_mean"] = "suv_peak",
    min_long_axis_mm: float = 20.0,
    denominator: Literal["scanned", "all"] = "scanned",
    unknown_lesions: Literal["raise", "fdg-negative"] = "raise",
    both_hours: tuple[float, float] = (72.0, 120.0),
    decimals: int = 0,
) -> LesionVisibility:
    """Lesions seen per series and time point, in the study's counts.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The store's measurement table. Lesion rows need ``method`` (reader rule) or ``metric``
        (quantitative rule); organ rows give the reference (quantitative rule).
    lesions_table : pandas.DataFrame
        The baseline lesion table: ``patient``, ``lesion``, ``fdg_positive`` (the FDG read
        decides malignancy), ``long_axis_mm`` (baseline CT long axis; the size limit uses it,
        not the VOI, since a placeholder sphere's size says nothing).
    rule : {"reader", "quantitative"}
        ``"reader"``: a lesion is visible on a scan when a reader delineated it there: it has
        a VOI whose ``method`` is not ``"sphere"`` (the 1 cm³ placeholder drawn for lesions
        without visible uptake); a ``visible`` column in ``measurements``, where not empty,
        overrides the method. ``"quantitative"``: visible when it has a VOI and its ``metric``
        exceeds the mean of the same scan's ``reference`` organ VOI by more than ``k_sd``
        times that VOI's voxel standard deviation (``suv_mean`` + k_sd x ``suv_sd`` of the
        reference row): a Currie-style detection limit against the blood-pool background.
        (A true *local* background would need a ring VOI per lesion, which the measurement
        table does not hold.)
    k_sd : float
        Multiplier of the quantitative rule.
    reference : str
        Organ VOI of the quantitative rule's background.
    metric : {"suv_peak", "suv_max", "suv_mean"}
        Lesion value of the quantitative rule.
    min_long_axis_mm : float, mm
        The "large" group: long axis >= this (the study's 20 mm).
    denominator : {"scanned", "all"}
        ``"scanned"``: a time point's percentages are of the FDG-positive lesions of the
        patients who had that scan (``"any"``: who had any scan of the series). ``"all"``: of
        every FDG-positive lesion in the lesion table, scanned or not, as the study reports
        "14 of 102" for the predose series that two patients never had.
    unknown_lesions : {"raise", "fdg-negative"}
        What a measured lesion missing from the lesion table is: an error, or a lesion that
        the FDG read did not call malignant (e.g. a tracer-positive lymph node).
    both_hours : tuple of two float, hours
        Time points of :attr:`LesionVisibility.fdg_negative_both`.
    decimals : int
        Decimals of the percentages in the text columns.

    Returns
    -------
    LesionVisibility

    Raises
    ------
    InputError
        When a column is missing, a value is not a yes/no, a lesion is listed or measured
        twice, a measured lesion is not in the lesion table (``unknown_lesions="raise"``), or
        the quantitative rule lacks a scan's reference VOI.

    Notes
    -----
    Exclusions (``excluded``) do not apply: they remove lesions from quantitative analyses,
    not from what was seen. A lesion without a VOI on a scan its patient had counts as not
    visible there.

    Examples
    --------
    >>> lesions = pd.DataFrame({"patient": "1", "lesion": [1, 2],
    ...                         "fdg_positive": True, "long_axis_mm": [25.0, 12.0]})
    >>> m = pd.DataFrame({"patient": "1", "series": "tracer-only", "hours_pi": 120.0,
    ...     "nominal_hours": 120, "voi": ["1", "2"], "kind": "lesion",
    ...     "method": ["label-map", "sphere"]})
    >>> lesion_visibility(m, lesions).summary["text"].tolist()[:2]
    ['1 of 2 (50%)', '1 of 1 (100%)']
    """
    if rule not in ("reader", "quantitative"):
        raise InputError(
            "unknown visibility rule", tag="rule", value=rule, expected="reader or quantitative"
        )
    if denominator not in ("scanned", "all"):
        raise InputError(
            "unknown denominator", tag="denominator", value=denominator, expected="scanned or all"
        )
    if unknown_lesions not in ("raise", "fdg-negative"):
        raise InputError(
            "unknown choice",
            tag="unknown_lesions",
            value=unknown_lesions,
            expected="raise or fdg-negative",
        )
    if rule == "quantitative" and not (math.isfinite(k_sd) and k_sd >= 0):
        raise InputError("k_sd must be a number >= 0", tag="k_sd", value=k_sd)
    table = _lesion_table(lesions_table)
    rows = _lesion_rows(measurements, (metric,) if rule == "quantitative" else ())
    scans = _scans(measurements)

    known = set(zip(table["patient"], table["lesion"], strict=True))
    measured_keys = set(zip(rows["patient"], rows["lesion"], strict=True))
    unknown = sorted(measured_keys - known)
    if unknown:
        if unknown_lesions == "raise":
            raise InputError(
                "measured lesion(s) missing from the lesion table",
                file="lesions_table",
                tag="lesion",
                value=", ".join(f"{p}/{les}" for p, les in unknown[:5])
                + (" ..." if len(unknown) > 5 else ""),
                expected="every measured lesion listed (or unknown_lesions='fdg-negative')",
            )
        extra = pd.DataFrame(
            {
                "patient": [p for p, _ in unknown],
                "lesion": [les for _, les in unknown],
                "fdg_positive": False,
                "long_axis_mm": np.nan,
            }
        )
        table = pd.concat([table, extra], ignore_index=True)

    if rule == "reader":
        rows["visible"] = _visible_reader(rows).to_numpy()
        rows["value"] = np.nan
        rows["threshold"] = np.nan
        description = (
            "reader: visible when delineated on the scan (VOI method other than the 1 cm³ "
            "placeholder sphere, or an explicit visible flag)"
        )
    else:
        _require_columns(measurements, ("suv_mean", "suv_sd"), "measurements")
        ref = measurements[
            (measurements["kind"].astype(str) == "organ")
            & (measurements["voi"].astype(str) == reference)
        ]
        ref = pd.DataFrame(
            {
                "patient": ref["patient"].astype(str).to_numpy(),
                "series": ref["series"].astype(str).to_numpy(),
                "nominal_hours": pd.to_numeric(ref["nominal_hours"]).to_numpy(np.float64),
                "threshold": (
                    pd.to_numeric(ref["suv_mean"]) + k_sd * pd.to_numeric(ref["suv_sd"])
                ).to_numpy(np.float64),
            }
        ).drop_duplicates(["patient", "series", "nominal_hours"])
        rows = rows.merge(ref, on=["patient", "series", "nominal_hours"], how="left")
        lacking = rows["threshold"].isna()
        if lacking.any():
            bad = rows[lacking].iloc[0]
            raise InputError(
                f"no {reference!r} reference VOI for the quantitative rule",
                file="measurements",
                tag="voi",
                value=f"scan {bad['patient']}/{bad['series']} at {bad['nominal_hours']:g} h",
                expected=f"an organ row {reference!r} with suv_mean and suv_sd on every scan",
            )
        rows["value"] = pd.to_numeric(rows[metric]).astype("float64")
        rows["visible"] = (rows["value"] > rows["threshold"]).to_numpy()
        description = (
            f"quantitative: visible when lesion {metric} > {reference} SUVmean + "
            f"{k_sd:g} x {reference} voxel SD on the same scan"
        )

    per_scan = scans.merge(table, on="patient", how="inner")
    keep = ["patient", "series", "nominal_hours", "lesion", "visible", "value", "threshold"]
    if "method" in rows.columns:
        keep.append("method")
    per_scan = per_scan.merge(
        rows[keep],
        on=["patient", "series", "nominal_hours", "lesion"],
        how="left",
        indicator="_found",
    )
    if "method" not in per_scan.columns:
        per_scan["method"] = None
    per_scan["measured"] = (per_scan.pop("_found") == "both").to_numpy()
    per_scan["visible"] = [
        bool(v) if found else False
        for v, found in zip(per_scan["visible"], per_scan["measured"], strict=True)
    ]
    per_scan["large"] = per_scan["long_axis_mm"] >= min_long_axis_mm
    series_key = _series_key(per_scan["series"])
    per_scan = per_scan.sort_values(
        ["series", "nominal_hours", "patient", "lesion"],
        key=lambda c: c.map(series_key) if c.name == "series" else c,
        kind="stable",
    ).reset_index(drop=True)
    per_scan = per_scan.loc[
        :,
        [
            "patient",
            "lesion",
            "series",
            "nominal_hours",
            "fdg_positive",
            "long_axis_mm",
            "large",
            "measured",
            "method",
            "value",
            "threshold",
            "visible",
        ],
    ]

    summary = _visibility_summary(
        per_scan, table, scans, min_long_axis_mm, denominator, decimals, series_key
    )
    tracer_positive = _tracer_positive(per_scan, scans, decimals, series_key)
    both = _seen_at_both(per_scan, both_hours, series_key)
    return LesionVisibility(
        per_scan=per_scan,
        summary=summary,
        tracer_positive=tracer_positive,
        fdg_negative_both=both,
        rule=description,
    )


def _visibility_summary(
    per_scan: pd.DataFrame,
    table: pd.DataFrame,
    scans: pd.DataFrame,
    min_long_axis_mm: float,
    denominator: str,
    decimals: int,
    series_key: dict[str, int],
) -> pd.DataFrame:
    positive = table[table["fdg_positive"]]
    groups = (
        ("FDG-positive", pd.Series(True, index=positive.index)),
        (f"FDG-positive ≥ {min_long_axis_mm:g} mm", positive["long_axis_mm"] >= min_long_axis_mm),
    )
    records = []
    for series in sorted(set(scans["series"]), key=lambda s: series_key[s]):
        in_series = scans[scans["series"] == series]
        hours_list: list[float | None] = [
            *sorted(float(h) for h in set(in_series["nominal_hours"])),
            None,
        ]
        for hours in hours_list:
            if hours is None:
                scanned = set(in_series["patient"])
                seen_rows = per_scan[(per_scan["series"] == series) & per_scan["visible"]]
            else:
                scanned = set(in_series.loc[in_series["nominal_hours"] == hours, "patient"])
                seen_rows = per_scan[
                    (per_scan["series"] == series)
                    & (per_scan["nominal_hours"] == hours)
                    & per_scan["visible"]
                ]
            seen = set(zip(seen_rows["patient"], seen_rows["lesion"], strict=True))
            for label, member in groups:
                chosen = positive[member]
                if denominator == "scanned":
                    chosen = chosen[chosen["patient"].isin(scanned)]
                keys = set(zip(chosen["patient"], chosen["lesion"], strict=True))
                visible, total = len(keys & seen), len(keys)
                records.append(
                    {
                        "series": series,
                        "nominal_hours": np.nan if hours is None else hours,
                        "time_point": "any" if hours is None else _hours_label(hours),
                        "group": label,
                        "visible": visible,
                        "total": total,
                        "percent": 100.0 * visible / total if total else np.nan,
                        "text": format_n_of(visible, total, decimals=decimals),
                    }
                )
    out = pd.DataFrame.from_records(records, columns=list(VISIBILITY_SUMMARY_COLUMNS))
    return out.astype({"visible": "int64", "total": "int64"})


def _tracer_positive(
    per_scan: pd.DataFrame, scans: pd.DataFrame, decimals: int, series_key: dict[str, int]
) -> pd.DataFrame:
    records = []
    pairs = scans[["series", "nominal_hours"]].drop_duplicates()
    pairs = pairs.sort_values(
        ["series", "nominal_hours"],
        key=lambda c: c.map(series_key) if c.name == "series" else c,
    )
    for series, hours in pairs.itertuples(index=False):
        seen = per_scan[
            (per_scan["series"] == series)
            & (per_scan["nominal_hours"] == hours)
            & per_scan["visible"]
        ]
        total = len(seen)
        positive = int(seen["fdg_positive"].sum())
        records.append(
            {
                "series": series,
                "nominal_hours": float(hours),
                "tracer_positive": total,
                "fdg_positive": positive,
                "fdg_negative": total - positive,
                "percent_fdg_positive": 100.0 * positive / total if total else np.nan,
                "text": format_n_of(positive, total, decimals=decimals),
            }
        )
    columns = [
        "series",
        "nominal_hours",
        "tracer_positive",
        "fdg_positive",
        "fdg_negative",
        "percent_fdg_positive",
        "text",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _seen_at_both(
    per_scan: pd.DataFrame, both_hours: tuple[float, float], series_key: dict[str, int]
) -> pd.DataFrame:
    first, second = (float(h) for h in both_hours)
    negative = per_scan[~per_scan["fdg_positive"] & per_scan["visible"]]
    records = []
    for series in sorted(set(per_scan["series"]), key=lambda s: series_key[s]):
        rows = negative[negative["series"] == series]
        at = {
            hours: set(
                zip(
                    rows.loc[rows["nominal_hours"] == hours, "patient"],
                    rows.loc[rows["nominal_hours"] == hours, "lesion"],
                    strict=True,
                )
            )
            for hours in (first, second)
        }
        records.append(
            {
                "series": series,
                "first_hours": first,
                "second_hours": second,
                "n_first": len(at[first]),
                "n_second": len(at[second]),
                "n_both": len(at[first] & at[second]),
            }
        )
    columns = ["series", "first_hours", "second_hours", "n_first", "n_second", "n_both"]
    return pd.DataFrame.from_records(records, columns=columns)


# ---------------------------------------------------------------------------- TBR
def tumour_to_blood_ratio(
    measurements: pd.DataFrame,
    *,
    lesions_table: pd.DataFrame | None = None,
    fdg_positive_only: bool | None = None,
    include_excluded: bool = False,
    measurable_only: bool = False,
    delineated_only: bool = False,
    reference: str = "blood_pool",
    metric: Literal["suv_peak", "suv_max", "suv_mean"] = "suv_peak",
    reference_metric: Literal["suv_peak", "suv_max", "suv_mean"] = "suv_peak",
) -> pd.DataFrame:
    """Tumour-to-blood-pool ratio per series and time point, as the study defines it.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The store's measurement table.
    lesions_table : pandas.DataFrame, optional
        The baseline lesion table (``patient``, ``lesion``, ``fdg_positive``); needed to keep
        FDG-positive lesions only.
    fdg_positive_only : bool, optional
        Keep FDG-positive lesions only. Default (None): when a lesion table is given. True
        without a lesion table is an error.
    include_excluded : bool
        Keep lesions flagged ``excluded`` (spill-in outliers); default no.
    measurable_only : bool
        Keep lesions with ``measurable`` true only (the store's size rule).
    delineated_only : bool
        Keep lesions a reader delineated (``method`` other than ``"sphere"``) only.
    reference : str
        Organ VOI of the blood pool (the aorta sphere).
    metric, reference_metric : {"suv_peak", "suv_max", "suv_mean"}
        Lesion and reference values; the study uses SUVpeak for both.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TBR_COLUMNS`, one row per series x nominal time point:
        ``lesion_mean`` = mean of the metric over all selected lesions of all patients
        (pooled, each lesion once), ``reference_mean`` = mean of the reference over the scans,
        ``ratio`` = lesion_mean / reference_mean, ``n_*`` and ``*_sd`` (sample SD) beside
        them, ``hours_pi_mean`` of the scans, ``selection`` = the filters in words.

    Raises
    ------
    InputError
        When a column is missing, or ``fdg_positive_only`` is True without a lesion table.

    Notes
    -----
    .. math:: \\mathrm{TBR}(t) = \\frac{\\tfrac{1}{L}\\sum_{l} \\mathrm{SUV_{peak}}(l, t)}
              {\\tfrac{1}{S}\\sum_{s} \\mathrm{SUV_{peak}}(\\mathrm{aorta}_s, t)}

    The study: 4.1 / 2.2 = 1.8 at 72 h, 3.9 / 1.9 = 2.1 at 120 h.

    Examples
    --------
    >>> m = pd.DataFrame({"patient": "1", "series": "tracer-only", "hours_pi": 72.0,
    ...     "nominal_hours": 72, "voi": ["blood_pool", "1", "2"],
    ...     "kind": ["organ", "lesion", "lesion"], "suv_peak": [2.2, 3.6, 4.6]})
    >>> round(float(tumour_to_blood_ratio(m)["ratio"].item()), 4)
    1.8636
    """
    if fdg_positive_only and lesions_table is None:
        raise InputError(
            "FDG status unknown without a lesion table",
            tag="fdg_positive_only",
            value=True,
            expected="a lesions_table, or fdg_positive_only=False",
        )
    use_fdg = lesions_table is not None if fdg_positive_only is None else fdg_positive_only
    rows = _lesion_rows(measurements, (metric,))
    selection = ["lesions"]
    if use_fdg and lesions_table is not None:
        table = _lesion_table(lesions_table)
        positive = set(
            zip(
                table.loc[table["fdg_positive"], "patient"],
                table.loc[table["fdg_positive"], "lesion"],
                strict=True,
            )
        )
        keys = list(zip(rows["patient"], rows["lesion"], strict=True))
        rows = rows[np.array([k in positive for k in keys], dtype=bool)]  # [] would pick columns
        selection.append("FDG-positive")
    if not include_excluded:
        rows = rows[~_flag(rows, "excluded")]
        selection.append("not excluded")
    if measurable_only:
        _require_columns(measurements, ("measurable",), "measurements")
        rows = rows[_flag(rows, "measurable")]
        selection.append("measurable")
    if delineated_only:
        _require_columns(measurements, ("method",), "measurements")
        rows = rows[rows["method"].astype(str).str.strip().str.lower() != "sphere"]
        selection.append("delineated")
    rows = rows.assign(value=pd.to_numeric(rows[metric]).astype("float64"))
    rows = rows[rows["value"].notna()]

    _require_columns(measurements, (reference_metric,), "measurements")
    ref = measurements[
        (measurements["kind"].astype(str) == "organ")
        & (measurements["voi"].astype(str) == reference)
    ]
    ref = pd.DataFrame(
        {
            "patient": ref["patient"].astype(str).to_numpy(),
            "series": ref["series"].astype(str).to_numpy(),
            "nominal_hours": pd.to_numeric(ref["nominal_hours"]).to_numpy(np.float64),
            "hours_pi": pd.to_numeric(ref["hours_pi"]).to_numpy(np.float64),
            "value": pd.to_numeric(ref[reference_metric]).to_numpy(np.float64),
        }
    ).dropna(subset=["value"])

    scans = _scans(measurements)
    series_key = _series_key(scans["series"])
    records = []
    times = scans[["series", "nominal_hours"]].drop_duplicates()
    times = times.sort_values(
        ["series", "nominal_hours"],
        key=lambda c: c.map(series_key) if c.name == "series" else c,
    )
    text = ", ".join(selection) + f"; {metric} / {reference} {reference_metric}"
    for series, hours in times.itertuples(index=False):
        lesion = rows[(rows["series"] == series) & (rows["nominal_hours"] == hours)]
        blood = ref[(ref["series"] == series) & (ref["nominal_hours"] == hours)]
        lesion_mean = float(lesion["value"].mean()) if len(lesion) else np.nan
        reference_mean = float(blood["value"].mean()) if len(blood) else np.nan
        hours_pi = pd.concat([lesion["hours_pi"], blood["hours_pi"]])
        records.append(
            {
                "series": series,
                "nominal_hours": float(hours),
                "n_lesions": len(lesion),
                "n_patients": lesion["patient"].nunique(),
                "lesion_mean": lesion_mean,
                "lesion_sd": float(lesion["value"].std()) if len(lesion) > 1 else np.nan,
                "n_reference": len(blood),
                "reference_mean": reference_mean,
                "reference_sd": float(blood["value"].std()) if len(blood) > 1 else np.nan,
                "ratio": lesion_mean / reference_mean
                if len(lesion) and len(blood) and reference_mean > 0
                else np.nan,
                "hours_pi_mean": float(hours_pi.mean()) if len(hours_pi) else np.nan,
                "selection": text,
            }
        )
    return pd.DataFrame.from_records(records, columns=list(TBR_COLUMNS))


@dataclass(frozen=True)
class TimePointChoice:
    """The analysis time point with the best tumour-to-blood ratio, and why.

    Attributes
    ----------
    series : str
    nominal_hours : float, hours
    ratio : float
        Its tumour-to-blood ratio.
    table : pandas.DataFrame
        The rows of :func:`tumour_to_blood_ratio` for that series that were compared, with a
        column ``chosen``.
    """

    series: str
    nominal_hours: float
    ratio: float
    table: pd.DataFrame = field(repr=False)


def recommend_time_point(
    ratios: pd.DataFrame, *, series: str = "tracer-only", min_lesions: int = 1
) -> TimePointChoice:
    """The time point with the highest tumour-to-blood ratio in one series.

    Parameters
    ----------
    ratios : pandas.DataFrame
        Output of :func:`tumour_to_blood_ratio`.
    series : str
        The series whose time points compete (the study chose among the tracer-only scans).
    min_lesions : int
        Time points with fewer lesions do not compete.

    Returns
    -------
    TimePointChoice
        On a tie, the earlier time point (less decay, more counts).

    Raises
    ------
    InputError
        When no time point of that series has a finite ratio.

    Examples
    --------
    >>> tbr = pd.DataFrame({"series": "tracer-only", "nominal_hours": [72.0, 120.0],
    ...                     "n_lesions": 20, "ratio": [4.1 / 2.2, 3.9 / 1.9]})
    >>> recommend_time_point(tbr).nominal_hours
    120.0
    """
    _require_columns(ratios, ("series", "nominal_hours", "n_lesions", "ratio"), "ratios")
    table = ratios[ratios["series"].astype(str) == series].copy()
    competing = np.isfinite(pd.to_numeric(table["ratio"]).astype("float64")) & (
        table["n_lesions"] >= min_lesions
    )
    if not competing.any():
        raise InputError(
            "no time point with a tumour-to-blood ratio",
            file="ratios",
            tag="series",
            value=series,
            expected=f"a series with lesions (>= {min_lesions}) and a blood-pool reference",
        )
    candidates = table[competing].sort_values("nominal_hours", kind="stable")
    best = candidates.index[int(np.argmax(candidates["ratio"].to_numpy(dtype=np.float64)))]
    table["chosen"] = table.index == best
    return TimePointChoice(
        series=series,
        nominal_hours=float(table.loc[best, "nominal_hours"]),
        ratio=float(table.loc[best, "ratio"]),
        table=table.reset_index(drop=True),
    )


# ---------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class LesionMatch:
    """Lesions followed across the scans of each patient.

    Attributes
    ----------
    rows : pandas.DataFrame
        The lesion measurement rows with ``track`` (the lesion's identity across scans: the
        id of its first VOI, suffixed ``@series/hours`` when that id is already taken),
        ``matched_by`` (``"first"`` for a track's first row, ``"id"`` or ``"centroid"``)
        and ``distance_mm`` (centroid distance to the track's previous VOI; NaN without
        centroids).
    unmatched : pandas.DataFrame
        Tracks seen on one scan only: ``patient``, ``track``, ``series``, ``nominal_hours``,
        ``voi``.
    """

    rows: pd.DataFrame
    unmatched: pd.DataFrame

    def wide(self, column: str = "suv_peak") -> pd.DataFrame:
        """One row per patient and track, one column per (series, nominal_hours)."""
        if column not in self.rows.columns:
            raise InputError("no such column", tag="column", value=column)
        return self.rows.pivot_table(
            index=["patient", "track"],
            columns=["series", "nominal_hours"],
            values=column,
            aggfunc="first",
        )


_CENTROID = ("centroid_x_mm", "centroid_y_mm", "centroid_z_mm")


def match_lesions(
    measurements: pd.DataFrame,
    *,
    by: Literal["id", "centroid", "auto"] = "auto",
    tolerance_mm: float = 15.0,
) -> LesionMatch:
    """Follow each lesion across the time points and series of its patient.

    Scans are visited in series order (tracer-only, predose, others) then by nominal time.
    ``"id"``: rows with the same lesion id are one lesion (the id is stable, as with the
    study's label maps and placeholder spheres). ``"centroid"``: ids are ignored; each scan's
    lesions are assigned to the lesions seen before (and not yet on this scan) by the
    smallest total centroid distance (Hungarian assignment,
    :func:`scipy.optimize.linear_sum_assignment`), pairs farther apart than ``tolerance_mm``
    are not matched. ``"auto"``: by id first; a row whose id is new is then matched by
    centroid (for sources without stable ids, e.g. per-scan segment names).

    Parameters
    ----------
    measurements : pandas.DataFrame
        The store's measurement table (lesion rows are used; centroid matching needs
        ``centroid_x_mm``, ``centroid_y_mm``, ``centroid_z_mm``).
    by : {"id", "centroid", "auto"}
    tolerance_mm : float, mm
        Largest centroid distance of a match. Centroids are in scanner (LPS) coordinates of
        each scan; nothing registers the scans, so repositioning between days enters the
        distance.

    Returns
    -------
    LesionMatch

    Raises
    ------
    InputError
        When a column is missing, ``by`` is unknown, or a lesion id occurs twice in a scan.

    Examples
    --------
    >>> m = pd.DataFrame({"patient": "1", "series": "tracer-only",
    ...     "hours_pi": [72.0, 120.0, 120.0], "nominal_hours": [72, 120, 120],
    ...     "voi": ["a", "x", "y"], "kind": "lesion", "centroid_x_mm": [0.0, 1.0, 80.0],
    ...     "centroid_y_mm": 0.0, "centroid_z_mm": 0.0})
    >>> match = match_lesions(m)
    >>> match.rows[["voi", "track", "matched_by"]].values.tolist()
    [['a', 'a', 'first'], ['x', 'a', 'centroid'], ['y', 'y', 'first']]
    >>> match.unmatched["voi"].tolist()
    ['y']
    """
    if by not in ("id", "centroid", "auto"):
        raise InputError("unknown matching", tag="by", value=by, expected="id, centroid or auto")
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError("tolerance must be >= 0 mm", tag="tolerance_mm", value=tolerance_mm)
    rows = _lesion_rows(measurements, _CENTROID if by != "id" else ())
    series_key = _series_key(rows["series"])
    rows = rows.sort_values(
        ["patient", "series", "nominal_hours", "lesion"],
        key=lambda c: c.map(series_key) if c.name == "series" else c,
        kind="stable",
    ).reset_index(drop=True)
    have_centroids = all(c in rows.columns for c in _CENTROID)
    points = (
        rows.loc[:, list(_CENTROID)].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        if have_centroids
        else np.full((len(rows), 3), np.nan)
    )
    track = np.empty(len(rows), dtype=object)
    matched_by = np.empty(len(rows), dtype=object)
    distance = np.full(len(rows), np.nan)

    def assign(position: int, name: str, how: str, last: dict[str, int]) -> None:
        track[position] = name
        matched_by[position] = how
        distance[position] = _distance(points[position], points[last[name]])
        last[name] = position

    for _, patient_rows in rows.groupby("patient", sort=False):
        ids: dict[str, str] = {}  # lesion id -> track
        last: dict[str, int] = {}  # track -> row position of its latest VOI
        for _, scan in patient_rows.groupby(["series", "nominal_hours"], sort=False):
            taken: set[str] = set()
            new: list[int] = []
            for position in scan.index:
                lesion = str(rows.at[position, "lesion"])
                if by != "centroid" and lesion in ids and ids[lesion] not in taken:
                    name = ids[lesion]
                    assign(position, name, "id", last)
                    taken.add(name)
                else:
                    new.append(position)
            if by != "id" and new and last:
                free = [t for t in last if t not in taken]
                if free:
                    cost = np.array(
                        [[_distance(points[p], points[last[t]]) for t in free] for p in new]
                    )
                    finite = np.where(np.isfinite(cost), cost, 1e12)
                    pick_rows, pick_cols = linear_sum_assignment(finite)
                    matched = set()
                    for i, j in zip(pick_rows, pick_cols, strict=True):
                        if cost[i, j] <= tolerance_mm:
                            name = free[j]
                            position = new[i]
                            assign(position, name, "centroid", last)
                            ids.setdefault(str(rows.at[position, "lesion"]), name)
                            taken.add(name)
                            matched.add(position)
                    new = [p for p in new if p not in matched]
            for position in new:
                lesion = str(rows.at[position, "lesion"])
                name = lesion
                if name in last:
                    series, hours = rows.at[position, "series"], rows.at[position, "nominal_hours"]
                    name = f"{lesion}@{series}/{float(hours):g}h"
                track[position] = name
                matched_by[position] = "first"
                last[name] = position
                ids.setdefault(lesion, name)
                taken.add(name)

    out = rows.drop(columns=["lesion"]).assign(
        track=track, matched_by=matched_by, distance_mm=distance
    )
    counts = out.groupby(["patient", "track"])["track"].transform("size")
    unmatched = out.loc[
        counts == 1, ["patient", "track", "series", "nominal_hours", "voi"]
    ].reset_index(drop=True)
    return LesionMatch(rows=out, unmatched=unmatched)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((a - b) ** 2)))
