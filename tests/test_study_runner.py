"""Running a study: backends agree, resume, crash recovery, failures, clinical copy, CLI.

Uses the noise-free synthetic trial of ``test_study_pipeline.py`` (generated once per session).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from immunopet.cli import run as run_cli
from immunopet.errors import InputError, ManifestError
from immunopet.study import pipeline, runner
from immunopet.study.model import Scan, Study, VoiSource
from immunopet.study.store import ResultsStore
from test_study_pipeline import exact_trial, study_of  # noqa: F401  (exact_trial is a fixture)


def measurements(results: Path) -> pd.DataFrame:
    with ResultsStore(results) as store:
        table = store.read_table("measurements")
    return table.sort_values(["scan_id", "kind", "voi"]).reset_index(drop=True)


def replace_scan(study: Study, index: int, scan: Scan) -> Study:
    """The study with its ``index``-th scan (manifest order) replaced."""
    patients = []
    count = 0
    for patient in study.patients:
        injections = []
        for injection in patient.injections:
            scans = []
            for old in injection.scans:
                scans.append(scan if count == index else old)
                count += 1
            injections.append(dataclasses.replace(injection, scans=tuple(scans)))
        patients.append(dataclasses.replace(patient, injections=tuple(injections)))
    return dataclasses.replace(study, patients=tuple(patients))


def nth_scan(study: Study, index: int) -> Scan:
    return list(study.scans())[index].scan


class CrashOnUnpickle(type(Path())):  # type: ignore[misc]
    """A path that kills the process that unpickles it (a worker), like a segfault would."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (1,))


