"""Fit the compartment model of the synthetic trial to its anchor curves and print the parameters.

The synthetic trial's observable SUV curves are the anchor tables of
:mod:`immunopet.synthetic.kinetics` (they reproduce the published biodistribution). This script
derives the compartment parameters that stand for them: a bi-exponential whole-blood curve per
series, then per organ (and for the tumour shape) an irreversible two-tissue compartment model
with a blood volume fraction, fitted by least squares in log SUV at the anchor hours. The printed
dictionaries are pasted into ``synthetic/kinetics.py`` (``BLOOD_BIEXPONENTIAL``,
``COMPARTMENTS``); ``tests/test_synthetic_kinetics.py`` checks the pasted values against the
anchors.

Run: ``python scripts/fit_synthetic_kinetics.py``
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from immunopet.synthetic.kinetics import (
    ANCHOR_HOURS,
    LESION_RELATIVE_ANCHORS,
    ORGAN_ANCHORS,
    PREDOSE_LESION_FACTOR,
    BiExponential,
    Compartments,
    interpolate_suv,
)

HOURS = np.asarray(ANCHOR_HOURS)
K2_BOUNDS = (0.2, 20.0)  # 1/h: reversible exchange within hours (Patlak regime)


def fit_blood(anchors: tuple[float, ...]) -> BiExponential:
    target = np.log(np.asarray(interpolate_suv(HOURS, anchors)))

    def residual(p: np.ndarray) -> np.ndarray:
        a1, r1, a2, r2 = np.exp(p)
        return np.log(a1 * np.exp(-r1 * HOURS) + a2 * np.exp(-r2 * HOURS)) - target

    fit = least_squares(residual, np.log([4.0, 0.06, 4.0, 0.007]))
    a1, r1, a2, r2 = (float(f"{v:.4g}") for v in np.exp(fit.x))
    return BiExponential(a1, r1, a2, r2)


def fit_tissue(anchors: tuple[float, ...], blood: BiExponential) -> Compartments:
    target = np.log(np.asarray(interpolate_suv(HOURS, anchors)))

    def residual(p: np.ndarray) -> np.ndarray:
        k1, k2, k3 = (float(v) for v in np.exp(p[:3]))
        model = Compartments(k1, k2, k3, float(p[3]))
        return np.log(model.tissue_suv(HOURS, blood)) - target

    best = None
    for k2 in (0.3, 1.0, 3.0):
        start = [np.log(0.2), np.log(k2), np.log(0.01), 0.05]
        low = [-14.0, np.log(K2_BOUNDS[0]), -14.0, 0.0]
        high = [3.0, np.log(K2_BOUNDS[1]), 1.0, 0.5]
        fit = least_squares(residual, start, bounds=(low, high))
        if best is None or fit.cost < best.cost:
            best = fit
    assert best is not None
    k1, k2, k3 = (float(f"{v:.4g}") for v in np.exp(best.x[:3]))
    return Compartments(k1, k2, k3, float(f"{best.x[3]:.4g}"))


def main() -> None:
    blood = {s: fit_blood(rows["blood_pool"]) for s, rows in ORGAN_ANCHORS.items()}
    print("BLOOD_BIEXPONENTIAL = {")
    for series, fit in blood.items():
        print(f"    {series!r}: {fit!r},")
    print("}")
    print("COMPARTMENTS = {")
    for series, rows in ORGAN_ANCHORS.items():
        print(f"    {series!r}: {{")
        for organ, anchors in rows.items():
            if organ == "blood_pool":
                continue
            model = fit_tissue(anchors, blood[series])
            print(f"        {organ!r}: {model!r},")
        factor = PREDOSE_LESION_FACTOR if series == "predose" else 1.0
        lesion = tuple(factor * v for v in LESION_RELATIVE_ANCHORS)
        print(f"        'tumour': {fit_tissue(lesion, blood[series])!r},")
        print("    },")
    print("}")
    for series, rows in ORGAN_ANCHORS.items():
        for organ, anchors in rows.items():
            if organ == "blood_pool":
                continue
            model = fit_tissue(anchors, blood[series])
            fitted = model.tissue_suv(np.asarray(ANCHOR_HOURS), blood[series])
            worst = np.max(np.abs(fitted / np.asarray(anchors) - 1.0))
            print(f"# {series:12s} {organ:12s} worst anchor deviation {worst:.1%}")


if __name__ == "__main__":
    main()
