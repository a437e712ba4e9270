"""The HTML report, from a StudyAnalysis built by hand (independent of the assembly step).

Expected texts are formatted by hand from the inputs given here (e.g. mean 7.2, SD 0.5,
n 3 -> "7.20 ± 0.50 (3)"), never taken from the renderer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from immunopet.analysis.aggregates import PatientUptake
from immunopet.analysis.lesions import LesionVisibility, TimePointChoice
from immunopet.analysis.results import SplitSurvival, StudyAnalysis
from immunopet.errors import InputError
from immunopet.report.drawing import DrawJob
from immunopet.report.html import SECTION_IDS, is_identifying, render_report
from immunopet.stats.results import (
    BiomarkerComparison,
    CoxResult,
    LogRankResult,
    SurvivalSummary,
    TestResult,
)
from immunopet.study.model import AnalysisSettings

SCRIPT_WARNING = "<script>alert('x')</script> value clipped"


# ---------------------------------------------------------------------------- builders
def write_png(path: Path, seed: int = 0) -> Path:
    """A tiny real PNG drawn by matplotlib."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(3, 2), dpi=50)
    fig.subplots().plot(np.arange(5), rng.normal(size=5))
    fig.savefig(path)
    return path


def hand_built_figures(folder: Path) -> dict[str, Path]:
    return {
        "biodistribution": write_png(folder / "bio.png", 1),
        "survival_pfs": write_png(folder / "km pfs.png", 2),
        "uptake_vs_cps": write_png(folder / "fig7.png", 3),
        "qc P01_tracer-only_72h": write_png(folder / "qc" / "P01_tracer-only_72h.png", 4),
        "qc P02/tracer-only 72h": write_png(folder / "qc" / "P02.png", 5),
        "extra_plot": write_png(folder / "extra.png", 6),
    }


