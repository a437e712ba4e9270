"""Uptake against response, IHC and survival, as the analysis plan says.

The parts of :func:`~immunopet.analysis.assemble.assemble_analysis` that join uptake with the
clinical sheet: the lesion-level group tests (progression at the landmark, response
categories), the patient-level IHC tests (one Kruskal-Wallis and one Spearman per marker of
``[[analysis.ihc]]``), the cohort survival, the survival split and the biomarker comparison.
Every test result carries the medians of its groups in ``extra`` (``"median <group>"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import numpy as np
import pandas as pd

from immunopet.analysis.aggregates import PatientUptake, join_clinical
from immunopet.analysis.outcome import (
    AGGREGATE_COLUMNS,
    AGGREGATE_LABELS,
    METRIC_LABELS,
    NotApplicableError,
    ihc_group_labels,
    ihc_groups,
    progression_at_landmark,
    split_threshold,
)
from immunopet.analysis.results import SplitSurvival
from immunopet.errors import ImmunoPETError
from immunopet.stats import (
    DAYS_PER_MONTH,
    compare_biomarkers,
    cox_hazard_ratio,
    kaplan_meier,
    kruskal_wallis,
    logrank,
    mann_whitney,
    restricted_mean_survival,
    spearman,
    survival_summary,
)
from immunopet.stats.results import BiomarkerComparison, CoxResult, SurvivalSummary, TestResult
from immunopet.study.model import AnalysisPlan, IhcMarker

__all__ = [
    "NON_INDEPENDENCE_NOTE",
    "biomarkers",
    "cohort_survival",
    "ihc_kruskal_key",
    "ihc_spearman_key",
    "lesion_response",
    "patients_clinical",
    "progression_key",
    "response_key",
    "split_survival",
    "test_by_category",
    "test_progression",
]

NON_INDEPENDENCE_NOTE: Final = (
    "lesions are the unit of this test: several lesions of one patient are not independent "
    "observations, so the p-value is optimistic (as in the study's own analysis)"
)
"""Said with every test whose observations are lesions."""

_EXTRA_MARKER: Final = re.compile(r"^rnaseq|_score$", re.IGNORECASE)
_GROUP_COLUMNS: Final = ("tumour_type", "tumor_type")


# ---------------------------------------------------------------------------- titles
def progression_key(plan: AnalysisPlan) -> str:
    """Title of the progression test, e.g. "SUVpeak: progression at 6 weeks (Mann-Whitney)"."""
    weeks = plan.response.landmark_weeks
    when = f" at {weeks:g} weeks" if weeks > 0 else ""
    return f"{METRIC_LABELS[plan.uptake_metric]}: progression{when} (Mann-Whitney)"


def response_key(plan: AnalysisPlan) -> str:
    """Title of the response-category test."""
    what = "best overall response" if plan.response.column == "bor" else plan.response.column
    return f"{METRIC_LABELS[plan.uptake_metric]}: {what} (Kruskal-Wallis)"


def _per_patient(plan: AnalysisPlan) -> str:
    aggregate = AGGREGATE_LABELS[plan.patient_aggregate]
    return f"{aggregate} {METRIC_LABELS[plan.uptake_metric]} per patient"


def ihc_kruskal_key(plan: AnalysisPlan, marker: IhcMarker) -> str:
    """Title of a marker's group test."""
    return f"{_per_patient(plan)}: {marker.label} group (Kruskal-Wallis)"


def ihc_spearman_key(plan: AnalysisPlan, marker: IhcMarker) -> str:
    """Title of a marker's rank correlation."""
    return f"{_per_patient(plan)} vs {marker.label} (Spearman)"


# ---------------------------------------------------------------------------- helpers
def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _with_medians(result: TestResult, groups: dict[str, pd.Series], *, lesions: bool) -> TestResult:
    extra = dict(result.extra)
    for label, values in groups.items():
        numbers = values.dropna().to_numpy(dtype=float)
        extra[f"median {label}"] = float(np.median(numbers)) if len(numbers) else math.nan
    notes = (*result.notes, NON_INDEPENDENCE_NOTE) if lesions else result.notes
    return replace(result, extra=extra, notes=notes)


