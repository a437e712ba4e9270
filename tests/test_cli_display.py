"""Warnings on the command line: one line each, no source lines, the study's paths redacted.

A warning raised while a study is run must reach the results (notes, provenance), not a
worker's stderr with the absolute paths of the patients' folders.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

from immunopet.cli._display import install, redact_with
from immunopet.cli.main import main
from immunopet.errors import ImmunoPETWarning, SuvWarning, collect_warnings
from immunopet.study import runner
from immunopet.study.privacy import PathRedactor
from immunopet.study.store import ResultsStore
from test_cli_inspect import make_pet_series
from test_study_pipeline import exact_trial, study_of  # noqa: F401  (exact_trial is a fixture)
from test_study_runner import replace_scan


def test_an_immunopet_warning_is_one_redacted_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as passed_on:
        warnings.simplefilter("always")
        _warn_while_installed()
    err = capsys.readouterr().err
    ours = "immunopet run: warning: P01/72h PET (one of its files): weight read as grams"
    assert err.count(ours) == 1
    assert "DOE_JOHN" not in err
    # another library's warning keeps the display it had (here the recorder of the test)
    assert [str(w.message) for w in passed_on] == ["not ours"]
    assert "_display" not in warnings.showwarning.__module__  # restored


def _warn_while_installed() -> None:
    restore = install("run")
    try:
        redact_with(PathRedactor("/data/DOE_JOHN", {"/data/DOE_JOHN/pet": "P01/72h PET"}).redact)
        message = "/data/DOE_JOHN/pet/IM1.dcm: weight read as grams"
        warnings.warn(message, SuvWarning, stacklevel=2)  # two places, one message: shown once
        warnings.warn(message, SuvWarning, stacklevel=2)
        warnings.warn("not ours", UserWarning, stacklevel=2)
    finally:
        restore()


def test_collect_warnings_keeps_ours_and_passes_others_on() -> None:
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        with collect_warnings() as notes:
            warnings.warn("a", SuvWarning, stacklevel=2)
            warnings.warn("a", SuvWarning, stacklevel=2)
            warnings.warn("b", ImmunoPETWarning, stacklevel=2)
            warnings.warn("c", DeprecationWarning, stacklevel=2)
    assert notes == ["a", "b"]
    assert [(w.category, str(w.message)) for w in outer] == [(DeprecationWarning, "c")]


def test_suv_command_prints_each_warning_once_without_python_display(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_pet_series(tmp_path)  # written with 70 kg
    out = tmp_path / "out.nii"
    assert main(["suv", str(folder), "-o", str(out), "--weight-kg", "99"]) == 0
    captured = capsys.readouterr()
    override = "(0010,1030) PatientWeight: override 99.0 replaces a different header value"
    assert captured.out.count(override) == 1
    assert captured.err == ""  # not shown again by Python (source file, line, SuvWarning)


def test_a_study_run_records_fdg_and_fig5_warnings_without_paths(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = study_of(exact_trial)
    first = study.patients[0]
    assert first.fdg is not None, "the trial's first patient has an FDG scan (Fig 5 pairs)"
    fdg = dataclasses.replace(
        first.fdg, overrides=dataclasses.replace(first.fdg.overrides, weight_kg=98.0)
    )
    scan = next(iter(study.scans())).scan  # a 89Zr scan of the same patient
    heavier = dataclasses.replace(
        scan, overrides=dataclasses.replace(scan.overrides, weight_kg=99.0)
    )
    study = replace_scan(study, 0, heavier)
    study = dataclasses.replace(
        study, patients=(dataclasses.replace(study.patients[0], fdg=fdg), *study.patients[1:3])
    )
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        summary = runner.run_study(study, tmp_path / "results", workers=1, progress=False)
    ours = [w for w in escaped if issubclass(w.category, ImmunoPETWarning)]
    assert ours == [], [str(w.message) for w in ours]
    (fdg_note,) = [w for w in summary.warnings if "override 98.0" in w]
    assert fdg_note.startswith(f"{first.pseudonym}/fdg: ")
    assert str(exact_trial) not in fdg_note and str(tmp_path) not in fdg_note
    with ResultsStore(tmp_path / "results") as store:
        recorded = json.loads(store.read_table("provenance")["warnings"].iloc[-1])
    assert fdg_note in recorded
