"""Reading DICOM series: discovery, stacking, geometry errors, rescale, units.

Reference values come from the written input volume, from bare pydicom / the DICOM
standard's pixel-position formula (PS3.3 C.7.6.2.1.1), or are positions worked out by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
import pytest

from dicom_factory import (
    make_acquisition,
    make_ct_series,
    make_ct_volume,
    make_pet_series,
    make_pet_volume,
    oblique_orientation,
)
from immunopet.errors import DicomInputError, GeometryError
from immunopet.image import Unit
from immunopet.io.dicom import (
    DicomSeries,
    discover_dicom,
    find_one_pet,
    load_series_volume,
    load_single_series,
    read_ct_series,
    read_pet_series,
    series_geometry,
)


def _slopes(folder: Path) -> dict[int, float]:
    """RescaleSlope by InstanceNumber, read with bare pydicom."""
    out = {}
    for path in folder.iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        out[int(ds.InstanceNumber)] = float(ds.RescaleSlope)
    return out


def _dicom_pixel_position(ds: pydicom.Dataset, row: int, column: int) -> np.ndarray:
    """LPS position of pixel (row, column) by the DICOM standard's formula (PS3.3 C.7.6.2.1.1)."""
    position = np.array([float(v) for v in ds.ImagePositionPatient])
    cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    # P = S + X * dx * i + Y * dy * j with X the row cosines, i the column index
    return position + cosines[:3] * column_spacing * column + cosines[3:] * row_spacing * row


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "orientation",
    [(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), oblique_orientation(30.0, 20.0)],
    ids=["axial", "oblique"],
)
def test_round_trip_values_and_positions(tmp_path: Path, orientation: tuple[float, ...]) -> None:
    original = make_pet_volume(orientation=orientation)
    folder = make_pet_series(tmp_path, volume=original)

    inventory = discover_dicom(folder)
    assert len(inventory.series) == 1 and inventory.skipped == ()
    series = inventory.pet[0]
    volume = load_series_volume(series)

    assert volume.unit is Unit.BQML
    assert volume.shape == (8, 16, 16)
    # values: within half of each slice's own slope (the int16 quantisation step)
    slopes = _slopes(folder)
    for k in range(8):
        error = np.abs(volume.array[k].astype(np.float64) - original.array[k])
        assert error.max() <= slopes[k + 1] / 2 * (1 + 1e-6)
    # positions: every slice's corner and a far pixel, against the DICOM formula on the files
    for k, header in enumerate(series.headers):
        for row, column in ((0, 0), (15, 0), (3, 11), (15, 15)):
            expected = _dicom_pixel_position(header, row, column)
            assert np.abs(volume.voxel_to_lps([[k, row, column]])[0] - expected).max() < 1e-4
    # and the whole grid against the input grid
    assert np.abs(volume.affine - original.affine).max() < 1e-4


def test_shuffled_file_order_and_names_give_the_same_volume(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    reference = load_series_volume(discover_dicom(folder).pet[0])

    shuffled = tmp_path / "export"
    rng = np.random.default_rng(7)
    files = sorted(folder.iterdir())
    for n, index in enumerate(rng.permutation(len(files))):
        # no extension, nested folders, names unrelated to slice order
        target = shuffled / f"sub{n % 3}" / f"IM{rng.integers(10**6):07d}_{n}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(files[index], target)

    volume = load_series_volume(discover_dicom(shuffled).pet[0])
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-9)


def test_per_slice_slopes_differ_and_are_applied(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    slopes = _slopes(folder)
    assert len(set(slopes.values())) == 8  # slice maxima differ, so do slopes

    volume = load_series_volume(discover_dicom(folder).pet[0])
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        k = int(ds.InstanceNumber) - 1
        # bare pydicom: stored integers x this file's slope (intercept 0)
        expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)
        np.testing.assert_allclose(volume.array[k], expected, rtol=1e-6)


