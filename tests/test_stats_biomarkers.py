"""Biomarker comparison on tiny hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunopet.errors import InputError
from immunopet.stats import BiomarkerComparison, compare_biomarkers
from immunopet.stats.biomarkers import auc_response, harrell_c


class TestAuc:
    def test_perfect_and_inverted(self) -> None:
        # Every responder above every non-responder: 4 of 4 pairs won -> 1; reversed -> 0.
        assert auc_response([3, 4, 1, 2], [1, 1, 0, 0]) == 1.0
        assert auc_response([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0

    def test_two_by_two_with_one_tie(self) -> None:
        # Responders {1, 3}, non-responders {1, 2}. Pairs (r, n):
        # (1, 1) tie -> 0.5; (1, 2) lost -> 0; (3, 1) won -> 1; (3, 2) won -> 1
        # AUC = 2.5 / 4 = 0.625
        assert auc_response([1, 3, 1, 2], [1, 1, 0, 0]) == 0.625

    def test_empty_class(self) -> None:
        assert math.isnan(auc_response([1, 2], [1, 1]))


class TestHarrellC:
    def test_four_subjects_by_hand(self) -> None:
        # times 1, 2, 3, 4; events 1, 1, 0, 1; marker 1, 3, 2, 4 (higher = longer expected).
        # Usable pairs (shorter time is an event): (1,2) (1,3) (1,4) (2,3) (2,4);
        # (3,4) is not usable (3 is censored). Concordant = the longer-lived has the higher
        # marker: (1,2) 1<3 yes; (1,3) 1<2 yes; (1,4) 1<4 yes; (2,3) 3>2 no; (2,4) 3<4 yes.
        # C = 4 / 5
        assert harrell_c([1, 3, 2, 4], [1, 2, 3, 4], [1, 1, 0, 1]) == pytest.approx(0.8)

    def test_direction_and_ties(self) -> None:
        # Marker decreasing with survival time: every usable pair discordant -> 0.
        assert harrell_c([4, 3, 2, 1], [1, 2, 3, 4], [1, 1, 1, 1]) == 0.0
        # All markers equal: every usable pair counts one half -> 0.5.
        assert harrell_c([1, 1, 1], [1, 2, 3], [1, 1, 1]) == 0.5

    def test_no_usable_pair(self) -> None:
        assert math.isnan(harrell_c([1, 2], [1, 2], [0, 0]))


def _cohort() -> pd.DataFrame:
    # Eight patients, two tumour types. suv separates responders perfectly; tps is inverted;
    # score has a missing value.
    return pd.DataFrame(
        {
            "tumour": ["NSCLC"] * 4 + ["TNBC"] * 4,
            "suv": [8.0, 6.0, 2.0, 1.0, 9.0, 7.0, 3.0, 2.5],
            "tps": [0.0, 1.0, 50.0, 80.0, 5.0, 10.0, 60.0, 90.0],
            "score": [1.0, math.nan, 0.5, 0.2, 0.9, 0.1, 0.3, 0.4],
            "responder": [1, 1, 0, 0, True, True, False, False],
            "pfs_days": [300, 250, 60, 40, 400, 200, 90, 30],
            "pfs_event": [0, 1, 1, 1, 1, 1, 1, 1],
            "os_days": [500, 450, 200, 100, 600, 420, 150, 80],
            "os_event": [0, 0, 1, 1, 0, 1, 1, 1],
        }
    )


class TestCompareBiomarkers:
    def test_table_overall(self) -> None:
        result = compare_biomarkers(
            _cohort(),
            candidates=["suv", "tps", "score"],
            response_col="responder",
            pfs=("pfs_days", "pfs_event"),
            os=("os_days", "os_event"),
            n_bootstrap=200,
            seed=1,
        )
        assert isinstance(result, BiomarkerComparison)
        table = result.table.set_index("candidate")
        assert table.loc["suv", "auc"] == 1.0
        assert table.loc["tps", "auc"] == 0.0
        # Perfect separation: Newcombe's score interval (4 vs 4), not the point 1-1, and said so.
        assert table.loc["suv", "separation"] == "perfect"
        assert table.loc["suv", "auc_method"] == "newcombe-score"
        assert 0.5 < table.loc["suv", "auc_lower"] < 0.9
        assert table.loc["suv", "auc_upper"] == 1.0
        assert table.loc["suv", "n_response"] == 8
        assert table.loc["suv", "n_responders"] == 4
        # score: patient 2 (responder) missing -> responders {1.0, 0.9, 0.1},
        # non-responders {0.5, 0.2, 0.3, 0.4}: wins 4 + 4 + 0 = 8 of 12 pairs.
        assert table.loc["score", "n_response"] == 7
        assert table.loc["score", "auc"] == pytest.approx(8 / 12)
        assert table.loc["score", "n_pfs"] == 7
        # Harrell's C against explicit pair counting on the same data:
        df = _cohort()
        assert table.loc["suv", "c_pfs"] == pytest.approx(
            _harrell_by_pairs(df["suv"], df["pfs_days"], df["pfs_event"])
        )
        assert table.loc["tps", "c_os"] == pytest.approx(
            _harrell_by_pairs(df["tps"], df["os_days"], df["os_event"])
        )
        assert set(result.table["group"]) == {"all"}

    def test_bootstrap_is_deterministic_for_a_seed(self) -> None:
        rng = np.random.default_rng(2024)
        responder = np.repeat([1, 0], 20)
        df = pd.DataFrame({"marker": responder + rng.normal(0, 1, 40), "responder": responder})
        kwargs = dict(
            candidates=["marker"], response_col="responder", n_bootstrap=500, interval="bootstrap"
        )
        a = compare_biomarkers(df, seed=7, **kwargs).table  # type: ignore[arg-type]
        b = compare_biomarkers(df, seed=7, **kwargs).table  # type: ignore[arg-type]
        c = compare_biomarkers(df, seed=8, **kwargs).table  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(a, b)
        lo, hi = a.loc[0, "auc_lower"], a.loc[0, "auc_upper"]
        assert 0.5 < lo < a.loc[0, "auc"] < hi <= 1.0
        assert (lo, hi) != (c.loc[0, "auc_lower"], c.loc[0, "auc_upper"])
        # A different seed moves the limits only by Monte-Carlo noise.
        assert abs(lo - c.loc[0, "auc_lower"]) < 0.05
        # Independent route: a plain-loop stratified percentile bootstrap with its own rng.
        pos = df.loc[df.responder == 1, "marker"].to_numpy()
        neg = df.loc[df.responder == 0, "marker"].to_numpy()
        loop_rng = np.random.default_rng(99)
        aucs = []
        for _ in range(4000):
            p = loop_rng.choice(pos, pos.size)
            n = loop_rng.choice(neg, neg.size)
            aucs.append(((p[:, None] > n[None, :]) + 0.5 * (p[:, None] == n[None, :])).mean())
        ref_lo, ref_hi = np.quantile(aucs, [0.025, 0.975])
        assert lo == pytest.approx(ref_lo, abs=0.03)
        assert hi == pytest.approx(ref_hi, abs=0.03)

    def test_row_does_not_depend_on_other_candidates(self) -> None:
        alone = compare_biomarkers(
            _cohort(), candidates=["score"], response_col="responder", n_bootstrap=100
        ).table
        together = compare_biomarkers(
            _cohort(),
            candidates=["suv", "score"],
            response_col="responder",
            n_bootstrap=100,
            reference="score",
        ).table
        pd.testing.assert_frame_equal(alone, together.iloc[[1]].reset_index(drop=True))

    def test_groups(self) -> None:
        result = compare_biomarkers(
            _cohort(),
            candidates=["suv"],
            response_col="responder",
            pfs=("pfs_days", "pfs_event"),
            n_bootstrap=0,
            group_col="tumour",
        )
        table = result.table
        assert table["group"].tolist() == ["all", "NSCLC", "TNBC"]
        assert table["n_response"].tolist() == [8, 4, 4]
        assert table["auc"].tolist() == [1.0, 1.0, 1.0]
        assert (table["separation"] == "perfect").all()
        # 2 vs 2 separate perfectly: a wide Newcombe interval, lower below 4 vs 4's
        assert table.loc[1, "auc_lower"] < table.loc[0, "auc_lower"] < 1.0
        # NSCLC PFS: times 300+ 250 60 40, suv 8 6 2 1: usable pairs all concordant -> 1
        assert table.loc[1, "c_pfs"] == 1.0
        assert math.isnan(table.loc[0, "c_os"])  # no os columns given
        assert table.loc[0, "n_os"] == 0

    def test_summary_and_rendering(self) -> None:
        result = compare_biomarkers(
            _cohort(), candidates=["suv"], response_col="responder", n_bootstrap=50
        )
        assert "<table" in result.to_html()
        assert "Harrell's C" in str(result)
        assert list(result.table.columns)[:3] == ["group", "candidate", "n_response"]
        assert list(result.summary.columns)[:8] == [
            "candidate",
            "endpoint",
            "tumour_type",
            "n",
            "n_positive",
            "auc_or_c",
            "ci_lower",
            "ci_upper",
        ]

    def test_errors(self) -> None:
        df = _cohort()
        with pytest.raises(InputError, match="column not found"):
            compare_biomarkers(df, candidates=["nope"], response_col="responder")
        with pytest.raises(InputError, match="response must be"):
            compare_biomarkers(
                df.assign(responder=["PR"] * 8), candidates=["suv"], response_col="responder"
            )
        with pytest.raises(InputError, match="must be numeric"):
            compare_biomarkers(
                df.assign(suv=["high"] * 8), candidates=["suv"], response_col="responder"
            )
        with pytest.raises(InputError, match="no candidates"):
            compare_biomarkers(df, candidates=[], response_col="responder")
        with pytest.raises(InputError, match="negative n_bootstrap"):
            compare_biomarkers(df, candidates=["suv"], response_col="responder", n_bootstrap=-1)


def _harrell_by_pairs(marker: pd.Series, time: pd.Series, event: pd.Series) -> float:
    """Harrell's C by explicit pair counting (independent of lifelines)."""
    m, t, e = (np.asarray(v, dtype=float) for v in (marker, time, event))
    concordant = usable = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            if t[i] < t[j] and e[i] == 1:
                usable += 1
                concordant += 1.0 if m[j] > m[i] else 0.5 if m[j] == m[i] else 0.0
    return concordant / usable


