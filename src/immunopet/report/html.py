"""The study report as one self-contained HTML folder.

:func:`render_report` arranges a :class:`~immunopet.analysis.results.StudyAnalysis` (and the
figures drawn from it by :func:`immunopet.report.figures.draw_all`) into ``OUTDIR/index.html``
with its stylesheet ``OUTDIR/report.css`` and its images under ``OUTDIR/figures/``. Every link
is relative and nothing is fetched from the network, so the folder can be zipped, mailed and
opened anywhere. The report never computes a number: it formats the tables and result
objects it is given.

Sections, in order (their ``id`` is the page anchor): ``overview``, ``schedule``,
``baseline``, ``safety``, ``biodistribution``, ``blood``, ``kinetics``, ``visibility``,
``tumour-to-blood``, ``uptake``, ``outcome``, ``survival``, ``ihc``, ``biomarkers``,
``heterogeneity``, ``qc``, ``warnings``, ``provenance`` (and, before ``qc``, ``fdg-vs-zr`` when
Fig 5-style panels ``"fig5 <patient> <lesion>"`` are given, ``more-figures`` when a figure has
no section of its own). A section whose data is missing says why: the notes of
:attr:`StudyAnalysis.notes` whose text before the colon names it (``"blood samples: not
computed (...)"``; the prefixes are in ``templates/report_text.toml``), else the notes that
mention its subject, else a standard sentence. A section with data shows the notes that name
it; the overview lists every note. The words of the report (titles, captions, headers, the
columns each table shows) are in ``templates/report_text.toml``.

Privacy: a table column whose name may identify a person (name, birth date, medical record
number, patient ID other than the pseudonym column ``patient``; see :func:`is_identifying`)
is never rendered; the table says which column was left out.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote

import jinja2
import pandas as pd

from immunopet import __version__
from immunopet.analysis.biodistribution import ORGAN_ORDER
from immunopet.analysis.results import SplitSurvival, StudyAnalysis
from immunopet.errors import InputError
from immunopet.io.atomic import write_text_atomically
from immunopet.report._cells import (
    DASH,
    Cell,
    Figure,
    Section,
    Table,
    attach_csv,
    cell,
    format_cell,
    format_p_value,
    format_statistic,
    frame_table,
    has_rows,
    header,
    hours_label,
    is_identifying,
    is_missing,
    natural_key,
    plan_rows,
    report_words,
    same_precision,
    series_order,
    text_table,
)
from immunopet.report.html_kinetics import kinetics_body
from immunopet.report.html_provenance import as_time, provenance_body, warnings_body
from immunopet.stats.results import SurvivalSummary, TestResult

__all__ = ["SECTION_IDS", "format_p_value", "is_identifying", "render_report"]

SECTION_IDS: Final = (
    "overview",
    "schedule",
    "baseline",
    "safety",
    "biodistribution",
    "blood",
    "kinetics",
    "visibility",
    "tumour-to-blood",
    "uptake",
    "outcome",
    "survival",
    "ihc",
    "biomarkers",
    "heterogeneity",
    "qc",
    "warnings",
    "provenance",
)
"""Ids of the report's sections, in page order (``more-figures`` is added when needed)."""

_IHC_PATTERN: Final = re.compile(r"\b(TPS|CPS|PD-?L1|IHC|immunohistochem\w*)\b", re.IGNORECASE)
_QC_PREFIXES: Final = ("qc/", "qc ", "qc_")
_FIG5_PREFIXES: Final = ("fig5 ", "fig5_")
_HR_COLUMNS: Final = ("hazard_ratio", "hr_lower", "hr_upper")


def _title(section_id: str) -> str:
    return str(report_words()["titles"][section_id])


# ---------------------------------------------------------------------------- figures
def _safe_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "figure"


def _qc_scan(name: str) -> str | None:
    """The scan id of a QC figure name (``"qc <scan>"``, ``"qc/<scan>"``, ``"qc_<scan>"``)."""
    for prefix in _QC_PREFIXES:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return None


def _fig5_lesion(name: str) -> str | None:
    """``"<patient> lesion <lesion>"`` of a Fig 5 panel's name (``"fig5 <patient> <lesion>"``)."""
    for prefix in _FIG5_PREFIXES:
        if name.startswith(prefix):
            rest = name.removeprefix(prefix)
            patient, _, lesion = rest.partition(prefix[-1])
            return f"{patient} lesion {lesion}" if lesion else rest
    return None


