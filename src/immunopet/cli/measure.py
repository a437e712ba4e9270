"""``immunopet measure PET VOIS...``: SUV metrics of every VOI, one row per VOI.

PET is a folder holding one PET series or a NIfTI image with a PET-BIDS JSON sidecar of the
same stem; both go through :func:`immunopet.suv.volume.read_suv_volume` with the override
options of ``immunopet inspect``. VOIS are label maps, DICOM
SEG or RTSTRUCT files and point tables (spheres or seeds), see
:mod:`immunopet.voi.sources`.

Columns (also the keys of ``--json``): ``voi``, ``kind``, ``method``, ``source``,
``normalisation``, ``n_voxels``, ``volume_ml``, ``suv_mean``, ``suv_sd``, ``suv_min``,
``suv_max``, ``suv_peak_local``, ``suv_peak_global``, ``long_axis_mm``, ``diameter_3d_mm``,
``centroid_x_mm``, ``centroid_y_mm``, ``centroid_z_mm`` (LPS), ``measurable`` (long axis >=
``--min-long-axis-mm``; empty for organs), ``warnings`` (the SUV derivation's and the VOI's).
SUVs are decay-corrected to injection; SUVpeak is the mean in a sphere of ``--peak-radius-mm``
(IBSI: local = centred on the hottest voxel, global = the highest over centres in the VOI).

``--sr OUT.dcm --pseudonym ID`` (DICOM PET only) also writes the VOIs as a DICOM SEG
(``OUT-seg.dcm``) and the rows as a TID 1500 SR referring to it (``OUT.dcm``), as
``immunopet export-dicom`` does for a study (:mod:`immunopet.exports.dicom_export`). The SR
states the radionuclide of the series' header (CID 4020) and, for an [18F]FDG series, the
radiopharmaceutical (CID 4021), as the study export does.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunopet.cli.inspect import add_override_arguments, overrides_from
from immunopet.errors import InputError
from immunopet.image import ImageVolume
from immunopet.io.dicom import find_one_pet
from immunopet.metrics import describe_voi
from immunopet.suv.volume import read_suv_volume
from immunopet.voi.geometry import (
    RECIST_MEASURABLE_MM,
    is_measurable,
)
from immunopet.voi.sources import Voi, load_vois
from immunopet.voi.spheres import PEAK_RADIUS_MM

__all__ = ["COLUMNS", "PetImage", "measure_rows", "read_pet_image", "register", "run"]

COLUMNS = (
    "voi",
    "kind",
    "method",
    "source",
    "normalisation",
    "n_voxels",
    "volume_ml",
    "suv_mean",
    "suv_sd",
    "suv_min",
    "suv_max",
    "suv_peak_local",
    "suv_peak_global",
    "long_axis_mm",
    "diameter_3d_mm",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "measurable",
    "warnings",
)
"""Output columns, in order."""

_DECIMALS = {"volume_ml": 3, "long_axis_mm": 1, "diameter_3d_mm": 1}
_TEXT_COLUMNS = {"voi", "kind", "method", "source", "normalisation", "measurable", "warnings"}


@dataclass(frozen=True)
class PetImage:
    """The SUV image measured and what is known about it.

    Attributes
    ----------
    volume : ImageVolume
        SUV decay-corrected to injection.
    normalisation : str
        ``bw``, ``lbm`` or ``bsa``.
    frame_of_reference_uid : str or None
        Of the DICOM series (None for NIfTI), to check DICOM VOIs against.
    warnings : tuple of str
        From the SUV derivation.
    hours_after_injection : float or None, hours
        From the SUV derivation of a DICOM PET (None for NIfTI).
    nuclide : str or None
        Canonical nuclide of the SUV derivation (``"89Zr"``, ``"18F"``), stated in the SR.
    """

    volume: ImageVolume
    normalisation: str
    frame_of_reference_uid: str | None
    warnings: tuple[str, ...]
    hours_after_injection: float | None = None
    nuclide: str | None = None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="SUV metrics (mean, max, peak, volume, long axis) of VOIs on a PET image",
        description="Measure every VOI of VOIS on the PET image: a DICOM folder with one PET "
        "series, or a NIfTI with a PET-BIDS sidecar. VOIS: NIfTI label maps, DICOM SEG, DICOM "
        "RTSTRUCT, or .csv point tables (spheres, or threshold VOIs grown from seeds).",
    )
    parser.add_argument("pet", help="folder with one PET series, or a NIfTI + JSON sidecar")
    parser.add_argument("vois", nargs="+", help="VOI sources")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list of rows")
    output.add_argument("--csv", action="store_true", help="print comma-separated values")
    parser.add_argument(
        "--normalisation",
        choices=("bw", "lbm", "bsa", "ibw"),
        default="bw",
        help="SUV normalisation: body weight (default), lean body mass (SUL, Janmahasatian), "
        "body surface area (Du Bois), ideal body weight",
    )
    parser.add_argument(
        "--peak-radius-mm",
        type=float,
        default=PEAK_RADIUS_MM,
        help=f"radius of the SUVpeak sphere in mm (default {PEAK_RADIUS_MM}: 1 cm3, IBSI)",
    )
    parser.add_argument(
        "--min-long-axis-mm",
        type=float,
        default=RECIST_MEASURABLE_MM,
        help=f"long axis from which a VOI is measurable, mm (default {RECIST_MEASURABLE_MM:g})",
    )
    parser.add_argument(
        "--kind",
        choices=("lesion", "organ"),
        help="kind of VOIs whose source does not say (a table's kind column wins)",
    )
    parser.add_argument(
        "--off-plane",
        choices=("raise", "nearest"),
        default="raise",
        help="RTSTRUCT contours between PET slices: error (default) or nearest contour plane",
    )
    parser.add_argument(
        "--sr",
        type=Path,
        metavar="OUT.dcm",
        help="also write the VOIs as DICOM SEG (OUT-seg.dcm) and the values as an SR "
        "(TID 1500) referring to it (DICOM PET only; needs --pseudonym)",
    )
    parser.add_argument(
        "--pseudonym",
        metavar="ID",
        help="patient name and ID written into the SEG and SR (the study's pseudonym)",
    )
    add_override_arguments(parser)
    parser.set_defaults(func=run)


def _is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith((".nii", ".nii.gz"))


def read_pet_image(args: argparse.Namespace) -> PetImage:
    """The SUV image named by ``args.pet`` (DICOM folder or NIfTI + sidecar).

    Raises
    ------
    SuvError
        No SUV can be derived (DICOM header, or sidecar missing or incomplete).
    """
    suv = read_suv_volume(
        Path(args.pet), overrides=overrides_from(args), normalisation=args.normalisation
    )
    return PetImage(
        volume=suv.volume,
        normalisation=suv.normalisation,
        frame_of_reference_uid=suv.frame_of_reference_uid,
        warnings=tuple(suv.derivation.warnings),
        hours_after_injection=suv.derivation.hours_after_injection,
        nuclide=suv.derivation.nuclide,
    )


def measure_rows(
    pet: PetImage,
    vois: Sequence[Voi],
    *,
    peak_radius_mm: float = PEAK_RADIUS_MM,
    min_long_axis_mm: float = RECIST_MEASURABLE_MM,
) -> list[dict[str, Any]]:
    """One row (a dict with the keys of :data:`COLUMNS`) per VOI.

    Raises
    ------
    InputError, GeometryError
        From :func:`immunopet.metrics.describe_voi` (e.g. non-finite voxels in a VOI).
    """
    rows = []
    for voi in vois:
        described = describe_voi(
            pet.volume, voi.mask, voi_name=voi.name, peak_radius_mm=peak_radius_mm
        )
        metrics, long_axis = described.metrics, described.long_axis_mm
        rows.append(
            {
                "voi": voi.name,
                "kind": voi.kind,
                "method": voi.method,
                "source": voi.source,
                "normalisation": pet.normalisation,
                "n_voxels": metrics.n_voxels,
                "volume_ml": metrics.volume_ml,
                "suv_mean": metrics.mean,
                "suv_sd": metrics.sd,
                "suv_min": metrics.min,
                "suv_max": metrics.max,
                "suv_peak_local": metrics.peak_local,
                "suv_peak_global": metrics.peak_global,
                "long_axis_mm": long_axis,
                "diameter_3d_mm": described.diameter_3d_mm,
                "centroid_x_mm": described.centroid_lps_mm[0],
                "centroid_y_mm": described.centroid_lps_mm[1],
                "centroid_z_mm": described.centroid_lps_mm[2],
                # the RECIST size rule concerns lesions; organ reference spheres have none
                "measurable": (
                    None if voi.kind == "organ" else is_measurable(long_axis, min_long_axis_mm)
                ),
                "warnings": [*pet.warnings, *voi.warnings, *metrics.warnings],
            }
        )
    return rows


def _text(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value + 0.0:.{_DECIMALS.get(column, 3)}f}"  # + 0.0: no "-0.000"
    if isinstance(value, list):
        return "; ".join(value)
    return str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned text table (numbers right-aligned; warnings last, unpadded).

    Examples
    --------
    >>> row = dict.fromkeys(COLUMNS) | {"voi": "liver", "n_voxels": 19, "suv_mean": 2.0,
    ...                                  "measurable": False, "warnings": []}
    >>> for text in format_table([row]).splitlines():
    ...     print(text[:44].rstrip())
    voi    kind  method  normalisation  n_voxels
    liver                                     19
    """
    shown = [c for c in COLUMNS if c != "source"]
    cells = [[_text(c, row[c]) for c in shown] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(shown)]
    numeric = [c not in _TEXT_COLUMNS for c in shown]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            if shown[i] == "warnings":
                parts.append(value)
            elif numeric[i]:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    return "\n".join([line(shown), *(line(r) for r in cells)])


