"""No folder name, file name, header identity or absolute path of a study reaches any output.

The canary study is the synthetic ``tiny`` trial with its folders and VOI files renamed to
canary strings, the DICOM headers' PatientName / PatientID / PatientBirthDate set to canaries,
one VOI file broken (so a failure message names it) and the whole study under a folder whose
name is a canary. ``immunopet run``, ``report`` and ``export-bids`` then run end to end and
every byte they write (CSV, Parquet, DuckDB, HTML, JSON, TSV, gzip contents, stdout, stderr)
is searched for the canaries and for the study's absolute path.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from immunopet.study.privacy import STUDY_FILE, PathRedactor
from immunopet.synthetic.trial import generate_trial

PATH_CANARY = "CANARYPATHxq"
FOLDER_CANARY = "CANARYDOExq"
FILE_CANARY = "CANARYFILExq"
NAME_CANARY = "CANARYNAMExq"
ID_CANARY = "CANARYID9431"
BIRTH_CANARY = "19230405"
CANARIES = (PATH_CANARY, FOLDER_CANARY, FILE_CANARY, NAME_CANARY, ID_CANARY, BIRTH_CANARY)


def _rename_everything(root: Path) -> None:
    """Patient folders -> canary folder names; VOI files of P01 and P03 -> canary file names."""
    manifest = root / "study.toml"
    text = manifest.read_text()
    for patient in ("P01", "P02", "P03"):
        for top in ("dicom", "vois"):
            (root / top / patient).rename(root / top / f"{patient}_{FOLDER_CANARY}")
        text = text.replace(f"dicom/{patient}/", f"dicom/{patient}_{FOLDER_CANARY}/")
        text = text.replace(f"vois/{patient}/", f"vois/{patient}_{FOLDER_CANARY}/")
    for patient in ("P01", "P03"):
        for path in sorted((root / "vois" / f"{patient}_{FOLDER_CANARY}").rglob("*.csv")):
            new = path.with_name(f"{FILE_CANARY}_{path.name}")
            path.rename(new)
            old_rel = path.relative_to(root).as_posix()
            text = text.replace(old_rel, new.relative_to(root).as_posix())
    manifest.write_text(text)


def _identify_headers(root: Path) -> None:
    for path in (root / "dicom").rglob("*.dcm"):
        dataset = pydicom.dcmread(path)
        dataset.PatientName = f"{NAME_CANARY}^JOHN"
        dataset.PatientID = ID_CANARY
        dataset.PatientBirthDate = BIRTH_CANARY
        dataset.save_as(path)


def _break_one_voi_file(root: Path) -> None:
    folder = root / "vois" / f"P03_{FOLDER_CANARY}" / "predose" / "120h"
    (broken,) = folder.glob(f"{FILE_CANARY}_organ_points.csv")
    broken.write_text("this is not a table of points\n;;;\n")


def _output_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        with contextlib.suppress(OSError):
            data += gzip.decompress(data)
    return data


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("privacy") / PATH_CANARY
    root = base / "study"
    generate_trial(root, preset="tiny", seed=3, progress=False)
    _rename_everything(root)
    _identify_headers(root)
    _break_one_voi_file(root)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    commands = [
        ["run", "study.toml", "--workers", "2"],
        ["report", "results", "-o", "report-again", "--no-qc"],
        ["export-bids", "study.toml", "bids", "--measurements", "results/measurements.csv"],
    ]
    streams: list[tuple[str, bytes]] = []
    codes = []
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "immunopet.cli.main", *command],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        codes.append(done.returncode)
        streams.append((f"{command[0]} stdout", done.stdout))
        streams.append((f"{command[0]} stderr", done.stderr))
    outputs = {
        path: _output_bytes(path)
        for folder in ("results", "report", "report-again", "bids")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }
    return {"root": root, "codes": codes, "streams": streams, "outputs": outputs}


def test_canary_study_runs_and_fails_only_the_broken_scan(canary_run: dict[str, object]) -> None:
    codes = canary_run["codes"]
    streams = dict(canary_run["streams"])  # type: ignore[call-overload]
    assert codes == [2, 0, 0], streams
    assert b"failed P03/predose/120h" in streams["run stdout"]
    assert b"P03/predose/120h VOI file 3" in streams["run stdout"]
    outputs = canary_run["outputs"]
    suffixes = {path.suffix for path in outputs}  # type: ignore[attr-defined]
    assert {".csv", ".parquet", ".duckdb", ".html", ".json", ".tsv"} <= suffixes


def test_no_canary_and_no_absolute_path_in_any_output(canary_run: dict[str, object]) -> None:
    root = canary_run["root"]
    assert isinstance(root, Path)
    needles = [c.encode() for c in CANARIES] + [
        b"1923-04-05",
        str(root.parent).encode(),
        str(root.resolve().parent).encode(),
    ]
    found = []
    for name, data in canary_run["streams"]:  # type: ignore[attr-defined]
        found += [(name, n) for n in needles if n in data]
    for path, data in canary_run["outputs"].items():  # type: ignore[attr-defined]
        found += [(str(path.relative_to(root)), n) for n in needles if n in data]
    assert not found


def test_redactor_labels_inputs_and_hides_the_study_folder(tmp_path: Path) -> None:
    root = tmp_path / "DOE_JOHN"
    pet = root / "dicom" / "DOE_JOHN_PET"
    redactor = PathRedactor(root, {pet: "P01/tracer-only/120h PET"})
    assert redactor.redact(f"{pet}/IM_DOE.dcm: (0054,1001) Units: bad") == (
        "P01/tracer-only/120h PET (one of its files): (0054,1001) Units: bad"
    )
    assert redactor.redact(f"in {pet}") == "in P01/tracer-only/120h PET"
    assert redactor.redact(f"see {root}/notes/DOE.txt, then") == f"see {STUDY_FILE}, then"
    # a longer sibling name is not taken for the known folder
    assert redactor.redact(f"{pet}2/x.dcm") == STUDY_FILE
    assert redactor.path(tmp_path / "elsewhere" / "DOE.csv") == "a file outside the study"


def test_redactor_keeps_the_slash_of_a_series_label(tmp_path: Path) -> None:
    # DicomSeries.label is "<folder>/[series N UID]": the "/" before "[" is the label's own
    from immunopet.io.dicom import DicomSeries

    root = tmp_path / "DOE_JOHN"
    pet = root / "dicom" / "P01" / "tracer-only" / "72h" / "pet"
    series = DicomSeries(
        series_uid="1.2.3", modality="PT", files=(pet / "IM1.dcm",), headers=(pydicom.Dataset(),)
    )
    redactor = PathRedactor(root, {pet: "P01/tracer-only/72h PET"})
    text = redactor.redact(f"{series.label}: (0054,1001) Units: bad")
    assert text == "P01/tracer-only/72h PET/[series ? 1.2.3]: (0054,1001) Units: bad"
    assert redactor.redact(text) == text  # redacting again changes nothing
    # a file of the folder, and a folder of the study with a trailing slash
    assert redactor.redact(f"{pet}/IM1.dcm[series 1 1.2.3]") == (
        "P01/tracer-only/72h PET (one of its files)[series 1 1.2.3]"
    )
    assert redactor.redact(f"{root}/vois/[x]") == f"{STUDY_FILE}/[x]"
    shown = PathRedactor(root, {pet: "P01/tracer-only/72h PET"}, show_paths=True)
    assert (
        shown.redact(f"{series.label}: bad")
        == "dicom/P01/tracer-only/72h/pet/[series ? 1.2.3]: bad"
    )


def test_redactor_takes_names_with_spaces_and_brackets_whole(tmp_path: Path) -> None:
    # PACS exports name folders "DOE JOHN" or files "IM (2).dcm": nothing of them may remain
    root = tmp_path / "study DOE"
    pet = root / "dicom" / "DOE JOHN" / "pet"
    pet.mkdir(parents=True)
    (pet / "IM (2), DOE.dcm").write_bytes(b"")
    (root / "notes").mkdir()
    (root / "notes" / "JOHN DOE.txt").write_text("")
    redactor = PathRedactor(root, {pet: "P01/tracer-only/72h PET"})
    texts = {
        f"{pet}/IM (2), DOE.dcm: (0054,1001) Units: bad": (
            "P01/tracer-only/72h PET (one of its files): (0054,1001) Units: bad"
        ),
        f"read {root}/notes/JOHN DOE.txt; skipped": f"read {STUDY_FILE}; skipped",
        f"in {root}/dicom/DOE JOHN, 3 files": f"in {STUDY_FILE}, 3 files",
        f"({pet}/IM (2), DOE.dcm)": "(P01/tracer-only/72h PET (one of its files))",
    }
    for raw, expected in texts.items():
        out = redactor.redact(raw)
        assert out == expected
        assert "DOE" not in out and "JOHN" not in out and str(tmp_path) not in out
    # a path that does not exist is still cut at the space (the known prefix goes)
    assert redactor.redact(f"{root}/gone/a b.txt") == f"{STUDY_FILE} b.txt"
    shown = PathRedactor(root, {}, show_paths=True)
    assert shown.redact(f"{pet}/IM (2), DOE.dcm: bad") == "dicom/DOE JOHN/pet/IM (2), DOE.dcm: bad"


def test_redactor_writes_relative_paths_when_the_study_allows(tmp_path: Path) -> None:
    root = tmp_path / "trial"
    redactor = PathRedactor(root, {root / "pet": "P01 PET"}, show_paths=True)
    assert redactor.redact(f"{root}/pet/IM1.dcm: bad") == "pet/IM1.dcm: bad"
    assert redactor.path(tmp_path / "other" / "x.csv") == "x.csv"
    assert redactor.redact_row({"source": root / "v.csv", "n": 3}) == {"source": "v.csv", "n": 3}


def test_manifest_show_paths_round_trip_and_type(tmp_path: Path) -> None:
    from dataclasses import replace

    from immunopet.study.manifest import load_manifest, validate_manifest, write_manifest

    manifest = tmp_path / "study.toml"
    manifest.write_text('[study]\nname = "x"\n\n[[patients]]\nid = "P01"\n')
    study = load_manifest(manifest)
    assert study.show_paths is False
    written = write_manifest(replace(study, show_paths=True), tmp_path / "again.toml")
    assert "show_paths = true" in written.read_text()
    assert load_manifest(written).show_paths is True
    manifest.write_text('[study]\nname = "x"\nshow_paths = "yes"\n\n[[patients]]\nid = "P01"\n')
    problems = validate_manifest(manifest)
    assert [p.message for p in problems] == ["not a boolean"]
