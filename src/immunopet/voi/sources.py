"""Every kind of VOI source a user brings, turned into named masks on the PET grid.

:func:`load_vois` looks at what a file is and reads it onto a reference grid (the PET):

================================  ==============================================  ===============
file                              VOIs                                            ``method``
================================  ==============================================  ===============
``.nii`` / ``.nii.gz`` label map  one per label present; name from the same-stem  ``label-map``
                                  BIDS ``.tsv`` table, else the label number
DICOM SEG                         one per segment; name = (0062,0005) SegmentLabel  ``seg``
DICOM RTSTRUCT                    one per ROI; name = (3006,0026) ROIName          ``rtstruct``
``.csv`` point table              one per row: a sphere, or a threshold VOI grown  ``sphere`` or
                                  from the point when the row names a method       ``threshold:<m>``
================================  ==============================================  ===============

Point tables
------------
Comma-separated, a header row, one VOI per row. Columns (names exact, order free):

* ``voi`` -- the VOI name (unique in the file); a column ``lesion`` or ``organ`` instead
  names the VOIs and gives their kind (the synthetic trial's ``lesion_spheres.csv`` and
  ``organ_points.csv``);
* ``x_mm``, ``y_mm``, ``z_mm`` -- a point in DICOM patient coordinates (LPS, mm);
* ``volume_ml`` or ``diameter_mm`` (optional) -- sphere size. When neither is given, a lesion
  gets the 1 cm³ sphere (a lesion without visible uptake) and an organ the normal-tissue sphere
  of :data:`~immunopet.voi.spheres.ORGAN_SPHERE_VOLUME_ML` (2 cm diameter, 4.2 cm³);
* ``kind`` (optional) -- ``lesion`` or ``organ``;
* ``method`` (optional) -- empty or ``sphere`` for a sphere; otherwise a threshold method of
  :func:`~immunopet.voi.segmentation.segment_lesion` (``41max``, ``a50peak``, ``mv3`` ...),
  grown from the point (the seed) on the reference image itself; ``threshold`` gives the value
  of ``fixed``, ``liver_mean`` and ``liver_sd`` those of ``percist``.

A sphere holds the voxels whose centres lie within its radius (:func:`~immunopet.voi.spheres.
sphere_mask`); a sphere cut by the image border is kept with a recorded warning.

Kinds
-----
The most specific statement wins: a point table's ``kind`` column, then the ``kind`` argument,
then what a DICOM file states (SEG property codes, RTSTRUCT (3006,00A4) RTROIInterpretedType).
Threshold VOIs of unknown kind are lesions.

Every problem names the VOI and the file: an empty VOI, a label or name not found, a VOI
entirely outside the field of view, two VOIs of one source with the same name.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume
from immunopet.io.masks import read_label_map
from immunopet.io.rtstruct import RTSTRUCT_SOP_CLASS_UID, read_rtstruct
from immunopet.io.seg import SEG_SOP_CLASS_UID, NamedMasks, VoiKind, read_seg
from immunopet.voi.segmentation import SegmentationMethod, segment_lesion
from immunopet.voi.spheres import (
    ORGAN_SPHERE_VOLUME_ML,
    PEAK_VOLUME_ML,
    radius_for_volume_mm,
    sphere_mask,
    volume_for_radius_ml,
)

__all__ = ["LESION_SPHERE_VOLUME_ML", "Voi", "VoiKind", "load_vois", "segment_vois"]

LESION_SPHERE_VOLUME_ML = PEAK_VOLUME_ML
"""Default sphere of a lesion without visible uptake, mL (1 cm³)."""

SourceType = Literal["label-map", "points", "seg", "rtstruct"]

_KINDS = ("lesion", "organ")
_POINT_COLUMNS = ("voi", "x_mm", "y_mm", "z_mm")
_DICOM_TYPES: dict[str, SourceType] = {
    SEG_SOP_CLASS_UID: "seg",
    RTSTRUCT_SOP_CLASS_UID: "rtstruct",
}


@dataclass(frozen=True, eq=False)
class Voi:
    """One named VOI on the reference grid.

    Attributes
    ----------
    name : str
        Unique within its source.
    kind : {"lesion", "organ"} or None
        None when neither the source nor the caller says.
    mask : numpy.ndarray of bool
        ``[z, y, x]`` on the reference grid, read-only.
    source : str
        The file it came from.
    method : str
        ``"label-map"``, ``"seg"``, ``"rtstruct"``, ``"sphere"`` or ``"threshold:<method>"``.
    warnings : tuple of str
        Fallbacks that changed the mask (resampling, border cuts, off-plane contours ...).
    """

    name: str
    kind: VoiKind | None
    mask: np.ndarray
    source: str
    method: str
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        array = np.asarray(self.mask)
        if array.dtype != np.bool_ or array.ndim != 3:
            raise InputError(
                f"VOI {self.name!r}: mask must be a 3-D boolean array",
                file=self.source,
                tag="mask",
                value=f"{array.dtype} {array.shape}",
                expected="bool [z, y, x]",
            )
        if self.kind not in (None, *_KINDS):
            raise InputError(
                f"VOI {self.name!r}: unknown kind",
                file=self.source,
                tag="kind",
                value=self.kind,
                expected="'lesion', 'organ' or None",
            )
        array = array.view()
        array.flags.writeable = False
        object.__setattr__(self, "mask", array)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def __repr__(self) -> str:
        return (
            f"Voi(name={self.name!r}, kind={self.kind!r}, method={self.method!r}, "
            f"n_voxels={self.n_voxels}, source={self.source!r})"
        )

    @property
    def n_voxels(self) -> int:
        """Number of voxels in the mask."""
        return int(np.count_nonzero(self.mask))


# ---------------------------------------------------------------------------- dispatch
def _source_type(path: Path) -> SourceType:
    if not path.exists():
        raise InputError("VOI source not found", file=path)
    expected = "a NIfTI label map (.nii, .nii.gz), a DICOM SEG or RTSTRUCT file, or a .csv table"
    if path.is_dir():
        raise InputError("a folder is not a VOI source", file=path, expected=expected)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "label-map"
    if name.endswith(".csv"):
        return "points"
    try:
        header = dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, TypeError, EOFError):
        raise InputError("unknown VOI source", file=path, expected=expected) from None
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class not in _DICOM_TYPES:
        raise InputError(
            "DICOM file is not a VOI source",
            file=path,
            tag="(0008,0016) SOPClassUID",
            value=sop_class or "missing",
            expected=f"{SEG_SOP_CLASS_UID} (SEG) or {RTSTRUCT_SOP_CLASS_UID} (RTSTRUCT)",
        )
    return _DICOM_TYPES[sop_class]


def load_vois(
    source: str | Path,
    *,
    reference: ImageVolume,
    kind: VoiKind | None = None,
    names: Sequence[str] | None = None,
    frame_of_reference_uid: str | None = None,
    off_plane: Literal["raise", "nearest"] = "raise",
) -> list[Voi]:
    """Read the VOIs of one source onto the reference grid.

    Parameters
    ----------
    source : path-like
        A NIfTI label map, a DICOM SEG or RTSTRUCT file, or a point table (see the module
        notes).
    reference : ImageVolume
        The PET image: its grid receives the masks, and its values seed threshold VOIs.
    kind : {"lesion", "organ"}, optional
        Kind of the VOIs (see the module notes for precedence).
    names : sequence of str, optional
        Only these VOIs, in this order (label numbers as text for an unnamed label map).
    frame_of_reference_uid : str, optional
        (0020,0052) FrameOfReferenceUID of the PET; DICOM VOIs in another frame are refused.
    off_plane : {"raise", "nearest"}
        RTSTRUCT contours between image slices: error, or the nearest contour plane per slice.

    Returns
    -------
    list of Voi

    Raises
    ------
    InputError
        Unknown file type, malformed table, a name or label not found, an empty VOI, two VOIs
        with the same name.
    GeometryError
        A VOI entirely outside the field of view (or a point outside the image), another frame
        of reference, contours off the slices.
    """
    path = Path(source)
    if kind not in (None, *_KINDS):
        raise InputError("unknown VOI kind", tag="kind", value=kind, expected="lesion or organ")
    source_type = _source_type(path)
    if source_type == "label-map":
        return _label_map_vois(path, reference, kind, names)
    if source_type == "points":
        return _point_vois(path, reference, kind, names, threshold_default=None)
    if source_type == "seg":
        masks = read_seg(
            path, reference=reference, frame_of_reference_uid=frame_of_reference_uid, names=names
        )
        return _named_mask_vois(masks, "seg", kind)
    masks = read_rtstruct(
        path,
        reference=reference,
        frame_of_reference_uid=frame_of_reference_uid,
        names=names,
        off_plane=off_plane,
    )
    return _named_mask_vois(masks, "rtstruct", kind)


def _require_voxels(voi: Voi, outside: bool, notes: Sequence[str] = ()) -> Voi:
    if voi.n_voxels:
        return voi
    detail = f" ({'; '.join(notes)})" if notes else ""
    if outside:
        raise GeometryError(
            f"VOI {voi.name!r} lies outside the image field of view{detail}",
            file=voi.source,
            tag="mask",
            value=0,
            expected="at least one voxel on the PET grid",
        )
    raise InputError(
        f"VOI {voi.name!r} is empty{detail}",
        file=voi.source,
        tag="mask",
        value=0,
        expected="at least one voxel",
    )


def _named_mask_vois(masks: NamedMasks, method: str, kind: VoiKind | None) -> list[Voi]:
    vois = []
    for name, mask in masks.items():
        voi = Voi(
            name=name,
            kind=kind if kind is not None else masks.kinds.get(name),
            mask=mask,
            source=masks.source,
            method=method,
            warnings=masks.warnings.get(name, ()),
        )
        vois.append(_require_voxels(voi, name in masks.outside, voi.warnings))
    return vois


# ---------------------------------------------------------------------------- label maps
def _label_map_vois(
    path: Path, reference: ImageVolume, kind: VoiKind | None, names: Sequence[str] | None
) -> list[Voi]:
    label_map = read_label_map(path, reference=reference)
    named: dict[str, int] = {}
    for label in label_map.labels:
        name = label_map.names.get(label) or str(label)
        if name in named:
            raise InputError(
                f"two labels ({named[name]} and {label}) have the same VOI name",
                file=path,
                tag="name",
                value=name,
                expected="one name per label in the look-up table",
            )
        named[name] = label
    if not named and names is None:
        # a reader who delineated nothing on this scan (no visible lesion) saves an empty map
        return []
    if not named:
        raise InputError(
            "label map holds no VOI on the image grid",
            file=path,
            tag="voxel values",
            value="all 0",
            expected=f"labels for the VOIs asked for ({', '.join(names or ())})",
        )
    wanted = list(named) if names is None else list(names)
    _check_unique(wanted, path)
    vois = []
    for name in wanted:
        if name not in named:
            by_number = {str(v): k for k, v in named.items()}
            if name in by_number:
                name = by_number[name]
            else:
                raise InputError(
                    "label out of range" if name.isdigit() else "VOI name not found",
                    file=path,
                    tag="label",
                    value=name,
                    expected="one of "
                    + ", ".join(f"{label} ({text!r})" for text, label in named.items()),
                )
        vois.append(
            Voi(
                name=name,
                kind=kind,
                mask=label_map.mask(named[name]),
                source=str(path),
                method="label-map",
                warnings=label_map.warnings,
            )
        )
    return vois


def _check_unique(wanted: Sequence[str], path: Path) -> None:
    if len(set(wanted)) != len(wanted):
        raise InputError("a VOI is asked for twice", file=path, tag="names", value=list(wanted))


# ---------------------------------------------------------------------------- point tables
@dataclass(frozen=True)
class _PointRow:
    line: int
    name: str
    centre_mm: tuple[float, float, float]
    kind: VoiKind | None
    method: str
    volume_ml: float | None
    diameter_mm: float | None
    threshold: float | None
    liver_mean: float | None
    liver_sd: float | None


def _cell_number(
    row: dict[str, str], column: str, path: Path, line: int, *, positive: bool
) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(
            f"invalid number on line {line}",
            file=path,
            tag=column,
            value=text,
            expected="a finite number" + (" > 0" if positive else ""),
        )
    return value


def _read_point_table(path: Path) -> list[_PointRow]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            # a `lesion` or `organ` column instead of `voi` names the VOIs and their kind
            implied_kind = ""
            if "voi" not in columns and len(named := set(columns) & set(_KINDS)) == 1:
                implied_kind = named.pop()
                columns = ["voi" if c == implied_kind else c for c in columns]
            reader.fieldnames = columns
            raw_rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the table ({exc})", file=path) from exc
    for column in _POINT_COLUMNS:
        if column not in columns:
            raise InputError(
                "column missing from the VOI table",
                file=path,
                tag=column,
                value=columns,
                expected="columns " + ", ".join(_POINT_COLUMNS),
            )
    rows: list[_PointRow] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(raw_rows, start=2):
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue
        name = (row.get("voi") or "").strip()
        if not name:
            raise InputError(f"no VOI name on line {line}", file=path, tag="voi", value="")
        if name in seen:
            raise InputError(
                f"VOI name repeated on lines {seen[name]} and {line}",
                file=path,
                tag="voi",
                value=name,
                expected="one row per VOI",
            )
        seen[name] = line
        centre = []
        for column in ("x_mm", "y_mm", "z_mm"):
            value = _cell_number(row, column, path, line, positive=False)
            if value is None:
                raise InputError(
                    f"VOI {name!r}: coordinate missing on line {line}",
                    file=path,
                    tag=column,
                    value="missing",
                )
            centre.append(value)
        kind_text = (row.get("kind") or "").strip().lower() or implied_kind
        if kind_text not in ("", *_KINDS):
            raise InputError(
                f"VOI {name!r}: unknown kind on line {line}",
                file=path,
                tag="kind",
                value=kind_text,
                expected="lesion or organ (or empty)",
            )
        volume_ml = _cell_number(row, "volume_ml", path, line, positive=True)
        diameter_mm = _cell_number(row, "diameter_mm", path, line, positive=True)
        if volume_ml is not None and diameter_mm is not None:
            raise InputError(
                f"VOI {name!r}: both volume_ml and diameter_mm on line {line}",
                file=path,
                tag="volume_ml/diameter_mm",
                value=(volume_ml, diameter_mm),
                expected="one sphere size",
            )
        rows.append(
            _PointRow(
                line=line,
                name=name,
                centre_mm=(centre[0], centre[1], centre[2]),
                kind="lesion" if kind_text == "lesion" else "organ" if kind_text else None,
                method=(row.get("method") or "").strip().lower(),
                volume_ml=volume_ml,
                diameter_mm=diameter_mm,
                threshold=_cell_number(row, "threshold", path, line, positive=False),
                liver_mean=_cell_number(row, "liver_mean", path, line, positive=True),
                liver_sd=_cell_number(row, "liver_sd", path, line, positive=False),
            )
        )
    return rows  # a header without rows: no VOI on this scan (e.g. every lesion delineated)


def _check_in_field(row: _PointRow, reference: ImageVolume, path: Path) -> None:
    index = reference.lps_to_voxel(np.asarray(row.centre_mm))
    limit = np.asarray(reference.shape) - 0.5
    if np.any(index < -0.5) or np.any(index > limit):
        raise GeometryError(
            f"VOI {row.name!r} (line {row.line}): point lies outside the image field of view",
            file=path,
            tag="x_mm, y_mm, z_mm",
            value=list(row.centre_mm),
            expected="a point within the PET image (voxel index "
            f"{np.round(index, 1).tolist()} is beyond the shape {reference.shape})",
        )


def _sphere_cut(reference: ImageVolume, centre_mm: np.ndarray, radius_mm: float) -> int:
    """Number of lattice voxel centres within the sphere that lie beyond the grid."""
    centre = reference.lps_to_voxel(centre_mm)
    reach = radius_mm / np.asarray(reference.spacing_mm)
    ranges = [
        np.arange(math.floor(c - r), math.ceil(c + r) + 1)
        for c, r in zip(centre, reach, strict=True)
    ]
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    distance = np.linalg.norm(reference.voxel_to_lps(grid) - centre_mm, axis=1)
    within = grid[distance <= radius_mm * (1 + 1e-9)]
    inside = np.all((within >= 0) & (within < np.asarray(reference.shape)), axis=1)
    return int((~inside).sum())


def _sphere_voi(row: _PointRow, reference: ImageVolume, kind: VoiKind | None, path: Path) -> Voi:
    if row.diameter_mm is not None:
        radius_mm = row.diameter_mm / 2.0
    elif row.volume_ml is not None:
        radius_mm = radius_for_volume_mm(row.volume_ml)
    elif kind == "lesion":
        radius_mm = radius_for_volume_mm(LESION_SPHERE_VOLUME_ML)
    elif kind == "organ":
        radius_mm = radius_for_volume_mm(ORGAN_SPHERE_VOLUME_ML)
    else:
        raise InputError(
            f"VOI {row.name!r} (line {row.line}): sphere size unknown",
            file=path,
            tag="volume_ml/diameter_mm",
            value="missing",
            expected="a volume_ml or diameter_mm, or a kind (lesion: 1 mL, organ: 4.2 mL)",
        )
    centre = np.asarray(row.centre_mm)
    image_ml = float(np.prod(reference.shape)) * reference.voxel_volume_ml
    if volume_for_radius_ml(radius_mm) > image_ml:
        raise InputError(
            f"VOI {row.name!r} (line {row.line}): sphere larger than the whole image",
            file=path,
            tag="volume_ml/diameter_mm",
            value=f"{volume_for_radius_ml(radius_mm):.4g} mL",
            expected=f"at most the image's {image_ml:.4g} mL",
        )
    try:
        mask = sphere_mask(reference, centre, radius_mm=radius_mm)
    except GeometryError as exc:
        raise GeometryError(
            f"VOI {row.name!r} (line {row.line}): {exc.reason}",
            file=path,
            tag=exc.tag,
            value=exc.value,
            expected=exc.expected,
        ) from None
    notes = []
    cut = _sphere_cut(reference, centre, radius_mm)
    if cut:
        total = cut + int(mask.sum())
        notes.append(
            f"{path}: VOI {row.name!r}: sphere cut by the image border ({cut} of {total} voxels "
            "outside the field of view)"
        )
    return Voi(
        name=row.name,
        kind=kind,
        mask=mask,
        source=str(path),
        method="sphere",
        warnings=tuple(notes),
    )


def _threshold_voi(
    row: _PointRow,
    method: str,
    image: ImageVolume,
    kind: VoiKind | None,
    search_radius_mm: float,
    path: Path,
) -> Voi:
    try:
        chosen = SegmentationMethod(method)
    except ValueError:
        raise InputError(
            f"VOI {row.name!r}: unknown method on line {row.line}",
            file=path,
            tag="method",
            value=method,
            expected="sphere (or empty) or one of "
            + ", ".join(m.value for m in SegmentationMethod),
        ) from None
    try:
        result = segment_lesion(
            image,
            seed_lps_mm=row.centre_mm,
            method=chosen,
            fixed_threshold=row.threshold,
            liver_mean=row.liver_mean,
            liver_sd=row.liver_sd,
            search_radius_mm=search_radius_mm,
        )
    except InputError as exc:
        raise type(exc)(
            f"VOI {row.name!r} (line {row.line}): {exc.reason}",
            file=path,
            tag=exc.tag,
            value=exc.value,
            expected=exc.expected,
        ) from None
    voi = Voi(
        name=row.name,
        kind=kind,
        mask=result.mask,
        source=str(path),
        method=f"threshold:{chosen.value}",
        warnings=tuple(f"{path}: VOI {row.name!r}: {note}" for note in result.notes),
    )
    return _require_voxels(voi, False, result.notes)


def _point_vois(
    path: Path,
    reference: ImageVolume,
    kind: VoiKind | None,
    names: Sequence[str] | None,
    *,
    threshold_default: str | None,
    search_radius_mm: float = 10.0,
) -> list[Voi]:
    rows = _read_point_table(path)
    by_name = {row.name: row for row in rows}
    wanted = list(by_name) if names is None else list(names)
    _check_unique(wanted, path)
    vois = []
    for name in wanted:
        if name not in by_name:
            raise InputError(
                "VOI name not found",
                file=path,
                tag="voi",
                value=name,
                expected="one of " + ", ".join(repr(n) for n in by_name),
            )
        row = by_name[name]
        _check_in_field(row, reference, path)
        row_kind = row.kind or kind
        method = row.method or threshold_default or "sphere"
        if method == "sphere":
            if threshold_default is not None:
                raise InputError(
                    f"VOI {name!r}: a sphere row in a table of seeds (line {row.line})",
                    file=path,
                    tag="method",
                    value=row.method,
                    expected="a threshold method",
                )
            vois.append(_sphere_voi(row, reference, row_kind, path))
        else:
            vois.append(
                _threshold_voi(row, method, reference, row_kind or "lesion", search_radius_mm, path)
            )
    return vois


def segment_vois(
    source: str | Path,
    *,
    image: ImageVolume,
    method: SegmentationMethod | str = SegmentationMethod.MAX_41,
    kind: VoiKind | None = "lesion",
    names: Sequence[str] | None = None,
    search_radius_mm: float = 10.0,
) -> list[Voi]:
    """Threshold VOIs grown from the seed points of a table.

    Parameters
    ----------
    source : path-like
        A ``.csv`` point table (see the module notes): ``voi``, ``x_mm``, ``y_mm``, ``z_mm``
        and optionally ``method``, ``kind``, ``threshold``, ``liver_mean``, ``liver_sd``.
    image : ImageVolume
        The PET image (SUV for absolute thresholds); its grid receives the masks.
    method : SegmentationMethod or str
        Method of the rows that leave ``method`` empty; default ``"41max"``.
    kind : {"lesion", "organ"} or None
        Kind of rows without a ``kind``; default ``"lesion"``.
    names : sequence of str, optional
        Only these rows.
    search_radius_mm : float, mm
        The lesion maximum is searched within this distance of the seed.

    Returns
    -------
    list of Voi
        ``method`` = ``"threshold:<method>"``, the segmentation notes as warnings.

    Raises
    ------
    InputError
        Malformed table, unknown method, a ``sphere`` row, a missing threshold parameter, an
        empty delineation (the lesion maximum below the threshold).
    GeometryError
        A seed outside the image.
    """
    path = Path(source)
    if not path.is_file():
        raise InputError("seed table not found", file=path)
    try:
        default = SegmentationMethod(str(method).lower()).value
    except ValueError:
        raise InputError(
            "unknown segmentation method",
            tag="method",
            value=method,
            expected=", ".join(m.value for m in SegmentationMethod),
        ) from None
    return _point_vois(
        path,
        image,
        kind,
        names,
        threshold_default=default,
        search_radius_mm=search_radius_mm,
    )
