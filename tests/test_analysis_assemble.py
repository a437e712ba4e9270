"""assemble_analysis: the whole analysis of a study from its results folder.

Two kinds of data:

* a hand-made results folder (Parquet exports of four patients written by code, no images),
  fast, whose numbers are checked against SciPy and hand calculations;
* the ``tiny`` synthetic trial (3 patients, 2 series, 72 h and 120 h) run through the
  pipeline once per session (about 20 s; the tests using it are marked slow). The fixture
  is shared with ``test_report_figures.py``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy import stats

from immunopet.analysis.assemble import (
    KRUSKAL_BOR,
    KRUSKAL_CPS,
    KRUSKAL_TPS,
    MANN_WHITNEY_PROGRESSION,
    SPEARMAN_CPS,
    assemble_analysis,
)
from immunopet.analysis.biodistribution import ORGAN_ORDER
from immunopet.analysis.results import StudyAnalysis
from immunopet.errors import InputError
from immunopet.stats import DAYS_PER_MONTH
from immunopet.study.manifest import load_manifest

IDENTIFIERS = ("SYN-", "SYNTHETIC")


# ---------------------------------------------------------------------------- shared trial
def generate_report_trial(base: Path) -> Path:
    """The tiny synthetic trial, run through the pipeline (generated once, then reused)."""
    from immunopet.study.runner import run_study
    from immunopet.synthetic.trial import generate_trial

    root = base / "report_tiny_trial"
    if not (root / "results" / "provenance.parquet").exists():  # written by the run's end
        generate_trial(root, preset="tiny", seed=0)
        run_study(
            load_manifest(root / "study.toml"),
            root / "results",
            workers=1,
            progress=False,
            manifest_path=root / "study.toml",
        )
    return root


@pytest.fixture(scope="session")
def report_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_report_trial(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def trial_analysis(report_trial: Path) -> StudyAnalysis:
    return assemble_analysis(report_trial / "results")


# ---------------------------------------------------------------------------- hand-made results
PATIENTS = ("P1", "P2", "P3", "P4")
# lesion SUVpeak at 120 h (tracer-only); lesion "9" of P4 is excluded by the study
LESIONS = {
    "P1": [2.0, 3.0],
    "P2": [6.0, 8.0, 7.0],
    "P3": [1.0],
    "P4": [5.0, 4.0],
}
CLINICAL = pd.DataFrame(
    {
        "patient": PATIENTS,
        "age": [60, 55, 70, 65],
        "sex": ["F", "M", "M", "F"],
        "histology": "Adenocarcinoma",
        "tps_percent": ["0", "100", "0", "20"],
        "cps_percent": ["10", "90", "NE", "60"],
        "treatment_cycles": [4, 10, 1, 6],
        "bor": ["SD", "PR", "PD", "PD"],
        "stop_reason": "PD",
        "pfs_days": [100, 300, 20, 40],
        "pfs_event": [1, 1, 1, 1],
        "os_days": [400, 700, 60, 200],
        "os_event": [1, 0, 1, 1],
        "rnaseq_signature": [0.2, 0.9, 0.1, 0.4],
    }
)


def _hand_results(folder: Path) -> Path:
    """Parquet exports as run_study writes them (no database, no manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    scans: list[dict[str, Any]] = []
    for patient in PATIENTS:
        for hours in (72.0, 120.0):
            scan_id = f"{patient}/tracer-only/{hours:g}h"
            scans.append(
                {
                    "scan_id": scan_id,
                    "patient": patient,
                    "series": "tracer-only",
                    "nominal_hours": hours,
                    "hours_pi": hours + 0.5,
                    "weight_kg": 70.0,
                    "warnings": "a scan warning" if patient == "P1" else "",
                }
            )
            for organ, value in (("blood_pool", 2.0 if hours == 72 else 1.5), ("liver", 6.0)):
                rows.append(
                    {
                        "patient": patient,
                        "series": "tracer-only",
                        "hours_pi": hours + 0.5,
                        "voi": organ,
                        "kind": "organ",
                        "suv_mean": value,
                        "suv_peak": value,
                        "long_axis_mm": 20.0,
                        "scan_id": scan_id,
                        "nominal_hours": hours,
                        "method": "sphere",
                        "excluded": False,
                        "warnings": "",
                    }
                )
            values = [*LESIONS[patient], *([15.0] if patient == "P4" else [])]
            names = [str(i + 1) for i in range(len(LESIONS[patient]))]
            names += ["9"] if patient == "P4" else []
            for name, value in zip(names, values, strict=True):
                rows.append(
                    {
                        "patient": patient,
                        "series": "tracer-only",
                        "hours_pi": hours + 0.5,
                        "voi": name,
                        "kind": "lesion",
                        "suv_mean": value * 0.8,
                        "suv_peak": value if hours == 120 else value * 0.9,
                        "long_axis_mm": 25.0,
                        "scan_id": scan_id,
                        "nominal_hours": hours,
                        "method": "label-map",
                        "excluded": name == "9",
                        "exclusion_reason": "spill-in" if name == "9" else None,
                        "warnings": "near the spleen" if name == "9" else "",
                    }
                )
    pd.DataFrame(scans).to_parquet(folder / "scans.parquet")
    pd.DataFrame(rows).to_parquet(folder / "measurements.parquet")
    CLINICAL.to_parquet(folder / "clinical.parquet")
    return folder


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudyAnalysis]:
    folder = _hand_results(tmp_path_factory.mktemp("hand") / "results")
    yield assemble_analysis(folder)


