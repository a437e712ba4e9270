"""The IBSI SUV digital reference objects (DROs), mirrored as small generated PET series.

The public IBSI SUV DRO set (built to the IBSI "Standardizing SUV computation" manual, Vácha
et al., working version 3) holds one PET series per scanner convention, each with a region
whose expected SUVbw is min 0.20, median 1.00, max 4.00. Here each DRO id is a generated
8 x 16 x 16 series whose TRUE SUVbw voxel values are a known pattern with exactly those
statistics (the region is the whole image). The stored pixel values and headers are encoded
the way the DRO's convention requires, with hand formulas written in this file (``2 **``,
``math.exp``, ``math.log``: nothing from :mod:`immunopet.suv`), then read through the one
public entry point :func:`immunopet.suv.volume.read_suv_volume` (normalisation ``"bw"``).

Encoding: if a stored value s of slice k becomes SUVbw as ``s x RescaleSlope_k x f_k`` (f_k
the convention's "rescaled value -> SUVbw" factor computed here), the test writes
``RescaleSlope_k = scale_k / (8000 f_k)`` (10 significant digits) and ``s = SUV x 8000 /
scale_k`` as int16. The pattern values are multiples of 1/8000, so 0.2, 1.0 and 4.0 are stored
exactly (1600 ... 32000) and only the slope's 10-digit rounding and the float32 output remain:
the tolerance is 1e-5 relative, 10^3 times smaller than the 1.6 % of a wrong reference time.

Common acquisition (hand values): 18F, T = 6586.2 s (header (0018,1075)); 370 MBq injected
2024-03-06 09:00:00; acquisition and series at 10:00:00 (3600 s later); 600 s frames;
80 kg, 1.80 m, sex F unless the DRO says otherwise.

Differences from the public DROs (they are mirrored, not copied): the real DROs carry an
RTSTRUCT region; here the whole image is the region. Where the public set splits a case by
vendor (e.g. DRO_3_4_0..3) one representative is generated.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import Dataset

from dicom_factory import make_pet_volume
from immunopet.cli.main import main
from immunopet.errors import SuvError, SuvWarning
from immunopet.image import Unit
from immunopet.io.dicom_write import PetAcquisition, write_pet_series
from immunopet.suv.record import SuvOverrides
from immunopet.suv.volume import read_suv_volume

REL = 1e-5
SHAPE = (8, 16, 16)
STEPS_PER_SUV = 8000  # stored value of SUV 1.0 at scale 1

# --------------------------------------------------------------------------- hand constants
T_F18_S = 6586.2  # 109.77 min, as written in (0018,1075)
T_ZR89_S = 282276.0  # 78.41 h, as the writer puts in (0018,1075) for 89Zr
T_GA68_S = 4057.74  # the value written in the Ga-68 DRO header (67.629 min)
DOSE_BQ = 370e6
WEIGHT_KG = 80.0
WEIGHT_G = 80000.0
HEIGHT_CM = 180.0
INJECTION = datetime(2024, 3, 6, 9, 0, 0)
SCAN = datetime(2024, 3, 6, 10, 0, 0)
FRAME_S = 600.0
PHILIPS_SUV_FACTOR = 3.21e-4  # (7053,1000): rescaled counts -> SUVbw
PHILIPS_BQML_FACTOR = 1.7  # (7053,1009): rescaled counts -> Bq/mL


def decay(seconds: float, half_life_s: float = T_F18_S) -> float:
    """Fraction left after ``seconds``: 2^(-t/T)."""
    return 2.0 ** (-seconds / half_life_s)


def bqml_start_factor(ref_after_injection_s: float, half_life_s: float = T_F18_S) -> float:
    """Bq/mL decay-corrected to the reference time -> SUVbw: W_g / (A0 2^(-t/T))."""
    return WEIGHT_G / (DOSE_BQ * decay(ref_after_injection_s, half_life_s))


def t_ave_s(frame_s: float, half_life_s: float = T_F18_S) -> float:
    """Time in a frame at which the activity equals the frame mean: ln(lT/(1-e^-lT))/l."""
    lam = math.log(2.0) / half_life_s
    return math.log(lam * frame_s / (1.0 - math.exp(-lam * frame_s))) / lam


# Body sizes (W = 80 kg, H = 180 cm):
LBM_JAMES_M_KG = 1.10 * WEIGHT_KG - 128.0 * (WEIGHT_KG / HEIGHT_CM) ** 2  # 62.716049
IBW_M_KG = 48.0 + 1.06 * (HEIGHT_CM - 152.0)  # 77.68
IBW_F_KG = 45.5 + 0.91 * (HEIGHT_CM - 152.0)  # 70.98
IBW_O_KG = (IBW_M_KG + IBW_F_KG) / 2.0  # 74.33 (sex O: mean of M and F)
BSA_DUBOIS_CM2 = 0.007184 * WEIGHT_KG**0.425 * HEIGHT_CM**0.725 * 1e4  # 19964.21


def true_suv() -> np.ndarray:
    """The true SUVbw pattern, multiples of 1/8000: min 0.2, median 1.0, max 4.0.

    Slice 0 ramps 0.2 -> 1.0, slices 1-3 0.5 -> 1.0, slices 4-6 1.0 -> 2.0, slice 7
    1.0 -> 4.0: 1020 values below 1, 8 equal to 1 and 1020 above, so both middle values of
    the 2048 are 1.0.
    """
    ramps = [(0.2, 1.0), (0.5, 1.0), (0.5, 1.0), (0.5, 1.0)]
    ramps += [(1.0, 2.0), (1.0, 2.0), (1.0, 2.0), (1.0, 4.0)]
    slices = [np.linspace(lo, hi, SHAPE[1] * SHAPE[2]) for lo, hi in ramps]
    values = np.rint(np.array(slices) * STEPS_PER_SUV) / STEPS_PER_SUV
    return values.reshape(SHAPE)


# Per-slice slope scales: every value of a slice stays <= 32000 stored.
ONE_SLOPE = (1.0,) * 8
MANY_SLOPES = (0.25, 0.25, 0.5, 0.25, 0.5, 0.5, 0.5, 1.0)


# --------------------------------------------------------------------------- the DROs
@dataclass(frozen=True)
class Dro:
    """How one DRO stores its values.

    ``factors`` gives f_k (rescaled stored value -> true SUVbw) per slice; ``edit`` changes
    slice k's header after the base series is written.
    """

    doc: str
    factors: Callable[[], list[float]]
    edit: Callable[[Dataset, int], None] = lambda ds, k: None
    scales: tuple[float, ...] = ONE_SLOPE
    decay_correction: str = "START"
    acquisition: dict[str, object] = field(default_factory=dict)
    slice_duration_s: float | None = None
    series_time_delay_s: float = 0.0
    warns: str | None = None


def same(f: float) -> Callable[[], list[float]]:
    return lambda: [f] * SHAPE[0]


def units(value: str, suv_type: str | None = None) -> Callable[[Dataset, int], None]:
    def edit(ds: Dataset, k: int) -> None:
        ds.Units = value
        if suv_type is not None:
            ds.SUVType = suv_type

    return edit


def item_edit(**values: object) -> Callable[[Dataset, int], None]:
    def edit(ds: Dataset, k: int) -> None:
        item = ds.RadiopharmaceuticalInformationSequence[0]
        for keyword, value in values.items():
            if value is None:
                delattr(item, keyword)
            else:
                setattr(item, keyword, value)

    return edit


def philips(element: int, value: float) -> Callable[[Dataset, int], None]:
    def edit(ds: Dataset, k: int) -> None:
        ds.Units = "CNTS"
        ds.Manufacturer = "Philips Medical Systems"
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        block.add_new(element, "DS", f"{value:.10g}")

    return edit


def ge_private(moment: datetime) -> Callable[[Dataset, int], None]:
    def edit(ds: Dataset, k: int) -> None:
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", moment.strftime("%Y%m%d%H%M%S"))

    return edit


def frame_reference_zero(ds: Dataset, k: int) -> None:
    ds.FrameReferenceTime = "0"
    ds.ActualFrameDuration = 300000


GE_SCAN = datetime(2024, 3, 6, 9, 58, 30)  # 90 s before the acquisition start
NONE_FRAME_S = 300.0
NONE_STEP_S = 240.0  # slice k acquired at 10:00 + 240 k s


def none_factors() -> list[float]:
    """DecayCorrection NONE: slice k holds the mean over [t_k, t_k + D] of C0 2^(-t/T).

    stored_k = SUV A0 / W_g x 2^(-t_k/T) x (1 - e^(-l D)) / (l D), so
    f_k = W_g / A0 x 2^(t_k/T) x l D / (1 - e^(-l D)).
    """
    lam = math.log(2.0) / T_F18_S
    frame = lam * NONE_FRAME_S / (1.0 - math.exp(-lam * NONE_FRAME_S))
    return [WEIGHT_G / DOSE_BQ / decay(3600.0 + NONE_STEP_S * k) * frame for k in range(SHAPE[0])]


def ga68_edit(ds: Dataset, k: int) -> None:
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = f"{T_GA68_S}"


MIDNIGHT_INJECTION = datetime(2024, 3, 6, 23, 30, 0)
MIDNIGHT_SCAN = datetime(2024, 3, 7, 0, 30, 0)

DROS: dict[str, Dro] = {
    "DRO_0_0": Dro(
        "default: Units BQML, DecayCorrection START; SUVbw = C x W_g / (A0 2^(-t/T)) with t "
        "from injection to the acquisition start (= series time; manual step 2).",
        same(bqml_start_factor(3600.0)),
    ),
    "DRO_1_0": Dro(
        "RescaleSlope differs per slice (0.25 ... 1): every slice is rescaled with its own "
        "(0028,1053) before the SUV factor (DICOM modality LUT; manual: per-slice rescale).",
        same(bqml_start_factor(3600.0)),
        scales=MANY_SLOPES,
    ),
    "DRO_2_0": Dro(
        "Units GML, SUVType BW: values are already SUVbw (manual: GML branch, factor 1).",
        same(1.0),
        units("GML", "BW"),
    ),
    "DRO_2_1": Dro(
        "Units GML stored as SUVlbm (SUVType LBMJAMES128), sex M: SUVbw = stored x W / "
        "LBM_James(M) with LBM = 1.10 W - 128 (W/H)^2 (manual: conversion between SUV types).",
        same(WEIGHT_KG / LBM_JAMES_M_KG),
        units("GML", "LBMJAMES128"),
        acquisition={"sex": "M"},
    ),
    "DRO_2_2": Dro(
        "Units GML stored as SUVibw, sex O: IBW = mean of the male and female Devine "
        "formulas (manual: sex O = mean of M and F); SUVbw = stored x W / IBW.",
        same(WEIGHT_KG / IBW_O_KG),
        units("GML", "IBW"),
        acquisition={"sex": "O"},
        warns="sex O",
    ),
    "DRO_2_3": Dro(
        "Units CM2ML stored as SUVbsa: SUVbw = stored x W_g / BSA_cm2, Du Bois BSA "
        "(manual: CM2ML = SUVbsa).",
        same(WEIGHT_G / BSA_DUBOIS_CM2),
        units("CM2ML", "BSA"),
    ),
    "DRO_2_4": Dro(
        "Units CNTS with only the Philips SUV scale factor (7053,1000): SUVbw = rescaled "
        "counts x factor (manual: Philips branch).",
        same(PHILIPS_SUV_FACTOR),
        philips(0x00, PHILIPS_SUV_FACTOR),
    ),
    "DRO_2_5": Dro(
        "Units CNTS with only the Philips activity concentration factor (7053,1009): Bq/mL = "
        "rescaled counts x factor, then as BQML/START (manual: Philips branch).",
        same(PHILIPS_BQML_FACTOR * bqml_start_factor(3600.0)),
        philips(0x09, PHILIPS_BQML_FACTOR),
    ),
    "DRO_3_0": Dro(
        "(0018,1074) dose written in MBq (370): a dose below 1e4 is read as MBq "
        "(manual: dose unit check).",
        same(bqml_start_factor(3600.0)),
        item_edit(RadionuclideTotalDose="370"),
        warns="read as MBq",
    ),
    "DRO_3_1": Dro(
        "DecayCorrection ADMIN: values decay-corrected to injection, SUVbw = C x W_g / A0 "
        "(manual: ADMIN branch, no decay term).",
        same(WEIGHT_G / DOSE_BQ),
        decay_correction="ADMIN",
    ),
    "DRO_3_2": Dro(
        "DecayCorrection START, SeriesTime 30 min after AcquisitionTime, FrameReferenceTime 0 "
        "and a 300 s frame: reference = acquisition + T_ave - FrameReferenceTime (manual "
        "step 3), not the earliest acquisition (QIBA fallback; 1.6 % off here).",
        same(bqml_start_factor(3600.0 + t_ave_s(300.0))),
        frame_reference_zero,
        series_time_delay_s=1800.0,
    ),
    "DRO_3_3": Dro(
        "GE private decay-correction date-time (0009,100D) 09:58:30, 90 s before the "
        "acquisition start: it is the reference time (manual step 1, before the others).",
        same(bqml_start_factor((GE_SCAN - INJECTION).total_seconds())),
        ge_private(GE_SCAN),
    ),
    "DRO_3_4": Dro(
        "DecayCorrection NONE, slices acquired 240 s apart with 300 s frames: each frame is "
        "corrected from its own start with the frame-average term lD/(1-e^-lD) (manual: "
        "NONE branch, per-frame decay correction).",
        none_factors,
        decay_correction="NONE",
        acquisition={"frame_duration_s": NONE_FRAME_S},
        slice_duration_s=NONE_STEP_S,
    ),
    "DRO_4_0": Dro(
        "only (0018,1078) RadiopharmaceuticalStartDateTime, no (0018,1072) time: the "
        "date-time is used as is (manual: injection time from the date-time first).",
        same(bqml_start_factor(3600.0)),
        item_edit(RadiopharmaceuticalStartTime=None),
    ),
    "DRO_4_1": Dro(
        "only (0018,1072) RadiopharmaceuticalStartTime, no date-time: for a nuclide of "
        "at most 11.5 h the date is the scan date (manual: injection-date repair).",
        same(bqml_start_factor(3600.0)),
        item_edit(RadiopharmaceuticalStartDateTime=None),
        warns="injection date missing; assumed the scan date",
    ),
    "DRO_4_2": Dro(
        "injection 23:30, scan 00:30 the next day, the injection date-time written with the "
        "scan's date: the time of day is over 1 h after the reference, so the day before is "
        "taken (manual: injection-date repair for short-lived nuclides, 'sparing midnight').",
        same(bqml_start_factor(3600.0)),
        item_edit(RadiopharmaceuticalStartDateTime="20240307233000"),
        acquisition={"injection_datetime": MIDNIGHT_INJECTION, "scan_datetime": MIDNIGHT_SCAN},
        warns="assumed the day before the scan",
    ),
    "DRO_5_0": Dro(
        "radionuclide 68Ga with the header half-life 4057.74 s (the table's 4062.6 s is "
        "within 1 %, the header wins): SUVbw = C x W_g / (A0 2^(-t/T_Ga68)) (manual: "
        "half-life from (0018,1075)).",
        same(bqml_start_factor(3600.0, T_GA68_S)),
        ga68_edit,
        acquisition={"nuclide": "68Ga"},
    ),
}


# --------------------------------------------------------------------------- the generator
def write_dro(tmp_path: Path, dro_id: str) -> Path:
    """Write the PET series of one DRO; returns its folder."""
    dro = DROS[dro_id]
    truth = true_suv()
    fields: dict[str, object] = {
        "injection_datetime": INJECTION,
        "scan_datetime": SCAN,
        "injected_activity_bq": DOSE_BQ,
        "weight_kg": WEIGHT_KG,
        "height_m": HEIGHT_CM / 100.0,
        "sex": "F",
        "nuclide": "18F",
        "frame_duration_s": FRAME_S,
        "series_description": dro_id,
        "uid_seed": dro_id,
    }
    fields.update(dro.acquisition)
    acquisition = PetAcquisition(**fields)  # type: ignore[arg-type]
    folder = tmp_path / dro_id
    # the writer gives geometry, UIDs, times, dose and nuclide; pixels are replaced below
    base = make_pet_volume(SHAPE).with_array(truth, unit=Unit.BQML)
    paths = write_pet_series(
        base,
        folder,
        acquisition,
        decay_correction=dro.decay_correction,  # type: ignore[arg-type]
        slice_duration_s=dro.slice_duration_s,
        series_time_delay_s=dro.series_time_delay_s,
    )
    factors = dro.factors()
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        slope_text = f"{dro.scales[k] / (STEPS_PER_SUV * factors[k]):.10g}"
        stored = np.rint(truth[k] / (float(slope_text) * factors[k]))
        assert stored.max() <= 32767
        ds.RescaleSlope = slope_text
        ds.RescaleIntercept = "0"
        ds.PixelData = stored.astype("<i2").tobytes()
        dro.edit(ds, k)
        ds.save_as(path, enforce_file_format=True)
    return folder


def read(folder: Path, overrides: SuvOverrides | None = None) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suv = read_suv_volume(folder, normalisation="bw", overrides=overrides)
    assert suv.volume.unit == Unit.SUV_BW
    notes = [str(w.message) for w in caught if issubclass(w.category, SuvWarning)]
    return np.asarray(suv.volume.array, dtype=np.float64), notes


# --------------------------------------------------------------------------- tests
def test_the_true_pattern_has_the_dro_statistics() -> None:
    truth = true_suv()
    assert truth.min() == 0.2
    assert np.median(truth) == 1.0
    assert truth.max() == 4.0


@pytest.mark.parametrize("dro_id", list(DROS))
def test_ibsi_suv_dro(tmp_path: Path, dro_id: str) -> None:
    """Each DRO gives the reference SUVbw min 0.20 / median 1.00 / max 4.00 (see DROS docs)."""
    folder = write_dro(tmp_path, dro_id)
    values, notes = read(folder)
    assert values.min() == pytest.approx(0.2, rel=REL)
    assert np.median(values) == pytest.approx(1.0, rel=REL)
    assert values.max() == pytest.approx(4.0, rel=REL)
    # every voxel, not only the three statistics (order-free: sorted values)
    np.testing.assert_allclose(np.sort(values, axis=None), np.sort(true_suv(), axis=None), rtol=REL)
    expected = DROS[dro_id].warns
    if expected is not None:
        assert any(expected in note for note in notes), notes


def test_every_dro_states_its_rule() -> None:
    assert len(DROS) == 17
    for dro in DROS.values():
        assert "manual" in dro.doc


@pytest.mark.parametrize(
    ("dro_id", "factor", "units"),
    [
        # 80000 g / (370e6 Bq x 2^(-3600/6586.2)) = 3.1580e-4 g/Bq per rescaled stored unit
        ("DRO_0_0", WEIGHT_G / (DOSE_BQ * 2.0 ** (-3600.0 / 6586.2)), "BQML"),
        # 80 / (1.10 x 80 - 128 x (80/180)^2) = 80 / 62.716049 = 1.2755906
        ("DRO_2_1", 80.0 / 62.71604938271605, "GML"),
    ],
)
def test_inspect_json_reports_the_dro_factor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dro_id: str, factor: float, units: str
) -> None:
    """``immunopet inspect DIR --json`` reports the same hand-computed SUVbw factor."""
    folder = write_dro(tmp_path, dro_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuvWarning)
        assert main(["inspect", str(folder), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["suv_bw_factor"] == pytest.approx(factor, rel=1e-9)
    assert record["units"] == units


def test_dro_3_1_admin_provenance_names_the_undecayed_dose(tmp_path: Path) -> None:
    """ADMIN: the record says the factor is weight / injected dose (fixed: said "decayed")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuvWarning)
        suv = read_suv_volume(write_dro(tmp_path, "DRO_3_1"))
    source = suv.derivation.sources["suv_bw_factor"]
    assert source == "computed: weight / injected dose ((0054,1102) DecayCorrection ADMIN)"
    assert suv.derivation.suv_bw_factor == pytest.approx(80000.0 / 370e6, rel=1e-12)


