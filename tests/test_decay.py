"""Time intervals, decay and the nuclide table, alone (multi-day, overnight, missing dates)."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad

from immunopet.errors import InputError
from immunopet.suv.decay import decay_factor, elapsed_seconds, frame_decay_correction
from immunopet.suv.nuclides import LONG_LIVED_HALF_LIFE_S, NUCLIDES, find_nuclide

ZR89_HALF_LIFE_S = 78.41 * 3600  # 282276 s
F18_HALF_LIFE_S = 109.77 * 60  # 6586.2 s


# ---------------------------------------------------------------- elapsed_seconds


def test_elapsed_multi_day_counts_the_days() -> None:
    # 89Zr: injection Mon 09:00, scan Sat 09:00 = 5 days = 120 h = 432000 s.
    start, end = datetime(2024, 3, 1, 9, 0), datetime(2024, 3, 6, 9, 0)
    assert elapsed_seconds(start, end) == 432000.0
    # The classic error: a time-of-day difference (or timedelta.seconds) gives 0.
    assert (end - start).seconds == 0


def test_elapsed_multi_day_with_time_of_day_difference() -> None:
    # Injection 1 March 14:30, scan 4 March 10:15: 3 days - 4 h 15 min = 67.75 h = 243900 s.
    # (A time-of-day calculator gives -4.25 h; the timedelta is 2 days 19:45, whose .seconds
    # drops the days: 19.75 h = 71100 s.)
    start, end = datetime(2024, 3, 1, 14, 30), datetime(2024, 3, 4, 10, 15)
    assert elapsed_seconds(start, end) == 243900.0
    assert (end - start).seconds == 71100


def test_elapsed_overnight() -> None:
    # 23:30 to 00:30 the next day is 1 h, not -23 h.
    assert elapsed_seconds(datetime(2024, 3, 1, 23, 30), datetime(2024, 3, 2, 0, 30)) == 3600.0


def test_elapsed_across_month_and_leap_day() -> None:
    # 28 Feb 2024 12:00 -> 1 Mar 2024 12:00 spans 29 Feb (leap year): 48 h.
    assert elapsed_seconds(datetime(2024, 2, 28, 12), datetime(2024, 3, 1, 12)) == 172800.0


def test_elapsed_negative_when_end_is_earlier() -> None:
    assert elapsed_seconds(datetime(2024, 3, 2, 9), datetime(2024, 3, 1, 9)) == -86400.0


def test_missing_date_same_time_of_day_is_not_zero_hours() -> None:
    # A header with only a time of day cannot tell 0 h from 120 h: the same clock time 09:00
    # combined with two different dates gives intervals that differ by 5 days exactly.
    clock = time(9, 0)
    same_day = datetime.combine(datetime(2024, 3, 6).date(), clock)
    five_days_before = same_day - timedelta(days=5)
    scan = datetime(2024, 3, 6, 9, 0)
    assert elapsed_seconds(same_day, scan) == 0.0
    assert elapsed_seconds(five_days_before, scan) == 432000.0


# ---------------------------------------------------------------- decay_factor


def test_decay_factor_89zr_five_days_by_hand() -> None:
    # 2^(-120 / 78.41) = 2^(-1.5304170) = 0.3461773
    assert decay_factor(120 * 3600, ZR89_HALF_LIFE_S) == pytest.approx(0.3461773, rel=1e-6)


def test_decay_factor_18f_one_hour_by_hand() -> None:
    # 2^(-3600 / 6586.2) = 2^(-0.5465974) = 0.6846329
    assert decay_factor(3600, F18_HALF_LIFE_S) == pytest.approx(0.6846329, rel=1e-6)


def test_decay_factor_matches_exponential_law() -> None:
    # Different method: exp(-lambda t), lambda = ln 2 / T.
    t = 7 * 24 * 3600.0
    expected = math.exp(-math.log(2) / ZR89_HALF_LIFE_S * t)
    assert decay_factor(t, ZR89_HALF_LIFE_S) == pytest.approx(expected, rel=1e-12)


def test_decay_factor_array_and_negative_time() -> None:
    out = decay_factor([0.0, F18_HALF_LIFE_S, -F18_HALF_LIFE_S], F18_HALF_LIFE_S)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [1.0, 0.5, 2.0], rtol=1e-12)


@pytest.mark.parametrize("half_life_s", [0.0, -1.0])
def test_decay_factor_rejects_non_positive_half_life(half_life_s: float) -> None:
    with pytest.raises(ValueError, match="half_life_s must be positive"):
        decay_factor(10.0, half_life_s)


@given(
    t1=st.floats(0.0, 30 * 24 * 3600.0),
    t2=st.floats(0.0, 30 * 24 * 3600.0),
    half_life_s=st.sampled_from([n.half_life_s for n in NUCLIDES.values()]),
)
def test_decay_factor_monotone_in_delay(t1: float, t2: float, half_life_s: float) -> None:
    early, late = sorted((t1, t2))
    assert decay_factor(late, half_life_s) <= decay_factor(early, half_life_s)


@given(
    half_lives=st.floats(0.0, 50.0),
    half_life_s=st.floats(60.0, 10 * 24 * 3600.0),
)
def test_decay_factor_halves_per_half_life(half_lives: float, half_life_s: float) -> None:
    # Within 50 half-lives (factors >= 2^-50, far from float underflow).
    t = half_lives * half_life_s
    ratio = decay_factor(t + half_life_s, half_life_s) / decay_factor(t, half_life_s)
    assert ratio == pytest.approx(0.5, rel=1e-9)


# ---------------------------------------------------------------- frame_decay_correction


def test_frame_decay_correction_by_hand() -> None:
    # 18F, 600 s frame: x = ln2 x 600 / 6586.2 = 0.06314541; 1 - e^-x = 0.06119305;
    # x / (1 - e^-x) = 1.0319050
    assert frame_decay_correction(600, F18_HALF_LIFE_S) == pytest.approx(1.0319050, rel=1e-6)


@pytest.mark.parametrize("duration_s", [60.0, 600.0, 1800.0])
def test_frame_decay_correction_against_numerical_mean(duration_s: float) -> None:
    # Different method: the frame mean of 2^(-t/T) over [0, D] by quadrature; the correction is
    # its reciprocal (activity at frame start / mean activity over the frame).
    mean, _ = quad(lambda t: 2.0 ** (-t / F18_HALF_LIFE_S), 0.0, duration_s)
    expected = 1.0 / (mean / duration_s)
    assert frame_decay_correction(duration_s, F18_HALF_LIFE_S) == pytest.approx(expected, 1e-10)


@pytest.mark.parametrize("duration_s", [0.0, -5.0])
def test_frame_decay_correction_zero_length_is_one(duration_s: float) -> None:
    assert frame_decay_correction(duration_s, F18_HALF_LIFE_S) == 1.0


# ---------------------------------------------------------------- nuclides


@pytest.mark.parametrize(
    "text",
    ["89Zr", "Zr89", "Zr-89", "^89^Zirconium", "Zirconium-89", "89-Zr", "zr89", " 89 zr "],
)
def test_find_nuclide_spellings_of_89zr(text: str) -> None:
    nuclide = find_nuclide(text)
    assert nuclide.name == "89Zr"
    assert nuclide.half_life_h == 78.41  # NNDC: 78.41 h
    assert nuclide.is_long_lived
    assert nuclide.bids_name == "Zr89"


def test_find_nuclide_short_lived_18f() -> None:
    nuclide = find_nuclide("^18^Fluorine")
    assert nuclide.half_life_s == pytest.approx(6586.2)  # 109.77 min x 60
    assert not nuclide.is_long_lived


@pytest.mark.parametrize("text", ["Fluorodeoxyglucose", "99mTc", "", "89"])
def test_find_nuclide_unknown_raises(text: str) -> None:
    with pytest.raises(InputError, match="unknown radionuclide"):
        find_nuclide(text)


def test_long_lived_threshold_is_11_5_hours() -> None:
    # IBSI SUV manual: injection dates are repaired only below 11.5 h (updated from 24 h):
    # 64Cu (12.7 h), 89Zr (78.41 h), 124I (4.176 d) and 177Lu (6.647 d) are long-lived.
    assert LONG_LIVED_HALF_LIFE_S == 41400.0
    long_lived = sorted(n.name for n in NUCLIDES.values() if n.is_long_lived)
    assert long_lived == ["124I", "177Lu", "64Cu", "89Zr"]
