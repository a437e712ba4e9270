"""Body-size measures that SUVs are normalised by.

Body mass index, lean body mass (Janmahasatian et al. 2005, the formula QIBA and PERCIST use
for SUL) and body surface area (Du Bois & Du Bois 1916). Inputs are validated: a weight or
height that is not a positive finite number raises :class:`~immunopet.errors.SuvError`.

References
----------
.. [1] Janmahasatian S, Duffull SB, Ash S, Ward LC, Byrne NM, Green B. Quantification of lean
   bodyweight. Clin Pharmacokinet. 2005;44(10):1051-1065.
.. [2] Du Bois D, Du Bois EF. A formula to estimate the approximate surface area if height and
   weight be known. Arch Intern Med. 1916;17:863-871.
"""

from __future__ import annotations

import math
from typing import Literal

from immunopet.errors import SuvError

__all__ = [
    "compute_bmi_kg_m2",
    "compute_body_surface_area_m2",
    "compute_lean_body_mass_kg",
]

Sex = Literal["M", "F"]


def _check_positive(value: float, name: str, unit: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise SuvError(
            "must be a positive finite number",
            tag=name,
            value=value,
            expected=f"a positive value in {unit}",
        )
    return number


def compute_bmi_kg_m2(weight_kg: float, height_m: float) -> float:
    """Body mass index.

    .. math:: \\mathrm{BMI} = W / H^2

    Parameters
    ----------
    weight_kg : float, kg
    height_m : float, m

    Returns
    -------
    float, kg/m²

    Examples
    --------
    >>> compute_bmi_kg_m2(80.0, 2.0)
    20.0
    """
    weight = _check_positive(weight_kg, "weight_kg", "kg")
    height = _check_positive(height_m, "height_m", "m")
    return weight / height**2


def compute_lean_body_mass_kg(weight_kg: float, height_m: float, sex: Sex) -> float:
    """Lean body mass by the Janmahasatian (2005) formula.

    .. math::

        \\mathrm{LBM}_{male} = \\frac{9270\\,W}{6680 + 216\\,\\mathrm{BMI}}, \\qquad
        \\mathrm{LBM}_{female} = \\frac{9270\\,W}{8780 + 244\\,\\mathrm{BMI}}

    Parameters
    ----------
    weight_kg : float, kg
    height_m : float, m
    sex : {"M", "F"}

    Returns
    -------
    float, kg

    Raises
    ------
    SuvError
        When weight or height is not positive or ``sex`` is not ``"M"`` or ``"F"``.

    Examples
    --------
    >>> round(compute_lean_body_mass_kg(80.0, 2.0, "M"), 4)  # BMI 20
    67.4182
    """
    bmi = compute_bmi_kg_m2(weight_kg, height_m)
    weight = float(weight_kg)
    if sex == "M":
        return 9270.0 * weight / (6680.0 + 216.0 * bmi)
    if sex == "F":
        return 9270.0 * weight / (8780.0 + 244.0 * bmi)
    raise SuvError(
        "lean body mass needs the sex",
        tag="(0010,0040) PatientSex",
        value=sex,
        expected="'M' or 'F'",
    )


def compute_body_surface_area_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area by the Du Bois (1916) formula.

    .. math:: \\mathrm{BSA} = 0.007184\\, W^{0.425}\\, H_{cm}^{0.725}

    Parameters
    ----------
    weight_kg : float, kg
    height_m : float, m
        Converted to cm for the formula.

    Returns
    -------
    float, m²

    Examples
    --------
    >>> round(compute_body_surface_area_m2(70.0, 1.75), 4)
    1.8481
    """
    weight = _check_positive(weight_kg, "weight_kg", "kg")
    height_cm = _check_positive(height_m, "height_m", "m") * 100.0
    return 0.007184 * weight**0.425 * height_cm**0.725
