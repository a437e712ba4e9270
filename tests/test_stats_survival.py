"""Survival statistics against hand-worked values, R ``survival`` 3.5 and the published cohort.

R references were produced once with R 4.x / survival 3.5.3 (``options(digits=15)``); the call
is written beside each literal. ``test_live_r_*`` re-run them when Rscript is installed.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunopet.errors import InputError
from immunopet.stats import (
    DAYS_PER_MONTH,
    KaplanMeier,
    cox_hazard_ratio,
    kaplan_meier,
    logrank,
    median_split,
    median_survival,
    survival_summary,
)
from r_reference import requires_r, run_r

Z975 = 1.959963984540054  # qnorm(0.975)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Hand-worked data set: 10 subjects, censored at 4 and 7.
HAND_T = [2, 3, 4, 5, 6, 7, 8, 9, 11, 12]
HAND_E = [1, 1, 0, 1, 1, 0, 1, 1, 1, 1]

# R's aml data (survival package): time, status, x (M = Maintained, N = Nonmaintained).
AML_T = [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161, 5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45]
AML_E = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
AML_X = ["Maintained"] * 11 + ["Nonmaintained"] * 12
AML_AGE = [
    61,
    55,
    70,
    48,
    66,
    59,
    73,
    52,
    64,
    57,
    69,
    71,
    50,
    62,
    67,
    58,
    74,
    63,
    49,
    68,
    60,
    56,
    65,
]
AML_G3 = (["a", "b", "c"] * 8)[:23]

# The durvalumab cohort (seed 000, Table 1), days; NR censored at an assumed 900 d follow-up,
# "<15" as 15.
PFS_D = [86, 19, 15, 34, 22, 154, 183, 684, 9, 2, 900, 900, 41]
PFS_E = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1]
OS_D = [823, 19, 63, 40, 147, 182, 900, 900, 15, 2, 900, 900, 78]
OS_E = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1]


class TestKaplanMeierTable:
    def test_hand_worked_table(self) -> None:
        # n at risk / deaths at each event time and the product-limit estimate:
        #   2: 10/1 -> 9/10;  3: 9/1 -> 8/10;  (4 censored)  5: 7/1 -> 8/10*6/7 = 24/35
        #   6: 6/1 -> 24/35*5/6 = 4/7;  (7 censored)  8: 4/1 -> 4/7*3/4 = 3/7
        #   9: 3/1 -> 2/7;  11: 2/1 -> 1/7;  12: 1/1 -> 0
        km = kaplan_meier(HAND_T, HAND_E)
        table = km.table
        assert table["time"].tolist() == [2, 3, 5, 6, 8, 9, 11, 12]
        assert table["at_risk"].tolist() == [10, 9, 7, 6, 4, 3, 2, 1]
        expected_s = [9 / 10, 8 / 10, 24 / 35, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0]
        np.testing.assert_allclose(table["survival"], expected_s, rtol=1e-12, atol=1e-15)
        # Greenwood at t = 8: S^2 * (1/(10*9) + 1/(9*8) + 1/(7*6) + 1/(6*5) + 1/(4*3))
        greenwood = (3 / 7) * math.sqrt(1 / 90 + 1 / 72 + 1 / 42 + 1 / 30 + 1 / 12)
        assert table["se"].iloc[4] == pytest.approx(greenwood, rel=1e-12)
        assert math.isnan(table["se"].iloc[7])  # S = 0: undefined, as R reports NaN
        assert km.n == 10
        assert km.events == 8

    def test_against_r_summary_survfit(self) -> None:
        # R: s <- summary(survfit(Surv(time, status) ~ 1, data=aml))
        #    cbind(s$time, s$n.risk, s$n.event, s$surv, s$std.err)
        r_table = [
            (5, 23, 2, 0.913043478260870, 0.0587533847558414),
            (8, 21, 2, 0.826086956521739, 0.0790341964475118),
            (9, 19, 1, 0.782608695652174, 0.0860061487037983),
            (12, 18, 1, 0.739130434782609, 0.0915605371517001),
            (13, 17, 1, 0.695652173913043, 0.0959438755421514),
            (18, 14, 1, 0.645962732919255, 0.1011426751752846),
            (23, 13, 2, 0.546583850931677, 0.1072506417401223),
            (27, 11, 1, 0.496894409937888, 0.1084017807886830),
            (30, 9, 1, 0.441683919944790, 0.1095180699776571),
            (31, 8, 1, 0.386473429951691, 0.1088588014948644),
            (33, 7, 1, 0.331262939958592, 0.1063909728875506),
            (34, 6, 1, 0.276052449965493, 0.1019833760904919),
            (43, 5, 1, 0.220841959972395, 0.0953674384864344),
            (45, 4, 1, 0.165631469979296, 0.0860352084085751),
            (48, 2, 1, 0.082815734989648, 0.0726618005035283),
        ]
        table = kaplan_meier(AML_T, AML_E).table
        np.testing.assert_allclose(
            table[["time", "at_risk", "events", "survival", "se"]].to_numpy(),
            np.array(r_table),
            rtol=1e-9,
        )

    def test_survival_at_is_a_right_continuous_step(self) -> None:
        km = kaplan_meier(HAND_T, HAND_E)
        s = km.survival_at([0, 1.9, 2, 4.5, 8, 100])
        np.testing.assert_allclose(s, [1, 1, 0.9, 0.8, 3 / 7, 0], atol=1e-12)

    def test_fitter_exposed_for_plots(self) -> None:
        km = KaplanMeier().fit(HAND_T, HAND_E, label="PFS")
        assert km.fitter is not None
        assert km.label == "PFS"

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="differ in length"):
            kaplan_meier([1, 2], [1])
        with pytest.raises(InputError, match="negative duration"):
            kaplan_meier([-1, 2], [1, 1])
        with pytest.raises(InputError, match="0 \\(censored\\) or 1"):
            kaplan_meier([1, 2], [1, 2])
        with pytest.raises(InputError, match="missing duration"):
            kaplan_meier([1, math.nan], [1, 1])
        with pytest.raises(InputError, match="not fitted"):
            _ = KaplanMeier().table
        with pytest.raises(InputError, match="alpha out of range"):
            KaplanMeier(alpha=1.5)


class TestMedianSpss:
    def test_hand_worked_interval(self) -> None:
        # Median: first event time with S <= 0.5 -> t = 8 (S = 3/7).
        # Greenwood SE of S(8) = 3/7 * sqrt(1/90 + 1/72 + 1/42 + 1/30 + 1/12) = 0.1743376
        se_s = 3 / 7 * math.sqrt(1 / 90 + 1 / 72 + 1 / 42 + 1 / 30 + 1 / 12)
        # u = last event time with S >= 0.55: t = 6 (S = 4/7 = 0.571)
        # l = first event time with S <= 0.45: t = 8 (S = 3/7 = 0.429)
        density = (4 / 7 - 3 / 7) / (8 - 6)  # 1/14 per time unit
        se_median = se_s / density  # 2.440726
        lower, upper = 8 - Z975 * se_median, 8 + Z975 * se_median  # 3.2163, 12.7837
        median, lo, up = median_survival(HAND_T, HAND_E, ci="spss")
        assert median == 8.0
        assert lo == pytest.approx(lower, rel=1e-12)
        assert up == pytest.approx(upper, rel=1e-12)
        summary = survival_summary(HAND_T, HAND_E)
        assert summary.se == pytest.approx(se_median, rel=1e-12)

    def test_origin_used_when_no_event_time_has_s_above_055(self) -> None:
        # t = 1, 2 both events: S(1) = 0.5 (median 1), S(2) = 0.
        # u = origin (t = 0, S = 1); l = 2 (S = 0): density = (1 - 0) / (2 - 0) = 0.5
        # Greenwood SE of S(1) = 0.5 * sqrt(1 / (2 * 1)) = 0.35355; SE(median) = 0.70711
        se_median = 0.5 * math.sqrt(0.5) / 0.5
        summary = survival_summary([1, 2], [1, 1])
        assert summary.median == 1.0
        assert summary.se == pytest.approx(se_median, rel=1e-12)
        assert summary.lower == 0.0  # 1 - 1.386 < 0, truncated
        assert summary.upper == pytest.approx(1 + Z975 * se_median, rel=1e-12)
        assert any("truncated at 0" in n for n in summary.notes)

    def test_no_s_below_045_gives_nan_limits(self) -> None:
        median, lower, upper = median_survival([1, 2], [1, 0])  # S(1) = 0.5, then censored
        assert median == 1.0
        assert math.isnan(lower)
        assert math.isnan(upper)

    def test_median_not_reached(self) -> None:
        summary = survival_summary([1, 2, 3, 4], [1, 0, 0, 0])
        assert all(math.isnan(v) for v in (summary.median, summary.lower, summary.upper))
        assert "median not reached" in summary.notes[0]

    def test_scale_equivariance(self) -> None:
        days = median_survival(HAND_T, HAND_E)
        weeks = median_survival([t / 7 for t in HAND_T], HAND_E)
        np.testing.assert_allclose(np.array(days) / 7, weeks, rtol=1e-12)

    def test_unknown_method(self) -> None:
        with pytest.raises(InputError, match="unknown interval method"):
            median_survival(HAND_T, HAND_E, ci="bogus")  # type: ignore[arg-type]


class TestPublishedCohort:
    """Seed 000: median PFS 1.3 mo (95% CI 0.0-3.8), median OS 4.8 mo (95% CI 0.2-9.4)."""

    def test_medians_in_days(self) -> None:
        # PFS events in order 2, 9, 15, 19, 22, 34, 41: S(41) = 6/13 <= 0.5 < S(34) = 7/13.
        assert median_survival(PFS_D, PFS_E)[0] == 41.0
        # OS events 2, 15, 19, 40, 63, 78, 147: S(147) = 6/13.
        assert median_survival(OS_D, OS_E)[0] == 147.0

    def test_spss_interval_reproduces_the_paper(self) -> None:
        # No censoring before the median, so Greenwood SE of S = 6/13 is the binomial one:
        se_s = math.sqrt((6 / 13) * (7 / 13) / 13)  # 0.138264
        # PFS: u = 22 (S = 8/13), l = 86 (S = 5/13) -> density = (3/13) / 64 per day
        pfs_se = se_s / ((3 / 13) / 64)  # 38.345 d
        # OS: u = 63 (S = 8/13), l = 182 (S = 5/13) -> density = (3/13) / 119 per day
        os_se = se_s / ((3 / 13) / 119)  # 71.298 d
        pfs = survival_summary(PFS_D, PFS_E, time_unit="days")
        os_ = survival_summary(OS_D, OS_E, time_unit="days")
        assert pfs.se == pytest.approx(pfs_se, rel=1e-12)
        assert os_.se == pytest.approx(os_se, rel=1e-12)
        assert pfs.lower == 0.0  # 41 - 75.16 < 0, truncated
        assert pfs.upper == pytest.approx(41 + Z975 * pfs_se, rel=1e-12)
        assert os_.lower == pytest.approx(147 - Z975 * os_se, rel=1e-12)
        months = [
            round(v / DAYS_PER_MONTH, 1)
            for v in (pfs.median, pfs.lower, pfs.upper, os_.median, os_.lower, os_.upper)
        ]
        assert months == [1.3, 0.0, 3.8, 4.8, 0.2, 9.4]

    def test_brookmeyer_crowley_matches_r_print(self) -> None:
        # R: d <- read.csv("examples/durvalumab_table1.csv")
        #    print(survfit(Surv(pfs_days, pfs_event) ~ 1, data=d))  # median 41, LCL 19, UCL NA
        #    print(survfit(Surv(os_days, os_event) ~ 1, data=d))    # median 147, LCL 40, UCL NA
        pfs = median_survival(PFS_D, PFS_E, ci="brookmeyer-crowley")
        os_ = median_survival(OS_D, OS_E, ci="brookmeyer-crowley")
        assert pfs[:2] == (41.0, 19.0)
        assert math.isnan(pfs[2])
        assert os_[:2] == (147.0, 40.0)
        assert math.isnan(os_[2])

    def test_example_script_reproduces_medians(self) -> None:
        module = runpy.run_path(str(EXAMPLES / "cohort_survival.py"), run_name="example")
        table = module["summarise_cohort"](EXAMPLES / "durvalumab_table1.csv")
        spss = table[table["ci_method"] == "spss"].set_index("label")
        assert spss.loc["PFS", "median"] == pytest.approx(41 / 30.4375, rel=1e-12)
        assert spss.loc["OS", "median"] == pytest.approx(147 / 30.4375, rel=1e-12)
        assert [round(spss.loc["PFS", c], 1) for c in ("lower", "upper")] == [0.0, 3.8]
        assert [round(spss.loc["OS", c], 1) for c in ("lower", "upper")] == [0.2, 9.4]
        assert set(table["time_unit"]) == {"months"}

    def test_example_csv_matches_table1(self) -> None:
        df = pd.read_csv(EXAMPLES / "durvalumab_table1.csv")
        assert len(df) == 13
        assert df["pfs_days"].tolist() == PFS_D
        assert df["os_days"].tolist() == OS_D
        assert df["pfs_event"].tolist() == PFS_E
        assert df["os_event"].tolist() == OS_E
        assert df["cps_percent"].isna().sum() == 2  # patients 8 and 9: NE


class TestMedianBrookmeyerCrowleyAndLifelines:
    def test_against_r_print_survfit(self) -> None:
        # R: print(survfit(Surv(time, status) ~ 1, data=aml))  # median 27, LCL 18, UCL 45
        assert median_survival(AML_T, AML_E, ci="brookmeyer-crowley") == (27.0, 18.0, 45.0)
        # R: print(survfit(Surv(c(2,3,4,5,6,7,8,9,11,12), c(1,1,0,1,1,0,1,1,1,1)) ~ 1))
        #    median 8, LCL 5, UCL NA
        m, lo, up = median_survival(HAND_T, HAND_E, ci="brookmeyer-crowley")
        assert (m, lo) == (8.0, 5.0)
        assert math.isnan(up)

    def test_midpoint_rule_when_s_is_exactly_half(self) -> None:
        # R: print(survfit(Surv(c(1, 2), c(1, 1)) ~ 1))  # median 1.5, LCL 1, UCL NA
        m, lo, up = median_survival([1, 2], [1, 1], ci="brookmeyer-crowley")
        assert (m, lo) == (1.5, 1.0)
        assert math.isnan(up)
        # R: print(survfit(Surv(c(1, 2), c(1, 0)) ~ 1))  # median 1 (S never falls below 0.5)
        assert median_survival([1, 2], [1, 0], ci="brookmeyer-crowley")[0] == 1.0

    def test_lifelines_matches_r_log_log(self) -> None:
        # R: print(survfit(Surv(c(2,3,4,5,6,7,8,9,11,12), c(1,1,0,1,1,0,1,1,1,1)) ~ 1,
        #                  conf.type="log-log"))  # median 8, LCL 2, UCL 11
        assert median_survival(HAND_T, HAND_E, ci="lifelines") == (8.0, 2.0, 11.0)


class TestLogRank:
    def test_two_groups_against_r_survdiff(self) -> None:
        # R: sd <- survdiff(Surv(time, status) ~ x, data=aml); sd$chisq; sd$obs; sd$exp
        #    chisq 3.3963886989776, p 0.0653393220405052, obs 7 11,
        #    exp 10.68933599230072 7.31066400769928
        result = logrank(AML_T, AML_E, AML_X)
        assert result.statistic == pytest.approx(3.3963886989776, rel=1e-9)
        assert result.p_value == pytest.approx(0.0653393220405052, rel=1e-9)
        assert result.df == 1
        assert result.groups == ("Maintained", "Nonmaintained")
        assert result.n == (11, 12)
        assert result.events == (7, 11)
        assert result.expected == pytest.approx((10.68933599230072, 7.31066400769928), rel=1e-9)

    def test_three_groups_against_r_survdiff(self) -> None:
        # R: g3 <- rep(c("a", "b", "c"), length.out=23)
        #    sd <- survdiff(Surv(time, status) ~ g3, data=cbind(aml, g3=g3))
        #    chisq 0.856465545235983, p 0.651659708606481, obs 8 6 4,
        #    exp 6.17173566214823 7.26465744624649 4.56360689160528
        result = logrank(AML_T, AML_E, AML_G3)
        assert result.statistic == pytest.approx(0.856465545235983, rel=1e-9)
        assert result.p_value == pytest.approx(0.651659708606481, rel=1e-9)
        assert result.df == 2
        assert result.events == (8, 6, 4)
        assert result.expected == pytest.approx(
            (6.17173566214823, 7.26465744624649, 4.56360689160528), rel=1e-9
        )
        assert sum(result.expected) == pytest.approx(sum(result.events), rel=1e-12)

    def test_summary_and_errors(self) -> None:
        result = logrank(AML_T, AML_E, AML_X)
        assert result.summary.shape == (2, 7)
        assert "Log-rank" in str(result)
        with pytest.raises(InputError, match="at least two groups"):
            logrank([1, 2], [1, 1], ["a", "a"])
        with pytest.raises(InputError, match="groups differ in length"):
            logrank([1, 2], [1, 1], ["a"])
        with pytest.raises(InputError, match="missing group label"):
            logrank([1, 2], [1, 1], ["a", None])


def _aml_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": AML_T,
            "status": AML_E,
            "nonmaint": [int(x == "Nonmaintained") for x in AML_X],
            "age": AML_AGE,
        }
    )


class TestCox:
    def test_one_covariate_against_r_coxph(self) -> None:
        # R: cx <- coxph(Surv(time, status) ~ x, data=aml)   (Efron ties)
        #    coef 0.915532575014718, HR 2.49810532617214, se 0.511934275172005,
        #    z 1.78837913266719, p 0.0737148606390457, 95% CI 0.915907257436408-6.8134957660633
        result = cox_hazard_ratio(_aml_frame(), "time", "status", ["nonmaint"])
        row = result.table.iloc[0]
        assert row["coef"] == pytest.approx(0.915532575014718, rel=1e-4)
        assert row["hazard_ratio"] == pytest.approx(2.49810532617214, rel=1e-4)
        assert row["se"] == pytest.approx(0.511934275172005, rel=1e-4)
        assert row["z"] == pytest.approx(1.78837913266719, rel=1e-4)
        assert row["p_value"] == pytest.approx(0.0737148606390457, rel=1e-4)
        assert result.hazard_ratio("nonmaint") == pytest.approx(
            (2.49810532617214, 0.915907257436408, 6.8134957660633), rel=1e-4
        )
        assert (result.n, result.events) == (23, 18)

    def test_two_covariates_against_r_coxph(self) -> None:
        # R: d <- cbind(aml, age=c(61, 55, 70, 48, 66, 59, 73, 52, 64, 57, 69, 71, 50, 62, 67,
        #                          58, 74, 63, 49, 68, 60, 56, 65))
        #    d$nonmaint <- as.integer(d$x == "Nonmaintained")
        #    summary(coxph(Surv(time, status) ~ nonmaint + age, data=d))
        #    nonmaint: HR 2.474824301123775 (0.906278741417547-6.75813636746329),
        #              p 0.0770665766869878
        #    age:      HR 0.964819362712826 (0.898627485145344-1.03588685862977),
        #              p 0.3233217886514252
        result = cox_hazard_ratio(_aml_frame(), "time", "status", ["nonmaint", "age"])
        assert result.hazard_ratio("nonmaint") == pytest.approx(
            (2.474824301123775, 0.906278741417547, 6.75813636746329), rel=1e-4
        )
        assert result.hazard_ratio("age") == pytest.approx(
            (0.964819362712826, 0.898627485145344, 1.03588685862977), rel=1e-4
        )
        p = result.table.set_index("covariate")["p_value"]
        assert p["nonmaint"] == pytest.approx(0.0770665766869878, rel=1e-4)
        assert p["age"] == pytest.approx(0.3233217886514252, rel=1e-4)

    def test_missing_rows_dropped_and_counted(self) -> None:
        df = _aml_frame()
        df.loc[len(df)] = [10.0, 1.0, math.nan, 60.0]
        result = cox_hazard_ratio(df, "time", "status", ["nonmaint"])
        assert result.n == 23
        assert "1 row(s) with missing values dropped" in result.notes
        assert result.hazard_ratio("nonmaint")[0] == pytest.approx(2.49810532617214, rel=1e-4)

    def test_errors(self) -> None:
        df = _aml_frame().assign(arm=AML_X)
        with pytest.raises(InputError, match="column not found"):
            cox_hazard_ratio(df, "time", "status", ["nope"])
        with pytest.raises(InputError, match="must be numeric"):
            cox_hazard_ratio(df, "time", "status", ["arm"])
        with pytest.raises(InputError, match="no covariates"):
            cox_hazard_ratio(df, "time", "status", [])
        with pytest.raises(KeyError):
            cox_hazard_ratio(df, "time", "status", ["age"]).hazard_ratio("nonmaint")


class TestMedianSplit:
    def test_odd_count_median_goes_low(self) -> None:
        # median of 1..5 is 3; 3 is "at or below" -> low
        split = median_split([5.0, 1.0, 3.0, 4.0, 2.0])
        assert split.tolist() == ["high", "low", "low", "high", "low"]
        assert split.attrs["threshold"] == 3.0

    def test_ties_at_median_and_missing(self) -> None:
        values = pd.Series([2.0, 3.0, 3.0, 3.0, 4.0, math.nan], index=list("abcdef"))
        split = median_split(values)  # median of the five values = 3
        assert split.index.tolist() == list("abcdef")
        assert split.tolist()[:5] == ["low", "low", "low", "low", "high"]
        assert pd.isna(split["f"])

    def test_error(self) -> None:
        with pytest.raises(InputError, match="no values"):
            median_split([math.nan])


class TestSummaryObject:
    def test_rescaled_and_rendering(self) -> None:
        summary = survival_summary(OS_D, OS_E, label="OS", time_unit="days")
        months = summary.rescaled(DAYS_PER_MONTH, "months")
        assert months.median == pytest.approx(147 / 30.4375)
        assert months.se == pytest.approx(summary.se / 30.4375)
        assert months.time_unit == "months"
        assert "rescaled from days to months" in months.notes[-1]
        assert summary.median == 147.0  # the original is unchanged
        assert months.summary.loc[0, "confidence"] == pytest.approx(0.95)
        assert "<table" in months.to_html()
        assert "OS" in str(months)


@requires_r
def test_live_r_matches_km_and_median() -> None:
    t = ", ".join(str(v) for v in AML_T)
    e = ", ".join(str(v) for v in AML_E)
    r = run_r(
        f"f <- survfit(Surv(c({t}), c({e})) ~ 1); s <- summary(f); "
        "cat(s$surv, s$std.err, summary(f)$table[c('median', '0.95LCL', '0.95UCL')])"
    )
    table = kaplan_meier(AML_T, AML_E).table
    n = len(table)
    np.testing.assert_allclose(table["survival"], r[:n], rtol=1e-9)
    np.testing.assert_allclose(table["se"], r[n : 2 * n], rtol=1e-9)
    assert median_survival(AML_T, AML_E, ci="brookmeyer-crowley") == tuple(r[2 * n :])
