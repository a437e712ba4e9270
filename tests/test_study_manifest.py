"""The study manifest: reading, every problem with its line, writing back, ``validate``.

Expected values are written by hand from the manifest texts below (activities: MBq x 10^6,
e.g. 36.9 MBq = 36 900 000 Bq); line numbers are counted in those texts.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicom_factory import make_ct_series, make_ct_volume, make_pet_series, make_pet_volume
from immunopet.cli import validate
from immunopet.errors import ManifestError
from immunopet.study._toml_lines import LineIndex
from immunopet.study.manifest import (
    Problem,
    load_manifest,
    validate_manifest,
    write_manifest,
)
from immunopet.study.model import (
    AnalysisSettings,
    Exclusion,
    Injection,
    Patient,
    Scan,
    Study,
    StudyInputs,
    VoiSource,
)
from immunopet.suv.record import SuvOverrides

GOOD = """\
[study]
name = "Test study"
tracer = "89Zr-durvalumab"

[inputs]
clinical = "clinical.csv"
lesions = "lesions.csv"

[settings]
normalisation = "lbm"
peak_radius_mm = 5
analysis_hours = 72

[[exclusions]]
patient = "P02"
lesion = 3
reason = "spill-in from the spleen"

[[patients]]
id = "P01"

[[patients.injections]]
series = "tracer-only"
injection_datetime = 2018-04-09T09:36:00
injected_activity_mbq = 36.9
weight_kg = 64.7

[[patients.injections.scans]]
nominal_hours = 72
pet = "dicom/pet"
ct = "dicom/ct"
vois = [
  { path = "vois/lesions.nii.gz", kind = "lesion" },
  { path = "vois/organ_points.csv" },
]

[[patients.injections.scans]]
nominal_hours = 120
pet = "dicom/pet"
[patients.injections.scans.overrides]
weight_kg = 63.0
height_m = 1.67
sex = "F"
injected_activity_mbq = 37.2

[[patients]]
id = "P02"

[[patients.injections]]
series = "predose"
unlabelled_mass_mg = 750

[[patients.injections.scans]]
nominal_hours = 1.5
pet = "dicom/pet"
"""

FIVE_MISTAKES = """\
[study]
name = "Test study"

[settings]
normalization = "bw"
peak = "max"

[[patients]]
id = "P01"

[[patients.injections]]
series = "tracer-only"
injected_activity_mbq = "37"

[[patients.injections.scans]]
nominal_hours = 72
pet = "dicom/missing"

[[patients]]
id = "P01"
"""

MORE_MISTAKES = """\
[study]
tracer = "x"

[[exclusions]]
patient = "P07"
lesion = "1"
reason = "r"

[[patients]]
id = "P01"

[[patients.injections]]
series = "a"
injection_datetime = 2018-04-09T09:36:00+02:00

[[patients.injections.scans]]
nominal_hours = 72
pet = "dicom/pet"
vois = [
  { path = "vois/lesions.nii.gz", kind = "lesion" },
  { path = "vois/organ_points.csv", knd = "organ" },
]

[[patients.injections.scans]]
nominal_hours = 72
pet = "dicom/ct"

[[patients.injections]]
series = "a"

