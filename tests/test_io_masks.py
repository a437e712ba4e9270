"""NIfTI label maps as VOIs (immunopet.io.masks)."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.errors import GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.masks import (
    label_table_path,
    read_label_map,
    read_label_table,
    write_label_map,
)
from immunopet.io.nifti import write_nifti


def _grid(shape, spacing, origin=(0.0, 0.0, 0.0), dtype=np.float32):
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = origin
    return ImageVolume(np.zeros(shape, dtype=dtype), affine, Unit.BQML)


def test_same_grid_read_with_names(tmp_path):
    reference = _grid((6, 7, 8), 4.0)
    labels = np.zeros((6, 7, 8), dtype=np.int16)
    labels[1:3, 2:4, 3:6] = 1  # 2 * 2 * 3 = 12 voxels
    labels[4, 5, 6] = 3  # 1 voxel
    path = write_label_map(
        reference.with_array(labels, unit=Unit.LABEL),
        tmp_path / "sub-01_dseg.nii.gz",
        names={1: "liver", 3: "aorta"},
    )
    assert label_table_path(path).read_text() == "index\tname\n1\tliver\n3\taorta\n"
    with_names = read_label_map(path, reference=reference)
    assert with_names.labels == (1, 3)
    assert with_names.names == {1: "liver", 3: "aorta"}
    assert with_names.warnings == ()
    assert with_names.volume.unit is Unit.LABEL
    assert with_names.mask(1).sum() == 12
    assert with_names.mask(3).sum() == 1
    assert with_names.mask_by_name("aorta")[4, 5, 6]
    np.testing.assert_array_equal(with_names.volume.array, labels)
    # argument names win over the table
    assert read_label_map(path, reference=reference, names={1: "L"}).names == {1: "L"}


def test_resampled_cube_onto_coarser_grid(tmp_path):
    # Label map: 2 mm voxels, 20^3, voxel centres at 0, 2, ..., 38 mm on each axis.
    # Cube = indices 5..14 -> centres 10..28 mm, i.e. a 20 mm cube spanning 9..29 mm.
    fine = _grid((20, 20, 20), 2.0, dtype=np.uint8)
    cube = np.zeros((20, 20, 20), dtype=np.uint8)
    cube[5:15, 5:15, 5:15] = 2
    path = write_label_map(fine.with_array(cube), tmp_path / "cube.nii.gz")
    # Reference: 4 mm voxels, 10^3, centres at 0, 4, ..., 36 mm. Centres inside 9..29 mm:
    # 12, 16, 20, 24, 28 -> 5 per axis -> 5^3 = 125 voxels (each maps exactly onto a
    # fine-grid voxel centre, so nearest neighbour has no ties).
    reference = _grid((10, 10, 10), 4.0)
    with pytest.warns(GeometryWarning, match="resampled"):
        result = read_label_map(path, reference=reference)
    assert result.labels == (2,)
    assert int(result.mask(2).sum()) == 125
    assert result.mask(2)[3:8, 3:8, 3:8].all()
    assert result.volume.same_grid(reference)
    assert len(result.warnings) == 1
    text = result.warnings[0]
    assert "shape (20, 20, 20), spacing (2, 2, 2) mm" in text
    assert "shape (10, 10, 10), spacing (4, 4, 4) mm" in text


def test_label_cut_by_the_field_of_view_is_counted(tmp_path):
    # Label 2: the 2 mm cube of voxel indices 5..14 (centres 10..28 mm on each axis), 1000
    # voxels. Reference: 4 mm voxels from 1 mm, 5 along the last axis: centres 1..17 mm,
    # field of view -1..19 mm. Along that axis centres 10..18 are inside, 20..28 outside:
    # 10 x 10 x 5 = 500 of the 1000 voxels lie outside (the other axes hold it whole).
    fine = _grid((20, 20, 20), 2.0, dtype=np.uint8)
    cube = np.zeros((20, 20, 20), dtype=np.uint8)
    cube[5:15, 5:15, 5:15] = 2
    cube[0, 0, 0] = 1  # a voxel well inside: not named
    path = write_label_map(fine.with_array(cube), tmp_path / "cube.nii.gz")
    reference = _grid((10, 10, 5), 4.0, origin=(1.0, 1.0, 1.0))
    with pytest.warns(GeometryWarning):
        result = read_label_map(path, reference=reference)
    (note,) = [w for w in result.warnings if "cut by the reference field of view" in w]
    assert ": 2 (500 of 1000 voxels, 50 %) lie outside it" in note
    assert "1 (" not in note
    # inside the field of view: no such note (the corner fast path)
    inside = _grid((10, 10, 10), 4.0, origin=(1.0, 1.0, 1.0))
    with pytest.warns(GeometryWarning):
        whole = read_label_map(path, reference=inside)
    assert not any("cut by" in w for w in whole.warnings)


def test_label_lost_in_resampling_is_recorded(tmp_path):
    fine = _grid((20, 20, 20), 2.0, dtype=np.uint8)
    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[1, 1, 1] = 5  # centre at 2 mm: nearest 4 mm centres are 0 and 4, never index 1
    path = write_label_map(fine.with_array(labels), tmp_path / "small.nii.gz")
    with pytest.warns(GeometryWarning):
        result = read_label_map(path, reference=_grid((10, 10, 10), 4.0))
    assert result.labels == ()
    assert any("labels [5] have no voxel" in w for w in result.warnings)


def test_no_overlap_is_a_geometry_error(tmp_path):
    far = _grid((5, 5, 5), 2.0, origin=(1000.0, 1000.0, 1000.0), dtype=np.uint8)
    labels = np.ones((5, 5, 5), dtype=np.uint8)
    path = write_label_map(far.with_array(labels), tmp_path / "far.nii.gz")
    with pytest.raises(GeometryError, match=r"far\.nii\.gz: affine: .*does not overlap"):
        read_label_map(path, reference=_grid((10, 10, 10), 4.0))


def test_absent_label_error_names_file_and_label(tmp_path):
    reference = _grid((4, 4, 4), 4.0)
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[0, 0, 0] = 1
    path = write_label_map(reference.with_array(labels), tmp_path / "m.nii.gz")
    result = read_label_map(path, reference=reference)
    with pytest.raises(InputError, match=r"m\.nii\.gz: label: .*\(found 9; expected one of 1\)"):
        result.mask(9)
    with pytest.raises(InputError, match=r"name: label name not found \(found 'liver'"):
        result.mask_by_name("liver")


def test_float_label_maps(tmp_path):
    reference = _grid((3, 3, 3), 4.0)
    integral = np.zeros((3, 3, 3), dtype=np.float32)
    integral[1, 1, 1] = 4.0
    good = write_nifti(reference.with_array(integral), tmp_path / "good.nii.gz")
    result = read_label_map(good, reference=reference)
    assert result.labels == (4,)
    assert np.issubdtype(result.volume.array.dtype, np.integer)
    fractional = integral.copy()
    fractional[0, 0, 0] = 0.5
    bad = write_nifti(reference.with_array(fractional), tmp_path / "bad.nii.gz")
    with pytest.raises(InputError, match=r"bad\.nii\.gz: voxel values: .*non-integer.*0\.5"):
        read_label_map(bad, reference=reference)
    negative = integral.copy()
    negative[0, 0, 0] = -1.0
    neg = write_nifti(reference.with_array(negative), tmp_path / "neg.nii.gz")
    with pytest.raises(InputError, match="negative values"):
        read_label_map(neg, reference=reference)


def test_label_table_errors(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("label\tname\n1\tliver\n")
    with pytest.raises(InputError, match=r"t\.tsv: index: column missing"):
        read_label_table(table)
    table.write_text("index\tname\n1\tliver\n1\tspleen\n")
    with pytest.raises(InputError, match="index: label index repeated on line 3"):
        read_label_table(table)
    table.write_text("index\tname\nx\tliver\n")
    with pytest.raises(InputError, match="index: invalid label index on line 2"):
        read_label_table(table)
    table.write_text("index\tname\tcolor\n2\tspleen\t#ff0000\n")
    assert read_label_table(table) == {2: "spleen"}
