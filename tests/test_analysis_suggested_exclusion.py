"""A suggested but unapplied exclusion (spill-in) reaches the lesion table and the report.

The pipeline writes ``suggested_exclusion`` (text) on a lesion VOI near a high-uptake organ and
does not apply it. Here the measurement table is the hand-made one of test_analysis_assemble
with two suggestions added by hand: P1 lesion 1 (used) and P4 lesion 9 (flagged excluded). The
expected table rows follow from those two edits alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.export import TABLE_COLUMNS, write_analysis_tables
from immunopet.report.html import render_report
from immunopet.study.model import AnalysisPlan, Study
from test_analysis_assemble import _hand_results

NEAR_SPLEEN = "spill-in from the spleen (8.0 mm from it)"
NEAR_SPLEEN_P4 = "spill-in from the spleen (5.0 mm from it)"


def _with_suggestions(tmp_path: Path) -> Path:
    folder = _hand_results(tmp_path / "results")
    measurements = pd.read_parquet(folder / "measurements.parquet")
    measurements["suggested_exclusion"] = None
    lesion = measurements["kind"] == "lesion"
    at_120 = measurements["nominal_hours"] == 120.0
    p1 = lesion & at_120 & (measurements["patient"] == "P1") & (measurements["voi"] == "1")
    p4 = lesion & at_120 & (measurements["patient"] == "P4") & (measurements["voi"] == "9")
    measurements.loc[p1, "suggested_exclusion"] = NEAR_SPLEEN
    measurements.loc[p4, "suggested_exclusion"] = NEAR_SPLEEN_P4
    measurements.to_parquet(folder / "measurements.parquet")
    return folder


def test_lesion_table_has_the_suggested_exclusion_column(tmp_path: Path) -> None:
    folder = _with_suggestions(tmp_path)
    study = Study(name="hand", root=tmp_path, patients=(), plan=AnalysisPlan())
    analysis = assemble_analysis(folder, study=study)
    assert "suggested_exclusion" in TABLE_COLUMNS["lesion_uptake"]
    table = analysis.tables["lesion_uptake"].set_index(["patient", "lesion"])
    # used, with the flag
    assert bool(table.loc[("P1", "1"), "included"]) is True
    assert table.loc[("P1", "1"), "suggested_exclusion"] == NEAR_SPLEEN
    # left out (flagged in the measurements) and still shows what was suggested
    assert bool(table.loc[("P4", "9"), "included"]) is False
    assert table.loc[("P4", "9"), "suggested_exclusion"] == NEAR_SPLEEN_P4
    # every other lesion: nothing suggested
    others = table.drop(index=[("P1", "1"), ("P4", "9")])
    assert (others["suggested_exclusion"] == "").all()
    # the CSV carries it
    written = write_analysis_tables(analysis, tmp_path / "out")
    csv = pd.read_csv(written / "lesion_uptake.csv", keep_default_na=False, dtype=str)
    flagged = csv[csv["suggested_exclusion"] != ""]
    assert sorted(flagged["suggested_exclusion"]) == [NEAR_SPLEEN_P4, NEAR_SPLEEN]
    # only the used lesion is in the report's flag list
    suggested = analysis.uptake.suggested if analysis.uptake is not None else None
    assert suggested is not None
    assert suggested[["patient", "lesion", "suggested_exclusion"]].values.tolist() == [
        ["P1", "1", NEAR_SPLEEN]
    ]


def test_report_flags_a_used_lesion_with_a_suggested_exclusion(tmp_path: Path) -> None:
    folder = _with_suggestions(tmp_path)
    study = Study(name="hand", root=tmp_path, patients=(), plan=AnalysisPlan())
    analysis = assemble_analysis(folder, study=study)
    html = render_report(analysis, tmp_path / "report", figures={}).read_text(encoding="utf-8")
    assert "Lesions used although an exclusion was suggested" in html
    assert NEAR_SPLEEN in html


def test_no_suggestion_no_flag_section(tmp_path: Path) -> None:
    folder = _hand_results(tmp_path / "results")  # no suggested_exclusion column at all
    study = Study(name="hand", root=tmp_path, patients=(), plan=AnalysisPlan())
    analysis = assemble_analysis(folder, study=study)
    assert (analysis.tables["lesion_uptake"]["suggested_exclusion"] == "").all()
    html = render_report(analysis, tmp_path / "report", figures={}).read_text(encoding="utf-8")
    assert "Lesions used although an exclusion was suggested" not in html
