"""The ``[analysis]`` table of a manifest: the analysis plan (private to
:mod:`immunopet.study.manifest`).

Checks every key of ``[analysis]``, ``[analysis.response]`` and ``[[analysis.ihc]]`` (type,
choice, range; unknown keys with a suggestion) and builds the
:class:`~immunopet.study.model.AnalysisPlan`; absent keys keep the plan's defaults (the
durvalumab paper's Methods). ``peak`` is accepted here too but belongs to the settings: it is
returned apart for the manifest reader to reconcile with ``[settings]``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Final, get_args

from immunopet.study._manifest_check import Checker, number_list, shown, text_list
from immunopet.study._toml_lines import Key
from immunopet.study.model import (
    SPLIT_RULES,
    AnalysisPlan,
    BiodistributionCohort,
    IhcMarker,
    NotEvaluable,
    PatientAggregate,
    PeakMethod,
    ResponsePlan,
    TumourToBloodLesions,
    UptakeMetric,
)

__all__ = ["build_plan"]

_ANALYSIS_KEYS: Final = (
    *(f.name for f in fields(AnalysisPlan) if f.name not in ("response", "ihc")),
    "response",
    "ihc",
    "peak",
)
_RESPONSE_KEYS: Final = tuple(f.name for f in fields(ResponsePlan))
_IHC_KEYS: Final = ("column", "label", "cutoffs")


def _build_response(c: Checker, data: Any) -> ResponsePlan:
    key: Key = ("analysis", "response")
    table = c.table(data, key, _RESPONSE_KEYS)
    if table is None:
        return ResponsePlan()
    values: dict[str, Any] = {
        "column": c.text(table, "column", key, nonempty=True),
        "categories": text_list(c, table, "categories", key),
        "progression": text_list(c, table, "progression", key),
        "responders": text_list(c, table, "responders", key),
        "not_evaluable": text_list(c, table, "not_evaluable", key),
        "landmark_weeks": c.number(table, "landmark_weeks", key, strict=False),
        "ne_rule": c.choice(table, "ne_rule", key, get_args(NotEvaluable)),
    }
    return ResponsePlan(**{k: v for k, v in values.items() if v is not None})


def _build_ihc(c: Checker, data: Mapping[str, Any]) -> tuple[IhcMarker, ...] | None:
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
        cutoffs = number_list(c, table, "cutoffs", key, increasing=True)
        if column is not None:
            markers.append(IhcMarker(column, label or column, cutoffs or (1.0, 50.0)))
    return tuple(markers)


def build_plan(c: Checker, data: Any) -> tuple[AnalysisPlan, str | None]:
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
        "fallback_hours": number_list(c, table, "fallback_hours", key),
        "reference_series": c.text(table, "reference_series", key, nonempty=True),
        "comparison_series": c.text(table, "comparison_series", key, nonempty=True),
        "tumour_to_blood_lesions": c.choice(
            table, "tumour_to_blood_lesions", key, get_args(TumourToBloodLesions)
        ),
        "biodistribution_cohort": c.choice(
            table, "biodistribution_cohort", key, get_args(BiodistributionCohort)
        ),
        "biomarkers": text_list(c, table, "biomarkers", key),
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
                shown(split),
                " | ".join(SPLIT_RULES) + " | a number",
            )
    if "response" in table:
        values["response"] = _build_response(c, table["response"])
    peak = c.choice(table, "peak", key, get_args(PeakMethod))
    return AnalysisPlan(**{k: v for k, v in values.items() if v is not None}), peak
