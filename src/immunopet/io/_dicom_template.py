"""Read the headers of a series by difference from one parsed header (helper of :mod:`.dicom`).

The slices of a series share almost their whole header: study, patient, acquisition, the
radiopharmaceutical sequence, the image pixel description. Only a few values change from file
to file (SOP instance UID, instance number, image position, rescale slope ...). Parsing each of
300 headers with :func:`pydicom.dcmread` costs far more than reading the files, so discovery
parses the first file of a layout with pydicom (a :class:`HeaderTemplate`) and reads each
further file by comparing its bytes with the template's:

- Bytes equal to the template's are the same elements with the same values: the file's
  header reuses the template's raw elements for them.
- Where bytes differ, the element holding the first difference is found in the template's
  element map. If only its value (and possibly its length field) differs, and it is an
  ordinary element (not a sequence, not (0002,0010) TransferSyntaxUID, not (0008,0005)
  SpecificCharacterSet, defined length), its new value is taken from the file as pydicom would
  read it, and the comparison goes on after it (shifted by the change in length). Elements
  found to differ once are remembered: in the next files their values are compared directly
  and the bytes between them as whole stretches.
- Anything else (a tag or VR that differs, an element added or removed, a differing sequence,
  a different pixel data element header, a file too short) returns ``None``, and the caller
  parses that file with pydicom as before.

A file read here is a :class:`StoredHeader`: the template and the values it replaces. It
answers what ``get_item`` of the file's pydicom dataset would return without building that
dataset, and builds it (:meth:`StoredHeader.dataset`) when a consumer needs one: the dataset
has exactly the top-level elements, values and encoding pydicom would give it; only the
``value_tell`` of elements reused from the template is the template's position (nothing here
or in pydicom reads it again: no element is deferred). Values are still converted by pydicom
when first accessed.
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from immunopet.io._dicom_pixels import PixelLocation, transfer_syntax
from immunopet.io._dicom_values import ABSENT, StoredKey, stored_key, text_of

_PREAMBLE = 128
_META_START = _PREAMBLE + 4  # after the preamble and b"DICM"
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_NOT_BY_DIFFERENCE = frozenset({0x00020010, 0x00080005})  # change how the rest is read
_UNDEFINED = 0xFFFFFFFF
_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_SLACK = 4096
"""Bytes read beyond the template's header length, for values that grew longer."""
_CONVERTED = object()
"""A template element that pydicom converts when read (no stored text to share)."""
_LENGTH_FIELDS: dict[int, Callable[[bytes, int], tuple[int, ...]]] = {
    2: struct.Struct("<H").unpack_from,
    4: struct.Struct("<L").unpack_from,
}


class _Element(NamedTuple):
    """One top-level element of the template: where it lies and how it may differ."""

    start: int  # offset of the tag
    value_start: int  # offset of the value
    end: int  # offset after the value (the next element's tag)
    length_size: int  # bytes of the length field just before the value (2 or 4)
    by_difference: bool  # its value may be replaced from another file
    raw: RawDataElement  # unconverted, so that every file converts its own value


class _Field(NamedTuple):
    """What the comparison needs of one element, precomputed."""

    tag: int
    length_field: int  # offset of the length field
    unpack: Callable[[bytes, int], tuple[int, ...]]
    value_start: int
    end: int
    value: bytes  # the template's value bytes


_Replaced = tuple[int, int, Any, int]
"""A value of a file that differs from the template's: the index of the template element,
the length, the value as pydicom's reader gives it (bytes; None for the empty value of a
non-text VR) and the offset of the value in the file."""


