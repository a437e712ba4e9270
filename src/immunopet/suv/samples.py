"""SUV and %IA/L of counted samples (blood, plasma): the same arithmetic as for images.

Used by :mod:`immunopet.analysis.blood`, so that no decay or SUV formula lives outside
:mod:`immunopet.suv`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from immunopet.suv.decay import decay_factor

__all__ = ["decay_correct_back", "percent_injected_activity_per_litre", "suv_of_concentration"]


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
