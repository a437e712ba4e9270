"""`immunopet inspect` and `immunopet suv` end to end on tiny written series.

Expected factors are computed by hand from the factory's acquisition: 89Zr (78.41 h), 37 MBq
injected 120 h before the scan, 70 kg:
    decayed dose = 37e6 * 2**(-120/78.41) = 12.808560e6 Bq
    SUVbw factor = 70000 / 12.808560e6 = 5.4650954e-3 g/mL per Bq/mL
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicom_factory import make_ct_series, make_pet_series, make_pet_volume
from immunopet.cli.main import main
from immunopet.io.nifti import read_nifti
from immunopet.suv.record import SuvOverrides
from immunopet.suv.sidecar import derive_suv_from_sidecar
from immunopet.suv.volume import read_suv_volume

SUV_BW_FACTOR = 5.4650954e-3
CONTRACT_KEYS = {
    "series_uid",
    "manufacturer",
    "units",
    "decay_correction",
    "injected_activity_bq",
    "injection_datetime",
    "scan_datetime",
    "weight_kg",
    "half_life_s",
    "suv_bw_factor",
    "warnings",
}


def drop_injection_date(folder: Path) -> None:
    """Rewrite a series so that it has only (0018,1072) RadiopharmaceuticalStartTime."""
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        del item.RadiopharmaceuticalStartDateTime
        item.RadiopharmaceuticalStartTime = "093000"
        ds.save_as(path)


def test_inspect_json_contract(tmp_path, capsys):
    make_pet_series(tmp_path)
    make_ct_series(tmp_path)
    (tmp_path / "notes.txt").write_text("not dicom")
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert set(record) >= CONTRACT_KEYS
    assert record["suv_bw_factor"] == pytest.approx(SUV_BW_FACTOR, rel=1e-6)
    assert record["half_life_s"] == pytest.approx(78.41 * 3600)
    assert record["injection_datetime"] == "2024-03-01T09:30:00"
    assert record["scan_datetime"] == "2024-03-06T09:30:00"
    assert record["units"] == "BQML" and record["decay_correction"] == "START"
    assert "notes.txt" in err  # a non-DICOM file is reported, not fatal


def test_inspect_lists_several_series_and_hides_identity(tmp_path, capsys):
    from dicom_factory import make_acquisition

    make_pet_series(tmp_path, subdir="a")
    make_pet_series(
        tmp_path, subdir="b", vendor="philips", acquisition=make_acquisition(uid_seed="other")
    )
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    out, _ = capsys.readouterr()
    records = json.loads(out)
    assert len(records) == 2
    assert {r["units"] for r in records} == {"BQML", "CNTS"}
    for record in records:
        # Philips counts: 1 count = 1.7 Bq/mL, so the SUV factor per count is 1.7x larger
        expected = SUV_BW_FACTOR * (1.7 if record["units"] == "CNTS" else 1.0)
        assert record["suv_bw_factor"] == pytest.approx(expected, rel=1e-5)
    assert main(["inspect", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" not in out + text and "SYN-000" not in out + text
    assert "120.00 h" in text and "(0010,1030) PatientWeight" in text


def test_inspect_refuses_89zr_time_only_and_accepts_override(tmp_path, capsys):
    folder = make_pet_series(tmp_path)
    drop_injection_date(folder)
    assert main(["inspect", str(folder), "--json"]) == 2
    _, err = capsys.readouterr()
    error_lines = [line for line in err.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert "(0018,1078) RadiopharmaceuticalStartDateTime" in error_lines[0]
    assert ".dcm" in error_lines[0]  # names the file
    code = main(["inspect", str(folder), "--json", "--injection-datetime", "2024-03-01T09:30"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["suv_bw_factor"] == pytest.approx(SUV_BW_FACTOR, rel=1e-6)
    assert record["injection_time_source"] == "override"


def test_inspect_without_pet(tmp_path, capsys):
    make_ct_series(tmp_path)
    assert main(["inspect", str(tmp_path)]) == 2
    assert "no PET series found" in capsys.readouterr().err


def test_read_suv_volume_values(tmp_path):
    folder = make_pet_series(tmp_path)
    written = make_pet_volume()  # the Bq/mL values the factory wrote (before quantisation)
    suv = read_suv_volume(folder)
    assert suv.volume.unit == "SUVbw"
    # per-slice int16 quantisation: |error| <= slope / 2 = max / 32767 / 2 per slice
    tolerance = written.array.max() / 32767 * SUV_BW_FACTOR
    np.testing.assert_allclose(suv.volume.array, written.array * SUV_BW_FACTOR, atol=tolerance)
    np.testing.assert_allclose(suv.volume.affine, written.affine, atol=1e-4)


@pytest.mark.parametrize("flavour", ["siemens", "ge", "philips"])
@pytest.mark.parametrize("decay_correction", ["START", "ADMIN", "NONE"])
def test_every_flavour_gives_the_same_suv(tmp_path, flavour, decay_correction):
    """The same activity written by every vendor branch and decay convention reads back to
    the same SUV (hand factor above): the branches differ, the number must not."""
    folder = make_pet_series(
        tmp_path, vendor=flavour, decay_correction=decay_correction, slice_duration_s=120.0
    )
    written = make_pet_volume()
    suv = read_suv_volume(folder)
    expected = written.array * SUV_BW_FACTOR
    np.testing.assert_allclose(suv.volume.array, expected, rtol=2e-3, atol=expected.max() * 1e-4)


def test_lbm_normalisation_factor(tmp_path):
    folder = make_pet_series(tmp_path)
    suv = read_suv_volume(folder, normalisation="lbm")
    # Janmahasatian, male 70 kg 1.75 m: BMI = 22.857; LBM = 9270*70/(6680+216*22.857)
    # = 648900/11617.14 = 55.857 kg -> factor = 55857 / 12.808560e6 = 4.36092e-3
    assert suv.derivation.factor("lbm") == pytest.approx(4.36092e-3, rel=1e-5)
    assert suv.volume.unit == "SUVlbm"


def test_missing_weight_needs_override(tmp_path):
    from dicom_factory import make_acquisition

    folder = make_pet_series(tmp_path, acquisition=make_acquisition(weight_kg=None))
    with pytest.raises(ValueError, match=r"\(0010,1030\) PatientWeight"):
        read_suv_volume(folder)
    suv = read_suv_volume(folder, overrides=SuvOverrides(weight_kg=70.0))
    assert suv.derivation.suv_bw_factor == pytest.approx(SUV_BW_FACTOR, rel=1e-6)


def test_suv_command_writes_nifti_that_reads_back(tmp_path, capsys):
    folder = make_pet_series(tmp_path)
    out = tmp_path / "out" / "sub-01_pet.nii.gz"
    assert main(["suv", str(folder), "-o", str(out)]) == 0
    assert "SUVbw" in capsys.readouterr().out
    image = read_nifti(out)
    assert image.sidecar is not None
    assert image.sidecar["ScanStart"] == pytest.approx(120 * 3600)
    direct = read_suv_volume(folder).volume
    np.testing.assert_allclose(image.volume.array, direct.array, rtol=1e-6)
    np.testing.assert_allclose(image.volume.affine, direct.affine, atol=1e-4)
    # the NIfTI holds SUV already decay-corrected to injection: factor 1
    assert derive_suv_from_sidecar(
        image.sidecar, overrides=SuvOverrides(weight_kg=70.0)
    ).suv_bw_factor == pytest.approx(1.0)
    assert nib.load(out).header.get_xyzt_units()[0] == "mm"


def test_suv_command_activity_round_trip(tmp_path):
    folder = make_pet_series(tmp_path)
    out = tmp_path / "act_pet.nii.gz"
    assert main(["suv", str(folder), "-o", str(out), "--activity"]) == 0
    image = read_nifti(out)
    factor = derive_suv_from_sidecar(
        image.sidecar, overrides=SuvOverrides(weight_kg=70.0)
    ).suv_bw_factor
    assert factor == pytest.approx(SUV_BW_FACTOR, rel=1e-6)
