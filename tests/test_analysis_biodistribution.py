"""Organ uptake per series and time point, and the predose/tracer-only ratio."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from immunopet.analysis.biodistribution import (
    ORGAN_UPTAKE_COLUMNS,
    organ_uptake,
    pair_series,
    predose_ratio,
)
from immunopet.errors import InputError


def organ_row(
    patient: str,
    series: str,
    nominal: float,
    organ: str,
    suv_mean: float,
    hours_pi: float | None = None,
    excluded: bool = False,
) -> dict[str, object]:
    return {
        "patient": patient,
        "series": series,
        "hours_pi": nominal if hours_pi is None else hours_pi,
        "voi": organ,
        "kind": "organ",
        "suv_mean": suv_mean,
        "suv_max": suv_mean * 1.5,
        "suv_peak": suv_mean * 1.2,
        "volume_ml": 4.2,
        "long_axis_mm": 20.0,
        "nominal_hours": nominal,
        "excluded": excluded,
    }


def lesion_row(patient: str, series: str, nominal: float, lesion: str) -> dict[str, object]:
    row = organ_row(patient, series, nominal, lesion, 3.0)
    row["kind"] = "lesion"
    return row


@pytest.fixture
def measurements() -> pd.DataFrame:
    rows = [
        # tracer-only, 72 h: liver 6.0 and 7.0, spleen 20 and 18, blood 2.0 and 2.4
        organ_row("1", "tracer-only", 72, "liver", 6.0, 71.0),
        organ_row("2", "tracer-only", 72, "liver", 7.0, 74.0),
        organ_row("1", "tracer-only", 72, "spleen", 20.0, 71.0),
        organ_row("2", "tracer-only", 72, "spleen", 18.0, 74.0),
        organ_row("1", "tracer-only", 72, "blood_pool", 2.0, 71.0),
        organ_row("2", "tracer-only", 72, "blood_pool", 2.4, 74.0),
        # 1 h: one patient only
        organ_row("1", "tracer-only", 1, "blood_pool", 7.2, 1.1),
        # predose: patient 1 only, blood 4.0; liver 5.0 flagged excluded
        organ_row("1", "predose", 72, "blood_pool", 4.0, 72.5),
        organ_row("1", "predose", 72, "liver", 5.0, 72.5, excluded=True),
        # an organ the study does not list, and a lesion row (ignored)
        organ_row("1", "tracer-only", 72, "adrenal", 3.0, 71.0),
        lesion_row("1", "tracer-only", 72, "1"),
    ]
    return pd.DataFrame(rows)


def test_organ_uptake_by_hand(measurements: pd.DataFrame) -> None:
    table = organ_uptake(measurements)
    assert list(table.columns) == list(ORGAN_UPTAKE_COLUMNS)
    # organs in the study's order, then others alphabetically; series tracer-only first
    keys = list(zip(table["organ"], table["series"], table["nominal_hours"], strict=True))
    assert keys == [
        ("blood_pool", "tracer-only", 1.0),
        ("blood_pool", "tracer-only", 72.0),
        ("blood_pool", "predose", 72.0),
        ("liver", "tracer-only", 72.0),
        ("spleen", "tracer-only", 72.0),
        ("adrenal", "tracer-only", 72.0),
    ]
    liver = table.iloc[3]
    # mean (6 + 7) / 2 = 6.5; SD sqrt(((6-6.5)^2 + (7-6.5)^2) / (2-1)) = sqrt(0.5) = 0.70711
    assert liver["n"] == 2
    assert liver["mean"] == pytest.approx(6.5)
    assert liver["sd"] == pytest.approx(0.7071068, abs=1e-7)
    assert liver["median"] == pytest.approx(6.5)
    assert (liver["minimum"], liver["maximum"]) == (6.0, 7.0)
    # actual times 71 and 74 h -> mean 72.5
    assert liver["hours_pi_mean"] == pytest.approx(72.5)
    assert (liver["hours_pi_min"], liver["hours_pi_max"]) == (71.0, 74.0)
    # one patient: SD undefined
    single = table.iloc[0]
    assert single["n"] == 1 and single["mean"] == 7.2 and math.isnan(single["sd"])
    # blood pool 72 h: (2.0 + 2.4) / 2 = 2.2
    assert table.iloc[1]["mean"] == pytest.approx(2.2)


def test_organ_uptake_options(measurements: pd.DataFrame) -> None:
    with_excluded = organ_uptake(measurements, include_excluded=True)
    assert ("liver", "predose") in set(
        zip(with_excluded["organ"], with_excluded["series"], strict=True)
    )
    only_two = organ_uptake(measurements, patients=["2"])
    assert set(only_two["n"]) == {1}
    assert only_two.loc[only_two["organ"] == "liver", "mean"].item() == 7.0
    # SUVmax of the liver: 1.5 x (6, 7) -> mean 9.75
    by_max = organ_uptake(measurements, metric="suv_max")
    assert by_max.loc[by_max["organ"] == "liver", "mean"].item() == pytest.approx(9.75)


def test_organ_uptake_errors(measurements: pd.DataFrame) -> None:
    twice = pd.concat([measurements, measurements.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match=r"an organ is measured twice.*liver of 1/tracer-only"):
        organ_uptake(twice)
    no_time = measurements.copy()
    no_time.loc[0, "nominal_hours"] = float("nan")
    with pytest.raises(InputError, match=r"nominal_hours: organ row without a nominal time"):
        organ_uptake(no_time)
    with pytest.raises(InputError, match=r"measurements: suv_mean: .*lacks required column"):
        organ_uptake(measurements.drop(columns=["suv_mean"]))
    with pytest.raises(InputError, match="unknown metric"):
        organ_uptake(measurements, metric="suv_min")  # type: ignore[arg-type]


def paired_measurements() -> pd.DataFrame:
    rows = [
        # patient 1: blood 1.0 -> 2.0 after the predose; patient 2: 3.0 -> 3.0;
        # patient 3 had no predose series; patient 4 only the predose series
        organ_row("1", "tracer-only", 72, "blood_pool", 1.0),
        organ_row("1", "predose", 72, "blood_pool", 2.0),
        organ_row("2", "tracer-only", 72, "blood_pool", 3.0),
        organ_row("2", "predose", 72, "blood_pool", 3.0),
        organ_row("3", "tracer-only", 72, "blood_pool", 5.0),
        organ_row("4", "predose", 72, "blood_pool", 9.0),
        # spleen at 120 h: 20 -> 10 (patient 1)
        organ_row("1", "tracer-only", 120, "spleen", 20.0),
        organ_row("1", "predose", 120, "spleen", 10.0),
    ]
    return pd.DataFrame(rows)


def test_predose_ratio_by_hand() -> None:
    table = predose_ratio(paired_measurements())
    blood = table[table["organ"] == "blood_pool"].iloc[0]
    assert blood["n_pairs"] == 2
    # paired means: predose (2 + 3) / 2 = 2.5, tracer-only (1 + 3) / 2 = 2.0 -> 1.25
    assert blood["mean_numerator"] == pytest.approx(2.5)
    assert blood["mean_denominator"] == pytest.approx(2.0)
    assert blood["ratio_of_means"] == pytest.approx(1.25)
    # per-patient ratios 2.0 and 1.0: mean 1.5, SD sqrt(0.5)
    assert blood["mean_of_ratios"] == pytest.approx(1.5)
    assert blood["sd_of_ratios"] == pytest.approx(0.7071068, abs=1e-7)
    assert (blood["n_numerator_only"], blood["n_denominator_only"]) == (1, 1)
    spleen = table[table["organ"] == "spleen"].iloc[0]
    assert spleen["nominal_hours"] == 120.0
    assert spleen["ratio_of_means"] == pytest.approx(0.5)
    assert math.isnan(spleen["sd_of_ratios"])


def test_pair_series_keeps_unpaired_rows() -> None:
    pairs = pair_series(paired_measurements())
    blood = pairs[pairs["organ"] == "blood_pool"].set_index("patient")
    assert blood.loc["1", "ratio"] == pytest.approx(2.0)
    assert math.isnan(blood.loc["3", "numerator"]) and math.isnan(blood.loc["3", "ratio"])
    assert math.isnan(blood.loc["4", "denominator"])
    # the inverse ratio
    inverse = pair_series(paired_measurements(), numerator="tracer-only", denominator="predose")
    assert inverse.loc[inverse["patient"] == "1", "ratio"].iloc[0] == pytest.approx(0.5)
    with pytest.raises(InputError, match="same series"):
        pair_series(paired_measurements(), numerator="predose", denominator="predose")


# ---------------------------------------------------------------------------- integration
@pytest.fixture(scope="module")
def tiny_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from immunopet.synthetic.trial import generate_trial

    out = tmp_path_factory.mktemp("tiny")
    generate_trial(out, preset="tiny", seed=0)
    return out


def truth_measurements(root: Path) -> pd.DataFrame:
    """A measurements-like table from the trial's truth/ tables (the true SUVs stand in for
    measured ones): organ spheres, delineated lesions (visible) as label-map VOIs, invisible
    FDG-positive lesions as 1 cm³ placeholder spheres, invisible FDG-negative ones absent."""
    organs = pd.read_csv(root / "truth" / "organs.csv", dtype={"patient": str})
    lesions = pd.read_csv(root / "truth" / "lesions.csv", dtype={"patient": str})
    baseline = pd.read_csv(root / "lesions.csv", dtype={"patient": str})
    lesions = lesions.merge(
        baseline[["patient", "lesion", "fdg_positive"]], on=["patient", "lesion"]
    )
    lesions = lesions[lesions["visible"] | lesions["fdg_positive"]]
    parts = [
        pd.DataFrame(
            {
                "patient": organs["patient"],
                "series": organs["series"],
                "hours_pi": organs["hours_pi"],
                "voi": organs["organ"],
                "kind": "organ",
                "suv_mean": organs["suv_true"],
                "suv_max": organs["suv_true"],
                "suv_peak": organs["suv_true"],
                "nominal_hours": organs["nominal_hours"],
                "suv_sd": 0.0,
                "method": "sphere",
            }
        ),
        pd.DataFrame(
            {
                "patient": lesions["patient"],
                "series": lesions["series"],
                "hours_pi": lesions["hours_pi"],
                "voi": lesions["lesion"].astype(str),
                "kind": "lesion",
                "suv_mean": lesions["suv_true"],
                "suv_max": lesions["suv_true"],
                "suv_peak": lesions["suv_true"],
                "nominal_hours": lesions["nominal_hours"],
                "suv_sd": 0.0,
                "method": lesions["visible"].map({True: "label-map", False: "sphere"}),
            }
        ),
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.slow
def test_tiny_synthetic_trial_end_to_end(tiny_trial: Path) -> None:
    from immunopet.analysis.aggregates import patient_uptake
    from immunopet.analysis.clinical import read_adverse_events, read_clinical
    from immunopet.analysis.lesions import lesion_visibility, tumour_to_blood_ratio
    from immunopet.analysis.tables import adverse_event_table, baseline_table

    m = truth_measurements(tiny_trial)
    table = organ_uptake(m)
    # tiny preset: 3 patients, 2 series, 72 and 120 h, 7 organs -> 7 x 2 x 2 rows of n = 3
    assert table.shape == (28, len(ORGAN_UPTAKE_COLUMNS))
    assert set(table["series"]) == {"tracer-only", "predose"}
    assert set(table["nominal_hours"]) == {72.0, 120.0}
    assert set(table["n"]) == {3}
    at72 = table[(table["series"] == "tracer-only") & (table["nominal_hours"] == 72)]
    mean = dict(zip(at72["organ"], at72["mean"], strict=True))
    assert mean["spleen"] > mean["liver"] > mean["blood_pool"]
    # the predose keeps more tracer in the blood and less in the spleen
    ratios = predose_ratio(m).set_index(["organ", "nominal_hours"])
    assert ratios.loc[("blood_pool", 72.0), "ratio_of_means"] > 1
    assert ratios.loc[("spleen", 72.0), "ratio_of_means"] < 1

    baseline = pd.read_csv(tiny_trial / "lesions.csv", dtype={"patient": str})
    visibility = lesion_visibility(m, baseline)
    n_fdg = int(baseline["fdg_positive"].sum())
    summary = visibility.summary[visibility.summary["group"] == "FDG-positive"]
    assert set(summary["total"]) == {n_fdg}
    truth = pd.read_csv(tiny_trial / "truth" / "lesions.csv", dtype={"patient": str})
    truth = truth.merge(baseline[["patient", "lesion", "fdg_positive"]], on=["patient", "lesion"])
    seen = truth[truth["visible"] & truth["fdg_positive"]]
    for (series, hours), count in seen.groupby(["series", "nominal_hours"]).size().items():
        hit = summary[(summary["series"] == series) & (summary["nominal_hours"] == hours)]
        assert hit["visible"].item() == count
    tbr = tumour_to_blood_ratio(m, lesions_table=baseline)
    assert len(tbr) == 4 and bool((tbr["ratio"] > 0).all())

    uptake = patient_uptake(
        m, lesions_table=baseline, exclusions=[("P03", "2", "spill-in from the spleen")]
    )
    assert len(uptake.patients) == 3
    excluded = uptake.excluded.set_index(["patient", "lesion"])
    assert "user" in excluded.loc[("P03", "2"), "rule"]

    clinical = read_clinical(tiny_trial / "clinical.csv")
    assert len(baseline_table(clinical)) == 3
    events = read_adverse_events(
        tiny_trial / "adverse_events.csv", known_patients=clinical["patient"]
    )
    ae = adverse_event_table(events, len(clinical))
    expected = events.groupby("term")["patient"].nunique()
    assert dict(zip(ae["Adverse event"], ae["n_any"], strict=True)) == expected.to_dict()
