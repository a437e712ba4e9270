"""The analysis as machine-readable tables: ``RESULTS_DIR/analysis/``.

:func:`analysis_tables` turns a :class:`~immunopet.analysis.results.StudyAnalysis` into tidy
tables with stable names and columns; :func:`write_analysis_tables` writes each as CSV and all
of them once more in one JSON file (``analysis.json``: table name -> list of rows) so that a
statistician can check every number of the report without reading HTML.

==========================  ==============================================================
table                       key columns
==========================  ==============================================================
lesion_uptake               patient, series, lesion, nominal_hours, value, long_axis_mm,
                            included, reason (+ metric, hours_pi, rule, suggested_exclusion:
                            the pipeline's suggested but unapplied exclusion, "" when none)
patient_uptake              patient, uptake, n_lesions, metric, aggregate (+ series,
                            nominal_hours, fallback, median, mean, geometric_mean, maximum)
tests                       analysis, test, statistic, p_value, n, groups, group_medians
                            (+ statistic_name, unit, method, p_exact)
survival                    endpoint, group, n, events, median, ci_lower, ci_upper,
                            restricted_mean, threshold (+ threshold_rule, time_unit, logrank_p,
                            hazard_ratio, hr_lower, hr_upper)
biodistribution             organ, series, nominal_hours, n, mean, sd, cohort (+ median,
                            minimum, maximum, hours_pi_mean)
biomarkers                  candidate, endpoint, tumour_type, n, auc_or_c, ci_lower, ci_upper,
                            p_vs_pet (+ n_positive, ci_method, separation, reference), when
                            computed
heterogeneity               level, variance, share, icc, n (variance components of log lesion
                            uptake), when computed
kinetics,                   Patlak target engagement and time-integrated activity, when
time_integrated_activity,   computed: every fit and integral, their summaries and the
residence_times,            Patlak plots' points (:func:`~immunopet.analysis.
kinetics_summary,           target_engagement.kinetics_tables`)
kinetics_paired,
kinetics_flagged,
kinetics_flag_summary,
patlak_points,
residence_time_summary
==========================  ==============================================================

The Mann-Whitney ``statistic`` is the smaller of U1 and U2, as SPSS prints it. Survival times
are in months (days / 30.4375).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from immunopet.analysis.outcome import AGGREGATE_COLUMNS
from immunopet.analysis.results import StudyAnalysis
from immunopet.analysis.target_engagement import kinetics_tables
from immunopet.io.atomic import atomic_path, write_text_atomically
from immunopet.stats.results import TestResult

__all__ = [
    "ANALYSIS_FOLDER",
    "OPTIONAL_TABLES",
    "TABLE_COLUMNS",
    "analysis_tables",
    "write_analysis_tables",
]

ANALYSIS_FOLDER: Final = "analysis"
"""The folder of the tables inside the results folder."""

OPTIONAL_TABLES: Final = (
    "biomarkers",
    "heterogeneity",
    "fdg_lesions",
    "kinetics",
    "time_integrated_activity",
    "residence_times",
    "kinetics_summary",
    "kinetics_paired",
    "kinetics_flagged",
    "kinetics_flag_summary",
    "patlak_points",
    "residence_time_summary",
)
"""The tables written only when their part of the analysis is computed. When it is not, the
file an earlier analysis left is removed: it holds another analysis's numbers."""

