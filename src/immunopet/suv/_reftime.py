"""The decay-correction reference time of each frame (private to :mod:`immunopet.suv`).

The order is the IBSI SUV manual's (working version 3), per slice (frame):

1. Siemens private (0071,1022) decay-correction date-time (creator ``SIEMENS MI RECON``);
2. GE private (0009,100D) scan date-time (creator ``GEMS_PETD_01``);
3. the acquisition date-time when it equals the series date-time;
4. GE (and (0054,1300) FrameReferenceTime known): acquisition - FrameReferenceTime;
5. otherwise acquisition + :math:`T_{ave}` - FrameReferenceTime with
   :math:`T_{ave} = \\ln(\\lambda T/(1-e^{-\\lambda T}))/\\lambda`, T the (0018,1242)
   ActualFrameDuration: the moment in the frame at which the activity equals the frame mean.

When no frame reference time is known either, the QIBA rule is the fallback: the series
date-time when it is not after the earliest acquisition, else the earliest acquisition (with a
warning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydicom import Dataset

from immunopet.suv._header import (
    TAG_ACQ_DT,
    _combine,
    _float,
    _Log,
    _parse_datetime,
    _private_value,
    _text,
    _value,
)
from immunopet.suv.decay import frame_decay_correction

SIEMENS_CREATOR = "SIEMENS MI RECON"
GE_CREATOR = "GEMS_PETD_01"
TAG_SERIES_DT = "(0008,0021) SeriesDate + (0008,0031) SeriesTime"
TAG_GE_SCAN = "(0009,100D) GE private scan date-time [GEMS_PETD_01]"
TAG_SIEMENS = "(0071,1022) Siemens decay correction date-time [SIEMENS MI RECON]"
TAG_FRAME_REF = "(0054,1300) FrameReferenceTime"
TAG_FRAME = "(0018,1242) ActualFrameDuration"


def t_ave_s(duration_s: float, half_life_s: float) -> float:
    """Time after frame start at which the activity equals the frame mean, seconds.

    .. math:: T_{ave} = \\frac{1}{\\lambda}\\ln\\frac{\\lambda T}{1 - e^{-\\lambda T}}

    Examples
    --------
    >>> round(t_ave_s(600.0, 6586.2), 3)  # 18F, 10 min frame
    298.421
    """
    if duration_s <= 0:
        return 0.0
    return math.log(frame_decay_correction(duration_s, half_life_s)) * half_life_s / math.log(2.0)


def _private_datetime(
    ds: Dataset, group: int, creator: str, tag: str, log: _Log
) -> datetime | None:
    raw = _private_value(ds, group, creator, 0x22 if group == 0x0071 else 0x0D, log, tag)
    if raw is None or not _text(raw):
        return None
    moment, has_time = _parse_datetime(raw, log, tag)
    return moment if has_time else None


def _is_ge(ds: Dataset) -> bool:
    return "GE" in _text(_value(ds, "Manufacturer") or "").upper().split()


def reference_times(
    headers: Sequence[Dataset],
    acquisitions: Sequence[datetime | None],
    half_life_s: float,
    log: _Log,
) -> tuple[list[datetime], str]:
    """The reference time of every slice and the rule taken (one rule per series).

    Raises
    ------
    SuvError
        When no rule gives a time.
    """
    first = headers[0]
    series = _combine(first, "SeriesDate", "SeriesTime", log, TAG_SERIES_DT)
    labels = {
        "siemens": TAG_SIEMENS,
        "ge": TAG_GE_SCAN,
        "equal": f"{TAG_SERIES_DT} (= {TAG_ACQ_DT})",
        "frame": (
            f"GE: {TAG_ACQ_DT} - {TAG_FRAME_REF}"
            if _is_ge(first)
            else f"{TAG_ACQ_DT} + T_ave - {TAG_FRAME_REF}"
        ),
    }
    times: list[datetime] = []
    used: list[str] = []
    for ds, acquired in zip(headers, acquisitions, strict=True):
        for rule in labels:
            moment = _by_rule(rule, ds, acquired, series, half_life_s, log)
            if moment is not None:
                times.append(moment)
                if labels[rule] not in used:
                    used.append(labels[rule])
                break
        else:
            return _qiba(series, acquisitions, len(headers), log)
    label = "; ".join(used)
    log.sources["scan_datetime"] = label
    return times, label


def _by_rule(
    rule: str,
    ds: Dataset,
    acquired: datetime | None,
    series: datetime | None,
    half_life_s: float,
    log: _Log,
) -> datetime | None:
    if rule == "siemens":
        return _private_datetime(ds, 0x0071, SIEMENS_CREATOR, TAG_SIEMENS, log)
    if rule == "ge":
        moment = _private_datetime(ds, 0x0009, GE_CREATOR, TAG_GE_SCAN, log)
        if moment is not None and acquired is not None and moment > acquired:
            log.warn(
                "GE scan date-time is after the earliest acquisition",
                tag=TAG_GE_SCAN,
                value=moment.isoformat(),
                expected=f"not after {acquired.isoformat()}",
            )
        return moment
    if acquired is None:
        return None
    if rule == "equal":
        return acquired if series is not None and acquired == series else None
    raw = _value(ds, "FrameReferenceTime")
    if raw is None:
        return None
    reference_ms = _float(raw, log, TAG_FRAME_REF)
    duration = _value(ds, "ActualFrameDuration")
    duration_s = 0.0 if duration is None else _float(duration, log, TAG_FRAME) / 1000.0
    if not (0 <= reference_ms <= 1e9 and 0 <= duration_s <= 1e6):
        raise log.error(
            "frame reference time or duration out of range",
            tag=TAG_FRAME_REF,
            value=f"{reference_ms:g} ms, frame {duration_s:g} s",
            expected="0 to 1e9 ms, frame 0 to 1e6 s",
        )
    if _is_ge(ds):
        return acquired - timedelta(milliseconds=reference_ms)
    offset_s = t_ave_s(duration_s, half_life_s) - reference_ms / 1000.0
    try:
        return acquired + timedelta(seconds=offset_s)
    except OverflowError:
        raise log.error(
            "reference time out of the calendar", tag=TAG_FRAME_REF, value=reference_ms
        ) from None


def _qiba(
    series: datetime | None, acquisitions: Sequence[datetime | None], n: int, log: _Log
) -> tuple[list[datetime], str]:
    known = [moment for moment in acquisitions if moment is not None]
    earliest = min(known) if known else None
    if series is not None and (earliest is None or series <= earliest):
        if earliest is None:
            log.warn(
                "no acquisition date-time in the series; SeriesTime cannot be checked "
                "against it (QIBA)",
                tag=TAG_ACQ_DT,
                value="missing",
            )
        label = f"{TAG_SERIES_DT} (QIBA: not after the earliest acquisition)"
        log.sources["scan_datetime"] = label
        return [series] * n, label
    if earliest is None:
        raise log.error(
            "no scan reference time",
            tag=TAG_SERIES_DT,
            value="missing",
            expected=f"SeriesDate/SeriesTime, {TAG_ACQ_DT} or {TAG_FRAME_REF}",
        )
    reason = (
        "missing"
        if series is None
        else f"{series.isoformat()} is after the earliest acquisition (post-processed series?)"
    )
    log.warn(
        f"series date-time {reason} and no frame reference time; using the earliest "
        "acquisition date-time of the series",
        tag=TAG_SERIES_DT,
        value=earliest.isoformat(),
    )
    label = f"{TAG_ACQ_DT} (earliest of the series)"
    log.sources["scan_datetime"] = label
    return [earliest] * n, label
