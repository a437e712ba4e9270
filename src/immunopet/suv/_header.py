"""Reading PET header values for :mod:`immunopet.suv.factors` (private).

The problem log that collects warnings and sources while one series is processed, and the
small readers of DICOM values (dates, times, numbers, private elements) that raise
:class:`~immunopet.errors.SuvError` naming the tag.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydicom import Dataset
from pydicom.tag import Tag
from pydicom.valuerep import DA, DT, TM

from immunopet.errors import SuvError, SuvWarning, describe_problem

OnInvalid = Literal["raise", "warn"]

TAG_ACQ_DT = "(0008,0022) AcquisitionDate + (0008,0032) AcquisitionTime"

# --------------------------------------------------------------------------------------------
# Problem collection
# --------------------------------------------------------------------------------------------


_INTERNAL_FILES = {__file__, __file__.replace("_header.py", "factors.py")}


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this module."""
    frame = sys._getframe(2)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename in _INTERNAL_FILES:
        frame = frame.f_back
        level += 1
    return level


@dataclass
class _Log:
    """Collects warnings and sources while one series is processed (private, mutable)."""

    where: str | None
    on_invalid: OnInvalid
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def error(
        self, message: str, *, tag: str, value: Any = None, expected: str | None = None
    ) -> SuvError:
        return SuvError(message, file=self.where, tag=tag, value=value, expected=expected)

    def warn(
        self, message: str, *, tag: str, value: Any = None, expected: str | None = None
    ) -> None:
        text = describe_problem(message, tag=tag, value=value, expected=expected)
        if text in self.warnings:  # e.g. the same private-tag fallback in every slice
            return
        self.warnings.append(text)
        emitted = text if self.where is None else f"{self.where}: {text}"
        warnings.warn(emitted, SuvWarning, stacklevel=_outside_stacklevel())

    def invalid(
        self, message: str, *, tag: str, value: Any = None, expected: str | None = None
    ) -> None:
        """A validation problem: raise, or (``on_invalid="warn"``) record a warning."""
        if self.on_invalid == "raise":
            raise self.error(message, tag=tag, value=value, expected=expected)
        self.warn(message, tag=tag, value=value, expected=expected)


# --------------------------------------------------------------------------------------------
# Header access
# --------------------------------------------------------------------------------------------


def _value(ds: Dataset, keyword: str) -> Any:
    """The value of a public attribute, ``None`` when absent or empty."""
    value = ds.get(keyword)
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return None
    return value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00")
    return str(value).strip()


def _float(value: Any, log: _Log, tag: str) -> float:
    try:
        number = float(_text(value)) if isinstance(value, bytes | str) else float(value)
    except (TypeError, ValueError):
        raise log.error("not a number", tag=tag, value=_text(value)) from None
    if not math.isfinite(number):
        raise log.error("not a finite number", tag=tag, value=number)
    return number


def _plain(moment: datetime) -> datetime:
    """A naive ``datetime`` (the scanner clock), without pydicom's subclass or a UTC offset."""
    return datetime.combine(date(moment.year, moment.month, moment.day), moment.time())


def _parse_date(value: Any, log: _Log, tag: str) -> date:
    try:
        parsed = value if isinstance(value, date) else DA(_text(value))
    except ValueError:
        parsed = None
    if parsed is None:
        raise log.error("not a DICOM date", tag=tag, value=_text(value), expected="YYYYMMDD")
    return date(parsed.year, parsed.month, parsed.day)


def _parse_time(value: Any, log: _Log, tag: str) -> time:
    try:
        parsed = value if isinstance(value, time) else TM(_text(value))
    except ValueError:
        parsed = None
    if parsed is None:
        raise log.error("not a DICOM time", tag=tag, value=_text(value), expected="HHMMSS.FFFFFF")
    return time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond)


