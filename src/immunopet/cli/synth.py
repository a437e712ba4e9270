"""``immunopet synth OUTDIR``: generate the synthetic 89Zr immuno-PET trial."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from immunopet.synthetic.presets import PRESETS
from immunopet.synthetic.trial import generate_trial

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``synth`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "synth",
        help="generate the synthetic 89Zr immuno-PET trial (DICOM, VOIs, clinical tables, truth)",
        description=(
            "Generate a synthetic 89Zr immuno-PET trial into OUTDIR: PET/CT DICOM per scan, "
            "lesion label maps, organ reference points, clinical sheet, adverse events, blood "
            "samples and the true SUVs (truth/). Deterministic per seed."
        ),
    )
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="tiny",
        help="trial design: 'study' = the durvalumab study (13 patients), 'tiny' = 3 patients "
        "on a coarse grid (default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="patients generated in parallel processes (default: min(2, CPUs)); the files are "
        "the same whatever the number",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate the trial; print a one-line summary unless ``--quiet``. Returns 0."""
    manifest = generate_trial(
        args.outdir,
        preset=args.preset,
        seed=args.seed,
        progress=not args.quiet,
        workers=args.workers if args.workers is not None else max(1, min(2, os.cpu_count() or 1)),
    )
    if not args.quiet:
        print(
            f"synthetic trial '{manifest.preset}' (seed {manifest.seed}): "
            f"{len(manifest.patients)} patients, {len(manifest.scans)} scans -> {manifest.outdir}"
        )
    return 0