def lesion_response(
    uptake: PatientUptake,
    clinical: pd.DataFrame,
    plan: AnalysisPlan,
    notes: list[str],
    problems: list[str] | None = None,
) -> pd.DataFrame:
    """Lesions of the analysis joined with the clinical columns and ``progression``.

    Patients without a clinical row are left out, with a note (in ``notes``, and in
    ``problems``: the tests then run on fewer patients than were measured)."""
    known = set(clinical["patient"].astype(str))
    lesions = uptake.lesions
    missing = sorted(set(lesions["patient"].astype(str)) - known)
    if missing:
        note = (
            "lesions of patient(s) without a clinical row left out of the response analyses: "
            + ", ".join(missing)
        )
        notes.append(note)
        if problems is not None:
            problems.append(note)
    kept = lesions[lesions["patient"].astype(str).isin(known)].reset_index(drop=True)
    joined = join_clinical(kept, clinical)
    flag = progression_at_landmark(clinical, plan.response)
    joined["progression"] = pd.array(
        flag.reindex(joined["patient"].astype(str).to_numpy()).to_numpy(), dtype="boolean"
    )
    if plan.response.column in clinical.columns and plan.response.column not in joined.columns:
        column = clinical.set_index(clinical["patient"].astype(str))[plan.response.column]
        joined[plan.response.column] = column.reindex(joined["patient"].astype(str)).to_numpy()
    joined["value"] = _numeric(joined[uptake.metric])
    return joined


def patients_clinical(
    uptake: PatientUptake, clinical: pd.DataFrame, plan: AnalysisPlan
) -> pd.DataFrame:
    """Per-patient uptake (``uptake`` = the plan's aggregate) with the clinical columns."""
    known = set(clinical["patient"].astype(str))
    rows = uptake.patients[uptake.patients["patient"].astype(str).isin(known)]
    out = join_clinical(rows.reset_index(drop=True), clinical)
    out["uptake"] = _numeric(out[AGGREGATE_COLUMNS[plan.patient_aggregate]])
    out["split_uptake"] = _numeric(out[AGGREGATE_COLUMNS[plan.split_aggregate]])
    sheet = clinical.set_index(clinical["patient"].astype(str))
    for marker in plan.ihc:
        if marker.column not in sheet.columns:
            continue
        values = _numeric(sheet[marker.column]).reindex(out["patient"].astype(str))
        out[marker.column] = values.to_numpy()
        out[f"{marker.column}_group"] = ihc_groups(values, marker.cutoffs).to_numpy()
    return out


# ---------------------------------------------------------------------------- tests
def test_progression(table: pd.DataFrame, plan: AnalysisPlan) -> TestResult:
    """Mann-Whitney U of lesion values without vs with progression at the landmark."""
    weeks = plan.response.landmark_weeks
    when = f" at {weeks:g} wk" if weeks > 0 else ""
    values = table["value"]
    flag = table["progression"]
    groups = {
        f"no progression{when}": values[flag.eq(False).fillna(False).to_numpy(dtype=bool)],
        f"progression{when}": values[flag.eq(True).fillna(False).to_numpy(dtype=bool)],
    }
    empty = [label for label, v in groups.items() if v.dropna().empty]
    if empty:
        raise NotApplicableError(f"no lesions in the group {' / '.join(empty)}")
    first, second = groups
    result = mann_whitney(groups[first], groups[second], labels=(first, second))
    return _with_medians(result, groups, lesions=True)


def test_by_category(
    frame: pd.DataFrame,
    value_column: str,
    category_column: str,
    order: Sequence[str],
    *,
    lesions: bool,
) -> TestResult:
    """Kruskal-Wallis H of ``value_column`` over the categories present (in ``order``)."""
    if category_column not in frame.columns:
        raise NotApplicableError(f"no column {category_column!r}")
    values = _numeric(frame[value_column])
    categories = frame[category_column].astype("string").str.strip()
    groups = {
        label: values[(categories == label).fillna(False).to_numpy(dtype=bool)].dropna()
        for label in order
    }
    groups = {label: v for label, v in groups.items() if len(v)}
    if len(groups) < 2:
        raise NotApplicableError(
            f"fewer than two {category_column} groups with values ({', '.join(groups) or 'none'})"
        )
    result = kruskal_wallis(*groups.values(), labels=list(groups))
    return _with_medians(result, groups, lesions=lesions)


