"""The rules of the analysis plan that turn clinical data and uptake into groups.

Each function here implements one key of the manifest's ``[analysis]`` table
(:class:`~immunopet.study.model.AnalysisPlan`): progression at the landmark
(``[analysis.response]``), the IHC groups of a marker's cut-offs (``[[analysis.ihc]]``), the
split threshold of the survival analysis (``split``), the per-patient aggregate
(``patient_aggregate``, ``split_aggregate``) and the biodistribution cohort
(``biodistribution_cohort``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from immunopet.errors import ImmunoPETError, InputError
from immunopet.study.model import ResponsePlan

__all__ = [
    "AGGREGATE_COLUMNS",
    "AGGREGATE_LABELS",
    "METRIC_LABELS",
    "NotApplicableError",
    "full_schedule_patients",
    "ihc_group_labels",
    "ihc_groups",
    "progression_at_landmark",
    "split_threshold",
]

AGGREGATE_COLUMNS: Final = {
    "median": "median",
    "mean": "mean",
    "geometric_mean": "geometric_mean",
    "max": "maximum",
}
"""Plan aggregate name -> column of ``PatientUptake.patients``."""

AGGREGATE_LABELS: Final = {
    "median": "Median",
    "mean": "Mean",
    "geometric_mean": "Geometric mean",
    "max": "Maximum",
}
"""Plan aggregate name -> words for titles."""

METRIC_LABELS: Final = {"suv_peak": "SUVpeak", "suv_max": "SUVmax", "suv_mean": "SUVmean"}
"""Plan metric name -> words for titles."""

DAYS_PER_WEEK: Final = 7.0


class NotApplicableError(ImmunoPETError):
    """An analysis step that these data do not allow (the message is the reason)."""


def progression_at_landmark(clinical: pd.DataFrame, response: ResponsePlan) -> pd.Series:
    """Progression (True), no progression (False) or unknown (NA) per patient.

    Parameters
    ----------
    clinical : pandas.DataFrame
        The validated clinical sheet (``patient``, the response column, ``pfs_days``,
        ``pfs_event``).
    response : ResponsePlan
        ``landmark_weeks`` > 0: progression is a PFS event at or before ``7 *
        landmark_weeks`` days, no progression a PFS time beyond it (event or not), unknown a
        censoring before it. ``landmark_weeks`` = 0: the response column alone
        (``progression`` categories vs the other known categories). Not-evaluable patients
        follow ``ne_rule``.

    Returns
    -------
    pandas.Series
        Nullable boolean, indexed by patient (str).

    Raises
    ------
    InputError
        When the response column (or, with a landmark, the PFS columns) is missing.

    Examples
    --------
    >>> sheet = pd.DataFrame({"patient": ["1", "2", "3"], "bor": ["SD", "PD", "NE"],
    ...     "pfs_days": [86.0, 19.0, float("nan")], "pfs_event": [1.0, 1.0, 0.0]})
    >>> progression_at_landmark(sheet, ResponsePlan()).tolist()
    [False, True, <NA>]
    >>> sheet.loc[2, "pfs_days"] = 300.0
    >>> progression_at_landmark(sheet, ResponsePlan()).tolist()
    [False, True, False]
    >>> progression_at_landmark(sheet, ResponsePlan(ne_rule="exclude")).tolist()
    [False, True, <NA>]
    """
    needed = [response.column]
    if response.landmark_weeks > 0:
        needed += ["pfs_days", "pfs_event"]
    missing = [c for c in needed if c not in clinical.columns]
    if missing:
        raise InputError(
            "clinical column missing for the response definition",
            file="clinical",
            tag=", ".join(missing),
            expected="the columns named by [analysis.response]",
        )
    category = clinical[response.column].astype("string").str.strip().str.upper()
    progression_set = {c.upper() for c in response.progression}
    ne_set = {c.upper() for c in response.not_evaluable}
    if response.landmark_weeks > 0:
        days = pd.to_numeric(clinical["pfs_days"], errors="coerce").astype("float64")
        event = pd.to_numeric(clinical["pfs_event"], errors="coerce").astype("float64")
        limit = DAYS_PER_WEEK * response.landmark_weeks
        values: list[bool | None] = []
        for d, e in zip(days.tolist(), event.tolist(), strict=True):
            if math.isnan(d):
                values.append(None)
            elif d <= limit and e == 1:
                values.append(True)
            elif d > limit:
                values.append(False)
            else:
                values.append(None)
        flag = pd.Series(pd.array(values, dtype="boolean"), index=clinical.index)
    else:
        known = category.notna() & ~category.isin(ne_set)
        flag = pd.Series(pd.array([None] * len(clinical), dtype="boolean"), index=clinical.index)
        flag[known.fillna(False).to_numpy(dtype=bool)] = category[
            known.fillna(False).to_numpy(dtype=bool)
        ].isin(progression_set)
    is_ne = category.isin(ne_set).fillna(False).to_numpy(dtype=bool)
    if response.ne_rule == "exclude":
        flag[is_ne] = pd.NA
    elif response.ne_rule == "progression":
        flag[is_ne] = True
    elif response.ne_rule == "no-progression":
        flag[is_ne] = False
    flag.index = clinical["patient"].astype(str).to_numpy()
    return flag


def ihc_group_labels(cutoffs: Sequence[float]) -> list[str]:
    """Group names of a marker's cut-offs, lowest first.

    Examples
    --------
    >>> ihc_group_labels([1, 50])
    ['<1', '1 to <50', '≥50']
    >>> ihc_group_labels([10])
    ['<10', '≥10']
    """
    limits = [float(c) for c in cutoffs]
    labels = [f"<{limits[0]:g}"]
    labels += [f"{a:g} to <{b:g}" for a, b in itertools.pairwise(limits)]
    labels.append(f"≥{limits[-1]:g}")
    return labels


def ihc_groups(values: pd.Series, cutoffs: Sequence[float]) -> pd.Series:
    """The group of each value: below the first cut-off, between, at or above the last.

    Examples
    --------
    >>> ihc_groups(pd.Series([0.0, 1.0, 49.9, 50.0, None]), [1, 50]).tolist()
    ['<1', '1 to <50', '1 to <50', '≥50', <NA>]
    """
    labels = ihc_group_labels(cutoffs)
    numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    index = np.searchsorted(np.asarray(cutoffs, dtype=float), numbers, side="right")
    out = [None if math.isnan(v) else labels[i] for v, i in zip(numbers, index, strict=True)]
    return pd.Series(pd.array(out, dtype="string"), index=values.index)


def split_threshold(
    split: str | float, lesion_values: pd.Series, patient_values: pd.Series
) -> tuple[float, str]:
    """The uptake threshold of the survival split and the rule in words.

    Parameters
    ----------
    split : {"median-of-lesions", "median-of-patients"} or float
    lesion_values : pandas.Series
        The metric of every lesion that enters the analysis (all patients).
    patient_values : pandas.Series
        The per-patient ``split_aggregate``.

    Returns
    -------
    (float, str)

    Examples
    --------
    >>> split_threshold("median-of-lesions", pd.Series([1.0, 2.0, 9.0]), pd.Series([1.5, 9.0]))
    (2.0, 'median of all 3 lesions')
    >>> split_threshold(3.0, pd.Series([1.0]), pd.Series([1.0]))
    (3.0, 'fixed threshold 3')
    """
    if isinstance(split, int | float):
        return float(split), f"fixed threshold {float(split):g}"
    source = lesion_values if split == "median-of-lesions" else patient_values
    numbers = pd.to_numeric(source, errors="coerce").dropna()
    if numbers.empty:
        raise NotApplicableError(f"no values for the {split} threshold")
    what = "lesions" if split == "median-of-lesions" else "patients"
    return float(np.median(numbers.to_numpy(dtype=float))), f"median of all {len(numbers)} {what}"


def full_schedule_patients(scans: pd.DataFrame, series: str) -> list[str]:
    """Patients scanned at every nominal time point that any patient had in ``series``.

    Examples
    --------
    >>> s = pd.DataFrame({"patient": ["1", "1", "2"], "series": "a", "nominal_hours": [1, 72, 72]})
    >>> full_schedule_patients(s, "a")
    ['1']
    """
    rows = scans[scans["series"].astype(str) == series]
    if rows.empty:
        return []
    hours = pd.to_numeric(rows["nominal_hours"]).astype(float)
    schedule = set(hours)
    found = []
    for patient in sorted(set(rows["patient"].astype(str))):
        mine = set(hours[rows["patient"].astype(str).to_numpy() == patient])
        if mine >= schedule:
            found.append(patient)
    return found
