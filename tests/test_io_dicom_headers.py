"""A series' headers held as template + replaced values give what pydicom gives, everywhere.

Discovery keeps the files it reads by difference as :class:`StoredHeader` (no pydicom dataset
built); :class:`SliceHeaders` builds each dataset on first use. The reference throughout is
pydicom itself: ``dcmread`` of each file, and discovery with templates switched off (every
header parsed by pydicom, the path all reading took before templates existed). Files are
written with pydicom by the helpers of ``test_io_dicom_template.py``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

import immunopet.io.dicom as dicom_module
from immunopet.errors import DicomInputError, GeometryError, ImmunoPETError
from immunopet.io._dicom_headers import SliceHeaders, changed_slices
from immunopet.io._dicom_template import HeaderTemplate, StoredHeader
from immunopet.io._dicom_values import SameAsBefore, element_text, stored_key, text_of
from immunopet.io.dicom import DicomSeries, discover_dicom, load_series_volume
from test_io_dicom_template import _same_as_pydicom, _slice, _write

N_SLICES = 12


def _series(folder: Path, datasets: list[Dataset] | None = None) -> DicomSeries:
    if datasets is None:
        datasets = [_slice(k) for k in range(N_SLICES)]
    _write(folder, datasets)
    return discover_dicom(folder).pet[0]


def _without_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery parses every header with pydicom (no file is read by difference)."""
    monkeypatch.setattr(HeaderTemplate, "from_file", classmethod(lambda *args: None))


def _raw_tags(reference: Dataset) -> list[int]:
    """The top-level tags pydicom left raw when reading (it converts sequences of undefined
    length and (0008,0005) SpecificCharacterSet at once: those have no stored bytes there)."""
    return [int(t) for t, e in reference._dict.items() if isinstance(e, RawDataElement)]


def _top_level_tags(path: Path) -> list[int]:
    """The raw top-level tags of the file (:func:`_raw_tags`), and two absent ones."""
    tags = _raw_tags(dcmread(path, stop_before_pixels=True))
    return [*tags, 0x00181242, 0x00283000]  # ActualFrameDuration, ModalityLUTSequence: absent


def test_discovery_builds_no_dataset_and_loading_builds_none(tmp_path: Path) -> None:
    series = _series(tmp_path)
    headers = series.headers
    assert isinstance(headers, SliceHeaders)
    assert all(isinstance(entry, StoredHeader) for entry in headers.entries)
    load_series_volume(series)
    assert not any(entry.built for entry in headers.entries)  # type: ignore[union-attr]
    assert series.label.endswith(f"[series 3 {series.series_uid}]")


def test_headers_built_on_first_use_equal_pydicom_and_are_kept(tmp_path: Path) -> None:
    series = _series(tmp_path)
    for k, path in enumerate(series.files):
        header = series.headers[k]
        _same_as_pydicom(path, header)
        assert series.headers[k] is header  # built once, then kept
    assert [h.InstanceNumber for h in series.headers] == list(range(1, N_SLICES + 1))
    assert len(series.headers[2:5]) == 3 and series.headers[2:5][0] is series.headers[2]


def test_stored_text_and_bytes_equal_pydicoms_before_and_after_building(tmp_path: Path) -> None:
    series = _series(tmp_path)
    headers = SliceHeaders.of(series.headers)
    for k, path in enumerate(series.files):
        reference = dcmread(path, stop_before_pixels=True)
        tags = _top_level_tags(path)
        expected = [(text_of(reference.get_item(t)), stored_key(reference, t)) for t in tags]
        entry = headers.entries[k]
        assert [(headers.text(k, t), entry.stored(t)) for t in tags] == expected  # type: ignore[union-attr]
        headers[k]  # built: the answers now come from the dataset, and are the same
        assert [(headers.text(k, t), entry.stored(t)) for t in tags] == expected  # type: ignore[union-attr]


def test_a_value_set_in_a_built_header_is_what_loading_sees(tmp_path: Path) -> None:
    series = _series(tmp_path)
    series.headers[4].RescaleSlope = "2.5"  # a consumer's change to the dataset
    series.headers[6].ImageOrientationPatient = [1, 0, 0, 0, 0.98, 0.2]
    with pytest.raises(GeometryError, match=r"IM0006\.dcm.*mixed slice orientations"):
        load_series_volume(series)
    series.headers[6].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    volume = load_series_volume(series)
    np.testing.assert_array_equal(volume.array[4], (np.arange(20) + 4).reshape(4, 5) * 2.5)


