"""Tests of immunopet.voi.geometry: diameters of digital ellipsoids, centroid, distances."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume
from immunopet.voi.geometry import (
    SpillInWarning,
    centroid_lps,
    distance_to_mask_mm,
    is_measurable,
    long_axis_mm,
    max_diameter_3d_mm,
    spill_in_warning,
)


def ellipsoid(
    semi_axes_xyz: tuple[float, float, float],
    spacing: tuple[float, float, float],
    rotation: np.ndarray | None = None,
    offset_voxels: tuple[float, float, float] = (0.3, 0.2, 0.1),
) -> np.ndarray:
    """Digital ellipsoid: voxel centres with sum((R^T p)_a / s_a)² <= 1; p = (x, y, z) mm."""
    reach = max(semi_axes_xyz)
    shape = tuple(int(2 * reach / d) + 5 for d in spacing)
    k, j, i = np.indices(shape, dtype=np.float64)
    centre = [(n // 2 + o) for n, o in zip(shape, offset_voxels, strict=True)]
    z = (k - centre[0]) * spacing[0]
    y = (j - centre[1]) * spacing[1]
    x = (i - centre[2]) * spacing[2]
    points = np.stack([x, y, z], axis=-1)
    if rotation is not None:
        points = points @ rotation  # row vectors: p @ R == (R^T p)^T
    return np.sum((points / np.asarray(semi_axes_xyz)) ** 2, axis=-1) <= 1.0


def rotation_about_z(degrees: float) -> np.ndarray:
    return Rotation.from_euler("z", degrees, degrees=True).as_matrix()


# -------------------------------------------------------------------------- exact small cases
def test_diameter_definition_by_hand() -> None:
    m = np.zeros((1, 8, 8), dtype=bool)
    m[0, 0, 0] = m[0, 3, 4] = True  # centres 2 x 5 = 10 mm apart + one 2 mm voxel
    assert long_axis_mm(m, (5.0, 2.0, 2.0)) == pytest.approx(12.0)
    # dy = 2, dx = 3: along x 4 x 3 + 3; along y 5 x 2 + 2
    along_x = np.zeros((1, 8, 8), dtype=bool)
    along_x[0, 0, [0, 4]] = True
    assert long_axis_mm(along_x, (5.0, 2.0, 3.0)) == pytest.approx(15.0)
    along_y = np.zeros((1, 8, 8), dtype=bool)
    along_y[0, [0, 5], 0] = True
    assert long_axis_mm(along_y, (5.0, 2.0, 3.0)) == pytest.approx(12.0)
    single = np.zeros((3, 3, 3), dtype=bool)
    single[1, 1, 1] = True
    assert long_axis_mm(single, (5.0, 2.0, 3.0)) == 3.0
    assert max_diameter_3d_mm(single, (5.0, 2.0, 3.0)) == 5.0


def test_flat_and_collinear_sets_fall_back_from_the_hull() -> None:
    # a single-slice square of 5 x 5 voxels at 2 mm: diagonal 8 sqrt2 + 2 (flat in 3-D)
    m = np.zeros((3, 7, 7), dtype=bool)
    m[1, 1:6, 1:6] = True
    assert max_diameter_3d_mm(m, (2.0, 2.0, 2.0)) == pytest.approx(8 * math.sqrt(2) + 2)
    assert long_axis_mm(m, (2.0, 2.0, 2.0)) == pytest.approx(8 * math.sqrt(2) + 2)
    line = np.zeros((3, 9, 9), dtype=bool)
    line[1, np.arange(1, 8), np.arange(1, 8)] = True  # collinear diagonal of 7 voxels
    assert long_axis_mm(line, (2.0, 2.0, 2.0)) == pytest.approx(12 * math.sqrt(2) + 2)


# ------------------------------------------------------------------------ digital ellipsoids
@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.27, 2.0, 2.0), (4.0, 4.0, 4.0)])
@pytest.mark.parametrize("degrees", [0.0, 30.0])
def test_long_axis_of_a_40_20_10_ellipsoid(
    spacing: tuple[float, float, float], degrees: float
) -> None:
    # semi-axes x 20, y 10, z 5 mm, rotated in-plane: the RECIST long axis is 40 mm, measured
    # within one in-plane voxel (see the bias table in immunopet.voi.geometry)
    mask = ellipsoid((20.0, 10.0, 5.0), spacing, rotation_about_z(degrees))
    assert long_axis_mm(mask, spacing) == pytest.approx(40.0, abs=spacing[1])
    assert max_diameter_3d_mm(mask, spacing) == pytest.approx(40.0, abs=max(spacing))


def test_long_axis_along_z_recist_versus_3d() -> None:
    # semi-axes x 5, y 10, z 25 mm: in-plane the largest axis is y (20 mm); in 3-D it is z
    spacing = (2.0, 2.0, 2.0)
    mask = ellipsoid((5.0, 10.0, 25.0), spacing)
    assert long_axis_mm(mask, spacing) == pytest.approx(20.0, abs=2.0)
    assert max_diameter_3d_mm(mask, spacing) == pytest.approx(50.0, abs=2.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_3d_diameter_of_an_obliquely_rotated_ellipsoid(seed: int) -> None:
    spacing = (2.0, 2.0, 2.0)
    rotation = Rotation.random(random_state=seed).as_matrix()
    mask = ellipsoid((15.0, 8.0, 5.0), spacing, rotation)
    assert max_diameter_3d_mm(mask, spacing) == pytest.approx(30.0, abs=2.0)


def test_diameters_accept_a_volume_and_refuse_a_sheared_one() -> None:
    mask = np.zeros((3, 3, 8), dtype=bool)
    mask[1, 1, 1:6] = True  # 5 voxels along x
    c, s = math.cos(0.4), math.sin(0.4)
    vol = ImageVolume.from_attributes(
        array=np.zeros(mask.shape),
        image_position_mm=(0, 0, 0),
        image_orientation=(c, s, 0, -s, c, 0),
        pixel_spacing_mm=(2.0, 2.5),
        slice_spacing_mm=3.0,
    )
    assert long_axis_mm(mask, vol) == pytest.approx(4 * 2.5 + 2.5)
    sheared = np.diag([2.0, 2.0, 2.0, 1.0])
    sheared[0, 1] = 1.0
    with pytest.raises(GeometryError, match="not orthogonal"):
        long_axis_mm(mask, ImageVolume(array=np.zeros(mask.shape), affine=sheared))
    with pytest.raises(InputError, match="the mask is empty"):
        long_axis_mm(np.zeros((2, 2, 2), dtype=bool), (2, 2, 2))
    with pytest.raises(GeometryError, match="3-D"):
        max_diameter_3d_mm(np.ones((2, 2), dtype=bool), (2, 2, 2))


def test_is_measurable() -> None:
    assert is_measurable(20.0)
    assert not is_measurable(19.99)
    assert is_measurable(15.0, threshold_mm=10.0)
    with pytest.raises(InputError, match="long_axis_mm"):
        is_measurable(math.nan)


# ----------------------------------------------------------------------- centroid and distance
def oblique_volume(shape: tuple[int, int, int], spacing: float = 2.0) -> ImageVolume:
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    return ImageVolume.from_attributes(
        array=np.zeros(shape),
        image_position_mm=(-50.0, 30.0, 200.0),
        image_orientation=(c, s, 0, -s, c, 0),
        pixel_spacing_mm=(spacing, spacing),
        slice_spacing_mm=spacing,
    )


def test_centroid_on_an_oblique_grid() -> None:
    vol = oblique_volume((5, 5, 5))
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[1:4, 1:4, 1:4] = True  # symmetric around voxel (2, 2, 2)
    mask[2, 2, 2] = False
    # voxel (k, j, i) = (2, 2, 2): position + 2 x (2 mm x row cosine) + 2 x (2 mm x column
    # cosine) + 2 x (2 mm x normal); row (c, s, 0), column (-s, c, 0), normal (0, 0, 1)
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    expected = np.array([-50.0 + 4 * c - 4 * s, 30.0 + 4 * s + 4 * c, 204.0])
    np.testing.assert_allclose(centroid_lps(vol, mask), expected, atol=1e-9)


def ball(
    shape: tuple[int, int, int], centre: tuple[int, int, int], radius_voxels: float
) -> np.ndarray:
    k, j, i = np.indices(shape)
    squared = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2
    return squared <= radius_voxels**2


def test_distance_between_two_spheres() -> None:
    # 2 mm voxels; spheres of 10 mm (5 voxels) and 15 mm (7.5 voxels) radius, centres 60 mm
    # (30 voxels) apart along x: nearest centres on the axis at 60 - 10 - 14 = 36 mm
    shape = (21, 21, 50)
    vol = oblique_volume(shape)
    a = ball(shape, (10, 10, 10), 5.0)
    b = ball(shape, (10, 10, 40), 7.5)
    assert distance_to_mask_mm(vol, a, b) == pytest.approx(36.0)
    # brute force over all voxel pairs in LPS (a different method)
    pa = vol.voxel_to_lps(np.argwhere(a))
    pb = vol.voxel_to_lps(np.argwhere(b))
    brute = np.min(np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=-1))
    assert distance_to_mask_mm(vol, a, b) == pytest.approx(brute)


def test_distance_against_brute_force_for_irregular_masks() -> None:
    rng = np.random.default_rng(8)
    shape = (10, 12, 14)
    vol = ImageVolume.from_attributes(
        array=np.zeros(shape),
        image_position_mm=(0, 0, 0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(2.0, 2.7),
        slice_spacing_mm=3.27,
    )
    for _ in range(5):
        a = np.zeros(shape, dtype=bool)
        b = np.zeros(shape, dtype=bool)
        a[:, :, :6] = rng.random((10, 12, 6)) < 0.3
        b[:, :, 8:] = rng.random((10, 12, 6)) < 0.3
        pa = vol.voxel_to_lps(np.argwhere(a))
        pb = vol.voxel_to_lps(np.argwhere(b))
        brute = np.min(np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=-1))
        assert distance_to_mask_mm(vol, a, b) == pytest.approx(brute)


def test_overlapping_masks_are_at_distance_zero_and_errors() -> None:
    vol = oblique_volume((5, 5, 5))
    a = np.zeros((5, 5, 5), dtype=bool)
    a[1:3] = True
    b = np.zeros((5, 5, 5), dtype=bool)
    b[2:4] = True
    assert distance_to_mask_mm(vol, a, b) == 0.0
    with pytest.raises(InputError, match="organ_mask: the mask is empty"):
        distance_to_mask_mm(vol, a, np.zeros((5, 5, 5), dtype=bool))
    with pytest.raises(GeometryError, match=r"lesion_mask\.shape"):
        distance_to_mask_mm(vol, np.ones((4, 5, 5), dtype=bool), b)


# --------------------------------------------------------------------------------- spill-in
def test_spill_in_warning_near_the_spleen() -> None:
    shape = (21, 21, 50)
    vol = oblique_volume(shape)
    spleen = ball(shape, (10, 10, 40), 7.5)
    near = ball(shape, (10, 10, 27), 3.0)  # on-axis gap: (40 - 7) - (27 + 3) = 3 voxels, 6 mm
    with pytest.warns(SpillInWarning, match="lesion 4 lies 6.0 mm from the spleen"):
        message = spill_in_warning(vol, near, spleen, lesion_name="lesion 4")
    assert message is not None
    assert "warning distance 13.0 mm" in message  # 2 x 6.5 mm
    far = ball(shape, (10, 10, 10), 3.0)  # gap (33 - 13) voxels = 40 mm
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert spill_in_warning(vol, far, spleen) is None
    # a coarser reconstruction (FWHM 25 mm) warns at 50 mm
    with pytest.warns(SpillInWarning, match="warning distance 50.0 mm"):
        spill_in_warning(vol, far, spleen, fwhm_mm=25.0)
    with pytest.warns(SpillInWarning):
        spill_in_warning(vol, far, spleen, max_distance_mm=40.0)
    with pytest.raises(InputError, match="fwhm_mm"):
        spill_in_warning(vol, far, spleen, fwhm_mm=0.0)
