"""VOI sources (immunopet.voi.sources): dispatch by file type, spheres, seeds, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pydicom
import pytest

from dicom_factory import make_pet_series
from immunopet.errors import GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.masks import write_label_map
from immunopet.io.rtstruct import write_rtstruct
from immunopet.io.seg import write_seg
from immunopet.voi.sources import Voi, load_vois, segment_vois

# The reference grid of the sphere tests: 4 mm voxels, shape (16, 20, 20), axial,
# voxel (k, j, i) at LPS x = -40 + 4 i, y = -40 + 4 j, z = -32 + 4 k.
SHAPE = (16, 20, 20)


def _reference(values=None, unit=Unit.SUV_BW):
    array = np.zeros(SHAPE, dtype=np.float32) if values is None else values
    return ImageVolume.from_attributes(
        array=array,
        image_position_mm=(-40.0, -40.0, -32.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=4.0,
        unit=unit,
    )


def _brute_force_sphere(centre, radius):
    """Voxel centres of the grid within ``radius`` of ``centre``, enumerated one by one."""
    mask = np.zeros(SHAPE, dtype=bool)
    for k, j, i in itertools.product(*(range(n) for n in SHAPE)):
        x, y, z = -40 + 4 * i, -40 + 4 * j, -32 + 4 * k
        if math.dist((x, y, z), centre) <= radius:
            mask[k, j, i] = True
    return mask


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_spheres_from_a_table(tmp_path):
    table = _write(
        tmp_path / "spheres.csv",
        "voi,x_mm,y_mm,z_mm,volume_ml,diameter_mm,kind\n"
        "L1,0,0,0,,,lesion\n"
        "L2,1.3,-2.2,3.1,2.5,,lesion\n"
        "liver,-10.5,6.1,-4.4,,,organ\n"
        "aorta,8,8,8,,15,\n",
    )
    vois = load_vois(table, reference=_reference())
    assert [v.name for v in vois] == ["L1", "L2", "liver", "aorta"]
    assert [v.kind for v in vois] == ["lesion", "lesion", "organ", None]
    assert all(v.method == "sphere" and v.source == str(table) for v in vois)
    assert all(v.warnings == () for v in vois)
    # L1: 1 mL -> r = (3000 / 4 pi)^(1/3) = 6.2035 mm; at a voxel centre on 4 mm voxels the
    # offsets (a, b, c) with 16 (a² + b² + c²) <= 38.48 are those with a² + b² + c² <= 2:
    # 1 + 6 + 12 = 19 voxels.
    assert vois[0].n_voxels == 19
    radii = {
        "L1": (3000 / (4 * math.pi)) ** (1 / 3),
        "L2": (3 * 2500 / (4 * math.pi)) ** (1 / 3),
        "liver": (3 * 4200 / (4 * math.pi)) ** (1 / 3),  # 4.2 mL normal-tissue sphere
        "aorta": 7.5,
    }
    centres = {"L1": (0, 0, 0), "L2": (1.3, -2.2, 3.1), "liver": (-10.5, 6.1, -4.4),
               "aorta": (8, 8, 8)}  # fmt: skip
    for voi in vois:
        expected = _brute_force_sphere(centres[voi.name], radii[voi.name])
        np.testing.assert_array_equal(voi.mask, expected, err_msg=voi.name)
        assert not voi.mask.flags.writeable


def test_sphere_cut_by_the_border_is_kept_with_a_warning(tmp_path):
    # Centre on the first slice (z = -32): the 1 mL sphere's 19 voxels lose the 5 below it
    # (offset c = -1: a² + b² <= 1 -> 5 voxels).
    table = _write(tmp_path / "edge.csv", "voi,x_mm,y_mm,z_mm,kind\nedge,0,0,-32,lesion\n")
    (voi,) = load_vois(table, reference=_reference())
    assert voi.n_voxels == 14
    assert voi.warnings == (
        f"{table}: VOI 'edge': sphere cut by the image border (5 of 19 voxels outside the "
        "field of view)",
    )


def test_kind_argument_fills_rows_without_kind(tmp_path):
    table = _write(tmp_path / "k.csv", "voi,x_mm,y_mm,z_mm,kind\na,0,0,0,\nb,8,0,0,lesion\n")
    a, b = load_vois(table, reference=_reference(), kind="organ")
    assert (a.kind, b.kind) == ("organ", "lesion")  # the row's own kind wins
    assert a.n_voxels == _brute_force_sphere((0, 0, 0), (3 * 4200 / (4 * math.pi)) ** (1 / 3)).sum()
    picked = load_vois(table, reference=_reference(), kind="organ", names=["b"])
    assert [v.name for v in picked] == ["b"]


def test_point_table_errors(tmp_path):
    reference = _reference()
    cases = [
        ("voi,x_mm,y_mm\na,0,0\n", InputError, r"z_mm: column missing from the VOI table"),
        (
            "voi,x_mm,y_mm,z_mm,kind\na,0,0,0,lesion\nb,0,0,0,lesion\na,4,4,4,lesion\n",
            InputError,
            r"voi: VOI name repeated on lines 2 and 4 \(found 'a'",
        ),
        (
            "voi,x_mm,y_mm,z_mm,kind\nfar,0,0,200,lesion\n",
            GeometryError,
            r"VOI 'far' \(line 2\): point lies outside the image field of view",
        ),
        ("voi,x_mm,y_mm,z_mm\nq,0,0,0\n", InputError, r"VOI 'q' \(line 2\): sphere size unknown"),
        (
            "voi,x_mm,y_mm,z_mm,volume_ml,diameter_mm\nq,0,0,0,1,12\n",
            InputError,
            "VOI 'q': both volume_ml and diameter_mm on line 2",
        ),
        ("voi,x_mm,y_mm,z_mm,kind\nq,0,0,0,tumour\n", InputError, "unknown kind on line 2"),
        ("voi,x_mm,y_mm,z_mm,volume_ml\nq,0,0,0,-1\n", InputError, r"volume_ml: invalid number"),
        ("voi,x_mm,y_mm,z_mm\nq,0,zero,0\n", InputError, r"y_mm: invalid number on line 2"),
        ("voi,x_mm,y_mm,z_mm,method\nq,0,0,0,otsu\n", InputError, r"method: VOI 'q': unknown"),
    ]
    header_only = _write(tmp_path / "header_only.csv", "voi,x_mm,y_mm,z_mm\n")
    assert load_vois(header_only, reference=reference) == []
    for number, (text, error, pattern) in enumerate(cases):
        path = _write(tmp_path / f"bad{number}.csv", text)
        with pytest.raises(error, match=pattern):
            load_vois(path, reference=reference)
    good = _write(tmp_path / "good.csv", "voi,x_mm,y_mm,z_mm,kind\na,0,0,0,lesion\n")
    with pytest.raises(InputError, match=r"voi: VOI name not found \(found 'b'"):
        load_vois(good, reference=reference, names=["b"])


def _hot_cube():
    """SUV 1 background, a 3 x 3 x 3 cube of SUV 10 with SUV 12 at its centre (8, 10, 10)."""
    values = np.ones(SHAPE, dtype=np.float32)
    values[7:10, 9:12, 9:12] = 10.0
    values[8, 10, 10] = 12.0
    return _reference(values)


def test_threshold_vois_from_seeds(tmp_path):
    image = _hot_cube()
    # seed 4 mm off the cube centre (x = 0, y = 0, z = 0): the maximum is searched within 10 mm
    table = _write(
        tmp_path / "seeds.csv",
        "voi,x_mm,y_mm,z_mm,method,threshold,diameter_mm\n"
        "cube,4,0,0,41max,,\n"  # 0.41 x 12 = 4.92 -> the 27 cube voxels
        "core,0,0,0,fixed,11,\n"  # only the SUV 12 voxel
        "ball,0,0,0,sphere,,9\n",  # r = 4.5 mm: the centre and its 6 neighbours at 4 mm
    )
    cube, core, ball = load_vois(table, reference=image, kind=None)
    assert (cube.method, cube.kind, cube.n_voxels) == ("threshold:41max", "lesion", 27)
    expected = np.zeros(SHAPE, dtype=bool)
    expected[7:10, 9:12, 9:12] = True
    np.testing.assert_array_equal(cube.mask, expected)
    assert (core.method, core.n_voxels) == ("threshold:fixed", 1)
    assert core.mask[8, 10, 10]
    assert (ball.method, ball.kind, ball.n_voxels) == ("sphere", None, 7)


def test_segment_vois_uses_a_default_method(tmp_path):
    image = _hot_cube()
    table = _write(tmp_path / "seeds.csv", "voi,x_mm,y_mm,z_mm\ncube,0,0,0\n")
    (cube,) = segment_vois(table, image=image)
    assert (cube.name, cube.method, cube.kind, cube.n_voxels) == (
        "cube",
        "threshold:41max",
        "lesion",
        27,
    )
    (half,) = segment_vois(table, image=image, method="50max")  # 6 -> the cube again
    assert half.method == "threshold:50max" and half.n_voxels == 27
    mixed = _write(tmp_path / "mixed.csv", "voi,x_mm,y_mm,z_mm,method\nb,0,0,0,sphere\n")
    with pytest.raises(InputError, match="VOI 'b': a sphere row in a table of seeds"):
        segment_vois(mixed, image=image)
    with pytest.raises(InputError, match="unknown segmentation method"):
        segment_vois(table, image=image, method="otsu")


def test_empty_threshold_voi_is_an_error(tmp_path):
    faint = np.ones(SHAPE, dtype=np.float32)
    faint[8, 10, 10] = 3.0  # below the absolute SUV 4.0 threshold
    table = _write(tmp_path / "faint.csv", "voi,x_mm,y_mm,z_mm,method\nfaint,0,0,0,suv4.0\n")
    with pytest.raises(InputError, match=r"faint\.csv: mask: VOI 'faint' is empty"):
        load_vois(table, reference=_reference(faint))


def test_label_map_names_from_the_table_or_numbers(tmp_path):
    reference = _reference()
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[2:4, 3:5, 6:9] = 1  # 12 voxels
    labels[10, 10, 10] = 4
    named = write_label_map(
        reference.with_array(labels, unit=Unit.LABEL),
        tmp_path / "organs_dseg.nii.gz",
        names={1: "liver", 4: "spleen"},
    )
    liver, spleen = load_vois(named, reference=reference, kind="organ")
    assert (liver.name, liver.kind, liver.method, liver.n_voxels) == (
        "liver",
        "organ",
        "label-map",
        12,
    )
    np.testing.assert_array_equal(spleen.mask, labels == 4)
    plain = write_label_map(reference.with_array(labels, unit=Unit.LABEL), tmp_path / "p.nii")
    assert [v.name for v in load_vois(plain, reference=reference)] == ["1", "4"]
    (four,) = load_vois(named, reference=reference, names=["4"])  # by number
    assert four.name == "spleen"
    with pytest.raises(InputError, match=r"label: label out of range \(found '7'"):
        load_vois(plain, reference=reference, names=["7"])
    with pytest.raises(InputError, match=r"VOI name not found \(found 'kidney'.*'liver'"):
        load_vois(named, reference=reference, names=["kidney"])
    empty = write_label_map(
        reference.with_array(np.zeros(SHAPE, dtype=np.uint8), unit=Unit.LABEL),
        tmp_path / "empty.nii.gz",
    )
    # nothing delineated on this scan: no VOI, not an error; asking for one by name is
    assert load_vois(empty, reference=reference) == []
    with pytest.raises(InputError, match="label map holds no VOI"):
        load_vois(empty, reference=reference, names=["1"])


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    folder = make_pet_series(tmp_path_factory.mktemp("sources"))
    series = find_one_pet(folder)
    return series, load_series_volume(series)


def test_dicom_sources_are_recognised(pet, tmp_path):
    series, volume = pet
    a = np.zeros(volume.shape, dtype=bool)
    a[2:5, 4:8, 5:9] = True
    b = np.zeros(volume.shape, dtype=bool)
    b[6, 10, 10] = True
    masks = {"liver": a, "node": b}
    kinds = {"liver": "organ", "node": "lesion"}
    seg = write_seg(masks, series, tmp_path / "vois.seg", kinds=kinds)  # no .dcm suffix
    rt = write_rtstruct(masks, series, tmp_path / "vois.dcm", kinds=kinds)
    for path, method in ((seg, "seg"), (rt, "rtstruct")):
        vois = load_vois(
            path, reference=volume, frame_of_reference_uid=series.frame_of_reference_uid
        )
        assert [(v.name, v.kind, v.method) for v in vois] == [
            ("liver", "organ", method),
            ("node", "lesion", method),
        ]
        for voi in vois:
            np.testing.assert_array_equal(voi.mask, masks[voi.name])
        # the caller's kind wins over the file's
        assert {v.kind for v in load_vois(path, reference=volume, kind="lesion")} == {"lesion"}
    with pytest.raises(GeometryError, match="another frame of reference"):
        load_vois(rt, reference=volume, frame_of_reference_uid="1.2.3")


def test_empty_and_outside_dicom_vois(pet, tmp_path):
    series, volume = pet
    a = np.zeros(volume.shape, dtype=bool)
    a[2:5, 4:8, 5:9] = True
    path = write_rtstruct({"liver": a, "node": a}, series, tmp_path / "rt.dcm")
    ds = pydicom.dcmread(path)
    del ds.ROIContourSequence[1].ContourSequence
    ds.save_as(tmp_path / "no_contours.dcm")
    with pytest.raises(InputError, match=r"no_contours\.dcm: mask: VOI 'node' is empty"):
        load_vois(tmp_path / "no_contours.dcm", reference=volume)
    # the same contours on a grid 100 mm away along z
    moved = np.array(volume.affine)
    moved[2, 3] += 100.0
    far = ImageVolume(np.zeros(volume.shape), moved)
    with (
        pytest.warns(GeometryWarning, match="reaches beyond the image field of view"),
        pytest.raises(GeometryError, match="VOI 'liver' lies outside the image field of view"),
    ):
        load_vois(path, reference=far)


def test_unknown_sources(pet, tmp_path):
    series, volume = pet
    with pytest.raises(InputError, match="unknown VOI source"):
        load_vois(_write(tmp_path / "notes.txt", "liver\n"), reference=volume)
    with pytest.raises(InputError, match=r"SOPClassUID: DICOM file is not a VOI source"):
        load_vois(series.files[0], reference=volume)
    with pytest.raises(InputError, match="VOI source not found"):
        load_vois(tmp_path / "missing.csv", reference=volume)
    with pytest.raises(InputError, match="a folder is not a VOI source"):
        load_vois(tmp_path, reference=volume)


def test_voi_checks_its_mask():
    with pytest.raises(InputError, match="VOI 'x': mask must be a 3-D boolean array"):
        Voi(name="x", kind=None, mask=np.zeros((2, 2, 2)), source="s", method="sphere")
    with pytest.raises(InputError, match="VOI 'x': unknown kind"):
        Voi(name="x", kind="tumour", mask=np.zeros((2, 2, 2), bool), source="s", method="m")
    mask = np.zeros((2, 2, 2), dtype=bool)
    voi = Voi(name="x", kind=None, mask=mask, source="s", method="sphere")
    assert repr(voi) == "Voi(name='x', kind=None, method='sphere', n_voxels=0, source='s')"
    with pytest.raises(ValueError, match="read-only"):
        voi.mask[0, 0, 0] = True


def test_lesion_or_organ_column_names_vois_and_kind(tmp_path):
    from immunopet.image import ImageVolume
    from immunopet.voi.sources import load_vois

    grid = ImageVolume(array=np.zeros((20, 20, 20)), affine=np.diag([4.0, 4.0, 4.0, 1.0]))
    organs = tmp_path / "organ_points.csv"
    organs.write_text("organ,x_mm,y_mm,z_mm,diameter_mm\nliver,40,40,40,20\nspleen,20,20,20,20\n")
    lesions = tmp_path / "lesion_spheres.csv"
    lesions.write_text("lesion,x_mm,y_mm,z_mm,volume_ml\n3,40,40,40,1\n")
    by_name = {v.name: v for v in load_vois(organs, reference=grid)}
    assert set(by_name) == {"liver", "spleen"} and {v.kind for v in by_name.values()} == {"organ"}
    # a 2 cm sphere (radius 10 mm) centred on a 4 mm voxel centre: offsets (i, j, k) * 4 mm with
    # i^2 + j^2 + k^2 <= 6.25; squared norms 0, 1, 2, 3, 4, 5, 6 occur 1, 6, 12, 8, 6, 24, 24
    # times -> 81 voxels
    assert by_name["liver"].n_voxels == 81
    (lesion,) = load_vois(lesions, reference=grid)
    assert (lesion.name, lesion.kind) == ("3", "lesion")


def test_a_sphere_larger_than_the_image_fails_before_allocating(tmp_path):
    # the image holds 16 x 20 x 20 voxels of 0.064 mL = 409.6 mL
    table = _write(tmp_path / "huge.csv", "voi,x_mm,y_mm,z_mm,volume_ml\nhuge,0,0,0,1e12\n")
    with pytest.raises(
        InputError,
        match=r"huge\.csv: volume_ml/diameter_mm: VOI 'huge' \(line 2\): sphere larger than "
        r"the whole image \(found '1e\+12 mL'; expected at most the image's 409\.6 mL\)",
    ):
        load_vois(table, reference=_reference())


def test_a_truncated_label_map_is_a_one_line_error(tmp_path):
    labels = np.random.default_rng(0).integers(0, 3, size=SHAPE).astype(np.uint8)
    path = write_label_map(_reference().with_array(labels, unit=Unit.LABEL), tmp_path / "v.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])  # the header survives, the voxels do not
    with pytest.raises(InputError, match=r"v\.nii\.gz: image data: image data unreadable") as info:
        load_vois(path, reference=_reference())
    assert "\n" not in str(info.value)
