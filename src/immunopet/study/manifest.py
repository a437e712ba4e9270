"""The study manifest ``study.toml``: reading, validating and writing it.

A manifest is the one human-edited file of a study. It names every patient (by the study's
pseudonym), every injection ("series") with its unlabelled antibody mass, every scan with its
PET (a DICOM folder holding one PET series, or a NIfTI with its PET-BIDS sidecar), optional CT
and VOI files, the study-level tables, the analysis settings and the lesions excluded from
analysis. Paths are relative to the manifest's folder. An example::

    [study]
    name = "Synthetic 89Zr-durvalumab trial"
    tracer = "89Zr-durvalumab"
    show_paths = false            # true: outputs may name files (relative to this folder)

    [inputs]                      # each optional
    clinical = "clinical.csv"
    adverse_events = "adverse_events.csv"
    blood_samples = "blood_samples.csv"
    counter_calibration = "counter_calibration.json"
    lesions = "lesions.csv"

    [settings]                    # each optional; defaults = AnalysisSettings
    normalisation = "bw"          # bw | lbm | bsa | ibw
    peak = "local"                # local | global
    peak_radius_mm = 6.2
    min_long_axis_mm = 20.0
    analysis_hours = 120
    reference_organ = "blood_pool"
    spill_in_organ = "spleen"
    spill_in_distance_mm = 13.0

    [analysis]                    # each optional; defaults = the paper's Methods
    uptake_metric = "suv_peak"    # suv_peak | suv_max | suv_mean (peak kind: settings.peak)
    patient_aggregate = "median"  # median | mean | geometric_mean | max (IHC, biomarkers)
    split_aggregate = "mean"      # per-patient value compared with the split threshold
    split = "median-of-lesions"   # median-of-lesions | median-of-patients | a number
    fallback_hours = [72]         # used when a patient has no scan at analysis_hours
    reference_series = "tracer-only"
    comparison_series = "predose"
    tumour_to_blood_lesions = "quantitative"   # quantitative | fdg-positive | all
    biodistribution_cohort = "full-schedule"   # full-schedule | all
    biomarkers = ["uptake", "tps_percent", "cps_percent"]
    fdg_positive_suv_max = 2.5    # FDG scan: SUVmax above this = FDG-positive (fdg_lesions.csv)

    [analysis.response]
    column = "bor"
    categories = ["PD", "SD", "PR", "CR"]
    progression = ["PD"]
    responders = ["CR", "PR"]
    not_evaluable = ["NE"]
    landmark_weeks = 6            # 0: the categories alone decide progression
    ne_rule = "landmark"          # landmark | exclude | progression | no-progression

    [[analysis.ihc]]              # any number; default PD-L1 TPS and CPS, cut-offs 1 and 50
    column = "pd1_percent"
    label = "PD-1"
    cutoffs = [1, 50]

    [[exclusions]]
    patient = "P09"
    lesion = "3"
    reason = "spill-in from the spleen"

    [[patients]]
    id = "P01"

    [patients.fdg]                # optional: the baseline FDG PET/CT (its own injection)
    pet = "dicom/P01/fdg/pet"     # 18F from the header; SUV by the ordinary rules
    nominal_hours = 1             # optional, default 1 (h after the FDG injection)
    vois = [{ path = "vois/P01/fdg/lesions.nii.gz", kind = "lesion" }]
    [patients.fdg.overrides]      # optional, the same keys as a scan's overrides
    weight_kg = 64.0

    [[patients.injections]]
    series = "tracer-only"
    injection_datetime = 2018-04-09T09:36:00   # optional, TOML local date-time (scanner clock)
    injected_activity_mbq = 37.0               # optional
    unlabelled_mass_mg = 0.0                   # optional, default 0
    weight_kg = 64.7                           # optional

    [[patients.injections.scans]]
    nominal_hours = 72
    pet = "dicom/P01/tracer-only/72h/pet"
    ct = "dicom/P01/tracer-only/72h/ct"        # optional
    vois = [
      { path = "vois/P01/tracer-only/72h/lesions.nii.gz", kind = "lesion" },
      { path = "vois/P01/tracer-only/72h/organ_points.csv", kind = "organ" },
    ]
    organ_masks = "vois/P01/organs.nii.gz"      # optional: organ label map (spill-in)
    [patients.injections.scans.overrides]     # optional
    height_m = 1.67      # also weight_kg, sex, injection_datetime, injected_activity_mbq,
                         # half_life_s

An injection's ``injection_datetime``, ``injected_activity_mbq`` and ``weight_kg`` replace the
PET headers of each of its scans (they become that scan's
:class:`~immunopet.suv.record.SuvOverrides`) unless the scan's own ``overrides`` table gives
the value. Activities are written in MBq and held in Bq.

Validation collects every problem before reporting (:func:`validate_manifest`): unknown or
misspelled keys (an error, never silently dropped), missing required keys, wrong types,
values out of range or not among the choices, missing files and folders, PET folders without
DICOM files (checked cheaply: the first files' preamble and (0008,0060) Modality), duplicate
patients, series labels or scans, and exclusions naming unknown patients. Each problem reads
``file:line: dotted.key: message (found X; expected Y)``.

Line numbers
------------
:mod:`tomllib` gives no positions, so after a successful parse a small scanner walks the text
once more (strings and comments are skipped as tokens) and records, for every table header
and every key, the line it is on. Arrays of tables are counted per parent: the third
``[[patients.injections.scans]]`` header after the second ``[[patients.injections]]`` of the
first ``[[patients]]`` is ``patients[0].injections[1].scans[2]``. Keys inside inline tables
and elements of multi-line arrays get their own lines. A problem about a missing key points at
its table's header (the longest recorded prefix of its dotted key).
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time
from decimal import Decimal
from math import nextafter
from pathlib import Path
from typing import Any, Final, cast, get_args

import tomli_w
from pydicom import dcmread

from immunopet.errors import ManifestError, describe_problem
from immunopet.study._toml_lines import Key, LineIndex
from immunopet.study.model import (
    FDG_NOMINAL_HOURS,
    SPLIT_RULES,
    AnalysisPlan,
    AnalysisSettings,
    BiodistributionCohort,
    Exclusion,
    IhcMarker,
    Injection,
    Normalisation,
    NotEvaluable,
    Patient,
    PatientAggregate,
    PeakMethod,
    ResponsePlan,
    Scan,
    Study,
    StudyInputs,
    TumourToBloodLesions,
    UptakeMetric,
    VoiKind,
    VoiSource,
)
from immunopet.suv.record import Sex, SuvOverrides

__all__ = [
    "Problem",
    "format_manifest",
    "load_manifest",
    "validate_manifest",
    "write_manifest",
]


_TOP_KEYS: Final = ("study", "inputs", "settings", "analysis", "exclusions", "patients")
_ANALYSIS_KEYS: Final = (
    *(f.name for f in fields(AnalysisPlan) if f.name not in ("response", "ihc")),
    "response",
    "ihc",
    "peak",
)
_RESPONSE_KEYS: Final = tuple(f.name for f in fields(ResponsePlan))
_IHC_KEYS: Final = ("column", "label", "cutoffs")
_STUDY_KEYS: Final = ("name", "tracer", "show_paths")
_INPUT_KEYS: Final = tuple(f.name for f in fields(StudyInputs))
_SETTING_KEYS: Final = tuple(f.name for f in fields(AnalysisSettings))
_EXCLUSION_KEYS: Final = ("patient", "lesion", "reason")
_PATIENT_KEYS: Final = ("id", "injections", "fdg")
_FDG_KEYS: Final = ("nominal_hours", "pet", "ct", "vois", "overrides")
_INJECTION_KEYS: Final = (
    "series",
    "injection_datetime",
    "injected_activity_mbq",
    "unlabelled_mass_mg",
    "weight_kg",
    "scans",
)
_SCAN_KEYS: Final = ("nominal_hours", "pet", "ct", "vois", "overrides", "organ_masks")
_VOI_KEYS: Final = ("path", "kind")
_OVERRIDE_KEYS: Final = (
    "weight_kg",
    "height_m",
    "sex",
    "injection_datetime",
    "injected_activity_mbq",
    "half_life_s",
)
_NIFTI_SUFFIXES: Final = (".nii.gz", ".nii")
_DATETIME_EXAMPLE: Final = "a TOML local date-time without quotes, e.g. 2018-04-09T09:36:00"
_MBQ: Final = 1.0e6


# ----------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest.

    Attributes
    ----------
    file : str
        The manifest as named by the caller.
    line : int or None
        1-based line the problem is on (its table's header for a missing key); ``None`` when
        the problem has no place in the text (the file is missing).
    key : str
        Dotted key with 0-based array indices, e.g. ``"patients[0].injections[1].scans[0].pet"``.
    message : str
    value : object, optional
        The value found (``None``: not printed).
    expected : str, optional
        What would have been accepted.

    Examples
    --------
    >>> print(Problem("study.toml", 12, "settings.peak", "not a choice", "max", "local or global"))
    study.toml:12: settings.peak: not a choice (found 'max'; expected local or global)
    """

    file: str
    line: int | None
    key: str
    message: str
    value: Any = None
    expected: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return describe_problem(
            self.message, file=where, tag=self.key or None, value=self.value, expected=self.expected
        )


