"""``immunopet export-dicom STUDY.toml OUTDIR``: one DICOM SEG and one SR per measured scan.

The baseline FDG scans (``[patients.fdg]``) with stored FDG measurements are exported too.

Thin over :func:`immunopet.exports.dicom_export.export_study_dicom`: the measurements come from
the results store of ``immunopet run`` (``results`` next to the manifest unless ``--results``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from immunopet.cli._display import redact_study

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export-dicom`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export-dicom",
        help="write each measured scan's VOIs as DICOM SEG and its measurements as SR (TID 1500)",
        description=(
            "For every scan of STUDY.toml with stored measurements, write "
            "OUTDIR/<patient>/<series>/<hours>h/seg.dcm (the VOIs as a binary Segmentation on "
            "the PET series) and sr.dcm (a TID 1500 Measurement Report referring to the SEG: "
            "SUVmean, SUVmax, SUVpeak local and global, volume, long axis, hours after "
            "injection and the lesion-to-reference ratio); each patient's baseline FDG scan "
            "likewise in OUTDIR/<patient>/fdg/ (its stored lesion SUVs, hours after the FDG "
            "injection, 18F and FDG named in the SR). Patient name and ID are the study's "
            "pseudonym; UIDs and dates are derived from the PET, so a rerun writes the same "
            "bytes."
        ),
    )
    parser.add_argument("manifest", type=Path, metavar="STUDY.toml", help="the study manifest")
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="folder for the DICOM files")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="RESULTS_DIR",
        help="results folder of `immunopet run` (default: 'results' next to the manifest)",
    )
    parser.add_argument("--quiet", action="store_true", help="no summary")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export; print the summary (and skipped scans on stderr) unless ``--quiet``. Returns 0."""
    from immunopet.exports.dicom_export import export_study_dicom
    from immunopet.study.manifest import load_manifest

    manifest = Path(args.manifest)
    study = load_manifest(manifest)
    redact_study(study)
    results = args.results if args.results is not None else manifest.parent / "results"
    done = export_study_dicom(study, results, args.outdir)
    if not args.quiet:
        for note in done.notes:
            print(note, file=sys.stderr)
        print(f"{done.summary} -> {args.outdir}")
    return 0