TABLE_COLUMNS: Final = {
    "lesion_uptake": (
        "patient",
        "series",
        "lesion",
        "nominal_hours",
        "hours_pi",
        "metric",
        "value",
        "long_axis_mm",
        "included",
        "rule",
        "reason",
        "suggested_exclusion",
    ),
    "patient_uptake": (
        "patient",
        "series",
        "nominal_hours",
        "fallback",
        "metric",
        "aggregate",
        "uptake",
        "n_lesions",
        "median",
        "mean",
        "geometric_mean",
        "maximum",
    ),
    "tests": (
        "analysis",
        "test",
        "statistic_name",
        "statistic",
        "p_value",
        "p_exact",
        "n",
        "unit",
        "groups",
        "group_medians",
        "method",
    ),
    "survival": (
        "endpoint",
        "group",
        "n",
        "events",
        "median",
        "ci_lower",
        "ci_upper",
        "restricted_mean",
        "time_unit",
        "threshold",
        "threshold_rule",
        "logrank_p",
        "hazard_ratio",
        "hr_lower",
        "hr_upper",
    ),
    "biodistribution": (
        "organ",
        "series",
        "nominal_hours",
        "n",
        "mean",
        "sd",
        "median",
        "minimum",
        "maximum",
        "hours_pi_mean",
        "cohort",
    ),
}
"""Columns of each table, in order."""


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(TABLE_COLUMNS[name]))


def _lesion_uptake(analysis: StudyAnalysis) -> pd.DataFrame:
    uptake = analysis.uptake
    if uptake is None:
        return _empty("lesion_uptake")
    metric = uptake.metric
    used = uptake.lesions

    def column(name: str, *, text: bool = False) -> pd.Series:
        if name not in used.columns:
            fill = uptake.series if name == "series" else math.nan
            return pd.Series(fill, index=used.index)
        values = used[name]
        return values.astype(str) if text else pd.to_numeric(values).astype(float)

    included = pd.DataFrame(
        {
            "patient": column("patient", text=True),
            "series": column("series", text=True),
            "lesion": column("lesion", text=True),
            "nominal_hours": column("nominal_hours"),
            "hours_pi": column("hours_pi"),
            "metric": metric,
            "value": column(metric),
            "long_axis_mm": column("long_axis_mm"),
            "included": True,
            "rule": "",
            "reason": "",
            "suggested_exclusion": column("suggested_exclusion", text=True)
            if "suggested_exclusion" in used.columns
            else "",
        }
    )
    left = uptake.excluded[uptake.excluded["applied"].astype(bool)]
    measured = analysis.measurements
    lookup: dict[tuple[str, str, str, float], tuple[float, float, float]] = {}
    suggested: dict[tuple[str, str, str, float], str] = {}
    needed = {"patient", "series", "voi", "kind", "nominal_hours", "hours_pi", metric}
    if not measured.empty and needed <= set(measured.columns):
        lesions = measured[measured["kind"].astype(str) == "lesion"]
        for p, s, v, h, hp, value, axis in zip(
            lesions["patient"].astype(str),
            lesions["series"].astype(str),
            lesions["voi"].astype(str),
            pd.to_numeric(lesions["nominal_hours"]).astype(float),
            pd.to_numeric(lesions["hours_pi"]).astype(float),
            pd.to_numeric(lesions[metric], errors="coerce").astype(float),
            pd.to_numeric(lesions.get("long_axis_mm", np.nan), errors="coerce"),
            strict=True,
        ):
            lookup[(p, s, v, float(h))] = (float(hp), float(value), float(axis))
        if "suggested_exclusion" in lesions.columns:
            for p, s, v, h, text in zip(
                lesions["patient"].astype(str),
                lesions["series"].astype(str),
                lesions["voi"].astype(str),
                pd.to_numeric(lesions["nominal_hours"]).astype(float),
                lesions["suggested_exclusion"],
                strict=True,
            ):
                if isinstance(text, str) and text:
                    suggested[(p, s, v, float(h))] = text
    baseline_axis: dict[tuple[str, str], float] = {}
    if analysis.visibility is not None and {"patient", "lesion", "long_axis_mm"} <= set(
        analysis.visibility.per_scan.columns
    ):
        per_scan = analysis.visibility.per_scan
        for p, lesion, axis in per_scan[["patient", "lesion", "long_axis_mm"]].itertuples(
            index=False
        ):
            baseline_axis[(str(p), str(lesion))] = float(axis)
    records = []
    for p, lesion, series, hours, rule, reason in left[
        ["patient", "lesion", "series", "nominal_hours", "rule", "reason"]
    ].itertuples(index=False):
        key = (str(p), str(series), str(lesion), float(hours))
        hours_pi, value, axis = lookup.get(key, (math.nan, math.nan, math.nan))
        records.append(
            {
                "patient": str(p),
                "series": str(series),
                "lesion": str(lesion),
                "nominal_hours": float(hours),
                "hours_pi": hours_pi,
                "metric": metric,
                "value": value,
                "long_axis_mm": baseline_axis.get((str(p), str(lesion)), axis),
                "included": False,
                "rule": str(rule),
                "reason": str(reason),
                "suggested_exclusion": suggested.get(key, ""),
            }
        )
    excluded = pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS["lesion_uptake"]))
    parts = [frame for frame in (included, excluded) if not frame.empty]
    if not parts:
        return _empty("lesion_uptake")
    out = pd.concat(parts, ignore_index=True)
    out["included"] = out["included"].astype(bool)
    out = out.sort_values(["patient", "series", "nominal_hours", "lesion"], kind="stable")
    return out.loc[:, list(TABLE_COLUMNS["lesion_uptake"])].reset_index(drop=True)


