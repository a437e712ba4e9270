"""Candidate biomarkers side by side for response and survival (the atezolizumab question).

Does pre-treatment PET uptake predict response and survival better than PD-L1 TPS/CPS or an
RNA-seq score? For each candidate column this module reports the AUC for response (DeLong's
variance; logit-DeLong interval, or Newcombe's score interval when a group separates
perfectly) and Harrell's C for PFS and OS (infinitesimal-jackknife variance, logit interval),
overall and per tumour type, and compares every candidate with the reference (PET) candidate
on the same patients: DeLong's paired test for AUCs, the IJ paired z-test for Cs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from lifelines.utils import concordance_index
from scipy import stats

from immunopet.errors import InputError
from immunopet.stats.concordance import compare_concordance, concordance
from immunopet.stats.results import BiomarkerComparison
from immunopet.stats.roc import delong_auc, delong_test

__all__ = ["auc_response", "compare_biomarkers", "harrell_c"]

_ALL = "all"


def _pair_auc(
    positive: npt.NDArray[np.float64], negative: npt.NDArray[np.float64], axis: int = -1
) -> npt.NDArray[np.float64]:
    """P(X+ > X-) + 0.5 P(X+ = X-) by counting pairs; vectorised over leading axes."""
    pos = np.moveaxis(positive, axis, -1)[..., :, None]
    neg = np.moveaxis(negative, axis, -1)[..., None, :]
    wins = (pos > neg).astype(float) + 0.5 * (pos == neg)
    return np.asarray(wins.mean(axis=(-2, -1)))


def auc_response(marker: npt.ArrayLike, responder: npt.ArrayLike) -> float:
    """Area under the ROC curve of ``marker`` for response (higher marker = responder).

    Parameters
    ----------
    marker : sequence of float
        Candidate values.
    responder : sequence of bool or {0, 1}
        Response per subject.

    Returns
    -------
    float
        :math:`U_{resp} / (n_{resp} n_{non})`, the Mann–Whitney U of the responders
        divided by the number of pairs: the probability that a responder has the higher
        value, ties counting one half. NaN if a class is empty.

    Examples
    --------
    >>> auc_response([1, 3, 1, 2], [1, 1, 0, 0])
    0.625
    """
    x = np.asarray(marker, dtype=float)
    r = np.asarray(responder, dtype=bool)
    pos, neg = x[r], x[~r]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (pos.size * neg.size)


def harrell_c(marker: npt.ArrayLike, durations: npt.ArrayLike, events: npt.ArrayLike) -> float:
    """Harrell's concordance index with the marker as a predictor of *longer* survival.

    Parameters
    ----------
    marker : sequence of float
        Candidate values.
    durations : sequence of float
        Time to event or censoring.
    events : sequence of bool or {0, 1}
        1 = event, 0 = censored.

    Returns
    -------
    float
        ``lifelines.utils.concordance_index(durations, marker, events)``: among usable pairs
        (the shorter time is an event), the fraction in which the subject with the higher
        marker lives longer, marker ties counting one half. 1 = higher marker, longer
        survival; 0.5 = no information; below 0.5 = higher marker, shorter survival.
        NaN when no pair is usable.

    Examples
    --------
    >>> harrell_c([1, 3, 2, 4], [1, 2, 3, 4], [1, 1, 0, 1])
    0.8
    """
    try:
        return float(concordance_index(durations, marker, events))
    except ZeroDivisionError:
        return math.nan


def _responder_flags(values: pd.Series, column: str) -> pd.Series:
    """Map a response column to float 1.0/0.0 (NaN kept) or raise InputError."""
    numeric = pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce")
    bad = values.notna() & ~numeric.isin([0.0, 1.0])
    if bad.any():
        raise InputError(
            "response must be 1/True (responder) or 0/False (non-responder)",
            tag=column,
            value=values[bad].iloc[0],
            expected="0, 1, True, False or missing",
        )
    return numeric.astype(float)


def _numeric_column(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        raise InputError("column not found", tag=column, value="missing", expected="a column of df")
    values = pd.to_numeric(df[column], errors="coerce")
    bad = df[column].notna() & values.isna()
    if bad.any():
        raise InputError(
            "column must be numeric (missing as empty/NaN)",
            tag=column,
            value=df[column][bad].iloc[0],
            expected="numbers",
        )
    return values.astype(float)


def _bootstrap_auc(
    pos: npt.NDArray[np.float64],
    neg: npt.NDArray[np.float64],
    n_bootstrap: int,
    seed: int,
    alpha: float,
) -> tuple[float, float]:
    if pos.size < 2 or neg.size < 2 or n_bootstrap == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (pos, neg),
            _pair_auc,
            n_resamples=n_bootstrap,
            vectorized=True,
            method="percentile",
            confidence_level=1.0 - alpha,
            rng=np.random.default_rng(seed),
        )
    ci = result.confidence_interval
    return float(ci.low), float(ci.high)


def _survival_c(
    marker: pd.Series, df: pd.DataFrame, cols: tuple[str, str] | None
) -> tuple[int, float]:
    if cols is None:
        return 0, math.nan
    durations = _numeric_column(df, cols[0])
    events = _numeric_column(df, cols[1])
    keep = marker.notna() & durations.notna() & events.notna()
    if not events[keep].isin([0.0, 1.0]).all():
        raise InputError("event indicator must be 0 or 1", tag=cols[1], expected="0 or 1")
    n = int(keep.sum())
    if n < 2:
        return n, math.nan
    return n, harrell_c(
        marker[keep].to_numpy(), durations[keep].to_numpy(), events[keep].to_numpy()
    )


def _auc_rows(
    group: str,
    markers: dict[str, pd.Series],
    response: pd.Series,
    reference: str,
    alpha: float,
) -> list[dict[str, Any]]:
    """Long rows for the response endpoint of one group."""
    rows = []
    for name, marker in markers.items():
        keep = marker.notna() & response.notna()
        x, y = marker[keep].to_numpy(), response[keep].to_numpy() == 1.0
        row: dict[str, Any] = {
            "candidate": name,
            "endpoint": "response",
            "tumour_type": group,
            "n": int(keep.sum()),
            "n_positive": int(y.sum()),
            "auc_or_c": math.nan,
            "ci_lower": math.nan,
            "ci_upper": math.nan,
            "ci_method": "",
            "separation": "",
            "p_vs_pet": math.nan,
            "reference": reference,
        }
        if y.any() and (~y).any():
            est = delong_auc(x, y, alpha=alpha)
            row.update(
                auc_or_c=est.auc,
                ci_lower=est.lower,
                ci_upper=est.upper,
                ci_method=est.method,
                separation=est.separation,
            )
        if name != reference:
            both = keep & markers[reference].notna()
            yb = response[both].to_numpy() == 1.0
            if yb.any() and (~yb).any():
                row["p_vs_pet"] = delong_test(
                    markers[reference][both].to_numpy(), marker[both].to_numpy(), yb
                ).p_value
        rows.append(row)
    return rows


def _c_rows(
    group: str,
    endpoint: str,
    markers: dict[str, pd.Series],
    durations: pd.Series,
    events: pd.Series,
    reference: str,
    alpha: float,
) -> list[dict[str, Any]]:
    """Long rows for one survival endpoint of one group."""
    rows = []
    base = durations.notna() & events.notna()
    for name, marker in markers.items():
        keep = base & marker.notna()
        row: dict[str, Any] = {
            "candidate": name,
            "endpoint": endpoint,
            "tumour_type": group,
            "n": int(keep.sum()),
            "n_positive": int(events[keep].sum()),
            "auc_or_c": math.nan,
            "ci_lower": math.nan,
            "ci_upper": math.nan,
            "ci_method": "",
            "separation": "",
            "p_vs_pet": math.nan,
            "reference": reference,
        }
        if keep.sum() >= 2:
            est = concordance(
                marker[keep].to_numpy(),
                durations[keep].to_numpy(),
                events[keep].to_numpy(),
                alpha=alpha,
            )
            if est.n_pairs:
                row.update(
                    auc_or_c=est.c,
                    ci_lower=est.lower,
                    ci_upper=est.upper,
                    ci_method="logit-ij" if est.lower != est.upper else "none",
                    separation=est.separation,
                )
        if name != reference:
            both = keep & markers[reference].notna()
            if both.sum() >= 2:
                row["p_vs_pet"] = compare_concordance(
                    markers[reference][both].to_numpy(),
                    marker[both].to_numpy(),
                    durations[both].to_numpy(),
                    events[both].to_numpy(),
                ).p_value
        rows.append(row)
    return rows


def _events(df: pd.DataFrame, cols: tuple[str, str]) -> tuple[pd.Series, pd.Series]:
    durations = _numeric_column(df, cols[0])
    events = _numeric_column(df, cols[1])
    if not events.dropna().isin([0.0, 1.0]).all():
        raise InputError(
            "event indicator must be 0 or 1",
            tag=cols[1],
            value=events[~events.isin([0.0, 1.0]) & events.notna()].iloc[0],
            expected="0 or 1",
        )
    return durations, events


def compare_biomarkers(
    df: pd.DataFrame,
    *,
    candidates: Sequence[str],
    response_col: str,
    pfs: tuple[str, str] | None = None,
    os: tuple[str, str] | None = None,
    n_bootstrap: int = 2000,
    seed: int = 0,
    group_col: str | None = None,
    alpha: float = 0.05,
    reference: str | None = None,
    interval: Literal["delong", "bootstrap"] = "delong",
) -> BiomarkerComparison:
    """Compare candidate biomarkers for response (AUC) and survival (Harrell's C).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient.
    candidates : sequence of str
        Numeric candidate columns (e.g. ``"suvmax_median"``, ``"tps_percent"``,
        ``"cps_percent"``, an RNA-seq score).
    response_col : str
        Responder indicator: 1/True = response, 0/False = no response, empty = unknown.
    pfs, os : tuple of (str, str), optional
        ``(duration column, event column)`` of progression-free and overall survival.
    n_bootstrap : int
        Bootstrap resamples for the AUC interval of the wide table when
        ``interval="bootstrap"`` (0 = no interval).
    seed : int
        Seed of ``numpy.random.default_rng`` for the bootstrap; every (group, candidate)
        uses a fresh generator from this seed.
    group_col : str, optional
        Tumour type (or other) column: rows per group are added to the overall rows.
    alpha : float
        1 − confidence level of the intervals.
    reference : str, optional
        The candidate every other one is compared with (``p_vs_pet``); default the first.
    interval : {"delong", "bootstrap"}
        AUC interval of the wide :attr:`~BiomarkerComparison.table`: DeLong-based (default;
        :mod:`immunopet.stats.roc`) or the stratified percentile bootstrap. The long table
        always uses the DeLong-based interval.

    Returns
    -------
    BiomarkerComparison
        ``table`` has one row per (group, candidate), group ``"all"`` first, with columns
        ``group``, ``candidate``, ``n_response`` (patients with marker and response),
        ``n_responders``, ``auc``, ``auc_lower``, ``auc_upper``, ``auc_method``,
        ``separation``, ``p_auc_vs_pet``, ``n_pfs``, ``c_pfs``, ``c_pfs_lower``,
        ``c_pfs_upper``, ``p_pfs_vs_pet``, ``n_os``, ``c_os``, ``c_os_lower``,
        ``c_os_upper``, ``p_os_vs_pet``; ``comparisons`` is the long table (see
        :class:`BiomarkerComparison`).

    Raises
    ------
    InputError
        If a column is missing or non-numeric, the response is not 0/1, or the reference
        is not a candidate.

    Notes
    -----
    Missing values are dropped per candidate and per outcome; the ``n`` columns say how
    many patients each number rests on; a paired comparison uses the patients with both
    markers. AUC = U/(n₁n₀) of the responders (higher marker = response). Harrell's C treats
    the marker as a predictor of *longer* survival (:func:`harrell_c`). A group in which a
    candidate separates responders perfectly is marked ``separation = "perfect"`` and its
    interval is Newcombe's score interval, never a point.
    """
    if not candidates:
        raise InputError("no candidates", tag="candidates", value=[], expected="1 or more columns")
    if n_bootstrap < 0:
        raise InputError(
            "negative n_bootstrap", tag="n_bootstrap", value=n_bootstrap, expected=">= 0"
        )
    reference = candidates[0] if reference is None else reference
    if reference not in candidates:
        raise InputError(
            "reference is not a candidate",
            tag="reference",
            value=reference,
            expected=" | ".join(candidates),
        )
    if response_col not in df.columns:
        raise InputError(
            "column not found", tag=response_col, value="missing", expected="a column of df"
        )
    response = _responder_flags(df[response_col], response_col)
    markers = {name: _numeric_column(df, name) for name in candidates}
    outcomes = {
        name: _events(df, cols) for name, cols in (("pfs", pfs), ("os", os)) if cols is not None
    }
    subsets: list[tuple[str, pd.Series]] = [(_ALL, pd.Series(True, index=df.index))]
    if group_col is not None:
        if group_col not in df.columns:
            raise InputError(
                "column not found", tag=group_col, value="missing", expected="a column of df"
            )
        for value in sorted(df[group_col].dropna().unique(), key=str):
            subsets.append((str(value), df[group_col] == value))
    long_rows: list[dict[str, Any]] = []
    for group, in_group in subsets:
        sub = {name: m.loc[in_group] for name, m in markers.items()}
        long_rows += _auc_rows(group, sub, response.loc[in_group], reference, alpha)
        for endpoint, (durations, events) in outcomes.items():
            long_rows += _c_rows(
                group,
                endpoint,
                sub,
                durations.loc[in_group],
                events.loc[in_group],
                reference,
                alpha,
            )
    long = pd.DataFrame(long_rows)
    wide = _wide(long, subsets, candidates, response, markers, n_bootstrap, seed, alpha, interval)
    notes = [
        "AUC = P(marker of a responder > marker of a non-responder) + 0.5 P(tie)",
        "Harrell's C: higher marker predicts longer survival; pairs with equal times unused",
        "AUC interval: logit of AUC with DeLong's variance; Newcombe (2006) score interval "
        "when a group separates perfectly (separation = perfect/inverted) or a class has "
        "one patient (no DeLong variance, no paired test)"
        if interval == "delong"
        else f"AUC interval: stratified percentile bootstrap, {n_bootstrap} resamples, seed {seed}",
        "C interval: logit of C with the infinitesimal-jackknife variance (R survival)",
        f"p_vs_pet: paired test against {reference!r} on patients with both values "
        "(DeLong for AUC, IJ z-test for C)",
        "missing values dropped per candidate and outcome; see the n columns",
    ]
    return BiomarkerComparison(
        table=wide,
        n_bootstrap=n_bootstrap if interval == "bootstrap" else 0,
        seed=seed,
        alpha=alpha,
        notes=tuple(notes),
        comparisons=long,
        interval=interval,
    )


def _wide(
    long: pd.DataFrame,
    subsets: list[tuple[str, pd.Series]],
    candidates: Sequence[str],
    response: pd.Series,
    markers: dict[str, pd.Series],
    n_bootstrap: int,
    seed: int,
    alpha: float,
    interval: str,
) -> pd.DataFrame:
    """One row per (group, candidate) from the long rows (and the bootstrap if asked)."""
    index = long.set_index(["tumour_type", "candidate", "endpoint"])
    rows = []
    for group, in_group in subsets:
        for name in candidates:
            r = index.loc[(group, name, "response")]
            row: dict[str, Any] = {
                "group": group,
                "candidate": name,
                "n_response": int(r["n"]),
                "n_responders": int(r["n_positive"]),
                "auc": r["auc_or_c"],
                "auc_lower": r["ci_lower"],
                "auc_upper": r["ci_upper"],
                "auc_method": r["ci_method"],
                "separation": r["separation"],
                "p_auc_vs_pet": r["p_vs_pet"],
            }
            if interval == "bootstrap":
                marker, resp = markers[name].loc[in_group], response.loc[in_group]
                keep = marker.notna() & resp.notna()
                pos = marker[keep & (resp == 1.0)].to_numpy()
                neg = marker[keep & (resp == 0.0)].to_numpy()
                lower, upper = _bootstrap_auc(pos, neg, n_bootstrap, seed, alpha)
                row.update(auc_lower=lower, auc_upper=upper, auc_method="bootstrap")
            for endpoint in ("pfs", "os"):
                key = (group, name, endpoint)
                if key in index.index:
                    e = index.loc[key]
                    values = (int(e["n"]), e["auc_or_c"], e["ci_lower"], e["ci_upper"])
                    p = e["p_vs_pet"]
                else:
                    values, p = (0, math.nan, math.nan, math.nan), math.nan
                row[f"n_{endpoint}"] = values[0]
                row[f"c_{endpoint}"] = values[1]
                row[f"c_{endpoint}_lower"] = values[2]
                row[f"c_{endpoint}_upper"] = values[3]
                row[f"p_{endpoint}_vs_pet"] = p
            rows.append(row)
    return pd.DataFrame(rows)
