"""Target engagement (Patlak summaries, paired comparison) and residence times against values
computed by hand, by SciPy and by R; the tables and the report section they feed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from immunopet.analysis.dosimetry import RESIDENCE_COLUMNS, TIA_COLUMNS
from immunopet.analysis.kinetics import KINETICS_COLUMNS, PlasmaInput, fit_patlak
from immunopet.analysis.results import StudyAnalysis
from immunopet.analysis.target_engagement import (
    JAUW_NONSPECIFIC_KI,
    MIN_PAIRS,
    kinetics_tables,
    target_engagement,
)
from immunopet.errors import InputError
from immunopet.report.html import render_report
from immunopet.stats import wilcoxon_signed_rank
from immunopet.study.model import AnalysisSettings

ZR89_HALF_LIFE_H = 78.41
WEIGHT_KG = 70.0
# plasma SUV = A1 exp(-a1 t) + A2 exp(-a2 t) (hours): a fast and a slow phase
A1, RATE1, A2, RATE2 = 6.0, 0.2, 8.0, 0.008
HOURS = (1.0, 72.0, 120.0, 168.0)
SAMPLE_HOURS = (0.083, 0.5, 1.0, 2.0, 72.0, 120.0, 168.0)


def plasma_suv(t: float) -> float:
    return A1 * math.exp(-RATE1 * t) + A2 * math.exp(-RATE2 * t)


def plasma_integral(t: float) -> float:
    """By hand: the integral of A exp(-a s) from 0 to t is A (1 - exp(-a t)) / a."""
    return A1 * (1 - math.exp(-RATE1 * t)) / RATE1 + A2 * (1 - math.exp(-RATE2 * t)) / RATE2


def tissue_suv(t: float, ki_ul_per_g_per_h: float, vt_ml_per_g: float) -> float:
    """C_T(t) = Ki * int_0^t C_p + VT * C_p(t), Ki in mL/(mL h) (density 1 g/mL)."""
    return ki_ul_per_g_per_h / 1000.0 * plasma_integral(t) + vt_ml_per_g * plasma_suv(t)


# ---------------------------------------------------------------------------- Patlak by hand
def test_patlak_fit_gives_back_ki_and_vt_of_a_known_plasma_curve() -> None:
    plasma = PlasmaInput(
        "sampled", "biexponential", SAMPLE_HOURS, (), biexponential=(A1, RATE1, A2, RATE2)
    )
    hours = np.array(HOURS)
    tissue = np.array([tissue_suv(t, 7.5, 0.8) for t in HOURS])
    fit = fit_patlak(hours, tissue, plasma)
    assert fit.ki_ul_per_g_per_h() == pytest.approx(7.5, rel=1e-9)
    assert fit.vt_ml_per_g() == pytest.approx(0.8, rel=1e-9)
    assert fit.r == pytest.approx(1.0, abs=1e-12)
    # the plot's x and y by hand at 72 h
    assert fit.x[1] == pytest.approx(plasma_integral(72.0) / plasma_suv(72.0), rel=1e-12)
    assert fit.y[1] == pytest.approx(tissue_suv(72.0, 7.5, 0.8) / plasma_suv(72.0), rel=1e-12)


def _study(
    ki: dict[tuple[str, str], float],
    vt: float = 0.5,
    organ: str = "liver",
    hours: tuple[float, ...] = HOURS,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Measurements, scans and blood samples of patients with a known Ki per series."""
    rows, scans, blood = [], [], []
    for (patient, series), value in ki.items():
        for t in hours:
            rows.append(
                {"patient": patient, "series": series, "hours_pi": t, "voi": organ,
                 "kind": "organ", "suv_mean": tissue_suv(t, value, vt)}
            )  # fmt: skip
            rows.append(
                {"patient": patient, "series": series, "hours_pi": t, "voi": "blood_pool",
                 "kind": "organ", "suv_mean": plasma_suv(t) * 0.6}
            )  # fmt: skip
            scans.append(
                {"patient": patient, "series": series, "weight_kg": WEIGHT_KG,
                 "injected_activity_bq": 37e6}
            )  # fmt: skip
        for t in SAMPLE_HOURS:
            # fraction of IA per mL = %IA/L / (100 * 1000 mL); SUV = that * weight in g
            percent = plasma_suv(t) / (WEIGHT_KG * 1000.0) * 1e5
            blood.append(
                {"patient": patient, "series": series, "hours_pi": t, "matrix": "plasma",
                 "percent_ia_per_l": percent}
            )  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(scans), pd.DataFrame(blood)


