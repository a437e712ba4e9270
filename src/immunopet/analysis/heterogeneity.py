"""Heterogeneity of tumour uptake: within patients, between patients, between tumour types.

The lesions of the per-patient uptake analysis (the plan's metric at the analysis time
point, after exclusions and the size limit) are joined with the clinical sheet's tumour type
and handed to :func:`immunopet.stats.heterogeneity.variance_components` (a nested
random-effects model of log uptake, REML). The result is ``RESULTS_DIR/analysis/
heterogeneity.csv`` (``level``, ``variance``, ``share``, ``icc``, ``n``) and the lesion table
behind the figure of lesion uptake by tumour type and patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from immunopet.analysis.aggregates import PatientUptake
from immunopet.errors import InputError
from immunopet.stats.heterogeneity import VarianceComponents, variance_components

__all__ = ["HETEROGENEITY_COLUMNS", "UptakeHeterogeneity", "uptake_heterogeneity"]

HETEROGENEITY_COLUMNS: Final = ("level", "variance", "share", "icc", "n")
"""Columns of ``heterogeneity.csv``."""

TYPE_COLUMNS: Final = ("tumour_type", "tumor_type")
"""Clinical columns read as the tumour type (first found)."""


@dataclass(frozen=True)
class UptakeHeterogeneity:
    """Variance components of lesion uptake and the lesions they rest on.

    Attributes
    ----------
    components : VarianceComponents
        ``components.table`` is ``heterogeneity.csv``.
    lesions : pandas.DataFrame
        One row per lesion: ``patient``, ``lesion``, ``tumour_type`` (``"all"`` without a
        tumour-type column), ``value`` (uptake, the plan's metric), ``patient_median``
        (median of the patient's lesions), ordered by tumour type (case-insensitive), then
        by the patient's median uptake.
    metric : str
        The uptake metric (``suv_max``, ``suv_peak`` ...).
    hours : float, hours
        The analysis time point.
    """

    components: VarianceComponents
    lesions: pd.DataFrame
    metric: str
    hours: float

    @property
    def table(self) -> pd.DataFrame:
        """``heterogeneity.csv``: the columns :data:`HETEROGENEITY_COLUMNS`."""
        return self.components.table.loc[:, list(HETEROGENEITY_COLUMNS)].copy()


def uptake_heterogeneity(
    uptake: PatientUptake, clinical: pd.DataFrame | None
) -> UptakeHeterogeneity:
    """Variance components of log lesion uptake (within/between patients and tumour types).

    Parameters
    ----------
    uptake : PatientUptake
        The per-patient uptake analysis; its ``lesions`` (column named after ``metric``)
        are used.
    clinical : pandas.DataFrame, optional
        The clinical sheet; its ``tumour_type`` column adds the tumour-type level.

    Returns
    -------
    UptakeHeterogeneity

    Raises
    ------
    InputError
        Too few lesions (fewer than 2 patients, or no patient with 2 lesions), or an uptake
        that is not positive.
    """
    lesions = uptake.lesions
    if uptake.metric not in lesions.columns:
        raise InputError(
            "uptake lesions lack the metric column",
            tag=uptake.metric,
            value="missing",
            expected="a column of the lesion table",
        )
    frame = pd.DataFrame(
        {
            "patient": lesions["patient"].astype(str),
            "lesion": lesions["lesion"].astype(str),
            "value": pd.to_numeric(lesions[uptake.metric], errors="coerce"),
        }
    ).dropna(subset=["value"])
    type_col = None
    if clinical is not None:
        type_col = next((c for c in TYPE_COLUMNS if c in clinical.columns), None)
    if type_col is not None and clinical is not None:
        types = clinical.assign(patient=clinical["patient"].astype(str)).set_index("patient")[
            type_col
        ]
        frame["tumour_type"] = frame["patient"].map(types).fillna("unknown").astype(str)
    else:
        frame["tumour_type"] = "all"
    components = variance_components(
        frame,
        value_col="value",
        patient_col="patient",
        type_col="tumour_type" if type_col is not None else None,
    )
    order = frame.groupby("patient")["value"].median().rename("patient_median")
    frame = frame.join(order, on="patient")
    frame["_type_key"] = frame["tumour_type"].str.lower()
    frame = (
        frame.sort_values(["_type_key", "patient_median", "patient"], kind="stable")
        .drop(columns="_type_key")
        .reset_index(drop=True)
    )
    return UptakeHeterogeneity(
        components=components, lesions=frame, metric=uptake.metric, hours=uptake.hours
    )
