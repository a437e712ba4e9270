"""Cells and tables of the HTML report (private to :mod:`immunopet.report.html`).

How values are formatted (SUV to 2 decimals, p-values to 3 or "< 0.001", missing as a dash),
which columns are never shown (anything that could identify a patient), and the small view
models (cells, tables, figures, sections) that the Jinja2 templates render.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from immunopet.analysis.biodistribution import SERIES_ORDER
from immunopet.analysis.clinical import IDENTIFYING_COLUMNS
from immunopet.io.atomic import atomic_path
from immunopet.study.model import AnalysisPlan

DASH: Final = "\u2014"
"""What an empty or missing cell shows."""

COLLAPSE_ROWS: Final = 25
"""Tables longer than this are folded (``<details>``)."""

_SAFE_NAME_COLUMNS: Final = frozenset({"statisticname", "testname", "studyname"})
"""Columns whose name contains ``name`` but that name a method or the study, not a person."""


@cache
def report_words() -> dict[str, Any]:
    """The report's words (titles, captions, headers ...) of ``templates/report_text.toml``."""
    import tomllib

    text = files("immunopet.report").joinpath("templates", "report_text.toml").read_text("utf-8")
    return tomllib.loads(text)


# ---------------------------------------------------------------------------- formatting
def format_p_value(p: float) -> str:
    """A p-value as the report prints it: 3 decimals, or ``"< 0.001"``.

    Parameters
    ----------
    p : float
        The p-value (NaN prints as a dash).

    Returns
    -------
    str

    Examples
    --------
    >>> format_p_value(0.0612), format_p_value(0.00004), format_p_value(1.0)
    ('0.061', '< 0.001', '1.000')
    """
    if p is None or not math.isfinite(p):
        return DASH
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def normalised(column: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(column).lower())


def is_identifying(column: object) -> bool:
    """Whether a table column's name says it may identify a person.

    Parameters
    ----------
    column : str
        The column name.

    Returns
    -------
    bool
        True for the names of :data:`immunopet.analysis.clinical.IDENTIFYING_COLUMNS` and
        for any name containing ``name`` (except ``test_name``, ``statistic_name``,
        ``study_name``), ``birth``, ``mrn`` or ``patient_id``/``patientid`` (the pseudonym
        column is ``patient``; ``Patient no.`` of Table 1 is that pseudonym too).

    Examples
    --------
    >>> [is_identifying(c) for c in ("patient", "Patient no.", "patient_name", "PatientID")]
    [False, False, True, True]
    >>> is_identifying("Date of birth"), is_identifying("statistic_name")
    (True, False)
    """
    key = normalised(column)
    if key in IDENTIFYING_COLUMNS or key in {"patientid", "patientids", "otherpatientids"}:
        return True
    if "name" in key and key not in _SAFE_NAME_COLUMNS:
        return True
    return any(part in key for part in ("birth", "mrn", "patientid"))


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    return False


def format_float(value: float, column: str = "") -> str:
    key = column.lower()
    if math.isinf(value):
        return "\u221e" if value > 0 else "\u2212\u221e"
    if key in {"p", "p_value", "pvalue"} or key.startswith("p_") or key.endswith("_p"):
        return format_p_value(value)
    integral = float(value).is_integer()
    if key in {"n", "events", "visible", "total", "df", "observed"} or key.startswith("n_"):
        return f"{int(value)}" if integral else f"{value:.1f}"
    if "hours" in key or key.endswith("_h"):
        return f"{value:g}" if integral else f"{value:.1f}"
    if "percent" in key:
        return f"{value:.1f}"
    if key in _SPREAD_COLUMNS or key.endswith(("_sd", "_se", "_lower", "_upper")):
        return f"{value:.2f}"  # the precision of the mean beside it
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.2f}"


_SPREAD_COLUMNS: Final = {"sd", "se", "lower", "upper", "ci_lower", "ci_upper", "std"}
"""Spreads and limits: printed to the 2 decimals of their mean, never to 2 significant digits."""


def same_precision(value: Any, like: str) -> str:
    """``value`` with as many decimals as the text ``like`` (a mean and its SD or limits).

    Examples
    --------
    >>> same_precision(0.0061, "7.46"), same_precision(0.0083, "0.07"), same_precision(3, "1.0")
    ('0.01', '0.01', '3.0')
    >>> same_precision(0.0, "1.3e-07")
    '0'

    """
    if is_missing(value):
        return DASH
    if isinstance(value, float | np.floating) and math.isinf(value):
        return format_float(float(value))
    if "e" in like.lower() or not like[:1].lstrip("-−").isdigit():
        return f"{float(value):.2g}"  # the value itself is in scientific notation
    decimals = len(like.split(".", 1)[1]) if "." in like else 0
    return f"{float(value):.{decimals}f}"


