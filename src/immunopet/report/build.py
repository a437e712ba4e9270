"""One call from a results folder to a finished report folder.

:func:`build_report` assembles the analysis once, draws its figures (and, optionally, one
quality-control page per scan) in worker processes and renders ``OUTDIR/index.html``.
``immunopet report``, ``immunopet run`` and ``immunopet demo`` all end here.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.export import write_analysis_tables
from immunopet.analysis.results import StudyAnalysis
from immunopet.report.drawing import FigureDrawer
from immunopet.report.figures import figure_jobs, qc_page_jobs
from immunopet.report.figures_fdg import fig5_page_jobs
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
    """

    index: Path
    analysis: StudyAnalysis
    n_figures: int
    n_qc_pages: int


def build_report(
    results_dir: str | Path,
    outdir: str | Path,
    *,
    study: Study | None = None,
    qc: bool = True,
    progress: bool = False,
    workers: int | None = None,
    drawer: FigureDrawer | None = None,
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
        Processes drawing the figures and QC pages (default min(2, CPUs); 1 = in this
        process, after the analysis). With more, the QC pages and Fig 5 panels are drawn
        while this process assembles the analysis, then the study figures
        (:class:`~immunopet.report.drawing.FigureDrawer`); the files are the same.
    drawer : FigureDrawer, optional
        The caller's drawer (``workers`` is then its own), which may hold jobs already
        (``immunopet run``: the QC pages of the scans measured so far, drawn while the last
        scans were measured); a job of the same key is not drawn twice. The caller closes it.
    """
    results_dir, outdir = Path(results_dir), Path(outdir)
    figures_dir = outdir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    n_workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
    with contextlib.ExitStack() as stack:
        if drawer is None:
            drawer = stack.enter_context(FigureDrawer(n_workers, progress=progress))
        # what needs no analysis is drawn (by the workers) while this process assembles it;
        # the QC pages (many, short) fill in after the figures added before them or later
        fig5_jobs = fig5_page_jobs(results_dir, figures_dir)  # none without FDG scans
        drawer.add(fig5_jobs)
        qc_jobs = qc_page_jobs(results_dir, study, figures_dir) if qc and study else []
        drawer.add(qc_jobs, fill=True)
        analysis = assemble_analysis(results_dir, study=study, progress=progress)
        write_analysis_tables(analysis, results_dir)
        if qc and study is None:  # the study only orders the QC pages
            recorded = analysis.provenance.get("manifest_path")
            study = _recorded_study(recorded_manifest(recorded, results_dir))
            qc_jobs = qc_page_jobs(results_dir, study, figures_dir)
            drawer.add(qc_jobs, fill=True)
        study_jobs = figure_jobs(analysis, figures_dir)
        drawer.add(study_jobs)
        drawn = drawer.finish()
    figures = {job.key: drawn[job.key] for job in study_jobs + fig5_jobs if job.key in drawn}
    n_figures = len(figures)
    qc_figures = {job.key: drawn[job.key] for job in qc_jobs if job.key in drawn}
    figures.update(qc_figures)
    index = render_report(analysis, outdir, figures=figures)
    return BuiltReport(
        index=index,
        analysis=analysis,
        n_figures=n_figures,
        n_qc_pages=len(qc_figures),
    )


def _recorded_study(manifest_path: object) -> Study | None:
    """The study of the manifest the run recorded, when that file still exists."""
    if not manifest_path or not Path(str(manifest_path)).is_file():
        return None
    return load_manifest(Path(str(manifest_path)))