def test_long_table_pairs_each_candidate_with_the_reference() -> None:
    from immunopet.stats.concordance import compare_concordance
    from immunopet.stats.roc import delong_test

    df = _cohort()
    result = compare_biomarkers(
        df,
        candidates=["suv", "tps", "score"],
        response_col="responder",
        pfs=("pfs_days", "pfs_event"),
        os=("os_days", "os_event"),
        group_col="tumour",
    )
    long = result.comparisons
    assert long is not None
    # 3 groups (all, NSCLC, TNBC) x 3 candidates x 3 endpoints
    assert len(long) == 27
    assert set(long.endpoint) == {"response", "pfs", "os"}
    assert long.loc[long.candidate == "suv", "p_vs_pet"].isna().all()
    row = long.set_index(["tumour_type", "candidate", "endpoint"])
    # score vs suv on the 7 patients with both (DeLong test verified by hand elsewhere)
    both = df.score.notna()
    expected = delong_test(df.suv[both], df.score[both], df.responder[both].astype(int))
    assert row.loc[("all", "score", "response"), "p_vs_pet"] == pytest.approx(expected.p_value)
    assert row.loc[("all", "score", "response"), "n"] == 7
    c = compare_concordance(df.suv, df.tps, df.os_days, df.os_event)
    assert row.loc[("all", "tps", "os"), "p_vs_pet"] == pytest.approx(c.p_value)
    assert row.loc[("all", "tps", "os"), "auc_or_c"] == pytest.approx(
        _harrell_by_pairs(df.tps, df.os_days, df.os_event)
    )
    # the wide table carries the same numbers
    wide = result.table.set_index(["group", "candidate"])
    assert wide.loc[("all", "tps"), "p_os_vs_pet"] == pytest.approx(c.p_value)
    with pytest.raises(InputError, match="reference is not a candidate"):
        compare_biomarkers(df, candidates=["suv"], response_col="responder", reference="tps")
