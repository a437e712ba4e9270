"""The per-scan job (immunopet.study.pipeline) on a synthetic trial with known truth.

The trial is the ``tiny`` design reduced to two patients (one series, 72 h and 120 h) and
simulated *without blur and without noise* (``ScannerModel(blur=False, noise=False)``): every
organ is then uniform at its true SUV, so a 2 cm sphere inside it measures exactly the value
of ``truth/organs.csv``, and a visible lesion's label-map VOI holds exactly its voxels, whose
mean is the ``suv_true`` of ``truth/lesions.csv``. What is left is the 16-bit storage of the
DICOM pixels (per-slice rescale slope = slice max / 32767, so at most 1.5e-5 of the slice
maximum), the 6 significant digits of the truth CSV and float32 arithmetic: a relative
tolerance of 1e-3 covers them with a wide margin.

The trial is generated once per test session (about 10 s) into the session's base temporary
folder and shared with ``test_study_store.py`` and ``test_study_runner.py``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from immunopet.errors import GeometryError, InputError
from immunopet.io.bids import pet_sidecar
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.masks import read_label_map
from immunopet.io.nifti import write_nifti
from immunopet.study.manifest import load_manifest
from immunopet.study.model import (
    AnalysisSettings,
    Exclusion,
    ScanRef,
    Study,
    VoiSource,
)
from immunopet.study.pipeline import process_scan
from immunopet.suv.volume import read_suv_volume

ZR89_HALF_LIFE_H = 78.41

CONTRACT_COLUMNS = [
    "patient",
    "series",
    "hours_pi",
    "voi",
    "kind",
    "suv_mean",
    "suv_max",
    "suv_peak",
    "volume_ml",
    "long_axis_mm",
    "scan_id",
    "nominal_hours",
    "suv_min",
    "suv_sd",
    "suv_peak_local",
    "suv_peak_global",
    "n_voxels",
    "total_activity",
    "diameter_3d_mm",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "method",
    "source",
    "measurable",
    "ratio_to_reference",
    "distance_to_spill_in_organ_mm",
    "excluded",
    "exclusion_reason",
    "suggested_exclusion",
    "warnings",
]


# ---------------------------------------------------------------------------- shared trial
def generate_exact_trial(base: Path) -> Path:
    """The reduced noise-free, blur-free trial under ``base`` (generated once, then reused)."""
    from immunopet.synthetic.presets import TINY
    from immunopet.synthetic.scanner import ScannerModel
    from immunopet.synthetic.trial import generate_trial

    root = base / "exact_trial"
    if not (root / "README.txt").exists():  # README.txt is written last
        config = dataclasses.replace(
            TINY,
            name="exact",
            clinical_rows=(1, 9),
            tumours_per_patient=(4, 4),
            large_per_patient=(2, 2),
            nodes_per_patient=(1, 1),
            series=("tracer-only",),
            spleen_lesion_patient="P02",
            scanner=ScannerModel(blur=False, noise=False),
        )
        generate_trial(root, preset=config, seed=0)
    return root


def study_of(root: Path, *, settings: AnalysisSettings | None = None) -> Study:
    """The trial's own manifest (``study.toml``, paths absolute once read)."""
    study = load_manifest(root / "study.toml")
    return study if settings is None else dataclasses.replace(study, settings=settings)


