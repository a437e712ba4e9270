"""NIfTI geometry sanity: header fields nibabel reads without complaint but that make sizes wrong.

Each file is written by nibabel with a valid geometry (voxel sizes 2, 3, 4 mm along i, j, k,
origin (10, 20, 30) mm RAS, qform and sform code 1), then single header fields are overwritten
in the stored 348-byte header, so the file holds exactly the field under test. Expected values
are worked out by hand in the comments.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from immunopet.errors import GeometryError, GeometryWarning
from immunopet.image import ImageVolume, Unit
from immunopet.io.masks import read_label_map
from immunopet.io.nifti import affine_nifti_to_lps, read_nifti
from immunopet.metrics import voi_metrics

SHAPE_IJK = (4, 5, 6)
VOXEL_IJK = (2.0, 3.0, 4.0)
ORIGIN_RAS = (10.0, 20.0, 30.0)


def _write(path: Path, data: np.ndarray | None = None, **fields: Any) -> Path:
    """A nibabel-written NIfTI-1 with ``fields`` then overwritten in the stored header.

    ``pixdimN=value`` sets one ``pixdim`` element; other keys are header fields.
    """
    if data is None:
        data = np.zeros(SHAPE_IJK, dtype=np.float32)
    affine = np.diag([*VOXEL_IJK, 1.0])
    affine[:3, 3] = ORIGIN_RAS
    image = nib.Nifti1Image(data, affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    nib.save(image, path)
    raw = path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
    for name, value in fields.items():
        if name.startswith("pixdim"):
            header["pixdim"][int(name[len("pixdim") :])] = value
        else:
            header[name] = value
    path.write_bytes(header.binaryblock + raw[348:])
    return path


def test_valid_file_reads_without_warnings(tmp_path: Path) -> None:
    image = read_nifti(_write(tmp_path / "ok.nii"))
    assert image.warnings == ()
    assert image.affine_source == "sform"
    # our spacing is (dz, dy, dx) = (k, j, i) = (4, 3, 2) mm; 2*3*4 mm3 = 0.024 mL
    assert image.volume.spacing_mm == pytest.approx((4.0, 3.0, 2.0))
    assert image.volume.voxel_volume_ml == pytest.approx(0.024)


# --------------------------------------------------------------------- no qform, no sform
def test_no_codes_with_valid_pixdim_is_accepted_with_the_assumption_stated(tmp_path: Path) -> None:
    path = _write(tmp_path / "bare.nii", qform_code=0, sform_code=0)
    with pytest.warns(GeometryWarning, match="qform_code and sform_code are 0") as record:
        image = read_nifti(path)
    assert image.affine_source == "pixdim"
    (note,) = image.warnings
    assert "(2.0, 3.0, 4.0) (i, j, k) mm from pixdim" in note
    assert "origin at the volume's centre" in note
    assert str(record[0].message) == note
    assert image.volume.voxel_volume_ml == pytest.approx(0.024)
    # distance from voxel (i, j, k) = (0, 0, 0) to (3, 4, 5): sqrt(6^2 + 12^2 + 20^2) = sqrt(580)
    ends = image.volume.voxel_to_lps(np.array([[0, 0, 0], [5, 4, 3]]))  # (k, j, i) order
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(math.sqrt(580.0))
    # nibabel's fallback puts the volume's centre, voxel (1.5, 2, 2.5), at the origin
    centre = image.volume.voxel_to_lps(np.array([[2.5, 2.0, 1.5]]))
    assert centre[0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


@pytest.mark.parametrize("bad", [0.0, -2.0, math.nan, math.inf], ids=["zero", "neg", "nan", "inf"])
@pytest.mark.parametrize(
    ("codes", "what"),
    [((0, 0), "the only geometry"), ((1, 0), "it is the qform")],
    ids=["no-codes", "qform-only"],
)
def test_pixdim_that_the_affine_uses_must_be_a_voxel_size(
    tmp_path: Path, bad: float, codes: tuple[int, int], what: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "pet.nii", qform_code=codes[0], sform_code=codes[1], pixdim1=bad)
    with pytest.raises(GeometryError, match=r"pixdim\[1:4\]: voxel size is not usable") as info:
        read_nifti(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: pixdim[1:4]")
    assert f"found ({bad}, 3.0, 4.0)" in message
    assert what in message
    assert "expected finite voxel sizes > 0 (mm)" in message
    # nibabel would have set 0 -> 1 mm or -2 -> 2 mm and logged it; nothing of that shows
    assert "setting" not in capfd.readouterr().err


@pytest.mark.parametrize("bad", [0.0, -2.0, math.nan], ids=["zero", "neg", "nan"])
def test_unused_bad_pixdim_beside_a_valid_sform_is_a_warning(tmp_path: Path, bad: float) -> None:
    path = _write(tmp_path / "pet.nii", pixdim1=bad)
    with pytest.warns(GeometryWarning, match="is not a voxel size; unused"):
        image = read_nifti(path)
    assert image.affine_source == "sform"
    (note,) = image.warnings
    assert "the sform (code 1) gives voxel sizes (2.0, 3.0, 4.0) (i, j, k) mm" in note
    # the sform alone decides: 10 voxels of 2*3*4 mm3 are 0.24 mL
    mask = np.zeros(image.volume.shape, dtype=bool)
    mask[0, 0, :4] = True
    mask[1, 1, :3] = True
    mask[2, 2, :3] = True
    array = np.ones(image.volume.shape)
    assert voi_metrics(array, mask, image.volume.spacing_mm).volume_ml == pytest.approx(0.24)


# --------------------------------------------------------------------- sform / qform fields
def test_singular_sform_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "flat.nii", srow_x=[0.0, 0.0, 0.0, 10.0])
    with pytest.raises(GeometryError, match=r"srow_x/y/z \(sform_code 1\): affine is singular"):
        read_nifti(path)


def test_collinear_sform_axes_are_refused(tmp_path: Path) -> None:
    # j axis parallel to i: every column non-zero, determinant 0
    path = _write(
        tmp_path / "collinear.nii",
        srow_x=[2.0, 3.0, 0.0, 10.0],
        srow_y=[0.0, 0.0, 0.0, 20.0],
    )
    with pytest.raises(GeometryError, match="affine is singular"):
        read_nifti(path)


def test_non_finite_sform_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "nan.nii", qform_code=0, srow_x=[2.0, 0.0, 0.0, math.nan])
    with pytest.raises(GeometryError, match="affine has non-finite values") as info:
        read_nifti(path)
    assert "(2.0, 0.0, 0.0, nan)" in str(info.value)


def test_non_finite_qoffset_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.nii", sform_code=0, qoffset_x=math.nan)
    with pytest.raises(GeometryError, match=r"qoffset_x/y/z \(qform_code 1\): affine has non"):
        read_nifti(path)


def test_qfac_zero_is_read_as_one_and_other_values_are_refused(tmp_path: Path) -> None:
    # NIfTI-1: "pixdim[0] = qfac ... if pixdim[0] is 0, it should be taken as 1"
    image = read_nifti(_write(tmp_path / "q0.nii", sform_code=0, pixdim0=0.0))
    assert image.affine_source == "qform"
    assert image.warnings == ()
    # identity quaternion, qfac 1: RAS = diag(2, 3, 4) + (10, 20, 30); voxel (i,j,k) = (1,1,1)
    # at RAS (12, 23, 34) = LPS (-12, -23, 34)
    assert image.volume.voxel_to_lps(np.array([[1, 1, 1]]))[0] == pytest.approx([-12, -23, 34])
    with pytest.raises(GeometryError, match=r"pixdim\[0\]: qfac .* \(found 2.0"):
        read_nifti(_write(tmp_path / "q2.nii", sform_code=0, pixdim0=2.0))


def test_unknown_coordinate_code_is_refused(tmp_path: Path) -> None:
    # nibabel would reset code 9 to 0 and drop the sform without a word
    with pytest.raises(GeometryError, match=r"sform_code: unknown coordinate code \(found 9"):
        read_nifti(_write(tmp_path / "code.nii", sform_code=9))


def test_template_space_sform_gives_way_to_the_scanner_qform(tmp_path: Path) -> None:
    # an MNI-registered sform stretches the voxels to 2.2 x 3.3 x 4.4 template mm; the qform
    # (code 1, scanner) keeps the patient's 2 x 3 x 4 mm: 0.024 mL per voxel, not 0.031944
    path = _write(
        tmp_path / "mni.nii",
        sform_code=4,
        srow_x=[2.2, 0, 0, 0],
        srow_y=[0, 3.3, 0, 0],
        srow_z=[0, 0, 4.4, 0],
    )
    with pytest.warns(GeometryWarning, match=r"template space \(MNI152\); the qform \(code 1"):
        image = read_nifti(path)
    assert image.affine_source == "qform"
    assert image.volume.voxel_volume_ml == pytest.approx(0.024)
    assert image.volume.affine[:3, 3] == pytest.approx([-10.0, -20.0, 30.0])


@pytest.mark.parametrize(
    ("fields", "tag"),
    [
        ({"sform_code": 4, "qform_code": 0}, "sform_code"),
        ({"sform_code": 0, "qform_code": 3}, "qform_code"),
    ],
    ids=["mni-sform-alone", "talairach-qform-alone"],
)
def test_template_space_alone_is_refused(tmp_path: Path, fields: dict[str, int], tag: str) -> None:
    with pytest.raises(GeometryError, match=rf"{tag}: the geometry maps into a template space"):
        read_nifti(_write(tmp_path / "template.nii", **fields))


@pytest.mark.parametrize(("units", "scale", "name"), [(1, 1000.0, "metres"), (3, 0.001, "microns")])
def test_spatial_units_other_than_mm_are_converted(
    tmp_path: Path, units: int, scale: float, name: str
) -> None:
    # a 2 x 3 x 4 mm voxel stored in metres (0.002 ...) or microns (2000 ...)
    srows = {
        f"srow_{axis}": [v / scale for v in row]
        for axis, row in zip(
            "xyz",
            ([2.0, 0, 0, 10.0], [0, 3.0, 0, 20.0], [0, 0, 4.0, 30.0]),
            strict=True,
        )
    }
    path = _write(tmp_path / "units.nii", qform_code=0, xyzt_units=units, **srows)
    with pytest.warns(GeometryWarning, match=f"xyzt_units says {name}"):
        image = read_nifti(path)
    assert image.volume.voxel_volume_ml == pytest.approx(0.024, rel=1e-6)
    assert image.volume.affine[:3, 3] == pytest.approx([-10.0, -20.0, 30.0], rel=1e-6)


# --------------------------------------------------------------------- VOI label maps
def _reference() -> ImageVolume:
    """The PET grid of a file written by ``_write`` (sform code 1)."""
    affine_ras = np.diag([*VOXEL_IJK, 1.0])
    affine_ras[:3, 3] = ORIGIN_RAS
    return ImageVolume(
        np.zeros(SHAPE_IJK[::-1], dtype=np.float32), affine_nifti_to_lps(affine_ras), Unit.BQML
    )


def _labels() -> np.ndarray:
    data = np.zeros(SHAPE_IJK, dtype=np.uint8)
    data[1, 2, 3] = 1
    data[2, 2, 3] = 1
    return data


def test_label_map_without_position_on_the_reference_shape_is_placed_voxel_for_voxel(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "mask.nii", data=_labels(), qform_code=0, sform_code=0)
    with pytest.warns(GeometryWarning) as record:
        labels = read_label_map(path, reference=_reference())
    assert [str(w.message) for w in record] == list(labels.warnings)
    assert "placed voxel for voxel on the reference grid" in labels.warnings[-1]
    assert labels.volume.same_grid(_reference())
    # nifti[i, j, k] -> ours[k, j, i]: voxels (3, 2, 1) and (3, 2, 2)
    assert sorted(map(tuple, np.argwhere(labels.mask(1)))) == [(3, 2, 1), (3, 2, 2)]
    assert any("position unknown" in note for note in labels.warnings)
    assert not any("resampled" in note for note in labels.warnings)


def test_label_map_without_position_on_another_grid_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "mask.nii", data=_labels(), qform_code=0, sform_code=0, pixdim1=2.5)
    with (
        pytest.warns(GeometryWarning),
        pytest.raises(GeometryError, match=r"label map has no position .* cannot be placed"),
    ):
        read_label_map(path, reference=_reference())


def test_label_map_with_unusable_pixdim_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "mask.nii", data=_labels(), sform_code=0, pixdim3=0.0)
    with pytest.raises(GeometryError, match=r"pixdim\[1:4\]"):
        read_label_map(path, reference=_reference())


def test_label_map_on_the_pet_grid_is_used_as_is(tmp_path: Path) -> None:
    labels = read_label_map(_write(tmp_path / "mask.nii", data=_labels()), reference=_reference())
    assert labels.warnings == ()
    assert labels.volume.same_grid(_reference())
    assert int(labels.mask(1).sum()) == 2
