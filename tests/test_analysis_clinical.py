"""Reading and validating the clinical sheet and the adverse-event list."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunopet.analysis.clinical import (
    adverse_event_problems,
    clinical_problems,
    group_pdl1,
    read_adverse_events,
    read_clinical,
    validate_clinical,
)
from immunopet.errors import InputError, ManifestError

HEADER = (
    "patient,age,sex,histology,tps_percent,cps_percent,treatment_cycles,bor,stop_reason,"
    "pfs_days,pfs_event,os_days,os_event,note"
)
GOOD = [
    "P01,59,F,Adenocarcinoma,0,12.5,7,SD,PD,86,1,823,1,",
    "P02,54,M,Adenocarcinoma,100,90,14,PR,PD,183,1,760,0,OS NR: censored",
    "P03,70,M,Squamous cell carcinoma,NE,,9,pr,Toxicity,684,1,800,0,",
    "P04,72,M,Adenocarcinoma,1,25,22,NE,,330,0,600,0,",
]


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_read_clinical_types_and_not_evaluable(tmp_path: Path) -> None:
    sheet = read_clinical(write(tmp_path / "clinical.csv", GOOD))
    assert sheet["patient"].tolist() == ["P01", "P02", "P03", "P04"]
    assert sheet["age"].tolist() == [59.0, 54.0, 70.0, 72.0]
    # "NE" and an empty cell are both not evaluable: NaN with the flag set
    assert np.isnan(sheet.loc[2, "tps_percent"]) and np.isnan(sheet.loc[2, "cps_percent"])
    assert sheet["tps_ne"].tolist() == [False, False, True, False]
    assert sheet["cps_ne"].tolist() == [False, False, True, False]
    assert sheet.loc[0, "cps_percent"] == 12.5
    assert sheet["bor"].tolist() == ["SD", "PR", "PR", "NE"]  # "pr" upper-cased
    assert sheet["os_event"].tolist() == [1, 0, 0, 0]
    assert str(sheet["os_event"].dtype) == "Int64"
    assert sheet.loc[3, "stop_reason"] == ""  # still on treatment
    assert sheet.loc[1, "note"] == "OS NR: censored"
    assert list(sheet.columns[:8]) == [
        "patient", "age", "sex", "histology", "tps_percent", "tps_ne", "cps_percent", "cps_ne",
    ]  # fmt: skip
    # validating the typed table again changes nothing
    pd.testing.assert_frame_equal(validate_clinical(sheet), sheet)


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        ("P05,abc,M,Adeno,0,0,1,PD,PD,10,1,20,1,", "age", "abc", "not a number"),
        ("P05,200,M,Adeno,0,0,1,PD,PD,10,1,20,1,", "age", "200", "value out of range"),
        ("P05,60,X,Adeno,0,0,1,PD,PD,10,1,20,1,", "sex", "X", "unknown sex"),
        ("P05,60,M,Adeno,120,0,1,PD,PD,10,1,20,1,", "tps_percent", "120", "value out of range"),
        ('P05,60,M,Adeno,0,"7,5",1,PD,PD,10,1,20,1,', "cps_percent", "7,5", "not a percent"),
        ("P05,60,M,Adeno,0,0,1.5,PD,PD,10,1,20,1,", "treatment_cycles", "1.5", "whole number"),
        ("P05,60,M,Adeno,0,0,1,PROG,PD,10,1,20,1,", "bor", "PROG", "unknown best overall"),
        ("P05,60,M,Adeno,0,0,1,PD,PD,-3,1,20,1,", "pfs_days", "-3", "value out of range"),
        ("P05,60,M,Adeno,0,0,1,PD,PD,NR,0,20,1,", "pfs_days", "NR", "not a number"),
        ("P05,60,M,Adeno,0,0,1,PD,PD,10,2,20,1,", "pfs_event", "2", "event must be 0 or 1"),
        ("P05,60,M,Adeno,0,0,1,PD,PD,30,1,20,1,", "pfs_days", "30 > 20", "longer than overall"),
        ("P01,60,M,Adeno,0,0,1,PD,PD,10,1,20,1,", "patient", "P01", "patient listed twice"),
    ],
)
def test_read_clinical_errors_name_file_row_column_value(
    tmp_path: Path, row: str, column: str, value: str, message: str
) -> None:
    path = write(tmp_path / "clinical.csv", [*GOOD, row])
    # the duplicate patient is reported at its second occurrence (row 6 = 5th data row);
    # every other problem is in the new row, row 6 of the file (header = row 1)
    expected = re.escape(f"{path}: row 6, column {column}: ") + f".*{message}.*"
    expected += re.escape(f"found '{value}'")
    with pytest.raises(ManifestError, match=expected):
        read_clinical(path)


def test_all_problems_are_collected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "clinical.csv",
        [*GOOD, "P05,abc,M,Adeno,0,0,1,XX,PD,10,1,20,1,"],
    )
    problems = clinical_problems(path)
    assert [p.tag for p in problems] == ["row 6, column age", "row 6, column bor"]
    with pytest.raises(ManifestError, match=r"and 1 more problem in this table"):
        read_clinical(path)
    assert clinical_problems(read_clinical(write(tmp_path / "ok.csv", GOOD))) == []


def test_missing_column_and_file(tmp_path: Path) -> None:
    header = HEADER.replace(",bor", "")
    lines = [",".join(r.split(",")[:7] + r.split(",")[8:]) for r in GOOD]
    with pytest.raises(ManifestError, match=r"clinical.csv: bor: .*lacks required column"):
        read_clinical(write(tmp_path / "clinical.csv", lines, header))
    with pytest.raises(ManifestError, match="file not found"):
        read_clinical(tmp_path / "absent.csv")


@pytest.mark.parametrize("column", ["Name", "dob", "Date of birth", "MRN", "hospital_id"])
def test_identifying_columns_are_refused_unless_dropped(tmp_path: Path, column: str) -> None:
    lines = [f"{row},SECRETVALUE" for row in GOOD]
    path = write(tmp_path / "clinical.csv", lines, f"{HEADER},{column}")
    with pytest.raises(InputError, match=r"identify a person; refused") as caught:
        read_clinical(path)
    text = str(caught.value)
    assert column in text and f"drop_columns=['{column}']" in text
    assert "SECRETVALUE" not in text  # the values are never shown
    sheet = read_clinical(path, drop_columns=[column])
    assert column not in sheet.columns
    assert len(sheet) == 4


def test_drop_columns_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"drop_columns: drop_columns names a column"):
        read_clinical(write(tmp_path / "clinical.csv", GOOD), drop_columns=["name"])


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    lines = [f"{row},{score}" for row, score in zip(GOOD, "1234", strict=True)]
    sheet = read_clinical(write(tmp_path / "c.csv", lines, f"{HEADER},rna_score"))
    assert sheet["rna_score"].tolist() == ["1", "2", "3", "4"]
    assert sheet.columns[-1] == "rna_score"


def test_read_adverse_events(tmp_path: Path) -> None:
    path = tmp_path / "adverse_events.csv"
    path.write_text(
        "patient,term,grade,ctcae_version\nP01,Anemia,3,4.0\nP02, Pain ,1,4.0\n",
        encoding="utf-8",
    )
    events = read_adverse_events(path, known_patients=["P01", "P02"])
    assert events.values.tolist() == [["P01", "Anemia", 3, "4.0"], ["P02", "Pain", 1, "4.0"]]
    with pytest.raises(ManifestError, match=r"row 3, column patient: patient not in the clin"):
        read_adverse_events(path, known_patients=["P01"])


def test_adverse_event_errors(tmp_path: Path) -> None:
    path = tmp_path / "ae.csv"
    path.write_text("patient,term,grade\nP01,,2\nP02,Pain,6\n", encoding="utf-8")
    problems = adverse_event_problems(path)
    assert [(p.tag, p.reason) for p in problems] == [
        ("row 2, column term", "empty cell"),
        ("row 3, column grade", "not a CTCAE grade"),
    ]
    with pytest.raises(ManifestError, match=re.escape(f"{path}: row 2, column term")):
        read_adverse_events(path)
    named = tmp_path / "named.csv"
    named.write_text("patient,patient_name,term,grade\nP01,Doe,Pain,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="patient_name"):
        read_adverse_events(named)
    assert read_adverse_events(named, drop_columns=["patient_name"])["term"].tolist() == ["Pain"]


def test_group_pdl1_boundaries() -> None:
    # the study's groups 0%, 1-49%, >=50% (0.5 is below 1, 49.99 below 50)
    groups = group_pdl1(pd.Series([0.0, 0.5, 1.0, 49.99, 50.0, 100.0, np.nan]))
    assert groups.astype(object).where(groups.notna(), None).tolist() == [
        "<1%", "<1%", "1–49%", "1–49%", "≥50%", "≥50%", None,
    ]  # fmt: skip
