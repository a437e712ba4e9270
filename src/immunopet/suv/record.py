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

__all__ = ["SuvDerivation", "SuvOverrides"]

Sex = Literal["M", "F"]


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
    sex : {"M", "F"}, optional
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
    injection_datetime : datetime
    scan_datetime : datetime
        The scan reference time that decay correction refers to.
    weight_kg : float, kg
    height_m, sex :
        Used for SUL and SUVbsa; ``None`` when not available (those factors are then ``None``).
    bqml_factor : float or None
        Stored value -> Bq/mL (1 for BQML; the Philips (7053,1009) factor for CNTS; ``None``
        when only an SUV scale factor is known).
    suv_bw_factor : float
        Stored value -> SUVbw (g/mL).
    suv_lbm_factor, suv_bsa_factor : float or None
        Stored value -> SUL (g/mL) and SUVbsa (cm²/mL).
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
    """

    series_uid: str
    manufacturer: str
    units: str
    decay_correction: str
    nuclide: str | None
    half_life_s: float
    injected_activity_bq: float
    injection_datetime: datetime
    scan_datetime: datetime
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

    @property
    def hours_after_injection(self) -> float:
        """Hours from injection to the scan reference time (days included)."""
        return (self.scan_datetime - self.injection_datetime).total_seconds() / 3600.0

    def factor(self, normalisation: Literal["bw", "lbm", "bsa"] = "bw") -> float:
        """The stored-value -> SUV factor for a normalisation.

        Raises
        ------
        SuvError
            When the normalisation needs height or sex that are not known.
        """
        from immunopet.errors import SuvError

        value = {
            "bw": self.suv_bw_factor,
            "lbm": self.suv_lbm_factor,
            "bsa": self.suv_bsa_factor,
        }[normalisation]
        if value is None:
            raise SuvError(
                f"SUV normalisation {normalisation!r} needs (0010,1020) PatientSize and "
                "(0010,0040) PatientSex",
                file=self.series_uid,
                tag="(0010,1020) PatientSize",
                value="missing",
                expected="height in m (or an override)",
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
            "injected_activity_bq": self.injected_activity_bq,
            "injection_datetime": self.injection_datetime.isoformat(),
            "scan_datetime": self.scan_datetime.isoformat(),
            "weight_kg": self.weight_kg,
            "half_life_s": self.half_life_s,
            "suv_bw_factor": self.suv_bw_factor,
            "warnings": list(self.warnings),
            "nuclide": self.nuclide,
            "hours_after_injection": self.hours_after_injection,
            "height_m": self.height_m,
            "sex": self.sex,
            "bqml_factor": self.bqml_factor,
            "suv_lbm_factor": self.suv_lbm_factor,
            "suv_bsa_factor": self.suv_bsa_factor,
            "branch": self.branch,
            "scan_time_source": self.scan_time_source,
            "injection_time_source": self.injection_time_source,
            "sources": dict(self.sources),
            "n_slice_corrections": len(self.slice_corrections),
        }
