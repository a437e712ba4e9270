"""DICOM SEG + SR (TID 1500) export: read back with highdicom, compared with measurements.csv and
the VOIs the pipeline measured; byte-identical reruns; no identifying header value; dciodvfy
(dicom3tools, an independent validator) finds no error."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest

from immunopet.cli.main import main
from immunopet.errors import InputError
from immunopet.exports.dicom_export import _matched, export_scan, export_study_dicom
from immunopet.exports.dicom_seg import build_seg
from immunopet.exports.dicom_sr import (
    EXCLUDED,
    GLOBAL_PEAK,
    LOCAL_PEAK,
    RATIO,
    SUGGESTED_EXCLUSION,
    ScanContext,
)
from immunopet.io.dicom import find_one_pet
from immunopet.study.manifest import load_manifest
from immunopet.study.model import Scan, Study
from immunopet.study.runner import run_study
from immunopet.study.store import ResultsStore
from immunopet.suv.volume import read_suv_volume
from immunopet.synthetic.presets import TINY
from immunopet.synthetic.trial import generate_trial
from immunopet.voi.sources import Voi, load_vois

DCIODVFY = shutil.which("dciodvfy")
if DCIODVFY is None and os.environ.get("IMMUNOPET_REQUIRE_TOOLS") == "1":
    raise RuntimeError("IMMUNOPET_REQUIRE_TOOLS=1 but dciodvfy is not on PATH")

# one scan per vendor flavour (Siemens, GE, Philips): three scans, about 10 s in all
ONE_SCAN_PER_VENDOR = dataclasses.replace(
    TINY, name="dicom-export", series=("tracer-only",), standard_hours=(72.0,)
)

# DICOM PS3.16 CID 85 "SUV Units" and CID 7181: the UCUM code of SUVbw; DCM 126401 = "SUVbw"
SUVBW_UNIT = "g/ml{SUVbw}"
SUVBW_NAME = "126401"
MEAN, MAXIMUM, PEAK = "373098007", "56851009", "126031"  # SCT Mean, SCT Maximum, DCM Peak
VOLUME, LONG_AXIS, TIME_PI = "118565006", "103339001", "130194"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dicom-export")
    generate_trial(root, preset=ONE_SCAN_PER_VENDOR, seed=3)
    study = load_manifest(root / "study.toml")
    summary = run_study(study, root / "results", workers=1, progress=False)
    assert summary.ok
    out = root / "dicom-out"
    done = export_study_dicom(study, root / "results", out)
    # three tracer scans and the three patients' baseline FDG scans
    assert len(done.scans) == 6 and not done.notes
    return {"root": root, "out": out}


def _measurements(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "results" / "measurements.csv")


def _files(out: Path, name: str, *, fdg: bool | None = False) -> list[Path]:
    """Exported files: of the tracer scans (default), of the FDG scans (True), or all (None)."""
    files = sorted(
        p for p in out.rglob(name) if fdg is None or ("fdg" in p.relative_to(out).parts) == fdg
    )
    assert files
    return files


def _scan_id(path: Path, out: Path) -> str:
    return "/".join(path.parent.relative_to(out).parts)


def _by_name(group: Any) -> dict[tuple[str, str | None], float]:
    """{(concept code, method code or derivation code): value} of one measurement group."""
    values: dict[tuple[str, str | None], float] = {}
    for m in group.get_measurements():
        key = m.method.value if m.method is not None else None
        if key is None and m.derivation is not None:
            key = m.derivation.value
        values[(m.name.value, key)] = m.value
    return values


# ---------------------------------------------------------------------------- SR values
def test_sr_values_equal_measurements_csv(exported: dict[str, Path]) -> None:
    table = _measurements(exported["root"])
    n_checked = 0
    for path in _files(exported["out"], "sr.dcm"):
        rows = table[table["scan_id"] == _scan_id(path, exported["out"])].set_index("voi")
        sr = hd.sr.srread(path)
        groups = sr.content.get_volumetric_roi_measurement_groups()
        assert len(groups) == len(rows)
        for group in groups:
            row = rows.loc[group.tracking_identifier]
            values = _by_name(group)
            units = {m.name.value: m.unit.value for m in group.get_measurements()}
            assert units[SUVBW_NAME] == SUVBW_UNIT
            assert units[VOLUME] == "ml" and units[LONG_AXIS] == "mm" and units[TIME_PI] == "h"
            # FloatingPointValue (FD) holds the double: equal to the CSV's repr to 1e-12
            expected = {
                (SUVBW_NAME, MEAN): row["suv_mean"],
                (SUVBW_NAME, MAXIMUM): row["suv_max"],
                (SUVBW_NAME, LOCAL_PEAK): row["suv_peak_local"],
                (SUVBW_NAME, GLOBAL_PEAK): row["suv_peak_global"],
                (VOLUME, None): row["volume_ml"],
                (LONG_AXIS, None): row["long_axis_mm"],
                (TIME_PI, None): row["hours_pi"],
            }
            if row["kind"] == "lesion" and math.isfinite(row["ratio_to_reference"]):
                expected[(RATIO, None)] = row["ratio_to_reference"]
            assert set(values) == set(expected)
            for key, value in expected.items():
                assert values[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            n_checked += 1
    assert n_checked == len(table)


def test_sr_states_peak_sphere_and_kind(exported: dict[str, Path]) -> None:
    sr = hd.sr.srread(_files(exported["out"], "sr.dcm")[0])
    group = sr.content.get_volumetric_roi_measurement_groups()[0]
    methods = {m.method.meaning for m in group.get_measurements() if m.method is not None}
    assert methods == {
        "IBSI local intensity peak, sphere radius 6.2 mm",
        "IBSI global intensity peak, sphere radius 6.2 mm",
    }
    ratios = {
        m.name.meaning
        for g in sr.content.get_volumetric_roi_measurement_groups()
        for m in g.get_measurements()
        if m.name.value == RATIO
    }
    assert ratios == {"Lesion / blood pool SUVpeak (IBSI local peak)"}
    schemes = [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence]
    assert "99IMMUNOPET" in schemes


def test_ratio_only_for_lesions_with_a_blood_pool(exported: dict[str, Path]) -> None:
    for path in _files(exported["out"], "sr.dcm"):
        for group in hd.sr.srread(path).content.get_volumetric_roi_measurement_groups():
            has_ratio = (RATIO, None) in _by_name(group)
            is_lesion = group.finding_category.value == "49755003"
            assert has_ratio == is_lesion  # every synthetic scan has a blood-pool sphere


# ---------------------------------------------------------------------------- SEG masks
def _measured_vois(root: Path, scan_id: str) -> tuple[list[Voi], list[str]]:
    study = load_manifest(root / "study.toml")
    (ref,) = [r for r in study.scans() if r.scan_id == scan_id]
    series = find_one_pet(ref.scan.pet)
    volume = read_suv_volume(series).volume
    vois = [v for s in ref.scan.vois for v in load_vois(s.path, reference=volume, kind=s.kind)]
    return vois, [str(h.SOPInstanceUID) for h in series.headers]


def test_seg_masks_equal_measured_vois(exported: dict[str, Path]) -> None:
    table = _measurements(exported["root"])
    for path in _files(exported["out"], "seg.dcm"):
        scan_id = _scan_id(path, exported["out"])
        vois, sop_uids = _measured_vois(exported["root"], scan_id)
        seg = hd.seg.segread(path)
        numbers = seg.get_segment_numbers()
        assert len(numbers) == len(vois)
        # highdicom's own reader, frames by source instance in the PET's slice order
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=sop_uids,
            segment_numbers=numbers,
            assert_missing_frames_are_empty=True,
        )
        rows = table[table["scan_id"] == scan_id]
        for number, voi in zip(numbers, vois, strict=True):
            description = seg.get_segment_description(number)
            assert description.segment_label == voi.name
            np.testing.assert_array_equal(pixels[..., number - 1].astype(bool), voi.mask)
            (stored,) = rows[(rows["voi"].astype(str) == voi.name) & (rows["kind"] == voi.kind)][
                "n_voxels"
            ]
            assert int(pixels[..., number - 1].sum()) == stored
            expected_category = "49755003" if voi.kind == "lesion" else "91723000"
            assert description.segmented_property_category.value == expected_category


def test_uids_follow_content(exported: dict[str, Path]) -> None:
    root = exported["root"]
    scan_id = next(load_manifest(root / "study.toml").scans()).scan_id
    vois, _ = _measured_vois(root, scan_id)
    series = find_one_pet(next(load_manifest(root / "study.toml").scans()).scan.pet)
    first, _ = build_seg(vois, series, pseudonym="P01")
    again, _ = build_seg(vois, series, pseudonym="P01")
    fewer, _ = build_seg(vois[1:], series, pseudonym="P01")
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SeriesInstanceUID == again.SeriesInstanceUID
    assert fewer.SOPInstanceUID != first.SOPInstanceUID
    assert fewer.SeriesInstanceUID != first.SeriesInstanceUID


def test_seg_organ_codes(exported: dict[str, Path]) -> None:
    seg = hd.seg.segread(_files(exported["out"], "seg.dcm")[0])
    types = {
        seg.get_segment_description(n).segment_label: seg.get_segment_description(
            n
        ).segmented_property_type.meaning
        for n in seg.get_segment_numbers()
    }
    assert types["liver"] == "Liver" and types["blood_pool"] == "Aorta"


def test_sr_refers_to_seg_and_pet(exported: dict[str, Path]) -> None:
    for sr_path in _files(exported["out"], "sr.dcm", fdg=None):
        seg = pydicom.dcmread(sr_path.with_name("seg.dcm"))
        sr = pydicom.dcmread(sr_path)
        evidence = {
            str(s.SeriesInstanceUID): {
                str(i.ReferencedSOPInstanceUID) for i in s.ReferencedSOPSequence
            }
            for study in sr.CurrentRequestedProcedureEvidenceSequence
            for s in study.ReferencedSeriesSequence
        }
        pet_series = str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
        assert str(seg.SOPInstanceUID) in evidence[str(seg.SeriesInstanceUID)]
        assert pet_series in evidence
        groups = hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups()
        for group in groups:
            ref = group.referenced_segment
            assert str(ref[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID) == str(
                seg.SOPInstanceUID
            )
        assert sr.StudyInstanceUID == seg.StudyInstanceUID


# ---------------------------------------------------------------------------- privacy, reruns
def _all_values(ds: pydicom.Dataset) -> list[str]:
    texts = []
    for element in ds.iterall():
        if element.VR not in ("SQ", "OB", "OW", "UN"):
            texts.append(str(element.value))
    return texts


def test_only_pseudonym_identifies_the_patient(exported: dict[str, Path]) -> None:
    for path in _files(exported["out"], "*.dcm", fdg=None):
        ds = pydicom.dcmread(path)
        pseudonym = path.relative_to(exported["out"]).parts[0]
        assert str(ds.PatientID) == pseudonym
        assert str(ds.PatientName) == pseudonym + "^"
        assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""
        # the synthetic PET's own name and ID are SYNTHETIC^Pxx and SYN-Pxx
        joined = "\n".join(_all_values(ds))
        assert "SYNTHETIC" not in joined and "SYN-" not in joined
        assert str(exported["root"]) not in joined


def test_rerun_through_the_cli_is_byte_identical(
    exported: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    root = exported["root"]
    assert main(["export-dicom", str(root / "study.toml"), str(tmp_path)]) == 0
    assert "6 scans" in capsys.readouterr().out
    first = _files(exported["out"], "*.dcm", fdg=None)
    assert len(first) == len(list(tmp_path.rglob("*.dcm"))) == 12
    for path in first:
        again = tmp_path / path.relative_to(exported["out"])
        assert again.read_bytes() == path.read_bytes(), path


def test_dates_come_from_the_pet(exported: dict[str, Path]) -> None:
    for path in _files(exported["out"], "*.dcm", fdg=None):
        ds = pydicom.dcmread(path)
        assert ds.ContentDate == ds.SeriesDate == ds.InstanceCreationDate == ds.StudyDate


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy not installed (apt-get install dicom3tools)")
def test_dciodvfy_finds_no_error(exported: dict[str, Path]) -> None:
    for path in _files(exported["out"], "*.dcm", fdg=None):
        done = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True)
        report = done.stdout + done.stderr
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert not errors, f"{path}:\n" + "\n".join(errors)


# ---------------------------------------------------------------------------- refusals
def test_no_results_store_is_refused(exported: dict[str, Path], tmp_path: Path) -> None:
    study = load_manifest(exported["root"] / "study.toml")
    with pytest.raises(InputError, match="no results store"):
        export_study_dicom(study, tmp_path / "nothing", tmp_path / "out")


def test_changed_voi_is_refused(exported: dict[str, Path]) -> None:
    root = exported["root"]
    study = load_manifest(root / "study.toml")
    ref = next(study.scans())
    vois, _ = _measured_vois(root, ref.scan_id)
    rows = _measurements(root)
    rows = rows[rows["scan_id"] == ref.scan_id].copy()
    rows["voi"] = rows["voi"].astype(str)
    _matched(ref, vois, rows, "pet")  # as measured: accepted
    rows.loc[rows.index[0], "n_voxels"] += 1
    with pytest.raises(InputError, match="not what was measured"):
        _matched(ref, vois, rows, "pet")


# ---------------------------------------------------------------------------- CLI
def _first_scan(root: Path) -> tuple[Path, list[Path]]:
    ref = next(load_manifest(root / "study.toml").scans())
    return ref.scan.pet, [s.path for s in ref.scan.vois if s.path.suffix == ".csv"]


def test_measure_sr_matches_printed_rows(
    exported: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    pet, vois = _first_scan(exported["root"])
    out = tmp_path / "scan.dcm"
    argv = ["measure", str(pet), *map(str, vois), "--kind", "lesion", "--json"]
    assert main([*argv, "--sr", str(out), "--pseudonym", "P01"]) == 0
    rows = {row["voi"]: row for row in json.loads(capsys.readouterr().out)}
    groups = hd.sr.srread(out).content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(rows)
    for group in groups:
        values = _by_name(group)
        row = rows[group.tracking_identifier]
        assert values[(SUVBW_NAME, MEAN)] == pytest.approx(row["suv_mean"], rel=1e-12)
        assert values[(SUVBW_NAME, LOCAL_PEAK)] == pytest.approx(row["suv_peak_local"], rel=1e-12)
        assert values[(VOLUME, None)] == pytest.approx(row["volume_ml"], rel=1e-12)
        assert values[(TIME_PI, None)] > 70.0
    assert hd.seg.segread(tmp_path / "scan-seg.dcm").get_segment_numbers()


def test_measure_sr_states_the_radionuclide_and_fdg(
    exported: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    """``measure --sr`` codes the nuclide (CID 4020) from the series' header, and [18F]FDG
    (CID 4021) when the header names it, as the study export does; read back with pydicom."""
    root = exported["root"]
    pet, vois = _first_scan(root)
    first = pydicom.dcmread(next(iter(sorted(Path(pet).rglob("*.dcm")))), stop_before_pixels=True)
    assert first.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife > 2.8e5  # 89Zr
    out = tmp_path / "zr.dcm"
    argv = ["measure", str(pet), *map(str, vois), "--kind", "lesion", "--json"]
    assert main([*argv, "--sr", str(out), "--pseudonym", "P01"]) == 0
    capsys.readouterr()
    groups = hd.sr.srread(out).content.get_volumetric_roi_measurement_groups()
    assert groups and all(_tracer(g) == {RADIONUCLIDE: ZIRCONIUM_89} for g in groups)
    # the same codes, found with plain pydicom in the file
    text = str(pydicom.dcmread(out))
    assert ZIRCONIUM_89 in text and FDG not in text

    study = load_manifest(root / "study.toml")
    fdg_scan = next(p.fdg for p in study.patients if p.fdg is not None)
    fdg_vois = [s.path for s in fdg_scan.vois if s.kind != "organ"]
    assert fdg_vois
    out = tmp_path / "fdg.dcm"
    argv = ["measure", str(fdg_scan.pet), *map(str, fdg_vois), "--kind", "lesion", "--json"]
    assert main([*argv, "--sr", str(out), "--pseudonym", "P01"]) == 0
    capsys.readouterr()
    groups = hd.sr.srread(out).content.get_volumetric_roi_measurement_groups()
    assert groups
    for group in groups:
        assert _tracer(group) == {RADIONUCLIDE: FLUORINE_18, RADIOPHARMACEUTICAL: FDG}
    text = str(pydicom.dcmread(out))
    assert FLUORINE_18 in text and FDG in text


def test_measure_sr_needs_a_pseudonym(
    exported: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    pet, vois = _first_scan(exported["root"])
    code = main(["measure", str(pet), *map(str, vois), "--sr", str(tmp_path / "x.dcm")])
    assert code == 2
    assert "--pseudonym" in capsys.readouterr().err
    assert not (tmp_path / "x.dcm").exists()


# ---------------------------------------------------------------------------- skipped scans
def _with_first_scan(study: Study, scan: Scan) -> Study:
    patient = study.patients[0]
    injection = dataclasses.replace(
        patient.injections[0], scans=(scan, *patient.injections[0].scans[1:])
    )
    first = dataclasses.replace(patient, injections=(injection, *patient.injections[1:]))
    return dataclasses.replace(study, patients=(first, *study.patients[1:]))


def test_scans_without_measurements_or_dicom_are_skipped(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    root = exported["root"]
    study = load_manifest(root / "study.toml")
    refs = list(study.scans())
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    with ResultsStore(results) as store:
        store.prune([ref.scan_id for ref in refs[1:]])  # the first scan: no measurements
    done = export_study_dicom(study, results, tmp_path / "a")
    tracer = [s.scan_id for s in done.scans if not s.scan_id.endswith("/fdg")]
    assert tracer == [ref.scan_id for ref in refs[1:]]
    assert done.notes == (f"{refs[0].scan_id}: no stored measurements (not exported)",)

    nifti = _with_first_scan(study, dataclasses.replace(refs[0].scan, pet=Path("pet.nii.gz")))
    done = export_study_dicom(nifti, root / "results", tmp_path / "b")
    assert len(done.scans) == 2 + 3  # and the three FDG scans
    assert "NIfTI PET" in done.notes[0]
    assert "5 scans" in done.summary and done.summary.endswith("; 1 skipped")


# ---------------------------------------------------------------------------- baseline FDG scans
F18_HALF_LIFE_S = 109.77 * 60.0  # NNDC
RADIONUCLIDE, RADIOPHARMACEUTICAL = "89457008", "349358000"  # SCT (as in TID 10022)
FLUORINE_18, ZIRCONIUM_89, FDG = "77004003", "63360001", "35321007"  # CID 4020, 4020, 4021


def _fdg_rows(root: Path, patient: str) -> pd.DataFrame:
    table = pd.read_csv(root / "results" / "fdg_measurements.csv")
    rows = table[table["patient"] == patient]
    return rows.set_index(rows["lesion"].astype(str))


def _fdg_suv_by_hand(folder: Path) -> tuple[np.ndarray, list[str], float]:
    """SUVbw of an 18F PET stored as Bq/mL decay-corrected to START (the synthetic FDG scans),
    slices in file order, from the DICOM files read here with pydicom; and the hours after
    the FDG injection from (0008,0021)/(0008,0031) and (0018,1078)."""
    files = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    first = files[0]
    item = first.RadiopharmaceuticalInformationSequence[0]
    injected = datetime.strptime(item.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    start = datetime.strptime(first.SeriesDate + first.SeriesTime[:6], "%Y%m%d%H%M%S")
    elapsed_s = (start - injected).total_seconds()
    decayed = float(item.RadionuclideTotalDose) * 0.5 ** (elapsed_s / F18_HALF_LIFE_S)
    weight_g = float(first.PatientWeight) * 1000.0
    bqml = []
    for ds in files:
        slope = float(ds.RescaleSlope) if "RescaleSlope" in ds else 1.0
        intercept = float(ds.RescaleIntercept) if "RescaleIntercept" in ds else 0.0
        value = ds.pixel_array * slope + intercept
        if str(ds.Units).upper() == "CNTS":  # Philips: counts x (7053,1009) = Bq/mL
            value = value * float(ds[0x7053, 0x1009].value)
        bqml.append(value)
    suv = np.stack(bqml) * weight_g / decayed
    return suv, [str(ds.SOPInstanceUID) for ds in files], elapsed_s / 3600.0


def _tracer(group: Any) -> dict[str, str]:
    """The radionuclide and radiopharmaceutical evaluations of a group (code -> value code)."""
    return {
        e.name.value: e.value.value
        for e in group.get_qualitative_evaluations()
        if e.name.value in (RADIONUCLIDE, RADIOPHARMACEUTICAL)
    }


def test_fdg_sr_and_seg_against_the_stored_fdg_measurements(exported: dict[str, Path]) -> None:
    root, out = exported["root"], exported["out"]
    checked = 0
    for sr_path in _files(out, "sr.dcm", fdg=True):
        patient = sr_path.relative_to(out).parts[0]
        assert sr_path.parent == out / patient / "fdg"
        rows = _fdg_rows(root, patient)
        suv, sop_uids, hours = _fdg_suv_by_hand(root / "dicom" / patient / "fdg" / "pet")
        seg = hd.seg.segread(sr_path.with_name("seg.dcm"))
        numbers = seg.get_segment_numbers()
        masks = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=sop_uids,
            segment_numbers=numbers,
            assert_missing_frames_are_empty=True,
        ).astype(bool)
        labels = {seg.get_segment_description(n).segment_label: n for n in numbers}
        sr = hd.sr.srread(sr_path)
        groups = sr.content.get_volumetric_roi_measurement_groups()
        assert len(groups) == len(rows) == len(numbers)
        for group in groups:
            row = rows.loc[group.tracking_identifier]
            values = _by_name(group)
            units = {m.name.value: m.unit.value for m in group.get_measurements()}
            assert units == {SUVBW_NAME: SUVBW_UNIT, VOLUME: "ml", TIME_PI: "h"}
            # the study's one SUVpeak kind (local), no long axis, no ratio: what is stored
            expected = {
                (SUVBW_NAME, MEAN): row["fdg_suv_mean"],
                (SUVBW_NAME, MAXIMUM): row["fdg_suv_max"],
                (SUVBW_NAME, LOCAL_PEAK): row["fdg_suv_peak"],
                (VOLUME, None): row["volume_ml"],
                (TIME_PI, None): row["hours_pi"],
            }
            assert set(values) == set(expected)
            for key, value in expected.items():
                assert values[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            # independently: hours after the FDG injection from the header (about 1 h)
            assert values[(TIME_PI, None)] == pytest.approx(hours, abs=1e-6)
            assert 0.5 < values[(TIME_PI, None)] < 1.5
            # the SEG's mask of this lesion, the SUV by hand: SUVmax and voxel count
            mask = masks[..., labels[group.tracking_identifier] - 1]
            assert int(mask.sum()) == int(row["n_voxels"])
            assert values[(SUVBW_NAME, MAXIMUM)] == pytest.approx(suv[mask].max(), rel=1e-4)
            assert values[(SUVBW_NAME, MEAN)] == pytest.approx(suv[mask].mean(), rel=1e-4)
            evaluations = _tracer(group)
            assert evaluations == {RADIONUCLIDE: FLUORINE_18, RADIOPHARMACEUTICAL: FDG}
            assert group.finding_category.value == "49755003"  # lesion
            checked += 1
        text = "\n".join(_all_values(pydicom.dcmread(sr_path)))
        assert "FDG baseline 1 h" in text
    assert checked == len(pd.read_csv(root / "results" / "fdg_measurements.csv")) > 0


def test_tracer_sr_names_89zr_and_no_radiopharmaceutical(exported: dict[str, Path]) -> None:
    for path in _files(exported["out"], "sr.dcm"):
        for group in hd.sr.srread(path).content.get_volumetric_roi_measurement_groups():
            evaluations = _tracer(group)
            assert evaluations == {RADIONUCLIDE: ZIRCONIUM_89}


def test_changed_fdg_voi_is_refused(exported: dict[str, Path], tmp_path: Path) -> None:
    root = exported["root"]
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    with ResultsStore(results) as store:
        table = store.read_table("fdg_measurements")
        table.loc[table.index[0], "n_voxels"] += 1
        store.write_table("fdg_measurements", table)
    study = load_manifest(root / "study.toml")
    with pytest.raises(InputError, match=r"scan P01/fdg: lesion VOI '.*' is not what was measured"):
        export_study_dicom(study, results, tmp_path / "out")


def test_fdg_scans_without_stored_measurements_are_skipped(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    root = exported["root"]
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    with ResultsStore(results) as store:
        table = store.read_table("fdg_measurements")
        store.write_table("fdg_measurements", table[table["patient"] != "P02"])
    done = export_study_dicom(load_manifest(root / "study.toml"), results, tmp_path / "out")
    assert done.notes == ("P02/fdg: no stored FDG measurements (not exported)",)
    assert [s.scan_id for s in done.scans if s.scan_id.endswith("/fdg")] == ["P01/fdg", "P03/fdg"]


# ---------------------------------------------------------------------------- exclusions
YES, NO = "373066001", "373067005"  # SCT


def _exclusion_flags(group: Any) -> dict[str, str]:
    return {
        e.name.value: e.value.value
        for e in group.get_qualitative_evaluations()
        if e.name.value in (EXCLUDED, SUGGESTED_EXCLUSION)
    }


def test_excluded_lesions_are_flagged_in_every_sr(exported: dict[str, Path]) -> None:
    root, out = exported["root"], exported["out"]
    # the manifest's exclusions, read here with tomllib
    manifest = tomllib.loads((root / "study.toml").read_text(encoding="utf-8"))
    excluded = {(e["patient"], str(e["lesion"])) for e in manifest["exclusions"]}
    assert excluded == {("P03", "2")}  # the synthetic spill-in lesion next to the spleen
    flagged = set()
    n_lesions = 0
    for path in _files(out, "sr.dcm", fdg=None):
        patient = path.relative_to(out).parts[0]
        for group in hd.sr.srread(path).content.get_volumetric_roi_measurement_groups():
            flags = _exclusion_flags(group)
            if group.finding_category.value != "49755003":  # organs: nothing stated
                assert flags == {}
                continue
            n_lesions += 1
            yes = (patient, group.tracking_identifier) in excluded
            # the suggestion (spill-in) was applied for P03/2: only "excluded" is stated
            assert flags == {EXCLUDED: YES if yes else NO}
            if yes:
                flagged.add((patient, path.parent.name))
    assert flagged == {("P03", "72h"), ("P03", "fdg")}  # the tracer scan and the FDG scan
    table = _measurements(root)
    fdg = pd.read_csv(root / "results" / "fdg_measurements.csv")
    assert n_lesions == int((table["kind"] == "lesion").sum()) + len(fdg)


def test_a_suggested_exclusion_not_applied_is_flagged(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    root = exported["root"]
    study = load_manifest(root / "study.toml")
    (ref,) = [r for r in study.scans() if r.scan_id == "P03/tracer-only/72h"]
    vois, _ = _measured_vois(root, ref.scan_id)
    rows = _measurements(root)
    rows = rows[rows["scan_id"] == ref.scan_id].copy()
    rows["voi"] = rows["voi"].astype(str)
    rows["excluded"] = False  # as if the study had not applied the suggestion
    kept_vois, kept_rows = _matched(ref, vois, rows, "pet")
    context = ScanContext(pseudonym="P03", normalisation="bw", hours_pi=72.0, peak_radius_mm=6.2)
    _, sr = export_scan(find_one_pet(ref.scan.pet), kept_vois, kept_rows, context)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    groups = hd.sr.srread(tmp_path / "sr.dcm").content.get_volumetric_roi_measurement_groups()
    flags = {
        g.tracking_identifier: _exclusion_flags(g)
        for g in groups
        if g.finding_category.value == "49755003"
    }
    assert flags.pop("2") == {EXCLUDED: NO, SUGGESTED_EXCLUSION: YES}
    assert flags and all(f == {EXCLUDED: NO} for f in flags.values())


def _series_with(item: pydicom.Dataset) -> Any:
    from immunopet.io.dicom import DicomSeries

    ds = pydicom.Dataset()
    ds.RadiopharmaceuticalInformationSequence = [item]
    return DicomSeries(series_uid="1.2.3", modality="PT", files=(Path("x.dcm"),), headers=(ds,))


def test_header_radiopharmaceutical_only_names_fdg_when_the_header_does() -> None:
    from immunopet.exports.dicom_export import header_radiopharmaceutical

    coded = pydicom.Dataset()
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "C-B1031", "SRT", "FDG"
    coded.RadiopharmaceuticalCodeSequence = [code]
    assert header_radiopharmaceutical(_series_with(coded), "18F").value == FDG
    for text, nuclide in (("Fludeoxyglucose F18", "18F"), ("18F-FDG", "18F")):
        named = pydicom.Dataset()
        named.Radiopharmaceutical = text
        assert header_radiopharmaceutical(_series_with(named), nuclide).value == FDG
    for text, nuclide in (("PSMA-1007", "18F"), ("FDG", "89Zr"), ("89Zr-durvalumab", "89Zr")):
        other = pydicom.Dataset()
        other.Radiopharmaceutical = text
        assert header_radiopharmaceutical(_series_with(other), nuclide) is None
    assert header_radiopharmaceutical(_series_with(pydicom.Dataset()), "18F") is None
