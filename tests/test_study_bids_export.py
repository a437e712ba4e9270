"""PET-BIDS export: layout, sidecars, times, values, blood, participants, privacy, validators."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
import pytest

from dicom_factory import INJECTION, make_acquisition, make_pet_series, make_pet_volume
from immunopet.analysis.blood import CounterCalibration, blood_activity
from immunopet.cli import export_bids as export_cli
from immunopet.errors import ImmunoPETWarning, InputError
from immunopet.io.bids import pet_sidecar
from immunopet.io.dicom import find_one_pet
from immunopet.io.dicom_write import PetAcquisition
from immunopet.io.nifti import read_nifti, read_sidecar, write_nifti
from immunopet.study.bids_export import export_bids
from immunopet.study.model import Injection, Patient, Scan, Study, StudyInputs
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import SuvOverrides

# the override warning of P01's predose scan is expected (and checked in its sidecar)
pytestmark = pytest.mark.filterwarnings("ignore::immunopet.errors.SuvWarning")

ZR89_HALF_LIFE_S = 78.41 * 3600.0  # 282276 s
TOOLS = Path(__file__).resolve().parents[1] / ".tools"
PRIVATE = ("SYN-", "SYNTHETIC", "Jane", "Doe", "1930-01-01", "Roe")
"""Strings that must appear in no exported file: the DICOM patient name/ID written by the
factory (SYNTHETIC^PATIENT, SYN-000) and the clinical sheet's name and birth-date columns."""

REQUIRED_PET_KEYS = (
    "Manufacturer",
    "ManufacturersModelName",
    "Units",
    "TracerName",
    "TracerRadionuclide",
    "InjectedRadioactivity",
    "InjectedRadioactivityUnits",
    "InjectedMass",
    "InjectedMassUnits",
    "SpecificRadioactivity",
    "SpecificRadioactivityUnits",
    "ModeOfAdministration",
    "TimeZero",
    "ScanStart",
    "InjectionStart",
    "FrameTimesStart",
    "FrameDuration",
    "AcquisitionMode",
    "ImageDecayCorrected",
    "ImageDecayCorrectionTime",
    "ReconMethodName",
    "ReconMethodParameterLabels",
    "ReconMethodParameterUnits",
    "ReconMethodParameterValues",
    "ReconFilterType",
    "AttenuationCorrection",
)
"""REQUIRED in src/schema/rules/sidecars/pet.yaml (ReconFilterSize only when a filter is set;
ReconMethodParameterValues/Units optional when the labels contain 'none')."""

PREDOSE_INJECTION = INJECTION + timedelta(days=12, minutes=25)
PET = "trc-89Zrdurvalumab_rec-acstat"
"""The entities of the study tracer's PET files before ``run``."""


# ---------------------------------------------------------------------------- the study
def _acquisition(injection: datetime, hours: float, weight_kg: float, seed: str) -> PetAcquisition:
    return PetAcquisition(
        injection_datetime=injection,
        scan_datetime=injection + timedelta(hours=hours),
        injected_activity_bq=37e6,
        weight_kg=weight_kg,
        height_m=1.75,
        sex="M",
        uid_seed=seed,
    )


def _make_study(root: Path) -> Study:
    """Two patients, three injections, five tiny scans of three vendors/decay conventions."""
    p01_72 = make_pet_series(root, acquisition=make_acquisition(uptake_h=72.0), subdir="a/pet")
    p01_120 = make_pet_series(  # 120 h 37 min after injection
        root, acquisition=make_acquisition(uptake_h=120.0 + 37 / 60), subdir="b/pet"
    )
    p01_pre = make_pet_series(  # a folder named after the patient must not leak
        root,
        acquisition=_acquisition(PREDOSE_INJECTION, 72.0, 72.0, "pre"),
        decay_correction="ADMIN",
        subdir="Jane_Doe/c/pet",
    )
    p02_72 = make_pet_series(
        root,
        acquisition=_acquisition(INJECTION, 71.5, 80.0, "p02"),
        vendor="philips",
        subdir="d/pet",
    )
    p02_pre = make_pet_series(
        root,
        acquisition=_acquisition(PREDOSE_INJECTION, 73.0, 80.0, "p02pre"),
        decay_correction="NONE",
        subdir="e/pet",
    )
    (root / "clinical.csv").write_text(
        "patient,age,sex,name,birth_date,histology\n"
        "P01,92,female,Jane Doe,1930-01-01,Adenocarcinoma\n"
        "P-02,60,M,John Roe,1964-02-02,Squamous\n",
        encoding="utf-8",
    )
    return Study(
        name="tiny immuno-PET study",
        root=root,
        tracer="89Zr-durvalumab",
        inputs=StudyInputs(clinical=Path("clinical.csv"), blood_samples=Path("blood.csv")),
        patients=(
            Patient(
                pseudonym="P01",
                injections=(
                    Injection(  # scans listed out of order: runs follow nominal hours
                        series="tracer-only",
                        scans=(
                            Scan(pet=p01_120.relative_to(root), nominal_hours=120),
                            Scan(pet=p01_72.relative_to(root), nominal_hours=72),
                        ),
                    ),
                    Injection(
                        series="predose",
                        unlabelled_mass_mg=750.0,
                        scans=(  # weighed 73 kg; the header says 72 kg
                            Scan(p01_pre, 72, overrides=SuvOverrides(weight_kg=73.0)),
                        ),
                    ),
                ),
            ),
            Patient(
                pseudonym="P-02",
                injections=(
                    Injection(series="tracer-only", scans=(Scan(pet=p02_72, nominal_hours=72),)),
                    Injection(
                        series="predose",
                        unlabelled_mass_mg=750.0,
                        scans=(Scan(pet=p02_pre, nominal_hours=72),),
                    ),
                ),
            ),
        ),
    )


