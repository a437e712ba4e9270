"""The clinical sheet and the adverse-event list: reading and validation.

``clinical.csv``
    One row per patient, the columns of Table 1 of the durvalumab study (seed 000):
    ``patient`` (the study pseudonym), ``age`` (years), ``sex`` (``M``/``F``), ``histology``,
    ``tps_percent`` and ``cps_percent`` (PD-L1 tumour proportion / combined positive score in
    %, 0-100; ``NE`` or empty = not evaluable), ``treatment_cycles``, ``bor`` (best overall
    response by RECIST 1.1: ``CR``, ``PR``, ``SD``, ``PD``, ``NE``), ``stop_reason`` (may be
    empty while on treatment), ``pfs_days``, ``pfs_event``, ``os_days``, ``os_event``
    (durations in days >= 0; events 1 = progression/death, 0 = censored at that day; "NR",
    not reached, is a censored row), and optionally ``note``. Further columns (an RNA-seq
    score, a tumour type) are kept as they are.
``adverse_events.csv``
    One row per patient and event: ``patient``, ``term`` (CTCAE term), ``grade`` (1-5), and
    optionally ``ctcae_version``. A patient may have several rows for one term (episodes);
    tables count the highest grade once.

Privacy: a sheet with a column that identifies a person (name, birth date, hospital or
record number, contact details; see :data:`IDENTIFYING_COLUMNS`) is refused unless the
caller drops those columns explicitly with ``drop_columns``. The values of such columns are
never printed, only the column names.

Every problem names the file, the row (in a file the header is row 1, as a spreadsheet
numbers them; in a DataFrame the index label), the column, the value found and what was
expected. The ``*_problems`` functions return all of them (for ``immunopet validate``); the
``read_*``/``validate_*`` functions raise the first and say how many more there are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from immunopet.errors import ManifestError

__all__ = [
    "ADVERSE_EVENT_COLUMNS",
    "BOR_CATEGORIES",
    "CLINICAL_COLUMNS",
    "IDENTIFYING_COLUMNS",
    "PDL1_GROUPS",
    "adverse_event_problems",
    "clinical_problems",
    "group_pdl1",
    "read_adverse_events",
    "read_clinical",
    "validate_adverse_events",
    "validate_clinical",
]

CLINICAL_COLUMNS: Final = (
    "patient",
    "age",
    "sex",
    "histology",
    "tps_percent",
    "cps_percent",
    "treatment_cycles",
    "bor",
    "stop_reason",
    "pfs_days",
    "pfs_event",
    "os_days",
    "os_event",
)
"""Columns a clinical sheet must have (``note`` and other columns are optional)."""

ADVERSE_EVENT_COLUMNS: Final = ("patient", "term", "grade")
"""Columns an adverse-event list must have (``ctcae_version`` is optional)."""

BOR_CATEGORIES: Final = ("CR", "PR", "SD", "PD", "NE")
"""Best overall response categories of RECIST 1.1, best first."""

IDENTIFYING_COLUMNS: Final = frozenset(
    {
        "name",
        "patientname",
        "firstname",
        "lastname",
        "surname",
        "givenname",
        "familyname",
        "fullname",
        "initials",
        "birthdate",
        "dateofbirth",
        "dob",
        "patientbirthdate",
        "mrn",
        "medicalrecordnumber",
        "hospitalid",
        "hospitalnumber",
        "hospitalno",
        "ssn",
        "bsn",
        "nhsnumber",
        "socialsecuritynumber",
        "address",
        "postcode",
        "zipcode",
        "phone",
        "phonenumber",
        "telephone",
        "email",
    }
)
"""Column names (lower case, letters and digits only: ``"Date of birth"`` -> ``dateofbirth``)
that identify a person; any column whose name contains ``birth`` is identifying too. The
pseudonym column is ``patient``; a ``patient_id`` column is not refused, because studies use
that name for pseudonyms as well."""

_NE_TEXT: Final = "NE"
_SEX_VALUES: Final = ("M", "F")


# ---------------------------------------------------------------------------- helpers
def _normalised_name(column: str) -> str:
    return re.sub(r"[^a-z0-9]", "", column.lower())


def _identifying(columns: Sequence[str]) -> list[str]:
    found = []
    for column in columns:
        key = _normalised_name(column)
        if key in IDENTIFYING_COLUMNS or "birth" in key:
            found.append(column)
    return found


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any) -> float | None:
    """The cell as a finite float, ``None`` when it is not a number (bools are not)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    return "" if _is_empty(value) else str(value).strip()


