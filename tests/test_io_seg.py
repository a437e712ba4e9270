"""DICOM SEG VOIs (immunopet.io.seg): round trips, other grids, errors."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from dicom_factory import make_acquisition, make_pet_series, make_pet_volume
from immunopet.errors import DicomInputError, GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.seg import read_seg, read_source_images, write_seg

# make_pet_volume(): shape (8, 16, 16), spacing (dz, dy, dx) = (4, 3, 2.5) mm, voxel (0, 0, 0)
# at LPS (-20, -24, -16), axial: x = -20 + 2.5 i, y = -24 + 3 j, z = -16 + 4 k.


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    folder = make_pet_series(tmp_path_factory.mktemp("seg"))
    series = find_one_pet(folder)
    return series, load_series_volume(series)


def _masks(shape):
    rng = np.random.default_rng(7)
    scattered = rng.random(shape) < 0.15
    box = np.zeros(shape, dtype=bool)
    box[2:5, 3:9, 4:12] = True
    single = np.zeros(shape, dtype=bool)
    single[7, 15, 0] = True  # a corner voxel
    return {"liver": box, "lesion 1": single, "scattered VOI": scattered}


def test_round_trip_keeps_masks_names_and_kinds(pet, tmp_path):
    series, volume = pet
    masks = _masks(volume.shape)
    path = write_seg(
        masks, series, tmp_path / "vois.dcm", kinds={"liver": "organ", "lesion 1": "lesion"}
    )
    read = read_seg(path, reference=volume, frame_of_reference_uid=series.frame_of_reference_uid)
    assert list(read) == ["liver", "lesion 1", "scattered VOI"]
    for name, mask in masks.items():
        np.testing.assert_array_equal(read[name], mask)
        assert read[name].dtype == np.bool_
        assert not read[name].flags.writeable
    assert dict(read.kinds) == {"liver": "organ", "lesion 1": "lesion", "scattered VOI": None}
    assert all(notes == () for notes in read.warnings.values())
    assert read.outside == frozenset()
    assert read.frame_of_reference_uid == series.frame_of_reference_uid
    # the file is a binary SEG whose labels are the names and whose frames cite the PET slices
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in ds.SegmentSequence] == list(masks)
    cited = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in ds.PerFrameFunctionalGroupsSequence
    }
    assert cited <= {h.SOPInstanceUID for h in series.headers}


def test_selected_names_in_asked_order(pet, tmp_path):
    series, volume = pet
    masks = _masks(volume.shape)
    path = write_seg(masks, series, tmp_path / "vois.dcm")
    read = read_seg(path, reference=volume, names=["scattered VOI", "liver"])
    assert list(read) == ["scattered VOI", "liver"]
    np.testing.assert_array_equal(read["liver"], masks["liver"])
    with pytest.raises(InputError, match=r"segment not found.*'kidney'.*'lesion 1'"):
        read_seg(path, reference=volume, names=["kidney"])
    with pytest.raises(InputError, match=r"names: no segment to read"):
        read_seg(path, reference=volume, names=[])
    with pytest.raises(InputError, match="VOI name not found"):
        read["kidney"]


def test_other_frame_of_reference_is_refused(pet, tmp_path):
    series, volume = pet
    path = write_seg(_masks(volume.shape), series, tmp_path / "vois.dcm")
    with pytest.raises(GeometryError, match=r"vois\.dcm.*\(0020,0052\).*another frame"):
        read_seg(path, reference=volume, frame_of_reference_uid="1.2.3.4")


def test_seg_on_another_grid_is_resampled_nearest_neighbour(pet, tmp_path):
    _, reference = pet
    # A second PET series on its own grid: shape (10, 20, 20), spacing (3, 2, 2) mm,
    # voxel (0, 0, 0) at LPS (-17.3, -23.1, -14.6).
    other = make_pet_volume(
        (10, 20, 20), spacing_mm=(3.0, 2.0, 2.0), origin_mm=(-17.3, -23.1, -14.6)
    )
    folder = make_pet_series(
        tmp_path, volume=other, acquisition=make_acquisition(series_number=2), subdir="other"
    )
    series = find_one_pet(folder)
    mask = np.zeros(other.shape, dtype=bool)
    mask[2:8, 3:15, 4:17] = True  # away from the border of its grid
    mask[4, 6:10, 6:10] = False
    path = write_seg({"blob": mask}, series, tmp_path / "blob.dcm")
    with pytest.warns(GeometryWarning, match="resampled"):
        read = read_seg(path, reference=reference)
    # By hand: reference voxel (k, j, i) sits at x = -20 + 2.5 i, y = -24 + 3 j, z = -16 + 4 k,
    # i.e. at SEG index ((z + 14.6) / 3, (y + 23.1) / 2, (x + 17.3) / 2); nearest = rounded
    # (no value falls half-way, see the fractions -0.467, -0.45, -1.35 + steps of 4/3, 1.5, 1.25).
    expected = np.zeros(reference.shape, dtype=bool)
    for k in range(8):
        for j in range(16):
            for i in range(16):
                z, y, x = -16 + 4 * k, -24 + 3 * j, -20 + 2.5 * i
                kk = round((z + 14.6) / 3)
                jj = round((y + 23.1) / 2)
                ii = round((x + 17.3) / 2)
                if 0 <= kk < 10 and 0 <= jj < 20 and 0 <= ii < 20:
                    expected[k, j, i] = mask[kk, jj, ii]
    assert expected.sum() > 100
    np.testing.assert_array_equal(read["blob"], expected)
    assert any("resampled (nearest neighbour)" in note for note in read.warnings["blob"])


def test_voxels_beyond_the_grid_are_dropped_and_recorded(pet, tmp_path):
    _, reference = pet
    # Same axes and spacing, shifted by +5 slices (20 mm) in z: SEG slice s = reference slice
    # s + 5, so SEG slices 3..5 (reference 8..10) lie beyond the 8 reference slices.
    shifted = make_pet_volume(origin_mm=(-20.0, -24.0, 4.0))
    folder = make_pet_series(
        tmp_path, volume=shifted, acquisition=make_acquisition(series_number=3), subdir="shift"
    )
    series = find_one_pet(folder)
    mask = np.zeros(shifted.shape, dtype=bool)
    mask[1:6, 2:4, 2:5] = True  # 5 slices x 6 voxels = 30 voxels
    path = write_seg({"top": mask}, series, tmp_path / "top.dcm")
    with pytest.warns(GeometryWarning, match="18 of 30 voxels lie outside"):
        read = read_seg(path, reference=reference)
    expected = np.zeros(reference.shape, dtype=bool)
    expected[6:8, 2:4, 2:5] = True  # SEG slices 1, 2 -> reference 6, 7
    np.testing.assert_array_equal(read["top"], expected)
    assert read.outside == frozenset({"top"})


def test_fractional_seg_is_read_at_one_half(pet, tmp_path):
    series, volume = pet
    fractions = np.zeros(volume.shape, dtype=np.float32)
    fractions[3, 4, 5:9] = [0.2, 0.49, 0.5, 0.9]  # stored as 8-bit: 51, 125, 128, 230 of 255
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="soft",
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type="MANUAL",
    )
    seg = hd.seg.Segmentation(
        source_images=read_source_images(series),
        pixel_array=fractions,
        segmentation_type="FRACTIONAL",
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    )
    seg.save_as(tmp_path / "fractional.dcm")
    read = read_seg(tmp_path / "fractional.dcm", reference=volume)
    expected = np.zeros(volume.shape, dtype=bool)
    expected[3, 4, 7:9] = True  # 128/255 and 230/255 reach 0.5; 125/255 = 0.490 does not
    np.testing.assert_array_equal(read["soft"], expected)
    assert any("FRACTIONAL" in note for note in read.warnings["soft"])


def test_write_errors_name_the_voi_and_file(pet, tmp_path):
    series, volume = pet
    empty = np.zeros(volume.shape, dtype=bool)
    with pytest.raises(InputError, match=r"out\.dcm: mask: VOI 'spleen' is empty"):
        write_seg({"spleen": empty}, series, tmp_path / "out.dcm")
    with pytest.raises(GeometryError, match=r"VOI 'spleen': mask does not match.*\(8, 16, 16\)"):
        write_seg({"spleen": np.ones((8, 16, 15), dtype=bool)}, series, tmp_path / "out.dcm")
    with pytest.raises(InputError, match="invalid VOI name"):
        write_seg({"": np.ones(volume.shape, dtype=bool)}, series, tmp_path / "out.dcm")
    with pytest.raises(InputError, match="VOI 'spleen': mask must be boolean"):
        write_seg({"spleen": np.full(volume.shape, 2)}, series, tmp_path / "out.dcm")
    with pytest.raises(InputError, match="no VOI to write"):
        write_seg({}, series, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_read_errors(pet, tmp_path):
    series, volume = pet
    with pytest.raises(DicomInputError, match=r"\(0008,0016\) SOPClassUID: not a DICOM SEG"):
        read_seg(series.files[0], reference=volume)
    with pytest.raises(InputError, match="file not found"):
        read_seg(tmp_path / "missing.dcm", reference=volume)
    # two segments with one label: both kept, named by label and segment number
    masks = _masks(volume.shape)
    path = write_seg(masks, series, tmp_path / "vois.dcm")
    ds = pydicom.dcmread(path)
    ds.SegmentSequence[2].SegmentLabel = "liver"
    ds.save_as(tmp_path / "twice.dcm")
    read = read_seg(tmp_path / "twice.dcm", reference=volume)
    assert list(read) == ["liver (segment 1)", "lesion 1", "liver (segment 3)"]
    np.testing.assert_array_equal(read["liver (segment 3)"], masks["scattered VOI"])
    assert "SegmentLabel repeated ('liver')" in read.warnings["lesion 1"][0]


def test_reference_on_identical_grid_from_another_source(pet, tmp_path):
    # A reference built independently (e.g. from NIfTI, float32 affine) with the same grid
    # places the segments without resampling.
    series, volume = pet
    masks = _masks(volume.shape)
    path = write_seg(masks, series, tmp_path / "vois.dcm")
    affine = volume.affine.astype(np.float32).astype(np.float64)
    reference = ImageVolume(np.zeros(volume.shape), affine)
    read = read_seg(path, reference=reference)
    np.testing.assert_array_equal(read["scattered VOI"], masks["scattered VOI"])
    assert read.warnings["scattered VOI"] == ()


def test_repeated_labels_and_frames_off_the_planes_lose_no_voxel(pet, tmp_path):
    # A viewer's SEG: 11 segments all labelled "Neoplasm, Secondary", written on a grid whose
    # planes lie 0.045 mm above the PET planes (as found in a real whole-body SEG). Every
    # segment voxel must land on the PET voxel of the same index: none lost, none added.
    _, reference = pet
    shifted = make_pet_volume(origin_mm=(-20.0, -24.0, -16.0 + 0.045))
    folder = make_pet_series(
        tmp_path, volume=shifted, acquisition=make_acquisition(series_number=4), subdir="off"
    )
    series = find_one_pet(folder)
    rng = np.random.default_rng(11)
    masks = np.zeros((*reference.shape, 11), dtype=bool)
    for n in range(11):
        k0, j0, i0 = rng.integers(0, 5), rng.integers(0, 12), rng.integers(0, 12)
        masks[k0 : k0 + 4, j0 : j0 + 4, i0 : i0 + 4, n] = rng.random((4, 4, 4)) < 0.7
    masks[7, 10:13, 3:6, 10] = True  # reaches the top plane: the one the old reader lost
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n + 1,
            segment_label="Neoplasm, Secondary",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type="MANUAL",
        )
        for n in range(11)
    ]
    seg = hd.seg.Segmentation(
        source_images=read_source_images(series),
        pixel_array=masks,
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="viewer",
        manufacturer_model_name="viewer",
        software_versions="0",
        device_serial_number="0",
    )
    seg.save_as(tmp_path / "viewer.dcm")
    read = read_seg(tmp_path / "viewer.dcm", reference=reference)
    assert list(read) == [f"Neoplasm, Secondary (segment {n + 1})" for n in range(11)]
    for n in range(11):
        mask = read[f"Neoplasm, Secondary (segment {n + 1})"]
        assert mask.sum() == masks[..., n].sum()
        np.testing.assert_array_equal(mask, masks[..., n])
    assert all(kind == "lesion" for kind in read.kinds.values())
    notes = read.warnings["Neoplasm, Secondary (segment 11)"]
    assert any("frames up to 0.045 mm (0.011 slice) off the reference planes" in n for n in notes)
    assert read.outside == frozenset()