@pytest.mark.slow
def test_backends_give_identical_tables(exact_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    study = study_of(exact_trial)
    one = runner.run_study(study, tmp_path / "one", workers=1, progress=False)
    two = runner.run_study(study, tmp_path / "two", workers=2, progress=False)
    dask = runner.run_study(study, tmp_path / "dask", workers=2, backend="dask", progress=False)
    assert (one.backend, two.backend, dask.backend) == ("in-process", "local", "dask-local")
    for summary in (one, two, dask):
        assert summary.ok and len(summary.processed) == summary.n_scans == 4
    reference = measurements(tmp_path / "one")
    assert len(reference) > 4 * 7
    pd.testing.assert_frame_equal(measurements(tmp_path / "two"), reference)
    pd.testing.assert_frame_equal(measurements(tmp_path / "dask"), reference)


@pytest.mark.slow
def test_rerun_skips_current_scans(exact_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    full = study_of(exact_trial)
    study = dataclasses.replace(full, patients=full.patients[:1])  # P01: 2 scans
    first = runner.run_study(study, tmp_path, workers=1, progress=False)
    assert len(first.processed) == 2 and not first.skipped
    second = runner.run_study(study, tmp_path, workers=1, progress=False)
    assert not second.processed and len(second.skipped) == 2
    # a changed input file (newer modification time) makes its scan stale, and only that one
    lesion_map = nth_scan(study, 1).vois[0].path
    stat = lesion_map.stat()
    try:
        os.utime(lesion_map, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        third = runner.run_study(study, tmp_path, workers=1, progress=False)
    finally:
        os.utime(lesion_map, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert third.processed == (list(study.scans())[1].scan_id,)
    # changed settings make every scan stale; force recomputes all
    other = dataclasses.replace(study, settings=dataclasses.replace(study.settings, peak="global"))
    assert len(runner.run_study(other, tmp_path, workers=1, progress=False).processed) == 2
    forced = runner.run_study(other, tmp_path, workers=1, progress=False, force=True)
    assert len(forced.processed) == 2
    with ResultsStore(tmp_path) as store:
        provenance = store.read_table("provenance")
    assert list(provenance["n_skipped"]) == [0, 2, 1, 0, 0]
    keys = json.loads(provenance["input_keys"].iloc[-1])
    assert set(keys) == {ref.scan_id for ref in study.scans()}
    assert json.loads(provenance["settings"].iloc[-1])["peak"] == "global"
    # the full study: P02's scans are new, P01's current; removing P01 later prunes its rows
    everyone = dataclasses.replace(other, patients=full.patients)
    grown = runner.run_study(everyone, tmp_path, workers=1, progress=False)
    assert (len(grown.skipped), len(grown.processed)) == (2, 2)
    only_p02 = dataclasses.replace(other, patients=full.patients[1:])
    pruned = runner.run_study(only_p02, tmp_path, workers=1, progress=False)
    assert any("no longer in the study" in note for note in pruned.warnings)
    with ResultsStore(tmp_path) as store:
        assert set(store.read_table("scans")["patient"]) == {"P02"}


def test_interrupted_run_resumes(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = study_of(exact_trial)
    real = pipeline.process_scan
    calls = []

    def dies_at_the_third(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while the third scan is processed
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "process_scan", dies_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study(study, tmp_path, workers=1, progress=False)
    ids = [ref.scan_id for ref in study.scans()]
    with ResultsStore(tmp_path) as store:
        assert set(store.stored_keys()) == set(ids[:2])
        assert set(store.read_table("measurements")["scan_id"]) == set(ids[:2])
    monkeypatch.setattr(pipeline, "process_scan", real)
    resumed = runner.run_study(study, tmp_path, workers=1, progress=False)
    assert resumed.skipped == tuple(ids[:2])
    assert resumed.processed == tuple(ids[2:])


@pytest.mark.slow
def test_worker_crash_is_recorded_and_the_rest_complete(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = study_of(exact_trial)
    doomed = nth_scan(study, 1)
    study = replace_scan(study, 1, dataclasses.replace(doomed, pet=CrashOnUnpickle(doomed.pet)))
    summary = runner.run_study(study, tmp_path, workers=2, progress=False)
    ids = [ref.scan_id for ref in study.scans()]
    assert summary.failed == (ids[1],)
    assert summary.failures[0].error_type == "WorkerCrash"
    assert set(summary.processed) == set(ids) - {ids[1]}
    with ResultsStore(tmp_path) as store:
        failures = store.read_table("failures")
        assert list(failures["scan_id"]) == [ids[1]]
        assert "worker process died" in failures["message"][0]
        assert set(store.read_table("scans")["scan_id"]) == set(ids) - {ids[1]}


def test_input_errors_are_recorded_per_scan(exact_trial: Path, tmp_path: Path) -> None:  # noqa: F811
    study = study_of(exact_trial)
    outside = tmp_path / "outside.csv"
    outside.write_text("lesion,x_mm,y_mm,z_mm,volume_ml\n9,5000,0,-300,1\n")
    duplicate = tmp_path / "duplicate.csv"
    spheres = nth_scan(study, 1).vois[1].path
    duplicate.write_text(spheres.read_text())  # the same lesion ids again
    scan0, scan1 = nth_scan(study, 0), nth_scan(study, 1)
    study = replace_scan(
        study, 0, dataclasses.replace(scan0, vois=(*scan0.vois, VoiSource(outside, "lesion")))
    )
    study = replace_scan(
        study, 1, dataclasses.replace(scan1, vois=(*scan1.vois, VoiSource(duplicate, "lesion")))
    )
    summary = runner.run_study(study, tmp_path / "results", workers=1, progress=False)
    ids = [ref.scan_id for ref in study.scans()]
    assert summary.failed == (ids[0], ids[1])
    assert summary.processed == (ids[2], ids[3])
    with ResultsStore(tmp_path / "results") as store:
        failures = store.read_table("failures").set_index("scan_id")
    assert failures.loc[ids[0], "error_type"] == "GeometryError"
    assert "outside the image field of view" in failures.loc[ids[0], "message"]
    assert failures.loc[ids[1], "error_type"] == "InputError"
    assert f"{ids[1]}: two lesion VOIs named" in failures.loc[ids[1], "message"]
    assert (tmp_path / "results" / "failures.csv").is_file()


def test_clinical_sheet_without_identifying_columns(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    sheet = pd.read_csv(exact_trial / "clinical.csv")
    sheet.insert(1, "Patient Name", "SYNTHETIC^X")
    sheet["date_of_birth"] = "1950-01-01"
    sheet["MRN"] = "123"
    clinical = tmp_path / "clinical.csv"
    sheet.to_csv(clinical, index=False)
    study = study_of(exact_trial)
    study = dataclasses.replace(study, inputs=dataclasses.replace(study.inputs, clinical=clinical))
    summary = runner.run_study(study, tmp_path / "results", workers=1, progress=False)
    copied = pd.read_csv(tmp_path / "results" / "clinical.csv")
    original = pd.read_csv(exact_trial / "clinical.csv")
    assert list(copied.columns) == list(original.columns)
    pd.testing.assert_frame_equal(copied, original)
    assert any("Patient Name, date_of_birth, MRN" in note for note in summary.warnings)


def test_cli_run(exact_trial: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from immunopet.study.manifest import write_manifest

    manifest = write_manifest(study_of(exact_trial), tmp_path / "study.toml")
    parser = argparse.ArgumentParser()
    run_cli.register(parser.add_subparsers())
    args = parser.parse_args(["run", str(manifest), "--workers", "1", "--no-qc"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "4 scans: 4 processed, 0 skipped" in out
    assert (tmp_path / "results" / "measurements.parquet").is_file()
    # measurement, analysis and report in one command
    assert f"report: {tmp_path / 'report' / 'index.html'}" in out
    assert "Biodistribution" in (tmp_path / "report" / "index.html").read_text()
    with ResultsStore(tmp_path / "results") as store:
        provenance = store.read_table("provenance")
    # relative to the results folder: no absolute path is stored
    assert provenance["manifest_path"][0] == "../study.toml"
    assert len(provenance["manifest_hash"][0]) == 64
    # a failing scan: exit code 2 after writing the rest
    text = manifest.read_text()
    broken = tmp_path / "broken.csv"
    broken.write_text("lesion,x_mm,y_mm,z_mm,volume_ml\n9,5000,0,-300,1\n")
    spheres = nth_scan(study_of(exact_trial), 0).vois[1].path.as_posix()
    assert text.count(f'"{spheres}"') == 1  # outside the manifest folder: written absolute
    manifest.write_text(text.replace(f'"{spheres}"', f'"{broken.as_posix()}"'))
    argv = ["run", str(manifest), "--quiet", "-o", str(tmp_path / "r2"), "--no-report"]
    args = parser.parse_args(argv)
    assert args.func(args) == 2
    captured = capsys.readouterr()
    assert "outside the image field of view" in captured.err
    assert captured.out == ""
    with ResultsStore(tmp_path / "r2") as store:
        assert len(store.read_table("scans")) == 3


def test_study_level_problems_stop_before_any_scan(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = study_of(exact_trial)
    missing = dataclasses.replace(
        study, inputs=dataclasses.replace(study.inputs, clinical=tmp_path / "nope.csv")
    )
    with pytest.raises(ManifestError, match=r"^the clinical sheet: study sheet not found$"):
        runner.run_study(missing, tmp_path / "a", workers=1, progress=False)
    twice = replace_scan(study, 1, nth_scan(study, 0))  # P01 72 h listed twice
    with pytest.raises(ManifestError, match=r"found 'P01/tracer-only/72h'"):
        runner.run_study(twice, tmp_path / "b", workers=1, progress=False)
    with pytest.raises(InputError, match="need at least one worker"):
        runner.run_study(study, tmp_path / "c", workers=0, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_different_weights_in_one_injection_are_recorded(
    exact_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    full = study_of(exact_trial)
    study = dataclasses.replace(full, patients=full.patients[:1])
    refs = list(study.scans())
    same_injection = [i for i, ref in enumerate(refs) if ref.series == refs[0].series]
    assert len(same_injection) >= 2, "the reduced trial has two scans after one injection"
    second = refs[same_injection[1]].scan
    heavier = dataclasses.replace(
        second, overrides=dataclasses.replace(second.overrides, weight_kg=99.0)
    )
    summary = runner.run_study(
        replace_scan(study, same_injection[1], heavier), tmp_path, workers=1, progress=False
    )
    (note,) = [w for w in summary.warnings if "body weight differs" in w]
    assert f"{refs[same_injection[1]].scan_id}: 99 kg" in note
    with ResultsStore(tmp_path) as store:
        scans = store.read_table("scans").set_index("scan_id")
        recorded = json.loads(store.read_table("provenance")["warnings"].iloc[-1])
    assert scans.loc[refs[same_injection[1]].scan_id, "weight_kg"] == 99.0  # the value used
    assert note in recorded
