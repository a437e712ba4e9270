"""Variance components of log uptake against the ANOVA estimates of a balanced nested design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunopet.errors import InputError
from immunopet.stats.heterogeneity import variance_components


def _balanced(seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """3 tumour types x 6 patients x 4 lesions; returns the frame and log values [a, b, n]."""
    rng = np.random.default_rng(seed)
    log_y = np.empty((3, 6, 4))
    rows = []
    for t in range(3):
        a = rng.normal(0.0, 0.6)
        for p in range(6):
            b = rng.normal(0.0, 0.4)
            for lesion in range(4):
                log_y[t, p, lesion] = 1.0 + a + b + rng.normal(0.0, 0.3)
                rows.append(
                    {
                        "tumour_type": f"type{t}",
                        "patient": f"P{p}",  # same labels in each type: nesting is by type
                        "suv": float(np.exp(log_y[t, p, lesion])),
                    }
                )
    return pd.DataFrame(rows), log_y


def test_nested_components_equal_anova_mean_squares() -> None:
    df, y = _balanced()
    a, b, n = y.shape
    # Balanced nested ANOVA (Searle, Casella & McCulloch 1992, ch. 4):
    # E[MSE] = s2_l; E[MS_patient(type)] = s2_l + n s2_p; E[MS_type] = s2_l + n s2_p + b n s2_t
    grand = y.mean()
    type_mean = y.mean(axis=(1, 2))
    patient_mean = y.mean(axis=2)
    ms_type = b * n * ((type_mean - grand) ** 2).sum() / (a - 1)
    ms_patient = n * ((patient_mean - type_mean[:, None]) ** 2).sum() / (a * (b - 1))
    ms_error = ((y - patient_mean[..., None]) ** 2).sum() / (a * b * (n - 1))
    s2_l = ms_error
    s2_p = (ms_patient - ms_error) / n
    s2_t = (ms_type - ms_patient) / (b * n)
    assert s2_p > 0 and s2_t > 0  # REML = ANOVA only when the moments are positive
    vc = variance_components(df, value_col="suv").table.set_index("level")
    assert vc.loc["lesion", "variance"] == pytest.approx(s2_l, rel=1e-3)
    assert vc.loc["patient", "variance"] == pytest.approx(s2_p, rel=1e-3)
    assert vc.loc["tumour_type", "variance"] == pytest.approx(s2_t, rel=1e-3)
    total = s2_l + s2_p + s2_t
    assert vc.loc["total", "variance"] == pytest.approx(total, rel=1e-3)
    assert vc.loc["patient", "icc"] == pytest.approx((s2_t + s2_p) / total, rel=1e-3)
    assert vc.loc["tumour_type", "share"] == pytest.approx(s2_t / total, rel=1e-3)
    assert vc["share"].iloc[:3].sum() == pytest.approx(1.0)
    assert list(vc["n"]) == [3, 18, 72, 72]


def test_one_way_without_types() -> None:
    df, y = _balanced(5)
    one = df[df.tumour_type == "type0"]
    yy = y[0]
    b, n = yy.shape
    ms_b = n * ((yy.mean(axis=1) - yy.mean()) ** 2).sum() / (b - 1)
    ms_w = ((yy - yy.mean(axis=1)[:, None]) ** 2).sum() / (b * (n - 1))
    vc = variance_components(one, value_col="suv").table.set_index("level")
    assert "tumour_type" not in vc.index
    assert vc.loc["patient", "variance"] == pytest.approx((ms_b - ms_w) / n, rel=1e-3)
    assert vc.loc["lesion", "variance"] == pytest.approx(ms_w, rel=1e-3)


def test_errors() -> None:
    df = pd.DataFrame({"patient": ["a", "b"], "suv": [1.0, 0.0]})
    with pytest.raises(InputError, match="positive"):
        variance_components(df, value_col="suv", type_col=None)
    df = pd.DataFrame({"patient": ["a", "b"], "suv": [1.0, 2.0]})
    with pytest.raises(InputError, match="too few lesions"):
        variance_components(df, value_col="suv", type_col=None)
    with pytest.raises(InputError, match="column not found"):
        variance_components(df, value_col="suvmax", type_col=None)


def test_unbalanced_one_way_against_direct_reml() -> None:
    # 3 patients with 3, 2, 3 lesions (a case where statsmodels' lbfgs meets a singular
    # matrix). Reference: the REML log-likelihood of y = mu + b_p + e written out here,
    #   -2 l = log|V| + log|X' V^-1 X| + r' V^-1 r,  V = s2_e I + s2_p Z Z',
    # maximised with scipy (independent of statsmodels).
    from scipy import optimize

    suv = np.array([3.389027, 0.403811, 1.632248, 9.569689, 7.472586, 0.104315, 1.386423, 3.670251])
    patients = np.array(["a", "a", "a", "b", "b", "c", "c", "c"])
    y = np.log(suv)
    z = (patients[:, None] == np.array(["a", "b", "c"])[None, :]).astype(float)
    x = np.ones((len(y), 1))

    def minus2_reml(log_s2: np.ndarray) -> float:
        s2_p, s2_e = np.exp(log_s2)
        v = s2_e * np.eye(len(y)) + s2_p * z @ z.T
        vi = np.linalg.inv(v)
        beta = np.linalg.solve(x.T @ vi @ x, x.T @ vi @ y)
        r = y - x @ beta
        return float(np.linalg.slogdet(v)[1] + np.linalg.slogdet(x.T @ vi @ x)[1] + r @ vi @ r)

    best = optimize.minimize(
        minus2_reml,
        np.log([0.5, 1.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000},
    )
    s2_p, s2_e = np.exp(best.x)
    df = pd.DataFrame({"patient": patients, "suv": suv})
    vc = variance_components(df, value_col="suv", type_col=None).table.set_index("level")
    assert vc.loc["patient", "variance"] == pytest.approx(s2_p, rel=2e-3)
    assert vc.loc["lesion", "variance"] == pytest.approx(s2_e, rel=2e-3)
