"""The analysis step of a run without a report: every table, no HTML.

The analysis owns the numbers and the report only arranges them, so ``immunopet run
--no-report`` still writes everything a statistician checks: ``RESULTS_DIR/analysis/``
(the tables of :mod:`immunopet.analysis.export`, ``kinetics.csv`` and the time-integrated
activity included, and ``analysis.json``). With a report,
:func:`immunopet.report.build.build_report` writes the same tables from the same analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.export import write_analysis_tables
from immunopet.analysis.results import StudyAnalysis
from immunopet.study.model import Study

__all__ = ["WrittenAnalysis", "write_analysis"]


@dataclass(frozen=True)
class WrittenAnalysis:
    """The analysis written to a results folder.

    Attributes
    ----------
    folder : Path
        ``RESULTS_DIR/analysis``.
    analysis : StudyAnalysis
    notes : tuple of str
        What the reader of the tables must know (the analysis's notes: a part not
        computed and why, cautions), printed since no report carries them.
    """

    folder: Path
    analysis: StudyAnalysis
    notes: tuple[str, ...] = ()


def write_analysis(
    results_dir: str | Path, study: Study, *, progress: bool = False
) -> WrittenAnalysis:
    """Analyse the study stored in ``results_dir`` and write every analysis table.

    Parameters
    ----------
    results_dir : path-like
        A results folder written by :func:`immunopet.study.runner.run_study`.
    study : Study
        The study (its ``[analysis]`` plan drives the tables).
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    WrittenAnalysis

    Raises
    ------
    ImmunoPETError
        As :func:`~immunopet.analysis.assemble.assemble_analysis`.
    """
    analysis = assemble_analysis(results_dir, study=study, progress=progress)
    folder = write_analysis_tables(analysis, results_dir)
    return WrittenAnalysis(folder=folder, analysis=analysis, notes=tuple(analysis.notes))
