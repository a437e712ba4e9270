"""SUV factors from PET headers: every branch against hand-computed values.

Reference numbers are written as literals with their arithmetic in a comment (QIBA Appendix G
pseudo-code: SUVbw factor = weight_g / (dose x 2^(-(scan - injection)/T))).

Recurring quantities (computed by hand, 89Zr T = 78.41 h = 282276 s):
    120 h / 78.41 h = 1.5304170;  2^-1.5304170 = 0.34617728
    decayed dose    = 37e6 Bq x 0.34617728 = 12808559.5 Bq
    SUVbw factor    = 75000 g / 12808559.5 Bq = 0.0058554594 g/Bq
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence as DicomSequence

from immunopet.errors import SuvError, SuvWarning
from immunopet.suv.factors import (
    compute_decayed_dose_bq,
    compute_slice_decay_correction,
    compute_suv_bsa_factor,
    compute_suv_bw_factor,
    compute_suv_lbm_factor,
    derive_suv,
    rescale_suv_bw_factor_to_bsa,
    rescale_suv_bw_factor_to_lbm,
)
from immunopet.suv.record import SuvDerivation, SuvOverrides

REL = 1e-7
ZR89_BW_120H = 0.0058554594  # see module docstring
ZR89_HALF_LIFE_S = 282276.0  # 78.41 h x 3600


# ----------------------------------------------------------------------------- helpers


def make_headers(n: int = 2) -> list[Dataset]:
    """N slice headers of a 89Zr BQML/START series 120 h after injection.

    Injection 2024-03-01 09:00:00, 37 MBq; series and acquisitions 2024-03-06 09:00:00;
    75 kg; no height or sex.
    """
    headers = []
    for i in range(n):
        ds = Dataset()
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1125.1"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.2.1125.1.{i + 1}"
        ds.InstanceNumber = i + 1
        ds.Modality = "PT"
        ds.Manufacturer = "Synthetic"
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["ATTN", "DECY"]
        ds.SeriesDate = "20240306"
        ds.SeriesTime = "090000"
        ds.AcquisitionDate = "20240306"
        ds.AcquisitionTime = "090000"
        ds.ActualFrameDuration = 300000
        ds.PatientWeight = 75
        item = Dataset()
        item.RadiopharmaceuticalStartDateTime = "20240301090000"
        item.RadiopharmaceuticalStartTime = "090000"
        item.RadionuclideTotalDose = 37e6
        item.RadionuclideHalfLife = ZR89_HALF_LIFE_S
        code = Dataset()
        code.CodeValue = "C-B1031"
        code.CodingSchemeDesignator = "SRT"
        code.CodeMeaning = "^89^Zirconium"
        item.RadionuclideCodeSequence = DicomSequence([code])
        item.Radiopharmaceutical = "89Zr-durvalumab"
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([item])
        headers.append(ds)
    return headers


def items(headers: list[Dataset]) -> Iterator[Dataset]:
    """The radiopharmaceutical item of every header."""
    for ds in headers:
        yield ds.RadiopharmaceuticalInformationSequence[0]


def set_all(headers: list[Dataset], **values: object) -> None:
    """Set (or, for None, delete) attributes in every header."""
    for ds in headers:
        for keyword, value in values.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)


def set_item(headers: list[Dataset], **values: object) -> None:
    """Set (or, for None, delete) attributes in every radiopharmaceutical item."""
    for item in items(headers):
        for keyword, value in values.items():
            if value is None:
                if keyword in item:
                    delattr(item, keyword)
            else:
                setattr(item, keyword, value)


def derive_quietly(
    headers: list[Dataset], *, source: str | None = None, overrides: SuvOverrides | None = None
) -> SuvDerivation:
    """derive_suv that fails the test if any SuvWarning is emitted."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SuvWarning)
        return derive_suv(headers, source=source, overrides=overrides)


def add_philips(ds: Dataset, *, suv: float | None, bqml: float | None) -> None:
    block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    if suv is not None:
        block.add_new(0x00, "DS", f"{suv:.10g}")
    if bqml is not None:
        block.add_new(0x09, "DS", f"{bqml:.10g}")


# ----------------------------------------------------------------------------- pure functions


def test_compute_decayed_dose_by_hand() -> None:
    # 37e6 x 2^(-120/78.41) = 37e6 x 0.34617728 = 12808559.5 Bq
    assert compute_decayed_dose_bq(37e6, 120 * 3600, ZR89_HALF_LIFE_S) == pytest.approx(
        12808559.5, rel=REL
    )


