"""Kaplan–Meier curves, median survival with SPSS- or R-style intervals, log-rank and Cox.

Built on lifelines (``KaplanMeierFitter``, ``multivariate_logrank_test``, ``CoxPHFitter``),
keeping its ``fit(...) -> self`` pattern. What lifelines does not give — Greenwood standard
errors of S(t), the median interval SPSS prints, the interval R's ``print(survfit(...))``
prints — is computed here from the fitted event table and documented formula by formula.

Times are in whatever unit the caller uses (the study's tables are in days); convert a
:class:`~immunopet.stats.results.SurvivalSummary` with
``.rescaled(DAYS_PER_MONTH, "months")``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times
from scipy import stats

from immunopet.errors import InputError
from immunopet.stats.groups import ArrayLike, _to_float_array
from immunopet.stats.results import CoxResult, LogRankResult, SurvivalSummary

__all__ = [
    "DAYS_PER_MONTH",
    "KaplanMeier",
    "MedianCI",
    "cox_hazard_ratio",
    "kaplan_meier",
    "logrank",
    "median_split",
    "median_survival",
    "survival_summary",
]

#: Mean Gregorian month in days (365.25 / 12); the study's months are days / 30.4375.
DAYS_PER_MONTH = 30.4375

MedianCI = Literal["spss", "brookmeyer-crowley", "lifelines"]

# Floating-point tolerance when comparing S(t) with 0.5, 0.55 and 0.45 (R uses the same).
_TOL = math.sqrt(np.finfo(float).eps)


def _survival_data(
    durations: ArrayLike, events: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Validate durations (finite, ≥ 0) and events (0/1) of equal length."""
    t = _to_float_array(durations, "durations")
    e = _to_float_array(events, "events")
    if t.size != e.size:
        raise InputError(
            "durations and events differ in length",
            tag="events",
            value=int(e.size),
            expected=f"{t.size} values",
        )
    if t.size == 0:
        raise InputError("no subjects", tag="durations", value=0, expected="at least one")
    if np.isnan(t).any() or np.isnan(e).any():
        raise InputError(
            "missing duration or event indicator",
            tag="durations" if np.isnan(t).any() else "events",
            value=int(np.isnan(t).sum() + np.isnan(e).sum()),
            expected="complete data (drop incomplete subjects first)",
        )
    if (t < 0).any():
        raise InputError(
            "negative duration", tag="durations", value=float(t.min()), expected=">= 0"
        )
    if not np.isin(e, (0.0, 1.0)).all():
        bad = e[~np.isin(e, (0.0, 1.0))][0]
        raise InputError(
            "event indicator must be 0 (censored) or 1 (event)",
            tag="events",
            value=float(bad),
            expected="0 or 1",
        )
    return t, e.astype(bool)


