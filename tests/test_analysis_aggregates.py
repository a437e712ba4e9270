"""Per-patient uptake with exclusions and fallback, and the join with clinical response."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import pytest

from immunopet.analysis.aggregates import (
    CLINICAL_JOIN_COLUMNS,
    EXCLUDED_COLUMNS,
    PATIENT_UPTAKE_COLUMNS,
    join_clinical,
    patient_uptake,
)
from immunopet.errors import InputError


def lesion(
    patient: str,
    series: str,
    nominal: float,
    voi: str,
    suv_peak: float,
    long_axis_mm: float,
    *,
    method: str = "label-map",
    excluded: bool = False,
    reason: str = "",
) -> dict[str, object]:
    return {
        "patient": patient,
        "series": series,
        "hours_pi": nominal + 0.5,
        "voi": voi,
        "kind": "lesion",
        "suv_mean": suv_peak * 0.8,
        "suv_max": suv_peak * 1.25,
        "suv_peak": suv_peak,
        "volume_ml": 5.0,
        "long_axis_mm": long_axis_mm,
        "nominal_hours": nominal,
        "method": method,
        "excluded": excluded,
        "exclusion_reason": reason,
    }


def organ(patient: str, series: str, nominal: float) -> dict[str, object]:
    row = lesion(patient, series, nominal, "blood_pool", 2.0, 20.0, method="sphere")
    row["kind"] = "organ"
    return row


T = "tracer-only"


def measurements() -> pd.DataFrame:
    rows = [
        # patient 1 at 120 h: 2.0 (25 mm), 8.0 (30 mm), 5.0 (15 mm: too small),
        # 9.9 (28 mm) flagged in the store as spill-in
        lesion("1", T, 120, "1", 2.0, 25.0),
        lesion("1", T, 120, "2", 8.0, 30.0),
        lesion("1", T, 120, "3", 5.0, 15.0),
        lesion("1", T, 120, "4", 9.9, 28.0, excluded=True, reason="near spleen"),
        organ("1", T, 120),
        # patient 1 at 72 h (not used: 120 h exists)
        lesion("1", T, 72, "1", 1.0, 25.0),
        organ("1", T, 72),
        # patient 9 at 120 h: 3.0, 12.0 and the outlier 15.1 the user excludes
        lesion("9", T, 120, "1", 3.0, 22.0),
        lesion("9", T, 120, "2", 12.0, 40.0),
        lesion("9", T, 120, "3", 15.1, 25.0),
        organ("9", T, 120),
        # patient 12: no tracer-only 120 h scan; 72 h has one lesion of 2.5; the predose 120 h
        # scan must not stand in for it
        lesion("12", T, 72, "1", 2.5, 30.0),
        organ("12", T, 72),
        lesion("12", "predose", 120, "1", 7.0, 30.0),
        organ("12", "predose", 120),
    ]
    return pd.DataFrame(rows)


def test_patient_uptake_by_hand() -> None:
    result = patient_uptake(
        measurements(),
        exclusions=[("9", "3", "spill-in from the spleen"), ("1", "99", "typo")],
        fallback_hours=(72,),
    )
    assert list(result.patients.columns) == list(PATIENT_UPTAKE_COLUMNS)
    p = result.patients.set_index("patient")
    assert list(p.index) == ["1", "12", "9"]
    # patient 1: 2.0 and 8.0 -> median 5, mean 5, geometric mean sqrt(16) = 4,
    # SD sqrt(((2-5)^2 + (8-5)^2) / 1) = sqrt(18) = 4.2426
    assert p.loc["1", ["n_lesions", "median", "mean", "geometric_mean"]].tolist() == [
        2, 5.0, 5.0, pytest.approx(4.0),
    ]  # fmt: skip
    assert p.loc["1", "sd"] == pytest.approx(18**0.5)
    assert (p.loc["1", "nominal_hours"], p.loc["1", "fallback"]) == (120.0, False)
    assert p.loc["1", "hours_pi"] == pytest.approx(120.5)
    # patient 9: 3.0 and 12.0 -> median 7.5, geometric mean sqrt(36) = 6
    assert p.loc["9", ["median", "geometric_mean", "minimum", "maximum"]].tolist() == [
        7.5, pytest.approx(6.0), 3.0, 12.0,
    ]  # fmt: skip
    # patient 12: the 72 h fallback, recorded
    assert p.loc["12", ["nominal_hours", "fallback", "n_lesions", "median"]].tolist() == [
        72.0, True, 1, 2.5,
    ]  # fmt: skip
    assert p.loc["12", "note"] == "no tracer-only scan at 120 h; 72 h used"
    assert math.isnan(p.loc["12", "sd"])

    lesions = result.lesions
    assert sorted(zip(lesions["patient"], lesions["lesion"], strict=True)) == [
        ("1", "1"), ("1", "2"), ("12", "1"), ("9", "1"), ("9", "2"),
    ]  # fmt: skip
    assert lesions.loc[lesions["patient"] == "12", "fallback"].tolist() == [True]
    assert set(lesions["size_source"]) == {"VOI"}

    excluded = result.excluded
    assert list(excluded.columns) == list(EXCLUDED_COLUMNS)
    rules = {
        (r.patient, r.lesion): (r.rule, r.reason, r.applied)
        for r in excluded.itertuples(index=False)
    }
    assert rules == {
        ("1", "3"): ("size", "long axis 15.0 mm < 20 mm (VOI)", True),
        ("1", "4"): ("flagged", "near spleen", True),
        ("9", "3"): ("user", "spill-in from the spleen", True),
        ("1", "99"): ("user", "typo (no such lesion measured on the scan used)", False),
    }


def test_no_fallback_and_other_metric() -> None:
    result = patient_uptake(measurements(), metric="suv_max", include_flagged=True)
    p = result.patients.set_index("patient")
    assert p.loc["12", "n_lesions"] == 0
    assert math.isnan(p.loc["12", "median"]) and math.isnan(p.loc["12", "nominal_hours"])
    assert p.loc["12", "note"] == "no tracer-only scan at 120 h"
    # SUVmax = 1.25 x SUVpeak; with the flagged lesion kept: 2.5, 10.0, 12.375 -> median 10
    assert p.loc["1", "median"] == pytest.approx(10.0)
    assert p.loc["1", "metric"] == "suv_max"
    assert "suv_max" in result.lesions.columns


def test_geometric_mean_undefined_for_non_positive_values() -> None:
    rows = [lesion("1", T, 120, "1", 0.0, 25.0), lesion("1", T, 120, "2", 4.0, 25.0)]
    p = patient_uptake(pd.DataFrame(rows)).patients.iloc[0]
    assert p["mean"] == 2.0
    assert math.isnan(p["geometric_mean"])
    assert "geometric mean undefined" in p["note"]


def test_lesion_table_gives_size_and_fdg_status() -> None:
    rows = [
        # a placeholder sphere measures 12.4 mm, but the lesion is 35 mm on the baseline CT
        lesion("1", T, 120, "1", 1.5, 12.4, method="sphere"),
        lesion("1", T, 120, "2", 6.0, 30.0),  # FDG-negative node
        lesion("1", T, 120, "3", 4.0, 21.0),  # 18 mm on CT: too small
    ]
    table = pd.DataFrame(
        {
            "patient": "1",
            "lesion": [1, 2, 3],
            "fdg_positive": [True, False, True],
            "long_axis_mm": [35.0, 30.0, 18.0],
        }
    )
    result = patient_uptake(pd.DataFrame(rows), lesions_table=table)
    assert result.lesions[["lesion", "long_axis_mm", "size_source"]].values.tolist() == [
        ["1", 35.0, "lesion table"]
    ]
    assert result.excluded[["lesion", "rule"]].values.tolist() == [
        ["2", "fdg-negative"],
        ["3", "size"],
    ]
    # the same rows without the lesion table: the sphere's 12.4 mm excludes lesion 1
    plain = patient_uptake(pd.DataFrame(rows))
    assert plain.lesions["lesion"].tolist() == ["2", "3"]
    assert plain.excluded["reason"].tolist() == ["long axis 12.4 mm < 20 mm (VOI)"]


@dataclass(frozen=True)
class Exclusion:
    patient: str
    lesion: str
    reason: str


def test_exclusion_forms_and_errors() -> None:
    as_objects = patient_uptake(measurements(), exclusions=[Exclusion("9", "3", "spill-in")])
    as_frame = patient_uptake(
        measurements(),
        exclusions=pd.DataFrame({"patient": ["9"], "lesion": [3], "reason": ["spill-in"]}),
    )
    for result in (as_objects, as_frame):
        assert result.patients.set_index("patient").loc["9", "n_lesions"] == 2
    with pytest.raises(InputError, match=r"an exclusion needs a reason.*9/3"):
        patient_uptake(measurements(), exclusions=[("9", "3", " ")])
    with pytest.raises(InputError, match="unknown metric"):
        patient_uptake(measurements(), metric="suv_median")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="time point must be a finite number"):
        patient_uptake(measurements(), fallback_hours=(float("nan"),))


CLINICAL = pd.DataFrame(
    {
        "patient": ["1", "9", "12", "11"],
        "age": [59, 70, 72, 72],
        "sex": ["F", "M", "F", "M"],
        "histology": "Adenocarcinoma",
        "tps_percent": ["0", "0", "100", "1"],
        "cps_percent": ["12.5", "NE", "90", "25"],
        "treatment_cycles": [7, 1, 12, 22],
        "bor": ["SD", "PD", "PR", "NE"],
        "stop_reason": ["PD", "PD", "Toxicity", "COVID-19 pandemic"],
        "pfs_days": [86, 9, 560, 330],
        "pfs_event": [1, 1, 0, 0],
        "os_days": [823, 15, 620, 600],
        "os_event": [1, 1, 0, 0],
    }
)


def test_join_clinical_lesion_level() -> None:
    result = patient_uptake(
        measurements(), exclusions=[("9", "3", "spill-in")], fallback_hours=(72,)
    )
    joined = join_clinical(result.lesions, CLINICAL)
    assert list(joined.columns[-len(CLINICAL_JOIN_COLUMNS) :]) == list(CLINICAL_JOIN_COLUMNS)
    assert len(joined) == len(result.lesions)
    by_patient = joined.drop_duplicates("patient").set_index("patient")
    # PD -> progression; SD, PR -> none
    assert by_patient["progression_6wk"].to_dict() == {"1": False, "12": False, "9": True}
    assert by_patient.loc["9", "cps_ne"]
    assert by_patient["tps_group"].astype(str).to_dict() == {"1": "<1%", "12": "≥50%", "9": "<1%"}
    assert by_patient.loc["12", "pfs_event"] == 0


def test_join_clinical_not_evaluable_and_missing() -> None:
    joined = join_clinical(pd.DataFrame({"patient": ["11", "1"], "x": [1, 2]}), CLINICAL)
    assert joined["x"].tolist() == [1, 2]
    assert joined["progression_6wk"].isna().tolist() == [True, False]  # NE enters no group
    with pytest.raises(InputError, match=r"patient\(s\) missing from the clinical sheet.*77"):
        join_clinical(pd.DataFrame({"patient": ["77"]}), CLINICAL)
