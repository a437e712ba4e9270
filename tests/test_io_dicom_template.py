"""Headers read by difference from a template equal what pydicom reads, or fall back to it.

Files are written here with pydicom itself (not our writer), with the variations real series
carry from slice to slice: values whose length changes (positions, UIDs, instance numbers),
undefined-length sequences, private elements, implicit VR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import immunopet.io.dicom as dicom_module
from immunopet.io.dicom import _read_header, _Templates, discover_dicom, load_series_volume

SERIES_UID = "1.2.826.0.1.3680043.8.498.1"


def _slice(k: int, *, implicit: bool = False, dose: str = "37000000") -> Dataset:
    """Slice ``k`` of a PET series; positions and UIDs change length with k."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    meta.MediaStorageSOPInstanceUID = f"1.2.3.{k}.{7 ** (k % 12)}"  # lengths change with k
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "PT"
    ds.PatientName = "Müller^Jürgen"  # non-ASCII: decoded with the character set
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.SeriesNumber = 3
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [-250.5, -250.0, -1000.0 + 3.27 * k]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [4.0, 4.0]
    ds.SliceThickness = 3.27
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = "70"
    item = Dataset()
    item.RadionuclideTotalDose = dose
    item.RadionuclideHalfLife = "282276"
    item.RadiopharmaceuticalStartDateTime = "20240301093000"
    code = Dataset()
    code.CodeValue = "C-B1047"
    code.CodingSchemeDesignator = "SRT"
    item.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    ds.RadiopharmaceuticalInformationSequence.is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    block = ds.private_block(0x0071, "SIEMENS MI RECON", create=True)
    block.add_new(0x22, "DT", "20240306090000.000000")  # decay correction reference
    ds.Rows, ds.Columns = 4, 5
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = f"{1.5 + k / 7:.10g}"  # length changes with k
    ds.RescaleIntercept = "0"
    ds.PixelData = (np.arange(20, dtype="<i2") + k).tobytes()
    return ds


def _write(folder: Path, datasets: list[Dataset]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, ds in enumerate(datasets):
        path = folder / f"IM{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _same_as_pydicom(path: Path, header: Dataset) -> None:
    reference = dcmread(path, stop_before_pixels=True)
    assert [(e.tag, e.VR, e.value) for e in header] == [(e.tag, e.VR, e.value) for e in reference]
    assert header.file_meta == reference.file_meta
    assert header.preamble == reference.preamble
    assert header.original_encoding == reference.original_encoding
    assert header.original_character_set == reference.original_character_set
    assert header.filename == reference.filename
    for ours, theirs in ((header, reference), (header.file_meta, reference.file_meta)):
        state, expected = vars(ours), vars(theirs)
        assert state.keys() == expected.keys()
        for name in state.keys() - {"_dict", "file_meta"}:
            assert state[name] == expected[name], name


@pytest.mark.parametrize("implicit", [False, True])
def test_every_header_read_by_difference_equals_pydicom(tmp_path: Path, implicit: bool) -> None:
    paths = _write(tmp_path, [_slice(k, implicit=implicit) for k in range(12)])
    templates = _Templates()
    headers = []
    for path in paths:
        header, location, problem = _read_header(path, templates)
        assert problem is None and header is not None and location is not None
        _same_as_pydicom(path, header)
        headers.append(header)
    for name, value in vars(headers[1]).items():  # no mutable state shared between files
        if isinstance(value, dict | list | set):
            assert value is not vars(headers[2])[name], name
        size = path.stat().st_size
        assert location.element_offset + location.header_length + location.value_length == size
        assert header.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose == 37e6
        assert str(header.PatientName) == "Müller^Jürgen"


def test_the_template_path_is_taken_for_a_uniform_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, [_slice(k) for k in range(12)])
    calls: list[object] = []
    original = dicom_module.dcmread

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(dicom_module, "dcmread", counting)
    inventory = discover_dicom(tmp_path)
    assert len(calls) == 1  # the first file; eleven read by difference
    volume = load_series_volume(inventory.pet[0])
    expected = [(np.arange(20) + k).reshape(4, 5) * (1.5 + k / 7) for k in range(12)]
    np.testing.assert_allclose(volume.array, np.array(expected), rtol=1e-6)


def test_files_that_differ_in_layout_are_parsed_by_pydicom(tmp_path: Path) -> None:
    datasets = [_slice(k) for k in range(6)]
    datasets[2].add_new(0x00181242, "IS", "300000")  # one more element: ActualFrameDuration
    datasets[3] = _slice(3, dose="36000000")  # a value inside a sequence differs
    datasets[4].SpecificCharacterSet = "ISO_IR 192"  # the decoding of every text changes
    del datasets[5].SliceThickness  # one element fewer
    paths = _write(tmp_path, datasets)
    paths[1].write_bytes(b"\x01" * 128 + paths[1].read_bytes()[128:])  # another preamble
    templates = _Templates()
    for path in paths:
        header, _, problem = _read_header(path, templates)
        assert problem is None and header is not None
        _same_as_pydicom(path, header)


