"""Patlak analysis against a hand-worked case and the analytic Ki of a compartment model.

The compartment model is integrated here with SciPy's ``solve_ivp`` (independent of the code
under test); its Patlak slope is :math:`K_i = K_1 k_3 / (k_2 + k_3)` (Patlak, Blasberg &
Fenstermacher 1983) and its late intercept :math:`V_B (1-\\mathrm{Hct}) + K_1 k_2/(b(b-a_s))`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from immunopet.analysis.kinetics import (
    KINETICS_COLUMNS,
    KineticsSettings,
    PlasmaInput,
    fit_patlak,
    image_plasma_input,
    patlak_table,
    sampled_plasma_input,
)
from immunopet.errors import InputError
from immunopet.suv.samples import percent_ia_per_l_to_suv_bw, suv_bw_to_fraction_ia_per_ml

HCT = 0.4
WEIGHT_KG = 75.0
# plasma SUV: fast and slow exponential (SUV, 1/h)
PLASMA = (6.0, 0.06, 6.0, 0.0065)
K1, K2, K3, VB = 0.05, 0.3, 0.02, 0.05
KI_UL_PER_G_PER_H = K1 * K3 / (K2 + K3) * 1000.0  # 3.125


def _plasma(t: np.ndarray | float) -> np.ndarray:
    a1, r1, a2, r2 = PLASMA
    return np.asarray(a1 * np.exp(-r1 * np.asarray(t)) + a2 * np.exp(-r2 * np.asarray(t)))


def _tissue(hours: np.ndarray) -> np.ndarray:
    """Irreversible two-tissue model plus blood volume, integrated numerically."""

    def rhs(t: float, y: np.ndarray) -> list[float]:
        return [K1 * float(_plasma(t)) - (K2 + K3) * y[0], K3 * y[0]]

    sol = solve_ivp(rhs, (0.0, float(hours[-1])), [0.0, 0.0], t_eval=hours, rtol=1e-10, atol=1e-12)
    return VB * (1 - HCT) * _plasma(hours) + sol.y[0] + sol.y[1]


# ---------------------------------------------------------------------------- hand-worked
def test_constant_plasma_hand_worked() -> None:
    # Cp = 2 throughout; tissue = Ki * 2 t + V * 2 with Ki = 0.01 /h, V = 0.5:
    # at 24, 72, 120 h the tissue is 1.48, 2.44, 3.40; Patlak x = t, y = 0.01 t + 0.5
    flat = image_plasma_input(
        np.array([24.0, 72.0, 120.0]),
        np.array([1.2, 1.2, 1.2]),
        KineticsSettings(plasma_to_blood_ratio=2.0 / 1.2),
    )
    assert flat is not None
    fit = fit_patlak(np.array([24.0, 72.0, 120.0]), np.array([1.48, 2.44, 3.40]), flat)
    assert fit.x == pytest.approx((24.0, 72.0, 120.0))
    assert fit.y == pytest.approx((0.74, 1.22, 1.70))
    assert fit.slope_per_h == pytest.approx(0.01)
    assert fit.ki_ul_per_g_per_h() == pytest.approx(10.0)
    assert fit.ki_ul_per_g_per_h(1.04) == pytest.approx(10.0 / 1.04)
    assert fit.vt_ml_per_g() == pytest.approx(0.5)
    assert fit.r == pytest.approx(1.0)
    assert fit.n_points == 3


def test_interpolated_input_integral_by_hand() -> None:
    curve = PlasmaInput("image", "interpolation", (1.0, 3.0), (4.0, 1.0))
    # 0-1 h constant 4 -> 4; 1-3 h exponential 4 -> 1: (4 - 1) * 2 / ln 4
    assert curve.integral(3.0)[0] == pytest.approx(4.0 + 6.0 / math.log(4.0))
    assert curve.integral(0.5)[0] == pytest.approx(2.0)
    assert curve.concentration(2.0)[0] == pytest.approx(2.0)  # geometric mean halfway
    # after 3 h the last rate (ln 4 / 2 per h) continues: 3-5 h adds (1 - 1/4) / (ln 4 / 2)
    assert curve.concentration(5.0)[0] == pytest.approx(0.25)
    assert curve.integral(5.0)[0] == pytest.approx(
        4.0 + 6.0 / math.log(4.0) + 0.75 / (math.log(4.0) / 2)
    )
    rising = PlasmaInput("image", "interpolation", (1.0, 2.0), (1.0, 2.0))
    assert rising.concentration(10.0)[0] == pytest.approx(2.0)  # no extrapolated rise
    assert rising.integral(2.0)[0] == pytest.approx(1.0 + 1.0 / math.log(2.0))


def test_suv_fractions_by_hand() -> None:
    # 10 %IA/L = 1e-4 IA/mL; x 75000 g = 7.5
    assert percent_ia_per_l_to_suv_bw(10.0, 75.0) == pytest.approx(7.5)
    assert suv_bw_to_fraction_ia_per_ml(7.5, 75.0) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="weight_kg"):
        percent_ia_per_l_to_suv_bw(1.0, 0.0)


# ---------------------------------------------------------------------------- model Ki
def test_exact_input_recovers_the_analytic_ki() -> None:
    hours = np.array([48.0, 72.0, 120.0, 168.0])
    exact = PlasmaInput("sampled", "biexponential", (), (), biexponential=PLASMA)
    fit = fit_patlak(hours, _tissue(hours), exact)
    assert fit.ki_ul_per_g_per_h() == pytest.approx(KI_UL_PER_G_PER_H, rel=0.01)
    b = K2 + K3
    late_intercept = VB * (1 - HCT) + K1 * K2 / (b * (b - PLASMA[3]))
    assert fit.vt_ml_per_g() == pytest.approx(late_intercept, rel=0.02)
    assert fit.r > 0.999


def _samples(hours: tuple[float, ...], matrix: str, scale: float = 1.0) -> pd.DataFrame:
    plasma_suv = _plasma(np.asarray(hours))
    percent = plasma_suv * 100.0 / WEIGHT_KG / scale  # inverse of the SUV conversion
    return pd.DataFrame(
        {
            "patient": "P01",
            "series": "s1",
            "hours_pi": hours,
            "matrix": matrix,
            "percent_ia_per_l": percent,
        }
    )


def test_sampled_biexponential_input_recovers_ki() -> None:
    samples = _samples((0.0833, 0.5, 1.0, 2.0, 72.0, 120.0, 168.0), "plasma")
    curve = sampled_plasma_input(samples, WEIGHT_KG)
    assert curve is not None and curve.method == "biexponential"
    assert curve.biexponential == pytest.approx(PLASMA, rel=1e-4)
    hours = np.array([24.0, 72.0, 120.0, 168.0])
    fit = fit_patlak(hours, _tissue(hours), curve)
    assert fit.ki_ul_per_g_per_h() == pytest.approx(KI_UL_PER_G_PER_H, rel=0.03)
    # a 1 h scan lies before the reversible compartment (k2 + k3 = 0.32/h) has equilibrated:
    # the line through it is steeper, here by about 9 %
    hours = np.array([1.0, 72.0, 120.0, 168.0])
    early = fit_patlak(hours, _tissue(hours), curve)
    assert early.ki_ul_per_g_per_h() == pytest.approx(KI_UL_PER_G_PER_H * 1.09, rel=0.02)


def test_whole_blood_samples_use_the_plasma_to_blood_ratio() -> None:
    samples = _samples((0.0833, 0.5, 72.0, 120.0, 168.0), "whole_blood", scale=1 / (1 - HCT))
    curve = sampled_plasma_input(samples, WEIGHT_KG, KineticsSettings())
    assert curve is not None
    assert curve.concentration(72.0)[0] == pytest.approx(float(_plasma(72.0)), rel=1e-3)


def test_few_samples_fall_back_to_interpolation_with_a_note() -> None:
    curve = sampled_plasma_input(_samples((0.5, 72.0, 120.0), "plasma"), WEIGHT_KG)
    assert curve is not None and curve.method == "interpolation"
    assert "< 4" in curve.warning


def test_image_derived_input_within_25_percent() -> None:
    hours = np.array([1.0, 72.0, 120.0, 168.0])
    blood_suv = _plasma(hours) * (1 - HCT)
    curve = image_plasma_input(hours, blood_suv)
    assert curve is not None
    fit = fit_patlak(hours, _tissue(hours), curve)
    assert fit.ki_ul_per_g_per_h() == pytest.approx(KI_UL_PER_G_PER_H, rel=0.25)


# ---------------------------------------------------------------------------- table
def _measurements(hours: tuple[float, ...]) -> pd.DataFrame:
    t = np.asarray(hours)
    rows = []
    for voi, kind, values in (
        ("blood_pool", "organ", _plasma(t) * (1 - HCT)),
        ("liver", "organ", _tissue(t)),
        ("3", "lesion", 2.0 * _tissue(t)),
    ):
        for h, v in zip(t, values, strict=True):
            rows.append(
                {
                    "patient": "P01",
                    "series": "s1",
                    "hours_pi": h,
                    "voi": voi,
                    "kind": kind,
                    "suv_mean": v,
                }
            )
    return pd.DataFrame(rows)


def test_patlak_table_sampled_and_image() -> None:
    measurements = _measurements((24.0, 72.0, 120.0, 168.0))
    scans = pd.DataFrame({"patient": ["P01"], "series": ["s1"], "weight_kg": [WEIGHT_KG]})
    blood = _samples((0.0833, 0.5, 1.0, 2.0, 72.0, 120.0, 168.0), "plasma")
    table = patlak_table(measurements, blood=blood, scans=scans)
    assert tuple(table.columns) == KINETICS_COLUMNS
    assert list(table["voi"]) == ["3", "liver"]  # the blood pool is the input
    liver = table.set_index("voi").loc["liver"]
    assert liver["input"] == "sampled" and liver["plasma_method"] == "biexponential"
    assert liver["ki_ul_per_g_per_h"] == pytest.approx(KI_UL_PER_G_PER_H, rel=0.03)
    assert liver["n_points"] == 4 and liver["hours_first"] == 24 and liver["hours_last"] == 168
    lesion = table.set_index("voi").loc["3"]
    assert lesion["ki_ul_per_g_per_h"] == pytest.approx(2 * liver["ki_ul_per_g_per_h"])
    image = patlak_table(measurements, settings=KineticsSettings(input="image"))
    assert set(image["input"]) == {"image"}
    auto_without_samples = patlak_table(measurements)
    assert set(auto_without_samples["input"]) == {"image"}
    assert image["ki_ul_per_g_per_h"].iloc[1] == pytest.approx(KI_UL_PER_G_PER_H, rel=0.25)


def test_flags() -> None:
    two = patlak_table(_measurements((72.0, 120.0)))
    assert two["ki_ul_per_g_per_h"].isna().all()
    assert (two["flag"] == "fewer than 3 time points").all()
    assert (two["n_points"] == 2).all()
    no_input = _measurements((1.0, 72.0, 120.0))
    no_input = no_input[no_input["voi"] != "blood_pool"]
    flagged = patlak_table(no_input)
    assert flagged["flag"].str.startswith("no plasma input").all()
    assert (flagged["input"] == "").all()
    noisy = _measurements((1.0, 72.0, 120.0, 168.0))
    liver = noisy["voi"] == "liver"
    noisy.loc[liver, "suv_mean"] = [5.0, 1.0, 9.0, 1.0]
    table = patlak_table(noisy).set_index("voi")
    assert table.loc["liver", "r"] < 0.9
    assert "r < 0.9" in table.loc["liver", "flag"]


def test_refusals() -> None:
    with pytest.raises(InputError, match="suv_mean"):
        patlak_table(_measurements((1.0,)).drop(columns="suv_mean"))
    with pytest.raises(InputError, match="tissue_density_g_per_ml"):
        KineticsSettings(tissue_density_g_per_ml=0.0)
    with pytest.raises(InputError, match="input"):
        KineticsSettings(input="aorta")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="densty"):
        KineticsSettings.from_mapping({"densty": 1.0})
    assert KineticsSettings.from_mapping({"min_r": 0.8}).min_r == 0.8
