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
patients, series labels or scans, exclusions naming unknown patients, and ``[analysis]``
series roles (``reference_series``, ``comparison_series``, when given) naming no series of the
study or both the same. Each problem reads
``file:line: dotted.key: message (found X; expected Y)``.

Modules
-------
This module reads (:func:`load_manifest`) and validates (:func:`validate_manifest`) the
study, its inputs, settings, exclusions and patients. Three private modules hold the rest:
``_manifest_check`` (:class:`Problem` and the checker that records them with their lines),
``_manifest_plan`` (the ``[analysis]`` plan tables) and ``_manifest_write``
(:func:`format_manifest`, :func:`write_manifest`, re-exported here).

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
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Final, cast, get_args

from immunopet.errors import ManifestError
from immunopet.study._manifest_check import Checker, Problem, bq_from_mbq, hours_value, shown
from immunopet.study._manifest_plan import build_plan
from immunopet.study._manifest_write import format_manifest, write_manifest
from immunopet.study._toml_lines import Key, LineIndex
from immunopet.study.model import (
    FDG_NOMINAL_HOURS,
    AnalysisSettings,
    Exclusion,
    Injection,
    Normalisation,
    Patient,
    PeakMethod,
    Scan,
    Study,
    StudyInputs,
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
    checker = Checker(file, manifest.resolve().parent, LineIndex(text))
    study = _build(checker, data)
    problems = sorted(checker.problems, key=lambda p: p.line or 0)
    return (study if not problems else None), problems


def _build(c: Checker, data: dict[str, Any]) -> Study | None:
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
            c.add(("study", "show_paths"), "not a boolean", shown(show_paths), "true or false")
            show_paths = False
    inputs = _build_inputs(c, data.get("inputs", {}))
    settings = _build_settings(c, data.get("settings", {}))
    plan, peak = build_plan(c, data.get("analysis", {}))
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
    _check_series_roles(c, data.get("analysis"), patients)
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


def _check_series_roles(c: Checker, analysis: Any, patients: Sequence[Patient]) -> None:
    """``[analysis]`` names its series roles among the study's series (a misspelt series
    would leave every comparison empty, "too few pairs"); the defaults need not exist (a
    study of one series has no predose series)."""
    series = sorted({injection.series for patient in patients for injection in patient.injections})
    if not isinstance(analysis, dict) or not series:
        return
    roles = {
        name: analysis[name]
        for name in ("reference_series", "comparison_series")
        if isinstance(analysis.get(name), str) and analysis[name].strip()
    }
    for name, value in roles.items():
        if value not in series:
            close = difflib.get_close_matches(value, series, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            c.add(
                ("analysis", name),
                "no injection of the study is in this series" + hint,
                value,
                "one of " + ", ".join(series),
            )
    if len(roles) == 2 and roles["reference_series"] == roles["comparison_series"]:
        c.add(
            ("analysis", "comparison_series"),
            "the same series as reference_series",
            roles["comparison_series"],
            "another series of the study, or leave it out",
        )


def _build_inputs(c: Checker, data: Any) -> StudyInputs:
    table = c.table(data, ("inputs",), _INPUT_KEYS)
    if table is None:
        return StudyInputs()
    values = {
        name: c.path(table, name, ("inputs",), kind="file") for name in _INPUT_KEYS if name in table
    }
    return StudyInputs(**values)


def _build_settings(c: Checker, data: Any) -> AnalysisSettings:
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


def _build_exclusions(c: Checker, data: dict[str, Any], known: set[str]) -> list[Exclusion]:
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


def _build_patients(c: Checker, data: dict[str, Any]) -> list[Patient]:
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
    c: Checker,
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
        activity = None if mbq is None else bq_from_mbq(mbq)
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
                        hours_value(hours),
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
    c: Checker,
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
                injected_activity_bq=None if mbq is None else bq_from_mbq(mbq),
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
