"""Table 1 and Table 2 of the durvalumab study (seed 000) rebuilt from patient-level data."""

from __future__ import annotations

import pandas as pd
import pytest

from immunopet.analysis.tables import (
    BASELINE_COLUMNS,
    adverse_event_table,
    baseline_summary,
    baseline_table,
    format_count,
    format_n_of,
    format_percent,
)
from immunopet.errors import InputError

# Table 2 of seed 000, as printed: (term, any grade, grade 3 or 4 or "" when blank).
TABLE2 = (
    ("Anemia", "8 (62%)", "1 (8%)"),
    ("Thrombocytopenia", "5 (38%)", ""),
    ("Alkaline phosphatase increased", "6 (46%)", ""),
    ("γ-glutamyl transferase increased", "3 (23%)", ""),
    ("Aspartate aminotransferase increased", "1 (8%)", ""),
    ("Hypercalcemia", "1 (8%)", ""),
    ("Hypomagnesemia", "2 (15%)", ""),
    ("Cough", "3 (23%)", ""),
    ("Dyspnea", "3 (23%)", "1 (8%)"),
    ("Pneumonia", "1 (8%)", "1 (8%)"),
    ("Pain", "7 (54%)", "1 (8%)"),
    ("Anorexia", "4 (31%)", "1 (8%)"),
    ("Constipation", "1 (8%)", ""),
    ("Epistaxis", "1 (8%)", ""),
    ("Acute kidney injury", "1 (8%)", ""),
    ("Vena cava superior syndrome", "1 (8%)", "1 (8%)"),
)
# The patient counts behind it: (term, patients with any grade, patients with grade 3-4).
TABLE2_COUNTS = (
    ("Anemia", 8, 1),
    ("Thrombocytopenia", 5, 0),
    ("Alkaline phosphatase increased", 6, 0),
    ("γ-glutamyl transferase increased", 3, 0),
    ("Aspartate aminotransferase increased", 1, 0),
    ("Hypercalcemia", 1, 0),
    ("Hypomagnesemia", 2, 0),
    ("Cough", 3, 0),
    ("Dyspnea", 3, 1),
    ("Pneumonia", 1, 1),
    ("Pain", 7, 1),
    ("Anorexia", 4, 1),
    ("Constipation", 1, 0),
    ("Epistaxis", 1, 0),
    ("Acute kidney injury", 1, 0),
    ("Vena cava superior syndrome", 1, 1),
)


def table2_events() -> pd.DataFrame:
    """One row per patient-event reproducing the counts; extra lower-grade episodes of the
    same term for the same patient must not count twice."""
    rows = []
    for t, (term, n_any, n_34) in enumerate(TABLE2_COUNTS):
        for i in range(n_any):
            patient = f"{(t + i) % 13 + 1}"  # rotate so that patients differ between terms
            grade = 3 if i < n_34 else 2
            rows.append((patient, term, grade))
            rows.append((patient, term, 1))  # an earlier, milder episode
    return pd.DataFrame(rows, columns=["patient", "term", "grade"]).sample(frac=1.0, random_state=0)


def test_table2_reproduced_row_by_row_in_the_papers_order() -> None:
    table = adverse_event_table(
        table2_events(), 13, order=[term for term, _, _ in TABLE2], blank_zero=True
    )
    assert list(table.columns[:3]) == ["Adverse event", "Any grade", "Grade 3 or 4"]
    assert "Grade 5" not in table.columns
    printed = [" ".join(c for c in row if c) for row in table.iloc[:, :3].values.tolist()]
    expected = [" ".join(c for c in row if c) for row in TABLE2]
    assert printed == expected
    assert printed[0] == "Anemia 8 (62%) 1 (8%)"
    # numbers beside the text: 8 of 13 = 61.538...%
    anemia = table.iloc[0]
    assert anemia["n_any"] == 8 and anemia["n_grade_3_4"] == 1
    assert anemia["percent_any"] == pytest.approx(800 / 13)


def test_table2_by_frequency() -> None:
    table = adverse_event_table(table2_events(), 13)
    # any grade descending, then grade 3-4 descending, then term:
    # Anemia 8, Pain 7, ALP 6, Thrombocytopenia 5, Anorexia 4, Dyspnea 3 (1), Cough 3 (0),
    # γ-GT 3 (0), Hypomagnesemia 2, then the 1s: grade 3-4 first (Pneumonia, VCSS), then A-Z
    assert table["Adverse event"].tolist() == [
        "Anemia",
        "Pain",
        "Alkaline phosphatase increased",
        "Thrombocytopenia",
        "Anorexia",
        "Dyspnea",
        "Cough",
        "γ-glutamyl transferase increased",
        "Hypomagnesemia",
        "Pneumonia",
        "Vena cava superior syndrome",
        "Acute kidney injury",
        "Aspartate aminotransferase increased",
        "Constipation",
        "Epistaxis",
        "Hypercalcemia",
    ]