def _blood() -> pd.DataFrame:
    """Two P01 tracer-only samples counted exactly one half-life after the injection."""
    counted = INJECTION + timedelta(seconds=ZR89_HALF_LIFE_S)
    samples = pd.DataFrame(
        {
            "patient": ["P01", "P01", "P09"],
            "series": ["tracer-only", "tracer-only", "tracer-only"],
            "sample": ["1", "2", "1"],
            "injection_datetime": [INJECTION] * 3,
            "sample_datetime": [
                INJECTION + timedelta(minutes=5),
                INJECTION + timedelta(hours=72),
                INJECTION + timedelta(minutes=5),
            ],
            "counting_datetime": [counted] * 3,
            "injected_activity_bq": [37e6] * 3,
            "whole_blood_cpm_per_ml": [1860.0, 930.0, 1.0],
            "plasma_cpm_per_ml": [3720.0, np.nan, 1.0],
        }
    )
    return blood_activity(samples, CounterCalibration(18.6, ZR89_HALF_LIFE_S))


def _measurements() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": ["P01", "P-02"],
            "series": ["tracer-only", "predose"],
            "hours_pi": [120.62, 73.0],
            "voi": ["blood_pool", "liver"],
            "kind": ["organ", "organ"],
            "suv_mean": [1.6, 6.1],
            "scan_id": ["P01/tracer-only/120h", "P-02/predose/72h"],
            "nominal_hours": [120.0, 72.0],
            "source": ["/data/Jane_Doe/vois.nii.gz", "/data/John_Roe/vois.nii.gz"],
            "warnings": ["", "Jane"],
        }
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return _make_study(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def exported(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bids") / "dataset"
    with pytest.warns(ImmunoPETWarning, match=r"P09/tracer-only match no session"):
        export_bids(study, out, blood=_blood(), measurements=_measurements(), tracer_mass_mg=2.0)
    return out


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)


# ---------------------------------------------------------------------------- layout
def test_layout(exported: Path) -> None:
    p1 = "sub-P01/ses-traceronly"
    p1pre = "sub-P01/ses-predose"
    p2 = "sub-P02/ses-traceronly"
    p2pre = "sub-P02/ses-predose"
    expected = {
        "dataset_description.json",
        "README",
        "participants.tsv",
        "participants.json",
        "sub-P01/sub-P01_sessions.tsv",
        "sub-P01/sub-P01_sessions.json",
        "sub-P02/sub-P02_sessions.tsv",
        "sub-P02/sub-P02_sessions.json",
        "derivatives/immunopet/dataset_description.json",
        "derivatives/immunopet/measurements.tsv",
        "derivatives/immunopet/measurements.json",
    }
    for folder, runs in ((p1, (1, 2)), (p1pre, (1,)), (p2, (1,)), (p2pre, (1,))):
        stem = folder.replace("/", "_")
        expected |= {f"{folder}/{stem}_scans.tsv", f"{folder}/{stem}_scans.json"}
        for run in runs:
            for ext in ("nii.gz", "json"):
                expected.add(f"{folder}/pet/{stem}_{PET}_run-{run}_pet.{ext}")
    expected |= {
        f"{p1}/pet/sub-P01_ses-traceronly_recording-manual_blood.tsv",
        f"{p1}/pet/sub-P01_ses-traceronly_recording-manual_blood.json",
    }
    assert _files(exported) == expected


def test_dataset_description_and_readme(exported: Path) -> None:
    description = read_sidecar(exported / "dataset_description.json")
    assert description["Name"] == "tiny immuno-PET study"
    assert description["DatasetType"] == "raw"
    assert description["BIDSVersion"] == "1.10.0"
    assert description["GeneratedBy"][0]["Name"] == "immunopet"
    readme = (exported / "README").read_text(encoding="utf-8")
    assert "2 participants, 4 sessions" in readme
    assert "5 PET scans" in readme


# ---------------------------------------------------------------------------- sidecars
def _pet_json(exported: Path, subject: str, session: str, run: int) -> dict[str, Any]:
    stem = f"sub-{subject}_ses-{session}"
    return read_sidecar(
        exported / f"sub-{subject}/ses-{session}/pet/{stem}_{PET}_run-{run}_pet.json"
    )


def test_every_required_sidecar_key_is_filled(exported: Path) -> None:
    sidecars = sorted(exported.rglob("*_pet.json"))
    assert len(sidecars) == 5
    for path in sidecars:
        sidecar = read_sidecar(path)
        missing = [k for k in REQUIRED_PET_KEYS if sidecar.get(k) in (None, "")]
        assert not missing, f"{path.name}: {missing}"
        assert sidecar["Units"] == "Bq/mL"
        assert sidecar["TracerName"] == "89Zr-durvalumab"
        assert sidecar["TracerRadionuclide"] == "Zr89"
        assert sidecar["InjectedRadioactivity"] == 37.0
        assert sidecar["InjectedRadioactivityUnits"] == "MBq"
        # 2 mg of labelled antibody carrying 37 MBq: 18.5 MBq/mg
        assert (sidecar["InjectedMass"], sidecar["InjectedMassUnits"]) == (2.0, "mg")
        assert sidecar["SpecificRadioactivity"] == pytest.approx(18.5)
        assert sidecar["SpecificRadioactivityUnits"] == "MBq/mg"
        assert sidecar["FrameDuration"] == [600.0]  # (0018,1242) 600000 ms
        assert sidecar["FrameTimesStart"] == [sidecar["ScanStart"]]
        assert sidecar["InjectionStart"] == 0.0
        labels = sidecar["ReconMethodParameterLabels"]
        assert len(labels) == len(sidecar["ReconMethodParameterUnits"])
        assert len(labels) == len(sidecar["ReconMethodParameterValues"])


def test_scan_start_counts_days(exported: Path) -> None:
    late = _pet_json(exported, "P01", "traceronly", 2)
    early = _pet_json(exported, "P01", "traceronly", 1)
    # injected 2024-03-01 09:30:00, scanned 120 h 37 min later: 5 x 86400 + 37 x 60 s
    assert late["TimeZero"] == "09:30:00"
    assert late["ScanStart"] == 432000.0 + 37 * 60.0
    assert late["ImageDecayCorrected"] is True
    assert late["ImageDecayCorrectionTime"] == late["ScanStart"]  # DICOM START
    assert late["ImmunoPET"]["nominal_hours"] == 120
    assert early["ScanStart"] == 72 * 3600.0
    assert early["ImmunoPET"]["nominal_hours"] == 72


def test_predose_session_records_the_cold_dose_and_its_own_time_zero(exported: Path) -> None:
    sidecar = _pet_json(exported, "P01", "predose", 1)
    assert sidecar["TimeZero"] == "09:55:00"  # 12 days and 25 min after the first injection
    assert sidecar["ScanStart"] == 72 * 3600.0
    assert sidecar["PharmaceuticalName"] == "unlabelled durvalumab"
    assert (sidecar["PharmaceuticalDoseAmount"], sidecar["PharmaceuticalDoseUnits"]) == (750, "mg")
    assert sidecar["ImageDecayCorrectionTime"] == 0.0  # DICOM ADMIN: corrected to injection
    assert sidecar["ImmunoPET"]["weight_kg"] == 73.0
    assert sidecar["ImmunoPET"]["sources"]["weight_kg"] == "override"
    assert any("override 73.0 replaces" in w for w in sidecar["ImmunoPET"]["warnings"])
    tracer_only = _pet_json(exported, "P01", "traceronly", 1)
    assert "PharmaceuticalName" not in tracer_only


def test_values_are_the_scanners_bq_per_ml(exported: Path) -> None:
    written = make_pet_volume().array  # what the factory stored, Bq/mL at scan start
    # Siemens BQML and Philips CNTS (x (7053,1009)), both decay-corrected to scan start;
    # stored as int16 with a slope per slice: error <= slope / 2 = max / 65534
    for subject, session in (("P01", "traceronly"), ("P02", "traceronly")):
        stem = f"sub-{subject}_ses-{session}"
        image = read_nifti(
            exported / f"sub-{subject}/ses-{session}/pet/{stem}_{PET}_run-1_pet.nii.gz"
        )
        assert image.volume.unit == "BQML"
        np.testing.assert_allclose(image.volume.array, written, rtol=0, atol=20000.0 / 30000)
    # ADMIN (as stored, corrected to injection) and NONE (converted): both at injection, i.e.
    # the scan-start values x 2^(ScanStart / T)
    for subject, hours in (("P01", 72.0), ("P02", 73.0)):
        stem = f"sub-{subject}_ses-predose"
        path = exported / f"sub-{subject}/ses-predose/pet/{stem}_{PET}_run-1_pet.nii.gz"
        sidecar = read_sidecar(path.with_name(path.name.replace(".nii.gz", ".json")))
        assert sidecar["ImageDecayCorrectionTime"] == 0.0
        expected = written * 2.0 ** (hours * 3600.0 / ZR89_HALF_LIFE_S)
        np.testing.assert_allclose(read_nifti(path).volume.array, expected, rtol=2e-3, atol=2.0)
    converted = _pet_json(exported, "P02", "predose", 1)["ImmunoPET"]["values"]
    assert converted.startswith("converted from SUVbw")


# ---------------------------------------------------------------------------- tables
def test_blood_tsv(exported: Path) -> None:
    folder = exported / "sub-P01/ses-traceronly/pet"
    table = _tsv(folder / "sub-P01_ses-traceronly_recording-manual_blood.tsv")
    assert list(table.columns) == ["time", "whole_blood_radioactivity", "plasma_radioactivity"]
    # sampled 5 min and 72 h after TimeZero; counted one half-life after injection, so the
    # activity at injection is twice the counted one: 1860 cpm/mL / 18.6 cpm/Bq = 100 Bq/mL
    # -> 200 Bq/mL = 0.2 kBq/mL; plasma 3720 -> 0.4 kBq/mL; 930 -> 0.1 kBq/mL, plasma not counted
    assert table["time"].astype(float).tolist() == [300.0, 259200.0]
    assert table["whole_blood_radioactivity"].astype(float).tolist() == pytest.approx([0.2, 0.1])
    assert table["plasma_radioactivity"].tolist()[1] == "n/a"
    assert float(table["plasma_radioactivity"][0]) == pytest.approx(0.4)
    description = read_sidecar(folder / "sub-P01_ses-traceronly_recording-manual_blood.json")
    assert description["PlasmaAvail"] is True
    assert description["WholeBloodAvail"] is True
    assert description["MetaboliteAvail"] is False
    assert description["DispersionCorrected"] is False
    assert description["time"]["Units"] == "s"
    assert description["plasma_radioactivity"]["Units"] == "kBq/mL"


def test_participants_sessions_and_scans(exported: Path) -> None:
    participants = _tsv(exported / "participants.tsv")
    assert list(participants.columns) == ["participant_id", "age", "sex", "body_weight"]
    # P01 is 92 in the sheet: written 89 (BIDS privacy recommendation); weights from DICOM
    assert participants.values.tolist() == [
        ["sub-P01", "89", "F", "70"],
        ["sub-P02", "60", "M", "80"],
    ]
    described = read_sidecar(exported / "participants.json")
    assert described["body_weight"]["Units"] == "kg"
    assert described["age"]["Units"] == "year"
    assert set(described) == set(participants.columns)

    sessions = _tsv(exported / "sub-P01/sub-P01_sessions.tsv")
    assert sessions.values.tolist() == [
        ["ses-traceronly", "70", "0"],
        ["ses-predose", "73", "750"],
    ]
    scans = _tsv(exported / "sub-P01/ses-traceronly/sub-P01_ses-traceronly_scans.tsv")
    assert scans["filename"].tolist() == [
        f"pet/sub-P01_ses-traceronly_{PET}_run-1_pet.nii.gz",
        f"pet/sub-P01_ses-traceronly_{PET}_run-2_pet.nii.gz",
    ]
    assert scans["nominal_hours"].astype(float).tolist() == [72.0, 120.0]
    assert scans["hours_after_injection"].astype(float).tolist() == pytest.approx(
        [72.0, 120.0 + 37 / 60]
    )


def test_measurements_derivative(exported: Path) -> None:
    folder = exported / "derivatives/immunopet"
    table = _tsv(folder / "measurements.tsv")
    assert table.columns[:3].tolist() == ["participant_id", "session_id", "run"]
    assert table[["participant_id", "session_id", "run"]].values.tolist() == [
        ["sub-P01", "ses-traceronly", "2"],
        ["sub-P02", "ses-predose", "1"],
    ]
    assert not {"patient", "series", "source", "warnings", "scan_id"} & set(table.columns)
    assert read_sidecar(folder / "measurements.json")["suv_mean"]["Units"] == "g/mL"
    assert read_sidecar(folder / "dataset_description.json")["DatasetType"] == "derivative"


def test_no_patient_identifier_anywhere(exported: Path) -> None:
    for path in sorted(p for p in exported.rglob("*") if p.is_file()):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for text in PRIVATE:
            assert text.encode() not in data, f"{text!r} in {path.relative_to(exported)}"


# ---------------------------------------------------------------------------- inputs & errors
def test_nifti_input_is_copied_with_its_sidecar(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    series = find_one_pet(folder)
    derivation = derive_suv(series.headers, source=series.files[0])
    sidecar = pet_sidecar(derivation, tracer_name="89Zr-antibody", frame_duration_s=600.0)
    nifti = write_nifti(make_pet_volume(), tmp_path / "pet.nii.gz", sidecar=sidecar)
    study = Study(
        name="nifti",
        root=tmp_path,
        tracer="89Zr-trastuzumab",
        patients=(Patient("A1", (Injection("s1", scans=(Scan(pet=nifti, nominal_hours=120),)),)),),
    )
    out = export_bids(study, tmp_path / "out")
    written = read_sidecar(
        out / "sub-A1/ses-s1/pet/sub-A1_ses-s1_trc-89Zrtrastuzumab_rec-acstat_run-1_pet.json"
    )
    assert written["ScanStart"] == 432000.0  # the factory scans 120 h after injection
    assert written["TracerName"] == "89Zr-trastuzumab"  # the study's name wins
    assert written["ManufacturersModelName"] == "n/a"
    assert written["InjectedMass"] == "n/a"
    assert written["ImmunoPET"]["source_format"] == "NIfTI"
    assert _tsv(out / "participants.tsv")["body_weight"].tolist() == ["70"]


def test_nifti_input_needs_bq_per_ml(tmp_path: Path) -> None:
    nifti = write_nifti(make_pet_volume(), tmp_path / "pet.nii.gz", sidecar={"Units": "g/mL"})
    study = Study("x", tmp_path, (Patient("A1", (Injection("s1", (Scan(nifti, 120),)),)),))
    with pytest.raises(InputError, match=r"pet\.json: Units: only activity-concentration"):
        export_bids(study, tmp_path / "out")


def test_refuses_a_non_empty_folder(study: Study, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(InputError, match=r"output folder is not empty"):
        export_bids(study, tmp_path)


def test_labels_must_stay_distinct(tmp_path: Path) -> None:
    patients = (Patient("P-01"), Patient("P01"))
    with pytest.raises(InputError, match=r"'P-01' and 'P01' -> 'P01'"):
        export_bids(Study("x", tmp_path, patients), tmp_path / "out")


def test_blood_needs_its_columns_and_warns_when_left_out(study: Study, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"blood: .*bq_per_ml_at_injection"):
        export_bids(study, tmp_path / "a", blood=_blood().drop(columns="bq_per_ml_at_injection"))
    with pytest.warns(ImmunoPETWarning, match=r"names blood samples but none were passed"):
        export_bids(study, tmp_path / "b")
    assert not list((tmp_path / "b").rglob("*_blood.tsv"))


def test_cli(study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import immunopet.study.manifest as manifest

    root = study.root
    shutil.copy(root / "clinical.csv", tmp_path / "clinical.csv")
    row = (
        "P01,tracer-only,1,2024-03-01T09:30:00,2024-03-01T09:35:00,2024-03-04T09:30:00,"
        "3.7e+07,1860,3720"
    )
    (tmp_path / "blood.csv").write_text(
        "patient,series,sample,injection_datetime,sample_datetime,counting_datetime,"
        f"injected_activity_bq,whole_blood_cpm_per_ml,plasma_cpm_per_ml\n{row}\n"
    )
    (tmp_path / "cal.json").write_text('{"cpm_per_bq": 18.6, "nuclide": "89Zr"}')
    _measurements().to_csv(tmp_path / "measurements.csv", index=False)
    inputs = StudyInputs(
        clinical=root / "clinical.csv",
        blood_samples=tmp_path / "blood.csv",
        counter_calibration=tmp_path / "cal.json",
    )
    with_blood = Study(study.name, root, study.patients, inputs=inputs, tracer=study.tracer)
    monkeypatch.setattr(manifest, "load_manifest", lambda path: with_blood)
    parser = argparse.ArgumentParser()
    export_cli.register(parser.add_subparsers())
    argv = ["export-bids", "study.toml", str(tmp_path / "out"), "--quiet"]
    args = parser.parse_args([*argv, "--measurements", str(tmp_path / "measurements.csv")])
    assert args.func(args) == 0
    blood = _tsv(
        tmp_path
        / "out/sub-P01/ses-traceronly/pet/sub-P01_ses-traceronly_recording-manual_blood.tsv"
    )
    # counted 72 h after injection: 100 Bq/mL x 2^(72/78.41) = 188.90 Bq/mL = 0.18890 kBq/mL
    assert float(blood["whole_blood_radioactivity"][0]) == pytest.approx(0.1 * 2 ** (72 / 78.41))
    assert (tmp_path / "out/derivatives/immunopet/measurements.tsv").is_file()

    no_calibration = Study(
        study.name, root, study.patients, inputs=StudyInputs(blood_samples=tmp_path / "blood.csv")
    )
    monkeypatch.setattr(manifest, "load_manifest", lambda path: no_calibration)
    args = parser.parse_args(["export-bids", "study.toml", str(tmp_path / "out2"), "--quiet"])
    with pytest.raises(InputError, match=r"inputs\.counter_calibration"):
        args.func(args)


# ---------------------------------------------------------------------------- validators
def _validator(kind: str) -> tuple[list[str], dict[str, str]] | None:
    env = dict(os.environ)
    if kind == "npm":
        binary = TOOLS / "node_modules" / ".bin" / "bids-validator"
        if not binary.exists() or shutil.which("node") is None:
            return None
        return [str(binary)], env
    script = TOOLS / "pypi" / "bin" / "bids-validator-deno"
    if not script.exists():
        return None
    env["PYTHONPATH"] = str(TOOLS / "pypi")
    return [sys.executable, str(script)], env


def _validation_errors(kind: str, dataset: Path) -> list[str]:
    """Errors the official validator reports for ``dataset`` (skips when it is missing)."""
    found = _validator(kind)
    if found is None:
        reason = (
            f"BIDS validator ({kind}) not installed in .tools/: run "
            "scripts/install_bids_validator.sh"
        )
        if os.environ.get("IMMUNOPET_REQUIRE_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    command, env = found
    options = ["--json"] if kind == "npm" else ["--format", "json"]
    done = subprocess.run(
        [*command, str(dataset), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"validator ({kind}) gave no JSON (exit {done.returncode}): {done.stderr}")
    issues = report["issues"]
    if kind == "npm":
        return [f"{e['key']}: {e['reason']}" for e in issues["errors"]]
    return [
        f"{i['code']} {i.get('subCode', '')} {i.get('location', '')}"
        for i in issues["issues"]
        if i["severity"] == "error"
    ]


@pytest.mark.parametrize("kind", ["npm", "deno"])
def test_official_validator_accepts_the_export(exported: Path, kind: str) -> None:
    assert _validation_errors(kind, exported) == []


@pytest.mark.parametrize("kind", ["npm", "deno"])
def test_official_validator_catches_a_broken_copy(
    exported: Path, kind: str, tmp_path: Path
) -> None:
    # the negative control: the same run of the validator does report a missing field
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    path = broken / f"sub-P01/ses-traceronly/pet/sub-P01_ses-traceronly_{PET}_run-1_pet.json"
    sidecar = read_sidecar(path)
    del sidecar["TracerRadionuclide"]
    path.write_text(json.dumps(sidecar))
    errors = _validation_errors(kind, broken)
    expected = (
        "PET_JSON_KEY_REQUIRED" if kind == "npm" else "SIDECAR_KEY_REQUIRED TracerRadionuclide"
    )
    assert any(expected in e for e in errors), errors


# ---------------------------------------------------------------------------- synthetic trial
def _trial_study(root: Path) -> Study:
    scans = pd.read_csv(root / "scans.csv")
    patients = []
    for patient, rows in scans.groupby("patient", sort=True):
        injections = []
        for series in dict.fromkeys(rows["series"]):
            part = rows[rows["series"] == series]
            injections.append(
                Injection(
                    series=series,
                    unlabelled_mass_mg=float(part["cold_mass_mg"].iloc[0]),
                    scans=tuple(
                        Scan(pet=Path(r.pet_dir), nominal_hours=float(r.nominal_hours))
                        for r in part.itertuples()
                    ),
                )
            )
        patients.append(Patient(pseudonym=str(patient), injections=tuple(injections)))
    return Study(
        name="tiny trial",
        root=root,
        patients=tuple(patients),
        tracer="89Zr-durvalumab",
        inputs=StudyInputs(clinical=Path("clinical.csv")),
    )


@pytest.mark.slow
def test_synthetic_trial_export(tmp_path: Path) -> None:
    import dataclasses

    from immunopet.analysis.blood import read_blood_samples, read_counter_calibration
    from immunopet.synthetic.presets import TINY
    from immunopet.synthetic.trial import generate_trial

    config = dataclasses.replace(
        TINY,
        name="two",
        clinical_rows=(1, 9),
        tumours_per_patient=(2, 2),
        large_per_patient=(1, 1),
        nodes_per_patient=(1, 1),
        vendors=("ge", "philips"),
        spleen_lesion_patient=None,
    )
    root = generate_trial(tmp_path / "trial", preset=config, seed=3).outdir
    blood = blood_activity(
        read_blood_samples(root / "blood_samples.csv"),
        read_counter_calibration(root / "counter_calibration.json"),
    )
    out = export_bids(_trial_study(root), tmp_path / "bids", blood=blood)

    scans = pd.read_csv(root / "scans.csv")
    assert len(list(out.rglob("*_pet.nii.gz"))) == len(scans) == 8
    for row in scans.itertuples():
        session = str(row.series).replace("-", "")
        run = 1 if row.nominal_hours == 72 else 2
        sidecar = _pet_json(out, str(row.patient), session, run)
        # seconds between the scans.csv date-times, days included: 120 h -> 432000 s +- minutes
        interval = pd.Timestamp(row.scan_datetime) - pd.Timestamp(row.injection_datetime)
        assert sidecar["ScanStart"] == interval.total_seconds()
        assert abs(sidecar["ScanStart"] - row.nominal_hours * 3600.0) < 3600.0
        assert sidecar["TimeZero"] == str(row.injection_datetime)[11:19]
    samples = pd.read_csv(root / "blood_samples.csv")
    tables = sorted(out.rglob("*_blood.tsv"))
    assert len(tables) == 4
    assert sum(len(_tsv(t)) for t in tables) == len(samples)
    for text in ("SYN-", "SYNTHETIC"):
        for path in out.rglob("*"):
            if path.is_file() and path.suffix != ".gz":
                assert text not in path.read_text(encoding="utf-8")
    for kind in ("npm", "deno"):
        if _validator(kind) is not None or os.environ.get("IMMUNOPET_REQUIRE_TOOLS") == "1":
            assert _validation_errors(kind, out) == []


# ---------------------------------------------------------------------------- baseline FDG scans
F18_HALF_LIFE_S = 109.77 * 60.0  # NNDC


@pytest.fixture(scope="module")
def fdg_trial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A one-patient synthetic trial with its FDG scan, run, and exported with measurements.

    Returns (trial folder, results folder, BIDS dataset).
    """
    import dataclasses

    from immunopet.analysis.blood import read_blood_samples, read_counter_calibration
    from immunopet.study.manifest import load_manifest
    from immunopet.study.runner import run_study
    from immunopet.synthetic.presets import TINY
    from immunopet.synthetic.trial import generate_trial

    config = dataclasses.replace(
        TINY,
        name="fdg-bids",
        clinical_rows=(9,),
        tumours_per_patient=(3,),
        large_per_patient=(2,),
        nodes_per_patient=(1,),
        spleen_lesion_patient=None,
        series=("tracer-only",),
        standard_hours=(72.0, 120.0),
    )
    root = tmp_path_factory.mktemp("fdg-trial")
    generate_trial(root, preset=config, seed=5)
    study = load_manifest(root / "study.toml")
    results = root / "results"
    run_study(study, results, workers=1, progress=False)
    blood = blood_activity(
        read_blood_samples(root / "blood_samples.csv"),
        read_counter_calibration(root / "counter_calibration.json"),
    )
    out = export_bids(
        study,
        root / "bids",
        blood=blood,
        measurements=pd.read_csv(results / "measurements.csv"),
        fdg_measurements=pd.read_csv(results / "fdg_measurements.csv"),
    )
    return root, results, out


def _fdg_header(root: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sorted((root / "dicom/P01/fdg/pet").glob("*.dcm"))[0])


def _dicom_datetime(date: str, time: str) -> datetime:
    return datetime.strptime(date + time[:6], "%Y%m%d%H%M%S")


@pytest.mark.slow
def test_fdg_scan_is_its_own_session_with_the_fdg_tracer(
    fdg_trial: tuple[Path, Path, Path],
) -> None:
    root, _, out = fdg_trial
    fdg = "sub-P01/ses-fdg"
    name = "sub-P01_ses-fdg_trc-FDG_rec-acstat_pet"
    files = _files(out)
    assert {f"{fdg}/pet/{name}.nii.gz", f"{fdg}/pet/{name}.json"} <= files
    assert f"{fdg}/sub-P01_ses-fdg_scans.tsv" in files
    tracer = sorted(
        f for f in files if f.startswith("sub-P01/ses-traceronly/pet/") and "_pet." in f
    )
    # the study's tracer (study.toml: tracer = "89Zr-antibody")
    assert all("_trc-89Zrantibody_rec-acstat_run-" in f for f in tracer) and len(tracer) == 4

    # the sidecar against the FDG DICOM header, read here with pydicom
    header = _fdg_header(root)
    item = header.RadiopharmaceuticalInformationSequence[0]
    injected = datetime.strptime(item.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    scanned = _dicom_datetime(header.SeriesDate, header.SeriesTime)
    truth = pd.read_csv(root / "fdg_scans.csv").iloc[0]
    assert injected == datetime.fromisoformat(truth["injection_datetime"])
    sidecar = read_sidecar(out / fdg / "pet" / f"{name}.json")
    assert sidecar["TracerName"] == "FDG"
    assert sidecar["TracerRadionuclide"] == "F18"
    assert sidecar["InjectedRadioactivity"] == pytest.approx(
        float(item.RadionuclideTotalDose) / 1e6
    )
    assert sidecar["InjectedRadioactivity"] == pytest.approx(truth["injected_activity_bq"] / 1e6)
    assert sidecar["InjectedRadioactivityUnits"] == "MBq"
    assert sidecar["InjectedMass"] == "n/a" and "PharmaceuticalName" not in sidecar
    assert sidecar["TimeZero"] == injected.strftime("%H:%M:%S")
    assert sidecar["ScanStart"] == (scanned - injected).total_seconds()
    assert sidecar["ScanStart"] == pytest.approx(truth["hours_pi"] * 3600.0, abs=30.0)
    assert sidecar["InjectionStart"] == 0
    assert sidecar["ImageDecayCorrectionTime"] == sidecar["ScanStart"]
    assert sidecar["FrameDuration"] == [float(header.ActualFrameDuration) / 1000.0]
    assert sidecar["ImmunoPET"]["nominal_hours"] == 1.0

    sessions = _tsv(out / "sub-P01/sub-P01_sessions.tsv")
    assert sessions["session_id"].tolist() == ["ses-fdg", "ses-traceronly"]
    assert sessions["unlabelled_antibody_mass"].tolist() == ["n/a", "0"]
    assert float(sessions["body_weight"][0]) == pytest.approx(float(header.PatientWeight))
    scans = _tsv(out / fdg / "sub-P01_ses-fdg_scans.tsv")
    assert scans["filename"].tolist() == [f"pet/{name}.nii.gz"]
    assert float(scans["hours_after_injection"][0]) == pytest.approx(
        (scanned - injected).total_seconds() / 3600.0
    )
    readme = (out / "README").read_text(encoding="utf-8")
    assert "1 baseline FDG PET scans: session ses-fdg" in readme
    assert "3 PET scans" in readme  # 72 and 120 h, FDG


@pytest.mark.slow
def test_fdg_image_and_measurements_against_the_run(fdg_trial: tuple[Path, Path, Path]) -> None:
    import nibabel as nib

    root, results, out = fdg_trial
    name = "sub-P01/ses-fdg/pet/sub-P01_ses-fdg_trc-FDG_rec-acstat_pet"
    image = nib.load(out / f"{name}.nii.gz")
    values = np.asarray(image.dataobj, dtype=np.float64)
    # the Bq/mL the scanner stored (pixel x slope + intercept, decay-corrected to scan start),
    # compared orientation-free as sorted values
    slices = [pydicom.dcmread(p) for p in sorted((root / "dicom/P01/fdg/pet").glob("*.dcm"))]
    stored = np.concatenate(
        [
            (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).ravel()
            for ds in slices
        ]
    )
    np.testing.assert_allclose(np.sort(values.ravel()), np.sort(stored), rtol=1e-6, atol=1e-3)

    # SUVmax of each lesion by hand from the exported image, its sidecar and sessions.tsv,
    # against the FDG measurements the run stored
    sidecar = read_sidecar(out / f"{name}.json")
    weight_g = float(_tsv(out / "sub-P01/sub-P01_sessions.tsv")["body_weight"][0]) * 1000.0
    decayed_bq = (
        sidecar["InjectedRadioactivity"] * 1e6 * 0.5 ** (sidecar["ScanStart"] / F18_HALF_LIFE_S)
    )
    labels_image = nib.load(root / "vois/P01/fdg/lesions.nii.gz")
    np.testing.assert_allclose(labels_image.affine, image.affine, atol=1e-4)
    labels = np.asarray(labels_image.dataobj).astype(int)
    stored_fdg = pd.read_csv(results / "fdg_measurements.csv")
    assert len(stored_fdg) == 4  # 3 tumours + 1 node
    exported = pd.read_csv(out / "derivatives/immunopet/fdg_measurements.tsv", sep="\t")
    assert exported.columns[:2].tolist() == ["participant_id", "session_id"]
    assert set(exported["participant_id"]) == {"sub-P01"}
    assert set(exported["session_id"]) == {"ses-fdg"}
    assert "patient" not in exported.columns
    for column in ("fdg_suv_max", "fdg_suv_peak", "fdg_suv_mean", "volume_ml", "hours_pi"):
        np.testing.assert_allclose(exported[column], stored_fdg[column], rtol=1e-9)
    for row in exported.itertuples():
        by_hand = values[labels == int(row.lesion)].max() * weight_g / decayed_bq
        assert row.fdg_suv_max == pytest.approx(by_hand, rel=1e-4)
    described = read_sidecar(out / "derivatives/immunopet/fdg_measurements.json")
    assert described["fdg_suv_max"]["Units"] == "g/mL"
    assert described["hours_pi"]["Units"] == "h"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npm", "deno"])
def test_official_validator_accepts_the_fdg_sessions(
    fdg_trial: tuple[Path, Path, Path], kind: str
) -> None:
    assert _validation_errors(kind, fdg_trial[2]) == []


def test_fdg_measurements_of_a_patient_without_fdg_are_refused(
    study: Study, tmp_path: Path
) -> None:
    table = pd.DataFrame({"patient": ["P01"], "lesion": ["1"], "fdg_suv_max": [5.0]})
    with pytest.raises(InputError, match=r"without an FDG scan.*found \['P01'\]"):
        export_bids(study, tmp_path / "out", fdg_measurements=table)
    assert not list((tmp_path / "out").rglob("*"))  # refused before writing


@pytest.mark.slow
def test_cli_adds_the_fdg_measurements(
    fdg_trial: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, results, _ = fdg_trial
    parser = argparse.ArgumentParser()
    export_cli.register(parser.add_subparsers())
    argv = ["export-bids", str(root / "study.toml"), str(tmp_path / "out")]
    args = parser.parse_args([*argv, "--fdg-measurements", str(results / "fdg_measurements.csv")])
    assert args.func(args) == 0
    assert "1 participants, 2 + 1 FDG scans" in capsys.readouterr().out
    table = _tsv(tmp_path / "out/derivatives/immunopet/fdg_measurements.tsv")
    assert len(table) == len(pd.read_csv(results / "fdg_measurements.csv"))
