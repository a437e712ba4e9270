"""``immunopet discover DICOM_ROOT -o study.toml``: draft a study manifest from DICOM headers.

Patients become ``P01``, ``P02`` ... (the header's patient ID is used only to group series and
is never written or printed), injections ``series-1``, ``series-2`` ... and scans get nominal
time points; see :mod:`immunopet.study.discover`. PET series that cannot be placed are printed
and written as comments at the end of the manifest. Without ``-o`` the manifest goes to
standard output (paths relative to the current folder). An existing manifest is not
overwritten unless ``--force`` is given. Exit code 0, or 1 when no PET series could be placed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from immunopet.errors import ManifestError
from immunopet.study.discover import draft_manifest_from_dicom

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``discover`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "discover",
        help="draft a study manifest (study.toml) from a folder of DICOM files",
        description=(
            "Read the DICOM headers under DICOM_ROOT (e.g. a PACS export), group PET series "
            "by patient and injection, and draft a study manifest to check and complete."
        ),
    )
    parser.add_argument("root", type=Path, metavar="DICOM_ROOT", help="folder searched")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="STUDY_TOML",
        help="manifest to write (default: print it)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing manifest at --output"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Draft the manifest; write or print it; print what could not be placed."""
    output: Path | None = args.output
    if output is not None and output.exists() and not args.force:
        raise ManifestError(
            "manifest exists; not overwritten",
            file=output,
            expected="another file name, or --force",
        )
    draft = draft_manifest_from_dicom(args.root, progress=sys.stderr.isatty() and not args.quiet)
    n_patients = len(draft.study.patients)
    n_injections = sum(len(p.injections) for p in draft.study.patients)
    n_scans = sum(1 for _ in draft.study.scans())
    report = sys.stdout
    if output is None:
        print(draft.to_toml(Path.cwd() / "study.toml"), end="")
        report = sys.stderr
    else:
        draft.write(output)
    if not args.quiet:
        where = f" -> {output}" if output is not None else ""
        print(
            f"{n_patients} patients, {n_injections} injections, {n_scans} scans; "
            f"{len(draft.unplaced)} PET series not placed{where}",
            file=report,
        )
    for line in (*draft.notes, *draft.unplaced):  # printed even with --quiet
        print(line, file=report)
    return 0 if n_scans else 1