def test_patient_counts_once_at_highest_grade_and_grade5_column() -> None:
    events = pd.DataFrame(
        {
            "patient": ["1", "1", "1", "2", "3"],
            "term": ["Pain", "Pain", "Pain", "Pain", "Pain"],
            "grade": [1, 4, 2, 2, 5],
        }
    )
    table = adverse_event_table(events, 10, order="input")
    row = table.iloc[0]
    # patients 1 (worst 4), 2 (worst 2), 3 (worst 5): any 3 of 10, grade 3-4 one, grade 5 one
    assert row["Any grade"] == "3 (30%)"
    assert row["Grade 3 or 4"] == "1 (10%)"
    assert row["Grade 5"] == "1 (10%)"


def test_blank_zero_off_and_alphabetical() -> None:
    events = pd.DataFrame({"patient": ["1", "2"], "term": ["Pain", "Cough"], "grade": [1, 2]})
    table = adverse_event_table(events, 4, order="alphabetical", blank_zero=False)
    assert table["Adverse event"].tolist() == ["Cough", "Pain"]
    assert table["Grade 3 or 4"].tolist() == ["0 (0%)", "0 (0%)"]
    assert table["Any grade"].tolist() == ["1 (25%)", "1 (25%)"]


def test_adverse_event_table_errors() -> None:
    events = pd.DataFrame({"patient": ["1", "2", "3"], "term": "Pain", "grade": 1})
    with pytest.raises(InputError, match="more patients with adverse events"):
        adverse_event_table(events, 2)
    with pytest.raises(InputError, match="n_patients must be positive"):
        adverse_event_table(events, 0)
    with pytest.raises(InputError, match="unknown order"):
        adverse_event_table(events, 13, order="random")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"row 1, column grade: not a CTCAE grade"):
        adverse_event_table(
            pd.DataFrame({"patient": ["1", "2"], "term": "Pain", "grade": [1, 7]}), 13
        )


def test_percent_formatting_rounds_half_up() -> None:
    # 1/8 = 12.5% -> 13 (half up; Python's round() would give 12); 8/13 = 61.54 -> 62
    assert format_percent(1, 8) == "13"
    assert format_percent(8, 13) == "62"
    assert format_percent(1, 13) == "8"
    assert format_percent(14, 102, decimals=1) == "13.7"
    assert format_count(26, 102) == "26 (25%)"
    assert format_n_of(10, 33) == "10 of 33 (30%)"
    assert format_n_of(0, 0) == "0 of 0"
    with pytest.raises(InputError, match="total must be positive"):
        format_percent(1, 0)


# Table 1 of seed 000. NR = not reached: censored (event 0) at an assumed follow-up day.
# Patient 3's PFS "<15" is entered as 15 with a note.
TABLE1 = (
    ("1", 59, "F", "Adenocarcinoma", "0", "12.5", 7, "SD", "PD", 86, 1, 823, 1, ""),
    ("2", 53, "M", "Adenocarcinoma", "0", "0", 1, "PD", "PD", 19, 1, 19, 1, ""),
    ("3", 75, "F", "Adenocarcinoma", "0", "7.5", 1, "PD", "PD", 15, 1, 63, 1,
     "PFS <15 d entered as 15"),
    ("4", 79, "M", "Adenocarcinoma", "100", "100", 2, "PD", "PD", 34, 1, 40, 1, ""),
    ("5", 77, "M", "Adenocarcinoma", "0", "5", 2, "PD", "PD", 22, 1, 147, 1, ""),
    ("6", 57, "F", "Squamous cell carcinoma", "1", "5", 10, "SD", "PD", 154, 1, 182, 1, ""),
    ("7", 54, "M", "Adenocarcinoma", "100", "90", 14, "PR", "PD", 183, 1, 760, 0, ""),
    ("8", 70, "M", "Squamous cell carcinoma", "NE", "NE", 9, "PR", "Toxicity", 684, 1, 800, 0,
     ""),
    ("9", 70, "M", "Adenocarcinoma", "0", "NE", 1, "PD", "PD", 9, 1, 15, 1, "TPS from cytology"),
    ("10", 64, "M", "Adenocarcinoma", "0", "0", 1, "PD", "PD", 2, 1, 2, 1, ""),
    ("11", 72, "M", "Adenocarcinoma", "1", "25", 22, "NE", "COVID-19 pandemic", 330, 0, 600, 0,
     ""),
    ("12", 72, "F", "Not otherwise specified", "100", "90", 12, "PR", "Toxicity", 560, 0, 620,
     0, ""),
    ("13", 69, "M", "Squamous cell carcinoma", "0", "0", 3, "PD", "PD", 41, 1, 78, 1, ""),
)  # fmt: skip
COLUMNS = [
    "patient", "age", "sex", "histology", "tps_percent", "cps_percent", "treatment_cycles",
    "bor", "stop_reason", "pfs_days", "pfs_event", "os_days", "os_event", "note",
]  # fmt: skip


