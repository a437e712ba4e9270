"""Spill-in: the distance of a lesion to the organ itself, not to the organ's reference sphere.

The synthetic tiny trial places one adrenal lesion touching the spleen (patient P03, lesion 2,
``near_spleen`` in ``lesions.csv``); every other lesion lies 100 mm or more from it (their
centres and the spleen's, ``lesions.csv`` and ``anatomy.ORGAN_CENTRES``). With 8 mm voxels a
lesion voxel diagonally next to a spleen voxel is 8 x sqrt(2) = 11.3 mm away, within the
default 13 mm warning distance; the old check measured 28 mm to the 2 cm spleen sphere.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from immunopet.image import ImageVolume
from immunopet.io.nifti import read_nifti
from immunopet.study.manifest import load_manifest
from immunopet.study.model import Study, VoiSource
from immunopet.study.pipeline import process_scan
from immunopet.synthetic.trial import generate_trial
from immunopet.voi.geometry import distance_to_mask_mm, grow_organ_region


def test_grown_region_is_the_connected_organ_above_half_its_mean() -> None:
    # a 6 x 6 x 6 "spleen" of 20 next to a "liver" of 7 and a detached hot lesion of 18
    image = np.full((12, 12, 20), 1.0)
    image[3:9, 3:9, 2:8] = 20.0
    image[3:9, 3:9, 8:12] = 7.0
    image[5:7, 5:7, 14:16] = 18.0
    volume = ImageVolume.from_attributes(
        array=image,
        image_position_mm=(0, 0, 0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=4.0,
    )
    seed = np.zeros(image.shape, dtype=bool)
    seed[5:7, 5:7, 4:6] = True  # the reference "sphere" in the middle of the spleen
    grown = grow_organ_region(volume, seed)
    expected = np.zeros(image.shape, dtype=bool)
    expected[3:9, 3:9, 2:8] = True  # 20 >= 10; the liver (7) and the detached lesion are not
    np.testing.assert_array_equal(grown, expected)
    lesion = np.zeros(image.shape, dtype=bool)
    lesion[5:7, 5:7, 10] = True  # 3 columns (12 mm) beyond the spleen's last column (7)
    assert distance_to_mask_mm(volume, lesion, grown) == pytest.approx(12.0)
    assert distance_to_mask_mm(volume, lesion, seed) == pytest.approx(20.0)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Study, set[tuple[str, str]]]:
    out = tmp_path_factory.mktemp("spill") / "trial"
    generate_trial(out, preset="tiny", seed=0)
    with open(out / "lesions.csv", newline="", encoding="utf-8") as fp:
        near = {
            (row["patient"], row["lesion"])
            for row in csv.DictReader(fp)
            if row["near_spleen"] == "True"
        }
    return load_manifest(out / "study.toml"), near


def _lesion_rows(study: Study, *, organ_masks: bool) -> list[dict[str, object]]:
    rows = []
    for ref in study.scans():
        assert ref.scan.organ_masks is not None  # the trial ships its organ masks
        if not organ_masks:
            ref = replace(ref, scan=replace(ref.scan, organ_masks=None))
        result = process_scan(ref, study.settings, exclusions=study.exclusions)
        rows += [m for m in result.measurements if m["kind"] == "lesion"]
    return rows


@pytest.mark.parametrize("organ_masks", [True, False], ids=["organ-masks", "grown-region"])
def test_spill_in_fires_on_the_near_spleen_lesion_only(
    trial: tuple[Study, set[tuple[str, str]]], organ_masks: bool
) -> None:
    study, near = trial
    assert near == {("P03", "2")}
    rows = _lesion_rows(study, organ_masks=organ_masks)
    flagged = {(r["patient"], r["voi"], r["series"]) for r in rows if r["suggested_exclusion"]}
    # delineated (label map) in both tracer-only scans; after predose it is invisible and
    # gets a 1 mL sphere at its centre, 17.9 mm from the spleen: no warning there
    assert flagged == {("P03", "2", "tracer-only")}
    for row in rows:
        if row["suggested_exclusion"]:
            assert row["distance_to_spill_in_organ_mm"] == pytest.approx(8 * np.sqrt(2))
            assert row["suggested_exclusion"] == "spill-in from the spleen (11.3 mm from it)"
            how = "the organ mask" if organ_masks else "region grown in the PET"
            note = next(w for w in str(row["warnings"]).split(" | ") if "spill-in" in w)
            assert "lesion 2 lies 11.3 mm from the spleen (" + how in note
            # the study's manifest excludes it; the suggestion alone would not
            assert row["excluded"] is True
            assert "and the study excludes it" in note
        elif (row["patient"], row["voi"]) not in near:
            assert row["distance_to_spill_in_organ_mm"] > 100.0


def test_the_suggestion_is_not_applied(trial: tuple[Study, set[tuple[str, str]]]) -> None:
    study, _ = trial
    study = replace(study, exclusions=())
    ref = next(r for r in study.scans() if r.scan_id == "P03/tracer-only/120h")
    result = process_scan(ref, study.settings, exclusions=study.exclusions)
    (row,) = [m for m in result.measurements if m["voi"] == "2" and m["kind"] == "lesion"]
    assert row["suggested_exclusion"] and row["excluded"] is False
    assert "not applied: add an [[exclusions]] entry to apply it" in str(row["warnings"])


def test_every_lesion_voi_method_gets_the_same_spill_in_rule(
    trial: tuple[Study, set[tuple[str, str]]], tmp_path: Path
) -> None:
    """Spheres and threshold VOIs are checked like delineated ones: only the distance decides.

    Placed by hand on the 8 mm grid of P03/tracer-only/120h: a 1 mL sphere (one voxel: only
    the centre voxel lies within its 6.2 mm radius) on the delineated lesion's voxel nearest
    the spleen is 8 x sqrt(2) = 11.3 mm from it (warned, <= 13 mm); the same sphere at the
    lesion's centre, as the reader places it after the predose, is 8 x sqrt(5) = 17.9 mm away
    (not warned); a 41 % threshold VOI grown from the near voxel is checked the same way.
    """
    study, _ = trial
    ref = next(r for r in study.scans() if r.scan_id == "P03/tracer-only/120h")
    root = Path(study.root)

    def resolved(path: Path) -> Path:
        return path if path.is_absolute() else root / path

    assert ref.scan.organ_masks is not None
    organs = read_nifti(resolved(ref.scan.organ_masks)).volume
    (label_file,) = [s.path for s in ref.scan.vois if s.path.name == "lesions.nii.gz"]
    labels = read_nifti(resolved(label_file)).volume
    spleen = np.argwhere(organs.array == 3)  # organs.tsv: 3 spleen
    lesion = np.argwhere(labels.array == 2)
    # brute force over every pair of voxel centres (mm), independent of the k-d tree
    spleen_mm = organs.voxel_to_lps(spleen)
    lesion_mm = labels.voxel_to_lps(lesion)
    pairs = np.linalg.norm(lesion_mm[:, None, :] - spleen_mm[None, :, :], axis=-1)
    assert pairs.min() == pytest.approx(8 * np.sqrt(2))
    near = lesion_mm[np.unravel_index(np.argmin(pairs), pairs.shape)[0]]
    with open(root / "lesions.csv", newline="", encoding="utf-8") as fp:
        centre = next(
            (float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"]))
            for r in csv.DictReader(fp)
            if (r["patient"], r["lesion"]) == ("P03", "2")
        )
    points = tmp_path / "points.csv"
    points.write_text(
        "lesion,x_mm,y_mm,z_mm,volume_ml,method\n"
        f"near-sphere,{near[0]},{near[1]},{near[2]},1,sphere\n"
        f"centre-sphere,{centre[0]},{centre[1]},{centre[2]},1,sphere\n"
        f"near-41max,{near[0]},{near[1]},{near[2]},,41max\n"
    )
    vois = (*ref.scan.vois, VoiSource(points, kind="lesion"))
    result = process_scan(replace(ref, scan=replace(ref.scan, vois=vois)), study.settings)
    rows = {str(m["voi"]): m for m in result.measurements if m["kind"] == "lesion"}
    assert rows["near-sphere"]["method"] == "sphere"
    assert rows["near-sphere"]["n_voxels"] == 1
    assert rows["near-sphere"]["distance_to_spill_in_organ_mm"] == pytest.approx(8 * np.sqrt(2))
    assert rows["near-sphere"]["suggested_exclusion"] == (
        "spill-in from the spleen (11.3 mm from it)"
    )
    assert "lesion near-sphere lies 11.3 mm from the spleen" in str(rows["near-sphere"]["warnings"])
    assert rows["centre-sphere"]["distance_to_spill_in_organ_mm"] == pytest.approx(8 * np.sqrt(5))
    assert rows["centre-sphere"]["suggested_exclusion"] is None
    assert rows["near-41max"]["method"] == "threshold:41max"
    # the rule, for every lesion VOI of the scan whatever its method
    for name, row in rows.items():
        distance = row["distance_to_spill_in_organ_mm"]
        assert np.isfinite(distance), name
        assert (distance <= study.settings.spill_in_distance_mm) == bool(
            row["suggested_exclusion"]
        ), name