@pytest.fixture(scope="session")
def exact_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_exact_trial(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def results(exact_trial: Path) -> dict[str, object]:
    """process_scan of every scan of the trial (about 0.3 s each)."""
    study = study_of(exact_trial)
    return {ref.scan_id: process_scan(ref, study.settings) for ref in study.scans()}


def first_ref(root: Path) -> ScanRef:
    return next(study_of(root).scans())


def with_vois(ref: ScanRef, *vois: VoiSource) -> ScanRef:
    return dataclasses.replace(ref, scan=dataclasses.replace(ref.scan, vois=vois))


def frame(result: object) -> pd.DataFrame:
    return pd.DataFrame(list(result.measurements))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- truth
def test_organ_suvmean_matches_truth(exact_trial: Path, results: dict[str, object]) -> None:
    truth = pd.read_csv(exact_trial / "truth" / "organs.csv")
    rows = pd.concat([frame(r) for r in results.values()])
    organs = rows[rows["kind"] == "organ"]
    merged = organs.merge(
        truth,
        left_on=["patient", "series", "nominal_hours", "voi"],
        right_on=["patient", "series", "nominal_hours", "organ"],
        validate="one_to_one",
    )
    assert len(merged) == len(truth) == 4 * 7  # 4 scans x 7 organs
    np.testing.assert_allclose(merged["suv_mean"], merged["suv_true"], rtol=1e-3)
    # a uniform organ: the IBSI peak (mean of 1 cm³ around the hottest voxel) is the same value
    np.testing.assert_allclose(merged["suv_peak"], merged["suv_true"], rtol=1e-3)


def test_visible_lesions_match_truth(exact_trial: Path, results: dict[str, object]) -> None:
    truth = pd.read_csv(exact_trial / "truth" / "lesions.csv")
    truth = truth[truth["visible"]].assign(voi=lambda t: t["lesion"].astype(str))
    rows = pd.concat([frame(r) for r in results.values()])
    labelled = rows[rows["method"] == "label-map"]
    merged = labelled.merge(truth, on=["patient", "series", "nominal_hours", "voi"])
    assert len(merged) == len(truth) == len(labelled) > 0
    np.testing.assert_array_equal(merged["n_voxels_x"], merged["n_voxels_y"])
    np.testing.assert_allclose(merged["suv_mean"], merged["suv_true"], rtol=1e-3)
    # 8 mm voxels: volume = n x 0.512 mL
    np.testing.assert_allclose(merged["volume_ml"], merged["n_voxels_x"] * 0.512)


def test_lesion_rows_for_every_label_and_sphere(
    exact_trial: Path, results: dict[str, object]
) -> None:
    scans = pd.read_csv(exact_trial / "scans.csv")
    for row in scans.itertuples():
        labels = np.unique(np.asarray(nib.load(exact_trial / row.lesion_map).dataobj))
        spheres = pd.read_csv(exact_trial / row.lesion_spheres)["lesion"]
        organs = pd.read_csv(exact_trial / row.organ_points)["organ"]
        expected = {str(v) for v in labels if v != 0} | {str(v) for v in spheres}
        rows = frame(results[f"{row.patient}/{row.series}/{row.nominal_hours:g}h"])
        assert set(rows.loc[rows["kind"] == "lesion", "voi"]) == expected
        assert set(rows.loc[rows["kind"] == "organ", "voi"]) == set(organs)
        assert len(rows) == len(expected) + len(organs)


def test_scan_row_against_hand_calculation(exact_trial: Path, results: dict[str, object]) -> None:
    scans = pd.read_csv(exact_trial / "scans.csv")
    for row in scans.itertuples():
        scan = results[f"{row.patient}/{row.series}/{row.nominal_hours:g}h"].scan  # type: ignore[attr-defined]
        assert scan["hours_pi"] == pytest.approx(row.hours_pi, abs=1e-3)
        assert scan["weight_kg"] == pytest.approx(row.weight_kg)
        assert scan["injected_activity_bq"] == pytest.approx(row.injected_activity_bq)
        assert scan["decay_correction"] == "START"
        # QIBA: SUVbw factor = weight (g) / activity at injection (Bq) x decay from the scan
        # start back to injection, 2^(t / T1/2); e.g. P01 72 h: 64700 / 37e6 x 2^(72.3028 /
        # 78.41) = 1.7486e-3 x 1.8950 = 3.3136e-3 g/Bq
        expected = (
            row.weight_kg * 1000 / row.injected_activity_bq * 2 ** (row.hours_pi / ZR89_HALF_LIFE_H)
        )
        assert scan["suv_bw_factor"] == pytest.approx(expected, rel=1e-4)
        assert scan["n_vois"] == len(frame(results[scan["scan_id"]]))
        assert scan["normalisation"] == "bw"


def test_measurement_columns_are_the_contract(results: dict[str, object]) -> None:
    for result in results.values():
        for row in result.measurements:  # type: ignore[attr-defined]
            assert list(row) == CONTRACT_COLUMNS


def test_relations_within_a_scan(results: dict[str, object]) -> None:
    for result in results.values():
        rows = frame(result)
        blood = rows.loc[(rows["kind"] == "organ") & (rows["voi"] == "blood_pool"), "suv_peak"]
        lesions = rows[rows["kind"] == "lesion"]
        organs = rows[rows["kind"] == "organ"]
        np.testing.assert_allclose(
            lesions["ratio_to_reference"], lesions["suv_peak"] / float(blood.iloc[0])
        )
        assert organs["ratio_to_reference"].isna().all()
        assert list(lesions["measurable"]) == list(lesions["long_axis_mm"] >= 20.0)
        assert organs["measurable"].isna().all()
        assert (lesions["distance_to_spill_in_organ_mm"] >= 0).all()
        assert organs["distance_to_spill_in_organ_mm"].isna().all()
        # settings.peak = "local"
        assert list(rows["suv_peak"]) == list(rows["suv_peak_local"])
        assert not rows["excluded"].any()


def test_global_peak_setting(exact_trial: Path) -> None:
    ref = first_ref(exact_trial)
    result = process_scan(ref, AnalysisSettings(peak="global"))
    rows = frame(result)
    assert list(rows["suv_peak"]) == list(rows["suv_peak_global"])


# ---------------------------------------------------------------------------- hand-made VOIs
def voxel_centre(root: Path, index: tuple[int, int, int]) -> np.ndarray:
    volume = read_suv_volume(first_ref(root).scan.pet).volume
    return np.asarray(volume.voxel_to_lps(np.array(index, dtype=float)))


def write_points(path: Path, column: str, rows: list[tuple[str, np.ndarray, str]]) -> Path:
    lines = [f"{column},x_mm,y_mm,z_mm,{rows[0][2].split('=')[0]}"]
    for name, centre, size in rows:
        lines.append(f"{name},{centre[0]:.4f},{centre[1]:.4f},{centre[2]:.4f},{size.split('=')[1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_spill_in_warning_by_distance(exact_trial: Path, tmp_path: Path) -> None:
    # The distance is to the spleen itself (the trial's organ label map, or the region grown
    # in the PET around the spleen VOI), not to the 2 cm sphere. Lesion spheres of 0.1 mL
    # (radius 2.9 mm) hold only their centre voxel; "near" is the face neighbour (8 mm) of
    # the spleen voxel with the largest column index, "far" three columns further (24 mm: no
    # spleen voxel has a larger column index).
    ref = first_ref(exact_trial)
    assert ref.scan.organ_masks is not None
    pet = load_series_volume(find_one_pet(ref.scan.pet))
    spleen = read_label_map(ref.scan.organ_masks, reference=pet).mask_by_name("spleen")
    where = np.argwhere(spleen)
    k, j, i = where[np.argmax(where[:, 2])]
    centre = tuple(float(v) for v in pet.voxel_to_lps(np.rint(where.mean(axis=0))))
    assert spleen[tuple(np.rint(where.mean(axis=0)).astype(int))]
    near = tuple(float(v) for v in pet.voxel_to_lps([k, j, i + 1]))
    far = tuple(float(v) for v in pet.voxel_to_lps([k, j, i + 3]))
    organs = write_points(tmp_path / "organs.csv", "organ", [("spleen", centre, "diameter_mm=20")])
    lesions = write_points(
        tmp_path / "lesions.csv",
        "lesion",
        [("near", near, "volume_ml=0.1"), ("far", far, "volume_ml=0.1")],
    )
    with_masks = with_vois(ref, VoiSource(lesions), VoiSource(organs))
    grown = dataclasses.replace(
        with_masks, scan=dataclasses.replace(with_masks.scan, organ_masks=None)
    )
    for scan_ref, how in ((with_masks, "the organ mask"), (grown, "region grown in the PET")):
        result = process_scan(scan_ref, AnalysisSettings(spill_in_distance_mm=13.0))
        rows = frame(result).set_index("voi")
        assert rows.loc["near", "n_voxels"] == rows.loc["far", "n_voxels"] == 1
        assert rows.loc["near", "distance_to_spill_in_organ_mm"] == pytest.approx(8.0)
        assert rows.loc["far", "distance_to_spill_in_organ_mm"] == pytest.approx(24.0)
        assert f"lesion near lies 8.0 mm from the spleen ({how}" in rows.loc["near", "warnings"]
        assert (
            rows.loc["near", "suggested_exclusion"] == "spill-in from the spleen (8.0 mm from it)"
        )
        assert not rows.loc["near", "excluded"]
        assert "spill-in" not in rows.loc["far", "warnings"]
        assert rows.loc["far", "suggested_exclusion"] is None
    # no blood_pool VOI in this scan: no ratio, and the scan says so
    assert math.isnan(rows.loc["near", "ratio_to_reference"])
    assert any(
        f"{ref.scan_id}: no organ VOI named 'blood_pool' (settings.reference_organ; organs: "
        "spleen): the lesions have no ratio_to_reference" in w
        for w in result.warnings
    )
    assert not any("spill-in not checked" in w for w in result.warnings)
    # a spill-in organ the scan does not have: the check cannot be made, and the scan says so
    result = process_scan(grown, AnalysisSettings(spill_in_organ="pancreas"))
    assert frame(result)["distance_to_spill_in_organ_mm"].isna().all()
    assert any(
        f"{ref.scan_id}: spill-in not checked: no organ VOI or organ-mask label named "
        "'pancreas' (settings.spill_in_organ)" in w
        for w in result.warnings
    )


def test_exclusions_mark_lesion_rows(exact_trial: Path) -> None:
    ref = first_ref(exact_trial)
    exclusions = (
        Exclusion(patient=ref.patient, lesion="1", reason="spill-in from the spleen"),
        Exclusion(patient="P99", lesion="2", reason="another patient"),
    )
    rows = frame(process_scan(ref, AnalysisSettings(), exclusions=exclusions))
    lesions = rows[rows["kind"] == "lesion"].set_index("voi")
    assert lesions.loc["1", "excluded"]
    assert lesions.loc["1", "exclusion_reason"] == "spill-in from the spleen"
    assert not lesions.drop(index="1")["excluded"].any()
    assert lesions.drop(index="1")["exclusion_reason"].isna().all()


def test_duplicate_lesion_ids_in_one_scan(exact_trial: Path, tmp_path: Path) -> None:
    ref = first_ref(exact_trial)
    lesion_map = ref.scan.vois[0].path
    label = int(max(np.unique(np.asarray(nib.load(lesion_map).dataobj))))
    spheres = write_points(
        tmp_path / "spheres.csv",
        "lesion",
        [(str(label), voxel_centre(exact_trial, (60, 32, 32)), "volume_ml=1")],
    )
    ref = with_vois(ref, VoiSource(lesion_map, "lesion"), VoiSource(spheres, "lesion"))
    with pytest.raises(InputError, match=rf"P01/tracer-only/72h: two lesion VOIs named '{label}'"):
        process_scan(ref, AnalysisSettings())


def test_voi_outside_the_field_of_view(exact_trial: Path, tmp_path: Path) -> None:
    outside = write_points(
        tmp_path / "spheres.csv", "lesion", [("7", np.array([5000.0, 0.0, -300.0]), "volume_ml=1")]
    )
    ref = with_vois(first_ref(exact_trial), VoiSource(outside, "lesion"))
    with pytest.raises(GeometryError, match="outside the image field of view"):
        process_scan(ref, AnalysisSettings())


def test_voi_without_kind(exact_trial: Path) -> None:
    ref = first_ref(exact_trial)
    ref = with_vois(ref, VoiSource(ref.scan.vois[0].path))  # a label map states no kind
    with pytest.raises(InputError, match="kind unknown"):
        process_scan(ref, AnalysisSettings())


# ---------------------------------------------------------------------------- NIfTI PET
def test_nifti_pet_gives_the_dicom_numbers(exact_trial: Path, tmp_path: Path) -> None:
    ref = first_ref(exact_trial)
    suv = read_suv_volume(ref.scan.pet)
    stored = load_series_volume(find_one_pet(ref.scan.pet))  # Bq/mL at scan start
    sidecar = pet_sidecar(suv.derivation, units="Bq/mL", frame_duration_s=600.0)
    nifti = write_nifti(stored, tmp_path / "pet.nii.gz", sidecar=sidecar)
    from_dicom = process_scan(ref, AnalysisSettings())
    from_nifti = process_scan(
        dataclasses.replace(ref, scan=dataclasses.replace(ref.scan, pet=nifti)),
        AnalysisSettings(),
    )
    a, b = frame(from_dicom), frame(from_nifti)
    np.testing.assert_allclose(b["suv_mean"], a["suv_mean"], rtol=1e-5)
    np.testing.assert_allclose(b["suv_peak"], a["suv_peak"], rtol=1e-5)
    assert from_nifti.scan["hours_pi"] == pytest.approx(from_dicom.scan["hours_pi"], abs=1e-6)
    assert from_nifti.scan["suv_bw_factor"] == pytest.approx(
        from_dicom.scan["suv_bw_factor"], rel=1e-9
    )
    assert from_nifti.scan["branch"] == "PET-BIDS/Bq/mL"
    assert from_nifti.scan["injection_datetime"] is None  # the sidecar keeps no date


def test_nifti_pet_without_sidecar(exact_trial: Path, tmp_path: Path) -> None:
    ref = first_ref(exact_trial)
    stored = load_series_volume(find_one_pet(ref.scan.pet))
    nifti = write_nifti(stored, tmp_path / "pet.nii.gz")
    ref = dataclasses.replace(ref, scan=dataclasses.replace(ref.scan, pet=nifti))
    with pytest.raises(InputError, match="needs its PET-BIDS sidecar"):
        process_scan(ref, AnalysisSettings())