def test_a_truncated_file_keeps_pydicoms_reason(tmp_path: Path) -> None:
    paths = _write(tmp_path, [_slice(k) for k in range(3)])
    paths[2].write_bytes(paths[2].read_bytes()[:-10])
    templates = _Templates()
    assert _read_header(paths[0], templates)[2] is None
    _, location, problem = _read_header(paths[2], templates)
    assert location is None and problem is not None and "truncated" in problem


def test_a_different_pixel_data_length_is_not_read_by_difference(tmp_path: Path) -> None:
    datasets = [_slice(k) for k in range(3)]
    datasets[1].Rows = 2
    datasets[1].PixelData = np.zeros(10, dtype="<i2").tobytes()
    paths = _write(tmp_path, datasets)
    templates = _Templates()
    for path in paths:
        header, location, _ = _read_header(path, templates)
        assert header is not None and location is not None
        _same_as_pydicom(path, header)
        assert location.value_length == int(header.Rows) * 5 * 2


def test_uids_of_a_new_series_are_taken_from_the_file(tmp_path: Path) -> None:
    first = _slice(0)
    other = _slice(1)
    other.SeriesInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    paths = _write(tmp_path, [first, other])
    inventory = discover_dicom(tmp_path)
    assert len(inventory.series) == 2
    templates = _Templates()
    _read_header(paths[0], templates)
    header, _, _ = _read_header(paths[1], templates)
    assert header is not None and header.SeriesInstanceUID == other.SeriesInstanceUID


