"""Per-patient tumour uptake at the analysis time point, and the tables the group tests use.

The study's quantitative analysis: FDG-positive lesions of at least 20 mm long axis, SUVpeak
on the tracer-only scan 120 h after injection (72 h for the one patient without a 120 h scan),
the spill-in outlier next to the spleen excluded; per patient the median (IHC correlation)
and the mean (median split for survival) of the lesion values. :func:`patient_uptake` does
this with every choice explicit and every left-out lesion listed with its reason;
:func:`join_clinical` adds the response and PD-L1 columns for :mod:`immunopet.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, TypeAlias

import numpy as np
import pandas as pd
from scipy.stats import gmean

from immunopet.analysis.biodistribution import _flag, _require_columns
from immunopet.analysis.clinical import group_pdl1, validate_clinical
from immunopet.analysis.lesions import _lesion_id, _lesion_rows, _lesion_table, _scans
from immunopet.errors import InputError

__all__ = [
    "CLINICAL_JOIN_COLUMNS",
    "EXCLUDED_COLUMNS",
    "PATIENT_UPTAKE_COLUMNS",
    "ExclusionLike",
    "PatientUptake",
    "join_clinical",
    "patient_uptake",
]

PATIENT_UPTAKE_COLUMNS: Final = (
    "patient",
    "series",
    "nominal_hours",
    "hours_pi",
    "fallback",
    "metric",
    "n_lesions",
    "median",
    "mean",
    "geometric_mean",
    "sd",
    "minimum",
    "maximum",
    "note",
)
"""Columns of :attr:`PatientUptake.patients`."""

EXCLUDED_COLUMNS: Final = (
    "patient",
    "lesion",
    "series",
    "nominal_hours",
    "rule",
    "reason",
    "applied",
)
"""Columns of :attr:`PatientUptake.excluded`."""

CLINICAL_JOIN_COLUMNS: Final = (
    "bor",
    "progression_6wk",
    "tps_percent",
    "tps_ne",
    "tps_group",
    "cps_percent",
    "cps_ne",
    "cps_group",
    "pfs_days",
    "pfs_event",
    "os_days",
    "os_event",
)
"""Columns :func:`join_clinical` appends."""


class ExclusionLike(Protocol):
    """Anything with ``patient``, ``lesion`` and ``reason`` (e.g. the manifest's
    :class:`immunopet.study.model.Exclusion`)."""

    @property
    def patient(self) -> str: ...

    @property
    def lesion(self) -> str: ...

    @property
    def reason(self) -> str: ...


Exclusions: TypeAlias = pd.DataFrame | Iterable[ExclusionLike | tuple[str, str, str]] | None


@dataclass(frozen=True)
class PatientUptake:
    """Per-patient uptake with the lesions it rests on and those it leaves out.

    Attributes
    ----------
    patients : pandas.DataFrame
        One row per patient of the measurements, columns :data:`PATIENT_UPTAKE_COLUMNS`:
        the scan used (``nominal_hours`` NaN when the patient had none, ``fallback`` True
        when a fallback time point was used), ``n_lesions`` and the ``median``, ``mean``,
        ``geometric_mean``, ``sd`` (sample), ``minimum``, ``maximum`` of the lesion values
        (NaN without lesions; geometric mean NaN when a value is <= 0, said in ``note``).
    lesions : pandas.DataFrame
        The lesions used, one row each: ``patient``, ``lesion``, ``series``,
        ``nominal_hours``, ``hours_pi``, ``fallback``, ``long_axis_mm``, ``size_source``
        (``"lesion table"`` or ``"VOI"``), ``method``, the metric (column named after it) and
        ``suggested_exclusion``: the exclusion the pipeline suggested but did not apply (e.g.
        "spill-in from the spleen (8.0 mm from it)"; "" when none). Such a lesion is used;
        exclude it in the manifest, with a reason, to leave it out.
    excluded : pandas.DataFrame
        Lesions left out, columns :data:`EXCLUDED_COLUMNS`: ``rule`` is one or more (joined
        with "; ") of ``user`` (the ``exclusions`` argument), ``flagged`` (``excluded`` in
        the measurements, e.g. from the manifest), ``fdg-negative`` (lesion table),
        ``size`` (long axis below the limit or unknown), ``no value`` (metric missing);
        ``reason`` the matching words. A user exclusion that matches no measured lesion is
        listed with ``applied`` False.
    metric : str
    hours : float, hours
    series : str
    min_long_axis_mm : float, mm
    fallback_hours : tuple of float, hours
    """

    patients: pd.DataFrame
    lesions: pd.DataFrame
    excluded: pd.DataFrame
    metric: str
    hours: float
    series: str
    min_long_axis_mm: float
    fallback_hours: tuple[float, ...] = field(default=())

    @property
    def suggested(self) -> pd.DataFrame:
        """The lesions used although the pipeline suggested an exclusion it did not apply.

        Rows of :attr:`lesions` with a non-empty ``suggested_exclusion`` (e.g. a VOI near the
        spleen); the report flags them so that a reader can decide to exclude them in the
        manifest with a reason.
        """
        if "suggested_exclusion" not in self.lesions.columns:
            return self.lesions.iloc[0:0]
        text = self.lesions["suggested_exclusion"].fillna("").astype(str)
        return self.lesions[text != ""].reset_index(drop=True)


def _exclusion_frame(exclusions: Exclusions) -> pd.DataFrame:
    columns = ["patient", "lesion", "reason"]
    if exclusions is None:
        return pd.DataFrame(columns=columns)
    if isinstance(exclusions, pd.DataFrame):
        _require_columns(exclusions, columns, "exclusions")
        records = list(
            zip(exclusions["patient"], exclusions["lesion"], exclusions["reason"], strict=True)
        )
    else:
        records = []
        for item in exclusions:
            if isinstance(item, tuple):
                if len(item) != 3:
                    raise InputError(
                        "an exclusion needs patient, lesion and reason",
                        tag="exclusions",
                        value=item,
                        expected="(patient, lesion, reason)",
                    )
                records.append(item)
            else:
                records.append((item.patient, item.lesion, item.reason))
    out = []
    for patient, lesion, reason in records:
        text = "" if reason is None or pd.isna(reason) else str(reason).strip()
        if not text:
            raise InputError(
                "an exclusion needs a reason",
                tag="exclusions",
                value=f"{patient}/{lesion}",
                expected="the reason in words (it is recorded with the results)",
            )
        out.append((str(patient).strip(), _lesion_id(lesion), text))
    return pd.DataFrame(out, columns=columns)


def _describe(values: np.ndarray) -> tuple[dict[str, float], str]:
    n = len(values)
    if n == 0:
        nan = float("nan")
        stats = dict.fromkeys(("median", "mean", "geometric_mean", "sd", "minimum", "maximum"), nan)
        return stats, ""
    note = ""
    if np.all(values > 0):
        geometric = float(gmean(values))
    else:
        geometric = float("nan")
        note = "geometric mean undefined: a lesion value <= 0"
    stats = {
        "median": float(np.median(values)),
        "mean": float(np.mean(values)),
        "geometric_mean": geometric,
        "sd": float(np.std(values, ddof=1)) if n > 1 else float("nan"),
        "minimum": float(np.min(values)),
        "maximum": float(np.max(values)),
    }
    return stats, note


def patient_uptake(
    measurements: pd.DataFrame,
    *,
    hours: float = 120.0,
    series: str = "tracer-only",
    metric: Literal["suv_peak", "suv_max", "suv_mean"] = "suv_peak",
    min_long_axis_mm: float = 20.0,
    exclusions: Exclusions = None,
    fallback_hours: Sequence[float] = (),
    lesions_table: pd.DataFrame | None = None,
    include_flagged: bool = False,
) -> PatientUptake:
    """Tumour uptake per patient at one time point of one series.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The store's measurement table.
    hours : float, hours
        Nominal time point of the analysis (the study: 120 h).
    series : str
        The series (the study: tracer-only).
    metric : {"suv_peak", "suv_max", "suv_mean"}
        SUVpeak (durvalumab study), SUVmax (atezolizumab study) or SUVmean.
    min_long_axis_mm : float, mm
        Lesions with a shorter long axis are left out (partial volume; the study: 20 mm).
    exclusions : DataFrame, iterable of (patient, lesion, reason) or of objects with those
        attributes (the manifest's exclusions), optional
        Lesions the user leaves out, each with a reason (required).
    fallback_hours : sequence of float, hours
        Time points to use, in this order, for a patient without a scan at ``hours`` in this
        series (the study used 72 h for patient 12). Empty: no fallback.
    lesions_table : pandas.DataFrame, optional
        The baseline lesion table; when given, only FDG-positive lesions count and the long
        axis comes from it (baseline CT). Without it every lesion counts and the long axis is
        the VOI's (``long_axis_mm`` of the measurement; a 1 cm³ placeholder sphere then
        measures 12.4 mm and falls below 20 mm).
    include_flagged : bool
        Keep lesions flagged ``excluded`` in the measurements.

    Returns
    -------
    PatientUptake

    Raises
    ------
    InputError
        When a column is missing, an exclusion has no reason, a time point is not finite or
        the lesion table is invalid.

    Examples
    --------
    >>> m = pd.DataFrame({"patient": "9", "series": "tracer-only", "hours_pi": 120.0,
    ...     "nominal_hours": 120, "voi": ["1", "2", "3"], "kind": "lesion",
    ...     "suv_peak": [2.0, 8.0, 15.1], "long_axis_mm": [25.0, 30.0, 22.0]})
    >>> result = patient_uptake(m, exclusions=[("9", "3", "spill-in from the spleen")])
    >>> result.patients[["median", "geometric_mean"]].values.tolist()
    [[5.0, 4.0]]
    >>> result.excluded[["lesion", "rule"]].values.tolist()
    [['3', 'user']]
    """
    if metric not in ("suv_peak", "suv_max", "suv_mean"):
        raise InputError(
            "unknown metric", tag="metric", value=metric, expected="suv_peak, suv_max or suv_mean"
        )
    for name, value in (("hours", hours), *(("fallback_hours", h) for h in fallback_hours)):
        if not math.isfinite(float(value)):
            raise InputError("time point must be a finite number", tag=name, value=value)
    if not math.isfinite(min_long_axis_mm):
        raise InputError(
            "size limit must be finite", tag="min_long_axis_mm", value=min_long_axis_mm
        )
    needed = ("long_axis_mm",) if lesions_table is None else ()
    rows = _lesion_rows(measurements, (metric, *needed))
    rows = rows[rows["series"] == series]
    scans = _scans(measurements)
    in_series = scans[scans["series"] == series]
    user = _exclusion_frame(exclusions)
    table = None if lesions_table is None else _lesion_table(lesions_table)

    hours = float(hours)
    fallbacks = tuple(float(h) for h in fallback_hours)
    patients = sorted(set(scans["patient"]))
    patient_records = []
    used_parts = []
    excluded_records: list[dict[str, object]] = []
    applied: set[tuple[str, str]] = set()

    for patient in patients:
        available = set(in_series.loc[in_series["patient"] == patient, "nominal_hours"])
        chosen: float | None = None
        for candidate in (hours, *fallbacks):
            if candidate in available:
                chosen = candidate
                break
        record: dict[str, object] = {
            "patient": patient,
            "series": series,
            "nominal_hours": np.nan if chosen is None else chosen,
            "hours_pi": np.nan,
            "fallback": chosen is not None and chosen != hours,
            "metric": metric,
        }
        notes = []
        if chosen is None:
            tried = " nor ".join(f"{h:g} h" for h in (hours, *fallbacks))
            notes.append(f"no {series} scan at {tried}")
            values = np.empty(0)
        else:
            if chosen != hours:
                notes.append(f"no {series} scan at {hours:g} h; {chosen:g} h used")
            scan_rows = rows[(rows["patient"] == patient) & (rows["nominal_hours"] == chosen)]
            scan_all = measurements[
                (measurements["patient"].astype(str) == patient)
                & (measurements["series"].astype(str) == series)
                & (pd.to_numeric(measurements["nominal_hours"]) == chosen)
            ]
            record["hours_pi"] = float(pd.to_numeric(scan_all["hours_pi"]).mean())
            kept = _select(
                scan_rows,
                patient,
                series,
                chosen,
                metric,
                min_long_axis_mm,
                user,
                table,
                include_flagged,
                excluded_records,
                applied,
            )
            kept = kept.assign(fallback=chosen != hours)
            used_parts.append(kept)
            values = kept[metric].to_numpy(dtype=np.float64)
        stats, note = _describe(values)
        if note:
            notes.append(note)
        record.update({"n_lesions": len(values), **stats, "note": "; ".join(notes)})
        patient_records.append(record)

    for patient, lesion, reason in user.itertuples(index=False):
        if (patient, lesion) not in applied:
            excluded_records.append(
                {
                    "patient": patient,
                    "lesion": lesion,
                    "series": series,
                    "nominal_hours": np.nan,
                    "rule": "user",
                    "reason": f"{reason} (no such lesion measured on the scan used)",
                    "applied": False,
                }
            )

    lesion_columns = [
        "patient",
        "lesion",
        "series",
        "nominal_hours",
        "hours_pi",
        "fallback",
        "long_axis_mm",
        "size_source",
        "method",
        metric,
        "suggested_exclusion",
    ]
    lesions = (
        pd.concat(used_parts, ignore_index=True)
        if used_parts
        else pd.DataFrame(columns=lesion_columns)
    )
    patients_out = pd.DataFrame.from_records(patient_records, columns=list(PATIENT_UPTAKE_COLUMNS))
    patients_out["n_lesions"] = patients_out["n_lesions"].astype("int64")
    patients_out["fallback"] = patients_out["fallback"].astype(bool)
    excluded = pd.DataFrame.from_records(excluded_records, columns=list(EXCLUDED_COLUMNS))
    excluded["applied"] = excluded["applied"].astype(bool)
    return PatientUptake(
        patients=patients_out,
        lesions=lesions.loc[:, lesion_columns].reset_index(drop=True),
        excluded=excluded.reset_index(drop=True),
        metric=metric,
        hours=hours,
        series=series,
        min_long_axis_mm=float(min_long_axis_mm),
        fallback_hours=fallbacks,
    )


def _select(
    scan_rows: pd.DataFrame,
    patient: str,
    series: str,
    hours: float,
    metric: str,
    min_long_axis_mm: float,
    user: pd.DataFrame,
    table: pd.DataFrame | None,
    include_flagged: bool,
    excluded_records: list[dict[str, object]],
    applied: set[tuple[str, str]],
) -> pd.DataFrame:
    """The lesion rows of one scan that enter the analysis; records the others."""
    user_reasons = {
        lesion: reason for p, lesion, reason in user.itertuples(index=False) if p == patient
    }
    baseline = (
        {}
        if table is None
        else {
            lesion: (bool(fdg), float(axis))
            for p, lesion, fdg, axis in table[
                ["patient", "lesion", "fdg_positive", "long_axis_mm"]
            ].itertuples(index=False)
            if p == patient
        }
    )
    flagged = _flag(scan_rows, "excluded")
    keep = []
    axes, sources = [], []
    for (position, row), is_flagged in zip(scan_rows.iterrows(), flagged, strict=True):
        lesion = str(row["lesion"])
        rules, reasons = [], []
        if lesion in user_reasons:
            rules.append("user")
            reasons.append(user_reasons[lesion])
            applied.add((patient, lesion))
        if is_flagged and not include_flagged:
            rules.append("flagged")
            given = row.get("exclusion_reason")
            reasons.append(
                str(given)
                if given is not None and not pd.isna(given) and str(given)
                else "flagged excluded in the measurements"
            )
        if table is not None:
            if lesion not in baseline:
                raise InputError(
                    "measured lesion missing from the lesion table",
                    file="lesions_table",
                    tag="lesion",
                    value=f"{patient}/{lesion}",
                    expected="every measured lesion listed",
                )
            fdg, axis = baseline[lesion]
            source = "lesion table"
            if not fdg:
                rules.append("fdg-negative")
                reasons.append("FDG-negative at baseline")
        else:
            axis = float(pd.to_numeric(pd.Series([row["long_axis_mm"]])).iloc[0])
            source = "VOI"
        if not math.isfinite(axis):
            rules.append("size")
            reasons.append(f"long axis unknown ({source})")
        elif axis < min_long_axis_mm:
            rules.append("size")
            reasons.append(f"long axis {axis:.1f} mm < {min_long_axis_mm:g} mm ({source})")
        value = pd.to_numeric(pd.Series([row[metric]])).iloc[0]
        if pd.isna(value):
            rules.append("no value")
            reasons.append(f"{metric} missing")
        axes.append(axis)
        sources.append(source)
        if rules:
            excluded_records.append(
                {
                    "patient": patient,
                    "lesion": lesion,
                    "series": series,
                    "nominal_hours": hours,
                    "rule": "; ".join(rules),
                    "reason": "; ".join(reasons),
                    "applied": True,
                }
            )
        else:
            keep.append(position)
    out = scan_rows.assign(
        long_axis_mm=axes,
        size_source=sources,
        suggested_exclusion=_suggestions(scan_rows),
        **{metric: pd.to_numeric(scan_rows[metric]).astype("float64")},
    )
    if "method" not in out.columns:
        out["method"] = None
    return out.loc[keep]


def _suggestions(rows: pd.DataFrame) -> list[str]:
    """The pipeline's ``suggested_exclusion`` of each row as text ("" when none or absent)."""
    if "suggested_exclusion" not in rows.columns:
        return [""] * len(rows)
    return [
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        for value in rows["suggested_exclusion"]
    ]


