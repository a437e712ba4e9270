"""VOIs as DICOM Segmentation (SEG) objects, read and written with highdicom.

:func:`write_seg` stores one binary segment per VOI, with the VOI name as (0062,0005)
SegmentLabel, as a SEG whose frames refer to the slices of the PET series the masks were drawn on
(the source images). :func:`read_seg` brings the segments of a SEG back onto a reference grid
(usually the PET) as boolean masks, keyed by segment label.

Naming segments
---------------
A VOI is named by its (0062,0005) SegmentLabel. The standard requires unique segment numbers,
not labels, and viewers repeat labels ("Neoplasm, Secondary" for every lesion): every segment
whose label repeats is named ``"<label> (segment <number>)"`` (a segment without a label
``"segment <number>"``), and the renaming is recorded as a warning.

Placing frames on the reference grid
------------------------------------
Each frame is placed on its own, from its (0020,0032) ImagePositionPatient, orientation and
pixel spacing (functional groups), and only the frames of the segments asked for are decoded:

* when the frame's rows and columns step along reference rows and columns (same spacing, axes
  up to order and direction) and its pixel centres lie within :data:`PLANE_TOLERANCE` (0.1)
  of a voxel of reference voxel centres along every axis, every pixel is put on its reference
  voxel, pixel for pixel: nothing is interpolated, nothing lost. Frames a few hundredths of
  a millimetre off the PET planes (as viewers write them) are placed on the nearest plane,
  with a note giving the largest offset. Pixels beyond the reference grid are dropped and
  counted in a warning;
* otherwise (another grid) that segment is resampled onto the reference grid by nearest
  neighbour, on its bounding box only (padded by one voxel so that border voxels are not lost
  to the interpolator's edge), with a :class:`~immunopet.errors.GeometryWarning` giving the
  voxel counts before and after, also recorded with the mask.

A FRACTIONAL SEG is read as ``fraction >= 0.5`` (recorded as a warning).

VOI kinds are stored in the segment's property codes (SNOMED CT): a lesion as category
"Morphologically Abnormal Structure" / type "Lesion", an organ as "Anatomical Structure" /
"Organ", a VOI of unknown kind as "Tissue" / "Tissue". Reading maps these codes back.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes

from immunopet import __version__
from immunopet.errors import DicomInputError, GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume
from immunopet.io.dicom import DicomSeries, series_geometry
from immunopet.io.masks import describe_grid

__all__ = [
    "SEG_SOP_CLASS_UID",
    "NamedMasks",
    "VoiKind",
    "check_voi_masks",
    "read_seg",
    "read_source_images",
    "reference_grid",
    "write_seg",
]

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
"""(0008,0016) SOPClassUID of Segmentation Storage."""

VoiKind = Literal["lesion", "organ"]
AlgorithmType = Literal["MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"]

_LABEL_TAG = "(0062,0005) SegmentLabel"
_MAX_NAME_LENGTH = 64  # LO value representation
_ALIGN_TOLERANCE = 1e-3  # voxels: spacing and axes of a frame equal to the reference's
_OFFSET_NOTE_MM = 0.01  # frames placed on a plane this far away (mm) or more get a note

PLANE_TOLERANCE = 0.1
"""A SEG frame whose pixel centres lie within this fraction of a voxel of reference voxel
centres (along every axis) is placed on those voxels, pixel for pixel."""
_LESION_TYPES = {"52988006", "108369006"}  # SNOMED CT Lesion, Neoplasm
_ORGAN_CATEGORIES = {"91723000"}  # SNOMED CT Anatomical Structure
_ORGAN_TYPES = {"91772007"}  # SNOMED CT Organ


@dataclass(frozen=True, eq=False)
class NamedMasks(Mapping[str, np.ndarray]):
    """Boolean VOI masks on a reference grid, keyed by VOI name, with what reading them did.

    A read-only mapping ``name -> mask`` (each mask a read-only bool array ``[z, y, x]``),
    returned by :func:`read_seg` and :func:`~immunopet.io.rtstruct.read_rtstruct`.

    Attributes
    ----------
    masks : mapping of str to numpy.ndarray of bool
        In the file's order.
    kinds : mapping of str to {"lesion", "organ"} or None
        Kind stored in the file (SEG property codes, RTSTRUCT (3006,00A4) RTROIInterpretedType).
    warnings : mapping of str to tuple of str
        Per name: every fallback used while reading (resampling, voxels outside the grid ...).
    outside : frozenset of str
        Names of masks with voxels (or contour points) beyond the reference field of view.
    source : str
        The file read.
    frame_of_reference_uid : str
        (0020,0052) FrameOfReferenceUID of the file (empty when absent).
    """

    masks: Mapping[str, np.ndarray]
    kinds: Mapping[str, VoiKind | None] = field(default_factory=dict)
    warnings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outside: frozenset[str] = frozenset()
    source: str = ""
    frame_of_reference_uid: str = ""

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.masks[name]
        except KeyError:
            raise InputError(
                "VOI name not found",
                file=self.source or None,
                tag="name",
                value=name,
                expected="one of " + (", ".join(repr(n) for n in self.masks) or "(none)"),
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.masks)

    def __len__(self) -> int:
        return len(self.masks)

    def __contains__(self, name: object) -> bool:
        return name in self.masks

    def __repr__(self) -> str:
        return f"NamedMasks(source={self.source!r}, names={list(self.masks)})"


# ---------------------------------------------------------------------------- shared checks
def check_voi_masks(
    masks: Mapping[str, npt.ArrayLike], shape: tuple[int, int, int], *, where: str
) -> dict[str, np.ndarray]:
    """Validate named masks for writing: names, shapes, boolean values, not empty.

    Parameters
    ----------
    masks : mapping of str to array_like of bool
        VOI name -> mask ``[z, y, x]`` on the reference series' grid.
    shape : (int, int, int)
        The grid shape.
    where : str
        The file to be written, named in error messages.

    Returns
    -------
    dict of str to numpy.ndarray of bool

    Raises
    ------
    InputError
        No mask, a name that is empty, longer than 64 characters or holds a backslash, a mask
        that is not boolean (or 0/1), an empty mask.
    GeometryError
        A mask whose shape is not the grid's.

    Examples
    --------
    >>> m = np.zeros((2, 3, 4), dtype=bool); m[1, 1, 1] = True
    >>> list(check_voi_masks({"liver": m}, (2, 3, 4), where="x.dcm"))
    ['liver']
    """
    if not masks:
        raise InputError("no VOI to write", file=where, tag="masks", value=0, expected=">= 1")
    checked: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        if (
            not isinstance(name, str)
            or not name.strip()
            or len(name) > _MAX_NAME_LENGTH
            or "\\" in name
        ):
            raise InputError(
                "invalid VOI name",
                file=where,
                tag="name",
                value=name,
                expected=f"a non-empty text of at most {_MAX_NAME_LENGTH} characters, no '\\'",
            )
        array = np.asarray(mask)
        if array.shape != shape:
            raise GeometryError(
                f"VOI {name!r}: mask does not match the reference series",
                file=where,
                tag="mask.shape",
                value=array.shape,
                expected=f"{shape} (slices, rows, columns of the series)",
            )
        if array.dtype != np.bool_:
            if not np.issubdtype(array.dtype, np.number) or not np.all((array == 0) | (array == 1)):
                raise InputError(
                    f"VOI {name!r}: mask must be boolean",
                    file=where,
                    tag="mask",
                    value=str(array.dtype),
                    expected="bool, or numbers that are all 0 or 1",
                )
            array = array.astype(bool)
        if not array.any():
            raise InputError(
                f"VOI {name!r} is empty", file=where, tag="mask", value=0, expected=">= 1 voxel"
            )
        checked[name] = array
    return checked


def reference_grid(series: DicomSeries) -> ImageVolume:
    """The (validated) grid of a series, as a volume of zeros that costs no memory.

    Raises
    ------
    DicomInputError, GeometryError
        See :func:`~immunopet.io.dicom.series_geometry`.
    """
    geometry = series_geometry(series)
    return ImageVolume.from_attributes(
        array=np.broadcast_to(np.zeros((), dtype=bool), geometry.shape),
        image_position_mm=geometry.first_position_mm,
        image_orientation=geometry.orientation,
        pixel_spacing_mm=geometry.pixel_spacing_mm,
        slice_spacing_mm=geometry.slice_spacing_mm,
    )


def read_source_images(series: DicomSeries) -> list[Dataset]:
    """Every file of a series read in full (pixel data included), in slice order.

    Raises
    ------
    DicomInputError
        A file cannot be read.
    """
    datasets: list[Dataset] = []
    for file in series.files:
        try:
            datasets.append(dcmread(file))
        except (OSError, InvalidDicomError) as exc:
            raise DicomInputError(f"cannot read the source image ({exc})", file=file) from exc
    return datasets


# ---------------------------------------------------------------------------- writing
def _property_codes(kind: VoiKind | None) -> tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]:
    if kind == "lesion":
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion
    if kind == "organ":
        return codes.SCT.AnatomicalStructure, codes.SCT.Organ
    return codes.SCT.Tissue, codes.SCT.Tissue


def _kind_of(name: str, kinds: Mapping[str, VoiKind | None] | None, where: str) -> VoiKind | None:
    kind = None if kinds is None else kinds.get(name)
    if kind not in (None, "lesion", "organ"):
        raise InputError(
            f"VOI {name!r}: unknown kind",
            file=where,
            tag="kind",
            value=kind,
            expected="'lesion', 'organ' or None",
        )
    return kind


def write_seg(
    masks: Mapping[str, npt.ArrayLike],
    reference_series: DicomSeries,
    path: str | Path,
    *,
    kinds: Mapping[str, VoiKind | None] | None = None,
    algorithm_type: AlgorithmType = "MANUAL",
    series_number: int = 300,
    series_description: str = "immunopet VOIs",
) -> Path:
    """Write VOI masks as a binary DICOM SEG referring to the PET series they were drawn on.

    Parameters
    ----------
    masks : mapping of str to array_like of bool
        VOI name -> mask ``[z, y, x]`` on the grid of ``reference_series`` (slice ``k`` is the
        series' ``k``-th file, as :func:`~immunopet.io.dicom.load_series_volume` stacks them).
        One segment per VOI, numbered from 1 in the mapping's order; names become
        (0062,0005) SegmentLabel.
    reference_series : DicomSeries
        The source images; their files are read in full (pixel data included) for highdicom.
    path : path-like
        The file to write (its folder must exist).
    kinds : mapping of str to {"lesion", "organ"} or None, optional
        Kind of each VOI, stored as segmented property codes (see the module notes).
    algorithm_type : {"MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"}
        (0062,0008) SegmentAlgorithmType of every segment; non-manual segments name immunopet
        as the algorithm.
    series_number : int
    series_description : str

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        Invalid name, non-boolean or empty mask, unknown kind or algorithm type.
    GeometryError
        A mask not on the series' grid, or slices that do not form one grid.
    DicomInputError
        A source image cannot be read or lacks what a SEG needs.
    """
    path = Path(path)
    where = str(path)
    if algorithm_type not in ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"):
        raise InputError(
            "unknown algorithm type",
            file=where,
            tag="(0062,0008) SegmentAlgorithmType",
            value=algorithm_type,
            expected="MANUAL, SEMIAUTOMATIC or AUTOMATIC",
        )
    grid = reference_grid(reference_series)
    checked = check_voi_masks(masks, grid.shape, where=where)
    algorithm = None
    if algorithm_type != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name="immunopet", family=codes.cid7162.HistogramAnalysis, version=__version__
        )
    descriptions = []
    for number, name in enumerate(checked, start=1):
        category, property_type = _property_codes(_kind_of(name, kinds, where))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=category,
                segmented_property_type=property_type,
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
            )
        )
    pixels = np.stack(list(checked.values()), axis=-1)
    sources = read_source_images(reference_series)
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="immunopet",
            manufacturer_model_name="immunopet",
            software_versions=__version__,
            device_serial_number="none",
            content_label="VOIS",
            series_description=series_description,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomInputError(
            f"the source images do not make a SEG ({exc})", file=reference_series.label
        ) from exc
    seg.save_as(path)
    return path


# ---------------------------------------------------------------------------- reading
def _check_is_seg(path: Path) -> None:
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        header = dcmread(path, stop_before_pixels=True)
    except (OSError, InvalidDicomError) as exc:
        raise DicomInputError(f"not a readable DICOM file ({exc})", file=path) from exc
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class != SEG_SOP_CLASS_UID:
        raise DicomInputError(
            "not a DICOM SEG",
            file=path,
            tag="(0008,0016) SOPClassUID",
            value=sop_class or "missing",
            expected=f"{SEG_SOP_CLASS_UID} (Segmentation Storage)",
        )


def _kind_from_codes(description: hd.seg.SegmentDescription) -> VoiKind | None:
    category = str(description.segmented_property_category.value)
    property_type = str(description.segmented_property_type.value)
    if property_type in _LESION_TYPES:
        return "lesion"
    if property_type in _ORGAN_TYPES or category in _ORGAN_CATEGORIES:
        return "organ"
    return None


def _count_outside(channel: np.ndarray, affine: np.ndarray, reference: ImageVolume) -> int:
    """Number of True voxels whose centres lie beyond the reference field of view."""
    where = np.argwhere(channel).astype(np.float64)
    target = reference.lps_to_voxel(where @ affine[:3, :3].T + affine[:3, 3])
    limit = np.asarray(reference.shape) - 0.5
    inside = np.all((target >= -0.5) & (target <= limit), axis=1)
    return int((~inside).sum())


def _segment_names(seg: hd.seg.Segmentation, path: Path) -> tuple[dict[str, int], list[str]]:
    """VOI name of each segment (label; ``"label (segment N)"`` when the label repeats)."""
    labels: dict[int, str] = {}
    for number in seg.segment_numbers:
        label = str(seg.get_segment_description(number).segment_label or "").strip()
        labels[int(number)] = label
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    names: dict[str, int] = {}
    notes: list[str] = []
    for number, label in labels.items():
        if not label:
            name = f"segment {number}"
        elif counts[label] > 1:
            name = f"{label} (segment {number})"
        else:
            name = label
        if name in names:  # a label that itself reads "x (segment N)"
            name = f"{name} (segment {number})"
        names[name] = number
    repeated = sorted(label for label, n in counts.items() if n > 1 and label)
    if repeated:
        notes.append(
            f"{path}: {_LABEL_TAG} repeated ({', '.join(repr(r) for r in repeated)}): those "
            "VOIs are named '<label> (segment <number>)'"
        )
    return names, notes


@dataclass(frozen=True)
class _Frame:
    """One SEG frame: which segment, and where its pixel (0, 0) and steps fall (LPS, mm)."""

    index: int
    segment: int
    position: np.ndarray
    row_step: np.ndarray  # LPS step (mm) from one row to the next
    column_step: np.ndarray  # LPS step (mm) from one column to the next


def _sequence_item(per_frame: Dataset, shared: Dataset | None, keyword: str) -> Dataset | None:
    for group in (per_frame, shared):
        if group is not None and keyword in group and len(group[keyword].value):
            item: Dataset = group[keyword].value[0]
            return item
    return None


def _frames(seg: hd.seg.Segmentation, path: Path) -> list[_Frame]:
    """Segment and plane of every frame, from the functional groups."""
    shared_sequence = seg.get("SharedFunctionalGroupsSequence")
    shared = shared_sequence[0] if shared_sequence else None
    frames = []
    for index, per_frame in enumerate(seg.get("PerFrameFunctionalGroupsSequence") or []):
        identification = _sequence_item(per_frame, shared, "SegmentIdentificationSequence")
        plane = _sequence_item(per_frame, shared, "PlanePositionSequence")
        orientation = _sequence_item(per_frame, shared, "PlaneOrientationSequence")
        measures = _sequence_item(per_frame, shared, "PixelMeasuresSequence")
        try:
            segment = int(identification.ReferencedSegmentNumber)  # type: ignore[union-attr]
            position = np.array([float(v) for v in plane.ImagePositionPatient])  # type: ignore[union-attr]
            cosines = np.array(
                [float(v) for v in orientation.ImageOrientationPatient]  # type: ignore[union-attr]
            )
            spacing = [float(v) for v in measures.PixelSpacing]  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DicomInputError(
                f"frame {index + 1} lacks its segment number or plane ({exc})",
                file=path,
                tag="(5200,9230) PerFrameFunctionalGroupsSequence",
                expected=(
                    "(0062,000B) ReferencedSegmentNumber, (0020,0032) ImagePositionPatient, "
                    "(0020,0037) ImageOrientationPatient and (0028,0030) PixelSpacing"
                ),
            ) from exc
        if position.shape != (3,) or cosines.shape != (6,) or len(spacing) != 2:
            raise DicomInputError(
                f"frame {index + 1}: malformed plane position or orientation",
                file=path,
                tag="(0020,0032) ImagePositionPatient",
                value=position.tolist(),
            )
        frames.append(
            _Frame(
                index=index,
                segment=segment,
                position=position,
                row_step=cosines[3:] * spacing[0],
                column_step=cosines[:3] * spacing[1],
            )
        )
    return frames


def _lattice_step(step_index: np.ndarray) -> np.ndarray | None:
    """A reference index step that is a signed unit step along a row or column axis."""
    rounded = np.rint(step_index)
    if not np.allclose(step_index, rounded, atol=_ALIGN_TOLERANCE):
        return None
    if rounded[0] != 0 or np.abs(rounded).sum() != 1:
        return None
    return rounded.astype(np.int64)


def _placement(
    frame: _Frame, inverse: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Integer origin and steps of a frame on the reference lattice, and its plane offset.

    None when the frame's pixels are not reference voxels: other spacing or axes, or a plane
    or in-plane offset beyond :data:`PLANE_TOLERANCE` voxel.
    """
    origin = inverse[:3, :3] @ frame.position + inverse[:3, 3]
    row = _lattice_step(inverse[:3, :3] @ frame.row_step)
    column = _lattice_step(inverse[:3, :3] @ frame.column_step)
    if row is None or column is None or np.array_equal(np.abs(row), np.abs(column)):
        return None
    nearest = np.rint(origin)
    offset = np.abs(origin - nearest)
    if np.any(offset > PLANE_TOLERANCE):
        return None
    return nearest.astype(np.int64), row, column, float(offset[0])


def read_seg(
    path: str | Path,
    *,
    reference: ImageVolume,
    frame_of_reference_uid: str | None = None,
    names: Sequence[str] | None = None,
) -> NamedMasks:
    """Read the segments of a DICOM SEG as boolean masks on a reference grid.

    Parameters
    ----------
    path : path-like
        A Segmentation Storage file.
    reference : ImageVolume
        The grid wanted (usually the PET); only its shape and affine are used.
    frame_of_reference_uid : str, optional
        (0020,0052) FrameOfReferenceUID of the reference; when given, a SEG in another frame of
        reference is refused.
    names : sequence of str, optional
        Segment labels to read (default: all), in the order wanted.

    Returns
    -------
    NamedMasks
        ``label -> mask`` in segment-number order (or the order of ``names``), read-only.

    Raises
    ------
    DicomInputError
        Not a SEG, unreadable, or frames that do not form a regularly spaced volume.
    InputError
        A name in ``names`` not found (names of segments with a repeated label carry their
        segment number, see the module notes).
    GeometryError
        Another frame of reference than ``frame_of_reference_uid``.

    Warns
    -----
    GeometryWarning
        When a segment is resampled onto the reference grid, or voxels fall outside it
        (both also recorded in :attr:`NamedMasks.warnings`).
    """
    path = Path(path)
    _check_is_seg(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # highdicom raises many types on malformed objects
        raise DicomInputError(f"not a readable DICOM SEG ({exc})", file=path) from exc
    seg_frame = str(seg.get("FrameOfReferenceUID", "") or "")
    if frame_of_reference_uid is not None and seg_frame != frame_of_reference_uid:
        raise GeometryError(
            "SEG is in another frame of reference than the image",
            file=path,
            tag="(0020,0052) FrameOfReferenceUID",
            value=seg_frame or "missing",
            expected=frame_of_reference_uid,
        )
    labels, name_notes = _segment_names(seg, path)
    kinds = {
        name: _kind_from_codes(seg.get_segment_description(number))
        for name, number in labels.items()
    }
    wanted = list(labels) if names is None else list(names)
    for name in wanted:
        if name not in labels:
            raise InputError(
                "segment not found",
                file=path,
                tag=_LABEL_TAG,
                value=name,
                expected="one of " + (", ".join(repr(n) for n in labels) or "(no segments)"),
            )
    if len(set(wanted)) != len(wanted):
        raise InputError("a name is asked for twice", file=path, tag="names", value=wanted)
    if not wanted:
        raise InputError(
            "no segment to read",
            file=path,
            tag="(0062,0002) SegmentSequence" if names is None else "names",
            value=0,
            expected="at least one segment",
        )
    notes: list[str] = list(name_notes)
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    if fractional:
        notes.append(f"{path}: FRACTIONAL segments read as fraction >= 0.5")
    frames = _frames(seg, path)
    inverse = np.linalg.inv(reference.affine)
    by_segment: dict[int, list[_Frame]] = {}
    for frame in frames:
        by_segment.setdefault(frame.segment, []).append(frame)
    masks: dict[str, np.ndarray] = {}
    per_name: dict[str, tuple[str, ...]] = {}
    outside: set[str] = set()
    for name in wanted:
        number = labels[name]
        own: list[str] = []
        own_frames = by_segment.get(number, [])
        placements = [_placement(frame, inverse) for frame in own_frames]
        if all(p is not None for p in placements):
            mask, before, dropped, offset = _place_frames(
                seg, own_frames, placements, reference.shape, fractional, path
            )
            if offset * reference.spacing_mm[0] > _OFFSET_NOTE_MM:
                own.append(
                    f"{path}: segment {name!r}: frames up to {offset * reference.spacing_mm[0]:.3g}"
                    f" mm ({offset:.3f} slice) off the reference planes placed on the nearest "
                    f"plane (tolerance {PLANE_TOLERANCE:g} voxel)"
                )
        else:
            mask, before, dropped = _resample_segment(seg, number, reference, fractional, path, own)
        if dropped:
            note = f"{path}: segment {name!r}: {dropped} of {before} voxels lie outside the grid"
            warnings.warn(note, GeometryWarning, stacklevel=2)
            own.append(note)
            outside.add(name)
        mask.flags.writeable = False
        masks[name] = mask
        per_name[name] = (*notes, *own)
    return NamedMasks(
        masks=masks,
        kinds={n: kinds[n] for n in wanted},
        warnings=per_name,
        outside=frozenset(outside),
        source=str(path),
        frame_of_reference_uid=seg_frame,
    )


def _frame_pixels(seg: hd.seg.Segmentation, index: int, fractional: bool, path: Path) -> np.ndarray:
    """Boolean pixels of frame ``index`` (0-based); fractions at >= 0.5."""
    try:
        stored = np.asarray(seg.get_stored_frame(index + 1))
    except Exception as exc:  # decoders raise many types on damaged data
        raise DicomInputError(
            f"frame {index + 1} cannot be decoded ({type(exc).__name__}: {exc})",
            file=path,
            tag="(7FE0,0010) PixelData",
        ) from exc
    if fractional:
        maximum = float(seg.get("MaximumFractionalValue", 255) or 255)
        return stored.astype(np.float64) / maximum >= 0.5
    return stored.astype(bool)


def _place_frames(
    seg: hd.seg.Segmentation,
    frames: list[_Frame],
    placements: list[tuple[np.ndarray, np.ndarray, np.ndarray, float] | None],
    shape: tuple[int, int, int],
    fractional: bool,
    path: Path,
) -> tuple[np.ndarray, int, int, float]:
    """Put each frame's pixels on its reference voxels: (mask, n_set, n_outside, max offset)."""
    out = np.zeros(shape, dtype=bool)
    before = dropped = 0
    largest = 0.0
    limit = np.asarray(shape)
    for frame, placement in zip(frames, placements, strict=True):
        if placement is None:  # pragma: no cover - callers check
            continue
        origin, row, column, offset = placement
        pixels = np.argwhere(_frame_pixels(seg, frame.index, fractional, path))
        if not pixels.size:
            continue
        largest = max(largest, offset)
        target = origin + np.outer(pixels[:, 0], row) + np.outer(pixels[:, 1], column)
        inside = np.all((target >= 0) & (target < limit), axis=1)
        before += len(pixels)
        dropped += int((~inside).sum())
        out[tuple(target[inside].T)] = True
    return out, before, dropped, largest


def _resample_segment(
    seg: hd.seg.Segmentation,
    number: int,
    reference: ImageVolume,
    fractional: bool,
    path: Path,
    own: list[str],
) -> tuple[np.ndarray, int, int]:
    """Nearest-neighbour resampling of one segment, on its bounding box only."""
    try:
        volume = seg.get_volume(segment_numbers=[number], dtype=np.float32 if fractional else bool)
    except (RuntimeError, ValueError) as exc:
        raise DicomInputError(
            f"SEG frames of segment {number} are not on the reference planes and do not form "
            f"a regularly spaced volume ({exc})",
            file=path,
            tag="(0020,0032) ImagePositionPatient",
        ) from exc
    array = np.asarray(volume.array)
    if array.ndim == 4:
        array = array[..., 0]
    channel = array >= 0.5 if fractional else array.astype(bool)
    affine = np.asarray(volume.affine, dtype=np.float64)
    out = np.zeros(reference.shape, dtype=bool)
    if not channel.any():
        return out, 0, 0
    found = np.argwhere(channel)
    low, high = found.min(axis=0), found.max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
    # one voxel of zeros around the box: scipy's mode="constant" treats points less than half
    # a voxel beyond the outer centres as outside, which would drop the border voxels
    padded = np.pad(channel[box].astype(np.uint8), 1)
    shift = np.eye(4)
    shift[:3, 3] = low - 1
    source = ImageVolume(array=padded, affine=affine @ shift)
    extent = np.asarray(padded.shape) - 1.0
    corners = np.array(
        [[a, b, c] for a in (0.0, extent[0]) for b in (0.0, extent[1]) for c in (0.0, extent[2])]
    )
    target = reference.lps_to_voxel(source.voxel_to_lps(corners))
    start = np.clip(np.floor(target.min(axis=0)).astype(int), 0, np.asarray(reference.shape))
    stop = np.clip(np.ceil(target.max(axis=0)).astype(int) + 1, 0, np.asarray(reference.shape))
    before = int(channel.sum())
    dropped = _count_outside(padded, source.affine, reference)
    if np.all(stop > start):
        region = (
            slice(int(start[0]), int(stop[0])),
            slice(int(start[1]), int(stop[1])),
            slice(int(start[2]), int(stop[2])),
        )
        resampled = source.resample_to(reference.crop(region), order=0, fill_value=0)
        out[region] = np.asarray(resampled.array, dtype=bool)
    note = (
        f"{path}: segment {number} resampled (nearest neighbour) from "
        f"{describe_grid(ImageVolume(array=channel, affine=affine))} onto the reference grid "
        f"{describe_grid(reference)}: {before} SEG voxels became {int(out.sum())} reference voxels"
    )
    warnings.warn(note, GeometryWarning, stacklevel=3)
    own.append(note)
    return out, before, dropped
