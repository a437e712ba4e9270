"""Drafting a manifest from DICOM (``immunopet discover``) and the synthetic trial's manifest.

The small PACS export below is written with :mod:`immunopet.io.dicom_write`; what the draft
must contain follows from how it was written (patients, injections, hours after injection).
The slow test compares the draft of a generated synthetic trial with its ``scans.csv``.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime, timedelta
from pathlib import Path

import pydicom
import pytest

from dicom_factory import make_ct_volume, make_pet_volume
from immunopet.cli import discover as discover_cli
from immunopet.cli import validate as validate_cli
from immunopet.errors import ManifestError
from immunopet.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series
from immunopet.study.discover import draft_manifest_from_dicom, nominal_hours
from immunopet.study.manifest import load_manifest
from immunopet.suv.record import SuvOverrides
from immunopet.synthetic.manifest import SPILL_IN_REASON, write_trial_manifest
from immunopet.synthetic.trial import generate_trial

A_NAME, A_ID = "DOE^JANE", "SECRET-ID-7"
B_NAME, B_ID = "ROE^RICHARD", "SECRET-ID-3"
A1 = datetime(2024, 3, 10, 9, 0)  # patient A, first injection
A2 = datetime(2024, 3, 22, 10, 0)  # patient A, second injection
B1 = datetime(2024, 2, 1, 8, 0)  # patient B (first overall -> P01)


def _pet(
    folder: Path,
    injection: datetime,
    hours: float,
    *,
    name: str,
    patient_id: str,
    weight_kg: float = 70.0,
    study_uid: str | None = None,
    ct: Path | None = None,
    ct_frame: str | None = None,
) -> PetAcquisition:
    acquisition = PetAcquisition(
        injection_datetime=injection,
        scan_datetime=injection + timedelta(hours=hours),
        injected_activity_bq=37e6,
        weight_kg=weight_kg,
        patient_name=name,
        patient_id=patient_id,
        study_uid=study_uid,
        uid_seed="discover-test",
    )
    write_pet_series(make_pet_volume((2, 4, 4)), folder, acquisition)
    if ct is not None:
        ct_acquisition = acquisition
        if ct_frame is not None:
            ct_acquisition = PetAcquisition(
                injection_datetime=injection,
                scan_datetime=acquisition.scan_datetime,
                injected_activity_bq=37e6,
                weight_kg=weight_kg,
                patient_name=name,
                patient_id=patient_id,
                study_uid=acquisition.resolved_study_uid,
                frame_of_reference_uid=ct_frame,
                uid_seed="discover-test-ct",
            )
        write_ct_series(make_ct_volume((2, 4, 4)), ct, ct_acquisition)
    return acquisition


def _drop_injection_date(folder: Path) -> None:
    """Leave only (0018,1072) RadiopharmaceuticalStartTime, as old scanners do."""
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
        ds.save_as(path)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pacs") / "export"
    a = {"name": A_NAME, "patient_id": A_ID}
    b = {"name": B_NAME, "patient_id": B_ID}
    _pet(root / "s01", A1, 1.1, **a)
    _pet(root / "s02", A1, 71.2, ct=root / "s02ct", **a)
    _pet(root / "s03", A1, 71.5, **a)  # a second PET at 72 h (e.g. a NAC reconstruction)
    _pet(root / "s04", A1, 119.0, **a)
    _pet(root / "s05", A2, 72.5, **a)
    _pet(root / "s06", A2 + timedelta(seconds=30), 120.4, **a)  # same injection, 30 s apart
    # patient B: CT with its own frame of reference, matched through the study
    _pet(root / "s07", B1, 60.4, ct=root / "s07ct", ct_frame="1.2.3.4.5", weight_kg=81.5, **b)
    _pet(root / "s08", B1, 120.0, **b)
    _drop_injection_date(root / "s08")
    (root / "README.txt").write_text("not DICOM")
    return root


def test_nominal_hours_rounding() -> None:
    # within 10 % of a listed time point -> that point; otherwise the nearest whole hour
    assert nominal_hours(1.09) == 1.0
    assert nominal_hours(64.9) == 72.0  # 72 - 7.2 = 64.8
    assert nominal_hours(64.7) == 65.0
    assert nominal_hours(131.9) == 120.0  # 120 + 12 = 132
    assert nominal_hours(6.5) == 7.0
    assert nominal_hours(200.0) == 192.0


def test_draft_groups_patients_injections_and_time_points(export: Path) -> None:
    draft = draft_manifest_from_dicom(export)
    study = draft.study
    layout = [
        (p.pseudonym, i.series, [s.nominal_hours for s in i.scans])
        for p in study.patients
        for i in p.injections
    ]
    assert layout == [
        ("P01", "series-1", [60.0]),
        ("P02", "series-1", [1.0, 72.0, 120.0]),
        ("P02", "series-2", [72.0, 120.0]),
    ]
    pets = [s.pet for p in study.patients for i in p.injections for s in i.scans]
    assert pets == [(export / f"s0{n}").resolve() for n in (7, 1, 2, 4, 5, 6)]
    cts = [s.ct for p in study.patients for i in p.injections for s in i.scans]
    root = export.resolve()
    assert cts == [root / "s07ct", None, root / "s02ct", None, None, None]
    b, a1, a2 = (i for p in study.patients for i in p.injections)
    assert (b.injection_datetime, b.weight_kg, b.injected_activity_bq) == (B1, 81.5, 37e6)
    assert a1.injection_datetime == A1
    # 30 s apart: one injection, but each scan keeps its own header time
    assert a2.injection_datetime is None
    assert [s.overrides.injection_datetime for s in a2.scans] == [A2, A2 + timedelta(seconds=30)]
    assert a2.scans[0].overrides == SuvOverrides(
        injection_datetime=A2, weight_kg=70.0, injected_activity_bq=37e6
    )
    assert draft.hours_after_injection["P02/series-1/72h"] == pytest.approx(71.2)
    assert draft.hours_after_injection["P02/series-2/120h"] == pytest.approx(120.4)
    assert len(draft.unplaced) == 2
    assert draft.unplaced[0].startswith(f"could not place: {export / 's08' / 'PT_0001.dcm'}: ")
    assert "(0018,1078) RadiopharmaceuticalStartDateTime" in draft.unplaced[0]
    assert draft.unplaced[1].startswith(f"could not place: {export / 's03'}")
    assert "same time point (P02 series-1 72 h)" in draft.unplaced[1]


def test_draft_writes_a_loadable_manifest_without_identifiers(export: Path) -> None:
    draft = draft_manifest_from_dicom(export)
    path = draft.write(export / "study.toml")
    text = path.read_text()
    for secret in (A_NAME, A_ID, B_NAME, B_ID, "JANE", "RICHARD", "SECRET"):
        assert secret not in text
    assert 'pet = "s02"' in text
    assert "# 71.20 h after injection" in text
    assert text.rstrip().splitlines()[-1].startswith("# could not place: ")
    assert load_manifest(path) == draft.study


def test_folder_names_with_patient_data_are_flagged(tmp_path: Path) -> None:
    _pet(tmp_path / "SECRET-ID-9" / "pet", B1, 72.0, name="X^Y", patient_id="SECRET-ID-9")
    draft = draft_manifest_from_dicom(tmp_path)
    assert draft.notes[0].startswith("1 folder path(s) contain a patient name or ID")
    assert "SECRET" not in " ".join(draft.notes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    discover_cli.register(sub)
    validate_cli.register(sub)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.func(args))


def test_discover_cli(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "study.toml"
    assert _run("discover", str(export), "-o", str(target), "--quiet") == 0
    out = capsys.readouterr().out
    assert out.count("could not place: ") == 2
    assert "SECRET" not in out and "DOE" not in out
    assert target.is_file()
    with pytest.raises(ManifestError, match="manifest exists; not overwritten"):
        _run("discover", str(export), "-o", str(target))
    assert _run("discover", str(export), "-o", str(target), "--force") == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary == f"2 patients, 3 injections, 6 scans; 2 PET series not placed -> {target}"
    assert _run("validate", str(target)) == 0
    assert capsys.readouterr().out == f"{target}: OK (2 patients, 6 scans)\n"


def test_discover_cli_without_pet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    assert _run("discover", str(tmp_path), "--quiet") == 1
    assert "[study]" in capsys.readouterr().out


# ------------------------------------------------------------------ synthetic trial manifest
def _fake_trial(root: Path) -> Path:
    """A trial folder laid out like generate_trial's, with tiny PET series."""
    rows = []
    for series, injection, mass in (
        ("predose", datetime(2018, 4, 21, 10, 5), "750"),
        ("tracer-only", datetime(2018, 4, 9, 9, 36), "0"),
    ):
        scan = f"P01/{series}/72h"
        folder = root / "dicom" / scan
        _pet(folder / "pet", injection, 72.0, name="N^N", patient_id="X", ct=folder / "ct")
        voi = root / "vois" / scan
        voi.mkdir(parents=True)
        for name in ("lesions.nii.gz", "lesion_spheres.csv", "organ_points.csv"):
            (voi / name).write_text("stand-in")
        rows.append(
            {
                "patient": "P01",
                "series": series,
                "nominal_hours": "72",
                "injection_datetime": injection.isoformat(),
                "cold_mass_mg": mass,
                "pet_dir": f"dicom/{scan}/pet",
                "ct_dir": f"dicom/{scan}/ct",
                "lesion_map": f"vois/{scan}/lesions.nii.gz",
                "lesion_spheres": f"vois/{scan}/lesion_spheres.csv",
                "organ_points": f"vois/{scan}/organ_points.csv",
            }
        )
    with open(root / "scans.csv", "w", newline="") as fp:
        writer = csv.DictWriter(fp, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "lesions.csv").write_text(
        "patient,lesion,near_spleen\nP01,1,False\nP01,2,True\nP02,5,True\n"
    )
    (root / "clinical.csv").write_text("patient\nP01\n")
    return root


