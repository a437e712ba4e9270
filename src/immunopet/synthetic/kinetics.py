"""Tracer kinetics of the synthetic trial: SUV per tissue, series and hour after injection.

The anchor tables reproduce the biodistribution of the 89Zr-durvalumab study (seed 000,
DOMAIN.md): tracer-only SUVmean at 1 h blood pool 7.2, liver 6.7, spleen 15.1; blood pool
1.6 at 120 h; spleen peaking at 72 h (20.0); liver and bone marrow stable, marrow a little above
the blood pool from 72 h on; kidney, lung and brain low. With a predose of unlabelled antibody
the blood pool is similar at 1 h and about twice as high later, while spleen, marrow, liver and
tumours take up less.

Values between anchors are interpolated piecewise-linearly in log SUV over hours (an
exponential between anchors); outside the anchors the nearest anchor value is kept.

.. math:: \\mathrm{SUV}(t) = \\exp\\big(\\mathrm{interp}(t;\\ t_i, \\ln \\mathrm{SUV}_i)\\big)

Values at 24 h, and every value of the background tissues (soft tissue, fat, cortical bone,
myocardium), are plausible choices of this package, not study data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from immunopet.synthetic.anatomy import Tissue

__all__ = [
    "ANCHOR_HOURS",
    "LESION_RELATIVE_ANCHORS",
    "NECROTIC_CORE_FRACTION",
    "ORGAN_ANCHORS",
    "PREDOSE_LESION_FACTOR",
    "SERIES_NAMES",
    "TISSUE_ORGAN",
    "Series",
    "interpolate_suv",
    "organ_suv",
]

Series = Literal["tracer-only", "predose"]
SERIES_NAMES: tuple[Series, Series] = ("tracer-only", "predose")
"""Series names: first injection without, second with a predose of unlabelled antibody."""

ANCHOR_HOURS = (1.0, 24.0, 72.0, 120.0, 168.0)
"""Hours after injection of the anchor values."""

ORGAN_ANCHORS: Mapping[str, Mapping[str, tuple[float, ...]]] = {
    "tracer-only": {
        "blood_pool": (7.2, 4.0, 2.3, 1.6, 1.2),
        "liver": (6.7, 6.6, 6.4, 6.3, 6.1),
        "spleen": (15.1, 18.0, 20.0, 18.5, 16.5),
        "kidney": (3.0, 2.8, 2.5, 2.2, 2.0),
        "lung": (1.3, 0.95, 0.7, 0.55, 0.45),
        "bone_marrow": (2.3, 2.3, 2.5, 2.2, 2.0),
        "brain": (0.35, 0.25, 0.18, 0.14, 0.12),
        "soft_tissue": (0.45, 0.6, 0.62, 0.58, 0.52),
        "fat": (0.2, 0.25, 0.25, 0.22, 0.2),
        "bone": (0.35, 0.4, 0.45, 0.45, 0.42),
        "myocardium": (1.8, 1.5, 1.2, 1.0, 0.9),
    },
    "predose": {
        "blood_pool": (7.4, 6.2, 4.6, 3.3, 2.5),
        "liver": (5.2, 4.8, 4.4, 4.1, 3.8),
        "spleen": (6.5, 6.2, 5.6, 5.0, 4.4),
        "kidney": (3.5, 3.2, 2.9, 2.6, 2.3),
        "lung": (1.4, 1.2, 1.0, 0.85, 0.7),
        "bone_marrow": (2.1, 1.9, 1.8, 1.65, 1.5),
        "brain": (0.38, 0.32, 0.26, 0.21, 0.17),
        "soft_tissue": (0.45, 0.65, 0.7, 0.66, 0.6),
        "fat": (0.2, 0.27, 0.28, 0.26, 0.24),
        "bone": (0.35, 0.4, 0.42, 0.4, 0.38),
        "myocardium": (1.8, 1.6, 1.4, 1.2, 1.0),
    },
}
"""SUVmean at :data:`ANCHOR_HOURS` per series and tissue (reference patient)."""

TISSUE_ORGAN: Mapping[Tissue, str] = {
    Tissue.SOFT_TISSUE: "soft_tissue",
    Tissue.FAT: "fat",
    Tissue.LUNG: "lung",
    Tissue.LIVER: "liver",
    Tissue.SPLEEN: "spleen",
    Tissue.KIDNEY: "kidney",
    Tissue.BLOOD_POOL: "blood_pool",
    Tissue.BONE: "bone",
    Tissue.BONE_MARROW: "bone_marrow",
    Tissue.BRAIN: "brain",
    Tissue.MYOCARDIUM: "myocardium",
}
"""Which anchor row each tissue class takes (air has no activity)."""

LESION_RELATIVE_ANCHORS: tuple[float, ...] = (0.45, 0.8, 1.03, 1.0, 0.95)
"""Tumour SUV at :data:`ANCHOR_HOURS` relative to its value at 120 h (slow antibody uptake,
a plateau from 72 h: the study's mean lesion SUVpeak was 4.1 at 72 h and 3.9 at 120 h)."""

PREDOSE_LESION_FACTOR = 0.85
"""Tumour uptake after a predose relative to tracer-only (receptor blocking)."""

NECROTIC_CORE_FRACTION = 0.3
"""SUV of a necrotic core relative to the viable rim of the same lesion."""


def interpolate_suv(
    hours: float | np.ndarray,
    anchors: tuple[float, ...],
    anchor_hours: tuple[float, ...] = ANCHOR_HOURS,
) -> float | np.ndarray:
    """SUV at ``hours`` from anchor values: piecewise-linear in log SUV, clamped at the ends.

    Parameters
    ----------
    hours : float or array, hours
        Time after injection.
    anchors : tuple of float
        Positive SUVs at ``anchor_hours``.
    anchor_hours : tuple of float, hours
        Increasing anchor times.

    Examples
    --------
    >>> interpolate_suv(120.0, ORGAN_ANCHORS["tracer-only"]["blood_pool"])
    1.6
    >>> round(interpolate_suv(96.0, (2.0, 8.0), (72.0, 120.0)), 6)  # geometric mean halfway
    4.0
    """
    values = np.interp(hours, anchor_hours, np.log(np.asarray(anchors, dtype=np.float64)))
    out = np.exp(values)
    if np.ndim(out) == 0:
        return round(float(out), 12)
    return out


def organ_suv(series: Series, organ: str, hours: float, scale: float = 1.0) -> float:
    """SUVmean of a tissue at ``hours`` after injection in ``series``.

    Parameters
    ----------
    series : {"tracer-only", "predose"}
    organ : str
        A key of :data:`ORGAN_ANCHORS` rows (``blood_pool``, ``liver``, ...).
    hours : float, hours
    scale : float
        Per-patient multiplicative variability (1 for the reference patient).

    Raises
    ------
    KeyError
        Unknown series or organ.

    Examples
    --------
    >>> organ_suv("tracer-only", "spleen", 72.0)
    20.0
    """
    return float(interpolate_suv(hours, ORGAN_ANCHORS[series][organ])) * scale