[[patients.injections.scans]]
pet = "dicom/pet"
"""


VALID_CLINICAL = (
    "patient,age,sex,histology,tps_percent,cps_percent,treatment_cycles,bor,stop_reason,"
    "pfs_days,pfs_event,os_days,os_event\n"
    "P01,59,F,Adenocarcinoma,0,12.5,7,SD,PD,86,1,823,1\n"
    "P02,54,M,Adenocarcinoma,100,90,14,PR,PD,183,1,760,0\n"
)


def _make_data(root: Path) -> Path:
    """A study folder: one tiny PET and CT series, VOI files and two tables."""
    make_pet_series(root / "dicom", volume=make_pet_volume((2, 4, 4)))
    make_ct_series(root / "dicom", volume=make_ct_volume((2, 4, 4)))
    (root / "vois").mkdir()
    (root / "vois" / "lesions.nii.gz").write_bytes(b"label map stand-in")
    (root / "vois" / "organ_points.csv").write_text("voi,x_mm,y_mm,z_mm\nliver,0,0,0\n")
    (root / "clinical.csv").write_text(VALID_CLINICAL)
    (root / "lesions.csv").write_text("patient,lesion,fdg_positive,long_axis_mm\nP02,3,true,25\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_data(tmp_path_factory.mktemp("study"))


def _write(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_hand_written_manifest_loads_into_the_expected_study(data: Path) -> None:
    study = load_manifest(_write(data, GOOD))
    root = data.resolve()
    injection_1 = datetime(2018, 4, 9, 9, 36)
    expected = Study(
        name="Test study",
        root=root,
        tracer="89Zr-durvalumab",
        inputs=StudyInputs(clinical=root / "clinical.csv", lesions=root / "lesions.csv"),
        settings=AnalysisSettings(normalisation="lbm", peak_radius_mm=5.0, analysis_hours=72.0),
        exclusions=(Exclusion(patient="P02", lesion="3", reason="spill-in from the spleen"),),
        patients=(
            Patient(
                pseudonym="P01",
                injections=(
                    Injection(
                        series="tracer-only",
                        injection_datetime=injection_1,
                        injected_activity_bq=36_900_000.0,
                        unlabelled_mass_mg=0.0,
                        weight_kg=64.7,
                        scans=(
                            Scan(
                                pet=root / "dicom" / "pet",
                                nominal_hours=72.0,
                                ct=root / "dicom" / "ct",
                                vois=(
                                    VoiSource(root / "vois" / "lesions.nii.gz", "lesion"),
                                    VoiSource(root / "vois" / "organ_points.csv", None),
                                ),
                                # the injection's values apply to its scans
                                overrides=SuvOverrides(
                                    injection_datetime=injection_1,
                                    weight_kg=64.7,
                                    injected_activity_bq=36_900_000.0,
                                ),
                            ),
                            Scan(
                                pet=root / "dicom" / "pet",
                                nominal_hours=120.0,
                                # the scan's own overrides win; the rest is inherited
                                overrides=SuvOverrides(
                                    injection_datetime=injection_1,
                                    weight_kg=63.0,
                                    height_m=1.67,
                                    sex="F",
                                    injected_activity_bq=37_200_000.0,
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            Patient(
                pseudonym="P02",
                injections=(
                    Injection(
                        series="predose",
                        unlabelled_mass_mg=750.0,
                        scans=(Scan(pet=root / "dicom" / "pet", nominal_hours=1.5),),
                    ),
                ),
            ),
        ),
    )
    assert study == expected
    # unchanged settings keep the model's defaults (stated in model.AnalysisSettings)
    assert study.settings.peak == "local"
    assert study.settings.min_long_axis_mm == 20.0
    assert [ref.scan_id for ref in study.scans()] == [
        "P01/tracer-only/72h",
        "P01/tracer-only/120h",
        "P02/predose/1.5h",
    ]


def test_five_mistakes_are_all_reported_with_their_lines(data: Path) -> None:
    problems = validate_manifest(_write(data, FIVE_MISTAKES, "five.toml"))
    found = [(p.line, p.key) for p in problems]
    assert found == [
        (5, "settings.normalization"),
        (6, "settings.peak"),
        (13, "patients[0].injections[0].injected_activity_mbq"),
        (17, "patients[0].injections[0].scans[0].pet"),
        (20, "patients[1].id"),
    ]
    assert "did you mean 'normalisation'?" in problems[0].message
    assert problems[1].value == "max"
    assert problems[1].expected == "local | global"
    assert problems[2].message == "not a number"
    assert problems[3].message == "no such file or folder"
    assert problems[4].message == "duplicate patient id (first at line 9)"


def test_load_lists_every_problem_one_per_line(data: Path) -> None:
    path = _write(data, FIVE_MISTAKES, "five.toml")
    with pytest.raises(ManifestError, match=r"5 problems") as info:
        load_manifest(path)
    lines = str(info.value).splitlines()
    assert lines[1:] == [str(p) for p in validate_manifest(path)]
    assert lines[1].startswith(f"{path}:5: settings.normalization: unknown key")
    assert lines[4] == (
        f"{path}:17: patients[0].injections[0].scans[0].pet: no such file or folder "
        "(found 'dicom/missing'; expected a folder holding one DICOM PET series, or a "
        ".nii/.nii.gz with a .json sidecar)"
    )


def test_more_kinds_of_mistakes_and_their_lines(data: Path) -> None:
    problems = validate_manifest(_write(data, MORE_MISTAKES, "more.toml"))
    found = [(p.line, p.key, p.message.split(";")[0].split(" (")[0]) for p in problems]
    assert found == [
        (1, "study.name", "missing required key"),
        (5, "exclusions[0].patient", "exclusion names an unknown patient"),
        (
            14,
            "patients[0].injections[0].injection_datetime",
            "date-time has a UTC offset",
        ),
        (21, "patients[0].injections[0].scans[0].vois[1].knd", "unknown key"),
        (
            25,
            "patients[0].injections[0].scans[1].nominal_hours",
            "duplicate scan: patient P01, series a has this time point already",
        ),
        (26, "patients[0].injections[0].scans[1].pet", "the folder holds no PET image"),
        (29, "patients[0].injections[1].series", "duplicate series label within the patient"),
        (31, "patients[0].injections[1].scans[0].nominal_hours", "missing required key"),
    ]
    assert "(0008,0060) Modality CT" in problems[5].message


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ('[study]\nname = "x"\n[[patients]]\nid = P01\n', 4, "", "not valid TOML"),
        ('[study]\nname = "x"\n', 1, "patients", "missing required key"),
        ('patients = []\n[study]\nname = "x"\n', 1, "patients", "no patients"),
        (
            '[study]\nname = "x"\n[setting]\npeak = "local"\n[[patients]]\nid = "P01"\n',
            3,
            "setting",
            "unknown key",
        ),
        (
            '[study]\nname = "x"\n[settings]\npeak_radius_mm = true\n[[patients]]\nid = "P01"\n',
            4,
            "settings.peak_radius_mm",
            "not a number",
        ),
        (
            '[study]\nname = "x"\n[settings]\nmin_long_axis_mm = -1\n[[patients]]\nid = "P01"\n',
            4,
            "settings.min_long_axis_mm",
            "out of range",
        ),
        (
            '[study]\nname = "x"\n[[patients]]\nid = "P01"\n[[patients.injections]]\n'
            'series = "s"\ninjection_datetime = 2018-04-09\n',
            7,
            "patients[0].injections[0].injection_datetime",
            "a date or time alone",
        ),
        (
            '[study]\nname = ""\n[[patients]]\nid = "P01"\n',
            2,
            "study.name",
            "empty",
        ),
    ],
)
def test_single_problems(data: Path, text: str, line: int, key: str, message: str) -> None:
    problems = validate_manifest(_write(data, text, "one.toml"))
    assert [(p.line, p.key) for p in problems] == [(line, key)]
    assert problems[0].message.startswith(message)


def test_missing_manifest_is_one_problem_without_line(tmp_path: Path) -> None:
    problems = validate_manifest(tmp_path / "nothere.toml")
    assert problems == [
        Problem(str(tmp_path / "nothere.toml"), None, "", "no such manifest", None, "a TOML file")
    ]


def test_pet_folder_checks(data: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("not an image")
    (tmp_path / "pet.nii.gz").write_bytes(b"stand-in")
    (tmp_path / "scan.mha").write_bytes(b"stand-in")
    scans = "".join(
        f'[[patients.injections.scans]]\nnominal_hours = {h}\npet = "{p}"\n\n'
        for h, p in [(1, "empty"), (2, "text"), (3, "pet.nii.gz"), (4, "scan.mha")]
    )
    text = '[study]\nname = "x"\n[[patients]]\nid = "P01"\n[[patients.injections]]\n'
    text += f'series = "s"\n\n{scans}'
    problems = validate_manifest(_write(tmp_path, text))
    assert [(p.line, p.message) for p in problems] == [
        (10, "empty folder"),
        (14, "no DICOM file among the folder's 1 file(s)"),
        (18, "PET NIfTI without its PET-BIDS JSON sidecar"),
        (22, "neither a folder nor a NIfTI file"),
    ]
    (tmp_path / "pet.json").write_text("{}")
    assert len(validate_manifest(tmp_path / "study.toml")) == 3


def test_line_index_ignores_brackets_in_strings_and_comments() -> None:
    text = """\
