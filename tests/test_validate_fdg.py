"""``validate`` reviews each patient's baseline FDG scan (``[patients.fdg]``) as ``run`` reads it.

The study has one 89Zr scan (120 h after an injection at 2024-03-01 09:30, see
:mod:`dicom_factory`) and one FDG scan written 1 h after its own 18F injection at the same
date-time. Each test breaks the FDG scan in one way and expects one problem line naming the
scan by pseudonym and role (``P01/fdg PET``), on the manifest line of ``[patients.fdg]``'s key,
with exit code 2 -- and never the study's folder.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pydicom
import pytest

from dicom_factory import make_acquisition, make_pet_series
from immunopet.cli import validate as validate_cli
from immunopet.study.manifest import load_manifest
from immunopet.study.scan_checks import review_scans

MANIFEST = """\
[study]
name = "t"

[[patients]]
id = "P01"

[patients.fdg]
pet = "fdg"
{fdg_extra}
[[patients.injections]]
series = "tracer-only"
injected_activity_mbq = 37
{injection_extra}
[[patients.injections.scans]]
nominal_hours = 120
pet = "pet"
"""

FDG_ACTIVITY_BQ = 200e6
PET_LINE = 'pet = "fdg"'


def _study(
    tmp_path: Path,
    *,
    uptake_h: float = 1.0,
    nuclide: str = "18F",
    fdg_extra: str = "",
    injection_extra: str = "",
) -> Path:
    make_pet_series(tmp_path)
    make_pet_series(
        tmp_path,
        subdir="fdg",
        acquisition=make_acquisition(
            uptake_h=uptake_h,
            nuclide=nuclide,
            injected_activity_bq=FDG_ACTIVITY_BQ if nuclide == "18F" else 37e6,
            series_number=2,
            series_description=f"PET {nuclide}",
            uid_seed="fdg-series",
        ),
    )
    manifest = tmp_path / "study.toml"
    manifest.write_text(MANIFEST.format(fdg_extra=fdg_extra, injection_extra=injection_extra))
    return manifest


def _validate(path: Path) -> int:
    parser = argparse.ArgumentParser()
    validate_cli.register(parser.add_subparsers())
    args = parser.parse_args(["validate", str(path)])
    return int(args.func(args))


def _line(manifest: Path, text: str) -> int:
    return manifest.read_text().splitlines().index(text) + 1


def _problems(
    manifest: Path, capsys: pytest.CaptureFixture[str], *, expected: int = 1
) -> list[str]:
    assert _validate(manifest) == 2
    out = capsys.readouterr().out
    folder = str(manifest.parent)
    assert folder not in out.replace(f"{manifest}:", "")  # only the manifest as typed
    lines = [line for line in out.splitlines() if line.startswith(f"{manifest}:")]
    assert lines[-1] == f"{manifest}: {expected} problem{'s' if expected != 1 else ''}"
    return lines[:-1]


def _edit_fdg(manifest: Path, **values: object) -> None:
    for file in sorted((manifest.parent / "fdg").iterdir()):
        ds = pydicom.dcmread(file)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        for keyword, value in values.items():
            if value is None:
                delattr(item, keyword)
            else:
                setattr(item, keyword, value)
        ds.save_as(file)


def test_a_sound_fdg_scan_is_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _study(tmp_path)
    assert _validate(manifest) == 0
    assert capsys.readouterr().out == f"{manifest}: OK (1 patients, 1 scans, 1 FDG scan)\n"
    # the hours after the FDG injection, from its own header: 1 h (written 1 h after it)
    review = review_scans(load_manifest(manifest), manifest)
    assert review.hours_after_injection["P01/fdg"] == pytest.approx(1.0)
    assert review.hours_after_injection["P01/tracer-only/120h"] == pytest.approx(120.0)


def test_a_gap_in_the_fdg_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _study(tmp_path)
    (tmp_path / "fdg" / "PT_0004.dcm").unlink()
    (line,) = _problems(manifest, capsys)
    assert line.startswith(f"{manifest}:{_line(manifest, PET_LINE)}: patients[0].fdg.pet: ")
    assert "P01/fdg PET" in line and "missing slice(s)" in line
    assert "PT_0003.dcm" in line and "PT_0005.dcm" in line


def test_a_mixed_fdg_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _study(tmp_path)
    shutil.copy(tmp_path / "pet" / "PT_0001.dcm", tmp_path / "fdg" / "PT_0099.dcm")
    (line,) = _problems(manifest, capsys)
    assert "patients[0].fdg.pet: P01/fdg PET" in line
    assert "2 PT series found" in line and "expected exactly one PT series" in line


def test_slices_of_one_fdg_series_that_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _study(tmp_path)
    file = tmp_path / "fdg" / "PT_0003.dcm"
    ds = pydicom.dcmread(file)
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "100000000"
    ds.save_as(file)
    (line,) = _problems(manifest, capsys)
    assert "patients[0].fdg.pet: P01/fdg PET" in line and "RadionuclideTotalDose" in line


def test_an_89zr_series_listed_as_fdg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _study(tmp_path, nuclide="89Zr")
    (line,) = _problems(manifest, capsys)
    assert "patients[0].fdg.pet: P01/fdg PET" in line and "must be an 18F PET" in line
    assert "(found '89Zr'; expected 18F (half-life 6586.2 s))" in line
    assert "RadionuclideCodeSequence" in line


def test_a_half_life_alone_that_is_not_18f(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _study(tmp_path)
    _edit_fdg(manifest, RadionuclideCodeSequence=None, Radiopharmaceutical=None)
    assert _validate(manifest) == 0  # 6586.2 s: 18F by the half-life
    capsys.readouterr()
    _edit_fdg(manifest, RadionuclideHalfLife="4062.6")  # 68Ga
    (line,) = _problems(manifest, capsys)
    assert "must be an 18F PET" in line and "(found '68Ga';" in line


def test_no_injection_time_and_its_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the 89Zr injection's date-time is not the FDG injection's
    manifest = _study(tmp_path, injection_extra="injection_datetime = 2024-03-01T09:30:00\n")
    _edit_fdg(manifest, RadiopharmaceuticalStartDateTime=None, RadiopharmaceuticalStartTime=None)
    (line,) = _problems(manifest, capsys)
    assert "patients[0].fdg.pet: P01/fdg PET (one of its files)" in line
    assert "injection time missing" in line and "RadiopharmaceuticalStartDateTime" in line
    assert "or injection_datetime in [patients.fdg.overrides])" in line
    text = manifest.read_text().replace(
        'pet = "fdg"\n',
        'pet = "fdg"\n[patients.fdg.overrides]\ninjection_datetime = 2024-03-01T09:30:00\n',
    )
    manifest.write_text(text)
    assert _validate(manifest) == 0


def test_time_of_day_only_is_dated_by_the_short_lived_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _study(tmp_path)
    _edit_fdg(manifest, RadiopharmaceuticalStartDateTime=None)
    assert _validate(manifest) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("note: P01/fdg: ")
    assert "assumed the scan date for a short-lived nuclide" in out[0]
    assert "injection at 2024-03-01T09:30:00" in out[0]


def test_fdg_nominal_hours_against_its_own_injection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _study(tmp_path, uptake_h=5.0)  # nominal 1 h by default, tolerance 2 h
    (line,) = _problems(manifest, capsys)
    assert line.startswith(f"{manifest}:{_line(manifest, '[patients.fdg]')}: ")
    assert "patients[0].fdg.nominal_hours: P01/fdg PET: " in line
    assert "taken 5 h after injection" in line and "nominal_hours = 5" in line
    manifest.write_text(
        manifest.read_text().replace('pet = "fdg"\n', 'pet = "fdg"\nnominal_hours = 5\n')
    )
    assert _validate(manifest) == 0


def test_a_missing_fdg_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _study(tmp_path)
    shutil.rmtree(tmp_path / "fdg")
    (line,) = _problems(manifest, capsys)
    assert line.startswith(f"{manifest}:{_line(manifest, PET_LINE)}: patients[0].fdg.pet: ")
    assert "no such file or folder" in line


def test_problems_of_both_kinds_are_all_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _study(tmp_path, nuclide="89Zr")
    (tmp_path / "pet" / "PT_0004.dcm").unlink()
    fdg_line, tracer_line = _problems(manifest, capsys, expected=2)
    assert "patients[0].fdg.pet: P01/fdg PET" in fdg_line
    assert "patients[0].injections[0].scans[0].pet: P01/tracer-only/120h PET" in tracer_line


def test_run_measures_no_lesion_of_an_89zr_series_listed_as_fdg(tmp_path: Path) -> None:
    """What validate refuses, run does not measure with the wrong half-life: a note, no rows."""
    from immunopet.study.fdg import measure_fdg_patient

    study = load_manifest(_study(tmp_path, nuclide="89Zr"))
    patient = study.patients[0]
    assert patient.fdg is not None
    result = measure_fdg_patient("P01", patient.fdg, study.settings, tmp_path)
    assert result.rows == ()
    assert result.note is not None
    assert "P01/fdg not measured" in result.note and "89Zr" in result.note
    assert "must be an 18F PET" in result.note
