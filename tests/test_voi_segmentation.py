"""Tests of immunopet.voi.segmentation on analytic blobs whose boundaries are known by hand.

A Gaussian blob ``b + A exp(-r² / 2σ²)`` sampled at voxel centres, centred on a voxel, reaches a
threshold ``T`` exactly at ``r_T² = -2σ² ln((T - b) / A)``; the expected delineation is the set
of voxel centres within ``r_T``, counted here by brute force from that formula (each test also
checks that no voxel centre lies within a hair of ``r_T``, so the count is well defined).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume
from immunopet.voi.segmentation import (
    MAJORITY_VOTE_METHODS,
    SegmentationMethod,
    segment_lesion,
)

SPACING = 2.0
HALF = 15  # grid 31³ of 2 mm voxels, blob at index (15, 15, 15)
CENTRE = (HALF, HALF, HALF)


def make_volume(array: np.ndarray, unit: str = "SUVbw") -> ImageVolume:
    return ImageVolume.from_attributes(
        array=array,
        image_position_mm=(-30.0, 12.0, 100.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(SPACING, SPACING),
        slice_spacing_mm=SPACING,
        unit=unit,
    )


def squared_radii(half: int = HALF) -> np.ndarray:
    k, j, i = np.ogrid[-half : half + 1, -half : half + 1, -half : half + 1]
    return ((k * SPACING) ** 2 + (j * SPACING) ** 2 + (i * SPACING) ** 2).astype(np.float64)


def gaussian(
    amplitude: float, sigma: float, background: float = 0.0, half: int = HALF
) -> np.ndarray:
    return background + amplitude * np.exp(-squared_radii(half) / (2 * sigma**2))


def count_within(radius_squared: float, half: int = HALF) -> int:
    """Voxel centres with r² <= radius_squared, by enumerating offsets (not the image)."""
    count = 0
    margin = math.inf
    for n in itertools.product(range(-half, half + 1), repeat=3):
        r2 = sum((a * SPACING) ** 2 for a in n)
        margin = min(margin, abs(r2 - radius_squared))
        count += r2 <= radius_squared
    assert margin > 1e-6, "a voxel centre lies on the boundary: the expectation is ambiguous"
    return count


def peak_by_enumeration(amplitude: float, sigma: float, background: float = 0.0) -> float:
    """Mean of the blob over voxel centres within 6.2 mm of its centre (explicit loop)."""
    values = [
        background + amplitude * math.exp(-sum((a * SPACING) ** 2 for a in n) / (2 * sigma**2))
        for n in itertools.product(range(-3, 4), repeat=3)
        if sum((a * SPACING) ** 2 for a in n) <= 6.2**2
    ]
    return sum(values) / len(values)


def radius_squared_for(
    threshold: float, amplitude: float, sigma: float, background: float = 0.0
) -> float:
    return -2 * sigma**2 * math.log((threshold - background) / amplitude)


# ------------------------------------------------------------------------ relative thresholds
def test_fifty_percent_of_max_boundary_is_sigma_sqrt_2ln2() -> None:
    sigma, amplitude = 6.0, 10.0
    vol = make_volume(gaussian(amplitude, sigma))
    seg = segment_lesion(vol, seed_index=CENTRE, method="50max")
    # r50 = σ sqrt(2 ln 2) = 7.0645 mm -> r² = 49.91 mm², i.e. offsets with |n|² <= 12
    assert seg.n_voxels == count_within((sigma * math.sqrt(2 * math.log(2))) ** 2)
    assert seg.threshold == pytest.approx(5.0)
    assert seg.suv_max == 10.0
    assert seg.max_index == CENTRE
    assert seg.volume_ml == pytest.approx(seg.n_voxels * 0.008)


def test_forty_one_percent_of_max() -> None:
    sigma, amplitude = 6.0, 10.0
    vol = make_volume(gaussian(amplitude, sigma))
    seg = segment_lesion(vol, seed_index=CENTRE, method=SegmentationMethod.MAX_41)
    assert seg.threshold == pytest.approx(4.1)
    assert seg.n_voxels == count_within(-2 * sigma**2 * math.log(0.41))


def test_fifty_percent_of_peak_uses_the_1ml_sphere_mean() -> None:
    sigma, amplitude = 5.0, 10.0
    vol = make_volume(gaussian(amplitude, sigma))
    seg = segment_lesion(vol, seed_index=CENTRE, method="50peak")
    peak = peak_by_enumeration(amplitude, sigma)
    assert seg.suv_peak == pytest.approx(peak, rel=1e-12)
    assert seg.threshold == pytest.approx(0.5 * peak)
    assert seg.n_voxels == count_within(radius_squared_for(0.5 * peak, amplitude, sigma))


def test_a50peak_with_given_background() -> None:
    sigma, amplitude, background = 5.0, 8.0, 1.5
    vol = make_volume(gaussian(amplitude, sigma, background))
    seg = segment_lesion(vol, seed_index=CENTRE, method="a50peak", background=background)
    peak = peak_by_enumeration(amplitude, sigma, background)
    threshold = 0.5 * (peak + background)
    assert seg.threshold == pytest.approx(threshold)
    assert seg.background == background
    assert seg.background_source == "given"
    assert seg.n_voxels == count_within(radius_squared_for(threshold, amplitude, sigma, background))


def test_a50peak_measures_background_in_a_shell() -> None:
    sigma, amplitude, background = 4.0, 9.0, 1.0
    vol = make_volume(gaussian(amplitude, sigma, background))
    seg = segment_lesion(vol, seed_index=CENTRE, method="a50peak")
    # every shell voxel is >= 10 mm from the core, hence >= 10 mm from the centre, where the
    # blob adds at most 9 exp(-100 / 32) = 0.395; the median lies farther out (much less).
    assert seg.background_source == "shell"
    assert seg.background is not None
    assert background <= seg.background <= background + 9 * math.exp(-100 / 32)
    assert any("median of" in note for note in seg.notes)
    peak = peak_by_enumeration(amplitude, sigma, background)
    assert seg.threshold == pytest.approx(0.5 * (peak + seg.background))


def test_background_shell_outside_the_image_asks_for_a_background() -> None:
    vol = make_volume(np.ones((3, 3, 3)))
    with pytest.raises(InputError, match="give background explicitly"):
        segment_lesion(vol, seed_index=(1, 1, 1), method="a50peak", background_shell_mm=(50, 60))


# ------------------------------------------------------------------------ absolute thresholds
def step_sphere(radius_mm: float, inside: float, outside: float) -> np.ndarray:
    return np.where(squared_radii() <= radius_mm**2, inside, outside)


@pytest.mark.parametrize("method", ["suv4.0", "suv2.5"])
def test_fixed_threshold_on_a_step_sphere(method: str) -> None:
    # sphere of 10 mm radius at SUV 6 in background 1: both thresholds cut at the step
    vol = make_volume(step_sphere(10.0, 6.0, 1.0))
    seg = segment_lesion(vol, seed_index=CENTRE, method=method)
    assert seg.n_voxels == sum(
        1 for n in itertools.product(range(-5, 6), repeat=3) if sum(a * a for a in n) <= 25
    )
    assert seg.threshold == float(method[3:])


def test_fixed_threshold_parameter_below_background_takes_everything() -> None:
    vol = make_volume(step_sphere(10.0, 6.0, 1.0))
    seg = segment_lesion(vol, seed_index=CENTRE, method="fixed", fixed_threshold=0.5)
    assert seg.n_voxels == 31**3


def test_percist_threshold() -> None:
    # 1.5 x 2.0 + 2 x 0.3 = 3.6: the SUV-6 sphere, not the SUV-1 background
    vol = make_volume(step_sphere(10.0, 6.0, 1.0))
    seg = segment_lesion(vol, seed_index=CENTRE, method="percist", liver_mean=2.0, liver_sd=0.3)
    assert seg.threshold == pytest.approx(3.6)
    assert seg.n_voxels == count_within(100.0 + 1e-3)  # 10 mm surface voxels included
    with pytest.raises(InputError, match="liver_mean is required"):
        segment_lesion(vol, seed_index=CENTRE, method="percist", liver_sd=0.3)
    with pytest.raises(InputError, match="liver_sd must be a finite non-negative"):
        segment_lesion(vol, seed_index=CENTRE, method="percist", liver_mean=2.0, liver_sd=-1)


def test_absolute_threshold_refuses_a_bqml_image() -> None:
    vol = make_volume(step_sphere(10.0, 6000.0, 1000.0), unit="BQML")
    with pytest.raises(InputError, match=r"unit: an absolute SUV threshold needs an SUV image"):
        segment_lesion(vol, seed_index=CENTRE, method="suv2.5")
    # relative thresholds do not care about the unit
    assert segment_lesion(vol, seed_index=CENTRE, method="50max").n_voxels > 0


def test_empty_when_the_maximum_misses_the_threshold() -> None:
    vol = make_volume(gaussian(3.0, 5.0))
    seg = segment_lesion(vol, seed_index=CENTRE, method="suv4.0")
    assert seg.n_voxels == 0
    assert not seg.mask.any()
    assert "does not reach the threshold" in seg.notes[-1]


# ----------------------------------------------------------------------------- majority votes
@pytest.mark.parametrize(("method", "rank"), [("mv2", 2), ("mv3", 3)])
def test_majority_vote_of_nested_thresholds(method: str, rank: int) -> None:
    # For one radial blob every member is a ball {value >= T_m}; a voxel's votes are the number
    # of T_m <= its value, so MV_k is the ball at the k-th smallest threshold.
    sigma, amplitude, background = 6.0, 9.0, 1.0
    vol = make_volume(gaussian(amplitude, sigma, background))
    seg = segment_lesion(vol, seed_index=CENTRE, method=method, background=background)
    peak = peak_by_enumeration(amplitude, sigma, background)
    thresholds = sorted([2.5, 4.0, 0.41 * 10.0, 0.5 * (peak + background)])
    expected_r2 = radius_squared_for(thresholds[rank - 1], amplitude, sigma, background)
    assert seg.n_voxels == count_within(expected_r2)
    assert seg.threshold is None
    assert seg.votes_required == rank
    assert seg.members == MAJORITY_VOTE_METHODS


def test_majority_vote_needs_enough_members() -> None:
    vol = make_volume(gaussian(9.0, 6.0, 1.0))
    with pytest.raises(InputError, match="fewer vote members than votes required"):
        segment_lesion(vol, seed_index=CENTRE, method="mv3", vote_methods=["41max", "50max"])
    with pytest.raises(InputError, match="cannot contain a majority vote"):
        segment_lesion(vol, seed_index=CENTRE, method="mv2", vote_methods=["41max", "mv2"])


# ------------------------------------------------------------------------------- connectivity
def test_diagonally_touching_cubes_are_separate_components() -> None:
    img = np.ones((12, 12, 12))
    img[2:5, 2:5, 2:5] = 5.0
    img[5:8, 5:8, 5:8] = 5.0  # shares only the corner between (4,4,4) and (5,5,5)
    vol = make_volume(img)
    seg = segment_lesion(vol, seed_index=(3, 3, 3), method="suv4.0")
    assert seg.n_voxels == 27
    assert not seg.mask[5:8, 5:8, 5:8].any()
    bridged = img.copy()  # ImageVolume made `img` read-only
    bridged[4, 4, 5] = bridged[4, 5, 5] = 5.0  # a face path (4,4,4)-(4,4,5)-(4,5,5)-(5,5,5)
    seg = segment_lesion(make_volume(bridged), seed_index=(3, 3, 3), method="suv4.0")
    assert seg.n_voxels == 27 + 27 + 2


def test_large_component_grows_beyond_the_first_window() -> None:
    # a 1-voxel-thick line of 100 voxels is longer than the first 65-voxel labelling window
    img = np.ones((3, 3, 120))
    img[1, 1, 10:110] = 5.0
    seg = segment_lesion(make_volume(img), seed_index=(1, 1, 12), method="suv4.0")
    assert seg.n_voxels == 100


# ---------------------------------------------------------------------------- seeds and VOIs
def test_bounding_voi_picks_its_maximum_and_limits_the_result() -> None:
    sigma = 5.0
    img = np.zeros((31, 31, 62))
    img[:, :, :31] += gaussian(10.0, sigma)
    img[:, :, 31:] += gaussian(6.0, sigma)  # second blob at (15, 15, 46)
    vol = make_volume(img)
    box = np.zeros(img.shape, dtype=bool)
    box[:, :, 40:] = True
    seg = segment_lesion(vol, bounding_mask=box, method="50max")
    assert seg.max_index == (15, 15, 46)
    assert seg.suv_max == pytest.approx(6.0 + 10.0 * math.exp(-((31 * SPACING) ** 2) / 50))
    # cut the box through the second blob: only voxels inside it remain
    cut = np.zeros(img.shape, dtype=bool)
    cut[:, :, 46:] = True
    half = segment_lesion(vol, bounding_mask=cut, method="fixed", fixed_threshold=3.0)
    r2 = radius_squared_for(3.0, 6.0, sigma)
    expected = sum(
        1
        for n in itertools.product(range(-8, 9), repeat=3)
        if n[2] >= 0 and sum((a * SPACING) ** 2 for a in n) <= r2
    )
    assert half.n_voxels == expected
    assert not half.mask[:, :, :46].any()


def test_seed_in_lps_and_search_for_the_maximum() -> None:
    sigma, amplitude = 6.0, 10.0
    vol = make_volume(gaussian(amplitude, sigma))
    expected = count_within((sigma * math.sqrt(2 * math.log(2))) ** 2)
    near = vol.voxel_to_lps([HALF + 0.4, HALF - 0.3, HALF + 0.2])  # rounds to the centre
    assert segment_lesion(vol, seed_lps_mm=near, method="50max").n_voxels == expected
    # a click 2 voxels (4 mm) off the centre still finds the maximum within 10 mm
    off = segment_lesion(vol, seed_index=(HALF, HALF + 2, HALF), method="50max")
    assert off.max_index == CENTRE
    assert off.n_voxels == expected
    # without search the seed itself is the "maximum": threshold = 0.5 x A exp(-16 / 72)
    fixed = segment_lesion(
        vol, seed_index=(HALF, HALF + 2, HALF), method="50max", search_radius_mm=0
    )
    assert fixed.threshold == pytest.approx(0.5 * amplitude * math.exp(-16 / 72))


def test_seed_errors() -> None:
    vol = make_volume(gaussian(10.0, 5.0))
    with pytest.raises(InputError, match="exactly one of seed_index, seed_lps_mm and bounding"):
        segment_lesion(vol, method="41max")
    with pytest.raises(InputError, match="exactly one"):
        segment_lesion(vol, seed_index=CENTRE, seed_lps_mm=(0, 0, 0))
    with pytest.raises(GeometryError, match="seed lies outside the image"):
        segment_lesion(vol, seed_index=(0, 0, 40))
    with pytest.raises(GeometryError, match="bounding VOI does not match"):
        segment_lesion(vol, bounding_mask=np.ones((3, 3, 3), dtype=bool))
    with pytest.raises(InputError, match="unknown segmentation method"):
        segment_lesion(vol, seed_index=CENTRE, method="otsu")
    with pytest.raises(InputError, match="fixed_threshold is required"):
        segment_lesion(vol, seed_index=CENTRE, method="fixed")
    with pytest.raises(InputError, match="seed index must be three integers"):
        segment_lesion(vol, seed_index=(1.5, 2.0, 3.0))


def test_sheared_grid_is_refused() -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[0, 1] = 1.0
    vol = ImageVolume(array=gaussian(10.0, 5.0), affine=affine, unit="SUVbw")
    with pytest.raises(GeometryError, match="not orthogonal"):
        segment_lesion(vol, seed_index=CENTRE, method="41max")


def test_result_mask_is_read_only() -> None:
    seg = segment_lesion(make_volume(gaussian(10.0, 5.0)), seed_index=CENTRE, method="41max")
    with pytest.raises(ValueError, match="read-only"):
        seg.mask[0, 0, 0] = True
