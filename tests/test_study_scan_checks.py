"""``validate`` and ``discover`` check what ``run`` checks: slice geometry and nominal hours.

The PET is written by :mod:`dicom_factory` 120 h after an injection at 2024-03-01 09:30 (the
hours a reader computes by hand from the two date-times); the gap series lacks one slice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pydicom
import pytest

from dicom_factory import make_ct_series, make_pet_series, make_pet_volume
from immunopet.cli import validate as validate_cli
from immunopet.errors import ManifestError
from immunopet.study.discover import draft_manifest_from_dicom
from immunopet.study.timepoints import check_nominal_hours, nominal_hours_tolerance_h

MANIFEST = """\
[study]
name = "t"

[[patients]]
id = "P01"

[[patients.injections]]
series = "tracer-only"
injected_activity_mbq = 37

[[patients.injections.scans]]
nominal_hours = {hours}
pet = "{pet}"
"""


def _validate(path: Path) -> int:
    parser = argparse.ArgumentParser()
    validate_cli.register(parser.add_subparsers())
    args = parser.parse_args(["validate", str(path)])
    return int(args.func(args))


def test_tolerance_is_the_larger_of_two_hours_and_ten_percent() -> None:
    assert nominal_hours_tolerance_h(1.0) == 2.0
    assert nominal_hours_tolerance_h(72.0) == pytest.approx(7.2)
    check_nominal_hours(120, 120 + 11.9)
    with pytest.raises(ManifestError, match=r"taken 132\.1 h after injection.*within 12 h"):
        check_nominal_hours(120, 132.1)


def test_validate_refuses_nominal_hours_far_from_the_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_pet_series(tmp_path)
    manifest = tmp_path / "study.toml"
    manifest.write_text(MANIFEST.format(hours=72, pet="pet"))
    assert _validate(manifest) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{manifest}:12: patients[0].injections[0].scans[0].nominal_hours: ")
    assert "taken 120 h after injection" in out[0] and "nominal_hours = 120" in out[0]
    manifest.write_text(MANIFEST.format(hours=119, pet="pet"))
    assert _validate(manifest) == 0


def _gap_series(tmp_path: Path) -> Path:
    folder = make_pet_series(tmp_path)
    (folder / "PT_0004.dcm").unlink()
    return folder


def test_validate_refuses_the_gap_that_run_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _gap_series(tmp_path)
    manifest = tmp_path / "study.toml"
    manifest.write_text(MANIFEST.format(hours=120, pet="pet"))
    assert _validate(manifest) == 2
    out = capsys.readouterr().out
    assert "missing slice(s)" in out and "PT_0003.dcm" in out and "PT_0005.dcm" in out


def test_validate_notes_bed_junctions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_pet_series(tmp_path, volume=make_pet_volume((6, 8, 8)))
    ds = pydicom.dcmread(folder / "PT_0003.dcm")
    ds.ImagePositionPatient = [-20.0, -24.0, -8.0 + 0.2]  # 0.05 slice
    ds.save_as(folder / "PT_0003.dcm")
    manifest = tmp_path / "study.toml"
    manifest.write_text(MANIFEST.format(hours=120, pet="pet"))
    assert _validate(manifest) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("note: P01/tracer-only/120h: ") and "uniform grid" in out[0]


def test_discover_leaves_out_what_run_refuses(tmp_path: Path) -> None:
    _gap_series(tmp_path)
    draft = draft_manifest_from_dicom(tmp_path)
    assert len(draft.unplaced) == 1 and "missing slice(s)" in draft.unplaced[0]
    assert not list(draft.study.scans())


def test_a_ct_problem_is_a_note_since_run_does_not_read_the_ct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_pet_series(tmp_path)
    ct = make_ct_series(tmp_path)
    (ct / sorted(p.name for p in ct.iterdir())[4]).unlink()
    manifest = tmp_path / "study.toml"
    manifest.write_text(MANIFEST.format(hours=120, pet="pet") + 'ct = "ct"\n')
    assert _validate(manifest) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("note: P01/tracer-only/120h: ct not readable as a series: ")
    assert "missing slice(s)" in out[0]


def test_run_refuses_the_same_nominal_hours(tmp_path: Path) -> None:
    from immunopet.study.model import AnalysisSettings, Injection, Scan, ScanRef
    from immunopet.study.pipeline import process_scan

    pet = make_pet_series(tmp_path)  # 120 h after injection
    scan = Scan(pet=pet, nominal_hours=72.0)
    ref = ScanRef("P01", "tracer-only", 72.0, scan, Injection(series="tracer-only", scans=(scan,)))
    with pytest.raises(ManifestError, match=r"pet: nominal_hours: the scan was taken 120 h"):
        process_scan(ref, AnalysisSettings())
    ok = Scan(pet=pet, nominal_hours=120.0)
    process_scan(
        ScanRef("P01", "tracer-only", 120.0, ok, Injection(series="tracer-only", scans=(ok,))),
        AnalysisSettings(),
    )
