"""The baseline FDG PET of a synthetic patient (the trials' reference scan).

Each synthetic patient gets one [18F]FDG PET a week before the first 89Zr injection,
acquired about one hour after the FDG injection, on the 89Zr scans' PET grid (the same
anatomy, so the lesions keep their numbers). FDG-positive lesions (``lesions.csv``
``fdg_positive``) are avid, FDG-negative lesions (the lymph nodes seen only with 89Zr) are
not. The organ values are typical SUVbw at 60 min (blood pool below liver, as in PERCIST's
reference regions); they are a plausible picture, not a model of FDG kinetics.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from immunopet.synthetic.anatomy import Anatomy, Lesion, Tissue
from immunopet.synthetic.kinetics import NECROTIC_CORE_FRACTION, TISSUE_ORGAN

__all__ = [
    "FDG_ACTIVITY_BQ_PER_KG",
    "FDG_DAYS_BEFORE",
    "FDG_FRAME_DURATION_S",
    "FDG_NEGATIVE_SUV",
    "FDG_ORGAN_SUV",
    "FDG_POSITIVE_MEDIAN_SUV",
    "fdg_lesion_suv",
    "fdg_suv_map",
]

FDG_ORGAN_SUV: Mapping[str, float] = {
    "blood_pool": 1.7,
    "liver": 2.3,
    "spleen": 1.9,
    "kidney": 2.5,
    "lung": 0.5,
    "bone": 0.9,
    "bone_marrow": 1.6,
    "brain": 7.0,
    "myocardium": 2.5,
    "fat": 0.3,
    "soft_tissue": 0.8,
}
"""Typical FDG SUVbw at 60 min per organ (any organ not named: ``soft_tissue``)."""

FDG_POSITIVE_MEDIAN_SUV = 8.0
"""Median true SUV of an FDG-avid lesion (log-normal, sigma 0.3, at least 5)."""
FDG_NEGATIVE_SUV = 1.0
"""True SUV of an FDG-negative lesion (below the blood pool: no visible uptake)."""
FDG_ACTIVITY_BQ_PER_KG = 3.0e6
"""Injected FDG activity per kg body weight (EANM guideline order of magnitude), Bq/kg."""
FDG_DAYS_BEFORE = 7
"""Days between the FDG scan and the first 89Zr injection."""
FDG_FRAME_DURATION_S = 180.0
"""Acquisition time per bed of the FDG scan, s."""


def fdg_lesion_suv(lesions: tuple[Lesion, ...], rng: np.random.Generator) -> dict[int, float]:
    """True FDG SUV of each lesion, by lesion number.

    Parameters
    ----------
    lesions : tuple of Lesion
    rng : numpy.random.Generator

    Returns
    -------
    dict of int to float
        SUVbw (g/mL): FDG-positive lesions log-normal around
        :data:`FDG_POSITIVE_MEDIAN_SUV`, the others :data:`FDG_NEGATIVE_SUV`.
    """
    values: dict[int, float] = {}
    for lesion in lesions:
        draw = FDG_POSITIVE_MEDIAN_SUV * float(np.exp(rng.normal(0.0, 0.3)))
        values[lesion.number] = max(draw, 5.0) if lesion.fdg_positive else FDG_NEGATIVE_SUV
    return values


def fdg_suv_map(anatomy: Anatomy, lesion_suv: Mapping[int, float]) -> np.ndarray:
    """The true FDG SUVbw per voxel (g/mL) of an anatomy.

    Parameters
    ----------
    anatomy : Anatomy
    lesion_suv : mapping of int to float
        Lesion number to SUV (:func:`fdg_lesion_suv`); necrotic cores keep
        ``NECROTIC_CORE_FRACTION`` of it.

    Returns
    -------
    numpy.ndarray
        float64, the anatomy's shape.
    """
    table = np.full(max(int(t) for t in Tissue) + 1, FDG_ORGAN_SUV["soft_tissue"])
    for tissue, organ in TISSUE_ORGAN.items():
        table[int(tissue)] = FDG_ORGAN_SUV.get(organ, FDG_ORGAN_SUV["soft_tissue"])
    table[int(Tissue.AIR)] = 0.0
    suv = table[anatomy.tissue]
    lesion_table = np.zeros(max([*lesion_suv, 0]) + 1, dtype=np.float64)
    for number, value in lesion_suv.items():
        lesion_table[number] = value
    inside = anatomy.lesion_labels > 0
    suv[inside] = lesion_table[anatomy.lesion_labels[inside]]
    suv[anatomy.necrotic_core] *= NECROTIC_CORE_FRACTION
    return suv
