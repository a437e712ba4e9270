"""The analysis of a study: every table, number and result object any output shows.

:func:`immunopet.analysis.assemble.assemble_analysis` fills a :class:`StudyAnalysis` from the
results store, the study's inputs and its analysis plan; :mod:`immunopet.analysis.export`
writes its tables to ``RESULTS_DIR/analysis/``; :mod:`immunopet.report.figures` draws from it
and :mod:`immunopet.report.html` arranges it (neither computes anything). Each part may be
``None`` (or empty) when the study lacks the inputs for it (no blood samples, no clinical
sheet ...); the report then says so instead of showing an empty section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from immunopet.analysis.aggregates import PatientUptake
from immunopet.analysis.heterogeneity import UptakeHeterogeneity
from immunopet.analysis.lesions import LesionVisibility, TimePointChoice
from immunopet.analysis.target_engagement import TargetEngagement
from immunopet.stats import KaplanMeier
from immunopet.stats.results import (
    BiomarkerComparison,
    CoxResult,
    LogRankResult,
    SurvivalSummary,
    TestResult,
)
from immunopet.study.model import AnalysisPlan, AnalysisSettings

__all__ = ["SplitSurvival", "StudyAnalysis"]


@dataclass(frozen=True)
class SplitSurvival:
    """Survival by median split of per-patient uptake, for one endpoint (PFS or OS).

    Attributes
    ----------
    endpoint : {"PFS", "OS"}
    data : DataFrame
        One row per patient: patient, uptake, group ("high"/"low"), duration_days, event.
    threshold : float
        The uptake that splits the groups (unit of the metric): "high" above it.
    summaries : dict of str to SurvivalSummary
        Median survival per group (months).
    logrank : LogRankResult or None
    cox : CoxResult or None
        Hazard ratio of high vs low uptake.
    threshold_rule : str
        How the threshold was found, in words ("median of all 27 lesions").
    curves : dict of str to KaplanMeier
        The fitted curve of each group, times in months (for the figure).
    restricted_mean : dict of str to float
        Restricted mean survival per group (months, up to the group's largest time).
    """

    endpoint: str
    data: pd.DataFrame
    threshold: float
    summaries: dict[str, SurvivalSummary]
    logrank: LogRankResult | None = None
    cox: CoxResult | None = None
    threshold_rule: str = ""
    curves: dict[str, KaplanMeier] = field(default_factory=dict)
    restricted_mean: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the report shows, computed once.

    Attributes
    ----------
    name, tracer : str
        From the manifest.
    settings : AnalysisSettings
        The choices that changed numbers (also in ``provenance``).
    scans, measurements, failures : DataFrame
        The results store's tables (``failures`` may be empty).
    schedule : DataFrame
        Scan schedule: one row per scan (patient, series, nominal_hours, hours_pi).
    baseline, baseline_summary, adverse_events : DataFrame or None
        Table 1 layout and its summary; the safety table (term, any grade, grade 3-4).
    organ_uptake, predose_ratio : DataFrame or None
        Biodistribution (SUVmean per organ x series x time point) and predose/tracer-only.
    blood, blood_vs_image : DataFrame or None
        Blood samples as %IA/L (tidy) and their comparison with the image blood pool.
    visibility : LesionVisibility or None
    tumour_to_blood : DataFrame or None
        Tumour-to-blood-pool ratio per series x time point.
    time_point : TimePointChoice or None
        The recommended analysis time point.
    uptake : PatientUptake or None
        Per-patient uptake at the analysis time point, with exclusions.
    lesion_response : DataFrame or None
        Per-lesion uptake joined with the clinical response (for group tests and figures).
    tests : dict of str to TestResult
        Group tests and correlations, keyed by a short title
        (e.g. ``"SUVpeak: progression at 6 weeks (Mann-Whitney)"``).
    cohort_survival : dict of str to SurvivalSummary
        Median PFS and OS of the whole cohort (SPSS-style CI), keyed "PFS"/"OS".
    split_survival : dict of str to SplitSurvival
        Keyed "PFS"/"OS".
    biomarkers : BiomarkerComparison or None
    heterogeneity : UptakeHeterogeneity or None
        Variance components of log lesion uptake (tumour type, patient, lesion) and the
        lesions behind them.
    fdg_lesions : pandas.DataFrame or None
        FDG positivity of each lesion on its FDG reference scan next to the reader's flag
        (:func:`~immunopet.analysis.fdg.fdg_positivity`); None without FDG scans.
    plan : AnalysisPlan
        The analysis plan that made these numbers (the manifest's ``[analysis]``).
    patient_clinical : DataFrame or None
        Per-patient uptake joined with the clinical sheet: ``uptake`` (the plan's
        ``patient_aggregate``), ``split_uptake``, each IHC marker and its ``<column>_group``.
    test_roles : dict of str to str
        Role -> key of :attr:`tests`: ``"progression"``, ``"response"``, ``"ihc:<column>"``
        (Kruskal-Wallis) and ``"ihc-rank:<column>"`` (Spearman).
    cohort_restricted_mean : dict of str to float
        Restricted mean PFS and OS of the cohort (months).
    blood_summary : DataFrame or None
        Blood activity per series and sample time over the biodistribution cohort: series,
        sample, matrix, n, hours_pi_mean, mean, sd, cohort.
    biodistribution_cohort : dict of str to list of str
        The patients of the organ and blood curves, per series.
    visibility_extra : DataFrame or None
        Lesions seen only on the comparison series (count, of them >= the size limit).
    target_engagement : TargetEngagement or None
        Patlak Ki and VT per VOI with their summaries against the non-specific baselines of
        Jauw et al., the paired tracer-only vs predose comparison, the Patlak plot points,
        and the time-integrated activity and residence times
        (:func:`~immunopet.analysis.target_engagement.target_engagement`).
    tables : dict of str to DataFrame
        The machine-readable tables of ``RESULTS_DIR/analysis/`` (see
        :mod:`immunopet.analysis.export`).
    warnings : list of str
        Every warning recorded by the run and by the analysis (no patient identifiers).
    provenance : dict
        Package version, parameters, input hashes (from the store).
    notes : list of str
        Why a section is absent or how a choice was made (shown in the report).
    problems : list of str
        The notes of parts not computed because an input is wrong (a lesion table whose
        lesions are not the measured ones, say), not merely absent: the command line shows
        them too.
    """

    name: str
    tracer: str
    settings: AnalysisSettings
    scans: pd.DataFrame
    measurements: pd.DataFrame
    failures: pd.DataFrame
    schedule: pd.DataFrame
    baseline: pd.DataFrame | None = None
    baseline_summary: pd.DataFrame | None = None
    adverse_events: pd.DataFrame | None = None
    organ_uptake: pd.DataFrame | None = None
    predose_ratio: pd.DataFrame | None = None
    blood: pd.DataFrame | None = None
    blood_vs_image: pd.DataFrame | None = None
    visibility: LesionVisibility | None = None
    tumour_to_blood: pd.DataFrame | None = None
    time_point: TimePointChoice | None = None
    uptake: PatientUptake | None = None
    lesion_response: pd.DataFrame | None = None
    tests: dict[str, TestResult] = field(default_factory=dict)
    cohort_survival: dict[str, SurvivalSummary] = field(default_factory=dict)
    split_survival: dict[str, SplitSurvival] = field(default_factory=dict)
    biomarkers: BiomarkerComparison | None = None
    heterogeneity: UptakeHeterogeneity | None = None
    fdg_lesions: pd.DataFrame | None = None
    plan: AnalysisPlan = field(default_factory=AnalysisPlan)
    patient_clinical: pd.DataFrame | None = None
    test_roles: dict[str, str] = field(default_factory=dict)
    cohort_restricted_mean: dict[str, float] = field(default_factory=dict)
    blood_summary: pd.DataFrame | None = None
    biodistribution_cohort: dict[str, list[str]] = field(default_factory=dict)
    visibility_extra: pd.DataFrame | None = None
    target_engagement: TargetEngagement | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