# [[patients]] in a comment
[study]
name = "a [[patients]] name"
note = '''
[[patients]]
'''
[[patients]]   # first
id = "P01"
[[patients.injections]]
series = "x"
[[patients.injections.scans]]
a.b = 1
vois = [
  { path = "p1" },

  { path = "p2", kind = "organ" },
]
[[patients.injections]]
series = "y"
[[patients.injections.scans]]
[patients.injections.scans.overrides]
sex = "F"
[[patients]]
id = "P02"
[[patients.injections]]
[[patients.injections.scans]]
"""
    index = LineIndex(text)
    assert index.line_of(("patients", 0)) == 7
    assert index.line_of(("patients", 0, "injections", 0, "scans", 0, "a", "b")) == 12
    assert index.line_of(("patients", 0, "injections", 0, "scans", 0, "vois", 1, "kind")) == 16
    assert index.line_of(("patients", 0, "injections", 1, "scans", 0)) == 20
    assert index.line_of(("patients", 0, "injections", 1, "scans", 0, "overrides", "sex")) == 22
    assert index.line_of(("patients", 1, "id")) == 24
    # a missing key points at its table, a missing top-level key at line 1
    assert index.line_of(("patients", 1, "injections", 0, "scans", 0, "pet")) == 26
    assert index.line_of(("inputs", "clinical")) == 1


def test_round_trip_in_the_same_folder(data: Path) -> None:
    study = load_manifest(_write(data, GOOD))
    written = write_manifest(study, data / "copy.toml")
    text = written.read_text()
    assert 'pet = "dicom/pet"' in text  # relative inside the manifest's folder
    assert "injected_activity_mbq = 36.9\n" in text
    assert "2018-04-09T09:36:00" in text
    assert load_manifest(written) == study


def test_round_trip_elsewhere_uses_absolute_paths(data: Path, tmp_path: Path) -> None:
    study = load_manifest(_write(data, GOOD))
    written = write_manifest(study, tmp_path / "elsewhere" / "study.toml")
    assert f'pet = "{(data / "dicom" / "pet").resolve().as_posix()}"' in written.read_text()
    again = load_manifest(written)
    assert again == dataclasses.replace(study, root=written.parent.resolve())


@settings(max_examples=40, deadline=None)
@given(
    activity_mbq=st.decimals(min_value="0.001", max_value="100000", places=4),
    weight_kg=st.decimals(min_value="20", max_value="200", places=2),
)
def test_activities_round_trip_exactly(
    data: Path, activity_mbq: Decimal, weight_kg: Decimal
) -> None:
    # activities as people and DICOM DS write them (few digits) must come back bit for bit
    activity_bq = float(activity_mbq.scaleb(6))
    pet = (data / "dicom" / "pet").resolve()
    study = Study(
        name="rt",
        root=data.resolve(),
        patients=(
            Patient(
                "P01",
                (
                    Injection(
                        series="s",
                        injected_activity_bq=activity_bq,
                        weight_kg=float(str(weight_kg)),
                        scans=(
                            Scan(
                                pet=pet,
                                nominal_hours=72.0,
                                overrides=SuvOverrides(
                                    injected_activity_bq=activity_bq,
                                    weight_kg=float(str(weight_kg)),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    with tempfile.TemporaryDirectory(dir=data) as folder:
        again = load_manifest(write_manifest(study, Path(folder) / "s.toml"))
    assert again.patients == study.patients


def _run_validate(path: Path) -> int:
    parser = argparse.ArgumentParser()
    validate.register(parser.add_subparsers())
    args = parser.parse_args(["validate", str(path)])
    return int(args.func(args))


def test_validate_cli_ok(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # validate also checks nominal_hours against the headers: the test PET was taken 120 h
    # after an injection at 2024-03-01 09:30 (dicom_factory.make_acquisition)
    consistent = (
        GOOD.replace("2018-04-09T09:36:00", "2024-03-01T09:30:00")
        .replace("nominal_hours = 72", "nominal_hours = 118")
        .replace("nominal_hours = 1.5", "nominal_hours = 121")
    )
    path = _write(data, consistent)
    assert _run_validate(path) == 0
    assert capsys.readouterr().out == f"{path}: OK (2 patients, 3 scans)\n"


def test_validate_cli_problems(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(data, FIVE_MISTAKES, "five.toml")
    assert _run_validate(path) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6
    assert out[0].startswith(f"{path}:5: settings.normalization")
    assert out[-1] == f"{path}: 5 problems"


# ---------------------------------------------------------------------------- [analysis]
_MINI = '[study]\nname = "x"\n[[patients]]\nid = "P01"\n'

ANALYSIS = """\
[analysis]
uptake_metric = "suv_max"
patient_aggregate = "geometric_mean"
split = 2.5
fallback_hours = [72, 168]
reference_series = "predose"
comparison_series = "tracer-only"
biomarkers = ["uptake", "rnaseq_score"]