class _Problems:
    """Collects the problems of one table; names rows as a spreadsheet or by index."""

    def __init__(self, frame: pd.DataFrame, source: str | Path, from_file: bool) -> None:
        self.frame = frame
        self.source = source
        self.from_file = from_file
        self.found: list[ManifestError] = []

    def row(self, position: int) -> str:
        if self.from_file:
            return f"row {position + 2}"  # the header is row 1
        return f"row {self.frame.index[position]!r}"

    def add(
        self, position: int | None, column: str, message: str, value: Any, expected: str
    ) -> None:
        tag = f"column {column}" if position is None else f"{self.row(position)}, column {column}"
        self.found.append(
            ManifestError(message, file=self.source, tag=tag, value=value, expected=expected)
        )


def _raise_first(problems: list[ManifestError]) -> None:
    if not problems:
        return
    first = problems[0]
    message = first.reason
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" [and {more} more problem{'s' if more > 1 else ''} in this table]"
    raise ManifestError(
        message, file=first.file, tag=first.tag, value=first.value, expected=first.expected
    )


def _drop_and_check_privacy(
    frame: pd.DataFrame, source: str | Path, drop_columns: Collection[str], what: str
) -> pd.DataFrame:
    unknown = [c for c in drop_columns if c not in frame.columns]
    if unknown:
        raise ManifestError(
            f"drop_columns names a column the {what} does not have",
            file=source,
            tag="drop_columns",
            value=", ".join(unknown),
            expected="one of " + ", ".join(map(str, frame.columns)),
        )
    kept = frame.drop(columns=list(drop_columns))
    identifying = _identifying([str(c) for c in kept.columns])
    if identifying:
        listed = ", ".join(repr(c) for c in identifying)
        raise ManifestError(
            f"the {what} has column(s) that identify a person; refused",
            file=source,
            tag="columns",
            value=", ".join(identifying),
            expected=f"no names, birth dates, hospital/record numbers or contact details "
            f"(pass drop_columns=[{listed}] to drop them on reading)",
        )
    return kept


def _read_csv(path: str | PathLike[str]) -> tuple[pd.DataFrame, Path]:
    file = Path(path)
    if not file.is_file():
        raise ManifestError("file not found", file=file)
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"not a readable CSV table ({exc})", file=file) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, file


def _missing_columns(
    frame: pd.DataFrame, required: Sequence[str], source: str | Path, what: str
) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"the {what} lacks required column(s)",
            file=source,
            tag=", ".join(missing),
            value="missing",
            expected="columns " + ", ".join(required),
        )


