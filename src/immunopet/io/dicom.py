"""Discover DICOM series in a folder tree and read them as image volumes.

:func:`discover_dicom` walks a folder (a PACS export, a scanner's USB dump), reads headers
only, and groups the instances by (0020,000E) SeriesInstanceUID into :class:`DicomSeries`;
files that are not DICOM, or are damaged, are listed in :attr:`DicomInventory.skipped`
instead of stopping the walk. :func:`load_series_volume` then reads the pixel data of one
series, applies (0028,1053) RescaleSlope and (0028,1052) RescaleIntercept slice by slice
(PET slopes differ between slices) and returns an :class:`~immunopet.image.ImageVolume` in
the stored unit: Bq/mL, counts or SUV for PET as (0054,1001) Units says, HU for CT. The SUV
factor is not applied here (see :mod:`immunopet.suv`).

Slices are stacked along the slice normal (row x column cosines of (0020,0037)
ImageOrientationPatient) by the projection of (0020,0032) ImagePositionPatient, whatever the
file names or (0020,0013) InstanceNumber say. A missing slice, two slices at one position,
mixed orientations, sizes or pixel spacings are errors (:class:`~immunopet.errors.GeometryError`)
that name the series, the files and the positions involved.

Files without the 128-byte preamble and ``DICM`` prefix are accepted when they parse as DICOM
and carry (0008,0016) SOPClassUID. Multi-frame (enhanced) images are out of scope and
rejected with :class:`~immunopet.errors.DicomInputError` when loaded.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from tqdm import tqdm

from immunopet.errors import DicomInputError, GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io._dicom_geometry import SeriesGeometry, check_stack, sort_key_positions
from immunopet.io._dicom_headers import (
    Entry,
    SliceHeaders,
    entry_dataset,
    entry_syntax,
    entry_text,
)
from immunopet.io._dicom_pixels import (
    PIXEL_DESCRIPTION_TAGS,
    PixelLocation,
    PixelReader,
    PlainFrames,
    inspect_pixel_element,
    plain_frames,
    read_plain,
)
from immunopet.io._dicom_template import HeaderTemplate, StoredHeader
from immunopet.io._dicom_values import SameAsBefore

__all__ = [
    "DicomInventory",
    "DicomSeries",
    "SameAsBefore",
    "SeriesGeometry",
    "SkippedFile",
    "SliceHeaders",
    "check_series",
    "discover_dicom",
    "find_one_pet",
    "find_one_series",
    "load_series_volume",
    "load_series_volume_owned",
    "load_single_series",
    "read_ct_series",
    "read_pet_series",
    "series_geometry",
]

_NOT_DICOM = "not DICOM: no 128-byte preamble with 'DICM' and no (0008,0016) SOPClassUID"
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
}
_PET_UNITS = {"BQML": Unit.BQML, "CNTS": Unit.CNTS, "GML": Unit.SUV_BW}


class SkippedFile(NamedTuple):
    """A file that discovery did not use, and why."""

    path: Path
    reason: str


@dataclass(frozen=True, eq=False)
class DicomSeries:
    """The instances of one (0020,000E) SeriesInstanceUID, sorted along the slice normal.

    Sorting happens on construction: by the projection of (0020,0032) ImagePositionPatient
    on the first slice's normal when every slice has a position and orientation, otherwise by
    (0020,0013) InstanceNumber, then by file name. Equality is identity (headers are mutable
    pydicom datasets); the representation shows no patient data.

    Attributes
    ----------
    series_uid : str
        (0020,000E) SeriesInstanceUID.
    modality : str
        (0008,0060) Modality: ``"PT"``, ``"CT"`` or another value as written.
    files : tuple of Path
        One file per instance, in slice order.
    headers : sequence of pydicom.dataset.Dataset
        The header of each file (read without pixel data), same order. A
        :class:`~immunopet.io._dicom_headers.SliceHeaders`: files read by difference from a
        template become pydicom datasets when first indexed or iterated (each then kept).
    description : str
        (0008,103E) SeriesDescription.
    study_uid : str
        (0020,000D) StudyInstanceUID.
    frame_of_reference_uid : str
        (0020,0052) FrameOfReferenceUID (empty when absent).
    damaged : tuple of SkippedFile
        Files of this series that could not be used (truncated, no pixel data). They are not
        in :attr:`files`; loading the series raises an error naming them.
    pixel_locations : tuple
        Where each file's pixel data lies, found by discovery so that loading reads only
        those bytes; empty (or None entries) makes loading use ``pydicom.pixels.pixel_array``.
    """

    series_uid: str
    modality: str
    files: tuple[Path, ...]
    headers: Sequence[Dataset]
    description: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    damaged: tuple[SkippedFile, ...] = field(default=())
    pixel_locations: tuple[PixelLocation | None, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if len(self.files) != len(self.headers):
            raise InputError(
                "files and headers differ in number",
                tag="DicomSeries.headers",
                value=len(self.headers),
                expected=f"{len(self.files)} (one per file)",
            )
        files = tuple(f if isinstance(f, Path) else Path(f) for f in self.files)
        headers = SliceHeaders.of(self.headers)
        order = _slice_order(headers, files)
        locations = tuple(self.pixel_locations)
        if locations and len(locations) != len(files):
            raise InputError(
                "files and pixel locations differ in number",
                tag="DicomSeries.pixel_locations",
                value=len(locations),
                expected=f"{len(files)} (one per file) or none",
            )
        if locations:
            object.__setattr__(self, "pixel_locations", tuple(locations[i] for i in order))
        object.__setattr__(self, "files", tuple(files[i] for i in order))
        object.__setattr__(self, "headers", headers.reordered(order))
        object.__setattr__(self, "damaged", tuple(self.damaged))

    def __repr__(self) -> str:
        return (
            f"DicomSeries(modality={self.modality!r}, series_uid={self.series_uid!r}, "
            f"n_files={len(self.files)}, description={self.description!r})"
        )

    @property
    def header(self) -> Dataset:
        """The header of the first slice."""
        if not self.headers:
            raise DicomInputError("series has no image files", file=self.label)
        return self.headers[0]

    @property
    def series_number(self) -> int | None:
        """(0020,0011) SeriesNumber of the first slice, None when absent."""
        if not self.headers:
            return None
        return _series_number(SliceHeaders.of(self.headers).entries[0])

    @property
    def folder(self) -> Path | None:
        """The folder of the first file."""
        return self.files[0].parent if self.files else None

    @property
    def label(self) -> str:
        """A short name for messages: folder, series number and UID (no patient data)."""
        where = f"{self.folder}/" if self.folder is not None else ""
        number = self.series_number
        return f"{where}[series {number if number is not None else '?'} {self.series_uid}]"

    def summary(self) -> str:
        """One line: modality, series number, description, number of files, folder."""
        return (
            f"{self.modality} series {self.series_number} {self.description!r} "
            f"({len(self.files)} files in {self.folder}; {self.series_uid})"
        )


@dataclass(frozen=True, eq=False)
class DicomInventory:
    """What :func:`discover_dicom` found under a folder.

    Attributes
    ----------
    root : Path
        The folder (or file) searched.
    series : tuple of DicomSeries
        Sorted by study UID, series number and series UID.
    skipped : tuple of SkippedFile
        Every file not used, with the reason (not DICOM, truncated, unreadable ...).
    """

    root: Path
    series: tuple[DicomSeries, ...]
    skipped: tuple[SkippedFile, ...]

    def __repr__(self) -> str:
        modalities = ", ".join(s.modality for s in self.series)
        return (
            f"DicomInventory(root={str(self.root)!r}, series=[{modalities}], "
            f"n_skipped={len(self.skipped)})"
        )

    def __iter__(self) -> Iterator[DicomSeries]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    @property
    def pet(self) -> tuple[DicomSeries, ...]:
        """The PET series ((0008,0060) Modality ``PT``)."""
        return tuple(s for s in self.series if s.modality == "PT")

    @property
    def ct(self) -> tuple[DicomSeries, ...]:
        """The CT series ((0008,0060) Modality ``CT``)."""
        return tuple(s for s in self.series if s.modality == "CT")

    def summary(self) -> str:
        """One line per series, then the number of skipped files."""
        lines = [s.summary() for s in self.series]
        lines.append(f"{len(self.skipped)} file(s) skipped")
        return "\n".join(lines)


def _slice_order(headers: SliceHeaders, files: tuple[Path, ...]) -> list[int]:
    """Indices of the slices sorted by (position along the normal, instance number, file).

    Instance numbers and file names are looked at only among slices at one position (all of
    them when a slice has no position or orientation): the order is the one of sorting by the
    whole key, without reading every slice's instance number.
    """

    def tie_break(i: int) -> tuple[int, str]:
        return _instance_number(headers, i), str(files[i])

    positions = sort_key_positions(headers, files)
    if positions is None:
        return sorted(range(len(files)), key=tie_break)
    order = sorted(range(len(files)), key=positions.__getitem__)
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and positions[order[stop]] == positions[order[start]]:
            stop += 1
        if stop - start > 1:  # slices at one position: a stable sort of the run
            order[start:stop] = sorted(order[start:stop], key=tie_break)
        start = stop
    return order


# ---------------------------------------------------------------------------- discovery
_SERIES_UID = 0x0020000E
_SERIES_NUMBER = 0x00200011
_INSTANCE_NUMBER = 0x00200013
_SOP_INSTANCE_UID = 0x00080018
_SOP_CLASS_UID = 0x00080016
_NUMBER_OF_FRAMES = 0x00280008


def _series_number(header: Entry) -> int | None:
    """(0020,0011) SeriesNumber; None when absent or not an integer (discovery skips those)."""
    text = entry_text(header, _SERIES_NUMBER)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _header_problem(header: Entry) -> str | None:
    """Why a header that pydicom parsed cannot be grouped; None when it can.

    A non-integer (0020,0011) SeriesNumber (``89Zr``) skips this file with its reason instead
    of failing discovery for the whole tree. Other elements are read as stored text
    (:func:`~immunopet.io._dicom_values.element_text`) or converted inside a ``try`` where
    they are used, so a damaged value ends in a one-line error naming file and tag there,
    without converting every element of every file here (which would double the cost of
    discovery).
    """
    text = entry_text(header, _SERIES_NUMBER)
    if text:
        try:
            int(text)
        except ValueError:
            return f"(0020,0011) SeriesNumber: not an integer (found {text!r})"
    return None


def _instance_number(headers: SliceHeaders, index: int) -> int:
    text = headers.text(index, _INSTANCE_NUMBER)
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


def _walk(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        base = Path(folder)
        found.extend(base / name for name in sorted(names))
    return found


def _starts_like_dicom(first_bytes: bytes) -> bool:
    """True when a file without preamble begins with group 0002 or 0008, as raw DICOM does.

    Keeps ``force=True`` parsing (which may read garbage lengths) away from other files.
    """
    if len(first_bytes) < 2:
        return False
    return int.from_bytes(first_bytes, "little") in (0x0002, 0x0008) or (
        int.from_bytes(first_bytes, "big") == 0x0008
    )


class _Templates:
    """The header templates of the layouts met so far in one discovery, most recent first.

    A template costs a second parse of its file; when files keep differing in layout (every
    file its own), learning stops after :attr:`_SPARE` templates more than files they served,
    and those files are read by pydicom alone.
    """

    _KEEP = 8
    _SPARE = 4

    def __init__(self) -> None:
        self._templates: list[HeaderTemplate] = []
        self.learned = 0
        self.served = 0

    def read(self, path: Path) -> tuple[StoredHeader, PixelLocation] | None:
        """The header by difference from a known layout, ``None`` when none fits."""
        for k, template in enumerate(self._templates):
            found = template.read_stored(path)
            if found is not None:
                if k:
                    self._templates.insert(0, self._templates.pop(k))
                self.served += 1
                return found
        return None

    def learn(self, path: Path, header: Dataset, location: PixelLocation | None) -> Entry:
        """The header of a file pydicom read, which becomes a template when it qualifies."""
        if self.learned >= self.served + self._SPARE:
            return header
        template = HeaderTemplate.from_file(path, header, location)
        if template is None:
            return header
        self.learned += 1
        self._templates.insert(0, template)
        del self._templates[self._KEEP :]
        return template.own(path, getattr(header, "timestamp", None) or 0.0)


def _read_header(
    path: Path, templates: _Templates | None = None
) -> tuple[Dataset | None, PixelLocation | None, str | None]:
    """Header, pixel location and problem of one file; (None, None, reason) when not DICOM.

    With ``templates``, a file laid out like one already read is read by difference from it
    (:mod:`._dicom_template`); any other file is parsed by pydicom and becomes a template.
    The header is a pydicom dataset (see :func:`_read_entry` for discovery's own reading).
    """
    entry, location, problem = _read_entry(path, templates)
    return (None if entry is None else entry_dataset(entry)), location, problem


def _read_entry(
    path: Path, templates: _Templates | None = None
) -> tuple[Entry | None, PixelLocation | None, str | None]:
    """As :func:`_read_header`; a file read by difference stays a :class:`StoredHeader`."""
    try:
        found = templates.read(path) if templates is not None else None
    except OSError as exc:
        return None, None, f"unreadable: {exc.strerror or exc}"
    except Exception:  # a file the fast path cannot follow: pydicom reads it and words why
        found = None
    if found is not None:
        return _judged(*found, None)
    header, location, problem = _parse_header(path)
    if header is None:
        return None, None, problem
    entry: Entry = header
    if templates is not None and problem is None:
        entry = templates.learn(path, header, location)
    return _judged(entry, location, problem)


def _judged(
    header: Entry, location: PixelLocation | None, problem: str | None
) -> tuple[Entry | None, PixelLocation | None, str | None]:
    """The checks every header read passes after parsing: a series UID, an undamaged header."""
    if not entry_text(header, _SERIES_UID):
        reason = "no (0020,000E) SeriesInstanceUID" + (f"; {problem}" if problem else "")
        return None, None, reason
    damaged = _header_problem(header)
    if damaged is not None:  # listed as a damaged file of its series, which cannot load
        return header, location, damaged if problem is None else f"{damaged}; {problem}"
    return header, location, problem


def _parse_header(path: Path) -> tuple[Dataset | None, PixelLocation | None, str | None]:
    """Header, pixel location and problem by :func:`pydicom.dcmread` (header None: unusable)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fp:
            try:
                header = dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                fp.seek(0)
                if not _starts_like_dicom(fp.read(2)):
                    return None, None, _NOT_DICOM
                fp.seek(0)
                header = dcmread(fp, stop_before_pixels=True, force=True)
                if "SOPClassUID" not in header:
                    return None, None, _NOT_DICOM
            meta = getattr(header, "file_meta", None)
            if meta is not None and meta.get("MediaStorageSOPClassUID") == _DICOMDIR_SOP_CLASS:
                return None, None, "DICOMDIR (a media index, not an instance)"
            location, problem = inspect_pixel_element(fp, header, size)
    except OSError as exc:
        return None, None, f"unreadable: {exc.strerror or exc}"
    except Exception as exc:  # pydicom raises many types on garbage bytes
        return None, None, f"not DICOM or damaged: {type(exc).__name__}: {exc}"
    return header, location, problem


def discover_dicom(root: str | Path, *, progress: bool = False) -> DicomInventory:
    """Find every DICOM series under a folder by reading file headers only.

    Parameters
    ----------
    root : str or Path
        A folder (searched recursively) or a single file.
    progress : bool
        Show a tqdm progress bar over the files.

    Returns
    -------
    DicomInventory
        The series found (sorted along the slice normal) and the files skipped with reasons.
        Several series in one folder are not an error here.

    Raises
    ------
    DicomInputError
        ``root`` does not exist.

    Notes
    -----
    Each file is read once with ``pydicom.dcmread(..., stop_before_pixels=True)``; the pixel
    data element's declared length is compared with the file size so that a truncated file
    is reported now, not when loading. Files lacking the preamble are read with
    ``force=True`` and kept only when they carry (0008,0016) SOPClassUID. A second file with
    an already seen (0008,0018) SOPInstanceUID is skipped as a duplicate. Damaged files whose
    header names a series are also listed in that series' :attr:`DicomSeries.damaged`.
    """
    root = Path(root)
    if not root.exists():
        raise DicomInputError("no such file or folder", file=root)
    groups: dict[str, list[tuple[Path, Entry, PixelLocation | None]]] = {}
    damaged: dict[str, list[SkippedFile]] = {}
    skipped: list[SkippedFile] = []
    instances: dict[str, Path] = {}
    paths = _walk(root)
    templates = _Templates()
    # a tqdm bar, even disabled, imports multiprocessing for its lock: only when shown
    shown = tqdm(paths, desc="DICOM headers", unit="file") if progress else paths
    for path in shown:
        header, location, problem = _read_entry(path, templates)
        if header is None:
            skipped.append(SkippedFile(path, problem or "unusable"))
            continue
        uid = entry_text(header, _SERIES_UID) or ""
        if problem is not None:
            entry = SkippedFile(path, problem)
            skipped.append(entry)
            damaged.setdefault(uid, []).append(entry)
            continue
        instance = entry_text(header, _SOP_INSTANCE_UID) or ""
        if instance and instance in instances:
            skipped.append(
                SkippedFile(
                    path, f"duplicate of {instances[instance]} (same (0008,0018) SOPInstanceUID)"
                )
            )
            continue
        if instance:
            instances[instance] = path
        groups.setdefault(uid, []).append((path, header, location))
    series = [
        _make_series(uid, groups.get(uid, []), damaged.get(uid, []))
        for uid in sorted(set(groups) | set(damaged))
    ]
    series.sort(key=lambda s: (s.study_uid, s.series_number or 0, s.series_uid))
    return DicomInventory(root=root, series=tuple(series), skipped=tuple(skipped))


def _make_series(
    uid: str,
    members: list[tuple[Path, Entry, PixelLocation | None]],
    damaged: list[SkippedFile],
) -> DicomSeries:
    first = members[0][1] if members else None

    def text(tag: int) -> str:
        return "" if first is None else entry_text(first, tag) or ""

    return DicomSeries(
        series_uid=uid,
        modality=text(0x00080060),  # Modality
        files=tuple(p for p, _, _ in members),
        headers=SliceHeaders(h for _, h, _ in members),
        description=text(0x0008103E),  # SeriesDescription
        study_uid=text(0x0020000D),  # StudyInstanceUID
        frame_of_reference_uid=text(0x00200052),  # FrameOfReferenceUID
        damaged=tuple(damaged),
        pixel_locations=tuple(loc for _, _, loc in members),
    )


# ---------------------------------------------------------------------------- loading
def series_geometry(series: DicomSeries) -> SeriesGeometry:
    """Validate the slice stack of a series and return its grid.

    Raises
    ------
    DicomInputError
        A geometry tag is missing or malformed.
    GeometryError
        Missing slice (the message names the gap, the two positions around it and the
        expected spacing), duplicate positions, mixed orientations, sizes or pixel spacings.

    Examples
    --------
    >>> import tempfile
    >>> from immunopet.io.dicom_write import PetAcquisition, write_pet_series
    >>> from datetime import datetime
    >>> vol = ImageVolume.from_attributes(array=np.ones((3, 4, 5)),
    ...     image_position_mm=(0, 0, 0), image_orientation=(1, 0, 0, 0, 1, 0),
    ...     pixel_spacing_mm=(2.0, 2.0), slice_spacing_mm=3.0, unit="BQML")
    >>> acq = PetAcquisition(injection_datetime=datetime(2024, 1, 1, 9),
    ...     scan_datetime=datetime(2024, 1, 6, 9), injected_activity_bq=37e6, weight_kg=70)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_pet_series(vol, folder, acq)
    ...     series_geometry(discover_dicom(folder).pet[0]).shape
    (3, 4, 5)
    """
    return check_stack(series.headers, series.files, series.label)


def check_series(series: DicomSeries) -> SeriesGeometry:
    """Everything :func:`load_series_volume` checks before it reads a pixel, headers only.

    ``immunopet run`` (through :func:`load_series_volume`), ``immunopet validate`` and
    ``immunopet discover`` all call this one function, so a series they accept is one the
    analysis reads.

    Returns
    -------
    SeriesGeometry
        The grid; :attr:`SeriesGeometry.warnings` lists what was accepted with a note (slices
        slightly off the uniform grid).

    Raises
    ------
    DicomInputError
        Damaged files, multi-frame images, a missing or malformed geometry tag, or pixel data
        whose length does not match (0028,0010) Rows x (0028,0011) Columns x (0028,0100)
        BitsAllocated / 8 (checked before any allocation).
    GeometryError
        See :func:`series_geometry`.
    """
    _check_loadable(series)
    geometry = series_geometry(series)
    headers = SliceHeaders.of(series.headers)
    changed = set(headers.changed((0x00280100, 0x00280002)))  # BitsAllocated, SamplesPerPixel
    previous_length = None
    for k, file in enumerate(series.files):
        location = series.pixel_locations[k] if series.pixel_locations else None
        same_length = location is not None and location.value_length == previous_length
        previous_length = None if location is None else location.value_length
        if k not in changed and same_length:
            continue  # stored as in the slice before, which passed
        _check_pixel_length(file, headers.scratch(k), location, geometry.shape[1:])
    return geometry


def _check_pixel_length(
    file: Path, header: Dataset, location: PixelLocation | None, size: tuple[int, int]
) -> None:
    """The declared pixel data length against Rows x Columns x samples x bytes per sample."""
    if location is None:  # compressed or deflated: the decoder checks the frame size
        return
    try:
        bits = int(header.get("BitsAllocated", 0) or 0)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
    except Exception as exc:  # pydicom raises many types on damaged elements
        raise DicomInputError(
            f"unreadable element: {type(exc).__name__}",
            file=file,
            tag="(0028,0100) BitsAllocated",
        ) from exc
    if bits not in (8, 16, 32, 64):
        raise DicomInputError(
            "unsupported bits allocated",
            file=file,
            tag="(0028,0100) BitsAllocated",
            value=bits,
            expected="8, 16, 32 or 64",
        )
    expected = size[0] * size[1] * samples * bits // 8
    if location.value_length not in (expected, expected + 1):
        raise DicomInputError(
            "pixel data length does not match the image size",
            file=file,
            tag="(7FE0,0010) PixelData",
            value=f"{location.value_length} bytes",
            expected=(
                f"{expected} bytes = (0028,0010) Rows {size[0]} x (0028,0011) Columns "
                f"{size[1]} x {samples} sample(s) x {bits // 8} byte(s)"
            ),
        )


def _check_loadable(series: DicomSeries) -> None:
    if series.damaged:
        bad = series.damaged[0]
        raise DicomInputError(
            f"series {series.label} has {len(series.damaged)} unusable file(s); "
            f"first: {bad.reason}",
            file=bad.path,
            tag="(7FE0,0010) PixelData",
        )
    headers = SliceHeaders.of(series.headers)
    # SOPClassUID and NumberOfFrames stored as in the file before (which passed): not again
    for k in headers.changed((_SOP_CLASS_UID, _NUMBER_OF_FRAMES)):
        file = series.files[k]
        sop_class = headers.text(k, _SOP_CLASS_UID) or ""
        frames = headers.text(k, _NUMBER_OF_FRAMES)
        try:
            n_frames = int(frames) if frames else 1
        except ValueError as exc:
            raise DicomInputError(
                "not an integer", file=file, tag="(0028,0008) NumberOfFrames", value=frames
            ) from exc
        if sop_class in _ENHANCED_SOP_CLASSES or n_frames > 1:
            raise DicomInputError(
                "multi-frame (enhanced) images are not supported",
                file=file,
                tag="(0028,0008) NumberOfFrames",
                value=_ENHANCED_SOP_CLASSES.get(sop_class, frames),
                expected="one single-frame file per slice (e.g. PET Image Storage)",
            )


def _rescale(
    headers: SliceHeaders, index: int, file: Path, modality: str
) -> tuple[float, float] | None:
    """(slope, intercept) of a slice; None when a Modality LUT Sequence is used instead."""
    if headers.element(index, 0x00283000) is not None:  # ModalityLUTSequence
        return None
    values = []
    for number_tag, tag, default in (
        (0x00281053, "(0028,1053) RescaleSlope", 1.0),
        (0x00281052, "(0028,1052) RescaleIntercept", 0.0),
    ):
        raw = headers.text(index, number_tag)
        if not raw:
            if modality in ("PT", "CT"):
                raise DicomInputError(
                    f"required for {modality} values", file=file, tag=tag, value="missing"
                )
            values.append(default)
            continue
        try:
            number = float(raw)
        except (TypeError, ValueError) as exc:
            raise DicomInputError("not a number", file=file, tag=tag, value=raw) from exc
        if not math.isfinite(number):
            raise DicomInputError("not finite", file=file, tag=tag, value=raw)
        values.append(number)
    return values[0], values[1]


def _unit(series: DicomSeries) -> Unit:
    if series.modality == "CT":
        return Unit.HU
    if series.modality == "PT":
        units = SliceHeaders.of(series.headers).text(0, 0x00541001)  # Units
        return _PET_UNITS.get((units or "").upper(), Unit.NONE)
    return Unit.NONE


def load_series_volume(series: DicomSeries, *, dtype: npt.DTypeLike = np.float32) -> ImageVolume:
    """Read the pixel data of a series into one volume in its stored unit.

    Parameters
    ----------
    series : DicomSeries
        From :func:`discover_dicom`.
    dtype : floating dtype
        Voxel type of the returned array.

    Returns
    -------
    ImageVolume
        Values after each slice's (0028,1053) RescaleSlope and (0028,1052) RescaleIntercept
        (or Modality LUT); unit ``BQML``, ``CNTS`` or ``SUVbw`` for PET as (0054,1001) Units
        says (``NONE`` for other units), ``HU`` for CT, ``NONE`` otherwise. Slice 0 is the
        lowest along the slice normal.

    Raises
    ------
    DicomInputError
        Damaged or truncated files, missing pixel data, missing rescale tags for PT/CT,
        multi-frame images.
    GeometryError
        The slices do not form one regular grid (see :func:`series_geometry`).

    Warns
    -----
    GeometryWarning
        Slices within tolerance of, but not exactly on, the uniform grid (the volume is on the
        least-squares grid; the message gives the largest deviation).

    Notes
    -----
    Each file's pixel data is read once: the bytes discovery located are decoded by pydicom's
    decoder with options from the header already read (compressed files go through
    :func:`pydicom.pixels.pixel_array`); the rescale comes from the same headers, slice by
    slice. Slices that store the image pixel description as slice 0 does, with plain frames
    (whole little-endian integers), are read with one ``preadv`` each into a buffer of the
    stored type, which holds exactly what pydicom's decoder would return.
    """
    return load_series_volume_owned(series, dtype=dtype)[0]


def load_series_volume_owned(
    series: DicomSeries, *, dtype: npt.DTypeLike = np.float32
) -> tuple[ImageVolume, np.ndarray]:
    """:func:`load_series_volume`, and the writeable array under the volume's read-only one.

    Nothing else refers to that array: a caller that turns the stored values into others
    (SUV) may write them in place rather than into a new volume's worth of fresh memory.
    """
    out_dtype = np.dtype(dtype)
    if not np.issubdtype(out_dtype, np.floating):
        raise InputError("dtype must be floating", tag="dtype", value=str(out_dtype))
    geometry = check_series(series)
    for note in geometry.warnings:
        warnings.warn(f"{series.label}: {note}", GeometryWarning, stacklevel=2)
    nz, ny, nx = geometry.shape
    plan = _plan(series)
    out = np.empty((nz, ny, nx), dtype=out_dtype)
    chunks = [range(start, min(start + _CHUNK, nz)) for start in range(0, nz, _CHUNK)]
    if len(chunks) == 1 or _READ_THREADS == 1:
        for chunk in chunks:
            _read_slices(series, plan, chunk, out)
    else:  # file reads and numpy release the GIL: two threads overlap them
        with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
            done = [pool.submit(_read_slices, series, plan, chunk, out) for chunk in chunks]
            for future in done:  # in slice order: the first bad slice is the one named
                future.result()
    volume = ImageVolume.from_attributes(
        array=out,
        image_position_mm=geometry.first_position_mm,
        image_orientation=geometry.orientation,
        pixel_spacing_mm=geometry.pixel_spacing_mm,
        slice_spacing_mm=geometry.slice_spacing_mm,
        unit=_unit(series),
    )
    return volume, out


_CHUNK = 32
"""Slices read by one task of :func:`load_series_volume`."""

_READ_THREADS = 2
"""Threads reading a series' pixel data. Measured on 2 cores (2026-11-29): in a fresh process
the page faults of the new volume are served on both cores (``immunopet suv`` of the bench
series 0.43 s with 1 thread, 0.35 s with 2); in a long-lived process (``bench_speed.py`` row 3
prints both) and in a study run's workers, 1 and 2 threads are within noise."""


_Rescale = tuple[float, float] | None | DicomInputError


class _Plan(NamedTuple):
    """What :func:`load_series_volume` knows of every slice before reading a pixel."""

    rescales: list[_Rescale]  # (slope, intercept), None for a Modality LUT, or the refusal
    plain: list[bool]  # read as a plain frame (:func:`read_plain`)
    frames: PlainFrames | None  # of slice 0, when plain


def _plan(series: DicomSeries) -> _Plan:
    """Each slice's rescale (a refusal is kept, raised when that slice is read) and reading.

    A slice is read as a plain frame when slice 0 is one and the slice stores the image pixel
    description, transfer syntax and pixel data element as slice 0 does.
    """
    headers = SliceHeaders.of(series.headers)
    files = series.files
    rescales: list[_Rescale] = []
    for k, file in enumerate(files):
        try:
            rescales.append(_rescale(headers, k, file, series.modality))
        except DicomInputError as exc:
            rescales.append(exc)
    plain = [False] * len(files)
    locations = series.pixel_locations
    first = locations[0] if locations else None
    frames = None
    if first is not None:
        syntax = entry_syntax(headers.entries[0])
        frames = plain_frames(headers.scratch(0), first, syntax)
    if frames is not None and first is not None:
        changed = headers.changed(PIXEL_DESCRIPTION_TAGS)
        alike = changed[1] if len(changed) > 1 else len(files)  # slices [0, alike) as slice 0
        for k in range(alike):
            location = locations[k]
            plain[k] = (
                location is not None
                and location.tag == first.tag
                and location.header_length == frames.header_length
                and location.value_length == frames.value_length
                and rescales[k] is not None  # a Modality LUT needs the dataset
                and entry_syntax(headers.entries[k]) == syntax
            )
    return _Plan(rescales, plain, frames)


def _read_slices(series: DicomSeries, plan: _Plan, indices: range, out: np.ndarray) -> None:
    """Read, check and rescale the slices ``indices`` of a series into ``out``."""
    reader = PixelReader()
    ny, nx = out.shape[1:]
    frames = plan.frames
    buffer = np.empty(frames.shape, dtype=frames.dtype) if frames is not None else None
    head = bytearray(frames.header_length if frames is not None else 0)
    for k in indices:
        file = series.files[k]
        location = series.pixel_locations[k] if series.pixel_locations else None
        stored: np.ndarray
        if (
            plan.plain[k]
            and frames is not None
            and buffer is not None
            and location is not None
            and read_plain(file, location, frames, head, buffer)
        ):
            stored = buffer
        else:  # anything else, or a file changed since discovery: PixelReader words it
            stored = reader.read(file, series.headers[k], location)
        if stored.shape != (ny, nx):
            raise DicomInputError(
                "pixel data has the wrong shape",
                file=file,
                tag="(7FE0,0010) PixelData",
                value=stored.shape,
                expected=f"({ny}, {nx}) from (0028,0010) Rows and (0028,0011) Columns",
            )
        rescale = plan.rescales[k]
        if isinstance(rescale, DicomInputError):
            raise rescale
        if rescale is None:
            out[k] = apply_modality_lut(stored, series.headers[k])
        else:
            slope, intercept = rescale
            np.multiply(stored, slope, out=out[k], casting="unsafe")
            if intercept:
                out[k] += intercept


def _require_modality(series: DicomSeries, modality: str) -> None:
    if series.modality != modality:
        raise DicomInputError(
            f"series {series.label} is not {modality}",
            file=series.folder,
            tag="(0008,0060) Modality",
            value=series.modality,
            expected=modality,
        )


def read_ct_series(series: DicomSeries, *, dtype: npt.DTypeLike = np.float32) -> ImageVolume:
    """Load a CT series in Hounsfield units on its own grid.

    Raises
    ------
    DicomInputError
        The series is not CT, or see :func:`load_series_volume`.
    """
    _require_modality(series, "CT")
    return load_series_volume(series, dtype=dtype)


def read_pet_series(series: DicomSeries, *, dtype: npt.DTypeLike = np.float32) -> ImageVolume:
    """Load a PET series in its stored unit ((0054,1001) Units), without the SUV factor.

    Raises
    ------
    DicomInputError
        The series is not PT, or see :func:`load_series_volume`.
    """
    _require_modality(series, "PT")
    return load_series_volume(series, dtype=dtype)


def find_one_series(
    path: str | Path, *, modality: Literal["PT", "CT"] = "PT", progress: bool = False
) -> DicomSeries:
    """The one series of ``modality`` under ``path``; an error listing the series otherwise.

    Raises
    ------
    DicomInputError
        No series, or several series, of that modality are found. The message lists every
        series found (modality, number, description, file count, folder, UID).
    """
    inventory = discover_dicom(path, progress=progress)
    matches = [s for s in inventory.series if s.modality == modality]
    if len(matches) == 1:
        return matches[0]
    found = "; ".join(s.summary() for s in inventory.series) or "no DICOM series"
    if inventory.skipped:
        found += f"; {len(inventory.skipped)} file(s) skipped"
    reason = f"no {modality} series" if not matches else f"{len(matches)} {modality} series"
    raise DicomInputError(
        f"{reason} found; this needs exactly one (point to its folder). Found: {found}",
        file=path,
        tag="(0008,0060) Modality",
        value=len(matches),
        expected=f"exactly one {modality} series",
    )


def find_one_pet(path: str | Path, *, progress: bool = False) -> DicomSeries:
    """The one PET series under ``path``; see :func:`find_one_series`."""
    return find_one_series(path, modality="PT", progress=progress)


def load_single_series(
    path: str | Path,
    *,
    modality: Literal["PT", "CT"] = "PT",
    dtype: npt.DTypeLike = np.float32,
) -> tuple[DicomSeries, ImageVolume]:
    """Find the one series of ``modality`` under ``path`` and load it.

    Returns
    -------
    (DicomSeries, ImageVolume)
        The series (headers for the SUV derivation) and its volume in stored units.
    """
    series = find_one_series(path, modality=modality)
    return series, load_series_volume(series, dtype=dtype)
