"""Who enters which curve and which lesions enter which ratio, as the analysis plan says.

The biodistribution of the durvalumab study (its Fig. 2C/D and Fig. 3) is the average of the
patients with the full schedule of a series (the first three patients, scanned at 1, 72, 120
and 168 h): pooling whoever was scanned at each time point mixes three patients at 1 h with
thirteen at 72 h and makes a curve rise where none does. :func:`biodistribution_cohorts`
finds that cohort per series (``[analysis] biodistribution_cohort``), :func:`cohort_organ_uptake`
and :func:`blood_summary` restrict the organ and blood curves to it, and
:func:`tumour_to_blood` selects the lesions of the tumour-to-blood ratio
(``tumour_to_blood_lesions``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from immunopet.analysis.biodistribution import SERIES_ORDER, organ_uptake
from immunopet.analysis.lesions import (
    LesionVisibility,
    _lesion_id,
    _lesion_table,
    tumour_to_blood_ratio,
)
from immunopet.analysis.outcome import NotApplicableError, full_schedule_patients
from immunopet.study.model import AnalysisPlan

__all__ = [
    "BLOOD_SUMMARY_COLUMNS",
    "biodistribution_cohorts",
    "blood_summary",
    "cohort_label",
    "cohort_organ_uptake",
    "only_comparison",
    "sampling_times",
    "tumour_to_blood",
]

BLOOD_SUMMARY_COLUMNS: Final = (
    "series",
    "sample",
    "matrix",
    "n",
    "hours_pi_mean",
    "mean",
    "sd",
    "cohort",
)
"""Columns of :func:`blood_summary` (``mean``/``sd`` in %IA/L, sample SD)."""


def biodistribution_cohorts(scans: pd.DataFrame, plan: AnalysisPlan) -> dict[str, list[str]]:
    """The patients of the biodistribution curves of each series.

    Parameters
    ----------
    scans : pandas.DataFrame
        The store's scans table (``patient``, ``series``, ``nominal_hours``).
    plan : AnalysisPlan
        ``biodistribution_cohort``: ``"full-schedule"`` (patients scanned at every nominal
        time point of that series) or ``"all"``.

    Returns
    -------
    dict of str to list of str
        Series -> sorted patient pseudonyms.
    """
    if scans.empty or not {"patient", "series", "nominal_hours"} <= set(scans.columns):
        return {}
    out = {}
    for series in sorted(set(scans["series"].astype(str))):
        if plan.biodistribution_cohort == "all":
            rows = scans[scans["series"].astype(str) == series]
            out[series] = sorted(set(rows["patient"].astype(str)))
        else:
            out[series] = full_schedule_patients(scans, series)
    return out


def cohort_label(plan: AnalysisPlan, patients: list[str]) -> str:
    """The cohort in words, e.g. "full schedule: P01, P02, P03"."""
    what = "full schedule" if plan.biodistribution_cohort == "full-schedule" else "all scanned"
    return f"{what}: {', '.join(patients)}" if patients else what


def cohort_organ_uptake(
    measurements: pd.DataFrame, cohorts: dict[str, list[str]], plan: AnalysisPlan
) -> pd.DataFrame:
    """:func:`~immunopet.analysis.biodistribution.organ_uptake` per series over its cohort.

    Returns
    -------
    pandas.DataFrame
        The columns of ``organ_uptake`` plus ``cohort`` (the patients in words).
    """
    parts = []
    for series, patients in cohorts.items():
        rows = measurements[measurements["series"].astype(str) == series]
        if rows.empty or not patients:
            continue
        part = organ_uptake(rows, patients=patients)
        parts.append(part.assign(cohort=cohort_label(plan, patients)))
    if not parts:
        raise NotApplicableError("no organ VOIs measured in the biodistribution cohort")
    out = pd.concat(parts, ignore_index=True)
    rank = {s: i for i, s in enumerate(SERIES_ORDER)}
    out["_rank"] = out["series"].map(lambda s: rank.get(str(s), len(rank)))
    out = out.sort_values(["_rank", "series"], kind="stable").drop(columns="_rank")
    return out.reset_index(drop=True)


def blood_summary(
    blood: pd.DataFrame, cohorts: dict[str, list[str]], plan: AnalysisPlan
) -> pd.DataFrame:
    """Blood activity (%IA/L) per series, sampling time and matrix over the cohort.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BLOOD_SUMMARY_COLUMNS`; one row per sampling time point
        (:func:`sampling_times`), ``sample`` = the labels found there, ``n`` samples,
        ``mean`` and ``sd`` (sample SD, NaN for one) of ``percent_ia_per_l``,
        ``hours_pi_mean`` of the samples.
    """
    records = []
    for series in sorted(set(blood["series"].astype(str)), key=_series_rank):
        patients = cohorts.get(series)
        rows = blood[blood["series"].astype(str) == series]
        if patients:
            rows = rows[rows["patient"].astype(str).isin(patients)]
        label = cohort_label(plan, patients or sorted(set(rows["patient"].astype(str))))
        hours = pd.to_numeric(rows["hours_pi"], errors="coerce").to_numpy(dtype=float)
        rows = rows.assign(_time=sampling_times(hours))
        for (_, matrix), part in rows.groupby(["_time", "matrix"], sort=True):
            sample = "/".join(dict.fromkeys(part["sample"].astype(str)))
            values = pd.to_numeric(part["percent_ia_per_l"], errors="coerce").dropna()
            if values.empty:
                continue
            records.append(
                {
                    "series": series,
                    "sample": str(sample),
                    "matrix": str(matrix),
                    "n": len(values),
                    "hours_pi_mean": float(pd.to_numeric(part["hours_pi"]).mean()),
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                    "cohort": label,
                }
            )
    out = pd.DataFrame.from_records(records, columns=list(BLOOD_SUMMARY_COLUMNS))
    if out.empty:
        raise NotApplicableError("no blood samples of the biodistribution cohort")
    out = out.sort_values(
        ["series", "matrix", "hours_pi_mean"],
        key=lambda c: c.map(_series_rank) if c.name == "series" else c,
        kind="stable",
    )
    return out.reset_index(drop=True)


def sampling_times(hours: np.ndarray) -> np.ndarray:
    """One index per sampling time point: samples within max(10 min, 15 %) of the first
    sample of a time point belong to it.

    Sample labels differ between schedules (sample "3" is 60 min for one patient and day 3
    for another), so the blood summary groups by time after injection, not by label.

    Examples
    --------
    >>> sampling_times(np.array([0.08, 0.1, 0.5, 1.02, 72.0, 73.5, 120.3])).tolist()
    [0, 0, 1, 2, 3, 3, 4]
    """
    order = np.argsort(hours, kind="stable")
    labels = np.full(len(hours), -1, dtype=int)
    cluster, start = -1, -np.inf
    for position in order:
        value = hours[position]
        if not np.isfinite(value):
            continue
        if value - start > max(10.0 / 60.0, 0.15 * start):
            cluster += 1
            start = value
        labels[position] = cluster
    return labels


def _series_rank(series: object) -> int:
    order = {s: i for i, s in enumerate(SERIES_ORDER)}
    return order.get(str(series), len(order))


def only_comparison(
    visibility: LesionVisibility, plan: AnalysisPlan, min_long_axis_mm: float
) -> pd.DataFrame:
    """FDG-positive lesions seen on a comparison-series scan and on no reference scan.

    Returns
    -------
    pandas.DataFrame
        One row: ``reference_series``, ``comparison_series``, ``n_only_comparison``,
        ``n_only_comparison_large`` (long axis >= the limit), ``lesions`` (patient/lesion).
    """
    rows = visibility.per_scan
    rows = rows[rows["fdg_positive"].astype(bool)]
    present = set(rows["series"].astype(str))
    if plan.comparison_series not in present or plan.reference_series not in present:
        raise NotApplicableError(
            f"needs both series {plan.reference_series!r} and {plan.comparison_series!r}"
        )
    seen = rows[rows["visible"].astype(bool)]

    def keys(series: str) -> set[tuple[str, str]]:
        part = seen[seen["series"].astype(str) == series]
        return set(zip(part["patient"].astype(str), part["lesion"].astype(str), strict=True))

    reference_patients = set(
        rows.loc[rows["series"].astype(str) == plan.reference_series, "patient"].astype(str)
    )
    only = sorted(
        (p, lesion)
        for p, lesion in keys(plan.comparison_series) - keys(plan.reference_series)
        if p in reference_patients
    )
    axis = {
        (str(p), str(lesion)): float(a)
        for p, lesion, a in rows[["patient", "lesion", "long_axis_mm"]].itertuples(index=False)
    }
    large = [k for k in only if axis.get(k, np.nan) >= min_long_axis_mm]
    return pd.DataFrame(
        {
            "reference_series": [plan.reference_series],
            "comparison_series": [plan.comparison_series],
            "n_only_comparison": [len(only)],
            "n_only_comparison_large": [len(large)],
            "lesions": ["; ".join(f"{p}/{lesion}" for p, lesion in only)],
        }
    )


def tumour_to_blood(
    measurements: pd.DataFrame,
    lesions: pd.DataFrame | None,
    plan: AnalysisPlan,
    min_long_axis_mm: float,
    *,
    reference: str = "blood_pool",
) -> pd.DataFrame:
    """The tumour-to-blood ratio over the plan's lesion set, against the organ VOI
    ``reference`` (the study's ``settings.reference_organ``).

    ``"quantitative"``: FDG-positive lesions with a baseline long axis >= the limit, not
    excluded (the lesions of the quantitative analysis; without a lesion table every lesion
    whose VOI long axis reaches the limit);
    ``"fdg-positive"``: every FDG-positive lesion (1 cm³ placeholders included); ``"all"``:
    every lesion VOI. The metric is ``plan.uptake_metric`` for lesions and blood pool alike.
    """
    rows = measurements
    if plan.tumour_to_blood_lesions == "quantitative" and lesions is None:
        # no baseline table: the VOI's long axis decides (as the per-patient uptake does)
        axis = pd.to_numeric(rows.get("long_axis_mm", np.nan), errors="coerce")
        is_lesion = (rows["kind"].astype(str) == "lesion").to_numpy(dtype=bool)
        large = (axis >= min_long_axis_mm).fillna(False).to_numpy(dtype=bool)
        rows = rows[~is_lesion | large]
    elif plan.tumour_to_blood_lesions == "quantitative" and lesions is not None:
        table = _lesion_table(lesions)
        keep = table[table["fdg_positive"] & (table["long_axis_mm"] >= min_long_axis_mm)]
        wanted = set(zip(keep["patient"].astype(str), keep["lesion"].astype(str), strict=True))
        is_lesion = rows["kind"].astype(str) == "lesion"
        key = [(str(p), _lesion_id(v)) for p, v in zip(rows["patient"], rows["voi"], strict=True)]
        chosen = np.array(
            [(not lesion) or (k in wanted) for lesion, k in zip(is_lesion, key, strict=True)]
        )
        rows = rows[chosen]
    out = tumour_to_blood_ratio(
        rows,
        lesions_table=lesions if plan.tumour_to_blood_lesions != "all" else None,
        reference=reference,
        metric=plan.uptake_metric,
        reference_metric=plan.uptake_metric,
    )
    if plan.tumour_to_blood_lesions == "quantitative":
        source = "baseline long axis" if lesions is not None else "VOI long axis"
        out["selection"] = out["selection"].astype(str) + f", ≥ {min_long_axis_mm:g} mm ({source})"
    return out
