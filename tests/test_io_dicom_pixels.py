"""PixelReader returns exactly what pydicom's ``pixel_array`` returns, on every path.

Plain frames (whole little-endian integers) are taken straight from the bytes; the others
(unused high bits, big endian, bits allocated 12 ...) go through pydicom's decoder. The
reference is ``pydicom.dcmread(file).pixel_array``, pydicom's own full parse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from immunopet.io._dicom_pixels import PixelReader
from immunopet.io.dicom import _read_header


def write_image(
    path: Path,
    array: np.ndarray,
    *,
    bits_stored: int,
    syntax: UID = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
) -> Path:
    """One single-frame image with ``array``'s dtype as stored."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.Modality = "PT"
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = array.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if array.dtype.kind == "i" else 0
    big = syntax == ExplicitVRBigEndian
    ds.PixelData = array.astype(array.dtype.newbyteorder(">" if big else "<")).tobytes()
    ds.save_as(
        path, enforce_file_format=True, little_endian=not big, implicit_vr=syntax.is_implicit_VR
    )
    return path


CASES = {
    "uint16": (np.uint16, 16, ExplicitVRLittleEndian, "MONOCHROME2"),
    "int16 implicit": (np.int16, 16, ImplicitVRLittleEndian, "MONOCHROME2"),
    "uint8 odd size": (np.uint8, 8, ExplicitVRLittleEndian, "MONOCHROME2"),
    "int32": (np.int32, 32, ExplicitVRLittleEndian, "MONOCHROME1"),
    "int16 in 12 bits": (np.int16, 12, ExplicitVRLittleEndian, "MONOCHROME2"),
    "uint16 in 12 bits": (np.uint16, 12, ExplicitVRLittleEndian, "MONOCHROME2"),
    "int16 big endian": (np.int16, 16, ExplicitVRBigEndian, "MONOCHROME2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_matches_pydicom_pixel_array(tmp_path: Path, case: str) -> None:
    dtype, bits_stored, syntax, photometric = CASES[case]
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    shape = (5, 7) if case == "uint8 odd size" else (6, 4)
    array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    if bits_stored < array.dtype.itemsize * 8 and array.dtype.kind == "i":
        array = np.clip(array, -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1)
    elif bits_stored < array.dtype.itemsize * 8:
        array = array % (2**bits_stored)
    path = write_image(
        tmp_path / "image.dcm",
        array,
        bits_stored=bits_stored,
        syntax=syntax,
        photometric=photometric,
    )
    header, location, problem = _read_header(path)
    assert header is not None and problem is None
    reader = PixelReader()
    got = reader.read(path, header, location)
    again = reader.read(path, header, location)  # the cached options give the same result
    expected = pydicom.dcmread(path).pixel_array
    for result in (got, again):
        assert result.dtype == expected.dtype
        assert result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)
        assert result.flags.writeable


@pytest.mark.parametrize("case", ["uint16", "int16 implicit", "uint8 odd size", "int32"])
def test_plain_frames_skip_the_decoder(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dtype, bits_stored, syntax, photometric = CASES[case]
    array = np.arange(35 if case == "uint8 odd size" else 24, dtype=dtype)
    array = array.reshape((5, 7) if case == "uint8 odd size" else (6, 4))
    path = write_image(
        tmp_path / "image.dcm",
        array,
        bits_stored=bits_stored,
        syntax=syntax,
        photometric=photometric,
    )
    header, location, _ = _read_header(path)
    assert header is not None

    def no_decoder(*args: object) -> None:
        raise AssertionError("the decoder was called for a plain frame")

    monkeypatch.setattr("immunopet.io._dicom_pixels.get_decoder", no_decoder)
    np.testing.assert_array_equal(PixelReader().read(path, header, location), array)
