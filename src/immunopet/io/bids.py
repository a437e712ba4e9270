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

:func:`immunopet.suv.sidecar.derive_suv_from_sidecar` reads exactly these fields back (this
module only writes: no SUV arithmetic outside :mod:`immunopet.suv`). An SUV image states its
normalisation (``ImmunoPET.normalisation``), ``Units`` ``g/mL`` (bw, lbm, ibw) or ``cm2/mL``
(bsa), and the body-size normalisers (``ImmunoPET.normalisers``: g, or cm² for bsa) so that it
can be read back in any normalisation. What BIDS has no field for
(body weight, which BIDS would keep in ``participants.tsv``; height; the half-life used; where
each number came from) goes into an ``"ImmunoPET"`` object in the sidecar. No patient name,
ID, birth date, sex or series UID is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from immunopet.errors import InputError
from immunopet.suv.decay import elapsed_seconds
from immunopet.suv.nuclides import find_nuclide
from immunopet.suv.record import SuvDerivation

__all__ = ["IMMUNOPET_KEY", "pet_sidecar"]

IMMUNOPET_KEY = "ImmunoPET"
"""Sidecar key of the object holding immunopet's own fields."""

SidecarUnits = Literal["Bq/mL", "g/mL", "cm2/mL"]
_SUV_UNITS = {"bw": "g/mL", "lbm": "g/mL", "ibw": "g/mL", "bsa": "cm2/mL"}
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
    normalisation: str | None = None,
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
    units : {"Bq/mL", "g/mL", "cm2/mL"}
        What the NIfTI values will be: activity concentration, or SUV (decay-corrected to
        injection by definition) in the normalisation ``normalisation``.
    normalisation : {"bw", "lbm", "bsa", "ibw"}, optional
        Of SUV values; default ``derivation.normalisation``. Must match ``units`` (``cm2/mL``
        for bsa, ``g/mL`` for the others).
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
    if units not in ("Bq/mL", "g/mL", "cm2/mL"):
        raise InputError(
            "unsupported sidecar units",
            tag="units",
            value=units,
            expected="'Bq/mL', 'g/mL' or 'cm2/mL'",
        )
    norm = normalisation or derivation.normalisation
    if units != "Bq/mL" and _SUV_UNITS.get(norm) != units:
        raise InputError(
            "SUV units do not match the normalisation",
            tag="units",
            value=f"{units} for {norm}",
            expected=f"{_SUV_UNITS.get(norm, 'g/mL')} for normalisation {norm!r}",
        )
    if derivation.injection_datetime is None or derivation.scan_datetime is None:
        raise InputError(
            "the injection and scan date-times are needed to write a sidecar",
            file=derivation.series_uid,
            tag="injection_datetime",
            value="missing",
            expected="date-times (or --injection-datetime)",
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
    if units != "Bq/mL":
        if decay_reference not in (None, "injection"):
            raise InputError(
                "SUV images are decay-corrected to injection by definition",
                tag="decay_reference",
                value=decay_reference,
                expected="'injection' or None with SUV units",
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
    if units != "Bq/mL":
        own["normalisation"] = norm
        own["suv_type"] = derivation.suv_type
    own["normalisers"] = {
        name: value for name, value in derivation.normalisers.items() if value is not None
    }
    own["reference_time_rule"] = derivation.reference_time_rule
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
