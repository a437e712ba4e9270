"""Areas under the ROC curve with DeLong's variance, their intervals and paired comparison.

For two (or more) markers measured on the same subjects, DeLong, DeLong and Clarke-Pearson
(1988) estimate the covariance of the empirical AUCs from *placement values*: for each
positive subject the fraction of negatives it beats, and for each negative the fraction of
positives that beat it (ties count one half). The paired difference of two AUCs is then a
z-test, as ``pROC::roc.test(method = "delong", paired = TRUE)`` computes it.

Intervals. DeLong's variance is zero when a marker separates the groups perfectly (AUC 0 or
1), and a Wald interval on the AUC scale overshoots [0, 1] for small groups. This module
therefore reports

* ``"logit-delong"``: the Wald interval of logit(AUC) with the delta-method DeLong standard
  error, transformed back (stays inside (0, 1)), whenever 0 < AUC < 1 and the variance is
  positive;
* ``"newcombe-score"`` otherwise (perfect separation, zero variance, or a class of one
  subject): the score-type
  interval of Newcombe (2006, method 5), which solves
  :math:`(\\hat\\theta - \\theta)^2 = z^2 V(\\theta)` for :math:`\\theta` with the
  Hanley-McNeil variance modified by Newcombe,
  :math:`V(\\theta) = \\theta(1-\\theta)/(mn)\\,[1 + (N^*-1)((1-\\theta)/(2-\\theta) +
  \\theta/(1+\\theta))]`, :math:`N^* = (m+n)/2 - 1`. It stays meaningful at AUC = 1 (for
  3 vs 3 subjects it is about 0.58-1) and the result says that the groups separate
  perfectly.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics
1988;44:837-845.
Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 1982;143:29-36.
Newcombe RG. Confidence intervals for an effect size measure based on the Mann-Whitney
statistic. Part 2: asymptotic methods and evaluation. Stat Med 2006;25:559-573.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from immunopet.errors import InputError

__all__ = ["AucEstimate", "DeLongComparison", "auc_interval", "delong_auc", "delong_test"]


@dataclass(frozen=True)
class AucEstimate:
    """One AUC with its DeLong variance and interval.

    Attributes
    ----------
    auc : float
        P(marker of a positive > marker of a negative) + 0.5 P(tie).
    variance : float
        DeLong's variance of the AUC; NaN when a class has a single subject (no sample
        covariance), the interval is then Newcombe's.
    lower, upper : float
        Interval at the requested level (see :attr:`method`).
    method : str
        ``"logit-delong"`` or ``"newcombe-score"`` (module docstring).
    n_positive, n_negative : int
        Subjects per class.
    separation : str
        ``"perfect"`` when every positive beats every negative (AUC 1), ``"inverted"`` for
        AUC 0, otherwise ``""``.
    """

    auc: float
    variance: float
    lower: float
    upper: float
    method: str
    n_positive: int
    n_negative: int
    separation: str = ""


@dataclass(frozen=True)
class DeLongComparison:
    """DeLong's paired test of two correlated AUCs (first minus second).

    Attributes
    ----------
    auc_1, auc_2 : float
        The two AUCs.
    difference : float
        ``auc_1 - auc_2``.
    variance : float
        :math:`S_{11} + S_{22} - 2 S_{12}` of the DeLong covariance matrix.
    z : float
        ``difference / sqrt(variance)``; NaN when the variance is zero or undefined.
    p_value : float
        Two-sided normal p-value; 1 when both AUCs are equal with zero variance, NaN when
        they differ with zero variance or a class has a single subject (no test possible).
    n_positive, n_negative : int
        Subjects per class (complete pairs only).
    """

    auc_1: float
    auc_2: float
    difference: float
    variance: float
    z: float
    p_value: float
    n_positive: int
    n_negative: int


def _psi(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Kernel matrix [..., positive, negative]: 1 win, 0.5 tie, 0 loss."""
    p = pos[..., :, None]
    q = neg[..., None, :]
    return np.asarray((p > q).astype(float) + 0.5 * (p == q))


