"""Group tests, correlation and PD-L1 groups against hand-worked values and R."""

from __future__ import annotations

import dataclasses
import itertools
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from immunopet.errors import InputError
from immunopet.stats import TestResult, kruskal_wallis, mann_whitney, pdl1_group, spearman
from immunopet.stats.groups import pdl1_groups
from r_reference import requires_r, run_r

# Two small samples with a three-way tie at 2.4 (two in A, one in B).
A = [1.2, 2.4, 2.4, 3.1, 5.0]
B = [2.4, 3.9, 4.9, 5.9, 6.3, 7.0]


class TestMannWhitney:
    def test_u_counted_by_pairs(self) -> None:
        # U_A = #(a > b) + 0.5 #(a = b), pair by pair:
        #   1.2: beats none                         -> 0
        #   2.4: ties B's 2.4, below the rest        -> 0.5   (twice: 1.0)
        #   3.1: beats 2.4                           -> 1
        #   5.0: beats 2.4, 3.9, 4.9                 -> 3
        # U_A = 0 + 1.0 + 1 + 3 = 5
        result = mann_whitney(A, B)
        assert result.statistic == 5.0
        assert result.extra["U_min"] == 5.0  # U_B = 30 - 5 = 25
        assert result.n == (5, 6)

    def test_asymptotic_p_from_tie_corrected_variance(self) -> None:
        # N = 11, n1 n2 = 30, E[U] = 15; ties: 2.4 three times -> sum(t^3 - t) = 24.
        # var = 30/12 * (12 - 24 / (11 * 10)) = 2.5 * 11.7818181... = 29.4545454...
        var = 30 / 12 * (12 - 24 / 110)
        z = (5 - 15) / math.sqrt(var)  # -1.84257...
        p = math.erfc(abs(z) / math.sqrt(2))  # 2 * (1 - Phi(|z|)), no continuity correction
        result = mann_whitney(A, B, method="asymptotic")
        assert result.p_value == pytest.approx(p, rel=1e-12)
        assert result.extra["z"] == pytest.approx(z, rel=1e-9)
        assert result.method == "asymptotic"

    def test_against_r_wilcox_test(self) -> None:
        # R 4.x: w <- wilcox.test(c(1.2, 2.4, 2.4, 3.1, 5.0), c(2.4, 3.9, 4.9, 5.9, 6.3, 7.0),
        #                        exact=FALSE, correct=FALSE); w$statistic; w$p.value
        # W = 5, p = 0.0653919156218334
        result = mann_whitney(A, B)
        assert result.statistic == 5.0
        assert result.p_value == pytest.approx(0.0653919156218334, rel=1e-9)

    def test_spss_default_reports_asymptotic_and_exact(self) -> None:
        result = mann_whitney(A, B)
        assert result.method == "asymptotic"
        assert "p_exact" in result.extra
        assert any("not corrected for ties" in n for n in result.notes)

    def test_exact_p_by_enumeration_without_ties(self) -> None:
        a = [1.1, 3.5, 2.2, 7.0]
        b = [4.1, 5.2, 6.3, 8.4, 9.9]
        # Pooled order 1.1 2.2 3.5 4.1 5.2 6.3 7.0 8.4 9.9: ranks of a are 1, 2, 3, 7,
        # R_a = 13, U_a = 13 - 4 * 5 / 2 = 3.
        # Enumerate all C(9, 4) = 126 rank sets of group a: two-sided p = 2 * P(U <= 3).
        u_all = [sum(c) - 10 for c in itertools.combinations(range(1, 10), 4)]
        p_two_sided = min(1.0, 2 * sum(u <= 3 for u in u_all) / len(u_all))
        result = mann_whitney(a, b, method="exact")
        assert result.statistic == 3.0
        assert result.p_value == pytest.approx(p_two_sided, rel=1e-12)
        assert result.method == "exact"
        assert mann_whitney(a, b).extra["p_exact"] == pytest.approx(p_two_sided, rel=1e-12)

    def test_perfect_separation(self) -> None:
        # U = 0; z = -4.5 / sqrt(9 * 7 / 12); exact p = 2 / C(6, 3) = 0.1
        result = mann_whitney([1, 2, 3], [4, 5, 6])
        assert result.statistic == 0.0
        z = -4.5 / math.sqrt(9 * 7 / 12)
        assert result.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-12)
        assert result.extra["p_exact"] == pytest.approx(0.1)

    def test_missing_values_dropped_and_counted(self) -> None:
        result = mann_whitney([*A, math.nan], [*B, None])  # type: ignore[arg-type]
        assert result.n == (5, 6)
        assert result.statistic == 5.0
        assert sum("missing" in n for n in result.notes) == 2

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="no observations"):
            mann_whitney([], [1.0])
        with pytest.raises(InputError, match="unknown method"):
            mann_whitney([1.0], [2.0], method="bogus")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="must be numbers"):
            mann_whitney(["x", "y"], [1.0])


