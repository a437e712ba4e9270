"""Candidate biomarkers side by side for response and survival (the atezolizumab question).

Does pre-treatment PET uptake predict response and survival better than PD-L1 TPS/CPS or an
RNA-seq score? For each candidate column this module reports the AUC for response (with a
bootstrap interval) and Harrell's C for PFS and OS, overall and per tumour type.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from lifelines.utils import concordance_index
from scipy import stats

from immunopet.errors import InputError
from immunopet.stats.results import BiomarkerComparison

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
        Bootstrap resamples for the AUC interval (0 = no interval).
    seed : int
        Seed of ``numpy.random.default_rng``; every (group, candidate) uses a fresh
        generator from this seed, so a row does not depend on the other candidates.
    group_col : str, optional
        Tumour type (or other) column: rows per group are added to the overall rows.
    alpha : float
        1 − confidence level of the AUC interval.

    Returns
    -------
    BiomarkerComparison
        ``table`` has one row per (group, candidate), group ``"all"`` first, with columns
        ``group``, ``candidate``, ``n_response`` (patients with marker and response),
        ``n_responders``, ``auc``, ``auc_lower``, ``auc_upper``, ``n_pfs``, ``c_pfs``,
        ``n_os``, ``c_os``.

    Raises
    ------
    InputError
        If a column is missing or non-numeric, or the response is not 0/1.

    Notes
    -----
    Missing values are dropped per candidate and per outcome; the ``n_*`` columns say how
    many patients each number rests on. AUC = U/(n₁n₀) of the responders (higher marker =
    response; 0.5 = no discrimination, below 0.5 = lower marker in responders). Its
    interval is the percentile bootstrap resampling responders and non-responders
    separately (stratified, as pROC does), via :func:`scipy.stats.bootstrap`; it needs at
    least two patients in each class. Harrell's C treats the marker as a predictor of
    longer survival (:func:`harrell_c`).
    """
    if not candidates:
        raise InputError("no candidates", tag="candidates", value=[], expected="1 or more columns")
    if n_bootstrap < 0:
        raise InputError(
            "negative n_bootstrap", tag="n_bootstrap", value=n_bootstrap, expected=">= 0"
        )
    if response_col not in df.columns:
        raise InputError(
            "column not found", tag=response_col, value="missing", expected="a column of df"
        )
    response = _responder_flags(df[response_col], response_col)
    markers = {name: _numeric_column(df, name) for name in candidates}
    subsets: list[tuple[str, pd.Series]] = [(_ALL, pd.Series(True, index=df.index))]
    if group_col is not None:
        if group_col not in df.columns:
            raise InputError(
                "column not found", tag=group_col, value="missing", expected="a column of df"
            )
        for value in sorted(df[group_col].dropna().unique(), key=str):
            subsets.append((str(value), df[group_col] == value))
    rows = []
    for group, in_group in subsets:
        sub = df.loc[in_group]
        for name in candidates:
            marker = markers[name].loc[in_group]
            resp = response.loc[in_group]
            keep = marker.notna() & resp.notna()
            pos = marker[keep & (resp == 1.0)].to_numpy()
            neg = marker[keep & (resp == 0.0)].to_numpy()
            auc = (
                auc_response(
                    np.concatenate([pos, neg]),
                    np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)]),
                )
                if pos.size and neg.size
                else math.nan
            )
            lower, upper = _bootstrap_auc(pos, neg, n_bootstrap, seed, alpha)
            n_pfs, c_pfs = _survival_c(marker, sub, pfs)
            n_os, c_os = _survival_c(marker, sub, os)
            rows.append(
                {
                    "group": group,
                    "candidate": name,
                    "n_response": int(keep.sum()),
                    "n_responders": int(pos.size),
                    "auc": auc,
                    "auc_lower": lower,
                    "auc_upper": upper,
                    "n_pfs": n_pfs,
                    "c_pfs": c_pfs,
                    "n_os": n_os,
                    "c_os": c_os,
                }
            )
    notes = (
        "AUC = P(marker of a responder > marker of a non-responder) + 0.5 P(tie)",
        f"AUC interval: stratified percentile bootstrap, {n_bootstrap} resamples, seed {seed}",
        "Harrell's C: higher marker predicts longer survival "
        "(lifelines concordance_index(durations, marker, events))",
        "missing values dropped per candidate and outcome; see the n_* columns",
    )
    return BiomarkerComparison(
        table=pd.DataFrame(rows), n_bootstrap=n_bootstrap, seed=seed, alpha=alpha, notes=notes
    )
