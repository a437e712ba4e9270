"""SUV, %IA/L and fractions of the injected activity of counted samples and VOIs.

Used by :mod:`immunopet.analysis.blood`, :mod:`~immunopet.analysis.kinetics` and
:mod:`~immunopet.analysis.dosimetry`, so that no decay or SUV formula lives outside
:mod:`immunopet.suv`. Blood samples are reported as % injected activity per litre (%IA/L),
dosimetry wants the fraction of the injected activity, PET reports SUVbw: all three are
activity concentrations divided by the injected activity (decay-corrected to injection), so
they differ by the body weight and fixed unit factors only:

.. math::

    \\mathrm{SUV_{bw}} = \\frac{C\\,[\\mathrm{Bq/mL}]\\; W\\,[\\mathrm{g}]}{A\\,[\\mathrm{Bq}]},
    \\qquad
    \\%\\mathrm{IA/L} = \\frac{C \\cdot 1000}{A} \\cdot 100
    \\quad\\Rightarrow\\quad
    \\mathrm{SUV_{bw}} = \\%\\mathrm{IA/L} \\cdot \\frac{W\\,[\\mathrm{kg}]}{100}
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from immunopet.suv.decay import decay_factor

__all__ = [
    "decay_correct_back",
    "percent_ia_per_l_to_suv_bw",
    "percent_injected_activity_per_litre",
    "suv_bw_to_fraction_ia_per_ml",
    "suv_of_concentration",
]


def decay_correct_back(
    activity: npt.ArrayLike, elapsed_s: npt.ArrayLike, half_life_s: float
) -> np.ndarray:
    """Activity ``elapsed_s`` seconds earlier: :math:`A \\, 2^{t/T_{1/2}}`.

    Examples
    --------
    >>> decay_correct_back([100.0], [78.41 * 3600], 78.41 * 3600).tolist()
    [200.0]
    """
    back = np.asarray(decay_factor(-np.asarray(elapsed_s, dtype=np.float64), half_life_s))
    return np.asarray(activity, dtype=np.float64) * back


def suv_of_concentration(
    bq_per_ml_at_injection: npt.ArrayLike,
    injected_activity_bq: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
) -> np.ndarray:
    """SUVbw of a concentration decay-corrected to injection: :math:`C\\,W_g/A`, g/mL.

    Examples
    --------
    >>> suv_of_concentration([200.0], [37e6], [74.0]).tolist()
    [0.4]
    """
    concentration = np.asarray(bq_per_ml_at_injection, dtype=np.float64)
    weight_g = np.asarray(weight_kg, dtype=np.float64) * 1000.0
    return concentration * weight_g / np.asarray(injected_activity_bq, dtype=np.float64)


def percent_injected_activity_per_litre(
    bq_per_ml_at_injection: npt.ArrayLike, injected_activity_bq: npt.ArrayLike
) -> np.ndarray:
    """%IA/L of a concentration decay-corrected to injection: :math:`100\\,C\\cdot1000/A`.

    Examples
    --------
    >>> percent_injected_activity_per_litre([370.0], [37e6]).tolist()  # 370 kBq/L of 37 MBq
    [1.0]
    """
    concentration = np.asarray(bq_per_ml_at_injection, dtype=np.float64)
    return concentration * 1000.0 / np.asarray(injected_activity_bq, dtype=np.float64) * 100.0


def _weight(weight_kg: float) -> float:
    if not (isinstance(weight_kg, int | float) and math.isfinite(weight_kg) and weight_kg > 0):
        raise ValueError(f"weight_kg must be a positive number, got {weight_kg!r}")
    return float(weight_kg)


def percent_ia_per_l_to_suv_bw(
    percent_ia_per_l: float | npt.ArrayLike, weight_kg: float
) -> float | np.ndarray:
    """Body-weight SUV of a concentration given as % injected activity per litre.

    Parameters
    ----------
    percent_ia_per_l : float or array, %IA/L
        Decay-corrected to injection (as blood samples are reported).
    weight_kg : float, kg
        Body weight at the injection.

    Returns
    -------
    float or array, SUVbw (g/mL)

    Examples
    --------
    >>> percent_ia_per_l_to_suv_bw(10.0, 60.0)  # 1e-4 of the IA per mL x 60000 g
    6.0
    """
    weight = _weight(weight_kg)
    if np.isscalar(percent_ia_per_l):
        return float(percent_ia_per_l) * weight / 100.0  # type: ignore[arg-type]
    return np.asarray(percent_ia_per_l, dtype=np.float64) * weight / 100.0


def suv_bw_to_fraction_ia_per_ml(
    suv_bw: float | npt.ArrayLike, weight_kg: float
) -> float | np.ndarray:
    """Fraction of the injected activity per mL (decay-corrected) of a body-weight SUV.

    Parameters
    ----------
    suv_bw : float or array, g/mL
    weight_kg : float, kg

    Returns
    -------
    float or array, 1/mL
        :math:`\\mathrm{SUV} / W[\\mathrm{g}]`.

    Examples
    --------
    >>> suv_bw_to_fraction_ia_per_ml(7.0, 70.0)
    0.0001
    """
    weight = _weight(weight_kg)
    if np.isscalar(suv_bw):
        return float(suv_bw) / (weight * 1000.0)  # type: ignore[arg-type]
    return np.asarray(suv_bw, dtype=np.float64) / (weight * 1000.0)