# Kruskal-Wallis example: three groups with three pairs of ties.
G1 = [2.4, 1.8, 3.0, 2.4]
G2 = [4.6, 3.0, 5.2]
G3 = [5.9, 6.1, 4.6, 7.2, 5.5]


class TestKruskalWallis:
    def test_h_from_ranks_by_hand(self) -> None:
        # Pooled ranks (N = 12): 1.8 -> 1; 2.4, 2.4 -> 2.5; 3.0, 3.0 -> 4.5; 4.6, 4.6 -> 6.5;
        # 5.2 -> 8; 5.5 -> 9; 5.9 -> 10; 6.1 -> 11; 7.2 -> 12.
        r1 = 2.5 + 1 + 4.5 + 2.5  # 10.5, n = 4
        r2 = 6.5 + 4.5 + 8  # 19, n = 3
        r3 = 10 + 11 + 6.5 + 12 + 9  # 48.5, n = 5
        assert r1 + r2 + r3 == 12 * 13 / 2
        h_raw = 12 / (12 * 13) * (r1**2 / 4 + r2**2 / 3 + r3**2 / 5) - 3 * 13  # 8.565064...
        correction = 1 - 3 * (2**3 - 2) / (12**3 - 12)  # three tie pairs: 1 - 18/1716
        h = h_raw / correction  # 8.655860...
        p = math.exp(-h / 2)  # chi-square survival function with 2 df
        result = kruskal_wallis(G1, G2, G3, labels=["PD", "SD", "PR"])
        assert result.statistic == pytest.approx(h, rel=1e-12)
        assert result.p_value == pytest.approx(p, rel=1e-12)
        assert result.extra["df"] == 2.0
        assert result.n == (4, 3, 5)
        assert result.groups == ("PD", "SD", "PR")

    def test_against_r_kruskal_test(self) -> None:
        # R: k <- kruskal.test(list(c(2.4, 1.8, 3.0, 2.4), c(4.6, 3.0, 5.2),
        #                          c(5.9, 6.1, 4.6, 7.2, 5.5))); k$statistic; k$p.value
        # Kruskal-Wallis chi-squared = 8.65585983510012, p = 0.0131948336315851
        result = kruskal_wallis(G1, G2, G3)
        assert result.statistic == pytest.approx(8.65585983510012, rel=1e-9)
        assert result.p_value == pytest.approx(0.0131948336315851, rel=1e-9)

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="too few groups"):
            kruskal_wallis([1.0, 2.0])
        with pytest.raises(InputError, match="one label per group"):
            kruskal_wallis([1.0], [2.0], labels=["a"])
        with pytest.raises(InputError, match="all values are equal"):
            kruskal_wallis([1.0, 1.0], [1.0])


class TestSpearman:
    X = (0, 1, 1, 100, 100, 0, 5)
    Y = (2.1, 3.3, 2.9, 6.0, 4.4, 1.7, 3.0)

    def test_rho_from_hand_ranks(self) -> None:
        # Mid-ranks written out: x: 0,0 -> 1.5; 1,1 -> 3.5; 5 -> 5; 100,100 -> 6.5
        rx = [1.5, 3.5, 3.5, 6.5, 6.5, 1.5, 5]
        # y sorted: 1.7 2.1 2.9 3.0 3.3 4.4 6.0 -> ranks 1..7
        ry = [2, 5, 3, 7, 6, 1, 4]
        rho = float(np.corrcoef(rx, ry)[0, 1])
        t = rho * math.sqrt(5 / (1 - rho**2))
        p = 2 * stats.t.sf(abs(t), df=5)
        result = spearman(self.X, self.Y)
        assert result.statistic == pytest.approx(rho, rel=1e-12)
        assert result.p_value == pytest.approx(p, rel=1e-9)
        assert result.n == (7,)

    def test_against_r_cor_test(self) -> None:
        # R: ct <- cor.test(c(0, 1, 1, 100, 100, 0, 5), c(2.1, 3.3, 2.9, 6.0, 4.4, 1.7, 3.0),
        #                   method="spearman", exact=FALSE); ct$estimate; ct$p.value
        # rho = 0.91777887276794, p = 0.00356049001174826
        result = spearman(self.X, self.Y)
        assert result.statistic == pytest.approx(0.91777887276794, rel=1e-9)
        assert result.p_value == pytest.approx(0.00356049001174826, rel=1e-7)

    def test_incomplete_pairs_dropped(self) -> None:
        result = spearman([*self.X, math.nan, 3.0], [*self.Y, 1.0, math.nan])
        assert result.n == (7,)
        assert result.statistic == pytest.approx(0.91777887276794, rel=1e-9)
        assert "2 incomplete pair(s) dropped" in result.notes

    def test_constant_variable_gives_nan(self) -> None:
        result = spearman([1, 1, 1, 1], [1, 2, 3, 4])
        assert math.isnan(result.statistic)
        assert math.isnan(result.p_value)

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="differ in length"):
            spearman([1, 2, 3], [1, 2])
        with pytest.raises(InputError, match="too few complete pairs"):
            spearman([1, 2, math.nan], [1, 2, 3])