def test_compute_factor_functions_by_hand() -> None:
    # 75 kg -> 75000 g; 75000 / 12808559.5 = 0.0058554594
    assert compute_suv_bw_factor(75.0, 12808559.5) == pytest.approx(ZR89_BW_120H, rel=REL)
    # 61.731410 kg -> 61731.410 g; / 12808559.5 = 0.0048195435
    assert compute_suv_lbm_factor(61.731410, 12808559.5) == pytest.approx(0.0048195435, rel=REL)
    # 1.996421 m² = 19964.21 cm²; / 12808559.5 = 0.0015586616
    assert compute_suv_bsa_factor(1.996421, 12808559.5) == pytest.approx(0.0015586616, rel=1e-6)


def test_rescale_functions_by_hand() -> None:
    # SUL = SUVbw x LBM / W: 0.000123 x 61.731410 / 80 = 0.0000949120
    assert rescale_suv_bw_factor_to_lbm(0.000123, 80.0, 61.731410) == pytest.approx(
        9.49120e-5, rel=1e-6
    )
    # SUVbsa = SUVbw x BSA_cm2 / W_g: 0.000123 x 19964.21 / 80000 = 0.0000306950
    assert rescale_suv_bw_factor_to_bsa(0.000123, 80.0, 1.996421) == pytest.approx(
        3.06950e-5, rel=1e-5
    )


def test_compute_slice_decay_correction_by_hand() -> None:
    # 18F (T = 6586.2 s), slice 1200 s after the reference, 300 s frame:
    # 2^(1200/6586.2) = 1.1346121; x = ln2 x 300 / 6586.2 = 0.03157271,
    # 1 - e^-x = 0.03107949, x/(1-e^-x) = 1.0158693; product = 1.1526177
    assert compute_slice_decay_correction(1200.0, 300.0, 6586.2) == pytest.approx(
        1.1526177, rel=1e-6
    )


# ----------------------------------------------------------------------------- BQML branches


def test_bqml_start_89zr_five_days() -> None:
    d = derive_quietly(make_headers(3), source="pet/series1")
    # 75000 / (37e6 x 2^(-120/78.41)) = 0.0058554594 (module docstring)
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)
    assert d.branch == "BQML/START"
    assert d.bqml_factor == 1.0
    assert d.hours_after_injection == 120.0
    assert d.nuclide == "89Zr"
    assert d.injection_datetime == datetime(2024, 3, 1, 9, 0)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 0)
    assert d.scan_time_source.startswith("(0008,0021) SeriesDate")
    assert d.injection_time_source == "(0018,1078) RadiopharmaceuticalStartDateTime"
    assert d.sources["weight_kg"] == "(0010,1030) PatientWeight"
    assert d.sources["injected_activity_bq"] == "(0018,1074) RadionuclideTotalDose"
    assert d.slice_corrections == {}
    assert d.suv_lbm_factor is None
    assert d.suv_bsa_factor is None
    assert d.warnings == ()


def test_bqml_start_is_not_the_same_day_answer() -> None:
    # The same-time-of-day error would give 75000 / 37e6 = 0.0020270 (2.9x too small).
    d = derive_quietly(make_headers(1))
    assert d.suv_bw_factor / 0.0020270270 == pytest.approx(2.8887, rel=1e-4)  # 1/0.34617728


def test_bqml_admin_no_dose_decay() -> None:
    headers = make_headers(2)
    set_all(headers, DecayCorrection="ADMIN")
    d = derive_quietly(headers)
    # Image already corrected to injection: 75000 / 37e6 = 0.0020270270
    assert d.suv_bw_factor == pytest.approx(0.0020270270, rel=REL)
    assert d.branch == "BQML/ADMIN"
    assert d.hours_after_injection == 120.0


def test_bqml_none_per_slice_corrections_18f() -> None:
    # 18F (T = 6586.2 s), 370 MBq at 08:00, 70 kg; series reference 09:00.
    # Slice 1: acquired 09:00:00, 600 s frame; slice 2: acquired 09:20:00, 300 s frame.
    headers = make_headers(2)
    set_all(
        headers,
        DecayCorrection="NONE",
        CorrectedImage=["ATTN"],
        SeriesDate="20240301",
        AcquisitionDate="20240301",
        PatientWeight=70,
    )
    headers[0].AcquisitionTime, headers[0].ActualFrameDuration = "090000", 600000
    headers[1].AcquisitionTime, headers[1].ActualFrameDuration = "092000", 300000
    set_item(
        headers,
        RadiopharmaceuticalStartDateTime="20240301080000",
        RadionuclideTotalDose=370e6,
        RadionuclideHalfLife=6586.2,
        RadionuclideCodeSequence=None,
        Radiopharmaceutical="Fluorodeoxyglucose [18F]",
    )
    d = derive_quietly(list(reversed(headers)))  # any order
    # Series factor: 2^(-3600/6586.2) = 2^(-0.5465974) = 0.68463292;
    # 70000 / (370e6 x 0.68463292) = 70000 / 253314180 = 0.00027633668
    assert d.suv_bw_factor == pytest.approx(0.00027633668, rel=REL)
    assert d.branch == "BQML/NONE"
    assert d.nuclide == "18F"
    uid1, uid2 = headers[0].SOPInstanceUID, headers[1].SOPInstanceUID
    # Slice 1: 2^(0) x [x/(1-e^-x), x = ln2 x 600/6586.2 = 0.06314541, 1-e^-x = 0.06119305]
    #        = 1.0319050
    # Slice 2: 2^(1200/6586.2) = 1.1346121 times x/(1-e^-x) with x = 0.03157271 -> 1.0158693
    #        = 1.1526177
    assert d.slice_corrections[uid1] == pytest.approx(1.0319050, rel=1e-6)
    assert d.slice_corrections[uid2] == pytest.approx(1.1526177, rel=1e-6)
    # Overall for slice 2 (acquired 4800 s after injection): W/A0 x 2^(4800/6586.2) x frame term
    # = 70000/370e6 x 2^0.72879657 x 1.0158693 = 1.8918919e-4 x 1.6572561 x 1.0158693
    # = 3.1851055e-4
    assert d.suv_bw_factor * d.slice_corrections[uid2] == pytest.approx(3.1851055e-4, rel=1e-6)


