"""Write PET and CT series as DICOM files, in the flavours of three scanner vendors.

The writer exists for tests, benchmarks and the synthetic trial: it turns an
:class:`~immunopet.image.ImageVolume` into one file per slice that pydicom, nibabel-based
tools and dcm2niix read, with the headers the SUV derivation looks at. Output is
deterministic: the same inputs give byte-identical files (UIDs are derived from
:attr:`PetAcquisition.uid_seed`, no clock is read).

What every PET file holds
-------------------------
- File meta with Explicit VR Little Endian, SOP Class PET Image Storage, (0008,0060) Modality
  ``PT``, Study/Series/SOP/FrameOfReference UIDs, (0020,0013) InstanceNumber = slice index + 1.
- Geometry from the volume's affine: (0020,0032) ImagePositionPatient per slice, (0020,0037)
  ImageOrientationPatient, (0028,0030) PixelSpacing, (0018,0050) SliceThickness, (0020,1041)
  SliceLocation. Axis-aligned and oblique orientations are written alike.
- Pixel data int16 with a per-slice (0028,1053) RescaleSlope chosen from the slice's largest
  absolute value (that value maps to 32000), (0028,1052) RescaleIntercept 0. Reading back
  reproduces each value within half the slice's slope.
- Patient module from the acquisition: PatientName/ID, (0010,1030) PatientWeight kg,
  (0010,1020) PatientSize m, (0010,0040) PatientSex.
- Study/Series dates and times = scan start (SeriesTime may be delayed, see
  ``series_time_delay_s``); AcquisitionDate/Time and ContentDate/Time = the slice's own
  acquisition start.
- PET series and image modules: (0054,1001) Units, (0054,1102) DecayCorrection, (0028,0051)
  CorrectedImage (``DECY`` only when decay-corrected), (0054,1002) CountsSource ``EMISSION``,
  (0054,1000) SeriesType ``WHOLE BODY\\IMAGE``, (0018,1242) ActualFrameDuration ms,
  (0054,1300) FrameReferenceTime ms, (0054,1321) DecayFactor, (0054,0081) NumberOfSlices,
  (0054,1330) ImageIndex.
- (0054,0016) RadiopharmaceuticalInformationSequence with RadiopharmaceuticalStartDateTime
  (full date and time: days before the scan for 89Zr), RadiopharmaceuticalStartTime,
  RadionuclideTotalDose (Bq at injection), RadionuclideHalfLife (s) and a
  RadionuclideCodeSequence (SNOMED CT, CID 4020; code meaning like ``^89^Zirconium``).

Stored values by decay correction
---------------------------------
The input volume holds Bq/mL decay-corrected to ``scan_datetime``. With :math:`\\Delta t` the
time from injection to scan start, :math:`t_k` the acquisition start of slice ``k`` and
:math:`D` the frame duration, the file stores:

- ``START``: the values as given; DecayFactor :math:`2^{(t_k - t_\\mathrm{scan})/T}\\,c(D)`.
- ``ADMIN``: values :math:`\\times 2^{\\Delta t / T}` (decay-corrected to injection);
  DecayFactor :math:`2^{(t_k - t_\\mathrm{inj})/T}\\,c(D)`.
- ``NONE``: each slice as measured, i.e. the mean activity over its own frame
  :math:`[t_k, t_k + D]`: value :math:`\\times 2^{-(t_k - t_\\mathrm{scan})/T} / c(D)`;
  DecayFactor 1.

where :math:`c(D)` is :func:`~immunopet.suv.decay.frame_decay_correction`. Slice ``k`` is
acquired at :math:`t_k = t_\\mathrm{scan} + k \\cdot` ``slice_duration_s`` (all at scan start
when ``slice_duration_s`` is None), in every decay-correction mode.

Vendor flavours
---------------
``"siemens"``
    (0008,0070) Manufacturer ``SIEMENS``, Units ``BQML``; no private tags.
``"ge"``
    Manufacturer ``GE MEDICAL SYSTEMS``, Units ``BQML``; private creator ``GEMS_PETD_01`` at
    (0009,0010) and (0009,100D) holding the scan start as a DT string ``YYYYMMDDHHMMSS``.
    ``series_time_delay_s`` writes a SeriesTime later than the acquisition, as GE scanners
    do when a series is reconstructed later (the QIBA vendor branch).
``"philips"``
    Manufacturer ``Philips Medical Systems``, Units ``CNTS``: stored values (after rescale)
    are counts = Bq/mL / :data:`PHILIPS_BQML_PER_COUNT`. Private creator
    ``Philips PET Private Group`` at (7053,0010); (7053,1000) SUV Scale Factor (DS, stored
    value x factor = SUVbw decay-corrected to injection; written only when the weight is
    known) and (7053,1009) Activity Concentration Scale Factor (DS, stored value x factor =
    Bq/mL, i.e. :data:`PHILIPS_BQML_PER_COUNT`).

CT
--
:func:`write_ct_series` stores int16 HU + 1024 with (0028,1052) RescaleIntercept -1024 and
RescaleSlope 1 on the CT volume's own grid, sharing study and frame of reference with the PET.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io._dicom_encode import SeriesEncoder
from immunopet.suv.decay import frame_decay_correction
from immunopet.suv.nuclides import Nuclide, find_nuclide

__all__ = [
    "PHILIPS_BQML_PER_COUNT",
    "PetAcquisition",
    "write_ct_series",
    "write_pet_series",
]

Vendor = Literal["siemens", "ge", "philips"]
DecayCorrection = Literal["START", "ADMIN", "NONE"]

PHILIPS_BQML_PER_COUNT = 1.7
"""Bq/mL per stored Philips count: the (7053,1009) Activity Concentration Scale Factor."""

_STORED_MAX = 32000
"""The largest absolute value of a slice maps to this stored integer (int16 leaves margin)."""

_MANUFACTURERS: dict[str, tuple[str, str]] = {
    "siemens": ("SIEMENS", "Biograph Vision"),
    "ge": ("GE MEDICAL SYSTEMS", "Discovery MI"),
    "philips": ("Philips Medical Systems", "Vereos PET/CT"),
}

# SNOMED CT codes of DICOM CID 4020 "PET Radionuclide".
_NUCLIDE_CODES: dict[str, str] = {
    "11C": "40565003",
    "15O": "129504001",
    "18F": "77004003",
    "64Cu": "3932008",
    "68Ga": "35337001",
    "82Rb": "79197006",
    "89Zr": "63360001",
    "124I": "40937006",
}

_PIXEL_DATA = 0x7FE00010
_GE_CREATOR = "GEMS_PETD_01"
_PHILIPS_CREATOR = "Philips PET Private Group"


@dataclass(frozen=True)
class PetAcquisition:
    """What a scanner knows about one PET acquisition (and the patient) when it writes a series.

    Attributes
    ----------
    injection_datetime : datetime
        Injection date-time, scanner clock, timezone-naive.
    scan_datetime : datetime
        Start of the series (first acquisition), scanner clock.
    injected_activity_bq : float, Bq
        Activity at injection time.
    weight_kg : float or None, kg
        Patient weight; ``None`` leaves (0010,1030) PatientWeight out.
    height_m : float or None, m
        Patient height, (0010,1020) PatientSize.
    sex : {"M", "F", "O"} or None
    nuclide : str
        Resolved with :func:`~immunopet.suv.nuclides.find_nuclide` (``"89Zr"``, ``"Zr-89"`` ...).
    frame_duration_s : float, s
        Duration of each bed/slice acquisition, (0018,1242) ActualFrameDuration.
    patient_name, patient_id : str
        Written to the patient module only.
    study_uid, series_uid, frame_of_reference_uid : str or None
        Generated deterministically from ``uid_seed``, ``patient_id`` and ``scan_datetime``
        when ``None``.
    series_number : int
    series_description : str
    uid_seed : str
        Entropy source of every generated UID.

    Examples
    --------
    >>> acq = PetAcquisition(injection_datetime=datetime(2024, 3, 1, 9, 0),
    ...                      scan_datetime=datetime(2024, 3, 6, 9, 0),
    ...                      injected_activity_bq=37e6, weight_kg=70.0)
    >>> acq.uptake_time_h
    120.0
    """

    injection_datetime: datetime
    scan_datetime: datetime
    injected_activity_bq: float
    weight_kg: float | None
    height_m: float | None = None
    sex: Literal["M", "F", "O"] | None = None
    nuclide: str = "89Zr"
    frame_duration_s: float = 600.0
    patient_name: str = "SYNTHETIC^PATIENT"
    patient_id: str = "SYN-000"
    study_uid: str | None = None
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    series_number: int = 1
    series_description: str = "PET 89Zr"
    uid_seed: str = "immunopet"

    def __post_init__(self) -> None:
        if not self.injected_activity_bq > 0:
            raise InputError(
                "injected activity must be positive",
                tag="injected_activity_bq",
                value=self.injected_activity_bq,
                expected="> 0 Bq",
            )
        if self.weight_kg is not None and not self.weight_kg > 0:
            raise InputError(
                "weight must be positive", tag="weight_kg", value=self.weight_kg, expected="> 0 kg"
            )
        if self.height_m is not None and not self.height_m > 0:
            raise InputError(
                "height must be positive", tag="height_m", value=self.height_m, expected="> 0 m"
            )
        if not self.frame_duration_s > 0:
            raise InputError(
                "frame duration must be positive",
                tag="frame_duration_s",
                value=self.frame_duration_s,
                expected="> 0 s",
            )
        if self.scan_datetime < self.injection_datetime:
            raise InputError(
                "scan starts before the injection",
                tag="scan_datetime",
                value=self.scan_datetime.isoformat(),
                expected=f"at or after injection {self.injection_datetime.isoformat()}",
            )

    @property
    def uptake_time_h(self) -> float:
        """Hours from injection to scan start."""
        return (self.scan_datetime - self.injection_datetime).total_seconds() / 3600.0

    def _uid(self, *parts: str) -> str:
        entropy = [self.uid_seed, self.patient_id, self.scan_datetime.isoformat(), *parts]
        return str(generate_uid(entropy_srcs=entropy))

    @property
    def resolved_study_uid(self) -> str:
        """(0020,000D) StudyInstanceUID: given, or derived from the seed."""
        return self.study_uid or self._uid("study")

    @property
    def resolved_series_uid(self) -> str:
        """(0020,000E) SeriesInstanceUID of the PET series: given, or derived from the seed."""
        return self.series_uid or self._uid("series", "PT", str(self.series_number))

    @property
    def resolved_frame_of_reference_uid(self) -> str:
        """(0020,0052) FrameOfReferenceUID shared by the PET and CT: given, or derived."""
        return self.frame_of_reference_uid or self._uid("frame-of-reference")


# ---------------------------------------------------------------------------- value formatting
def _ds(value: float) -> str:
    """Format a float as a DICOM DS string (at most 16 characters)."""
    if not math.isfinite(value):
        raise InputError("value is not finite", tag="DS", value=value, expected="a finite number")
    text = format_number_as_ds(float(value))
    return "0" if text in ("-0", "-0.0") else text


def _da(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def _tm(moment: datetime) -> str:
    text = moment.strftime("%H%M%S")
    return text + (f".{moment.microsecond:06d}" if moment.microsecond else "")


def _dt(moment: datetime) -> str:
    return _da(moment) + _tm(moment)


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _StackGeometry:
    orientation: tuple[str, ...]
    pixel_spacing: tuple[str, str]
    slice_thickness: str
    positions: tuple[tuple[str, str, str], ...]
    slice_locations: tuple[str, ...]


def _stack_geometry(volume: ImageVolume) -> _StackGeometry:
    affine = volume.affine
    slice_step, row_step, column_step = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    dy = float(np.linalg.norm(row_step))
    dx = float(np.linalg.norm(column_step))
    row_cosine = column_step / dx  # DICOM "row direction": along a row, i.e. as column index grows
    column_cosine = row_step / dy
    if abs(float(row_cosine @ column_cosine)) > 1e-6:
        raise GeometryError(
            "in-plane axes are not orthogonal; DICOM cannot store a sheared slice",
            tag="affine",
            value=float(row_cosine @ column_cosine),
            expected="row and column directions at 90 degrees",
        )
    normal = np.cross(row_cosine, column_cosine)
    dz = float(slice_step @ normal)
    if np.linalg.norm(slice_step - dz * normal) > 1e-6 * max(1.0, abs(dz)):
        raise GeometryError(
            "slices are not stacked along the slice normal; DICOM slices would be sheared",
            tag="affine",
            value=slice_step.tolist(),
            expected=f"a multiple of the normal {normal.round(6).tolist()}",
        )
    origin = affine[:3, 3]
    positions = []
    locations = []
    for k in range(volume.shape[0]):
        position = origin + k * slice_step
        positions.append((_ds(position[0]), _ds(position[1]), _ds(position[2])))
        locations.append(_ds(float(position @ normal)))
    orientation = tuple(_ds(v) for v in (*row_cosine, *column_cosine))
    return _StackGeometry(
        orientation=orientation,
        pixel_spacing=(_ds(dy), _ds(dx)),
        slice_thickness=_ds(abs(dz)),
        positions=tuple(positions),
        slice_locations=tuple(locations),
    )


# ---------------------------------------------------------------------------- pixel data
def _quantise(values: np.ndarray) -> tuple[np.ndarray, str]:
    """int16 values and the DS slope such that ``stored * slope`` is within slope/2 of values."""
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0.0:
        return np.zeros(values.shape, dtype="<i2"), "1"
    slope_text = _ds(peak / _STORED_MAX)
    slope = float(slope_text)
    stored = np.rint(values / slope)
    return stored.astype("<i2"), slope_text


def _check_values(volume: ImageVolume, unit: Unit, what: str) -> None:
    if volume.unit != unit:
        raise InputError(
            f"{what} volume has the wrong unit",
            tag="volume.unit",
            value=str(volume.unit),
            expected=str(unit),
        )
    if not np.all(np.isfinite(volume.array)):
        raise InputError(
            f"{what} volume has non-finite values",
            tag="volume.array",
            value="NaN or inf",
            expected="finite values",
        )


# ---------------------------------------------------------------------------- common modules
def _new_header(sop_class_uid: str) -> Dataset:
    """A series' shared header: File Meta and SOP class (each slice adds its instance UID)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    return ds


