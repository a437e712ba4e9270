"""Anatomy and scanner model of the synthetic trial (pure numpy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.image import Unit
from immunopet.synthetic.anatomy import (
    ORGAN_NAMES,
    Lesion,
    Patient,
    Tissue,
    VoxelGrid,
    build_anatomy,
    draw_lesions,
    organ_points_mm,
    place_lesions,
)
from immunopet.synthetic.scanner import (
    ScannerModel,
    activity_concentration_bqml,
    simulate_ct,
    simulate_pet,
)

ORGAN_TISSUE = {
    "blood_pool": Tissue.BLOOD_POOL,
    "liver": Tissue.LIVER,
    "spleen": Tissue.SPLEEN,
    "kidney": Tissue.KIDNEY,
    "lung": Tissue.LUNG,
    "bone_marrow": Tissue.BONE_MARROW,
    "brain": Tissue.BRAIN,
}
GRID = VoxelGrid.centred(shape=(240, 128, 128), spacing_mm=(4.0, 4.0, 4.0), top_z_mm=8.0)
HALF_LIFE_S = 78.41 * 3600


@pytest.mark.parametrize(
    "patient",
    [Patient(1.52, 45.0, "F"), Patient(1.75, 75.0, "M"), Patient(1.92, 120.0, "M")],
)
def test_organ_spheres_lie_inside_their_organ(patient: Patient) -> None:
    rng = np.random.default_rng(0)
    lesions = place_lesions(patient, n_tumours=12, n_large=6, n_nodes=4, near_spleen=True, rng=rng)
    anatomy = build_anatomy(GRID, patient, lesions)
    z, y, x = GRID.axes_mm()
    points = organ_points_mm(patient)
    assert tuple(points) == ORGAN_NAMES
    for organ, (px, py, pz) in points.items():
        # 2 cm sphere: radius 10 mm
        inside = (
            (z[:, None, None] - pz) ** 2
            + (y[None, :, None] - py) ** 2
            + (x[None, None, :] - px) ** 2
        ) <= 100.0
        assert inside.sum() >= 45  # 4.19 mL / 0.064 mL = 65 voxels, fewer when off-centre
        assert set(np.unique(anatomy.tissue[inside])) == {ORGAN_TISSUE[organ]}, organ
        assert not anatomy.lesion_labels[inside].any(), organ


def test_lesions_sizes_numbers_and_spleen_contact() -> None:
    patient = Patient(1.75, 75.0, "M")
    lesions = place_lesions(
        patient, n_tumours=10, n_large=4, n_nodes=3, near_spleen=True, rng=np.random.default_rng(1)
    )
    assert [lesion.number for lesion in lesions] == list(range(1, 14))
    assert sum(lesion.fdg_positive for lesion in lesions) == 10
    long_axes = [lesion.long_axis_mm for lesion in lesions]
    assert sum(a >= 20 for a in long_axes[:10]) == 4
    assert all(8.0 <= a <= 70.0 for a in long_axes)
    (spleen_lesion,) = [lesion for lesion in lesions if lesion.near_spleen]
    anatomy = build_anatomy(GRID, patient, lesions)
    mask = anatomy.lesion_labels == spleen_lesion.number
    # a neighbouring voxel of the lesion (one 4 mm step along x) is spleen
    shifted = np.zeros_like(mask)
    shifted[:, :, 1:] = mask[:, :, :-1]
    assert (anatomy.tissue[shifted & ~mask] == Tissue.SPLEEN).any()


def test_necrotic_core_inside_large_lesion_only() -> None:
    big = Lesion(1, "lung", (80.0, 0.0, -380.0), (25.0, 20.0, 20.0), True)
    small = Lesion(2, "lung", (-80.0, 0.0, -380.0), (8.0, 8.0, 8.0), True)
    labels, core = draw_lesions(GRID, (big, small))
    assert big.necrotic and not small.necrotic
    assert core.any()
    assert set(np.unique(labels[core])) == {1}
    # core semi-axes 0.55x: volume fraction 0.55**3 = 0.166 (voxelised: within 25 %)
    assert core.sum() / (labels == 1).sum() == pytest.approx(0.55**3, rel=0.25)


def test_subvoxel_lesion_keeps_one_voxel() -> None:
    coarse = VoxelGrid.centred(shape=(10, 10, 10), spacing_mm=(8.0, 8.0, 8.0), top_z_mm=0.0)
    tiny = Lesion(1, "lung", (2.0, 2.0, -36.0), (2.0, 2.0, 2.0), True)
    labels, _ = draw_lesions(coarse, (tiny,))
    assert int((labels == 1).sum()) == 1


def test_activity_concentration_by_hand() -> None:
    # SUV 4, 37 MBq, 80 kg, 72 h: 4 * 37e6 * 2**(-72/78.41) / 80000 = 978.93 Bq/mL
    by_hand = 4 * 37e6 * 0.5 ** (72 / 78.41) / 80000
    value = activity_concentration_bqml(
        4.0,
        injected_activity_bq=37e6,
        weight_kg=80.0,
        hours_since_injection=72.0,
        half_life_s=HALF_LIFE_S,
    )
    assert value == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(978.93, abs=0.01)


def _uniform_suv(value: float) -> object:
    grid = VoxelGrid.centred(shape=(30, 30, 30), spacing_mm=(4.0, 4.0, 4.0), top_z_mm=0.0)
    return grid.volume(np.full(grid.shape, value), Unit.SUV_BW)


def test_noise_grows_with_time_and_blur_keeps_total() -> None:
    suv = _uniform_suv(5.0)
    cov = []
    for hours in (72.0, 168.0):
        pet = simulate_pet(
            suv,
            injected_activity_bq=37e6,
            weight_kg=75.0,
            hours_since_injection=hours,
            half_life_s=HALF_LIFE_S,
            frame_duration_s=600.0,
            scanner=ScannerModel(blur=False),
            rng=np.random.default_rng(2),
        )
        values = pet.array[5:-5, 5:-5, 5:-5].astype(np.float64)
        cov.append(values.std() / values.mean())
    # relative noise ~ 1/sqrt(C): C falls by 2**(-96/78.41) -> noise grows by 2**(48/78.41)
    assert cov[1] / cov[0] == pytest.approx(2 ** (48 / 78.41), rel=0.1)
    point = np.zeros((31, 31, 31))
    point[15, 15, 15] = 1.0
    grid = VoxelGrid.centred(shape=(31, 31, 31), spacing_mm=(4.0, 4.0, 4.0), top_z_mm=0.0)
    blurred = simulate_pet(
        grid.volume(point, Unit.SUV_BW),
        injected_activity_bq=1e6,
        weight_kg=1.0,
        hours_since_injection=0.0,
        half_life_s=HALF_LIFE_S,
        frame_duration_s=600.0,
        scanner=ScannerModel(noise=False),
        rng=np.random.default_rng(0),
    )
    # SUV 1 with A/W = 1000 Bq/g: 1000 Bq/mL in one voxel; blur spreads but keeps the sum
    assert float(blurred.array.sum()) == pytest.approx(1000.0, rel=1e-4)
    profile = blurred.array[15, 15, :].astype(np.float64)
    # FWHM 6.5 mm -> sigma 2.76 mm = 0.69 voxel; neighbour/centre = exp(-1/(2*0.69**2))
    sigma_vox = 6.5 / 2.3548 / 4.0
    assert profile[16] / profile[15] == pytest.approx(np.exp(-1 / (2 * sigma_vox**2)), rel=0.05)


def test_ct_hounsfield_units() -> None:
    patient = Patient(1.75, 75.0, "M")
    anatomy = build_anatomy(GRID, patient, ())
    ct = simulate_ct(anatomy, scanner=ScannerModel(noise=False), rng=np.random.default_rng(0))
    assert ct.unit == Unit.HU
    expected = {Tissue.AIR: -1000, Tissue.LUNG: -850, Tissue.FAT: -100, Tissue.BONE: 700}
    for tissue, hu in expected.items():
        assert set(np.unique(ct.array[anatomy.tissue == tissue])) == {hu}