def test_none_with_decy_is_invalid() -> None:
    headers = make_headers(1)
    set_all(headers, DecayCorrection="NONE")  # CorrectedImage still has DECY
    with pytest.raises(SuvError, match=r"\(0028,0051\) CorrectedImage.*NONE.*expected no DECY"):
        derive_suv(headers)


def test_corrected_image_without_decy_raises_or_warns() -> None:
    headers = make_headers(2)
    set_all(headers, CorrectedImage=["ATTN", "SCAT"])
    with pytest.raises(SuvError, match=r"pet/x: \(0028,0051\) CorrectedImage.*DECY"):
        derive_suv(headers, source="pet/x")
    with pytest.warns(SuvWarning, match="not flagged decay corrected"):
        d = derive_suv(headers, on_invalid="warn")
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)
    assert any("(0028,0051) CorrectedImage" in w for w in d.warnings)


# ----------------------------------------------------------------------------- Philips CNTS


def test_philips_cnts_suv_scale_factor_only() -> None:
    headers = make_headers(2)
    set_all(headers, Units="CNTS", PatientWeight=80, PatientSize=1.80, PatientSex="M")
    for ds in headers:
        add_philips(ds, suv=0.000123, bqml=None)
    d = derive_quietly(headers)
    assert d.branch == "CNTS/Philips(7053,1000)/START"
    assert d.suv_bw_factor == 0.000123  # taken as written
    assert d.bqml_factor is None
    assert d.sources["suv_bw_factor"] == "(7053,1000) Philips SUV Scale Factor"
    # SUL = 0.000123 x LBM/W = 0.000123 x 61.731410 / 80 = 0.0000949120
    assert d.suv_lbm_factor == pytest.approx(9.49120e-5, rel=1e-6)
    # SUVbsa = 0.000123 x 19964.21 cm² / 80000 g = 0.0000306950
    assert d.suv_bsa_factor == pytest.approx(3.06950e-5, rel=1e-5)


def test_philips_cnts_activity_concentration_factor_only() -> None:
    headers = make_headers(2)
    set_all(headers, Units="CNTS")
    for ds in headers:
        add_philips(ds, suv=None, bqml=1.5)
    d = derive_quietly(headers)
    assert d.branch == "CNTS/Philips(7053,1009)/START"
    assert d.bqml_factor == 1.5
    # 1.5 x 75000 / 12808559.5 = 1.5 x 0.0058554594 = 0.0087831891
    assert d.suv_bw_factor == pytest.approx(0.0087831891, rel=REL)


def test_philips_cnts_both_factors_agreeing() -> None:
    headers = make_headers(2)
    set_all(headers, Units="CNTS")
    for ds in headers:
        add_philips(ds, suv=0.00878, bqml=1.5)  # 1.5 x 0.0058554594 = 0.0087832 (0.04% off)
    d = derive_quietly(headers)
    assert d.branch == "CNTS/Philips(7053,1000+1009)/START"
    assert d.suv_bw_factor == 0.00878  # (7053,1000) wins
    assert d.bqml_factor == 1.5


def test_philips_cnts_both_factors_disagreeing_warns() -> None:
    headers = make_headers(2)
    set_all(headers, Units="CNTS")
    for ds in headers:
        add_philips(ds, suv=0.0092, bqml=1.5)  # 0.0092 / 0.0087832 = 1.047: 4.7% off
    with pytest.warns(SuvWarning, match="disagrees by more than 1%"):
        d = derive_suv(headers)
    assert d.suv_bw_factor == 0.0092
    assert len(d.warnings) == 1


def test_philips_raw_tags_without_creator() -> None:
    headers = make_headers(1)
    set_all(headers, Units="CNTS")
    headers[0].add_new(0x70531000, "DS", "0.000123")
    with pytest.warns(SuvWarning, match="private creator 'Philips PET Private Group' missing"):
        d = derive_suv(headers)
    assert d.suv_bw_factor == 0.000123


