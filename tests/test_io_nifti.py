"""NIfTI writing/reading at the LPS/RAS boundary (immunopet.io.nifti)."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

from immunopet.errors import GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.nifti import read_nifti, sidecar_path, write_nifti

RNG = np.random.default_rng(20240301)


def _volume(orientation, spacing_z, shape=(4, 5, 6), position=(-120.5, 80.25, -300.0)):
    return ImageVolume.from_attributes(
        array=RNG.normal(1000.0, 300.0, size=shape).astype(np.float32),
        image_position_mm=position,
        image_orientation=orientation,
        pixel_spacing_mm=(2.0, 3.0),
        slice_spacing_mm=spacing_z,
        unit=Unit.BQML,
    )


def _oblique_orientation():
    # rows rotated 30 degrees about z then 20 degrees about x: orthonormal by construction
    a, b = math.radians(30), math.radians(20)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rot = rx @ rz
    return (*rot[:, 0], *rot[:, 1])


CASES = {
    "axial": ((1, 0, 0, 0, 1, 0), 4.0),
    "feet_first": ((1, 0, 0, 0, 1, 0), -4.0),  # slices towards the feet: negative z step
    "oblique": (_oblique_orientation(), 2.5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_keeps_voxel_positions(tmp_path, case):
    orientation, dz = CASES[case]
    vol = _volume(orientation, dz)
    path = write_nifti(vol, tmp_path / f"{case}_pet.nii.gz")
    back = read_nifti(path, unit="BQML").volume
    nz, ny, nx = vol.shape
    corners = [(k, j, i) for k in (0, nz - 1) for j in (0, ny - 1) for i in (0, nx - 1)]
    indices = np.array([*corners, (1, 2, 3), (2, 0, 4)], dtype=float)
    np.testing.assert_allclose(back.voxel_to_lps(indices), vol.voxel_to_lps(indices), atol=1e-4)
    assert back.shape == vol.shape
    # float32 values survive exactly
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.array.dtype == np.float32
    assert back.unit is Unit.BQML


@pytest.mark.parametrize("case", sorted(CASES))
def test_nibabel_world_coordinates_are_ras_of_ours(tmp_path, case):
    # Independent path: nibabel's own affine applied to (i, j, k) must give our LPS point
    # with x and y negated, and nibabel's data[i, j, k] must be our array[k, j, i].
    orientation, dz = CASES[case]
    vol = _volume(orientation, dz)
    path = write_nifti(vol, tmp_path / "x.nii")
    img = nib.load(path)
    for k, j, i in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        ras = nib.affines.apply_affine(img.affine, [i, j, k])
        lps = vol.voxel_to_lps([k, j, i])
        np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-4)
        assert img.get_fdata()[i, j, k] == pytest.approx(float(vol.array[k, j, i]))


def test_hand_written_ras_affine_for_axial_image(tmp_path):
    # Axial DICOM: rows along +x (L), columns along +y (P), slices along +z (S).
    # Row spacing dy = 2, column spacing dx = 1, slice spacing dz = 3, first voxel (10, 20, 30).
    vol = ImageVolume.from_attributes(
        array=np.zeros((2, 3, 4), dtype=np.float32),
        image_position_mm=(10.0, 20.0, 30.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(2.0, 1.0),
        slice_spacing_mm=3.0,
    )
    path = write_nifti(vol, tmp_path / "axial.nii.gz")
    img = nib.load(path)
    # i steps 1 mm towards L = -1 mm in R; j steps 2 mm towards P = -2 mm in A; k steps 3 mm S.
    expected = np.array(
        [
            [-1.0, 0.0, 0.0, -10.0],
            [0.0, -2.0, 0.0, -20.0],
            [0.0, 0.0, 3.0, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(img.affine, expected, atol=1e-6)
    assert img.shape == (4, 3, 2)
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert int(img.header["qform_code"]) == 1
    assert int(img.header["sform_code"]) == 1
    assert img.header.get_xyzt_units() == ("mm", "sec")


def test_hand_written_ras_affine_for_diagonal_lps_affine(tmp_path):
    # Our affine diag(3, 2, 1) over (k, j, i), origin (10, 20, 30): k steps 3 mm along L,
    # j 2 mm along P, i 1 mm along S. NIfTI columns are (i, j, k): i -> +1 S, j -> -2 A,
    # k -> -3 R; origin (-10, -20, 30) in RAS.
    affine = np.array(
        [[3.0, 0, 0, 10.0], [0, 2.0, 0, 20.0], [0, 0, 1.0, 30.0], [0, 0, 0, 1.0]],
    )
    vol = ImageVolume(np.ones((2, 3, 4), dtype=np.float32), affine, Unit.NONE)
    path = write_nifti(vol, tmp_path / "diag.nii.gz")
    img = nib.load(path)
    expected = np.array(
        [
            [0.0, 0.0, -3.0, -10.0],
            [0.0, -2.0, 0.0, -20.0],
            [1.0, 0.0, 0.0, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(img.affine, expected, atol=1e-6)
    assert nib.aff2axcodes(img.affine) == ("S", "P", "L")


def test_sidecar_round_trip_and_units(tmp_path):
    vol = _volume((1, 0, 0, 0, 1, 0), 4.0)
    sidecar = {"Units": "Bq/mL", "ScanStart": 432000.0, "FrameTimesStart": [432000.0]}
    path = write_nifti(vol, tmp_path / "sub-01_pet.nii.gz", sidecar=sidecar)
    json_path = tmp_path / "sub-01_pet.json"
    assert json_path.is_file()
    text = json_path.read_text()
    assert json.loads(text) == sidecar
    # pretty-printed, keys sorted alphabetically
    assert text.index('"FrameTimesStart"') < text.index('"ScanStart"') < text.index('"Units"')
    assert "\n  " in text
    image = read_nifti(path)
    assert image.sidecar == sidecar
    assert image.volume.unit is Unit.BQML  # from "Units": "Bq/mL"
    # explicit unit wins over the sidecar
    assert read_nifti(path, unit="SUVbw").volume.unit is Unit.SUV_BW


def test_sidecar_g_per_ml_gives_suvbw_and_missing_sidecar_gives_none(tmp_path):
    vol = _volume((1, 0, 0, 0, 1, 0), 4.0)
    suv = write_nifti(vol, tmp_path / "a.nii.gz", sidecar={"Units": "g/mL"})
    assert read_nifti(suv).volume.unit is Unit.SUV_BW
    plain = write_nifti(vol, tmp_path / "b.nii")
    image = read_nifti(plain)
    assert image.sidecar is None
    assert image.volume.unit is Unit.NONE


def test_unknown_sidecar_units_is_an_error(tmp_path):
    vol = _volume((1, 0, 0, 0, 1, 0), 4.0)
    path = write_nifti(vol, tmp_path / "c_pet.nii.gz", sidecar={"Units": "kBq/cc"})
    with pytest.raises(InputError, match=r"c_pet\.json: Units: unsupported.*'kBq/cc'"):
        read_nifti(path)


def test_integer_labels_keep_their_dtype(tmp_path):
    labels = np.zeros((3, 4, 5), dtype=np.int16)
    labels[1, 1:3, 2:4] = 7
    vol = ImageVolume(labels, np.eye(4), Unit.LABEL)
    path = write_nifti(vol, tmp_path / "labels.nii.gz")
    assert nib.load(path).get_data_dtype() == np.int16
    back = read_nifti(path, unit=Unit.LABEL).volume
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, labels)


def test_float_to_integer_dtype_must_be_exact(tmp_path):
    vol = ImageVolume(np.full((2, 2, 2), 1.5), np.eye(4))
    with pytest.raises(InputError, match="dtype: non-integer values"):
        write_nifti(vol, tmp_path / "x.nii.gz", dtype=np.int16)
    big = ImageVolume(np.full((2, 2, 2), 300.0), np.eye(4))
    with pytest.raises(InputError, match="do not fit the integer dtype"):
        write_nifti(big, tmp_path / "y.nii.gz", dtype=np.uint8)


def test_single_frame_4d_is_read_and_dynamic_is_refused(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(4, 3, 2)  # NIfTI (i, j, k)
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    one = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(data[..., np.newaxis], affine), one)
    vol = read_nifti(one).volume
    assert vol.shape == (2, 3, 4)
    assert vol.array[1, 2, 3] == data[3, 2, 1]
    dynamic = tmp_path / "dyn.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([data, data], axis=-1), affine), dynamic)
    with pytest.raises(InputError, match=r"dyn\.nii\.gz: dim: dynamic \(4-D\) images"):
        read_nifti(dynamic)


def test_no_qform_no_sform_warns(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), dtype=np.float32), np.eye(4))
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    path = tmp_path / "bare.nii"
    nib.save(img, path)
    with pytest.warns(GeometryWarning, match="qform_code and sform_code are 0"):
        image = read_nifti(path)
    assert len(image.warnings) == 1


def test_bad_names_and_missing_files(tmp_path):
    vol = ImageVolume(np.zeros((2, 2, 2)), np.eye(4))
    with pytest.raises(InputError, match=r"file name: not a NIfTI file name"):
        write_nifti(vol, tmp_path / "x.mha")
    with pytest.raises(InputError, match="file not found"):
        read_nifti(tmp_path / "absent.nii.gz")
    assert sidecar_path("a/b_pet.NII.GZ").name == "b_pet.json"


def test_sheared_affine_round_trip(tmp_path):
    # Gantry-tilted CT-like grid: the slice axis is not orthogonal to the rows. The qform
    # cannot hold a shear; the sform (read first) must keep it.
    affine = np.array(
        [[0.0, 0.0, 1.0, 5.0], [0.3, 2.0, 0.0, 6.0], [3.0, 0.0, 0.0, 7.0], [0.0, 0.0, 0.0, 1.0]]
    )
    vol = ImageVolume(np.zeros((3, 4, 5), dtype=np.float32), affine)
    back = read_nifti(write_nifti(vol, tmp_path / "tilt.nii.gz")).volume
    corners = np.array([(0, 0, 0), (2, 3, 4), (2, 0, 0), (0, 3, 4)], dtype=float)
    # by hand: index (2, 3, 4) -> (5 + 4, 6 + 0.6 + 6, 7 + 6) = (9, 12.6, 13)
    np.testing.assert_allclose(back.voxel_to_lps([2, 3, 4]), [9.0, 12.6, 13.0], atol=1e-4)
    np.testing.assert_allclose(back.voxel_to_lps(corners), vol.voxel_to_lps(corners), atol=1e-4)