[analysis.response]
column = "response_12wk"
progression = ["PD"]
landmark_weeks = 0
ne_rule = "exclude"

[[analysis.ihc]]
column = "pd1_percent"
label = "PD-1"
cutoffs = [1, 10]
"""


def test_analysis_plan_defaults_are_the_papers_methods(data: Path) -> None:
    from immunopet.study.model import AnalysisPlan

    plan = load_manifest(_write(data, _MINI, "mini.toml")).plan
    assert plan == AnalysisPlan()
    assert (plan.uptake_metric, plan.patient_aggregate, plan.split_aggregate) == (
        "suv_peak",
        "median",
        "mean",
    )
    assert plan.split == "median-of-lesions"
    assert plan.response.landmark_weeks == 6 and plan.response.progression == ("PD",)
    assert [m.column for m in plan.ihc] == ["tps_percent", "cps_percent"]
    assert plan.ihc[0].cutoffs == (1.0, 50.0)


def test_analysis_plan_is_read_and_round_trips(data: Path) -> None:
    study = load_manifest(_write(data, GOOD + "\n" + ANALYSIS, "plan.toml"))
    plan = study.plan
    assert plan.uptake_metric == "suv_max" and plan.patient_aggregate == "geometric_mean"
    assert plan.split == 2.5 and plan.fallback_hours == (72.0, 168.0)
    assert (plan.reference_series, plan.comparison_series) == ("predose", "tracer-only")
    assert plan.response.column == "response_12wk" and plan.response.ne_rule == "exclude"
    assert [(m.column, m.label, m.cutoffs) for m in plan.ihc] == [("pd1_percent", "PD-1", (1, 10))]
    written = write_manifest(study, data / "plan_copy.toml")
    assert load_manifest(written) == study


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            '[analysis]\nuptake_metrc = "suv_max"\n',
            "analysis.uptake_metrc",
            "unknown key; did you mean 'uptake_metric'?",
        ),
        (
            '[analysis]\nuptake_metric = "suv_maxx"\n',
            "analysis.uptake_metric",
            "not one of the choices; did you mean 'suv_max'?",
        ),
        (
            '[analysis]\nsplit = "median-of-lesion"\n',
            "analysis.split",
            "not a split rule; did you mean 'median-of-lesions'?",
        ),
        (
            '[analysis]\npatient_aggregate = "avg"\n',
            "analysis.patient_aggregate",
            "not one of the choices",
        ),
        (
            "[analysis.response]\nlandmark_weeks = -6\n",
            "analysis.response.landmark_weeks",
            "out of range",
        ),
        (
            '[analysis.response]\nprogression = "PD"\n',
            "analysis.response.progression",
            "not an array of strings",
        ),
        (
            '[[analysis.ihc]]\ncolumn = "cps_percent"\ncutoffs = [50, 1]\n',
            "analysis.ihc[0].cutoffs",
            "not an increasing array",
        ),
        ('[[analysis.ihc]]\nlabel = "CPS"\n', "analysis.ihc[0].column", "missing required key"),
        (
            '[settings]\npeak = "local"\n[analysis]\npeak = "global"\n',
            "analysis.peak",
            "contradicts settings.peak",
        ),
    ],
)
def test_analysis_plan_problems(data: Path, text: str, key: str, message: str) -> None:
    path = _write(data, _MINI + text, "bad_plan.toml")
    problems = validate_manifest(path)
    assert [p.key for p in problems] == [key]
    assert problems[0].message.startswith(message)
    assert problems[0].line is not None and problems[0].line > 4
    assert str(problems[0]).startswith(f"{path}:{problems[0].line}: {key}")


@pytest.mark.parametrize(
    ("roles", "key", "message"),
    [
        (
            'comparison_series = "pre-dose"',
            "analysis.comparison_series",
            "no injection of the study is in this series; did you mean 'predose'? "
            "(found 'pre-dose'; expected one of predose, tracer-only)",
        ),
        (
            'reference_series = "baseline"',
            "analysis.reference_series",
            "no injection of the study is in this series (found 'baseline'",
        ),
        (
            'reference_series = "predose"\ncomparison_series = "predose"',
            "analysis.comparison_series",
            "the same series as reference_series",
        ),
    ],
)
def test_analysis_series_roles_name_series_of_the_study(
    data: Path, roles: str, key: str, message: str
) -> None:
    # a misspelt series left every comparison of the report empty ("too few pairs")
    path = _write(data, GOOD + f"\n[analysis]\n{roles}\n", "roles.toml")
    problems = validate_manifest(path)
    assert [p.key for p in problems] == [key]
    assert f"{key}: {message}" in str(problems[0])
    assert problems[0].line is not None and problems[0].line > GOOD.count("\n")


def test_analysis_series_roles_need_not_exist_by_default(data: Path) -> None:
    # a study of one series (P02's predose injection left out): the default comparison
    # series is absent, which is not a mistake; naming the one series as reference is fine
    one_series = GOOD.replace('series = "predose"', 'series = "tracer-only"')
    for text in (one_series, one_series + '\n[analysis]\nreference_series = "tracer-only"\n'):
        study = load_manifest(_write(data, text, "one_series.toml"))
        assert {i.series for p in study.patients for i in p.injections} == {"tracer-only"}
        assert study.plan.comparison_series == "predose"


def test_analysis_peak_sets_the_settings(data: Path) -> None:
    study = load_manifest(_write(data, _MINI + '[analysis]\npeak = "global"\n', "peak.toml"))
    assert study.settings.peak == "global"


FDG_STUDY = """\
[study]
name = "FDG study"