def _copy_figures(figures: Mapping[str, Path], outdir: Path) -> dict[str, Figure]:
    """Copy each figure to ``outdir/figures/<name>`` (QC pages ``qc_<scan>``); relative links."""
    placed: dict[str, Figure] = {}
    known = report_words()["figures"]
    for name, source in figures.items():
        source_path = Path(source)
        if not source_path.is_file():
            raise InputError(
                "figure file not found",
                file=str(source_path),
                tag=f"figure {name!r}",
                value="missing",
                expected="an image file written by draw_all",
            )
        scan = _qc_scan(name)
        stem = f"qc_{_safe_part(scan)}" if scan is not None else _safe_part(name)
        relative = Path("figures", stem + source_path.suffix.lower())
        target = outdir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.resolve() == source_path.resolve()):
            shutil.copyfile(source_path, target)
        caption = scan if scan is not None else known.get(name, {}).get("caption", header(name))
        lesion = _fig5_lesion(name)
        if lesion is not None:
            caption = f"Fig 5-style: FDG vs 89Zr, same lesion, same slice ({lesion})."
        placed[name] = Figure(name=name, src=quote(relative.as_posix()), caption=caption)
    return placed


def _found_figures(outdir: Path) -> dict[str, Path]:
    folder = outdir / "figures"
    if not folder.is_dir():
        return {}
    return {
        path.stem: path
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in {".png", ".svg", ".jpg", ".jpeg"} and path.is_file()
    }


# ---------------------------------------------------------------------------- notes
def _owner(note: str) -> str | None:
    """The section a note names before its colon (longest matching prefix), if any."""
    if ":" not in note:
        return None
    head = note.split(":", 1)[0].strip().lower()
    best: tuple[int, str | None] = (0, None)
    for section_id, prefixes in report_words()["prefixes"].items():
        for prefix in prefixes:
            if (head == prefix or head.startswith(prefix + " ")) and len(prefix) > best[0]:
                best = (len(prefix), section_id)
    return best[1]


def _notes_for(section_id: str, notes: Sequence[str], *, by_keyword: bool) -> tuple[str, ...]:
    own = tuple(note for note in notes if _owner(note) == section_id)
    if own or not by_keyword:
        return own
    words = report_words()["keywords"].get(section_id, ())
    # upper-case words (OS, TPS, QC) match as written, the others in any case
    exact = [w for w in words if w.isupper()]
    loose = [w for w in words if not w.isupper()]
    patterns = [
        re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in group) + r")(?!\w)", flags)
        for group, flags in ((exact, 0), (loose, re.IGNORECASE))
        if group
    ]
    return tuple(note for note in notes if any(p.search(note) for p in patterns))


def _section(
    section_id: str,
    analysis: StudyAnalysis,
    body: Mapping[str, Any] | None,
) -> Section:
    title = _title(section_id)
    if body is None:
        notes = _notes_for(section_id, analysis.notes, by_keyword=True)
        if not notes:
            notes = (report_words()["absent"].get(section_id, "Not available for this study."),)
        return Section(section_id, title, available=False, notes=notes)
    notes = _notes_for(section_id, analysis.notes, by_keyword=False)
    return Section(section_id, title, available=True, notes=notes, body=body)


# ---------------------------------------------------------------------------- sections
def _patients(analysis: StudyAnalysis) -> list[str]:
    for frame in (analysis.schedule, analysis.scans):
        if frame is not None and "patient" in frame.columns and not frame.empty:
            return sorted({str(p) for p in frame["patient"].dropna()}, key=natural_key)
    return []


def _provenance_time(provenance: Mapping[str, Any]) -> str:
    for key in ("finished_at", "started_at", "run_date", "created", "timestamp"):
        value = provenance.get(key)
        if value not in ("", None) and not is_missing(value):
            return as_time(value)
    return DASH


def _overview(analysis: StudyAnalysis, generated: str) -> dict[str, Any]:
    frame = analysis.schedule if has_rows(analysis.schedule) else analysis.scans
    series = series_order(frame["series"]) if "series" in frame.columns else []
    settings = dataclasses.asdict(analysis.settings)
    facts = [
        ("Study", analysis.name or DASH),
        ("Tracer", analysis.tracer or DASH),
        ("Patients", str(len(_patients(analysis)))),
        ("Scans", str(len(frame))),
        ("Series", ", ".join(series) or DASH),
        ("Scans that failed", str(len(analysis.failures))),
        ("Analysis run", _provenance_time(analysis.provenance)),
        ("Report made", generated),
        ("immunopet", str(analysis.provenance.get("package_version", __version__))),
    ]
    return {
        "facts": text_table(["", ""], facts, css="facts"),
        "settings": text_table(
            ["Setting", "Value"],
            [
                (header(k), f"{v:g}" if isinstance(v, float) else cell(v, k))
                for k, v in settings.items()
            ],
            caption="Analysis settings (choices that change numbers).",
            css="facts",
        ),
        "plan": text_table(
            ["Plan", "Value"],
            plan_rows(analysis.plan),
            css="facts",
            caption="Analysis plan (the manifest's [analysis] table).",
        ),
        "all_notes": tuple(analysis.notes),
    }