# ---------------------------------------------------------------------------- clinical
def _parse_clinical(
    frame: pd.DataFrame, source: str | Path, from_file: bool
) -> tuple[pd.DataFrame, list[ManifestError]]:
    _missing_columns(frame, CLINICAL_COLUMNS, source, "clinical sheet")
    p = _Problems(frame, source, from_file)
    n = len(frame)

    def column(name: str, parse: Callable[[int, Any], Any], default: Any = np.nan) -> list[Any]:
        values = []
        for position, value in enumerate(frame[name]):
            values.append(parse(position, value) if not _is_empty(value) else default)
        return values

    def required_text(name: str) -> list[str]:
        out = []
        for position, value in enumerate(frame[name]):
            if _is_empty(value):
                p.add(position, name, "empty cell", "missing", "a non-empty text")
            out.append(_text(value))
        return out

    def number_in(name: str, low: float, high: float, expected: str) -> Callable[[int, Any], Any]:
        def parse(position: int, value: Any) -> float:
            number = _number(value)
            if number is None:
                p.add(position, name, "not a number", value, expected)
                return np.nan
            if not low <= number <= high:
                p.add(position, name, "value out of range", value, expected)
            return number

        return parse

    def whole(name: str, expected: str) -> Callable[[int, Any], Any]:
        def parse(position: int, value: Any) -> Any:
            number = _number(value)
            if number is None or number < 0 or number != int(number):
                p.add(position, name, "not a whole number >= 0", value, expected)
                return pd.NA
            return int(number)

        return parse

    def require(name: str, expected: str) -> None:
        for position, value in enumerate(frame[name]):
            if _is_empty(value):
                p.add(position, name, "empty cell", "missing", expected)

    patient = required_text("patient")
    seen: set[str] = set()
    for position, label in enumerate(patient):
        if label and label in seen:
            p.add(position, "patient", "patient listed twice", label, "one row per patient")
        seen.add(label)

    age = column("age", number_in("age", 0, 130, "years, 0-130"))
    require("age", "years, 0-130")

    sex = []
    for position, value in enumerate(frame["sex"]):
        text = _text(value).upper()
        if text not in _SEX_VALUES:
            p.add(position, "sex", "unknown sex", _text(value) or "missing", "M or F")
        sex.append(text)

    histology = required_text("histology")

    flags: dict[str, list[bool]] = {}
    scores: dict[str, list[float]] = {}
    for name in ("tps_percent", "cps_percent"):
        values, ne = [], []
        for position, value in enumerate(frame[name]):
            if _is_empty(value) or _text(value).upper() == _NE_TEXT:
                values.append(np.nan)
                ne.append(True)
                continue
            number = _number(value)
            ne.append(False)
            if number is None or not 0 <= number <= 100:
                p.add(
                    position,
                    name,
                    "not a percentage" if number is None else "value out of range",
                    value,
                    "a number 0-100 (decimal point), or NE / empty when not evaluable",
                )
                values.append(np.nan)
            else:
                values.append(number)
        scores[name], flags[name] = values, ne

    cycles = column("treatment_cycles", whole("treatment_cycles", "cycles, 0, 1, 2, ..."), pd.NA)
    require("treatment_cycles", "cycles, 0, 1, 2, ...")

    bor = []
    for position, value in enumerate(frame["bor"]):
        text = _text(value).upper()
        if text not in BOR_CATEGORIES:
            p.add(
                position,
                "bor",
                "unknown best overall response",
                _text(value) or "missing",
                "one of " + ", ".join(BOR_CATEGORIES) + " (RECIST 1.1)",
            )
        bor.append(text)

    stop = [_text(v) for v in frame["stop_reason"]]

    durations: dict[str, list[float]] = {}
    events: dict[str, list[Any]] = {}
    for endpoint in ("pfs", "os"):
        days_name, event_name = f"{endpoint}_days", f"{endpoint}_event"
        expected_days = "days >= 0 (a not-reached endpoint is the last follow-up day with event 0)"
        durations[endpoint] = column(days_name, number_in(days_name, 0, math.inf, expected_days))
        require(days_name, expected_days)
        flags_out = []
        for position, value in enumerate(frame[event_name]):
            number = _number(value) if not isinstance(value, bool | np.bool_) else float(value)
            if number not in (0.0, 1.0):
                p.add(
                    position,
                    event_name,
                    "event must be 0 or 1",
                    _text(value) or "missing",
                    "1 (event) or 0 (censored)",
                )
                flags_out.append(pd.NA)
            else:
                flags_out.append(int(number))
        events[endpoint] = flags_out

    for position in range(n):
        pfs, os_days = durations["pfs"][position], durations["os"][position]
        if math.isfinite(pfs) and math.isfinite(os_days) and pfs > os_days:
            p.add(
                position,
                "pfs_days",
                "progression-free survival longer than overall survival",
                f"{pfs:g} > {os_days:g}",
                "pfs_days <= os_days",
            )

    out = pd.DataFrame(
        {
            "patient": pd.Series(patient, index=frame.index, dtype="str"),
            "age": pd.Series(age, index=frame.index, dtype="float64"),
            "sex": pd.Series(sex, index=frame.index, dtype="str"),
            "histology": pd.Series(histology, index=frame.index, dtype="str"),
            "tps_percent": pd.Series(scores["tps_percent"], index=frame.index, dtype="float64"),
            "tps_ne": pd.Series(flags["tps_percent"], index=frame.index, dtype="bool"),
            "cps_percent": pd.Series(scores["cps_percent"], index=frame.index, dtype="float64"),
            "cps_ne": pd.Series(flags["cps_percent"], index=frame.index, dtype="bool"),
            "treatment_cycles": pd.Series(cycles, index=frame.index, dtype="Int64"),
            "bor": pd.Series(bor, index=frame.index, dtype="str"),
            "stop_reason": pd.Series(stop, index=frame.index, dtype="str"),
            "pfs_days": pd.Series(durations["pfs"], index=frame.index, dtype="float64"),
            "pfs_event": pd.Series(events["pfs"], index=frame.index, dtype="Int64"),
            "os_days": pd.Series(durations["os"], index=frame.index, dtype="float64"),
            "os_event": pd.Series(events["os"], index=frame.index, dtype="Int64"),
            "note": pd.Series(
                [_text(v) for v in frame["note"]] if "note" in frame.columns else [""] * n,
                index=frame.index,
                dtype="str",
            ),
        }
    )
    skip = {*CLINICAL_COLUMNS, "note", "tps_ne", "cps_ne"}
    for extra in frame.columns:
        if extra not in skip:
            out[extra] = frame[extra]
    return out.reset_index(drop=True), p.found


