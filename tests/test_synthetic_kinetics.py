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