def hand_built_analysis() -> StudyAnalysis:
    """A two-patient study with some parts missing (blood, biomarkers)."""
    schedule = pd.DataFrame(
        {
            "patient": ["P01", "P01", "P01", "P02", "P02", "P02"],
            "series": [
                "tracer-only",
                "tracer-only",
                "predose",
                "tracer-only",
                "tracer-only",
                "predose",
            ],
            "nominal_hours": [72.0, 120.0, 120.0, 72.0, 120.0, 72.0],
            "hours_pi": [71.5, 119.8, 120.4, 73.0, 121.0, 70.9],
        }
    )
    scans = schedule.assign(scan_id=[f"S{i}" for i in range(6)])
    measurements = pd.DataFrame(
        {"patient": ["P01"], "series": ["tracer-only"], "voi": ["liver"], "suv_mean": [6.7]}
    )
    failures = pd.DataFrame(columns=["scan_id", "patient", "series", "error_type", "message"])
    baseline = pd.DataFrame(
        {
            "Patient no.": ["P01", "P02"],
            "patient_name": ["DOE^JANE", "ROE^RICHARD"],
            "Age (y)": [61, 70],
            "Sex": ["F", "M"],
            "BOR": ["PR", "PD"],
            "PFS (d)": ["120", "NR"],
        }
    )
    baseline_summary = pd.DataFrame(
        {
            "characteristic": ["Patients", "Age (y)"],
            "category": ["", ""],
            "n": [2, 2],
            "percent": [100.0, math.nan],
            "median": [math.nan, 65.5],
            "minimum": [math.nan, 61.0],
            "maximum": [math.nan, 70.0],
            "text": ["2", "65.5 (61-70)"],
        }
    )
    adverse_events = pd.DataFrame(
        {
            "Adverse event": ["Fatigue", "Pneumonitis"],
            "Any grade": ["2 (100)", "1 (50)"],
            "Grade 3 or 4": ["", "1 (50)"],
            "n_any": [2, 1],
            "percent_any": [100.0, 50.0],
        }
    )
    organ_uptake = pd.DataFrame(
        {
            "organ": ["blood_pool", "liver", "blood_pool", "liver"],
            "series": ["tracer-only"] * 4,
            "nominal_hours": [72.0, 72.0, 120.0, 120.0],
            "n": [3, 3, 3, 3],
            "mean": [7.2, 6.7, 1.6, 6.5],
            "sd": [0.5, 0.4, 0.2, 0.3],
        }
    )
    visibility = LesionVisibility(
        per_scan=pd.DataFrame(
            {
                "patient": ["P01", "P02"],
                "lesion": ["1", "1"],
                "series": ["tracer-only", "tracer-only"],
                "nominal_hours": [120.0, 120.0],
                "fdg_positive": [True, True],
                "visible": [True, False],
            }
        ),
        summary=pd.DataFrame(
            {
                "series": ["tracer-only", "predose"],
                "nominal_hours": [math.nan, math.nan],
                "time_point": ["any", "any"],
                "group": ["all", "all"],
                "visible": [26, 14],
                "total": [102, 102],
                "percent": [25.49, 13.73],
                "text": ["26 of 102 (25%)", "14 of 102 (14%)"],
            }
        ),
        tracer_positive=pd.DataFrame(
            {
                "series": ["tracer-only"],
                "nominal_hours": [120.0],
                "tracer_positive": [50],
                "fdg_positive": [26],
                "fdg_negative": [24],
                "text": ["26 of 50 (52%)"],
            }
        ),
        fdg_negative_both=pd.DataFrame(
            {
                "series": ["tracer-only"],
                "first_hours": [72.0],
                "second_hours": [120.0],
                "n_first": [23],
                "n_second": [24],
                "n_both": [12],
            }
        ),
        rule="reader: a lesion is visible when it was delineated (not a 1 cm³ sphere)",
    )
    tbr = pd.DataFrame(
        {
            "series": ["tracer-only", "tracer-only"],
            "nominal_hours": [72.0, 120.0],
            "n_lesions": [20, 20],
            "lesion_mean": [4.1, 3.9],
            "reference_mean": [2.2, 1.9],
            "ratio": [4.1 / 2.2, 3.9 / 1.9],
        }
    )
    time_point = TimePointChoice(
        series="tracer-only", nominal_hours=120.0, ratio=3.9 / 1.9, table=tbr.copy()
    )
    uptake = PatientUptake(
        patients=pd.DataFrame(
            {
                "patient": ["P01", "P02"],
                "series": ["tracer-only", "tracer-only"],
                "nominal_hours": [120.0, 120.0],
                "n_lesions": [2, 1],
                "median": [4.9, 2.4],
                "mean": [4.95, 2.4],
            }
        ),
        lesions=pd.DataFrame({"patient": ["P01"], "lesion": ["1"], "suv_peak": [5.0]}),
        excluded=pd.DataFrame(
            {
                "patient": ["P02"],
                "lesion": ["3"],
                "series": ["tracer-only"],
                "nominal_hours": [120.0],
                "rule": ["user"],
                "reason": ["spill-in from the spleen"],
                "applied": [True],
            }
        ),
        metric="suv_peak",
        hours=120.0,
        series="tracer-only",
        min_long_axis_mm=20.0,
        fallback_hours=(72.0,),
    )
    tests = {
        "SUVpeak: progression at 6 weeks": TestResult(
            test_name="Mann-Whitney U",
            statistic=12.0,
            p_value=0.0612,
            n=(6, 7),
            method="exact",
            groups=("no progression", "progression"),
            statistic_name="U",
            notes=("ties corrected",),
            extra={"U_min": 12.0, "median no progression": 4.9, "median progression": 2.4},
        ),
        "SUVpeak vs CPS": TestResult(
            test_name="Spearman rank correlation",
            statistic=0.5123,
            p_value=0.0004,
            n=(12,),
            method="t-distribution",
            statistic_name="rho",
        ),
    }
    cohort = {
        "PFS": SurvivalSummary("PFS", 13, 12, 1.3, 0.0, 3.8, "spss", time_unit="months"),
        "OS": SurvivalSummary(
            "OS", 13, 5, math.nan, math.nan, math.nan, "spss", time_unit="months"
        ),
    }
    split = SplitSurvival(
        endpoint="PFS",
        data=pd.DataFrame({"patient": ["P01", "P02"], "uptake": [4.95, 2.4]}),
        threshold=3.0,
        summaries={
            "high": SurvivalSummary("high", 6, 5, 7.3, 2.0, 12.6, "spss", time_unit="months"),
            "low": SurvivalSummary("low", 7, 7, 5.5, 1.0, 10.0, "spss", time_unit="months"),
        },
        logrank=LogRankResult(
            statistic=0.55,
            df=1,
            p_value=0.46,
            groups=("high", "low"),
            n=(6, 7),
            events=(5, 7),
            expected=(6.1, 5.9),
        ),
        cox=CoxResult(
            table=pd.DataFrame(
                {
                    "covariate": ["high_uptake"],
                    "coef": [-0.4],
                    "se": [0.5],
                    "hazard_ratio": [0.67],
                    "hr_lower": [0.25],
                    "hr_upper": [1.79],
                    "z": [-0.8],
                    "p_value": [0.42],
                }
            ),
            n=13,
            events=12,
        ),
    )
    return StudyAnalysis(
        name="Hand-built durvalumab study",
        tracer="89Zr-durvalumab",
        settings=AnalysisSettings(),
        scans=scans,
        measurements=measurements,
        failures=failures,
        schedule=schedule,
        baseline=baseline,
        baseline_summary=baseline_summary,
        adverse_events=adverse_events,
        organ_uptake=organ_uptake,
        visibility=visibility,
        tumour_to_blood=tbr,
        time_point=time_point,
        uptake=uptake,
        tests=tests,
        cohort_survival=cohort,
        split_survival={"PFS": split},
        warnings=[
            f"P01_tracer-only_72h: {SCRIPT_WARNING}",
            "P01_tracer-only_120h: lesion 3 is 9 mm from the spleen",
            "P02_tracer-only_120h: lesion 3 is 9 mm from the spleen",
        ],
        provenance={
            "package_version": "0.1.0",
            "finished_at": "2026-11-20T14:05:00",
            "manifest_path": "/home/someone/studies/durva/study.toml",
            "settings": json.dumps({"normalisation": "bw", "peak": "local"}),
            "input_keys": json.dumps(
                {"P01_tracer-only_72h": "ab12", "P02_tracer-only_72h": "cd34"}
            ),
        },
        notes=["blood: no blood samples in the manifest"],
    )