def test_summary_median_iqr_range_and_jauw_ratio_by_hand() -> None:
    ki = {(f"P{i}", "tracer-only"): v for i, v in enumerate((1.0, 2.0, 3.0, 4.0), start=1)}
    measurements, scans, blood = _study(ki)
    part = target_engagement(measurements, scans, blood=blood)
    assert set(part.fits["input"]) == {"sampled"}
    fitted = part.fits.set_index("patient")["ki_ul_per_g_per_h"]
    # sampled input: the bi-exponential fitted to exact samples; Ki back within 0.5 %
    for i, value in enumerate((1.0, 2.0, 3.0, 4.0), start=1):
        assert fitted[f"P{i}"] == pytest.approx(value, rel=5e-3)
    row = part.summary.set_index(["voi", "series"]).loc[("liver", "tracer-only")]
    assert row["n_vois"] == 4 and row["n_fitted"] == 4 and row["n_low_r"] == 0
    # quartiles of 1, 2, 3, 4 by linear interpolation (R type 7): 1.75, 2.5, 3.25
    assert row["ki_median"] == pytest.approx(2.5, rel=5e-3)
    assert row["ki_q1"] == pytest.approx(1.75, rel=5e-3)
    assert row["ki_q3"] == pytest.approx(3.25, rel=5e-3)
    assert (row["ki_min"], row["ki_max"]) == pytest.approx((1.0, 4.0), rel=5e-3)
    assert row["vt_median"] == pytest.approx(0.5, rel=2e-2)
    assert row["jauw_ki"] == 1.1
    assert row["ki_median_over_jauw"] == pytest.approx(2.5 / 1.1, rel=5e-3)
    # the points of the plot: y = C_T / C_p by hand, the line through them
    points = part.points[part.points["patient"] == "P2"]
    assert len(points) == 4
    assert points["y"].iloc[2] == pytest.approx(
        tissue_suv(120.0, 2.0, 0.5) / plasma_suv(120.0), rel=1e-3
    )
    assert np.allclose(points["y_fit"], points["y"], rtol=1e-3)
    assert part.flagged.empty and part.paired["n_pairs"].tolist() == [0]


def test_image_derived_input_when_there_are_no_samples() -> None:
    measurements, scans, _ = _study({("P1", "tracer-only"): 2.0})
    part = target_engagement(measurements, scans, blood=None)
    assert part.inputs == {"image": 1}
    assert part.fits["input"].tolist() == ["image"]
    assert math.isfinite(part.fits["ki_ul_per_g_per_h"].iloc[0])


def test_too_few_points_are_listed_with_why_and_a_note() -> None:
    measurements, scans, blood = _study({("P1", "tracer-only"): 2.0}, hours=(72.0, 120.0))
    part = target_engagement(measurements, scans, blood=blood)
    assert part.n_fitted == 0
    assert part.flagged["flag"].tolist() == ["fewer than 3 time points"]
    assert not part.flagged["fitted"].any()
    assert part.flag_summary.to_dict("records") == [
        {"kind": "organ", "reason": "fewer than 3 time points", "fitted": False, "n": 1}
    ]
    assert any(n.startswith("kinetics: no Patlak fit") for n in part.notes)
    # two points after the injection: no line, points still there for the plot
    assert len(part.points) == 2 and part.points["y_fit"].isna().all()


# ---------------------------------------------------------------------------- paired
def test_paired_comparison_six_patients_all_lower_exact_p() -> None:
    tracer = (6.0, 7.0, 8.0, 7.5, 6.5, 9.0)
    predose = (2.0, 1.5, 2.5, 1.8, 2.2, 3.0)
    ki = {(f"P{i}", "tracer-only"): v for i, v in enumerate(tracer)}
    ki |= {(f"P{i}", "predose"): v for i, v in enumerate(predose)}
    measurements, scans, blood = _study(ki)
    part = target_engagement(measurements, scans, blood=blood)
    row = part.paired.set_index("voi").loc["liver"]
    assert row["n_pairs"] == 6 and row["n_lower"] == 6
    # every difference negative: V = 0, exact two-sided p = 2 / 2**6 (R:
    # wilcox.test(predose, tracer, paired = TRUE) -> V = 0, p-value = 0.03125)
    assert row["statistic"] == 0.0
    assert row["p_value"] == pytest.approx(2 / 2**6, abs=1e-12)
    assert row["method"] == "exact"
    assert row["ki_median_reference"] == pytest.approx(np.median(tracer), rel=5e-3)
    assert row["median_difference"] == pytest.approx(
        np.median(np.subtract(predose, tracer)), rel=5e-3
    )
    assert len(part.pairs) == 6 and "liver" in part.tests