def _print_csv(rows: Sequence[dict[str, Any]]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "warnings": "; ".join(row["warnings"])})


def sr_paths(sr: Path) -> tuple[Path, Path]:
    """(SEG path, SR path) of ``--sr OUT.dcm``: ``OUT-seg.dcm`` next to ``OUT.dcm``.

    Examples
    --------
    >>> [p.name for p in sr_paths(Path("out/scan.dcm"))]
    ['scan-seg.dcm', 'scan.dcm']
    """
    return sr.with_name(f"{sr.stem}-seg{sr.suffix or '.dcm'}"), sr


def _write_sr(
    args: argparse.Namespace, pet: PetImage, vois: Sequence[Voi], rows: Sequence[dict[str, Any]]
) -> None:
    from immunopet.exports.dicom_export import (
        export_scan,
        header_radiopharmaceutical,
        write_dicom,
    )
    from immunopet.exports.dicom_sr import ScanContext

    if args.pseudonym is None:
        raise InputError(
            "--sr needs the patient's pseudonym for the DICOM header",
            tag="--pseudonym",
            value="missing",
            expected="--pseudonym ID (written as PatientName and PatientID)",
        )
    if _is_nifti(Path(args.pet)):
        raise InputError(
            "--sr needs a DICOM PET series to refer to",
            file=args.pet,
            tag="--sr",
            value="NIfTI image",
            expected="a folder with one PET series",
        )
    series = find_one_pet(args.pet)
    context = ScanContext(
        pseudonym=args.pseudonym,
        normalisation=pet.normalisation,
        hours_pi=pet.hours_after_injection,
        peak_radius_mm=args.peak_radius_mm,
        nuclide=pet.nuclide,
        radiopharmaceutical=header_radiopharmaceutical(series, pet.nuclide),
    )
    seg, sr = export_scan(series, vois, rows, context)
    seg_path, sr_path = sr_paths(Path(args.sr))
    write_dicom(seg, seg_path)
    write_dicom(sr, sr_path)


def run(args: argparse.Namespace) -> int:
    pet = read_pet_image(args)
    vois: list[Voi] = []
    for source in args.vois:
        vois.extend(
            load_vois(
                source,
                reference=pet.volume,
                kind=args.kind,
                frame_of_reference_uid=pet.frame_of_reference_uid,
                off_plane=args.off_plane,
            )
        )
    rows = measure_rows(
        pet, vois, peak_radius_mm=args.peak_radius_mm, min_long_axis_mm=args.min_long_axis_mm
    )
    if args.sr is not None:
        _write_sr(args, pet, vois, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        _print_csv(rows)
    else:
        print(format_table(rows))
    return 0