def test_synthetic_manifest_loads(tmp_path: Path) -> None:
    root = _fake_trial(tmp_path)
    study = load_manifest(write_trial_manifest(root))
    (patient,) = study.patients
    assert [(i.series, i.unlabelled_mass_mg) for i in patient.injections] == [
        ("tracer-only", 0.0),  # injected first (2018-04-09), although second in scans.csv
        ("predose", 750.0),
    ]
    scan = patient.injections[0].scans[0]
    base = root.resolve() / "vois" / "P01" / "tracer-only" / "72h"
    assert [(v.path, v.kind) for v in scan.vois] == [
        (base / "lesions.nii.gz", "lesion"),
        (base / "lesion_spheres.csv", "lesion"),
        (base / "organ_points.csv", "organ"),
    ]
    assert scan.overrides == SuvOverrides()  # the headers are read, not overridden
    # P02's flagged lesion is not in this trial's scans: only P01's is excluded
    assert [(e.patient, e.lesion, e.reason) for e in study.exclusions] == [
        ("P01", "2", SPILL_IN_REASON)
    ]
    assert study.inputs.clinical == root.resolve() / "clinical.csv"
    assert study.inputs.blood_samples is None


@pytest.mark.slow
def test_discover_and_manifest_of_the_tiny_synthetic_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    trial = generate_trial(out, preset="tiny", seed=0)
    with open(out / "scans.csv", newline="") as fp:
        rows = list(csv.DictReader(fp))
    # independent truth from scans.csv: patients in order of first injection, series labels
    # in order of injection within a patient, the scheduled hours
    first = {}
    for row in rows:
        moment = datetime.fromisoformat(row["injection_datetime"])
        first[row["patient"]] = min(first.get(row["patient"], moment), moment)
    pseudonym = {p: f"P{n:02d}" for n, p in enumerate(sorted(first, key=first.get), start=1)}
    labels: dict[tuple[str, str], str] = {}
    for patient in first:
        times = sorted(
            {(r["injection_datetime"], r["series"]) for r in rows if r["patient"] == patient}
        )
        for n, (_, series) in enumerate(times, start=1):
            labels[(patient, series)] = f"series-{n}"
    expected = {
        (
            pseudonym[r["patient"]],
            labels[(r["patient"], r["series"])],
            float(r["nominal_hours"]),
            (out / r["pet_dir"]).resolve(),
            (out / r["ct_dir"]).resolve(),
        )
        for r in rows
    }
    assert _run("discover", str(out / "dicom"), "-o", str(tmp_path / "draft.toml")) == 0
    printed = capsys.readouterr().out
    text = (tmp_path / "draft.toml").read_text()
    for forbidden in ("SYN-", "SYNTHETIC"):
        assert forbidden not in text
        assert forbidden not in printed
    draft = load_manifest(tmp_path / "draft.toml")
    found = {
        (ref.patient, ref.series, ref.nominal_hours, ref.scan.pet, ref.scan.ct)
        for ref in draft.scans()
    }
    assert found == expected
    assert len(found) == len(trial.scans)
    # each patient's 18F PET is its FDG reference scan, not a series of the tracer
    with open(out / "fdg_scans.csv", newline="") as fp:
        fdg_dirs = {
            pseudonym[r["patient"]]: (out / r["pet_dir"]).resolve() for r in csv.DictReader(fp)
        }
    assert {p.pseudonym: p.fdg.pet if p.fdg else None for p in draft.patients} == fdg_dirs

    # the trial's own manifest
    assert trial.tables["study"] == out / "study.toml"
    study = load_manifest(out / "study.toml")
    assert {(r.patient, r.series, r.nominal_hours) for r in study.scans()} == {
        (r["patient"], r["series"], float(r["nominal_hours"])) for r in rows
    }
    with open(out / "lesions.csv", newline="") as fp:
        spleen = [
            (r["patient"], r["lesion"]) for r in csv.DictReader(fp) if r["near_spleen"] == "True"
        ]
    assert [(e.patient, e.lesion) for e in study.exclusions] == spleen
    assert _run("validate", str(out / "study.toml")) == 0
    n_patients = len({r["patient"] for r in rows})
    summary = f"OK ({n_patients} patients, {len(rows)} scans, {len(fdg_dirs)} FDG scans)\n"
    assert capsys.readouterr().out.endswith(summary)