def _add_patient_study(
    ds: Dataset, acquisition: PetAcquisition, manufacturer: str, model: str
) -> None:
    scan = acquisition.scan_datetime
    ds.StudyDate = _da(scan)
    ds.StudyTime = _tm(scan)
    ds.AccessionNumber = ""
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "immuno-PET (synthetic)"
    ds.PatientName = acquisition.patient_name
    ds.PatientID = acquisition.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = acquisition.sex or ""
    if acquisition.height_m is not None:
        ds.PatientSize = _ds(acquisition.height_m)
    if acquisition.weight_kg is not None:
        ds.PatientWeight = _ds(acquisition.weight_kg)
    ds.StudyInstanceUID = acquisition.resolved_study_uid
    ds.StudyID = "1"
    ds.FrameOfReferenceUID = acquisition.resolved_frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"


def _add_image_plane(ds: Dataset, geometry: _StackGeometry, shape: tuple[int, int, int]) -> None:
    """The image plane and pixel modules every slice of a series shares."""
    ds.ImageOrientationPatient = list(geometry.orientation)
    ds.PixelSpacing = list(geometry.pixel_spacing)
    ds.SliceThickness = geometry.slice_thickness
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = shape[1]
    ds.Columns = shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1


def _slice_elements(sop_uid: str, geometry: _StackGeometry, k: int, pixels: bytes) -> Dataset:
    """The elements of slice ``k`` that no other slice of its series shares."""
    ds = Dataset()
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = list(geometry.positions[k])
    ds.SliceLocation = geometry.slice_locations[k]
    ds.add(DataElement(_PIXEL_DATA, "OW", pixels))
    return ds


