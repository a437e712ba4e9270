"""SUV factors from a NIfTI's PET-BIDS sidecar: the same record as for DICOM.

:func:`derive_suv_from_sidecar` reads the fields :func:`immunopet.io.bids.pet_sidecar` writes
(and any PET-BIDS sidecar with the standard fields) and returns a
:class:`~immunopet.suv.record.SuvDerivation` whose factors turn the NIfTI's voxel values into
SUV decay-corrected to injection, for every normalisation that the sidecar (or the overrides)
allow.

Notes
-----
With :math:`t_i` = ``InjectionStart``, :math:`t_c` = ``ImageDecayCorrectionTime`` (both
relative to ``TimeZero``), :math:`T` the half-life, :math:`A` = ``InjectedRadioactivity`` in Bq
and :math:`N_X` the body-size normaliser of normalisation X (g, or cm² for BSA; see
:func:`~immunopet.suv.body.normaliser`), a Bq/mL value :math:`C(t_c)` gives

.. math:: \\mathrm{SUV}_X = C(t_c) \\cdot \\frac{N_X}{A} \\cdot 2^{(t_c - t_i)/T}.

An image already in SUV (``Units`` ``g/mL`` or ``cm2/mL``, normalisation S in
``ImmunoPET.normalisation``, default ``bw``) gives :math:`\\mathrm{SUV}_X = v \\cdot N_X / N_S`
(times :math:`A_{sidecar}/A_{override}` with an activity override). Normalisers are read from
``ImmunoPET.normalisers`` (written by immunopet), or computed from the weight, height and sex
in the sidecar or the overrides. For images not decay-corrected, the single frame
(``FrameTimesStart`` :math:`t_0`, ``FrameDuration`` :math:`D`) gives
:math:`C(t_0) = \\bar C \\, \\lambda D / (1 - e^{-\\lambda D})`, with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from datetime import timedelta
from os import PathLike
from typing import Any

from immunopet.errors import InputError, SuvError, SuvWarning
from immunopet.suv.body import normaliser
from immunopet.suv.decay import frame_decay_correction
from immunopet.suv.nuclides import find_nuclide
from immunopet.suv.record import NORMALISATIONS, SuvDerivation, SuvOverrides

__all__ = ["IMMUNOPET_KEY", "SUV_SIDECAR_UNITS", "derive_suv_from_sidecar"]

IMMUNOPET_KEY = "ImmunoPET"
SUV_SIDECAR_UNITS = {"bw": "g/mL", "lbm": "g/mL", "ibw": "g/mL", "bsa": "cm2/mL"}
"""The sidecar ``Units`` of an SUV image of each normalisation."""

ACTIVITY_UNIT_BQ: dict[str, float] = {
    "Bq": 1.0,
    "kBq": 1e3,
    "MBq": 1e6,
    "GBq": 1e9,
    "uCi": 3.7e4,
    "µCi": 3.7e4,
    "mCi": 3.7e7,
}
"""Accepted ``InjectedRadioactivityUnits`` and their value in Bq."""


def _require(sidecar: Mapping[str, Any], key: str, source: Any, expected: str) -> Any:
    if key not in sidecar or sidecar[key] is None:
        raise SuvError(
            "sidecar field needed for the SUV is missing",
            file=source,
            tag=key,
            value="missing",
            expected=expected,
        )
    return sidecar[key]


def _number(value: Any, key: str, source: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SuvError("sidecar field is not a number", file=source, tag=key, value=value)
    if positive and value <= 0:
        raise SuvError(
            "sidecar field must be positive", file=source, tag=key, value=value, expected="> 0"
        )
    return float(value)


def _own(sidecar: Mapping[str, Any]) -> Mapping[str, Any]:
    own = sidecar.get(IMMUNOPET_KEY)
    return own if isinstance(own, Mapping) else {}


def _half_life(
    sidecar: Mapping[str, Any], overrides: SuvOverrides, source: Any
) -> tuple[float, str, str | None]:
    own = _own(sidecar)
    name = sidecar.get("TracerRadionuclide")
    nuclide = None
    if isinstance(name, str) and name not in ("", "n/a"):
        try:
            nuclide = find_nuclide(name).name
        except InputError:
            nuclide = None
    if overrides.half_life_s is not None:
        return (
            _number(overrides.half_life_s, "--half-life-s", source, positive=True),
            ("override"),
            nuclide,
        )
    if own.get("half_life_s") is not None:
        key = f"{IMMUNOPET_KEY}.half_life_s"
        return _number(own["half_life_s"], key, source, positive=True), key, nuclide
    value = _require(sidecar, "TracerRadionuclide", source, "a nuclide such as 'Zr89'")
    try:
        found = find_nuclide(str(value))
    except InputError as exc:
        raise SuvError(
            "unknown radionuclide",
            file=source,
            tag="TracerRadionuclide",
            value=value,
            expected=f"{exc.expected} (or --half-life-s)",
        ) from exc
    return found.half_life_s, "TracerRadionuclide", found.name


def _decay_term(
    sidecar: Mapping[str, Any], half_life_s: float, source: Any, notes: list[str]
) -> tuple[float, float, str]:
    """The factor moving the image's decay reference back to injection, and the delay (s)."""
    if "InjectionStart" in sidecar:
        injection_start_s = _number(sidecar["InjectionStart"], "InjectionStart", source)
    else:
        injection_start_s = 0.0
        notes.append(f"{source}: InjectionStart missing; injection taken at TimeZero (0 s)")
    corrected = _require(sidecar, "ImageDecayCorrected", source, "true or false")
    if not isinstance(corrected, bool):
        raise SuvError(
            "sidecar field is not a boolean",
            file=source,
            tag="ImageDecayCorrected",
            value=corrected,
            expected="true or false",
        )
    frame_factor = 1.0
    if corrected:
        correction_time_s = _number(
            _require(sidecar, "ImageDecayCorrectionTime", source, "seconds after TimeZero"),
            "ImageDecayCorrectionTime",
            source,
        )
        rule = "ImageDecayCorrectionTime"
    else:
        starts = _require(sidecar, "FrameTimesStart", source, "one frame start (s)")
        durations = _require(sidecar, "FrameDuration", source, "one frame duration (s)")
        if not isinstance(starts, list) or not isinstance(durations, list) or len(starts) != 1:
            raise SuvError(
                "image is not decay-corrected and is not a single frame",
                file=source,
                tag="FrameTimesStart",
                value=starts,
                expected="ImageDecayCorrected true, or exactly one frame",
            )
        if len(durations) != 1:
            raise SuvError(
                "FrameDuration does not match FrameTimesStart",
                file=source,
                tag="FrameDuration",
                value=durations,
                expected="one duration",
            )
        correction_time_s = _number(starts[0], "FrameTimesStart", source)
        duration_s = _number(durations[0], "FrameDuration", source)
        frame_factor = frame_decay_correction(duration_s, half_life_s)
        note = (
            f"{source}: image not decay-corrected; corrected from its single frame "
            f"(start {correction_time_s:g} s, duration {duration_s:g} s); bed-by-bed start "
            "times of a multi-bed scan are not known from the sidecar"
        )
        warnings.warn(note, SuvWarning, stacklevel=3)
        notes.append(note)
        rule = "FrameTimesStart + frame average (not decay-corrected)"
    delay_s = correction_time_s - injection_start_s
    exponent = delay_s / half_life_s
    if exponent > 60:
        raise SuvError(
            "decay reference is more than 60 half-lives after the injection",
            file=source,
            tag="ImageDecayCorrectionTime",
            value=correction_time_s,
            expected="a time within days of InjectionStart",
        )
    return frame_factor * 2.0**exponent, injection_start_s, rule