def test_float64_output(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    volume = load_series_volume(discover_dicom(folder).pet[0], dtype=np.float64)
    assert volume.array.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be floating"):
        load_series_volume(discover_dicom(folder).pet[0], dtype=np.int16)


def test_single_slice_series_takes_spacing_from_slice_thickness(tmp_path: Path) -> None:
    original = make_pet_volume(shape=(1, 16, 16), spacing_mm=(5.0, 3.0, 2.5))
    folder = make_pet_series(tmp_path, volume=original)
    series = discover_dicom(folder).pet[0]
    geometry = series_geometry(series)
    assert geometry.slice_spacing_mm == 5.0
    assert geometry.slice_spacing_source == "(0018,0050) SliceThickness"
    assert load_series_volume(series).spacing_mm == pytest.approx((5.0, 3.0, 2.5))


def test_file_without_preamble_is_read(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    path = folder / "PT_0004.dcm"
    path.write_bytes(path.read_bytes()[132:])  # drop the 128-byte preamble and b"DICM"
    inventory = discover_dicom(folder)
    assert inventory.skipped == ()
    volume = load_series_volume(inventory.pet[0])
    reference = make_pet_volume()
    assert np.abs(volume.array[3] - reference.array[3]).max() <= _slopes(folder)[4] / 2 + 1e-6


# ---------------------------------------------------------------------------- discovery
def test_non_dicom_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    (folder / "notes.txt").write_text("exported from PACS\n")
    (folder / "thumb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "empty").write_bytes(b"")

    inventory = discover_dicom(tmp_path)
    assert len(inventory.pet) == 1 and len(inventory.pet[0].files) == 8
    reasons = {path.name: reason for path, reason in inventory.skipped}
    assert set(reasons) == {"notes.txt", "thumb.png", "empty"}
    assert all("DICOM" in reason for reason in reasons.values())


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_pet_series(tmp_path)
    discover_dicom(folder, progress=True)
    assert "8/8" in capsys.readouterr().err


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DicomInputError, match="no such file or folder"):
        discover_dicom(tmp_path / "nowhere")


def test_duplicate_instance_is_skipped(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    shutil.copy(folder / "PT_0002.dcm", folder / "copy_of_2.dcm")
    inventory = discover_dicom(folder)
    assert len(inventory.pet[0].files) == 8
    assert len(inventory.skipped) == 1
    assert "duplicate of" in inventory.skipped[0].reason


def test_truncated_file_is_reported_and_loading_fails(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    path = folder / "PT_0005.dcm"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    inventory = discover_dicom(folder)
    assert [p.name for p, _ in inventory.skipped] == ["PT_0005.dcm"]
    assert "truncated" in inventory.skipped[0].reason
    series = inventory.pet[0]
    assert len(series.files) == 7 and [d.path.name for d in series.damaged] == ["PT_0005.dcm"]
    with pytest.raises(DicomInputError, match=r"PT_0005\.dcm.*truncated"):
        load_series_volume(series)


def test_file_cut_inside_its_header_is_skipped(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    path = folder / "PT_0002.dcm"
    path.write_bytes(path.read_bytes()[:400])
    inventory = discover_dicom(folder)
    assert [p.name for p, _ in inventory.skipped] == ["PT_0002.dcm"]
    assert len(inventory.pet[0].files) == 7


def test_missing_pixel_data_is_reported(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    path = folder / "PT_0003.dcm"
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    inventory = discover_dicom(folder)
    assert "no (7FE0,0010) PixelData" in inventory.skipped[0].reason
    with pytest.raises(DicomInputError, match="PixelData"):
        load_series_volume(inventory.pet[0])


def test_mixed_series_in_one_folder(tmp_path: Path) -> None:
    first = make_acquisition(series_number=1, series_description="PET 72h recon A")
    second = make_acquisition(series_number=5, series_description="PET 72h recon B")
    make_pet_series(tmp_path, acquisition=first, subdir="mixed")
    make_pet_series(tmp_path, acquisition=second, subdir="mixed/second")
    make_ct_series(tmp_path, subdir="mixed/ct")

    inventory = discover_dicom(tmp_path / "mixed")
    assert [s.modality for s in inventory.series] == ["PT", "CT", "PT"]  # by series number
    assert len(inventory.pet) == 2 and len(inventory.ct) == 1
    assert {len(s.files) for s in inventory.pet} == {8}

    with pytest.raises(DicomInputError, match="2 PT series found") as info:
        find_one_pet(tmp_path / "mixed")
    message = str(info.value)
    assert "PET 72h recon A" in message and "PET 72h recon B" in message
    assert first.resolved_series_uid in message and second.resolved_series_uid in message
    assert "CT series 2" in message
    assert "SYNTHETIC" not in message and "SYN-000" not in message  # no patient data

    # one PET series (and a CT) below a folder: found and loaded
    series, volume = load_single_series(tmp_path / "mixed" / "second")
    assert series.description == "PET 72h recon B" and volume.shape == (8, 16, 16)
    with pytest.raises(DicomInputError, match="no PT series found"):
        find_one_pet(tmp_path / "mixed" / "ct")


def test_repr_shows_no_patient_data(tmp_path: Path) -> None:
    inventory = discover_dicom(make_pet_series(tmp_path))
    text = repr(inventory) + repr(inventory.pet[0]) + inventory.summary()
    assert "SYNTHETIC" not in text and "SYN-000" not in text
    assert "PT" in text


# ---------------------------------------------------------------------------- geometry errors
def test_missing_slice_names_the_gap(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    # slices at z = -16, -12, ..., 12 mm (origin -16, 4 mm apart); PT_0004 is z = -4
    (folder / "PT_0004.dcm").unlink()
    series = discover_dicom(folder).pet[0]
    with pytest.raises(
        GeometryError,
        match=r"missing slice.*gap of 8 mm between slice positions -8 mm \(PT_0003\.dcm\) "
        r"and 0 mm \(PT_0005\.dcm\).*expected slice spacing 4 mm",
    ):
        load_series_volume(series)


def _edit(path: Path, keyword: str, value: object) -> None:
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, value)
    ds.save_as(path)


def test_duplicate_positions_are_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    ds = pydicom.dcmread(folder / "PT_0002.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "PT_0002_again.dcm")
    with pytest.raises(GeometryError, match=r"same position.*-12\.0000 mm"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_mixed_orientations_are_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    _edit(folder / "PT_0006.dcm", "ImageOrientationPatient", list(oblique_orientation(5.0, 0)))
    with pytest.raises(GeometryError, match=r"PT_0006\.dcm.*mixed slice orientations"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_differing_pixel_spacing_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    _edit(folder / "PT_0007.dcm", "PixelSpacing", [3.0, 2.6])
    with pytest.raises(GeometryError, match=r"\(0028,0030\) PixelSpacing.*2\.6"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_uneven_spacing_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    # slice 5 (z = 0) moved to z = 1.5: steps 4, 4, 4, 5.5, 2.5, 4, 4
    _edit(folder / "PT_0005.dcm", "ImagePositionPatient", [-20.0, -24.0, 1.5])
    with pytest.raises(GeometryError, match=r"uneven slice spacing.*PT_0004\.dcm"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_missing_geometry_tag_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    ds = pydicom.dcmread(folder / "PT_0001.dcm")
    del ds.ImagePositionPatient
    ds.save_as(folder / "PT_0001.dcm")
    with pytest.raises(DicomInputError, match=r"\(0020,0032\) ImagePositionPatient.*missing"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_multi_frame_is_rejected(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    _edit(folder / "PT_0001.dcm", "NumberOfFrames", 2)
    with pytest.raises(DicomInputError, match="multi-frame"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_missing_rescale_slope_in_pet_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    ds = pydicom.dcmread(folder / "PT_0008.dcm")
    del ds.RescaleSlope
    ds.save_as(folder / "PT_0008.dcm")
    with pytest.raises(DicomInputError, match=r"PT_0008\.dcm: \(0028,1053\) RescaleSlope"):
        load_series_volume(discover_dicom(folder).pet[0])


# ---------------------------------------------------------------------------- CT and units
def test_ct_reads_in_hu_on_its_own_grid(tmp_path: Path) -> None:
    make_pet_series(tmp_path)
    make_ct_series(tmp_path)
    inventory = discover_dicom(tmp_path)
    ct = read_ct_series(inventory.ct[0])
    original = make_ct_volume()
    assert ct.unit is Unit.HU
    np.testing.assert_array_equal(ct.array, original.array)  # integer HU are exact
    np.testing.assert_allclose(ct.affine, original.affine, atol=1e-6)
    pet = read_pet_series(inventory.pet[0])
    assert not ct.same_grid(pet)
    assert inventory.ct[0].frame_of_reference_uid == inventory.pet[0].frame_of_reference_uid
    # stored values are HU + 1024 with intercept -1024 (bare pydicom)
    ds = pydicom.dcmread(inventory.ct[0].files[0])
    assert float(ds.RescaleIntercept) == -1024.0
    np.testing.assert_array_equal(ds.pixel_array - 1024, original.array[0])
    with pytest.raises(DicomInputError, match=r"\(0008,0060\) Modality.*found 'PT'"):
        read_ct_series(inventory.pet[0])


@pytest.mark.parametrize(
    ("vendor", "unit", "divisor"),
    [("siemens", Unit.BQML, 1.0), ("ge", Unit.BQML, 1.0), ("philips", Unit.CNTS, 1.7)],
)
def test_units_follow_the_vendor(
    tmp_path: Path, vendor: Literal["siemens", "ge", "philips"], unit: Unit, divisor: float
) -> None:
    folder = make_pet_series(tmp_path, vendor=vendor)
    volume = load_series_volume(discover_dicom(folder).pet[0])
    assert volume.unit is unit
    expected = make_pet_volume().array / divisor  # Philips counts = Bq/mL / 1.7
    slopes = _slopes(folder)
    for k in range(8):
        assert np.abs(volume.array[k] - expected[k]).max() <= slopes[k + 1] / 2 * (1 + 1e-6)


def test_series_constructed_by_hand_is_sorted(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    files = sorted(folder.iterdir(), reverse=True)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    series = DicomSeries(
        series_uid="1.2.3", modality="PT", files=tuple(files), headers=tuple(headers)
    )
    assert [f.name for f in series.files] == [f"PT_{k:04d}.dcm" for k in range(1, 9)]


# ---------------------------------------------------------------------------- encodings
def _reference(folder: Path) -> np.ndarray:
    """Bare pydicom: every file's pixel_array x slope + intercept, in slice-position order."""
    datasets = [pydicom.dcmread(p, force=True) for p in folder.iterdir()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))  # axial: z orders slices
    return np.stack([_values(ds) for ds in datasets])


def _values(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_implicit_vr_files(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(path, implicit_vr=True, little_endian=True)
    series = discover_dicom(folder).pet[0]
    assert all(location is not None for location in series.pixel_locations)
    volume = load_series_volume(series, dtype=np.float64)
    np.testing.assert_allclose(volume.array, _reference(folder), rtol=1e-12)


def test_compressed_files_are_decoded_by_pydicom(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(path)
    series = discover_dicom(folder).pet[0]
    assert series.pixel_locations == (None,) * 8  # encapsulated: not located at discovery
    volume = load_series_volume(series, dtype=np.float64)
    np.testing.assert_allclose(volume.array, _reference(folder), rtol=1e-12)


def test_series_without_pixel_locations_loads(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    files = sorted(folder.iterdir())
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    series = DicomSeries(
        series_uid="1.2.3", modality="PT", files=tuple(files), headers=tuple(headers)
    )
    volume = load_series_volume(series, dtype=np.float64)
    np.testing.assert_allclose(volume.array, _reference(folder), rtol=1e-12)


def test_file_changed_after_discovery(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    series = discover_dicom(folder).pet[0]
    path = folder / "PT_0006.dcm"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DicomInputError, match=r"PT_0006\.dcm.*changed since discovery"):
        load_series_volume(series)


def test_raw_dataset_without_file_meta_is_read(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    reference = _reference(folder)
    path = folder / "PT_0002.dcm"
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x08\x00"  # starts with group 0008, no preamble
    inventory = discover_dicom(folder)
    assert inventory.skipped == ()
    volume = load_series_volume(inventory.pet[0], dtype=np.float64)
    np.testing.assert_allclose(volume.array, reference, rtol=1e-12)


@pytest.mark.parametrize(("units", "unit"), [("GML", Unit.SUV_BW), ("PROPCPS", Unit.NONE)])
def test_other_pet_units(tmp_path: Path, units: str, unit: Unit) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        _edit(path, "Units", units)
    assert load_series_volume(discover_dicom(folder).pet[0]).unit is unit


def test_differing_rows_are_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    _edit(folder / "PT_0003.dcm", "Rows", 8)
    with pytest.raises(GeometryError, match=r"PT_0003\.dcm: \(0028,0010\) Rows.*found 8"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_in_plane_shift_between_slices_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    # a gantry-tilt-like stack: slice k moved 1 mm x k along y (first slice at y = -24)
    for path in folder.iterdir():
        k = int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber) - 1
        _edit(path, "ImagePositionPatient", [-20.0, -24.0 + k, -16.0 + 4.0 * k])
    with pytest.raises(GeometryError, match=r"shifted within their plane.*found '1 mm"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_non_orthonormal_orientation_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        _edit(path, "ImageOrientationPatient", [1.0, 0.0, 0.0, 0.6, 0.8, 0.0])
    with pytest.raises(GeometryError, match="not orthonormal"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_single_slice_without_thickness_is_an_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path, volume=make_pet_volume(shape=(1, 16, 16)))
    ds = pydicom.dcmread(folder / "PT_0001.dcm")
    del ds.SliceThickness
    ds.save_as(folder / "PT_0001.dcm")
    with pytest.raises(DicomInputError, match=r"single-slice series needs a slice spacing"):
        load_series_volume(discover_dicom(folder).pet[0])
