"""``immunopet report RESULTS_DIR -o OUTDIR``: the study report as a self-contained folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from immunopet.cli._display import redact_study, warn_analysis_problems
from immunopet.study.manifest import load_manifest

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write the HTML study report of a results folder",
        description=(
            "Assemble the analysis of a results folder (written by 'immunopet run') as the "
            "manifest's [analysis] plan says, write its tables to RESULTS_DIR/analysis/ (CSV "
            "and analysis.json), draw its figures (PNG, SVG, 300-dpi PNG) and write "
            "OUTDIR/index.html with its stylesheet, images and a CSV of every table. The "
            "folder is self-contained: it links nothing outside itself and can be zipped and "
            "opened anywhere."
        ),
    )
    parser.add_argument(
        "results", type=Path, metavar="RESULTS_DIR", help="results folder of 'immunopet run'"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUTDIR",
        help="report folder (created; files of the same name are overwritten)",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        metavar="STUDY.toml",
        help="the study manifest (default: the one recorded in the results' provenance)",
    )
    parser.add_argument(
        "--no-qc",
        action="store_true",
        help="leave out the per-scan quality-control pages (faster)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes drawing the figures and QC pages (default: min(2, CPUs); 1 = here)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Assemble, draw and render; print where ``index.html`` is. Returns 0."""
    from immunopet.report.build import build_report

    study = load_manifest(args.manifest) if args.manifest is not None else None
    if study is not None:
        redact_study(study)
    built = build_report(
        args.results, args.output, study=study, qc=not args.no_qc, workers=args.workers
    )
    warn_analysis_problems(built.analysis.problems)
    print(f"report written to {built.index}")
    return 0
