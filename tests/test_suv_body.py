"""Body-size formulas against hand calculations (Janmahasatian 2005, Du Bois 1916)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunopet.errors import SuvError
from immunopet.suv.body import (
    compute_bmi_kg_m2,
    compute_body_surface_area_m2,
    compute_lean_body_mass_kg,
)


def test_bmi_by_hand() -> None:
    # 80 kg / (1.80 m)² = 80 / 3.24 = 24.691358 kg/m²
    assert compute_bmi_kg_m2(80.0, 1.80) == pytest.approx(24.691358, rel=1e-7)


def test_lean_body_mass_male_by_hand() -> None:
    # BMI = 24.691358; 216 x BMI = 5333.3333; LBM = 9270 x 80 / (6680 + 5333.3333)
    #     = 741600 / 12013.3333 = 61.731410 kg
    assert compute_lean_body_mass_kg(80.0, 1.80, "M") == pytest.approx(61.731410, rel=1e-7)


def test_lean_body_mass_female_by_hand() -> None:
    # BMI = 60 / 1.65² = 22.038567; 244 x BMI = 5377.4105; LBM = 9270 x 60 / (8780 + 5377.4105)
    #     = 556200 / 14157.4105 = 39.286846 kg
    assert compute_lean_body_mass_kg(60.0, 1.65, "F") == pytest.approx(39.286846, rel=1e-7)


def test_lean_body_mass_janmahasatian_published_shape() -> None:
    # Same weight and height: the female formula gives less lean mass than the male one.
    assert compute_lean_body_mass_kg(70.0, 1.70, "F") < compute_lean_body_mass_kg(70.0, 1.70, "M")


def test_body_surface_area_by_hand() -> None:
    # Male 80 kg, 180 cm: 0.007184 x 80^0.425 x 180^0.725 = 0.007184 x 6.438923 x 43.159119
    #     = 1.996421 m²
    assert compute_body_surface_area_m2(80.0, 1.80) == pytest.approx(1.996421, rel=1e-6)
    # Female 60 kg, 165 cm: 0.007184 x 5.697893 x 40.520599 = 1.658657 m²
    assert compute_body_surface_area_m2(60.0, 1.65) == pytest.approx(1.658657, rel=1e-6)


def test_body_surface_area_du_bois_reference_adult() -> None:
    # The textbook "standard" adult of 70 kg and 1.75 m has a Du Bois BSA of about 1.85 m².
    assert compute_body_surface_area_m2(70.0, 1.75) == pytest.approx(1.85, abs=0.005)


@pytest.mark.parametrize(
    ("weight_kg", "height_m", "name"),
    [(0.0, 1.7, "weight_kg"), (70.0, -1.0, "height_m"), (math.nan, 1.7, "weight_kg")],
)
def test_non_positive_inputs_raise(weight_kg: float, height_m: float, name: str) -> None:
    with pytest.raises(SuvError, match=name):
        compute_body_surface_area_m2(weight_kg, height_m)
    with pytest.raises(SuvError, match=name):
        compute_lean_body_mass_kg(weight_kg, height_m, "M")


def test_unknown_sex_raises() -> None:
    with pytest.raises(SuvError, match=r"\(0010,0040\) PatientSex"):
        compute_lean_body_mass_kg(70.0, 1.7, "X")  # type: ignore[arg-type]


@given(
    bmi_kg_m2=st.floats(15.0, 60.0),
    height_m=st.floats(1.2, 2.2),
    sex=st.sampled_from(["M", "F"]),
)
def test_lean_body_mass_below_weight(bmi_kg_m2: float, height_m: float, sex: str) -> None:
    # LBM < W  <=>  9270 < 6680 + 216 BMI (male: BMI > 11.99) or 9270 < 8780 + 244 BMI
    # (female: BMI > 2.0); so for every adult BMI >= 15 lean mass is positive and below weight.
    weight_kg = bmi_kg_m2 * height_m**2
    lbm = compute_lean_body_mass_kg(weight_kg, height_m, sex)  # type: ignore[arg-type]
    assert 0 < lbm < weight_kg


def test_lean_body_mass_can_exceed_weight_when_emaciated() -> None:
    # Known limit of the formula: male BMI 7.5 (30 kg, 2 m): 9270 x 30 / (6680 + 1620) = 33.506 kg.
    assert compute_lean_body_mass_kg(30.0, 2.0, "M") == pytest.approx(33.506024, rel=1e-7)
