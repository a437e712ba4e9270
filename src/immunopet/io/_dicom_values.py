"""Read text-valued header elements as stored (private helper of :mod:`immunopet.io.dicom`).

A header read by pydicom keeps each element raw until it is first accessed; the conversion
(with validation) of decimal strings and UIDs then dominates the cost of stacking hundreds of
slices. Geometry, rescale and identifiers are ASCII text in DICOM (VR DS, IS, UI, CS), so they
are taken here straight from the stored bytes, or from the converted value when pydicom (or a
caller) has already converted the element. Binary VRs (US, UL ...) must not be read this way.
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


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
    element = None if tag is None else header.get_item(tag)
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


class SameAsBefore:
    """Whether an element of a slice is stored exactly as in the slice checked before it.

    A series' slices mostly repeat their header: an element whose stored bytes (unconverted,
    same VR and character set) equal those of the previous slice, which passed its checks,
    holds the same value and need not be converted and checked again. An element absent in
    both is the same too; one already converted (or unreadable) is never "the same": its
    value must be compared. Call once per slice and tag, in slice order.
    """

    _ABSENT = ("", b"", "")

    def __init__(self) -> None:
        self._previous: dict[int, tuple[str, bytes, object] | None] = {}

    def __call__(self, header: Dataset, tag: int) -> bool:
        element: object
        try:
            element = header.get_item(tag)
        except Exception:  # pydicom raises many types on damaged elements
            element = False  # unreadable: never the same
        stored: tuple[str, bytes, object] | None
        if element is None:
            stored = self._ABSENT  # absent here and in the slice before: the same
        elif isinstance(element, RawDataElement) and isinstance(element.value, bytes):
            stored = (str(element.VR), element.value, header.original_character_set)
        else:
            stored = None  # converted already (or unreadable): compare values instead
        same = stored is not None and self._previous.get(tag) == stored
        self._previous[tag] = stored
        return same
