"""The one SUV engine: no SUV arithmetic outside ``suv/``; NIfTI round trip in every
normalisation; no traceback for any PET header value (hypothesis); inspect explains it all."""

from __future__ import annotations

import argparse
import ast
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import Dataset

from dicom_factory import make_acquisition, make_pet_series
from immunopet.cli import inspect as inspect_cli
from immunopet.cli import measure
from immunopet.cli import suv as suv_cli
from immunopet.errors import ImmunoPETError
from immunopet.io.nifti import read_nifti
from immunopet.suv.factors import derive_suv
from immunopet.suv.volume import read_suv_volume, suv_unit
from test_cli_measure import _activity
from test_suv_factors import make_headers

SRC = Path(__file__).resolve().parents[1] / "src" / "immunopet"

# ----------------------------------------------------------------------------- no copies

EXEMPT = {
    # the producers of synthetic inputs simulate decay to write what a scanner would store
    "synthetic",
    "io/dicom_write.py",
}
DECAY_FUNCTIONS = {
    "decay_factor",
    "frame_decay_correction",
    "compute_decayed_dose_bq",
    "compute_suv_bw_factor",
    "compute_suv_lbm_factor",
    "compute_suv_bsa_factor",
    "compute_slice_decay_correction",
    "normaliser",
    "compute_lean_body_mass_kg",
    "compute_body_surface_area_m2",
}


def _names(node: ast.AST) -> set[str]:
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id.lower())
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr.lower())
    return found