def _file_names(outdir: Path, prefix: str, n: int) -> list[Path]:
    width = max(4, len(str(n)))
    return [outdir / f"{prefix}_{k + 1:0{width}d}.dcm" for k in range(n)]


def _write_series(header: Dataset, slices: Iterator[Dataset], paths: Sequence[Path]) -> list[Path]:
    """Write one file per slice: ``header`` with each slice's own elements.

    The files are what ``Dataset.save_as(path, enforce_file_format=True)`` of each whole
    dataset writes (:class:`~immunopet.io._dicom_encode.SeriesEncoder` encodes the shared
    elements once and checks the first file against pydicom's encoding).
    """
    encoder = SeriesEncoder(header)
    for k, (elements, path) in enumerate(zip(slices, paths, strict=True)):
        data = encoder.encode_checked(elements) if k == 0 else encoder.encode(elements)
        path.write_bytes(data)
    return list(paths)


# ---------------------------------------------------------------------------- PET
def _slice_times(
    acquisition: PetAcquisition, n: int, slice_duration_s: float | None
) -> list[datetime]:
    if slice_duration_s is None:
        return [acquisition.scan_datetime] * n
    if not slice_duration_s >= 0:
        raise InputError(
            "slice duration must not be negative",
            tag="slice_duration_s",
            value=slice_duration_s,
            expected=">= 0 s",
        )
    step = timedelta(seconds=slice_duration_s)
    return [acquisition.scan_datetime + k * step for k in range(n)]


