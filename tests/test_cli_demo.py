"""`immunopet demo OUTDIR --preset tiny`: the one command a new user runs, end to end."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from immunopet.cli.main import main

CONTRACT_COLUMNS = [
    "patient",
    "series",
    "hours_pi",
    "voi",
    "kind",
    "suv_mean",
    "suv_max",
    "suv_peak",
    "volume_ml",
    "long_axis_mm",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    outdir = tmp_path_factory.mktemp("demo") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", str(outdir), "--preset", "tiny", "--quiet", "--no-qc"])
    return outdir, code, buffer.getvalue()


@pytest.mark.slow
def test_demo_writes_results_report_and_truth(demo: tuple[Path, int, str]) -> None:
    outdir, code, out = demo
    assert code == 0
    measurements = pd.read_csv(outdir / "results" / "measurements.csv")
    assert list(measurements.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert (outdir / "results" / "measurements.parquet").is_file()
    assert set(measurements["series"]) == {"tracer-only", "predose"}
    assert set(measurements["kind"]) == {"organ", "lesion"}
    # every organ of every scan was measured: 3 patients x 2 series x 2 time points x 7 organs
    assert (measurements["kind"] == "organ").sum() == 3 * 2 * 2 * 7
    assert (outdir / "truth" / "organs.csv").is_file()
    # the Patlak table: tiny scans twice per series, so every VOI is flagged without a Ki
    kinetics = pd.read_csv(outdir / "results" / "analysis" / "kinetics.csv")
    assert list(kinetics.columns[:9]) == [
        "patient",
        "series",
        "voi",
        "kind",
        "ki_ul_per_g_per_h",
        "vt_ml_per_g",
        "r",
        "n_points",
        "input",
    ]
    assert set(kinetics["input"]) == {"sampled"}
    assert (kinetics["flag"] == "fewer than 3 time points").all()
    residence = pd.read_csv(outdir / "results" / "analysis" / "residence_times.csv")
    assert set(residence["source_organ"]) == {
        "Liver",
        "Spleen",
        "Kidneys",
        "Lungs",
        "Red Marrow",
        "Brain",
    }
    assert (residence["residence_time_h"] > 0).all()
    assert (outdir / "results" / "analysis" / "time_integrated_activity.csv").is_file()
    index = outdir / "report" / "index.html"
    assert index.is_file() and "Biodistribution" in index.read_text(encoding="utf-8")
    assert f"report:  {index}" in out
    assert "SYN-" not in index.read_text(encoding="utf-8")


@pytest.mark.slow
def test_demo_rerun_reuses_and_foreign_folder_is_refused(
    demo: tuple[Path, int, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir, _, _ = demo
    first = pd.read_csv(outdir / "results" / "measurements.csv")
    assert main(["demo", str(outdir), "--preset", "tiny", "--no-qc"]) == 0
    err = capsys.readouterr().err
    assert "reusing the synthetic trial" in err
    assert "0 processed, 12 skipped" in err  # nothing recomputed
    again = pd.read_csv(outdir / "results" / "measurements.csv")
    pd.testing.assert_frame_equal(first, again)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    assert main(["demo", str(foreign), "--preset", "tiny"]) == 2
    assert "not made by 'immunopet demo'" in capsys.readouterr().err
    assert (foreign / "thesis.docx").read_text() == "precious"


@pytest.mark.slow
def test_demo_report_has_the_kinetics_section(demo: tuple[Path, int, str]) -> None:
    outdir, code, _ = demo
    assert code == 0
    analysis_dir = outdir / "results" / "analysis"
    for name in (
        "kinetics_summary",
        "kinetics_paired",
        "kinetics_flagged",
        "kinetics_flag_summary",
        "patlak_points",
        "residence_time_summary",
    ):
        assert (analysis_dir / f"{name}.csv").is_file(), name
    payload = json.loads((analysis_dir / "analysis.json").read_text(encoding="utf-8"))
    assert len(payload["residence_time_summary"]) == 12  # 6 organs x 2 series
    html = (outdir / "report" / "index.html").read_text(encoding="utf-8")
    start = html.index('<section id="kinetics"')
    section = html[start : html.index("</section>", start)]
    assert "Target engagement (Patlak) and time-integrated activity" in section
    # tiny: two scans per series, so no fit; the section says so and lists why
    assert "fewer than 3 time points" in section
    assert "no Ki or VT" in section
    assert "no paired comparison" in section
    # the residence times as the analysis computed them (2 decimals)
    summary = pd.read_csv(analysis_dir / "residence_time_summary.csv")
    liver = summary[(summary["organ"] == "liver") & (summary["series"] == "tracer-only")]
    assert f"{float(liver['residence_time_h_median'].iloc[0]):.2f}" in section
    assert (outdir / "report" / "figures" / "residence.png").is_file()
    assert not (outdir / "report" / "figures" / "patlak.png").exists()
