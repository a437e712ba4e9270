"""Biodistribution: normal-tissue uptake per organ, series and time point, and the predose effect.

Input is the tidy ``measurements`` table of the results store (one row per VOI per scan). The
rows used here are the organ reference spheres (``kind == "organ"``; ``voi`` = organ name);
scans are grouped by their *nominal* time point (``nominal_hours``: 1, 72, 120, 168 h) because
actual times differ by patient, and the mean actual time (``hours_pi``) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd

from immunopet.errors import InputError

__all__ = [
    "ORGAN_ORDER",
    "ORGAN_UPTAKE_COLUMNS",
    "PREDOSE_RATIO_COLUMNS",
    "SERIES_ORDER",
    "organ_uptake",
    "pair_series",
    "predose_ratio",
]

ORGAN_ORDER: Final = ("blood_pool", "liver", "spleen", "kidney", "lung", "bone_marrow", "brain")
"""Organs in the order of the study's figures; other organs follow alphabetically."""

SERIES_ORDER: Final = ("tracer-only", "predose")
"""Series in the study's order; other series follow alphabetically."""

ORGAN_UPTAKE_COLUMNS: Final = (
    "organ",
    "series",
    "nominal_hours",
    "n",
    "mean",
    "sd",
    "median",
    "minimum",
    "maximum",
    "hours_pi_mean",
    "hours_pi_min",
    "hours_pi_max",
)
"""Columns of :func:`organ_uptake`."""

PREDOSE_RATIO_COLUMNS: Final = (
    "organ",
    "nominal_hours",
    "n_pairs",
    "mean_numerator",
    "mean_denominator",
    "ratio_of_means",
    "mean_of_ratios",
    "sd_of_ratios",
    "n_numerator_only",
    "n_denominator_only",
)
"""Columns of :func:`predose_ratio`."""