def _lesion_values(patients: tuple[str, ...]) -> list[float]:
    return [v for p in patients for v in LESIONS[p]]


def test_hand_group_tests_match_scipy(hand: StudyAnalysis) -> None:
    # progression at 6 weeks = BOR PD: P3, P4; not: P1 (SD), P2 (PR); lesion 9 of P4 excluded
    no, yes = _lesion_values(("P1", "P2")), _lesion_values(("P3", "P4"))
    expected = stats.mannwhitneyu(no, yes, method="asymptotic", use_continuity=False)
    result = hand.tests[MANN_WHITNEY_PROGRESSION]
    assert result.n == (5, 3)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.extra["median no progression at 6 wk"] == 6.0  # median of 2, 3, 6, 7, 8
    kw = stats.kruskal(LESIONS["P2"], LESIONS["P1"], _lesion_values(("P3", "P4")))
    by_bor = hand.tests[KRUSKAL_BOR]
    assert by_bor.groups == ("PD", "SD", "PR")  # the plan's order (paper's Methods)
    assert by_bor.p_value == pytest.approx(kw.pvalue, rel=1e-12)
    # per-patient medians: P1 2.5, P2 7, P3 1, P4 4.5; TPS groups <1%: P1, P3; 1-49%: P4;
    # >=50%: P2
    tps = stats.kruskal([2.5, 1.0], [4.5], [7.0])
    assert hand.tests[KRUSKAL_TPS].p_value == pytest.approx(tps.pvalue, rel=1e-12)
    # CPS: P1 10 (1-49%), P2 90 and P4 60 (>=50%), P3 not evaluable
    cps = stats.kruskal([2.5], [7.0, 4.5])
    assert hand.tests[KRUSKAL_CPS].p_value == pytest.approx(cps.pvalue, rel=1e-12)
    rho = stats.spearmanr([2.5, 7.0, 4.5], [10.0, 90.0, 60.0])
    assert hand.tests[SPEARMAN_CPS].statistic == pytest.approx(rho.statistic, rel=1e-12)


