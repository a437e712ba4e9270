"""SUV factors from PET DICOM headers, conforming to the IBSI SUV manual, safe for 89Zr.

:func:`derive_suv` reads the header-only datasets of one PET series and returns a
:class:`~immunopet.suv.record.SuvDerivation`: the factors that turn stored values (after
(0028,1053) RescaleSlope and (0028,1052) RescaleIntercept) into SUVbw, SUL (Janmahasatian),
SUVbsa (Du Bois) and SUVibw decay-corrected to injection, with the tag or override each input
came from, the rule taken and every warning. The small ``compute_*`` functions it uses are
public so they can be checked alone. Callers go through
:func:`immunopet.suv.volume.read_suv_volume`.

Notes
-----
The algorithm is the IBSI "Standardizing SUV computation" manual (Vácha et al., working
version 3), which extends the QIBA FDG-PET/CT profile's vendor-neutral pseudo-code:

1. Every header value that enters the SUV ((0054,1001) Units, (0054,1102) DecayCorrection,
   (0054,1006) SUVType, weight, height, sex, dose, injection date-time, half-life, UTC offset)
   must be equal in every slice; (0028,1053) RescaleSlope must be positive.
2. (0054,1001) Units decides the branch: ``BQML``; ``CNTS`` with the Philips private
   (7053,1000) SUV Scale Factor and/or (7053,1009) Activity Concentration Scale Factor;
   ``GML`` (stored as SUV of (0054,1006) SUVType ``BW``, ``LBM`` (read as James 128, with a
   warning: DICOM names no formula for it),
   ``LBMJAMES128``, ``LBMJANMA``, ``IBW``) and ``CM2ML`` (SUVType ``BSA``). An image stored
   as SUV of type T is converted to normalisation X by :math:`N_X / N_T` (:func:`~immunopet.
   suv.body.normaliser`; sex ``O`` = mean of the male and female values).
3. A dose below 1e4 is read as MBq and a weight of 1000 or more as grams (warnings). An
   injected activity outside :data:`~immunopet.suv.nuclides.PLAUSIBLE_ACTIVITY_BQ` is refused
   unless given as the override.
4. The decay-correction reference time of each frame follows the manual's order
   (:mod:`immunopet.suv._reftime`): Siemens (0071,1022), GE (0009,100D), acquisition =
   series date-time, GE acquisition - FrameReferenceTime, else acquisition + T_ave -
   FrameReferenceTime; QIBA's rule as the last fallback. Slices with different reference
   times get per-slice factors (:attr:`SuvDerivation.slice_corrections`).
5. ``DecayCorrection NONE``: each frame is corrected from its own acquisition start with the
   frame-average term (:func:`compute_slice_decay_correction`).
6. Injection date-time: (0018,1078), moved to the scanner clock when it carries a UTC offset
   different from (0008,0201). For a nuclide with a half-life of at most 11.5 h, a missing
   date, or a date-time outside the manual's consistency window (from 1 h after to two
   half-lives before the reference time), is repaired with a warning: the time of day on the
   reference date, or on the day before when that time is over 1 h after the reference. For
   longer half-lives (89Zr) a missing date is refused unless supplied
   (``--injection-datetime``), never guessed.
7. Where the factor does not depend on the times (``GML``/``CM2ML``, ``ADMIN``), a missing or
   inconsistent injection time (a de-identification date shift) is a warning, never a
   refusal.

Where we differ from the manual, and why:

- 89Zr and every nuclide over 11.5 h: no injection-date repair at all and a refusal instead
  (the manual agrees for such half-lives). The manual also refuses a long-lived injection
  more than two half-lives before the scan; we do not, because 89Zr protocols scan up to 7 days
  (2.1 half-lives) after injection. We refuse instead an injection after the reference time
  (the manual tolerates 1 h of clock difference) and a decayed dose that underflows.
- We refuse implausible doses per nuclide and slice disagreements; the manual reads the
  first slice. A silently wrong SUV is worse than a refusal that names the override.
- ``lbm`` is Janmahasatian (QIBA/PERCIST SUL); the James formula is used only to read images
  stored as ``LBM``/``LBMJAMES128``.
- Plain (0054,1006) ``LBM``: DICOM PS3.3 names no formula for it (``LBMJAMES128`` and
  ``LBMJANMA`` were added to say which), the manual's reference objects do not test it, and
  implementations differ: some (MIRP, MITK) read it as the older James variant with a male
  coefficient of 120. We read it as James 128 (same as ``LBMJAMES128``) and record a warning
  naming the assumption and, for a male or ``O`` patient, how much the 120 reading would change
  the SUVs (female: both readings agree).
- ``CorrectedImage`` without ATTN (or DECY inconsistent with DecayCorrection) is refused by
  default (``on_invalid="warn"`` records it instead); the manual does not check it.
- Intervals always use whole date-times (``timedelta.total_seconds()``).

Checked against the public IBSI SUV digital reference objects (DRO_0_0 ... DRO_5_0), mirrored
as generated series in ``tests/test_suv_ibsi_dro.py``: all 17 give the reference SUVbw (min
0.20, median 1.00, max 4.00). The one fix they led to is provenance only: for ``ADMIN`` the
``suv_bw_factor`` source now reads "weight / injected dose" (it said "decayed dose", while the
number was, correctly, computed with the undecayed dose).

References
----------
.. [1] Vácha et al. Standardizing SUV computation (IBSI), working version 3.
.. [2] QIBA FDG-PET/CT Technical Committee. FDG-PET/CT as an Imaging Biomarker Measuring
   Response to Cancer Therapy, QIBA Profile v1.13, 2016, Appendix G and H.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydicom import Dataset

from immunopet.errors import SuvError
from immunopet.io.dicom import SliceHeaders
from immunopet.suv import _steps as steps
from immunopet.suv._header import TAG_ACQ_DT as _TAG_ACQ_DT
from immunopet.suv._header import (
    _acquisition_datetime,
    _float,
    _Log,
    _parse_datetime_offset,
    _scanner_offset,
    _text,
    _to_scanner_clock,
    _value,
)
from immunopet.suv._reftime import reference_times
from immunopet.suv.body import (
    JAMES_LEGACY_MALE_COEFFICIENT,
    NORMALISATION_SUV_TYPE,
    PLAIN_LBM_ASSUMPTION,
    compute_lean_body_mass_james_kg,
    normaliser,
)
from immunopet.suv.decay import decay_factor, elapsed_seconds, frame_decay_correction
from immunopet.suv.record import NORMALISATIONS, Sex, SuvDerivation, SuvOverrides

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

MAX_HALF_LIVES = 10.0
"""An injection-to-scan interval above this many half-lives is flagged as suspicious."""
MAX_DECAY_HALF_LIVES = 60.0
"""Beyond this many half-lives the decayed dose is refused (wrong dates; 2^-60 ~ 1e-18)."""
_TAG_FRAME = "(0018,1242) ActualFrameDuration"


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


# --------------------------------------------------------------------------------------------
# The steps of derive_suv
# --------------------------------------------------------------------------------------------


def _suv_factors(
    scale: steps.Scale,
    weight_kg: float,
    height_m: float | None,
    sex: Sex | None,
    decayed_bq: float,
    log: _Log,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Stored value -> SUV factor and normaliser (g, cm²) of every normalisation."""
    factors: dict[str, float | None] = {}
    norms: dict[str, float | None] = {}
    stored_type = scale.suv_type
    stored_norm: float | None = None
    if scale.direct_suv_factor is not None and stored_type is not None:
        try:
            stored_norm = normaliser(stored_type, weight_kg, height_m, sex)
        except SuvError:
            stored_norm = None
    for name in NORMALISATIONS:
        try:
            norm = normaliser(name, weight_kg, height_m, sex)
        except SuvError:
            norm = None
        norms[name] = norm
        if scale.direct_suv_factor is None:
            bqml = 1.0 if scale.bqml_factor is None else scale.bqml_factor
            factors[name] = None if norm is None else bqml * norm / decayed_bq
        elif NORMALISATION_SUV_TYPE[name] == stored_type:
            factors[name] = scale.direct_suv_factor
        elif norm is None or stored_norm is None:
            factors[name] = None
        else:
            factors[name] = scale.direct_suv_factor * norm / stored_norm
    if scale.direct_suv_factor is None:
        scaled = f"{steps.TAG_PHILIPS_BQML} x " if scale.branch.startswith("CNTS") else ""
        log.sources["suv_bw_factor"] = f"computed: {scaled}weight / decayed dose"
    elif stored_type == "BW":
        log.sources["suv_bw_factor"] = log.sources.get("stored_values", "stored as SUVbw")
    else:
        log.sources["suv_bw_factor"] = (
            f"{log.sources.get('stored_values')} converted: weight / {stored_type} normaliser"
        )
    if scale.bqml_factor is not None and scale.direct_suv_factor is not None:
        expected = scale.bqml_factor * compute_suv_bw_factor(weight_kg, decayed_bq)
        if abs(scale.direct_suv_factor / expected - 1.0) > steps.AGREEMENT_TOLERANCE:
            log.warn(
                f"Philips SUV scale factor disagrees by more than 1% with "
                f"{steps.TAG_PHILIPS_BQML} x weight / decayed dose; using (7053,1000)",
                tag=steps.TAG_PHILIPS_SUV,
                value=scale.direct_suv_factor,
                expected=f"{expected:.6g}",
            )
    if stored_type == "LBM" and scale.direct_suv_factor is not None:
        _warn_plain_lbm(weight_kg, height_m, sex, log)
    if sex == "O" and height_m is not None:
        log.warn(
            "sex O: sex-specific body measures are the mean of the male and female values "
            "(IBSI SUV manual)",
            tag=steps.TAG_SEX,
            value="O",
        )
    return factors, norms