class StoredHeader:
    """The header of one file: its template's elements, some values replaced from the file.

    :meth:`element` and :meth:`stored` answer what the file's pydicom dataset would (its
    ``get_item``, the stored bytes) without building it; :meth:`dataset` builds it once, and
    from then on every answer comes from that dataset (a consumer may have converted or set
    values in it).
    """

    __slots__ = ("_dataset", "_mtime", "_parsed", "_preamble", "_replaced", "path", "template")

    def __init__(
        self,
        template: HeaderTemplate,
        path: Path,
        preamble: bytes,
        mtime: float,
        replaced: dict[int, _Replaced],
        parsed: FileDataset | None = None,
    ) -> None:
        self.template = template
        self.path = path
        self._preamble = preamble
        self._mtime = mtime
        self._replaced = replaced
        self._parsed = parsed  # the template's own file: the dataset pydicom read
        self._dataset: FileDataset | None = None

    @property
    def built(self) -> bool:
        """Whether :meth:`dataset` has been called (answers then come from the dataset)."""
        return self._dataset is not None

    def replaces(self, tags: frozenset[int]) -> bool:
        """Whether this file stores any of ``tags`` differently from its template."""
        return not tags.isdisjoint(self._replaced)

    def element(self, tag: int) -> RawDataElement | DataElement | None:
        """What ``dataset().get_item(tag)`` returns (a tag of the data set, not group 0002).

        Raises
        ------
        Exception
            Whatever pydicom raises converting an element it converts on ``get_item``.
        """
        if self._dataset is not None:
            return self._dataset.get_item(tag)
        found = self._replaced.get(tag)
        raw = self.template.body.get(tag) if found is None else self.template.raw(found)
        if raw is not None and raw.value is None:  # get_item converts such an element
            return self.scratch().get_item(tag)
        return raw

    def text(self, tag: int) -> str | None:
        """:func:`~._dicom_values.text_of` the element (what ``element_text`` gives)."""
        if self._dataset is None:
            found = self._replaced.get(tag)
            if found is None:
                text = self.template.text(tag)
                if text is not _CONVERTED:
                    return text  # type: ignore[return-value]
            elif isinstance(found[2], bytes):
                return found[2].decode("ascii", errors="replace").strip("\0 ")
        return text_of(self.element(tag))

    def stored(self, tag: int) -> StoredKey | None:
        """The element's stored form as :func:`~._dicom_values.stored_key` gives it."""
        if self._dataset is not None:
            return stored_key(self._dataset, tag)
        found = self._replaced.get(tag)
        if found is None:
            return self.template.keys.get(tag, ABSENT)
        index, _, value, _ = found
        if not isinstance(value, bytes):
            return None  # converted when read: compare values instead
        return (str(self.template.elements[index].raw.VR), value, self.template.charset)

    def scratch(self) -> FileDataset:
        """A dataset to read values from, leaving :meth:`dataset`'s unconverted.

        The dataset itself once built (its values are the ones consumers see); until then a
        new one each call, so that converting values in it (pydicom replaces each raw element
        it converts) leaves the stored bytes of the one consumers get comparable.
        """
        if self._dataset is not None:
            return self._dataset
        with self.template.lock:
            return self.template.build(self.path, self._preamble, self._mtime, self._replaced)

    def dataset(self) -> FileDataset:
        """The file's header as :func:`pydicom.dcmread` (``stop_before_pixels``) gives it."""
        dataset = self._dataset
        if dataset is None:
            with self.template.lock:  # loading threads may build one at once
                if self._dataset is None:
                    self._dataset = self._parsed or self.template.build(
                        self.path, self._preamble, self._mtime, self._replaced
                    )
                dataset = self._dataset
        return dataset


