"""The steps of :func:`immunopet.suv.factors.derive_suv` (private).

Each reads one input of the SUV from the header (or its override), checks it and records its
source and any warning in the problem log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydicom import Dataset

from immunopet.errors import InputError
from immunopet.io.dicom import SliceHeaders
from immunopet.suv._header import (
    _float,
    _Log,
    _parse_datetime_offset,
    _parse_time,
    _private_value,
    _scanner_offset,
    _text,
    _to_scanner_clock,
    _value,
)
from immunopet.suv.body import SUV_TYPES
from immunopet.suv.nuclides import (
    DEFAULT_ACTIVITY_RANGE_BQ,
    LONG_LIVED_HALF_LIFE_S,
    NUCLIDES,
    PLAUSIBLE_ACTIVITY_BQ,
    Nuclide,
    find_nuclide,
)
from immunopet.suv.record import Sex, SuvOverrides

PHILIPS_CREATOR = "Philips PET Private Group"
MBQ_BELOW = 1e4
"""A (0018,1074) RadionuclideTotalDose below this is read as MBq (IBSI SUV manual)."""
GRAMS_FROM = 1000.0
"""A (0010,1030) PatientWeight at or above this is read as grams (IBSI SUV manual)."""
WEIGHT_RANGE_KG = (1.0, 500.0)
MAX_HEIGHT_M = 3.0
MIN_HEIGHT_M = 0.3
AGREEMENT_TOLERANCE = 0.01
"""Relative disagreement (1%) above which two sources of one number raise a warning."""
CLOCK_TOLERANCE = timedelta(hours=1)
"""IBSI SUV manual: an injection up to 1 h after the reference time is a clock difference."""
CONSISTENT_HALF_LIVES = 2.0
"""IBSI SUV manual: a short-lived nuclide's injection date-time is consistent when it lies
between 1 h after and two half-lives before the reference time; otherwise it is repaired."""

TAG_SEQ = "(0054,0016) RadiopharmaceuticalInformationSequence"
TAG_UNITS = "(0054,1001) Units"
TAG_SUV_TYPE = "(0054,1006) SUVType"
TAG_DECAY = "(0054,1102) DecayCorrection"
TAG_CORRECTED = "(0028,0051) CorrectedImage"
TAG_START_DT = "(0018,1078) RadiopharmaceuticalStartDateTime"
TAG_START_TIME = "(0018,1072) RadiopharmaceuticalStartTime"
TAG_HALF_LIFE = "(0018,1075) RadionuclideHalfLife"
TAG_DOSE = "(0018,1074) RadionuclideTotalDose"
TAG_WEIGHT = "(0010,1030) PatientWeight"
TAG_HEIGHT = "(0010,1020) PatientSize"
TAG_SEX = "(0010,0040) PatientSex"
TAG_SLOPE = "(0028,1053) RescaleSlope"
TAG_PHILIPS_SUV = "(7053,1000) Philips SUV Scale Factor"
TAG_PHILIPS_BQML = "(7053,1009) Philips Activity Concentration Scale Factor"
OVERRIDE = "override"
FLAGS = {
    "injection_datetime": "--injection-datetime",
    "weight_kg": "--weight-kg",
    "height_m": "--height-m",
    "sex": "--sex",
    "injected_activity_bq": "--injected-activity-bq",
    "half_life_s": "--half-life-s",
}
"""The command-line flag of each override (named in refusals it can lift)."""


# --------------------------------------------------------------------------------------------
# Every slice must agree
# --------------------------------------------------------------------------------------------


def _item(ds: Dataset) -> Dataset | None:
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    try:
        return sequence[0] if sequence else None
    except (TypeError, IndexError):
        return None


def _from_item(keyword: str) -> Callable[[Dataset], Any]:
    def read(ds: Dataset) -> Any:
        item = _item(ds)
        return None if item is None else _value(item, keyword)

    return read


def _public(keyword: str) -> Callable[[Dataset], Any]:
    return lambda ds: _value(ds, keyword)


_ITEM_TAG = 0x00540016  # (0054,0016) RadiopharmaceuticalInformationSequence

SLICE_VALUES: tuple[tuple[str, Callable[[Dataset], Any], bool, int], ...] = (
    ("(0020,000E) SeriesInstanceUID", _public("SeriesInstanceUID"), False, 0x0020000E),
    (TAG_UNITS, _public("Units"), False, 0x00541001),
    (TAG_DECAY, _public("DecayCorrection"), False, 0x00541102),
    (TAG_SUV_TYPE, _public("SUVType"), False, 0x00541006),
    (TAG_WEIGHT, _public("PatientWeight"), True, 0x00101030),
    (TAG_HEIGHT, _public("PatientSize"), True, 0x00101020),
    (TAG_SEX, _public("PatientSex"), False, 0x00100040),
    ("(0008,0201) TimezoneOffsetFromUTC", _public("TimezoneOffsetFromUTC"), False, 0x00080201),
    (TAG_DOSE, _from_item("RadionuclideTotalDose"), True, _ITEM_TAG),
    (TAG_START_DT, _from_item("RadiopharmaceuticalStartDateTime"), False, _ITEM_TAG),
    (TAG_START_TIME, _from_item("RadiopharmaceuticalStartTime"), False, _ITEM_TAG),
    (TAG_HALF_LIFE, _from_item("RadionuclideHalfLife"), True, _ITEM_TAG),
)
"""Header values that enter the SUV and must be equal in every slice of a series (the flag:
compared as numbers, so that "75" and "75.0" agree; the tag whose stored bytes hold the value:
the element itself, or the whole radiopharmaceutical sequence)."""


_SLOPE_TAG = 0x00281053  # (0028,1053) RescaleSlope


def _comparable(value: Any, numeric: bool) -> Any:
    if value is None:
        return None
    text = _text(value)
    if numeric:
        try:
            return float(text)
        except ValueError:
            pass
    return text.upper()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= 1e-6 * max(abs(a), abs(b))
    return bool(a == b)


def check_slices_agree(headers: Sequence[Dataset], names: Sequence[str], log: _Log) -> None:
    """Refuse a series whose slices disagree on a value that enters the SUV.

    The message names two files and both values. A slice whose stored bytes equal the slice
    before it (same VR, bytes and character set) holds the same value and is not converted
    (:meth:`~immunopet.io.dicom.SliceHeaders.changed`; no dataset is built for it).
    """
    if len(headers) < 2:
        return
    slices = SliceHeaders.of(headers)
    changed: dict[int, list[int]] = {}
    for tag, read, numeric, stored_tag in SLICE_VALUES:
        first_raw = read(slices[0])
        first = _comparable(first_raw, numeric)
        if stored_tag not in changed:
            changed[stored_tag] = slices.changed([stored_tag])
        for index in changed[stored_tag]:
            if index == 0:
                continue
            raw = read(slices[index])
            if not _same(first, _comparable(raw, numeric)):
                shown = ["missing" if v is None else _text(v) for v in (first_raw, raw)]
                raise log.error(
                    f"differs between slices of one series: {names[0]} has {shown[0]!r}, "
                    f"{names[index]} has {shown[1]!r}",
                    tag=tag,
                    value=shown[1],
                    expected=f"{shown[0]!r} as in every other slice",
                )


def check_rescale_slopes(headers: Sequence[Dataset], names: Sequence[str], log: _Log) -> None:
    """Refuse a (0028,1053) RescaleSlope that is not a positive number."""
    slices = SliceHeaders.of(headers)
    for index in slices.changed([_SLOPE_TAG]):  # a slice stored as the one before: passed
        raw = slices.text(index, _SLOPE_TAG)
        if raw is None or not raw.strip():
            continue
        slope = _float(raw, log, TAG_SLOPE)
        if not slope > 0:
            raise log.error(
                f"in {names[index]}: a zero or negative slope makes every SUV 0 or negative",
                tag=TAG_SLOPE,
                value=slope,
                expected="a slope > 0",
            )


# --------------------------------------------------------------------------------------------
# Corrections, nuclide, half-life
# --------------------------------------------------------------------------------------------


def check_corrected_image(ds: Dataset, decay_correction: str, log: _Log) -> None:
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
            tag=TAG_CORRECTED,
            value=found,
            expected="values including ATTN",
        )
    if decay_correction in ("START", "ADMIN") and "DECY" not in corrections:
        log.invalid(
            f"{TAG_DECAY} is {decay_correction} but the image is not flagged decay corrected",
            tag=TAG_CORRECTED,
            value=found,
            expected="values including DECY",
        )
    if decay_correction == "NONE" and "DECY" in corrections:
        log.invalid(
            f"{TAG_DECAY} is NONE but the image is flagged decay corrected",
            tag=TAG_CORRECTED,
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


def half_life(
    ds: Dataset, item: Dataset, overrides: SuvOverrides, log: _Log
) -> tuple[float, Nuclide | None]:
    nuclide = _find_nuclide_in(ds, item, log)
    raw = _value(item, "RadionuclideHalfLife")
    header_s = None if raw is None else _float(raw, log, TAG_HALF_LIFE)
    if header_s is not None and header_s <= 0 and overrides.half_life_s is None:
        raise log.error(
            "must be positive", tag=TAG_HALF_LIFE, value=header_s, expected="s > 0 (--half-life-s)"
        )
    if nuclide is None and header_s is not None and header_s > 0:
        matches = [
            n
            for n in NUCLIDES.values()
            if abs(header_s / n.half_life_s - 1.0) <= AGREEMENT_TOLERANCE
        ]
        if len(matches) == 1:
            nuclide = matches[0]
            log.sources["nuclide"] = f"{TAG_HALF_LIFE} (matches the nuclide table)"
    if overrides.half_life_s is not None:
        value = overrides.half_life_s
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise log.error("must be positive", tag="--half-life-s", value=value, expected="s")
        note_override(header_s, float(value), TAG_HALF_LIFE, log)
        log.sources["half_life_s"] = OVERRIDE
        return float(value), nuclide
    if header_s is not None:
        log.sources["half_life_s"] = TAG_HALF_LIFE
        if nuclide is not None and abs(header_s / nuclide.half_life_s - 1) > AGREEMENT_TOLERANCE:
            log.warn(
                f"half-life disagrees with the table value for {nuclide.name} by more than 1%; "
                "using the header",
                tag=TAG_HALF_LIFE,
                value=header_s,
                expected=f"{nuclide.half_life_s:g} s",
            )
        return header_s, nuclide
    if nuclide is None:
        raise log.error(
            "half-life missing and the radionuclide is not recognised",
            tag=TAG_HALF_LIFE,
            value="missing",
            expected="the half-life in s, a known nuclide in (0054,0300) or (0018,0031), "
            "or --half-life-s",
        )
    log.sources["half_life_s"] = f"nuclide table ({nuclide.name})"
    log.warn(
        f"half-life missing; using the table value for {nuclide.name}, {nuclide.half_life_s:g} s",
        tag=TAG_HALF_LIFE,
        value="missing",
    )
    return nuclide.half_life_s, nuclide


def note_override(header: Any, override: Any, tag: str, log: _Log) -> None:
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


# --------------------------------------------------------------------------------------------
# Injection time
# --------------------------------------------------------------------------------------------


def injection_datetime(
    ds: Dataset,
    item: Dataset,
    scan: datetime,
    half_life_s: float,
    overrides: SuvOverrides,
    log: _Log,
    *,
    times_matter: bool,
) -> datetime:
    """The injection date-time on the scanner clock.

    ``times_matter`` is False when the factor does not depend on the times (GML/CM2ML images,
    DecayCorrection ADMIN): a missing or inconsistent time is then a warning, never a refusal.
    """
    flag = FLAGS["injection_datetime"]
    if overrides.injection_datetime is not None:
        override = overrides.injection_datetime
        if override.tzinfo is not None:
            raise log.error(
                "must be a naive date-time on the scanner clock",
                tag=flag,
                value=override.isoformat(),
                expected="no UTC offset",
            )
        header = _header_injection(ds, item, log)[0]
        note_override(header, override, TAG_START_DT, log)
        log.sources["injection_datetime"] = OVERRIDE
        return override
    header, header_date, start_time = _header_injection(ds, item, log)
    short_lived = half_life_s <= LONG_LIVED_HALF_LIFE_S
    if header is None and header_date is not None and start_time is not None:
        header = datetime.combine(header_date, start_time)
        log.sources["injection_datetime"] = f"{TAG_START_DT} (date) + {TAG_START_TIME}"
    elif header is not None:
        log.sources["injection_datetime"] = TAG_START_DT
    if header is not None:
        gap = scan - header
        consistent = (
            -CLOCK_TOLERANCE <= gap < timedelta(seconds=CONSISTENT_HALF_LIVES * half_life_s)
        )
        if short_lived and not consistent:
            return _repair_short_lived(header.time(), scan, header, log)
        if gap < timedelta(0) and not times_matter:
            log.warn(
                f"injection is after the scan reference time ({scan.isoformat()}), a "
                "de-identification date shift? The SUV factor does not depend on it",
                tag=TAG_START_DT,
                value=header.isoformat(),
            )
        return header
    if start_time is None:
        if not times_matter:
            log.warn(
                "injection time missing; the SUV factor does not depend on it (hours after "
                "injection unknown, shown as the scan time)",
                tag=TAG_START_DT,
                value="missing",
            )
            log.sources["injection_datetime"] = "missing (scan reference time used)"
            return scan
        raise log.error(
            "injection time missing",
            tag=TAG_START_DT,
            value="missing",
            expected=f"a date-time (or {TAG_START_TIME}), or {flag}",
        )
    if not short_lived:
        if not times_matter:
            log.warn(
                f"only {TAG_START_TIME} is given for a long-lived nuclide; its date is unknown. "
                "The SUV factor does not depend on it; hours after injection are not known",
                tag=TAG_START_DT,
                value="missing",
            )
            log.sources["injection_datetime"] = "missing (scan reference time used)"
            return scan
        raise log.error(
            f"only {TAG_START_TIME} ({start_time.isoformat()}) is given and the half-life "
            f"({half_life_s / 3600:g} h) exceeds {LONG_LIVED_HALF_LIFE_S / 3600:g} h: the "
            "injection may be days before the scan, so its date cannot be assumed; supply "
            f"the injection date-time ({flag})",
            tag=TAG_START_DT,
            value="missing",
            expected="the injection date-time",
        )
    return _repair_short_lived(start_time, scan, None, log)


def _header_injection(
    ds: Dataset, item: Dataset, log: _Log
) -> tuple[datetime | None, date | None, Any]:
    header: datetime | None = None
    header_date: date | None = None
    raw_dt = _value(item, "RadiopharmaceuticalStartDateTime")
    if raw_dt is not None:
        parsed, has_time, offset = _parse_datetime_offset(raw_dt, log, TAG_START_DT)
        parsed = _to_scanner_clock(parsed, offset, _scanner_offset(ds, log), TAG_START_DT, log)
        if has_time:
            header = parsed
        else:
            header_date = parsed.date()
    raw_time = _value(item, "RadiopharmaceuticalStartTime")
    start_time = None if raw_time is None else _parse_time(raw_time, log, TAG_START_TIME)
    return header, header_date, start_time


def _repair_short_lived(start: Any, scan: datetime, header: datetime | None, log: _Log) -> datetime:
    """IBSI SUV manual: a short-lived nuclide was injected on the scan day, or the day before
    when its time of day is more than 1 h after the reference time."""
    injection = datetime.combine(scan.date(), start)
    day = "the scan date"
    if injection - scan > CLOCK_TOLERANCE:
        injection -= timedelta(days=1)
        day = "the day before the scan (the time of day is over 1 h after the scan)"
    what = "missing" if header is None else f"{header.isoformat()} is out of range"
    log.warn(
        f"injection date {what}; assumed {day} for a short-lived nuclide (IBSI SUV manual): "
        f"injection at {injection.isoformat()}",
        tag=TAG_START_DT,
        value="missing" if header is None else header.isoformat(),
    )
    log.sources["injection_datetime"] = f"{TAG_START_TIME} + assumed date"
    return injection


# --------------------------------------------------------------------------------------------
# Dose and body size
# --------------------------------------------------------------------------------------------


def injected_activity_bq(
    item: Dataset,
    nuclide: Nuclide | None,
    overrides: SuvOverrides,
    log: _Log,
    *,
    required: bool,
) -> float:
    flag = FLAGS["injected_activity_bq"]
    raw = _value(item, "RadionuclideTotalDose")
    header = None if raw is None else _float(raw, log, TAG_DOSE)
    if overrides.injected_activity_bq is not None:
        value = float(overrides.injected_activity_bq)
        if not (math.isfinite(value) and value > 0):
            raise log.error("must be positive", tag=flag, value=value, expected="Bq > 0")
        note_override(header, value, TAG_DOSE, log)
        log.sources["injected_activity_bq"] = OVERRIDE
        low, high = _activity_range(nuclide)
        if not low <= value <= high:
            log.warn(
                "injected activity override outside the plausible range; used as given",
                tag=flag,
                value=value,
                expected=f"Bq between {low:g} and {high:g}",
            )
        return value
    if header is None:
        if not required:
            log.warn("injected activity missing; not needed for this image", tag=TAG_DOSE)
            log.sources["injected_activity_bq"] = "missing"
            return math.nan
        raise log.error(
            "injected activity missing",
            tag=TAG_DOSE,
            value="missing",
            expected=f"activity in Bq, or {flag}",
        )
    log.sources["injected_activity_bq"] = TAG_DOSE
    value = header
    if not value > 0:
        raise log.error(
            "injected activity must be positive", tag=TAG_DOSE, value=value, expected=f"Bq ({flag})"
        )
    if value < MBQ_BELOW:
        value = header * 1e6
        log.warn(
            f"below {MBQ_BELOW:g}: read as MBq (IBSI SUV manual), {value:g} Bq",
            tag=TAG_DOSE,
            value=header,
        )
        log.sources["injected_activity_bq"] = f"{TAG_DOSE} (read as MBq)"
    low, high = _activity_range(nuclide)
    if required and not low <= value <= high:
        name = nuclide.name if nuclide is not None else "an unknown nuclide"
        raise log.error(
            f"implausible injected activity for {name}; if it is right, give it as {flag}",
            tag=TAG_DOSE,
            value=value,
            expected=f"Bq between {low:g} and {high:g}",
        )
    return value


def _activity_range(nuclide: Nuclide | None) -> tuple[float, float]:
    if nuclide is None:
        return DEFAULT_ACTIVITY_RANGE_BQ
    return PLAUSIBLE_ACTIVITY_BQ.get(nuclide.name, DEFAULT_ACTIVITY_RANGE_BQ)


def weight_kg(ds: Dataset, overrides: SuvOverrides, log: _Log) -> float:
    flag = FLAGS["weight_kg"]
    raw = _value(ds, "PatientWeight")
    header = None if raw is None else _float(raw, log, TAG_WEIGHT)
    if overrides.weight_kg is not None:
        value, tag = float(overrides.weight_kg), flag
        note_override(header if header else None, value, TAG_WEIGHT, log)
        log.sources["weight_kg"] = OVERRIDE
    elif not header:
        raise log.error(
            "patient weight missing or zero",
            tag=TAG_WEIGHT,
            value="missing" if header is None else header,
            expected=f"weight in kg, or {flag}",
        )
    else:
        value, tag = header, TAG_WEIGHT
        log.sources["weight_kg"] = TAG_WEIGHT
        if value >= GRAMS_FROM:
            value = header / 1000.0
            log.warn(
                f"at or above {GRAMS_FROM:g}: read as grams (IBSI SUV manual), {value:g} kg",
                tag=TAG_WEIGHT,
                value=header,
            )
            log.sources["weight_kg"] = f"{TAG_WEIGHT} (read as g)"
    low, high = WEIGHT_RANGE_KG
    if not low <= value <= high:
        raise log.error(
            "implausible patient weight",
            tag=tag,
            value=value,
            expected=f"kg between {low:g} and {high:g} ({flag})",
        )
    return value


def height_m(ds: Dataset, overrides: SuvOverrides, log: _Log) -> float | None:
    raw = _value(ds, "PatientSize")
    header = None if raw is None else _float(raw, log, TAG_HEIGHT)
    if overrides.height_m is not None:
        value, tag = float(overrides.height_m), FLAGS["height_m"]
        note_override(header if header else None, value, TAG_HEIGHT, log)
        source = OVERRIDE
    elif not header:
        return None  # missing or 0 (the usual "unknown"): no SUL / SUVbsa / SUVibw
    else:
        value, tag, source = header, TAG_HEIGHT, TAG_HEIGHT
    if not MIN_HEIGHT_M <= value <= MAX_HEIGHT_M:
        hint = "looks like cm; the standard unit is m" if value > MAX_HEIGHT_M else "implausible"
        log.invalid(
            f"height {hint} — supply --height-m; SUL, SUVbsa and SUVibw left out",
            tag=tag,
            value=value,
            expected=f"m between {MIN_HEIGHT_M:g} and {MAX_HEIGHT_M:g}",
        )
        return None
    log.sources["height_m"] = source
    return value


def sex(ds: Dataset, overrides: SuvOverrides, log: _Log) -> Sex | None:
    text = _text(_value(ds, "PatientSex") or "").upper()
    header: Sex | None = (
        "M" if text == "M" else "F" if text == "F" else "O" if text == "O" else None
    )
    if overrides.sex is not None:
        if overrides.sex not in ("M", "F", "O"):
            raise log.error(
                "unknown sex", tag=FLAGS["sex"], value=overrides.sex, expected="'M', 'F' or 'O'"
            )
        note_override(header, overrides.sex, TAG_SEX, log)
        log.sources["sex"] = OVERRIDE
        return overrides.sex
    if header is not None:
        log.sources["sex"] = TAG_SEX
    return header


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """What the Units branch gives.

    ``bqml_factor``: stored value -> Bq/mL; ``direct_suv_factor``: stored value -> SUV of type
    ``suv_type`` (GML, CM2ML, Philips (7053,1000) = BW).
    """

    branch: str
    bqml_factor: float | None
    direct_suv_factor: float | None
    suv_type: str | None = None


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


def _suv_type(ds: Dataset, units: str, log: _Log) -> str:
    raw = _value(ds, "SUVType")
    if raw is None:
        default = "BSA" if units == "CM2ML" else "BW"
        log.warn(
            f"missing for a {units} image; assumed {default}",
            tag=TAG_SUV_TYPE,
            value="missing",
        )
        log.sources["suv_type"] = f"assumed from {TAG_UNITS} {units}"
        return default
    value = _text(raw).upper()
    if value not in SUV_TYPES:
        raise log.error(
            "unknown SUV type", tag=TAG_SUV_TYPE, value=value, expected=", ".join(SUV_TYPES)
        )
    if (units == "CM2ML") != (value == "BSA"):
        raise log.error(
            f"does not match {TAG_UNITS} {units}",
            tag=TAG_SUV_TYPE,
            value=value,
            expected="BSA with CM2ML, a mass-based type with GML",
        )
    log.sources["suv_type"] = TAG_SUV_TYPE
    return value


def units_scale(headers: Sequence[Dataset], units: str | None, log: _Log) -> Scale:
    if units == "BQML":
        log.sources["bqml_factor"] = f"{TAG_UNITS} BQML"
        return Scale("BQML", 1.0, None)
    if units in ("GML", "CM2ML"):
        suv_type = _suv_type(headers[0], units, log)
        log.sources["stored_values"] = f"{TAG_UNITS} {units} + {TAG_SUV_TYPE} {suv_type}"
        return Scale(f"{units}/{suv_type}", None, 1.0, suv_type)
    if units == "CNTS":
        suv = _philips_factor(headers, 0x00, TAG_PHILIPS_SUV, log)
        bqml = _philips_factor(headers, 0x09, TAG_PHILIPS_BQML, log)
        if bqml is not None:
            log.sources["bqml_factor"] = TAG_PHILIPS_BQML
        if suv is not None:
            log.sources["stored_values"] = TAG_PHILIPS_SUV
            name = "Philips(7053,1000+1009)" if bqml is not None else "Philips(7053,1000)"
            return Scale(f"CNTS/{name}", bqml, suv, "BW")
        if bqml is not None:
            return Scale("CNTS/Philips(7053,1009)", bqml, None)
        raise log.error(
            "CNTS images need the Philips private SUV or activity concentration scale factor",
            tag=TAG_UNITS,
            value="CNTS",
            expected=f"{TAG_PHILIPS_SUV} or {TAG_PHILIPS_BQML} "
            f"(private creator {PHILIPS_CREATOR!r})",
        )
    raise log.error(
        "unsupported units",
        tag=TAG_UNITS,
        value="missing" if units is None else units,
        expected="BQML, CNTS (Philips), GML or CM2ML",
    )
