"""Encode one DICOM series fast: the shared header once, each slice's own elements per file.

Every file of a series written by :mod:`immunopet.io.dicom_write` shares most of its elements
(patient, study, series, geometry, radiopharmaceutical ...); a few differ per slice (SOP
instance UID, instance number, position, rescale slope, times, pixel data). pydicom spends
milliseconds per file building and encoding the shared ones again. :class:`SeriesEncoder`
encodes each shared element once with pydicom's own element writer, encodes only a slice's
elements per file, and joins them in tag order, as :func:`pydicom.filewriter.write_dataset`
does (elements of explicit VR little endian are encoded independently of each other; the File
Meta group length is the byte length of the other File Meta elements).

The bytes are those of ``Dataset.save_as(path, enforce_file_format=True)`` of the whole
dataset: :meth:`SeriesEncoder.encode_checked` compares them with pydicom's for a slice (the
writers do so for their first slice) and raises on any difference.
"""

from __future__ import annotations

import copy
import struct

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element, write_file_meta_info
from pydicom.tag import BaseTag, Tag

__all__ = ["SeriesEncoder", "full_dataset"]

_PREAMBLE = b"\x00" * 128 + b"DICM"
_GROUP_LENGTH = Tag(0x0002, 0x0000)
_MEDIA_INSTANCE = Tag(0x0002, 0x0003)


def _new_buffer() -> DicomBytesIO:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    return buffer


def _encode_element(element: DataElement, charset: str | list[str]) -> bytes:
    buffer = _new_buffer()
    write_data_element(buffer, element, charset)
    return buffer.getvalue()


def full_dataset(header: Dataset, slice_elements: Dataset) -> Dataset:
    """The whole dataset of one slice: a copy of ``header`` with the slice's elements set
    (and its SOP instance UID in the File Meta); what :class:`SeriesEncoder` encodes."""
    ds = copy.deepcopy(header)
    for element in slice_elements:
        ds[element.tag] = copy.deepcopy(element)
    ds.file_meta.MediaStorageSOPInstanceUID = slice_elements.SOPInstanceUID
    return ds


class SeriesEncoder:
    """The bytes of each slice's file of a series, from a shared header and per-slice elements.

    Parameters
    ----------
    header : Dataset
        Every element the slices share, with ``file_meta`` (explicit VR little endian) and
        ``SpecificCharacterSet``. Not modified.

    Notes
    -----
    A slice's elements override the header's of the same tag. Group-length elements
    (gggg,0000) of the data set are not written, as pydicom does not write them.
    """

    def __init__(self, header: Dataset) -> None:
        self._header = header
        charset = header.get("SpecificCharacterSet", "iso8859")
        self._charset: str | list[str] = charset
        body = correct_ambiguous_vr(copy.deepcopy(header), True)
        self._chunks: dict[BaseTag, bytes] = {
            element.tag: _encode_element(element, self._charset)
            for element in body
            if not (element.tag.element == 0 and element.tag.group > 6)
        }
        meta = copy.deepcopy(header.file_meta)
        meta.setdefault(_MEDIA_INSTANCE, DataElement(_MEDIA_INSTANCE, "UI", "1.2"))
        write_file_meta_info(_new_buffer(), meta, enforce_standard=True)  # completes `meta`
        self._meta_chunks: dict[BaseTag, bytes] = {
            element.tag: _encode_element(element, self._charset)
            for element in meta
            if element.tag != _GROUP_LENGTH
        }

    def encode(self, slice_elements: Dataset) -> bytes:
        """The file of one slice: the header with ``slice_elements`` (which must hold
        ``SOPInstanceUID``; the File Meta's (0002,0003) takes its value)."""
        chunks = dict(self._chunks)
        for element in slice_elements:
            chunks[element.tag] = _encode_element(element, self._charset)
        meta = dict(self._meta_chunks)
        instance = DataElement(_MEDIA_INSTANCE, "UI", slice_elements.SOPInstanceUID)
        meta[_MEDIA_INSTANCE] = _encode_element(instance, self._charset)
        meta_body = b"".join(meta[tag] for tag in sorted(meta))
        group_length = b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(meta_body))
        body = b"".join(chunks[tag] for tag in sorted(chunks))
        return b"".join((_PREAMBLE, group_length, meta_body, body))

    def encode_checked(self, slice_elements: Dataset) -> bytes:
        """:meth:`encode`, compared with pydicom's encoding of the whole dataset.

        Raises
        ------
        RuntimeError
            When they differ (a bug: the fast path would write other files than pydicom).
        """
        fast = self.encode(slice_elements)
        buffer = DicomBytesIO()
        full_dataset(self._header, slice_elements).save_as(buffer, enforce_file_format=True)
        if buffer.getvalue() != fast:
            raise RuntimeError("the series encoder differs from pydicom's dcmwrite (a bug)")
        return fast