def _patient_uptake(analysis: StudyAnalysis) -> pd.DataFrame:
    uptake = analysis.uptake
    if uptake is None:
        return _empty("patient_uptake")
    rows = uptake.patients.reindex(columns=list(TABLE_COLUMNS["patient_uptake"]))
    aggregate = analysis.plan.patient_aggregate
    rows["metric"] = uptake.metric
    rows["aggregate"] = aggregate
    source = uptake.patients.get(AGGREGATE_COLUMNS[aggregate])
    rows["uptake"] = math.nan if source is None else pd.to_numeric(source).astype(float)
    return rows.reset_index(drop=True)


def _statistic(result: TestResult) -> float:
    if result.statistic_name == "U" and "U_min" in result.extra:
        return float(result.extra["U_min"])
    return float(result.statistic)


def _groups_text(result: TestResult) -> str:
    if result.statistic_name == "rho":  # one sample of pairs
        return f"pairs (n = {sum(result.n)})"
    return "; ".join(f"{g} (n = {n})" for g, n in zip(result.groups, result.n, strict=False))


def _tests(analysis: StudyAnalysis) -> pd.DataFrame:
    lesion_keys = {analysis.test_roles.get("progression"), analysis.test_roles.get("response")}
    records = []
    for key, result in analysis.tests.items():
        medians = [
            f"{label}: {float(result.extra[f'median {label}']):.6g}"
            for label in result.groups
            if f"median {label}" in result.extra
        ]
        records.append(
            {
                "analysis": key,
                "test": result.test_name,
                "statistic_name": result.statistic_name,
                "statistic": _statistic(result),
                "p_value": float(result.p_value),
                "p_exact": float(result.extra.get("p_exact", math.nan)),
                "n": int(sum(result.n)),
                "unit": "lesions" if key in lesion_keys else "patients",
                "groups": _groups_text(result),
                "group_medians": "; ".join(medians),
                "method": result.method,
            }
        )
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS["tests"]))


def _survival(analysis: StudyAnalysis) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for endpoint, summary in analysis.cohort_survival.items():
        records.append(
            {
                "endpoint": endpoint,
                "group": "all",
                "n": summary.n,
                "events": summary.events,
                "median": summary.median,
                "ci_lower": summary.lower,
                "ci_upper": summary.upper,
                "restricted_mean": analysis.cohort_restricted_mean.get(endpoint, math.nan),
                "time_unit": summary.time_unit,
                "threshold": math.nan,
                "threshold_rule": "",
            }
        )
    for endpoint, split in analysis.split_survival.items():
        hr = (math.nan, math.nan, math.nan)
        if split.cox is not None and not split.cox.table.empty:
            hr = split.cox.hazard_ratio("high_uptake")
        for group, summary in split.summaries.items():
            records.append(
                {
                    "endpoint": endpoint,
                    "group": group,
                    "n": summary.n,
                    "events": summary.events,
                    "median": summary.median,
                    "ci_lower": summary.lower,
                    "ci_upper": summary.upper,
                    "restricted_mean": split.restricted_mean.get(group, math.nan),
                    "time_unit": summary.time_unit,
                    "threshold": split.threshold,
                    "threshold_rule": split.threshold_rule,
                    "logrank_p": split.logrank.p_value if split.logrank is not None else math.nan,
                    "hazard_ratio": hr[0],
                    "hr_lower": hr[1],
                    "hr_upper": hr[2],
                }
            )
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS["survival"]))


