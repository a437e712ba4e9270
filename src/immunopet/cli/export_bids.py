"""``immunopet export-bids STUDY.toml OUTDIR``: the study as a PET-BIDS raw dataset.

Thin over :func:`immunopet.study.bids_export.export_bids`: loads the manifest, converts the
study's blood samples with :mod:`immunopet.analysis.blood` when the manifest names them (with
a counter calibration), and optionally adds the measurements tables as derivatives (the
study tracer's and the baseline FDG scans' lesions).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from immunopet.analysis.blood import (
    blood_activity,
    read_blood_samples,
    read_counter_calibration,
)
from immunopet.cli._display import redact_study
from immunopet.errors import InputError
from immunopet.study.bids_export import export_bids

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export-bids`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export-bids",
        help="write the study as a PET-BIDS dataset (Bq/mL images, blood samples, participants)",
        description=(
            "Write the study of STUDY.toml as a PET-BIDS raw dataset in OUTDIR: one session "
            "per injection, one run per scan (activity concentration in Bq/mL with complete "
            "_pet.json sidecars; ScanStart in seconds after the injection, days included), the "
            "manual blood samples (kBq/mL decay-corrected to the injection) and "
            "participants.tsv with age, sex and body weight only. Each patient's baseline FDG "
            "scan ([patients.fdg]) is its own session ses-fdg (trc-FDG, its own injection)."
        ),
    )
    parser.add_argument("study", type=Path, metavar="STUDY.toml", help="the study manifest")
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="the dataset folder")
    parser.add_argument(
        "--measurements",
        type=Path,
        metavar="TABLE",
        help="VOI measurements (CSV or Parquet) to add as derivatives/immunopet/measurements.tsv",
    )
    parser.add_argument(
        "--fdg-measurements",
        type=Path,
        metavar="TABLE",
        help="FDG lesion measurements (fdg_measurements.csv of `immunopet run`, or Parquet) "
        "to add as derivatives/immunopet/fdg_measurements.tsv",
    )
    parser.add_argument(
        "--tracer-mass-mg",
        type=float,
        metavar="MG",
        help="labelled antibody mass per injection, mg (InjectedMass; 'n/a' when not given)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into an OUTDIR that already holds files"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)
    return parser


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("file not found", file=path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    raise InputError(
        "unknown table format",
        file=path,
        value=path.suffix,
        expected=".csv, .tsv or .parquet",
    )


def run(args: argparse.Namespace) -> int:
    """Export the study; print a one-line summary unless ``--quiet``. Returns 0."""
    from immunopet.study.manifest import load_manifest  # written separately; import late

    study = load_manifest(args.study)
    redact_study(study)
    blood = None
    inputs = study.inputs
    if inputs.blood_samples is not None:
        if inputs.counter_calibration is None:
            raise InputError(
                "blood samples need a counter calibration to be exported",
                file=args.study,
                tag="inputs.counter_calibration",
                value="missing",
                expected="a counter_calibration JSON (cpm_per_bq, half_life_s or nuclide)",
            )
        root = study.root

        def resolve(path: Path) -> Path:
            return path if path.is_absolute() else root / path

        blood = blood_activity(
            read_blood_samples(resolve(inputs.blood_samples)),
            read_counter_calibration(resolve(inputs.counter_calibration)),
        )
    measurements = _read_table(args.measurements) if args.measurements is not None else None
    fdg = getattr(args, "fdg_measurements", None)
    fdg_measurements = _read_table(fdg) if fdg is not None else None
    out = export_bids(
        study,
        args.outdir,
        blood=blood,
        measurements=measurements,
        fdg_measurements=fdg_measurements,
        tracer_mass_mg=args.tracer_mass_mg,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    if not args.quiet:
        n_scans = sum(1 for _ in study.scans())
        n_fdg = sum(patient.fdg is not None for patient in study.patients)
        fdg_text = f" + {n_fdg} FDG" if n_fdg else ""
        print(
            f"PET-BIDS dataset: {len(study.patients)} participants, {n_scans}{fdg_text} scans "
            f"-> {out}"
        )
    return 0
