"""Statistics of immuno-PET studies: group tests, correlation, survival, biomarkers.

Pure functions over numbers and DataFrames; each returns a result object with ``.summary``,
``.to_html()`` and a readable ``str``. ``median_survival(durations, events, ci="spss")``
returns ``(median, lower, upper)`` with the interval SPSS prints.
"""

from __future__ import annotations

from immunopet.stats.biomarkers import compare_biomarkers
from immunopet.stats.concordance import compare_concordance, concordance
from immunopet.stats.groups import (
    kruskal_wallis,
    mann_whitney,
    pdl1_group,
    spearman,
    wilcoxon_signed_rank,
)
from immunopet.stats.heterogeneity import VarianceComponents, variance_components
from immunopet.stats.results import (
    BiomarkerComparison,
    CoxResult,
    LogRankResult,
    SurvivalSummary,
    TestResult,
)
from immunopet.stats.roc import delong_auc, delong_test
from immunopet.stats.survival import (
    DAYS_PER_MONTH,
    KaplanMeier,
    cox_hazard_ratio,
    kaplan_meier,
    logrank,
    median_split,
    median_survival,
    restricted_mean_survival,
    survival_summary,
)

__all__ = [
    "DAYS_PER_MONTH",
    "BiomarkerComparison",
    "CoxResult",
    "KaplanMeier",
    "LogRankResult",
    "SurvivalSummary",
    "TestResult",
    "VarianceComponents",
    "compare_biomarkers",
    "compare_concordance",
    "concordance",
    "cox_hazard_ratio",
    "delong_auc",
    "delong_test",
    "kaplan_meier",
    "kruskal_wallis",
    "logrank",
    "mann_whitney",
    "median_split",
    "median_survival",
    "pdl1_group",
    "restricted_mean_survival",
    "spearman",
    "survival_summary",
    "variance_components",
    "wilcoxon_signed_rank",
]