def test_philips_raw_tags_of_another_creator_are_ignored() -> None:
    headers = make_headers(1)
    set_all(headers, Units="CNTS")
    headers[0].add_new(0x70530010, "LO", "SOME OTHER VENDOR")
    headers[0].add_new(0x70531000, "DS", "0.000123")
    with pytest.raises(SuvError, match=r"\(0054,1001\) Units: CNTS images need the Philips"):
        derive_suv(headers)


def test_philips_factor_differing_between_slices_raises() -> None:
    headers = make_headers(2)
    set_all(headers, Units="CNTS")
    add_philips(headers[0], suv=0.000123, bqml=None)
    add_philips(headers[1], suv=0.000456, bqml=None)
    with pytest.raises(SuvError, match=r"\(7053,1000\).*differs between slices"):
        derive_suv(headers)


def test_cnts_without_philips_tags_raises() -> None:
    headers = make_headers(1)
    set_all(headers, Units="CNTS")
    with pytest.raises(SuvError, match=r"\(0054,1001\) Units.*found 'CNTS'"):
        derive_suv(headers)


# ----------------------------------------------------------------------------- GML


def test_gml_is_already_suvbw() -> None:
    headers = make_headers(2)
    set_all(headers, Units="GML", SUVType="BW")
    d = derive_quietly(headers)
    assert d.suv_bw_factor == 1.0
    assert d.bqml_factor is None
    assert d.branch == "GML/BW/START"
    assert d.suv_type == "BW"


def test_gml_without_suv_type_is_read_as_bw_with_a_warning() -> None:
    headers = make_headers(1)
    set_all(headers, Units="GML")
    with pytest.warns(SuvWarning, match=r"\(0054,1006\) SUVType: missing for a GML image"):
        d = derive_suv(headers)
    assert d.suv_bw_factor == 1.0


def test_gml_lbm_by_rescaling() -> None:
    # Updated: the old test expected a warning that the image "is stored as SUVbw"; the
    # conversion is now the IBSI rule N_X / N_T with (0054,1006) SUVType BW.
    headers = make_headers(1)
    set_all(headers, Units="GML", SUVType="BW", PatientWeight=60, PatientSize=1.65, PatientSex="F")
    d = derive_quietly(headers)
    # SUL factor = LBM/W = 39.286846 / 60 = 0.65478077
    assert d.suv_lbm_factor == pytest.approx(0.65478077, rel=1e-7)
    # SUVbsa factor = 16586.565 cm² / 60000 g = 0.27644275
    assert d.suv_bsa_factor == pytest.approx(0.27644275, rel=1e-6)


# ----------------------------------------------------------------------------- unknown units


@pytest.mark.parametrize("units", ["PROPCPS", "MGMINML", None])
def test_unknown_units_raise(units: str | None) -> None:
    headers = make_headers(1)
    set_all(headers, Units=units)
    expected = "missing" if units is None else units
    with pytest.raises(
        SuvError, match=rf"\(0054,1001\) Units: unsupported units \(found '{expected}'; expected"
    ):
        derive_suv(headers, source="pet/u")


def test_unknown_decay_correction_raises() -> None:
    headers = make_headers(1)
    set_all(headers, DecayCorrection="WHENEVER")
    with pytest.raises(SuvError, match=r"\(0054,1102\) DecayCorrection.*START, ADMIN or NONE"):
        derive_suv(headers)


# ----------------------------------------------------------------------------- scan time


def test_ge_private_scan_time_when_series_time_after_acquisition() -> None:
    # Post-processed series: SeriesTime 11:00 after acquisition 09:05; GE scan time 09:00.
    headers = make_headers(2)
    set_all(headers, SeriesTime="110000", AcquisitionTime="090500")
    for ds in headers:
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20240306090000.00")
    d = derive_quietly(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 0)
    assert "(0009,100D)" in d.scan_time_source
    # 120 h again: 75000 / 12808559.5 = 0.0058554594
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_earliest_acquisition_fallback() -> None:
    # SeriesTime 11:00 after acquisitions 09:00 and 09:10, no GE tag: earliest acquisition.
    headers = make_headers(2)
    set_all(headers, SeriesTime="110000")
    headers[1].AcquisitionTime = "091000"
    with pytest.warns(SuvWarning, match="earliest acquisition"):
        d = derive_suv(list(reversed(headers)))
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 0)
    assert "earliest" in d.scan_time_source
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)
    assert len(d.warnings) == 1


