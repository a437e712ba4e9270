"""The headers of a series' slices, pydicom datasets built only where used (helper of .dicom).

Discovery reads most files of a series by difference from a template
(:mod:`._dicom_template`): each is a :class:`~._dicom_template.StoredHeader`, the template and
the few values the file replaces. :class:`SliceHeaders` is the sequence of a series' headers:
indexing or iterating gives pydicom datasets (built on first use, then kept), while the checks
of reading (geometry, pixel description, rescale) ask for stored text and stored bytes
directly (:meth:`SliceHeaders.text`, :meth:`SliceHeaders.changed`) and build no dataset for a
slice stored like the one before it.

Every answer is the one the slice's pydicom dataset gives: once a dataset is built (a consumer
may convert or set values in it), answers come from that dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from pydicom.dataset import Dataset
from pydicom.uid import UID

from immunopet.io._dicom_pixels import transfer_syntax
from immunopet.io._dicom_template import StoredHeader
from immunopet.io._dicom_values import ABSENT, SameAsBefore, StoredKey, stored_key, text_of

Entry = Dataset | StoredHeader
"""A slice's header: a pydicom dataset, or a file read by difference (built on demand)."""


def entry_element(entry: Entry, tag: int) -> Any:
    """What ``get_item(tag)`` of the entry's dataset returns (may raise as pydicom does)."""
    if isinstance(entry, StoredHeader):
        return entry.element(tag)
    return entry.get_item(tag)


def entry_text(entry: Entry, tag: int) -> str | None:
    """:func:`~._dicom_values.element_text` of the entry's dataset, by tag."""
    if isinstance(entry, StoredHeader):
        return entry.text(tag)
    return text_of(entry.get_item(tag))


def entry_stored(entry: Entry, tag: int) -> StoredKey | None:
    """:func:`~._dicom_values.stored_key` of the entry's dataset."""
    if isinstance(entry, StoredHeader):
        return entry.stored(tag)
    return stored_key(entry, tag)


def entry_dataset(entry: Entry) -> Dataset:
    """The entry's pydicom dataset (built once for a file read by difference)."""
    return entry.dataset() if isinstance(entry, StoredHeader) else entry


class SliceHeaders(Sequence[Dataset]):
    """The headers of a series' slices in slice order; a sequence of pydicom datasets.

    Examples
    --------
    >>> first, second = Dataset(), Dataset()
    >>> first.Rows = second.Rows = 4
    >>> headers = SliceHeaders([first, second])
    >>> len(headers), headers[1] is second
    (2, True)

    Values set in code (not stored bytes read from a file) are never "stored alike": every
    slice is listed for checking. An element absent from both slices is stored alike.

    >>> headers.changed([0x00280010]), headers.changed([0x00280011])
    ([0, 1], [0])
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._entries: tuple[Entry, ...] = tuple(entries)

    @classmethod
    def of(cls, headers: Sequence[Dataset] | Iterable[Entry]) -> SliceHeaders:
        """``headers`` itself when it is a :class:`SliceHeaders`, else a new one over it."""
        return headers if isinstance(headers, SliceHeaders) else cls(headers)

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> Dataset: ...

    @overload
    def __getitem__(self, index: slice) -> SliceHeaders: ...

    def __getitem__(self, index: int | slice) -> Dataset | SliceHeaders:
        if isinstance(index, slice):
            return SliceHeaders(self._entries[index])
        return entry_dataset(self._entries[index])

    def __iter__(self) -> Iterator[Dataset]:
        return (entry_dataset(entry) for entry in self._entries)

    def __repr__(self) -> str:
        return f"SliceHeaders(n_slices={len(self._entries)})"

    def __reduce__(self) -> tuple[type[SliceHeaders], tuple[tuple[Dataset, ...]]]:
        return (SliceHeaders, (tuple(self),))  # pickled as datasets (no template, no lock)

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The slices' headers as held: datasets and files read by difference."""
        return self._entries

    def reordered(self, order: Sequence[int]) -> SliceHeaders:
        """The same headers in the order ``order`` (indices into this sequence)."""
        entries = self._entries
        return SliceHeaders([entries[i] for i in order])

    def scratch(self, index: int) -> Dataset:
        """Slice ``index``'s dataset to convert values in (see ``StoredHeader.scratch``).

        For checks that need pydicom's conversion (binary values such as (0028,0010) Rows):
        a slice read by difference keeps its stored bytes comparable by :meth:`changed`.
        """
        entry = self._entries[index]
        return entry.scratch() if isinstance(entry, StoredHeader) else entry

    def element(self, index: int, tag: int) -> Any:
        """What ``self[index].get_item(tag)`` returns, without building a dataset for it."""
        return entry_element(self._entries[index], tag)

    def text(self, index: int, tag: int) -> str | None:
        """:func:`~._dicom_values.element_text` of slice ``index``, by tag."""
        return entry_text(self._entries[index], tag)

    def changed(self, tags: Iterable[int]) -> list[int]:
        """The slices where any of ``tags`` is not stored as in the slice before, and slice 0.

        A slice left out stores every tag with the bytes, VR and character set of the slice
        before it (:class:`~._dicom_values.SameAsBefore`): it holds the same values, and a
        check that the slice before passed needs no repeating. When every slice is a file
        read by difference from one template that none of them replaces ``tags`` in, the
        answer is ``[0]`` without looking at each tag of each slice.
        """
        tags = frozenset(tags)
        entries = self._entries
        if not entries:
            return []
        if self._as_template(tags):
            return [0]
        unchanged = SameAsBefore()
        found = []
        ordered = sorted(tags)
        for index, entry in enumerate(entries):
            same = [unchanged.same(tag, entry_stored(entry, tag)) for tag in ordered]  # all
            if not all(same):
                found.append(index)
        return found

    def _as_template(self, tags: frozenset[int]) -> bool:
        """Whether every slice stores ``tags`` exactly as one template does.

        Files read by difference from one template that replace none of ``tags``; a slice
        whose dataset was built already is asked for its stored form.
        """
        first = self._entries[0]
        if not isinstance(first, StoredHeader):
            return False
        template = first.template
        keys = [template.keys.get(tag, ABSENT) for tag in tags]
        if None in keys:
            return False
        for entry in self._entries:
            if not isinstance(entry, StoredHeader) or entry.template is not template:
                return False
            if entry.built:
                if any(entry.stored(tag) != key for tag, key in zip(tags, keys, strict=True)):
                    return False
            elif entry.replaces(tags):
                return False
        return True


def changed_slices(headers: Sequence[Dataset], tags: Iterable[int]) -> list[int]:
    """:meth:`SliceHeaders.changed` for any sequence of headers (datasets or SliceHeaders)."""
    return SliceHeaders.of(headers).changed(tags)


def entry_syntax(entry: Entry) -> UID:
    """The transfer syntax of the entry's file (a template's for a file read by difference)."""
    if isinstance(entry, StoredHeader):
        return entry.template.syntax  # (0002,0010) is never replaced by difference
    return transfer_syntax(entry)