class HeaderTemplate:
    """A header parsed by pydicom and the byte layout of its top-level elements.

    Build with :meth:`from_file` from a file pydicom has read (header up to the pixel data);
    read further files with :meth:`read_stored` (or :meth:`read`, which builds the dataset).
    """

    def __init__(
        self,
        header_bytes: bytes,
        elements: list[_Element],
        meta_count: int,
        pixel: PixelLocation,
        header: FileDataset,
    ) -> None:
        self._data = header_bytes
        self._bytes = np.frombuffer(header_bytes, dtype=np.uint8)
        self.elements = elements
        self._starts = [element.start for element in elements]
        self._fields = [
            _Field(
                int(e.raw.tag),
                e.value_start - e.length_size,
                _LENGTH_FIELDS[e.length_size],
                e.value_start,
                e.end,
                header_bytes[e.value_start : e.end],
            )
            for e in elements
        ]
        self._varying: list[int] = []  # indices of elements found to differ in some file
        self._plan: tuple[list[tuple[Any, ...]], tuple[int, bytes]] | None = None
        self._clones: tuple[_Cloner, _Cloner] | None = None
        self._meta: dict[BaseTag, Any] = {e.raw.tag: e.raw for e in elements[:meta_count]}
        self._body: dict[BaseTag, Any] = {e.raw.tag: e.raw for e in elements[meta_count:]}
        self.body: dict[int, RawDataElement] = {int(t): raw for t, raw in self._body.items()}
        """The data set's raw elements by tag (plain int keys: a fast look-up)."""
        self._pixel = pixel
        self._header = header
        self.charset = header.original_character_set
        self.keys: dict[int, StoredKey | None] = {
            tag: (str(raw.VR), raw.value, self.charset) if isinstance(raw.value, bytes) else None
            for tag, raw in self.body.items()
        }
        """Each element's stored form (see :meth:`StoredHeader.stored`)."""
        source_meta = header.file_meta  # (the header goes to a consumer, who may change it)
        self._meta_encoding = (*source_meta.original_encoding, source_meta.original_character_set)
        self._texts: dict[int, str | None] = {}
        self.syntax: UID = transfer_syntax(header)
        implicit, _ = header.original_encoding
        self._implicit = bool(implicit)
        self.lock = threading.Lock()

    @classmethod
    def from_file(
        cls, path: Path, header: Dataset, location: PixelLocation | None
    ) -> HeaderTemplate | None:
        """A template from a file pydicom read (``None`` when its layout does not qualify).

        Qualifies: a 128-byte preamble and ``DICM``, explicit or implicit VR little endian,
        uncompressed pixel data of defined length located by discovery.
        """
        if (
            not isinstance(header, FileDataset)
            or location is None
            or transfer_syntax(header) not in _SYNTAXES
        ):
            return None
        end = location.element_offset + location.header_length
        try:
            with open(path, "rb") as fp:
                data = fp.read(end)
        except OSError:
            return None
        if len(data) != end or data[_PREAMBLE:_META_START] != b"DICM":
            return None
        implicit, little = header.original_encoding
        if implicit is None or not little:
            return None
        try:
            meta = list(_walk(data, _META_START, implicit=False, group2=True))
            body = list(_walk(data, meta[-1].end if meta else _META_START, implicit, group2=False))
        except Exception:  # anything pydicom's own reader would not have parsed alike
            return None
        elements = meta + body
        if not elements or elements[-1].end != location.element_offset:
            return None
        return cls(data, elements, len(meta), location, header)

    def own(self, path: Path, mtime: float) -> StoredHeader:
        """The header of the template's own file (its dataset: the one pydicom read)."""
        return StoredHeader(self, path, self._data[:_PREAMBLE], mtime, {}, self._header)

    def read(self, path: Path) -> tuple[FileDataset, PixelLocation] | None:
        """The header dataset and pixel location of a file of the same layout, else ``None``.

        Raises
        ------
        OSError
            The file cannot be read.
        """
        found = self.read_stored(path)
        return None if found is None else (found[0].dataset(), found[1])

    def read_stored(self, path: Path) -> tuple[StoredHeader, PixelLocation] | None:
        """As :meth:`read`, the header as a :class:`StoredHeader` (no dataset built yet)."""
        wanted = len(self._data) + _SLACK
        fd = os.open(path, os.O_RDONLY)  # a plain descriptor: one fstat, one read
        try:
            status = os.fstat(fd)
            data = os.read(fd, min(wanted, status.st_size))
        finally:
            os.close(fd)
        found = self._compare(data)
        if found is None:
            return None
        replaced, shift = found
        pixel = self._pixel
        location = (
            PixelLocation(
                pixel.element_offset + shift, pixel.header_length, pixel.value_length, pixel.tag
            )
            if shift
            else pixel
        )
        if location.element_offset + location.header_length + location.value_length > (
            status.st_size
        ):
            return None  # truncated: pydicom's path words the problem
        return StoredHeader(self, path, data[:_PREAMBLE], status.st_mtime, replaced), location

    def _compare(self, data: bytes) -> tuple[dict[int, _Replaced], int] | None:
        """Replaced values and the final shift (bytes), ``None`` when the layout differs.

        Walks the elements known to differ between files (:meth:`_steps`); the bytes between
        them must equal the template's (one comparison per stretch). Where a stretch differs,
        :meth:`_compare_from` finds the element that differs or refuses the file.
        """
        n_template = len(self._data)
        n_data = len(data)
        if n_data < n_template or data[_PREAMBLE:_META_START] != b"DICM":
            return None
        replaced: dict[int, _Replaced] = {}
        shift = 0
        last = -1  # the element compared last
        steps, (final_start, final) = self._steps()
        for index, stretch_start, stretch, field, unpack, value_start, old, tag, vr in steps:
            if not data.startswith(stretch, stretch_start + shift):
                return self._compare_from(data, replaced, stretch_start, shift, last)
            (length,) = unpack(data, field + shift)
            start = value_start + shift
            last = index
            if length == len(old) and data.startswith(old, start):
                continue  # the template's value
            if length == _UNDEFINED or start + length > n_data:
                return None
            value = data[start : start + length] if length else empty_value_for_VR(vr, raw=True)
            replaced[tag] = (index, length, value, start)
            shift += length - len(old)
            if n_data < n_template + shift:
                return None
        if not data.startswith(final, final_start + shift):
            return self._compare_from(data, replaced, final_start, shift, last)
        return replaced, shift

    def _steps(self) -> tuple[list[tuple[Any, ...]], tuple[int, bytes]]:
        """The comparison of a file whose differences lie in the elements known to differ.

        One step per such element: the template's stretch before its length field (its
        offset and bytes), where its length field and value lie, its template value, tag and
        VR; then the stretch from the last one to the end of the pixel data element header.
        """
        if self._plan is None:
            steps = []
            position = _META_START
            for index in self._varying:
                field = self._fields[index]
                stretch = self._data[position : field.length_field]
                vr = self.elements[index].raw.VR
                where = (field.length_field, field.unpack, field.value_start, field.value)
                steps.append((index, position, stretch, *where, field.tag, vr))
                position = field.end
            self._plan = (steps, (position, self._data[position:]))
        return self._plan

    def _compare_from(
        self, data: bytes, replaced: dict[int, _Replaced], position: int, shift: int, last: int
    ) -> tuple[dict[int, _Replaced], int] | None:
        """:meth:`_compare` on from ``position`` (template offset), learning what differs.

        Every byte before ``position`` is accounted for (``last``: the element compared last).
        A stretch that differs names a new element that differs (:meth:`_learn`), or the
        file's layout is not the template's.
        """
        n_template = len(self._data)
        n_data = len(data)
        fields = self._fields
        varying = self._varying
        while True:
            following = bisect.bisect_right(varying, last)
            index = varying[following] if following < len(varying) else -1
            stop = fields[index].length_field if index >= 0 else n_template
            if data[position + shift : stop + shift] != self._data[position:stop]:
                index = self._learn(data, position, stop, shift)
                if index < 0:
                    return None
            elif index < 0:
                return replaced, shift
            field = fields[index]
            (length,) = field.unpack(data, field.length_field + shift)
            start = field.value_start + shift
            if length == _UNDEFINED or start + length > n_data:
                return None
            old_length = field.end - field.value_start
            if length != old_length or not data.startswith(field.value, start):
                vr = self.elements[index].raw.VR
                value = data[start : start + length] if length else empty_value_for_VR(vr, raw=True)
                replaced[field.tag] = (index, length, value, start)
                shift += length - old_length
                if n_data < n_template + shift:
                    return None
            position = field.end
            last = index

    def _learn(self, data: bytes, position: int, stop: int, shift: int) -> int:
        """The element holding the first byte of ``[position, stop)`` that differs in the file.

        Remembered as an element that differs, when its value may be replaced; ``-1`` when the
        difference lies elsewhere (tag, VR, a sequence, the pixel data element header).
        """
        found = np.frombuffer(data, dtype=np.uint8, count=stop - position, offset=position + shift)
        first = position + int(np.flatnonzero(found != self._bytes[position:stop])[0])
        if first >= self._pixel.element_offset:
            return -1  # the pixel data element header differs
        index = bisect.bisect_right(self._starts, first) - 1
        element = self.elements[index]
        if not element.by_difference or first < element.value_start - element.length_size:
            return -1
        bisect.insort(self._varying, index)
        self._plan = None
        return index

    def text(self, tag: int) -> str | object | None:
        """The text of the template's element (``_CONVERTED``: pydicom converts it first)."""
        try:
            return self._texts[tag]
        except KeyError:
            pass
        raw = self.body.get(tag)
        if raw is not None and not isinstance(raw.value, bytes):
            return _CONVERTED
        text = self._texts[tag] = text_of(raw)
        return text

    def raw(self, found: _Replaced) -> RawDataElement:
        """The raw element of a replaced value, as pydicom's reader makes it."""
        index, length, value, value_tell = found
        raw = self.elements[index].raw
        return RawDataElement(raw.tag, raw.VR, length, value, value_tell, raw.is_implicit_VR, True)

    def build(
        self, path: Path, preamble: bytes, mtime: float, replaced: dict[int, _Replaced]
    ) -> FileDataset:
        """A FileDataset as :func:`pydicom.dcmread` builds it, from the template's elements.

        After the first, the datasets are clones of the first as pydicom's own constructors
        built it: their attribute-by-attribute set-up (through ``Dataset.__setattr__``) would
        otherwise be most of the cost of a header. Callers hold :attr:`lock`.
        """
        meta = self._meta.copy()  # dict copies keep the file's element order
        body = self._body.copy()
        for tag, found in replaced.items():
            element = self.raw(found)
            (meta if tag >> 16 == 2 else body)[element.tag] = element
        if self._clones is None:  # the first file: built by pydicom's constructors
            file_meta = FileMetaDataset(meta)
            file_meta.set_original_encoding(*self._meta_encoding)
            dataset = FileDataset(
                str(path),
                body,
                preamble=preamble,
                file_meta=file_meta,
                is_implicit_VR=self._implicit,
                is_little_endian=True,
            )
            dataset.set_original_encoding(self._implicit, True, self.charset)
            dataset.timestamp = mtime  # as read, whenever the dataset is built
            self._clones = (_Cloner(dataset.file_meta), _Cloner(dataset))
            return dataset
        meta_cloner, cloner = self._clones
        file_meta = meta_cloner(_dict=meta)
        clone: FileDataset = cloner(
            _dict=body,
            file_meta=file_meta,
            preamble=preamble,
            filename=str(path),
            timestamp=mtime,
        )
        return clone