def test_series_time_used_when_not_after_acquisition() -> None:
    # Series 08:55, acquisition 09:00: series time is the reference (QIBA), 120 h - 5 min.
    headers = make_headers(1)
    set_all(headers, SeriesTime="085500")
    d = derive_quietly(headers)
    # 119.916667 h / 78.41 h = 1.5293542; 2^-1.5293542 = 0.34643240;
    # 75000 / (37e6 x 0.34643240) = 75000 / 12817998.6 = 0.0058511474
    assert d.suv_bw_factor == pytest.approx(0.0058511474, rel=1e-7)


def test_no_scan_time_raises() -> None:
    headers = make_headers(1)
    set_all(headers, SeriesDate=None, SeriesTime=None, AcquisitionDate=None, AcquisitionTime=None)
    with pytest.raises(SuvError, match="no scan reference time"):
        derive_suv(headers)


# ----------------------------------------------------------------------------- injection time


def test_start_time_only_refused_for_89zr() -> None:
    headers = make_headers(2)
    set_item(headers, RadiopharmaceuticalStartDateTime=None)
    with pytest.raises(SuvError, match=r"supply the injection date-time.*--injection-datetime"):
        derive_suv(headers, source="pet/s")
    with pytest.raises(SuvError, match=r"pet/s: \(0018,1078\) RadiopharmaceuticalStartDateTime"):
        derive_suv(headers, source="pet/s")


def test_start_time_only_accepted_with_override_for_89zr() -> None:
    headers = make_headers(2)
    set_item(headers, RadiopharmaceuticalStartDateTime=None)
    overrides = SuvOverrides(injection_datetime=datetime(2024, 3, 1, 9, 0))
    d = derive_quietly(headers, overrides=overrides)
    assert d.injection_time_source == "override"
    assert d.sources["injection_datetime"] == "override"
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_override_wins_over_header_datetime_and_is_reported() -> None:
    # Header says 1 March; override says 2 March 09:00 (96 h):
    # 96/78.41 = 1.2243336; 2^-1.2243336 = 0.42799515; 75000/(37e6 x 0.42799515) = 0.0047360981
    headers = make_headers(1)
    overrides = SuvOverrides(injection_datetime=datetime(2024, 3, 2, 9, 0))
    with pytest.warns(SuvWarning, match="replaces a different header value"):
        d = derive_suv(headers, overrides=overrides)
    assert d.hours_after_injection == 96.0
    assert d.suv_bw_factor == pytest.approx(0.0047360981, rel=1e-7)


def _make_18f(headers: list[Dataset]) -> None:
    set_item(
        headers,
        RadiopharmaceuticalStartDateTime=None,
        RadionuclideHalfLife=6586.2,
        RadionuclideTotalDose=370e6,
        RadionuclideCodeSequence=None,
        Radiopharmaceutical="FDG F-18",
    )
    set_all(headers, PatientWeight=70)


def test_start_time_only_18f_same_day_with_warning() -> None:
    headers = make_headers(2)
    _make_18f(headers)
    set_item(headers, RadiopharmaceuticalStartTime="080000")
    with pytest.warns(SuvWarning, match="assumed the scan date"):
        d = derive_suv(headers)
    assert d.injection_datetime == datetime(2024, 3, 6, 8, 0)
    # 1 h: 70000 / (370e6 x 2^(-3600/6586.2)) = 70000 / (370e6 x 0.68463292) = 0.00027633668
    assert d.suv_bw_factor == pytest.approx(0.00027633668, rel=REL)
    assert len(d.warnings) == 1
    assert "(0018,1072)" in d.injection_time_source


def test_start_time_only_18f_across_midnight() -> None:
    headers = make_headers(1)
    _make_18f(headers)
    set_all(headers, SeriesDate="20240302", SeriesTime="003000", AcquisitionDate="20240302")
    set_all(headers, AcquisitionTime="003000")
    set_item(headers, RadiopharmaceuticalStartTime="233000")
    with pytest.warns(SuvWarning, match="the day before the scan"):
        d = derive_suv(headers)
    assert d.injection_datetime == datetime(2024, 3, 1, 23, 30)
    assert d.hours_after_injection == 1.0
    assert d.suv_bw_factor == pytest.approx(0.00027633668, rel=REL)  # 1 h, as above


def test_date_only_start_datetime_combined_with_start_time() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="20240301")
    d = derive_quietly(headers)
    assert d.injection_datetime == datetime(2024, 3, 1, 9, 0)
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_no_injection_time_raises() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime=None, RadiopharmaceuticalStartTime=None)
    with pytest.raises(SuvError, match="injection time missing"):
        derive_suv(headers)


def test_injection_after_scan_raises_naming_both_times() -> None:
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="20240306100000")
    with pytest.raises(
        SuvError, match=r"injection \(2024-03-06T10:00:00\) is after .*2024-03-06T09:00:00"
    ):
        derive_suv(headers)


def test_implausibly_long_interval_warns() -> None:
    # 89Zr scanned 40 days (> 10 half-lives = 32.7 d) after injection: probably a wrong date.
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="20240126090000")
    with pytest.warns(SuvWarning, match="more than 10 half-lives"):
        derive_suv(headers)


