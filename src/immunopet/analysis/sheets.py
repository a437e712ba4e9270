"""Content checks of a study's sheets, for ``immunopet validate`` and ``immunopet run``.

A manifest can be valid while a sheet it names is not: a date in ``pfs_days``, ``1,5`` for
1.5, PFS longer than OS, a patient listed twice, an event coded 2, a blood sample counted
before it was drawn, an adverse event of a patient not in the study. :func:`sheet_problems`
reads the clinical sheet, the adverse-event list, the blood samples, the well-counter
calibration and the baseline lesion table of a study and returns every problem, each naming
the file (relative to the manifest's folder), the row (the header is row 1, as a spreadsheet
numbers them), the column, the value found and what was expected. A column of the clinical
sheet that the manifest's ``[analysis]`` names (a biomarker, an IHC marker, the response
column) must be in it: a misspelt name only left that part out, with a note in the report.
A patient of the clinical sheet, the lesion table or the blood samples written differently from
a patient of the manifest (``P1`` for ``P01``, ``p01``, ``P-01``) is a problem too: the
patient's lesions were left out of the response analyses, which then ran on the others (and
the samples out of the Patlak fits' sampled input). So is a blood sample of a manifest patient
naming a series the patient has no injection of (``tracer only`` for ``tracer-only``): the
Patlak fits of that series quietly fell back to the image-derived input.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from immunopet.analysis.blood import blood_sample_problems, read_counter_calibration
from immunopet.analysis.clinical import adverse_event_problems, clinical_problems
from immunopet.analysis.lesions import _lesion_table
from immunopet.errors import ImmunoPETError
from immunopet.study.model import AnalysisPlan, Study

__all__ = ["sheet_problems"]


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _relative(problems: Sequence[ImmunoPETError], path: Path, root: Path) -> list[str]:
    """The problems as text, the file named relative to the manifest (no absolute path)."""
    shown = _shown(path, root)
    texts = []
    for problem in problems:
        text = str(problem).replace(str(path.resolve()), shown).replace(str(path), shown)
        texts.append(text if text.startswith(shown) else f"{shown}: {text}")
    return texts


def _one(check: Callable[[], object]) -> list[ImmunoPETError]:
    try:
        check()
    except ImmunoPETError as exc:
        return [exc]
    return []


def _text_table(path: Path) -> pd.DataFrame | None:
    """The sheet as text cells, read once for the checks below; None when it cannot be read
    (the sheet's own check reports that)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def _patients_of(frame: pd.DataFrame | None) -> list[str] | None:
    if frame is None or "patient" not in frame.columns:
        return None
    return [str(p).strip() for p in frame["patient"] if str(p).strip()]


def _named_columns(plan: AnalysisPlan) -> list[tuple[str, str]]:
    """``(manifest key, column)`` of the clinical columns the plan names where it differs from
    the defaults (a study may lack the default TPS/CPS or BOR columns: those parts are then
    left out with a note)."""
    default = AnalysisPlan()
    named: list[tuple[str, str]] = []
    if plan.biomarkers != default.biomarkers:
        named += [("analysis.biomarkers", c) for c in plan.biomarkers if c != "uptake"]
    if plan.ihc != default.ihc:
        named += [("analysis.ihc.column", marker.column) for marker in plan.ihc]
    if plan.response.column != default.response.column:
        named.append(("analysis.response.column", plan.response.column))
    return named


def _plan_column_problems(plan: AnalysisPlan, frame: pd.DataFrame | None, shown: str) -> list[str]:
    if frame is None:
        return []
    columns = [str(c) for c in frame.columns]
    found = []
    for key, column in dict.fromkeys(_named_columns(plan)):
        if column in columns:
            continue
        close = difflib.get_close_matches(column, columns, n=1, cutoff=0.85)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        found.append(
            f"{shown}: column {column!r}: not in the sheet{hint} (named by "
            f"the manifest's {key}; expected one of {', '.join(columns)})"
        )
    return found


def _id_key(patient: str) -> str:
    """A patient id as a comparison key: case, separators and leading zeros ignored."""
    text = re.sub(r"[\s_\-.]", "", patient.casefold())
    return re.sub(r"\d+", lambda number: str(int(number.group())), text)


def _patient_id_problems(study: Study, frame: pd.DataFrame | None, shown: str) -> list[str]:
    """Patients of a sheet (clinical, lesion table, blood samples) that are a manifest patient
    written differently; each once, at its first row."""
    if frame is None or "patient" not in frame.columns:
        return []
    rows = [str(p).strip() for p in frame["patient"]]
    manifest = {patient.pseudonym for patient in study.patients}
    by_key = {_id_key(patient): patient for patient in manifest}
    found = []
    named: set[str] = set()
    for row, patient in enumerate(rows, start=2):  # the header is row 1
        meant = by_key.get(_id_key(patient)) if patient else None
        if patient in manifest or patient in named or meant is None:
            continue
        named.add(patient)
        found.append(
            f"{shown}: row {row}, column patient: not a patient of the "
            f"manifest; did you mean {meant!r}? (found {patient!r}; expected the "
            f"manifest's ids, written as there)"
        )
    return found


def _blood_series_problems(study: Study, frame: pd.DataFrame | None, shown: str) -> list[str]:
    """Blood samples of a manifest patient naming a series that patient has no injection of."""
    if frame is None or not {"patient", "series"} <= set(frame.columns):
        return []
    series = {p.pseudonym: sorted({i.series for i in p.injections}) for p in study.patients}
    found = []
    pairs = zip(frame["patient"], frame["series"], strict=True)
    for row, (patient, name) in enumerate(pairs, start=2):  # the header is row 1
        patient, name = str(patient).strip(), str(name).strip()
        known = series.get(patient)
        if not known or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        found.append(
            f"{shown}: row {row}, column series: not a series of {patient}'s "
            f"injections{hint} (found {name!r}; expected one of {', '.join(known)})"
        )
    return found


def sheet_problems(study: Study) -> list[str]:
    """Every problem of the sheets the study's ``[inputs]`` name (empty when all are valid).

    Parameters
    ----------
    study : Study
        A study read from its manifest (input paths absolute or relative to ``study.root``).

    Returns
    -------
    list of str
        One line per problem, ``file: row N, column C: message (found V; expected E)``, in
        the order clinical sheet, adverse events, blood samples, counter calibration, lesion
        table. Adverse events of patients missing from the clinical sheet are problems too.
    """
    root = Path(study.root)
    inputs = study.inputs

    def where(path: Path | None) -> Path | None:
        if path is None:
            return None
        return path if path.is_absolute() else root / path

    found: list[str] = []
    clinical = where(inputs.clinical)
    known = None
    if clinical is not None:
        text = _text_table(clinical)
        found += _relative(clinical_problems(clinical), clinical, root)
        found += _plan_column_problems(study.plan, text, _shown(clinical, root))
        found += _patient_id_problems(study, text, _shown(clinical, root))
        known = _patients_of(text)
    events = where(inputs.adverse_events)
    if events is not None:
        found += _relative(adverse_event_problems(events, known_patients=known), events, root)
    blood = where(inputs.blood_samples)
    if blood is not None:
        text = _text_table(blood)
        found += _relative(blood_sample_problems(blood), blood, root)
        found += _patient_id_problems(study, text, _shown(blood, root))
        found += _blood_series_problems(study, text, _shown(blood, root))
    calibration = where(inputs.counter_calibration)
    if calibration is not None:
        found += _relative(_one(lambda: read_counter_calibration(calibration)), calibration, root)
    lesions = where(inputs.lesions)
    if lesions is not None:
        try:
            table = pd.read_csv(lesions)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            found.append(f"{_shown(lesions, root)}: not a readable CSV table ({exc})")
        else:
            found += _relative(_one(lambda: _lesion_table(table)), lesions, root)
            found += _patient_id_problems(study, _text_table(lesions), _shown(lesions, root))
    return found
