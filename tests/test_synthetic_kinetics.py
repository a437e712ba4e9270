"""Kinetics of the synthetic trial against the published biodistribution (DOMAIN.md, seed 000).

Reference values (tracer-only, average SUVmean of the first 3 patients, Smit et al. 2022):
blood pool 7.2 at 1 h and 1.6 at 120 h, liver 6.7 at 1 h, spleen 15.1 at 1 h and 20.0 at 72 h
(its peak). With a predose the blood pool is similar at 1 h and ~2x higher afterwards; spleen,
bone marrow, liver and tumours are lower.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.synthetic.kinetics import (
    ANCHOR_HOURS,
    ORGAN_ANCHORS,
    PREDOSE_LESION_FACTOR,
    SERIES_NAMES,
    interpolate_suv,
    organ_suv,
)


def test_series_names() -> None:
    assert SERIES_NAMES == ("tracer-only", "predose")
    assert set(ORGAN_ANCHORS) == {"tracer-only", "predose"}


@pytest.mark.parametrize(
    ("organ", "hours", "published"),
    [
        ("blood_pool", 1.0, 7.2),
        ("liver", 1.0, 6.7),
        ("spleen", 1.0, 15.1),
        ("blood_pool", 120.0, 1.6),
        ("spleen", 72.0, 20.0),
    ],
)
def test_tracer_only_anchors_are_the_published_values(
    organ: str, hours: float, published: float
) -> None:
    assert organ_suv("tracer-only", organ, hours) == published


def test_spleen_peaks_at_72_h() -> None:
    hours = np.arange(1.0, 169.0)  # whole hours, 72 included
    spleen = interpolate_suv(hours, ORGAN_ANCHORS["tracer-only"]["spleen"])
    assert hours[int(np.argmax(spleen))] == pytest.approx(72.0, abs=0.5)
    assert float(np.max(spleen)) == pytest.approx(20.0)


def test_spleen_is_the_highest_organ_at_every_anchor() -> None:
    rows = ORGAN_ANCHORS["tracer-only"]
    for i in range(len(ANCHOR_HOURS)):
        assert max(rows, key=lambda organ: rows[organ][i]) == "spleen"


def test_liver_and_marrow_stable_marrow_above_blood_later() -> None:
    rows = ORGAN_ANCHORS["tracer-only"]
    for organ in ("liver", "bone_marrow"):
        values = rows[organ]
        assert max(values) / min(values) < 1.3  # "stable": within 30 % over 1-168 h
    for i, hours in enumerate(ANCHOR_HOURS):
        if hours >= 72.0:
            assert rows["blood_pool"][i] < rows["bone_marrow"][i] < 1.75 * rows["blood_pool"][i]


def test_low_uptake_organs() -> None:
    rows = ORGAN_ANCHORS["tracer-only"]
    for organ in ("kidney", "lung", "brain"):
        for i in range(len(ANCHOR_HOURS)):
            assert rows[organ][i] < rows["liver"][i] / 2


def test_predose_blood_pool_similar_early_twice_later() -> None:
    tracer, predose = ORGAN_ANCHORS["tracer-only"], ORGAN_ANCHORS["predose"]
    assert predose["blood_pool"][0] == pytest.approx(tracer["blood_pool"][0], rel=0.1)
    for i, hours in enumerate(ANCHOR_HOURS):
        if hours >= 72.0:
            ratio = predose["blood_pool"][i] / tracer["blood_pool"][i]
            assert 1.8 <= ratio <= 2.2
    for organ in ("spleen", "bone_marrow", "liver"):
        for i, hours in enumerate(ANCHOR_HOURS):
            if hours >= 24.0:
                assert predose[organ][i] < tracer[organ][i]
    assert PREDOSE_LESION_FACTOR < 1.0


def test_interpolation_is_log_linear_and_clamped() -> None:
    # halfway between 2 and 8 in log space is sqrt(2 * 8) = 4
    assert interpolate_suv(96.0, (2.0, 8.0), (72.0, 120.0)) == pytest.approx(4.0)
    # a quarter of the way: 2 * (8/2)**0.25 = 2 * sqrt(2)
    assert interpolate_suv(84.0, (2.0, 8.0), (72.0, 120.0)) == pytest.approx(2 * math.sqrt(2))
    # outside the anchors the end values are kept
    assert interpolate_suv(0.0, (2.0, 8.0), (72.0, 120.0)) == pytest.approx(2.0)
    assert interpolate_suv(500.0, (2.0, 8.0), (72.0, 120.0)) == pytest.approx(8.0)


def test_unknown_organ_raises() -> None:
    with pytest.raises(KeyError, match="pancreas"):
        organ_suv("tracer-only", "pancreas", 72.0)


# ---------------------------------------------------------------------------- compartments
from scipy.integrate import solve_ivp  # noqa: E402
from scipy.stats import linregress  # noqa: E402

from immunopet.synthetic.clinical import HEMATOCRIT  # noqa: E402
from immunopet.synthetic.kinetics import (  # noqa: E402
    BLOOD_BIEXPONENTIAL,
    COMPARTMENTS,
    KINETIC_ORGANS,
    LESION_RELATIVE_ANCHORS,
    BiExponential,
    Compartments,
    true_kinetics,
)

MODEL = Compartments(k1_per_h=0.3, k2_per_h=0.5, k3_per_h=0.02, blood_fraction=0.1)
BLOOD = BiExponential(4.0, 0.06, 3.5, 0.0065)


def _ode_tissue(model: Compartments, blood: BiExponential, hours: np.ndarray) -> np.ndarray:
    """The compartment equations integrated numerically (SciPy), independent of the closed form."""

    def rhs(t: float, y: np.ndarray) -> list[float]:
        plasma = float(blood.value(t)) / (1.0 - HEMATOCRIT)
        free, _ = y
        b = model.k2_per_h + model.k3_per_h
        return [model.k1_per_h * plasma - b * free, model.k3_per_h * free]

    solution = solve_ivp(
        rhs, (0.0, float(hours[-1])), [0.0, 0.0], t_eval=hours, rtol=1e-10, atol=1e-12
    )
    return model.blood_fraction * blood.value(hours) + solution.y[0] + solution.y[1]


def test_closed_form_tissue_curve_matches_the_ode() -> None:
    hours = np.array([0.5, 1.0, 24.0, 72.0, 120.0, 168.0])
    assert MODEL.tissue_suv(hours, BLOOD) == pytest.approx(
        _ode_tissue(MODEL, BLOOD, hours), rel=1e-6
    )


def test_late_patlak_plot_has_slope_ki_and_the_stated_intercept() -> None:
    # Patlak plot of the ODE solution over 100-300 h (fast blood term gone, C1 in equilibrium)
    hours = np.linspace(0.0, 300.0, 30001)
    tissue = _ode_tissue(MODEL, BLOOD, hours)
    plasma = BLOOD.value(hours) / (1.0 - HEMATOCRIT)
    integral = np.concatenate([[0.0], np.cumsum(np.diff(hours) * (plasma[1:] + plasma[:-1]) / 2)])
    late = hours >= 100.0
    fit = linregress(integral[late] / plasma[late], tissue[late] / plasma[late])
    assert MODEL.ki_per_h == pytest.approx(0.3 * 0.02 / 0.52)
    assert fit.slope == pytest.approx(MODEL.ki_per_h, rel=1e-3)
    assert fit.intercept == pytest.approx(MODEL.patlak_intercept(BLOOD), rel=1e-3)


def test_blood_biexponential_reproduces_the_published_blood_pool() -> None:
    for series in SERIES_NAMES:
        fitted = BLOOD_BIEXPONENTIAL[series].value(np.asarray(ANCHOR_HOURS))
        assert fitted == pytest.approx(ORGAN_ANCHORS[series]["blood_pool"], rel=0.02)
    # published: 7.2 at 1 h and 1.6 at 120 h, to the published precision
    tracer = BLOOD_BIEXPONENTIAL["tracer-only"]
    assert round(float(tracer.value(1.0)), 1) == 7.2
    assert round(float(tracer.value(120.0)), 1) == 1.6


@pytest.mark.parametrize("series", SERIES_NAMES)
def test_compartments_follow_the_anchor_curves(series: str) -> None:
    blood = BLOOD_BIEXPONENTIAL[series]  # type: ignore[index]
    hours = np.asarray(ANCHOR_HOURS)
    for organ, anchors in ORGAN_ANCHORS[series].items():
        if organ == "blood_pool":
            continue
        fitted = COMPARTMENTS[series][organ].tissue_suv(hours, blood)  # type: ignore[index]
        # an irreversible model with exchange within hours cannot follow the tracer-only
        # plateaus and peaks exactly (the spleen falls after its 72 h peak): 15 %
        tolerance = 0.15 if series == "tracer-only" else 0.07
        assert fitted == pytest.approx(anchors, rel=tolerance), organ
    factor = PREDOSE_LESION_FACTOR if series == "predose" else 1.0
    tumour = COMPARTMENTS[series]["tumour"].tissue_suv(hours, blood)  # type: ignore[index]
    assert tumour == pytest.approx(np.asarray(LESION_RELATIVE_ANCHORS) * factor, rel=0.15)


def test_predose_lowers_the_true_ki_of_spleen_marrow_liver_and_tumour() -> None:
    for organ in ("spleen", "bone_marrow", "liver", "tumour"):
        assert true_kinetics("predose", organ)[0] < true_kinetics("tracer-only", organ)[0]
    # target-mediated: the spleen loses most
    assert true_kinetics("predose", "spleen")[0] < 0.2 * true_kinetics("tracer-only", "spleen")[0]
    assert set(KINETIC_ORGANS) < set(COMPARTMENTS["predose"])


def test_true_kinetics_units_and_scaling() -> None:
    model = COMPARTMENTS["tracer-only"]["liver"]
    ki, vt = true_kinetics("tracer-only", "liver")
    assert ki == pytest.approx(model.ki_per_h * 1000.0)  # mL/mL/h at 1 g/mL -> uL/g/h
    assert vt == pytest.approx(model.patlak_intercept(BLOOD_BIEXPONENTIAL["tracer-only"]))
    scaled = true_kinetics("tracer-only", "liver", tissue_scale=1.2, blood_scale=0.8)
    assert scaled == pytest.approx((ki * 1.5, vt * 1.5))
