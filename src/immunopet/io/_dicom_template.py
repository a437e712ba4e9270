"""Read the headers of a series by difference from one parsed header (helper of :mod:`.dicom`).

The slices of a series share almost their whole header: study, patient, acquisition, the
radiopharmaceutical sequence, the image pixel description. Only a few values change from file
to file (SOP instance UID, instance number, image position, rescale slope ...). Parsing each of
300 headers with :func:`pydicom.dcmread` costs far more than reading the files, so discovery
parses the first file of a layout with pydicom (a :class:`HeaderTemplate`) and reads each
further file by comparing its bytes with the template's:

- Bytes equal to the template's are the same elements with the same values: the file's
  dataset reuses the template's raw elements for them.
- Where bytes differ, the element holding the first difference is found in the template's
  element map. If only its value (and possibly its length field) differs, and it is an
  ordinary element (not a sequence, not (0002,0010) TransferSyntaxUID, not (0008,0005)
  SpecificCharacterSet, defined length), its new value is taken from the file as pydicom would
  read it, and the comparison goes on after it (shifted by the change in length).
- Anything else (a tag or VR that differs, an element added or removed, a differing sequence,
  a different pixel data element header, a file too short) returns ``None``, and the caller
  parses that file with pydicom as before.

So a file read here has exactly the top-level elements, values and encoding pydicom would
give it; only the ``value_tell`` of elements reused from the template is the template's
position (nothing here or in pydicom reads it again: no element is deferred). Values are
still converted by pydicom when first accessed.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from immunopet.io._dicom_pixels import PixelLocation, transfer_syntax

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


class _Element(NamedTuple):
    """One top-level element of the template: where it lies and how it may differ."""

    start: int  # offset of the tag
    value_start: int  # offset of the value
    end: int  # offset after the value (the next element's tag)
    length_size: int  # bytes of the length field just before the value (2 or 4)
    by_difference: bool  # its value may be replaced from another file
    raw: RawDataElement  # unconverted, so that every file converts its own value


class HeaderTemplate:
    """A header parsed by pydicom and the byte layout of its top-level elements.

    Build with :meth:`from_file` from a file pydicom has read (header up to the pixel data);
    read further files with :meth:`read`.
    """

    def __init__(
        self,
        header_bytes: bytes,
        elements: list[_Element],
        meta_count: int,
        pixel: PixelLocation,
        header: FileDataset,
    ) -> None:
        self._bytes = np.frombuffer(header_bytes, dtype=np.uint8)
        self._elements = elements
        self._starts = [element.start for element in elements]
        self._clones: tuple[_Cloner, _Cloner] | None = None
        self._meta: dict[BaseTag, Any] = {e.raw.tag: e.raw for e in elements[:meta_count]}
        self._body: dict[BaseTag, Any] = {e.raw.tag: e.raw for e in elements[meta_count:]}
        self._pixel = pixel
        self._pixel_header = header_bytes[pixel.element_offset :]
        self._header = header
        self._charset = header.original_character_set
        implicit, _ = header.original_encoding
        self._implicit = bool(implicit)

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

    def read(self, path: Path) -> tuple[FileDataset, PixelLocation] | None:
        """The header and pixel location of a file of the same layout, else ``None``.

        Raises
        ------
        OSError
            The file cannot be read.
        """
        wanted = len(self._bytes) + _SLACK
        fd = os.open(path, os.O_RDONLY)  # a plain descriptor: one fstat, one read
        try:
            status = os.fstat(fd)
            data = os.read(fd, min(wanted, status.st_size))
        finally:
            os.close(fd)
        size = status.st_size
        found = self._compare(data)
        if found is None:
            return None
        replaced, shift = found
        pixel = self._pixel
        location = PixelLocation(
            pixel.element_offset + shift, pixel.header_length, pixel.value_length, pixel.tag
        )
        if location.element_offset + location.header_length + location.value_length > size:
            return None  # truncated: pydicom's path words the problem
        return self._dataset(path, data[:_PREAMBLE], status.st_mtime, replaced), location

    def _compare(self, data: bytes) -> tuple[dict[int, RawDataElement], int] | None:
        """Replaced elements and the final shift (bytes), ``None`` when the layout differs."""
        template = self._bytes
        n_template = len(template)
        if len(data) < _META_START or data[_PREAMBLE:_META_START] != b"DICM":
            return None
        found = np.frombuffer(data, dtype=np.uint8)
        replaced: dict[int, RawDataElement] = {}
        shift = 0
        position = _META_START
        differences = self._differences(found, position, shift)
        cursor = 0
        while True:
            if differences is None:
                return None
            cursor = bisect.bisect_left(differences, position, cursor)
            if cursor == len(differences):
                break
            first = differences[cursor]
            if first >= self._pixel.element_offset:
                return None  # the pixel data element header differs
            element = self._elements[bisect.bisect_right(self._starts, first) - 1]
            if not element.by_difference or first < element.value_start - element.length_size:
                return None
            raw = element.raw
            field = element.value_start - element.length_size + shift
            if element.length_size == 2:
                (length,) = struct.unpack_from("<H", data, field)
            else:
                (length,) = struct.unpack_from("<L", data, field)
            start = element.value_start + shift
            if length == _UNDEFINED or start + length > len(data):
                return None
            replaced[raw.tag] = RawDataElement(
                raw.tag,
                raw.VR,
                length,
                data[start : start + length],
                start,
                raw.is_implicit_VR,
                True,
            )
            old_length = element.end - element.value_start
            position = element.end
            if length != old_length:
                shift += length - old_length
                differences = self._differences(found, position, shift)
                cursor = 0
        if len(data) - shift < n_template:
            return None
        pixel_start = self._pixel.element_offset + shift
        if data[pixel_start : pixel_start + len(self._pixel_header)] != self._pixel_header:
            return None
        return replaced, shift

    def _differences(self, found: np.ndarray, position: int, shift: int) -> list[int] | None:
        """Template offsets from ``position`` on whose byte differs in the file (shifted)."""
        n = len(self._bytes) - position
        part = found[position + shift : position + shift + n]
        if len(part) < n:
            return None
        return (np.flatnonzero(part != self._bytes[position:]) + position).tolist()

    def _dataset(
        self, path: Path, preamble: bytes, mtime: float, replaced: dict[int, RawDataElement]
    ) -> FileDataset:
        """A FileDataset as :func:`pydicom.dcmread` builds it, from the template's elements.

        After the first, the datasets are clones of the first as pydicom's own constructors
        built it: their attribute-by-attribute set-up (through ``Dataset.__setattr__``) would
        otherwise be most of the cost of a header.
        """
        meta = self._meta.copy()  # dict copies keep the file's element order
        body = self._body.copy()
        for tag, element in replaced.items():
            (meta if tag >> 16 == 2 else body)[BaseTag(tag)] = element
        if self._clones is None:  # the first file: built by pydicom's constructors
            file_meta = FileMetaDataset(meta)
            source_meta = self._header.file_meta
            meta_implicit, meta_little = source_meta.original_encoding
            file_meta.set_original_encoding(
                meta_implicit, meta_little, source_meta.original_character_set
            )
            dataset = FileDataset(
                str(path),
                body,
                preamble=preamble,
                file_meta=file_meta,
                is_implicit_VR=self._implicit,
                is_little_endian=True,
            )
            dataset.set_original_encoding(self._implicit, True, self._charset)
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

    Containers (dict, list, set) are copied, so that no two objects share mutable state.
    """

    def __init__(self, prototype: Dataset) -> None:
        self._type = type(prototype)
        state = vars(prototype)
        self._plain = {k: v for k, v in state.items() if not isinstance(v, dict | list | set)}
        self._containers = {k: v for k, v in state.items() if isinstance(v, dict | list | set)}

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
