"""``immunopet measure`` end to end on a tiny PET series with a hot sphere of known SUV."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math

import numpy as np
import pytest

from dicom_factory import make_pet_series
from immunopet.cli import measure
from immunopet.errors import InputError, SuvError
from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import find_one_pet
from immunopet.io.nifti import write_nifti
from immunopet.io.rtstruct import write_rtstruct

# Grid: 4 mm voxels, shape (16, 20, 20), voxel (k, j, i) at LPS x = -40 + 4 i, y = -40 + 4 j,
# z = -32 + 4 k. A sphere of radius 20 mm around (0, 0, 0) holds SUV 5, the rest SUV 1.
SHAPE = (16, 20, 20)
SUV_HOT, SUV_BACKGROUND = 5.0, 1.0
# dicom_factory's acquisition: 37 MBq of 89Zr (T = 78.41 h), scan 120 h later, 70 kg, images
# decay-corrected to scan start. SUV = C x W / A(scan), so C = SUV x A(scan) / W with
# A(scan) = 37e6 x 2^(-120 / 78.41) = 12.80 MBq and W = 70000 g: C(SUV 1) = 182.9 Bq/mL.
BQML_PER_SUV = 37e6 * 2.0 ** (-120.0 / 78.41) / 70000.0


def _hot_sphere_mask():
    k, j, i = np.indices(SHAPE)
    x, y, z = -40 + 4.0 * i, -40 + 4.0 * j, -32 + 4.0 * k
    return x**2 + y**2 + z**2 <= 20.0**2


def _activity():
    suv = np.where(_hot_sphere_mask(), SUV_HOT, SUV_BACKGROUND)
    return ImageVolume.from_attributes(
        array=suv * BQML_PER_SUV,
        image_position_mm=(-40.0, -40.0, -32.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=4.0,
        unit=Unit.BQML,
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    folder = make_pet_series(root, volume=_activity())
    spheres = root / "spheres.csv"
    spheres.write_text(
        "voi,x_mm,y_mm,z_mm,kind,method\n"
        "core,0,0,0,lesion,\n"  # 1 mL sphere: 19 voxels, all hot
        "muscle,-28,-28,-20,organ,\n"  # 4.2 mL sphere 44 mm from the centre: all background
        "seeded,0,0,0,lesion,41max\n",  # 0.41 x 5 = 2.05 separates hot from background
        encoding="utf-8",
    )
    rtstruct = write_rtstruct(
        {"hot": _hot_sphere_mask()},
        find_one_pet(folder),
        root / "rt.dcm",
        kinds={"hot": "lesion"},
    )
    return folder, spheres, rtstruct


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="immunopet")
    measure.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["measure", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out


def test_json_rows_hold_the_known_suv(study, capsys):
    folder, spheres, rtstruct = study
    code, out = _run([str(folder), str(spheres), str(rtstruct), "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["voi"] for r in rows] == ["core", "muscle", "seeded", "hot"]
    assert all(set(r) == set(measure.COLUMNS) for r in rows)
    by_name = {r["voi"]: r for r in rows}
    core, muscle, seeded, hot = (by_name[n] for n in ("core", "muscle", "seeded", "hot"))
    n_hot = int(_hot_sphere_mask().sum())
    assert core["n_voxels"] == 19  # offsets with a² + b² + c² <= 2 on 4 mm voxels
    assert core["volume_ml"] == pytest.approx(19 * 0.064)
    for row in (core, seeded, hot):
        for key in ("suv_mean", "suv_max", "suv_min", "suv_peak_local"):
            assert row[key] == pytest.approx(SUV_HOT, abs=1e-3), (row["voi"], key)
    assert core["suv_sd"] == pytest.approx(0.0, abs=1e-3)
    # the global peak of the whole hot sphere: a 6.2 mm sphere well inside it, all SUV 5
    assert hot["suv_peak_global"] == pytest.approx(SUV_HOT, abs=1e-3)
    assert muscle["suv_mean"] == pytest.approx(SUV_BACKGROUND, abs=1e-3)
    assert (muscle["kind"], muscle["method"]) == ("organ", "sphere")
    assert (seeded["method"], seeded["n_voxels"]) == ("threshold:41max", n_hot)
    assert (hot["method"], hot["kind"], hot["n_voxels"]) == ("rtstruct", "lesion", n_hot)
    # long axis: on the central slice the farthest centres are 5 voxels (20 mm) either side of
    # the centre, 40 mm apart, plus one 4 mm voxel = 44 mm (same in 3-D)
    assert hot["long_axis_mm"] == pytest.approx(44.0)
    assert hot["diameter_3d_mm"] == pytest.approx(44.0)
    assert hot["measurable"] is True
    # 1 mL sphere: its central slice is a 3 x 3 square; corner to corner 8 sqrt(2) mm, plus
    # one voxel along the diagonal (4 mm on isotropic voxels) = 15.31 mm < 20 mm
    assert core["long_axis_mm"] == pytest.approx(8 * math.sqrt(2) + 4)
    assert core["measurable"] is False
    assert [hot[f"centroid_{a}_mm"] for a in "xyz"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert core["normalisation"] == "bw"
    assert core["warnings"] == []


def test_table_and_csv(study, capsys):
    folder, spheres, _ = study
    code, out = _run([str(folder), str(spheres), "--min-long-axis-mm", "10"], capsys)
    assert code == 0
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["voi", "kind", "method", "normalisation"]
    core = dict(zip(header, lines[1].split(), strict=False))
    assert core["voi"] == "core"
    assert float(core["suv_mean"]) == pytest.approx(SUV_HOT, abs=1e-3)
    assert core["measurable"] == "yes"  # 15.3 mm >= 10 mm
    code, out = _run([str(folder), str(spheres), "--csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(measure.COLUMNS)
    assert float(rows[1]["suv_mean"]) == pytest.approx(SUV_BACKGROUND, abs=1e-3)
    # the 4.2 mL sphere (r = 10.009 mm): in-plane offsets up to (2, 1) voxels, farthest pair
    # (2, 1) and (-2, -1): 4 sqrt(20) mm + one 4 mm voxel = 21.9 mm >= 20 mm
    assert float(rows[1]["long_axis_mm"]) == pytest.approx(4 * math.sqrt(20) + 4)
    assert rows[1]["measurable"] == ""  # an organ sphere: the RECIST size rule does not apply


def test_peak_radius_option(study, capsys):
    folder, spheres, _ = study
    # A 10 mm peak sphere around the hottest core voxel: every voxel within 10 mm of any
    # core voxel lies within 5.7 + 10 < 20 mm of the centre, so still all SUV 5.
    _, out = _run([str(folder), str(spheres), "--json", "--peak-radius-mm", "10"], capsys)
    core = json.loads(out)[0]
    assert core["suv_peak_local"] == pytest.approx(SUV_HOT, abs=1e-3)
    # muscle sphere with a 30 mm peak radius reaches into the hot sphere: mean above 1
    _, out = _run([str(folder), str(spheres), "--json", "--peak-radius-mm", "30"], capsys)
    assert json.loads(out)[1]["suv_peak_local"] > SUV_BACKGROUND + 0.01


def test_nifti_with_sidecar(tmp_path, capsys):
    image = tmp_path / "sub-01_pet.nii.gz"
    sidecar = {
        "Units": "Bq/mL",
        "TracerRadionuclide": "Zr89",
        "InjectionStart": 0,
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 120 * 3600,  # decay-corrected to scan start, 120 h p.i.
        "InjectedRadioactivity": 37,
        "InjectedRadioactivityUnits": "MBq",
    }
    write_nifti(_activity(), image, sidecar=sidecar)
    spheres = tmp_path / "s.csv"
    spheres.write_text("voi,x_mm,y_mm,z_mm,kind\ncore,0,0,0,lesion\n", encoding="utf-8")
    with pytest.raises(SuvError, match="body weight is needed"):
        _run([str(image), str(spheres)], capsys)
    _, out = _run([str(image), str(spheres), "--json", "--weight-kg", "70"], capsys)
    (core,) = json.loads(out)
    assert core["suv_mean"] == pytest.approx(SUV_HOT, abs=1e-3)
    assert core["n_voxels"] == 19
    # Updated: a NIfTI now goes through the one SUV entry point, so every override applies
    # (the injection date-time only dates the record) and SUL needs height and sex.
    _, out = _run(
        [
            str(image),
            str(spheres),
            "--json",
            "--weight-kg",
            "70",
            "--injection-datetime",
            "2024-03-01T09:30",
        ],
        capsys,
    )
    assert json.loads(out)[0]["suv_mean"] == pytest.approx(SUV_HOT, abs=1e-3)
    with pytest.raises(SuvError, match=r"'lbm' needs \(0010,1020\) PatientSize"):
        _run([str(image), str(spheres), "--normalisation", "lbm", "--weight-kg", "70"], capsys)
    bare = tmp_path / "bare.nii"
    write_nifti(_activity(), bare)
    with pytest.raises(SuvError, match=r"bare\.nii: sidecar: no PET-BIDS sidecar"):
        _run([str(bare), str(spheres), "--weight-kg", "70"], capsys)


def test_errors_surface_as_package_errors(study, tmp_path, capsys):
    folder = study[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("voi,x_mm,y_mm,z_mm,kind\nfar,0,0,500,lesion\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.csv.*VOI 'far' \(line 2\): point lies outside"):
        _run([str(folder), str(bad)], capsys)
    with pytest.raises(InputError, match="VOI source not found"):
        _run([str(folder), str(tmp_path / "nothing.csv")], capsys)