# ----------------------------------------------------------------------------- sequence, nuclide


def test_missing_radiopharmaceutical_sequence_raises() -> None:
    headers = make_headers(1)
    set_all(headers, RadiopharmaceuticalInformationSequence=None)
    with pytest.raises(SuvError, match=r"\(0054,0016\) RadiopharmaceuticalInformationSequence"):
        derive_suv(headers)


def test_missing_half_life_from_table_with_warning() -> None:
    headers = make_headers(1)
    set_item(headers, RadionuclideHalfLife=None)
    with pytest.warns(SuvWarning, match="table value for 89Zr"):
        d = derive_suv(headers)
    assert d.half_life_s == 282276.0  # 78.41 h x 3600
    assert d.sources["half_life_s"] == "nuclide table (89Zr)"
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_missing_half_life_found_from_radiopharmaceutical_name() -> None:
    headers = make_headers(1)
    set_item(headers, RadionuclideHalfLife=None, RadionuclideCodeSequence=None)
    with pytest.warns(SuvWarning, match="table value for 89Zr"):
        d = derive_suv(headers)
    assert d.sources["nuclide"] == "(0018,0031) Radiopharmaceutical"  # "89Zr-durvalumab"


def test_missing_half_life_unknown_nuclide_raises() -> None:
    headers = make_headers(1)
    set_item(
        headers,
        RadionuclideHalfLife=None,
        RadionuclideCodeSequence=None,
        Radiopharmaceutical="mystery tracer",
    )
    with pytest.raises(SuvError, match=r"\(0018,1075\) RadionuclideHalfLife.*not recognised"):
        derive_suv(headers)


def test_half_life_disagreeing_with_table_warns() -> None:
    # Header half-life 3.3 d = 285120 s vs 89Zr table 282276 s: 285120/282276 = 1.01008 (> 1%)
    headers = make_headers(1)
    set_item(headers, RadionuclideHalfLife=285120.0)
    with pytest.warns(SuvWarning, match="disagrees with the table value for 89Zr"):
        d = derive_suv(headers)
    assert d.half_life_s == 285120.0  # header used
    # 432000/285120 = 1.5151515; 2^-1.5151515 = 0.34985972; 75000/(37e6 x 0.34985972)
    # = 0.0057938279
    assert d.suv_bw_factor == pytest.approx(0.0057938279, rel=1e-7)


def test_nuclide_recognised_from_half_life_alone() -> None:
    headers = make_headers(1)
    set_item(headers, RadionuclideCodeSequence=None, Radiopharmaceutical=None)
    d = derive_quietly(headers)
    assert d.nuclide == "89Zr"


# ----------------------------------------------------------------------------- dose, weight


def test_dose_below_1e4_read_as_mbq() -> None:
    # Updated: the dose in MBq used to be refused; the IBSI SUV manual reads it as MBq.
    headers = make_headers(1)
    set_item(headers, RadionuclideTotalDose=37.0)
    with pytest.warns(SuvWarning, match="read as MBq"):
        d = derive_suv(headers)
    assert d.injected_activity_bq == 37e6
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_dose_missing_raises_and_override_fills_it() -> None:
    headers = make_headers(1)
    set_item(headers, RadionuclideTotalDose=None)
    with pytest.raises(SuvError, match=r"\(0018,1074\) RadionuclideTotalDose.*missing"):
        derive_suv(headers)
    d = derive_quietly(headers, overrides=SuvOverrides(injected_activity_bq=37e6))
    assert d.sources["injected_activity_bq"] == "override"
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_weight_zero_raises() -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=0)
    with pytest.raises(SuvError, match=r"\(0010,1030\) PatientWeight: patient weight missing"):
        derive_suv(headers)


def test_weight_missing_with_override() -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=None)
    with pytest.raises(SuvError, match=r"\(0010,1030\) PatientWeight.*found 'missing'"):
        derive_suv(headers)
    d = derive_quietly(headers, overrides=SuvOverrides(weight_kg=75.0))
    assert d.sources["weight_kg"] == "override"
    assert d.weight_kg == 75.0
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


@pytest.mark.parametrize("weight_kg", [0.5, 750.0])
def test_implausible_weight_raises(weight_kg: float) -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=weight_kg)
    with pytest.raises(SuvError, match="implausible patient weight"):
        derive_suv(headers)


# ----------------------------------------------------------------------------- SUL and SUVbsa