def _series_grid(
    frame: pd.DataFrame,
    row_key: str,
    row_order: Sequence[str],
    text_of: Callable[[pd.Series], str],
    *,
    first: str,
    caption: str,
) -> Table:
    """Rows of ``row_key`` x columns of series and nominal hours; a dash where no row is."""
    data = frame.assign(
        **{
            row_key: frame[row_key].astype(str),
            "series": frame["series"].astype(str),
            "nominal_hours": pd.to_numeric(frame["nominal_hours"], errors="coerce"),
        }
    ).dropna(subset=["nominal_hours"])
    series = series_order(data["series"])
    columns = [
        (s, h)
        for s in series
        for h in sorted(data.loc[data["series"] == s, "nominal_hours"].unique())
    ]
    lookup = data.drop_duplicates([row_key, "series", "nominal_hours"]).set_index(
        [row_key, "series", "nominal_hours"]
    )
    rows = []
    for key in row_order:
        row = [Cell(key.replace("_", " ") if row_key == "organ" else key)]
        for s, h in columns:
            if (key, s, h) in lookup.index:
                row.append(Cell(text_of(lookup.loc[(key, s, h)]), numeric=True))
            else:
                row.append(Cell(DASH, missing=True))
        rows.append(row)
    groups = [Cell("")] + [Cell(s, span=sum(1 for c in columns if c[0] == s)) for s in series]
    return text_table(
        [first, *(hours_label(h) for _, h in columns)],
        rows,
        caption=caption,
        header_groups=groups,
        css="grid",
    )


def _schedule(analysis: StudyAnalysis) -> dict[str, Any] | None:
    frame = analysis.schedule
    if not has_rows(frame) or not {"patient", "series", "nominal_hours"} <= set(frame.columns):
        return None

    def actual(record: pd.Series) -> str:
        hours = record.get("hours_pi", math.nan)
        return "done" if is_missing(hours) else f"{float(hours):.1f}"

    patients = sorted({str(p) for p in frame["patient"]}, key=natural_key)
    grid = _series_grid(
        frame,
        "patient",
        patients,
        actual,
        first="Patient",
        caption="Actual hours after injection of each scan, by series and nominal time point "
        "(a dash: no scan).",
    )
    return {"grid": grid}


def _baseline(analysis: StudyAnalysis) -> dict[str, Any] | None:
    if not has_rows(analysis.baseline) and not has_rows(analysis.baseline_summary):
        return None
    summary = analysis.baseline_summary
    summary_table = None
    if has_rows(summary) and summary is not None:
        summary_table = frame_table(summary, columns="baseline_summary", caption="Summary.")
    return {
        "table": frame_table(analysis.baseline, caption="Patient characteristics (Table 1)."),
        "summary": summary_table,
    }


def _safety(analysis: StudyAnalysis) -> dict[str, Any] | None:
    frame = analysis.adverse_events
    if not has_rows(frame) or frame is None:
        return None
    text_columns = [c for c in frame.columns if not str(c).startswith(("n_", "percent_"))]
    return {
        "table": frame_table(
            frame,
            columns=text_columns,
            caption="Adverse events, n (%) of patients (CTCAE).",
            collapsed=False,
        )
    }


def _organ_grid(frame: pd.DataFrame) -> Table | None:
    if not {"organ", "series", "nominal_hours", "mean"} <= set(frame.columns):
        return None

    def mean_sd_n(record: pd.Series) -> str:
        text = format_cell(record["mean"], "mean")
        if not is_missing(record.get("sd")):
            text += f" \u00b1 {format_cell(record['sd'], 'sd')}"
        if not is_missing(record.get("n")):
            text += f" ({format_cell(record['n'], 'n')})"
        return text

    present = {str(o) for o in frame["organ"]}
    organs = [o for o in ORGAN_ORDER if o in present] + sorted(present - set(ORGAN_ORDER))
    return _series_grid(
        frame,
        "organ",
        organs,
        mean_sd_n,
        first="Organ",
        caption="SUVmean of normal tissue: mean \u00b1 SD (n patients), by series and time "
        "point after injection.",
    )