def suv_arithmetic(tree: ast.AST) -> list[tuple[int, str]]:
    """Lines that compute decay or SUV: 2 ** x, log(2), decay helpers, SUV factors, W/A."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Pow)
            and isinstance(node.left, ast.Constant)
            and node.left.value in (2, 2.0)
        ):
            hits.append((node.lineno, "2 ** x (decay)"))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in DECAY_FUNCTIONS:
                hits.append((node.lineno, f"{name}(...)"))
            if name in ("log", "log2", "exp", "expm1") and any(
                isinstance(a, ast.Constant) and a.value in (2, 2.0) for a in node.args
            ):
                hits.append((node.lineno, f"{name}(2)"))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
            names = _names(node)
            if any("suv_" in n and n.endswith("_factor") for n in names):
                hits.append((node.lineno, "x * suv factor"))
            if any("weight" in n for n in names) and any(
                "activity" in n or "dose" in n for n in names
            ):
                hits.append((node.lineno, "weight / activity"))
            if any("half_life" in n for n in names) and any(
                word in n for n in names for word in ("elapsed", "delay", "since", "uptake")
            ):
                hits.append((node.lineno, "t / half-life"))
    return hits


def test_no_suv_arithmetic_outside_suv() -> None:
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("suv/") or rel in EXEMPT or rel.split("/")[0] in EXEMPT:
            continue
        for line, what in suv_arithmetic(ast.parse(path.read_text(encoding="utf-8"))):
            violations.append(f"{rel}:{line}: {what}")
    assert not violations, "SUV arithmetic outside suv/:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "code",
    [
        "suv = values * 2.0 ** (delay_s / half_life_s)",
        "f = decay_factor(-t, half_life_s)",
        "suv = c * weight_kg * 1000.0 / injected_activity_bq",
        "v = image * d.suv_bw_factor",
        "lam = math.log(2.0) / half_life_s",
    ],
)
def test_the_scan_catches_a_new_copy(code: str) -> None:
    assert suv_arithmetic(ast.parse(code))


# ----------------------------------------------------------------------------- NIfTI round trip


def _args(parser_name: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    {"suv": suv_cli, "measure": measure}[parser_name].register(sub)
    return parser.parse_args([parser_name, *argv])


@pytest.fixture(scope="module")
def pet_and_spheres(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    folder = make_pet_series(root, volume=_activity(), acquisition=make_acquisition(sex="F"))
    spheres = root / "spheres.csv"
    spheres.write_text(
        "voi,x_mm,y_mm,z_mm,kind\ncore,0,0,0,lesion\nmuscle,-28,-28,-20,organ\n",
        encoding="utf-8",
    )
    return root, folder, spheres


def _measure(pet: Path, spheres: Path, normalisation: str, capsys) -> list[dict]:
    args = _args("measure", [str(pet), str(spheres), "--json", "--normalisation", normalisation])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert measure.run(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("normalisation", ["bw", "lbm", "bsa", "ibw"])
def test_nifti_round_trip_measures_like_the_dicom(pet_and_spheres, normalisation, capsys):
    root, folder, spheres = pet_and_spheres
    out = root / f"suv_{normalisation}.nii.gz"
    args = _args("suv", [str(folder), "-o", str(out), "--normalisation", normalisation])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert suv_cli.run(args) == 0
    capsys.readouterr()
    sidecar = json.loads(out.with_name(f"suv_{normalisation}.json").read_text())
    assert sidecar["ImmunoPET"]["normalisation"] == normalisation
    assert sidecar["Units"] == ("cm2/mL" if normalisation == "bsa" else "g/mL")
    assert sidecar["TracerName"] != "n/a"
    assert sidecar["FrameDuration"] == [600.0]
    from_dicom = _measure(folder, spheres, normalisation, capsys)
    from_nifti = _measure(out, spheres, normalisation, capsys)
    for a, b in zip(from_dicom, from_nifti, strict=True):
        assert a["normalisation"] == b["normalisation"] == normalisation
        for key in ("suv_mean", "suv_max", "suv_peak_local", "n_voxels"):
            assert b[key] == pytest.approx(a[key], rel=1e-6), key
    # read back with the one entry point: same normalisation and unit
    back = read_suv_volume(out, normalisation=normalisation)
    assert back.derivation.normalisation == normalisation
    assert read_nifti(out).volume.unit == back.volume.unit == suv_unit(normalisation)
    assert back.derivation.input_format == "PET-BIDS"


def test_nifti_in_one_normalisation_measured_in_another(pet_and_spheres, capsys):
    # SUVbsa NIfTI measured as SUVbw equals the DICOM measured as SUVbw (normalisers kept)
    root, folder, spheres = pet_and_spheres
    out = root / "suv_bsa.nii.gz"
    if not out.exists():
        args = _args("suv", [str(folder), "-o", str(out), "--normalisation", "bsa"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            suv_cli.run(args)
        capsys.readouterr()
    a = _measure(folder, spheres, "bw", capsys)
    b = _measure(out, spheres, "bw", capsys)
    assert b[0]["suv_mean"] == pytest.approx(a[0]["suv_mean"], rel=1e-6)


# ----------------------------------------------------------------------------- inspect


def test_inspect_explains_rule_type_and_sources(pet_and_spheres, capsys):
    _, folder, _ = pet_and_spheres
    parser = argparse.ArgumentParser()
    inspect_cli.register(parser.add_subparsers())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert inspect_cli.run(parser.parse_args(["inspect", str(folder), "--json"])) == 0
    record = json.loads(capsys.readouterr().out)
    for key in (
        "series_uid",
        "manufacturer",
        "units",
        "decay_correction",
        "injected_activity_bq",
        "injection_datetime",
        "scan_datetime",
        "weight_kg",
        "half_life_s",
        "suv_bw_factor",
        "warnings",
    ):
        assert key in record
    assert record["normalisation"] == "bw"
    assert record["reference_time_rule"]
    assert "suv_type" in record
    assert record["sources"]["suv_bw_factor"] == "computed: weight / decayed dose"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert inspect_cli.run(parser.parse_args(["inspect", str(folder)])) == 0
    text = capsys.readouterr().out
    assert "reference time" in text
    assert "stored values" in text


# ----------------------------------------------------------------------------- fuzz

_TEXT = st.one_of(
    st.none(),
    st.text(alphabet="0123456789.+-: ABCDEFGHIJKLMNOPQRSTUVWXYZabcdez", max_size=26),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", "19000101", "99999999", "+2500"]),
)
_NUMBER = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e-300, 1e300, 9999.0, 1000.0, 37.0]),
)
_CODES = {
    "Units": ["BQML", "GML", "CM2ML", "CNTS", "PROPCPS"],
    "DecayCorrection": ["START", "ADMIN", "NONE", "DECAY"],
    "SUVType": ["BW", "LBM", "LBMJAMES128", "LBMJANMA", "IBW", "BSA", "XYZ"],
    "PatientSex": ["M", "F", "O", "U"],
}
_PUBLIC = ("SeriesDate", "SeriesTime", "AcquisitionDate")
_PUBLIC += ("AcquisitionTime", "TimezoneOffsetFromUTC", "Manufacturer")
_NUMERIC = ("PatientWeight", "PatientSize", "RescaleSlope", "FrameReferenceTime")
_ITEM_TEXT = ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime")
_ITEM_NUMERIC = ("RadionuclideTotalDose", "RadionuclideHalfLife")


def _set(ds: Dataset, keyword: str, value: object) -> None:
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            setattr(ds, keyword, value)
    except (ValueError, TypeError, OverflowError):
        pass  # pydicom refuses the value on assignment: nothing reaches derive_suv


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    public=st.fixed_dictionaries({k: _TEXT for k in _PUBLIC}),
    codes=st.fixed_dictionaries(
        {k: st.one_of(st.none(), st.sampled_from(v), _TEXT) for k, v in _CODES.items()}
    ),
    numeric=st.fixed_dictionaries({k: _NUMBER for k in _NUMERIC}),
    item_text=st.fixed_dictionaries({k: _TEXT for k in _ITEM_TEXT}),
    item_numeric=st.fixed_dictionaries({k: _NUMBER for k in _ITEM_NUMERIC}),
    which=st.integers(0, 1),
)
def test_no_traceback_for_any_header_value(public, codes, numeric, item_text, item_numeric, which):
    headers = make_headers(2)
    ds = headers[which]
    item = ds.RadiopharmaceuticalInformationSequence[0]
    for key, value in {**public, **codes, **numeric}.items():
        _set(ds, key, value)
    for key, value in {**item_text, **item_numeric}.items():
        _set(item, key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = derive_suv(headers, on_invalid="warn")
        except ImmunoPETError:
            return
    assert np.isfinite(d.suv_bw_factor) and d.suv_bw_factor > 0
