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

__all__ = [
    "decay_factor",
    "decayed_integral",
    "elapsed_seconds",
    "frame_decay_correction",
    "integrate_physical_activity",
]


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


def decayed_integral(start: float, end: float, half_life: float) -> float:
    """Integral of the physical decay curve :math:`2^{-t/T_{1/2}}` from ``start`` to ``end``.

    Times and half-life in the same unit (the result is in that unit). ``end`` may be
    ``math.inf`` (the whole tail after ``start``).

    .. math:: \\int_{a}^{b} 2^{-t/T} dt = \\frac{T}{\\ln 2}\\left(2^{-a/T} - 2^{-b/T}\\right)

    Examples
    --------
    >>> round(decayed_integral(0.0, math.inf, 78.41), 4)  # the mean life, 78.41 / ln 2
    113.1217
    >>> round(decayed_integral(78.41, math.inf, 78.41), 4)  # half of it after one half-life
    56.5609
    """
    if not half_life > 0:
        raise ValueError(f"half_life must be positive, got {half_life!r}")
    mean_life = half_life / math.log(2.0)
    tail_end = 0.0 if math.isinf(end) else 2.0 ** (-end / half_life)
    return mean_life * (2.0 ** (-start / half_life) - tail_end)


def integrate_physical_activity(
    hours: npt.ArrayLike, decay_corrected: npt.ArrayLike, half_life_h: float
) -> tuple[float, float]:
    """Time integral of the physical activity of samples given decay-corrected to injection.

    From injection to the first sample the decay-corrected value is held constant (physical
    decay exact); between samples trapezoids of the physical values; after the last sample
    physical decay only (no biological clearance).

    Parameters
    ----------
    hours : array, hours after injection (at least one, any order)
    decay_corrected : array, any unit U
        Values decay-corrected to injection at ``hours``.
    half_life_h : float, hours

    Returns
    -------
    (integral, tail) : (float, float), U x h
        The whole integral and the part after the last sample.

    Examples
    --------
    One sample at one half-life: before and after it the same integral, T / (2 ln 2) each.

    >>> total, tail = integrate_physical_activity([78.41], [1.0], 78.41)
    >>> round(total / 78.41, 6), round(tail / total, 6)
    (1.442695, 0.5)
    """
    t = np.asarray(hours, dtype=np.float64)
    a = np.asarray(decay_corrected, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, a = t[order], a[order]
    physical = a * np.power(2.0, -t / half_life_h)
    head = float(a[0]) * decayed_integral(0.0, float(t[0]), half_life_h)
    middle = float(np.sum(np.diff(t) * (physical[1:] + physical[:-1]) / 2.0))
    tail = float(a[-1]) * decayed_integral(float(t[-1]), math.inf, half_life_h)
    return head + middle + tail, tail