def _radiopharmaceutical(acquisition: PetAcquisition, nuclide: Nuclide) -> Dataset:
    item = Dataset()
    item.Radiopharmaceutical = (
        "Fluorodeoxyglucose" if nuclide.name == "18F" else f"{nuclide.name}-antibody"
    )
    item.RadiopharmaceuticalStartTime = _tm(acquisition.injection_datetime)
    item.RadiopharmaceuticalStartDateTime = _dt(acquisition.injection_datetime)
    item.RadionuclideTotalDose = _ds(acquisition.injected_activity_bq)
    item.RadionuclideHalfLife = _ds(nuclide.half_life_s)
    code = Dataset()
    code.CodeValue = _NUCLIDE_CODES.get(nuclide.name, nuclide.name)
    code.CodingSchemeDesignator = "SCT" if nuclide.name in _NUCLIDE_CODES else "99IMMUNOPET"
    mass = "".join(ch for ch in nuclide.name if ch.isdigit())
    code.CodeMeaning = f"^{mass}^{nuclide.element}"
    item.RadionuclideCodeSequence = [code]
    return item


def write_pet_series(
    volume: ImageVolume,
    outdir: str | Path,
    acquisition: PetAcquisition,
    *,
    vendor: Vendor = "siemens",
    decay_correction: DecayCorrection = "START",
    slice_duration_s: float | None = None,
    series_time_delay_s: float = 0.0,
) -> list[Path]:
    """Write a PET volume as one DICOM file per slice.

    Parameters
    ----------
    volume : ImageVolume
        Activity concentration in Bq/mL (unit ``BQML``) decay-corrected to
        ``acquisition.scan_datetime``, indexed ``[z, y, x]`` with its LPS affine.
    outdir : str or Path
        Folder to write into (created when missing). Files are named ``PT_0001.dcm`` ...
        in slice order.
    acquisition : PetAcquisition
        Injection, scan, patient and UID information.
    vendor : {"siemens", "ge", "philips"}
        Header flavour; see the module docstring.
    decay_correction : {"START", "ADMIN", "NONE"}
        (0054,1102) DecayCorrection of the stored values; see the module docstring.
    slice_duration_s : float or None, s
        Time between the acquisition starts of consecutive slices (one bed per slice);
        ``None`` gives every slice the scan start as AcquisitionTime.
    series_time_delay_s : float, s
        SeriesTime is written this long after the scan start (GE scanners write the time of
        reconstruction); StudyTime and the first AcquisitionTime stay at the scan start.

    Returns
    -------
    list of Path
        The files written, in slice (array index) order.

    Raises
    ------
    InputError
        The volume is not in Bq/mL or holds non-finite values; a time is negative.
    GeometryError
        The affine cannot be stored as DICOM slices (sheared or non-orthogonal axes).
    """
    if vendor not in _MANUFACTURERS:
        raise InputError(
            "unknown vendor flavour", tag="vendor", value=vendor, expected="siemens, ge or philips"
        )
    if decay_correction not in ("START", "ADMIN", "NONE"):
        raise InputError(
            "unknown decay correction",
            tag="(0054,1102) DecayCorrection",
            value=decay_correction,
            expected="START, ADMIN or NONE",
        )
    _check_values(volume, Unit.BQML, "PET")
    nuclide = find_nuclide(acquisition.nuclide)
    half_life_s = nuclide.half_life_s
    geometry = _stack_geometry(volume)
    nz = volume.shape[0]
    times = _slice_times(acquisition, nz, slice_duration_s)
    scan = acquisition.scan_datetime
    injection = acquisition.injection_datetime
    uptake_s = (scan - injection).total_seconds()
    duration_s = acquisition.frame_duration_s
    frame_correction = frame_decay_correction(duration_s, half_life_s)
    decay_constant = math.log(2.0) / half_life_s
    # time within a frame at which the activity equals the frame mean
    effective_s = math.log(frame_correction) / decay_constant

    manufacturer, model = _MANUFACTURERS[vendor]
    units = "CNTS" if vendor == "philips" else "BQML"
    counts_per_stored_bqml = 1.0 / PHILIPS_BQML_PER_COUNT if vendor == "philips" else 1.0
    series_uid = acquisition.resolved_series_uid
    series_time = scan + timedelta(seconds=series_time_delay_s)
    corrected = ["ATTN", "DECY", "SCAT", "DTIM", "RAN", "NORM"]
    if decay_correction == "NONE":
        corrected.remove("DECY")

    header = _new_header(PositronEmissionTomographyImageStorage)
    ds = header
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SeriesDate = _da(series_time)
    ds.SeriesTime = _tm(series_time)
    ds.Modality = "PT"
    _add_patient_study(ds, acquisition, manufacturer, model)
    ds.ActualFrameDuration = round(duration_s * 1000.0)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = acquisition.series_number
    ds.SeriesDescription = acquisition.series_description
    _add_image_plane(ds, geometry, volume.shape)
    ds.CorrectedImage = corrected
    ds.RescaleIntercept = "0"
    ds.LossyImageCompression = "00"
    ds.RadiopharmaceuticalInformationSequence = [_radiopharmaceutical(acquisition, nuclide)]
    ds.NumberOfSlices = nz
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.Units = units
    ds.CountsSource = "EMISSION"
    ds.DecayCorrection = decay_correction
    ds.ReconstructionMethod = "OSEM"
    data = np.asarray(volume.array, dtype=np.float64)

    def slices() -> Iterator[Dataset]:
        for k in range(nz):
            since_scan_s = (times[k] - scan).total_seconds()
            if decay_correction == "START":
                multiplier = 1.0
                decay_factor = 2.0 ** (since_scan_s / half_life_s) * frame_correction
            elif decay_correction == "ADMIN":
                multiplier = 2.0 ** (uptake_s / half_life_s)
                decay_factor = 2.0 ** ((uptake_s + since_scan_s) / half_life_s) * frame_correction
            else:
                multiplier = 2.0 ** (-since_scan_s / half_life_s) / frame_correction
                decay_factor = 1.0
            stored, slope = _quantise(data[k] * multiplier * counts_per_stored_bqml)
            sop_uid = str(generate_uid(entropy_srcs=[series_uid, "instance", str(k)]))
            ds = _slice_elements(sop_uid, geometry, k, stored.tobytes())
            ds.AcquisitionDate = _da(times[k])
            ds.AcquisitionTime = _tm(times[k])
            ds.ContentDate = _da(times[k])
            ds.ContentTime = _tm(times[k])
            ds.RescaleSlope = slope
            ds.FrameReferenceTime = _ds((since_scan_s + effective_s) * 1000.0)
            ds.DecayFactor = _ds(decay_factor)
            ds.ImageIndex = k + 1
            _add_vendor_block(ds, acquisition, vendor, decay_correction, multiplier, uptake_s)
            yield ds

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return _write_series(header, slices(), _file_names(outdir, "PT", nz))


