"""Real-world geometry: whole-body bed junctions, gaps, and bad files that must fail cleanly.

The bed-junction series copies what a GE whole-body FDG series (267 slices, TCIA) shows: steps
between 3.19 and 3.29 mm around a nominal 3.27 mm, every slice within 0.04 mm of one uniform
grid. The reference for its voxels is the volume written (stacked by position, as any uniform
reader stacks), and for its grid the nominal grid, within the 0.04 mm the slices were moved.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_factory import make_acquisition, make_pet_series, make_pet_volume
from immunopet.errors import DicomInputError, GeometryError, GeometryWarning
from immunopet.io.dicom import check_series, discover_dicom, load_series_volume

NOMINAL_MM = 3.27
# per bed of five slices: offsets -0.04 ... +0.04 mm, so steps are 3.29 mm inside a bed and
# 3.27 - 0.08 = 3.19 mm at each junction
BED_OFFSETS_MM = (-0.04, -0.02, 0.0, 0.02, 0.04)


def _bed_junction_series(tmp_path: Path, n_slices: int = 40) -> tuple[Path, np.ndarray]:
    volume = make_pet_volume((n_slices, 8, 8), spacing_mm=(NOMINAL_MM, 4.0, 4.0))
    folder = make_pet_series(tmp_path, volume=volume)
    offsets = np.array([BED_OFFSETS_MM[k % len(BED_OFFSETS_MM)] for k in range(n_slices)])
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        k = int(ds.InstanceNumber) - 1
        position = [float(v) for v in ds.ImagePositionPatient]
        position[2] = round(position[2] + offsets[k], 4)
        ds.ImagePositionPatient = position
        ds.save_as(path)
    return folder, volume.array


def test_bed_junction_steps_are_read_on_the_fitted_grid(tmp_path: Path) -> None:
    folder, written = _bed_junction_series(tmp_path)
    series = discover_dicom(folder).pet[0]
    steps = np.diff([float(h.ImagePositionPatient[2]) for h in series.headers])
    assert steps.min() == pytest.approx(3.19) and steps.max() == pytest.approx(3.29)

    with pytest.warns(GeometryWarning, match=r"deviate from a uniform grid by up to 0\.04"):
        volume = load_series_volume(series)
    # same voxels as a uniform reader: slice k of the files is slice k of the volume
    slopes = [float(h.RescaleSlope) for h in series.headers]
    error = np.abs(volume.array.astype(np.float64) - written).max(axis=(1, 2))
    assert np.all(error <= np.asarray(slopes) / 2 * (1 + 1e-6))
    # the grid: least-squares spacing and origin within 0.04 mm of the nominal grid
    reference = make_pet_volume((40, 8, 8), spacing_mm=(NOMINAL_MM, 4.0, 4.0))
    assert volume.spacing_mm[0] == pytest.approx(NOMINAL_MM, abs=0.005)
    centres = volume.voxel_to_lps(np.c_[np.arange(40), np.zeros(40), np.zeros(40)])
    nominal = reference.voxel_to_lps(np.c_[np.arange(40), np.zeros(40), np.zeros(40)])
    assert np.abs(centres - nominal).max() <= 0.04 + 1e-6


def test_validate_discover_and_run_share_the_check(tmp_path: Path) -> None:
    folder, _ = _bed_junction_series(tmp_path)
    geometry = check_series(discover_dicom(folder).pet[0])
    assert geometry.shape == (40, 8, 8)
    # the least-squares grid differs slightly from the nominal one: 0.0447 mm, not 0.04
    assert len(geometry.warnings) == 1 and "up to 0.0447 mm" in geometry.warnings[0]


def test_a_uniform_series_has_no_grid_warning(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeometryWarning)
        load_series_volume(discover_dicom(folder).pet[0])
    assert check_series(discover_dicom(folder).pet[0]).warnings == ()


def test_a_real_gap_is_refused(tmp_path: Path) -> None:
    folder, _ = _bed_junction_series(tmp_path)
    (folder / "PT_0021.dcm").unlink()
    series = discover_dicom(folder).pet[0]
    with pytest.raises(GeometryError, match=r"missing slice.*PT_0020\.dcm.*PT_0022\.dcm") as info:
        check_series(series)
    assert "\n" not in str(info.value)


def test_a_slice_off_the_grid_by_more_than_a_tenth_is_refused(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)  # 4 mm slices at z = -16 ... 12
    ds = pydicom.dcmread(folder / "PT_0004.dcm")
    ds.ImagePositionPatient = [-20.0, -24.0, -4.0 + 0.6]  # 0.15 slice off
    ds.save_as(folder / "PT_0004.dcm")
    with pytest.raises(
        GeometryError, match=r"PT_0004\.dcm.*uniform grid.*\(0\.1[0-9] slice\).*within 0\.1 slice"
    ):
        load_series_volume(discover_dicom(folder).pet[0])


# ---------------------------------------------------------------------------- bad files
def _edit(path: Path, keyword: str, value: object) -> None:
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, value)
    ds.save_as(path)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ([-4.0, 2.5], r"PT_0001\.dcm: \(0028,0030\) PixelSpacing: pixel spacing must be positive"),
        ([0.0, 0.0], r"PT_0001\.dcm: \(0028,0030\) PixelSpacing: pixel spacing must be positive"),
    ],
    ids=["negative", "zero"],
)
def test_non_positive_pixel_spacing_is_refused(
    tmp_path: Path, value: list[float], pattern: str
) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        _edit(path, "PixelSpacing", value)
    with pytest.raises(GeometryError, match=pattern):
        load_series_volume(discover_dicom(folder).pet[0])


def test_rows_columns_65535_fail_before_allocation(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    for path in folder.iterdir():
        _edit(path, "Rows", 65535)
        _edit(path, "Columns", 65535)
    with pytest.raises(GeometryError, match=r"PT_0001\.dcm: \(0028,0010\) Rows: .*65535"):
        load_series_volume(discover_dicom(folder).pet[0])


def test_pixel_data_length_is_checked_against_rows_and_columns(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)  # 16 x 16 int16 = 512 bytes
    for path in folder.iterdir():
        _edit(path, "Rows", 4000)
    with pytest.raises(
        DicomInputError, match=r"PT_0001\.dcm: \(7FE0,0010\) PixelData: .*'512 bytes'.*128000 bytes"
    ):
        check_series(discover_dicom(folder).pet[0])


def _write_raw_replace(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))


def test_non_integer_series_number_skips_only_that_file(tmp_path: Path) -> None:
    make_pet_series(tmp_path, subdir="tree/a")
    make_pet_series(
        tmp_path,
        subdir="tree/b",
        acquisition=make_acquisition(series_number=7, uid_seed="other"),
    )
    bad = tmp_path / "tree/a/PT_0002.dcm"
    _edit(bad, "SeriesNumber", "8900")
    _write_raw_replace(bad, b"8900", b"89Zr")

    inventory = discover_dicom(tmp_path / "tree")
    assert [(p.name, r) for p, r in inventory.skipped] == [
        ("PT_0002.dcm", "(0020,0011) SeriesNumber: not an integer (found '89Zr')")
    ]
    assert sorted(len(s.files) for s in inventory.pet) == [7, 8]
    assert sorted(s.series_number or 0 for s in inventory.pet) == [1, 7]
    # the other series loads; this one names the file it lacks and why
    damaged = next(s for s in inventory.pet if s.damaged)
    other = next(s for s in inventory.pet if not s.damaged)
    assert load_series_volume(other).shape == (8, 16, 16)
    with pytest.raises(DicomInputError, match=r"PT_0002\.dcm: .*SeriesNumber: not an integer"):
        load_series_volume(damaged)


def test_corrupted_vr_bytes_give_a_one_line_error(tmp_path: Path) -> None:
    folder = make_pet_series(tmp_path)
    # (0028,0010) Rows stored as US (2 binary bytes); its VR bytes overwritten with DS
    _write_raw_replace(folder / "PT_0002.dcm", b"\x28\x00\x10\x00US", b"\x28\x00\x10\x00DS")
    series = discover_dicom(folder).pet[0]  # discovery reads headers without converting
    with pytest.raises(
        DicomInputError, match=r"PT_0002\.dcm: \(0028,0010\) Rows: not an integer"
    ) as info:
        load_series_volume(series)
    assert "\n" not in str(info.value)


def test_a_text_value_under_a_wrong_vr_is_read_as_stored(tmp_path: Path) -> None:
    # (0028,0030) PixelSpacing (DS text) with its VR bytes overwritten with US: the stored
    # text is still "3\2.5" and geometry reads it as text, so the volume is the one written
    folder = make_pet_series(tmp_path)
    _write_raw_replace(folder / "PT_0002.dcm", b"\x28\x00\x30\x00DS", b"\x28\x00\x30\x00US")
    volume = load_series_volume(discover_dicom(folder).pet[0])
    assert volume.spacing_mm == pytest.approx((4.0, 3.0, 2.5))