def ihc_tests(patients: pd.DataFrame, plan: AnalysisPlan) -> dict[str, TestResult | Exception]:
    """Per marker: the Kruskal-Wallis over its groups and the Spearman correlation."""
    out: dict[str, TestResult | Exception] = {}
    for marker in plan.ihc:
        kw_key, rho_key = ihc_kruskal_key(plan, marker), ihc_spearman_key(plan, marker)
        if marker.column not in patients.columns:
            missing = NotApplicableError(f"no clinical column {marker.column!r}")
            out[kw_key] = out[rho_key] = missing
            continue
        try:
            out[kw_key] = test_by_category(
                patients,
                "uptake",
                f"{marker.column}_group",
                ihc_group_labels(marker.cutoffs),
                lesions=False,
            )
        except NotApplicableError as exc:
            out[kw_key] = exc
        pairs = patients[["uptake", marker.column]].dropna()
        if len(pairs) < 3:
            out[rho_key] = NotApplicableError(f"fewer than 3 patients with {marker.label}")
        else:
            out[rho_key] = spearman(pairs["uptake"], pairs[marker.column])
    return out


# ---------------------------------------------------------------------------- survival
def _restricted(days: pd.Series, events: pd.Series) -> tuple[float, float]:
    mean, horizon = restricted_mean_survival(days, events)
    return mean / DAYS_PER_MONTH, horizon / DAYS_PER_MONTH


def cohort_survival(clinical: pd.DataFrame, endpoint: str) -> tuple[SurvivalSummary, float]:
    """Median (SPSS interval) and restricted mean (months) of one endpoint for everyone."""
    key = endpoint.lower()
    days = _numeric(clinical[f"{key}_days"])
    events = _numeric(clinical[f"{key}_event"])
    keep = days.notna() & events.notna()
    if not keep.any():
        raise NotApplicableError(f"no {endpoint} durations")
    summary = survival_summary(
        days[keep], events[keep], ci="spss", label=endpoint, time_unit="days"
    ).rescaled(DAYS_PER_MONTH, "months")
    dropped = int((~keep).sum())
    if dropped:
        summary = replace(
            summary, notes=(*summary.notes, f"{dropped} patient(s) without {endpoint} data")
        )
    return summary, _restricted(days[keep], events[keep])[0]


def split_survival(
    patients: pd.DataFrame,
    lesion_values: pd.Series,
    endpoint: str,
    plan: AnalysisPlan,
    notes: list[str],
) -> SplitSurvival:
    """Kaplan-Meier by the plan's split of per-patient uptake: medians, RMST, log-rank, HR."""
    key = endpoint.lower()
    data = pd.DataFrame(
        {
            "patient": patients["patient"].astype(str),
            "uptake": _numeric(patients["split_uptake"]),
            "duration_days": _numeric(patients[f"{key}_days"]),
            "event": _numeric(patients[f"{key}_event"]),
        }
    ).dropna()
    if len(data) < 2:
        raise NotApplicableError(f"fewer than two patients with uptake and {endpoint} data")
    threshold, rule = split_threshold(plan.split, lesion_values, patients["split_uptake"])
    data = data.reset_index(drop=True)
    data.insert(2, "group", np.where(data["uptake"] > threshold, "high", "low"))
    data["event"] = data["event"].astype("int64")
    summaries: dict[str, SurvivalSummary] = {}
    curves = {}
    restricted: dict[str, float] = {}
    for group in ("high", "low"):
        part = data[data["group"] == group]
        if len(part):
            summaries[group] = survival_summary(
                part["duration_days"],
                part["event"],
                ci="spss",
                label=f"{endpoint}, {group} uptake",
                time_unit="days",
            ).rescaled(DAYS_PER_MONTH, "months")
            curves[group] = kaplan_meier(
                part["duration_days"].to_numpy(dtype=float) / DAYS_PER_MONTH,
                part["event"].to_numpy(dtype=float),
                label=f"{group} uptake (n = {len(part)})",
            )
            restricted[group] = _restricted(part["duration_days"], part["event"])[0]
    base = SplitSurvival(
        endpoint,
        data,
        threshold,
        summaries,
        threshold_rule=rule,
        curves=curves,
        restricted_mean=restricted,
    )
    if len(summaries) < 2:
        notes.append(
            f"{endpoint} by uptake: every patient is in one group ({rule} = {threshold:.3g}); "
            "no log-rank test or hazard ratio"
        )
        return base
    test = logrank(data["duration_days"], data["event"], data["group"])
    covariate = data.assign(high_uptake=(data["group"] == "high").astype("float64"))
    cox: CoxResult | None
    try:
        with np.errstate(over="ignore"):  # a separated fit has an infinite upper limit
            cox = cox_hazard_ratio(covariate, "duration_days", "event", ["high_uptake"])
    except ImmunoPETError as exc:
        notes.append(f"{endpoint} by uptake: Cox hazard ratio not computed ({exc})")
        cox = None
    return replace(base, logrank=test, cox=cox)


