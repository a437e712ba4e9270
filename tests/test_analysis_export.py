"""The machine-readable analysis tables, checked against values computed independently.

Every expected value here comes straight from the inputs (the measurement table, the clinical
sheet, the lesion table) with pandas, SciPy and lifelines, never from immunopet's own output;
the analysis plan is changed through a manifest (no code change) and the tables follow.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time
from scipy import stats

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.cohorts import biodistribution_cohorts, cohort_organ_uptake
from immunopet.analysis.export import TABLE_COLUMNS, analysis_tables, write_analysis_tables
from immunopet.analysis.results import StudyAnalysis
from immunopet.stats import DAYS_PER_MONTH
from immunopet.study.model import AnalysisPlan, IhcMarker, ResponsePlan, Study
from test_analysis_assemble import (  # noqa: F401  (fixtures)
    CLINICAL,
    LESIONS,
    _hand_results,
    hand,
    report_trial,
    trial_analysis,
)

REQUIRED = {
    "lesion_uptake": (
        "patient",
        "series",
        "lesion",
        "nominal_hours",
        "value",
        "long_axis_mm",
        "included",
        "reason",
    ),
    "patient_uptake": ("patient", "uptake", "n_lesions", "metric", "aggregate"),
    "tests": ("analysis", "test", "statistic", "p_value", "n", "groups", "group_medians"),
    "survival": (
        "endpoint",
        "group",
        "n",
        "events",
        "median",
        "ci_lower",
        "ci_upper",
        "restricted_mean",
        "threshold",
    ),
    "biodistribution": ("organ", "series", "nominal_hours", "n", "mean", "sd", "cohort"),
}
"""The columns issue 12 names for each table."""


def _hand_with(tmp_path: Path, plan: AnalysisPlan) -> StudyAnalysis:
    folder = _hand_results(tmp_path / "results")
    study = Study(name="hand", root=tmp_path, patients=(), plan=plan)
    return assemble_analysis(folder, study=study)


# ---------------------------------------------------------------------------- columns
def test_required_columns_present(hand: StudyAnalysis, tmp_path: Path) -> None:  # noqa: F811
    folder = write_analysis_tables(hand, tmp_path)
    assert folder == tmp_path / "analysis"
    for name, columns in REQUIRED.items():
        assert set(columns) <= set(TABLE_COLUMNS[name])
        table = pd.read_csv(folder / f"{name}.csv")
        assert set(columns) <= set(table.columns), name
    payload = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    assert set(REQUIRED) <= set(payload)
    assert payload["plan"]["analysis"]["split"] == "median-of-lesions"
    assert len(payload["lesion_uptake"]) == len(pd.read_csv(folder / "lesion_uptake.csv"))


# ---------------------------------------------------------------------------- hand-made
def test_hand_lesion_and_patient_uptake(hand: StudyAnalysis) -> None:  # noqa: F811
    lesions = hand.tables["lesion_uptake"]
    used = lesions[lesions["included"]]
    for patient, values in LESIONS.items():
        mine = used.loc[used["patient"] == patient, "value"].sort_values().tolist()
        assert mine == sorted(values)
    left = lesions[~lesions["included"]]
    assert left[["patient", "lesion", "value"]].values.tolist() == [["P4", "9", 15.0]]
    assert "spill-in" in left["reason"].item()
    patients = hand.tables["patient_uptake"].set_index("patient")
    for patient, values in LESIONS.items():
        assert patients.loc[patient, "uptake"] == pytest.approx(float(np.median(values)))
        assert patients.loc[patient, "n_lesions"] == len(values)
    assert set(patients["aggregate"]) == {"median"} and set(patients["metric"]) == {"suv_peak"}


def test_hand_tests_table_against_scipy(hand: StudyAnalysis) -> None:  # noqa: F811
    tests = hand.tables["tests"].set_index("analysis")
    # progression at 6 weeks = PFS event by day 42: P3 (20 d), P4 (40 d); not: P1, P2
    no = [*LESIONS["P1"], *LESIONS["P2"]]
    yes = [*LESIONS["P3"], *LESIONS["P4"]]
    reference = stats.mannwhitneyu(no, yes, method="asymptotic", use_continuity=False)
    row = tests.loc["SUVpeak: progression at 6 weeks (Mann-Whitney)"]
    u1 = float(reference.statistic)
    assert row["statistic"] == min(u1, len(no) * len(yes) - u1)  # SPSS prints the smaller U
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert row["n"] == len(no) + len(yes)
    assert f"{np.median(no):.6g}" in row["group_medians"]
    assert f"{np.median(yes):.6g}" in row["group_medians"]
    by_bor = tests.loc["SUVpeak: best overall response (Kruskal-Wallis)"]
    kw = stats.kruskal(LESIONS["P3"] + LESIONS["P4"], LESIONS["P1"], LESIONS["P2"])
    assert by_bor["statistic"] == pytest.approx(kw.statistic, rel=1e-12)
    assert by_bor["p_value"] == pytest.approx(kw.pvalue, rel=1e-12)
    assert by_bor["groups"] == "PD (n = 3); SD (n = 2); PR (n = 3)"


def test_hand_survival_table_against_lifelines(hand: StudyAnalysis) -> None:  # noqa: F811
    survival = hand.tables["survival"]
    cohort = survival[survival["group"] == "all"].set_index("endpoint")
    for endpoint in ("PFS", "OS"):
        key = endpoint.lower()
        fitter = KaplanMeierFitter().fit(CLINICAL[f"{key}_days"], CLINICAL[f"{key}_event"])
        assert cohort.loc[endpoint, "median"] * DAYS_PER_MONTH == pytest.approx(
            fitter.median_survival_time_
        )
        horizon = float(CLINICAL[f"{key}_days"].max())
        rmst = restricted_mean_survival_time(fitter, t=horizon)
        assert cohort.loc[endpoint, "restricted_mean"] * DAYS_PER_MONTH == pytest.approx(rmst)
    # OS by hand: S = 3/4 on [60, 200), 1/2 on [200, 400), 1/4 on [400, 700]:
    # 60 + 0.75 * 140 + 0.5 * 200 + 0.25 * 300 = 340 days
    assert cohort.loc["OS", "restricted_mean"] * DAYS_PER_MONTH == pytest.approx(340.0)
    split = survival[(survival["endpoint"] == "PFS") & (survival["group"] != "all")]
    # threshold: median of all 8 analysed lesions; patients by their mean uptake
    everything = [v for values in LESIONS.values() for v in values]
    assert set(split["threshold"]) == {float(np.median(everything))}
    high = [p for p, v in LESIONS.items() if np.mean(v) > np.median(everything)]
    assert high == ["P2"]
    row = split.set_index("group").loc["low"]
    low_days = CLINICAL.loc[~CLINICAL["patient"].isin(high), "pfs_days"]
    fitter = KaplanMeierFitter().fit(low_days, [1] * len(low_days))
    assert row["median"] * DAYS_PER_MONTH == pytest.approx(fitter.median_survival_time_)
    assert row["n"] == 3


# ---------------------------------------------------------------------------- plan changes
@pytest.mark.parametrize(
    ("aggregate", "reducer"),
    [("mean", np.mean), ("max", np.max), ("geometric_mean", stats.gmean)],
)
def test_patient_aggregate_follows_the_plan(
    tmp_path: Path, aggregate: str, reducer: object
) -> None:
    analysis = _hand_with(tmp_path, AnalysisPlan(patient_aggregate=aggregate))  # type: ignore[arg-type]
    patients = analysis.tables["patient_uptake"].set_index("patient")
    for patient, values in LESIONS.items():
        assert patients.loc[patient, "uptake"] == pytest.approx(float(reducer(values)))  # type: ignore[operator]
    assert set(patients["aggregate"]) == {aggregate}
    title = next(k for k in analysis.tests if "TPS group" in k)
    assert title.startswith({"mean": "Mean", "max": "Maximum"}.get(aggregate, "Geometric mean"))


def test_uptake_metric_follows_the_plan(tmp_path: Path) -> None:
    analysis = _hand_with(tmp_path, AnalysisPlan(uptake_metric="suv_mean"))
    lesions = analysis.tables["lesion_uptake"]
    used = lesions[lesions["included"]]
    # the hand-made suv_mean is 0.8 x the 120 h SUVpeak
    for patient, values in LESIONS.items():
        mine = used.loc[used["patient"] == patient, "value"].sort_values().tolist()
        assert mine == pytest.approx(sorted(0.8 * v for v in values))
    assert set(used["metric"]) == {"suv_mean"}
    assert "SUVmean: progression at 6 weeks (Mann-Whitney)" in analysis.tests


@pytest.mark.parametrize(
    ("split", "threshold", "high"),
    [
        ("median-of-patients", 3.5, {"P2", "P4"}),  # means 2.5, 7, 1, 4.5 -> median 3.5
        (2.0, 2.0, {"P1", "P2", "P4"}),
    ],
)
def test_split_follows_the_plan(
    tmp_path: Path, split: str | float, threshold: float, high: set[str]
) -> None:
    analysis = _hand_with(tmp_path, AnalysisPlan(split=split))
    part = analysis.split_survival["PFS"]
    assert part.threshold == threshold
    assert {
        p for p, g in zip(part.data["patient"], part.data["group"], strict=True) if g == "high"
    } == high


def test_response_definition_and_ihc_markers_follow_the_plan(tmp_path: Path) -> None:
    plan = AnalysisPlan(
        response=ResponsePlan(landmark_weeks=0.0, progression=("PD", "SD")),
        ihc=(IhcMarker("cps_percent", "CPS", (50.0,)),),
    )
    analysis = _hand_with(tmp_path, plan)
    mw = analysis.tests["SUVpeak: progression (Mann-Whitney)"]
    # categories alone: PD and SD progress -> P1, P3, P4 vs P2
    assert mw.n == (3, 5)
    cps = analysis.tests["Median SUVpeak per patient: CPS group (Kruskal-Wallis)"]
    assert cps.groups == ("<50", "≥50")  # CPS 10 | 90, 60 (P3 NE)


def test_ne_rule(tmp_path: Path) -> None:
    # P4 becomes NE; landmark: his PFS (40 d, event) still says progression; exclude drops him
    sheet = CLINICAL.copy()
    sheet.loc[sheet["patient"] == "P4", "bor"] = "NE"
    folder = _hand_results(tmp_path / "results")
    sheet.to_parquet(folder / "clinical.parquet")
    counts = {}
    for rule in ("landmark", "exclude", "no-progression"):
        plan = AnalysisPlan(response=ResponsePlan(ne_rule=rule))  # type: ignore[arg-type]
        study = Study(name="hand", root=tmp_path, patients=(), plan=plan)
        counts[rule] = (
            assemble_analysis(folder, study=study)
            .tests["SUVpeak: progression at 6 weeks (Mann-Whitney)"]
            .n
        )
    assert counts == {"landmark": (5, 3), "exclude": (5, 1), "no-progression": (7, 1)}


# ---------------------------------------------------------------------------- cohorts
def test_biodistribution_uses_the_full_schedule_cohort() -> None:
    scans = pd.DataFrame(
        {
            "patient": ["A", "A", "A", "B", "B"],
            "series": "s1",
            "nominal_hours": [1, 72, 120, 72, 120],
        }
    )
    measurements = scans.assign(
        voi="liver",
        kind="organ",
        hours_pi=scans["nominal_hours"].astype(float),
        suv_mean=[7.0, 6.0, 5.0, 2.0, 1.0],
    )
    plan = AnalysisPlan()
    cohorts = biodistribution_cohorts(scans, plan)
    assert cohorts == {"s1": ["A"]}
    table = cohort_organ_uptake(measurements, cohorts, plan)
    assert table["mean"].tolist() == [7.0, 6.0, 5.0]  # A only: B would pull 72/120 h down
    assert set(table["cohort"]) == {"full schedule: A"}
    everyone = AnalysisPlan(biodistribution_cohort="all")
    table = cohort_organ_uptake(measurements, biodistribution_cohorts(scans, everyone), everyone)
    assert table["mean"].tolist() == [7.0, 4.0, 3.0]


# ---------------------------------------------------------------------------- the trial
@pytest.mark.slow
def test_trial_tables_from_measurements(
    report_trial: Path,  # noqa: F811
    trial_analysis: StudyAnalysis,  # noqa: F811
) -> None:
    tables = analysis_tables(trial_analysis)
    rows = pd.read_csv(report_trial / "results" / "measurements.csv")
    lesions = pd.read_csv(report_trial / "lesions.csv")
    chosen = rows[
        (rows["kind"] == "lesion")
        & (rows["series"] == "tracer-only")
        & (rows["nominal_hours"] == 120)
    ].assign(lesion=lambda f: f["voi"].astype(int))
    chosen = chosen.merge(lesions, on=["patient", "lesion"], suffixes=("_voi", ""))
    chosen = chosen[
        chosen["fdg_positive"]
        & (chosen["long_axis_mm"] >= 20)
        & ~((chosen["patient"] == "P03") & (chosen["lesion"] == 2))  # the manifest's exclusion
    ]
    mine = tables["lesion_uptake"]
    used = mine[mine["included"]].assign(lesion=lambda f: f["lesion"].astype(int))
    expected = chosen.set_index(["patient", "lesion"])["suv_peak"].sort_index()
    got = used.set_index(["patient", "lesion"])["value"].sort_index()
    assert got.index.tolist() == expected.index.tolist()
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)
    medians = chosen.groupby("patient")["suv_peak"].median()
    patients = tables["patient_uptake"].set_index("patient")
    for patient, value in medians.items():
        assert patients.loc[patient, "uptake"] == pytest.approx(value, rel=1e-12)
    # biodistribution: every tiny patient has the full schedule (72 and 120 h)
    organs = rows[rows["kind"] == "organ"]
    by_hand = organs.groupby(["voi", "series", "nominal_hours"])["suv_mean"].agg(
        ["mean", "std", "size"]
    )
    bio = tables["biodistribution"].set_index(["organ", "series", "nominal_hours"])
    for key, ref in by_hand.iterrows():
        assert bio.loc[key, "mean"] == pytest.approx(ref["mean"], rel=1e-12)
        assert bio.loc[key, "sd"] == pytest.approx(ref["std"], rel=1e-9)
        assert bio.loc[key, "n"] == ref["size"]
    clinical = pd.read_csv(report_trial / "clinical.csv")
    # progression at 6 weeks: a PFS event by day 42, from the clinical sheet
    early = clinical[(clinical["pfs_event"] == 1) & (clinical["pfs_days"] <= 42)]["patient"]
    progressed = chosen["patient"].isin(set(early))
    no, yes = chosen.loc[~progressed, "suv_peak"], chosen.loc[progressed, "suv_peak"]
    reference = stats.mannwhitneyu(no, yes, method="asymptotic", use_continuity=False)
    row = (
        tables["tests"].set_index("analysis").loc["SUVpeak: progression at 6 weeks (Mann-Whitney)"]
    )
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
    u1 = float(reference.statistic)
    assert row["statistic"] == min(u1, len(no) * len(yes) - u1)
    assert row["group_medians"] == (
        f"no progression at 6 wk: {np.median(no):.6g}; progression at 6 wk: {np.median(yes):.6g}"
    )
    survival = tables["survival"].set_index(["endpoint", "group"])
    fitter = KaplanMeierFitter().fit(clinical["pfs_days"], clinical["pfs_event"])
    assert survival.loc[("PFS", "all"), "median"] * DAYS_PER_MONTH == pytest.approx(
        fitter.median_survival_time_
    )
    assert survival.loc[("PFS", "high"), "threshold"] == pytest.approx(chosen["suv_peak"].median())


@pytest.mark.slow
def test_changing_study_toml_changes_the_results(report_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    """`immunopet report --manifest` with an [analysis] table: new numbers, no code change."""
    from immunopet.cli import report as cli_report

    results = tmp_path / "results"
    results.mkdir()
    for file in (report_trial / "results").glob("*.parquet"):
        shutil.copy(file, results / file.name)
    text = (report_trial / "study.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[study]",
        '[analysis]\nuptake_metric = "suv_max"\npatient_aggregate = "mean"\nsplit = 1.0\n\n[study]',
        1,
    )
    manifest = report_trial / "study_suvmax.toml"  # beside the data: its paths stay valid
    manifest.write_text(text, encoding="utf-8")
    parser = argparse.ArgumentParser()
    cli_report.register(parser.add_subparsers())
    argv = ["report", str(results), "-o", str(tmp_path / "out"), "--manifest", str(manifest)]
    args = parser.parse_args([*argv, "--no-qc"])
    assert args.func(args) == 0
    patients = pd.read_csv(results / "analysis" / "patient_uptake.csv").set_index("patient")
    assert set(patients["metric"]) == {"suv_max"} and set(patients["aggregate"]) == {"mean"}
    lesions = pd.read_csv(results / "analysis" / "lesion_uptake.csv")
    used = lesions[lesions["included"]]
    rows = pd.read_csv(report_trial / "results" / "measurements.csv")
    rows = rows[(rows["kind"] == "lesion") & (rows["series"] == "tracer-only")]
    rows = rows[rows["nominal_hours"] == 120].assign(voi=lambda f: f["voi"].astype(str))
    suv_max = rows.set_index(["patient", "voi"])["suv_max"]
    for patient, lesion, value in used[["patient", "lesion", "value"]].itertuples(index=False):
        assert value == pytest.approx(suv_max.loc[(patient, str(lesion))], rel=1e-12)
    means = used.groupby("patient")["value"].mean()
    for patient, value in means.items():
        assert patients.loc[patient, "uptake"] == pytest.approx(value, rel=1e-12)
    survival = pd.read_csv(results / "analysis" / "survival.csv")
    assert set(survival["threshold"].dropna()) == {1.0}
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "SUVmax: progression at 6 weeks" in html


def test_blood_summary_over_the_cohort_by_sampling_time() -> None:
    from immunopet.analysis.cohorts import blood_summary

    # A: full schedule (5 min, 60 min, 72 h); B: labels 1, 2 = 5 min and 72 h
    blood = pd.DataFrame(
        {
            "patient": ["A", "A", "A", "B", "B", "C", "C", "C"],
            "series": "s1",
            "sample": ["1", "2", "3", "1", "2", "1", "2", "3"],
            "matrix": "plasma",
            "hours_pi": [0.08, 1.0, 72.0, 0.09, 71.0, 0.1, 1.05, 73.0],
            "percent_ia_per_l": [20.0, 18.0, 6.0, 30.0, 3.0, 22.0, 17.0, 8.0],
        }
    )
    plan = AnalysisPlan()
    summary = blood_summary(blood, {"s1": ["A", "C"]}, plan)
    assert summary["sample"].tolist() == ["1", "2", "3"]
    assert summary["mean"].tolist() == [21.0, 17.5, 7.0]
    assert summary["sd"].tolist() == pytest.approx(
        [np.std([20, 22], ddof=1)] * 1 + [np.std([18, 17], ddof=1), np.std([6, 8], ddof=1)]
    )
    assert set(summary["cohort"]) == {"full schedule: A, C"}
    everyone = blood_summary(blood, {"s1": ["A", "B", "C"]}, plan)
    # by time, not by label: B's sample "2" (71 h) pools with the 72 h samples
    assert everyone["mean"].tolist() == pytest.approx([24.0, 17.5, 17.0 / 3])


def test_a_table_this_analysis_does_not_have_is_not_left_from_an_earlier_one(
    hand: StudyAnalysis,  # noqa: F811
    tmp_path: Path,
) -> None:
    from immunopet.analysis.export import OPTIONAL_TABLES

    folder = tmp_path / "analysis"
    folder.mkdir()
    # an earlier analysis of another plan wrote every optional table; a file of the user's
    for name in OPTIONAL_TABLES:
        (folder / f"{name}.csv").write_text("candidate,auc_or_c\nuptake,0.9\n")
    (folder / "my_notes.csv").write_text("mine\n")
    lacking = set(OPTIONAL_TABLES) - set(analysis_tables(hand))
    assert lacking == {"fdg_lesions"}  # the hand-built results have no FDG scans
    write_analysis_tables(hand, tmp_path)
    written = set(json.loads((folder / "analysis.json").read_text())) - {"plan"}
    assert {p.stem for p in folder.glob("*.csv")} == written | {"my_notes"}
    assert not lacking & written


def test_optional_tables_name_every_table_written_only_when_computed(
    trial_analysis: StudyAnalysis,  # noqa: F811
) -> None:
    from immunopet.analysis.export import OPTIONAL_TABLES

    names = set(analysis_tables(trial_analysis))
    assert names == set(TABLE_COLUMNS) | set(OPTIONAL_TABLES)  # a study that has every part


def test_the_blood_pool_is_the_organ_the_settings_name(report_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    """A study whose blood-pool VOI is called "aorta" (``[settings] reference_organ``) gets
    the same numbers as one calling it "blood_pool": tumour-to-blood ratios, visibility, the
    image-derived plasma input and the blood comparison used "blood_pool" whatever the
    settings said (the Patlak fits then took the aorta for a tissue)."""
    from dataclasses import replace

    from immunopet.study.manifest import load_manifest

    study = load_manifest(report_trial / "study.toml")
    renamed = tmp_path / "results"
    renamed.mkdir()
    for file in (report_trial / "results").glob("*.parquet"):
        frame = pd.read_parquet(file)
        if "voi" in frame.columns:
            frame["voi"] = frame["voi"].replace("blood_pool", "aorta")
        frame.to_parquet(renamed / file.name)
    aorta = replace(study, settings=replace(study.settings, reference_organ="aorta"))
    expected = analysis_tables(assemble_analysis(report_trial / "results", study=study))
    found = analysis_tables(assemble_analysis(renamed, study=aorta))
    assert set(found) == set(expected)
    assert "kinetics" in found and "tests" in found
    for name, table in expected.items():
        other = found[name].replace("aorta", "blood_pool")
        columns = list(table.columns)
        left = table.astype(str).sort_values(columns).reset_index(drop=True)
        right = other.astype(str).sort_values(columns).reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, obj=name)


def test_parts_not_computed_for_a_wrong_input_are_shown_by_the_command(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A lesion table naming lesions the run did not measure ("L1" for VOI "1"): the report
    says per-patient uptake was not computed, and so does the command's output now."""
    from immunopet.cli.main import main

    results = tmp_path / "results"
    results.mkdir()
    for file in (report_trial / "results").glob("*.parquet"):
        shutil.copy(file, results / file.name)
    table = pd.read_csv(report_trial / "lesions.csv", dtype=str)
    table["lesion"] = "L" + table["lesion"]
    table.to_csv(report_trial / "lesions_renamed.csv", index=False)
    text = (report_trial / "study.toml").read_text(encoding="utf-8")
    assert 'lesions = "lesions.csv"' in text
    manifest = report_trial / "study_renamed_lesions.toml"  # beside the data
    manifest.write_text(text.replace('lesions = "lesions.csv"', 'lesions = "lesions_renamed.csv"'))
    argv = ["report", str(results), "-o", str(tmp_path / "out"), "--no-qc"]
    assert main([*argv, "--manifest", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert (
        "immunopet report: warning: analysis: per-patient uptake: not computed (lesions_table: "
        "lesion: measured lesion missing from the lesion table (found 'P01/1'"
    ) in err
    assert str(report_trial) not in err  # the study's paths stay out of the output
    assert main([*argv, "--manifest", str(report_trial / "study.toml")]) == 0
    assert "warning: analysis" not in capsys.readouterr().err  # the right table: nothing to say


def test_measured_patients_without_a_clinical_row_are_a_problem_not_only_a_note(
    report_trial: Path,  # noqa: F811
) -> None:
    """The response tests then run on fewer patients than were measured: the command shows it
    (``StudyAnalysis.problems``), the report notes it."""
    from dataclasses import replace

    from immunopet.study.manifest import load_manifest

    study = load_manifest(report_trial / "study.toml")
    clinical = pd.read_csv(report_trial / "clinical.csv", dtype=str)
    first = str(clinical["patient"].iloc[0])
    clinical.iloc[1:].to_csv(report_trial / "clinical_short.csv", index=False)
    short = replace(study, inputs=replace(study.inputs, clinical=Path("clinical_short.csv")))
    analysis = assemble_analysis(report_trial / "results", study=short)
    note = (
        f"lesions of patient(s) without a clinical row left out of the response analyses: {first}"
    )
    assert note in analysis.notes and note in analysis.problems
    assert assemble_analysis(report_trial / "results", study=study).problems == []