def _scan_delay_s(sidecar: Mapping[str, Any], injection_start_s: float) -> float | None:
    value = sidecar.get("ScanStart")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) - injection_start_s


def _activity_bq(sidecar: Mapping[str, Any], source: Any) -> float | None:
    if sidecar.get("InjectedRadioactivity") in (None, "n/a"):
        return None
    activity = _number(sidecar["InjectedRadioactivity"], "InjectedRadioactivity", source)
    if activity <= 0:
        raise SuvError(
            "sidecar field must be positive",
            file=source,
            tag="InjectedRadioactivity",
            value=activity,
            expected="> 0",
        )
    unit = _require(
        sidecar, "InjectedRadioactivityUnits", source, "MBq (or Bq, kBq, GBq, mCi, uCi)"
    )
    if unit not in ACTIVITY_UNIT_BQ:
        raise SuvError(
            "unsupported activity unit",
            file=source,
            tag="InjectedRadioactivityUnits",
            value=unit,
            expected=", ".join(ACTIVITY_UNIT_BQ),
        )
    return activity * ACTIVITY_UNIT_BQ[unit]


def derive_suv_from_sidecar(
    sidecar: Mapping[str, Any],
    *,
    overrides: SuvOverrides | None = None,
    source: str | PathLike[str] | None = None,
) -> SuvDerivation:
    """Derive the voxel value -> SUV factors (decay-corrected to injection) from a sidecar.

    Parameters
    ----------
    sidecar : mapping
        PET-BIDS sidecar content.
    overrides : SuvOverrides, optional
        ``weight_kg``, ``height_m``, ``sex``, ``injected_activity_bq``, ``half_life_s``
        replace the sidecar's; ``injection_datetime`` only dates the record.
    source : path-like, optional
        The sidecar's file, named in error messages.

    Returns
    -------
    SuvDerivation
        ``input_format`` ``"PET-BIDS"``; a factor is ``None`` for a normalisation the sidecar
        cannot give (no height or sex); ``normalisation`` is the stored one for SUV images.

    Raises
    ------
    SuvError
        When a needed field is missing or invalid (the message names ``source`` and the key).
    """
    overrides = SuvOverrides() if overrides is None else overrides
    own = _own(sidecar)
    notes: list[str] = []
    sources: dict[str, str] = {}
    units = _require(sidecar, "Units", source, "'Bq/mL', 'g/mL' or 'cm2/mL'")
    if units not in ("Bq/mL", "g/mL", "cm2/mL"):
        raise SuvError(
            "unsupported units for SUV",
            file=source,
            tag="Units",
            value=units,
            expected="'Bq/mL', 'g/mL' or 'cm2/mL'",
        )
    half_life_s, sources["half_life_s"], nuclide = _half_life(sidecar, overrides, source)
    decay_term, injection_start_s, rule = _decay_term(sidecar, half_life_s, source, notes)

    stored: str | None = None
    if units != "Bq/mL":
        stored = str(own.get("normalisation") or ("bsa" if units == "cm2/mL" else "bw"))
        if stored not in NORMALISATIONS or (units == "cm2/mL") != (stored == "bsa"):
            raise SuvError(
                "normalisation does not match the units",
                file=source,
                tag=f"{IMMUNOPET_KEY}.normalisation",
                value=stored,
                expected="bsa with cm2/mL; bw, lbm or ibw with g/mL",
            )
        sources["stored_values"] = f"Units {units} ({IMMUNOPET_KEY}.normalisation {stored})"

    header_activity = _activity_bq(sidecar, source)
    activity: float | None
    if overrides.injected_activity_bq is not None:
        activity = _number(
            overrides.injected_activity_bq, "--injected-activity-bq", source, positive=True
        )
        sources["injected_activity_bq"] = "override"
    else:
        activity = header_activity
        sources["injected_activity_bq"] = "InjectedRadioactivity"
    if activity is None and units == "Bq/mL":
        raise SuvError(
            "sidecar field needed for the SUV is missing",
            file=source,
            tag="InjectedRadioactivity",
            value="missing",
            expected="a positive number (or --injected-activity-bq)",
        )

    weight = overrides.weight_kg if overrides.weight_kg is not None else own.get("weight_kg")
    sources["weight_kg"] = (
        "override" if overrides.weight_kg is not None else f"{IMMUNOPET_KEY}.weight_kg"
    )
    weight_kg = None if weight is None else _number(weight, "weight_kg", source, positive=True)
    height = overrides.height_m if overrides.height_m is not None else own.get("height_m")
    height_m = None if height is None else _number(height, "height_m", source, positive=True)
    sex = overrides.sex if overrides.sex is not None else own.get("sex")
    body_override = any(
        getattr(overrides, name) is not None for name in ("weight_kg", "height_m", "sex")
    )
    saved = own.get("normalisers") if isinstance(own.get("normalisers"), Mapping) else {}

    def body(name: str, *, fresh: bool) -> float | None:
        if not fresh and isinstance(saved, Mapping) and saved.get(name) is not None:
            return _number(saved[name], f"{IMMUNOPET_KEY}.normalisers.{name}", source)
        if weight_kg is None:
            return None
        try:
            return normaliser(name, weight_kg, height_m, sex)
        except SuvError:
            return None

    factors: dict[str, float | None] = {}
    for name in NORMALISATIONS:
        wanted = body(name, fresh=body_override)
        if stored is None:
            factors[name] = (
                None if wanted is None or activity is None else wanted / activity * decay_term
            )
            continue
        scale = decay_term
        if header_activity is not None and activity is not None:
            scale *= header_activity / activity
        if name == stored and not body_override:
            factors[name] = scale
            continue
        base = body(stored, fresh=False)
        factors[name] = None if wanted is None or base is None else scale * wanted / base
    if factors["bw"] is None:
        raise SuvError(
            "body weight is needed for the SUV",
            file=source,
            tag=f"{IMMUNOPET_KEY}.weight_kg",
            value="missing",
            expected="weight in kg in the sidecar, or --weight-kg",
        )
    delay = _scan_delay_s(sidecar, injection_start_s)
    injection = overrides.injection_datetime
    try:
        scan = None if injection is None or delay is None else injection + timedelta(seconds=delay)
    except OverflowError:
        raise SuvError(
            "scan time out of the calendar", file=source, tag="ScanStart", value=delay
        ) from None
    decay_code = own.get("dicom_decay_correction")
    corrected = sidecar.get("ImageDecayCorrected")
    return SuvDerivation(
        series_uid=str(own.get("series", "")),
        manufacturer=str(sidecar.get("Manufacturer", "")),
        units=str(units),
        decay_correction=str(decay_code) if decay_code else ("NONE" if not corrected else "CORR"),
        nuclide=nuclide,
        half_life_s=half_life_s,
        injected_activity_bq=math.nan if activity is None else activity,
        injection_datetime=injection,
        scan_datetime=scan,
        weight_kg=math.nan if weight_kg is None else weight_kg,
        height_m=height_m,
        sex=sex if sex in ("M", "F", "O") else None,
        bqml_factor=1.0 if stored is None else None,
        suv_bw_factor=factors["bw"],
        suv_lbm_factor=factors["lbm"],
        suv_bsa_factor=factors["bsa"],
        suv_ibw_factor=factors["ibw"],
        branch=f"PET-BIDS/{units}",
        scan_time_source="ScanStart" if delay is not None else "missing",
        injection_time_source="override" if injection is not None else "InjectionStart",
        sources=sources,
        warnings=tuple(notes),
        normalisation="bw" if stored is None else stored,  # type: ignore[arg-type]
        suv_type=None if stored is None else stored,
        reference_time_rule=rule,
        input_format="PET-BIDS",
        delay_s=delay,
        normalisers={name: body(name, fresh=body_override) for name in NORMALISATIONS},
    )
