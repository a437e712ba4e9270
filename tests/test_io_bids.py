"""PET-BIDS sidecars: writing (immunopet.io.bids) and reading back (immunopet.suv.sidecar)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from immunopet.errors import InputError, SuvError, SuvWarning
from immunopet.image import ImageVolume
from immunopet.io.bids import IMMUNOPET_KEY, pet_sidecar
from immunopet.io.nifti import read_nifti, write_nifti
from immunopet.suv.record import SuvDerivation, SuvOverrides
from immunopet.suv.sidecar import derive_suv_from_sidecar as _derive


def derive_suv_from_sidecar(side, *, weight_kg=None, source=None):
    return _derive(side, overrides=SuvOverrides(weight_kg=weight_kg), source=source)


def suv_factor_from_sidecar(side, *, weight_kg=None, source=None):
    return derive_suv_from_sidecar(side, weight_kg=weight_kg, source=source).suv_bw_factor


HALF_LIFE_S = 78.41 * 3600  # 89Zr, 282276 s
INJECTION = datetime(2024, 3, 1, 9, 30, 0)
SCAN_120H = datetime(2024, 3, 6, 9, 30, 0)  # 5 days = 120 h = 432000 s later

# Hand calculation, 37 MBq 89Zr, 70 kg, image decay-corrected to scan start 120 h p.i.:
#   W / A       = 70 000 g / 37e6 Bq          = 1.891892e-3 g/Bq
#   decay term  = 2^(120 / 78.41) = 2^1.530417 = 2.888693
#   factor      = 1.891892e-3 * 2.888693       = 5.465095e-3 g/Bq
FACTOR_START_120H = 5.465095e-3
FACTOR_ADMIN = 70_000 / 37e6  # 1.891892e-3 g/Bq


def _record(decay_correction="START", **changes):
    values = dict(
        series_uid="1.2.826.0.1.3680043.2.1125.1",
        manufacturer="SIEMENS",
        units="BQML",
        decay_correction=decay_correction,
        nuclide="89Zr",
        half_life_s=HALF_LIFE_S,
        injected_activity_bq=37e6,
        injection_datetime=INJECTION,
        scan_datetime=SCAN_120H,
        weight_kg=70.0,
        height_m=1.75,
        sex="F",
        bqml_factor=1.0,
        suv_bw_factor=FACTOR_START_120H,
        suv_lbm_factor=None,
        suv_bsa_factor=None,
        branch=f"BQML/{decay_correction}",
        scan_time_source="(0008,0031) SeriesTime",
        injection_time_source="override",
        sources={"weight_kg": "(0010,1030) PatientWeight"},
        warnings=("example warning",),
    )
    values.update(changes)
    return SuvDerivation(**values)


def test_spec_key_names_and_values():
    side = pet_sidecar(_record(), tracer_name="89Zr-durvalumab", frame_duration_s=1800.0)
    required = {  # PET-BIDS required fields immunopet can fill (schema rules/sidecars/pet.yaml)
        "Manufacturer",
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
    }
    assert required <= set(side)
    assert side["TracerRadionuclide"] == "Zr89"
    assert side["InjectedRadioactivity"] == pytest.approx(37.0)  # 37e6 Bq = 37 MBq
    assert side["InjectedRadioactivityUnits"] == "MBq"
    assert side["TimeZero"] == "09:30:00"
    assert side["InjectionStart"] == 0.0
    assert side["ScanStart"] == 432000.0  # 120 h * 3600 s/h
    assert side["FrameTimesStart"] == [432000.0]
    assert side["FrameDuration"] == [1800.0]
    assert side["ImageDecayCorrected"] is True
    assert side["ImageDecayCorrectionTime"] == 432000.0  # START: decay-corrected to scan start
    assert side["ModeOfAdministration"] == "bolus"
    assert side["Units"] == "Bq/mL"
    own = side[IMMUNOPET_KEY]
    assert own["weight_kg"] == 70.0
    assert own["half_life_s"] == HALF_LIFE_S
    assert own["height_m"] == 1.75


def test_no_identifying_values_in_sidecar():
    side = pet_sidecar(_record())
    text = repr(side)
    assert "1.2.826.0.1.3680043" not in text  # series UID
    assert "2024" not in text  # no calendar date
    assert "sex" not in side[IMMUNOPET_KEY]


def test_decay_reference_by_dicom_decay_correction():
    assert pet_sidecar(_record("ADMIN"))["ImageDecayCorrectionTime"] == 0.0
    none = pet_sidecar(_record("NONE"), frame_duration_s=1800.0)
    assert none["ImageDecayCorrected"] is False
    assert "ImageDecayCorrectionTime" not in none
    suv = pet_sidecar(_record("START"), units="g/mL")
    assert suv["ImageDecayCorrectionTime"] == 0.0
    assert suv["Units"] == "g/mL"


def test_fractional_injection_second_goes_to_injection_start():
    record = _record(injection_datetime=datetime(2024, 3, 1, 9, 30, 0, 500000))
    side = pet_sidecar(record)
    assert side["TimeZero"] == "09:30:00"
    assert side["InjectionStart"] == 0.5
    assert side["ScanStart"] == 432000.0  # scan at 09:30:00 five days later, from TimeZero


def test_hand_computed_factor_120h_zr89():
    side = pet_sidecar(_record("START"))
    assert suv_factor_from_sidecar(side, weight_kg=70.0) == pytest.approx(
        FACTOR_START_120H, rel=1e-6
    )
    # weight taken from the ImmunoPET object when not given
    result = derive_suv_from_sidecar(side)
    assert result.suv_bw_factor == pytest.approx(FACTOR_START_120H, rel=1e-6)
    assert result.sources["weight_kg"] == "ImmunoPET.weight_kg"
    assert result.input_format == "PET-BIDS"
    assert result.delay_s == 432000.0
    admin = pet_sidecar(_record("ADMIN"))
    assert suv_factor_from_sidecar(admin, weight_kg=70.0) == pytest.approx(FACTOR_ADMIN, rel=1e-9)


def test_half_life_from_radionuclide_when_immunopet_object_absent():
    side = pet_sidecar(_record("START"))
    del side[IMMUNOPET_KEY]
    result = derive_suv_from_sidecar(side, weight_kg=70.0)
    assert result.sources["half_life_s"] == "TracerRadionuclide"
    assert result.suv_bw_factor == pytest.approx(FACTOR_START_120H, rel=1e-6)


def test_same_suv_from_injection_and_scan_corrected_files(tmp_path):
    rng = np.random.default_rng(7)
    suv_true = rng.uniform(0.5, 8.0, size=(3, 4, 5))
    # Bq/mL at injection = SUV * A / W; decay-corrected to scan start = that * 2^(-120 h / T)
    at_injection = suv_true * 37e6 / 70_000.0
    at_scan = at_injection * 2.0 ** (-432000.0 / HALF_LIFE_S)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    record = _record("START")
    scan_path = write_nifti(
        ImageVolume(at_scan, affine, "BQML"),
        tmp_path / "scan_pet.nii.gz",
        sidecar=pet_sidecar(record, decay_reference="scan"),
    )
    inj_path = write_nifti(
        ImageVolume(at_injection, affine, "BQML"),
        tmp_path / "inj_pet.nii.gz",
        sidecar=pet_sidecar(record, decay_reference="injection"),
    )
    results = []
    for path in (scan_path, inj_path):
        image = read_nifti(path)
        assert image.sidecar is not None
        factor = suv_factor_from_sidecar(image.sidecar, source=path)
        results.append(image.volume.array * factor)
    np.testing.assert_allclose(results[0], suv_true, rtol=1e-6)  # float32 storage
    np.testing.assert_allclose(results[1], suv_true, rtol=1e-6)


def test_suv_image_factor_is_one_when_corrected_to_injection():
    side = pet_sidecar(_record(), units="g/mL")
    result = derive_suv_from_sidecar(side)
    assert result.suv_bw_factor == 1.0
    assert result.weight_kg == 70.0  # from the ImmunoPET object, not needed for bw


def test_not_decay_corrected_single_frame():
    side = pet_sidecar(_record("NONE"), frame_duration_s=1800.0)
    # Independent check: 1 / (mean of 2^(-t/T) over the frame), by the trapezoid rule,
    # times the decay from injection to frame start 2^(432000/T) = 2.888693.
    t = np.linspace(0.0, 1800.0, 20001)
    frame = 1.0 / float(np.trapezoid(2.0 ** (-t / HALF_LIFE_S), t) / 1800.0)
    expected = 70_000 / 37e6 * frame * 2.0 ** (432000.0 / HALF_LIFE_S)
    with pytest.warns(SuvWarning, match="not decay-corrected"):
        result = derive_suv_from_sidecar(side, weight_kg=70.0, source="x_pet.json")
    assert result.suv_bw_factor == pytest.approx(expected, rel=1e-9)
    assert len(result.warnings) == 1


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        ("InjectedRadioactivity", r"x_pet\.json: InjectedRadioactivity: .*missing"),
        ("InjectedRadioactivityUnits", r"x_pet\.json: InjectedRadioactivityUnits: .*missing"),
        ("ImageDecayCorrected", r"x_pet\.json: ImageDecayCorrected: .*missing"),
        ("ImageDecayCorrectionTime", r"x_pet\.json: ImageDecayCorrectionTime: .*missing"),
        ("Units", r"x_pet\.json: Units: .*missing"),
    ],
)
def test_missing_key_errors_name_file_and_key(key, pattern):
    side = pet_sidecar(_record("START"))
    del side[key]
    with pytest.raises(SuvError, match=pattern):
        suv_factor_from_sidecar(side, weight_kg=70.0, source="x_pet.json")


def test_missing_weight_and_half_life_errors():
    side = pet_sidecar(_record("START"))
    del side[IMMUNOPET_KEY]
    with pytest.raises(SuvError, match=r"x\.json: ImmunoPET\.weight_kg: body weight"):
        suv_factor_from_sidecar(side, source="x.json")
    del side["TracerRadionuclide"]
    with pytest.raises(SuvError, match=r"x\.json: TracerRadionuclide: .*missing"):
        suv_factor_from_sidecar(side, weight_kg=70.0, source="x.json")


def test_uncorrected_without_frames_is_an_error():
    side = pet_sidecar(_record("NONE"))  # no FrameDuration
    with pytest.raises(SuvError, match=r"FrameDuration: .*missing"):
        suv_factor_from_sidecar(side, weight_kg=70.0)


def test_other_activity_units():
    side = pet_sidecar(_record("ADMIN"))
    side["InjectedRadioactivity"] = 1.0
    side["InjectedRadioactivityUnits"] = "mCi"  # 1 mCi = 3.7e7 Bq = 37 MBq
    assert suv_factor_from_sidecar(side, weight_kg=70.0) == pytest.approx(FACTOR_ADMIN)
    side["InjectedRadioactivityUnits"] = "Ci/kg"
    with pytest.raises(SuvError, match="InjectedRadioactivityUnits: unsupported"):
        suv_factor_from_sidecar(side, weight_kg=70.0)


def test_extra_fields_add_but_do_not_replace_derived_ones():
    side = pet_sidecar(_record(), extra={"InjectedMass": 10.0, "InjectedMassUnits": "mg"})
    assert side["InjectedMass"] == 10.0
    assert side["InjectedMassUnits"] == "mg"
    with pytest.raises(InputError, match="ScanStart: this sidecar field is derived"):
        pet_sidecar(_record(), extra={"ScanStart": 0.0})


def test_contradictory_options_are_refused():
    with pytest.raises(InputError, match="decay_reference: SUV images"):
        pet_sidecar(_record(), units="g/mL", decay_reference="scan")
    with pytest.raises(InputError, match="ScanStart: scan reference time precedes"):
        pet_sidecar(_record(scan_datetime=datetime(2024, 3, 1, 9, 0)))
