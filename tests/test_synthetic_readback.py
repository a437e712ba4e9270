"""The synthetic trial reads back through the project's own DICOM reader and SUV derivation.

A noise-free, blur-free trial (one patient per vendor flavour) must give, inside each organ's
2 cm reference sphere, exactly the true SUV of ``truth/organs.csv`` (to 1e-3 relative; the
only loss is the int16 quantisation of the writer, below 1/32000 of a slice's maximum).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunopet.io.dicom import discover_dicom, load_series_volume
from immunopet.io.nifti import read_nifti
from immunopet.suv.factors import derive_suv
from immunopet.synthetic.presets import TINY
from immunopet.synthetic.scanner import ScannerModel
from immunopet.synthetic.trial import generate_trial

EXACT = dataclasses.replace(
    TINY,
    name="exact",
    series=("tracer-only",),
    standard_hours=(120.0,),
    scanner=ScannerModel(blur=False, noise=False),
)


@pytest.fixture(scope="module")
def exact_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exact")
    generate_trial(out, preset=EXACT, seed=3)
    return out


def _sphere_mask(
    volume_shape: tuple[int, ...], centres_lps: np.ndarray, point: np.ndarray
) -> np.ndarray:
    distance = np.linalg.norm(centres_lps - point, axis=-1)
    return distance <= 10.0


def test_vendors_cover_all_flavours(exact_trial: Path) -> None:
    scans = pd.read_csv(exact_trial / "scans.csv")
    assert sorted(scans["vendor"]) == ["ge", "philips", "siemens"]


def test_organ_suv_reads_back_for_every_vendor(exact_trial: Path) -> None:
    scans = pd.read_csv(exact_trial / "scans.csv")
    truth = pd.read_csv(exact_trial / "truth" / "organs.csv")
    manufacturers = set()
    for scan in scans.itertuples():
        inventory = discover_dicom(exact_trial / scan.pet_dir)
        (series,) = inventory.pet
        derivation = derive_suv(series.headers)
        manufacturers.add(derivation.manufacturer)
        volume = load_series_volume(series)
        suv = volume.array.astype(np.float64) * derivation.suv_bw_factor
        centres = volume.voxel_centres_lps()
        points = pd.read_csv(exact_trial / scan.organ_points)
        expected = truth[(truth["patient"] == scan.patient) & (truth["series"] == scan.series)]
        assert len(points) == 7
        for point in points.itertuples():
            mask = _sphere_mask(
                volume.shape, centres, np.array([point.x_mm, point.y_mm, point.z_mm])
            )
            assert mask.sum() >= 4  # 2 cm sphere on 8 mm voxels: at least a few voxels
            true = float(expected.loc[expected["organ"] == point.organ, "suv_true"].iloc[0])
            measured = float(suv[mask].mean())
            assert measured == pytest.approx(true, rel=1e-3), (scan.vendor, point.organ)
    assert len(manufacturers) == 3


def test_visible_lesion_suv_reads_back(exact_trial: Path) -> None:
    # the label map sits on the PET grid; mean SUV inside each label equals suv_true
    scans = pd.read_csv(exact_trial / "scans.csv")
    truth = pd.read_csv(exact_trial / "truth" / "lesions.csv")
    checked = 0
    for scan in scans.itertuples():
        (series,) = discover_dicom(exact_trial / scan.pet_dir).pet
        derivation = derive_suv(series.headers)
        volume = load_series_volume(series)
        labels = read_nifti(exact_trial / scan.lesion_map).volume
        assert labels.same_grid(volume)
        suv = volume.array.astype(np.float64) * derivation.suv_bw_factor
        rows = truth[(truth["patient"] == scan.patient) & truth["visible"]]
        for row in rows.itertuples():
            mask = labels.array == row.lesion
            assert mask.sum() == row.n_voxels
            assert float(suv[mask].mean()) == pytest.approx(row.suv_true, rel=2e-3)
            checked += 1
    assert checked >= 1
