"""Locate and decode the pixel data of single-frame DICOM files (helpers of :mod:`.dicom`).

Discovery reads each header with ``stop_before_pixels=True``; pydicom leaves the file at the
start of the (7FE0,0010) PixelData element. :func:`inspect_pixel_element` reads that element's
8- or 12-byte header there, checks the declared length against the file size (a truncated
file is found without reading its pixels) and returns where the value lies. Loading then reads
exactly those bytes and hands them to pydicom's decoder with the options pydicom derives from
the header (:func:`pydicom.pixels.as_pixel_options`), so no header is parsed twice.
Compressed (encapsulated) or deflated files, and files located by hand, are read with
:func:`pydicom.pixels.pixel_array` instead.
"""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.pixels import as_pixel_options, get_decoder, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from immunopet.errors import DicomInputError
from immunopet.io._dicom_values import SameAsBefore, element_text

_PIXEL_KEYWORDS = {
    0x7FE00010: "PixelData",
    0x7FE00009: "DoubleFloatPixelData",
    0x7FE00008: "FloatPixelData",
}
_IMAGE_MODALITIES = {"PT", "CT", "MR", "NM"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_TAG = "(7FE0,0010) PixelData"


class PixelLocation(NamedTuple):
    """Where a file's pixel data element lies (byte offsets from the start of the file)."""

    element_offset: int
    header_length: int
    value_length: int
    tag: int


def transfer_syntax(header: Dataset) -> UID:
    """(0002,0010) TransferSyntaxUID, or the encoding pydicom found for files without meta."""
    meta = getattr(header, "file_meta", None)
    element = None if meta is None else meta.get_item(0x00020010)
    if element is not None and element.value is not None:
        if isinstance(element, RawDataElement) and isinstance(element.value, bytes):
            return _uid_from_bytes(element.value)  # not converted yet: no conversion needed
        return UID(str(element.value))
    is_implicit, is_little = header.original_encoding
    if is_implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if is_little in (True, None) else ExplicitVRBigEndian


def read_into(path: Path, buffer: bytearray, offset: int) -> int:
    """Read ``len(buffer)`` bytes of a file from ``offset`` into ``buffer``; the count read.

    One ``pread`` on a plain descriptor: no buffered file object (its seek, fstat and tty
    checks cost more than the read for hundreds of slices).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        total = 0
        while total < len(buffer):
            count = os.preadv(fd, [memoryview(buffer)[total:]], offset + total)
            if count == 0:
                break
            total += count
        return total
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=64)
def _uid_from_bytes(value: bytes) -> UID:
    """A UID as pydicom converts a stored UI value (ASCII, trailing NUL or space removed)."""
    return UID(value.decode("ascii", errors="replace").rstrip("\0 "))


def inspect_pixel_element(
    fp: BinaryIO, header: Dataset, file_size: int
) -> tuple[PixelLocation | None, str | None]:
    """Check the element at the file position left by a header-only read.

    Returns
    -------
    (PixelLocation or None, str or None)
        Where the pixel data lies (None when it cannot be located cheaply: deflated or
        encapsulated data, or a non-image object), and a reason when an image's pixel data is
        missing or cut short.
    """
    syntax = transfer_syntax(header)
    start = fp.tell()
    head = fp.read(8)
    modality = element_text(header, "Modality") or ""
    is_image = "Rows" in header or modality in _IMAGE_MODALITIES
    if len(head) < 8:
        if is_image:
            return None, (
                f"no {_TAG}: the file ends after {file_size} bytes "
                "(truncated, or an image without pixel data)"
            )
        return None, None
    if syntax == DeflatedExplicitVRLittleEndian:  # positions refer to the inflated stream
        return None, None
    endian = ">" if syntax == ExplicitVRBigEndian else "<"
    group, element = struct.unpack(f"{endian}HH", head[:4])
    tag = group << 16 | element
    if tag not in _PIXEL_KEYWORDS:  # pragma: no cover - pydicom stops only there
        return None, None
    if syntax.is_implicit_VR:
        (length,) = struct.unpack(f"{endian}L", head[4:8])
        header_length = 8
    else:
        more = fp.read(4)
        if len(more) < 4:
            return None, f"truncated inside the {_TAG} element header ({file_size} bytes)"
        (length,) = struct.unpack(f"{endian}L", more)
        header_length = 12
    if length == _UNDEFINED_LENGTH:  # encapsulated (compressed): checked when decoded
        return None, None
    if start + header_length + length > file_size:
        held = max(0, file_size - start - header_length)
        return None, f"truncated: {_TAG} declares {length} bytes but the file holds {held}"
    return PixelLocation(start, header_length, length, tag), None


PIXEL_DESCRIPTION_TAGS = (
    0x00280002,  # SamplesPerPixel
    0x00280004,  # PhotometricInterpretation
    0x00280006,  # PlanarConfiguration
    0x00280008,  # NumberOfFrames
    0x00280010,  # Rows
    0x00280011,  # Columns
    0x00280100,  # BitsAllocated
    0x00280101,  # BitsStored
    0x00280103,  # PixelRepresentation
)
"""The elements that decide how pixel data is decoded (``pydicom.pixels.as_pixel_options``)."""


class PixelReader:
    """Reads the stored pixel values of single-frame files, one file at a time.

    Decoding options (:func:`pydicom.pixels.as_pixel_options`) are derived once for each
    distinct image pixel description (the raw bytes of the group 0028 elements that the
    decoder uses), so a series of identical slices derives them once.
    """

    def __init__(self) -> None:
        self._options: dict[tuple[Any, ...], tuple[dict[str, Any], np.dtype | None]] = {}
        self._unchanged = SameAsBefore()
        self._last: tuple[tuple[Any, ...], tuple[dict[str, Any], np.dtype | None]] | None = None

    def _decoding_options(
        self, header: Dataset, tag: int, syntax: UID
    ) -> tuple[dict[str, Any], np.dtype | None]:
        """pydicom's decoding options, and the dtype of the plain-copy case (else None)."""
        unchanged = [self._unchanged(header, element) for element in PIXEL_DESCRIPTION_TAGS]
        if self._last is not None and all(unchanged) and self._last[0] == (syntax, tag):
            return dict(self._last[1][0]), self._last[1][1]  # stored as in the file before
        key = (syntax, tag, *(_raw_value(header, element) for element in PIXEL_DESCRIPTION_TAGS))
        cached = self._options.get(key)
        if cached is None:
            options = as_pixel_options(
                header, pixel_keyword=_PIXEL_KEYWORDS[tag], transfer_syntax_uid=syntax
            )
            cached = (options, _plain_dtype(options, syntax))
            self._options[key] = cached
        self._last = ((syntax, tag), cached)
        return dict(cached[0]), cached[1]

    def read(self, file: Path, header: Dataset, location: PixelLocation | None) -> np.ndarray:
        """Stored pixel values of one file (before any rescale).

        Raises
        ------
        DicomInputError
            The pixel data cannot be read or decoded, or the file changed since discovery.
        """
        syntax = transfer_syntax(header)
        try:
            if location is None or syntax.is_compressed:
                meta = getattr(header, "file_meta", None)
                has_syntax = meta is not None and "TransferSyntaxUID" in meta
                syntax_option: dict[str, Any] = (
                    {} if has_syntax else {"transfer_syntax_uid": syntax}
                )
                return pixel_array(file, **syntax_option)
            data = bytearray(location.header_length + location.value_length)
            n_read = read_into(file, data, location.element_offset)
            if n_read < len(data):
                del data[n_read:]
        except OSError as exc:
            raise DicomInputError(
                f"cannot read: {exc.strerror or exc}", file=file, tag=_TAG
            ) from exc
        except Exception as exc:
            raise DicomInputError(
                f"cannot decode pixel data: {type(exc).__name__}: {exc}", file=file, tag=_TAG
            ) from exc
        endian = ">" if syntax == ExplicitVRBigEndian else "<"
        expected = location.header_length + location.value_length
        if len(data) != expected or struct.unpack(f"{endian}HH", data[:4]) != (
            location.tag >> 16,
            location.tag & 0xFFFF,
        ):
            raise DicomInputError(
                "file changed since discovery (pixel data not where it was)",
                file=file,
                tag=_TAG,
                value=f"{len(data)} bytes",
                expected=f"{expected} bytes",
            )
        try:
            options, plain = self._decoding_options(header, location.tag, syntax)
            if plain is not None and location.value_length in _plain_lengths(options, plain):
                # what pydicom's native decoder returns here, without its per-call set-up
                count = options["rows"] * options["columns"]
                values = np.frombuffer(data, plain, count, offset=location.header_length)
                return values.reshape(options["rows"], options["columns"])
            array, _ = get_decoder(syntax).as_array(
                memoryview(data)[location.header_length :], **options
            )
        except Exception as exc:
            raise DicomInputError(
                f"cannot decode pixel data: {type(exc).__name__}: {exc}", file=file, tag=_TAG
            ) from exc
        return array


_PLAIN_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_PLAIN_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2")


def _plain_dtype(options: dict[str, Any], syntax: UID) -> np.dtype | None:
    """The dtype when the pixel data is one frame of whole little-endian integers, else None.

    That is the case where pydicom's native decoder only reshapes the bytes: one sample per
    pixel, monochrome, 8, 16 or 32 bits allocated and all of them stored (no sign or unused
    bit correction), one frame. Everything else goes through the decoder.
    """
    bits = options.get("bits_allocated")
    if (
        syntax not in _PLAIN_SYNTAXES
        or options.get("samples_per_pixel") != 1
        or str(options.get("photometric_interpretation")) not in _PLAIN_PHOTOMETRIC
        or bits not in (8, 16, 32)
        or options.get("bits_stored") != bits
        or options.get("pixel_representation") not in (0, 1)
        or int(options.get("number_of_frames") or 1) != 1
        or not isinstance(options.get("rows"), int)
        or not isinstance(options.get("columns"), int)
    ):
        return None
    kind = "i" if options["pixel_representation"] == 1 else "u"
    return np.dtype(f"<{kind}{bits // 8}")


def _plain_lengths(options: dict[str, Any], dtype: np.dtype) -> tuple[int, int]:
    """Value lengths (bytes) of one such frame: exact, or padded to an even length."""
    n_bytes = int(options["rows"]) * int(options["columns"]) * dtype.itemsize
    return n_bytes, n_bytes + n_bytes % 2


def _raw_value(header: Dataset, tag: int) -> Any:
    """The element's value as stored (raw bytes when not yet converted), None when absent."""
    if tag not in header:
        return None
    value = header.get_item(tag).value
    return value if isinstance(value, bytes | int | str | float) else repr(value)


class PlainFrames(NamedTuple):
    """How the pixel data of slices stored alike is read straight into an array."""

    dtype: np.dtype  # of the stored values (little endian)
    shape: tuple[int, int]  # (rows, columns)
    header_length: int  # of the pixel data element header (8 or 12 bytes)
    tag_bytes: bytes  # the element's tag as stored (little endian)

    @property
    def value_length(self) -> int:
        """Bytes of one frame (an exact length; a padded one is read by :class:`PixelReader`)."""
        return self.shape[0] * self.shape[1] * self.dtype.itemsize


def plain_frames(header: Dataset, location: PixelLocation, syntax: UID) -> PlainFrames | None:
    """The plain-frame reading of files whose header and pixel element are like these.

    ``None`` unless :class:`PixelReader` would take the frame straight from the bytes (one
    frame of whole little-endian integers, see :func:`_plain_dtype`): then a file is read with
    :func:`read_plain` into an array of ``dtype`` and ``shape``, which holds exactly what
    :meth:`PixelReader.read` returns for it.
    """
    try:
        options, plain = PixelReader()._decoding_options(header, location.tag, syntax)
    except Exception:  # PixelReader words the problem when it reads the file
        return None
    if plain is None or location.header_length not in (8, 12):
        return None
    shape = (int(options["rows"]), int(options["columns"]))
    tag_bytes = struct.pack("<HH", location.tag >> 16, location.tag & 0xFFFF)
    return PlainFrames(plain, shape, location.header_length, tag_bytes)


def read_plain(
    path: Path, location: PixelLocation, frames: PlainFrames, head: bytearray, out: np.ndarray
) -> bool:
    """Read one plain frame into ``out``; False when anything differs from what was located.

    One ``preadv`` reads the element header into ``head`` and the value into ``out`` (of
    ``frames.dtype`` and ``frames.shape``). False (``out`` undefined) when the file cannot be
    read, holds fewer bytes, or the element found is not the one located: the caller then reads
    it with :class:`PixelReader`, which words the problem.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        count = os.preadv(fd, [head, out.data], location.element_offset)
    except OSError:
        return False
    finally:
        os.close(fd)
    return count == len(head) + out.nbytes and head[:4] == frames.tag_bytes