def _parse_datetime(value: Any, log: _Log, tag: str) -> tuple[datetime, bool]:
    """Parse a DT value; the flag says whether it has a time of day (at least HHMM)."""
    text = _text(value)
    digits = re.split(r"[.+-]", text, maxsplit=1)[0]
    try:
        parsed = DT(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise log.error(
            "not a DICOM date-time", tag=tag, value=text, expected="YYYYMMDDHHMMSS.FFFFFF"
        )
    return _plain(parsed), len(digits) >= 12


def _parse_datetime_offset(
    value: Any, log: _Log, tag: str
) -> tuple[datetime, bool, timedelta | None]:
    """As :func:`_parse_datetime`, plus the UTC offset written in the value (``None``: none)."""
    moment, has_time = _parse_datetime(value, log, tag)
    text = _text(value)
    match = re.search(r"([+-])(\d{2})(\d{2})$", text)
    if match is None or len(re.split(r"[+-]", text, maxsplit=1)[0]) < 4:
        return moment, has_time, None
    sign = 1 if match.group(1) == "+" else -1
    offset = sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return moment, has_time, offset


def _scanner_offset(ds: Dataset, log: _Log) -> timedelta | None:
    """(0008,0201) TimezoneOffsetFromUTC as a timedelta, ``None`` when absent."""
    raw = _value(ds, "TimezoneOffsetFromUTC")
    if raw is None:
        return None
    text = _text(raw)
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text)
    if match is None:
        raise log.error(
            "not a UTC offset",
            tag="(0008,0201) TimezoneOffsetFromUTC",
            value=text,
            expected="+HHMM or -HHMM",
        )
    sign = 1 if match.group(1) == "+" else -1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))


def _to_scanner_clock(
    moment: datetime, offset: timedelta | None, scanner: timedelta | None, tag: str, log: _Log
) -> datetime:
    """A date-time written with a UTC offset, moved to the scanner clock (series times)."""
    if offset is None:
        return moment
    if scanner is None:
        log.warn(
            "date-time carries a UTC offset but (0008,0201) TimezoneOffsetFromUTC is absent; "
            "assumed the scanner clock has the same offset",
            tag=tag,
            value=f"{offset}",
        )
        return moment
    return moment - offset + scanner


def _combine(
    ds: Dataset, date_keyword: str, time_keyword: str, log: _Log, tag: str
) -> datetime | None:
    day, clock = _value(ds, date_keyword), _value(ds, time_keyword)
    if day is None or clock is None:
        return None
    return datetime.combine(_parse_date(day, log, tag), _parse_time(clock, log, tag))


def _acquisition_datetime(ds: Dataset, log: _Log) -> datetime | None:
    moment = _combine(ds, "AcquisitionDate", "AcquisitionTime", log, TAG_ACQ_DT)
    if moment is not None:
        return moment
    precise = _value(ds, "AcquisitionDateTime")
    if precise is not None:
        parsed, has_time = _parse_datetime(precise, log, "(0008,002A) AcquisitionDateTime")
        return parsed if has_time else None
    return None


def _private_block_start(ds: Dataset, group: int, creator: str) -> int | None:
    """The first tag of ``creator``'s private block in ``group`` (``gggg,xx00``), else None.

    What :meth:`pydicom.Dataset.private_block` finds (the lowest creator element whose value is
    ``creator``), by one pass over the dataset's tags instead of slicing the dataset.
    """
    low, high = group << 16 | 0x0010, group << 16 | 0x0100
    # keys() as plain ints: iterating the Dataset converts every element, and BaseTag
    # comparisons run in Python
    tags = [int(key) for key in ds.keys()]  # noqa: SIM118
    for key in sorted(key for key in tags if low <= key < high):
        if ds[key].value == creator:
            return group << 16 | (key & 0xFF) << 8
    return None


def _private_value(ds: Dataset, group: int, creator: str, offset: int, log: _Log, tag: str) -> Any:
    """A private element by creator (pydicom private block), else the raw tag.

    The raw tag ``(group, 0x10xx)`` is accepted only when no private creator reserves block
    ``0x10`` at all (some anonymisers strip creators); a warning is then recorded.
    """
    block = _private_block_start(ds, group, creator)
    if block is not None:
        element = block | offset
        return ds[element].value if element in ds else None
    if Tag(group, 0x0010) in ds:
        return None  # block 0x10 belongs to another creator
    raw = Tag(group, 0x1000 + offset)
    if raw in ds:
        log.warn(
            f"private creator {creator!r} missing; reading the raw tag",
            tag=tag,
            expected=f"private creator at ({group:04X},0010)",
        )
        return ds[raw].value
    return None
