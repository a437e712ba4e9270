"""Radionuclides used in PET and their half-lives.

Half-lives are the NNDC/DDEP evaluated values, in seconds. The table is the fallback when
(0018,1075) RadionuclideHalfLife is missing and the way a nuclide named in a manifest or a
PET-BIDS sidecar is resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from immunopet.errors import InputError

__all__ = ["NUCLIDES", "Nuclide", "find_nuclide"]

LONG_LIVED_HALF_LIFE_S = 24 * 3600.0
"""Nuclides above this half-life (s) are imaged days after injection: no same-day guesses."""


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