def test_too_few_pairs_say_so() -> None:
    ki = {("P1", "tracer-only"): 6.0, ("P1", "predose"): 2.0, ("P2", "tracer-only"): 7.0}
    measurements, scans, blood = _study(ki)
    part = target_engagement(measurements, scans, blood=blood)
    row = part.paired.set_index("voi").loc["liver"]
    assert row["n_pairs"] == 1
    assert math.isnan(row["p_value"])
    assert f"too few pairs for the signed-rank test (1 < {MIN_PAIRS}" in row["note"]
    assert part.tests == {}


# R 4.x: a <- c(1.83,2.10,0.95,4.2,3.3,2.2,1.1); b <- c(1.2,2.5,0.5,2.1,1.0,1.9,0.3)
# wilcox.test(a, b, paired=TRUE)                         V = 26, p = 0.046875 (exact)
# wilcox.test(a, b, paired=TRUE, exact=FALSE, correct=FALSE)    p = 0.0425224779980516
A = (1.83, 2.10, 0.95, 4.2, 3.3, 2.2, 1.1)
B = (1.2, 2.5, 0.5, 2.1, 1.0, 1.9, 0.3)


def test_wilcoxon_against_r_exact_and_asymptotic() -> None:
    result = wilcoxon_signed_rank(A, B, labels=("a", "b"))
    assert result.statistic == 26.0
    assert result.method == "exact"
    assert result.p_value == pytest.approx(0.046875, abs=1e-12)
    assert result.extra["p_asymptotic"] == pytest.approx(0.0425224779980516, rel=1e-12)
    assert result.n == (7,)
    assert result.p_value == pytest.approx(stats.wilcoxon(A, B).pvalue, rel=1e-12)


def test_wilcoxon_with_ties_and_a_zero_against_r() -> None:
    # R: c1 <- c(5,7,3,9,4,6,8,2); c2 <- c(4,5,4,6,2,6,5,1)
    # wilcox.test(c1, c2, paired=TRUE, exact=FALSE, correct=FALSE): V = 26, p = 0.0403197213958959
    c1, c2 = (5, 7, 3, 9, 4, 6, 8, 2), (4, 5, 4, 6, 2, 6, 5, 1)
    result = wilcoxon_signed_rank(c1, c2)
    assert result.statistic == 26.0
    assert result.method == "asymptotic"
    assert result.p_value == pytest.approx(0.0403197213958959, rel=1e-12)
    assert result.n == (8,) and result.extra["n_nonzero"] == 7.0
    assert any("zero difference" in note for note in result.notes)


def test_wilcoxon_refuses_what_it_cannot_test() -> None:
    with pytest.raises(InputError, match="too few complete pairs"):
        wilcoxon_signed_rank([1.0, math.nan], [2.0, 3.0])
    with pytest.raises(InputError, match="every paired difference is zero"):
        wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(InputError, match="differ in length"):
        wilcoxon_signed_rank([1.0, 2.0], [1.0])


# ---------------------------------------------------------------------------- residence
def test_residence_time_of_a_mono_exponential_by_hand() -> None:
    # decay-corrected liver SUV 10 exp(-0.01 t) at 24, 72, 120 h; weight 70 kg, 37 MBq
    hours = (24.0, 72.0, 120.0)
    suv = [10.0 * math.exp(-0.01 * t) for t in hours]
    measurements = pd.DataFrame(
        {"patient": "P1", "series": "tracer-only", "hours_pi": hours, "voi": "liver",
         "kind": "organ", "suv_mean": suv}
    )  # fmt: skip
    scans = pd.DataFrame(
        {"patient": ["P1"], "series": ["tracer-only"], "weight_kg": [70.0],
         "injected_activity_bq": [37e6]}
    )  # fmt: skip
    part = target_engagement(measurements, scans)
    # by hand: fraction of IA per mL = SUV / 70000 g; physical = that * 2**(-t / T)
    lam = math.log(2.0) / ZR89_HALF_LIFE_H
    a = [s / 70000.0 for s in suv]
    p = [ai * 2.0 ** (-t / ZR89_HALF_LIFE_H) for ai, t in zip(a, hours, strict=True)]
    head = a[0] * (1.0 - 2.0 ** (-hours[0] / ZR89_HALF_LIFE_H)) / lam
    trapezoids = (p[0] + p[1]) / 2 * 48.0 + (p[1] + p[2]) / 2 * 48.0
    tail = p[2] / lam
    tiac = head + trapezoids + tail
    residence_h = tiac * 1800.0  # ICRP 89 liver 1800 g at 1 g/mL
    row = part.residence_summary.set_index(["organ", "series"]).loc[("liver", "tracer-only")]
    assert row["n"] == 1
    assert row["residence_time_h_median"] == pytest.approx(residence_h, rel=1e-9)
    assert row["cumulated_activity_mbq_h_median"] == pytest.approx(residence_h * 37.0, rel=1e-9)
    assert row["tail_fraction_median"] == pytest.approx(tail / tiac, rel=1e-9)
    # the rule keeps only physical decay after the last scan: above the true integral of
    # the mono-exponential (a0 / (k + lambda)), and by less than the tail's share
    true = 10.0 / 70000.0 / (0.01 + lam) * 1800.0
    assert true < residence_h < true * 1.5


