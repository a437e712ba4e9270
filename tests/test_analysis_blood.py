"""Well-counter blood samples: decay corrections, %IA/L, SUV, validation, image comparison."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunopet.analysis.blood import (
    BLOOD_ACTIVITY_COLUMNS,
    BLOOD_SAMPLE_COLUMNS,
    CounterCalibration,
    blood_activity,
    compare_with_image,
    read_blood_samples,
    read_counter_calibration,
)
from immunopet.errors import InputError

ZR89_HALF_LIFE_S = 78.41 * 3600.0  # 282276 s, DOMAIN.md
CALIBRATION = CounterCalibration(cpm_per_bq=18.6, half_life_s=ZR89_HALF_LIFE_S, nuclide="89Zr")

HEADER = ",".join(BLOOD_SAMPLE_COLUMNS)
# the first sample of the synthetic tiny trial (seed 0), P01 tracer-only
SAMPLE_ROW = (
    "P01,tracer-only,1,2018-04-09T09:36:00,2018-04-09T09:41:00,2018-04-17T03:19:00,"
    "3.7e+07,12285.7,20789.7"
)


def _write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "blood_samples.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _frame(**columns: object) -> pd.DataFrame:
    """A one-sample table: injection 2024-01-01 09:00, drawn at injection, counted 1 T later."""
    t0 = datetime(2024, 1, 1, 9, 0)
    base: dict[str, object] = {
        "patient": ["P01"],
        "series": ["s1"],
        "sample": ["1"],
        "injection_datetime": [t0],
        "sample_datetime": [t0],
        "counting_datetime": [t0 + timedelta(seconds=ZR89_HALF_LIFE_S)],
        "injected_activity_bq": [37e6],
        "whole_blood_cpm_per_ml": [1860.0],
        "plasma_cpm_per_ml": [3720.0],
    }
    base.update(columns)
    return pd.DataFrame(base)


# ---------------------------------------------------------------------------- hand calculation
def test_decay_correction_and_percent_ia_per_l_by_hand(tmp_path: Path) -> None:
    samples = read_blood_samples(_write(tmp_path, SAMPLE_ROW))
    out = blood_activity(samples, CALIBRATION, weight_kg={("P01", "tracer-only"): 64.7})
    blood = out[out["matrix"] == "whole_blood"].iloc[0]
    plasma = out[out["matrix"] == "plasma"].iloc[0]
    # 12285.7 cpm/mL / 18.6 cpm/Bq = 660.52151 Bq/mL at counting.
    # Counted 2018-04-17 03:19, injected 2018-04-09 09:36: 7 d 17 h 43 min
    #   = 604800 + 61200 + 2580 = 668580 s = 2.3685329 half-lives (T = 282276 s);
    #   2^2.3685329 = 4 x 2^0.3685329 = 4 x 1.2910393 = 5.1641572.
    # At injection: 660.52151 x 5.1641572 = 3411.0369 Bq/mL
    #   -> %IA/L = 3411.0369 Bq/mL x 1000 mL/L / 37e6 Bq x 100 = 9.2190187
    #   -> SUV = 3411.0369 x 64700 g / 37e6 Bq = 5.9647051
    # Drawn 5 min after injection, so counted 668280 s after sampling:
    #   660.52151 x 2^(668280/282276) = 3411.0369 x 2^(-300/282276) = 3408.5250 Bq/mL.
    assert blood["bq_per_ml_at_counting"] == pytest.approx(660.52151, rel=1e-7)
    assert blood["bq_per_ml_at_injection"] == pytest.approx(3411.0369, rel=1e-7)
    assert blood["bq_per_ml_at_sample"] == pytest.approx(3408.5250, rel=1e-7)
    assert blood["percent_ia_per_l"] == pytest.approx(9.2190187, rel=1e-7)
    assert blood["suv"] == pytest.approx(5.9647051, rel=1e-7)
    assert blood["hours_pi"] == pytest.approx(5 / 60)
    # plasma: 20789.7 / 18.6 = 1117.7258 Bq/mL; x 5.1641572 = 5772.1118 -> 15.600302 %IA/L
    assert plasma["percent_ia_per_l"] == pytest.approx(15.600302, rel=1e-7)
    assert list(out.columns) == list(BLOOD_ACTIVITY_COLUMNS)


def test_one_half_life_doubles_and_missing_weight_gives_nan() -> None:
    out = blood_activity(_frame(), CALIBRATION)
    # 1860 cpm/mL / 18.6 = 100 Bq/mL counted one half-life after injection -> 200 at injection
    assert out["bq_per_ml_at_counting"].tolist() == pytest.approx([100.0, 200.0])
    assert out["bq_per_ml_at_injection"].tolist() == pytest.approx([200.0, 400.0])
    assert out["matrix"].tolist() == ["whole_blood", "plasma"]
    assert out["suv"].isna().all()


def test_an_empty_count_gives_no_row_for_that_matrix(tmp_path: Path) -> None:
    row = SAMPLE_ROW.rsplit(",", 1)[0] + ","  # plasma not counted
    out = blood_activity(read_blood_samples(_write(tmp_path, row)), CALIBRATION)
    assert out["matrix"].tolist() == ["whole_blood"]


def test_days_count_in_the_decay_correction() -> None:
    # same time of day, 5 days later: 120 h = 1.5304 half-lives -> x 2.8887, not x 1
    t0 = datetime(2024, 1, 1, 9, 0)
    out = blood_activity(
        _frame(counting_datetime=[t0 + timedelta(days=5)], plasma_cpm_per_ml=[None]), CALIBRATION
    )
    assert out["bq_per_ml_at_injection"].iloc[0] == pytest.approx(100.0 * 2 ** (120 / 78.41))


def test_rows_are_sorted_by_time_within_series() -> None:
    t0 = datetime(2024, 1, 1, 9, 0)
    frame = pd.concat(
        [
            _frame(sample=["late"], sample_datetime=[t0 + timedelta(hours=2)]),
            _frame(sample=["early"], sample_datetime=[t0 + timedelta(minutes=5)]),
        ],
        ignore_index=True,
    )
    out = blood_activity(frame, CALIBRATION)
    assert out["sample"].tolist() == ["early", "early", "late", "late"]


# ---------------------------------------------------------------------------- errors
def test_missing_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace(",plasma_cpm_per_ml", "")
    path = _write(tmp_path, SAMPLE_ROW.rsplit(",", 1)[0], header=header)
    with pytest.raises(InputError, match=r"blood_samples\.csv: plasma_cpm_per_ml: .*column"):
        read_blood_samples(path)


def test_counting_before_sampling_names_row_column_and_value(tmp_path: Path) -> None:
    bad = SAMPLE_ROW.replace("2018-04-17T03:19:00", "2018-04-09T09:40:00")
    path = _write(tmp_path, SAMPLE_ROW.replace(",1,", ",0,"), bad)
    with pytest.raises(
        InputError,
        match=r"blood_samples\.csv: row 3, counting_datetime: sample counted before it was "
        r"drawn \(found '2018-04-09T09:40:00'",
    ):
        read_blood_samples(path)


def test_sampling_before_injection_is_an_error(tmp_path: Path) -> None:
    bad = SAMPLE_ROW.replace("2018-04-09T09:41:00", "2018-04-09T09:00:00")
    with pytest.raises(InputError, match=r"row 2, sample_datetime: sample drawn before"):
        read_blood_samples(_write(tmp_path, bad))


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            "2018-04-09T09:41:00",
            "yesterday",
            r"row 2, sample_datetime: not a date-time.*'yesterday'",
        ),
        ("2018-04-09T09:41:00", "2018-04-09T09:41:00+02:00", r"sample_datetime: .*time zone"),
        ("12285.7", "-5", r"row 2, whole_blood_cpm_per_ml: value out of range \(found '-5'"),
        ("12285.7", "lots", r"row 2, whole_blood_cpm_per_ml: not a number"),
        ("3.7e+07", "", r"row 2, injected_activity_bq: empty cell"),
        ("3.7e+07", "0", r"row 2, injected_activity_bq: value out of range"),
        ("P01,", ",", r"row 2, patient: empty cell"),
    ],
)
def test_invalid_cells(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        read_blood_samples(_write(tmp_path, SAMPLE_ROW.replace(old, new, 1)))


def test_duplicate_sample_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"row 3, sample: the same sample appears twice"):
        read_blood_samples(_write(tmp_path, SAMPLE_ROW, SAMPLE_ROW))
    with pytest.raises(InputError, match=r"nothing\.csv: file not found"):
        read_blood_samples(tmp_path / "nothing.csv")


def test_frames_are_validated_too_and_weights_must_be_positive() -> None:
    with pytest.raises(InputError, match=r"samples: row 0, counting_datetime: sample counted"):
        blood_activity(_frame(counting_datetime=[datetime(2023, 1, 1)]), CALIBRATION)
    with pytest.raises(InputError, match=r"weight_kg\[\('P01', 's1'\)\].*positive"):
        blood_activity(_frame(), CALIBRATION, weight_kg={("P01", "s1"): 0.0})


# ---------------------------------------------------------------------------- calibration
def test_calibration_from_nuclide_and_explicit_half_life(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"cpm_per_bq": 18.6, "nuclide": "89Zr"}))
    calibration = read_counter_calibration(path)
    assert calibration.half_life_s == pytest.approx(78.41 * 3600.0)  # 89Zr, 78.41 h
    path.write_text(json.dumps({"cpm_per_bq": 20, "half_life_s": 1000.0, "counts": "net"}))
    assert read_counter_calibration(path) == CounterCalibration(20.0, 1000.0, None)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ('{"half_life_s": 10}', r"cal\.json: cpm_per_bq: counter efficiency missing"),
        ('{"cpm_per_bq": 18.6}', r"cal\.json: half_life_s: half-life unknown"),
        ('{"cpm_per_bq": 18.6, "nuclide": "Xx999"}', r"nuclide: unknown radionuclide"),
        ('{"cpm_per_bq": -1, "nuclide": "89Zr"}', r"cpm_per_bq.*\(found -1"),
        ("[1, 2]", r"calibration must be a JSON object"),
        ("{", r"invalid JSON at line 1"),
    ],
)
def test_calibration_errors(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(InputError, match=pattern):
        read_counter_calibration(path)


# ---------------------------------------------------------------------------- image comparison
def _blood_for_comparison() -> pd.DataFrame:
    t0 = datetime(2024, 1, 1, 9, 0)
    frame = pd.concat(
        [
            _frame(sample=["a"], sample_datetime=[t0 + timedelta(minutes=30)]),
            _frame(sample=["b"], sample_datetime=[t0 + timedelta(hours=72.1)]),
        ],
        ignore_index=True,
    )
    frame["counting_datetime"] = t0 + timedelta(hours=80)
    return blood_activity(frame, CALIBRATION, weight_kg={("P01", "s1"): 70.0})


def _measurements() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": ["P01", "P01", "P01", "P01"],
            "series": ["s1", "s1", "s1", "s2"],
            "kind": ["organ", "organ", "lesion", "organ"],
            "voi": ["blood_pool", "blood_pool", "blood_pool", "blood_pool"],
            "hours_pi": [72.3, 120.0, 72.2, 72.1],
            "suv_mean": [2.0, 1.5, 9.0, 4.0],
            "nominal_hours": [72.0, 120.0, 72.0, 72.0],
        }
    )


def test_compare_pairs_the_nearest_scan_within_tolerance() -> None:
    blood = _blood_for_comparison()
    pairs = compare_with_image(blood, _measurements())
    # only sample b (72.1 h) has a blood-pool scan within 6 h: the 72.3 h one of series s1
    # (the lesion row and series s2 do not count)
    assert pairs["sample"].tolist() == ["b"]
    row = pairs.iloc[0]
    whole_b = blood[(blood["sample"] == "b") & (blood["matrix"] == "whole_blood")].iloc[0]
    # blood SUV of b: 1860 cpm/mL / 18.6 = 100 Bq/mL counted 80 h after injection
    #   -> 100 x 2^(80/78.41) = 202.8318 Bq/mL -> x 70000 g / 37e6 Bq = 0.3837360
    assert row["blood_suv"] == pytest.approx(100 * 2 ** (80 / 78.41) * 70000 / 37e6)
    assert whole_b["suv"] == pytest.approx(row["blood_suv"])
    assert row["image_suv_mean"] == 2.0
    assert row["time_difference_h"] == pytest.approx(0.2)
    assert row["image_to_blood_ratio"] == pytest.approx(2.0 / row["blood_suv"])
    assert row["nominal_hours"] == 72.0
    assert compare_with_image(blood, _measurements(), tolerance_h=0.1).empty


def test_compare_errors() -> None:
    blood = _blood_for_comparison()
    doubled = pd.concat([_measurements(), _measurements().iloc[:1]], ignore_index=True)
    with pytest.raises(InputError, match=r"two 'blood_pool' organ rows for one scan"):
        compare_with_image(blood, doubled)
    with pytest.raises(InputError, match=r"measurements: suv_mean: .*column"):
        compare_with_image(blood, _measurements().drop(columns="suv_mean"))
    with pytest.raises(InputError, match=r"tolerance_h"):
        compare_with_image(blood, _measurements(), tolerance_h=-1.0)


# ---------------------------------------------------------------------------- synthetic trial
@pytest.mark.slow
def test_synthetic_trial_blood_samples_reproduce_the_truth(tmp_path: Path) -> None:
    from immunopet.synthetic.trial import generate_trial

    manifest = generate_trial(tmp_path / "trial", preset="tiny", seed=0)
    root = manifest.outdir
    samples = read_blood_samples(root / "blood_samples.csv")
    calibration = read_counter_calibration(root / "counter_calibration.json")
    scans = pd.read_csv(root / "scans.csv")
    weights = {(r.patient, r.series): float(r.weight_kg) for r in scans.itertuples()}
    out = blood_activity(samples, calibration, weight_kg=weights)
    truth = pd.read_csv(root / "truth" / "blood.csv", dtype={"sample": str})
    assert len(truth) == len(samples) == 24  # 3 patients x 2 series x 4 samples

    # the generator counts with 2 % Gaussian noise (synthetic/clinical.py, make_blood_samples)
    plasma = out[out["matrix"] == "plasma"].merge(truth, on=["patient", "series", "sample"])
    error = plasma["percent_ia_per_l"] / plasma["plasma_percent_ia_per_l"] - 1.0
    assert len(plasma) == 24
    assert np.all(np.abs(error) < 0.08)  # 4 sigma
    assert np.mean(np.abs(error)) < 0.03  # E|N(0, 2 %)| = 1.6 %
    assert abs(np.mean(error)) < 0.015  # no bias: 2 % / sqrt(24) = 0.4 % standard error
    assert np.allclose(plasma["hours_pi_x"], plasma["hours_pi_y"], atol=1e-4)

    whole = out[out["matrix"] == "whole_blood"].merge(truth, on=["patient", "series", "sample"])
    error = whole["suv"] / whole["blood_pool_suv"] - 1.0
    assert np.all(np.abs(error) < 0.08)
    assert np.mean(np.abs(error)) < 0.03
