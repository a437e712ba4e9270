"""Tests of immunopet.metrics: IBSI digital phantom, hand-computed peaks, NaN policy, ratios."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume
from immunopet.metrics import (
    MetricsWarning,
    VoiMetrics,
    measure_voi,
    tumour_to_blood_pool_ratio,
    tumour_to_reference_ratio,
    tumour_to_reference_ratios,
    voi_metrics,
)

# IBSI 1 digital phantom: 5 x 4 x 4 (x, y, z) voxels of 2.0 x 2.0 x 2.0 mm, 74 voxels in the ROI.
# Values and mask from theibsi/data_sets ibsi_1_digital_phantom (the DICOM version, CC BY 4.0), as
# converted to literals in PolusAI/nyxus tests/test_data.h (ibsi_phantom_z1..z4_intensity/_mask,
# MATLAB dicomread order: "x" there is the row, "y" the column), written here as [z][row][col].
IBSI_PHANTOM = np.array(
    [
        [[4, 4, 6, 4, 1], [4, 4, 6, 1, 1], [1, 1, 6, 1, 1], [1, 1, 6, 1, 1]],
        [[4, 1, 6, 4, 1], [1, 1, 3, 1, 1], [1, 1, 9, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 4, 6, 1, 1], [1, 1, 6, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 4, 4, 1, 1], [1, 4, 4, 1, 1], [1, 4, 4, 1, 1], [1, 4, 4, 1, 1]],
    ],
    dtype=np.float64,
)
IBSI_MASK = np.array(
    [
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 0, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]],
    ],
    dtype=bool,
)


def grid_volume(array: np.ndarray, spacing: tuple[float, float, float]) -> ImageVolume:
    dz, dy, dx = spacing
    return ImageVolume.from_attributes(
        array=array,
        image_position_mm=(0.0, 0.0, 0.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(dy, dx),
        slice_spacing_mm=dz,
        unit="SUVbw",
    )


# ----------------------------------------------------------------------------- IBSI reference
def test_ibsi_digital_phantom_reference_values() -> None:
    # IBSI 1 reference manual, digital phantom consensus values (3 significant digits):
    # mean 2.15, variance 3.05, minimum 1, maximum 6, local intensity peak 2.6, global 3.1.
    m = voi_metrics(IBSI_PHANTOM, IBSI_MASK, (2.0, 2.0, 2.0))
    assert m.n_voxels == 74
    assert m.mean == pytest.approx(2.15, abs=0.005)
    assert m.sd**2 == pytest.approx(3.05, abs=0.005)  # population variance, as IBSI
    assert m.min == 1.0
    assert m.max == 6.0  # the 9 lies outside the ROI
    assert m.peak_local == pytest.approx(2.6, abs=0.05)
    assert m.peak_global == pytest.approx(3.1, abs=0.05)
    # voxel counting: 74 x 8 mm³ = 592 mm³ (IBSI's mesh volume differs and is not computed)
    assert m.volume_ml == pytest.approx(0.592)
    # sum of ROI values = 159 (by hand from the arrays), so total = 159 / 74 x 0.592 = 1.272
    assert IBSI_PHANTOM[IBSI_MASK].sum() == 159
    assert m.total_activity == pytest.approx(159 * 0.008)


def test_ibsi_phantom_local_peak_is_the_best_of_tied_maxima() -> None:
    # Eight ROI voxels hold the maximum 6; IBSI takes the highest of their sphere means (2.6).
    m = voi_metrics(IBSI_PHANTOM, IBSI_MASK, (2.0, 2.0, 2.0))
    assert IBSI_PHANTOM[m.peak_local_index] == 6.0
    assert IBSI_MASK[m.peak_local_index]


# ------------------------------------------------------------------------ hand-computed cases
def test_single_hot_voxel_2mm_sphere_has_123_voxels() -> None:
    # integer offsets with i²+j²+k² <= (6.2/2)² = 9.61, by shells of i²+j²+k²:
    # 0:1, 1:6, 2:12, 3:8, 4:6, 5:24, 6:24, 8:12, 9:6+24 -> 123
    img = np.zeros((15, 15, 15))
    img[7, 7, 7] = 123.0
    mask = np.zeros_like(img, dtype=bool)
    mask[5:10, 5:10, 5:10] = True
    m = voi_metrics(img, mask, (2.0, 2.0, 2.0))
    assert m.peak_local == pytest.approx(1.0)
    assert m.peak_global == pytest.approx(1.0)
    assert m.peak_local_index == (7, 7, 7)


def test_anisotropic_sphere_counts_world_distances() -> None:
    # spacing (4, 2, 2): slice k=0 holds i²+j² <= 9.61 -> 29 voxels; slices k=±1 hold
    # 4(i²+j²) <= 38.44 - 16 -> i²+j² <= 5 -> 21 each; total 71.
    img = np.zeros((9, 15, 15))
    img[4, 7, 7] = 71.0
    mask = img > 0
    m = voi_metrics(img, mask, (4.0, 2.0, 2.0))
    assert m.peak_local == pytest.approx(1.0)
    assert m.volume_ml == pytest.approx(0.016)


def test_global_peak_differs_from_local_peak() -> None:
    # 4 mm voxels: the sphere is the 3x3x3 block minus its 8 corners = 19 voxels.
    img = np.zeros((7, 7, 15))
    img[2:5, 2:5, 9:12] = 5.0  # plateau: a sphere centred at (3, 3, 10) sees only 5s
    img[3, 3, 2] = 10.0  # an isolated spike: its sphere mean is 10 / 19
    mask = np.zeros_like(img, dtype=bool)
    mask[1:6, 1:6, 1:14] = True
    m = voi_metrics(img, mask, (4.0, 4.0, 4.0))
    assert m.max == 10.0
    assert m.peak_local == pytest.approx(10.0 / 19.0)
    assert m.peak_global == pytest.approx(5.0)
    assert m.peak_global_index == (3, 3, 10)


def test_peak_sphere_is_cut_at_the_image_border() -> None:
    # corner voxel (0,0,0) on 4 mm voxels: inside the image the sphere keeps offsets with
    # components in {0, 1} and at most two ones: 1 + 3 + 3 = 7 voxels -> (8 + 6 x 1) / 7 = 2.
    img = np.ones((4, 4, 4))
    img[0, 0, 0] = 8.0
    mask = np.zeros_like(img, dtype=bool)
    mask[0, 0, 0] = True
    m = voi_metrics(img, mask, (4.0, 4.0, 4.0))
    assert m.peak_local == pytest.approx(2.0)


def test_voxels_outside_the_mask_enter_the_peak() -> None:
    # mask = one voxel of value 1 surrounded by 2s: peak = (1 + 18 x 2) / 19 on 4 mm voxels.
    img = np.full((5, 5, 5), 2.0)
    img[2, 2, 2] = 1.0
    mask = np.zeros_like(img, dtype=bool)
    mask[2, 2, 2] = True
    m = voi_metrics(img, mask, (4.0, 4.0, 4.0))
    assert m.mean == 1.0
    assert m.peak_local == pytest.approx(37.0 / 19.0)


def test_statistics_by_hand() -> None:
    img = np.zeros((1, 1, 4))
    img[0, 0, :] = [1.0, 2.0, 3.0, 6.0]
    m = voi_metrics(img, img > 0, (2.0, 3.0, 5.0))
    # mean 3; deviations -2, -1, 0, 3 -> population variance 14/4 = 3.5
    assert m.mean == 3.0
    assert m.sd == pytest.approx(math.sqrt(3.5))
    assert m.volume_ml == pytest.approx(4 * 30 / 1000)
    assert m.total_activity == pytest.approx(3.0 * 0.12)


def test_peaks_match_brute_force_on_random_anisotropic_image() -> None:
    rng = np.random.default_rng(11)
    spacing = (3.27, 2.0, 2.5)
    img = rng.gamma(2.0, 1.0, size=(8, 11, 10))
    mask = np.zeros(img.shape, dtype=bool)
    mask[1:7, 2:10, 0:6] = rng.random((6, 8, 6)) < 0.6
    # brute force: loop over centres and every voxel of the image, distance in mm
    coords = np.argwhere(np.ones(img.shape, dtype=bool)) * np.asarray(spacing)
    flat = img.reshape(-1)
    means = {}
    for centre in map(tuple, np.argwhere(mask)):
        d = np.linalg.norm(coords - np.asarray(centre) * np.asarray(spacing), axis=1)
        means[centre] = flat[d <= 6.2].mean()
    hottest = img[mask].max()
    local = max(v for c, v in means.items() if img[c] == hottest)
    m = voi_metrics(img, mask, spacing)
    assert m.peak_local == pytest.approx(local, rel=1e-12)
    assert m.peak_global == pytest.approx(max(means.values()), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    offset=st.floats(-100, 100),
    scale=st.floats(0.1, 10),
    seed=st.integers(0, 2**16),
)
def test_affine_intensity_invariance(offset: float, scale: float, seed: int) -> None:
    # Every metric but volume is a mean/extreme of intensities: x -> a x + b maps it alike.
    rng = np.random.default_rng(seed)
    img = rng.random((6, 7, 8))
    mask = rng.random(img.shape) < 0.5
    mask[3, 3, 3] = True
    base = voi_metrics(img, mask, (2.0, 2.0, 2.0))
    moved = voi_metrics(img * scale + offset, mask, (2.0, 2.0, 2.0))
    for name in ("mean", "max", "min", "peak_local", "peak_global"):
        assert getattr(moved, name) == pytest.approx(
            getattr(base, name) * scale + offset, rel=1e-9, abs=1e-9
        )
    assert moved.sd == pytest.approx(base.sd * scale, rel=1e-9, abs=1e-12)
    assert base.min <= base.mean <= base.max
    assert base.peak_local <= base.peak_global


# --------------------------------------------------------------------------------- NaN policy
def test_nan_inside_mask_raises_by_default() -> None:
    img = np.ones((3, 3, 3))
    img[1, 1, 1] = np.nan
    with pytest.raises(InputError, match=r"lesion 2: image: non-finite .*1 of 27"):
        voi_metrics(img, np.ones_like(img, dtype=bool), (4.0, 4.0, 4.0), voi_name="lesion 2")


def test_nan_omitted_is_recorded_and_warned() -> None:
    img = np.full((3, 3, 3), 2.0)
    img[1, 1, 1] = np.nan
    img[0, 0, 0] = 4.0
    with pytest.warns(MetricsWarning, match="1 of 27 voxels are not finite"):
        m = voi_metrics(img, np.ones_like(img, dtype=bool), (4.0, 4.0, 4.0), on_nan="omit")
    assert m.n_missing == 1
    assert m.n_voxels == 27  # the volume still counts every mask voxel
    assert m.mean == pytest.approx((25 * 2.0 + 4.0) / 26)
    # peak at the corner: sphere in image = 7 voxels, none NaN -> (4 + 6 x 2) / 7
    assert m.peak_local == pytest.approx(16.0 / 7.0)
    assert len(m.warnings) == 1


def test_nan_outside_mask_is_left_out_of_the_sphere() -> None:
    # 4 mm voxels: 19-voxel sphere around the centre; one neighbour NaN -> mean over 18.
    img = np.full((5, 5, 5), 1.0)
    img[2, 2, 2] = 19.0
    img[2, 2, 3] = np.nan
    mask = np.zeros_like(img, dtype=bool)
    mask[2, 2, 2] = True
    m = voi_metrics(img, mask, (4.0, 4.0, 4.0))
    assert m.peak_local == pytest.approx((19.0 + 17.0) / 18.0)


# ------------------------------------------------------------------------------------- errors
def test_empty_mask_names_the_voi() -> None:
    img = np.ones((3, 3, 3))
    with pytest.raises(InputError, match="aorta: mask: the VOI is empty"):
        voi_metrics(img, np.zeros_like(img, dtype=bool), (2, 2, 2), voi_name="aorta")


def test_shape_mismatch_is_a_geometry_error() -> None:
    with pytest.raises(GeometryError, match=r"mask does not match the image .*\(3, 3, 3\)"):
        voi_metrics(np.ones((3, 3, 3)), np.ones((3, 3, 4), dtype=bool), (2, 2, 2))


def test_label_map_is_refused_as_mask() -> None:
    labels = np.zeros((3, 3, 3), dtype=np.int16)
    labels[1, 1, 1] = 2
    with pytest.raises(InputError, match="mask must be boolean"):
        voi_metrics(np.ones((3, 3, 3)), labels, (2, 2, 2))


def test_zero_one_integer_mask_is_accepted() -> None:
    mask = np.zeros((3, 3, 3), dtype=np.uint8)
    mask[1, 1, 1] = 1
    assert voi_metrics(np.ones((3, 3, 3)), mask, (2, 2, 2)).n_voxels == 1


@pytest.mark.parametrize("spacing", [(2, 2), (2, 0, 2), (2, -1, 2), (2, np.nan, 2)])
def test_invalid_spacing(spacing: tuple[float, ...]) -> None:
    with pytest.raises(GeometryError, match="spacing"):
        voi_metrics(np.ones((3, 3, 3)), np.ones((3, 3, 3), dtype=bool), spacing)


def test_result_is_frozen() -> None:
    m = voi_metrics(np.ones((3, 3, 3)), np.ones((3, 3, 3), dtype=bool), (2, 2, 2))
    assert isinstance(m, VoiMetrics)
    with pytest.raises(AttributeError):
        m.mean = 2.0  # type: ignore[misc]


# -------------------------------------------------------------------------------- measure_voi
def test_measure_voi_uses_the_volume_spacing() -> None:
    # same hand case as the anisotropic test: 71-voxel sphere on (4, 2, 2) mm voxels
    img = np.zeros((9, 15, 15))
    img[4, 7, 7] = 71.0
    vol = grid_volume(img, (4.0, 2.0, 2.0))
    m = measure_voi(vol, img > 0)
    assert m.peak_local == pytest.approx(1.0)
    assert m.volume_ml == pytest.approx(0.016)
    mask_volume = vol.with_array((img > 0).astype(np.uint8), unit="LABEL")
    assert measure_voi(vol, mask_volume).n_voxels == 1


def test_measure_voi_refuses_a_mask_on_another_grid() -> None:
    vol = grid_volume(np.ones((3, 3, 3)), (2.0, 2.0, 2.0))
    other = grid_volume(np.ones((3, 3, 3)), (3.0, 2.0, 2.0))
    with pytest.raises(GeometryError, match="not on the image grid"):
        measure_voi(vol, other)


def test_measure_voi_refuses_a_sheared_grid() -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[0, 1] = 1.0  # the row axis leans into the slice axis
    vol = ImageVolume(array=np.ones((3, 3, 3)), affine=affine)
    with pytest.raises(GeometryError, match="not orthogonal"):
        measure_voi(vol, np.ones((3, 3, 3), dtype=bool))


def test_measure_voi_on_oblique_orthogonal_grid() -> None:
    # A rotated (but orthogonal) grid keeps distances: same 19-voxel sphere on 4 mm voxels.
    c, s = math.cos(0.5), math.sin(0.5)
    vol = ImageVolume.from_attributes(
        array=np.zeros((5, 5, 5)),
        image_position_mm=(0.0, 0.0, 0.0),
        image_orientation=(c, s, 0, -s, c, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=4.0,
    )
    img = np.zeros((5, 5, 5))
    img[2, 2, 2] = 19.0
    m = measure_voi(vol.with_array(img), img > 0)
    assert m.peak_local == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- ratios
def test_tumour_to_reference_ratio() -> None:
    assert tumour_to_reference_ratio(4.1, 2.2) == pytest.approx(1.8636, abs=1e-4)  # 4.1/2.2


@pytest.mark.parametrize("reference", [0.0, -1.0, math.nan, math.inf])
def test_reference_must_be_positive(reference: float) -> None:
    with pytest.raises(InputError, match="aorta: reference value must be positive"):
        tumour_to_reference_ratio(4.1, reference, reference_name="aorta")


def test_ratios_for_a_table_column() -> None:
    ratios = tumour_to_reference_ratios([4.4, 3.9, np.nan], [2.2, 1.3, 2.0])
    np.testing.assert_allclose(ratios, [2.0, 3.0, np.nan])
    np.testing.assert_allclose(tumour_to_reference_ratios([3.0, 6.0], 1.5), [2.0, 4.0])
    with pytest.raises(InputError, match="position 1 must be positive"):
        tumour_to_reference_ratios([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(InputError, match="do not broadcast"):
        tumour_to_reference_ratios([1.0, 2.0, 3.0], [1.0, 2.0])


def test_tumour_to_blood_pool_ratio_is_a_ratio_of_means() -> None:
    # durvalumab study, 120 h: mean lesion SUVpeak 3.9 / mean aorta 1.9 = 2.05 (reported 2.1)
    lesions = [3.0, 4.8, np.nan]  # mean 3.9, the NaN is a missing lesion
    blood = [1.7, 2.1]  # mean 1.9
    assert tumour_to_blood_pool_ratio(lesions, blood) == pytest.approx(3.9 / 1.9)
    with pytest.raises(InputError, match="blood_pool_values"):
        tumour_to_blood_pool_ratio(lesions, [np.nan])
    with pytest.raises(InputError, match="must be positive"):
        tumour_to_blood_pool_ratio(lesions, [-1.0, 0.5])
    with pytest.raises(InputError, match="no lesion value"):
        tumour_to_blood_pool_ratio([], blood)


def test_brute_force_helper_counts_the_2mm_sphere() -> None:
    # guards the hand count used above with a separate enumeration
    count = sum(
        1
        for i, j, k in itertools.product(range(-3, 4), repeat=3)
        if (2 * i) ** 2 + (2 * j) ** 2 + (2 * k) ** 2 <= 6.2**2
    )
    assert count == 123


def test_describe_voi_geometry_on_the_bounding_box_equals_the_whole_grid():
    """The cropped geometry of describe_voi equals the geometry computed on the full grid."""
    from immunopet.image import ImageVolume
    from immunopet.metrics import describe_voi
    from immunopet.voi.geometry import centroid_lps, long_axis_mm, max_diameter_3d_mm

    rng = np.random.default_rng(3)
    affine = np.diag([3.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = (-40.0, 12.0, 7.0)
    volume = ImageVolume(array=rng.uniform(0, 5, size=(30, 40, 35)), affine=affine)
    mask = np.zeros(volume.shape, dtype=bool)
    mask[10:16, 5:19, 20:27] = True
    mask[12, 19, 27] = True  # an appendix so the diameters are not axis-aligned
    described = describe_voi(volume, mask)
    assert described.long_axis_mm == pytest.approx(long_axis_mm(mask, volume))
    assert described.diameter_3d_mm == pytest.approx(max_diameter_3d_mm(mask, volume))
    np.testing.assert_allclose(described.centroid_lps_mm, centroid_lps(volume, mask))
    # the centroid by hand: mean voxel index mapped through the affine
    expected = volume.voxel_to_lps(np.argwhere(mask).mean(axis=0))
    np.testing.assert_allclose(described.centroid_lps_mm, expected)
    assert described.metrics.n_voxels == 6 * 14 * 7 + 1
