"""``immunopet suv DICOM_DIR -o out.nii.gz``: a PET series as an SUV (or activity) NIfTI.

Writes the volume with a PET-BIDS ``_pet.json``-style sidecar next to it (same stem) that
states the tracer, the injected activity, TimeZero and ScanStart (multi-day delays included)
and the units, so that the file can be read back to the same SUV.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from immunopet.cli.inspect import add_override_arguments, overrides_from
from immunopet.io.bids import pet_sidecar
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.nifti import write_nifti
from immunopet.suv.factors import derive_suv
from immunopet.suv.volume import read_suv_volume


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "suv",
        help="convert one PET series to an SUV NIfTI with a PET-BIDS sidecar",
        description="Convert the PET series in DICOM_DIR to SUV (decay-corrected to injection) "
        "and write it as NIfTI with a PET-BIDS JSON sidecar.",
    )
    parser.add_argument("dicom_dir", help="folder holding exactly one PET series")
    parser.add_argument("-o", "--output", required=True, help="output .nii.gz path")
    parser.add_argument(
        "--normalisation",
        choices=("bw", "lbm", "bsa"),
        default="bw",
        help="SUV normalisation: body weight (default), lean body mass (SUL) or body surface area",
    )
    parser.add_argument(
        "--activity",
        action="store_true",
        help="write activity concentration in Bq/mL (as stored) instead of SUV",
    )
    add_override_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    overrides = overrides_from(args)
    series = find_one_pet(args.dicom_dir)
    if args.activity:
        derivation = derive_suv(series.headers, source=series.files[0], overrides=overrides)
        stored = load_series_volume(series)
        if derivation.bqml_factor is None:
            from immunopet.errors import SuvError

            raise SuvError(
                "activity concentration is not known for this series, only its SUV",
                file=series.files[0],
                tag="(7053,1009) Activity Concentration Scale Factor",
                value="missing",
                expected="a factor to Bq/mL (write SUV instead: drop --activity)",
            )
        volume = stored.with_array(
            np.asarray(stored.array, dtype=np.float32) * np.float32(derivation.bqml_factor),
            unit="BQML",
        )
        sidecar = pet_sidecar(derivation, units="Bq/mL")
    else:
        suv = read_suv_volume(series, overrides=overrides, normalisation=args.normalisation)
        volume, derivation = suv.volume, suv.derivation
        sidecar = pet_sidecar(derivation, units="g/mL")
    output.parent.mkdir(parents=True, exist_ok=True)
    path = write_nifti(volume, output, sidecar=sidecar)
    print(f"wrote {path} ({volume.unit}, {derivation.hours_after_injection:.1f} h p.i.)")
    for warning in derivation.warnings:
        print(f"warning: {warning}")
    return 0
