"""SUV factors from PET DICOM headers: the QIBA vendor-neutral algorithm, safe for 89Zr.

:func:`derive_suv` reads the header-only datasets of one PET series and returns a
:class:`~immunopet.suv.record.SuvDerivation`: the factors that turn stored values (after
(0028,1053) RescaleSlope and (0028,1052) RescaleIntercept) into SUVbw, SUL and SUVbsa
decay-corrected to injection, with the tag or override each input came from, the branch taken
and every warning. The small ``compute_*`` functions it uses are public so they can be checked
alone.

Notes
-----
The algorithm follows the QIBA FDG-PET/CT profile, Appendix G ("Vendor-neutral pseudo-codes for
SUV calculation"), with the changes that multi-day 89Zr imaging needs:

1. (0054,1001) Units decides the branch: ``BQML`` (Bq/mL); ``CNTS`` with the Philips private
   (7053,1000) SUV Scale Factor and/or (7053,1009) Activity Concentration Scale Factor (private
   creator ``Philips PET Private Group``); ``GML`` (already SUVbw). Anything else is refused.
2. (0028,0051) CorrectedImage must contain ``ATTN`` and, for (0054,1102) DecayCorrection
   ``START``/``ADMIN``, ``DECY`` (which must be absent for ``NONE``).
3. The scan reference time is (0008,0021) SeriesDate + (0008,0031) SeriesTime when it is not after
   the earliest (0008,0022) AcquisitionDate + (0008,0032) AcquisitionTime of the series; else the
   GE private scan date-time (0009,100D) (creator ``GEMS_PETD_01``); else the earliest acquisition
   date-time (with a warning).
4. The injection time is (0018,1078) RadiopharmaceuticalStartDateTime. When only (0018,1072)
   RadiopharmaceuticalStartTime is given, a short-lived nuclide (half-life <= 24 h) is assumed
   injected on the scan date (the day before when that would be after the scan) with a warning;
   a long-lived nuclide (89Zr, 124I) is refused unless the injection date-time is supplied as an
   override: the date of a scan days after injection cannot be guessed.
5. Intervals are whole date-time differences (``timedelta.total_seconds()``), never time-of-day
   differences; multi-day gaps are never "corrected".
6. ``START``: the dose is decayed to the scan reference time,
   :math:`D = A_0\\,2^{-(t_{scan}-t_{inj})/T_{1/2}}`; ``ADMIN``: the image is already corrected to
   injection, :math:`D = A_0`; ``NONE``: as ``START`` plus a per-slice correction (see
   :func:`compute_slice_decay_correction`) in :attr:`SuvDerivation.slice_corrections`.
7. SUVbw factor :math:`W_g / D`; SUL factor :math:`\\mathrm{LBM}_g / D` (Janmahasatian);
   SUVbsa factor :math:`\\mathrm{BSA}_{cm^2} / D` (Du Bois). For Philips (7053,1000) and ``GML``
   the SUL and SUVbsa factors are the SUVbw factor rescaled by LBM/W and BSA/W.

References
----------
.. [1] QIBA FDG-PET/CT Technical Committee. FDG-PET/CT as an Imaging Biomarker Measuring Response
   to Cancer Therapy, QIBA Profile v1.13, 2016, Appendix G and H.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydicom import Dataset

from immunopet.errors import InputError, SuvError
from immunopet.suv._header import (
    TAG_ACQ_DT as _TAG_ACQ_DT,
)
from immunopet.suv._header import (
    _acquisition_datetime,
    _combine,
    _float,
    _Log,
    _parse_datetime,
    _parse_time,
    _private_value,
    _text,
    _value,
)
from immunopet.suv.body import compute_body_surface_area_m2, compute_lean_body_mass_kg
from immunopet.suv.decay import decay_factor, elapsed_seconds, frame_decay_correction
from immunopet.suv.nuclides import LONG_LIVED_HALF_LIFE_S, NUCLIDES, Nuclide, find_nuclide
from immunopet.suv.record import Sex, SuvDerivation, SuvOverrides

__all__ = [
    "compute_decayed_dose_bq",
    "compute_slice_decay_correction",
    "compute_suv_bsa_factor",
    "compute_suv_bw_factor",
    "compute_suv_lbm_factor",
    "derive_suv",
    "rescale_suv_bw_factor_to_bsa",
    "rescale_suv_bw_factor_to_lbm",
]

PHILIPS_CREATOR = "Philips PET Private Group"
GE_CREATOR = "GEMS_PETD_01"
MIN_DOSE_BQ = 1e4
"""A (0018,1074) RadionuclideTotalDose below this (Bq) is almost surely written in MBq."""
WEIGHT_RANGE_KG = (1.0, 500.0)
MAX_HEIGHT_M = 3.0
MIN_HEIGHT_M = 0.3
AGREEMENT_TOLERANCE = 0.01
"""Relative disagreement (1%) above which two sources of one number raise a warning."""
MAX_HALF_LIVES = 10.0
"""An injection-to-scan interval above this many half-lives is flagged as suspicious."""

_TAG_SEQ = "(0054,0016) RadiopharmaceuticalInformationSequence"
_TAG_UNITS = "(0054,1001) Units"
_TAG_DECAY = "(0054,1102) DecayCorrection"
_TAG_CORRECTED = "(0028,0051) CorrectedImage"
_TAG_START_DT = "(0018,1078) RadiopharmaceuticalStartDateTime"
_TAG_START_TIME = "(0018,1072) RadiopharmaceuticalStartTime"
_TAG_HALF_LIFE = "(0018,1075) RadionuclideHalfLife"
_TAG_DOSE = "(0018,1074) RadionuclideTotalDose"
_TAG_WEIGHT = "(0010,1030) PatientWeight"
_TAG_HEIGHT = "(0010,1020) PatientSize"
_TAG_SEX = "(0010,0040) PatientSex"
_TAG_SERIES_DT = "(0008,0021) SeriesDate + (0008,0031) SeriesTime"
_TAG_GE_SCAN = "(0009,100D) GE private scan date-time [GEMS_PETD_01]"
_TAG_PHILIPS_SUV = "(7053,1000) Philips SUV Scale Factor"
_TAG_PHILIPS_BQML = "(7053,1009) Philips Activity Concentration Scale Factor"
_TAG_FRAME = "(0018,1242) ActualFrameDuration"
_OVERRIDE = "override"


# --------------------------------------------------------------------------------------------
# Small pure functions (units in the names)
# --------------------------------------------------------------------------------------------


def compute_decayed_dose_bq(
    injected_activity_bq: float, elapsed_s: float, half_life_s: float
) -> float:
    """Injected activity decayed over ``elapsed_s``.

    .. math:: D = A_0 \\, 2^{-t / T_{1/2}}

    Parameters
    ----------
    injected_activity_bq : float, Bq
        Activity at injection.
    elapsed_s : float, seconds
        Injection to scan reference time (days included).
    half_life_s : float, seconds

    Returns
    -------
    float, Bq

    Examples
    --------
    >>> compute_decayed_dose_bq(100e6, 2 * 78.41 * 3600, 78.41 * 3600)
    25000000.0
    """
    return float(injected_activity_bq) * float(decay_factor(elapsed_s, half_life_s))


def compute_suv_bw_factor(weight_kg: float, decayed_dose_bq: float) -> float:
    """Body-weight SUV factor: Bq/mL -> SUVbw (g/mL).

    .. math:: f_{bw} = \\frac{1000\\,W_{kg}}{D}

    Parameters
    ----------
    weight_kg : float, kg
    decayed_dose_bq : float, Bq
        Dose at the time the image values refer to.

    Returns
    -------
    float, g/Bq (SUVbw per Bq/mL)

    Examples
    --------
    >>> compute_suv_bw_factor(70.0, 350e6)
    0.0002
    """
    return float(weight_kg) * 1000.0 / float(decayed_dose_bq)


def compute_suv_lbm_factor(lean_body_mass_kg: float, decayed_dose_bq: float) -> float:
    """Lean-body-mass SUV (SUL) factor: Bq/mL -> SUL (g/mL).

    Parameters
    ----------
    lean_body_mass_kg : float, kg
    decayed_dose_bq : float, Bq

    Returns
    -------
    float, g/Bq

    Examples
    --------
    >>> compute_suv_lbm_factor(50.0, 250e6)
    0.0002
    """
    return float(lean_body_mass_kg) * 1000.0 / float(decayed_dose_bq)


def compute_suv_bsa_factor(body_surface_area_m2: float, decayed_dose_bq: float) -> float:
    """Body-surface-area SUV factor: Bq/mL -> SUVbsa (cm²/mL).

    .. math:: f_{bsa} = \\frac{10^4\\,\\mathrm{BSA}_{m^2}}{D}

    Parameters
    ----------
    body_surface_area_m2 : float, m²
    decayed_dose_bq : float, Bq

    Returns
    -------
    float, cm²/Bq

    Examples
    --------
    >>> compute_suv_bsa_factor(2.0, 100e6)
    0.0002
    """
    return float(body_surface_area_m2) * 1e4 / float(decayed_dose_bq)


def rescale_suv_bw_factor_to_lbm(
    suv_bw_factor: float, weight_kg: float, lean_body_mass_kg: float
) -> float:
    """Turn an SUVbw factor into an SUL factor: SUL = SUVbw x LBM / W.

    Used when only the SUVbw factor is known (Philips (7053,1000), ``GML`` images).

    Parameters
    ----------
    suv_bw_factor : float, g/mL per stored unit
    weight_kg : float, kg
    lean_body_mass_kg : float, kg

    Returns
    -------
    float, g/mL per stored unit

    Examples
    --------
    >>> rescale_suv_bw_factor_to_lbm(2.0, 80.0, 60.0)
    1.5
    """
    return float(suv_bw_factor) * float(lean_body_mass_kg) / float(weight_kg)


def rescale_suv_bw_factor_to_bsa(
    suv_bw_factor: float, weight_kg: float, body_surface_area_m2: float
) -> float:
    """Turn an SUVbw factor into an SUVbsa factor: SUVbsa = SUVbw x BSA_cm² / W_g.

    Parameters
    ----------
    suv_bw_factor : float, g/mL per stored unit
    weight_kg : float, kg
    body_surface_area_m2 : float, m²

    Returns
    -------
    float, cm²/mL per stored unit

    Examples
    --------
    >>> rescale_suv_bw_factor_to_bsa(1.0, 100.0, 2.0)  # 20000 cm² / 100000 g
    0.2
    """
    return float(suv_bw_factor) * float(body_surface_area_m2) * 1e4 / (float(weight_kg) * 1e3)


def compute_slice_decay_correction(
    slice_offset_s: float, frame_duration_s: float, half_life_s: float
) -> float:
    """Per-slice multiplier for images without decay correction (DecayCorrection NONE).

    A slice acquired from :math:`t_s` for a frame of length :math:`\\Delta` holds the mean
    activity over the frame, undecayed. Multiplying it by the series SUV factor (whose dose is
    decayed to the scan reference time :math:`t_{ref}`) and by

    .. math::

        c = 2^{(t_s - t_{ref}) / T_{1/2}}
            \\cdot \\frac{\\lambda\\Delta}{1 - e^{-\\lambda\\Delta}}

    gives the SUV decay-corrected to injection: the second term turns the frame mean into the
    activity at frame start, the first carries it from :math:`t_s` back to :math:`t_{ref}`.

    Parameters
    ----------
    slice_offset_s : float, seconds
        Slice acquisition start minus the scan reference time.
    frame_duration_s : float, seconds
        (0018,1242) ActualFrameDuration / 1000; 0 when unknown (no frame correction).
    half_life_s : float, seconds

    Returns
    -------
    float

    Examples
    --------
    >>> compute_slice_decay_correction(6586.2, 0.0, 6586.2)
    2.0
    """
    return float(decay_factor(-slice_offset_s, half_life_s)) * frame_decay_correction(
        frame_duration_s, half_life_s
    )


# --------------------------------------------------------------------------------------------
# The steps of derive_suv
# --------------------------------------------------------------------------------------------


def _series_value(headers: Sequence[Dataset], keyword: str, tag: str, log: _Log) -> Any:
    """A value that must be the same in every slice of the series."""
    values = {_text(v) for ds in headers if (v := _value(ds, keyword)) is not None}
    if len(values) > 1:
        raise log.error(
            "differs between slices of one series",
            tag=tag,
            value=sorted(values),
            expected="one value per series",
        )
    return values.pop() if values else None


def _check_corrected_image(ds: Dataset, decay_correction: str, log: _Log) -> None:
    raw = _value(ds, "CorrectedImage")
    if raw is None:
        corrections: set[str] = set()
    elif isinstance(raw, str | bytes):
        corrections = {_text(raw).upper()}
    else:
        corrections = {_text(v).upper() for v in raw}
    found = "\\".join(sorted(corrections)) or "missing"
    if "ATTN" not in corrections:
        log.invalid(
            "image is not attenuation corrected",
            tag=_TAG_CORRECTED,
            value=found,
            expected="values including ATTN",
        )
    if decay_correction in ("START", "ADMIN") and "DECY" not in corrections:
        log.invalid(
            f"{_TAG_DECAY} is {decay_correction} but the image is not flagged decay corrected",
            tag=_TAG_CORRECTED,
            value=found,
            expected="values including DECY",
        )
    if decay_correction == "NONE" and "DECY" in corrections:
        log.invalid(
            f"{_TAG_DECAY} is NONE but the image is flagged decay corrected",
            tag=_TAG_CORRECTED,
            value=found,
            expected="no DECY",
        )


def _nuclide_from_text(text: str) -> Nuclide | None:
    try:
        return find_nuclide(text)
    except InputError:
        pass
    patterns = (r"(\d{1,3})\W*([A-Za-z]+)", r"([A-Za-z]+)\W*(\d{1,3})")
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            try:
                return find_nuclide(" ".join(match.groups()))
            except InputError:
                continue
    return None


def _find_nuclide_in(ds: Dataset, item: Dataset, log: _Log) -> Nuclide | None:
    candidates: list[tuple[str, str]] = []
    for code in item.get("RadionuclideCodeSequence") or []:
        meaning = _value(code, "CodeMeaning")
        if meaning is not None:
            candidates.append((_text(meaning), "(0054,0300) RadionuclideCodeSequence CodeMeaning"))
    for holder in (item, ds):
        name = _value(holder, "Radiopharmaceutical")
        if name is not None:
            candidates.append((_text(name), "(0018,0031) Radiopharmaceutical"))
    for text, tag in candidates:
        nuclide = _nuclide_from_text(text)
        if nuclide is not None:
            log.sources["nuclide"] = tag
            return nuclide
    return None


def _half_life(
    ds: Dataset, item: Dataset, overrides: SuvOverrides, log: _Log
) -> tuple[float, Nuclide | None]:
    nuclide = _find_nuclide_in(ds, item, log)
    raw = _value(item, "RadionuclideHalfLife")
    header_s = None if raw is None else _float(raw, log, _TAG_HALF_LIFE)
    if header_s is not None and header_s <= 0:
        raise log.error("must be positive", tag=_TAG_HALF_LIFE, value=header_s, expected="s > 0")
    if nuclide is None and header_s is not None:
        matches = [
            n
            for n in NUCLIDES.values()
            if abs(header_s / n.half_life_s - 1.0) <= AGREEMENT_TOLERANCE
        ]
        if len(matches) == 1:
            nuclide = matches[0]
            log.sources["nuclide"] = f"{_TAG_HALF_LIFE} (matches the nuclide table)"
    if overrides.half_life_s is not None:
        if not overrides.half_life_s > 0:
            raise log.error(
                "must be positive", tag="half_life_s", value=overrides.half_life_s, expected="s"
            )
        _note_override(header_s, overrides.half_life_s, _TAG_HALF_LIFE, log)
        log.sources["half_life_s"] = _OVERRIDE
        return float(overrides.half_life_s), nuclide
    if header_s is not None:
        log.sources["half_life_s"] = _TAG_HALF_LIFE
        if nuclide is not None and abs(header_s / nuclide.half_life_s - 1) > AGREEMENT_TOLERANCE:
            log.warn(
                f"half-life disagrees with the table value for {nuclide.name} by more than 1%; "
                "using the header",
                tag=_TAG_HALF_LIFE,
                value=header_s,
                expected=f"{nuclide.half_life_s:g} s",
            )
        return header_s, nuclide
    if nuclide is None:
        raise log.error(
            "half-life missing and the radionuclide is not recognised",
            tag=_TAG_HALF_LIFE,
            value="missing",
            expected="the half-life in s, a known nuclide in (0054,0300) or (0018,0031), "
            "or the half_life_s override",
        )
    log.sources["half_life_s"] = f"nuclide table ({nuclide.name})"
    log.warn(
        f"half-life missing; using the table value for {nuclide.name}, {nuclide.half_life_s:g} s",
        tag=_TAG_HALF_LIFE,
        value="missing",
    )
    return nuclide.half_life_s, nuclide


def _note_override(header: Any, override: Any, tag: str, log: _Log) -> None:
    """Warn when an override replaces a different header value."""
    if header is None:
        return
    if isinstance(header, float) and isinstance(override, int | float):
        differs = abs(float(override) / header - 1.0) > AGREEMENT_TOLERANCE if header else True
    else:
        differs = header != override
    if differs:
        shown = [v.isoformat() if isinstance(v, datetime) else v for v in (header, override)]
        log.warn(
            f"override {shown[1]!r} replaces a different header value",
            tag=tag,
            value=shown[0],
        )


def _scan_datetime(
    headers: Sequence[Dataset], acquisitions: list[datetime | None], log: _Log
) -> datetime:
    first = headers[0]
    series = _combine(first, "SeriesDate", "SeriesTime", log, _TAG_SERIES_DT)
    known = [moment for moment in acquisitions if moment is not None]
    earliest = min(known) if known else None
    if series is not None and (earliest is None or series <= earliest):
        if earliest is None:
            log.warn(
                "no acquisition date-time in the series; SeriesTime cannot be checked "
                "against it (QIBA)",
                tag=_TAG_ACQ_DT,
                value="missing",
            )
        log.sources["scan_datetime"] = _TAG_SERIES_DT
        return series
    ge_value = _private_value(first, 0x0009, GE_CREATOR, 0x0D, log, _TAG_GE_SCAN)
    if ge_value is not None and _text(ge_value):
        ge_scan, has_time = _parse_datetime(ge_value, log, _TAG_GE_SCAN)
        if has_time:
            if earliest is not None and ge_scan > earliest:
                log.warn(
                    "GE scan date-time is after the earliest acquisition",
                    tag=_TAG_GE_SCAN,
                    value=ge_scan.isoformat(),
                    expected=f"not after {earliest.isoformat()}",
                )
            log.sources["scan_datetime"] = _TAG_GE_SCAN
            return ge_scan
    if earliest is None:
        raise log.error(
            "no scan reference time",
            tag=_TAG_SERIES_DT,
            value="missing",
            expected=f"SeriesDate/SeriesTime or {_TAG_ACQ_DT}",
        )
    reason = (
        "missing"
        if series is None
        else f"{series.isoformat()} is after the earliest acquisition (post-processed series?)"
    )
    log.warn(
        f"series date-time {reason}; using the earliest acquisition date-time of the series",
        tag=_TAG_SERIES_DT,
        value=earliest.isoformat(),
    )
    source = f"{_TAG_ACQ_DT} (earliest of the series)"
    log.sources["scan_datetime"] = source
    return earliest


def _injection_datetime(
    item: Dataset,
    scan: datetime,
    half_life_s: float,
    overrides: SuvOverrides,
    log: _Log,
) -> datetime:
    header: datetime | None = None
    header_date: date | None = None
    raw_dt = _value(item, "RadiopharmaceuticalStartDateTime")
    if raw_dt is not None:
        parsed, has_time = _parse_datetime(raw_dt, log, _TAG_START_DT)
        if has_time:
            header = parsed
        else:
            header_date = parsed.date()
    raw_time = _value(item, "RadiopharmaceuticalStartTime")
    start_time = None if raw_time is None else _parse_time(raw_time, log, _TAG_START_TIME)

    if overrides.injection_datetime is not None:
        override = overrides.injection_datetime
        if override.tzinfo is not None:
            raise log.error(
                "must be a naive date-time on the scanner clock",
                tag="injection_datetime",
                value=override.isoformat(),
                expected="no UTC offset",
            )
        _note_override(header, override, _TAG_START_DT, log)
        log.sources["injection_datetime"] = _OVERRIDE
        return override
    if header is not None:
        log.sources["injection_datetime"] = _TAG_START_DT
        return header
    if header_date is not None and start_time is not None:
        source = f"{_TAG_START_DT} (date) + {_TAG_START_TIME}"
        log.sources["injection_datetime"] = source
        return datetime.combine(header_date, start_time)
    if start_time is None:
        raise log.error(
            "injection time missing",
            tag=_TAG_START_DT,
            value="missing",
            expected=f"a date-time (or {_TAG_START_TIME}), or the injection_datetime override",
        )
    if half_life_s > LONG_LIVED_HALF_LIFE_S:
        raise log.error(
            f"only {_TAG_START_TIME} ({start_time.isoformat()}) is given and the half-life "
            f"({half_life_s / 3600:g} h) exceeds 24 h: the injection may be days before the scan, "
            "so its date cannot be assumed; supply the injection date-time "
            "(injection_datetime override, CLI --injection-datetime)",
            tag=_TAG_START_DT,
            value="missing",
            expected="the injection date-time",
        )
    injection = datetime.combine(scan.date(), start_time)
    day = "the scan date"
    if injection > scan:
        injection -= timedelta(days=1)
        day = "the day before the scan (the time of day is after the scan)"
    log.warn(
        f"injection date missing; assumed {day} for a short-lived nuclide (QIBA): "
        f"injection at {injection.isoformat()}",
        tag=_TAG_START_DT,
        value="missing",
    )
    log.sources["injection_datetime"] = f"{_TAG_START_TIME} + assumed date"
    return injection


def _injected_activity_bq(item: Dataset, overrides: SuvOverrides, log: _Log) -> float:
    raw = _value(item, "RadionuclideTotalDose")
    header = None if raw is None else _float(raw, log, _TAG_DOSE)
    if overrides.injected_activity_bq is not None:
        value, tag = float(overrides.injected_activity_bq), "injected_activity_bq"
        _note_override(header, value, _TAG_DOSE, log)
        log.sources["injected_activity_bq"] = _OVERRIDE
    elif header is None:
        raise log.error(
            "injected activity missing",
            tag=_TAG_DOSE,
            value="missing",
            expected="activity in Bq, or the injected_activity_bq override",
        )
    else:
        value, tag = header, _TAG_DOSE
        log.sources["injected_activity_bq"] = _TAG_DOSE
    if not value > 0:
        raise log.error("injected activity must be positive", tag=tag, value=value, expected="Bq")
    if value < MIN_DOSE_BQ:
        raise log.error(
            "looks like MBq; the standard unit is Bq — supply injected_activity_bq",
            tag=tag,
            value=value,
            expected=f"Bq (>= {MIN_DOSE_BQ:g})",
        )
    return value


def _weight_kg(ds: Dataset, overrides: SuvOverrides, log: _Log) -> float:
    raw = _value(ds, "PatientWeight")
    header = None if raw is None else _float(raw, log, _TAG_WEIGHT)
    if overrides.weight_kg is not None:
        value, tag = float(overrides.weight_kg), "weight_kg"
        _note_override(header if header else None, value, _TAG_WEIGHT, log)
        log.sources["weight_kg"] = _OVERRIDE
    elif not header:
        raise log.error(
            "patient weight missing or zero",
            tag=_TAG_WEIGHT,
            value="missing" if header is None else header,
            expected="weight in kg, or the weight_kg override",
        )
    else:
        value, tag = header, _TAG_WEIGHT
        log.sources["weight_kg"] = _TAG_WEIGHT
    low, high = WEIGHT_RANGE_KG
    if not low <= value <= high:
        raise log.error(
            "implausible patient weight",
            tag=tag,
            value=value,
            expected=f"kg between {low:g} and {high:g}",
        )
    return value


def _height_m(ds: Dataset, overrides: SuvOverrides, log: _Log) -> float | None:
    raw = _value(ds, "PatientSize")
    header = None if raw is None else _float(raw, log, _TAG_HEIGHT)
    if overrides.height_m is not None:
        value, tag = float(overrides.height_m), "height_m"
        _note_override(header if header else None, value, _TAG_HEIGHT, log)
        source = _OVERRIDE
    elif not header:
        return None  # missing or 0 (the usual "unknown"): no SUL / SUVbsa
    else:
        value, tag, source = header, _TAG_HEIGHT, _TAG_HEIGHT
    if not MIN_HEIGHT_M <= value <= MAX_HEIGHT_M:
        hint = "looks like cm; the standard unit is m" if value > MAX_HEIGHT_M else "implausible"
        log.invalid(
            f"height {hint} — supply height_m; SUL and SUVbsa left out",
            tag=tag,
            value=value,
            expected=f"m between {MIN_HEIGHT_M:g} and {MAX_HEIGHT_M:g}",
        )
        return None
    log.sources["height_m"] = source
    return value


def _sex(ds: Dataset, overrides: SuvOverrides, log: _Log) -> Sex | None:
    text = _text(_value(ds, "PatientSex") or "").upper()
    header: Sex | None = "M" if text == "M" else "F" if text == "F" else None
    if overrides.sex is not None:
        if overrides.sex not in ("M", "F"):
            raise log.error("unknown sex", tag="sex", value=overrides.sex, expected="'M' or 'F'")
        _note_override(header, overrides.sex, _TAG_SEX, log)
        log.sources["sex"] = _OVERRIDE
        return overrides.sex
    if header is not None:
        log.sources["sex"] = _TAG_SEX
    return header


@dataclass(frozen=True)
class _Scale:
    """What the Units branch gives: stored value -> Bq/mL, or stored value -> SUVbw directly."""

    branch: str
    bqml_factor: float | None
    direct_suv_bw_factor: float | None


def _philips_factor(headers: Sequence[Dataset], offset: int, tag: str, log: _Log) -> float | None:
    values = []
    for ds in headers:
        raw = _private_value(ds, 0x7053, PHILIPS_CREATOR, offset, log, tag)
        if raw is not None and _text(raw):
            values.append(_float(raw, log, tag))
    if not values:
        return None
    if max(values) - min(values) > 1e-6 * max(abs(v) for v in values):
        raise log.error(
            "differs between slices of one series",
            tag=tag,
            value=[min(values), max(values)],
            expected="one value per series",
        )
    if not values[0] > 0:
        raise log.error("must be positive", tag=tag, value=values[0], expected="a factor > 0")
    return values[0]


def _units_scale(headers: Sequence[Dataset], units: str | None, log: _Log) -> _Scale:
    if units == "BQML":
        log.sources["bqml_factor"] = _TAG_UNITS
        return _Scale("BQML", 1.0, None)
    if units == "GML":
        log.sources["suv_bw_factor"] = f"{_TAG_UNITS} GML (image is SUVbw)"
        return _Scale("GML", None, 1.0)
    if units == "CNTS":
        suv = _philips_factor(headers, 0x00, _TAG_PHILIPS_SUV, log)
        bqml = _philips_factor(headers, 0x09, _TAG_PHILIPS_BQML, log)
        if bqml is not None:
            log.sources["bqml_factor"] = _TAG_PHILIPS_BQML
        if suv is not None:
            log.sources["suv_bw_factor"] = _TAG_PHILIPS_SUV
            name = "Philips(7053,1000+1009)" if bqml is not None else "Philips(7053,1000)"
            return _Scale(f"CNTS/{name}", bqml, suv)
        if bqml is not None:
            return _Scale("CNTS/Philips(7053,1009)", bqml, None)
        raise log.error(
            "CNTS images need the Philips private SUV or activity concentration scale factor",
            tag=_TAG_UNITS,
            value="CNTS",
            expected=f"{_TAG_PHILIPS_SUV} or {_TAG_PHILIPS_BQML} "
            f"(private creator {PHILIPS_CREATOR!r})",
        )
    raise log.error(
        "unsupported units",
        tag=_TAG_UNITS,
        value="missing" if units is None else units,
        expected="BQML, CNTS (Philips) or GML",
    )


def _suv_factors(
    scale: _Scale,
    weight_kg: float,
    decayed_bq: float,
    lbm_kg: float | None,
    bsa_m2: float | None,
    log: _Log,
) -> tuple[float, float | None, float | None]:
    """SUVbw, SUL and SUVbsa factors (stored value -> SUV) for the Units branch."""
    if scale.direct_suv_bw_factor is None:
        bqml = 1.0 if scale.bqml_factor is None else scale.bqml_factor
        suv_bw = bqml * compute_suv_bw_factor(weight_kg, decayed_bq)
        suv_lbm = None if lbm_kg is None else bqml * compute_suv_lbm_factor(lbm_kg, decayed_bq)
        suv_bsa = None if bsa_m2 is None else bqml * compute_suv_bsa_factor(bsa_m2, decayed_bq)
        scaled = "" if scale.bqml_factor is None else f"{_TAG_PHILIPS_BQML} x "
        log.sources["suv_bw_factor"] = f"computed: {scaled}weight / decayed dose"
        return suv_bw, suv_lbm, suv_bsa
    suv_bw = scale.direct_suv_bw_factor
    suv_lbm = None if lbm_kg is None else rescale_suv_bw_factor_to_lbm(suv_bw, weight_kg, lbm_kg)
    suv_bsa = None if bsa_m2 is None else rescale_suv_bw_factor_to_bsa(suv_bw, weight_kg, bsa_m2)
    if scale.bqml_factor is not None:
        expected = scale.bqml_factor * compute_suv_bw_factor(weight_kg, decayed_bq)
        if abs(suv_bw / expected - 1.0) > AGREEMENT_TOLERANCE:
            log.warn(
                f"Philips SUV scale factor disagrees by more than 1% with {_TAG_PHILIPS_BQML}"
                " x weight / decayed dose; using (7053,1000)",
                tag=_TAG_PHILIPS_SUV,
                value=suv_bw,
                expected=f"{expected:.6g}",
            )
    if scale.branch == "GML" and (suv_lbm is not None or suv_bsa is not None):
        log.warn(
            "image is stored as SUVbw; SUL and SUVbsa are derived by rescaling with "
            "lean body mass / weight and body surface area / weight",
            tag=_TAG_UNITS,
            value="GML",
        )
    return suv_bw, suv_lbm, suv_bsa


def _slice_corrections(
    headers: Sequence[Dataset],
    acquisitions: list[datetime | None],
    scan: datetime,
    half_life_s: float,
    log: _Log,
) -> dict[str, float]:
    corrections: dict[str, float] = {}
    missing_duration = 0
    for ds, acquired in zip(headers, acquisitions, strict=True):
        uid = _value(ds, "SOPInstanceUID")
        if uid is None:
            raise log.error(
                f"needed for per-slice decay correction ({_TAG_DECAY} NONE)",
                tag="(0008,0018) SOPInstanceUID",
                value="missing",
            )
        if acquired is None:
            raise log.error(
                f"{_TAG_DECAY} is NONE: every slice needs its acquisition date-time",
                tag=_TAG_ACQ_DT,
                value="missing",
                expected=f"date and time for SOPInstanceUID {_text(uid)}",
            )
        raw = _value(ds, "ActualFrameDuration")
        if raw is None:
            missing_duration += 1
            duration_s = 0.0
        else:
            duration_s = _float(raw, log, _TAG_FRAME) / 1000.0
        offset_s = elapsed_seconds(scan, acquired)
        corrections[_text(uid)] = compute_slice_decay_correction(offset_s, duration_s, half_life_s)
    if missing_duration:
        log.warn(
            f"frame duration missing in {missing_duration} slice(s); decay during the frame "
            "not corrected there",
            tag=_TAG_FRAME,
            value="missing",
        )
    return corrections


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------


def derive_suv(
    headers: Sequence[Dataset],
    *,
    source: str | Path | None = None,
    overrides: SuvOverrides | None = None,
    on_invalid: Literal["raise", "warn"] = "raise",
) -> SuvDerivation:
    """Derive the SUV factors of one PET series from its headers.

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        Header-only datasets of one PET series, one per slice (any order).
    source : str or path, optional
        File or folder named in messages (never a patient name). Defaults to the
        (0020,000E) SeriesInstanceUID.
    overrides : SuvOverrides, optional
        Values that replace (or fill in) header values; each use is recorded as
        ``"override"`` in :attr:`SuvDerivation.sources`.
    on_invalid : {"raise", "warn"}
        What validation problems that leave a number computable do: (0028,0051)
        CorrectedImage inconsistent with (0054,1102) DecayCorrection, a height that looks
        like cm. Missing or implausible quantities (dose, weight, times, units) always raise.

    Returns
    -------
    SuvDerivation
        Factors, the inputs used, their sources, the branch and all warnings (also emitted as
        :class:`~immunopet.errors.SuvWarning`).

    Raises
    ------
    SuvError
        When no SUV can be derived; the message names the source, the tag, the value found
        and what was expected.

    Notes
    -----
    See the module docstring for the algorithm. For (0054,1102) DecayCorrection ``NONE`` the
    SUV of a voxel of slice *s* is stored value x ``suv_bw_factor`` x
    ``slice_corrections[SOPInstanceUID of s]``, where the series factor uses the dose decayed
    to the scan reference time and the slice correction
    (:func:`compute_slice_decay_correction`) carries the slice from its own acquisition start
    (frame-averaged) back to that reference time.
    """
    overrides = SuvOverrides() if overrides is None else overrides
    if not headers:
        raise SuvError("no headers given", file=source, tag="headers", value=0)
    first = headers[0]
    uid = _value(first, "SeriesInstanceUID")
    log = _Log(
        where=str(source) if source is not None else (None if uid is None else _text(uid)),
        on_invalid=on_invalid,
    )
    series_uid = _series_value(headers, "SeriesInstanceUID", "(0020,000E) SeriesInstanceUID", log)

    units = _series_value(headers, "Units", _TAG_UNITS, log)
    units = None if units is None else units.upper()
    log.sources["units"] = _TAG_UNITS
    decay = _series_value(headers, "DecayCorrection", _TAG_DECAY, log)
    decay = None if decay is None else decay.upper()
    if decay not in ("START", "ADMIN", "NONE"):
        raise log.error(
            "unsupported decay correction",
            tag=_TAG_DECAY,
            value="missing" if decay is None else decay,
            expected="START, ADMIN or NONE",
        )
    log.sources["decay_correction"] = _TAG_DECAY
    scale = _units_scale(headers, units, log)
    _check_corrected_image(first, decay, log)

    sequence = first.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise log.error(
            "radiopharmaceutical information missing",
            tag=_TAG_SEQ,
            value="missing",
            expected="one item with dose, half-life and injection time",
        )
    if len(sequence) > 1:
        log.warn("several items; using the first", tag=_TAG_SEQ, value=len(sequence))
    item = sequence[0]

    half_life_s, nuclide = _half_life(first, item, overrides, log)
    acquisitions = [_acquisition_datetime(ds, log) for ds in headers]
    scan = _scan_datetime(headers, acquisitions, log)
    injection = _injection_datetime(item, scan, half_life_s, overrides, log)
    elapsed_s = elapsed_seconds(injection, scan)
    if elapsed_s < 0:
        raise log.error(
            f"injection ({injection.isoformat()}) is after the scan reference time "
            f"({scan.isoformat()}, from {log.sources['scan_datetime']})",
            tag=log.sources["injection_datetime"],
            value=injection.isoformat(),
            expected=f"not after {scan.isoformat()}",
        )
    if elapsed_s > MAX_HALF_LIVES * half_life_s:
        log.warn(
            f"scan is {elapsed_s / 3600:.1f} h after injection, more than "
            f"{MAX_HALF_LIVES:g} half-lives; check the dates",
            tag=log.sources["injection_datetime"],
            value=injection.isoformat(),
        )

    activity_bq = _injected_activity_bq(item, overrides, log)
    weight_kg = _weight_kg(first, overrides, log)
    height_m = _height_m(first, overrides, log)
    sex = _sex(first, overrides, log)

    if decay == "ADMIN":
        decayed_bq = activity_bq
    else:
        decayed_bq = compute_decayed_dose_bq(activity_bq, elapsed_s, half_life_s)

    lbm_kg = (
        None
        if height_m is None or sex is None
        else (compute_lean_body_mass_kg(weight_kg, height_m, sex))
    )
    bsa_m2 = None if height_m is None else compute_body_surface_area_m2(weight_kg, height_m)
    suv_bw, suv_lbm, suv_bsa = _suv_factors(scale, weight_kg, decayed_bq, lbm_kg, bsa_m2, log)

    slice_corrections: dict[str, float] = {}
    if decay == "NONE":
        slice_corrections = _slice_corrections(headers, acquisitions, scan, half_life_s, log)

    return SuvDerivation(
        series_uid=series_uid or "",
        manufacturer=_text(_value(first, "Manufacturer") or ""),
        units=units or "",
        decay_correction=decay,
        nuclide=None if nuclide is None else nuclide.name,
        half_life_s=half_life_s,
        injected_activity_bq=activity_bq,
        injection_datetime=injection,
        scan_datetime=scan,
        weight_kg=weight_kg,
        height_m=height_m,
        sex=sex,
        bqml_factor=scale.bqml_factor,
        suv_bw_factor=suv_bw,
        suv_lbm_factor=suv_lbm,
        suv_bsa_factor=suv_bsa,
        branch=f"{scale.branch}/{decay}",
        scan_time_source=log.sources["scan_datetime"],
        injection_time_source=log.sources["injection_datetime"],
        sources=dict(log.sources),
        slice_corrections=slice_corrections,
        warnings=tuple(log.warnings),
    )
