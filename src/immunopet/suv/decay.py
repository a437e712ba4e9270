"""Radioactive decay and time intervals.

Intervals are taken between whole date-times with ``timedelta.total_seconds()``: a 89Zr scan
five days after injection is 120 h after it, never the 0 h that a time-of-day calculator (or
``timedelta.seconds``, which drops days) would give.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import numpy.typing as npt

__all__ = ["decay_factor", "elapsed_seconds", "frame_decay_correction"]


def elapsed_seconds(start: datetime, end: datetime) -> float:
    """Seconds from ``start`` to ``end`` (negative when ``end`` is earlier).

    Both are timezone-naive datetimes of the same clock.

    Examples
    --------
    >>> elapsed_seconds(datetime(2024, 3, 1, 9, 0), datetime(2024, 3, 6, 9, 0)) / 3600
    120.0
    """
    return (end - start).total_seconds()


def decay_factor(elapsed_s: float | npt.ArrayLike, half_life_s: float) -> float | np.ndarray:
    """Fraction of activity left after ``elapsed_s`` seconds.

    .. math:: f = 2^{-t / T_{1/2}}

    Parameters
    ----------
    elapsed_s : float or array, seconds
        Time since the reference; negative values give factors above 1.
    half_life_s : float, seconds
        Physical half-life.

    Examples
    --------
    >>> round(decay_factor(120 * 3600, 78.41 * 3600), 6)
    0.346177
    """
    if not half_life_s > 0:
        raise ValueError(f"half_life_s must be positive, got {half_life_s!r}")
    if np.isscalar(elapsed_s):
        return float(2.0 ** (-float(elapsed_s) / half_life_s))  # type: ignore[arg-type]
    return np.power(2.0, -np.asarray(elapsed_s, dtype=np.float64) / half_life_s)


def frame_decay_correction(duration_s: float, half_life_s: float) -> float:
    """Factor turning the mean activity over a frame into the activity at frame start.

    .. math:: \\frac{\\lambda D}{1 - e^{-\\lambda D}}, \\quad \\lambda = \\ln 2 / T_{1/2}

    Equals 1 for a zero-length frame. Used only for images stored without decay
    correction ((0054,1102) DecayCorrection NONE).

    Examples
    --------
    >>> round(frame_decay_correction(600, 6586.2), 6)
    1.031905
    """
    if duration_s <= 0:
        return 1.0
    x = math.log(2.0) * duration_s / half_life_s
    return x / -math.expm1(-x)
