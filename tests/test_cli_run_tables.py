"""``immunopet run --no-report`` writes the analysis tables; only the HTML report is skipped."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from immunopet.analysis.export import TABLE_COLUMNS
from immunopet.cli import run as run_cli
from immunopet.study.manifest import write_manifest
from test_study_pipeline import exact_trial, study_of  # noqa: F401  (exact_trial is a fixture)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    run_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_no_report_writes_the_same_analysis_tables_as_a_run_with_report(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = write_manifest(study_of(exact_trial), tmp_path / "study.toml")
    quiet = ["--workers", "1", "--no-qc", "--quiet"]
    assert _run(["run", str(manifest), "-o", str(tmp_path / "bare"), "--no-report", *quiet]) == 0
    assert not (tmp_path / "report").exists()  # no HTML, no figures
    bare = tmp_path / "bare" / "analysis"
    for name in (*TABLE_COLUMNS, "kinetics", "time_integrated_activity", "residence_times"):
        assert (bare / f"{name}.csv").is_file(), name
    payload = json.loads((bare / "analysis.json").read_text())
    assert set(TABLE_COLUMNS) <= set(payload)
    lesions = pd.read_csv(bare / "lesion_uptake.csv")
    assert list(lesions.columns[: len(TABLE_COLUMNS["lesion_uptake"])]) == list(
        TABLE_COLUMNS["lesion_uptake"]
    )
    assert len(lesions) > 0

    # the run with a report writes the same numbers (the report only arranges them)
    report = ["--report", str(tmp_path / "report")]
    assert _run(["run", str(manifest), "-o", str(tmp_path / "full"), *report, *quiet]) == 0
    assert (tmp_path / "report" / "index.html").is_file()
    full = tmp_path / "full" / "analysis"
    written = sorted(p.name for p in bare.glob("*.csv"))
    assert written == sorted(p.name for p in full.glob("*.csv"))
    for name in written:
        pd.testing.assert_frame_equal(pd.read_csv(bare / name), pd.read_csv(full / name))
    capsys.readouterr()