def _add_vendor_block(
    ds: Dataset,
    acquisition: PetAcquisition,
    vendor: Vendor,
    decay_correction: DecayCorrection,
    multiplier: float,
    uptake_s: float,
) -> None:
    """The vendor's private elements of one slice (see the module docstring)."""
    half_life_s = find_nuclide(acquisition.nuclide).half_life_s
    if vendor == "ge":
        block = ds.private_block(0x0009, _GE_CREATOR, create=True)
        block.add_new(0x0D, "DT", acquisition.scan_datetime.strftime("%Y%m%d%H%M%S"))
    elif vendor == "philips":
        block = ds.private_block(0x7053, _PHILIPS_CREATOR, create=True)
        if acquisition.weight_kg is not None:
            # stored counts x factor = SUVbw (Bq/mL at injection x g / Bq). Without decay
            # correction (NONE) the factor is one per series, referring to the scan start;
            # each slice's own decay is left to the reader (as for BQML).
            to_injection = 2.0 ** (uptake_s / half_life_s)
            if decay_correction != "NONE":
                to_injection /= multiplier
            suv_factor = (
                PHILIPS_BQML_PER_COUNT
                * to_injection
                * acquisition.weight_kg
                * 1000.0
                / acquisition.injected_activity_bq
            )
            block.add_new(0x00, "DS", _ds(suv_factor))
        block.add_new(0x09, "DS", _ds(PHILIPS_BQML_PER_COUNT))