def table1_sheet() -> pd.DataFrame:
    return pd.DataFrame.from_records(TABLE1, columns=COLUMNS)


def test_baseline_table_renders_table1() -> None:
    table = baseline_table(table1_sheet())
    assert list(table.columns) == list(BASELINE_COLUMNS)
    assert len(table) == 13
    by_patient = table.set_index("Patient no.")
    # rows as printed in Table 1 (NR for censored, NE for not evaluable, <15 from the note)
    assert by_patient.loc["3"].iloc[:10].tolist() == [
        "75", "F", "Adenocarcinoma", "0", "7.5", "1", "PD", "PD", "<15", "63",
    ]  # fmt: skip
    assert by_patient.loc["8", "PD-L1 TPS (%)"] == "NE"
    assert by_patient.loc["8", "OS (d)"] == "NR"
    assert by_patient.loc["8", "PFS (d)"] == "684"
    assert by_patient.loc["11", "PFS (d)"] == "NR"
    assert by_patient.loc["11", "Reason for treatment discontinuation"] == "COVID-19 pandemic"
    assert by_patient.loc["1", "PD-L1 CPS (%)"] == "12.5"
    assert by_patient.loc["3", "Note"] == "PFS <15 d entered as 15"


def test_baseline_summary_of_table1() -> None:
    summary = baseline_summary(table1_sheet())

    def row(characteristic: str, category: str) -> pd.Series:
        hit = summary[
            (summary["characteristic"] == characteristic) & (summary["category"] == category)
        ]
        assert len(hit) == 1, (characteristic, category)
        return hit.iloc[0]

    assert row("Patients", "")["n"] == 13
    # ages sorted: 53 54 57 59 64 69 [70] 70 72 72 75 77 79 -> median 70, range 53-79
    age = row("Age (y)", "median (range)")
    assert (age["median"], age["minimum"], age["maximum"]) == (70, 53, 79)
    assert age["text"] == "70 (53–79)"
    # sex: F = patients 1, 3, 6, 12 -> 4; M = 9
    assert row("Sex", "M")["text"] == "9 (69%)"
    assert row("Sex", "F")["text"] == "4 (31%)"
    assert summary.loc[summary["characteristic"] == "Sex", "category"].tolist() == ["M", "F"]
    # histology: squamous = 6, 8, 13; NOS = 12; adenocarcinoma = the other 9
    assert row("Histology", "Adenocarcinoma")["n"] == 9
    assert row("Histology", "Squamous cell carcinoma")["text"] == "3 (23%)"
    assert row("Histology", "Not otherwise specified")["text"] == "1 (8%)"
    # BOR: PR 7, 8, 12; SD 1, 6; NE 11; PD the other 7
    bor = summary[summary["characteristic"] == "BOR"]
    assert bor["category"].tolist() == ["PR", "SD", "PD", "NE"]
    assert bor["text"].tolist() == ["3 (23%)", "2 (15%)", "7 (54%)", "1 (8%)"]
    # TPS: 0 for 1, 2, 3, 5, 9, 10, 13 (7); 1 for 6, 11 (2); 100 for 4, 7, 12 (3); NE 8
    tps = summary[summary["characteristic"] == "PD-L1 TPS"]
    assert dict(zip(tps["category"], tps["n"], strict=True)) == {
        "<1%": 7, "1–49%": 2, "≥50%": 3, "NE": 1,
    }  # fmt: skip
    # CPS: 0 for 2, 10, 13 (3); 12.5, 7.5, 5, 5, 25 for 1, 3, 5, 6, 11 (5); 100, 90, 90 (3);
    # NE for 8 and 9 (2)
    cps = summary[summary["characteristic"] == "PD-L1 CPS"]
    assert dict(zip(cps["category"], cps["n"], strict=True)) == {
        "<1%": 3, "1–49%": 5, "≥50%": 3, "NE": 2,
    }  # fmt: skip
    # cycles sorted: 1 1 1 1 2 2 [3] 7 9 10 12 14 22
    cycles = row("Treatment cycles (n)", "median (range)")
    assert cycles["text"] == "3 (1–22)"
    stop = summary[summary["characteristic"] == "Reason for treatment discontinuation"]
    assert stop["text"].tolist() == ["10 (77%)", "2 (15%)", "1 (8%)"]
    assert stop["category"].tolist() == ["PD", "Toxicity", "COVID-19 pandemic"]


def test_baseline_table_rejects_an_invalid_sheet() -> None:
    sheet = table1_sheet()
    sheet.loc[4, "bor"] = "Progression"
    with pytest.raises(InputError, match=r"row 4, column bor: unknown best overall response"):
        baseline_table(sheet)
