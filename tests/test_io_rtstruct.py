"""DICOM RTSTRUCT VOIs (immunopet.io.rtstruct): contours, round trips, off-plane contours."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dicom_factory import make_acquisition, make_pet_series, make_pet_volume, oblique_orientation
from immunopet.errors import DicomInputError, GeometryError, GeometryWarning, InputError
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.rtstruct import read_rtstruct, write_rtstruct

# The 4 mm grid: shape (12, 24, 24), voxel (k, j, i) at LPS x = -48 + 4 i, y = -48 + 4 j,
# z = -24 + 4 k (axial).
SHAPE = (12, 24, 24)


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    volume = make_pet_volume(SHAPE, spacing_mm=(4.0, 4.0, 4.0), origin_mm=(-48.0, -48.0, -24.0))
    folder = make_pet_series(tmp_path_factory.mktemp("rt"), volume=volume)
    series = find_one_pet(folder)
    return series, load_series_volume(series)


def _ellipsoid(centre_mm, semi_axes_mm, rotation=None):
    """Voxel centres inside an ellipsoid on the 4 mm grid (independent of the package)."""
    k, j, i = np.indices(SHAPE)
    points = np.stack([-48 + 4.0 * i, -48 + 4.0 * j, -24 + 4.0 * k], axis=-1) - centre_mm
    if rotation is not None:
        points = points @ rotation
    return np.sum((points / np.asarray(semi_axes_mm)) ** 2, axis=-1) <= 1.0


def _rotation(deg_z, deg_x):
    a, b = np.radians(deg_z), np.radians(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _ring():
    """An annulus on slices 3-5 (hole of radius 2 voxels) with a one-voxel island in slice 4."""
    j, i = np.indices(SHAPE[1:])
    squared = (j - 11) ** 2 + (i - 12) ** 2
    ring = np.zeros(SHAPE, dtype=bool)
    ring[3:6] = (squared > 4) & (squared <= 36)
    ring[4, 11, 12] = True
    return ring


def _shapes():
    return {
        "sphere r4": _ellipsoid((0.0, 0.0, 0.0), (4.0, 4.0, 4.0)),
        "sphere r6.2 offset": _ellipsoid((1.3, -2.1, 0.7), (6.2, 6.2, 6.2)),
        "sphere r10": _ellipsoid((-10.0, 6.5, 2.0), (10.0, 10.0, 10.0)),
        "sphere r17": _ellipsoid((3.1, 1.7, -1.9), (17.0, 17.0, 17.0)),
        "ellipsoid": _ellipsoid((0.5, 0.5, 0.5), (22.0, 9.0, 13.0)),
        "tilted ellipsoid": _ellipsoid((-2.0, 3.0, 1.0), (25.0, 8.0, 10.0), _rotation(30, 20)),
        "ring": _ring(),
    }


def test_round_trip_spheres_ellipsoids_and_a_ring(pet, tmp_path):
    series, volume = pet
    masks = _shapes()
    assert all(m.sum() > 0 for m in masks.values())
    assert masks["sphere r4"].sum() == 7  # centre voxel + its 6 face neighbours at 4 mm
    kinds = {"ring": "lesion", "sphere r10": "organ"}
    path = write_rtstruct(masks, series, tmp_path / "rt.dcm", kinds=kinds)
    read = read_rtstruct(
        path, reference=volume, frame_of_reference_uid=series.frame_of_reference_uid
    )
    assert list(read) == list(masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(read[name], mask, err_msg=name)
        assert not read[name].flags.writeable
    assert read.kinds["ring"] == "lesion"
    assert read.kinds["sphere r10"] == "organ"
    assert read.kinds["ellipsoid"] is None
    assert all(notes == () for notes in read.warnings.values())


def test_ring_is_written_as_nested_contours(pet, tmp_path):
    series, _ = pet
    path = write_rtstruct({"ring": _ring()}, series, tmp_path / "ring.dcm")
    ds = pydicom.dcmread(path)
    contours = ds.ROIContourSequence[0].ContourSequence
    per_slice = {}
    for contour in contours:
        z = float(contour.ContourData[2])
        per_slice[z] = per_slice.get(z, 0) + 1
    # slices 3, 4, 5 at z = -12, -8, -4 mm: outer + hole, and in slice 4 the island as well
    assert per_slice == {-12.0: 2, -8.0: 3, -4.0: 2}


def test_random_masks_with_thin_features_round_trip_exactly(pet, tmp_path):
    # The module notes claim exactness even for one-voxel-thin features and voxels touching at
    # corners only: random masks are full of both.
    series, volume = pet
    rng = np.random.default_rng(2024)
    masks = {}
    for p in (0.05, 0.3, 0.5, 0.8):
        mask = np.zeros(SHAPE, dtype=bool)
        mask[4:8, 2:14, 3:15] = rng.random((4, 12, 12)) < p
        masks[f"random {p}"] = mask
    line = np.zeros(SHAPE, dtype=bool)
    line[6, 5, 2:20] = True  # one voxel thin
    line[6, 6:15, 19] = True
    masks["line"] = line
    path = write_rtstruct(masks, series, tmp_path / "random.dcm")
    read = read_rtstruct(path, reference=volume)
    for name, mask in masks.items():
        np.testing.assert_array_equal(read[name], mask, err_msg=name)


def test_single_voxel_contour_by_hand(pet, tmp_path):
    series, _ = pet
    mask = np.zeros(SHAPE, dtype=bool)
    mask[2, 5, 7] = True  # centre at x = -48 + 28 = -20, y = -48 + 20 = -28, z = -24 + 8 = -16
    path = write_rtstruct({"dot": mask}, series, tmp_path / "dot.dcm", kinds={"dot": "lesion"})
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert ds.Modality == "RTSTRUCT"
    (contour,) = ds.ROIContourSequence[0].ContourSequence
    assert contour.ContourGeometricType == "CLOSED_PLANAR"
    assert contour.NumberOfContourPoints == 4
    points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
    # a diamond through the midpoints of the voxel's four edges, 2 mm from its centre
    expected = {(-20.0, -26.0, -16.0), (-22.0, -28.0, -16.0), (-20.0, -30.0, -16.0),
                (-18.0, -28.0, -16.0)}  # fmt: skip
    assert {tuple(p) for p in points} == expected
    assert (
        contour.ContourImageSequence[0].ReferencedSOPInstanceUID == series.headers[2].SOPInstanceUID
    )
    assert ds.StructureSetROISequence[0].ROIName == "dot"
    assert ds.RTROIObservationsSequence[0].RTROIInterpretedType == "GTV"
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == series.frame_of_reference_uid
    referenced = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.series_uid
    assert [c.ReferencedSOPInstanceUID for c in referenced.ContourImageSequence] == [
        h.SOPInstanceUID for h in series.headers
    ]
    assert "PatientBirthDate" in ds and ds.PatientID == series.header.PatientID


def test_round_trip_on_an_oblique_grid(tmp_path):
    orientation = oblique_orientation(25.0, 15.0)
    volume = make_pet_volume((8, 14, 14), spacing_mm=(4.0, 4.0, 4.0), orientation=orientation)
    series = find_one_pet(make_pet_series(tmp_path, volume=volume))
    reference = load_series_volume(series)
    k, j, i = np.indices(reference.shape)
    blob = (k - 3.6) ** 2 / 6 + (j - 6.2) ** 2 / 12 + (i - 7.1) ** 2 / 20 <= 1.0
    path = write_rtstruct({"blob": blob}, series, tmp_path / "oblique.dcm")
    np.testing.assert_array_equal(read_rtstruct(path, reference=reference)["blob"], blob)


def test_contours_between_slices(pet, tmp_path):
    _, reference = pet
    # Contours drawn on a 3 mm grid (same rows and columns), slices at z = -24 + 3 s.
    fine = make_pet_volume((16, 24, 24), spacing_mm=(3.0, 4.0, 4.0), origin_mm=(-48, -48, -24))
    folder = make_pet_series(
        tmp_path, volume=fine, acquisition=make_acquisition(series_number=4), subdir="fine"
    )
    series = find_one_pet(folder)
    mask = np.zeros(fine.shape, dtype=bool)
    mask[3:8, 3:9, 4:11] = True  # planes z = -15, -12, -9, -6, -3 mm; all but -12 off-slice
    path = write_rtstruct({"box": mask}, series, tmp_path / "fine.dcm")
    with pytest.raises(GeometryError, match=r"ROI 'box': 4 contour\(s\) do not lie on an image"):
        read_rtstruct(path, reference=reference)
    with pytest.warns(GeometryWarning, match="nearest contour plane"):
        read = read_rtstruct(path, reference=reference, off_plane="nearest")
    # Reference slices z = -24 + 4 k; planes 3 mm apart, so a slice takes the nearest plane
    # within 1.5 mm: z = -16 (plane -15), -12 (-12), -8 (-9), -4 (-3); z = -20 and 0 are 3 mm
    # from the nearest plane, outside.
    expected = np.zeros(SHAPE, dtype=bool)
    expected[2:6, 3:9, 4:11] = True
    np.testing.assert_array_equal(read["box"], expected)
    assert any("nearest contour plane" in note for note in read.warnings["box"])


def _edited(path, out, edit):
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(out)
    return out


def test_errors_name_the_roi_and_file(pet, tmp_path):
    series, volume = pet
    masks = {"liver": _shapes()["sphere r10"], "lesion": _shapes()["sphere r4"]}
    path = write_rtstruct(masks, series, tmp_path / "rt.dcm")
    with pytest.raises(GeometryError, match=r"rt\.dcm: \(3006,0024\).*ROI 'liver' is in another"):
        read_rtstruct(path, reference=volume, frame_of_reference_uid="1.2.3")
    with pytest.raises(InputError, match=r"ROIName: ROI name not found \(found 'kidney'"):
        read_rtstruct(path, reference=volume, names=["kidney"])
    with pytest.raises(InputError, match=r"names: no ROI to read"):
        read_rtstruct(path, reference=volume, names=[])

    def empty_data(ds):
        ds.ROIContourSequence[1].ContourSequence[0].ContourData = []

    bad = _edited(path, tmp_path / "empty.dcm", empty_data)
    with pytest.raises(InputError, match=r"ContourData: ROI 'lesion', contour 1: empty"):
        read_rtstruct(bad, reference=volume)

    def twice(ds):
        ds.StructureSetROISequence[1].ROIName = "liver"

    with pytest.raises(InputError, match=r"ROI name repeated \(ROIs 1 and 2\)"):
        read_rtstruct(_edited(path, tmp_path / "twice.dcm", twice), reference=volume)

    def tilt(ds):
        contour = ds.ROIContourSequence[0].ContourSequence[0]
        data = [float(v) for v in contour.ContourData]
        data[2] += 3.0  # first point 3 mm off the plane of the others
        contour.ContourData = data

    with pytest.raises(GeometryError, match="ROI 'liver', contour 1: contour is not parallel"):
        read_rtstruct(_edited(path, tmp_path / "tilt.dcm", tilt), reference=volume)
    with pytest.raises(DicomInputError, match="not a DICOM RTSTRUCT"):
        read_rtstruct(series.files[0], reference=volume)


def test_point_contours_are_skipped_with_a_warning(pet, tmp_path):
    series, volume = pet
    mask = _shapes()["sphere r4"]  # 7 voxels over 3 slices: 3 contours
    path = write_rtstruct({"lesion": mask}, series, tmp_path / "rt.dcm")

    def to_point(ds):
        ds.ROIContourSequence[0].ContourSequence[0].ContourGeometricType = "POINT"

    edited = _edited(path, tmp_path / "point.dcm", to_point)
    with pytest.warns(GeometryWarning, match="1 POINT contour"):
        read = read_rtstruct(edited, reference=volume)
    expected = mask.copy()
    first_slice = np.flatnonzero(mask.any(axis=(1, 2)))[0]
    expected[first_slice] = False
    np.testing.assert_array_equal(read["lesion"], expected)


def test_roi_beyond_the_field_of_view_is_flagged(pet, tmp_path):
    series, volume = pet
    mask = np.zeros(SHAPE, dtype=bool)
    mask[11, 20:24, 20:24] = True  # touches the last slice, rows and columns
    path = write_rtstruct({"edge": mask}, series, tmp_path / "edge.dcm")
    np.testing.assert_array_equal(read_rtstruct(path, reference=volume)["edge"], mask)
    # the same contours read on a grid cropped by 2 columns
    cropped = volume.with_array(np.zeros(SHAPE))
    cropped = type(volume)(np.zeros((12, 24, 22)), cropped.affine)
    with pytest.warns(GeometryWarning, match="reaches beyond the image field of view"):
        read = read_rtstruct(path, reference=cropped)
    np.testing.assert_array_equal(read["edge"], mask[:, :, :22])
    assert read.outside == frozenset({"edge"})