[[patients]]
id = "P01"

[patients.fdg]
pet = "dicom/pet"
vois = [{ path = "vois/lesions.nii.gz", kind = "lesion" }]
[patients.fdg.overrides]
weight_kg = 70.5

[[patients.injections]]
series = "tracer-only"

[[patients.injections.scans]]
nominal_hours = 72
pet = "dicom/pet"
"""


def test_fdg_reference_scan_is_read_and_round_trips(data: Path) -> None:
    study = load_manifest(_write(data, FDG_STUDY, "fdg.toml"))
    fdg = study.patients[0].fdg
    assert fdg is not None
    assert fdg.pet == data.resolve() / "dicom" / "pet"
    assert fdg.nominal_hours == 1.0  # the default uptake time
    assert fdg.vois[0].kind == "lesion"
    assert fdg.overrides.weight_kg == 70.5
    # the FDG scan is no series of the study tracer
    assert [ref.series for ref in study.scans()] == ["tracer-only"]
    written = write_manifest(study, data / "fdg-copy.toml")
    assert "[patients.fdg]" in written.read_text()
    assert load_manifest(written) == study


def test_fdg_reference_scan_mistakes_are_named(data: Path) -> None:
    text = FDG_STUDY.replace('pet = "dicom/pet"\nvois', 'pet = "dicom/nothing"\nseries = "x"\nvois')
    problems = validate_manifest(_write(data, text, "fdg-bad.toml"))
    shown = [str(p) for p in problems]
    assert len(shown) == 2, shown
    assert any("patients[0].fdg.series" in p for p in shown), shown
    assert any("patients[0].fdg.pet" in p for p in shown), shown


def test_fdg_threshold_in_the_plan(data: Path) -> None:
    text = FDG_STUDY.replace(
        "[[patients]]", "[analysis]\nfdg_positive_suv_max = 3.0\n\n[[patients]]", 1
    )
    study = load_manifest(_write(data, text, "fdg-plan.toml"))
    assert study.plan.fdg_positive_suv_max == 3.0
    assert load_manifest(_write(data, FDG_STUDY, "fdg.toml")).plan.fdg_positive_suv_max == 2.5
    bad = text.replace("= 3.0", '= "3"')
    assert any(
        "fdg_positive_suv_max" in str(p) for p in validate_manifest(_write(data, bad, "b.toml"))
    )
