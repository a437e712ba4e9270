"""IBSI SUV manual rules, one small generated header case per rule, against hand values.

Hand calculations (independent of the code; W = 80 kg, H = 180 cm unless stated):
    James LBM, male   = 1.10 x 80 - 128 x (80/180)^2            = 62.716049 kg
    James LBM, female = 1.07 x 80 - 148 x (80/180)^2            = 56.365432 kg
    IBW, male         = 48.0 + 1.06 x (180 - 152)               = 77.68 kg
    IBW, female       = 45.5 + 0.91 x (180 - 152)               = 70.98 kg; "O": 74.33 kg
    Janmahasatian "O" = (61.731410 + 50.092230) / 2             = 55.911820 kg
    Du Bois BSA       = 0.007184 x 80^0.425 x 180^0.725         = 1.9964210 m^2
An image stored as SUV of type T gives SUV_X = stored x N_X / N_T (N = normaliser in g or
cm^2), e.g. GML/LBMJAMES128 (male) -> SUVbw factor 80 / 62.716049 = 1.2755906.

18F cases: T = 109.77 min = 6586.2 s, 370 MBq at 09:00, 70 kg, 600 s frame acquired at 10:00;
T_ave = ln(lT / (1 - e^-lT)) / l = 298.4214 s.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import pytest
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence

from immunopet.errors import ImmunoPETError, SuvError, SuvWarning
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import SuvOverrides
from test_suv_factors import ZR89_BW_120H, make_headers, set_all, set_item

REL = 1e-6
T_AVE_18F_600S = 298.42141716720795


def quiet(headers: list[Dataset], **kwargs: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuvWarning)
        return derive_suv(headers, **kwargs)  # type: ignore[arg-type]


def gml(suv_type: str, sex: str = "M", units: str = "GML") -> list[Dataset]:
    headers = make_headers(2)
    set_all(headers, Units=units, SUVType=suv_type, PatientWeight=80, PatientSize=1.80)
    set_all(headers, PatientSex=sex)
    return headers


# ----------------------------------------------------------------------------- SUV types


@pytest.mark.parametrize(
    ("suv_type", "sex", "bw_factor"),
    [
        ("BW", "M", 1.0),
        ("LBMJAMES128", "M", 80 / 62.71604938),  # 1.2755906
        ("LBM", "F", 80 / 56.36543210),  # DICOM "LBM" = James: 1.4193096
        ("LBMJANMA", "O", 80 / 55.91181962),  # mean of M and F: 1.4308245
        ("IBW", "M", 80 / 77.68),  # 1.0298661
        ("IBW", "O", 80 / 74.33),  # 1.0762814
    ],
)
def test_gml_suv_type_converted_to_bw(suv_type: str, sex: str, bw_factor: float) -> None:
    d = quiet(gml(suv_type, sex))
    assert d.suv_bw_factor == pytest.approx(bw_factor, rel=REL)
    assert d.suv_type == suv_type
    assert d.branch == f"GML/{suv_type}/START"


def test_plain_lbm_is_read_as_james_128_with_a_warning_naming_the_assumption() -> None:
    # DICOM PS3.3 gives (0054,1006) "LBM" no formula; we read it as James 128 and say so.
    # Hand values, male, W = 80 kg, H = 180 cm, (W/H)^2 = 0.19753086:
    #   James 128:            88 - 128 x 0.19753086 = 62.716049 kg -> SUVbw factor 1.2755906
    #   older 120 multiplier: 88 - 120 x 0.19753086 = 64.296296 kg
    #   SUVs under the 120 reading differ by 62.716049 / 64.296296 - 1 = -2.46 %
    with pytest.warns(SuvWarning, match=r"SUVType.*read as James with multiplier 128") as rec:
        d = derive_suv(gml("LBM", "M"))
    assert d.suv_bw_factor == pytest.approx(80 / 62.71604938, rel=REL)
    lbm_notes = [w for w in d.warnings if "lean-body-mass formula" in w]
    assert len(lbm_notes) == 1
    assert "-2.46% off" in lbm_notes[0]
    assert "(0054,1006) SUVType" in lbm_notes[0] and "LBMJAMES128 or LBMJANMA" in lbm_notes[0]
    assert any("-2.46% off" in str(w.message) for w in rec)


def test_plain_lbm_female_warns_without_a_size_and_lbmjames128_does_not_warn() -> None:
    # Female: 1.07 W - 148 (W/H)^2 in both readings, so no difference to state.
    d = quiet(gml("LBM", "F"))
    notes = [w for w in d.warnings if "lean-body-mass formula" in w]
    assert len(notes) == 1 and "% off" not in notes[0]
    d = quiet(gml("LBMJAMES128", "M"))
    assert not [w for w in d.warnings if "lean-body-mass formula" in w]


def test_gml_same_normalisation_needs_no_body_size() -> None:
    headers = gml("IBW")
    d = quiet(headers)
    assert d.factor("ibw") == 1.0
    # and SUVibw from LBMJANMA "O": 74.33 / 55.911820 = 1.3294148
    d = quiet(gml("LBMJANMA", "O"))
    assert d.factor("ibw") == pytest.approx(1.3294148, rel=REL)


def test_cm2ml_is_suvbsa() -> None:
    d = quiet(gml("BSA", units="CM2ML"))
    # SUVbw = SUVbsa x W_g / BSA_cm2 = 80000 / 19964.210 = 4.0071708
    assert d.suv_bw_factor == pytest.approx(4.0071708, rel=REL)
    assert d.factor("bsa") == 1.0


def test_gml_type_needing_height_without_it_is_refused_naming_the_flags() -> None:
    headers = gml("LBMJAMES128")
    set_all(headers, PatientSize=None)
    with pytest.raises(SuvError, match=r"--height-m, --sex"):
        quiet(headers)


def test_cm2ml_with_a_mass_suv_type_is_refused() -> None:
    with pytest.raises(SuvError, match=r"\(0054,1006\) SUVType: does not match"):
        quiet(gml("BW", units="CM2ML"))


# ----------------------------------------------------------------------------- units of values


def test_weight_in_grams() -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=75000)
    with pytest.warns(SuvWarning, match="read as grams"):
        d = derive_suv(headers)
    assert d.weight_kg == 75.0
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=1e-7)


def test_bqml_provenance_is_not_philips() -> None:
    d = quiet(make_headers(2))
    assert "7053" not in d.sources["suv_bw_factor"]
    assert d.sources["suv_bw_factor"] == "computed: weight / decayed dose"


# ----------------------------------------------------------------------------- reference time


def f18_headers(n: int = 1) -> list[Dataset]:
    headers = make_headers(n)
    set_all(
        headers,
        SeriesDate="20240306",
        SeriesTime="103000",  # after the acquisition: a post-processed series
        AcquisitionTime="100000",
        ActualFrameDuration=600000,
        PatientWeight=70,
    )
    for ds in headers:
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.RadiopharmaceuticalStartDateTime = "20240306090000"
        item.RadiopharmaceuticalStartTime = "090000"
        item.RadionuclideTotalDose = 370e6
        item.RadionuclideHalfLife = 6586.2
        code = Dataset()
        code.CodeMeaning = "^18^Fluorine"
        item.RadionuclideCodeSequence = DicomSequence([code])
        item.Radiopharmaceutical = "Fluorodeoxyglucose"
    return headers


def test_reference_time_acquisition_plus_t_ave_minus_frame_reference() -> None:
    headers = f18_headers()
    set_all(headers, FrameReferenceTime=(T_AVE_18F_600S + 120.0) * 1000.0)
    d = quiet(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 58, 0)
    # 70000 / (370e6 x 2^(-3480 / 6586.2)) = 2.7286875e-4
    assert d.suv_bw_factor == pytest.approx(2.7286875e-4, rel=1e-6)
    assert "T_ave" in d.reference_time_rule


def test_slices_with_different_reference_times_get_their_own_factor() -> None:
    # slice 1 refers to 09:58:00, slice 2 (acquired 10 min later, same frame reference time)
    # to 10:08:00: its stored values are decay-corrected 600 s later, so its factor is
    # 2^(600 / 6586.2) = 1.0651817 times that of slice 1.
    headers = f18_headers(2)
    set_all(headers, FrameReferenceTime=(T_AVE_18F_600S + 120.0) * 1000.0)
    headers[1].AcquisitionTime = "101000"
    d = quiet(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 58, 0)
    uids = [str(h.SOPInstanceUID) for h in headers]
    assert d.slice_corrections[uids[0]] == pytest.approx(1.0, abs=1e-12)
    assert d.slice_corrections[uids[1]] == pytest.approx(1.0651817, rel=1e-7)


def test_reference_time_ge_acquisition_minus_frame_reference() -> None:
    headers = f18_headers()
    set_all(headers, Manufacturer="GE MEDICAL SYSTEMS", FrameReferenceTime=60000.0)
    d = quiet(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 59, 0)
    assert d.suv_bw_factor == pytest.approx(2.7459724e-4, rel=1e-6)  # 3540 s decay
    assert d.reference_time_rule.startswith("GE:")


def test_reference_time_siemens_private_first() -> None:
    headers = f18_headers()
    block = headers[0].private_block(0x0071, "SIEMENS MI RECON", create=True)
    block.add_new(0x22, "DT", "20240306095800.000000")
    d = quiet(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 58, 0)
    assert "(0071,1022)" in d.reference_time_rule


def test_reference_time_acquisition_equal_to_series() -> None:
    headers = f18_headers()
    set_all(headers, SeriesTime="100000")
    d = quiet(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 10, 0)
    assert d.suv_bw_factor == pytest.approx(2.7633668e-4, rel=1e-6)  # 3600 s decay


def test_reference_time_without_frame_reference_falls_back_to_earliest_acquisition() -> None:
    with pytest.warns(SuvWarning, match="earliest"):
        d = derive_suv(f18_headers())
    assert d.scan_datetime == datetime(2024, 3, 6, 10, 0)


# ----------------------------------------------------------------------------- injection date


def test_short_lived_out_of_range_date_is_repaired() -> None:
    headers = f18_headers()
    set_all(headers, SeriesTime="100000")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240305090000")  # 25 h before
    with pytest.warns(SuvWarning, match="out of range; assumed the scan date"):
        d = derive_suv(headers)
    assert d.injection_datetime == datetime(2024, 3, 6, 9, 0)
    assert d.suv_bw_factor == pytest.approx(2.7633668e-4, rel=1e-6)


def test_zr89_time_only_is_refused_naming_the_flag() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime=None)
    with pytest.raises(SuvError, match="--injection-datetime"):
        derive_suv(headers)


def test_zr89_injection_after_scan_is_refused_naming_the_flag() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="20240307090000")
    with pytest.raises(SuvError, match="supply --injection-datetime"):
        derive_suv(headers)


def test_gml_date_shift_never_blocks() -> None:
    # GE FDG GML/ADMIN with the injection one day after the series date (de-identification)
    headers = f18_headers(2)
    set_all(headers, Units="GML", SUVType="BW", DecayCorrection="ADMIN", SeriesTime="100000")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240307090000")
    d = quiet(headers)
    assert d.suv_bw_factor == 1.0


def test_admin_bqml_date_shift_warns_and_uses_the_dose() -> None:
    headers = make_headers(1)
    set_all(headers, DecayCorrection="ADMIN")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240307090000")
    with pytest.warns(SuvWarning, match="de-identification date shift"):
        d = derive_suv(headers)
    assert d.suv_bw_factor == pytest.approx(75000 / 37e6, rel=1e-12)  # 2.0270270e-3


def test_utc_offsets_are_honoured() -> None:
    headers = make_headers(1)
    set_all(headers, TimezoneOffsetFromUTC="+0000")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240301090000+0100")
    d = quiet(headers)
    assert d.injection_datetime == datetime(2024, 3, 1, 8, 0)
    # 121 h: 75000 / (37e6 x 2^(-121 / 78.41)) = 5.9074513e-3
    assert d.suv_bw_factor == pytest.approx(5.9074513e-3, rel=1e-6)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("keyword", "value", "in_item", "tag"),
    [
        ("PatientWeight", 80, False, "(0010,1030) PatientWeight"),
        ("PatientSize", 1.9, False, "(0010,1020) PatientSize"),
        ("PatientSex", "F", False, "(0010,0040) PatientSex"),
        ("Units", "CNTS", False, "(0054,1001) Units"),
        ("DecayCorrection", "ADMIN", False, "(0054,1102) DecayCorrection"),
        ("SUVType", "IBW", False, "(0054,1006) SUVType"),
        ("RadionuclideTotalDose", 40e6, True, "(0018,1074) RadionuclideTotalDose"),
        ("RadiopharmaceuticalStartDateTime", "20240301100000", True, "(0018,1078)"),
        ("RadionuclideHalfLife", 6586.2, True, "(0018,1075) RadionuclideHalfLife"),
    ],
)
def test_slices_that_disagree_are_refused_naming_two_files(
    keyword: str, value: object, in_item: bool, tag: str
) -> None:
    headers = make_headers(3)
    target = headers[2].RadiopharmaceuticalInformationSequence[0] if in_item else headers[2]
    setattr(target, keyword, value)
    files = ["pet/a.dcm", "pet/b.dcm", "pet/c.dcm"]
    with pytest.raises(SuvError, match=rf"{tag[:11]}.*pet/a\.dcm has .*pet/c\.dcm has '{value}"):
        quiet(headers, files=files)


def test_rescale_slope_not_positive_is_refused() -> None:
    headers = make_headers(2)
    set_all(headers, RescaleSlope=1.0)
    headers[1].RescaleSlope = 0.0
    with pytest.raises(SuvError, match=r"\(0028,1053\) RescaleSlope: in slice 2"):
        quiet(headers)


def test_implausible_activity_refused_and_override_lifts_it() -> None:
    headers = make_headers(1)
    set_item(headers, RadionuclideTotalDose=37e3)  # 37 kBq for an adult
    with pytest.raises(SuvError, match=r"implausible injected activity for 89Zr.*--injected"):
        quiet(headers)
    with pytest.warns(SuvWarning, match="outside the plausible range"):
        d = derive_suv(headers, overrides=SuvOverrides(injected_activity_bq=37e3))
    assert d.injected_activity_bq == 37e3


def test_injection_in_1900_is_a_clean_error() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="19000101000000")
    with pytest.raises(SuvError, match="underflows"):
        quiet(headers)


def test_every_refusal_is_an_immunopet_error() -> None:
    headers = make_headers(1)
    headers[0]["PatientWeight"] = DataElement(0x00101030, "LO", "heavy")
    with pytest.raises(ImmunoPETError, match="PatientWeight: not a number"):
        quiet(headers)


def test_short_lived_time_of_day_within_an_hour_after_the_scan_stays_on_the_scan_date() -> None:
    # IBSI SUV manual: the day before only when the time of day is over 1 h after the
    # reference time; 30 min after it is a clock difference, so the injection falls after the
    # scan on the same date, which we refuse (the manual would use a negative delay).
    headers = f18_headers()
    set_all(headers, SeriesTime="100000")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240305103000")  # 23.5 h before
    with (
        pytest.warns(SuvWarning, match="assumed the scan date"),
        pytest.raises(SuvError, match=r"after the scan reference time.*--injection-datetime"),
    ):
        derive_suv(headers)


def test_short_lived_date_on_the_day_before_is_kept_within_two_half_lives() -> None:
    # 18F (6586.2 s): 2 half-lives = 3.66 h. Injection 2.5 h before a scan just after
    # midnight is consistent and kept as is (no warning): decay over 9000 s.
    headers = f18_headers()
    set_all(headers, SeriesDate="20240306", SeriesTime="003000", AcquisitionDate="20240306")
    set_all(headers, AcquisitionTime="003000")
    set_item(headers, RadiopharmaceuticalStartDateTime="20240305220000")
    d = quiet(headers)
    assert d.injection_datetime == datetime(2024, 3, 5, 22, 0)
    assert d.hours_after_injection == pytest.approx(2.5)
