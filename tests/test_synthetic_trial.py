"""Layout, tables, determinism and CLI of the synthetic trial (small configurations)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from immunopet.cli import synth
from immunopet.errors import InputError
from immunopet.io.nifti import read_nifti
from immunopet.synthetic.clinical import (
    CLINICAL_COLUMNS,
    draw_adverse_events,
    make_clinical_sheet,
)
from immunopet.synthetic.presets import STUDY, TINY
from immunopet.synthetic.trial import generate_trial

ONE_SCAN = dataclasses.replace(
    TINY,
    name="one-scan",
    clinical_rows=(9,),
    tumours_per_patient=(3,),
    large_per_patient=(2,),
    nodes_per_patient=(1,),
    spleen_lesion_patient="P01",
    series=("tracer-only",),
    standard_hours=(120.0,),
)
TWO_SERIES = dataclasses.replace(
    ONE_SCAN, name="two-series", series=("tracer-only", "predose"), standard_hours=(72.0, 120.0)
)


def _pixel_hashes(root: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(root.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        hashes[str(path.relative_to(root))] = hashlib.sha256(ds.PixelData).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def two_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two")
    generate_trial(out, preset=TWO_SERIES, seed=5)
    return out


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path: Path) -> None:
    generate_trial(tmp_path / "a", preset=ONE_SCAN, seed=11)
    generate_trial(tmp_path / "b", preset=ONE_SCAN, seed=11)
    generate_trial(tmp_path / "c", preset=ONE_SCAN, seed=12)
    a, b, c = (_pixel_hashes(tmp_path / x / "dicom") for x in "abc")
    assert len(a) == 100 + 50 + 100  # PET + CT slices of the one scan, the FDG PET slices
    assert a == b
    assert set(a) == set(c)
    assert a != c
    for name in ("truth/organs.csv", "truth/lesions.csv", "lesions.csv", "clinical.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_layout(two_series: Path) -> None:
    for name in (
        "README.txt",
        "scans.csv",
        "lesions.csv",
        "clinical.csv",
        "adverse_events.csv",
        "blood_samples.csv",
        "counter_calibration.json",
        "truth/organs.csv",
        "truth/lesions.csv",
        "truth/blood.csv",
    ):
        assert (two_series / name).is_file(), name
    for series in ("tracer-only", "predose"):
        for hours in ("72h", "120h"):
            scan = two_series / "dicom" / "P01" / series / hours
            assert len(list((scan / "pet").glob("*.dcm"))) == 100
            assert len(list((scan / "ct").glob("*.dcm"))) == 50
            voi = two_series / "vois" / "P01" / series / hours
            assert (voi / "lesions.nii.gz").is_file()
            assert (voi / "lesion_spheres.csv").is_file()
            assert (voi / "organ_points.csv").is_file()


def test_truth_columns_and_names(two_series: Path) -> None:
    organs = pd.read_csv(two_series / "truth" / "organs.csv")
    assert {"patient", "series", "hours_pi", "organ", "suv_true"} <= set(organs.columns)
    assert set(organs["organ"]) == {
        "blood_pool",
        "liver",
        "spleen",
        "kidney",
        "lung",
        "bone_marrow",
        "brain",
    }
    assert set(organs["series"]) == {"tracer-only", "predose"}
    lesions = pd.read_csv(two_series / "truth" / "lesions.csv")
    assert {"patient", "series", "hours_pi", "lesion", "diameter_mm", "suv_true"} <= set(
        lesions.columns
    )
    # 3 tumours + 1 node, 4 scans
    assert len(lesions) == 4 * 4
    assert len(organs) == 7 * 4


def test_hours_are_real_intervals_days_apart(two_series: Path) -> None:
    scans = pd.read_csv(
        two_series / "scans.csv", parse_dates=["injection_datetime", "scan_datetime"]
    )
    interval_h = (scans["scan_datetime"] - scans["injection_datetime"]).dt.total_seconds() / 3600
    assert np.allclose(interval_h, scans["hours_pi"], atol=1e-3)
    assert np.all(np.abs(scans["hours_pi"] - scans["nominal_hours"]) < 2.0)
    injections = sorted(set(scans["injection_datetime"]))
    assert len(injections) == 2
    # series 12 days apart (DOMAIN.md), injections at different times of day
    assert (injections[1].normalize() - injections[0].normalize()).days == 12
    pet = pydicom.dcmread(next((two_series / scans["pet_dir"][1]).glob("*.dcm")))
    start = pet.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    assert start[:8] != pet.AcquisitionDate  # injection days before the scan
    assert str(pet.PatientName) == "SYNTHETIC^P01"
    assert pet.PatientID == "SYN-P01"


def test_lesion_map_and_spheres(two_series: Path) -> None:
    truth = pd.read_csv(two_series / "truth" / "lesions.csv")
    lesions = pd.read_csv(two_series / "lesions.csv")
    scans = pd.read_csv(two_series / "scans.csv")
    for scan in scans.itertuples():
        rows = truth[
            (truth["series"] == scan.series) & (truth["nominal_hours"] == scan.nominal_hours)
        ]
        labels = read_nifti(two_series / scan.lesion_map).volume.array
        present = set(np.unique(labels).tolist()) - {0}
        assert present == set(rows.loc[rows["visible"], "lesion"])
        spheres = pd.read_csv(two_series / scan.lesion_spheres)
        fdg = set(lesions.loc[lesions["fdg_positive"], "lesion"])
        assert set(spheres["lesion"]) == fdg - present
        assert np.all(spheres["volume_ml"] == 1.0)
    # the spill-in lesion touches the spleen and is flagged
    assert lesions["near_spleen"].sum() == 1


def test_predose_lowers_tumours_and_doubles_blood(two_series: Path) -> None:
    organs = pd.read_csv(two_series / "truth" / "organs.csv")
    blood = organs[organs["organ"] == "blood_pool"].set_index(["series", "nominal_hours"])
    ratio = (
        blood.loc[("predose", 120.0), "suv_true"] / blood.loc[("tracer-only", 120.0), "suv_true"]
    )
    assert 1.8 < ratio < 2.3  # anchors 3.3 / 1.6 = 2.06, hours differ a little
    truth = pd.read_csv(two_series / "truth" / "lesions.csv")
    lesions = pd.read_csv(two_series / "lesions.csv")
    tumours = set(lesions.loc[lesions["fdg_positive"] & ~lesions["near_spleen"], "lesion"])
    rim = truth[truth["lesion"].isin(tumours)].pivot_table(
        index=["lesion", "nominal_hours"], columns="series", values="suv_rim"
    )
    assert np.all(rim["predose"] < rim["tracer-only"])


def test_blood_samples_match_blood_pool_kinetics(two_series: Path) -> None:
    samples = pd.read_csv(
        two_series / "blood_samples.csv",
        parse_dates=["injection_datetime", "sample_datetime", "counting_datetime"],
    )
    truth = pd.read_csv(two_series / "truth" / "blood.csv")
    calibration = json.loads((two_series / "counter_calibration.json").read_text())
    scans = pd.read_csv(two_series / "scans.csv")
    weight = float(scans["weight_kg"].iloc[0])
    assert len(samples) == 2 * 4  # 5, 30 min, day 3, day 5 per series (standard protocol)
    assert np.all(samples["counting_datetime"] > samples["sample_datetime"])
    half_life_s = calibration["half_life_s"]
    for sample, true in zip(samples.itertuples(), truth.itertuples(), strict=True):
        # independent route: cpm/mL -> Bq/mL at counting -> decay-correct to injection -> %IA/L
        elapsed = (sample.counting_datetime - sample.injection_datetime).total_seconds()
        bq_per_ml = (
            sample.plasma_cpm_per_ml / calibration["cpm_per_bq"] * 2 ** (elapsed / half_life_s)
        )
        percent_ia_per_l = bq_per_ml * 1000.0 / sample.injected_activity_bq * 100.0
        assert percent_ia_per_l == pytest.approx(true.plasma_percent_ia_per_l, rel=0.08)
        # plasma = whole blood / (1 - Hct), whole blood %IA/L = SUV * 100 / weight
        assert true.plasma_percent_ia_per_l == pytest.approx(
            true.blood_pool_suv * 100.0 / weight / 0.6,
            rel=2e-5,  # CSV keeps 6 digits
        )
    minutes = (samples["sample_datetime"] - samples["injection_datetime"]).dt.total_seconds() / 60
    assert sorted(set(minutes.round(3)))[:2] == [5.0, 30.0]


def test_clinical_sheet_is_table1_row(two_series: Path) -> None:
    sheet = pd.read_csv(two_series / "clinical.csv", keep_default_na=False)
    assert tuple(sheet.columns) == CLINICAL_COLUMNS
    # Table 1 row 9: 70 y, M, adenocarcinoma, TPS 0 (cytology), CPS NE, 1 cycle, PD, PFS 9, OS 15
    row = sheet.iloc[0]
    assert (row["patient"], int(row["age"]), row["sex"], row["cps_percent"], row["bor"]) == (
        "P01",
        70,
        "M",
        "NE",
        "PD",
    )
    assert (int(row["pfs_days"]), int(row["os_days"])) == (9, 15)


def test_study_preset_design() -> None:
    # DOMAIN.md: 13 patients, 102 FDG-positive lesions of which 33 >= 20 mm, P09 spill-in
    assert len(STUDY.clinical_rows) == 13
    assert sum(STUDY.tumours_per_patient) == 102
    assert sum(STUDY.large_per_patient) == 33
    assert STUDY.spleen_lesion_patient == "P09"
    assert STUDY.hours_for(0) == (1.0, 72.0, 120.0, 168.0)
    assert STUDY.hours_for(3) == (72.0, 120.0)
    assert len(STUDY.without_predose) == 2
    assert STUDY.series_gap_days == 12


def test_unknown_preset_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown preset"):
        generate_trial(tmp_path, preset="huge")  # type: ignore[arg-type]


def test_cli_run_through_own_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    synth.register(subparsers)
    args = parser.parse_args(
        ["synth", str(tmp_path / "out"), "--preset", "tiny", "--seed", "1", "--quiet"]
    )
    assert args.preset == "tiny" and args.seed == 1
    # run on a one-scan design to stay fast: swap the preset after parsing
    args.preset = ONE_SCAN
    assert args.func(args) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "out" / "truth" / "organs.csv").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", str(tmp_path), "--preset", "huge"])


# Table 2 of seed 000: term, patients with any grade, patients with grade 3-4 (of 13)
TABLE2 = {
    "Anemia": (8, 1),
    "Thrombocytopenia": (5, 0),
    "Alkaline phosphatase increased": (6, 0),
    "GGT increased": (3, 0),
    "Aspartate aminotransferase increased": (1, 0),
    "Hypercalcemia": (1, 0),
    "Hypomagnesemia": (2, 0),
    "Cough": (3, 0),
    "Dyspnea": (3, 1),
    "Pneumonia": (1, 1),
    "Pain": (7, 1),
    "Anorexia": (4, 1),
    "Constipation": (1, 0),
    "Epistaxis": (1, 0),
    "Acute kidney injury": (1, 0),
    "Superior vena cava syndrome": (1, 1),
}


def test_adverse_events_reproduce_table2() -> None:
    pseudonyms = tuple(f"P{i:02d}" for i in range(1, 14))
    events = draw_adverse_events(pseudonyms, np.random.default_rng(4))
    assert set(events["ctcae_version"]) == {"4.0"}
    for term, (n_any, n_34) in TABLE2.items():
        rows = events[events["term"] == term]
        assert rows["patient"].nunique() == n_any == len(rows), term
        assert int((rows["grade"] >= 3).sum()) == n_34, term
        assert rows["grade"].between(1, 4).all()


def test_study_clinical_sheet_survival() -> None:
    sheet = make_clinical_sheet(STUDY.pseudonyms, STUDY.clinical_rows)
    # Table 1: PFS 86 19 <15 34 22 154 183 684 9 2 NR NR 41; OS 823 19 63 40 147 182 NR NR 15 2
    # NR NR 78 (days). Medians by Kaplan-Meier: 7th of 13 ordered event times, no censoring
    # before: PFS 41 d (1.3 mo), OS 147 d (4.8 mo).
    assert sheet["pfs_days"].tolist()[:10] == [86, 19, 15, 34, 22, 154, 183, 684, 9, 2]
    assert sheet["pfs_event"].tolist() == [1] * 10 + [0, 0, 1]
    assert sheet["os_event"].tolist() == [1] * 6 + [0, 0] + [1, 1] + [0, 0, 1]
    pfs = sorted(sheet["pfs_days"])
    os_days = sorted(sheet["os_days"])
    assert pfs[6] == 41 and os_days[6] == 147
    assert round(41 / 30.4375, 1) == 1.3 and round(147 / 30.4375, 1) == 4.8
    censored = sheet.loc[sheet["os_event"] == 0, "os_days"]
    assert censored.min() > 147
    assert "entered as 15" in sheet.loc[2, "note"]


@pytest.mark.slow
def test_tiny_preset(tmp_path: Path) -> None:
    manifest = generate_trial(tmp_path, preset="tiny", seed=0)
    # 3 patients x 2 series x (72, 120 h)
    assert manifest.patients == ("P01", "P02", "P03")
    assert len(manifest.scans) == 12
    assert {scan.vendor for scan in manifest.scans} == {"siemens", "ge", "philips"}
    lesions = pd.read_csv(tmp_path / "lesions.csv")
    assert int(lesions["near_spleen"].sum()) == 1
    assert lesions.groupby(["patient", "lesion"]).size().max() == 1
    truth = pd.read_csv(tmp_path / "truth" / "lesions.csv")
    # every lesion appears once per scan with the same diameter
    assert len(truth) == len(lesions) * 4
    assert truth.groupby(["patient", "lesion"])["diameter_mm"].nunique().max() == 1


def test_kinetics_truth(two_series: Path) -> None:
    truth = pd.read_csv(two_series / "truth" / "kinetics.csv", dtype={"voi": str})
    assert list(truth.columns) == [
        "patient",
        "series",
        "voi",
        "kind",
        "ki_ul_per_g_per_h",
        "vt_ml_per_g",
    ]
    organs = truth[truth["kind"] == "organ"]
    assert set(organs["voi"]) == {"liver", "spleen", "kidney", "lung", "bone_marrow", "brain"}
    lesions = pd.read_csv(two_series / "lesions.csv")
    tumours = {str(n) for n in lesions.loc[lesions["fdg_positive"], "lesion"]}
    assert set(truth.loc[truth["kind"] == "lesion", "voi"]) == tumours  # nodes have no truth
    assert len(truth) == 2 * (6 + len(tumours))
    assert (truth["ki_ul_per_g_per_h"] > 0).all() and (truth["vt_ml_per_g"] > 0).all()
    spleen = organs[organs["voi"] == "spleen"].set_index("series")["ki_ul_per_g_per_h"]
    assert spleen["predose"] < spleen["tracer-only"]


def test_baseline_fdg_scan_per_patient(two_series: Path) -> None:
    from immunopet.study.manifest import load_manifest
    from immunopet.suv.volume import read_suv_volume

    fdg = pd.read_csv(
        two_series / "fdg_scans.csv", parse_dates=["injection_datetime", "scan_datetime"]
    )
    scans = pd.read_csv(two_series / "scans.csv", parse_dates=["injection_datetime"])
    assert list(fdg["patient"]) == ["P01"]
    row = fdg.iloc[0]
    # a week before the first 89Zr injection, about an hour after the FDG injection
    days = (scans["injection_datetime"].min().normalize() - row["scan_datetime"].normalize()).days
    assert days == 7
    assert 0.8 < row["hours_pi"] < 1.2
    study = load_manifest(two_series / "study.toml")
    scan = study.patients[0].fdg
    assert scan is not None
    assert scan.pet == (two_series / row["pet_dir"]).resolve()
    suv = read_suv_volume(scan.pet)
    derivation = suv.derivation
    assert derivation.nuclide == "18F"
    assert derivation.half_life_s == pytest.approx(109.77 * 60)
    # SUVbw factor by hand: weight (g) / activity decayed to the scan with the 18F half-life
    delay_s = (row["scan_datetime"] - row["injection_datetime"]).total_seconds()
    weight_g = 1000.0 * scans["weight_kg"].iloc[0]
    decayed = row["injected_activity_bq"] * 0.5 ** (delay_s / (109.77 * 60))
    assert derivation.suv_bw_factor == pytest.approx(weight_g / decayed, rel=1e-6)
    # FDG-avid lesions stand out, the FDG-negative node does not
    labels = read_nifti(scan.vois[0].path).volume.array
    lesions = pd.read_csv(two_series / "lesions.csv")
    for _, lesion in lesions.iterrows():
        peak = float(suv.volume.array[labels == lesion["lesion"]].max())
        assert (peak > 2.5) == bool(lesion["fdg_positive"]), (lesion["lesion"], peak)
