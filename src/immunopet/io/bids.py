"""PET-BIDS JSON sidecars: building one from an SUV record, and SUV factors from one.

Field names follow the PET-BIDS part of the BIDS specification (schema
``src/schema/rules/sidecars/pet.yaml`` and ``objects/metadata.yaml``). Times are seconds
relative to ``TimeZero``, which immunopet sets to the injection time of day (``"hh:mm:ss"``,
whole seconds). A multi-day delay lives entirely in ``ScanStart`` (120 h -> 432000 s), so the
calendar date is not needed and is not written (good for privacy).

Decay reference written in ``ImageDecayCorrectionTime`` (seconds after ``TimeZero``):

- Bq/mL data decay-corrected to the scan reference time (DICOM ``START``): ``ScanStart``;
- Bq/mL data decay-corrected to injection (DICOM ``ADMIN``, or re-corrected by the caller),
  and SUV (g/mL) data: ``InjectionStart`` (0 unless the injection time had a fraction of a
  second);
- data not decay-corrected (DICOM ``NONE``): ``ImageDecayCorrected`` false and no
  ``ImageDecayCorrectionTime``.

:func:`derive_suv_from_sidecar` reads exactly these fields back. What BIDS has no field for
(body weight, which BIDS would keep in ``participants.tsv``; height; the half-life used; where
each number came from) goes into an ``"ImmunoPET"`` object in the sidecar. No patient name,
ID, birth date, sex or series UID is written.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

from immunopet.errors import InputError, SuvError, SuvWarning
from immunopet.suv.decay import elapsed_seconds, frame_decay_correction
from immunopet.suv.nuclides import find_nuclide
from immunopet.suv.record import SuvDerivation

__all__ = [
    "IMMUNOPET_KEY",
    "SidecarSuv",
    "derive_suv_from_sidecar",
    "pet_sidecar",
    "suv_factor_from_sidecar",
]

IMMUNOPET_KEY = "ImmunoPET"
"""Sidecar key of the object holding immunopet's own fields."""

SidecarUnits = Literal["Bq/mL", "g/mL"]
DecayReference = Literal["scan", "injection"]

_ACTIVITY_UNIT_BQ: dict[str, float] = {
    "Bq": 1.0,
    "kBq": 1e3,
    "MBq": 1e6,
    "GBq": 1e9,
    "uCi": 3.7e4,
    "µCi": 3.7e4,
    "mCi": 3.7e7,
}
"""Accepted ``InjectedRadioactivityUnits`` and their value in Bq."""

_DICOM_DECAY_REFERENCE: dict[str, DecayReference | None] = {
    "START": "scan",
    "ADMIN": "injection",
    "NONE": None,
}

_DERIVED_KEYS = frozenset(
    {
        "TracerRadionuclide",
        "InjectedRadioactivity",
        "InjectedRadioactivityUnits",
        "TimeZero",
        "InjectionStart",
        "ScanStart",
        "FrameTimesStart",
        "FrameDuration",
        "ImageDecayCorrected",
        "ImageDecayCorrectionTime",
        "Units",
        IMMUNOPET_KEY,
    }
)
"""Keys computed from the SUV record; ``extra`` may not replace them."""