def join_clinical(table: pd.DataFrame, clinical: pd.DataFrame) -> pd.DataFrame:
    """Add the response, PD-L1 and survival columns of each patient to a table.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table with a ``patient`` column: :attr:`PatientUptake.lesions` (lesion level, for
        the Mann-Whitney and Kruskal-Wallis tests of the study) or
        :attr:`PatientUptake.patients` (patient level, for the PD-L1 correlation and the
        median split for survival).
    clinical : pandas.DataFrame
        The clinical sheet (validated again).

    Returns
    -------
    pandas.DataFrame
        ``table`` with :data:`CLINICAL_JOIN_COLUMNS` appended. ``progression_6wk`` (nullable
        boolean) is True when the best overall response is PD, False for CR, PR or SD, and
        missing for NE (not evaluable: it enters neither group). The study's "progressive
        disease at 6 weeks" is read this way: its patients with PD as BOR are exactly those
        who progressed at or before the first 6-week evaluation. ``tps_group``/``cps_group``
        are the PD-L1 groups of :func:`~immunopet.analysis.clinical.group_pdl1`.

    Raises
    ------
    InputError
        When ``table`` has no ``patient`` column or a patient of it is not in the clinical
        sheet.

    Examples
    --------
    >>> sheet = pd.DataFrame({"patient": ["1", "2"], "age": [59, 53], "sex": ["F", "M"],
    ...     "histology": "Adenocarcinoma", "tps_percent": [0, 100], "cps_percent": [12.5, 0],
    ...     "treatment_cycles": [7, 1], "bor": ["SD", "PD"], "stop_reason": "PD",
    ...     "pfs_days": [86, 19], "pfs_event": 1, "os_days": [823, 19], "os_event": 1})
    >>> out = join_clinical(pd.DataFrame({"patient": ["2", "1"]}), sheet)
    >>> out["progression_6wk"].tolist(), out["tps_group"].astype(str).tolist()
    ([True, False], ['≥50%', '<1%'])
    """
    _require_columns(table, ("patient",), "table")
    sheet = validate_clinical(clinical)
    keys = table["patient"].astype(str)
    missing = sorted(set(keys) - set(sheet["patient"]))
    if missing:
        raise InputError(
            "patient(s) missing from the clinical sheet",
            file="clinical",
            tag="patient",
            value=", ".join(missing),
            expected="a clinical row for every patient of the table",
        )
    progression = sheet["bor"].map({"PD": True, "CR": False, "PR": False, "SD": False})
    extra = pd.DataFrame(
        {
            "patient": sheet["patient"],
            "bor": sheet["bor"],
            "progression_6wk": pd.array(progression, dtype="boolean"),
            "tps_percent": sheet["tps_percent"],
            "tps_ne": sheet["tps_ne"],
            "tps_group": group_pdl1(sheet["tps_percent"]),
            "cps_percent": sheet["cps_percent"],
            "cps_ne": sheet["cps_ne"],
            "cps_group": group_pdl1(sheet["cps_percent"]),
            "pfs_days": sheet["pfs_days"],
            "pfs_event": sheet["pfs_event"],
            "os_days": sheet["os_days"],
            "os_event": sheet["os_event"],
        }
    ).set_index("patient")
    clash = [c for c in CLINICAL_JOIN_COLUMNS if c in table.columns]
    base = table.drop(columns=clash)
    joined = extra.reindex(keys.to_numpy()).loc[:, list(CLINICAL_JOIN_COLUMNS)]
    return pd.concat([base.reset_index(drop=True), joined.reset_index(drop=True)], axis=1)
