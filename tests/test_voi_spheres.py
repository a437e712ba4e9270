"""Tests of immunopet.voi.spheres: sphere volumes on grids, kernels, sphere means."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume
from immunopet.voi.spheres import (
    check_spacing_mm,
    radius_for_volume_mm,
    sphere_kernel,
    sphere_mask,
    sphere_means,
    volume_for_radius_ml,
)

SPACINGS = [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0), (3.27, 2.0, 2.0)]


def make_grid(
    spacing: tuple[float, float, float],
    radius_mm: float,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
) -> ImageVolume:
    shape = tuple(int(2 * radius_mm / d) + 7 for d in spacing)
    dz, dy, dx = spacing
    return ImageVolume.from_attributes(
        array=np.zeros(shape),
        image_position_mm=(-10.0, 20.0, 5.0),
        image_orientation=orientation,
        pixel_spacing_mm=(dy, dx),
        slice_spacing_mm=dz,
    )


def middle_lps(grid: ImageVolume) -> np.ndarray:
    return grid.voxel_to_lps(np.asarray(grid.shape) // 2)


def lattice_count(spacing: tuple[float, float, float], radius: float, shift: float = 0.0) -> int:
    """Brute-force count of voxel centres (index + shift) x spacing within radius of 0."""
    reach = [int(radius / d) + 2 for d in spacing]
    count = 0
    for n in itertools.product(*(range(-r, r + 1) for r in reach)):
        squared = sum(((a + shift) * d) ** 2 for a, d in zip(n, spacing, strict=True))
        count += squared <= radius**2
    return count


# ------------------------------------------------------------------------------- radius/volume
def test_radius_for_volume() -> None:
    # (3 x 1000 / 4π)^(1/3) = 238.732^(1/3) = 6.2035 mm; a 2 cm sphere holds 4.18879 mL
    assert radius_for_volume_mm(1.0) == pytest.approx(6.2035, abs=5e-5)
    assert radius_for_volume_mm(4.2) == pytest.approx(10.0, abs=0.01)
    assert volume_for_radius_ml(10.0) == pytest.approx(4.18879, abs=1e-5)
    with pytest.raises(InputError, match="volume_ml"):
        radius_for_volume_mm(0.0)
    with pytest.raises(InputError, match="radius_mm"):
        volume_for_radius_ml(-1.0)


def test_kernel_counts_by_hand() -> None:
    # 2 mm: 123 (shells 1+6+12+8+6+24+24+12+30); 4 mm: 3x3x3 minus 8 corners = 19;
    # (4, 2, 2) mm: 29 in the middle slice + 21 in each neighbour = 71 (see test_metrics)
    assert sphere_kernel((2.0, 2.0, 2.0)).sum() == 123
    assert sphere_kernel((4.0, 4.0, 4.0)).sum() == 19
    assert sphere_kernel((4.0, 2.0, 2.0)).sum() == 71
    # a centre exactly on the surface counts: r = 4 mm on 2 mm voxels reaches (2, 0, 0)
    assert sphere_kernel((2.0, 2.0, 2.0), 4.0)[2, 2, 0]


def test_check_spacing() -> None:
    assert check_spacing_mm((1, 2, 3)) == (1.0, 2.0, 3.0)
    with pytest.raises(GeometryError, match="three finite positive numbers"):
        check_spacing_mm((1, 2))
    with pytest.raises(GeometryError, match="not numeric"):
        check_spacing_mm(("a", "b", "c"))


# --------------------------------------------------------------------------------- sphere_mask
@pytest.mark.parametrize("volume_ml", [1.0, 4.2])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_centred_sphere_matches_lattice_count(
    spacing: tuple[float, float, float], volume_ml: float
) -> None:
    radius = radius_for_volume_mm(volume_ml)
    grid = make_grid(spacing, radius)
    mask = sphere_mask(grid, middle_lps(grid), volume_ml=volume_ml)
    assert mask.sum() == lattice_count(spacing, radius)


@pytest.mark.parametrize("volume_ml", [1.0, 4.2])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_voxel_volume_bounded_by_half_diagonal(
    spacing: tuple[float, float, float], volume_ml: float
) -> None:
    # Every selected voxel lies inside the sphere of radius r + h and the selection covers the
    # sphere of radius r - h (h = half the voxel diagonal), so for any placement
    # V(r - h) <= n x v <= V(r + h).
    radius = radius_for_volume_mm(volume_ml)
    h = 0.5 * math.sqrt(sum(d * d for d in spacing))
    grid = make_grid(spacing, radius)
    rng = np.random.default_rng(3)
    for _ in range(10):
        centre = middle_lps(grid) + rng.uniform(-0.5, 0.5, 3) * np.asarray(spacing[::-1])
        for method in ("centre", "supersample"):
            n = sphere_mask(grid, centre, volume_ml=volume_ml, method=method).sum()
            volume = n * grid.voxel_volume_ml
            lower = volume_for_radius_ml(radius - h) if radius > h else 0.0
            assert lower <= volume <= volume_for_radius_ml(radius + h)


@pytest.mark.parametrize("volume_ml", [1.0, 4.2])
@pytest.mark.parametrize(
    ("spacing", "m"),
    [((1.0, 1.0, 1.0), 2), ((2.0, 2.0, 2.0), 4), ((4.0, 4.0, 4.0), 8), ((3.27, 2.0, 2.0), 7)],
)
def test_mean_over_subvoxel_offsets_is_the_true_volume(
    spacing: tuple[float, float, float], m: int, volume_ml: float
) -> None:
    # The mean count over m³ regular centre offsets equals the count on a grid m times finer
    # (here <= 0.5 mm), whose relative error for spheres of >= 6 mm radius is well under 1 %.
    radius = radius_for_volume_mm(volume_ml)
    grid = make_grid(spacing, radius)
    steps = (np.arange(m) + 0.5) / m - 0.5
    total = 0
    for offset in itertools.product(steps, repeat=3):
        centre = middle_lps(grid) + np.asarray(offset) * np.asarray(spacing[::-1])
        total += int(sphere_mask(grid, centre, volume_ml=volume_ml).sum())
    mean_volume = total / m**3 * grid.voxel_volume_ml
    assert mean_volume == pytest.approx(volume_ml, rel=0.01)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_sphere_centred_on_a_voxel_corner(spacing: tuple[float, float, float]) -> None:
    radius = radius_for_volume_mm(1.0)
    grid = make_grid(spacing, radius)
    corner = grid.voxel_to_lps(np.asarray(grid.shape) // 2 + 0.5)
    mask = sphere_mask(grid, corner, volume_ml=1.0)
    assert mask.sum() == lattice_count(spacing, radius, shift=0.5)
    # symmetric about the corner: flipping the box around it gives the same voxels
    where = np.argwhere(mask)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    box = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    np.testing.assert_array_equal(box, box[::-1, ::-1, ::-1])


def test_oblique_grid_gives_the_same_voxels() -> None:
    # Rotating the grid (a rotation of 30° about the S axis) and centring on a voxel: the lattice
    # around the centre is the same in the grid's own frame, so is the count.
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    radius = radius_for_volume_mm(4.2)
    straight = make_grid((3.27, 2.0, 2.0), radius)
    oblique = make_grid((3.27, 2.0, 2.0), radius, orientation=(c, s, 0, -s, c, 0))
    a = sphere_mask(straight, middle_lps(straight), volume_ml=4.2)
    b = sphere_mask(oblique, middle_lps(oblique), volume_ml=4.2)
    np.testing.assert_array_equal(a, b)


def test_supersample_of_a_large_sphere_is_close_to_the_true_volume() -> None:
    # r = 20 mm on 1 mm voxels: partial-volume thresholding misjudges only the thin shell of
    # boundary voxels whose inside fraction is near 1/2; measured deviation is under 0.5 %.
    grid = make_grid((1.0, 1.0, 1.0), 20.0)
    centre = middle_lps(grid) + np.array([0.3, -0.2, 0.1])
    n = sphere_mask(grid, centre, radius_mm=20.0, method="supersample").sum()
    assert n * grid.voxel_volume_ml == pytest.approx(volume_for_radius_ml(20.0), rel=0.01)


def test_sphere_cut_at_the_border_and_errors() -> None:
    grid = make_grid((2.0, 2.0, 2.0), 6.2)
    corner = grid.voxel_to_lps([0, 0, 0])
    # centred on the corner voxel: one octant of the 123-voxel sphere including the faces:
    # offsets with all components >= 0 and i²+j²+k² <= 9 -> counted by brute force
    expected = sum(
        1
        for n in itertools.product(range(4), repeat=3)
        if sum(a * a for a in n) * 4 <= radius_for_volume_mm(1.0) ** 2
    )
    assert sphere_mask(grid, corner, volume_ml=1.0).sum() == expected
    with pytest.raises(GeometryError, match="outside the image"):
        sphere_mask(grid, corner - 100.0, volume_ml=1.0)
    with pytest.raises(GeometryError, match="selects no voxel"):
        sphere_mask(grid, grid.voxel_to_lps([3.5, 3.5, 3.5]), radius_mm=0.5)
    with pytest.raises(InputError, match="exactly one sphere size"):
        sphere_mask(grid, corner, radius_mm=5.0, volume_ml=1.0)
    with pytest.raises(InputError, match="exactly one sphere size"):
        sphere_mask(grid, corner)
    with pytest.raises(InputError, match="unknown sphere method"):
        sphere_mask(grid, corner, radius_mm=5.0, method="exact")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="centre_lps_mm"):
        sphere_mask(grid, (1.0, 2.0), radius_mm=5.0)


# -------------------------------------------------------------------------------- sphere_means
def brute_force_means(
    image: np.ndarray, centres: np.ndarray, spacing: tuple[float, float, float], radius: float
) -> np.ndarray:
    coords = np.argwhere(np.ones(image.shape, dtype=bool)) * np.asarray(spacing)
    flat = image.reshape(-1)
    out = []
    for centre in np.argwhere(centres):
        d = np.linalg.norm(coords - centre * np.asarray(spacing), axis=1)
        near = (d <= radius) & np.isfinite(flat)
        out.append(flat[near].mean())
    return np.asarray(out)


def test_sphere_means_direct_path_against_brute_force() -> None:
    rng = np.random.default_rng(5)
    image = rng.normal(3.0, 1.0, (9, 10, 11))
    image[0, 4, 4] = np.nan
    centres = rng.random(image.shape) < 0.1
    centres[0, 4, 4] = False
    got = sphere_means(image, centres, (3.27, 2.0, 2.5))
    np.testing.assert_allclose(got, brute_force_means(image, centres, (3.27, 2.0, 2.5), 6.2))


def test_sphere_means_fft_path_against_brute_force() -> None:
    # 1 mm voxels: ~1000-voxel kernel over a 40³ crop exceeds the direct-convolution budget
    rng = np.random.default_rng(6)
    image = rng.gamma(2.0, 1.0, (40, 40, 40))
    centres = np.zeros(image.shape, dtype=bool)
    centres[rng.integers(0, 40, 12), rng.integers(0, 40, 12), rng.integers(0, 40, 12)] = True
    centres[0, 0, 0] = centres[39, 39, 39] = True
    assert sphere_kernel((1.0, 1.0, 1.0)).sum() * 40**3 > 20_000_000
    got = sphere_means(image, centres, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(got, brute_force_means(image, centres, (1.0, 1.0, 1.0), 6.2))


def test_sphere_means_edge_cases() -> None:
    image = np.full((3, 3, 3), np.nan)
    centres = np.zeros((3, 3, 3), dtype=bool)
    assert sphere_means(image, centres, (2, 2, 2)).size == 0
    centres[1, 1, 1] = True
    assert np.isnan(sphere_means(image, centres, (2, 2, 2))[0])
    with pytest.raises(GeometryError, match="centres do not fit the image"):
        sphere_means(image, centres[:2], (2, 2, 2))