def _derive(folder: Path) -> object:
    import warnings

    from immunopet.suv.factors import derive_suv

    series = discover_dicom(folder).pet[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return derive_suv(series.headers, files=[f.name for f in series.files])


@pytest.mark.parametrize(
    ("change", "tag"),
    [
        ({"dose": "36000000"}, "RadionuclideTotalDose"),
        ({"weight": "71"}, "PatientWeight"),
    ],
)
def test_a_slice_that_disagrees_is_found_among_byte_identical_ones(
    tmp_path: Path, change: dict[str, str], tag: str
) -> None:
    from immunopet.errors import SuvError

    datasets = [_slice(k) for k in range(10)]
    odd = _slice(6, dose=change.get("dose", "37000000"))
    odd.PatientWeight = change.get("weight", "70")
    datasets[6] = odd
    _write(tmp_path, datasets)
    with pytest.raises(SuvError, match=rf"{tag}.*differs between slices.*IM0006"):
        _derive(tmp_path)


def test_slices_that_agree_give_the_suv_factor_by_hand(tmp_path: Path) -> None:
    _write(tmp_path, [_slice(k) for k in range(10)])
    derivation = _derive(tmp_path)
    # 70 kg, 37 MBq of 89Zr (half-life 282276 s) injected 2024-03-01 09:30:00, reference
    # time from the Siemens private (0071,1022) of every slice: 2024-03-06 09:00:00.
    import math

    elapsed = (5 * 24 * 3600) - 30 * 60  # s from injection to 2024-03-06 09:00:00
    decayed = 37e6 * math.exp(-math.log(2) * elapsed / 282276)
    assert derivation.suv_bw_factor == pytest.approx(70_000 / decayed, rel=1e-9)  # type: ignore[attr-defined]


def test_the_siemens_block_is_found_behind_another_creator(tmp_path: Path) -> None:
    from immunopet.suv._header import _private_block_start

    ds = _slice(0)
    del ds[0x00710010]
    del ds[0x00711022]
    ds.private_block(0x0071, "OTHER VENDOR", create=True).add_new(0x22, "LO", "not a time")
    ds.private_block(0x0071, "SIEMENS MI RECON", create=True).add_new(
        0x22, "DT", "20240306090000.000000"
    )
    path = _write(tmp_path, [ds])[0]
    header = dcmread(path, stop_before_pixels=True)
    expected = header.private_block(0x0071, "SIEMENS MI RECON")
    found = _private_block_start(header, 0x0071, "SIEMENS MI RECON")
    assert found == 0x0071 << 16 | expected.block_start
    assert _private_block_start(header, 0x0071, "SIEMENS MI RECON") == 0x00711100
    assert _private_block_start(header, 0x0071, "NOBODY") is None


def test_threads_read_the_same_volume_and_name_the_first_bad_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from immunopet.errors import DicomInputError

    paths = _write(tmp_path, [_slice(k) for k in range(70)])  # three chunks of 32 slices
    series = discover_dicom(tmp_path).pet[0]
    monkeypatch.setattr(dicom_module, "_READ_THREADS", 1)
    one = load_series_volume(series).array
    monkeypatch.setattr(dicom_module, "_READ_THREADS", 3)
    np.testing.assert_array_equal(load_series_volume(series).array, one)
    for k in (66, 40):  # changed after discovery: the earlier one is named
        paths[k].write_bytes(paths[k].read_bytes()[:-12])
    with pytest.raises(DicomInputError, match=r"IM0040\.dcm.*file changed since discovery"):
        load_series_volume(series)


def test_learning_stops_when_every_file_has_its_own_layout(tmp_path: Path) -> None:
    datasets = []
    for k in range(12):
        ds = _slice(k)
        for extra in range(k):  # file k has k more elements than file 0: no two alike
            ds.add_new(0x00091010 + extra, "LO", "x")
        datasets.append(ds)
    paths = _write(tmp_path, datasets)
    templates = _Templates()
    for path in paths:
        header, _, problem = _read_header(path, templates)
        assert problem is None and header is not None
        _same_as_pydicom(path, header)
    assert templates.served == 0 and templates.learned == _Templates._SPARE


@pytest.mark.parametrize(
    ("name", "by_difference"),
    [
        ("CT_small.dcm", True),  # a GE CT header: private groups, sequences
        ("MR_small_implicit.dcm", True),
        ("MR_small_bigendian.dcm", False),  # big endian: parsed by pydicom only
        ("JPEG2000.dcm", False),  # encapsulated pixel data: parsed by pydicom only
    ],
)
def test_series_made_from_real_scanner_files(
    tmp_path: Path, name: str, by_difference: bool
) -> None:
    from pydicom.data import get_testdata_file

    source = get_testdata_file(name, download=False)
    if source is None:
        pytest.skip(f"pydicom test file {name} not bundled")
    original = dcmread(source)
    datasets = []
    for k in range(6):
        ds = dcmread(source)
        ds.SOPInstanceUID = f"{original.SOPInstanceUID}.{k * 37}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        if "ImagePositionPatient" in original:
            position = [float(v) for v in original.ImagePositionPatient]
            ds.ImagePositionPatient = [position[0], position[1], position[2] + 1.25 * k]
        datasets.append(ds)
    folder = tmp_path / "series"
    folder.mkdir()
    paths = []
    for k, ds in enumerate(datasets):
        path = folder / f"IM{k:04d}.dcm"
        ds.save_as(path)
        paths.append(path)
    templates = _Templates()
    for path in paths:
        header, _, problem = _read_header(path, templates)
        assert header is not None, problem
        _same_as_pydicom(path, header)
    assert (templates.served == len(paths) - 1) is by_difference


_BASE_FILES: dict[str, tuple[bytes, bytes]] = {}


def _base_files(folder: Path) -> tuple[bytes, bytes]:
    """Two files of one layout (template and the file to mutate), written once per session."""
    if not _BASE_FILES:
        paths = _write(folder, [_slice(0), _slice(5)])
        _BASE_FILES["pair"] = (paths[0].read_bytes(), paths[1].read_bytes())
    return _BASE_FILES["pair"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on mutated values
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2000),  # offset (mostly in the header)
            st.sampled_from(["flip", "insert", "delete"]),
            st.binary(min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_files_are_read_as_pydicom_reads_them_or_left_to_it(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, str, bytes]]
) -> None:
    """Never a header pydicom would not give: the template path agrees or steps aside."""
    from immunopet.io._dicom_template import HeaderTemplate

    folder = tmp_path_factory.getbasetemp() / "mutations"
    folder.mkdir(exist_ok=True)
    first, second = _base_files(folder / "base")
    template_path = folder / "template.dcm"
    template_path.write_bytes(first)
    header, location, _ = _read_header(template_path)
    template = HeaderTemplate.from_file(template_path, header, location)
    assert template is not None
    data = bytearray(second)
    for offset, kind, payload in edits:
        at = min(offset, len(data))
        if kind == "flip":
            data[at : at + len(payload)] = bytes(b ^ 0x5A for b in data[at : at + len(payload)])
        elif kind == "insert":
            data[at:at] = payload
        else:
            del data[at : at + len(payload)]
    path = folder / "mutated.dcm"
    path.write_bytes(bytes(data))
    found = template.read(path)
    if found is None:
        return  # left to pydicom: discovery parses it as before
    ours, location = found
    _same_as_pydicom(path, ours)  # every element converted and compared, and the state
    assert location.element_offset + location.header_length + location.value_length <= len(data)
