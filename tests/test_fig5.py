"""Fig 5-style FDG versus 89Zr panels: the stored slice pairs and the report section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunopet.io.nifti import read_nifti
from immunopet.report.build import build_report
from immunopet.study.fig5 import largest_fdg_positive_lesions, read_fig5_slices
from immunopet.study.manifest import load_manifest
from immunopet.study.pipeline import merged_overrides
from immunopet.study.runner import run_study
from immunopet.suv.volume import read_suv_volume
from immunopet.synthetic.trial import generate_trial
from test_fdg_reference import ONE_PATIENT


def test_largest_fdg_positive_lesions_by_hand() -> None:
    rows = [
        # patient, series, hours, voi, kind, volume
        ("P01", "tracer-only", 120.0, "1", "lesion", 3.0),
        ("P01", "tracer-only", 120.0, "2", "lesion", 9.0),  # FDG-negative
        ("P01", "tracer-only", 72.0, "3", "lesion", 50.0),  # another time point
        ("P01", "predose", 120.0, "3", "lesion", 40.0),  # another series
        ("P01", "tracer-only", 120.0, "3", "lesion", 5.0),
        ("P01", "tracer-only", 120.0, "liver", "organ", 99.0),
        ("P02", "tracer-only", 120.0, "1", "lesion", 5.0),  # ties P01/3: patient order
        ("P02", "tracer-only", 120.0, "4", "lesion", 1.0),
    ]
    measurements = pd.DataFrame(
        rows, columns=["patient", "series", "nominal_hours", "voi", "kind", "volume_ml"]
    )
    measurements["scan_id"] = measurements["patient"] + "/" + measurements["series"]
    fdg = pd.DataFrame(
        {
            "patient": ["P01", "P01", "P01", "P02", "P02"],
            "lesion": ["1", "2", "3", "1", "4"],
            "fdg_suv_max": [3.0, 2.5, 8.0, 4.0, 6.0],
        }
    )
    top = largest_fdg_positive_lesions(
        measurements, fdg, series="tracer-only", hours=120.0, threshold=2.5, n=3
    )
    assert list(zip(top["patient"], top["lesion"], strict=True)) == [
        ("P01", "3"),
        ("P02", "1"),
        ("P01", "1"),
    ]
    assert top["volume_ml"].tolist() == [5.0, 5.0, 3.0]
    none = largest_fdg_positive_lesions(
        measurements, fdg.iloc[:0], series="tracer-only", hours=120.0, threshold=2.5
    )
    assert none.empty
    other_time = largest_fdg_positive_lesions(
        measurements, fdg, series="tracer-only", hours=24.0, threshold=2.5
    )
    assert other_time.empty and "volume_ml" in other_time.columns


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("fig5")
    trial = out / "trial"
    generate_trial(trial, preset=ONE_PATIENT, seed=3)
    results = out / "results"
    stale = results / "qc" / "fig5_P09_9.npz"  # a pair of an earlier run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    summary = run_study(load_manifest(trial / "study.toml"), results, workers=1, progress=False)
    assert summary.warnings == ()
    return trial, results


def _centre(trial: Path, lesion: str, labels: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Lesion centre [z, y, x] index: mean of its label voxels, else its sphere's centre voxel."""
    where = np.argwhere(labels == int(lesion))
    if len(where):
        return np.rint(where.mean(axis=0)).astype(int)
    spheres = pd.read_csv(trial / "vois" / "P01" / "tracer-only" / "120h" / "lesion_spheres.csv")
    row = spheres[spheres["lesion"].astype(str) == lesion].iloc[0]
    lps = np.array([row["x_mm"], row["y_mm"], row["z_mm"]], dtype=float)
    x, y, z = np.rint((lps - origin) / 8.0).astype(int)
    return np.array([z, y, x])


