"""``immunopet validate study.toml``: every problem of a study manifest and its sheets, or OK.

Prints each problem on its own line (``file:line: key: message (found X; expected Y)`` for
the manifest; ``file: row N, column C: message (found X; expected Y)`` for the clinical sheet,
adverse events, blood samples, counter calibration and lesion table it names) and exits with
code 2 when there is any; otherwise prints ``study.toml: OK (13 patients, 57 scans, 13 FDG
scans)`` (the FDG count only when there are FDG scans) and exits with 0.

When the manifest itself is valid, every scan's images are checked from their headers as
``immunopet run`` will check them (:func:`immunopet.study.scan_checks.review_scans`: the slice
stack of each DICOM series, and ``nominal_hours`` against the hours after injection); what is
accepted with a note is printed as ``note: ...`` lines. Each patient's baseline FDG scan
(``[patients.fdg]``) is checked the same way, with the 18F rules (its header must name 18F, its
injection date-time comes from its own header or overrides). Scans are named by pseudonym and
role (``P01/fdg PET``), never by their folders.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from immunopet.cli._display import redact_study
from immunopet.study.manifest import load_manifest, validate_manifest
from immunopet.study.scan_checks import review_scans

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``validate`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check a study manifest (study.toml) and list every problem",
        description=(
            "Check a study manifest (keys, types, choices, files and folders, duplicates), "
            "the contents of the sheets it names (clinical, adverse events, blood samples, "
            "counter calibration, lesion table), then each scan's images from their headers as "
            "`immunopet run` checks them (slice geometry, nominal_hours against the hours after "
            "injection), the baseline FDG scans included (18F in the header, their own injection "
            "date-time). Every problem is listed with its line or row and column; the exit code "
            "is 2 when there is any."
        ),
    )
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="the study.toml")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the problems (exit 2) or a one-line summary (exit 0)."""
    problems = validate_manifest(args.manifest)
    if problems:
        for problem in problems:
            print(problem)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        print(f"{args.manifest}: {count}")
        return 2
    study = load_manifest(args.manifest)
    redact_study(study)
    from immunopet.analysis.sheets import sheet_problems

    review = review_scans(study, args.manifest)
    for note in review.notes:
        print(f"note: {note}")
    found = [*sheet_problems(study), *(str(problem) for problem in review.problems)]
    if found:
        for line in found:
            print(line)
        n_problems = len(found)
        print(f"{args.manifest}: {n_problems} problem{'s' if n_problems != 1 else ''}")
        return 2
    n_patients = len(study.patients)
    n_scans = sum(1 for _ in study.scans())
    n_fdg = sum(patient.fdg is not None for patient in study.patients)
    fdg = f", {n_fdg} FDG scan{'s' if n_fdg != 1 else ''}" if n_fdg else ""
    print(f"{args.manifest}: OK ({n_patients} patients, {n_scans} scans{fdg})")
    return 0
