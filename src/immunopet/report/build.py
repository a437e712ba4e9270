"""One call from a results folder to a finished report folder.

:func:`build_report` assembles the analysis once, draws its figures (and, optionally, one
quality-control page per scan) and renders ``OUTDIR/index.html``. ``immunopet report``,
``immunopet run`` and ``immunopet demo`` all end here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.export import write_analysis_tables
from immunopet.analysis.results import StudyAnalysis
from immunopet.report.figures import draw_all, qc_pages
from immunopet.report.figures_fdg import fig5_pages
from immunopet.report.html import render_report
from immunopet.study.manifest import load_manifest
from immunopet.study.model import Study
from immunopet.study.provenance import recorded_manifest

__all__ = ["BuiltReport", "build_report"]


@dataclass(frozen=True)
class BuiltReport:
    """Where the report went and what it holds.

    Attributes
    ----------
    index : Path
        ``OUTDIR/index.html``.
    analysis : StudyAnalysis
        The analysis the report shows (for a closing summary or further use).
    n_figures, n_qc_pages : int
    notes : tuple of str
        Why something was left out (e.g. no manifest for the QC pages).
    """

    index: Path
    analysis: StudyAnalysis
    n_figures: int
    n_qc_pages: int
    notes: tuple[str, ...] = ()


def build_report(
    results_dir: str | Path,
    outdir: str | Path,
    *,
    study: Study | None = None,
    qc: bool = True,
    progress: bool = False,
    workers: int | None = None,
) -> BuiltReport:
    """Assemble the analysis of ``results_dir`` and write the report folder ``outdir``.

    Parameters
    ----------
    results_dir : path
        A results folder written by :func:`immunopet.study.runner.run_study`.
    outdir : path
        The report folder (created; files of the same name are replaced).
    study : Study, optional
        The study; default: the manifest recorded in the results' provenance, if it exists.
    qc : bool
        Draw one quality-control page per scan (coronal MIP with VOI outlines) from the QC
        images the run stored in the results folder (in the manifest's order when the study
        is known).
    progress : bool
        Progress bars on stderr.
    workers : int, optional
        Processes drawing the QC pages (default min(2, CPUs); 1 = in this process).
    """
    results_dir, outdir = Path(results_dir), Path(outdir)
    analysis = assemble_analysis(results_dir, study=study, progress=progress)
    write_analysis_tables(analysis, results_dir)
    if study is None:
        recorded = analysis.provenance.get("manifest_path")
        study = _recorded_study(recorded_manifest(recorded, results_dir))
    figures = draw_all(analysis, outdir / "figures", progress=progress)
    figures.update(fig5_pages(results_dir, outdir / "figures"))  # none without FDG scans
    n_figures = len(figures)
    notes: list[str] = []
    qc_figures = {}
    if qc:  # drawn from the QC images the run stored; the study only orders them
        qc_figures = qc_pages(
            results_dir, study, outdir / "figures", progress=progress, workers=workers
        )
        figures.update(qc_figures)
    index = render_report(analysis, outdir, figures=figures)
    return BuiltReport(
        index=index,
        analysis=analysis,
        n_figures=n_figures,
        n_qc_pages=len(qc_figures),
        notes=tuple(notes),
    )


def _recorded_study(manifest_path: object) -> Study | None:
    """The study of the manifest the run recorded, when that file still exists."""
    if not manifest_path or not Path(str(manifest_path)).is_file():
        return None
    return load_manifest(Path(str(manifest_path)))