def _dotted(key: Key) -> str:
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# ----------------------------------------------------------------------------- checking
_MISSING = object()


class _Checker:
    """Walks the parsed manifest, collects problems and builds the study when there are none."""

    def __init__(self, file: str, base: Path, index: LineIndex) -> None:
        self.file = file
        self.base = base
        self.index = index
        self.problems: list[Problem] = []

    def add(self, key: Key, message: str, value: Any = None, expected: str | None = None) -> None:
        self.problems.append(
            Problem(self.file, self.index.line_of(key), _dotted(key), message, value, expected)
        )

    # -- structure
    def table(
        self, data: Any, key: Key, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The table at ``key`` after checking its type, unknown and missing keys."""
        if not isinstance(data, dict):
            self.add(key, "not a table", _shown(data), "a TOML table")
            return None
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                message = f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"
                self.add((*key, name), message, name, "one of " + ", ".join(allowed))
        for name in required:
            if name not in data:
                self.add((*key, name), "missing required key", expected="a value")
        return data

    def array(self, data: Mapping[str, Any], name: str, key: Key, what: str) -> list[Any]:
        value = data.get(name, [])
        if not isinstance(value, list):
            self.add((*key, name), "not an array", _shown(value), what)
            return []
        return value

    # -- scalars (None when absent or wrong; the problem is recorded)
    def text(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        nonempty: bool = False,
        allow_int: bool = False,
    ) -> str | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if allow_int and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.add((*key, name), "not a string", _shown(value), "a quoted string")
            return None
        if nonempty and not value.strip():
            self.add((*key, name), "empty", value, "a non-empty string")
            return None
        return value

    def number(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        minimum: float = 0.0,
        strict: bool = True,
    ) -> float | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        expected = f"a number {'>' if strict else '>='} {minimum:g}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add((*key, name), "not a number", _shown(value), expected)
            return None
        number = float(value)
        if not (number > minimum if strict else number >= minimum) or not math.isfinite(number):
            self.add((*key, name), "out of range", value, expected)
            return None
        return number

    def choice(
        self, data: Mapping[str, Any], name: str, key: Key, options: Sequence[str]
    ) -> str | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            message = "not one of the choices" + (f"; did you mean {close[0]!r}?" if close else "")
            self.add((*key, name), message, _shown(value), " | ".join(options))
            return None
        return str(value)

    def moment(self, data: Mapping[str, Any], name: str, key: Key) -> datetime | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                self.add(
                    (*key, name),
                    "date-time has a UTC offset; the manifest uses the scanner clock",
                    value.isoformat(),
                    _DATETIME_EXAMPLE,
                )
                return None
            return value
        problem = "a date or time alone" if isinstance(value, date | time) else "not a date-time"
        self.add((*key, name), problem, _shown(value), _DATETIME_EXAMPLE)
        return None

    # -- paths
    def path(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        kind: str,
    ) -> Path | None:
        """A path relative to the manifest, checked to exist as ``kind`` says.

        ``kind``: ``"file"``, ``"any"`` (file or folder), ``"PT"`` or ``"CT"`` (a DICOM folder
        of that modality, or a NIfTI file; a PET NIfTI also needs its JSON sidecar).
        """
        written = self.text(data, name, key, nonempty=True)
        if written is None:
            return None
        path = self.base / Path(written).expanduser()
        where = (*key, name)
        if not path.exists():
            self.add(where, "no such file or folder", written, _describe_kind(kind))
            return None
        if kind == "file" and not path.is_file():
            self.add(where, "not a file", written, "a file")
            return None
        if kind in ("PT", "CT"):
            if path.is_dir():
                problem = _dicom_folder_problem(path, kind)
                if problem is not None:
                    self.add(where, problem, written, _describe_kind(kind))
                    return None
            elif not written.lower().endswith(_NIFTI_SUFFIXES):
                self.add(where, "neither a folder nor a NIfTI file", written, _describe_kind(kind))
                return None
            elif kind == "PT" and not _sidecar_of(path).is_file():
                self.add(
                    where,
                    "PET NIfTI without its PET-BIDS JSON sidecar",
                    written,
                    f"{_sidecar_of(path).name} next to it",
                )
                return None
        return path.resolve()


def _describe_kind(kind: str) -> str:
    return {
        "file": "an existing file",
        "any": "an existing file or folder",
        "PT": "a folder holding one DICOM PET series, or a .nii/.nii.gz with a .json sidecar",
        "CT": "a folder holding one DICOM CT series, or a .nii/.nii.gz file",
    }[kind]


def _shown(value: Any) -> Any:
    """A value as shown in a message: dates as ISO text, tables as 'a table'."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return value


def _sidecar_of(path: Path) -> Path:
    name = path.name
    for suffix in _NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def _looks_like_dicom(path: Path) -> bool:
    """Preamble + ``DICM``, or a raw data set starting with group 0002 or 0008."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 2 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008)


def _dicom_folder_problem(folder: Path, modality: str) -> str | None:
    """Why ``folder`` cannot hold a DICOM series of ``modality``; None when it can.

    Cheap: files are visited in sorted order and stop at the first whose (0008,0060) Modality
    (read alone, without pixel data) is ``modality``.
    """
    seen: set[str] = set()
    n_files = 0
    for current, subfolders, names in os.walk(folder):
        subfolders.sort()
        for name in sorted(names):
            n_files += 1
            path = Path(current) / name
            if not _looks_like_dicom(path):
                continue
            try:
                header = dcmread(
                    path, stop_before_pixels=True, force=True, specific_tags=["Modality"]
                )
            except Exception:  # pydicom raises many types on damaged files
                continue
            found = str(header.get("Modality", "") or "")
            if found == modality:
                return None
            seen.add(found or "?")
    if n_files == 0:
        return "empty folder"
    if not seen:
        return f"no DICOM file among the folder's {n_files} file(s)"
    name = {"PT": "PET", "CT": "CT"}.get(modality, modality)
    return f"the folder holds no {name} image ((0008,0060) Modality {', '.join(sorted(seen))})"


def _parse(path: Path, file: str) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "", [Problem(file, None, "", "no such manifest", expected="a TOML file")]
    except (OSError, UnicodeDecodeError) as error:
        return None, "", [Problem(file, None, "", f"unreadable: {error}")]
    try:
        return tomllib.loads(text), text, []
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"at line (\d+)", str(error))
        line = int(found.group(1)) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        return None, text, [Problem(file, line, "", f"not valid TOML: {message}")]


def _check(path: str | os.PathLike[str]) -> tuple[Study | None, list[Problem]]:
    file = str(path)
    manifest = Path(path)
    data, text, problems = _parse(manifest, file)
    if data is None:
        return None, problems
    checker = _Checker(file, manifest.resolve().parent, LineIndex(text))
    study = _build(checker, data)
    problems = sorted(checker.problems, key=lambda p: p.line or 0)
    return (study if not problems else None), problems


def _build(c: _Checker, data: dict[str, Any]) -> Study | None:
    top = c.table(data, (), _TOP_KEYS, ("study", "patients"))
    if top is None:  # pragma: no cover - tomllib always returns a table
        return None
    name, tracer, show_paths = "", "", False
    study = c.table(data["study"], ("study",), _STUDY_KEYS, ("name",)) if "study" in data else None
    if study is not None:
        name = c.text(study, "name", ("study",), nonempty=True) or ""
        tracer = c.text(study, "tracer", ("study",)) or ""
        show_paths = study.get("show_paths", False)
        if not isinstance(show_paths, bool):
            c.add(("study", "show_paths"), "not a boolean", _shown(show_paths), "true or false")
            show_paths = False
    inputs = _build_inputs(c, data.get("inputs", {}))
    settings = _build_settings(c, data.get("settings", {}))
    plan, peak = _build_plan(c, data.get("analysis", {}))
    if peak is not None:
        given = (
            data.get("settings", {}).get("peak") if isinstance(data.get("settings"), dict) else None
        )
        if given is not None and given != peak:
            c.add(
                ("analysis", "peak"),
                "contradicts settings.peak",
                peak,
                f"{given!r} as in [settings], or leave one out",
            )
        settings = replace(settings, peak=cast(PeakMethod, peak))
    patients = _build_patients(c, data)
    exclusions = _build_exclusions(c, data, {p.pseudonym for p in patients})
    if "patients" in data and not patients and not c.problems:
        c.add(("patients",), "no patients", expected="at least one [[patients]] table")
    if c.problems:
        return None
    return Study(
        name=name,
        root=c.base,
        patients=tuple(patients),
        inputs=inputs,
        settings=settings,
        exclusions=tuple(exclusions),
        tracer=tracer,
        show_paths=show_paths,
        plan=plan,
    )


def _text_list(c: _Checker, data: Mapping[str, Any], name: str, key: Key) -> tuple[str, ...] | None:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        c.add((*key, name), "not an array of strings", _shown(value), 'e.g. ["PD"]')
        return None
    return tuple(str(v).strip() for v in value)


def _number_list(
    c: _Checker, data: Mapping[str, Any], name: str, key: Key, *, increasing: bool = False
) -> tuple[float, ...] | None:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return None
    ok = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if ok and increasing:
        ok = len(value) > 0 and all(a < b for a, b in itertools.pairwise(value))
    if not ok:
        expected = "an increasing array of numbers" if increasing else "an array of numbers"
        c.add((*key, name), "not " + expected.replace("an ", "an ", 1), _shown(value), expected)
        return None
    return tuple(float(v) for v in value)


def _build_response(c: _Checker, data: Any) -> ResponsePlan:
    key: Key = ("analysis", "response")
    table = c.table(data, key, _RESPONSE_KEYS)
    if table is None:
        return ResponsePlan()
    values: dict[str, Any] = {
        "column": c.text(table, "column", key, nonempty=True),
        "categories": _text_list(c, table, "categories", key),
        "progression": _text_list(c, table, "progression", key),
        "responders": _text_list(c, table, "responders", key),
        "not_evaluable": _text_list(c, table, "not_evaluable", key),
        "landmark_weeks": c.number(table, "landmark_weeks", key, strict=False),
        "ne_rule": c.choice(table, "ne_rule", key, get_args(NotEvaluable)),
    }
    return ResponsePlan(**{k: v for k, v in values.items() if v is not None})


def _build_ihc(c: _Checker, data: Mapping[str, Any]) -> tuple[IhcMarker, ...] | None:
    if "ihc" not in data:
        return None
    rows = c.array(data, "ihc", ("analysis",), "an array of [[analysis.ihc]] tables")
    markers: list[IhcMarker] = []
    for i, row in enumerate(rows):
        key: Key = ("analysis", "ihc", i)
        table = c.table(row, key, _IHC_KEYS, ("column",))
        if table is None:
            continue
        column = c.text(table, "column", key, nonempty=True)
        label = c.text(table, "label", key, nonempty=True)
        cutoffs = _number_list(c, table, "cutoffs", key, increasing=True)
        if column is not None:
            markers.append(IhcMarker(column, label or column, cutoffs or (1.0, 50.0)))
    return tuple(markers)


def _build_plan(c: _Checker, data: Any) -> tuple[AnalysisPlan, str | None]:
    """The ``[analysis]`` table and its ``peak`` (which belongs to the settings)."""
    key: Key = ("analysis",)
    table = c.table(data, key, _ANALYSIS_KEYS)
    if table is None:
        return AnalysisPlan(), None
    aggregates = get_args(PatientAggregate)
    values: dict[str, Any] = {
        "uptake_metric": c.choice(table, "uptake_metric", key, get_args(UptakeMetric)),
        "patient_aggregate": c.choice(table, "patient_aggregate", key, aggregates),
        "split_aggregate": c.choice(table, "split_aggregate", key, aggregates),
        "fallback_hours": _number_list(c, table, "fallback_hours", key),
        "reference_series": c.text(table, "reference_series", key, nonempty=True),
        "comparison_series": c.text(table, "comparison_series", key, nonempty=True),
        "tumour_to_blood_lesions": c.choice(
            table, "tumour_to_blood_lesions", key, get_args(TumourToBloodLesions)
        ),
        "biodistribution_cohort": c.choice(
            table, "biodistribution_cohort", key, get_args(BiodistributionCohort)
        ),
        "biomarkers": _text_list(c, table, "biomarkers", key),
        "fdg_positive_suv_max": c.number(table, "fdg_positive_suv_max", key),
        "ihc": _build_ihc(c, table),
    }
    if "split" in table:
        split = table["split"]
        if isinstance(split, str) and split in SPLIT_RULES:
            values["split"] = split
        elif (
            isinstance(split, int | float) and not isinstance(split, bool) and math.isfinite(split)
        ):
            values["split"] = float(split)
        else:
            close = difflib.get_close_matches(str(split), SPLIT_RULES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            c.add(
                (*key, "split"),
                "not a split rule" + hint,
                _shown(split),
                " | ".join(SPLIT_RULES) + " | a number",
            )
    if "response" in table:
        values["response"] = _build_response(c, table["response"])
    peak = c.choice(table, "peak", key, get_args(PeakMethod))
    return AnalysisPlan(**{k: v for k, v in values.items() if v is not None}), peak


def _build_inputs(c: _Checker, data: Any) -> StudyInputs:
    table = c.table(data, ("inputs",), _INPUT_KEYS)
    if table is None:
        return StudyInputs()
    values = {
        name: c.path(table, name, ("inputs",), kind="file") for name in _INPUT_KEYS if name in table
    }
    return StudyInputs(**values)


def _build_settings(c: _Checker, data: Any) -> AnalysisSettings:
    table = c.table(data, ("settings",), _SETTING_KEYS)
    if table is None:
        return AnalysisSettings()
    key: Key = ("settings",)
    values: dict[str, Any] = {
        "normalisation": c.choice(table, "normalisation", key, get_args(Normalisation)),
        "peak": c.choice(table, "peak", key, get_args(PeakMethod)),
        "peak_radius_mm": c.number(table, "peak_radius_mm", key),
        "min_long_axis_mm": c.number(table, "min_long_axis_mm", key, strict=False),
        "analysis_hours": c.number(table, "analysis_hours", key),
        "reference_organ": c.text(table, "reference_organ", key, nonempty=True),
        "spill_in_organ": c.text(table, "spill_in_organ", key, nonempty=True),
        "spill_in_distance_mm": c.number(table, "spill_in_distance_mm", key, strict=False),
    }
    return AnalysisSettings(**{k: v for k, v in values.items() if v is not None})


def _build_exclusions(c: _Checker, data: dict[str, Any], known: set[str]) -> list[Exclusion]:
    found: list[Exclusion] = []
    rows = c.array(data, "exclusions", (), "an array of [[exclusions]] tables")
    for i, row in enumerate(rows):
        key: Key = ("exclusions", i)
        table = c.table(row, key, _EXCLUSION_KEYS, _EXCLUSION_KEYS)
        if table is None:
            continue
        patient = c.text(table, "patient", key, nonempty=True)
        lesion = c.text(table, "lesion", key, nonempty=True, allow_int=True)
        reason = c.text(table, "reason", key, nonempty=True)
        if patient is not None and patient not in known:
            c.add(
                (*key, "patient"),
                "exclusion names an unknown patient",
                patient,
                "the id of a [[patients]] table",
            )
            continue
        if patient is not None and lesion is not None and reason is not None:
            found.append(Exclusion(patient=patient, lesion=lesion, reason=reason))
    return found


def _build_patients(c: _Checker, data: dict[str, Any]) -> list[Patient]:
    patients: list[Patient] = []
    seen: dict[str, int] = {}
    scans_seen: dict[tuple[str, str, float | None], Key] = {}
    rows = c.array(data, "patients", (), "an array of [[patients]] tables")
    for i, row in enumerate(rows):
        key: Key = ("patients", i)
        table = c.table(row, key, _PATIENT_KEYS, ("id",))
        if table is None:
            continue
        pseudonym = c.text(table, "id", key, nonempty=True)
        duplicate = False
        if pseudonym is not None:
            if pseudonym in seen:
                first = c.index.line_of(("patients", seen[pseudonym], "id"))
                c.add(
                    (*key, "id"),
                    f"duplicate patient id (first at line {first})",
                    pseudonym,
                    "a unique id",
                )
                duplicate = True
            else:
                seen[pseudonym] = i
        # a duplicate patient's scans are not compared (one mistake, one problem)
        label = "" if pseudonym is None or duplicate else pseudonym
        injections = _build_injections(c, table, key, label, scans_seen)
        fdg = None
        if "fdg" in table:
            _, fdg = _build_scan(
                c,
                table["fdg"],
                (*key, "fdg"),
                SuvOverrides(),
                allowed=_FDG_KEYS,
                required=("pet",),
                default_hours=FDG_NOMINAL_HOURS,
            )
        if pseudonym is not None:
            patients.append(Patient(pseudonym=pseudonym, injections=tuple(injections), fdg=fdg))
    return patients


def _build_injections(
    c: _Checker,
    patient: Mapping[str, Any],
    patient_key: Key,
    pseudonym: str,
    scans_seen: dict[tuple[str, str, float | None], Key],
) -> list[Injection]:
    injections: list[Injection] = []
    labels: dict[str, int] = {}
    rows = c.array(patient, "injections", patient_key, "an array of [[patients.injections]]")
    for j, row in enumerate(rows):
        key: Key = (*patient_key, "injections", j)
        table = c.table(row, key, _INJECTION_KEYS, ("series",))
        if table is None:
            continue
        series = c.text(table, "series", key, nonempty=True)
        duplicate = False
        if series is not None:
            if series in labels:
                first = c.index.line_of((*patient_key, "injections", labels[series], "series"))
                c.add(
                    (*key, "series"),
                    f"duplicate series label within the patient (first at line {first})",
                    series,
                    "one injection per label",
                )
                duplicate = True
            else:
                labels[series] = j
        moment = c.moment(table, "injection_datetime", key)
        mbq = c.number(table, "injected_activity_mbq", key)
        activity = None if mbq is None else _bq_from_mbq(mbq)
        weight = c.number(table, "weight_kg", key)
        mass = c.number(table, "unlabelled_mass_mg", key, strict=False)
        defaults = SuvOverrides(injection_datetime=moment, weight_kg=weight)
        defaults = _with(defaults, injected_activity_bq=activity)
        scans: list[Scan] = []
        for k, scan_row in enumerate(c.array(table, "scans", key, "[[...scans]] tables")):
            hours, scan = _build_scan(c, scan_row, (*key, "scans", k), defaults)
            where = (pseudonym, series or "", hours)
            if hours is not None and series is not None and pseudonym and not duplicate:
                if where in scans_seen:
                    first = c.index.line_of(scans_seen[where])
                    c.add(
                        (*key, "scans", k, "nominal_hours"),
                        f"duplicate scan: patient {pseudonym}, series {series} has this time "
                        f"point already (line {first})",
                        _hours_value(hours),
                        "one scan per (patient, series, nominal_hours)",
                    )
                scans_seen.setdefault(where, (*key, "scans", k, "nominal_hours"))
            if scan is not None:
                scans.append(scan)
        if series is not None:
            injections.append(
                Injection(
                    series=series,
                    scans=tuple(scans),
                    injection_datetime=moment,
                    injected_activity_bq=activity,
                    unlabelled_mass_mg=0.0 if mass is None else mass,
                    weight_kg=weight,
                )
            )
    return injections


def _with(overrides: SuvOverrides, **values: Any) -> SuvOverrides:
    return replace(overrides, **{k: v for k, v in values.items() if v is not None})


def _build_scan(
    c: _Checker,
    data: Any,
    key: Key,
    defaults: SuvOverrides,
    *,
    allowed: Sequence[str] = _SCAN_KEYS,
    required: Sequence[str] = ("nominal_hours", "pet"),
    default_hours: float | None = None,
) -> tuple[float | None, Scan | None]:
    """The scan's nominal hours (None when invalid) and the scan (None when invalid)."""
    table = c.table(data, key, allowed, required)
    if table is None:
        return None, None
    if "nominal_hours" in table or default_hours is None:
        hours = c.number(table, "nominal_hours", key, strict=False)
    else:
        hours = default_hours
    pet = c.path(table, "pet", key, kind="PT")
    ct = c.path(table, "ct", key, kind="CT") if "ct" in table else None
    organs = c.path(table, "organ_masks", key, kind="file") if "organ_masks" in table else None
    vois: list[VoiSource] = []
    for v, item in enumerate(c.array(table, "vois", key, "an array of { path, kind } tables")):
        voi_key: Key = (*key, "vois", v)
        voi = c.table(item, voi_key, _VOI_KEYS, ("path",))
        if voi is None:
            continue
        path = c.path(voi, "path", voi_key, kind="any")
        kind = c.choice(voi, "kind", voi_key, get_args(VoiKind))
        if path is not None:
            vois.append(VoiSource(path=path, kind=cast(VoiKind | None, kind)))
    overrides = defaults
    if "overrides" in table:
        okey: Key = (*key, "overrides")
        given = c.table(table["overrides"], okey, _OVERRIDE_KEYS)
        if given is not None:
            mbq = c.number(given, "injected_activity_mbq", okey)
            overrides = _with(
                defaults,
                weight_kg=c.number(given, "weight_kg", okey),
                height_m=c.number(given, "height_m", okey),
                sex=c.choice(given, "sex", okey, get_args(Sex)),
                injection_datetime=c.moment(given, "injection_datetime", okey),
                injected_activity_bq=None if mbq is None else _bq_from_mbq(mbq),
                half_life_s=c.number(given, "half_life_s", okey),
            )
    if hours is None or pet is None:
        return hours, None
    return hours, Scan(
        pet=pet,
        nominal_hours=hours,
        ct=ct,
        vois=tuple(vois),
        overrides=overrides,
        organ_masks=organs,
    )


# ----------------------------------------------------------------------------- public API
def validate_manifest(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of a study manifest, in file order of discovery (empty when valid).

    Parameters
    ----------
    path : str or path-like
        The ``study.toml``; relative paths inside it are resolved against its folder.

    Returns
    -------
    list of Problem
        Each with the line it is on; see the module notes for what is checked.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     manifest = Path(folder) / "study.toml"
    ...     _ = manifest.write_text('[study]\\nname = "x"\\nnmae = "y"\\n[[patients]]\\nid = "P01"\\n')
    ...     for problem in validate_manifest(manifest):
    ...         print(str(problem).replace(str(manifest), "study.toml"))
    study.toml:3: study.nmae: unknown key; did you mean 'name'? (found 'nmae'; expected one of name, tracer, show_paths)
    """  # noqa: E501
    return _check(path)[1]


def load_manifest(path: str | os.PathLike[str]) -> Study:
    """Read a study manifest into a :class:`~immunopet.study.model.Study`.

    Parameters
    ----------
    path : str or path-like
        The ``study.toml``.

    Returns
    -------
    Study
        Paths absolute, activities in Bq, and each scan's overrides merged from its
        injection's ``injection_datetime``, ``injected_activity_mbq`` and ``weight_kg`` and its
        own ``overrides`` table (the scan's table wins). ``Study.root`` is the manifest's
        folder.

    Raises
    ------
    ManifestError
        Listing every problem, one per line, as :func:`validate_manifest` finds them.
    """
    study, problems = _check(path)
    if problems or study is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ManifestError(
            "invalid study manifest, " + count + ":\n" + "\n".join(str(p) for p in problems),
            file=path,
        )
    return study


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies inside it, else absolute (POSIX separators)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _bq_from_mbq(activity_mbq: float) -> float:
    """Bq from MBq by shifting the decimal point of the number as written (36.9 -> 36900000.0).

    ``36.9 * 1e6`` happens to be exact, but about 3 % of such products are not; shifting the
    shortest decimal representation never adds a rounding error of its own.
    """
    return float(Decimal(repr(float(activity_mbq))).scaleb(6))


def _mbq(activity_bq: float) -> float:
    """MBq that :func:`_bq_from_mbq` turns back into exactly ``activity_bq`` when one exists.

    Always the case for activities of up to 15 significant digits (DICOM DS values, typed
    values); for other floats the result may differ by one unit in the last place.
    """
    shifted = float(Decimal(repr(float(activity_bq))).scaleb(-6))
    guess = activity_bq / _MBQ
    for candidate in (shifted, guess, nextafter(guess, math.inf), nextafter(guess, 0.0)):
        if _bq_from_mbq(candidate) == activity_bq:
            return candidate
    return shifted


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }"
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()  # 2018-04-09T09:36:00, as people write it
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def _hours_value(hours: float) -> float | int:
    return int(hours) if float(hours).is_integer() else hours


def format_manifest(
    study: Study,
    *,
    base: Path,
    preamble: Sequence[str] = (),
    scan_comments: Mapping[str, Sequence[str]] | None = None,
    postscript: Sequence[str] = (),
) -> str:
    """The TOML text of a study, paths relative to ``base`` where they lie inside it.

    Parameters
    ----------
    study : Study
    base : Path
        The folder the manifest will be in.
    preamble, postscript : sequence of str
        Comment lines (without ``#``) put before and after the tables.
    scan_comments : mapping of str to sequence of str, optional
        Comment lines above a scan, by :attr:`~immunopet.study.model.ScanRef.scan_id`.

    Returns
    -------
    str
        Scan overrides are written only where they differ from the injection's values, so
        that reading the text back gives the same study.
    """
    comments = scan_comments or {}
    out: list[str] = [f"# {line}".rstrip() for line in preamble]
    if out:
        out.append("")

    def put(name: str, value: Any) -> None:
        if value is not None:
            out.append(f"{name} = {_toml_value(value)}")

    out.append("[study]")
    put("name", study.name)
    if study.tracer:
        put("tracer", study.tracer)
    if study.show_paths:
        put("show_paths", True)
    inputs = {f.name: getattr(study.inputs, f.name) for f in fields(StudyInputs)}
    if any(v is not None for v in inputs.values()):
        out += ["", "[inputs]"]
        for name, value in inputs.items():
            put(name, None if value is None else _relative(value, base))
    out += ["", "[settings]"]
    for f in fields(AnalysisSettings):
        put(f.name, getattr(study.settings, f.name))
    if study.plan != AnalysisPlan():
        out += _format_plan(study.plan)
    for exclusion in study.exclusions:
        out += ["", "[[exclusions]]"]
        put("patient", exclusion.patient)
        put("lesion", exclusion.lesion)
        put("reason", exclusion.reason)
    refs = {(r.patient, r.series, r.nominal_hours): r.scan_id for r in study.scans()}
    for patient in study.patients:
        out += ["", "[[patients]]"]
        put("id", patient.pseudonym)
        if patient.fdg is not None:
            out += _format_fdg(patient.fdg, base)
        for injection in patient.injections:
            out += ["", "[[patients.injections]]"]
            put("series", injection.series)
            put("injection_datetime", injection.injection_datetime)
            if injection.injected_activity_bq is not None:
                put("injected_activity_mbq", _mbq(injection.injected_activity_bq))
            put("unlabelled_mass_mg", injection.unlabelled_mass_mg)
            put("weight_kg", injection.weight_kg)
            for scan in injection.scans:
                out.append("")
                scan_id = refs.get((patient.pseudonym, injection.series, scan.nominal_hours), "")
                out += [f"# {line}".rstrip() for line in comments.get(scan_id, ())]
                out.append("[[patients.injections.scans]]")
                put("nominal_hours", _hours_value(scan.nominal_hours))
                put("pet", _relative(scan.pet, base))
                put("ct", None if scan.ct is None else _relative(scan.ct, base))
                if scan.organ_masks is not None:
                    put("organ_masks", _relative(scan.organ_masks, base))
                if scan.vois:
                    out.append("vois = [")
                    for voi in scan.vois:
                        item = {"path": _relative(voi.path, base), "kind": voi.kind}
                        out.append(f"    {_toml_value(item)},")
                    out.append("]")
                extra = _scan_overrides(scan.overrides, injection)
                if extra:
                    out.append("[patients.injections.scans.overrides]")
                    for name, value in extra.items():
                        put(name, value)
    if postscript:
        out.append("")
        out += [f"# {line}".rstrip() for line in postscript]
    return "\n".join(out) + "\n"


def _format_fdg(scan: Scan, base: Path) -> list[str]:
    """The ``[patients.fdg]`` table of a patient's FDG reference scan."""
    lines = ["", "[patients.fdg]"]
    if scan.nominal_hours != FDG_NOMINAL_HOURS:
        lines.append(f"nominal_hours = {_toml_value(_hours_value(scan.nominal_hours))}")
    lines.append(f"pet = {_toml_value(_relative(scan.pet, base))}")
    if scan.ct is not None:
        lines.append(f"ct = {_toml_value(_relative(scan.ct, base))}")
    if scan.vois:
        lines.append("vois = [")
        for voi in scan.vois:
            item = {"path": _relative(voi.path, base), "kind": voi.kind}
            lines.append(f"    {_toml_value(item)},")
        lines.append("]")
    extra = _scan_overrides(scan.overrides, Injection(series="fdg"))
    if extra:
        lines.append("[patients.fdg.overrides]")
        lines += [f"{name} = {_toml_value(value)}" for name, value in extra.items()]
    return lines


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _format_plan(plan: AnalysisPlan) -> list[str]:
    """The ``[analysis]`` tables of a plan (every key written)."""
    lines: list[str] = ["", "[analysis]"]
    for f in fields(AnalysisPlan):
        if f.name not in ("response", "ihc"):
            lines.append(f"{f.name} = {_toml_value(_plain(getattr(plan, f.name)))}")
    if not plan.ihc:
        lines.append("ihc = []")
    lines += ["", "[analysis.response]"]
    for f in fields(ResponsePlan):
        lines.append(f"{f.name} = {_toml_value(_plain(getattr(plan.response, f.name)))}")
    for marker in plan.ihc:
        lines += ["", "[[analysis.ihc]]"]
        lines.append(f"column = {_toml_value(marker.column)}")
        lines.append(f"label = {_toml_value(marker.label)}")
        lines.append(f"cutoffs = {_toml_value(list(marker.cutoffs))}")
    return lines


def _scan_overrides(overrides: SuvOverrides, injection: Injection) -> dict[str, Any]:
    """The override values a scan must state itself (those its injection does not give)."""
    values: dict[str, Any] = {}
    if overrides.weight_kg != injection.weight_kg and overrides.weight_kg is not None:
        values["weight_kg"] = overrides.weight_kg
    if overrides.height_m is not None:
        values["height_m"] = overrides.height_m
    if overrides.sex is not None:
        values["sex"] = overrides.sex
    moment = overrides.injection_datetime
    if moment != injection.injection_datetime and moment is not None:
        values["injection_datetime"] = moment
    activity = overrides.injected_activity_bq
    if activity != injection.injected_activity_bq and activity is not None:
        values["injected_activity_mbq"] = _mbq(activity)
    if overrides.half_life_s is not None:
        values["half_life_s"] = overrides.half_life_s
    return values


def write_manifest(study: Study, path: str | os.PathLike[str]) -> Path:
    """Write a study as a manifest that :func:`load_manifest` reads back to the same study.

    Parameters
    ----------
    study : Study
    path : str or path-like
        The ``.toml`` file to write (its folder is created). Paths inside the manifest's
        folder are written relative to it, others absolute.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Every setting is written explicitly. A scan's overrides that equal its injection's
    ``injection_datetime``, ``injected_activity_bq`` or ``weight_kg`` are not repeated: reading
    applies the injection's values to its scans. A study built by hand whose injection gives a
    value that one of its scans' overrides lacks therefore reads back with that value filled
    in (the manifest has no way to say "not for this scan").
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = format_manifest(study, base=target.resolve().parent)
    target.write_text(text, encoding="utf-8")
    return target