def test_hand_survival_by_hand(hand: StudyAnalysis) -> None:
    # PFS 20, 40, 100, 300 days, all events: S = 0.75, 0.5 (40 d), ... -> median 40 d
    assert hand.cohort_survival["PFS"].median == pytest.approx(40 / DAYS_PER_MONTH)
    # OS 60 (1), 200 (1), 400 (1), 700 (0): S(200) = 0.5 -> median 200 d
    assert hand.cohort_survival["OS"].median == pytest.approx(200 / DAYS_PER_MONTH)
    assert hand.cohort_survival["OS"].time_unit == "months"
    # the paper's Methods: threshold = median SUVpeak of all lesions of the analysis
    # (1, 2, 3, 4, 5, 6, 7, 8 -> 4.5); patients by mean uptake: P1 2.5, P2 7, P3 1, P4 4.5
    # (not above 4.5): high P2; low P1, P3, P4
    split = hand.split_survival["PFS"]
    assert split.threshold == 4.5
    assert split.threshold_rule == "median of all 8 lesions"
    assert dict(zip(split.data["patient"], split.data["group"], strict=True)) == {
        "P1": "low",
        "P2": "high",
        "P3": "low",
        "P4": "low",
    }
    reference = logrank_test([300], [100, 20, 40], [1], [1, 1, 1])
    assert split.logrank is not None
    assert split.logrank.p_value == pytest.approx(reference.p_value, rel=1e-9)
    assert split.summaries["high"].median == pytest.approx(300 / DAYS_PER_MONTH)
    # low group 20, 40, 100: S = 2/3, 1/3, 0 -> median 40 d
    assert split.summaries["low"].median == pytest.approx(40 / DAYS_PER_MONTH)


def test_hand_exclusions_warnings_and_biomarkers(hand: StudyAnalysis) -> None:
    assert hand.uptake is not None
    flagged = hand.uptake.excluded
    assert flagged[["patient", "lesion", "rule"]].values.tolist() == [["P4", "9", "flagged"]]
    assert "P1/tracer-only/72h: a scan warning" in hand.warnings
    assert "P4/tracer-only/120h lesion 9: near the spleen" in hand.warnings
    assert len(hand.warnings) == len(set(hand.warnings))
    assert hand.biomarkers is not None
    table = hand.biomarkers.table
    assert list(table["candidate"]) == [
        "Median SUVpeak of lesions",
        "PD-L1 TPS",
        "PD-L1 CPS",
        "rnaseq_signature",
    ]
    # the responder (P2, PR) has the highest RNA-seq score of all: AUC 1
    assert table.set_index("candidate").loc["rnaseq_signature", "auc"] == 1.0


def test_hand_missing_inputs_are_notes_not_errors(hand: StudyAnalysis) -> None:
    assert hand.blood is None and hand.visibility is None and hand.adverse_events is None
    assert hand.predose_ratio is None
    text = " | ".join(hand.notes)
    assert "no predose series" in text
    assert "no blood samples" in text
    assert "no baseline lesion table" in text
    assert "no adverse-event list" in text
    assert hand.settings.analysis_hours == 120.0  # defaults: no provenance
    assert "analysis settings unknown" in text


def test_without_clinical_sheet(tmp_path: Path) -> None:
    folder = _hand_results(tmp_path / "results")
    (folder / "clinical.parquet").unlink()
    analysis = assemble_analysis(folder)
    assert analysis.tests == {} and analysis.cohort_survival == {}
    assert analysis.uptake is not None and analysis.organ_uptake is not None
    assert any("no clinical sheet" in note for note in analysis.notes)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no results found"):
        assemble_analysis(tmp_path)


# ---------------------------------------------------------------------------- the trial
def _frames(analysis: StudyAnalysis) -> Iterator[pd.DataFrame]:
    for item in dataclasses.fields(analysis):
        value = getattr(analysis, item.name)
        if isinstance(value, pd.DataFrame):
            yield value
        elif dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                inner = getattr(value, sub.name)
                if isinstance(inner, pd.DataFrame):
                    yield inner
    for split in analysis.split_survival.values():
        yield split.data
    for result in [*analysis.tests.values(), *analysis.cohort_survival.values()]:
        yield result.summary


@pytest.mark.slow
def test_trial_organ_uptake_shape(trial_analysis: StudyAnalysis) -> None:
    organs = trial_analysis.organ_uptake
    assert organs is not None
    assert len(organs) == 7 * 2 * 2
    assert set(organs["organ"]) == set(ORGAN_ORDER)
    assert set(organs["series"]) == {"tracer-only", "predose"}
    assert set(organs["nominal_hours"]) == {72.0, 120.0}
    assert (organs["n"] == 3).all()
    assert trial_analysis.predose_ratio is not None
    assert len(trial_analysis.schedule) == 12


