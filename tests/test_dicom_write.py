"""Writing PET/CT DICOM series: headers, vendor flavours, decay-correction modes, determinism.

Expected header values are written out by hand from the acquisition of
:func:`dicom_factory.make_acquisition`: 37 MBq of 89Zr (T = 78.41 h = 282276 s) injected on
2024-03-01 09:30:00, scan 120 h later on 2024-03-06 09:30:00, 70 kg, 1.75 m. Pixel values are
checked by reading the files back with bare pydicom or with nibabel's DICOM wrapper (an
independent reader), within half of each slice's rescale slope.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
import pytest

from dicom_factory import (
    make_acquisition,
    make_ct_volume,
    make_pet_series,
    make_pet_volume,
    oblique_orientation,
)
from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series

with warnings.catch_warnings():  # nibabel warns that its DICOM readers are experimental
    warnings.simplefilter("ignore")
    from nibabel.nicom import dicomwrappers

# 2^(-120 / 78.41) = exp(-1.530417 * 0.693147) = 0.346177: decay over the 120 h uptake
DECAY_120H = 0.3461773


def _read(folder: Path) -> list[pydicom.Dataset]:
    """Every file of a folder, ordered by InstanceNumber."""
    datasets = [pydicom.dcmread(p) for p in folder.iterdir()]
    return sorted(datasets, key=lambda ds: int(ds.InstanceNumber))


def _values(ds: pydicom.Dataset) -> np.ndarray:
    """Stored integers x RescaleSlope + RescaleIntercept (bare pydicom)."""
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


# ---------------------------------------------------------------------------- headers
def test_siemens_pet_header(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    files = sorted(folder.iterdir())
    assert [p.name for p in files] == [f"PT_{k:04d}.dcm" for k in range(1, 9)]
    assert files[0].read_bytes()[128:132] == b"DICM"
    datasets = _read(folder)
    ds = datasets[0]
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.128"  # PET Image Storage
    assert ds.Modality == "PT" and ds.Manufacturer == "SIEMENS"
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    assert list(ds.CorrectedImage)[:2] == ["ATTN", "DECY"]
    assert ds.CountsSource == "EMISSION" and list(ds.SeriesType) == ["WHOLE BODY", "IMAGE"]
    assert float(ds.PatientWeight) == 70.0 and float(ds.PatientSize) == 1.75
    assert ds.PatientSex == "M"
    assert (ds.StudyDate, ds.StudyTime) == ("20240306", "093000")
    assert (ds.SeriesDate, ds.SeriesTime) == ("20240306", "093000")
    assert (ds.AcquisitionDate, ds.AcquisitionTime) == ("20240306", "093000")
    assert int(ds.ActualFrameDuration) == 600_000  # 600 s in ms
    assert (ds.Rows, ds.Columns, ds.BitsAllocated) == (16, 16, 16)
    assert float(ds.RescaleIntercept) == 0.0
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    assert drug.RadiopharmaceuticalStartDateTime == "20240301093000"  # five days earlier
    assert drug.RadiopharmaceuticalStartTime == "093000"
    assert float(drug.RadionuclideTotalDose) == 37e6
    assert float(drug.RadionuclideHalfLife) == 282276.0  # 78.41 h x 3600 s/h
    assert drug.RadionuclideCodeSequence[0].CodeMeaning == "^89^Zirconium"
    assert drug.RadionuclideCodeSequence[0].CodeValue == "63360001"  # SNOMED CT, CID 4020
    # UIDs shared within the series, one SOP instance per file
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == 8
    assert all(d.SOPInstanceUID == d.file_meta.MediaStorageSOPInstanceUID for d in datasets)


def test_ge_private_scan_datetime_and_late_series_time(tmp_path: Path) -> None:
    acquisition = make_acquisition()
    write_pet_series(
        make_pet_volume(), tmp_path, acquisition, vendor="ge", series_time_delay_s=1800.0
    )
    ds = _read(tmp_path)[0]
    assert ds.Manufacturer == "GE MEDICAL SYSTEMS" and ds.Units == "BQML"
    assert ds[0x0009, 0x0010].value == "GEMS_PETD_01"
    assert ds[0x0009, 0x100D].value == "20240306093000"  # scan start as DT
    assert ds.SeriesTime == "100000"  # reconstructed 30 min after the 09:30 acquisition
    assert ds.AcquisitionTime == "093000"


def test_philips_private_scale_factors(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path, vendor="philips")
    datasets = _read(folder)
    original = make_pet_volume().array
    # SUVbw per Bq/mL at scan start = 70000 g / (37e6 Bq x 2^(-120/78.41)) = 0.00546510;
    # Philips counts are Bq/mL / 1.7, so the factor per count is 1.7 x 0.00546510 = 0.00929066
    suv_per_bqml = 70000.0 / (37e6 * 2.0 ** (-120.0 / 78.41))
    assert suv_per_bqml == pytest.approx(70000.0 / (37e6 * DECAY_120H), rel=1e-6)
    assert suv_per_bqml == pytest.approx(0.00546510, rel=1e-5)
    for k, ds in enumerate(datasets):
        assert ds.Manufacturer == "Philips Medical Systems" and ds.Units == "CNTS"
        assert ds[0x7053, 0x0010].value == "Philips PET Private Group"
        suv_factor = float(ds[0x7053, 0x1000].value)
        bqml_factor = float(ds[0x7053, 0x1009].value)
        assert bqml_factor == 1.7
        assert suv_factor == pytest.approx(0.00929066, rel=1e-5)
        counts = _values(ds)
        slope = float(ds.RescaleSlope)
        # counts x 1.7 = Bq/mL; counts x SUV factor = SUVbw
        assert np.abs(counts * bqml_factor - original[k]).max() <= 1.7 * slope / 2 + 1e-9
        suv = original[k] * suv_per_bqml
        assert np.abs(counts * suv_factor - suv).max() <= suv_factor * slope / 2 + 1e-9
        assert not np.allclose(counts, original[k], rtol=0.1)  # counts differ from Bq/mL


def test_philips_without_weight_has_no_suv_factor(tmp_path: Path) -> None:
    folder = make_pet_series(
        tmp_path, vendor="philips", acquisition=make_acquisition(weight_kg=None)
    )
    ds = _read(folder)[0]
    assert (0x7053, 0x1000) not in ds and (0x7053, 0x1009) in ds
    assert "PatientWeight" not in ds


def test_oblique_geometry_in_headers(tmp_path: Path) -> None:
    orientation = oblique_orientation(30.0, 20.0)
    volume = make_pet_volume(orientation=orientation)
    folder = make_pet_series(tmp_path, volume=volume)
    normal = np.cross(orientation[:3], orientation[3:])
    for k, ds in enumerate(_read(folder)):
        assert np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation, atol=1e-12)
        # slice k sits k x 4 mm along the normal from the first slice's corner
        expected = np.array([-20.0, -24.0, -16.0]) + 4.0 * k * normal
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], expected, atol=1e-9)
        assert [float(v) for v in ds.PixelSpacing] == [3.0, 2.5]
        assert float(ds.SliceThickness) == 4.0


def test_nibabel_reads_values_and_positions(tmp_path: Path) -> None:
    orientation = oblique_orientation(-15.0, 10.0)
    volume = make_pet_volume(orientation=orientation)
    folder = make_pet_series(tmp_path, volume=volume)
    for k in range(8):
        wrapper = dicomwrappers.wrapper_from_file(str(folder / f"PT_{k + 1:04d}.dcm"))
        slope = float(wrapper.dcm_data.RescaleSlope)
        assert np.abs(wrapper.get_data() - volume.array[k]).max() <= slope / 2 * (1 + 1e-9)
        # nibabel's affine maps (row, column, slice) indices to LPS
        for j, i in ((0, 0), (5, 9), (15, 15)):
            lps = (wrapper.affine @ [j, i, 0, 1])[:3]
            assert np.allclose(lps, volume.voxel_to_lps([[k, j, i]])[0], atol=1e-6)


# ---------------------------------------------------------------------------- stored values
def test_slopes_follow_each_slice_maximum(tmp_path: Path) -> None:
    volume = make_pet_volume()
    folder = make_pet_series(tmp_path, volume=volume)
    slopes = [float(ds.RescaleSlope) for ds in _read(folder)]
    assert len(set(slopes)) == 8
    for k, slope in enumerate(slopes):
        # the slice maximum maps to 32000 (documented rule), so slope = max / 32000
        assert slope == pytest.approx(np.abs(volume.array[k]).max() / 32000, rel=1e-9)


def test_admin_decay_correction_scales_to_injection(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path, decay_correction="ADMIN")
    original = make_pet_volume().array
    for k, ds in enumerate(_read(folder)):
        assert ds.DecayCorrection == "ADMIN"
        # 1 / 2^(-120/78.41) = 1 / 0.34617728 = 2.8886933
        expected = original[k] * 2.8886933
        tolerance = float(ds.RescaleSlope) / 2 + 1e-7 * np.abs(expected)
        assert np.all(np.abs(_values(ds) - expected) <= tolerance)


def test_no_decay_correction_stores_each_frame_as_measured(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path, decay_correction="NONE", slice_duration_s=180.0)
    original = make_pet_volume().array
    lam = math.log(2.0) / 282276.0
    # mean over a 600 s frame relative to its start: (1 - e^(-lam D)) / (lam D) = 0.9992637
    frame_mean = -math.expm1(-lam * 600.0) / (lam * 600.0)
    assert frame_mean == pytest.approx(0.9992637, abs=1e-7)
    for k, ds in enumerate(_read(folder)):
        assert ds.DecayCorrection == "NONE"
        assert "DECY" not in list(ds.CorrectedImage)
        assert float(ds.DecayFactor) == 1.0
        minutes = 3 * k  # 180 s per slice from 09:30:00
        assert ds.AcquisitionTime == f"09{30 + minutes:02d}00"
        assert ds.SeriesTime == "093000"
        expected = original[k] * 2.0 ** (-180.0 * k / 282276.0) * frame_mean
        assert np.abs(_values(ds) - expected).max() <= float(ds.RescaleSlope) / 2 + 1e-9
    # slice 1: 2^(-180/282276) x 0.9992637 = 0.9995581 x 0.9992637 = 0.9988221
    ds1 = _read(folder)[1]
    assert np.abs(_values(ds1) - original[1] * 0.9988221).max() <= float(ds1.RescaleSlope)


def test_ct_written_in_hu(tmp_path: Path) -> None:
    volume = make_ct_volume()
    paths = write_ct_series(volume, tmp_path, make_acquisition())
    assert len(paths) == 12
    ds = pydicom.dcmread(paths[3])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert ds.Modality == "CT" and ds.RescaleType == "HU"
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    np.testing.assert_array_equal(_values(ds), volume.array[3])
    assert [float(v) for v in ds.PixelSpacing] == [2.0, 2.0]


# ---------------------------------------------------------------------------- determinism
def test_same_inputs_give_identical_files(tmp_path: Path) -> None:
    first = make_pet_series(tmp_path, subdir="a", vendor="ge")
    second = make_pet_series(tmp_path, subdir="b", vendor="ge")
    for name in (p.name for p in first.iterdir()):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    other = make_pet_series(
        tmp_path, subdir="c", acquisition=make_acquisition(uid_seed="another seed")
    )
    assert pydicom.dcmread(other / "PT_0001.dcm").StudyInstanceUID != (
        pydicom.dcmread(first / "PT_0001.dcm").StudyInstanceUID
    )


@pytest.mark.parametrize("vendor", ["siemens", "ge", "philips"])
@pytest.mark.parametrize("decay_correction", ["START", "ADMIN", "NONE"])
def test_every_file_is_pydicoms_encoding_of_the_whole_dataset(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vendor: Literal["siemens", "ge", "philips"],
    decay_correction: Literal["START", "ADMIN", "NONE"],
) -> None:
    """The series encoder writes the shared header once; every file must still be what
    ``Dataset.save_as(enforce_file_format=True)`` of its whole dataset writes (checked for
    every slice here; the writer itself checks the first slice of each series)."""
    from immunopet.io import _dicom_encode

    original = _dicom_encode.SeriesEncoder.encode
    checked: list[int] = []

    def encode(self: _dicom_encode.SeriesEncoder, elements: pydicom.Dataset) -> bytes:
        fast = original(self, elements)
        whole = _dicom_encode.full_dataset(self._header, elements)
        buffer = pydicom.filebase.DicomBytesIO()
        whole.save_as(buffer, enforce_file_format=True)
        assert buffer.getvalue() == fast, f"slice {elements.InstanceNumber}"
        checked.append(1)
        return fast

    monkeypatch.setattr(_dicom_encode.SeriesEncoder, "encode", encode)
    for weight in (70.0, None):
        folder = make_pet_series(
            tmp_path,
            subdir=f"pet-{weight}",
            acquisition=make_acquisition(weight_kg=weight),
            vendor=vendor,
            decay_correction=decay_correction,
            slice_duration_s=90.5,
        )
        assert len(list(folder.iterdir())) == 8
    write_ct_series(make_ct_volume(), tmp_path / "ct", make_acquisition())
    assert len(checked) == 2 * 8 + 12  # every slice: 2 PET series of 8, a CT of 12
    for path in [*folder.iterdir(), *(tmp_path / "ct").iterdir()]:  # read and saved again
        buffer = pydicom.filebase.DicomBytesIO()
        pydicom.dcmread(path).save_as(buffer, enforce_file_format=True)
        assert buffer.getvalue() == path.read_bytes(), path.name


def test_series_encoder_detects_a_difference() -> None:
    from pydicom.dataset import Dataset, FileMetaDataset

    from immunopet.io._dicom_encode import SeriesEncoder

    header = Dataset()
    header.file_meta = FileMetaDataset()
    header.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    header.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    header.SpecificCharacterSet = "ISO_IR 100"
    header.PatientName = "A^B"
    encoder = SeriesEncoder(header)
    slice_elements = Dataset()
    slice_elements.SOPInstanceUID = "1.2.3"
    slice_elements.InstanceNumber = 4
    assert encoder.encode_checked(slice_elements)[128:132] == b"DICM"
    encoder._chunks[next(iter(encoder._chunks))] += b"\x00"  # a corrupted chunk
    with pytest.raises(RuntimeError, match="differs from pydicom"):
        encoder.encode_checked(slice_elements)


# ---------------------------------------------------------------------------- errors
def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    acquisition = make_acquisition()
    volume = make_pet_volume()
    with pytest.raises(InputError, match=r"volume\.unit.*found 'HU'; expected BQML"):
        write_pet_series(volume.with_array(volume.array, unit=Unit.HU), tmp_path, acquisition)
    with pytest.raises(InputError, match="non-finite"):
        bad = volume.array.copy()
        bad[0, 0, 0] = np.nan
        write_pet_series(volume.with_array(bad), tmp_path, acquisition)
    sheared = volume.affine.copy()
    sheared[0, 0] = 1.0  # slice step gains an x component
    with pytest.raises(GeometryError, match="not stacked along the slice normal"):
        write_pet_series(ImageVolume(volume.array, sheared, Unit.BQML), tmp_path, acquisition)
    with pytest.raises(InputError, match="scan starts before the injection"):
        PetAcquisition(
            injection_datetime=acquisition.scan_datetime,
            scan_datetime=acquisition.injection_datetime,
            injected_activity_bq=37e6,
            weight_kg=70.0,
        )
    with pytest.raises(InputError, match="unknown radionuclide"):
        write_pet_series(volume, tmp_path, make_acquisition(nuclide="99Tc"))
    assert list(tmp_path.iterdir()) == []  # nothing written on error