def format_statistic(value: float) -> str:
    """A test statistic: 3 decimals below 1 in magnitude (rho, tau), else 2 (U, H, chi²)."""
    if is_missing(value):
        return DASH
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def format_cell(value: Any, column: str = "") -> str:
    """One table cell as text: SUV-like numbers 2 decimals, p-values 3, counts as integers."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(format_cell(v, column) for v in value) or DASH
    if is_missing(value):
        return DASH
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return format_float(float(value), column)
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()  # an empty text stays empty (Table 1 leaves zero cells blank)


def numeric(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def header(column: object) -> str:
    """A column name for display: known names spelt out, units in brackets."""
    text = str(column)
    known = report_words()["headers"]
    if text in known:
        return str(known[text])
    if text != text.lower() or " " in text:
        return text  # already a display name ("PFS (d)", "Adverse event")
    unit = ""
    for suffix, name in (("_mm", "mm"), ("_ml", "mL"), ("_kg", "kg"), ("_days", "d")):
        if text.endswith(suffix):
            text, unit = text.removesuffix(suffix), f" ({name})"
    if text.startswith("n_"):
        return "n " + text[2:].replace("_", " ") + unit
    words = text.replace("_", " ")
    return words[:1].upper() + words[1:] + unit


def hours_label(hours: Any) -> str:
    if is_missing(hours):
        return "any"
    return f"{float(hours):g} h"


def natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def series_order(values: Iterable[Any]) -> list[str]:
    present = {str(v) for v in values if not is_missing(v)}
    known = [s for s in SERIES_ORDER if s in present]
    return known + sorted(present - set(known))


# ---------------------------------------------------------------------------- view models
@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    missing: bool = False
    span: int = 1


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    notes: tuple[str, ...] = ()
    collapsed: bool = False
    header_groups: tuple[Cell, ...] = ()
    css: str = ""
    csv: str = ""


@dataclass(frozen=True)
class Figure:
    name: str
    src: str
    caption: str


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    available: bool
    notes: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict)


def cell(value: Any, column: str = "") -> Cell:
    text = format_cell(value, column)
    return Cell(text=text, numeric=numeric(value), missing=text == DASH)


def frame_table(
    frame: pd.DataFrame | None,
    *,
    columns: str | Sequence[str] | None = None,
    caption: str = "",
    notes: Sequence[str] = (),
    collapsed: bool | None = None,
    headers: Mapping[str, str] | None = None,
) -> Table | None:
    """A DataFrame as a table view: identifying columns dropped (and said), cells formatted.

    ``columns`` names the columns to show, or a key of ``[columns]`` in report_text.toml.
    """
    if frame is None:
        return None
    data = frame
    if data.index.name is not None or isinstance(data.index, pd.MultiIndex):
        data = data.reset_index()
    if isinstance(columns, str):
        columns = list(report_words()["columns"][columns])
    if columns is not None:
        chosen = [c for c in columns if c in data.columns]
        if chosen:
            data = data[chosen]
    dropped = [str(c) for c in data.columns if is_identifying(c)]
    if dropped:
        data = data.drop(columns=dropped)
        notes = (
            *notes,
            "Left out because it may identify a patient: " + ", ".join(dropped) + ".",
        )
    names = [str(c) for c in data.columns]
    rows = tuple(
        tuple(cell(value, name) for value, name in zip(record, names, strict=True))
        for record in data.itertuples(index=False, name=None)
    )
    return Table(
        headers=tuple((headers or {}).get(c) or header(c) for c in names),
        rows=rows,
        caption=caption,
        notes=tuple(notes),
        collapsed=len(rows) > COLLAPSE_ROWS if collapsed is None else collapsed,
    )


def text_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str = "",
    notes: Sequence[str] = (),
    header_groups: Sequence[Cell] = (),
    css: str = "",
) -> Table:
    built = tuple(
        tuple(value if isinstance(value, Cell) else cell(value) for value in row) for row in rows
    )
    return Table(
        headers=tuple(headers),
        rows=built,
        caption=caption,
        notes=tuple(notes),
        collapsed=len(built) > COLLAPSE_ROWS,
        header_groups=tuple(header_groups),
        css=css,
    )


def has_rows(frame: pd.DataFrame | None) -> bool:
    return frame is not None and not frame.empty


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "table"


def _table_csv(table: Table, path: Path) -> None:
    """Write a table view as CSV (atomically): its headers and the cells as the report prints
    them."""
    import csv

    with (
        atomic_path(path) as temporary,
        temporary.open("w", encoding="utf-8", newline="") as handle,
    ):
        writer = csv.writer(handle)
        if any(table.headers):
            writer.writerow(table.headers)
        for row in table.rows:
            writer.writerow([c.text for c in row])


def attach_csv(sections: Sequence[Section], out: Path) -> list[str]:
    """Give every table of every section a CSV copy under ``tables/`` and link it; the CSVs
    written (``tables/<section>-<n>.csv``)."""
    written: list[str] = []
    for section in sections:
        count = 0

        def visit(value: Any, section_id: str = section.id) -> Any:
            nonlocal count
            if isinstance(value, Table):
                count += 1
                name = f"tables/{_file_part(section_id)}-{count}.csv"
                _table_csv(value, out / name)
                written.append(name)
                return dataclasses.replace(value, csv=name)
            if isinstance(value, dict):
                for key in list(value):
                    value[key] = visit(value[key])
                return value
            if isinstance(value, list):
                return [visit(v) for v in value]
            return value

        visit(section.body)
    return written


def plan_rows(plan: AnalysisPlan) -> list[tuple[str, str]]:
    """The analysis plan as (what, value) rows for the overview."""
    response = plan.response
    landmark = (
        f"PFS event by {response.landmark_weeks:g} weeks"
        if response.landmark_weeks > 0
        else f"{response.column} in {', '.join(response.progression)}"
    )
    split = plan.split if isinstance(plan.split, str) else f"fixed at {plan.split:g}"
    return [
        ("Uptake metric", header(plan.uptake_metric)),
        ("Per-patient value", plan.patient_aggregate.replace("_", " ")),
        ("Survival split", f"{split} ({plan.split_aggregate.replace('_', ' ')} per patient)"),
        ("Series", f"{plan.reference_series} (reference), {plan.comparison_series}"),
        ("Progression", f"{landmark}; not evaluable: {response.ne_rule}"),
        ("Response categories", ", ".join(response.categories)),
        ("IHC markers", ", ".join(f"{m.label} ({m.column})" for m in plan.ihc) or DASH),
        ("Tumour-to-blood lesions", plan.tumour_to_blood_lesions),
        ("Biodistribution cohort", plan.biodistribution_cohort),
    ]
