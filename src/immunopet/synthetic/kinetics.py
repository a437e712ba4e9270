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

Compartment model (the kinetic truth)
-------------------------------------
The anchor curves are what the images show. What they mean kinetically is stated by a
compartment model fitted to them (``scripts/fit_synthetic_kinetics.py``): per series a
bi-exponential whole-blood curve :math:`C_b(t)` (:data:`BLOOD_BIEXPONENTIAL`), plasma
:math:`C_p = C_b / (1 - \\mathrm{Hct})` (the antibody stays in plasma), and per organ and for the
tumour shape an irreversible two-tissue model with a blood volume fraction :math:`V_B`
(:data:`COMPARTMENTS`):

.. math::

    \\frac{dC_1}{dt} = K_1 C_p - (k_2 + k_3) C_1, \\quad \\frac{dC_2}{dt} = k_3 C_1, \\quad
    C_T = V_B C_b + C_1 + C_2

with :math:`C_1` the reversible (free and non-specifically bound) and :math:`C_2` the
irreversibly trapped (target-mediated uptake and catabolism) antibody. Its Patlak slope is
:math:`K_i = K_1 k_3 / (k_2 + k_3)` and its late Patlak intercept
:math:`V_T = V_B (1 - \\mathrm{Hct}) + K_1 k_2 / ((k_2 + k_3)(k_2 + k_3 - a_s))` (:math:`a_s` the
slow blood rate). The fit keeps the reversible exchange within hours (:math:`k_2 \\geq 0.2`/h,
the regime in which a Patlak plot is linear). With the predose, Ki falls most in the spleen
(19.5 -> 1.7 µL·g⁻¹·h⁻¹, target-mediated trapping blocked), then liver, marrow and tumour; the
predose values (kidney 0.9, liver 1.7, lung 0.2, spleen 1.7) are near the non-specific
baselines Jauw et al. report (0.7, 1.1, 0.2, 0.5). The predose fits follow the anchors within
7 %; the tracer-only ones within 15 % (an irreversible model cannot fall after the spleen's
72 h peak or follow the marrow's late plateau exactly). The images keep the anchors, so
:func:`true_kinetics` is the kinetic summary of the anchor curves, not their generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from immunopet.synthetic.anatomy import Tissue
from immunopet.synthetic.clinical import HEMATOCRIT

__all__ = [
    "ANCHOR_HOURS",
    "BLOOD_BIEXPONENTIAL",
    "COMPARTMENTS",
    "KINETIC_ORGANS",
    "LESION_RELATIVE_ANCHORS",
    "NECROTIC_CORE_FRACTION",
    "ORGAN_ANCHORS",
    "PREDOSE_LESION_FACTOR",
    "SERIES_NAMES",
    "TISSUE_ORGAN",
    "BiExponential",
    "Compartments",
    "Series",
    "interpolate_suv",
    "organ_suv",
    "true_kinetics",
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


# ---------------------------------------------------------------------------- compartments
@dataclass(frozen=True)
class BiExponential:
    """Whole-blood SUV (decay-corrected to injection) as a sum of two exponentials.

    .. math:: C_b(t) = A_1 e^{-a_1 t} + A_2 e^{-a_2 t}

    Attributes
    ----------
    amplitude_fast, amplitude_slow : float, SUV
    rate_fast_per_h, rate_slow_per_h : float, 1/h
    """

    amplitude_fast: float
    rate_fast_per_h: float
    amplitude_slow: float
    rate_slow_per_h: float

    @property
    def terms(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((A1, a1), (A2, a2))``."""
        return (
            (self.amplitude_fast, self.rate_fast_per_h),
            (self.amplitude_slow, self.rate_slow_per_h),
        )

    def value(self, hours: float | np.ndarray) -> np.ndarray:
        """Whole-blood SUV at ``hours`` after injection."""
        t = np.asarray(hours, dtype=np.float64)
        return sum((a * np.exp(-r * t) for a, r in self.terms), np.zeros_like(t))


@dataclass(frozen=True)
class Compartments:
    """Irreversible two-tissue compartment model with a blood volume fraction.

    Attributes
    ----------
    k1_per_h : float, mL plasma / (mL tissue h)
    k2_per_h, k3_per_h : float, 1/h
    blood_fraction : float, mL blood / mL tissue
    """

    k1_per_h: float
    k2_per_h: float
    k3_per_h: float
    blood_fraction: float

    @property
    def ki_per_h(self) -> float:
        """Net influx constant :math:`K_1 k_3 / (k_2 + k_3)`, mL plasma / (mL tissue h)."""
        return self.k1_per_h * self.k3_per_h / (self.k2_per_h + self.k3_per_h)

    def patlak_intercept(self, blood: BiExponential) -> float:
        """Late Patlak intercept (mL plasma / mL tissue) for the blood curve ``blood``.

        :math:`V_B (1 - \\mathrm{Hct}) + K_1 k_2 / (b (b - a_s))`, :math:`b = k_2 + k_3`,
        :math:`a_s` the slow blood rate: the intercept of the Patlak plot once the fast blood
        component has gone (it tends to :math:`K_1 k_2 / b^2` for a constant input).
        """
        b = self.k2_per_h + self.k3_per_h
        return self.blood_fraction * (1.0 - HEMATOCRIT) + self.k1_per_h * self.k2_per_h / (
            b * (b - blood.rate_slow_per_h)
        )

    def tissue_suv(self, hours: float | np.ndarray, blood: BiExponential) -> np.ndarray:
        """Tissue SUV at ``hours`` for the whole-blood curve ``blood`` (analytic convolution).

        For each blood term :math:`A e^{-a t}` (plasma :math:`A_p = A / (1 - \\mathrm{Hct})`):

        .. math::

            C_1 = K_1 A_p \\frac{e^{-a t} - e^{-b t}}{b - a}, \\quad
            C_2 = \\frac{k_3 K_1 A_p}{b - a}
                  \\Big(\\frac{1 - e^{-a t}}{a} - \\frac{1 - e^{-b t}}{b}\\Big)
        """
        t = np.asarray(hours, dtype=np.float64)
        b = self.k2_per_h + self.k3_per_h
        out = self.blood_fraction * blood.value(t)
        for amplitude, rate in blood.terms:
            plasma = amplitude / (1.0 - HEMATOCRIT)
            free = self.k1_per_h * plasma * (np.exp(-rate * t) - np.exp(-b * t)) / (b - rate)
            trapped = (
                self.k3_per_h
                * self.k1_per_h
                * plasma
                / (b - rate)
                * (-np.expm1(-rate * t) / rate + np.expm1(-b * t) / b)
            )
            out = out + free + trapped
        return out


BLOOD_BIEXPONENTIAL: Mapping[Series, BiExponential] = {
    "tracer-only": BiExponential(
        amplitude_fast=3.922, rate_fast_per_h=0.05674, amplitude_slow=3.51, rate_slow_per_h=0.006433
    ),
    "predose": BiExponential(
        amplitude_fast=0.2764,
        rate_fast_per_h=0.1067,
        amplitude_slow=7.197,
        rate_slow_per_h=0.006347,
    ),
}
"""Whole-blood SUV per series fitted to the ``blood_pool`` anchors (reference patient)."""

COMPARTMENTS: Mapping[Series, Mapping[str, Compartments]] = {
    "tracer-only": {
        "liver": Compartments(
            k1_per_h=0.7019, k2_per_h=1.02, k3_per_h=0.009856, blood_fraction=0.1875
        ),
        "spleen": Compartments(
            k1_per_h=1.803, k2_per_h=0.7988, k3_per_h=0.00875, blood_fraction=3.218e-13
        ),
        "kidney": Compartments(
            k1_per_h=0.3674, k2_per_h=1.025, k3_per_h=0.005356, blood_fraction=0.02875
        ),
        "lung": Compartments(
            k1_per_h=0.09177, k2_per_h=1.027, k3_per_h=0.00299, blood_fraction=0.08399
        ),
        "bone_marrow": Compartments(
            k1_per_h=0.3009, k2_per_h=1.012, k3_per_h=0.007648, blood_fraction=1.494e-12
        ),
        "brain": Compartments(
            k1_per_h=0.02071, k2_per_h=1.027, k3_per_h=0.003496, blood_fraction=0.02681
        ),
        "soft_tissue": Compartments(
            k1_per_h=0.05074, k2_per_h=0.6679, k3_per_h=0.007847, blood_fraction=1.565e-17
        ),
        "fat": Compartments(
            k1_per_h=0.02284, k2_per_h=0.6959, k3_per_h=0.006528, blood_fraction=2.628e-21
        ),
        "bone": Compartments(
            k1_per_h=0.04492, k2_per_h=0.9689, k3_per_h=0.01124, blood_fraction=3.209e-18
        ),
        "myocardium": Compartments(
            k1_per_h=0.172, k2_per_h=1.026, k3_per_h=0.004305, blood_fraction=0.06858
        ),
        "tumour": Compartments(
            k1_per_h=0.04791, k2_per_h=0.5421, k3_per_h=0.01446, blood_fraction=1.033e-19
        ),
    },
    "predose": {
        "liver": Compartments(
            k1_per_h=0.4575, k2_per_h=3.703, k3_per_h=0.01362, blood_fraction=0.5
        ),
        "spleen": Compartments(
            k1_per_h=0.5034, k2_per_h=1.894, k3_per_h=0.006528, blood_fraction=0.5
        ),
        "kidney": Compartments(
            k1_per_h=0.02669, k2_per_h=1.066, k3_per_h=0.03798, blood_fraction=0.4453
        ),
        "lung": Compartments(
            k1_per_h=1.237, k2_per_h=10.97, k3_per_h=0.001748, blood_fraction=1.033e-06
        ),
        "bone_marrow": Compartments(
            k1_per_h=0.002278, k2_per_h=0.8837, k3_per_h=0.3652, blood_fraction=0.2811
        ),
        "brain": Compartments(
            k1_per_h=0.3283, k2_per_h=10.74, k3_per_h=0.001189, blood_fraction=1.076e-08
        ),
        "soft_tissue": Compartments(
            k1_per_h=0.05724, k2_per_h=0.992, k3_per_h=0.005503, blood_fraction=1.915e-11
        ),
        "fat": Compartments(
            k1_per_h=0.02578, k2_per_h=1.097, k3_per_h=0.005143, blood_fraction=0.0008042
        ),
        "bone": Compartments(
            k1_per_h=0.02128, k2_per_h=1.093, k3_per_h=0.01033, blood_fraction=0.0256
        ),
        "myocardium": Compartments(
            k1_per_h=0.01493, k2_per_h=1.078, k3_per_h=0.02407, blood_fraction=0.2279
        ),
        "tumour": Compartments(
            k1_per_h=0.04425, k2_per_h=0.7709, k3_per_h=0.00897, blood_fraction=1.804e-12
        ),
    },
}
"""Compartment parameters per series and organ (``tumour``: the lesion shape
:data:`LESION_RELATIVE_ANCHORS`, times :data:`PREDOSE_LESION_FACTOR` after a predose)."""

KINETIC_ORGANS = ("liver", "spleen", "kidney", "lung", "bone_marrow", "brain")
"""Organs with a reference VOI whose true Ki and VT the trial writes (not the blood pool,
which is the input)."""

TISSUE_DENSITY_G_PER_ML = 1.0
"""Tissue density used to state the truth per gram."""


def true_kinetics(
    series: Series, organ: str, *, tissue_scale: float = 1.0, blood_scale: float = 1.0
) -> tuple[float, float]:
    """True Patlak Ki (µL·g⁻¹·h⁻¹) and VT (mL/g) of an organ or the tumour shape.

    Parameters
    ----------
    series : {"tracer-only", "predose"}
    organ : str
        A key of :data:`COMPARTMENTS` (``"liver"`` ... or ``"tumour"``).
    tissue_scale, blood_scale : float
        Factors by which this patient's tissue and blood curves differ from the reference:
        the model is linear in its input, so both constants scale by ``tissue / blood``.

    Returns
    -------
    (ki_ul_per_g_per_h, vt_ml_per_g) : tuple of float
        At the density :data:`TISSUE_DENSITY_G_PER_ML`.

    Raises
    ------
    KeyError
        Unknown series or organ.
    """
    model = COMPARTMENTS[series][organ]
    ratio = tissue_scale / blood_scale
    ki = model.ki_per_h * 1000.0 * ratio / TISSUE_DENSITY_G_PER_ML
    vt = model.patlak_intercept(BLOOD_BIEXPONENTIAL[series]) * ratio / TISSUE_DENSITY_G_PER_ML
    if not (math.isfinite(ki) and math.isfinite(vt)):
        raise ValueError(f"non-finite kinetics for {series}/{organ}")
    return ki, vt