def _biodistribution(analysis: StudyAnalysis) -> pd.DataFrame:
    organs = analysis.organ_uptake
    if organs is None or organs.empty:
        return _empty("biodistribution")
    return organs.reindex(columns=list(TABLE_COLUMNS["biodistribution"])).reset_index(drop=True)


def analysis_tables(analysis: StudyAnalysis) -> dict[str, pd.DataFrame]:
    """The machine-readable tables of an analysis (see the module notes for columns).

    Parameters
    ----------
    analysis : StudyAnalysis

    Returns
    -------
    dict of str to DataFrame
        ``lesion_uptake``, ``patient_uptake``, ``tests``, ``survival``, ``biodistribution``
        (each present, possibly empty), ``biomarkers``, ``heterogeneity``,
        ``fdg_lesions`` and the kinetics tables
        (:func:`~immunopet.analysis.target_engagement.kinetics_tables`) when computed.
    """
    tables = {
        "lesion_uptake": _lesion_uptake(analysis),
        "patient_uptake": _patient_uptake(analysis),
        "tests": _tests(analysis),
        "survival": _survival(analysis),
        "biodistribution": _biodistribution(analysis),
    }
    if analysis.biomarkers is not None:
        tables["biomarkers"] = analysis.biomarkers.summary.reset_index(drop=True)
    if analysis.heterogeneity is not None:
        tables["heterogeneity"] = analysis.heterogeneity.table.reset_index(drop=True)
    if analysis.fdg_lesions is not None:
        tables["fdg_lesions"] = analysis.fdg_lesions.reset_index(drop=True)
    tables.update(kinetics_tables(analysis.target_engagement))
    return tables


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def write_analysis_tables(analysis: StudyAnalysis, results_dir: str | Path) -> Path:
    """Write the analysis tables to ``results_dir/analysis/`` (CSV each, one JSON of all).

    Parameters
    ----------
    analysis : StudyAnalysis
    results_dir : path-like
        The results folder; ``analysis/`` is created in it (files of the same name replaced).
        Each file is written to a temporary name, flushed and renamed into place
        (:func:`~immunopet.io.atomic.atomic_path`): a crash leaves the previous file whole.
        The CSV of an :data:`OPTIONAL_TABLES` table this analysis does not have is removed
        (an earlier analysis's, e.g. before the plan dropped the biomarkers); other files
        are left alone.

    Returns
    -------
    Path
        The ``analysis`` folder.
    """
    folder = Path(results_dir) / ANALYSIS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tables = analysis.tables or analysis_tables(analysis)
    payload: dict[str, Any] = {}
    for name, table in tables.items():
        with atomic_path(folder / f"{name}.csv") as temporary:
            table.to_csv(temporary, index=False)
        payload[name] = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in table.to_dict(orient="records")
        ]
    payload["plan"] = _plan_json(analysis)
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=str)
    write_text_atomically(folder / "analysis.json", text + "\n")
    for name in OPTIONAL_TABLES:
        if name not in tables:
            (folder / f"{name}.csv").unlink(missing_ok=True)
    return folder


def _plan_json(analysis: StudyAnalysis) -> dict[str, Any]:
    from dataclasses import asdict

    return {"analysis": asdict(analysis.plan), "settings": asdict(analysis.settings)}