def test_sul_and_bsa_male_by_hand() -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=80, PatientSize=1.80, PatientSex="M")
    d = derive_quietly(headers)
    # SUVbw = 80000 / 12808559.5 = 0.0062458234
    assert d.suv_bw_factor == pytest.approx(0.0062458234, rel=REL)
    # LBM 61.731410 kg (test_suv_body): 61731.410 / 12808559.5 = 0.0048195435
    assert d.suv_lbm_factor == pytest.approx(0.0048195435, rel=1e-7)
    # BSA 1.996421 m² = 19964.21 cm²: 19964.21 / 12808559.5 = 0.0015586616
    assert d.suv_bsa_factor == pytest.approx(0.0015586616, rel=1e-6)
    assert d.factor("lbm") == d.suv_lbm_factor
    assert d.height_m == 1.80
    assert d.sex == "M"


def test_sul_and_bsa_female_by_hand() -> None:
    headers = make_headers(1)
    set_all(headers, PatientWeight=60, PatientSize=1.65, PatientSex="F")
    d = derive_quietly(headers)
    # SUVbw = 60000 / 12808559.5 = 0.0046843675
    assert d.suv_bw_factor == pytest.approx(0.0046843675, rel=REL)
    # LBM 39.286846 kg: 39286.846 / 12808559.5 = 0.0030672337
    assert d.suv_lbm_factor == pytest.approx(0.0030672337, rel=1e-7)
    # BSA 1.658657 m² = 16586.57 cm²: / 12808559.5 = 0.0012949595
    assert d.suv_bsa_factor == pytest.approx(0.0012949595, rel=1e-6)


def test_height_without_sex_gives_bsa_but_no_sul() -> None:
    # Updated: sex "O" used to mean unknown; it is now the mean of M and F (IBSI).
    headers = make_headers(1)
    set_all(headers, PatientWeight=80, PatientSize=1.80, PatientSex=None)
    d = derive_quietly(headers)
    assert d.suv_lbm_factor is None
    assert d.suv_bsa_factor == pytest.approx(0.0015586616, rel=1e-6)
    with pytest.raises(SuvError, match="PatientSize"):
        d.factor("lbm")


def test_height_in_cm_refused_or_dropped() -> None:
    headers = make_headers(1)
    set_all(headers, PatientSize=180, PatientSex="M")
    with pytest.raises(SuvError, match=r"\(0010,1020\) PatientSize: height looks like cm"):
        derive_suv(headers)
    with pytest.warns(SuvWarning, match="looks like cm"):
        d = derive_suv(headers, on_invalid="warn")
    assert d.height_m is None
    assert d.suv_lbm_factor is None
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_height_zero_means_unknown() -> None:
    headers = make_headers(1)
    set_all(headers, PatientSize=0, PatientSex="M")
    d = derive_quietly(headers)
    assert d.height_m is None
    assert d.suv_bsa_factor is None


# ----------------------------------------------------------------------------- series checks


def test_mixed_series_raise() -> None:
    headers = make_headers(2)
    headers[1].SeriesInstanceUID = "1.2.3.999"
    with pytest.raises(SuvError, match="differs between slices of one series"):
        derive_suv(headers)


def test_no_headers_raise() -> None:
    with pytest.raises(SuvError, match="no headers"):
        derive_suv([], source="pet/empty")


def test_record_serialises_without_patient_identifiers() -> None:
    headers = make_headers(1)
    set_all(headers, PatientName="Doe^Jane", PatientID="SECRET-ID", PatientBirthDate="19500101")
    d = derive_quietly(headers)
    text = repr(d.to_dict())
    for secret in ("Doe", "SECRET-ID", "19500101"):
        assert secret not in text


# ----------------------------------------------------------------------------- more fallbacks


def test_series_time_without_acquisition_times_warns() -> None:
    headers = make_headers(2)
    set_all(headers, AcquisitionDate=None, AcquisitionTime=None)
    with pytest.warns(SuvWarning, match="SeriesTime cannot be checked"):
        d = derive_suv(headers)
    assert d.scan_time_source.startswith("(0008,0021) SeriesDate")
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_acquisition_datetime_used_when_date_and_time_absent() -> None:
    # Only (0008,002A) AcquisitionDateTime: 09:00, series time 11:00 after it -> earliest acq.
    headers = make_headers(1)
    set_all(headers, AcquisitionDate=None, AcquisitionTime=None, SeriesTime="110000")
    headers[0].AcquisitionDateTime = "20240306090000"
    with pytest.warns(SuvWarning, match="earliest acquisition"):
        d = derive_suv(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 9, 0)


def test_fallback_warning_recorded_once_for_many_slices() -> None:
    headers = make_headers(5)
    set_all(headers, Units="CNTS")
    for ds in headers:
        ds.add_new(0x70531000, "DS", "0.000123")
    with pytest.warns(SuvWarning):
        d = derive_suv(headers)
    assert len(d.warnings) == 1


