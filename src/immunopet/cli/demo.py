"""``immunopet demo OUTDIR``: the whole tool on the synthetic 89Zr trial, in one command.

1. generates the synthetic trial (DICOM PET/CT, VOIs, clinical sheet, blood samples, truth)
   into ``OUTDIR`` with its ``study.toml``;
2. measures every scan into ``OUTDIR/results/`` (DuckDB, CSV and Parquet);
3. analyses the study and writes ``OUTDIR/report/index.html``;
4. prints a closing summary that says where everything is.

A second run on the same folder with the same preset and seed reuses the generated data and
the stored results (nothing is recomputed). A folder that holds anything else is refused, so
the demo never overwrites a user's files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from immunopet import __version__
from immunopet.cli._display import warn_analysis_problems
from immunopet.errors import InputError

__all__ = ["register", "run"]

MARKER = ".immunopet-demo.json"
"""File in OUTDIR recording which preset and seed generated it."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="generate the synthetic 89Zr trial and run the whole analysis on it",
        description=(
            "Generate the synthetic 89Zr-antibody trial into OUTDIR, measure every scan "
            "(OUTDIR/results), analyse the study and write OUTDIR/report/index.html. The "
            "synthetic truth stays in OUTDIR/truth for comparison."
        ),
    )
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--preset",
        choices=("tiny", "study", "atezolizumab"),
        default="study",
        help="'study': the durvalumab design, 13 patients (default); 'atezolizumab': the "
        "multi-tumour atezolizumab design, 22 patients; 'tiny': 3 patients",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default 2)"
    )
    parser.add_argument("--no-qc", action="store_true", help="no per-scan QC pages (faster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate, measure, analyse, report; 0 when every scan was measured, else 2."""
    from immunopet.report.build import build_report
    from immunopet.study.manifest import load_manifest
    from immunopet.study.runner import run_study
    from immunopet.synthetic.trial import generate_trial

    outdir: Path = args.outdir
    progress = not args.quiet
    workers = args.workers if args.workers is not None else 2
    started = time.perf_counter()
    wanted = {"preset": args.preset, "seed": args.seed, "immunopet": __version__}
    if _reusable(outdir, wanted):
        _say(
            progress,
            f"1/3 reusing the synthetic trial in {outdir} ({args.preset}, seed {args.seed})",
        )
    else:
        _say(progress, f"1/3 generating the synthetic trial ({args.preset}, seed {args.seed})")
        generate_trial(
            outdir, preset=args.preset, seed=args.seed, progress=progress, workers=workers
        )
        (outdir / MARKER).write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    manifest = outdir / "study.toml"
    study = load_manifest(manifest)
    _say(progress, "2/3 measuring every scan (SUV, VOIs, metrics)")
    summary = run_study(
        study, outdir / "results", workers=workers, progress=progress, manifest_path=manifest
    )
    _say(progress, summary.summary)
    for failure in summary.failures:
        print(f"failed {failure.scan_id}: {failure.message}", file=sys.stderr)
    _say(progress, "3/3 analysing the study and writing the report")
    built = build_report(
        outdir / "results",
        outdir / "report",
        study=study,
        qc=not args.no_qc,
        progress=progress,
        workers=workers,
    )
    warn_analysis_problems(built.analysis.problems)
    print(_closing_summary(outdir, built, summary.n_scans, time.perf_counter() - started))
    return 0 if summary.ok else 2


def _reusable(outdir: Path, wanted: dict[str, Any]) -> bool:
    """True when OUTDIR holds a demo of the same preset, seed and version; refuse foreign data."""
    if not outdir.exists() or not any(outdir.iterdir()):
        return False
    marker = outdir / MARKER
    if not marker.is_file():
        raise InputError(
            "the folder is not empty and was not made by 'immunopet demo'; choose another",
            file=outdir,
            tag="OUTDIR",
            value=f"{sum(1 for _ in outdir.iterdir())} entries",
            expected=f"an empty or new folder (or one holding {MARKER})",
        )
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        recorded = {}
    return bool(recorded == wanted)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _number(value: float) -> str:
    """One decimal, or 'n/e' (not estimable / not reached) for NaN."""
    return "n/e" if value != value else f"{value:.1f}"


def _closing_summary(outdir: Path, built: Any, n_scans: int, seconds: float) -> str:
    analysis = built.analysis
    lines = [
        "",
        f"immunopet demo: {analysis.name} ({len(analysis.schedule)} scans of "
        f"{analysis.schedule['patient'].nunique()} patients) in {seconds:.0f} s",
    ]
    for endpoint, result in analysis.cohort_survival.items():
        lines.append(
            f"  median {endpoint}: {_number(result.median)} {result.time_unit} "
            f"(95% CI {_number(result.lower)} to {_number(result.upper)}, {result.ci_method})"
        )
    if analysis.time_point is not None:
        choice = analysis.time_point
        lines.append(
            f"  best tumour-to-blood ratio: {choice.ratio:.2f} at {choice.nominal_hours:g} h "
            f"({choice.series})"
        )
    lines += [
        f"  data:    {outdir}/dicom, {outdir}/vois, {outdir}/study.toml",
        f"  results: {outdir}/results (measurements.csv, .parquet, immunopet.duckdb, analysis/)",
        f"  truth:   {outdir}/truth (what the synthetic scans really contain)",
        f"  report:  {built.index}",
    ]
    return "\n".join(lines)