# ---------------------------------------------------------------------------- biomarkers
def _biomarker_table(
    clinical: pd.DataFrame, uptake: PatientUptake | None, plan: AnalysisPlan, notes: list[str]
) -> tuple[pd.DataFrame, list[str], str | None, str | None]:
    """Candidates as columns of the clinical sheet, the responder flag, the group column and
    the PET candidate's label (the reference of the paired comparisons; None without it)."""
    table = clinical.copy()
    table["patient"] = table["patient"].astype(str)
    candidates: list[str] = []
    reference: str | None = None
    labels = {m.column: m.label for m in plan.ihc}
    wanted = list(plan.biomarkers)
    wanted += [str(c) for c in clinical.columns if _EXTRA_MARKER.search(str(c))]
    for name in dict.fromkeys(wanted):
        if name == "uptake":
            if uptake is None:
                notes.append("biomarker 'uptake': no per-patient uptake; left out")
                continue
            column = AGGREGATE_COLUMNS[plan.patient_aggregate]
            per_patient = uptake.patients.loc[:, ["patient", column]].copy()
            per_patient["patient"] = per_patient["patient"].astype(str)
            label = f"{_per_patient(plan).replace(' per patient', '')} of lesions"
            values = per_patient.set_index("patient")[column].reindex(table["patient"])
            table[label] = _numeric(pd.Series(values.to_numpy()))
            candidates.append(label)
            reference = label
            continue
        if name not in clinical.columns:
            notes.append(f"biomarker column {name!r} not in the clinical sheet; left out")
            continue
        values = pd.to_numeric(clinical[name], errors="coerce")
        lost = int((values.isna() & clinical[name].notna()).sum())
        if values.notna().sum() == 0:
            notes.append(f"biomarker column {name!r} has no numbers; left out")
            continue
        if lost and not name.endswith("_percent"):
            notes.append(f"biomarker column {name!r}: {lost} non-numeric value(s) ignored")
        label = labels.get(name, name)
        table[label] = values.astype("float64").to_numpy()
        candidates.append(label)
    response = table[plan.response.column].astype("string").str.strip().str.upper()
    responders = {c.upper() for c in plan.response.responders}
    unknown = {c.upper() for c in plan.response.not_evaluable}
    table["responder"] = np.where(
        response.isin(responders).fillna(False),
        1.0,
        np.where(response.isin(unknown).fillna(True), np.nan, 0.0),
    )
    group = next((c for c in _GROUP_COLUMNS if c in table.columns), None)
    if group is not None and table[group].nunique(dropna=True) < 2:
        group = None
    return table, candidates, group, reference


def biomarkers(
    clinical: pd.DataFrame, uptake: PatientUptake | None, plan: AnalysisPlan, notes: list[str]
) -> BiomarkerComparison:
    """The plan's candidate biomarkers compared for response, PFS and OS.

    Every candidate is compared with the per-patient PET uptake (``p_vs_pet``; DeLong for the
    AUC, the infinitesimal-jackknife z-test for Harrell's C), overall and per tumour type;
    without PET uptake the first candidate is the reference.
    """
    table, candidates, group, reference = _biomarker_table(clinical, uptake, plan, notes)
    if not candidates:
        raise NotApplicableError("no candidate biomarker with values")
    result = compare_biomarkers(
        table,
        candidates=candidates,
        response_col="responder",
        pfs=("pfs_days", "pfs_event"),
        os=("os_days", "os_event"),
        group_col=group,
        reference=reference,
    )
    extra = (
        f"response = {plan.response.column} in {', '.join(plan.response.responders)} "
        f"({', '.join(plan.response.not_evaluable)}: unknown, left out)"
    )
    return replace(result, notes=(*result.notes, extra))