# ---------------------------------------------------------------------------- HTML parsing
class Page(HTMLParser):
    """Sections (id -> heading, text), links and images of a rendered report."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, str]] = {}
        self.order: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.headers: list[str] = []
        self._section: str | None = None
        self._in_h2 = False
        self._in_th = False
        self._classes: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if self._section is not None and tag in ("td", "th", "p", "li", "caption", "h3"):
            self.sections[self._section]["text"] += " "
        if tag == "section":
            self._section = values["id"]
            self.order.append(values["id"])
            self.sections[values["id"]] = {"heading": "", "text": "", "class": values["class"]}
        elif tag == "h2" and self._section:
            self._in_h2 = True
        elif tag == "th":
            self._in_th = True
        elif tag == "img":
            self.images.append(values["src"])
        elif tag in ("a", "link"):
            self.links.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "h2":
            self._in_h2 = False
        elif tag == "th":
            self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers.append(data.strip())
        if self._section is None:
            return
        key = "heading" if self._in_h2 else "text"
        self.sections[self._section][key] += data


def parse(index: Path) -> Page:
    page = Page()
    page.feed(index.read_text(encoding="utf-8"))
    return page


def section_text(page: Page, section_id: str) -> str:
    return " ".join(page.sections[section_id]["text"].split())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    figures = hand_built_figures(root / "drawn")
    return render_report(hand_built_analysis(), root / "report", figures=figures)


# ---------------------------------------------------------------------------- tests
def test_every_section_in_order_with_heading_and_content(report: Path) -> None:
    page = parse(report)
    expected = list(SECTION_IDS)
    expected.insert(expected.index("qc"), "more-figures")  # "extra_plot" has no section
    assert page.order == expected
    for section_id in expected:
        assert page.sections[section_id]["heading"].strip(), section_id
        assert len(section_text(page, section_id)) > 10, section_id


def test_table_of_contents_links_every_section(report: Path) -> None:
    page = parse(report)
    anchors = [link[1:] for link in page.links if link.startswith("#")]
    assert anchors == page.order


def test_missing_parts_say_why(report: Path) -> None:
    page = parse(report)
    # the note naming the section ("blood: ...") is shown
    assert "absent" in page.sections["blood"]["class"]
    assert section_text(page, "blood") == "blood: no blood samples in the manifest"
    # no note for biomarkers: the standard sentence
    assert "absent" in page.sections["biomarkers"]["class"]
    assert section_text(page, "biomarkers").startswith("No biomarker comparison")
    assert "absent" not in page.sections["survival"]["class"]


def test_images_are_copied_and_linked_relatively(report: Path) -> None:
    page = parse(report)
    folder = report.parent
    # 3 section figures + 2 QC thumbnails + 1 extra
    assert len(page.images) == 6
    for src in page.images + [link for link in page.links if not link.startswith("#")]:
        parsed = urlparse(src)
        assert not parsed.scheme and not parsed.netloc and not src.startswith("/"), src
        assert (folder / unquote(parsed.path)).is_file(), src
    assert "figures/survival_pfs.png" in page.images  # name from the figure key, not the file
    assert "figures/qc_P01_tracer-only_72h.png" in page.images
    assert "figures/qc_P02_tracer-only_72h.png" in page.images  # "/" and " " made safe
    assert (folder / "report.css").stat().st_size > 1000


def test_no_absolute_paths_scripts_or_external_urls(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert str(report.parent.parent) not in text
    for marker in ("http://", "https://", "file:", 'src="/', 'href="/', "url("):
        assert marker not in text, marker
    assert "script" not in parse(report).tags


def test_html_in_a_warning_is_escaped(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; value clipped" in text


def test_identifying_column_is_not_rendered(report: Path) -> None:
    page = parse(report)
    text = report.read_text(encoding="utf-8")
    assert "DOE^JANE" not in text and "ROE^RICHARD" not in text
    assert "patient_name" not in page.headers and "Patient name" not in page.headers
    assert "Patient no." in page.headers  # the pseudonym stays
    assert "may identify a patient: patient_name" in section_text(page, "baseline")


def test_numbers_are_formatted(report: Path) -> None:
    page = parse(report)
    outcome = section_text(page, "outcome")
    # SPSS's U (the smaller of U1, U2 = 42 - 12) and the group medians (the paper's headline)
    assert "U = 12 " in outcome and "0.061" in outcome and "exact" in outcome
    assert "no progression: 4.90; progression: 2.40" in outcome
    assert "no progression, progression" in outcome and "6, 7" in outcome
    assert "ties corrected" in outcome
    ihc = section_text(page, "ihc")  # the CPS correlation goes to immunohistochemistry
    assert "rho = 0.512" in ihc and "< 0.001" in ihc
    assert "SUVpeak vs CPS" not in outcome
    survival = section_text(page, "survival")
    assert "1.3 (0.0\u20133.8)" in survival  # cohort PFS, SPSS CI as given
    assert "NR (not reached)" in survival  # cohort OS median NaN
    assert "7.3 (2.0\u201312.6)" in survival
    assert "0.67 (0.25\u20131.79)" in survival  # Cox HR (CI)
    assert "p = 0.460" in survival
    bio = section_text(page, "biodistribution")
    assert "7.20 \u00b1 0.50 (3)" in bio and "1.60 \u00b1 0.20 (3)" in bio
    schedule = section_text(page, "schedule")
    # grid columns: tracer-only 72, 120 h; predose 72, 120 h (P01 has no predose 72 h scan)
    assert "P01 71.5 119.8 \u2014 120.4" in schedule
    assert "P02 73.0 121.0 70.9 \u2014" in schedule


def test_lesion_visibility_and_time_point(report: Path) -> None:
    page = parse(report)
    vis = section_text(page, "visibility")
    assert "26 of 102 (25%)" in vis and "26 of 50 (52%)" in vis
    assert "23 tracer-positive FDG-negative lesions at 72 h and 24 at 120 h; 12" in vis
    tbr = section_text(page, "tumour-to-blood")
    # 4.1 / 2.2 = 1.864, 3.9 / 1.9 = 2.053
    assert "120 h after injection" in tbr and "(2.05)" in tbr
    assert "72 h: 1.86; 120 h: 2.05" in tbr
    uptake = section_text(page, "uptake")
    assert "spill-in from the spleen" in uptake and "at least 20 mm" in uptake


def test_warnings_are_grouped_with_counts(report: Path) -> None:
    page = parse(report)
    text = section_text(page, "warnings")
    assert "3 warnings recorded, 2 different" in text
    assert "lesion 3 is 9 mm from the spleen 2 P01_tracer-only_120h, P02_tracer-only_120h" in text


def test_provenance_shows_versions_and_input_keys(report: Path) -> None:
    text = section_text(parse(report), "provenance")
    assert "0.1.0" in text and "2026-11-20 14:05" in text
    assert "Manifest path study.toml" in text  # the file name only
    assert "/home/someone" not in report.read_text(encoding="utf-8")
    assert "P02_tracer-only_72h cd34" in text and "normalisation bw" in text


def test_existing_figures_are_reused_when_none_given(report: Path) -> None:
    again = render_report(hand_built_analysis(), report.parent)
    assert parse(again).images == parse(report).images


def test_missing_figure_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="figure file not found"):
        render_report(
            hand_built_analysis(), tmp_path / "r", figures={"blood": tmp_path / "none.png"}
        )


def test_minimal_analysis_shows_a_note_in_every_empty_section(tmp_path: Path) -> None:
    empty = pd.DataFrame()
    analysis = StudyAnalysis(
        name="Empty",
        tracer="",
        settings=AnalysisSettings(),
        scans=empty,
        measurements=empty,
        failures=empty,
        schedule=empty,
    )
    page = parse(render_report(analysis, tmp_path / "r", figures={}))
    assert page.order == list(SECTION_IDS)
    for section_id in SECTION_IDS:
        assert len(section_text(page, section_id)) > 10, section_id
    assert "No warnings were recorded" in section_text(page, "warnings")
    assert section_text(page, "qc").startswith("No QC images")


def test_biomarker_table_shows_auc_with_interval(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "group": ["all", "all"],
            "candidate": ["SUVpeak, median of lesions", "PD-L1 CPS"],
            "n_response": [13, 12],
            "n_responders": [4, 4],
            "auc": [0.8125, 0.5],
            "auc_lower": [0.55, math.nan],
            "auc_upper": [1.0, math.nan],
            "n_pfs": [13, 12],
            "c_pfs": [0.671, 0.48],
            "n_os": [13, 12],
            "c_os": [0.7, math.nan],
        }
    )
    comparison = BiomarkerComparison(table, n_bootstrap=2000, seed=0, notes=("AUC = P(...)",))
    analysis = dataclasses.replace(hand_built_analysis(), biomarkers=comparison)
    page = parse(render_report(analysis, tmp_path / "r", figures={}))
    assert "absent" not in page.sections["biomarkers"]["class"]
    text = section_text(page, "biomarkers")
    # 0.8125 -> 0.81 with its bootstrap interval; no interval -> the AUC alone
    assert "SUVpeak, median of lesions 13 4 0.81 (0.55\u20131.00) 13 0.67 13 0.70" in text
    assert "PD-L1 CPS 12 4 0.50 12 0.48 12 \u2014" in text
    assert "AUC (95% CI)" in page.headers and "2000 resamples, seed 0" in text


@pytest.mark.parametrize(
    ("column", "identifying"),
    [
        ("patient", False),
        ("Patient no.", False),
        ("test_name", False),
        ("patient_name", True),
        ("PatientName", True),
        ("patient_id", True),
        ("birth_date", True),
        ("MRN", True),
        ("first name", True),
    ],
)
def test_is_identifying(column: str, identifying: bool) -> None:
    assert is_identifying(column) is identifying


def test_cli_report_runs_assemble_draw_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from immunopet.cli import report as cli_report
    from immunopet.report import build

    calls: list[str] = []

    def assemble_analysis(
        results_dir: Path, *, study: object = None, progress: bool = False
    ) -> StudyAnalysis:
        calls.append(f"assemble {Path(results_dir).name} study={study}")
        return hand_built_analysis()

    def figure_jobs(analysis: StudyAnalysis, outdir: Path) -> list[DrawJob]:
        calls.append(f"draw {Path(outdir).relative_to(tmp_path)}")
        path = Path(outdir) / "biodistribution.png"
        return [DrawJob("biodistribution", write_png, path, "figure biodistribution")]

    def qc_page_jobs(*args: object, **kwargs: object) -> list[DrawJob]:
        calls.append("qc")  # must not run: --no-qc
        return []

    monkeypatch.setattr(build, "assemble_analysis", assemble_analysis)
    monkeypatch.setattr(build, "figure_jobs", figure_jobs)
    monkeypatch.setattr(build, "qc_page_jobs", qc_page_jobs)
    parser = argparse.ArgumentParser()
    cli_report.register(parser.add_subparsers())
    argv = ["report", str(tmp_path / "results"), "-o", str(tmp_path / "out"), "--no-qc"]
    argv += ["--workers", "1"]  # the fake figure is drawn here
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert calls == ["assemble results study=None", "draw out/figures"]
    index = tmp_path / "out" / "index.html"
    assert str(index) in capsys.readouterr().out
    assert parse(index).images == ["figures/biodistribution.png"]


def test_every_table_is_downloadable_as_csv(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    links = sorted(set(re.findall(r'href="(tables/[^"]+\.csv)"', html)))
    assert len(links) >= 10
    assert html.count("<table") == html.count("Download this table (CSV)")
    for link in links:
        rows = (report.parent / link).read_text(encoding="utf-8").splitlines()
        assert rows, link
    survival = [link for link in links if "survival" in link]
    first = (report.parent / survival[0]).read_text(encoding="utf-8")
    assert first.startswith("Endpoint,n,Events,Median (CI),Restricted mean")


def test_an_interrupted_render_leaves_the_previous_report_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    figures = hand_built_figures(tmp_path / "drawn")
    before = render_report(hand_built_analysis(), out, figures=figures).read_bytes()
    tables = {p.name: p.read_bytes() for p in (out / "tables").iterdir()}
    real_write_text = Path.write_text
    written: list[str] = []

    def interrupted(path: Path, text: str, *args: object, **kwargs: object) -> int:
        written.append(path.name)
        real_write_text(path, text[: len(text) // 2], encoding="utf-8")  # half, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_report(hand_built_analysis(), out, figures=figures)
    assert written and written[0].startswith(".")  # the half went to a temporary file
    assert (out / "index.html").read_bytes() == before
    assert {p.name: p.read_bytes() for p in (out / "tables").iterdir()} == tables
    assert not [p.name for p in out.rglob(".*.tmp*")]  # no temporary file left behind


def test_images_and_tables_the_last_report_wrote_are_removed_when_not_shown(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    figures = hand_built_figures(tmp_path / "drawn")
    render_report(hand_built_analysis(), out, figures=figures)
    # the last report also showed a figure (with its SVG and print copies) and a table that
    # this one has not: another analysis's numbers
    gone = [out / "figures" / f"roc{end}" for end in (".png", ".svg", "_300dpi.png")]
    for path in gone:
        write_png(path)
    record = out / ".immunopet-report-files.json"
    written = json.loads(record.read_text())
    assert "figures/extra_plot.png" in written and "tables/overview-1.csv" in written
    (out / "tables" / "biomarkers-1.csv").write_text("old numbers")
    (tmp_path / "outside.csv").write_text("not the report's")
    earlier = ["figures/roc.png", "figures/roc.svg", "figures/roc_300dpi.png"]
    record.write_text(
        json.dumps([*written, *earlier, "tables/biomarkers-1.csv", "tables/../../outside.csv"])
    )
    # files the reports did not write stay, whatever they are
    mine = [out / "figures" / "my_plot.png", out / "tables" / "my_table.csv"]
    for path in mine:
        path.write_text("mine")
    index = render_report(hand_built_analysis(), out, figures=figures)
    assert not [path.name for path in gone if path.exists()]
    assert not (out / "tables" / "biomarkers-1.csv").exists()
    assert all(path.exists() for path in mine) and (tmp_path / "outside.csv").exists()
    assert json.loads(record.read_text()) == written
    linked = re.findall(r'(?:src|href)="((?:figures|tables)/[^"]+)"', index.read_text())
    assert linked and all((out / unquote(link)).is_file() for link in linked)
    # reusing the images already there (no figures given) keeps every one of them
    before = sorted(p.name for p in (out / "figures").iterdir())
    render_report(hand_built_analysis(), out)
    assert sorted(p.name for p in (out / "figures").iterdir()) == before


def test_a_figure_the_next_report_does_not_draw_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "report"
    figures = hand_built_figures(tmp_path / "drawn")
    render_report(hand_built_analysis(), out, figures=figures)
    assert (out / "figures" / "extra_plot.png").is_file()
    del figures["extra_plot"]
    render_report(hand_built_analysis(), out, figures=figures)
    assert not (out / "figures" / "extra_plot.png").exists()
    assert (out / "figures" / "biodistribution.png").is_file()