def clinical_problems(
    table: pd.DataFrame | str | PathLike[str],
    *,
    source: str = "clinical",
    drop_columns: Collection[str] = (),
) -> list[ManifestError]:
    """Every problem of a clinical sheet (empty list when it is valid).

    Parameters
    ----------
    table : pandas.DataFrame or path-like
        The sheet in memory (text or typed cells; rows named by index label) or its CSV file
        (rows numbered as a spreadsheet, header = row 1).
    source : str
        Names an in-memory sheet in the problems (a file names itself).
    drop_columns : collection of str
        Columns removed before the checks (identifying columns the caller chose to drop).

    Returns
    -------
    list of ManifestError
        A missing file or required column, or an identifying column, is a single problem (the
        rows are not checked then).
    """
    where: str | Path
    try:
        if isinstance(table, pd.DataFrame):
            frame, where, from_file = table, source, False
        else:
            frame, file = _read_csv(table)
            where, from_file = file, True
        kept = _drop_and_check_privacy(frame, where, drop_columns, "clinical sheet")
        return _parse_clinical(kept, where, from_file=from_file)[1]
    except ManifestError as exc:
        return [exc]


def validate_clinical(
    frame: pd.DataFrame, *, source: str | Path = "clinical", drop_columns: Collection[str] = ()
) -> pd.DataFrame:
    """Check a clinical sheet held in memory and return it typed.

    Idempotent: the output of :func:`read_clinical` (or of this function) validates to
    itself.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns :data:`CLINICAL_COLUMNS` (+ optional ``note`` and others), text or typed.
    source : str or Path
        Named in error messages.
    drop_columns : collection of str
        Identifying columns to drop before the checks.

    Returns
    -------
    pandas.DataFrame
        Index 0..n-1; ``patient``, ``sex`` (``M``/``F``), ``histology``, ``bor`` (upper
        case), ``stop_reason`` and ``note`` (``""`` when empty) as text; ``age``,
        ``tps_percent``, ``cps_percent``, ``pfs_days``, ``os_days`` as float (TPS/CPS NaN
        when not evaluable); ``tps_ne``/``cps_ne`` (bool, True = not evaluable, placed after
        their scores); ``treatment_cycles``, ``pfs_event``, ``os_event`` as ``Int64``; other
        columns as given, after ``note``.

    Raises
    ------
    ManifestError
        (an :class:`~immunopet.errors.InputError`) for the first problem; the message says how
        many more there are.

    Examples
    --------
    >>> sheet = pd.DataFrame({"patient": ["P01"], "age": [59], "sex": ["f"],
    ...     "histology": ["Adenocarcinoma"], "tps_percent": ["0"], "cps_percent": ["NE"],
    ...     "treatment_cycles": [7], "bor": ["SD"], "stop_reason": ["PD"], "pfs_days": [86],
    ...     "pfs_event": [1], "os_days": [823], "os_event": [1]})
    >>> row = validate_clinical(sheet).iloc[0]
    >>> row["sex"], float(row["tps_percent"]), bool(row["cps_ne"]), int(row["os_event"])
    ('F', 0.0, True, 1)
    """
    return _validated_clinical(frame, source, drop_columns, from_file=False)


