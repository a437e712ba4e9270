"""Tests of the geometry type against hand-written affines and positions."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.errors import GeometryError
from immunopet.image import ImageVolume, Unit


def make_axial(shape=(3, 4, 5), spacing=(4.0, 2.0, 3.0), origin=(-10.0, 20.0, 30.0)):
    dz, dy, dx = spacing
    return ImageVolume.from_attributes(
        array=np.arange(np.prod(shape), dtype=np.float32).reshape(shape),
        image_position_mm=origin,
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(dy, dx),
        slice_spacing_mm=dz,
        unit="BQML",
    )


def test_axial_affine_written_by_hand():
    vol = make_axial()
    # DICOM: rows (j) step along the column cosine (0,1,0) by PixelSpacing[0] = 2 mm,
    # columns (i) along the row cosine (1,0,0) by PixelSpacing[1] = 3 mm,
    # slices (k) along row x column = (0,0,1) by 4 mm.
    expected = np.array(
        [
            [0.0, 0.0, 3.0, -10.0],
            [0.0, 2.0, 0.0, 20.0],
            [4.0, 0.0, 0.0, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_array_equal(vol.affine, expected)
    assert vol.spacing_mm == (4.0, 2.0, 3.0)
    assert vol.voxel_volume_ml == pytest.approx(0.024)  # 4*2*3 mm3 = 24 mm3
    assert vol.unit is Unit.BQML
    # voxel (k=2, j=3, i=4): x = -10 + 4*3, y = 20 + 3*2, z = 30 + 2*4
    np.testing.assert_allclose(vol.voxel_to_lps([2, 3, 4]), [2.0, 26.0, 38.0])


def test_oblique_round_trip_lps_voxel():
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    # a rotation of 20 degrees about x, then 20 degrees about z; its first two columns are
    # the row and column direction cosines
    rot_x = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    rot_z = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rotation = rot_z @ rot_x
    row, col = rotation[:, 0], rotation[:, 1]
    vol = ImageVolume.from_attributes(
        array=np.zeros((5, 6, 7)),
        image_position_mm=(1.5, -2.0, 100.0),
        image_orientation=(*row, *col),
        pixel_spacing_mm=(2.5, 1.5),
        slice_spacing_mm=-3.27,
    )
    rng = np.random.default_rng(0)
    idx = rng.uniform(0, 5, size=(20, 3))
    np.testing.assert_allclose(vol.lps_to_voxel(vol.voxel_to_lps(idx)), idx, atol=1e-9)
    assert vol.spacing_mm == pytest.approx((3.27, 2.5, 1.5))
    centres = vol.voxel_centres_lps()
    np.testing.assert_allclose(centres[4, 5, 6], vol.voxel_to_lps([4, 5, 6]))


def test_immutable_and_with_array():
    vol = make_axial()
    with pytest.raises(ValueError):
        vol.array[0, 0, 0] = 1.0
    doubled = vol.with_array(vol.array * 2, unit=Unit.SUV_BW)
    assert doubled.unit is Unit.SUV_BW and vol.unit is Unit.BQML
    assert doubled.same_grid(vol)
    with pytest.raises(GeometryError, match="does not fit the grid"):
        vol.with_array(np.zeros((2, 2, 2)))


def test_invalid_geometry_errors():
    with pytest.raises(GeometryError, match=r"array.ndim: an image volume must be 3-D"):
        ImageVolume(array=np.zeros((2, 2)), affine=np.eye(4))
    with pytest.raises(GeometryError, match="singular"):
        ImageVolume(array=np.zeros((2, 2, 2)), affine=np.zeros((4, 4)))
    with pytest.raises(GeometryError, match="ImageOrientationPatient"):
        ImageVolume.from_attributes(
            array=np.zeros((2, 2, 2)),
            image_position_mm=(0, 0, 0),
            image_orientation=(1, 0, 0, 0.5, 0.5, 0),
            pixel_spacing_mm=(1, 1),
            slice_spacing_mm=1,
        )
    with pytest.raises(ValueError, match="'XYZ' is not a valid Unit"):
        ImageVolume(array=np.zeros((2, 2, 2)), affine=np.eye(4), unit="XYZ")


def test_resample_nearest_onto_coarser_grid():
    # a 1 mm grid of 8x8x8 holding i + 10 j + 100 k; a 2 mm grid whose voxel centres fall on
    # odd 1 mm voxels (origin shifted by 1 mm) samples exactly those voxels.
    fine_array = np.fromfunction(lambda k, j, i: i + 10 * j + 100 * k, (8, 8, 8))
    fine = ImageVolume(array=fine_array, affine=np.eye(4))
    coarse_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    coarse_affine[:3, 3] = 1.0
    coarse = ImageVolume(array=np.zeros((4, 4, 4)), affine=coarse_affine)
    out = fine.resample_to(coarse, order=0)
    # coarse voxel (1, 2, 3) sits at mm (3, 5, 7) = fine voxel (3, 5, 7) -> 7 + 50 + 300
    assert out.array[1, 2, 3] == 357
    assert out.same_grid(coarse)


def test_resample_linear_midpoint_and_outside_fill():
    array = np.zeros((2, 2, 2))
    array[1] = 10.0  # slice 1 = 10, slice 0 = 0
    src = ImageVolume(array=array, affine=np.eye(4))
    target_affine = np.eye(4)
    target_affine[0, 3] = 0.5  # half a voxel along z
    target = ImageVolume(array=np.zeros((1, 2, 2)), affine=target_affine)
    np.testing.assert_allclose(src.resample_to(target, order=1).array, 5.0)
    far = np.eye(4)
    far[:3, 3] = 100.0
    outside = ImageVolume(array=np.zeros((1, 1, 1)), affine=far)
    assert src.resample_to(outside, order=1, fill_value=-1.0).array[0, 0, 0] == -1.0


def test_callers_array_is_not_frozen():
    owned = np.zeros((2, 2, 2))
    vol = ImageVolume(array=owned, affine=np.eye(4))
    owned[0, 0, 0] = 1.0  # still writeable for its owner
    assert not vol.array.flags.writeable