# ---------------------------------------------------------------------------- writing
def pet_sidecar(
    derivation: SuvDerivation,
    *,
    units: SidecarUnits = "Bq/mL",
    tracer_name: str | None = None,
    frame_duration_s: float | None = None,
    decay_reference: DecayReference | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the PET-BIDS sidecar of an image derived from one PET series.

    Parameters
    ----------
    derivation : SuvDerivation
        How the series' SUV was derived (injection, scan time, weight, half-life ...).
    units : {"Bq/mL", "g/mL"}
        What the NIfTI values will be: activity concentration, or SUVbw (stored value x
        ``derivation.suv_bw_factor``, decay-corrected to injection by definition).
    tracer_name : str, optional
        ``TracerName`` (e.g. ``"89Zr-durvalumab"``); ``"n/a"`` when not given.
    frame_duration_s : float, optional, s
        ``FrameDuration`` of the single frame; omitted when not known (the sidecar is then
        not BIDS-valid, and a not-decay-corrected image cannot be converted to SUV from it).
    decay_reference : {"scan", "injection"}, optional
        For ``"Bq/mL"`` only: the time the written values are decay-corrected to. Default
        follows (0054,1102) DecayCorrection of the series: ``START`` -> ``"scan"`` (values as
        stored), ``ADMIN`` -> ``"injection"``, ``NONE`` -> not decay-corrected. Pass
        ``"injection"`` when writing Bq/mL values that were multiplied by
        :math:`2^{\\mathrm{ScanStart}/T_{1/2}}`.
    extra : mapping, optional
        Further BIDS fields (``InjectedMass``, ``InjectedMassUnits``, ``ReconMethodName``,
        ``AcquisitionMode`` ...); they replace defaults but not the derived timing,
        activity and unit fields.

    Returns
    -------
    dict
        JSON-ready sidecar.

    Raises
    ------
    InputError
        When ``extra`` tries to replace a derived key, a combination of options is
        contradictory, or the scan precedes the injection.

    Examples
    --------
    >>> from datetime import datetime
    >>> record = SuvDerivation(
    ...     series_uid="1.2.3", manufacturer="Siemens", units="BQML",
    ...     decay_correction="START", nuclide="89Zr", half_life_s=78.41 * 3600,
    ...     injected_activity_bq=37e6, injection_datetime=datetime(2024, 3, 1, 9, 30),
    ...     scan_datetime=datetime(2024, 3, 6, 9, 30), weight_kg=70.0, height_m=None,
    ...     sex=None, bqml_factor=1.0, suv_bw_factor=5.465e-3, suv_lbm_factor=None,
    ...     suv_bsa_factor=None, branch="BQML/START", scan_time_source="(0008,0031)",
    ...     injection_time_source="override")
    >>> side = pet_sidecar(record, tracer_name="89Zr-durvalumab", frame_duration_s=1800)
    >>> side["TimeZero"], side["ScanStart"], side["ImageDecayCorrectionTime"]
    ('09:30:00', 432000.0, 432000.0)
    >>> side["TracerRadionuclide"], side["InjectedRadioactivity"]
    ('Zr89', 37.0)
    """
    if units not in ("Bq/mL", "g/mL"):
        raise InputError(
            "unsupported sidecar units", tag="units", value=units, expected="'Bq/mL' or 'g/mL'"
        )
    time_zero = derivation.injection_datetime.replace(microsecond=0)
    injection_start_s = elapsed_seconds(time_zero, derivation.injection_datetime)
    scan_start_s = elapsed_seconds(time_zero, derivation.scan_datetime)
    if scan_start_s < injection_start_s:
        raise InputError(
            "scan reference time precedes the injection",
            file=derivation.series_uid,
            tag="ScanStart",
            value=scan_start_s,
            expected="a time after the injection",
        )

    reference: DecayReference | None
    if units == "g/mL":
        if decay_reference not in (None, "injection"):
            raise InputError(
                "SUV images are decay-corrected to injection by definition",
                tag="decay_reference",
                value=decay_reference,
                expected="'injection' or None with units='g/mL'",
            )
        reference = "injection"
    elif decay_reference is not None:
        if decay_reference not in ("scan", "injection"):
            raise InputError(
                "unknown decay reference",
                tag="decay_reference",
                value=decay_reference,
                expected="'scan' or 'injection'",
            )
        reference = decay_reference
    else:
        code = derivation.decay_correction.strip().upper()
        if code not in _DICOM_DECAY_REFERENCE:
            raise InputError(
                "unknown decay correction in the SUV record",
                file=derivation.series_uid,
                tag="(0054,1102) DecayCorrection",
                value=derivation.decay_correction,
                expected="START, ADMIN or NONE",
            )
        reference = _DICOM_DECAY_REFERENCE[code]

    nuclide = derivation.nuclide
    radionuclide = find_nuclide(nuclide).bids_name if nuclide else "n/a"

    sidecar: dict[str, Any] = {
        "Manufacturer": derivation.manufacturer or "n/a",
        "TracerName": tracer_name if tracer_name else "n/a",
        "TracerRadionuclide": radionuclide,
        "InjectedRadioactivity": derivation.injected_activity_bq / 1e6,
        "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": "n/a",
        "InjectedMassUnits": "n/a",
        "SpecificRadioactivity": "n/a",
        "SpecificRadioactivityUnits": "n/a",
        "ModeOfAdministration": "bolus",
        "TimeZero": time_zero.strftime("%H:%M:%S"),
        "InjectionStart": injection_start_s,
        "ScanStart": scan_start_s,
        "FrameTimesStart": [scan_start_s],
        "AcquisitionMode": "static",
        "ImageDecayCorrected": reference is not None,
        "Units": units,
    }
    if frame_duration_s is not None:
        sidecar["FrameDuration"] = [float(frame_duration_s)]
    if reference == "scan":
        sidecar["ImageDecayCorrectionTime"] = scan_start_s
    elif reference == "injection":
        sidecar["ImageDecayCorrectionTime"] = injection_start_s

    own: dict[str, Any] = {
        "weight_kg": derivation.weight_kg,
        "half_life_s": derivation.half_life_s,
        "nuclide": derivation.nuclide,
        "hours_after_injection": derivation.hours_after_injection,
        "dicom_units": derivation.units,
        "dicom_decay_correction": derivation.decay_correction,
        "suv_branch": derivation.branch,
        "scan_time_source": derivation.scan_time_source,
        "injection_time_source": derivation.injection_time_source,
        "sources": dict(derivation.sources),
        "warnings": list(derivation.warnings),
    }
    if derivation.height_m is not None:
        own["height_m"] = derivation.height_m
    sidecar[IMMUNOPET_KEY] = own

    for key, value in (extra or {}).items():
        if key in _DERIVED_KEYS:
            raise InputError(
                "this sidecar field is derived from the SUV record and cannot be given",
                tag=key,
                value=value,
                expected="a field other than " + ", ".join(sorted(_DERIVED_KEYS)),
            )
        sidecar[key] = value
    return sidecar


# ---------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class SidecarSuv:
    """How a NIfTI image's values become SUVbw, from its PET-BIDS sidecar.

    Attributes
    ----------
    factor : float, g/Bq (Bq/mL images) or 1 (g/mL images)
        Voxel value x factor = SUVbw decay-corrected to injection.
    decay_factor : float
        The part of ``factor`` that moves the decay reference back to injection
        (:math:`2^{(t_c - t_i)/T_{1/2}}`, with the frame correction for uncorrected data).
    weight_kg : float or None, kg
        Body weight used (``None`` for g/mL images, where it is not needed).
    injected_activity_bq : float or None, Bq
    half_life_s : float, s
    decay_correction_time_s : float, s
        Decay reference of the image, seconds after injection.
    sources : mapping of str to str
        Where weight, activity and half-life came from (sidecar key or ``"argument"``).
    warnings : tuple of str
    """

    factor: float
    decay_factor: float
    weight_kg: float | None
    injected_activity_bq: float | None
    half_life_s: float
    decay_correction_time_s: float
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


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


def _half_life(sidecar: Mapping[str, Any], source: Any) -> tuple[float, str]:
    own = sidecar.get(IMMUNOPET_KEY)
    if isinstance(own, Mapping) and own.get("half_life_s") is not None:
        key = f"{IMMUNOPET_KEY}.half_life_s"
        return _number(own["half_life_s"], key, source, positive=True), key
    name = _require(sidecar, "TracerRadionuclide", source, "a nuclide such as 'Zr89'")
    try:
        nuclide = find_nuclide(str(name))
    except InputError as exc:
        raise SuvError(
            "unknown radionuclide",
            file=source,
            tag="TracerRadionuclide",
            value=name,
            expected=exc.expected,
        ) from exc
    return nuclide.half_life_s, "TracerRadionuclide"


def derive_suv_from_sidecar(
    sidecar: Mapping[str, Any],
    *,
    weight_kg: float | None = None,
    normalisation: Literal["bw"] = "bw",
    source: str | PathLike[str] | None = None,
) -> SidecarSuv:
    """Derive the voxel value -> SUVbw (decay-corrected to injection) factor from a sidecar.

    Parameters
    ----------
    sidecar : mapping
        PET-BIDS sidecar content.
    weight_kg : float, optional, kg
        Body weight; default the sidecar's ``ImmunoPET.weight_kg``.
    normalisation : {"bw"}
        Only body weight: height and sex (for SUL, SUVbsa) are not kept in the sidecar.
    source : path-like, optional
        The sidecar's file, named in error messages.

    Returns
    -------
    SidecarSuv

    Raises
    ------
    SuvError
        When a needed field is missing or invalid (the message names ``source`` and the
        key), or the image is not decay-corrected and has no single frame to correct it.

    Notes
    -----
    With :math:`t_i` = ``InjectionStart``, :math:`t_c` = ``ImageDecayCorrectionTime`` (both
    relative to ``TimeZero``), :math:`T` the half-life, :math:`A` = ``InjectedRadioactivity``
    in Bq and :math:`W` the weight in g, a Bq/mL value :math:`C(t_c)` is the concentration
    the tissue had at :math:`t_c`; at injection it was :math:`C(t_c)\\,2^{(t_c - t_i)/T}`, so

    .. math:: \\mathrm{SUV_{bw}} = C(t_c) \\cdot \\frac{W}{A} \\cdot 2^{(t_c - t_i)/T}.

    Decay-corrected to injection (:math:`t_c = t_i`) this is :math:`W/A`; corrected to scan
    start (:math:`t_c` = ``ScanStart``) it includes :math:`2^{\\mathrm{ScanStart}/T}`.
    For g/mL images the factor is the decay term alone. For images not decay-corrected, a
    single frame (``FrameTimesStart`` :math:`t_0`, ``FrameDuration`` :math:`D`) gives
    :math:`C(t_0) = \\bar C \\, \\lambda D / (1 - e^{-\\lambda D})` and :math:`t_c = t_0`,
    recorded as a warning (a multi-bed scan has one start per bed, which BIDS does not keep).
    """
    if normalisation != "bw":
        raise SuvError(
            "only body-weight SUV can be derived from a PET-BIDS sidecar",
            file=source,
            tag="normalisation",
            value=normalisation,
            expected="'bw' (height and sex are not kept in the sidecar)",
        )
    notes: list[str] = []
    sources: dict[str, str] = {}
    units = _require(sidecar, "Units", source, "'Bq/mL' or 'g/mL'")
    if units not in ("Bq/mL", "g/mL"):
        raise SuvError(
            "unsupported units for SUV",
            file=source,
            tag="Units",
            value=units,
            expected="'Bq/mL' or 'g/mL'",
        )
    half_life_s, sources["half_life_s"] = _half_life(sidecar, source)
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
        warnings.warn(note, SuvWarning, stacklevel=2)
        notes.append(note)

    delay_s = correction_time_s - injection_start_s
    decay_term = frame_factor * 2.0 ** (delay_s / half_life_s)

    if units == "g/mL":
        return SidecarSuv(
            factor=decay_term,
            decay_factor=decay_term,
            weight_kg=None,
            injected_activity_bq=None,
            half_life_s=half_life_s,
            decay_correction_time_s=delay_s,
            sources=sources,
            warnings=tuple(notes),
        )

    activity = _number(
        _require(sidecar, "InjectedRadioactivity", source, "a positive number"),
        "InjectedRadioactivity",
        source,
        positive=True,
    )
    activity_unit = _require(
        sidecar, "InjectedRadioactivityUnits", source, "MBq (or Bq, kBq, GBq, mCi, uCi)"
    )
    if activity_unit not in _ACTIVITY_UNIT_BQ:
        raise SuvError(
            "unsupported activity unit",
            file=source,
            tag="InjectedRadioactivityUnits",
            value=activity_unit,
            expected=", ".join(_ACTIVITY_UNIT_BQ),
        )
    injected_bq = activity * _ACTIVITY_UNIT_BQ[activity_unit]
    sources["injected_activity_bq"] = "InjectedRadioactivity"

    if weight_kg is not None:
        weight = _number(weight_kg, "weight_kg", source, positive=True)
        sources["weight_kg"] = "argument"
    else:
        own = sidecar.get(IMMUNOPET_KEY)
        key = f"{IMMUNOPET_KEY}.weight_kg"
        if not isinstance(own, Mapping) or own.get("weight_kg") is None:
            raise SuvError(
                "body weight is needed for SUVbw",
                file=source,
                tag=key,
                value="missing",
                expected="weight in kg in the sidecar, or weight_kg=",
            )
        weight = _number(own["weight_kg"], key, source, positive=True)
        sources["weight_kg"] = key
    factor = weight * 1000.0 / injected_bq * decay_term
    return SidecarSuv(
        factor=factor,
        decay_factor=decay_term,
        weight_kg=weight,
        injected_activity_bq=injected_bq,
        half_life_s=half_life_s,
        decay_correction_time_s=delay_s,
        sources=sources,
        warnings=tuple(notes),
    )


def suv_factor_from_sidecar(
    sidecar: Mapping[str, Any],
    *,
    weight_kg: float | None = None,
    normalisation: Literal["bw"] = "bw",
    source: str | PathLike[str] | None = None,
) -> float:
    """The factor of :func:`derive_suv_from_sidecar` alone (voxel value -> SUVbw at injection).

    Examples
    --------
    >>> side = {"Units": "Bq/mL", "TracerRadionuclide": "Zr89", "InjectionStart": 0,
    ...         "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0,
    ...         "InjectedRadioactivity": 37, "InjectedRadioactivityUnits": "MBq"}
    >>> round(suv_factor_from_sidecar(side, weight_kg=70) * 1e3, 6)  # 70000 g / 37e6 Bq
    1.891892
    """
    return derive_suv_from_sidecar(
        sidecar, weight_kg=weight_kg, normalisation=normalisation, source=source
    ).factor