def _validated_clinical(
    frame: pd.DataFrame, source: str | Path, drop_columns: Collection[str], *, from_file: bool
) -> pd.DataFrame:
    kept = _drop_and_check_privacy(frame, source, drop_columns, "clinical sheet")
    out, problems = _parse_clinical(kept, source, from_file=from_file)
    _raise_first(problems)
    return out


def read_clinical(path: str | PathLike[str], *, drop_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read and validate a clinical sheet (CSV).

    Parameters
    ----------
    path : path-like
        The sheet; see the module docstring for the columns.
    drop_columns : collection of str
        Columns to drop on reading. A sheet with an identifying column (name, birth date,
        hospital ID, ...; :data:`IDENTIFYING_COLUMNS`) is refused unless it is dropped here.

    Returns
    -------
    pandas.DataFrame
        As :func:`validate_clinical`.

    Raises
    ------
    ManifestError
        (an :class:`~immunopet.errors.InputError`) when the file is missing or unreadable, a
        required column is missing, an identifying column is present (named, its values are
        never shown), ``drop_columns`` names an absent column, or a cell is invalid (file,
        row, column, value, expectation).
    """
    frame, file = _read_csv(path)
    return _validated_clinical(frame, file, drop_columns, from_file=True)


# ---------------------------------------------------------------------------- adverse events
def _parse_adverse_events(
    frame: pd.DataFrame,
    source: str | Path,
    from_file: bool,
    known_patients: Collection[str] | None,
) -> tuple[pd.DataFrame, list[ManifestError]]:
    _missing_columns(frame, ADVERSE_EVENT_COLUMNS, source, "adverse-event list")
    p = _Problems(frame, source, from_file)
    known = None if known_patients is None else {str(k) for k in known_patients}
    patients, terms, grades = [], [], []
    for position, (patient, term, grade) in enumerate(
        zip(frame["patient"], frame["term"], frame["grade"], strict=True)
    ):
        label = _text(patient)
        if not label:
            p.add(position, "patient", "empty cell", "missing", "a patient pseudonym")
        elif known is not None and label not in known:
            p.add(
                position,
                "patient",
                "patient not in the clinical sheet",
                label,
                "one of " + ", ".join(sorted(known)),
            )
        text = _text(term)
        if not text:
            p.add(position, "term", "empty cell", "missing", "a CTCAE term")
        number = _number(grade)
        if number is None or number not in (1.0, 2.0, 3.0, 4.0, 5.0):
            p.add(position, "grade", "not a CTCAE grade", _text(grade) or "missing", "1-5")
            grades.append(pd.NA)
        else:
            grades.append(int(number))
        patients.append(label)
        terms.append(text)
    out = pd.DataFrame(
        {
            "patient": pd.Series(patients, dtype="str"),
            "term": pd.Series(terms, dtype="str"),
            "grade": pd.Series(grades, dtype="Int64"),
        }
    )
    for extra in frame.columns:
        if extra not in ADVERSE_EVENT_COLUMNS:
            out[extra] = frame[extra].to_numpy()
    return out, p.found


def adverse_event_problems(
    table: pd.DataFrame | str | PathLike[str],
    *,
    source: str = "adverse_events",
    known_patients: Collection[str] | None = None,
    drop_columns: Collection[str] = (),
) -> list[ManifestError]:
    """Every problem of an adverse-event list (empty list when it is valid).

    ``table`` is a DataFrame or a CSV file, as in :func:`clinical_problems`; the other
    parameters are those of :func:`validate_adverse_events`.
    """
    where: str | Path
    try:
        if isinstance(table, pd.DataFrame):
            frame, where, from_file = table, source, False
        else:
            frame, file = _read_csv(table)
            where, from_file = file, True
        kept = _drop_and_check_privacy(frame, where, drop_columns, "adverse-event list")
        return _parse_adverse_events(kept, where, from_file, known_patients)[1]
    except ManifestError as exc:
        return [exc]


def validate_adverse_events(
    frame: pd.DataFrame,
    *,
    source: str | Path = "adverse_events",
    known_patients: Collection[str] | None = None,
    drop_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Check an adverse-event list held in memory and return it typed.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns :data:`ADVERSE_EVENT_COLUMNS` (+ optional ``ctcae_version`` and others).
    source : str or Path
        Named in error messages.
    known_patients : collection of str, optional
        The patients of the clinical sheet; an event of anyone else is an error.
    drop_columns : collection of str
        Identifying columns to drop before the checks.

    Returns
    -------
    pandas.DataFrame
        Index 0..n-1, ``patient`` and ``term`` as stripped text, ``grade`` as ``Int64``,
        other columns as given.

    Raises
    ------
    ManifestError
        For the first problem (file, row, column, value, expectation).

    Examples
    --------
    >>> events = pd.DataFrame({"patient": ["P01"], "term": [" Anemia "], "grade": ["3"]})
    >>> validate_adverse_events(events).values.tolist()
    [['P01', 'Anemia', 3]]
    """
    return _validated_adverse_events(frame, source, known_patients, drop_columns, from_file=False)


def _validated_adverse_events(
    frame: pd.DataFrame,
    source: str | Path,
    known_patients: Collection[str] | None,
    drop_columns: Collection[str],
    *,
    from_file: bool,
) -> pd.DataFrame:
    kept = _drop_and_check_privacy(frame, source, drop_columns, "adverse-event list")
    out, problems = _parse_adverse_events(kept, source, from_file, known_patients)
    _raise_first(problems)
    return out


def read_adverse_events(
    path: str | PathLike[str],
    *,
    known_patients: Collection[str] | None = None,
    drop_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Read and validate an adverse-event list (CSV).

    Parameters
    ----------
    path : path-like
        One row per patient and event: ``patient``, ``term``, ``grade`` (1-5), optional
        ``ctcae_version``.
    known_patients, drop_columns :
        As :func:`validate_adverse_events`.

    Returns
    -------
    pandas.DataFrame
        As :func:`validate_adverse_events`.

    Raises
    ------
    ManifestError
        When the file is missing or unreadable, a column is missing or identifying, or a cell
        is invalid.
    """
    frame, file = _read_csv(path)
    return _validated_adverse_events(frame, file, known_patients, drop_columns, from_file=True)


# ---------------------------------------------------------------------------- PD-L1 groups
PDL1_GROUPS: Final = ("<1%", "1–49%", "≥50%")
"""PD-L1 expression groups of the study's Kruskal-Wallis test (its "0%, 1%-49%, >=50%")."""


def group_pdl1(percent: pd.Series) -> pd.Series:
    """PD-L1 score (TPS or CPS, %) as the study's three groups.

    Parameters
    ----------
    percent : pandas.Series of float, %
        NaN = not evaluable.

    Returns
    -------
    pandas.Series
        Ordered categorical with categories :data:`PDL1_GROUPS`: ``<1%`` (the paper's "0%")
        below 1, ``1–49%`` from 1 to below 50, ``≥50%`` from 50; NaN stays missing.

    Examples
    --------
    >>> group_pdl1(pd.Series([0.0, 1.0, 49.9, 50.0, float("nan")])).tolist()
    ['<1%', '1–49%', '1–49%', '≥50%', nan]
    """
    values = pd.to_numeric(percent, errors="raise").astype("float64")
    return pd.cut(
        values,
        bins=[-np.inf, 1.0, 50.0, np.inf],
        right=False,
        labels=list(PDL1_GROUPS),
        ordered=True,
    )
