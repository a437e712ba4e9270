"""Harrell's C with its infinitesimal-jackknife variance, and a paired comparison of two Cs.

The variance is the infinitesimal jackknife (IJ) of Therneau's R ``survival::concordance``:
give each subject a case weight :math:`w_i` (pair weight :math:`w_i w_j`), and let

.. math::

    C = N / D,\\quad N = \\sum_{(i,j)\\ \\mathrm{usable}} w_i w_j s_{ij},\\quad
    D = \\sum_{(i,j)\\ \\mathrm{usable}} w_i w_j,

with :math:`s_{ij}` = 1 concordant, 1/2 tied in the marker, 0 discordant. The influence of
subject *i* at :math:`w = 1` is :math:`U_i = (N_i - C D_i)/D`, :math:`N_i`, :math:`D_i` the
sums over the usable pairs containing *i*; :math:`\\operatorname{Var}(C) = \\sum_i U_i^2` and
:math:`\\operatorname{Cov}(C_1, C_2) = \\sum_i U_{1i} U_{2i}` for two markers on the same
subjects. The paired comparison is the z-test of :math:`C_1 - C_2` with
:math:`\\operatorname{Var}(C_1) + \\operatorname{Var}(C_2) - 2\\operatorname{Cov}` (what
``survival::concordance(..., influence = 1)`` gives through its ``dfbeta``). It is
deterministic: no bootstrap, no seed.

A pair is usable when the shorter time is an event; pairs with equal times are not used
(as in R ``survival`` with the default ``timewt = "n"`` for untied data, and as
``lifelines.utils.concordance_index`` does for tied event times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from immunopet.errors import InputError

__all__ = ["ConcordanceComparison", "ConcordanceEstimate", "compare_concordance", "concordance"]


@dataclass(frozen=True)
class ConcordanceEstimate:
    """Harrell's C of one marker (higher marker = longer survival).

    Attributes
    ----------
    c : float
        Harrell's C; NaN when no pair is usable.
    variance : float
        Infinitesimal-jackknife variance.
    lower, upper : float
        Wald interval of logit(C) with the delta-method standard error, transformed back;
        when C is 0 or 1 or the variance is zero, the bounds are the point itself and
        :attr:`separation` says why.
    n : int
        Subjects.
    n_pairs : int
        Usable pairs.
    separation : str
        ``"perfect"`` (C = 1), ``"inverted"`` (C = 0) or ``""``.
    """

    c: float
    variance: float
    lower: float
    upper: float
    n: int
    n_pairs: int
    separation: str = ""


@dataclass(frozen=True)
class ConcordanceComparison:
    """Paired comparison of two Harrell's C on the same subjects (first minus second).

    Attributes
    ----------
    c_1, c_2, difference, variance, z, p_value : float
        As in :class:`~immunopet.stats.roc.DeLongComparison`.
    n : int
        Subjects.
    """

    c_1: float
    c_2: float
    difference: float
    variance: float
    z: float
    p_value: float
    n: int


def _check(
    markers: npt.NDArray[np.float64], durations: npt.ArrayLike, events: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events)
    if t.shape[0] != markers.shape[-1] or e.shape[0] != markers.shape[-1]:
        raise InputError(
            "markers, durations and events differ in length",
            tag="durations",
            value=f"{markers.shape[-1]}, {t.shape[0]}, {e.shape[0]}",
            expected="one value per subject each",
        )
    if not (np.isfinite(markers).all() and np.isfinite(t).all()):
        raise InputError("values must be finite", tag="durations", expected="numbers")
    if e.dtype != bool and not np.isin(e, [0, 1]).all():
        raise InputError("event indicator must be 0 or 1", tag="events", expected="0 or 1")
    return t, e.astype(bool)


def _influence(
    markers: npt.NDArray[np.float64], t: npt.NDArray[np.float64], e: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """C per marker [k] and influence [k, n]; NaN when no pair is usable."""
    # usable[i, j]: i had the event strictly before j's time (i the shorter-lived)
    usable = e[:, None] & (t[:, None] < t[None, :])
    # concordant when the longer-lived (j) has the higher marker
    score = (markers[:, None, :] > markers[:, :, None]).astype(float) + 0.5 * (
        markers[:, None, :] == markers[:, :, None]
    )
    score = score * usable
    n_pairs = int(usable.sum())
    if n_pairs == 0:
        k, n = markers.shape
        return np.full(k, math.nan), np.full((k, n), math.nan), 0
    d = float(n_pairs)
    c = score.sum(axis=(1, 2)) / d
    pairs_i = usable.sum(axis=1) + usable.sum(axis=0)  # pairs containing subject i
    score_i = score.sum(axis=2) + score.sum(axis=1)
    influence = (score_i - c[:, None] * pairs_i[None, :]) / d
    return c, influence, n_pairs


def _logit_interval(c: float, variance: float, alpha: float) -> tuple[float, float]:
    if not (0.0 < c < 1.0) or variance <= 0.0:
        return c, c
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    logit = math.log(c / (1.0 - c))
    se = math.sqrt(variance) / (c * (1.0 - c))
    return 1.0 / (1.0 + math.exp(-(logit - z * se))), 1.0 / (1.0 + math.exp(-(logit + z * se)))


def concordance(
    marker: npt.ArrayLike,
    durations: npt.ArrayLike,
    events: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> ConcordanceEstimate:
    """Harrell's C of ``marker`` for longer survival, with its IJ variance and interval.

    Parameters
    ----------
    marker : sequence of float
        Marker values.
    durations : sequence of float
        Time to event or censoring (any unit).
    events : sequence of bool or {0, 1}
        1 = event.
    alpha : float
        1 - confidence level.

    Returns
    -------
    ConcordanceEstimate

    Raises
    ------
    InputError
        If the lengths differ, a value is not finite or an event is not 0/1.

    Examples
    --------
    >>> est = concordance([1, 3, 2, 4], [1, 2, 3, 4], [1, 1, 0, 1])
    >>> est.c, est.n_pairs
    (0.8, 5)
    """
    x = np.atleast_2d(np.asarray(marker, dtype=float))
    t, e = _check(x, durations, events)
    c, influence, n_pairs = _influence(x, t, e)
    value = float(c[0])
    variance = float(np.sum(influence[0] ** 2)) if n_pairs else math.nan
    lower, upper = _logit_interval(value, variance, alpha) if n_pairs else (math.nan, math.nan)
    separation = "perfect" if value == 1.0 else "inverted" if value == 0.0 else ""
    return ConcordanceEstimate(value, variance, lower, upper, x.shape[1], n_pairs, separation)


def compare_concordance(
    marker_1: npt.ArrayLike,
    marker_2: npt.ArrayLike,
    durations: npt.ArrayLike,
    events: npt.ArrayLike,
) -> ConcordanceComparison:
    """Paired z-test of two Harrell's C on the same subjects (IJ covariance).

    Parameters
    ----------
    marker_1, marker_2 : sequence of float
        The two markers.
    durations, events : sequence
        As in :func:`concordance`.

    Returns
    -------
    ConcordanceComparison
        p = 1 when both Cs are equal with zero variance; NaN when no pair is usable or the
        Cs differ with zero variance.

    Examples
    --------
    >>> t = compare_concordance([1, 2, 3, 4], [4, 3, 2, 1], [1, 2, 3, 4], [1, 1, 1, 1])
    >>> t.c_1, t.c_2
    (1.0, 0.0)
    """
    x1 = np.asarray(marker_1, dtype=float)
    x2 = np.asarray(marker_2, dtype=float)
    if x1.shape != x2.shape:
        raise InputError(
            "the two markers differ in length",
            tag="marker_2",
            value=x2.shape[0] if x2.ndim else 0,
            expected=f"{x1.shape[0] if x1.ndim else 0} values",
        )
    x = np.vstack([x1, x2])
    t, e = _check(x, durations, events)
    c, influence, n_pairs = _influence(x, t, e)
    if n_pairs == 0:
        return ConcordanceComparison(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    diff = float(c[0] - c[1])
    variance = float(np.sum((influence[0] - influence[1]) ** 2))
    if variance > 1e-15:
        z = diff / math.sqrt(variance)
        p = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z = math.nan
        p = 1.0 if abs(diff) < 1e-12 else math.nan
    return ConcordanceComparison(float(c[0]), float(c[1]), diff, variance, z, p, x.shape[1])
