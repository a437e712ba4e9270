"""Result objects of the statistics layer.

Every test or estimate returns an immutable object, in the manner of lifelines'
``StatisticalResult``: the numbers as attributes, a tidy :attr:`summary` table, an HTML
rendering for notebooks and the report (:meth:`to_html`, ``_repr_html_``) and a readable
``str``. The report only arranges these objects; it never recomputes a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

__all__ = [
    "BiomarkerComparison",
    "CoxResult",
    "LogRankResult",
    "SurvivalSummary",
    "TestResult",
]


def _frozen_mapping(values: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(values))


class _Tabular:
    """Mixin: HTML, ``str`` and notebook display built from ``summary`` and ``notes``."""

    @property
    def summary(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _title(self) -> str:
        return type(self).__name__

    def _notes(self) -> tuple[str, ...]:
        return tuple(getattr(self, "notes", ()))

    def to_html(self) -> str:
        """Return the summary as an HTML fragment (a ``<table>`` and the notes).

        Returns
        -------
        str
            HTML text; numbers are printed with 4 significant digits.
        """
        table = self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
        notes = "".join(f"<li>{_escape(note)}</li>" for note in self._notes())
        notes_html = f"<ul>{notes}</ul>" if notes else ""
        return f"<div><strong>{_escape(self._title())}</strong>{table}{notes_html}</div>"

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 30):
            text = f"<{self._title()}>\n{self.summary.to_string(index=False)}"
        for note in self._notes():
            text += f"\n  note: {note}"
        return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, repr=False, eq=False)
class TestResult(_Tabular):
    """The result of a hypothesis test or correlation.

    Attributes
    ----------
    test_name : str
        For example ``"Mann-Whitney U"``, ``"Kruskal-Wallis H"``, ``"Spearman rank correlation"``.
    statistic : float
        The test statistic (U of the first sample, H, rho ...).
    p_value : float
        Two-sided p-value of the method in :attr:`method`.
    n : tuple of int
        Number of observations per group (one entry for a correlation: the number of pairs).
    method : str
        How the p-value was obtained: ``"asymptotic"``, ``"exact"`` or ``"t-distribution"``.
    groups : tuple of str
        Group labels, in the order of :attr:`n`.
    statistic_name : str
        Short name of the statistic (``"U"``, ``"H"``, ``"rho"``).
    notes : tuple of str
        Choices and caveats that the reader of the number must know.
    extra : Mapping[str, float]
        Secondary numbers (``z``, ``df``, an exact p-value printed alongside ...).
    """

    __test__ = False  # not a pytest test class despite its name

    test_name: str
    statistic: float
    p_value: float
    n: tuple[int, ...]
    method: str
    groups: tuple[str, ...] = ()
    statistic_name: str = "statistic"
    notes: tuple[str, ...] = ()
    extra: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _frozen_mapping(self.extra))
        object.__setattr__(self, "n", tuple(int(v) for v in self.n))
        object.__setattr__(self, "groups", tuple(str(g) for g in self.groups))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __reduce__(self) -> tuple[type[TestResult], tuple[Any, ...]]:
        """Pickle with ``extra`` as a plain dict (a read-only mapping cannot be pickled), so
        that figures of test results can be drawn by worker processes."""
        return (
            TestResult,
            (
                self.test_name,
                self.statistic,
                self.p_value,
                self.n,
                self.method,
                self.groups,
                self.statistic_name,
                self.notes,
                dict(self.extra),
            ),
        )

    def _title(self) -> str:
        return self.test_name

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table: test, statistic, p-value, method, groups, n and the extras."""
        row: dict[str, Any] = {
            "test": self.test_name,
            "statistic_name": self.statistic_name,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "method": self.method,
            "groups": ", ".join(self.groups),
            "n": ", ".join(str(v) for v in self.n),
        }
        row.update(self.extra)
        return pd.DataFrame([row])

    def __repr__(self) -> str:
        return (
            f"TestResult(test_name={self.test_name!r}, {self.statistic_name}={self.statistic:.6g}, "
            f"p_value={self.p_value:.6g}, n={self.n}, method={self.method!r})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class SurvivalSummary(_Tabular):
    """Median survival with its confidence interval for one Kaplan–Meier curve.

    Attributes
    ----------
    label : str
        Name of the curve (``"PFS"``, ``"OS"``, a group label).
    n : int
        Number of subjects.
    events : int
        Number of events.
    median : float, time unit of :attr:`time_unit`
        Kaplan–Meier median; NaN when the curve does not fall to 0.5 (not reached).
    lower, upper : float, time unit of :attr:`time_unit`
        Confidence limits; NaN when not estimable.
    ci_method : str
        ``"spss"``, ``"brookmeyer-crowley"`` or ``"lifelines"``.
    alpha : float
        1 − confidence level.
    se : float, time unit of :attr:`time_unit`
        Standard error of the median (``ci_method="spss"`` only; NaN otherwise).
    time_unit : str
        Unit of the times, e.g. ``"days"`` or ``"months"``.
    notes : tuple of str
        For example that the lower limit was truncated at 0.
    """

    label: str
    n: int
    events: int
    median: float
    lower: float
    upper: float
    ci_method: str
    alpha: float = 0.05
    se: float = math.nan
    time_unit: str = ""
    notes: tuple[str, ...] = ()

    def _title(self) -> str:
        return f"Kaplan-Meier median survival ({self.label})" if self.label else "Median survival"

    def rescaled(self, divisor: float, time_unit: str) -> SurvivalSummary:
        """Return the same summary with times divided by ``divisor`` (e.g. days → months).

        Parameters
        ----------
        divisor : float
            Old units per new unit, e.g. ``30.4375`` days per month.
        time_unit : str
            Name of the new unit.

        Returns
        -------
        SurvivalSummary
            A new object; all interval methods here are equivariant under a change of scale.

        Examples
        --------
        >>> s = SurvivalSummary("OS", 13, 9, 147.0, 7.25, 286.75, "spss", time_unit="days")
        >>> round(s.rescaled(30.4375, "months").median, 2)
        4.83
        """
        note = (
            f"times rescaled from {self.time_unit or 'input units'} to {time_unit} (/ {divisor:g})"
        )
        return replace(
            self,
            notes=(*self.notes, note),
            median=self.median / divisor,
            lower=self.lower / divisor,
            upper=self.upper / divisor,
            se=self.se / divisor,
            time_unit=time_unit,
        )

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table: label, n, events, median, lower, upper, se, method, confidence, unit."""
        return pd.DataFrame(
            [
                {
                    "label": self.label,
                    "n": self.n,
                    "events": self.events,
                    "median": self.median,
                    "lower": self.lower,
                    "upper": self.upper,
                    "se": self.se,
                    "ci_method": self.ci_method,
                    "confidence": 1.0 - self.alpha,
                    "time_unit": self.time_unit,
                }
            ]
        )

    def __repr__(self) -> str:
        return (
            f"SurvivalSummary(label={self.label!r}, median={self.median:.6g}, "
            f"ci=({self.lower:.6g}, {self.upper:.6g}), ci_method={self.ci_method!r}, "
            f"time_unit={self.time_unit!r})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class LogRankResult(_Tabular):
    """Log-rank test of equal survival across groups.

    Attributes
    ----------
    statistic : float
        Chi-square statistic.
    df : int
        Degrees of freedom (number of groups − 1).
    p_value : float
        Asymptotic chi-square p-value.
    groups : tuple of str
        Group labels (sorted).
    n, events : tuple of int
        Subjects and events per group.
    expected : tuple of float
        Expected events per group under the null hypothesis (as R ``survdiff`` prints).
    notes : tuple of str
        Caveats.
    """

    statistic: float
    df: int
    p_value: float
    groups: tuple[str, ...]
    n: tuple[int, ...]
    events: tuple[int, ...]
    expected: tuple[float, ...]
    notes: tuple[str, ...] = ()

    def _title(self) -> str:
        return (
            f"Log-rank test (chi2 = {self.statistic:.4g}, df = {self.df}, p = {self.p_value:.4g})"
        )

    @property
    def summary(self) -> pd.DataFrame:
        """One row per group: group, n, observed and expected events, and the test."""
        return pd.DataFrame(
            {
                "group": list(self.groups),
                "n": list(self.n),
                "observed": list(self.events),
                "expected": list(self.expected),
                "chi2": self.statistic,
                "df": self.df,
                "p_value": self.p_value,
            }
        )

    def __repr__(self) -> str:
        return (
            f"LogRankResult(statistic={self.statistic:.6g}, df={self.df}, "
            f"p_value={self.p_value:.6g}, groups={self.groups})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class CoxResult(_Tabular):
    """Cox proportional-hazards fit: hazard ratios with Wald confidence intervals.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per covariate with columns ``covariate``, ``coef``, ``se``,
        ``hazard_ratio``, ``hr_lower``, ``hr_upper``, ``z``, ``p_value`` (Wald).
    n : int
        Subjects used (rows with a missing value are dropped).
    events : int
        Events among them.
    alpha : float
        1 − confidence level of the intervals.
    ties : str
        Tie handling (``"efron"``, as R ``coxph`` and lifelines).
    notes : tuple of str
        Caveats (e.g. rows dropped).
    """

    table: pd.DataFrame
    n: int
    events: int
    alpha: float = 0.05
    ties: str = "efron"
    notes: tuple[str, ...] = ()

    def _title(self) -> str:
        return f"Cox proportional hazards (n = {self.n}, events = {self.events})"

    @property
    def summary(self) -> pd.DataFrame:
        """The per-covariate table (a copy)."""
        return self.table.copy()

    def hazard_ratio(self, covariate: str) -> tuple[float, float, float]:
        """Return ``(hr, lower, upper)`` of one covariate.

        Parameters
        ----------
        covariate : str
            A covariate name as given to the fit.

        Returns
        -------
        tuple of float
            The hazard ratio and its confidence limits.
        """
        row = self.table.loc[self.table["covariate"] == covariate]
        if row.empty:
            raise KeyError(covariate)
        return (
            float(row["hazard_ratio"].iloc[0]),
            float(row["hr_lower"].iloc[0]),
            float(row["hr_upper"].iloc[0]),
        )

    def __repr__(self) -> str:
        return (
            f"CoxResult(n={self.n}, events={self.events}, covariates={list(self.table.covariate)})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class BiomarkerComparison(_Tabular):
    """Candidate biomarkers side by side for response and survival.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (group, candidate) with the columns described in
        :func:`immunopet.stats.compare_biomarkers` (wide: AUC, C for PFS and OS).
    n_bootstrap : int
        Bootstrap resamples for the AUC interval (``interval="bootstrap"`` only).
    seed : int
        Seed of the bootstrap.
    alpha : float
        1 − confidence level of the intervals.
    notes : tuple of str
        Conventions (direction of AUC and C) and caveats.
    comparisons : pandas.DataFrame, optional
        The long table of ``RESULTS_DIR/analysis/biomarkers.csv``: one row per (tumour
        type, candidate, endpoint) with ``candidate``, ``endpoint`` (``response``, ``pfs``,
        ``os``), ``tumour_type`` (``"all"`` = every patient), ``n``, ``auc_or_c``,
        ``ci_lower``, ``ci_upper``, ``p_vs_pet`` (paired test against the reference
        candidate: DeLong for AUC, IJ z-test for C), and ``reference``, ``n_positive``
        (responders or events), ``ci_method``, ``separation``.
    interval : str
        ``"delong"`` (logit-DeLong / Newcombe score) or ``"bootstrap"``.
    """

    table: pd.DataFrame
    n_bootstrap: int
    seed: int
    alpha: float = 0.05
    notes: tuple[str, ...] = ()
    comparisons: pd.DataFrame | None = None
    interval: str = "bootstrap"

    def _title(self) -> str:
        return "Biomarker comparison"

    @property
    def summary(self) -> pd.DataFrame:
        """The long comparison table when computed, else the wide table (a copy)."""
        if self.comparisons is not None:
            return self.comparisons.copy()
        return self.table.copy()

    def __repr__(self) -> str:
        return (
            f"BiomarkerComparison(candidates={sorted(set(self.table.candidate))}, "
            f"interval={self.interval!r})"
        )
