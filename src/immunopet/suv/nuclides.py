"""Radionuclides used in PET and their half-lives.

Half-lives are the NNDC/DDEP evaluated values, in seconds. The table is the fallback when
(0018,1075) RadionuclideHalfLife is missing and the way a nuclide named in a manifest or a
PET-BIDS sidecar is resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from immunopet.errors import InputError

__all__ = ["NUCLIDES", "PLAUSIBLE_ACTIVITY_BQ", "Nuclide", "find_nuclide"]

LONG_LIVED_HALF_LIFE_S = 11.5 * 3600.0
"""Nuclides above this half-life (s) may be imaged days after injection: their injection date
is never assumed nor repaired (IBSI SUV manual: 11.5 h; 89Zr, 64Cu, 124I, 177Lu)."""

PLAUSIBLE_ACTIVITY_BQ: dict[str, tuple[float, float]] = {
    "11C": (20e6, 2e9),
    "15O": (50e6, 5e9),
    "18F": (10e6, 1.5e9),
    "64Cu": (10e6, 1e9),
    "68Ga": (10e6, 1e9),
    "82Rb": (100e6, 5e9),
    "89Zr": (1e6, 500e6),
    "124I": (1e6, 1e9),
    "177Lu": (10e6, 40e9),
}
"""Injected activities (Bq) outside these ranges are refused unless given as an override:
wide enough for any adult or paediatric diagnostic (or 177Lu therapeutic) administration,
narrow enough to catch a kBq, MBq or mCi mix-up."""

DEFAULT_ACTIVITY_RANGE_BQ = (1e5, 1e11)
"""Plausible range for a nuclide not in :data:`PLAUSIBLE_ACTIVITY_BQ`."""


@dataclass(frozen=True)
class Nuclide:
    """A positron emitter.

    Attributes
    ----------
    name : str
        Canonical short name such as ``"89Zr"`` (mass number then symbol).
    element : str
        Element name as DICOM code meanings spell it (``"Zirconium"``).
    half_life_s : float, seconds
        Physical half-life.
    """

    name: str
    element: str
    half_life_s: float

    @property
    def half_life_h(self) -> float:
        """Half-life in hours."""
        return self.half_life_s / 3600.0

    @property
    def is_long_lived(self) -> bool:
        """True when the half-life exceeds 24 h (multi-day imaging, e.g. 89Zr, 124I)."""
        return self.half_life_s > LONG_LIVED_HALF_LIFE_S

    @property
    def bids_name(self) -> str:
        """The PET-BIDS ``TracerRadionuclide`` spelling, e.g. ``"Zr89"``."""
        mass, symbol = _split(self.name)
        return f"{symbol}{mass}"


def _split(name: str) -> tuple[str, str]:
    match = re.fullmatch(r"(\d+)([A-Z][a-z]?)", name)
    if match is None:  # pragma: no cover - table entries are well-formed
        raise ValueError(name)
    return match.group(1), match.group(2)


NUCLIDES: dict[str, Nuclide] = {
    n.name: n
    for n in (
        Nuclide("11C", "Carbon", 20.364 * 60),
        Nuclide("15O", "Oxygen", 122.24),
        Nuclide("18F", "Fluorine", 109.77 * 60),
        Nuclide("64Cu", "Copper", 12.701 * 3600),
        Nuclide("68Ga", "Gallium", 67.71 * 60),
        Nuclide("82Rb", "Rubidium", 76.4),
        Nuclide("89Zr", "Zirconium", 78.41 * 3600),
        Nuclide("124I", "Iodine", 4.1760 * 24 * 3600),
        Nuclide("177Lu", "Lutetium", 6.647 * 24 * 3600),
    )
}
"""Known nuclides by canonical name."""

_SYMBOLS = {n.element.lower(): _split(n.name)[1] for n in NUCLIDES.values()}


def find_nuclide(text: str) -> Nuclide:
    """Resolve a nuclide from the ways headers and users write it.

    Accepts ``"89Zr"``, ``"Zr89"``, ``"Zr-89"``, ``"^89^Zirconium"`` (DICOM code meaning),
    ``"Zirconium-89"``, ``"89-Zr"``, case-insensitively.

    Raises
    ------
    InputError
        When the text names no nuclide in :data:`NUCLIDES`.

    Examples
    --------
    >>> find_nuclide("^89^Zirconium").half_life_h
    78.41
    >>> find_nuclide("F18").name
    '18F'
    """
    cleaned = text.strip().replace("^", " ").replace("-", " ").replace("_", " ")
    digits = re.findall(r"\d+", cleaned)
    letters = re.findall(r"[A-Za-z]+", cleaned)
    if len(digits) == 1 and len(letters) == 1:
        word = letters[0].lower()
        symbol = _SYMBOLS.get(word, word.capitalize())
        key = f"{int(digits[0])}{symbol}"
        if key in NUCLIDES:
            return NUCLIDES[key]
    raise InputError(
        "unknown radionuclide",
        tag="radionuclide",
        value=text,
        expected="one of " + ", ".join(NUCLIDES),
    )
