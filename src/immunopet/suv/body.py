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
    "JAMES_LEGACY_MALE_COEFFICIENT",
    "NORMALISATION_SUV_TYPE",
    "PLAIN_LBM_ASSUMPTION",
    "SUV_TYPES",
    "compute_bmi_kg_m2",
    "compute_body_surface_area_m2",
    "compute_ideal_body_weight_kg",
    "compute_lean_body_mass_james_kg",
    "compute_lean_body_mass_kg",
    "normaliser",
]

Sex = Literal["M", "F", "O"]

SUV_TYPES = ("BW", "LBM", "LBMJAMES128", "LBMJANMA", "IBW", "BSA")
"""(0054,1006) SUV Type values understood (IBSI SUV manual).

Plain ``LBM`` names no formula in DICOM PS3.3 (``LBMJAMES128`` and ``LBMJANMA`` were added to
say which one); it is read as James with the multiplier 128, the same as ``LBMJAMES128``, and
the derivation carries a warning naming that assumption (:data:`PLAIN_LBM_ASSUMPTION`)."""

PLAIN_LBM_ASSUMPTION = (
    "names no lean-body-mass formula (DICOM PS3.3); read as James with multiplier 128 "
    "(= LBMJAMES128)"
)
"""The assumption made for (0054,1006) SUVType ``LBM``, quoted in the derivation's warning."""

JAMES_LEGACY_MALE_COEFFICIENT = 120.0
"""The male coefficient of the older James variant (1.10 W - 120 (W/H_cm)^2) that some software
(e.g. MIRP, MITK) assumes for a plain ``LBM``; used only to size the warning."""

NORMALISATION_SUV_TYPE = {"bw": "BW", "lbm": "LBMJANMA", "bsa": "BSA", "ibw": "IBW"}
"""immunopet's normalisations as SUV Types (``lbm`` is Janmahasatian, as QIBA/PERCIST SUL)."""


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
    sex : {"M", "F", "O"}
        ``"O"`` gives the mean of the male and female values (IBSI SUV manual).

    Returns
    -------
    float, kg

    Raises
    ------
    SuvError
        When weight or height is not positive or ``sex`` is not ``"M"``, ``"F"`` or ``"O"``.

    Examples
    --------
    >>> round(compute_lean_body_mass_kg(80.0, 2.0, "M"), 4)  # BMI 20
    67.4182
    """
    bmi = compute_bmi_kg_m2(weight_kg, height_m)
    weight = float(weight_kg)
    male = 9270.0 * weight / (6680.0 + 216.0 * bmi)
    female = 9270.0 * weight / (8780.0 + 244.0 * bmi)
    return _by_sex(male, female, sex)


def _by_sex(male: float, female: float, sex: str) -> float:
    """The male or female value; sex ``"O"`` is their mean (IBSI SUV manual)."""
    if sex == "M":
        return male
    if sex == "F":
        return female
    if sex == "O":
        return (male + female) / 2.0
    raise SuvError(
        "this normalisation needs the sex",
        tag="(0010,0040) PatientSex",
        value=sex,
        expected="'M', 'F' or 'O' (or the --sex override)",
    )


def compute_lean_body_mass_james_kg(
    weight_kg: float, height_m: float, sex: Sex, *, male_coefficient: float = 128.0
) -> float:
    """Lean body mass by the James (1976) formula (DICOM/IBSI ``LBMJAMES128``; plain ``LBM``).

    .. math::

        \\mathrm{LBM}_{male} = 1.10\\,W - 128\\,(W/H_{cm})^2, \\qquad
        \\mathrm{LBM}_{female} = 1.07\\,W - 148\\,(W/H_{cm})^2

    Sex ``"O"`` gives the mean of the two.

    Parameters
    ----------
    weight_kg : float, kg
    height_m : float, m
    sex : {"M", "F", "O"}
    male_coefficient : float, optional
        128 (James; ``LBMJAMES128``). 120 gives the older variant some software uses for a plain
        ``LBM`` (:data:`JAMES_LEGACY_MALE_COEFFICIENT`); only the warning uses it.

    Returns
    -------
    float, kg

    Examples
    --------
    >>> round(compute_lean_body_mass_james_kg(80.0, 2.0, "M"), 4)  # 88 - 128 * 0.16
    67.52
    """
    weight = _check_positive(weight_kg, "weight_kg", "kg")
    height_cm = _check_positive(height_m, "height_m", "m") * 100.0
    ratio = (weight / height_cm) ** 2
    return _by_sex(1.10 * weight - male_coefficient * ratio, 1.07 * weight - 148.0 * ratio, sex)


def compute_ideal_body_weight_kg(height_m: float, sex: Sex) -> float:
    """Ideal body weight as the IBSI SUV manual gives it.

    .. math::

        \\mathrm{IBW}_{male} = 48.0 + 1.06\\,(H_{cm} - 152), \\qquad
        \\mathrm{IBW}_{female} = 45.5 + 0.91\\,(H_{cm} - 152)

    Sex ``"O"`` gives the mean of the two.

    Parameters
    ----------
    height_m : float, m
    sex : {"M", "F", "O"}

    Returns
    -------
    float, kg

    Examples
    --------
    >>> round(compute_ideal_body_weight_kg(1.80, "M"), 4)  # 48 + 1.06 * 28
    77.68
    """
    height_cm = _check_positive(height_m, "height_m", "m") * 100.0
    return _by_sex(48.0 + 1.06 * (height_cm - 152.0), 45.5 + 0.91 * (height_cm - 152.0), sex)


def normaliser(kind: str, weight_kg: float, height_m: float | None, sex: Sex | None) -> float:
    """The body-size quantity an SUV is normalised by, in g (masses) or cm² (BSA).

    Parameters
    ----------
    kind : str
        A normalisation (``bw``, ``lbm`` = Janmahasatian, ``ibw``, ``bsa``) or a (0054,1006)
        SUV Type (:data:`SUV_TYPES`).
    weight_kg : float, kg
    height_m : float or None, m
    sex : {"M", "F", "O"} or None

    Returns
    -------
    float, g or cm²

    Raises
    ------
    SuvError
        When height or sex is needed and missing (names the override flag).

    Examples
    --------
    >>> normaliser("bw", 70.0, None, None)
    70000.0
    """
    key = NORMALISATION_SUV_TYPE.get(kind, kind.upper())
    if key == "BW":
        return 1000.0 * _check_positive(weight_kg, "weight_kg", "kg")
    if height_m is None:
        raise SuvError(
            f"SUV normalisation {kind!r} needs the height",
            tag="(0010,1020) PatientSize",
            value="missing",
            expected="height in m (or the --height-m override)",
        )
    if key == "BSA":
        return 1e4 * compute_body_surface_area_m2(weight_kg, height_m)
    if sex is None:
        raise SuvError(
            f"SUV normalisation {kind!r} needs the sex",
            tag="(0010,0040) PatientSex",
            value="missing",
            expected="'M', 'F' or 'O' (or the --sex override)",
        )
    if key in ("LBM", "LBMJAMES128"):
        return 1000.0 * compute_lean_body_mass_james_kg(weight_kg, height_m, sex)
    if key == "LBMJANMA":
        return 1000.0 * compute_lean_body_mass_kg(weight_kg, height_m, sex)
    if key == "IBW":
        return 1000.0 * compute_ideal_body_weight_kg(height_m, sex)
    raise SuvError(
        "unknown SUV normalisation",
        tag="(0054,1006) SuvType",
        value=kind,
        expected="bw, lbm, bsa, ibw or one of " + ", ".join(SUV_TYPES),
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