def test_several_radiopharmaceutical_items_warn() -> None:
    headers = make_headers(1)
    sequence = headers[0].RadiopharmaceuticalInformationSequence
    sequence.append(Dataset())
    with pytest.warns(SuvWarning, match="several items; using the first"):
        d = derive_suv(headers)
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_start_datetime_with_utc_offset_keeps_the_clock_time() -> None:
    # Without (0008,0201) the scanner clock's offset is unknown: assumed the same, warned.
    headers = make_headers(1)
    set_item(headers, RadiopharmaceuticalStartDateTime="20240301090000.000000+0100")
    with pytest.warns(SuvWarning, match="TimezoneOffsetFromUTC is absent"):
        d = derive_suv(headers)
    assert d.injection_datetime == datetime(2024, 3, 1, 9, 0)
    assert d.injection_datetime.tzinfo is None


def test_timezone_aware_override_refused() -> None:

    overrides = SuvOverrides(injection_datetime=datetime(2024, 3, 1, 9, tzinfo=UTC))
    with pytest.raises(SuvError, match="--injection-datetime: must be a naive date-time"):
        derive_suv(make_headers(1), overrides=overrides)


def test_weight_override_replacing_header_warns() -> None:
    # Override 80 kg instead of header 75 kg: 80000 / 12808559.5 = 0.0062458234
    with pytest.warns(SuvWarning, match=r"override 80.0 replaces a different header value"):
        d = derive_suv(make_headers(1), overrides=SuvOverrides(weight_kg=80.0))
    assert d.suv_bw_factor == pytest.approx(0.0062458234, rel=REL)


def test_none_needs_every_slice_acquisition_time() -> None:
    headers = make_headers(2)
    set_all(headers, DecayCorrection="NONE", CorrectedImage=["ATTN"])
    for name in ("AcquisitionDate", "AcquisitionTime"):
        delattr(headers[1], name)
    with pytest.raises(SuvError, match="every slice needs its acquisition date-time"):
        derive_suv(headers)


def test_none_without_frame_duration_warns() -> None:
    # 89Zr, both slices acquired at the reference time, no frame duration: corrections 2^0 = 1.
    headers = make_headers(2)
    set_all(headers, DecayCorrection="NONE", CorrectedImage=["ATTN"], ActualFrameDuration=None)
    with pytest.warns(SuvWarning, match="frame duration missing in 2 slice"):
        d = derive_suv(headers)
    assert list(d.slice_corrections.values()) == [1.0, 1.0]
    assert d.suv_bw_factor == pytest.approx(ZR89_BW_120H, rel=REL)


def test_ge_scan_time_after_acquisition_warns() -> None:
    headers = make_headers(1)
    set_all(headers, SeriesTime="110000")
    block = headers[0].private_block(0x0009, "GEMS_PETD_01", create=True)
    block.add_new(0x0D, "DT", "20240306100000")
    with pytest.warns(SuvWarning, match="GE scan date-time is after the earliest acquisition"):
        d = derive_suv(headers)
    assert d.scan_datetime == datetime(2024, 3, 6, 10, 0)


def test_unparseable_date_names_the_tag() -> None:
    headers = make_headers(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom may warn about the invalid DA on assignment
        set_all(headers, SeriesDate="2024-13-45")
    with pytest.raises(SuvError, match=r"\(0008,0021\) SeriesDate.*not a DICOM date"):
        derive_suv(headers)


def test_private_bytes_value_is_decoded() -> None:
    # A private element read without its dictionary entry arrives as raw bytes (VR UN).
    headers = make_headers(1)
    set_all(headers, Units="CNTS")
    block = headers[0].private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x00, "UN", b"0.000123")
    d = derive_quietly(headers)
    assert d.suv_bw_factor == 0.000123


def test_private_non_number_raises() -> None:
    headers = make_headers(1)
    set_all(headers, Units="CNTS")
    block = headers[0].private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x00, "UN", b"n/a ")
    with pytest.raises(SuvError, match=r"\(7053,1000\).*not a number \(found 'n/a'\)"):
        derive_suv(headers)


def test_body_and_half_life_overrides_recorded() -> None:
    # Override height 1.80 m, sex M, weight 80 kg and half-life 282276 s (the header's value):
    # SUL factor as in test_sul_and_bsa_male_by_hand, 61731.410 / 12808559.5 = 0.0048195435
    overrides = SuvOverrides(weight_kg=80.0, height_m=1.80, sex="M", half_life_s=282276.0)
    headers = make_headers(1)
    set_all(headers, PatientWeight=None)
    d = derive_quietly(headers, overrides=overrides)
    assert d.suv_lbm_factor == pytest.approx(0.0048195435, rel=1e-7)
    for key in ("weight_kg", "height_m", "sex", "half_life_s"):
        assert d.sources[key] == "override"


def test_none_without_sop_instance_uid_raises() -> None:
    headers = make_headers(1)
    set_all(headers, DecayCorrection="NONE", CorrectedImage=["ATTN"], SOPInstanceUID=None)
    with pytest.raises(SuvError, match=r"\(0008,0018\) SOPInstanceUID"):
        derive_suv(headers)