@pytest.mark.slow
def test_trial_cohort_survival_matches_hand_values(
    report_trial: Path, trial_analysis: StudyAnalysis
) -> None:
    # clinical.csv of tiny (Table 1 rows 1, 7, 9): PFS 86, 183, 9 days, all events:
    # S(9) = 2/3, S(86) = 1/3 -> median 86 d. OS 823 (1), 760 (0), 15 (1): S(15) = 2/3,
    # censored at 760, S(823) = 0 -> median 823 d.
    pfs, os_ = trial_analysis.cohort_survival["PFS"], trial_analysis.cohort_survival["OS"]
    assert pfs.median == pytest.approx(86 / 30.4375)
    assert os_.median == pytest.approx(823 / 30.4375)
    clinical = pd.read_csv(report_trial / "clinical.csv")
    fitter = KaplanMeierFitter().fit(clinical["pfs_days"], clinical["pfs_event"])
    assert pfs.median * DAYS_PER_MONTH == pytest.approx(fitter.median_survival_time_)


@pytest.mark.slow
def test_trial_exclusion_and_tests(report_trial: Path, trial_analysis: StudyAnalysis) -> None:
    uptake = trial_analysis.uptake
    assert uptake is not None
    spleen = uptake.excluded[
        (uptake.excluded["patient"] == "P03") & (uptake.excluded["lesion"] == "2")
    ]
    assert len(spleen) == 1 and "user" in spleen["rule"].item()
    assert "spill-in from the spleen" in spleen["reason"].item()
    assert set(trial_analysis.tests) == {
        MANN_WHITNEY_PROGRESSION,
        KRUSKAL_BOR,
        KRUSKAL_TPS,
        KRUSKAL_CPS,
        "Median SUVpeak per patient vs PD-L1 TPS (Spearman)",
    }
    # Spearman needs 3 patients with CPS and uptake; P03's CPS is NE
    assert any(note.startswith(SPEARMAN_CPS) for note in trial_analysis.notes)
    # independent selection: tracer-only 120 h lesions, FDG-positive, long axis >= 20 mm
    # (baseline table), the study's exclusion left out; progression = BOR PD
    rows = pd.read_parquet(report_trial / "results" / "measurements.parquet")
    rows = rows[
        (rows["kind"] == "lesion")
        & (rows["series"] == "tracer-only")
        & (rows["nominal_hours"] == 120)
    ].assign(lesion=lambda f: f["voi"].astype(int))
    table = pd.read_csv(report_trial / "lesions.csv")
    chosen = rows.merge(table, on=["patient", "lesion"], suffixes=("_voi", ""))
    chosen = chosen[
        chosen["fdg_positive"]
        & (chosen["long_axis_mm"] >= 20)
        & ~((chosen["patient"] == "P03") & (chosen["lesion"] == 2))
    ]
    bor = pd.read_csv(report_trial / "clinical.csv").set_index("patient")["bor"]
    progressed = chosen["patient"].map(bor) == "PD"
    expected = stats.mannwhitneyu(
        chosen.loc[~progressed, "suv_peak"],
        chosen.loc[progressed, "suv_peak"],
        method="asymptotic",
        use_continuity=False,
    )
    result = trial_analysis.tests[MANN_WHITNEY_PROGRESSION]
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert sum(result.n) == len(chosen)


@pytest.mark.slow
def test_trial_parts_present(trial_analysis: StudyAnalysis) -> None:
    analysis = trial_analysis
    assert analysis.name.startswith("Synthetic")
    assert analysis.baseline is not None and len(analysis.baseline) == 3
    assert analysis.adverse_events is not None
    # adverse_events.csv: Anemia in P02 and P03 -> 2 of 3 patients
    anemia = analysis.adverse_events.set_index("Adverse event").loc["Anemia"]
    assert anemia["n_any"] == 2 and anemia["Any grade"] == "2 (67%)"
    assert analysis.blood is not None and analysis.blood["suv"].notna().all()
    assert analysis.blood_vs_image is not None and len(analysis.blood_vs_image) > 0
    assert analysis.visibility is not None
    assert analysis.time_point is not None and analysis.time_point.series == "tracer-only"
    assert analysis.tumour_to_blood is not None and len(analysis.tumour_to_blood) == 4
    assert set(analysis.split_survival) == {"PFS", "OS"}
    assert analysis.biomarkers is not None
    assert analysis.provenance["study_name"] == analysis.name
    assert isinstance(analysis.provenance["settings"], dict)
    assert analysis.lesion_response is not None and "bor" in analysis.lesion_response


