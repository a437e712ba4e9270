"""``immunopet suv DICOM_DIR -o out.nii.gz``: a PET series as an SUV (or activity) NIfTI.

Writes the volume with a PET-BIDS ``_pet.json``-style sidecar next to it (same stem) that
states the tracer (from (0018,0031) Radiopharmaceutical), the injected activity, TimeZero and
ScanStart (multi-day delays included), FrameDuration, the units and the normalisation, so that
``immunopet measure`` reads the file back to the same SUV in the same normalisation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from immunopet.cli.inspect import add_override_arguments, overrides_from
from immunopet.errors import collect_warnings
from immunopet.io.bids import pet_sidecar
from immunopet.io.dicom import find_one_pet
from immunopet.io.nifti import write_nifti
from immunopet.suv.sidecar import SUV_SIDECAR_UNITS
from immunopet.suv.volume import read_activity_volume, read_suv_volume

if TYPE_CHECKING:
    from immunopet.image import ImageVolume
    from immunopet.io.dicom import DicomSeries
    from immunopet.suv.record import SuvDerivation, SuvOverrides


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
        choices=("bw", "lbm", "bsa", "ibw"),
        default="bw",
        help="SUV normalisation: body weight (default), lean body mass (SUL, Janmahasatian), "
        "body surface area (Du Bois) or ideal body weight",
    )
    parser.add_argument(
        "--activity",
        action="store_true",
        help="write activity concentration in Bq/mL (as stored) instead of SUV",
    )
    add_override_arguments(parser)
    parser.set_defaults(func=run)


def _header_text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _frame_duration_s(header: Any) -> float | None:
    raw = header.get("ActualFrameDuration")
    try:
        return None if raw is None else float(raw) / 1000.0
    except (TypeError, ValueError):
        return None


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    overrides = overrides_from(args)
    series = find_one_pet(args.dicom_dir)
    header = series.header
    items = header.get("RadiopharmaceuticalInformationSequence") or []
    tracer = _header_text(items[0].get("Radiopharmaceutical")) if items else None
    frame_duration_s = _frame_duration_s(header)
    with collect_warnings() as raised:  # printed below, once, with the derivation's
        volume, derivation, sidecar = _convert(series, args, overrides, tracer, frame_duration_s)
    output.parent.mkdir(parents=True, exist_ok=True)
    path = write_nifti(volume, output, sidecar=sidecar)
    print(f"wrote {path} ({volume.unit}, {derivation.hours_after_injection:.1f} h p.i.)")
    shown = list(derivation.warnings)
    shown += [w for w in raised if not any(w.endswith(f": {own}") for own in shown)]
    for warning in shown:
        print(f"warning: {warning}")
    return 0


def _convert(
    series: DicomSeries,
    args: argparse.Namespace,
    overrides: SuvOverrides | None,
    tracer: str | None,
    frame_duration_s: float | None,
) -> tuple[ImageVolume, SuvDerivation, dict[str, Any]]:
    """The SUV (or activity) volume, its derivation and its PET-BIDS sidecar."""
    if args.activity:
        activity = read_activity_volume(series, overrides=overrides)
        volume, derivation = activity.volume, activity.derivation
        sidecar = pet_sidecar(
            derivation,
            units="Bq/mL",
            tracer_name=tracer,
            frame_duration_s=frame_duration_s,
            decay_reference=activity.decay_reference,
        )
    else:
        suv = read_suv_volume(series, overrides=overrides, normalisation=args.normalisation)
        volume, derivation = suv.volume, suv.derivation
        sidecar = pet_sidecar(
            derivation,
            units=SUV_SIDECAR_UNITS[args.normalisation],  # type: ignore[arg-type]
            normalisation=args.normalisation,
            tracer_name=tracer,
            frame_duration_s=frame_duration_s,
        )
    return volume, derivation, sidecar
