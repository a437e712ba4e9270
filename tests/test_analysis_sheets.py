"""Content checks of the clinical, adverse-event and blood sheets (validate and run)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from immunopet.analysis.sheets import sheet_problems
from immunopet.cli import run as cli_run
from immunopet.cli import validate as cli_validate
from immunopet.study.model import Study, StudyInputs
from test_study_manifest import GOOD, VALID_CLINICAL, _make_data, _write

BAD_CLINICAL = (
    "patient,age,sex,histology,tps_percent,cps_percent,treatment_cycles,bor,stop_reason,"
    "pfs_days,pfs_event,os_days,os_event\n"
    "P01,59,F,Adeno,0,12.5,7,SD,PD,2019-03-01,1,823,1\n"  # a date in pfs_days
    'P02,54,M,Adeno,100,90,14,PR,PD,"1,5",1,760,0\n'  # a decimal comma
    "P03,70,M,Adeno,0,NE,1,PD,PD,90,1,15,1\n"  # PFS > OS
    "P03,70,M,Adeno,0,NE,1,PD,PD,9,2,15,1\n"  # a duplicate patient, event = 2
)
BLOOD_HEADER = (
    "patient,series,sample,injection_datetime,sample_datetime,counting_datetime,"
    "injected_activity_bq,whole_blood_cpm_per_ml,plasma_cpm_per_ml\n"
)
BAD_BLOOD = BLOOD_HEADER + (
    "P01,tracer-only,5min,2018-04-09T09:36:00,2018-04-09T09:41:00,2018-04-09T09:40:00,"
    "37000000,1200,1500\n"  # counted before drawn
    "P01,tracer-only,30min,2018-04-09T09:36:00,yesterday,2018-04-20T10:00:00,37000000,1,5\n"
    "P01,tracer-only,5min,2018-04-09T09:36:00,2018-04-09T09:41:00,2018-04-20T10:00:00,"
    '37000000,"1,5",900\n'  # duplicate sample, decimal comma
)
BAD_EVENTS = "patient,term,grade\nP01,Anemia,2\nP07,Pain,1\nP02,Cough,7\n"


def _study(root: Path, **sheets: str) -> Study:
    paths = {}
    for name, text in sheets.items():
        path = root / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return Study(name="s", root=root, patients=(), inputs=StudyInputs(**paths))


def test_clinical_problems_name_file_row_column_value(tmp_path: Path) -> None:
    problems = sheet_problems(_study(tmp_path, clinical=BAD_CLINICAL))
    assert problems == [
        "clinical.csv: row 5, column patient: patient listed twice (found 'P03'; expected one "
        "row per patient)",
        "clinical.csv: row 2, column pfs_days: not a number (found '2019-03-01'; expected days "
        ">= 0 (a not-reached endpoint is the last follow-up day with event 0))",
        "clinical.csv: row 3, column pfs_days: not a number (found '1,5'; expected days >= 0 "
        "(a not-reached endpoint is the last follow-up day with event 0))",
        "clinical.csv: row 5, column pfs_event: event must be 0 or 1 (found '2'; expected 1 "
        "(event) or 0 (censored))",
        "clinical.csv: row 4, column pfs_days: progression-free survival longer than overall "
        "survival (found '90 > 15'; expected pfs_days <= os_days)",
    ]
    assert not any(str(tmp_path) in p for p in problems)  # no absolute path


def test_blood_problems_are_all_listed(tmp_path: Path) -> None:
    problems = sheet_problems(_study(tmp_path, blood_samples=BAD_BLOOD))
    assert len(problems) == 4, problems
    assert problems[0].startswith("blood_samples.csv: row 3, sample_datetime: not a date-time")
    assert "found 'yesterday'" in problems[0]
    assert any("row 4, whole_blood_cpm_per_ml: not a number (found '1,5'" in p for p in problems)
    assert any(
        "row 2, counting_datetime: sample counted before it was drawn" in p for p in problems
    )
    assert any("row 4, sample: the same sample appears twice" in p for p in problems)


def test_adverse_events_of_unknown_patients_and_bad_grades(tmp_path: Path) -> None:
    study = _study(tmp_path, clinical=VALID_CLINICAL, adverse_events=BAD_EVENTS)
    problems = sheet_problems(study)
    assert len(problems) == 2, problems
    assert any("row 3" in p and "P07" in p for p in problems)
    assert any("row 4" in p and "grade" in p and "'7'" in p for p in problems)


def test_valid_sheets_have_no_problems(tmp_path: Path) -> None:
    good_blood = BLOOD_HEADER + (
        "P01,tracer-only,5min,2018-04-09T09:36:00,2018-04-09T09:41:00,2018-04-20T10:00:00,"
        "37000000,1200,1500\n"
    )
    study = _study(tmp_path, clinical=VALID_CLINICAL, blood_samples=good_blood)
    assert sheet_problems(study) == []


def test_clinical_columns_the_plan_names_must_be_in_the_sheet(tmp_path: Path) -> None:
    from dataclasses import replace

    from immunopet.study.model import AnalysisPlan, IhcMarker, ResponsePlan

    study = _study(tmp_path, clinical=VALID_CLINICAL)
    assert sheet_problems(study) == []  # the default plan's columns are there
    plan = AnalysisPlan(
        biomarkers=("uptake", "tps_precent", "cps_percent"),
        ihc=(IhcMarker("pd1_percent", "PD-1", (1.0, 10.0)),),
        response=ResponsePlan(column="bor_12wk"),
    )
    problems = sheet_problems(replace(study, plan=plan))
    assert [p.split(" (")[0] for p in problems] == [
        "clinical.csv: column 'tps_precent': not in the sheet; did you mean 'tps_percent'?",
        "clinical.csv: column 'pd1_percent': not in the sheet",
        "clinical.csv: column 'bor_12wk': not in the sheet",
    ]
    assert "named by the manifest's analysis.biomarkers; expected one of patient," in problems[0]


def test_a_patient_written_differently_from_the_manifest_is_named(tmp_path: Path) -> None:
    from dataclasses import replace

    from immunopet.study.model import Patient

    clinical = VALID_CLINICAL.replace("\nP01,", "\nP1,").replace("\nP02,", "\np-02,")
    clinical += "P99,61,F,Adenocarcinoma,5,5,3,PD,PD,40,1,200,1\n"  # enrolled, not scanned
    patients = tuple(Patient(pseudonym=name) for name in ("P01", "P02"))
    study = replace(_study(tmp_path, clinical=clinical), patients=patients)
    assert sheet_problems(study) == [
        "clinical.csv: row 2, column patient: not a patient of the manifest; did you mean "
        "'P01'? (found 'P1'; expected the manifest's ids, written as there)",
        "clinical.csv: row 3, column patient: not a patient of the manifest; did you mean "
        "'P02'? (found 'p-02'; expected the manifest's ids, written as there)",
    ]
    exact = replace(_study(tmp_path, clinical=VALID_CLINICAL), patients=patients)
    assert sheet_problems(exact) == []
    # the lesion table likewise, each wrong id once (at its first row)
    lesions = (
        "patient,lesion,site,long_axis_mm,fdg_positive\n"
        "P01,1,lung,30,True\nP2,1,liver,25,True\nP2,2,liver,22,True\n"
    )
    table = replace(_study(tmp_path, lesions=lesions), patients=patients)
    assert [p for p in sheet_problems(table) if "column patient" in p] == [
        "lesions.csv: row 3, column patient: not a patient of the manifest; did you mean "
        "'P02'? (found 'P2'; expected the manifest's ids, written as there)",
    ]


def test_a_blood_sample_of_a_series_the_patient_was_not_injected_in_is_named(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from immunopet.study.model import Injection, Patient

    sample = (
        "P01,{series},5min,2018-04-09T09:36:00,2018-04-09T09:41:00,2018-04-20T10:00:00,"
        "37000000,1200,1500\n"
    )
    blood = BLOOD_HEADER + sample.format(series="tracer only") + sample.format(series="predose")
    blood += sample.format(series="tracer-only").replace("P01,", "P07,")  # not in the manifest
    blood += sample.format(series="tracer-only").replace("P01,", "p-1,")  # P01 written otherwise
    patient = Patient(pseudonym="P01", injections=(Injection(series="tracer-only"),))
    study = replace(_study(tmp_path, blood_samples=blood), patients=(patient,))
    problems = [p for p in sheet_problems(study) if "column series" in p or "column patient" in p]
    assert problems == [
        "blood_samples.csv: row 5, column patient: not a patient of the manifest; did you mean "
        "'P01'? (found 'p-1'; expected the manifest's ids, written as there)",
        "blood_samples.csv: row 2, column series: not a series of P01's injections; did you "
        "mean 'tracer-only'? (found 'tracer only'; expected one of tracer-only)",
        "blood_samples.csv: row 3, column series: not a series of P01's injections "
        "(found 'predose'; expected one of tracer-only)",
    ]


@pytest.fixture
def study_folder(tmp_path: Path) -> Path:
    root = _make_data(tmp_path / "study")
    (root / "clinical.csv").write_text(BAD_CLINICAL.replace("P03", "P02"), encoding="utf-8")
    return _write(root, GOOD)


def test_validate_lists_sheet_problems_and_exits_2(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli_validate.register(parser.add_subparsers())
    args = parser.parse_args(["validate", str(study_folder)])
    assert args.func(args) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("clinical.csv: row ")
    assert out[-1] == f"{study_folder}: {len(out) - 1} problems"


def test_run_refuses_a_rejected_sheet_and_says_so(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli_run.register(parser.add_subparsers())
    args = parser.parse_args(["run", str(study_folder), "--quiet"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "clinical.csv: row 2, column pfs_days: not a number" in err
    assert "nothing was run" in err
    assert not (study_folder.parent / "results").exists()