# ---------------------------------------------------------------------------- tables, report
def _analysis(part_study: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> StudyAnalysis:
    measurements, scans, blood = part_study
    empty = pd.DataFrame()
    return StudyAnalysis(
        name="Kinetics",
        tracer="",
        settings=AnalysisSettings(),
        scans=scans,
        measurements=measurements,
        failures=empty,
        schedule=empty,
        target_engagement=target_engagement(measurements, scans, blood=blood),
    )


def test_tables_are_machine_readable() -> None:
    tracer = (6.0, 7.0, 8.0, 7.5, 6.5, 9.0)
    ki = {(f"P{i}", "tracer-only"): v for i, v in enumerate(tracer)}
    ki |= {(f"P{i}", "predose"): v / 3 for i, v in enumerate(tracer)}
    tables = kinetics_tables(_analysis(_study(ki)).target_engagement)
    assert set(tables) == {
        "kinetics",
        "time_integrated_activity",
        "residence_times",
        "kinetics_summary",
        "kinetics_paired",
        "kinetics_flagged",
        "kinetics_flag_summary",
        "patlak_points",
        "residence_time_summary",
    }
    assert list(tables["patlak_points"].columns) == [
        "patient", "series", "voi", "kind", "hours_pi", "x_h", "y", "y_fit",
    ]  # fmt: skip
    assert tuple(tables["kinetics"].columns) == KINETICS_COLUMNS
    assert tuple(tables["time_integrated_activity"].columns) == TIA_COLUMNS
    assert tuple(tables["residence_times"].columns) == RESIDENCE_COLUMNS
    assert kinetics_tables(None) == {}
    assert set(JAUW_NONSPECIFIC_KI) == {"kidney", "liver", "lung", "spleen"}


def test_report_section_shows_the_analysis_numbers(tmp_path: Path) -> None:
    from immunopet.analysis.export import write_analysis_tables

    tracer = (6.0, 7.0, 8.0, 7.5, 6.5, 9.0)
    ki = {(f"P{i}", "tracer-only"): v for i, v in enumerate(tracer)}
    ki |= {(f"P{i}", "predose"): v / 3 for i, v in enumerate(tracer)}
    analysis = _analysis(_study(ki))
    index = render_report(analysis, tmp_path / "report", figures={})
    html = index.read_text(encoding="utf-8")
    section = html[html.index('<section id="kinetics"') :]
    section = section[: section.index("</section>")]
    assert "Target engagement (Patlak) and time-integrated activity" in section
    part = analysis.target_engagement
    assert part is not None
    median = part.summary.set_index(["voi", "series"]).loc[("liver", "tracer-only"), "ki_median"]
    assert f"{median:.2f}" in section
    assert "V = 0" in section and "0.031" in section  # the paired test, p = 2 / 64
    assert "Non-specific Ki (Jauw)" in section and "1.10" in section
    assert "at least 3 time points" in section
    assert "non-specific catabolism" in section
    assert "Residence time" in section
    folder = write_analysis_tables(analysis, tmp_path / "results")
    payload = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    assert payload["kinetics_paired"][0]["p_value"] == pytest.approx(2 / 64)
    assert (folder / "kinetics_summary.csv").is_file()


def test_kinetics_figures_are_drawn_by_the_workers(tmp_path: Path) -> None:
    import pickle

    from immunopet.report.figures_kinetics import kinetics_figure_jobs

    tracer = (6.0, 7.0, 8.0, 7.5, 6.5, 9.0)
    ki = {(f"P{i}", "tracer-only"): v for i, v in enumerate(tracer)}
    ki |= {(f"P{i}", "predose"): v / 3 for i, v in enumerate(tracer)}
    analysis = _analysis(_study(ki))
    assert analysis.target_engagement is not None and analysis.target_engagement.tests
    jobs = kinetics_figure_jobs(analysis, tmp_path)
    assert [job.key for job in jobs] == ["patlak", "ki_baselines", "residence"]
    for job in jobs:
        pickle.dumps(job)  # a job that cannot be pickled is drawn in the main process
        assert job.draw(job.path).stat().st_size > 5000
