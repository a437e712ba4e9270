"""``immunopet run STUDY.toml``: process every scan of a study into the results store."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from immunopet.report.drawing import FigureDrawer

from immunopet.cli._display import redact_study, warn_analysis_problems

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="measure every scan of a study, analyse it and write the report",
        description=(
            "Read the study manifest, measure every scan (SUV, VOIs, metrics) and write the "
            "results database RESULTS_DIR/immunopet.duckdb and its tables as CSV and Parquet; "
            "then analyse the study (tables in RESULTS_DIR/analysis/) and write the HTML "
            "report (see --report, --no-report). "
            "Scans whose inputs, settings and immunopet version have not changed since they "
            "were stored are skipped (see --force). Exit code 2 when any scan failed; the "
            "others are written (and reported) all the same."
        ),
    )
    parser.add_argument("manifest", type=Path, metavar="STUDY.toml", help="the study manifest")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="RESULTS_DIR",
        help="results folder (default: 'results' next to the manifest)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes measuring the scans and drawing the QC pages "
        "(default: min(2, CPUs); 1 = in this process)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the scans on the Dask cluster at this scheduler address",
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="run on a local Dask cluster of N worker processes instead of a process pool",
    )
    parser.add_argument(
        "--force", action="store_true", help="recompute scans whose stored results are current"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="REPORT_DIR",
        help="report folder (default: 'report' next to the manifest)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="measure and analyse (tables in RESULTS_DIR/analysis/), but no HTML report or figures",
    )
    parser.add_argument(
        "--no-qc", action="store_true", help="leave out the per-scan QC pages (faster)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)
    return parser


def _start_workers_early(*, report: bool) -> None:
    """Start the fork server of the worker processes now: it imports what the workers need
    (measuring, and drawing when a report follows) while this process reads the study."""
    from immunopet.study._tasks import WORKER_PRELOAD, start_fork_server

    preload = WORKER_PRELOAD
    if report:
        from immunopet.report.drawing import REPORT_PRELOAD

        preload = (*WORKER_PRELOAD, *REPORT_PRELOAD)
    start_fork_server(preload)


def _drawing_workers(args: argparse.Namespace) -> int:
    """Processes drawing the report: ``--workers`` (default min(2, CPUs)); 1 = here."""
    if args.scheduler is not None or args.workers is None:
        return max(1, min(2, os.cpu_count() or 1))
    return max(1, int(args.workers))


def _import_report() -> None:
    """Import what the analysis and the report need (``run_study``'s ``meanwhile``: while the
    first workers start, rather than when the QC pages of the last scans are due)."""
    import immunopet.report.build  # noqa: F401


def _draw_qc_pages(
    drawer: FigureDrawer, results_dir: Path, figures_dir: Path, scan_ids: Sequence[str]
) -> None:
    """Queue the QC pages of scans just stored (``run_study``'s ``on_stored``)."""
    from immunopet.report.figures import qc_page_job

    figures_dir.mkdir(parents=True, exist_ok=True)
    drawer.add([qc_page_job(results_dir, scan_id, figures_dir) for scan_id in scan_ids], fill=True)


def run(args: argparse.Namespace) -> int:
    """Run the study; print the summary unless ``--quiet``.

    Returns 0 when every scan was processed, 2 when one failed or when a sheet of the study
    (clinical, adverse events, blood samples, counter calibration, lesion table) is rejected:
    its problems are printed and nothing is run.
    """
    manifest = Path(args.manifest)
    if args.scheduler is None and not args.dask and (args.workers is None or args.workers > 1):
        _start_workers_early(report=not args.no_report)
    # imported after the fork server has started, which imports the workers' modules meanwhile
    from immunopet.study.manifest import load_manifest
    from immunopet.study.runner import run_study

    study = load_manifest(manifest)
    redact_study(study)
    from immunopet.analysis.sheets import sheet_problems

    rejected = sheet_problems(study)
    if rejected:
        for problem in rejected:
            print(problem, file=sys.stderr)
        count = f"{len(rejected)} problem{'s' if len(rejected) != 1 else ''}"
        print(
            f"immunopet run: {manifest.name}: {count} in the sheets it names; nothing was run "
            "(fix them, or check with `immunopet validate`)",
            file=sys.stderr,
        )
        return 2
    output = args.output if args.output is not None else manifest.parent / "results"
    with contextlib.ExitStack() as stack:
        drawer = None
        on_stored = None
        if not args.no_report:
            from immunopet.report.drawing import FigureDrawer

            report_dir = args.report if args.report is not None else manifest.parent / "report"
            # the report's drawings (workers of their own), the QC pages of the scans measured
            # starting while the last scans are measured
            drawer = stack.enter_context(
                FigureDrawer(_drawing_workers(args), progress=not args.quiet)
            )
            if not args.no_qc:
                on_stored = partial(_draw_qc_pages, drawer, output, report_dir / "figures")
        summary = run_study(
            study,
            output,
            workers=args.workers,
            scheduler=args.scheduler,
            backend="dask" if args.dask else "local",
            progress=not args.quiet,
            force=args.force,
            manifest_path=manifest,
            on_stored=on_stored,
            meanwhile=None if args.no_report else _import_report,
        )
        if not args.quiet:
            print(summary.summary)
        elif summary.failures:
            for failure in summary.failures:
                print(f"failed {failure.scan_id}: {failure.message}", file=sys.stderr)
        if drawer is None:  # the analysis owns the numbers: its tables are written all the same
            from immunopet.analysis.write import write_analysis

            for note in write_analysis(output, study, progress=not args.quiet).notes:
                print(note, file=sys.stderr)
        else:
            from immunopet.report.build import build_report

            built = build_report(
                output,
                report_dir,
                study=study,
                qc=not args.no_qc,
                progress=not args.quiet,
                drawer=drawer,
            )
            warn_analysis_problems(built.analysis.problems)
            if not args.quiet:
                print(f"report: {built.index}")
    return 0 if summary.ok else 2