class _Cloner:
    """Makes objects of a prototype's class with its attributes, without running ``__init__``.

    Containers (dict, list, set) are copied, so that no two objects share mutable state: once
    when the cloner is made (the prototype, handed to a consumer, may fill its own later, e.g.
    pydicom's cache of private blocks bound to it) and again for each clone.
    """

    def __init__(self, prototype: Dataset) -> None:
        self._type = type(prototype)
        state = vars(prototype)
        self._plain = {k: v for k, v in state.items() if not isinstance(v, dict | list | set)}
        self._containers = {
            k: v.copy() for k, v in state.items() if isinstance(v, dict | list | set)
        }

    def __call__(self, **fresh: Any) -> Any:
        clone = object.__new__(self._type)
        state = self._plain.copy()
        for name, value in self._containers.items():
            if name not in fresh:
                state[name] = value.copy()
        state.update(fresh)
        vars(clone).update(state)
        return clone


def _walk(data: bytes, start: int, implicit: bool, group2: bool) -> Iterator[_Element]:
    """The top-level elements of ``data`` from ``start``, with their byte spans.

    ``group2``: the file meta group (stops at the first element of another group). The body
    stops at the pixel data, as discovery's ``stop_before_pixels`` read did.
    """
    fp = BytesIO(data)
    fp.seek(start)

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        return (tag >> 16 != 2) if group2 else tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)

    position = start
    for raw in data_element_generator(fp, implicit, True, stop_when=stop):
        end = fp.tell()
        vr = raw.VR
        if implicit:
            length_size, header_size = 4, 8
        elif vr in _LONG_VRS:
            length_size, header_size = 4, 12
        else:
            length_size, header_size = 2, 8
        value_start = position + header_size
        if isinstance(raw, DataElement):  # an undefined-length sequence pydicom parsed at once
            # kept as its bytes (items and delimiter): each file's dataset parses its own copy
            raw = RawDataElement(
                raw.tag, "SQ", _UNDEFINED, data[value_start:end], value_start, implicit, True
            )
        by_difference = (
            vr != "SQ" and raw.length != _UNDEFINED and raw.tag not in _NOT_BY_DIFFERENCE
        )
        yield _Element(position, value_start, end, length_size, by_difference, raw)
        position = end
