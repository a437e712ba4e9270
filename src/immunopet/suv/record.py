"""The record of how a scan's SUV factors were derived.

Every PET series that immunopet reads carries one :class:`SuvDerivation`: the values used, the
tag (or override) each came from, the vendor/decay branch taken and every warning. It is what
``immunopet inspect`` prints and what the results store keeps as provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["NORMALISATIONS", "Normalisation", "SuvDerivation", "SuvOverrides"]

Sex = Literal["M", "F", "O"]
Normalisation = Literal["bw", "lbm", "bsa", "ibw"]
NORMALISATIONS: tuple[Normalisation, ...] = ("bw", "lbm", "bsa", "ibw")
"""Body weight, lean body mass (Janmahasatian, SUL), body surface area, ideal body weight."""

_NEEDS = {
    "lbm": "(0010,1020) PatientSize and (0010,0040) PatientSex (or --height-m and --sex)",
    "ibw": "(0010,1020) PatientSize and (0010,0040) PatientSex (or --height-m and --sex)",
    "bsa": "(0010,1020) PatientSize (or --height-m)",
    "bw": "(0010,1030) PatientWeight (or --weight-kg)",
}


@dataclass(frozen=True)
class SuvOverrides:
    """Values a user supplies when the header lacks them or is wrong.

    Every override used is recorded in :attr:`SuvDerivation.sources` as ``"override"``.

    Attributes
    ----------
    injection_datetime : datetime, optional
        Injection date-time on the scanner clock; required for long-lived nuclides when the
        header has only (0018,1072) RadiopharmaceuticalStartTime.
    weight_kg : float, optional, kg
    height_m : float, optional, m
    sex : {"M", "F", "O"}, optional
    injected_activity_bq : float, optional, Bq
        Net injected activity at injection time.
    half_life_s : float, optional, s
    """

    injection_datetime: datetime | None = None
    weight_kg: float | None = None
    height_m: float | None = None
    sex: Sex | None = None
    injected_activity_bq: float | None = None
    half_life_s: float | None = None


@dataclass(frozen=True)
class SuvDerivation:
    """How the SUV factors of one PET series were obtained.

    Multiplying a stored pixel value (after (0028,1053) RescaleSlope and (0028,1052)
    RescaleIntercept) by :attr:`suv_bw_factor` gives SUVbw decay-corrected to injection.
    For images stored without decay correction ((0054,1102) DecayCorrection ``NONE``) each
    slice is further multiplied by its entry of :attr:`slice_corrections`.

    Attributes
    ----------
    series_uid : str
        (0020,000E) SeriesInstanceUID.
    manufacturer : str
        (0008,0070) Manufacturer as written (may be empty).
    units : str
        (0054,1001) Units: ``BQML``, ``CNTS`` or ``GML``.
    decay_correction : str
        (0054,1102) DecayCorrection: ``START``, ``ADMIN`` or ``NONE``.
    nuclide : str or None
        Canonical nuclide name (``"89Zr"``) when known.
    half_life_s : float, s
    injected_activity_bq : float, Bq
        Activity at injection time.
    injection_datetime : datetime or None
    scan_datetime : datetime or None
        The scan reference time that decay correction refers to. ``None`` only for a NIfTI
        whose sidecar keeps relative times and no injection date-time was supplied.
    weight_kg : float, kg
    height_m, sex :
        Used for SUL and SUVbsa; ``None`` when not available (those factors are then ``None``).
    bqml_factor : float or None
        Stored value -> Bq/mL (1 for BQML; the Philips (7053,1009) factor for CNTS; ``None``
        when only an SUV scale factor is known).
    suv_bw_factor : float
        Stored value -> SUVbw (g/mL).
    suv_lbm_factor, suv_bsa_factor, suv_ibw_factor : float or None
        Stored value -> SUL (g/mL), SUVbsa (cm²/mL) and SUVibw (g/mL).
    slice_corrections : mapping of SOPInstanceUID to float
        Per-slice multipliers (only for DecayCorrection NONE; empty otherwise).
    branch : str
        The path taken, e.g. ``"BQML/START"`` or ``"CNTS/Philips(7053,1000)"``.
    scan_time_source, injection_time_source : str
        Which tag (or ``"override"``) gave the two times.
    sources : mapping of str to str
        For each quantity (``weight_kg``, ``injected_activity_bq`` ...) the tag or override used.
    warnings : tuple of str
        Every assumption or fallback that can change a number.
    suv_ibw_factor : float or None
    normalisation : {"bw", "lbm", "bsa", "ibw"}
        The normalisation of the SUV image this record came with (``"bw"`` for a record
        of factors only).
    suv_type : str or None
        (0054,1006) SUV Type (or the sidecar's normalisation) of images stored as SUV.
    reference_time_rule : str
        Which rule gave the decay-correction reference time (IBSI SUV manual order).
    input_format : {"DICOM", "PET-BIDS"}
    delay_s : float or None, s
        Injection to scan reference time, when the date-times are not known.
    normalisers : mapping of str to float or None
        Body-size normaliser of each normalisation (g; cm² for ``bsa``); ``None`` when not
        computable. Written to sidecars so a NIfTI can be read back in any normalisation.
    """

    series_uid: str
    manufacturer: str
    units: str
    decay_correction: str
    nuclide: str | None
    half_life_s: float
    injected_activity_bq: float
    injection_datetime: datetime | None
    scan_datetime: datetime | None
    weight_kg: float
    height_m: float | None
    sex: Sex | None
    bqml_factor: float | None
    suv_bw_factor: float
    suv_lbm_factor: float | None
    suv_bsa_factor: float | None
    branch: str
    scan_time_source: str
    injection_time_source: str
    sources: Mapping[str, str] = field(default_factory=dict)
    slice_corrections: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    suv_ibw_factor: float | None = None
    normalisation: Normalisation = "bw"
    suv_type: str | None = None
    reference_time_rule: str = ""
    input_format: str = "DICOM"
    delay_s: float | None = None
    normalisers: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def hours_after_injection(self) -> float:
        """Hours from injection to the scan reference time (days included)."""
        if self.injection_datetime is not None and self.scan_datetime is not None:
            return (self.scan_datetime - self.injection_datetime).total_seconds() / 3600.0
        return float("nan") if self.delay_s is None else self.delay_s / 3600.0

    def factor(self, normalisation: Normalisation | str = "bw") -> float:
        """The stored-value -> SUV factor for a normalisation.

        Raises
        ------
        SuvError
            When the normalisation is unknown or needs height or sex that are not known
            (the message names the override flags).
        """
        from immunopet.errors import SuvError

        factors = {
            "bw": self.suv_bw_factor,
            "lbm": self.suv_lbm_factor,
            "bsa": self.suv_bsa_factor,
            "ibw": self.suv_ibw_factor,
        }
        if normalisation not in factors:
            raise SuvError(
                "unknown SUV normalisation",
                file=self.series_uid,
                tag="normalisation",
                value=normalisation,
                expected="bw, lbm, bsa or ibw",
            )
        value = factors[str(normalisation)]
        if value is None:
            raise SuvError(
                f"SUV normalisation {normalisation!r} needs {_NEEDS[str(normalisation)]}",
                file=self.series_uid,
                tag="(0010,1020) PatientSize" if normalisation != "bw" else "weight",
                value="missing",
                expected="the header value or the override",
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the keys of the ``inspect --json`` contract first.

        Date-times are ISO 8601 strings; no patient-identifying value is included.
        """
        return {
            "series_uid": self.series_uid,
            "manufacturer": self.manufacturer,
            "units": self.units,
            "decay_correction": self.decay_correction,
            "injected_activity_bq": _finite(self.injected_activity_bq),
            "injection_datetime": _iso(self.injection_datetime),
            "scan_datetime": _iso(self.scan_datetime),
            "weight_kg": _finite(self.weight_kg),
            "half_life_s": self.half_life_s,
            "suv_bw_factor": self.suv_bw_factor,
            "warnings": list(self.warnings),
            "nuclide": self.nuclide,
            "hours_after_injection": _finite(self.hours_after_injection),
            "height_m": self.height_m,
            "sex": self.sex,
            "bqml_factor": self.bqml_factor,
            "suv_lbm_factor": self.suv_lbm_factor,
            "suv_bsa_factor": self.suv_bsa_factor,
            "suv_ibw_factor": self.suv_ibw_factor,
            "normalisation": self.normalisation,
            "suv_type": self.suv_type,
            "reference_time_rule": self.reference_time_rule,
            "input_format": self.input_format,
            "branch": self.branch,
            "scan_time_source": self.scan_time_source,
            "injection_time_source": self.injection_time_source,
            "sources": dict(self.sources),
            "n_slice_corrections": len(self.slice_corrections),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _finite(value: float) -> float | None:
    """JSON has no NaN: an unknown number is null."""
    return value if value == value else None