def _biodistribution(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    organs, ratio = analysis.organ_uptake, analysis.predose_ratio
    if not has_rows(organs) and not has_rows(ratio) and not figures:
        return None
    grid = _organ_grid(organs) if organs is not None and not organs.empty else None
    if grid is not None and organs is not None and "cohort" in organs.columns:
        cohorts = [
            f"{series}: {cohort}"
            for series, cohort in organs[["series", "cohort"]]
            .drop_duplicates()
            .itertuples(index=False)
        ]
        grid = dataclasses.replace(
            grid, notes=(*grid.notes, "Patients per series (" + "; ".join(cohorts) + ").")
        )
    return {
        "figures": figures,
        "organs": grid or frame_table(organs, caption="Normal-tissue uptake."),
        "organs_full": frame_table(organs, caption="All columns.", collapsed=True)
        if grid
        else None,
        "ratio": frame_table(
            ratio,
            caption="Predose / tracer-only ratio of normal-tissue uptake per time point.",
        ),
    }


def _blood(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    blood, comparison = analysis.blood, analysis.blood_vs_image
    if not has_rows(blood) and not has_rows(comparison) and not figures:
        return None
    summary = frame_table(
        analysis.blood_summary,
        caption="Blood activity per sample time: mean ± SD (%IA/L) of the patients of the "
        "biodistribution cohort (the cohort column names them).",
        headers={"hours_pi_mean": "Hours p.i. (mean)", "mean": "Mean %IA/L", "sd": "SD %IA/L"},
    )
    return {
        "figures": figures,
        "summary": summary,
        "table": frame_table(
            blood,
            columns="blood",
            caption="Every blood sample (decay-corrected to injection).",
            collapsed=True,
        ),
        "comparison": frame_table(
            comparison, caption="Blood samples against the image blood pool (aorta SUVmean)."
        ),
    }


def _visibility(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    vis = analysis.visibility
    if vis is None:
        return None
    summary = vis.summary.copy()
    if "time_point" not in summary.columns and "nominal_hours" in summary.columns:
        summary["time_point"] = summary["nominal_hours"].map(hours_label)
    sentences = []
    both = vis.fdg_negative_both
    needed = {"series", "first_hours", "second_hours", "n_first", "n_second", "n_both"}
    if has_rows(both) and needed <= set(both.columns):
        for row in both.itertuples(index=False):
            sentences.append(
                f"{row.series}: {format_cell(row.n_first, 'n')} tracer-positive FDG-negative "
                f"lesions at {float(row.first_hours):g} h and {format_cell(row.n_second, 'n')} "
                f"at {float(row.second_hours):g} h; {format_cell(row.n_both, 'n')} of them "
                "were seen at both time points."
            )
    extra = analysis.visibility_extra
    if extra is not None and not extra.empty:
        row = extra.iloc[0]
        sentences.append(
            f"{format_cell(row['n_only_comparison'], 'n')} FDG-positive lesion(s) were seen on "
            f"the {row['comparison_series']} scans and on no {row['reference_series']} scan "
            f"({format_cell(row['n_only_comparison_large'], 'n')} of them with a long axis of "
            f"at least {analysis.settings.min_long_axis_mm:g} mm)."
        )
    return {
        "figures": figures,
        "rule": vis.rule,
        "summary": frame_table(
            summary,
            columns="visibility_summary",
            caption="FDG-positive lesions visible on the immuno-PET: visible of the FDG-positive "
            "lesions of the patients who had that scan (%).",
            headers={"group": "Lesions", "text": "Visible"},
        ),
        "tracer_positive": frame_table(
            vis.tracer_positive,
            columns="tracer_positive",
            caption="Tracer-positive lesions and how many of them were FDG-positive.",
            headers={"text": "FDG-positive of tracer-positive"},
        ),
        "stability": frame_table(
            both,
            caption="Tracer-positive FDG-negative lesions: seen at one time point or both.",
        ),
        "stability_sentences": sentences,
        "per_scan": frame_table(
            vis.per_scan,
            columns="per_scan",
            caption="Every lesion on every scan.",
            collapsed=True,
        ),
    }


def _tumour_to_blood(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    tbr, choice = analysis.tumour_to_blood, analysis.time_point
    if not has_rows(tbr) and choice is None and not figures:
        return None
    sentence = ""
    if choice is not None:
        compared = ""
        table = choice.table
        if has_rows(table) and {"nominal_hours", "ratio"} <= set(table.columns):
            compared = "; ".join(
                f"{float(h):g} h: {format_cell(r, 'ratio')}"
                for h, r in zip(table["nominal_hours"], table["ratio"], strict=True)
            )
            compared = f" (compared: {compared})"
        sentence = (
            f"Recommended analysis time point: {choice.nominal_hours:g} h after injection, "
            f"where the tumour-to-blood ratio of the {choice.series} series was highest "
            f"({format_cell(choice.ratio, 'ratio')}){compared}."
        )
        if not math.isclose(choice.nominal_hours, analysis.settings.analysis_hours):
            sentence += (
                f" The per-patient analysis uses {analysis.settings.analysis_hours:g} h, as "
                "the study settings say."
            )
    return {
        "figures": figures,
        "sentence": sentence,
        "table": frame_table(
            tbr,
            columns="tumour_to_blood",
            caption="Mean lesion uptake / mean blood-pool uptake per series and time point.",
        ),
        "selection": _selection_text(tbr),
    }


def _selection_text(tbr: pd.DataFrame | None) -> str:
    if tbr is None or "selection" not in tbr.columns:
        return ""
    texts = [str(v) for v in tbr["selection"].dropna().unique() if str(v).strip()]
    return "; ".join(texts)


def _uptake(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    uptake = analysis.uptake
    if uptake is None:
        return None
    sentence = (
        f"Per patient: {header(uptake.metric)} of the lesions of at least "
        f"{uptake.min_long_axis_mm:g} mm long axis on the {uptake.series} scan "
        f"{uptake.hours:g} h after injection"
    )
    if uptake.fallback_hours:
        fallback = ", ".join(f"{h:g} h" for h in uptake.fallback_hours)
        sentence += f" (when that scan is missing: {fallback})"
    sentence += "; left-out lesions are listed with their reason."
    excluded = uptake.excluded
    return {
        "figures": figures,
        "sentence": sentence,
        "patients": frame_table(
            uptake.patients,
            caption=f"Per-patient {header(uptake.metric)} (statistics over the patient's lesions).",
            collapsed=False,
        ),
        "excluded": frame_table(excluded, caption="Lesions left out, with the reason.")
        if has_rows(excluded)
        else None,
        "suggested": frame_table(
            uptake.suggested,
            columns=(
                "patient",
                "lesion",
                "series",
                "nominal_hours",
                uptake.metric,
                "suggested_exclusion",
            ),
            caption="Flag: lesions used although an exclusion was suggested (not applied; "
            "exclude them in the manifest, with a reason, to leave them out).",
            collapsed=False,
        )
        if has_rows(uptake.suggested)
        else None,
        "lesions": frame_table(uptake.lesions, caption="The lesions used.", collapsed=True),
    }


def _is_ihc(title: str, result: TestResult) -> bool:
    text = " ".join([title, result.test_name, *result.groups])
    return bool(_IHC_PATTERN.search(text))


def _statistic_text(result: TestResult) -> str:
    """``"U = 3.00"`` (SPSS's U: the smaller of U1 and U2), ``"H = 4.20"``, ``"rho = 0.512"``."""
    if result.statistic_name == "U":
        value = float(result.extra.get("U_min", result.statistic))
        return f"U = {value:g}"  # a whole or half number of pairs
    return f"{result.statistic_name} = {format_statistic(result.statistic)}"


def _medians_text(result: TestResult) -> str:
    found = [
        f"{label}: {format_cell(result.extra[f'median {label}'], 'median')}"
        for label in result.groups
        if f"median {label}" in result.extra
    ]
    return "; ".join(found) or DASH


def _tests_table(tests: Mapping[str, TestResult], caption: str) -> Table:
    rows = []
    notes: list[str] = []
    for title, result in tests.items():
        rows.append(
            (
                title,
                result.test_name,
                ", ".join(result.groups) or DASH,
                Cell(", ".join(str(v) for v in result.n), numeric=True),
                _medians_text(result),
                Cell(_statistic_text(result), numeric=True),
                Cell(format_p_value(result.p_value), numeric=True),
                result.method,
            )
        )
        notes.extend(f"{title}: {note}" for note in result.notes)
    return text_table(
        ["Analysis", "Test", "Groups", "n", "Group medians", "Statistic", "p", "Method"],
        rows,
        caption=caption,
        notes=list(dict.fromkeys(notes)),
    )


def _outcome(
    analysis: StudyAnalysis, figures: list[Figure], tests: Mapping[str, TestResult]
) -> dict[str, Any] | None:
    if not tests and not figures and not has_rows(analysis.lesion_response):
        return None
    return {
        "figures": figures,
        "tests": _tests_table(tests, "Group tests and correlations (two-sided).")
        if tests
        else None,
        "lesions": frame_table(
            analysis.lesion_response,
            caption="Per-lesion uptake with the clinical response.",
            collapsed=True,
        ),
    }


def _with_ci(value: Any, lower: Any, upper: Any, fmt: Callable[[Any], str] = format_cell) -> str:
    """``"value (lower–upper)"``, limits to the precision of the value; the interval left out
    when both limits are missing."""
    text = fmt(value)
    if is_missing(lower) and is_missing(upper):
        return text
    return f"{text} ({same_precision(lower, text)}\u2013{same_precision(upper, text)})"


def _one_decimal(value: Any) -> str:
    return format_cell(value) if is_missing(value) or math.isinf(value) else f"{value:.1f}"


def _median_text(summary: SurvivalSummary) -> Cell:
    if is_missing(summary.median):
        return Cell("NR (not reached)", numeric=True)
    return Cell(_with_ci(summary.median, summary.lower, summary.upper, _one_decimal), True)


def _survival_table(
    summaries: Mapping[str, SurvivalSummary],
    caption: str,
    first: str,
    restricted: Mapping[str, float] | None = None,
) -> Table:
    rows = []
    notes: list[str] = []
    for key, summary in summaries.items():
        rows.append(
            (
                key,
                summary.n,
                summary.events,
                _median_text(summary),
                Cell(_one_decimal((restricted or {}).get(key, math.nan)), numeric=True),
                summary.time_unit or DASH,
                f"{round(100 * (1 - summary.alpha)):d}% {summary.ci_method}",
            )
        )
        notes.extend(f"{key}: {note}" for note in summary.notes)
    notes.append(
        "Restricted mean: the area under the Kaplan-Meier curve up to the group's largest "
        "observed time (SPSS's 'Mean' of survival time)."
    )
    return text_table(
        [first, "n", "Events", "Median (CI)", "Restricted mean", "Unit", "Interval"],
        rows,
        caption=caption,
        notes=notes,
    )


def _split(split: SplitSurvival, figure: Figure | None, uptake: str = "uptake") -> dict[str, Any]:
    logrank = None
    if split.logrank is not None:
        lr = split.logrank
        logrank = text_table(
            ["Group", "n", "Observed", "Expected"],
            zip(lr.groups, lr.n, lr.events, lr.expected, strict=True),
            caption=f"Log-rank test: chi\u00b2 = {lr.statistic:.2f}, df = {lr.df}, "
            f"p = {format_p_value(lr.p_value)}.",
            notes=lr.notes,
        )
    cox = None
    if split.cox is not None:
        table = split.cox.table
        rows = [
            (
                record.get("covariate", DASH),
                Cell(_with_ci(*(record.get(k) for k in _HR_COLUMNS)), numeric=True),
                Cell(format_p_value(record.get("p_value", math.nan)), numeric=True),
            )
            for record in table.to_dict("records")
        ]
        cox = text_table(
            ["Covariate", f"Hazard ratio ({round(100 * (1 - split.cox.alpha)):d}% CI)", "p"],
            rows,
            caption=f"Cox proportional hazards (n = {split.cox.n}, events = {split.cox.events}, "
            f"ties: {split.cox.ties}).",
            notes=split.cox.notes,
        )
    return {
        "endpoint": split.endpoint,
        "uptake": uptake,
        "threshold": (
            f"{split.threshold:.2f} ({split.threshold_rule})"
            if split.threshold_rule
            else f"{split.threshold:.2f}"
        )
        if not is_missing(split.threshold)
        else DASH,
        "figure": figure,
        "groups": _survival_table(
            split.summaries,
            "Survival by uptake group (high: above the threshold).",
            "Group",
            restricted={
                group: split.restricted_mean.get(group.split(",")[0], math.nan)
                for group in split.summaries
            },
        )
        if split.summaries
        else None,
        "logrank": logrank,
        "cox": cox,
    }


def _survival(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    if not analysis.cohort_survival and not analysis.split_survival and not figures:
        return None
    by_name = {f.name: f for f in figures}
    splits = []
    for key, split in analysis.split_survival.items():
        endpoint = key.lower()
        figure = by_name.pop(f"km_{endpoint}", None) or by_name.pop(f"survival_{endpoint}", None)
        plan = analysis.plan
        uptake = f"{plan.split_aggregate.replace('_', ' ')} lesion {header(plan.uptake_metric)}"
        splits.append(_split(split, figure, uptake))
    return {
        "cohort": _survival_table(
            analysis.cohort_survival,
            "Survival of the whole cohort.",
            "Endpoint",
            restricted=analysis.cohort_restricted_mean,
        )
        if analysis.cohort_survival
        else None,
        "splits": splits,
        "figures": list(by_name.values()),
    }


def _ihc(tests: Mapping[str, TestResult], figures: list[Figure]) -> dict[str, Any] | None:
    if not tests and not figures:
        return None
    return {
        "figures": figures,
        "tests": _tests_table(tests, "Uptake against PD-L1 immunohistochemistry.")
        if tests
        else None,
    }


def _biomarkers(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    comparison = analysis.biomarkers
    if comparison is None:
        return None
    table = comparison.table
    level = round(100 * (1 - comparison.alpha))
    notes = comparison.notes
    hidden = {"auc_method"}
    for value, lower, upper in (
        ("auc", "auc_lower", "auc_upper"),
        ("c_pfs", "c_pfs_lower", "c_pfs_upper"),
        ("c_os", "c_os_lower", "c_os_upper"),
    ):
        if {value, lower, upper} <= set(table.columns):
            cells = zip(table[value], table[lower], table[upper], strict=True)
            table = table.assign(**{value: [_with_ci(*v) for v in cells]})
            hidden |= {lower, upper}
    columns = [c for c in table.columns if c not in hidden]
    if comparison.interval == "bootstrap":
        how = f"bootstrap CI, {comparison.n_bootstrap} resamples, seed {comparison.seed}"
    else:
        how = "logit-DeLong CI; Newcombe's score CI where a group separates perfectly"
    shown = frame_table(
        table,
        columns=columns,
        caption=f"AUC for response ({how}) and Harrell's C for survival (logit CI, "
        "infinitesimal-jackknife variance), per tumour type and overall; P vs PET: paired "
        "comparison with the PET candidate (DeLong; IJ z-test).",
        notes=notes,
        headers={
            "auc": f"AUC ({level}% CI)",
            "c_pfs": f"C PFS ({level}% CI)",
            "c_os": f"C OS ({level}% CI)",
            "p_auc_vs_pet": "P vs PET (AUC)",
            "p_pfs_vs_pet": "P vs PET (PFS)",
            "p_os_vs_pet": "P vs PET (OS)",
        },
    )
    return {"figures": figures, "table": shown}


def _heterogeneity(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    part = analysis.heterogeneity
    if part is None:
        return None
    shown = frame_table(
        part.table,
        caption=f"Variance components of log lesion {part.metric} at {part.hours:g} h: "
        "between tumour types, between patients (within type) and between lesions (within "
        "patient); share of the total; ICC = correlation of two lesions of one patient "
        "(patient row) or of two patients of one tumour type (tumour-type row).",
        notes=part.components.notes,
        headers={"icc": "ICC", "variance": "Variance (of log uptake)"},
    )
    return {"figures": figures, "table": shown}


# ---------------------------------------------------------------------------- render
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("immunopet.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _build_sections(
    analysis: StudyAnalysis, placed: Mapping[str, Figure], generated: str
) -> list[Section]:
    figures_of: dict[str, list[Figure]] = {}
    extra: list[Figure] = []
    qc: list[Figure] = []
    fig5: list[Figure] = []
    known = report_words()["figures"]
    for name, figure in placed.items():
        if _qc_scan(name) is not None:
            qc.append(figure)
        elif _fig5_lesion(name) is not None:
            fig5.append(figure)
        elif name in known:
            figures_of.setdefault(known[name]["section"], []).append(figure)
        elif name.startswith("uptake_vs_"):  # one per IHC marker of the analysis plan
            figures_of.setdefault("ihc", []).append(figure)
        else:
            extra.append(figure)
    ihc_keys = {v for k, v in analysis.test_roles.items() if k.startswith("ihc")}
    ihc_tests = {k: v for k, v in analysis.tests.items() if k in ihc_keys or _is_ihc(k, v)}
    other_tests = {k: v for k, v in analysis.tests.items() if k not in ihc_tests}
    schedule = _schedule(analysis)
    if schedule is not None:
        schedule["figures"] = figures_of.get("schedule", [])

    def own(section_id: str) -> list[Figure]:
        return figures_of.get(section_id, [])

    bodies: list[tuple[str, Mapping[str, Any] | None]] = [
        ("overview", _overview(analysis, generated)),
        ("schedule", schedule),
        ("baseline", _baseline(analysis)),
        ("safety", _safety(analysis)),
        ("biodistribution", _biodistribution(analysis, own("biodistribution"))),
        ("blood", _blood(analysis, own("blood"))),
        ("kinetics", kinetics_body(analysis, own("kinetics"))),
        ("visibility", _visibility(analysis, own("visibility"))),
        ("tumour-to-blood", _tumour_to_blood(analysis, own("tumour-to-blood"))),
        ("uptake", _uptake(analysis, own("uptake"))),
        ("outcome", _outcome(analysis, own("outcome"), other_tests)),
        ("survival", _survival(analysis, own("survival"))),
        ("ihc", _ihc(ihc_tests, own("ihc"))),
        ("biomarkers", _biomarkers(analysis, own("biomarkers"))),
        ("heterogeneity", _heterogeneity(analysis, own("heterogeneity"))),
    ]
    if fig5:  # only a study with FDG reference scans has them
        bodies.append(("fdg-vs-zr", {"figures": fig5}))
    if extra:
        bodies.append(("more-figures", {"figures": extra}))
    bodies += [
        ("qc", {"figures": qc} if qc else None),
        ("warnings", warnings_body(analysis)),
        ("provenance", provenance_body(analysis)),
    ]
    return [_section(section_id, analysis, body) for section_id, body in bodies]


def render_report(
    analysis: StudyAnalysis,
    outdir: str | Path,
    *,
    figures: Mapping[str, Path] | None = None,
) -> Path:
    """Write the study report as a self-contained folder.

    Parameters
    ----------
    analysis : StudyAnalysis
        Everything the report shows (:func:`immunopet.analysis.assemble.assemble_analysis`).
    outdir : str or Path
        The report folder; created if needed. Receives ``index.html``, ``report.css``,
        ``figures/`` and ``tables/`` (files of the same name are replaced; the images and
        CSVs the last report wrote there that this one does not show are removed, as
        recorded in ``.immunopet-report-files.json``; other files are left alone).
    figures : mapping of str to Path, optional
        Figure name (``"biodistribution"``, ``"km_pfs"``, ``"qc/<scan>"`` ...) to image
        file, as :func:`immunopet.report.figures.draw_all` returns it. Each file is copied
        to ``outdir/figures/<name><suffix>`` (nothing to copy when it is already there).
        ``None``: use the images already under ``outdir/figures``.

    Returns
    -------
    Path
        ``outdir/index.html``.

    Raises
    ------
    InputError
        When a figure file does not exist.

    Notes
    -----
    All links are relative and there is no script and no external resource; the HTML is
    escaped by Jinja2's autoescaping. Columns that may identify a patient
    (:func:`is_identifying`) are left out of every table, and the table says so.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    sources = dict(figures) if figures is not None else _found_figures(out)
    placed = _copy_figures(sources, out)
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    sections = _build_sections(analysis, placed, generated)
    tables = attach_csv(sections, out)
    template = _environment().get_template("index.html.j2")
    html = template.render(
        title=f"{analysis.name} \u2014 immuno-PET report" if analysis.name else "immuno-PET report",
        analysis_name=analysis.name,
        tracer=analysis.tracer,
        sections=sections,
        generated=generated,
        version=__version__,
    )
    css = files("immunopet.report").joinpath("templates", "report.css").read_text("utf-8")
    write_text_atomically(out / "report.css", css)
    # last, and whole or not at all: an interrupted render leaves the previous index.html
    index = write_text_atomically(out / "index.html", html)
    _forget_earlier_files(out, _shown_files(out, placed.values(), tables))
    return index


_FILES_WRITTEN: Final = ".immunopet-report-files.json"
"""The images and CSVs the last report put in its folder (relative paths, JSON)."""


def _shown_files(out: Path, placed: Iterable[Figure], tables: Iterable[str]) -> set[str]:
    """The images and table CSVs of this report, relative to ``out`` (with each figure's SVG
    and print copy when they exist)."""
    shown = set(tables)
    for figure in placed:
        path = Path(unquote(figure.src))
        for copy in (path, path.with_suffix(".svg"), path.with_name(f"{path.stem}_300dpi.png")):
            if (out / copy).is_file():
                shown.add(copy.as_posix())
    return shown


def _forget_earlier_files(out: Path, shown: set[str]) -> None:
    """Remove the images and CSVs the last report wrote that this one does not show (they
    were another analysis's), then record this report's. Only files a report recorded are
    ever removed."""
    record = out / _FILES_WRITTEN
    try:
        earlier = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or not ours
        earlier = []
    for name in earlier if isinstance(earlier, list) else []:
        if not isinstance(name, str) or name in shown or ".." in Path(name).parts:
            continue
        if name.startswith(("figures/", "tables/")):
            (out / name).unlink(missing_ok=True)
    write_text_atomically(record, json.dumps(sorted(shown), indent=0) + "\n")