def _same_as_before(headers: list[Dataset], tags: list[int]) -> list[int]:
    """The slices a SameAsBefore loop checks (the definition ``changed`` must follow)."""
    unchanged = SameAsBefore()
    return [
        k
        for k, header in enumerate(headers)
        if not all([unchanged(header, tag) for tag in tags])  # a list: every tag recorded
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_changed_slices_are_the_ones_same_as_before_checks(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("changed")
    datasets = [_slice(k) for k in range(8)]
    for k in data.draw(st.sets(st.integers(0, 7), max_size=3), label="odd slices"):
        datasets[k].PixelSpacing = [4.0, 4.5]  # stored differently in those slices
        datasets[k].SliceThickness = "3.270"
    series = _series(folder, datasets)
    paths = series.files
    tags = _top_level_tags(paths[0])
    chosen = data.draw(st.lists(st.sampled_from(tags), min_size=1, max_size=4), label="tags")
    built = data.draw(st.sets(st.integers(0, 7), max_size=2), label="built first")
    for k in built:
        series.headers[k]  # some datasets already built by a consumer
    reference = [dcmread(p, stop_before_pixels=True) for p in paths]
    assert changed_slices(series.headers, chosen) == _same_as_before(reference, chosen)


LoadCase = Callable[[list[Dataset]], None]


def _spacing(datasets: list[Dataset]) -> None:
    datasets[7].PixelSpacing = [4.0, 4.5]


def _orientation(datasets: list[Dataset]) -> None:
    datasets[7].ImageOrientationPatient = [1, 0, 0, 0, 0.98, 0.2]


def _slope(datasets: list[Dataset]) -> None:
    datasets[7].RescaleSlope = "7.123456"  # made "7.12345x" in the file (pydicom refuses it)


def _intercept(datasets: list[Dataset]) -> None:
    datasets[7].RescaleIntercept = "inf"


def _enhanced(datasets: list[Dataset]) -> None:
    datasets[7].SOPClassUID = "1.2.840.10008.5.1.4.1.1.130"  # Enhanced PET, same length


def _bits(datasets: list[Dataset]) -> None:
    datasets[7].BitsAllocated = 8  # the pixel data stays 16-bit: its length does not match


def _rows(datasets: list[Dataset]) -> None:
    datasets[7].Rows = 2  # and a pixel data element of another length: read by pydicom
    datasets[7].PixelData = np.zeros(10, dtype="<i2").tobytes()


def _position(datasets: list[Dataset]) -> None:
    datasets[7].ImagePositionPatient = [-250.5, -250.0, "nan"]


def _frames(datasets: list[Dataset]) -> None:
    datasets[7].NumberOfFrames = "2"


CASES: dict[str, tuple[LoadCase, str]] = {
    "pixel spacing": (_spacing, r"differ in pixel spacing"),
    "orientation": (_orientation, r"mixed slice orientations"),
    "rescale slope": (_slope, r"\(0028,1053\) RescaleSlope.*not a number"),
    "rescale intercept": (_intercept, r"\(0028,1052\) RescaleIntercept.*not finite"),
    "enhanced SOP class": (_enhanced, r"multi-frame"),
    "bits allocated": (_bits, r"pixel data length does not match"),
    "rows": (_rows, r"differ in size"),
    "position": (_position, r"\(0020,0032\) ImagePositionPatient"),
    "frames": (_frames, r"multi-frame"),
}


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS:UserWarning")  # pydicom: nan, inf
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_slice_that_differs_in_a_checked_value_is_refused_as_pydicom_alone_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    change, message = CASES[case]
    datasets = [_slice(k) for k in range(N_SLICES)]
    change(datasets)
    _write(tmp_path, datasets)
    path = tmp_path / "IM0007.dcm"
    path.write_bytes(path.read_bytes().replace(b"7.123456", b"7.12345x"))
    series = discover_dicom(tmp_path).pet[0]
    with pytest.raises(ImmunoPETError, match=message) as ours:
        load_series_volume(series)
    assert "IM0007.dcm" in str(ours.value)
    _without_templates(monkeypatch)
    with pytest.raises(ImmunoPETError) as theirs:
        load_series_volume(discover_dicom(tmp_path).pet[0])
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def _bits_of(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint8)


@pytest.mark.parametrize("intercept", ["0", "-1024.5"])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_volume_is_bit_for_bit_the_one_pydicom_alone_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, intercept: str, threads: int
) -> None:
    datasets = [_slice(k) for k in range(70)]  # three chunks of 32 slices
    for ds in datasets:
        ds.RescaleIntercept = intercept
    series = _series(tmp_path, datasets)
    monkeypatch.setattr(dicom_module, "_READ_THREADS", threads)
    ours = load_series_volume(series)
    _without_templates(monkeypatch)
    monkeypatch.setattr(dicom_module, "plain_frames", lambda *args: None)  # pydicom's decoder
    theirs = load_series_volume(discover_dicom(tmp_path).pet[0])
    assert np.array_equal(_bits_of(ours.array), _bits_of(theirs.array))
    assert ours.affine.tolist() == theirs.affine.tolist()
    # by hand: stored value x slope + intercept, in float64, rounded once to float32
    expected = np.array(
        [(np.arange(20) + k).reshape(4, 5) * (1.5 + k / 7) + float(intercept) for k in range(70)]
    )
    np.testing.assert_allclose(ours.array, expected, rtol=1e-6, atol=1e-3)


def test_a_file_removed_after_discovery_is_named(tmp_path: Path) -> None:
    series = _series(tmp_path)
    series.files[9].unlink()
    with pytest.raises(DicomInputError, match=r"IM0009\.dcm.*cannot read"):
        load_series_volume(series)


def test_a_discovered_series_pickles_with_its_headers(tmp_path: Path) -> None:
    series = _series(tmp_path)
    again = pickle.loads(pickle.dumps(series))
    for path, header in zip(again.files, again.headers, strict=True):
        _same_as_pydicom(path, header)
    np.testing.assert_array_equal(load_series_volume(again).array, load_series_volume(series).array)


def test_threads_building_one_header_get_one_dataset(tmp_path: Path) -> None:
    series = _series(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: series.headers[5], range(32)))
    assert all(header is found[0] for header in found)


