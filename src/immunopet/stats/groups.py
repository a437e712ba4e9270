"""Group comparisons and rank correlation, as the durvalumab study ran them in SPSS 25.

All p-values are two-sided. Missing values (NaN, None) are dropped per group and the number
dropped is recorded in the result's notes; nothing else is changed in the data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.typing import NAType
from scipy import stats

from immunopet.errors import InputError
from immunopet.stats.results import TestResult

__all__ = [
    "PDL1_GROUPS",
    "kruskal_wallis",
    "mann_whitney",
    "pdl1_group",
    "pdl1_groups",
    "spearman",
    "wilcoxon_signed_rank",
]

#: PD-L1 expression groups of the durvalumab study, in order.
PDL1_GROUPS: tuple[str, str, str] = ("0%", "1-49%", ">=50%")

#: The exact Mann–Whitney p-value is added to ``mann_whitney(method="spss")`` results when
#: n1 * n2 is at most this (our threshold for "small samples", where SPSS also prints one).
_EXACT_MAX_PRODUCT = 400

ArrayLike = Sequence[float] | npt.ArrayLike


def _to_float_array(values: ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """Return ``values`` as a 1-D float array (NaN for missing) or raise InputError."""
    try:
        series = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
        array = pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InputError(
            "values must be numbers (NaN or None for missing)",
            tag=name,
            value=str(exc),
            expected="a sequence of numbers",
        ) from exc
    if np.isinf(array).any():
        raise InputError("infinite value", tag=name, value="inf", expected="finite numbers")
    return array


def _drop_missing(values: ArrayLike, name: str, notes: list[str]) -> npt.NDArray[np.float64]:
    array = _to_float_array(values, name)
    missing = int(np.isnan(array).sum())
    if missing:
        notes.append(f"{missing} missing value(s) dropped from {name}")
    kept = array[~np.isnan(array)]
    if kept.size == 0:
        raise InputError("no observations", tag=name, value=0, expected="at least one value")
    return kept


def mann_whitney(
    a: ArrayLike,
    b: ArrayLike,
    *,
    method: Literal["spss", "exact", "asymptotic"] = "spss",
    labels: tuple[str, str] = ("a", "b"),
) -> TestResult:
    """Mann–Whitney U test of two independent samples (two-sided).

    Parameters
    ----------
    a, b : sequence of float
        The two samples; NaN/None are dropped (and counted in the notes).
    method : {"spss", "exact", "asymptotic"}
        ``"asymptotic"``: normal approximation with the tie-corrected variance and **no**
        continuity correction, which is what SPSS prints as "Asymp. Sig. (2-tailed)" and R
        as ``wilcox.test(a, b, exact=FALSE, correct=FALSE)``.
        ``"exact"``: the exact permutation distribution of U, two-sided as twice the smaller
        one-sided probability; with ties it is *not* corrected for them (SPSS's
        "Exact Sig. [2*(1-tailed Sig.)]" carries the same footnote).
        ``"spss"`` (default): the asymptotic p-value as the headline (``method`` of the
        result is ``"asymptotic"``), and, for small samples (n1·n2 ≤ 400) the exact p-value
        in ``extra["p_exact"]`` and the notes, because SPSS prints both and papers usually
        quote the asymptotic one.
    labels : tuple of str
        Names of the two groups.

    Returns
    -------
    TestResult
        ``statistic`` is U of the first sample, ``U1 = R1 − n1(n1+1)/2`` (SciPy's
        convention); ``extra`` holds ``U_min`` (the smaller of U1 and U2 = n1·n2 − U1, the
        value SPSS prints as "Mann-Whitney U") and ``z`` (the normal deviate of the
        asymptotic test, negative when ``a`` tends to be smaller).

    Raises
    ------
    InputError
        If a sample is empty or not numeric, or ``method`` is unknown.

    Notes
    -----
    With :math:`t_k` the sizes of the tie groups in the pooled sample and :math:`N = n_1+n_2`,

    .. math::

        z = \\frac{U_1 - n_1 n_2 / 2}{\\sigma_U},\\qquad
        \\sigma_U^2 = \\frac{n_1 n_2}{12}
                     \\left(N + 1 - \\frac{\\sum_k (t_k^3 - t_k)}{N(N-1)}\\right)

    and the asymptotic p-value is :math:`2\\,(1 - \\Phi(|z|))`.

    Examples
    --------
    >>> r = mann_whitney([1, 2, 3], [4, 5, 6])
    >>> r.statistic, round(r.p_value, 4), r.extra["p_exact"]
    (0.0, 0.0495, 0.1)
    """
    if method not in ("spss", "exact", "asymptotic"):
        raise InputError(
            "unknown method", tag="method", value=method, expected="spss, exact or asymptotic"
        )
    notes: list[str] = []
    x = _drop_missing(a, labels[0], notes)
    y = _drop_missing(b, labels[1], notes)
    n1, n2 = x.size, y.size
    asym = stats.mannwhitneyu(
        x, y, alternative="two-sided", method="asymptotic", use_continuity=False
    )
    u1 = float(asym.statistic)
    p_asym = float(asym.pvalue)
    z = math.copysign(float(stats.norm.isf(p_asym / 2.0)), u1 - n1 * n2 / 2.0)
    if u1 == n1 * n2 / 2.0:
        z = 0.0
    has_ties = np.unique(np.concatenate([x, y])).size < n1 + n2
    if math.isnan(p_asym):
        notes.append("all values tied: the asymptotic p-value is undefined")
    extra: dict[str, float] = {"U_min": min(u1, n1 * n2 - u1), "z": z}
    if method == "asymptotic":
        p_value, used = p_asym, "asymptotic"
        notes.append("normal approximation, tie-corrected variance, no continuity correction")
    elif method == "exact":
        p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue)
        used = "exact"
        if has_ties:
            notes.append("exact p-value not corrected for ties")
    else:
        p_value, used = p_asym, "asymptotic"
        notes.append(
            "p-value: normal approximation, tie-corrected variance, no continuity correction "
            "(SPSS 'Asymp. Sig. (2-tailed)')"
        )
        if n1 * n2 <= _EXACT_MAX_PRODUCT:
            p_exact = float(
                stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
            )
            extra["p_exact"] = p_exact
            tie_note = ", not corrected for ties" if has_ties else ""
            notes.append(f"exact p = 2*(1-tailed) = {p_exact:.4g}{tie_note} (SPSS 'Exact Sig.')")
    return TestResult(
        test_name="Mann-Whitney U",
        statistic=u1,
        p_value=p_value,
        n=(n1, n2),
        method=used,
        groups=labels,
        statistic_name="U",
        notes=tuple(notes),
        extra=extra,
    )


def kruskal_wallis(*groups: ArrayLike, labels: Sequence[str] | None = None) -> TestResult:
    """Kruskal–Wallis H test of k independent samples.

    Parameters
    ----------
    *groups : sequence of float
        Two or more samples; NaN/None are dropped per sample (and counted in the notes).
    labels : sequence of str, optional
        Names of the groups (default ``"1"``, ``"2"``, ...).

    Returns
    -------
    TestResult
        ``statistic`` is the tie-corrected H, ``p_value`` from the chi-square distribution
        with k − 1 degrees of freedom (``extra["df"]``), as SPSS and R ``kruskal.test`` do.

    Raises
    ------
    InputError
        If fewer than two groups are given, a group is empty, or all values are equal.

    Notes
    -----
    With :math:`R_i` the rank sum of group *i* in the pooled ranking (mid-ranks for ties),

    .. math::

        H = \\frac{\\frac{12}{N(N+1)} \\sum_i \\frac{R_i^2}{n_i} - 3(N+1)}
                 {1 - \\sum_k (t_k^3 - t_k) / (N^3 - N)}

    Examples
    --------
    >>> r = kruskal_wallis([1, 2], [3, 4], [5, 6])
    >>> round(r.statistic, 4), r.extra["df"]
    (4.5714, 2.0)
    """
    if labels is None:
        labels = [str(i + 1) for i in range(len(groups))]
    if len(groups) < 2:
        raise InputError("too few groups", tag="groups", value=len(groups), expected="at least 2")
    if len(labels) != len(groups):
        raise InputError(
            "one label per group needed",
            tag="labels",
            value=len(labels),
            expected=f"{len(groups)} labels",
        )
    notes: list[str] = []
    samples = [_drop_missing(g, str(lab), notes) for g, lab in zip(groups, labels, strict=True)]
    pooled = np.concatenate(samples)
    if np.unique(pooled).size == 1:
        raise InputError(
            "all values are equal; H is undefined",
            tag="groups",
            value=float(pooled[0]),
            expected="at least two distinct values",
        )
    result = stats.kruskal(*samples)
    notes.append("tie-corrected H; chi-square approximation")
    return TestResult(
        test_name="Kruskal-Wallis H",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        n=tuple(s.size for s in samples),
        method="asymptotic",
        groups=tuple(labels),
        statistic_name="H",
        notes=tuple(notes),
        extra={"df": float(len(samples) - 1)},
    )


def spearman(x: ArrayLike, y: ArrayLike) -> TestResult:
    """Spearman rank correlation with its two-sided p-value.

    Parameters
    ----------
    x, y : sequence of float
        Paired observations; a pair with a missing value is dropped (counted in the notes).

    Returns
    -------
    TestResult
        ``statistic`` is rho (Pearson correlation of the mid-ranks); the p-value uses
        :math:`t = \\rho\\sqrt{(n-2)/(1-\\rho^2)}` with n − 2 degrees of freedom, as SPSS and
        R ``cor.test(method="spearman", exact=FALSE)`` do. A constant variable gives NaN.

    Raises
    ------
    InputError
        If the lengths differ or fewer than 3 complete pairs remain.

    Examples
    --------
    >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 25]).statistic, 12)
    0.8
    """
    xa = _to_float_array(x, "x")
    ya = _to_float_array(y, "y")
    if xa.size != ya.size:
        raise InputError(
            "x and y differ in length", tag="y", value=ya.size, expected=f"{xa.size} values"
        )
    keep = ~(np.isnan(xa) | np.isnan(ya))
    notes: list[str] = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} incomplete pair(s) dropped")
    xa, ya = xa[keep], ya[keep]
    if xa.size < 3:
        raise InputError(
            "too few complete pairs", tag="x, y", value=int(xa.size), expected="at least 3"
        )
    if np.unique(xa).size == 1 or np.unique(ya).size == 1:
        notes.append("a variable is constant; rho is undefined")
        rho, p_value = math.nan, math.nan
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            result = stats.spearmanr(xa, ya)
        rho, p_value = float(result.statistic), float(result.pvalue)
    return TestResult(
        test_name="Spearman rank correlation",
        statistic=rho,
        p_value=p_value,
        n=(int(xa.size),),
        method="t-distribution",
        groups=("x, y",),
        statistic_name="rho",
        notes=tuple(notes),
    )


def wilcoxon_signed_rank(
    a: ArrayLike, b: ArrayLike, *, labels: tuple[str, str] = ("a", "b")
) -> TestResult:
    """Wilcoxon signed-rank test of paired observations (two-sided).

    Parameters
    ----------
    a, b : sequence of float
        Paired observations (``a[i]`` and ``b[i]`` of one subject); a pair with a missing
        value is dropped (counted in the notes). Differences are ``a - b``.
    labels : tuple of str
        Names of the two conditions.

    Returns
    -------
    TestResult
        ``statistic`` is V, the sum of the ranks of the positive differences (R's
        ``wilcox.test(a, b, paired = TRUE)``); zero differences are dropped before ranking
        (Wilcoxon's rule, as R and SPSS do). The p-value is exact (the permutation
        distribution of V, ``method = "exact"``) when no difference is zero or tied and at
        most 50 remain, else the normal approximation with the tie-corrected variance and no
        continuity correction (``"asymptotic"``: SPSS's "Asymp. Sig. (2-tailed)", R's
        ``exact = FALSE, correct = FALSE``). ``n`` is the number of complete pairs;
        ``extra`` holds ``n_nonzero``, ``z`` (the normal deviate, negative when ``a`` tends
        to be smaller), ``p_asymptotic`` and, when computed, ``p_exact``.

    Raises
    ------
    InputError
        If the lengths differ, fewer than 2 complete pairs remain or every difference is 0.

    Examples
    --------
    >>> r = wilcoxon_signed_rank([1.83, 2.10, 0.95, 4.2, 3.3, 2.2, 1.1],
    ...                          [1.2, 2.5, 0.5, 2.1, 1.0, 1.9, 0.3])
    >>> r.statistic, r.p_value, r.method
    (26.0, 0.046875, 'exact')
    """
    xa = _to_float_array(a, labels[0])
    ya = _to_float_array(b, labels[1])
    if xa.size != ya.size:
        raise InputError(
            "paired samples differ in length",
            tag=labels[1],
            value=ya.size,
            expected=f"{xa.size} values",
        )
    keep = ~(np.isnan(xa) | np.isnan(ya))
    notes: list[str] = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} incomplete pair(s) dropped")
    d = xa[keep] - ya[keep]
    n_pairs = int(d.size)
    if n_pairs < 2:
        raise InputError(
            "too few complete pairs", tag=", ".join(labels), value=n_pairs, expected=">= 2"
        )
    nonzero = d[d != 0]
    if nonzero.size == 0:
        raise InputError(
            "every paired difference is zero; the test is undefined",
            tag=", ".join(labels),
            value=0,
            expected="at least one non-zero difference",
        )
    if nonzero.size < n_pairs:
        notes.append(f"{n_pairs - nonzero.size} zero difference(s) dropped before ranking")
    ranks = stats.rankdata(np.abs(nonzero))
    v = float(ranks[nonzero > 0].sum())
    approx = stats.wilcoxon(nonzero, method="approx", correction=False, zero_method="wilcox")
    p_asym = float(approx.pvalue)
    m = nonzero.size
    z = math.copysign(float(stats.norm.isf(p_asym / 2.0)), v - m * (m + 1) / 4.0)
    extra: dict[str, float] = {"n_nonzero": float(m), "z": z, "p_asymptotic": p_asym}
    ties = np.unique(np.abs(nonzero)).size < m
    if not ties and m <= 50 and m == n_pairs:
        p_value = float(stats.wilcoxon(nonzero, method="exact").pvalue)
        extra["p_exact"] = p_value
        used = "exact"
        notes.append("exact p-value (permutation distribution of V)")
    else:
        p_value, used = p_asym, "asymptotic"
        why = "tied differences" if ties else ("zero differences" if m < n_pairs else "n > 50")
        notes.append(
            f"p-value: normal approximation ({why}), tie-corrected variance, no continuity "
            "correction"
        )
    return TestResult(
        test_name="Wilcoxon signed-rank",
        statistic=v,
        p_value=p_value,
        n=(n_pairs,),
        method=used,
        groups=labels,
        statistic_name="V",
        notes=tuple(notes),
        extra=extra,
    )


def pdl1_group(percent: float | str | None) -> str | NAType:
    """Return the PD-L1 expression group of a TPS or CPS percentage.

    Parameters
    ----------
    percent : float, str or None, percent
        0–100; ``"NE"`` (not evaluable), ``""``, None or NaN mean missing. A string such as
        ``"12.5"`` is read as a number.

    Returns
    -------
    str or pandas.NA
        ``"0%"`` for values below 1 % (the usual "< 1 %" category; the study only saw 0),
        ``"1-49%"`` for 1 ≤ value < 50, ``">=50%"`` for 50 and above; ``pandas.NA`` when
        missing.

    Raises
    ------
    InputError
        If the value is outside 0–100 or not a number.

    Examples
    --------
    >>> pdl1_group(0), pdl1_group(1), pdl1_group(49.5), pdl1_group(100)
    ('0%', '1-49%', '1-49%', '>=50%')
    >>> pdl1_group("NE") is pd.NA
    True
    """
    if percent is None:
        return pd.NA
    if isinstance(percent, str):
        text = percent.strip()
        if text.upper() in ("", "NE", "NA", "NAN"):
            return pd.NA
        try:
            value = float(text)
        except ValueError as exc:
            raise InputError(
                "not a PD-L1 percentage", tag="percent", value=percent, expected="0-100 or NE"
            ) from exc
    else:
        value = float(percent)
    if math.isnan(value):
        return pd.NA
    if not 0.0 <= value <= 100.0:
        raise InputError(
            "PD-L1 percentage out of range", tag="percent", value=percent, expected="0-100"
        )
    if value < 1.0:
        return PDL1_GROUPS[0]
    if value < 50.0:
        return PDL1_GROUPS[1]
    return PDL1_GROUPS[2]


def pdl1_groups(percents: Sequence[float | str | None] | pd.Series) -> pd.Series:
    """Vectorised :func:`pdl1_group`: an ordered categorical Series.

    Parameters
    ----------
    percents : sequence or pandas.Series, percent
        TPS or CPS values; the index of a Series is kept.

    Returns
    -------
    pandas.Series
        Categorical with ordered categories ``"0%" < "1-49%" < ">=50%"``; missing as NaN.

    Examples
    --------
    >>> pdl1_groups([0, 25, "NE", 90]).tolist()
    ['0%', '1-49%', nan, '>=50%']
    """
    series = percents if isinstance(percents, pd.Series) else pd.Series(list(percents))
    labels = [pdl1_group(v) for v in series]
    dtype = pd.CategoricalDtype(list(PDL1_GROUPS), ordered=True)
    return pd.Series(
        [None if lab is pd.NA else lab for lab in labels], index=series.index, dtype=dtype
    )
