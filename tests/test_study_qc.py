"""QC images: computed once by the per-scan job, kept by the store, drawn by the report.

The projection is checked against a hand-built volume (a bright voxel whose place on the
coronal image and whose millimetre extent follow from the affine by hand); the pages drawn
from the stored images are the same, byte for byte, as pages drawn from the scan's SUV image
read again (the route the report took before the run stored the images).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.image import ImageVolume
from immunopet.report.figures import qc_figure, qc_pages
from immunopet.study import runner
from immunopet.study.manifest import load_manifest
from immunopet.study.qc import (
    QC_DIR,
    qc_file_name,
    qc_images,
    read_qc_images,
    write_qc_images,
)
from immunopet.study.store import ResultsStore
from test_analysis_assemble import report_trial  # noqa: F401  (fixture)
from test_study_pipeline import exact_trial, study_of  # noqa: F401  (exact_trial is a fixture)


def _volume(*, head_first: bool) -> ImageVolume:
    """4 slices (z, 3 mm), 2 rows (y, 2 mm), 3 columns (x, 5 mm); one hot voxel."""
    array = np.zeros((4, 2, 3), dtype=np.float32)
    array[3, 1, 2] = 7.0  # the most superior slice, the patient's leftmost column
    array[0, 0, 0] = np.nan  # counted as 0
    # columns of the affine follow the array axes (z, y, x)
    affine = np.array([[0, 0, 5.0, -10.0], [0, 2.0, 0, 0], [3.0, 0, 0, 100.0], [0, 0, 0, 1]])
    if head_first:  # the same patient, slices stored top to bottom
        array = array[::-1].copy()
        affine[2, 0], affine[2, 3] = -3.0, 109.0
    return ImageVolume(array, affine, unit="SUVbw")


@pytest.mark.parametrize("head_first", [False, True])
def test_projection_by_hand(head_first: bool) -> None:
    volume = _volume(head_first=head_first)
    mask = np.zeros(volume.array.shape, dtype=bool)
    mask[(0 if head_first else 3), 0, 1] = True  # superior slice, middle column
    images = qc_images(volume, {"organ liver": mask, "lesion 1": np.zeros_like(mask)})
    # rows superior -> inferior, columns patient right (x low) -> left (x high)
    expected = np.zeros((4, 3), dtype=np.float32)
    expected[0, 2] = 7.0
    np.testing.assert_array_equal(images.coronal, expected)
    # x centres -10, -5, 0 (5 mm pixels); z centres 100..109 (3 mm): edges half a pixel out
    assert images.extent_mm == pytest.approx((-12.5, 2.5, 98.5, 110.5))
    assert images.unit == "SUVbw"
    assert images.display_max == pytest.approx(np.percentile(expected, 99.5))
    assert list(images.outlines) == ["organ liver"]  # the empty mask is left out
    outline = np.zeros((4, 3), dtype=bool)
    outline[0, 1] = True
    np.testing.assert_array_equal(images.outlines["organ liver"], outline)


def test_all_zero_image_gets_a_unit_colour_scale() -> None:
    volume = ImageVolume(np.zeros((2, 2, 2)), np.eye(4), unit="SUVbw")
    assert qc_images(volume, {}).display_max == 1.0


def test_round_trip_atomic_no_paths(tmp_path: Path) -> None:
    volume = _volume(head_first=False)
    mask = np.zeros(volume.array.shape, dtype=bool)
    mask[1:3, :, 0] = True
    images = qc_images(volume, {"lesion 3": mask})
    old = os.umask(0o027)
    try:
        path = write_qc_images(images, tmp_path / "qc" / qc_file_name("P01/tracer-only/72h"))
    finally:
        os.umask(old)
    assert path.name == "P01_tracer-only_72h.npz"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    back = read_qc_images(path)
    np.testing.assert_array_equal(back.coronal, images.coronal)
    assert back.extent_mm == images.extent_mm and back.unit == "SUVbw"
    assert back.display_max == images.display_max
    assert list(back.outlines) == ["lesion 3"]
    np.testing.assert_array_equal(back.outlines["lesion 3"], images.outlines["lesion 3"])
    with zipfile.ZipFile(path) as archive:  # arrays only; no text beyond names and unit
        assert sorted(archive.namelist()) == sorted(
            f"{key}.npy"
            for key in ("coronal", "extent_mm", "display_max", "unit", "outline_names", "outlines")
        )
        raw = b"".join(archive.read(name) for name in archive.namelist())
    assert str(tmp_path).encode() not in raw and str(tmp_path).encode("utf-32-le") not in raw


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(InputError, match=r"bad\.npz.*cannot read the QC images|QC images"):
        read_qc_images(bad)


@pytest.mark.slow
def test_run_stores_qc_images_and_resume_keeps_them(exact_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    full = study_of(exact_trial)
    study = dataclasses.replace(full, patients=full.patients[:1])  # P01: 2 scans
    ids = [ref.scan_id for ref in study.scans()]
    qc = tmp_path / QC_DIR
    runner.run_study(study, tmp_path, workers=1, progress=False)
    files = {scan_id: qc / qc_file_name(scan_id) for scan_id in ids}
    assert all(path.is_file() for path in files.values())
    stamps = {scan_id: path.stat().st_mtime_ns for scan_id, path in files.items()}
    second = runner.run_study(study, tmp_path, workers=1, progress=False)
    assert second.skipped == tuple(ids)  # skipped scans keep their QC images untouched
    assert {s: p.stat().st_mtime_ns for s, p in files.items()} == stamps
    files[ids[1]].unlink()  # results without QC images (an older version): computed again
    third = runner.run_study(study, tmp_path, workers=1, progress=False)
    assert third.processed == (ids[1],) and files[ids[1]].is_file()
    pages = qc_pages(tmp_path, study, tmp_path / "pages", workers=1)
    assert list(pages) == [f"qc {scan_id}" for scan_id in ids]
    only_p02 = dataclasses.replace(study, patients=full.patients[1:])
    runner.run_study(only_p02, tmp_path, workers=1, progress=False)
    assert not any(path.exists() for path in files.values())  # pruned with their rows
    with ResultsStore(tmp_path) as store:
        assert store.qc_path(ids[0]) == files[ids[0]]


@pytest.mark.slow
def test_pages_from_stored_images_equal_pages_from_the_pet(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The stored route draws the same PNG as reading the PET as SUV and its VOIs again."""
    from immunopet.study.pipeline import merged_overrides
    from immunopet.suv.volume import read_suv_volume
    from immunopet.voi.sources import load_vois

    study = load_manifest(report_trial / "study.toml")
    pages = qc_pages(report_trial / "results", study, tmp_path / "stored", max_scans=3)
    refs = list(study.scans())[:3]
    assert list(pages) == [f"qc {ref.scan_id}" for ref in refs]
    for ref in refs:
        volume = read_suv_volume(
            ref.scan.pet,
            overrides=merged_overrides(ref),
            normalisation=study.settings.normalisation,
        ).volume
        masks = {
            f"{voi.kind or 'voi'} {voi.name}": voi.mask
            for source in ref.scan.vois
            for voi in load_vois(source.path, reference=volume, kind=source.kind)
        }
        again = qc_figure(volume, masks, f"{ref.scan_id} (coronal MIP)", tmp_path / "again.png")
        assert again.read_bytes() == pages[f"qc {ref.scan_id}"].read_bytes(), ref.scan_id
