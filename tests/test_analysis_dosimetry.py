"""Time-integrated activity and residence times against hand calculations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunopet.analysis.dosimetry import (
    RESIDENCE_COLUMNS,
    TIA_COLUMNS,
    DosimetrySettings,
    integrate_activity,
    residence_times,
    time_integrated_activity,
)
from immunopet.errors import InputError

ZR89_HALF_LIFE_H = 78.41


def test_integral_by_hand() -> None:
    # T = 2 h, a = 4 (decay-corrected) at 1 h and 3 h; lambda = ln 2 / 2
    # physical: 4 * 2**-0.5 = 2.828427 at 1 h, 4 * 2**-1.5 = 1.414214 at 3 h
    # head 4 (1 - 2**-0.5) / lambda = 3.380445; trapezoid (2.828427 + 1.414214) = 4.242641;
    # tail 1.414214 / lambda = 4.080558; total 11.703643
    total, tail = integrate_activity(np.array([3.0, 1.0]), np.array([4.0, 4.0]), 2.0)
    assert total == pytest.approx(11.703643, abs=1e-6)
    assert tail == pytest.approx(4.080558 / 11.703643, abs=1e-6)
    # the exact integral of a constant decay-corrected 4 is 4 / lambda = 11.54156
    assert total == pytest.approx(4 * 2.0 / math.log(2.0), rel=0.02)


def _frames(suv: tuple[float, ...], hours: tuple[float, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    measurements = pd.DataFrame(
        {
            "patient": "P01",
            "series": "s1",
            "hours_pi": hours,
            "voi": "liver",
            "kind": "organ",
            "suv_mean": suv,
        }
    )
    scans = pd.DataFrame(
        {"patient": ["P01"], "series": ["s1"], "weight_kg": [75.0], "injected_activity_bq": [37e6]}
    )
    return measurements, scans


def test_residence_time_of_a_constant_organ() -> None:
    # SUV 7.5 at 75 kg = 1e-4 of the IA per mL, constant (decay-corrected): exact integral
    # 1e-4 T / ln 2 per mL = 0.0113122 h/mL; liver 1800 g -> 20.36 h, x 37 MBq -> 753.4 MBq h
    measurements, scans = _frames((7.5,) * 4, (1.0, 72.0, 120.0, 168.0))
    tia = time_integrated_activity(measurements, scans)
    assert tuple(tia.columns) == TIA_COLUMNS
    exact = 1e-4 * ZR89_HALF_LIFE_H / math.log(2.0)
    # trapezoids over 48-71 h gaps of a convex (decaying) curve overestimate: about 2 %
    assert tia["tiac_h_per_ml"].iloc[0] == pytest.approx(exact, rel=0.025)
    assert tia["tiac_h_per_ml"].iloc[0] > exact
    residence = residence_times(tia)
    assert tuple(residence.columns) == RESIDENCE_COLUMNS
    row = residence.iloc[0]
    assert row["source_organ"] == "Liver" and row["mass_g"] == 1800.0
    assert row["residence_time_h"] == pytest.approx(exact * 1800.0, rel=0.025)
    assert row["cumulated_activity_mbq_h"] == pytest.approx(row["residence_time_h"] * 37.0)
    heavier = residence_times(tia, DosimetrySettings(organ_mass_g={"liver": 3600.0}))
    assert heavier["residence_time_h"].iloc[0] == pytest.approx(2 * row["residence_time_h"])


def test_missing_weight_is_refused() -> None:
    measurements, scans = _frames((7.5,), (72.0,))
    scans["weight_kg"] = float("nan")
    with pytest.raises(InputError, match="P01/s1"):
        time_integrated_activity(measurements, scans)
    with pytest.raises(InputError, match="suv_mean"):
        time_integrated_activity(measurements.drop(columns="suv_mean"), scans)
