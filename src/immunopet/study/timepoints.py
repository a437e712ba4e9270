"""The rule tying a scan's nominal time point to its actual hours after injection.

The nominal time point of a scan is a label (72 h, 120 h) while the real time after injection
varies with scheduling; a difference larger than :func:`nominal_hours_tolerance_h` (the larger
of :data:`NOMINAL_HOURS_TOLERANCE_H` and :data:`NOMINAL_HOURS_TOLERANCE_FRACTION` of the
nominal time) means the manifest points at the wrong scan, or the label is wrong: an error in
``immunopet validate`` and ``immunopet run`` alike.
"""

from __future__ import annotations

import math
from pathlib import Path

from immunopet.errors import ManifestError

__all__ = [
    "NOMINAL_HOURS_TOLERANCE_FRACTION",
    "NOMINAL_HOURS_TOLERANCE_H",
    "check_nominal_hours",
    "nominal_hours_tolerance_h",
]

NOMINAL_HOURS_TOLERANCE_H = 2.0
"""Smallest accepted difference (hours) between nominal and actual hours after injection."""

NOMINAL_HOURS_TOLERANCE_FRACTION = 0.10
"""Accepted difference as a fraction of the nominal time (10 %: 7.2 h at 72 h, 12 h at 120 h)."""


def nominal_hours_tolerance_h(nominal_hours: float) -> float:
    """The accepted difference (hours) between a nominal time point and the actual time.

    Examples
    --------
    >>> nominal_hours_tolerance_h(1), nominal_hours_tolerance_h(72), nominal_hours_tolerance_h(120)
    (2.0, 7.2, 12.0)
    """
    return max(NOMINAL_HOURS_TOLERANCE_H, NOMINAL_HOURS_TOLERANCE_FRACTION * abs(nominal_hours))


def check_nominal_hours(
    nominal_hours: float, hours_after_injection: float, *, file: str | Path | None = None
) -> None:
    """Refuse a scan whose nominal time point is far from its actual hours after injection.

    Parameters
    ----------
    nominal_hours : float, hours
        The manifest's ``nominal_hours`` of the scan.
    hours_after_injection : float, hours
        From the headers (scan start minus injection date-time).
    file : path, optional
        The PET the hours come from (named in the message).

    Raises
    ------
    ManifestError
        When the two differ by more than :func:`nominal_hours_tolerance_h`.

    Examples
    --------
    >>> check_nominal_hours(72, 74.5)
    >>> check_nominal_hours(72, 119.9, file="pet")
    Traceback (most recent call last):
    ...
    immunopet.errors.ManifestError: pet: nominal_hours: the scan was taken 119.9 h after injection (from the headers), not at its nominal 72 h (found 72; expected within 7.2 h of 119.9 h, e.g. nominal_hours = 120)
    """  # noqa: E501
    tolerance = nominal_hours_tolerance_h(nominal_hours)
    if (
        math.isfinite(hours_after_injection)
        and abs(hours_after_injection - nominal_hours) <= tolerance
    ):
        return
    raise ManifestError(
        f"the scan was taken {hours_after_injection:.4g} h after injection (from the headers), "
        f"not at its nominal {nominal_hours:g} h",
        file=file,
        tag="nominal_hours",
        value=nominal_hours,
        expected=(
            f"within {tolerance:.3g} h of {hours_after_injection:.4g} h, e.g. "
            f"nominal_hours = {math.floor(hours_after_injection + 0.5):g}"
        ),
    )