# ---------------------------------------------------------------------------- CT
_HU_OFFSET = 1024


def write_ct_series(
    volume: ImageVolume,
    outdir: str | Path,
    acquisition: PetAcquisition,
    *,
    series_number: int = 2,
    series_description: str = "CT low dose",
) -> list[Path]:
    """Write a CT volume (HU) as one DICOM file per slice on its own grid.

    Stored values are ``round(HU) + 1024`` as int16 with (0028,1052) RescaleIntercept -1024
    and (0028,1053) RescaleSlope 1, so reading back gives the HU rounded to integers.

    Parameters
    ----------
    volume : ImageVolume
        Hounsfield units (unit ``HU``), indexed ``[z, y, x]`` with its LPS affine.
    outdir : str or Path
        Folder to write into (created when missing); files ``CT_0001.dcm`` ...
    acquisition : PetAcquisition
        Supplies the patient, study, frame of reference and scan date-time (the CT is
        dated at the PET scan start).
    series_number : int
    series_description : str

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    InputError
        The volume is not in HU, holds non-finite values or values outside int16 after the
        offset.
    GeometryError
        The affine cannot be stored as DICOM slices.
    """
    _check_values(volume, Unit.HU, "CT")
    hu = np.rint(np.asarray(volume.array, dtype=np.float64))
    low, high = float(hu.min()), float(hu.max())
    if low + _HU_OFFSET < -32768 or high + _HU_OFFSET > 32767:
        raise InputError(
            "CT values do not fit int16 after the 1024 offset",
            tag="volume.array",
            value=(low, high),
            expected=f"HU within [{-32768 - _HU_OFFSET}, {32767 - _HU_OFFSET}]",
        )
    stored = (hu + _HU_OFFSET).astype("<i2")
    geometry = _stack_geometry(volume)
    nz = volume.shape[0]
    scan = acquisition.scan_datetime
    series_uid = acquisition._uid("series", "CT", str(series_number))
    manufacturer, model = _MANUFACTURERS["siemens"]
    header = _new_header(CTImageStorage)
    ds = header
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SeriesDate = _da(scan)
    ds.SeriesTime = _tm(scan)
    ds.AcquisitionDate = _da(scan)
    ds.AcquisitionTime = _tm(scan)
    ds.ContentDate = _da(scan)
    ds.ContentTime = _tm(scan)
    ds.Modality = "CT"
    _add_patient_study(ds, acquisition, manufacturer, model)
    ds.KVP = "120"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    _add_image_plane(ds, geometry, volume.shape)
    ds.RescaleIntercept = str(-_HU_OFFSET)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"

    def slices() -> Iterator[Dataset]:
        for k in range(nz):
            sop_uid = str(generate_uid(entropy_srcs=[series_uid, "instance", str(k)]))
            yield _slice_elements(sop_uid, geometry, k, stored[k].tobytes())

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return _write_series(header, slices(), _file_names(outdir, "CT", nz))