# --------------------------------------------------------------------------- deliberate differences
ZR89 = {"nuclide": "89Zr"}
ZR89_DROS = {
    # DRO_4_1 with 89Zr: time of day only. Manual (half-life > 11.5 h) and we both refuse to
    # guess the date: an 89Zr scan is often days after the injection.
    "DRO_4_1": replace(
        DROS["DRO_4_1"],
        factors=same(bqml_start_factor(3600.0, T_ZR89_S)),
        acquisition=ZR89,
        warns=None,
    ),
    # DRO_4_2 with 89Zr: the date-time carries the scan's date, so the injection is 23 h
    # after the scan. The manual's day-before repair is for short-lived nuclides only; we
    # refuse (never "correct" an 89Zr date) and name the override.
    "DRO_4_2": replace(
        DROS["DRO_4_2"],
        factors=same(bqml_start_factor(3600.0, T_ZR89_S)),
        acquisition={**DROS["DRO_4_2"].acquisition, **ZR89},
        warns=None,
    ),
}


@pytest.mark.parametrize(
    ("dro_id", "injection", "message"),
    [
        ("DRO_4_1", INJECTION, r"injection date.*--injection-datetime"),
        ("DRO_4_2", MIDNIGHT_INJECTION, r"after the scan reference time.*--injection-datetime"),
    ],
)
def test_zr89_variants_of_the_date_repair_dros_are_refused_until_the_date_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dro_id: str, injection: datetime, message: str
) -> None:
    """Deliberate difference: no injection-date repair for 89Zr; the override lifts it."""
    monkeypatch.setitem(DROS, dro_id, ZR89_DROS[dro_id])
    folder = write_dro(tmp_path, dro_id)
    with pytest.raises(SuvError, match=message):
        read(folder)
    values, _ = read(folder, SuvOverrides(injection_datetime=injection))
    assert values.min() == pytest.approx(0.2, rel=REL)
    assert np.median(values) == pytest.approx(1.0, rel=REL)
    assert values.max() == pytest.approx(4.0, rel=REL)