def _minmin(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> float:
    """First x where the curve y falls to 0.5 or below, as R's ``survmean`` finds it.

    NaN values of y are skipped. When y equals 0.5 (within tolerance) at that x and falls
    below later, the midpoint between that x and the first x where y is lower is returned.
    """
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not keep.any():
        return math.nan
    xs, ys = x[keep], y[keep]
    if abs(ys[0] - 0.5) < _TOL and (ys < ys[0]).any():
        return float((xs[0] + xs[np.argmax(ys < ys[0])]) / 2.0)
    return float(xs[0])


class KaplanMeier:
    """Kaplan–Meier estimate with Greenwood standard errors and median intervals.

    A thin layer over :class:`lifelines.KaplanMeierFitter` (available as :attr:`fitter`
    for plotting) following its ``fit(...) -> self`` pattern.

    Parameters
    ----------
    alpha : float
        1 − confidence level for the intervals (default 0.05).

    Examples
    --------
    >>> km = KaplanMeier().fit([2, 3, 4, 5], [1, 1, 0, 1], label="PFS")
    >>> km.table[["time", "at_risk", "events", "survival"]].round(12).to_numpy().tolist()
    [[2.0, 4.0, 1.0, 0.75], [3.0, 3.0, 1.0, 0.5], [5.0, 1.0, 1.0, 0.0]]
    >>> km.median(ci="spss")[0]
    3.0
    """

    def __init__(self, *, alpha: float = 0.05) -> None:
        if not 0.0 < alpha < 1.0:
            raise InputError(
                "alpha out of range", tag="alpha", value=alpha, expected="0 < alpha < 1"
            )
        self.alpha = alpha
        self.fitter: KaplanMeierFitter | None = None
        self.label = ""
        self._table: pd.DataFrame | None = None
        self._n = 0
        self._events = 0

    def fit(self, durations: ArrayLike, events: ArrayLike, *, label: str | None = None) -> Self:
        """Fit the curve.

        Parameters
        ----------
        durations : sequence of float
            Time to event or censoring, ≥ 0, any unit.
        events : sequence of {0, 1} or bool
            1 = event observed, 0 = censored.
        label : str, optional
            Name of the curve.

        Returns
        -------
        KaplanMeier
            ``self``, fitted.

        Raises
        ------
        InputError
            If the data are incomplete, negative, of unequal length or events not 0/1.
        """
        t, e = _survival_data(durations, events)
        self.label = label or ""
        fitter = KaplanMeierFitter(alpha=self.alpha)
        fitter.fit(t, e, label=self.label or "KM_estimate")
        self.fitter = fitter
        self._n, self._events = int(t.size), int(e.sum())
        table = fitter.event_table
        rows = table.loc[table["observed"] > 0]
        time = rows.index.to_numpy(dtype=float)
        at_risk = rows["at_risk"].to_numpy(dtype=float)
        died = rows["observed"].to_numpy(dtype=float)
        survival = fitter.survival_function_.iloc[:, 0].loc[time].to_numpy(dtype=float)
        # Greenwood: Var S(t) = S(t)^2 * sum_{t_j <= t} d_j / (n_j (n_j - d_j)); the term is
        # infinite once n_j = d_j (S = 0), where R reports NaN as well.
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(at_risk > died, died / (at_risk * (at_risk - died)), np.inf)
            cum = np.cumsum(terms)
            se = survival * np.sqrt(cum)
        se = np.where(np.isfinite(cum), se, np.nan)
        self._table = pd.DataFrame(
            {
                "time": time,
                "at_risk": at_risk,
                "events": died,
                "survival": survival,
                "se": se,
                "greenwood_sum": cum,
            }
        )
        return self

    def _require_fit(self) -> pd.DataFrame:
        if self._table is None:
            raise InputError(
                "the curve is not fitted", tag="KaplanMeier", expected="call fit() first"
            )
        return self._table

    @property
    def table(self) -> pd.DataFrame:
        """Event-time table as R's ``summary(survfit(...))`` prints it.

        Columns: ``time``, ``at_risk``, ``events``, ``survival`` (product-limit S(t)),
        ``se`` (Greenwood standard error of S(t); NaN where S = 0) and ``greenwood_sum``
        (the running sum of d/(n(n−d))).
        """
        return self._require_fit().drop(columns="greenwood_sum").copy()

    @property
    def n(self) -> int:
        """Number of subjects."""
        return self._n

    @property
    def events(self) -> int:
        """Number of events."""
        return self._events

    def survival_at(self, times: ArrayLike) -> npt.NDArray[np.float64]:
        """Kaplan–Meier S(t) at the given times (right-continuous step function).

        Parameters
        ----------
        times : sequence of float
            Times in the unit of the durations.

        Returns
        -------
        numpy.ndarray
            S(t); 1 before the first event.
        """
        table = self._require_fit()
        t = _to_float_array(times, "times")
        idx = np.searchsorted(table["time"].to_numpy(), t, side="right")
        s = np.concatenate([[1.0], table["survival"].to_numpy()])
        return np.asarray(s[idx], dtype=float)

    def median(self, ci: MedianCI = "spss") -> tuple[float, float, float]:
        """Median survival and its confidence interval: ``(median, lower, upper)``.

        See :func:`median_survival` for the methods. NaN means not reached/not estimable.
        """
        s = self.median_summary(ci=ci)
        return (s.median, s.lower, s.upper)

    def median_summary(self, ci: MedianCI = "spss", *, time_unit: str = "") -> SurvivalSummary:
        """Median survival with interval, n, events and notes as a result object.

        Parameters
        ----------
        ci : {"spss", "brookmeyer-crowley", "lifelines"}
            Interval method, see :func:`median_survival`.
        time_unit : str
            Unit of the durations, for display.

        Returns
        -------
        SurvivalSummary
        """
        table = self._require_fit()
        if ci == "spss":
            median, lower, upper, se, notes = _spss_median(table, self.alpha, time_unit)
        elif ci == "brookmeyer-crowley":
            median, lower, upper, notes = _r_log_median(table, self.alpha)
            se = math.nan
        elif ci == "lifelines":
            median, lower, upper, notes = self._lifelines_median()
            se = math.nan
        else:
            raise InputError(
                "unknown interval method",
                tag="ci",
                value=ci,
                expected="spss, brookmeyer-crowley or lifelines",
            )
        if math.isnan(median):
            notes = ("median not reached (S(t) stays above 0.5)", *notes)
        return SurvivalSummary(
            label=self.label,
            n=self._n,
            events=self._events,
            median=median,
            lower=lower,
            upper=upper,
            ci_method=ci,
            alpha=self.alpha,
            se=se,
            time_unit=time_unit,
            notes=tuple(notes),
        )

    def _lifelines_median(self) -> tuple[float, float, float, tuple[str, ...]]:
        if self.fitter is None:  # pragma: no cover - guarded by _require_fit
            raise InputError("the curve is not fitted", tag="KaplanMeier")
        median = float(self.fitter.median_survival_time_)
        limits = median_survival_times(self.fitter.confidence_interval_)
        lower, upper = (float(v) for v in limits.iloc[0, :2])
        values = [math.nan if math.isinf(v) else v for v in (median, lower, upper)]
        return (
            values[0],
            values[1],
            values[2],
            ("lifelines: medians of the log(-log) (exponential Greenwood) pointwise bands",),
        )


def _spss_median(
    table: pd.DataFrame, alpha: float, time_unit: str
) -> tuple[float, float, float, float, tuple[str, ...]]:
    """SPSS-style median, its standard error and the symmetric interval (see median_survival)."""
    time = table["time"].to_numpy()
    surv = table["survival"].to_numpy()
    se_s = table["se"].to_numpy()
    below = np.flatnonzero(surv <= 0.5 + _TOL)
    if below.size == 0:
        return math.nan, math.nan, math.nan, math.nan, ()
    i_med = int(below[0])
    median = float(time[i_med])
    # Density across the 45th-55th percentile survival times (origin t = 0, S = 1 included).
    t0 = np.concatenate([[0.0], time])
    s0 = np.concatenate([[1.0], surv])
    upper_side = np.flatnonzero(s0 >= 0.55 - _TOL)
    lower_side = np.flatnonzero(s0 <= 0.45 + _TOL)
    if lower_side.size == 0:
        return (
            median,
            math.nan,
            math.nan,
            math.nan,
            ("no event time with S(t) <= 0.45: density, SE and interval not estimable",),
        )
    u = int(upper_side[-1])
    lo = int(lower_side[0])
    density = (s0[u] - s0[lo]) / (t0[lo] - t0[u])
    se_median = float(se_s[i_med] / density)
    if math.isnan(se_median):
        return (
            median,
            math.nan,
            math.nan,
            math.nan,
            ("Greenwood standard error undefined at the median (S = 0): interval not estimable",),
        )
    z = float(stats.norm.isf(alpha / 2.0))
    lower, upper = median - z * se_median, median + z * se_median
    unit = time_unit or "input time units"
    notes = [
        f"SE(median) = SE(S(t_med)) / f with f = (S({t0[u]:g}) - S({t0[lo]:g})) / "
        f"({t0[lo]:g} - {t0[u]:g}) ({unit})"
    ]
    if lower < 0.0:
        notes.append(f"lower limit {lower:.4g} {unit} truncated at 0")
        lower = 0.0
    return median, lower, upper, se_median, tuple(notes)


def _r_log_median(table: pd.DataFrame, alpha: float) -> tuple[float, float, float, tuple[str, ...]]:
    """Median and interval as R's ``print(survfit(...))`` with ``conf.type="log"``."""
    time = table["time"].to_numpy()
    surv = table["survival"].to_numpy()
    cum = table["greenwood_sum"].to_numpy()
    z = float(stats.norm.isf(alpha / 2.0))
    with np.errstate(invalid="ignore", over="ignore"):
        half_width = z * np.sqrt(cum)
        band_low = np.where((surv > 0) & np.isfinite(cum), surv * np.exp(-half_width), np.nan)
        band_up = np.where(
            (surv > 0) & np.isfinite(cum), np.minimum(1.0, surv * np.exp(half_width)), np.nan
        )
    return (
        _minmin(surv, time),
        _minmin(band_low, time),
        _minmin(band_up, time),
        ("R survival print(survfit(...)), conf.type='log': where the pointwise bands cross 0.5",),
    )


def kaplan_meier(
    durations: ArrayLike, events: ArrayLike, *, label: str | None = None, alpha: float = 0.05
) -> KaplanMeier:
    """Fit a Kaplan–Meier curve: ``KaplanMeier(alpha=alpha).fit(durations, events, label=label)``.

    Parameters
    ----------
    durations : sequence of float
        Time to event or censoring (≥ 0).
    events : sequence of {0, 1} or bool
        1 = event, 0 = censored.
    label : str, optional
        Name of the curve.
    alpha : float
        1 − confidence level.

    Returns
    -------
    KaplanMeier
        The fitted curve.
    """
    return KaplanMeier(alpha=alpha).fit(durations, events, label=label)


def restricted_mean_survival(
    durations: ArrayLike, events: ArrayLike, *, horizon: float | None = None
) -> tuple[float, float]:
    """Restricted mean survival time: the area under the Kaplan-Meier curve up to a horizon.

    Parameters
    ----------
    durations : sequence of float
        Time to event or censoring (>= 0).
    events : sequence of {0, 1} or bool
    horizon : float, optional
        Upper limit of the area; default the largest observed time (SPSS's "Mean" of a
        Kaplan-Meier analysis, "limited to the largest survival time if it is censored").

    Returns
    -------
    (float, float)
        The restricted mean and the horizon used, in the unit of ``durations``.

    Examples
    --------
    >>> restricted_mean_survival([2, 3, 4, 5], [1, 1, 0, 1])
    (3.75, 5.0)
    """
    from lifelines.utils import restricted_mean_survival_time

    times, observed = _survival_data(durations, events)
    limit = float(np.max(times)) if horizon is None else float(horizon)
    if not math.isfinite(limit) or limit <= 0:
        raise InputError(
            "restricted-mean horizon must be positive", tag="horizon", value=limit, expected="> 0"
        )
    fitter = KaplanMeierFitter().fit(times, observed)
    return float(restricted_mean_survival_time(fitter, t=limit)), limit


def median_survival(
    durations: ArrayLike,
    events: ArrayLike,
    ci: MedianCI = "spss",
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Kaplan–Meier median survival time with a confidence interval.

    Parameters
    ----------
    durations : sequence of float
        Time to event or censoring (≥ 0), any unit; the result is in the same unit.
    events : sequence of {0, 1} or bool
        1 = event observed, 0 = censored.
    ci : {"spss", "brookmeyer-crowley", "lifelines"}
        Interval method (see Notes).
    alpha : float
        1 − confidence level (0.05 gives a 95 % interval).

    Returns
    -------
    tuple of float
        ``(median, lower, upper)``. NaN means not reached (median) or not estimable (limits).

    Raises
    ------
    InputError
        For invalid survival data or an unknown ``ci``.

    Notes
    -----
    The median is the first event time with :math:`\\hat S(t) \\le 0.5`.

    ``"spss"`` — the symmetric interval SPSS's Kaplan–Meier procedure prints, median
    :math:`\\pm z_{1-\\alpha/2}\\,\\mathrm{SE}`, with the standard error of a percentile of
    Collett (Modelling Survival Data in Medical Research, §2.4)

    .. math::

        \\mathrm{SE}(\\hat t_{50}) = \\frac{\\mathrm{SE}_{Greenwood}\\{\\hat S(\\hat t_{50})\\}}
                                     {\\hat f(\\hat t_{50})},\\qquad
        \\hat f(\\hat t_{50}) = \\frac{\\hat S(\\hat u) - \\hat S(\\hat l)}{\\hat l - \\hat u},

    :math:`\\hat u = \\max\\{t_j : \\hat S(t_j) \\ge 0.55\\}`,
    :math:`\\hat l = \\min\\{t_j : \\hat S(t_j) \\le 0.45\\}` over the event times
    :math:`t_j` and the origin (:math:`t = 0`, :math:`S = 1`), i.e. the density is estimated
    across the 45th–55th percentile survival times. A negative lower limit is truncated at 0
    (the durvalumab paper prints "0.0–3.8"). When S never falls to 0.45 the limits are NaN.
    With the study's Table 1 this reproduces the published 1.3 (0.0–3.8) and 4.8 (0.2–9.4)
    months. The SPSS algorithms manual itself was not available to check edge cases (an
    S(t) exactly 0.5, no event time with S ≥ 0.55); those follow Collett.

    ``"brookmeyer-crowley"`` — the interval R prints for
    ``survfit(Surv(t, e) ~ 1)`` (survival 3.x, default ``conf.type="log"``): the first times
    at which the pointwise bands :math:`\\hat S\\exp(\\mp z\\,\\sigma)`,
    :math:`\\sigma^2 = \\sum d_j/(n_j(n_j-d_j))`, fall to 0.5 or below (the inverted-test
    interval of Brookmeyer and Crowley, 1982, on the log scale). Where the curve is
    exactly 0.5 over an interval, R's midpoint rule is used for the median as well.

    ``"lifelines"`` — :func:`lifelines.utils.median_survival_times` of
    ``KaplanMeierFitter.confidence_interval_`` (log(−log) bands); infinities become NaN.

    Examples
    --------
    >>> m = median_survival([2, 3, 4, 5, 6, 7, 8, 9, 11, 12], [1, 1, 0, 1, 1, 0, 1, 1, 1, 1])
    >>> [round(v, 3) for v in m]
    [8.0, 3.216, 12.784]
    """
    return kaplan_meier(durations, events, alpha=alpha).median(ci=ci)


def survival_summary(
    durations: ArrayLike,
    events: ArrayLike,
    *,
    ci: MedianCI = "spss",
    alpha: float = 0.05,
    label: str = "",
    time_unit: str = "",
) -> SurvivalSummary:
    """Median survival with interval, n, events and notes (see :func:`median_survival`).

    Parameters
    ----------
    durations, events : sequence
        As for :func:`median_survival`.
    ci : {"spss", "brookmeyer-crowley", "lifelines"}
        Interval method.
    alpha : float
        1 − confidence level.
    label : str
        Name of the curve.
    time_unit : str
        Unit of the durations, for display.

    Returns
    -------
    SurvivalSummary
    """
    return kaplan_meier(durations, events, label=label, alpha=alpha).median_summary(
        ci=ci, time_unit=time_unit
    )


def _group_labels(groups: ArrayLike | Sequence[Hashable], size: int) -> npt.NDArray[np.str_]:
    labels = pd.Series(list(np.asarray(groups, dtype=object).ravel()))
    if labels.size != size:
        raise InputError(
            "groups differ in length from durations",
            tag="groups",
            value=int(labels.size),
            expected=f"{size} labels",
        )
    if labels.isna().any():
        raise InputError(
            "missing group label",
            tag="groups",
            value=int(labels.isna().sum()),
            expected="a label for every subject",
        )
    return labels.astype(str).to_numpy(dtype=str)


def logrank(
    durations: ArrayLike,
    events: ArrayLike,
    groups: ArrayLike | Sequence[Hashable],
) -> LogRankResult:
    """Log-rank test of equal survival in two or more groups.

    Parameters
    ----------
    durations : sequence of float
        Time to event or censoring.
    events : sequence of {0, 1}
        1 = event, 0 = censored.
    groups : sequence
        Group label per subject (compared as strings).

    Returns
    -------
    LogRankResult
        Chi-square statistic with k − 1 degrees of freedom (lifelines
        ``multivariate_logrank_test``; equal to R ``survdiff``), and observed and expected
        events per group.

    Raises
    ------
    InputError
        For invalid survival data, missing labels or fewer than two groups.

    Notes
    -----
    Expected events of group g: :math:`E_g = \\sum_j d_j\\, n_{gj}/n_j` over the distinct
    event times, with :math:`n_{gj}` at risk in group g.
    """
    t, e = _survival_data(durations, events)
    labels = _group_labels(groups, t.size)
    names = sorted(set(labels.tolist()))
    if len(names) < 2:
        raise InputError(
            "log-rank test needs at least two groups",
            tag="groups",
            value=names,
            expected="two or more distinct labels",
        )
    result = multivariate_logrank_test(t, labels, e)
    event_times = np.unique(t[e])
    at_risk_total = (t[None, :] >= event_times[:, None]).sum(axis=1)
    deaths_total = (e[None, :] & (t[None, :] == event_times[:, None])).sum(axis=1)
    expected = []
    for name in names:
        in_group = labels == name
        at_risk_g = ((t[None, :] >= event_times[:, None]) & in_group[None, :]).sum(axis=1)
        expected.append(float(np.sum(deaths_total * at_risk_g / at_risk_total)))
    return LogRankResult(
        statistic=float(result.test_statistic),
        df=len(names) - 1,
        p_value=float(result.p_value),
        groups=tuple(names),
        n=tuple(int((labels == g).sum()) for g in names),
        events=tuple(int(e[labels == g].sum()) for g in names),
        expected=tuple(expected),
    )


def cox_hazard_ratio(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    *,
    alpha: float = 0.05,
) -> CoxResult:
    """Cox proportional-hazards model: hazard ratios, Wald intervals and p-values.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration_col, event_col : str
        Columns of time and event indicator (1 = event, 0 = censored).
    covariates : sequence of str
        Numeric covariate columns (encode categories as 0/1 indicators first).
    alpha : float
        1 − confidence level.

    Returns
    -------
    CoxResult
        Per covariate: coef (log HR), se, hazard_ratio = exp(coef), Wald interval
        exp(coef ± z·se), z and Wald p-value; Efron's tie handling (as R ``coxph``).

    Raises
    ------
    InputError
        If a column is missing or non-numeric, or no complete rows remain.

    Notes
    -----
    Rows with a missing value in any used column are dropped and counted in the notes.
    """
    columns = [duration_col, event_col, *covariates]
    if not covariates:
        raise InputError("no covariates given", tag="covariates", value=[], expected="1 or more")
    for col in columns:
        if col not in df.columns:
            raise InputError(
                "column not found", tag=col, value="missing", expected="a column of df"
            )
        if not pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            raise InputError(
                "column must be numeric",
                tag=col,
                value=str(df[col].dtype),
                expected="numbers (encode categories as 0/1)",
            )
    data = df[columns].astype(float)
    complete = data.dropna()
    notes: list[str] = []
    if len(complete) < len(data):
        notes.append(f"{len(data) - len(complete)} row(s) with missing values dropped")
    if complete.empty:
        raise InputError("no complete rows", tag=", ".join(columns), value=0, expected="data")
    _survival_data(complete[duration_col].to_numpy(), complete[event_col].to_numpy())
    fitter = CoxPHFitter(alpha=alpha)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter.fit(complete, duration_col=duration_col, event_col=event_col)
        except ConvergenceError as exc:
            raise InputError(
                "Cox model did not converge",
                tag=", ".join(covariates),
                value=str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                expected="covariates that vary and are not collinear",
            ) from exc
    notes.extend(str(w.message).strip().splitlines()[0] for w in caught)
    summary = fitter.summary
    z = float(stats.norm.isf(alpha / 2.0))
    coef = summary["coef"].to_numpy(dtype=float)
    se = summary["se(coef)"].to_numpy(dtype=float)
    table = pd.DataFrame(
        {
            "covariate": [str(c) for c in summary.index],
            "coef": coef,
            "se": se,
            "hazard_ratio": np.exp(coef),
            "hr_lower": np.exp(coef - z * se),
            "hr_upper": np.exp(coef + z * se),
            "z": summary["z"].to_numpy(dtype=float),
            "p_value": summary["p"].to_numpy(dtype=float),
        }
    )
    return CoxResult(
        table=table,
        n=len(complete),
        events=int(complete[event_col].sum()),
        alpha=alpha,
        ties="efron",
        notes=tuple(notes),
    )


def median_split(values: ArrayLike | pd.Series) -> pd.Series:
    """Split subjects at the median: ``"high"`` above it, ``"low"`` at or below it.

    Parameters
    ----------
    values : sequence of float or pandas.Series
        One value per subject (e.g. mean lesion SUVpeak); NaN stays unassigned.

    Returns
    -------
    pandas.Series
        Categorical with categories ``["low", "high"]`` (index kept from a Series input);
        the threshold, the median of the non-missing values, is in ``.attrs["threshold"]``.

    Notes
    -----
    Values equal to the median go to ``"low"``: with an odd number of subjects the median
    subject is in the low group, and with ties at the median the groups may be unequal.

    Examples
    --------
    >>> median_split([1.0, 3.0, 2.0, 4.0]).tolist()
    ['low', 'high', 'low', 'high']
    >>> median_split([1.0, 2.0, 3.0]).tolist()
    ['low', 'low', 'high']
    """
    index = values.index if isinstance(values, pd.Series) else None
    array = _to_float_array(values, "values")
    finite = array[~np.isnan(array)]
    if finite.size == 0:
        raise InputError("no values to split", tag="values", value=0, expected="numbers")
    threshold = float(np.median(finite))
    labels = [
        None if math.isnan(v) else ("high" if v > threshold else "low") for v in array.tolist()
    ]
    out = pd.Series(labels, index=index, dtype=pd.CategoricalDtype(["low", "high"]))
    out.attrs["threshold"] = threshold
    return out