class TestPdl1Group:
    @pytest.mark.parametrize(
        ("value", "group"),
        [
            (0, "0%"),
            (0.5, "0%"),
            (1, "1-49%"),
            (12.5, "1-49%"),
            ("7.5", "1-49%"),
            (49.9, "1-49%"),
            (50, ">=50%"),
            (100, ">=50%"),
        ],
    )
    def test_groups(self, value: float | str, group: str) -> None:
        assert pdl1_group(value) == group

    @pytest.mark.parametrize("value", ["NE", "ne", "", None, math.nan])
    def test_missing(self, value: float | str | None) -> None:
        assert pdl1_group(value) is pd.NA

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="out of range"):
            pdl1_group(101)
        with pytest.raises(InputError, match="out of range"):
            pdl1_group(-1)
        with pytest.raises(InputError, match="not a PD-L1 percentage"):
            pdl1_group("high")

    def test_vectorised_ordered_categories(self) -> None:
        series = pdl1_groups(pd.Series([100, "NE", 0, 25], index=[7, 8, 9, 10]))
        assert series.index.tolist() == [7, 8, 9, 10]
        assert series.cat.ordered
        assert series.cat.categories.tolist() == ["0%", "1-49%", ">=50%"]
        assert series.isna().tolist() == [False, True, False, False]
        assert series.iloc[0] > series.iloc[3] > series.iloc[2]


class TestResultObject:
    def test_summary_html_str_and_immutability(self) -> None:
        result = mann_whitney(A, B, labels=("no PD", "PD"))
        assert isinstance(result, TestResult)
        summary = result.summary
        assert summary.shape[0] == 1
        assert summary.loc[0, "statistic"] == 5.0
        assert summary.loc[0, "groups"] == "no PD, PD"
        assert summary.loc[0, "n"] == "5, 6"
        html = result.to_html()
        assert "<table" in html
        assert result._repr_html_() == html
        text = str(result)
        assert "Mann-Whitney U" in text
        assert "note:" in text
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.p_value = 0.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            result.extra["z"] = 0.0  # type: ignore[index]


@requires_r
def test_live_r_matches_group_tests() -> None:
    r = run_r(
        "w <- wilcox.test(c(1.2, 2.4, 2.4, 3.1, 5.0), c(2.4, 3.9, 4.9, 5.9, 6.3, 7.0), "
        "exact=FALSE, correct=FALSE); "
        "k <- kruskal.test(list(c(2.4, 1.8, 3.0, 2.4), c(4.6, 3.0, 5.2), "
        "c(5.9, 6.1, 4.6, 7.2, 5.5))); "
        "cat(w$statistic, w$p.value, k$statistic, k$p.value)"
    )
    mw = mann_whitney(A, B)
    kw = kruskal_wallis(G1, G2, G3)
    assert [mw.statistic, mw.p_value, kw.statistic, kw.p_value] == pytest.approx(r, rel=1e-9)


def test_a_test_result_pickles_whole() -> None:
    # figure jobs carrying test results go to the drawing worker processes
    result = TestResult(
        test_name="Mann-Whitney U",
        statistic=3.0,
        p_value=0.04,
        n=(4, 5),
        method="exact",
        groups=("responders", "non-responders"),
        statistic_name="U",
        notes=("two-sided",),
        extra={"z": -2.1},
    )
    copy = pickle.loads(pickle.dumps(result))
    for name in ("test_name", "statistic", "p_value", "n", "method", "groups", "notes"):
        assert getattr(copy, name) == getattr(result, name)
    assert copy.statistic_name == "U" and dict(copy.extra) == {"z": -2.1}
    with pytest.raises(TypeError):
        copy.extra["z"] = 0.0  # type: ignore[index]  # still read-only
