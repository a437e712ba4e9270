"""DeLong's AUC variance and paired test, Newcombe's interval, Harrell's C with IJ variance.

Reference values are worked by hand (fractions in the comments), from the placement-value
formulas written out in the test independently of the code, or from R ``survival``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from immunopet.errors import InputError
from immunopet.stats.concordance import compare_concordance, concordance
from immunopet.stats.roc import auc_interval, delong_auc, delong_test

# Hand case: 3 positives, 3 negatives.
# Marker A: positives 3, 5, 6; negatives 1, 2, 4.
# Marker B: positives 2, 6, 1; negatives 3, 4, 5.
A = [3, 5, 6, 1, 2, 4]
B = [2, 6, 1, 3, 4, 5]
LABELS = [1, 1, 1, 0, 0, 0]


class TestDeLongByHand:
    def test_auc_and_variance(self) -> None:
        # Placements of A. Positives: 3 beats {1, 2} of {1, 2, 4} -> 2/3; 5 -> 1; 6 -> 1.
        # Negatives: 1 beaten by 3/3 -> 1; 2 -> 1; 4 beaten by {5, 6} -> 2/3.
        # AUC = mean(2/3, 1, 1) = 8/9.
        # S10 = var(2/3, 1, 1; ddof 1): deviations -2/9, 1/9, 1/9 -> SS 6/81 -> 3/81 = 1/27.
        # S01 = 1/27 likewise. Var = S10/3 + S01/3 = 2/81.
        est = delong_auc(A, LABELS)
        assert est.auc == pytest.approx(8 / 9)
        assert est.variance == pytest.approx(2 / 81)
        assert est.method == "logit-delong"
        # logit interval: logit(8/9) = ln 8; se = sqrt(2/81) / (8/9 * 1/9) = sqrt(2) * 81 / 72
        z = stats.norm.ppf(0.975)
        se = math.sqrt(2) * 81 / 72
        lo = 1 / (1 + math.exp(-(math.log(8) - z * se)))
        hi = 1 / (1 + math.exp(-(math.log(8) + z * se)))
        assert (est.lower, est.upper) == pytest.approx((lo, hi))

    def test_paired_difference(self) -> None:
        # Placements of B. Positives: 2 beats none of {3, 4, 5} -> 0; 6 -> 1; 1 -> 0.
        # Negatives: each beaten only by 6 -> 1/3, 1/3, 1/3. AUC_B = 1/3.
        # S10: var(B) = 1/3 (dev -1/3, 2/3, -1/3); cov(A, B) = (2/27 + 2/27 - 1/27)/2 = 1/18.
        # S01: var(B) = 0, cov = 0.
        # S11 = 2/81, S22 = (1/3)/3 = 1/9, S12 = (1/18)/3 = 1/54.
        # Var(A - B) = 2/81 + 9/81 - 3/81 = 8/81; diff = 8/9 - 1/3 = 5/9.
        t = delong_test(A, B, LABELS)
        assert t.auc_1 == pytest.approx(8 / 9)
        assert t.auc_2 == pytest.approx(1 / 3)
        assert t.difference == pytest.approx(5 / 9)
        assert t.variance == pytest.approx(8 / 81)
        z = (5 / 9) / math.sqrt(8 / 81)
        assert t.z == pytest.approx(z)
        assert t.p_value == pytest.approx(2 * stats.norm.sf(z))
        # Antisymmetric.
        back = delong_test(B, A, LABELS)
        assert back.difference == pytest.approx(-5 / 9)
        assert back.p_value == pytest.approx(t.p_value)


def _delong_loops(
    x1: np.ndarray, x2: np.ndarray, y: np.ndarray
) -> tuple[float, float, float, float]:
    """DeLong 1988 written with explicit loops (independent of the module's vectorisation)."""
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    m, n = len(pos), len(neg)

    def psi(a: float, b: float) -> float:
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = [[sum(psi(x[i], x[j]) for j in neg) / n for i in pos] for x in (x1, x2)]
    v01 = [[sum(psi(x[i], x[j]) for i in pos) / m for j in neg] for x in (x1, x2)]
    a = [sum(v) / m for v in v10]

    def cov(u: list[float], w: list[float]) -> float:
        mu, mw = sum(u) / len(u), sum(w) / len(w)
        return sum((p - mu) * (q - mw) for p, q in zip(u, w, strict=True)) / (len(u) - 1)

    s = [[cov(v10[k], v10[q]) / m + cov(v01[k], v01[q]) / n for q in range(2)] for k in range(2)]
    var = s[0][0] + s[1][1] - 2 * s[0][1]
    return a[0], a[1], s[0][0], var


def test_delong_against_loops_with_ties() -> None:
    rng = np.random.default_rng(7)
    y = np.array([1] * 9 + [0] * 13)
    x1 = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounding makes ties
    x2 = np.round(rng.normal(y * 0.5, 1.0), 0)
    a1, a2, v1, var = _delong_loops(x1, x2, y)
    t = delong_test(x1, x2, y)
    assert (t.auc_1, t.auc_2, t.variance) == pytest.approx((a1, a2, var))
    assert delong_auc(x1, y).variance == pytest.approx(v1)


class TestNewcombe:
    @staticmethod
    def _v(theta: float, m: int, n: int) -> float:
        # Newcombe 2006, method 5: Hanley-McNeil variance with N* = (m + n)/2 - 1 for both
        # Q1 and Q2 terms: theta(1-theta)/(mn) * [1 + (N*-1)(1-theta)/(2-theta)
        #                                           + (N*-1) theta/(1+theta)]
        ns = (m + n) / 2 - 1
        return (
            theta
            * (1 - theta)
            / (m * n)
            * (1 + (ns - 1) * (1 - theta) / (2 - theta) + (ns - 1) * theta / (1 + theta))
        )

    def test_perfect_separation_is_not_a_point(self) -> None:
        est = delong_auc([4, 5, 6, 1, 2, 3], LABELS)
        assert est.auc == 1.0
        assert est.variance == 0.0
        assert est.separation == "perfect"
        assert est.method == "newcombe-score"
        z = stats.norm.ppf(0.975)
        lower = optimize.bisect(
            lambda t: (1 - t) ** 2 - z * z * self._v(t, 3, 3), 0.01, 0.999, xtol=1e-12
        )
        assert est.lower == pytest.approx(lower, abs=1e-9)
        assert est.upper == 1.0
        assert 0.5 < est.lower < 0.7

    def test_inverted_and_mirror(self) -> None:
        lo1, hi1, _ = auc_interval(1.0, 0.0, 4, 9)
        lo0, hi0, method = auc_interval(0.0, 0.0, 4, 9)
        assert method == "newcombe-score"
        assert (lo0, hi0) == pytest.approx((1 - hi1, 1 - lo1))
        # more subjects, narrower interval
        assert auc_interval(1.0, 0.0, 9, 9)[0] > lo1


def test_auc_errors() -> None:
    with pytest.raises(InputError, match="both classes"):
        delong_auc([1, 2], [1, 1])
    with pytest.raises(InputError, match="0/1"):
        delong_auc([1, 2], [1, 2])
    with pytest.raises(InputError, match="differ in length"):
        delong_test([1, 2, 3], [1, 2], [1, 0, 1])


# R 4.2.2, survival 3.4:
#   t  <- c(5, 8, 12, 3, 20, 15, 7, 30, 11, 25); e <- c(1, 1, 0, 1, 1, 0, 1, 0, 1, 1)
#   x1 <- c(2.1, 3.5, 4.0, 1.2, 5.5, 3.9, 2.0, 6.1, 3.0, 4.4)
#   x2 <- c(10, 40, 5, 20, 30, 60, 15, 50, 25, 35)
#   c1 <- concordance(Surv(t, e) ~ x1, influence = 1)   # 0.921052632, var 0.001286247
#   c2 <- concordance(Surv(t, e) ~ x2, influence = 1)   # 0.73684211, var 0.01633275
#   v <- c1$var + c2$var - 2 * sum(c1$dfbeta * c2$dfbeta)  # 0.0189579960252
#   2 * pnorm(-abs(c1$concordance - c2$concordance) / sqrt(v))  # 0.1809344851365
T = [5, 8, 12, 3, 20, 15, 7, 30, 11, 25]
E = [1, 1, 0, 1, 1, 0, 1, 0, 1, 1]
X1 = [2.1, 3.5, 4.0, 1.2, 5.5, 3.9, 2.0, 6.1, 3.0, 4.4]
X2 = [10, 40, 5, 20, 30, 60, 15, 50, 25, 35]


class TestConcordanceAgainstR:
    def test_single(self) -> None:
        c1 = concordance(X1, T, E)
        assert c1.c == pytest.approx(35 / 38)
        assert c1.variance == pytest.approx(0.001286247, rel=1e-6)
        c2 = concordance(X2, T, E)
        assert c2.c == pytest.approx(0.73684211, rel=1e-7)
        assert c2.variance == pytest.approx(0.01633275, rel=1e-6)
        assert c2.lower < c2.c < c2.upper

    def test_paired(self) -> None:
        t = compare_concordance(X1, X2, T, E)
        assert t.difference == pytest.approx(0.1842105263158)
        assert t.variance == pytest.approx(0.0189579960252, rel=1e-9)
        assert t.p_value == pytest.approx(0.1809344851365, rel=1e-9)


def test_concordance_against_lifelines() -> None:
    from lifelines.utils import concordance_index

    assert concordance(X1, T, E).c == pytest.approx(concordance_index(T, X1, E))


def test_concordance_edge_cases() -> None:
    none = concordance([1, 2], [1, 2], [0, 0])
    assert math.isnan(none.c) and none.n_pairs == 0
    perfect = concordance([1, 2, 3], [1, 2, 3], [1, 1, 1])
    assert perfect.separation == "perfect"
    same = compare_concordance([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 1, 1])
    assert same.p_value == 1.0
    with pytest.raises(InputError, match="0 or 1"):
        concordance([1, 2], [1, 2], [2, 0])


def test_rank_invariance_and_self_comparison() -> None:
    # AUC, its variance and C depend on ranks only: a strictly increasing transform of the
    # marker changes nothing; a marker compared with itself differs by 0 with p = 1.
    rng = np.random.default_rng(3)
    y = np.array([1] * 6 + [0] * 10)
    x = rng.normal(y * 0.8, 1.0)
    a, b = delong_auc(x, y), delong_auc(np.exp(3 * x), y)
    assert (a.auc, a.variance, a.lower, a.upper) == pytest.approx(
        (b.auc, b.variance, b.lower, b.upper)
    )
    same = delong_test(x, np.exp(x), y)
    assert same.difference == 0.0 and same.p_value == 1.0
    t = rng.exponential(100.0, 16)
    e = rng.integers(0, 2, 16)
    assert concordance(x, t, e).variance == pytest.approx(concordance(np.exp(x), t, e).variance)
    # one responder among four (the small tumour-type groups): a finite, non-point interval
    small = delong_auc([5.0, 1.0, 2.0, 3.0], [1, 0, 0, 0])
    assert small.separation == "perfect" and 0.0 < small.lower < 1.0 == small.upper


def test_single_subject_class_has_no_delong_variance() -> None:
    # One responder: S10 (covariance over positives) needs two; no variance, no test, and
    # the interval falls back to Newcombe's.
    est = delong_auc([2.0, 1.0, 3.0, 0.5], [1, 0, 0, 0])
    assert est.auc == pytest.approx(2 / 3)
    assert math.isnan(est.variance)
    assert est.method == "newcombe-score" and 0.0 < est.lower < 2 / 3 < est.upper < 1.0
    t = delong_test([2.0, 1.0, 3.0, 0.5], [1.0, 2.0, 0.0, 3.0], [1, 0, 0, 0])
    assert math.isnan(t.p_value) and math.isnan(t.variance)
