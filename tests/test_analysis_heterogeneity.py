"""Heterogeneity of lesion uptake from the per-patient uptake analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunopet.analysis.aggregates import patient_uptake
from immunopet.analysis.heterogeneity import HETEROGENEITY_COLUMNS, uptake_heterogeneity
from immunopet.errors import InputError


def _measurements(seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """2 tumour types x 5 patients x 3 lesions of 25 mm, SUVmax at 168 h; log values [a, b, n]."""
    rng = np.random.default_rng(seed)
    rows, clinical = [], []
    log_y = np.empty((2, 5, 3))
    for t, kind in enumerate(("bladder", "NSCLC")):
        a = 0.5 if t == 0 else -0.5
        for p in range(5):
            patient = f"P{t}{p}"
            clinical.append({"patient": patient, "tumour_type": kind})
            b = rng.normal(0.0, 0.4)
            for lesion in range(3):
                log_y[t, p, lesion] = 1.5 + a + b + rng.normal(0.0, 0.3)
                rows.append(
                    {
                        "patient": patient,
                        "series": "tracer-only",
                        "hours_pi": 168.0,
                        "nominal_hours": 168,
                        "voi": str(lesion + 1),
                        "kind": "lesion",
                        "suv_max": float(np.exp(log_y[t, p, lesion])),
                        "long_axis_mm": 25.0,
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(clinical), log_y


def test_components_follow_the_lesions_of_the_uptake_analysis() -> None:
    measurements, clinical, y = _measurements()
    uptake = patient_uptake(measurements, hours=168.0, metric="suv_max")
    result = uptake_heterogeneity(uptake, clinical)
    table = result.table.set_index("level")
    assert tuple(result.table.columns) == HETEROGENEITY_COLUMNS
    # balanced design: the lesion variance is the pooled within-patient variance (ANOVA MSE)
    mse = ((y - y.mean(axis=2, keepdims=True)) ** 2).sum() / (2 * 5 * 2)
    assert table.loc["lesion", "variance"] == pytest.approx(mse, rel=1e-3)
    assert list(table["n"]) == [2, 10, 30, 30]
    assert set(result.lesions.tumour_type) == {"bladder", "NSCLC"}
    assert result.metric == "suv_max" and result.hours == 168.0
    # ordered by tumour type, then by the patient's median
    first = result.lesions[result.lesions.tumour_type == "NSCLC"]
    medians = first.groupby("patient", sort=False)["value"].median().to_numpy()
    assert (np.diff(medians) >= 0).all()


def test_without_tumour_type() -> None:
    measurements, clinical, _ = _measurements()
    uptake = patient_uptake(measurements, hours=168.0, metric="suv_max")
    result = uptake_heterogeneity(uptake, clinical.drop(columns="tumour_type"))
    assert list(result.table.level) == ["patient", "lesion", "total"]
    assert set(result.lesions.tumour_type) == {"all"}


def test_too_few_lesions() -> None:
    measurements, clinical, _ = _measurements()
    one = measurements[measurements.voi == "1"]
    uptake = patient_uptake(one, hours=168.0, metric="suv_max")
    with pytest.raises(InputError, match="too few lesions"):
        uptake_heterogeneity(uptake, clinical)