@pytest.mark.slow
def test_trial_no_identifiers_anywhere(trial_analysis: StudyAnalysis) -> None:
    for frame in _frames(trial_analysis):
        text = frame.astype(str).to_csv()
        assert not any(marker in text for marker in IDENTIFIERS), text[:200]
    other = " ".join([*trial_analysis.warnings, *trial_analysis.notes])
    other += str(trial_analysis.provenance)
    assert not any(marker in other for marker in IDENTIFIERS)


@pytest.mark.slow
def test_trial_store_only(report_trial: Path, tmp_path: Path) -> None:
    """Parquet exports alone, the manifest gone: the clinical sheet comes from the store,
    what needs the study's own files (calibration, lesion table, adverse events) is a note."""
    folder = tmp_path / "results"
    folder.mkdir()
    for file in (report_trial / "results").glob("*.parquet"):
        shutil.copy(file, folder / file.name)
    provenance = pd.read_parquet(folder / "provenance.parquet")
    provenance["manifest_path"] = str(tmp_path / "gone" / "study.toml")
    provenance.to_parquet(folder / "provenance.parquet")
    analysis = assemble_analysis(folder)
    assert analysis.blood is None and analysis.visibility is None
    assert analysis.adverse_events is None
    assert "PFS" in analysis.cohort_survival
    text = " | ".join(analysis.notes)
    assert "no longer exists" in text and "calibration" in text
    # without the lesion table the VOI's long axis decides (placeholder spheres measure 8 mm)
    assert analysis.uptake is not None
    rows = pd.read_parquet(folder / "measurements.parquet")
    large = rows[
        (rows["kind"] == "lesion")
        & (rows["series"] == "tracer-only")
        & (rows["nominal_hours"] == 120)
        & (rows["long_axis_mm"] >= 20)
        & ~rows["excluded"]
    ]
    counts = analysis.uptake.patients.set_index("patient")["n_lesions"]
    assert counts.to_dict() == {p: int((large["patient"] == p).sum()) for p in counts.index}
    assert analysis.uptake.lesions["size_source"].eq("VOI").all()
    # the exclusion still holds through the flag in the measurements
    excluded = analysis.uptake.excluded
    assert (excluded["rule"].str.contains("flagged") & (excluded["lesion"] == "2")).any()


@pytest.mark.slow
def test_trial_changed_settings_are_noted(report_trial: Path) -> None:
    study = load_manifest(report_trial / "study.toml")
    changed = dataclasses.replace(
        study, settings=dataclasses.replace(study.settings, min_long_axis_mm=15.0)
    )
    analysis = assemble_analysis(report_trial / "results", study=changed)
    assert any("min_long_axis_mm" in note for note in analysis.notes)
    assert analysis.uptake is not None and analysis.uptake.min_long_axis_mm == 15.0
    same = assemble_analysis(report_trial / "results", study=study)
    assert not any("settings differ" in note for note in same.notes)


def test_only_input_problems_skip_a_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typed input problem becomes a note; any other exception is a bug and propagates."""
    from immunopet.analysis import assemble

    folder = _hand_results(tmp_path / "results")

    def bad_input(clinical: pd.DataFrame) -> pd.DataFrame:
        raise InputError("no such column", tag="age")

    monkeypatch.setattr(assemble, "baseline_table", bad_input)
    analysis = assemble_analysis(folder)
    assert analysis.baseline is None
    assert any(note.startswith("baseline table: not computed") for note in analysis.notes)

    def bug(clinical: pd.DataFrame) -> pd.DataFrame:
        raise KeyError("a programming error")

    monkeypatch.setattr(assemble, "baseline_table", bug)
    with pytest.raises(KeyError, match="a programming error"):
        assemble_analysis(folder)
