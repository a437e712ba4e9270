"""The atezolizumab design: cohort, clinical sheet, truth of the uptake model, preset."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunopet.synthetic.atezolizumab import (
    BOR_FACTOR,
    COHORT,
    FOLLOW_UP_DAYS,
    SIGMA_LESION,
    SIGMA_PATIENT,
    TYPE_LESION_SUV,
    heterogeneity_truth,
    make_cohort_sheet,
)
from immunopet.synthetic.presets import ATEZOLIZUMAB, PRESETS
from immunopet.synthetic.trial import _make_patient


def test_cohort_design() -> None:
    # seed 001: 22 patients, three tumour types (9 bladder, 9 NSCLC, 4 TNBC assumed)
    assert len(COHORT) == 22
    types = pd.Series([r.tumour_type for r in COHORT]).value_counts().to_dict()
    assert types == {"bladder": 9, "NSCLC": 9, "TNBC": 4}
    assert sum(r.bor in ("CR", "PR") for r in COHORT) == 6
    assert all(r.sex == "F" for r in COHORT if r.tumour_type == "TNBC")


def test_clinical_sheet() -> None:
    ids = tuple(f"P{i:02d}" for i in range(1, 23))
    sheet = make_cohort_sheet(ids, np.random.default_rng(5))
    again = make_cohort_sheet(ids, np.random.default_rng(5))
    pd.testing.assert_frame_equal(sheet, again)
    assert list(sheet.patient) == list(ids)
    assert sheet.tps_percent.between(0, 100).all() and sheet.cps_percent.between(0, 100).all()
    assert (sheet.cps_percent >= sheet.tps_percent).all()
    assert sheet.pfs_days.le(sheet.os_days).all()
    assert sheet.os_days.max() <= FOLLOW_UP_DAYS
    # censored exactly at the follow-up, events before it
    assert (sheet.loc[sheet.pfs_event == 0, "pfs_days"] == FOLLOW_UP_DAYS).all()
    assert (sheet.loc[sheet.pfs_event == 1, "pfs_days"] < FOLLOW_UP_DAYS).all()
    assert set(sheet.columns) >= {"tumour_type", "rnaseq_score", "bor", "os_event"}


def test_heterogeneity_truth_by_hand() -> None:
    truth = heterogeneity_truth().set_index("level")["variance"]
    # tumour type: log levels ln 9 (9 patients), ln 6.5 (9), ln 4.5 (4); population variance
    logs = [math.log(9.0)] * 9 + [math.log(6.5)] * 9 + [math.log(4.5)] * 4
    assert truth["tumour_type"] == pytest.approx(float(np.var(logs)))
    assert truth["lesion"] == pytest.approx(SIGMA_LESION**2)
    assert truth["patient"] > SIGMA_PATIENT**2  # BOR adds between-patient spread


def test_patient_uptake_follows_type_and_response() -> None:
    config = ATEZOLIZUMAB
    assert PRESETS["atezolizumab"] is config
    models = [_make_patient(config, i, seed=0) for i in range(len(config.clinical_rows))]
    for model, row in zip(models, COHORT, strict=True):
        assert model.tumour_type == row.tumour_type
        assert model.body.sex == row.sex
        ratio = model.level_suv120 / (TYPE_LESION_SUV[row.tumour_type] * BOR_FACTOR[row.bor])
        assert abs(math.log(ratio)) < 4 * SIGMA_PATIENT
        tumours = [v for k, v in model.tumour_suv120.items()]
        assert len(tumours) == config.tumours_per_patient[model.index]
    # one injection, no predose; SUVmax at day 7 in the plan; analysis_hours in the settings
    assert config.series == ("tracer-only",)
    assert config.settings["analysis_hours"] == 168.0
    assert config.analysis["uptake_metric"] == "suv_max"
