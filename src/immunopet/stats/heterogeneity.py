"""Variance components of lesion uptake: within patients, between patients, between tumour types.

The model is the nested random-effects model of log uptake

.. math::

    \\log y_{tpl} = \\mu + a_t + b_{tp} + e_{tpl},\\quad
    a_t \\sim N(0, \\sigma^2_{type}),\\ b_{tp} \\sim N(0, \\sigma^2_{patient}),\\
    e_{tpl} \\sim N(0, \\sigma^2_{lesion}),

fitted by REML with :class:`statsmodels.regression.mixed_linear_model.MixedLM` (tumour type
as the grouping factor with a random intercept, patient as a variance component inside it).
With a single tumour type the type level is left out (patient is then the grouping factor).
For a balanced design the REML estimates equal the ANOVA (method-of-moments) estimates
from the mean squares whenever those are positive.

Intraclass correlations: ``patient`` = correlation of two lesions of the same patient,
:math:`(\\sigma^2_{type} + \\sigma^2_{patient}) / \\sigma^2_{total}`; ``tumour_type`` =
correlation of two lesions of different patients with the same tumour type,
:math:`\\sigma^2_{type} / \\sigma^2_{total}`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from immunopet.errors import InputError
from immunopet.stats.results import _Tabular

__all__ = ["VarianceComponents", "variance_components"]

LEVELS = ("tumour_type", "patient", "lesion")


@dataclass(frozen=True, repr=False, eq=False)
class VarianceComponents(_Tabular):
    """Variance components of log uptake and the intraclass correlations.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per level (``tumour_type``, ``patient``, ``lesion``, ``total``) with
        ``level``, ``variance`` (of the natural log of uptake), ``share`` (of the total),
        ``icc`` (module docstring; NaN for ``lesion`` and ``total``), ``n`` (tumour types,
        patients, lesions).
    method : str
        ``"REML (statsmodels MixedLM)"``.
    notes : tuple of str
        Conventions and any convergence warning.
    """

    table: pd.DataFrame
    method: str
    notes: tuple[str, ...] = ()

    def _title(self) -> str:
        return "Variance components of log uptake"

    @property
    def summary(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()


_METHODS = ("lbfgs", "bfgs", "powell", "nm")
"""Optimisers tried in turn: the first whose REML fit converges is used."""


def _fit(model: Any) -> tuple[Any, str]:
    """REML fit with the first optimiser of :data:`_METHODS` that converges."""
    from numpy.linalg import LinAlgError

    fallback: tuple[Any, str] | None = None
    for method in _METHODS:
        try:
            fit = model.fit(reml=True, method=[method])
        except (LinAlgError, ValueError, ZeroDivisionError):
            continue
        if bool(getattr(fit, "converged", False)):
            return fit, method
        fallback = fallback or (fit, method)
    if fallback is not None:
        return fallback
    raise InputError(
        "the mixed model of log uptake could not be fitted",
        tag="variance components",
        value=f"{model.nobs} lesions",
        expected="data a REML fit converges on",
    )


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        raise InputError("column not found", tag=name, value="missing", expected="a column of df")
    return df[name]


def variance_components(
    df: pd.DataFrame,
    *,
    value_col: str,
    patient_col: str = "patient",
    type_col: str | None = "tumour_type",
) -> VarianceComponents:
    """Fit the nested random-effects model of log uptake (REML) and report its components.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per lesion.
    value_col : str
        Uptake (SUV > 0); rows with a missing value are dropped.
    patient_col : str
        Patient identifier.
    type_col : str, optional
        Tumour type; None (or a single type) leaves the type level out.

    Returns
    -------
    VarianceComponents

    Raises
    ------
    InputError
        If a column is missing, a value is not positive, or there are fewer than two
        patients or no patient with two lesions.

    Examples
    --------
    >>> df = pd.DataFrame({"patient": list("aabbcc"), "suv": [1, 2, 4, 8, 2, 4.0]})
    >>> vc = variance_components(df, value_col="suv", type_col=None)
    >>> list(vc.table.level)
    ['patient', 'lesion', 'total']
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    values = pd.to_numeric(_column(df, value_col), errors="coerce")
    keep = values.notna()
    if (values[keep] <= 0).any():
        raise InputError(
            "uptake must be positive for its logarithm",
            tag=value_col,
            value=float(values[keep][values[keep] <= 0].iloc[0]),
            expected="> 0",
        )
    data = pd.DataFrame(
        {"y": np.log(values[keep].astype(float)), "patient": _column(df, patient_col)[keep]}
    )
    data["patient"] = data["patient"].astype(str)
    with_type = type_col is not None and _column(df, type_col)[keep].nunique() > 1
    if with_type and type_col is not None:
        data["type"] = _column(df, type_col)[keep].astype(str)
        data["patient"] = data["type"] + "/" + data["patient"]
    n_patients = data["patient"].nunique()
    if n_patients < 2 or data.groupby("patient").size().max() < 2:
        raise InputError(
            "too few lesions for variance components",
            tag=value_col,
            value=f"{len(data)} lesions in {n_patients} patients",
            expected="2 or more patients and a patient with 2 or more lesions",
        )
    notes = [
        "variance of the natural log of uptake; REML, statsmodels MixedLM",
        "icc patient: two lesions of one patient; icc tumour_type: two patients of one type",
    ]
    exog = np.ones((len(data), 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if with_type:
            model = MixedLM.from_formula(
                "y ~ 1",
                data=data,
                groups="type",
                re_formula="1",
                vc_formula={"patient": "0 + C(patient)"},
            )
        else:
            model = MixedLM(
                data["y"].to_numpy(), exog, groups=data["patient"].to_numpy(), exog_re=exog
            )
        fit, method = _fit(model)
    if with_type:
        var_type = float(np.asarray(fit.cov_re)[0, 0])
        var_patient = float(np.asarray(fit.vcomp)[0])
    else:
        var_type = math.nan
        var_patient = float(np.asarray(fit.cov_re)[0, 0])
    var_lesion = float(fit.scale)
    if method != _METHODS[0]:
        notes.append(f"MixedLM fitted with the {method} optimiser ({_METHODS[0]} failed)")
    if not bool(getattr(fit, "converged", True)):
        notes.append("MixedLM: the REML fit did not converge; read the components with care")
    for w in caught:
        text = str(w.message).split("\n")[0]
        if "converge" in text.lower() or "boundary" in text.lower() or "singular" in text.lower():
            notes.append(f"MixedLM: {text}")
    var_type_sum = 0.0 if math.isnan(var_type) else max(var_type, 0.0)
    var_patient = max(var_patient, 0.0)
    total = var_type_sum + var_patient + var_lesion
    rows = []
    if with_type:
        rows.append(
            {
                "level": "tumour_type",
                "variance": var_type_sum,
                "share": var_type_sum / total,
                "icc": var_type_sum / total,
                "n": int(data["type"].nunique()),
            }
        )
    rows.append(
        {
            "level": "patient",
            "variance": var_patient,
            "share": var_patient / total,
            "icc": (var_type_sum + var_patient) / total,
            "n": int(n_patients),
        }
    )
    rows.append(
        {
            "level": "lesion",
            "variance": var_lesion,
            "share": var_lesion / total,
            "icc": math.nan,
            "n": len(data),
        }
    )
    rows.append(
        {"level": "total", "variance": total, "share": 1.0, "icc": math.nan, "n": len(data)}
    )
    return VarianceComponents(
        table=pd.DataFrame(rows), method="REML (statsmodels MixedLM)", notes=tuple(notes)
    )