Metric = Literal["suv_mean", "suv_max", "suv_peak"]


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks required column(s)",
            file=what,
            tag=", ".join(missing),
            value="missing",
            expected="columns " + ", ".join(columns),
        )


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column that may hold bools, 0/1, text or None (None -> False)."""
    if column not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[column].map(
        lambda v: (
            str(v).strip().lower() in {"true", "1", "yes"}
            if isinstance(v, str)
            else bool(v) and not pd.isna(v)
        )
    )


def _ordered(values: Collection[str], order: Sequence[str]) -> dict[str, int]:
    known = [v for v in order if v in values]
    rest = sorted(v for v in values if v not in order)
    return {v: i for i, v in enumerate([*known, *rest])}


def _sort(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    keys = {
        "organ": _ordered(set(frame.get("organ", [])), ORGAN_ORDER),
        "series": _ordered(set(frame.get("series", [])), SERIES_ORDER),
    }

    def key(column: pd.Series) -> pd.Series:
        mapping = keys.get(str(column.name))
        return column.map(mapping) if mapping is not None else column

    return frame.sort_values(list(columns), key=key, kind="stable").reset_index(drop=True)


def _organ_rows(
    measurements: pd.DataFrame,
    metric: str,
    patients: Collection[str] | None,
    include_excluded: bool,
) -> pd.DataFrame:
    """Organ rows with ``organ``, ``patient``, ``series``, ``nominal_hours``, ``hours_pi``,
    ``value``; checks that a patient has one row per organ and scan."""
    if metric not in ("suv_mean", "suv_max", "suv_peak"):
        raise InputError(
            "unknown metric", tag="metric", value=metric, expected="suv_mean, suv_max or suv_peak"
        )
    _require_columns(
        measurements,
        ("patient", "series", "hours_pi", "nominal_hours", "voi", "kind", metric),
        "measurements",
    )
    rows = measurements[measurements["kind"].astype(str) == "organ"]
    if not include_excluded:
        rows = rows[~_flag(rows, "excluded")]
    if patients is not None:
        wanted = {str(p) for p in patients}
        rows = rows[rows["patient"].astype(str).isin(wanted)]
    out = pd.DataFrame(
        {
            "organ": rows["voi"].astype(str).to_numpy(),
            "patient": rows["patient"].astype(str).to_numpy(),
            "series": rows["series"].astype(str).to_numpy(),
            "nominal_hours": pd.to_numeric(rows["nominal_hours"]).to_numpy(dtype=np.float64),
            "hours_pi": pd.to_numeric(rows["hours_pi"]).to_numpy(dtype=np.float64),
            "value": pd.to_numeric(rows[metric]).to_numpy(dtype=np.float64),
        }
    )
    if out["nominal_hours"].isna().any():
        bad = out[out["nominal_hours"].isna()].iloc[0]
        raise InputError(
            "organ row without a nominal time point",
            file="measurements",
            tag="nominal_hours",
            value=f"missing for {bad['patient']}/{bad['series']} at {bad['hours_pi']:g} h",
            expected="the scheduled hours after injection (1, 72, 120, ...)",
        )
    twice = out.duplicated(["organ", "patient", "series", "nominal_hours"])
    if twice.any():
        bad = out[twice].iloc[0]
        raise InputError(
            "an organ is measured twice in one patient's scan",
            file="measurements",
            tag="voi",
            value=f"{bad['organ']} of {bad['patient']}/{bad['series']} "
            f"at {bad['nominal_hours']:g} h",
            expected="one row per organ per scan (else the patient would count twice)",
        )
    return out[out["value"].notna()]


def organ_uptake(
    measurements: pd.DataFrame,
    *,
    metric: Metric = "suv_mean",
    patients: Collection[str] | None = None,
    include_excluded: bool = False,
) -> pd.DataFrame:
    """Normal-tissue uptake per organ, series and nominal time point, across patients.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The store's measurement table (at least ``patient``, ``series``, ``hours_pi``,
        ``nominal_hours``, ``voi``, ``kind`` and the metric; ``excluded`` is honoured when
        present).
    metric : {"suv_mean", "suv_max", "suv_peak"}
        The study reports SUVmean for normal tissue.
    patients : collection of str, optional
        Restrict to these patients (the study's biodistribution used the first 3).
    include_excluded : bool
        Keep organ rows flagged ``excluded``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ORGAN_UPTAKE_COLUMNS`, one row per organ x series x nominal time point
        (organs in :data:`ORGAN_ORDER`, series in :data:`SERIES_ORDER`, hours ascending).
        ``n`` = patients measured; ``mean``, ``sd`` (sample SD, n - 1 in the denominator; NaN
        for n = 1), ``median``, ``minimum``, ``maximum`` of the metric; ``hours_pi_*`` = the
        actual hours after injection of those scans. Rows whose metric is NaN are left out.

    Raises
    ------
    InputError
        When a column is missing, ``metric`` is unknown, an organ row has no nominal time
        point, or one scan has two rows of one organ.

    Examples
    --------
    >>> m = pd.DataFrame({"patient": ["1", "2"], "series": "tracer-only",
    ...     "hours_pi": [71.0, 73.0], "nominal_hours": 72, "voi": "liver", "kind": "organ",
    ...     "suv_mean": [6.0, 7.0]})
    >>> organ_uptake(m)[["organ", "n", "mean", "sd", "hours_pi_mean"]].round(4).values.tolist()
    [['liver', 2, 6.5, 0.7071, 72.0]]
    """
    rows = _organ_rows(measurements, metric, patients, include_excluded)
    grouped = rows.groupby(["organ", "series", "nominal_hours"], sort=False)
    out = grouped.agg(
        n=("value", "size"),
        mean=("value", "mean"),
        sd=("value", "std"),
        median=("value", "median"),
        minimum=("value", "min"),
        maximum=("value", "max"),
        hours_pi_mean=("hours_pi", "mean"),
        hours_pi_min=("hours_pi", "min"),
        hours_pi_max=("hours_pi", "max"),
    ).reset_index()
    out["n"] = out["n"].astype("int64")
    out = _sort(out, ["organ", "series", "nominal_hours"])
    return out.loc[:, list(ORGAN_UPTAKE_COLUMNS)]


def pair_series(
    measurements: pd.DataFrame,
    *,
    numerator: str = "predose",
    denominator: str = "tracer-only",
    metric: Metric = "suv_mean",
    patients: Collection[str] | None = None,
    include_excluded: bool = False,
) -> pd.DataFrame:
    """Per patient, organ and nominal time point: the metric in two series side by side.

    Parameters
    ----------
    measurements : pandas.DataFrame
        As :func:`organ_uptake`.
    numerator, denominator : str
        Series labels; the ratio is numerator / denominator.
    metric, patients, include_excluded :
        As :func:`organ_uptake`.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``organ``, ``nominal_hours``, ``numerator``, ``denominator``
        (metric values; NaN when that series has no scan), ``ratio`` (NaN unless both exist and
        the denominator is > 0), sorted by organ, hours, patient. Every patient-organ-time with
        at least one of the two series has a row.

    Examples
    --------
    >>> m = pd.DataFrame({"patient": ["1", "1"], "series": ["tracer-only", "predose"],
    ...     "hours_pi": 120.0, "nominal_hours": 120, "voi": "blood_pool", "kind": "organ",
    ...     "suv_mean": [1.6, 3.2]})
    >>> pair_series(m)[["numerator", "denominator", "ratio"]].values.tolist()
    [[3.2, 1.6, 2.0]]
    """
    if numerator == denominator:
        raise InputError(
            "numerator and denominator are the same series",
            tag="numerator",
            value=numerator,
            expected="two different series labels",
        )
    rows = _organ_rows(measurements, metric, patients, include_excluded)
    rows = rows[rows["series"].isin([numerator, denominator])]
    wide = rows.pivot_table(
        index=["patient", "organ", "nominal_hours"],
        columns="series",
        values="value",
        aggfunc="first",
    )
    wide = wide.reindex(columns=[numerator, denominator])
    wide.columns = ["numerator", "denominator"]
    wide = wide.reset_index()
    valid = wide["numerator"].notna() & (wide["denominator"] > 0)
    wide["ratio"] = np.where(valid, wide["numerator"] / wide["denominator"], np.nan)
    out = _sort(wide, ["organ", "nominal_hours", "patient"])
    return out.loc[:, ["patient", "organ", "nominal_hours", "numerator", "denominator", "ratio"]]


def predose_ratio(
    measurements: pd.DataFrame,
    *,
    numerator: str = "predose",
    denominator: str = "tracer-only",
    metric: Metric = "suv_mean",
    patients: Collection[str] | None = None,
    include_excluded: bool = False,
) -> pd.DataFrame:
    """How much the unlabelled predose changes uptake: predose / tracer-only per organ and time.

    Only patients with both series at that organ and time point enter (paired).

    Parameters
    ----------
    measurements, numerator, denominator, metric, patients, include_excluded :
        As :func:`pair_series`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PREDOSE_RATIO_COLUMNS`, one row per organ x nominal time point:
        ``n_pairs`` patients with both series; ``mean_numerator``/``mean_denominator`` = the
        series means over those patients; ``ratio_of_means`` = their quotient (the
        **headline**: it is how the study compares its averaged curves, "blood pool 2-fold
        higher after the predose"); ``mean_of_ratios`` and ``sd_of_ratios`` (sample SD) of the
        per-patient ratios, which weigh every patient equally whatever his uptake;
        ``n_numerator_only``/``n_denominator_only`` = patients with only one series, left out.

    Notes
    -----
    With paired values :math:`a_i` (numerator) and :math:`b_i` (denominator), :math:`i = 1..n`:

    .. math:: \\text{ratio of means} = \\bar a / \\bar b, \\qquad
              \\text{mean of ratios} = \\tfrac{1}{n} \\sum_i a_i / b_i .

    Examples
    --------
    >>> m = pd.DataFrame({"patient": ["1", "1", "2", "2"],
    ...     "series": ["tracer-only", "predose"] * 2, "hours_pi": 72.0, "nominal_hours": 72,
    ...     "voi": "blood_pool", "kind": "organ", "suv_mean": [1.0, 2.0, 3.0, 3.0]})
    >>> row = predose_ratio(m).iloc[0]
    >>> float(row["ratio_of_means"]), float(row["mean_of_ratios"])
    (1.25, 1.5)
    """
    pairs = pair_series(
        measurements,
        numerator=numerator,
        denominator=denominator,
        metric=metric,
        patients=patients,
        include_excluded=include_excluded,
    )
    records = []
    for (organ, hours), group in pairs.groupby(["organ", "nominal_hours"], sort=False):
        both = group[group["ratio"].notna()]
        mean_a = float(both["numerator"].mean()) if len(both) else np.nan
        mean_b = float(both["denominator"].mean()) if len(both) else np.nan
        records.append(
            {
                "organ": organ,
                "nominal_hours": hours,
                "n_pairs": len(both),
                "mean_numerator": mean_a,
                "mean_denominator": mean_b,
                "ratio_of_means": mean_a / mean_b if len(both) else np.nan,
                "mean_of_ratios": float(both["ratio"].mean()) if len(both) else np.nan,
                "sd_of_ratios": float(both["ratio"].std()) if len(both) > 1 else np.nan,
                "n_numerator_only": int(
                    (group["numerator"].notna() & group["denominator"].isna()).sum()
                ),
                "n_denominator_only": int(
                    (group["denominator"].notna() & group["numerator"].isna()).sum()
                ),
            }
        )
    out = pd.DataFrame.from_records(records, columns=list(PREDOSE_RATIO_COLUMNS))
    out["n_pairs"] = out["n_pairs"].astype("int64")
    return _sort(out, ["organ", "nominal_hours"])