def test_stored_slices_equal_slices_by_hand(run: tuple[Path, Path]) -> None:
    trial, results = run
    study = load_manifest(trial / "study.toml")
    ref = next(study.scans())
    zr = read_suv_volume(ref.scan.pet, overrides=merged_overrides(ref)).volume
    fdg_scan = study.patients[0].fdg
    assert fdg_scan is not None
    fdg = read_suv_volume(fdg_scan.pet, overrides=fdg_scan.overrides).volume
    # the synthetic grid: [z, y, x] with 8 mm voxels along +x, +y, +z (LPS); FDG on the same grid
    origin = zr.affine[:3, 3]
    assert np.allclose(zr.affine[:3, :3], [[0, 0, 8], [0, 8, 0], [8, 0, 0]])
    assert np.allclose(fdg.affine, zr.affine)
    zr_labels = read_nifti(trial / "vois" / "P01" / "tracer-only" / "120h" / "lesions.nii.gz")
    fdg_labels = read_nifti(trial / "vois" / "P01" / "fdg" / "lesions.nii.gz")

    files = sorted(p.name for p in (results / "qc").glob("fig5_*.npz"))
    # FDG-positive (SUVmax > 2.5) lesions 1, 2, 3 measured on the 89Zr scan; node 4 is not
    assert files == ["fig5_P01_1.npz", "fig5_P01_2.npz", "fig5_P01_3.npz"]
    for name in files:
        pair = read_fig5_slices(results / "qc" / name)
        lesion = name.removesuffix(".npz").split("_")[-1]
        assert (pair.patient, pair.lesion, pair.unit, pair.hours) == ("P01", lesion, "SUVbw", 120)
        k, row, col = _centre(trial, lesion, zr_labels.volume.array, origin)
        half = math.ceil(40.0 / 8.0)  # 80 mm crop on 8 mm pixels
        rows = slice(max(row - half, 0), min(row + half + 1, zr.shape[1]))
        cols = slice(max(col - half, 0), min(col + half + 1, zr.shape[2]))
        np.testing.assert_allclose(pair.zirconium, zr.array[k, rows, cols], rtol=1e-6)
        np.testing.assert_allclose(pair.fdg, fdg.array[k, rows, cols], rtol=1e-5, atol=1e-6)
        expected_zr_outline = zr_labels.volume.array[k, rows, cols] == int(lesion)
        if expected_zr_outline.any():  # lesions 1 and 3 are spheres of the CSV, not labels
            np.testing.assert_array_equal(pair.zirconium_outline, expected_zr_outline)
        else:
            assert pair.zirconium_outline.sum() == 1  # a 1 mL sphere on 8 mm voxels
            assert pair.zirconium_outline[row - rows.start, col - cols.start]
        np.testing.assert_array_equal(
            pair.fdg_outline, fdg_labels.volume.array[k, rows, cols] == int(lesion)
        )
        assert pair.fdg_outline.any()
        x0, y0 = origin[0] + 8.0 * cols.start, origin[1] + 8.0 * rows.start
        x1, y1 = origin[0] + 8.0 * (cols.stop - 1), origin[1] + 8.0 * (rows.stop - 1)
        assert pair.extent_mm == pytest.approx((x0 - 4, x1 + 4, y1 + 4, y0 - 4))
        assert pair.z_mm == pytest.approx(origin[2] + 8.0 * k)
        assert pair.zirconium_display_max == pytest.approx(float(zr.array[k, rows, cols].max()))
    volumes = pd.read_csv(results / "measurements.csv")
    largest = volumes[volumes["kind"] == "lesion"].sort_values("volume_ml").iloc[-1]
    assert str(largest["voi"]) == "2"


def test_report_shows_the_fdg_versus_zr_section(run: tuple[Path, Path], tmp_path: Path) -> None:
    trial, results = run
    built = build_report(
        results, tmp_path / "report", study=load_manifest(trial / "study.toml"), qc=False
    )
    html = built.index.read_text(encoding="utf-8")
    assert 'id="fdg-vs-zr"' in html
    assert "Fig 5-style: FDG vs 89Zr, same lesion, same slice" in html
    section = html[html.index('id="fdg-vs-zr"') :]
    section = section[: section.index("</section>")]
    panels = [f'src="figures/fig5_P01_{n}.png"' for n in (2, 1, 3)]
    assert all(panel in section for panel in panels)
    # largest lesion (2) first; then 1 and 3 (same volume, file order)
    assert section.index(panels[0]) < section.index(panels[1]) < section.index(panels[2])
    assert html.index('id="heterogeneity"') < html.index('id="fdg-vs-zr"')
    assert str(trial) not in html and str(results) not in html