def test_scratch_datasets_leave_the_stored_bytes_comparable(tmp_path: Path) -> None:
    series = _series(tmp_path)
    headers = SliceHeaders.of(series.headers)
    scratch = headers.scratch(0)
    assert int(scratch.Rows) == 4  # converted in the scratch dataset only
    assert headers.changed([0x00280010]) == [0]
    assert not headers.entries[0].built  # type: ignore[union-attr]
    assert element_text(headers[0], "Rows") is not None


_BASE: dict[str, tuple[bytes, bytes]] = {}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on mutated values
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2000),
            st.sampled_from(["flip", "insert", "delete"]),
            st.binary(min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_files_after_a_learned_layout_are_read_as_pydicom_reads_them(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, str, bytes]]
) -> None:
    """The template has learnt which elements differ (its fast comparison) before a mutant."""
    folder = tmp_path_factory.getbasetemp() / "learned-mutations"
    folder.mkdir(exist_ok=True)
    if not _BASE:
        paths = _write(folder / "base", [_slice(0), _slice(5), _slice(9)])
        _BASE["files"] = tuple(p.read_bytes() for p in paths)  # type: ignore[assignment]
    first, second, third = _BASE["files"]  # type: ignore[misc]
    template_path, learned_path, path = (folder / n for n in ("t.dcm", "l.dcm", "m.dcm"))
    template_path.write_bytes(first)
    learned_path.write_bytes(second)
    header, location, _ = dicom_module._read_header(template_path)
    template = HeaderTemplate.from_file(template_path, header, location)
    assert template is not None and template.read_stored(learned_path) is not None
    data = bytearray(third)
    for offset, kind, payload in edits:
        at = min(offset, len(data))
        if kind == "flip":
            data[at : at + len(payload)] = bytes(b ^ 0x5A for b in data[at : at + len(payload)])
        elif kind == "insert":
            data[at:at] = payload
        else:
            del data[at : at + len(payload)]
    path.write_bytes(bytes(data))
    found = template.read_stored(path)
    if found is None:
        return  # left to pydicom
    stored, location = found
    reference = dcmread(path, stop_before_pixels=True)
    tags = _raw_tags(reference)
    assert [stored.stored(t) for t in tags] == [stored_key(reference, t) for t in tags]
    _same_as_pydicom(path, stored.dataset())
    assert location.element_offset + location.header_length + location.value_length <= len(data)


def test_a_header_built_later_shares_nothing_with_one_used_before(tmp_path: Path) -> None:
    series = _series(tmp_path)
    first = series.headers[1]  # the first built (slice 0 is the template's own file, parsed
    # by pydicom): the prototype of the ones built later
    block = first.private_block(0x0071, "SIEMENS MI RECON")  # pydicom caches it in `first`
    assert block.dataset is first
    first.add_new(0x00091010, "LO", "only in slice 1")
    later = series.headers[5]
    _same_as_pydicom(series.files[5], later)
    assert later.private_block(0x0071, "SIEMENS MI RECON").dataset is later


@pytest.mark.parametrize("oriented", [True, False])
def test_slices_sort_by_position_then_instance_number_then_file(oriented: bool) -> None:
    rng = np.random.default_rng(3)
    headers, files = [], []
    for k in range(40):
        ds = Dataset()
        if oriented:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # normal (0, 0, 1): key = z
        ds.ImagePositionPatient = [0, 0, float(rng.integers(-3, 3))]  # many slices at one z
        ds.InstanceNumber = int(rng.integers(0, 4))
        headers.append(ds)
        files.append(Path(f"f{int(rng.integers(0, 5))}_{k}.dcm"))
    series = DicomSeries(series_uid="1", modality="PT", files=tuple(files), headers=tuple(headers))

    def key(i: int) -> tuple[float, int, str]:
        z = float(headers[i].ImagePositionPatient[2]) if oriented else 0.0
        return z, int(headers[i].InstanceNumber), str(files[i])

    expected = sorted(range(40), key=key)
    assert series.files == tuple(files[i] for i in expected)
    assert list(series.headers) == [headers[i] for i in expected]
