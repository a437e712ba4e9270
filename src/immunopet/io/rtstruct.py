"""VOIs as DICOM RT Structure Sets (RTSTRUCT), read and written with pydicom and scikit-image.

highdicom has no RTSTRUCT support and rt-utils pulls in OpenCV, so both directions are written
here on pydicom datasets: an ROI per VOI, named by (3006,0026) ROIName, whose contours are
``CLOSED_PLANAR`` polygons in LPS millimetres, one or more per slice.

Writing: contours from a voxel mask
-----------------------------------
For every slice ``k`` of a mask, :func:`skimage.measure.find_contours` traces the level 0.5
of the slice padded by one background voxel (so that contours touching the border close),
with ``fully_connected="low"`` (foreground voxels meeting only at a corner get separate
contours). The vertices lie on voxel edges, halfway between a voxel centre inside and one
outside; they are mapped to LPS with the grid's affine at index ``k``. Each contour references
its slice's (0008,0018) SOPInstanceUID; (3006,0010) ReferencedFrameOfReferenceSequence lists
the series and every slice.

Reading: masks from contours (rasterisation convention)
-------------------------------------------------------
Every contour point is mapped to fractional voxel indices ``(k, j, i)`` of the reference
grid. A contour must be parallel to the reference slices and lie on one of them: all its
points within ``plane_tolerance_mm`` (default 0.1 mm) of the same slice. A voxel belongs to the
ROI when its **centre lies inside the polygon** (:func:`skimage.draw.polygon`, the function
behind :func:`skimage.draw.polygon2mask`); several contours of one ROI in one slice combine by
**even-odd (XOR)**, so a contour inside another cuts a hole and a contour inside the hole is an
island again. ``CLOSED_PLANAR_XOR`` contours are read the same way. ``POINT`` and open contours
enclose nothing and are skipped (recorded as a warning).

Consequence for round trips: the written vertices lie on voxel edges, at least
:math:`\\sqrt 2/4 \\approx 0.35` voxel from any voxel centre, and no voxel centre lies on a
contour, so ``read_rtstruct(write_rtstruct(mask))`` gives back **exactly** the same mask on the
same grid -- spheres, ellipsoids, rings with holes, and even one-voxel-thin lines and isolated
voxels (verified on random masks in the tests). Readers that use another convention (e.g. a
voxel is in when at least half its area is inside the polygon) lose features one voxel thin: a
single voxel's contour is a diamond of half the voxel's area.

Contours on other planes
------------------------
A contour drawn on another grid (e.g. on CT slices) does not lie on a reference slice. By default
this is an error naming the ROI. With ``off_plane="nearest"`` every reference slice takes the
contours of the nearest contour plane when it is within half the spacing of the contour planes
(nearest-neighbour sampling along the slice normal), recorded as a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid
from skimage import draw, measure

from immunopet import __version__
from immunopet.errors import DicomInputError, GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume
from immunopet.io.dicom import DicomSeries
from immunopet.io.seg import AlgorithmType, NamedMasks, VoiKind, check_voi_masks, reference_grid

__all__ = ["RTSTRUCT_SOP_CLASS_UID", "mask_contours", "read_rtstruct", "write_rtstruct"]

RTSTRUCT_SOP_CLASS_UID = str(RTStructureSetStorage)
"""(0008,0016) SOPClassUID of RT Structure Set Storage."""

_DETACHED_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
_INTERPRETED_TYPES: dict[str | None, str] = {"lesion": "GTV", "organ": "ORGAN", None: ""}
_LESION_TYPES = {"GTV", "CTV", "PTV"}
_ORGAN_TYPES = {"ORGAN", "OAR"}
_CLOSED = {"CLOSED_PLANAR", "CLOSED_PLANAR_XOR"}
_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180))
_PATIENT_STUDY_KEYWORDS = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_TAG_CONTOUR_DATA = "(3006,0050) ContourData"
_CONTOUR_DATA = Tag(0x3006, 0x0050)
_TAG_ROI_NAME = "(3006,0026) ROIName"


# ---------------------------------------------------------------------------- writing
def _contour_data_element(points: np.ndarray) -> RawDataElement:
    """(3006,0050) ContourData as a raw DS element: coordinates to 0.1 µm, at most 16 characters.

    Written raw (pydicom writes raw elements as they are) because converting tens of thousands
    of values to pydicom's validated ``DSfloat`` objects dominates the time otherwise.
    """
    texts = np.char.rstrip(np.char.rstrip(np.char.mod("%.4f", points.reshape(-1)), "0"), ".")
    texts = np.where(np.isin(texts, ("-0", "")), "0", texts)
    value = "\\".join(texts.tolist()).encode("ascii")
    if len(value) % 2:
        value += b" "
    return RawDataElement(_CONTOUR_DATA, "DS", len(value), value, 0, False, True)


def mask_contours(mask: npt.ArrayLike, grid: ImageVolume) -> list[tuple[int, np.ndarray]]:
    """Closed contours of a mask, slice by slice, in LPS millimetres.

    Parameters
    ----------
    mask : array_like of bool, shape of ``grid``
        The VOI, indexed ``[z, y, x]``.
    grid : ImageVolume
        Its grid (only the affine is used).

    Returns
    -------
    list of (int, numpy.ndarray)
        ``(k, points)`` per contour: the slice index and an ``(n, 3)`` array of LPS points
        (the closing point, equal to the first, left out).

    Examples
    --------
    >>> grid = ImageVolume.from_attributes(array=np.zeros((1, 3, 3)), image_position_mm=(0, 0, 0),
    ...     image_orientation=(1, 0, 0, 0, 1, 0), pixel_spacing_mm=(2.0, 2.0),
    ...     slice_spacing_mm=4.0)
    >>> m = np.zeros((1, 3, 3), dtype=bool); m[0, 1, 1] = True   # voxel centre at x = y = 2 mm
    >>> [(k, p.tolist()) for k, p in mask_contours(m, grid)]   # a diamond through edge midpoints
    [(0, [[2.0, 3.0, 0.0], [1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [3.0, 2.0, 0.0]])]
    """
    array = np.asarray(mask, dtype=bool)
    contours: list[tuple[int, np.ndarray]] = []
    for k in np.flatnonzero(array.any(axis=(1, 2))):
        rows = np.flatnonzero(array[k].any(axis=1))
        cols = np.flatnonzero(array[k].any(axis=0))
        r0, c0 = int(rows[0]), int(cols[0])
        crop = array[k, r0 : rows[-1] + 1, c0 : cols[-1] + 1]
        padded = np.pad(crop, 1).astype(np.float64)
        for contour in measure.find_contours(padded, 0.5, fully_connected="low"):
            ji = contour[:-1] + np.array([r0 - 1.0, c0 - 1.0])
            kji = np.column_stack([np.full(len(ji), float(k)), ji])
            contours.append((int(k), grid.voxel_to_lps(kji)))
    return contours


def _new_structure_set(series: DicomSeries, label: str, series_number: int) -> Dataset:
    header = series.header
    instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword in _PATIENT_STUDY_KEYWORDS:
        if keyword in header:
            setattr(ds, keyword, header.get(keyword))
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    now = datetime.now()
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = instance_uid
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "immunopet"
    ds.ManufacturerModelName = "immunopet"
    ds.SoftwareVersions = __version__
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = label
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = now.strftime("%H%M%S")
    return ds


def _referenced_frame(series: DicomSeries) -> Dataset:
    images = []
    for header in series.headers:
        image = Dataset()
        image.ReferencedSOPClassUID = header.SOPClassUID
        image.ReferencedSOPInstanceUID = header.SOPInstanceUID
        images.append(image)
    referenced_series = Dataset()
    referenced_series.SeriesInstanceUID = series.series_uid
    referenced_series.ContourImageSequence = DicomSequence(images)
    study = Dataset()
    study.ReferencedSOPClassUID = _DETACHED_STUDY_SOP_CLASS
    study.ReferencedSOPInstanceUID = series.study_uid
    study.RTReferencedSeriesSequence = DicomSequence([referenced_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = series.frame_of_reference_uid
    frame.RTReferencedStudySequence = DicomSequence([study])
    return frame


def write_rtstruct(
    masks: Mapping[str, npt.ArrayLike],
    reference_series: DicomSeries,
    path: str | Path,
    *,
    kinds: Mapping[str, VoiKind | None] | None = None,
    algorithm_type: AlgorithmType = "MANUAL",
    series_number: int = 301,
    label: str = "immunopet VOIs",
) -> Path:
    """Write VOI masks as an RTSTRUCT whose contours refer to the slices of a series.

    Parameters
    ----------
    masks : mapping of str to array_like of bool
        VOI name -> mask ``[z, y, x]`` on the grid of ``reference_series`` (slice ``k`` is the
        series' ``k``-th file). ROIs are numbered from 1 in the mapping's order.
    reference_series : DicomSeries
        The image series the masks were drawn on (headers only are used).
    path : path-like
        The file to write (its folder must exist).
    kinds : mapping of str to {"lesion", "organ"} or None, optional
        Written as (3006,00A4) RTROIInterpretedType ``GTV`` (lesion) or ``ORGAN``.
    algorithm_type : {"MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"}
        (3006,0036) ROIGenerationAlgorithm.
    series_number : int
    label : str
        (0008,103E) SeriesDescription; its first 16 characters are (3006,0002)
        StructureSetLabel.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        Invalid name, non-boolean or empty mask, unknown kind or algorithm.
    GeometryError
        A mask not on the series' grid; slices that do not form one grid.
    DicomInputError
        The series has no (0020,0052) FrameOfReferenceUID.

    Examples
    --------
    See the module notes for the contour convention; the tests write and read spheres,
    ellipsoids and rings.
    """
    path = Path(path)
    where = str(path)
    if algorithm_type not in ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"):
        raise InputError(
            "unknown algorithm",
            file=where,
            tag="(3006,0036) ROIGenerationAlgorithm",
            value=algorithm_type,
            expected="MANUAL, SEMIAUTOMATIC or AUTOMATIC",
        )
    if not reference_series.frame_of_reference_uid:
        raise DicomInputError(
            "the reference series has no frame of reference",
            file=reference_series.label,
            tag="(0020,0052) FrameOfReferenceUID",
            value="missing",
        )
    grid = reference_grid(reference_series)
    checked = check_voi_masks(masks, grid.shape, where=where)
    ds = _new_structure_set(reference_series, label, series_number)
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([_referenced_frame(reference_series)])
    rois, roi_contours, observations = [], [], []
    for number, (name, mask) in enumerate(checked.items(), start=1):
        kind = None if kinds is None else kinds.get(name)
        if kind not in _INTERPRETED_TYPES:
            raise InputError(
                f"VOI {name!r}: unknown kind",
                file=where,
                tag="kind",
                value=kind,
                expected="'lesion', 'organ' or None",
            )
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = reference_series.frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = algorithm_type
        rois.append(roi)
        contour_items = []
        for k, points in mask_contours(mask, grid):
            image = Dataset()
            image.ReferencedSOPClassUID = reference_series.headers[k].SOPClassUID
            image.ReferencedSOPInstanceUID = reference_series.headers[k].SOPInstanceUID
            item = Dataset()
            item.ContourImageSequence = DicomSequence([image])
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(points)
            item[_CONTOUR_DATA] = _contour_data_element(points)
            contour_items.append(item)
        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
        roi_contour.ReferencedROINumber = number
        roi_contour.ContourSequence = DicomSequence(contour_items)
        roi_contours.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = _INTERPRETED_TYPES[kind]
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(roi_contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------- reading
@dataclass(frozen=True, eq=False)
class _Contour:
    """One closed contour of an ROI: its plane ``k`` and ``(n, 2)`` points ``(j, i)``, both in
    fractional reference indices."""

    k: float
    ji: np.ndarray


def _read_structure_set(path: Path) -> Dataset:
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        ds = dcmread(path)
    except (OSError, InvalidDicomError) as exc:
        raise DicomInputError(f"not a readable DICOM file ({exc})", file=path) from exc
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class != RTSTRUCT_SOP_CLASS_UID:
        raise DicomInputError(
            "not a DICOM RTSTRUCT",
            file=path,
            tag="(0008,0016) SOPClassUID",
            value=sop_class or "missing",
            expected=f"{RTSTRUCT_SOP_CLASS_UID} (RT Structure Set Storage)",
        )
    if "StructureSetROISequence" not in ds:
        raise DicomInputError(
            "RTSTRUCT lists no ROI",
            file=path,
            tag="(3006,0020) StructureSetROISequence",
            value="missing",
        )
    return ds


def _contour_points(item: Dataset, name: str, index: int, path: Path) -> np.ndarray:
    # the raw bytes when the value was never accessed: parsing them directly is much faster
    # than pydicom's conversion of every value to a validated DSfloat
    element = item.get_item(_CONTOUR_DATA) if _CONTOUR_DATA in item else None
    raw = None if element is None else element.value
    values: Sequence[object]
    if raw is None or raw in (b"", ""):
        values = []
    elif isinstance(raw, bytes):
        values = raw.decode("ascii", errors="replace").strip(" \0").split("\\")
    else:
        values = list(raw) if isinstance(raw, MultiValue | list | tuple) else [raw]
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"ROI {name!r}, contour {index}: contour data are not numbers",
            file=path,
            tag=_TAG_CONTOUR_DATA,
        ) from exc
    if numbers.size == 0 or numbers.size % 3 or not np.all(np.isfinite(numbers)):
        raise InputError(
            f"ROI {name!r}, contour {index}: empty or malformed contour data",
            file=path,
            tag=_TAG_CONTOUR_DATA,
            value=f"{numbers.size} values",
            expected="x, y, z triplets (LPS mm) of at least one point",
        )
    declared = item.get("NumberOfContourPoints")
    if declared not in (None, "") and int(declared) != numbers.size // 3:
        raise InputError(
            f"ROI {name!r}, contour {index}: point count differs from the contour data",
            file=path,
            tag="(3006,0046) NumberOfContourPoints",
            value=int(declared),
            expected=f"{numbers.size // 3} (from {_TAG_CONTOUR_DATA})",
        )
    return numbers.reshape(-1, 3)


def _roi_kind(ds: Dataset, number: int) -> VoiKind | None:
    for observation in ds.get("RTROIObservationsSequence", []):
        if int(observation.get("ReferencedROINumber", -1)) == number:
            interpreted = str(observation.get("RTROIInterpretedType", "") or "").upper()
            if interpreted in _LESION_TYPES:
                return "lesion"
            if interpreted in _ORGAN_TYPES:
                return "organ"
    return None


def _roi_contours(
    items: Sequence[Dataset],
    name: str,
    reference: ImageVolume,
    tolerance_k: float,
    path: Path,
    notes: list[str],
) -> list[_Contour]:
    contours: list[_Contour] = []
    skipped: dict[str, int] = {}
    for index, item in enumerate(items, start=1):
        kind = str(item.get("ContourGeometricType", "") or "").upper()
        points = _contour_points(item, name, index, path)
        if kind not in _CLOSED:
            skipped[kind or "(no type)"] = skipped.get(kind or "(no type)", 0) + 1
            continue
        kji = reference.lps_to_voxel(points)
        k = kji[:, 0]
        if float(k.max() - k.min()) > 2 * tolerance_k:
            raise GeometryError(
                f"ROI {name!r}, contour {index}: contour is not parallel to the image slices",
                file=path,
                tag=_TAG_CONTOUR_DATA,
                value=f"slice index from {k.min():.3f} to {k.max():.3f}",
                expected="one slice plane (oblique contours need a grid in their orientation)",
            )
        if len(points) < 3:
            notes.append(
                f"{path}: ROI {name!r}, contour {index} has {len(points)} point(s) and encloses "
                "no voxel centre"
            )
            continue
        contours.append(_Contour(float(k.mean()), kji[:, 1:]))
    for kind, count in skipped.items():
        notes.append(f"{path}: ROI {name!r}: {count} {kind} contour(s) enclose nothing; skipped")
    return contours


def _assign_slices(
    contours: list[_Contour],
    name: str,
    reference: ImageVolume,
    tolerance_k: float,
    off_plane: Literal["raise", "nearest"],
    plane_spacing_k: float,
    path: Path,
    notes: list[str],
) -> dict[int, list[_Contour]]:
    """Reference slice index -> contours rasterised in it."""
    dz = reference.spacing_mm[0]
    by_slice: dict[int, list[_Contour]] = {}
    off = [c for c in contours if abs(c.k - round(c.k)) > tolerance_k]
    if not off:
        for contour in contours:
            by_slice.setdefault(round(contour.k), []).append(contour)
        return by_slice
    if off_plane == "raise":
        first = off[0]
        below = np.floor(first.k)
        raise GeometryError(
            f"ROI {name!r}: {len(off)} contour(s) do not lie on an image slice",
            file=path,
            tag=_TAG_CONTOUR_DATA,
            value=f"plane {first.k * dz:.3f} mm from slice 0 along the normal",
            expected=(
                f"a slice plane within {tolerance_k * dz:g} mm, e.g. {below * dz:g} or "
                f"{(below + 1) * dz:g} mm (or off_plane='nearest')"
            ),
        )
    planes: dict[float, list[_Contour]] = {}
    for contour in contours:
        key = next((p for p in planes if abs(p - contour.k) <= tolerance_k), contour.k)
        planes.setdefault(key, []).append(contour)
    positions = np.array(sorted(planes))
    half = plane_spacing_k / 2.0 + 1e-9
    for k in range(reference.shape[0]):
        nearest = positions[np.argmin(np.abs(positions - k))]
        if abs(nearest - k) <= half:
            by_slice[k] = planes[float(nearest)]
    notes.append(
        f"{path}: ROI {name!r}: contours lie between image slices (e.g. at "
        f"{off[0].k * dz:.3f} mm from slice 0); each slice took the nearest contour plane within "
        f"{plane_spacing_k * dz / 2:g} mm"
    )
    return by_slice


def _plane_spacing_k(all_k: list[float], tolerance_k: float) -> float:
    """Median spacing (in reference slices) of the distinct contour planes of the file."""
    distinct: list[float] = []
    for k in sorted(all_k):
        if not distinct or k - distinct[-1] > tolerance_k:
            distinct.append(k)
    if len(distinct) < 2:
        return 1.0
    return float(np.median(np.diff(distinct)))


def _rasterise(
    by_slice: Mapping[int, list[_Contour]], shape: tuple[int, int, int]
) -> tuple[np.ndarray, bool]:
    """Even-odd fill of each slice's contours; also whether any part lies outside the grid."""
    mask = np.zeros(shape, dtype=bool)
    outside = False
    nz, ny, nx = shape
    for k, contours in by_slice.items():
        if not 0 <= k < nz:
            outside = True
            continue
        for contour in contours:
            rows, cols = contour.ji[:, 0], contour.ji[:, 1]
            low = min(rows.min(), cols.min())
            if low < -0.5 or rows.max() > ny - 0.5 or cols.max() > nx - 0.5:
                outside = True
            rr, cc = draw.polygon(rows, cols, shape=(ny, nx))
            mask[k, rr, cc] ^= True
    return mask, outside


def read_rtstruct(
    path: str | Path,
    *,
    reference: ImageVolume,
    frame_of_reference_uid: str | None = None,
    names: Sequence[str] | None = None,
    plane_tolerance_mm: float = 0.1,
    off_plane: Literal["raise", "nearest"] = "raise",
) -> NamedMasks:
    """Rasterise the ROIs of an RTSTRUCT onto a reference grid (voxel centre in polygon).

    Parameters
    ----------
    path : path-like
        An RT Structure Set Storage file.
    reference : ImageVolume
        The grid wanted (usually the PET); only shape and affine are used.
    frame_of_reference_uid : str, optional
        (0020,0052) FrameOfReferenceUID of the reference; when given, an ROI in another frame
        of reference is refused.
    names : sequence of str, optional
        ROI names to read (default: all), in the order wanted.
    plane_tolerance_mm : float, mm
        Largest distance of a contour from an image slice plane.
    off_plane : {"raise", "nearest"}
        What to do with contours that do not lie on a slice (see the module notes).

    Returns
    -------
    NamedMasks
        ``ROI name -> mask`` in the file's order (or the order of ``names``); an ROI without
        contours gives an empty mask.

    Raises
    ------
    DicomInputError
        Not an RTSTRUCT, unreadable, or without (3006,0020) StructureSetROISequence.
    InputError
        An ROI name repeated, a name of ``names`` not found, empty or malformed contour data.
    GeometryError
        An ROI in another frame of reference; a contour not parallel to the slices, or (with
        ``off_plane="raise"``) not on a slice.

    Warns
    -----
    GeometryWarning
        Contours sampled onto the nearest slice, or reaching beyond the grid (also recorded
        in :attr:`NamedMasks.warnings`).
    """
    path = Path(path)
    if off_plane not in ("raise", "nearest"):
        raise InputError(
            "unknown off-plane policy",
            tag="off_plane",
            value=off_plane,
            expected="'raise' or 'nearest'",
        )
    if not plane_tolerance_mm >= 0:
        raise InputError(
            "tolerance must be >= 0", tag="plane_tolerance_mm", value=plane_tolerance_mm
        )
    ds = _read_structure_set(path)
    dz = reference.spacing_mm[0]
    tolerance_k = plane_tolerance_mm / dz
    numbers: dict[str, int] = {}
    frames: dict[str, str] = {}
    for roi in ds.StructureSetROISequence:
        name = str(roi.get("ROIName", "") or "")
        number = int(roi.get("ROINumber", -1))
        if name in numbers:
            raise InputError(
                f"ROI name repeated (ROIs {numbers[name]} and {number})",
                file=path,
                tag=_TAG_ROI_NAME,
                value=name,
                expected="one ROI per VOI name",
            )
        numbers[name] = number
        frames[name] = str(roi.get("ReferencedFrameOfReferenceUID", "") or "")
    wanted = list(numbers) if names is None else list(names)
    for name in wanted:
        if name not in numbers:
            raise InputError(
                "ROI name not found",
                file=path,
                tag=_TAG_ROI_NAME,
                value=name,
                expected="one of " + (", ".join(repr(n) for n in numbers) or "(no ROIs)"),
            )
    if len(set(wanted)) != len(wanted):
        raise InputError("a name is asked for twice", file=path, tag="names", value=wanted)
    if not wanted:
        raise InputError(
            "no ROI to read",
            file=path,
            tag="(3006,0020) StructureSetROISequence" if names is None else "names",
            value=0,
            expected="at least one ROI",
        )
    items: dict[int, Sequence[Dataset]] = {}
    for roi_contour in ds.get("ROIContourSequence", []):
        number = int(roi_contour.get("ReferencedROINumber", -1))
        items[number] = list(roi_contour.get("ContourSequence", []))
    contours: dict[str, list[_Contour]] = {}
    notes: dict[str, list[str]] = {}
    for name in wanted:
        if frame_of_reference_uid is not None and frames[name] != frame_of_reference_uid:
            raise GeometryError(
                f"ROI {name!r} is in another frame of reference than the image",
                file=path,
                tag="(3006,0024) ReferencedFrameOfReferenceUID",
                value=frames[name] or "missing",
                expected=frame_of_reference_uid,
            )
        notes[name] = []
        contours[name] = _roi_contours(
            items.get(numbers[name], []), name, reference, tolerance_k, path, notes[name]
        )
    spacing_k = _plane_spacing_k([c.k for found in contours.values() for c in found], tolerance_k)
    masks: dict[str, np.ndarray] = {}
    outside: set[str] = set()
    for name in wanted:
        by_slice = _assign_slices(
            contours[name], name, reference, tolerance_k, off_plane, spacing_k, path, notes[name]
        )
        mask, beyond = _rasterise(by_slice, reference.shape)
        if beyond:
            outside.add(name)
            notes[name].append(f"{path}: ROI {name!r} reaches beyond the image field of view")
        for note in notes[name]:
            warnings.warn(note, GeometryWarning, stacklevel=2)
        mask.flags.writeable = False
        masks[name] = mask
    return NamedMasks(
        masks=masks,
        kinds={name: _roi_kind(ds, numbers[name]) for name in wanted},
        warnings={name: tuple(notes[name]) for name in wanted},
        outside=frozenset(outside),
        source=str(path),
        frame_of_reference_uid=_file_frame(ds),
    )


def _file_frame(ds: Dataset) -> str:
    """The first (3006,0010) ReferencedFrameOfReferenceSequence item's UID (empty if none)."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        return str(frame.get("FrameOfReferenceUID", "") or "")
    return ""
