"""The last two sections of the HTML report: warnings and provenance (split out of
:mod:`immunopet.report.html`, which renders them; they only arrange what the analysis holds).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from immunopet import __version__
from immunopet.analysis.results import StudyAnalysis
from immunopet.report._cells import (
    DASH,
    Cell,
    Table,
    cell,
    format_cell,
    frame_table,
    has_rows,
    header,
    is_identifying,
    text_table,
)

__all__ = ["as_time", "provenance_body", "warnings_body"]


def as_time(value: Any) -> str:
    """A run time (datetime or ISO text) as ``YYYY-MM-DD HH:MM``; other text unchanged."""
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError:
            return value
    return format_cell(value)


def _warning_groups(warnings: Sequence[str]) -> Table:
    """Identical messages merged, with their count and where they came from."""
    merged: dict[str, tuple[int, list[str]]] = {}
    for text in warnings:
        match = re.match(r"^([^\s:]+): (.+)$", text.strip(), flags=re.DOTALL)
        source, message = (match.group(1), match.group(2)) if match else ("", text.strip())
        count, sources = merged.get(message, (0, []))
        if source and source not in sources:
            sources.append(source)
        merged[message] = (count + 1, sources)
    rows = []
    for message, (count, sources) in sorted(merged.items(), key=lambda kv: -kv[1][0]):
        shown = ", ".join(sources[:8])
        if len(sources) > 8:
            shown += f" and {len(sources) - 8} more"
        rows.append((message, Cell(str(count), numeric=True), shown or DASH))
    return text_table(
        ["Warning", "Times", "From"],
        rows,
        caption=f"{len(warnings)} warnings recorded, {len(merged)} different.",
    )


def warnings_body(analysis: StudyAnalysis) -> dict[str, Any]:
    failures = analysis.failures
    return {
        "table": _warning_groups(analysis.warnings) if analysis.warnings else None,
        "failures": frame_table(
            failures,
            columns="failures",
            caption="Scans that failed (left out of every table above).",
        )
        if has_rows(failures)
        else None,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def provenance_body(analysis: StudyAnalysis) -> dict[str, Any] | None:
    if not analysis.provenance:
        return None
    simple: list[tuple[str, Any]] = []
    nested: list[Table] = []
    dropped = []
    for key, raw in analysis.provenance.items():
        if is_identifying(key):
            dropped.append(str(key))
            continue
        value = _json_value(raw)
        if str(key).endswith("path") and isinstance(value, str) and value:
            value = Path(value).name  # where the run's files were is not the reader's business
        elif str(key).endswith("_at") and value:
            value = as_time(value)
        if isinstance(value, Mapping):
            rows = [
                (str(k), cell(_compact(v), str(k)))
                for k, v in value.items()
                if not is_identifying(k)
            ]
            table = text_table([header(key), "Value"], rows, caption=header(key) + ".")
            nested.append(table)
        else:
            simple.append((header(key), cell(_compact(value), str(key))))
    notes = (
        ["Left out because it may identify a patient: " + ", ".join(dropped) + "."]
        if dropped
        else []
    )
    return {
        "table": text_table(["Item", "Value"], simple, notes=notes, css="facts"),
        "nested": nested,
        "version": __version__,
    }


def _compact(value: Any) -> Any:
    """A provenance value for one cell: floats as given (``:g``), nested values as JSON."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, list | tuple) and any(isinstance(v, Mapping | list) for v in value):
        return json.dumps(value, default=str)
    return value