def _warn_plain_lbm(weight_kg: float, height_m: float | None, sex: Sex | None, log: _Log) -> None:
    """Record the formula assumed for an image stored as (0054,1006) SUVType ``LBM``."""
    size = ""
    if height_m is not None and sex in ("M", "O"):
        try:
            james = compute_lean_body_mass_james_kg(weight_kg, height_m, sex)
            legacy = compute_lean_body_mass_james_kg(
                weight_kg, height_m, sex, male_coefficient=JAMES_LEGACY_MALE_COEFFICIENT
            )
        except SuvError:
            james = legacy = math.nan
        if math.isfinite(james) and math.isfinite(legacy) and james > 0:
            size = (
                f"; if the scanner used the older 120 multiplier, every converted SUV is "
                f"{100.0 * (james / legacy - 1.0):+.2f}% off"
            )
    log.warn(
        f"{PLAIN_LBM_ASSUMPTION}{size}",
        tag=steps.TAG_SUV_TYPE,
        value="LBM",
        expected="LBMJAMES128 or LBMJANMA",
    )


def _slice_corrections(
    headers: Sequence[Dataset],
    acquisitions: list[datetime | None],
    scan: datetime,
    half_life_s: float,
    log: _Log,
) -> dict[str, float]:
    """Per-slice multipliers of images without decay correction (DecayCorrection NONE)."""
    corrections: dict[str, float] = {}
    missing_duration = 0
    for ds, acquired in zip(headers, acquisitions, strict=True):
        uid = _value(ds, "SOPInstanceUID")
        if uid is None:
            raise log.error(
                f"needed for per-slice decay correction ({steps.TAG_DECAY} NONE)",
                tag="(0008,0018) SOPInstanceUID",
                value="missing",
            )
        if acquired is None:
            raise log.error(
                f"{steps.TAG_DECAY} is NONE: every slice needs its acquisition date-time",
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


def _reference_corrections(
    headers: Sequence[Dataset], times: Sequence[datetime], half_life_s: float
) -> dict[str, float]:
    """Per-slice factors when slices are decay-corrected to different reference times."""
    first = times[0]
    if all(abs(elapsed_seconds(first, t)) < 1.0 for t in times):
        return {}
    return {
        _text(_value(ds, "SOPInstanceUID") or str(i)): compute_slice_decay_correction(
            elapsed_seconds(first, t), 0.0, half_life_s
        )
        for i, (ds, t) in enumerate(zip(headers, times, strict=True))
    }


_ACQUISITION_TAGS = (0x00080022, 0x00080032, 0x0008002A)  # AcquisitionDate, -Time, -DateTime


def _acquisitions(headers: Sequence[Dataset], log: _Log) -> list[datetime | None]:
    scanner = _scanner_offset(headers[0], log)
    slices = SliceHeaders.of(headers)
    changed = set(slices.changed(_ACQUISITION_TAGS))
    out: list[datetime | None] = []
    for index in range(len(slices)):
        if index not in changed:
            out.append(out[-1])  # stored as in the slice before: the same moment
            continue
        ds = slices[index]
        moment = _acquisition_datetime(ds, log)
        if moment is None:
            precise = _value(ds, "AcquisitionDateTime")
            if precise is not None:
                tag = "(0008,002A) AcquisitionDateTime"
                parsed, has_time, offset = _parse_datetime_offset(precise, log, tag)
                moment = _to_scanner_clock(parsed, offset, scanner, tag, log) if has_time else None
        out.append(moment)
    return out


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------


def derive_suv(
    headers: Sequence[Dataset],
    *,
    source: str | Path | None = None,
    files: Sequence[str | Path] | None = None,
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
    files : sequence of str or path, optional
        The file of each header, named when two slices disagree (default "slice N").
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
        Factors, the inputs used, their sources, the rule taken and all warnings (also emitted
        as :class:`~immunopet.errors.SuvWarning`).

    Raises
    ------
    SuvError
        When no SUV can be derived; the message names the source, the tag, the value found,
        what was expected and the override flag that can lift it.

    Notes
    -----
    See the module docstring. The SUV of a voxel of slice *s* is stored value x factor x
    ``slice_corrections[SOPInstanceUID of s]`` (the last only when not empty).
    """
    overrides = SuvOverrides() if overrides is None else overrides
    if not headers:
        raise SuvError("no headers given", file=source, tag="headers", value=0)
    try:
        return _derive(headers, source, files, overrides, on_invalid)
    except OverflowError as exc:  # date arithmetic at the ends of the calendar
        raise SuvError(
            f"a date-time is out of range ({exc})",
            file=source,
            tag="date-times",
            value="out of range",
            expected="dates between years 1 and 9999 (check the header or the overrides)",
        ) from None


def _derive(
    headers: Sequence[Dataset],
    source: str | Path | None,
    files: Sequence[str | Path] | None,
    overrides: SuvOverrides,
    on_invalid: Literal["raise", "warn"],
) -> SuvDerivation:
    first = headers[0]
    uid = _value(first, "SeriesInstanceUID")
    log = _Log(
        where=str(source) if source is not None else (None if uid is None else _text(uid)),
        on_invalid=on_invalid,
    )
    names = (
        [str(f) for f in files]
        if files is not None and len(files) == len(headers)
        else [f"slice {i + 1}" for i in range(len(headers))]
    )
    steps.check_slices_agree(headers, names, log)
    steps.check_rescale_slopes(headers, names, log)

    units_raw = _value(first, "Units")
    units = None if units_raw is None else _text(units_raw).upper()
    log.sources["units"] = steps.TAG_UNITS
    decay_raw = _value(first, "DecayCorrection")
    decay = None if decay_raw is None else _text(decay_raw).upper()
    if decay not in ("START", "ADMIN", "NONE"):
        raise log.error(
            "unsupported decay correction",
            tag=steps.TAG_DECAY,
            value="missing" if decay is None else decay,
            expected="START, ADMIN or NONE",
        )
    log.sources["decay_correction"] = steps.TAG_DECAY
    scale = steps.units_scale(headers, units, log)
    stored_suv = scale.direct_suv_factor is not None and scale.bqml_factor is None
    times_matter = not stored_suv and decay != "ADMIN"
    steps.check_corrected_image(first, decay, log)

    item = steps._item(first)
    if item is None:
        raise log.error(
            "radiopharmaceutical information missing",
            tag=steps.TAG_SEQ,
            value="missing",
            expected="one item with dose, half-life and injection time",
        )
    sequence = first.get("RadiopharmaceuticalInformationSequence")
    if len(sequence) > 1:
        log.warn("several items; using the first", tag=steps.TAG_SEQ, value=len(sequence))

    half_life_s, nuclide = steps.half_life(first, item, overrides, log)
    acquisitions = _acquisitions(headers, log)
    times, rule = reference_times(headers, acquisitions, half_life_s, log)
    scan = times[0]
    injection = steps.injection_datetime(
        first, item, scan, half_life_s, overrides, log, times_matter=times_matter
    )
    elapsed_s = elapsed_seconds(injection, scan)
    flag = steps.FLAGS["injection_datetime"]
    if elapsed_s < 0 and times_matter:
        raise log.error(
            f"injection ({injection.isoformat()}) is after the scan reference time "
            f"({scan.isoformat()}, from {log.sources['scan_datetime']}); if the dates were "
            f"shifted, supply {flag}",
            tag=log.sources["injection_datetime"],
            value=injection.isoformat(),
            expected=f"not after {scan.isoformat()}",
        )
    if elapsed_s > MAX_DECAY_HALF_LIVES * half_life_s and times_matter:
        raise log.error(
            f"the scan is {elapsed_s / half_life_s:.0f} half-lives after the injection "
            f"({injection.isoformat()}): the decayed dose underflows; check the dates or "
            f"supply {flag}",
            tag=log.sources["injection_datetime"],
            value=injection.isoformat(),
            expected=f"at most {MAX_DECAY_HALF_LIVES:g} half-lives before the scan",
        )
    if elapsed_s > MAX_HALF_LIVES * half_life_s:
        log.warn(
            f"scan is {elapsed_s / 3600:.1f} h after injection, more than "
            f"{MAX_HALF_LIVES:g} half-lives; check the dates",
            tag=log.sources["injection_datetime"],
            value=injection.isoformat(),
        )

    activity_bq = steps.injected_activity_bq(item, nuclide, overrides, log, required=not stored_suv)
    weight_kg = steps.weight_kg(first, overrides, log)
    height_m = steps.height_m(first, overrides, log)
    sex = steps.sex(first, overrides, log)

    if stored_suv:
        decayed_bq = math.nan
    elif decay == "ADMIN":
        decayed_bq = activity_bq
    else:
        decayed_bq = compute_decayed_dose_bq(activity_bq, elapsed_s, half_life_s)
    if not stored_suv and not (math.isfinite(decayed_bq) and decayed_bq > 0):
        raise log.error(
            "decayed dose is not a positive number",
            tag=steps.TAG_DOSE,
            value=decayed_bq,
            expected=f"check the dose and the dates ({flag}, --injected-activity-bq)",
        )
    factors, norms = _suv_factors(scale, weight_kg, height_m, sex, decayed_bq, log)
    if decay == "ADMIN" and scale.direct_suv_factor is None:
        # values decay-corrected to injection: the dose is not decayed (provenance says so)
        log.sources["suv_bw_factor"] = log.sources["suv_bw_factor"].replace(
            "decayed dose", f"injected dose ({steps.TAG_DECAY} ADMIN)"
        )
    suv_bw = factors["bw"]
    if suv_bw is None or not math.isfinite(suv_bw) or suv_bw <= 0:
        raise log.error(
            f"the stored SUV ({scale.suv_type}) cannot be converted: height and sex are needed",
            tag="(0010,1020) PatientSize",
            value="missing",
            expected="height in m and sex (--height-m, --sex)",
        )

    slice_corrections: dict[str, float] = {}
    if decay == "NONE":
        slice_corrections = _slice_corrections(headers, acquisitions, scan, half_life_s, log)
    elif not stored_suv and decay == "START":
        slice_corrections = _reference_corrections(headers, times, half_life_s)

    return SuvDerivation(
        series_uid=_text(uid) if uid is not None else "",
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
        suv_lbm_factor=factors["lbm"],
        suv_bsa_factor=factors["bsa"],
        suv_ibw_factor=factors["ibw"],
        suv_type=scale.suv_type,
        reference_time_rule=rule,
        branch=f"{scale.branch}/{decay}",
        scan_time_source=log.sources["scan_datetime"],
        injection_time_source=log.sources["injection_datetime"],
        sources=dict(log.sources),
        slice_corrections=slice_corrections,
        warnings=tuple(log.warnings),
        normalisers=norms,
    )


def with_normalisation(derivation: SuvDerivation, normalisation: str) -> SuvDerivation:
    """The record with :attr:`SuvDerivation.normalisation` set (after checking the factor)."""
    derivation.factor(normalisation)
    return replace(derivation, normalisation=normalisation)  # type: ignore[arg-type]
