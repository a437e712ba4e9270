"""Read text-valued header elements as stored (private helper of :mod:`immunopet.io.dicom`).

A header read by pydicom keeps each element raw until it is first accessed; the conversion
(with validation) of decimal strings and UIDs then dominates the cost of stacking hundreds of
slices. Geometry, rescale and identifiers are ASCII text in DICOM (VR DS, IS, UI, CS), so they
are taken here straight from the stored bytes, or from the converted value when pydicom (or a
caller) has already converted the element. Binary VRs (US, UL ...) must not be read this way.
"""

from __future__ import annotations

from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

StoredKey = tuple[str, Any, Any]
"""An element as stored: (VR, value bytes, character set); absent: ``("", b"", "")``."""

ABSENT: StoredKey = ("", b"", "")


def element_text(header: Dataset, keyword: str) -> str | None:
    """The value of a text element (DS, IS, UI, CS, LO ...) as a string; None when absent.

    Multiple values are joined with a backslash, as stored. Padding (spaces, NUL) is removed.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.ImagePositionPatient = ["-20.0", "-24", "1.5"]
    >>> element_text(ds, "ImagePositionPatient")
    '-20.0\\\\-24\\\\1.5'
    >>> element_text(ds, "PixelSpacing") is None
    True
    """
    tag = tag_for_keyword(keyword)
    return None if tag is None else text_of(header.get_item(tag))


def text_of(element: Any) -> str | None:
    """The text of an element as :func:`element_text` gives it (``None``: no element)."""
    if element is None:
        return None
    value = element.value
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip("\0 ")
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip("\0 ")


def stored_key(header: Dataset, tag: int) -> StoredKey | None:
    """An element as stored in ``header``: equal keys, equal bytes and meaning.

    :data:`ABSENT` when the element is absent; ``None`` when it cannot be compared as stored
    bytes (converted already, or unreadable): its value must then be compared.
    """
    element: object
    try:
        element = header.get_item(tag)
    except Exception:  # pydicom raises many types on damaged elements
        return None  # unreadable: never the same
    if element is None:
        return ABSENT  # absent here and in the slice before: the same
    if isinstance(element, RawDataElement) and isinstance(element.value, bytes):
        return (str(element.VR), element.value, header.original_character_set)
    return None  # converted already: compare values instead


class SameAsBefore:
    """Whether an element of a slice is stored exactly as in the slice checked before it.

    A series' slices mostly repeat their header: an element whose stored bytes (unconverted,
    same VR and character set) equal those of the previous slice, which passed its checks,
    holds the same value and need not be converted and checked again. An element absent in
    both is the same too; one already converted (or unreadable) is never "the same": its
    value must be compared. Call once per slice and tag, in slice order.
    """

    def __init__(self) -> None:
        self._previous: dict[int, StoredKey | None] = {}

    def __call__(self, header: Dataset, tag: int) -> bool:
        return self.same(tag, stored_key(header, tag))

    def same(self, tag: int, stored: StoredKey | None) -> bool:
        """As a call, with the element's stored form already known."""
        same = stored is not None and self._previous.get(tag) == stored
        self._previous[tag] = stored
        return same