def _split(
    markers: npt.ArrayLike, positive: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.atleast_2d(np.asarray(markers, dtype=float))
    r = np.asarray(positive)
    if r.dtype != bool:
        if not np.isin(r, [0, 1]).all():
            raise InputError(
                "class labels must be 0/1 or bool", tag="positive", value=r, expected="0 or 1"
            )
        r = r.astype(bool)
    if x.shape[-1] != r.shape[0]:
        raise InputError(
            "markers and labels differ in length",
            tag="positive",
            value=r.shape[0],
            expected=f"{x.shape[-1]} labels",
        )
    if not np.isfinite(x).all():
        raise InputError("marker values must be finite", tag="markers", expected="numbers")
    return x[:, r], x[:, ~r]


def _placements(
    pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """AUCs [k], covariance [k, k] per DeLong (S10/m + S01/n), for k markers."""
    m, n = pos.shape[1], neg.shape[1]
    kernel = _psi(pos, neg)  # [k, m, n]
    v10 = kernel.mean(axis=2)  # [k, m]: fraction of negatives each positive beats
    v01 = kernel.mean(axis=1)  # [k, n]: fraction of positives beating each negative
    aucs = v10.mean(axis=1)
    k = len(aucs)
    if m < 2 or n < 2:  # a sample covariance needs two subjects per class
        return aucs, np.full((k, k), np.nan), kernel
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    cov = s10 / m + s01 / n
    return aucs, cov, kernel


def _newcombe_variance(theta: float, m: int, n: int) -> float:
    n_star = (m + n) / 2.0 - 1.0
    return (
        theta
        * (1.0 - theta)
        / (m * n)
        * (1.0 + (n_star - 1.0) * ((1.0 - theta) / (2.0 - theta) + theta / (1.0 + theta)))
    )


def _newcombe_score(auc: float, m: int, n: int, z: float) -> tuple[float, float]:
    """The interval {theta : (auc - theta)^2 <= z^2 V(theta)} (its end points by root finding)."""

    def f(theta: float) -> float:
        return (auc - theta) ** 2 - z * z * _newcombe_variance(theta, m, n)

    grid = np.linspace(0.0, 1.0, 4001)
    inside = np.array([f(float(g)) < 0.0 for g in grid])
    if not inside.any():
        return auc, auc
    first, last = int(np.argmax(inside)), int(len(grid) - 1 - np.argmax(inside[::-1]))
    lower = (
        0.0
        if first == 0
        else optimize.brentq(f, float(grid[first - 1]), float(grid[first]), xtol=1e-12)
    )
    upper = (
        1.0
        if last == len(grid) - 1
        else optimize.brentq(f, float(grid[last]), float(grid[last + 1]), xtol=1e-12)
    )
    return float(lower), float(upper)


def auc_interval(
    auc: float, variance: float, n_positive: int, n_negative: int, *, alpha: float = 0.05
) -> tuple[float, float, str]:
    """Confidence interval of one AUC (logit-DeLong, or Newcombe's score interval).

    Parameters
    ----------
    auc : float
        The empirical AUC.
    variance : float
        Its DeLong variance.
    n_positive, n_negative : int
        Subjects per class.
    alpha : float
        1 - confidence level.

    Returns
    -------
    tuple of (float, float, str)
        ``(lower, upper, method)``.

    Examples
    --------
    >>> lo, hi, method = auc_interval(1.0, 0.0, 3, 3)
    >>> method, round(lo, 3), hi
    ('newcombe-score', 0.585, 1.0)
    """
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    if 0.0 < auc < 1.0 and variance > 0.0:  # False for NaN (a class of one subject)
        logit = math.log(auc / (1.0 - auc))
        se = math.sqrt(variance) / (auc * (1.0 - auc))
        lo, hi = logit - z * se, logit + z * se
        return 1.0 / (1.0 + math.exp(-lo)), 1.0 / (1.0 + math.exp(-hi)), "logit-delong"
    lower, upper = _newcombe_score(auc, n_positive, n_negative, z)
    return lower, upper, "newcombe-score"


def delong_auc(
    marker: npt.ArrayLike, positive: npt.ArrayLike, *, alpha: float = 0.05
) -> AucEstimate:
    """AUC of one marker with DeLong's variance and a small-sample-safe interval.

    Parameters
    ----------
    marker : sequence of float
        Marker values (higher = positive class).
    positive : sequence of bool or {0, 1}
        Class of each subject.
    alpha : float
        1 - confidence level.

    Returns
    -------
    AucEstimate

    Raises
    ------
    InputError
        If a class is empty, the lengths differ or a value is not finite.

    Examples
    --------
    >>> est = delong_auc([3, 5, 6, 1, 2, 4], [1, 1, 1, 0, 0, 0])
    >>> round(est.auc, 4), round(est.variance, 5), est.method
    (0.8889, 0.02469, 'logit-delong')
    """
    pos, neg = _split(marker, positive)
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise InputError(
            "both classes need subjects",
            tag="positive",
            value=f"{m} positive, {n} negative",
            expected="at least one of each",
        )
    aucs, cov, _ = _placements(pos, neg)
    auc, variance = float(aucs[0]), float(cov[0, 0])
    lower, upper, method = auc_interval(auc, variance, m, n, alpha=alpha)
    separation = "perfect" if auc == 1.0 else "inverted" if auc == 0.0 else ""
    return AucEstimate(auc, variance, lower, upper, method, m, n, separation)


def delong_test(
    marker_1: npt.ArrayLike, marker_2: npt.ArrayLike, positive: npt.ArrayLike
) -> DeLongComparison:
    """DeLong's paired comparison of the AUCs of two markers on the same subjects.

    Parameters
    ----------
    marker_1, marker_2 : sequence of float
        The two markers, one value per subject each (complete pairs only).
    positive : sequence of bool or {0, 1}
        Class of each subject.

    Returns
    -------
    DeLongComparison
        ``difference = auc_1 - auc_2`` with its DeLong variance and two-sided z-test.

    Raises
    ------
    InputError
        If a class is empty, lengths differ or a value is not finite.

    Notes
    -----
    .. math::

        \\operatorname{Var}(\\hat A_1 - \\hat A_2) = S_{11} + S_{22} - 2 S_{12},
        \\quad S = S_{10}/m + S_{01}/n,

    with :math:`S_{10}` (:math:`S_{01}`) the sample covariance (denominator m - 1, n - 1)
    of the positives' (negatives') placement values of the two markers. This is
    ``pROC::roc.test(r1, r2, method = "delong", paired = TRUE)``.

    Examples
    --------
    >>> t = delong_test([3, 5, 6, 1, 2, 4], [2, 6, 1, 3, 4, 5], [1, 1, 1, 0, 0, 0])
    >>> round(t.difference, 4), round(t.p_value, 3)
    (0.5556, 0.077)
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
    pos, neg = _split(np.vstack([x1, x2]), positive)
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise InputError(
            "both classes need subjects",
            tag="positive",
            value=f"{m} positive, {n} negative",
            expected="at least one of each",
        )
    aucs, cov, _ = _placements(pos, neg)
    diff = float(aucs[0] - aucs[1])
    variance = max(float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]), 0.0)
    if math.isnan(float(cov[0, 0])):
        variance = z = p = math.nan
    elif variance > 1e-15:
        z = diff / math.sqrt(variance)
        p = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z = math.nan
        p = 1.0 if abs(diff) < 1e-12 else math.nan
    return DeLongComparison(float(aucs[0]), float(aucs[1]), diff, variance, z, p, m, n)
