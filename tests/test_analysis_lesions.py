"""Lesion visibility, tumour-to-blood ratio, time-point choice and lesion matching."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunopet.analysis.lesions import (
    TBR_COLUMNS,
    lesion_visibility,
    match_lesions,
    recommend_time_point,
    tumour_to_blood_ratio,
)
from immunopet.errors import InputError


def row(
    patient: str,
    series: str,
    nominal: float,
    voi: str,
    *,
    kind: str = "lesion",
    method: str = "label-map",
    suv_peak: float = 3.0,
    suv_mean: float = 2.0,
    suv_sd: float = 0.5,
    excluded: bool = False,
    measurable: bool = True,
    centroid: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> dict[str, object]:
    return {
        "patient": patient,
        "series": series,
        "hours_pi": nominal + 0.4,
        "voi": voi,
        "kind": kind,
        "suv_mean": suv_mean,
        "suv_max": suv_peak * 1.3,
        "suv_peak": suv_peak,
        "volume_ml": 1.0,
        "long_axis_mm": 12.4,
        "nominal_hours": nominal,
        "suv_sd": suv_sd,
        "centroid_x_mm": centroid[0],
        "centroid_y_mm": centroid[1],
        "centroid_z_mm": centroid[2],
        "method": method if kind == "lesion" else "sphere",
        "measurable": measurable if kind == "lesion" else None,
        "excluded": excluded,
        "exclusion_reason": "spill-in" if excluded else "",
    }


LESIONS = pd.DataFrame(
    {
        "patient": ["A", "A", "A", "A", "B", "B"],
        "lesion": [1, 2, 3, 4, 1, 2],
        "fdg_positive": [True, True, True, False, True, True],
        "long_axis_mm": [25.0, 12.0, 30.0, 15.0, 22.0, 10.0],
    }
)

# (patient, series, hours, lesion, method); a lesion without a row was not delineated and,
# being FDG-negative (A4), got no placeholder either
VISIBILITY_ROWS = [
    ("A", "tracer-only", 72, "1", "label-map"),
    ("A", "tracer-only", 72, "2", "sphere"),
    ("A", "tracer-only", 72, "3", "sphere"),
    ("A", "tracer-only", 72, "4", "label-map"),
    ("A", "tracer-only", 120, "1", "label-map"),
    ("A", "tracer-only", 120, "2", "label-map"),
    ("A", "tracer-only", 120, "3", "sphere"),
    ("A", "tracer-only", 120, "4", "label-map"),
    ("A", "predose", 72, "1", "sphere"),
    ("A", "predose", 72, "2", "sphere"),
    ("A", "predose", 72, "3", "sphere"),
    ("A", "predose", 120, "1", "label-map"),
    ("A", "predose", 120, "2", "sphere"),
    ("A", "predose", 120, "3", "sphere"),
    ("B", "tracer-only", 72, "1", "sphere"),
    ("B", "tracer-only", 72, "2", "sphere"),
    ("B", "tracer-only", 120, "1", "label-map"),
    ("B", "tracer-only", 120, "2", "sphere"),
]


def visibility_measurements() -> pd.DataFrame:
    rows = [row(p, s, h, les, method=m) for p, s, h, les, m in VISIBILITY_ROWS]
    scans = {(p, s, h) for p, s, h, _, _ in VISIBILITY_ROWS}
    rows += [row(p, s, h, "blood_pool", kind="organ") for p, s, h in sorted(scans)]
    return pd.DataFrame(rows)


def summary_text(summary: pd.DataFrame, series: str, time_point: str) -> list[str]:
    chosen = summary[(summary["series"] == series) & (summary["time_point"] == time_point)]
    return chosen["text"].tolist()


def test_visibility_counts_by_hand() -> None:
    result = lesion_visibility(visibility_measurements(), LESIONS)
    s = result.summary
    assert s["group"].unique().tolist() == ["FDG-positive", "FDG-positive ≥ 20 mm"]
    # FDG-positive: A1 A2 A3 B1 B2 (5); >= 20 mm: A1 (25) A3 (30) B1 (22) (3)
    # tracer-only 72 h: only A1 delineated
    assert summary_text(s, "tracer-only", "72 h") == ["1 of 5 (20%)", "1 of 3 (33%)"]
    # 120 h: A1, A2, B1; of the large ones A1 and B1
    assert summary_text(s, "tracer-only", "120 h") == ["3 of 5 (60%)", "2 of 3 (67%)"]
    assert summary_text(s, "tracer-only", "any") == ["3 of 5 (60%)", "2 of 3 (67%)"]
    # predose: only patient A was scanned (A1 A2 A3; large A1 A3); A1 seen at 120 h
    assert summary_text(s, "predose", "72 h") == ["0 of 3 (0%)", "0 of 2 (0%)"]
    assert summary_text(s, "predose", "120 h") == ["1 of 3 (33%)", "1 of 2 (50%)"]
    assert summary_text(s, "predose", "any") == ["1 of 3 (33%)", "1 of 2 (50%)"]
    assert s["series"].unique().tolist() == ["tracer-only", "predose"]
    any_row = s[s["time_point"] == "any"].iloc[0]
    assert math.isnan(any_row["nominal_hours"])
    assert s.iloc[0]["percent"] == pytest.approx(20.0)

    # tracer-positive lesions: 72 h A1 + A4 (FDG-negative) -> 1 of 2 FDG-positive;
    # 120 h A1 A2 B1 + A4 -> 3 of 4
    t = result.tracer_positive.set_index(["series", "nominal_hours"])
    assert t.loc[("tracer-only", 72.0), "text"] == "1 of 2 (50%)"
    assert t.loc[("tracer-only", 120.0), ["tracer_positive", "fdg_negative"]].tolist() == [4, 1]
    assert t.loc[("predose", 72.0), "tracer_positive"] == 0
    # FDG-negative A4 seen at 72 and at 120 h
    both = result.fdg_negative_both.set_index("series")
    assert both.loc["tracer-only", ["n_first", "n_second", "n_both"]].tolist() == [1, 1, 1]
    assert both.loc["predose", "n_both"] == 0

    per_scan = result.per_scan
    # every lesion of every scanned patient: A (4 lesions) x 4 scans + B (2) x 2 scans
    assert len(per_scan) == 4 * 4 + 2 * 2
    a4 = per_scan[(per_scan["patient"] == "A") & (per_scan["lesion"] == "4")]
    assert a4["measured"].tolist() == [True, True, False, False]  # tracer 72, 120, predose
    assert "reader" in result.rule


def test_visibility_denominator_all() -> None:
    # "14 of 102" in the study counts the lesions of patients never scanned with the predose
    result = lesion_visibility(visibility_measurements(), LESIONS, denominator="all")
    assert summary_text(result.summary, "predose", "120 h") == ["1 of 5 (20%)", "1 of 3 (33%)"]


def test_explicit_visible_column_overrides_method() -> None:
    m = visibility_measurements()
    m["visible"] = None
    # the reader says A3 at tracer-only 120 h is visible although it has a sphere VOI,
    # and A1 at 72 h is not although it was drawn
    m.loc[(m["patient"] == "A") & (m["voi"] == "3") & (m["nominal_hours"] == 120), "visible"] = True
    m.loc[(m["patient"] == "A") & (m["voi"] == "1") & (m["nominal_hours"] == 72), "visible"] = (
        "False"
    )
    s = lesion_visibility(m, LESIONS).summary
    assert summary_text(s, "tracer-only", "72 h") == ["0 of 5 (0%)", "0 of 3 (0%)"]
    # A1 A2 A3 B1 -> 4 of 5; large A1 A3 B1 -> 3 of 3
    assert summary_text(s, "tracer-only", "120 h") == ["4 of 5 (80%)", "3 of 3 (100%)"]


def test_quantitative_rule() -> None:
    lesions = pd.DataFrame(
        {"patient": "A", "lesion": [1, 2, 3], "fdg_positive": True, "long_axis_mm": 25.0}
    )
    # blood pool SUVmean 2.0, voxel SD 0.5, k = 3 -> threshold 2.0 + 3 x 0.5 = 3.5
    m = pd.DataFrame(
        [
            row("A", "tracer-only", 120, "blood_pool", kind="organ", suv_mean=2.0, suv_sd=0.5),
            row("A", "tracer-only", 120, "1", suv_peak=3.4),
            row("A", "tracer-only", 120, "2", suv_peak=3.5),  # equal: not above
            row("A", "tracer-only", 120, "3", suv_peak=4.0, method="sphere"),  # a sphere counts
        ]
    )
    result = lesion_visibility(m, lesions, rule="quantitative", k_sd=3.0)
    assert result.per_scan["visible"].tolist() == [False, False, True]
    assert result.per_scan["threshold"].tolist() == [3.5, 3.5, 3.5]
    # with k = 2 the threshold is 3.0: all three
    assert lesion_visibility(m, lesions, rule="quantitative", k_sd=2.0).per_scan["visible"].all()
    no_reference = m[m["kind"] == "lesion"]
    with pytest.raises(InputError, match=r"no 'blood_pool' reference VOI.*A/tracer-only at 120"):
        lesion_visibility(no_reference, lesions, rule="quantitative")


def test_unknown_lesions() -> None:
    m = pd.concat(
        [visibility_measurements(), pd.DataFrame([row("B", "tracer-only", 120, "node-7")])],
        ignore_index=True,
    )
    with pytest.raises(InputError, match=r"measured lesion\(s\) missing.*B/node-7"):
        lesion_visibility(m, LESIONS)
    result = lesion_visibility(m, LESIONS, unknown_lesions="fdg-negative")
    t = result.tracer_positive.set_index(["series", "nominal_hours"])
    # 120 h: A1 A2 B1 FDG-positive + A4 and node-7 FDG-negative
    assert t.loc[("tracer-only", 120.0), "text"] == "3 of 5 (60%)"


def test_visibility_input_errors() -> None:
    bad = LESIONS.assign(fdg_positive=["yes", "no", "maybe", "no", "yes", "yes"])
    with pytest.raises(InputError, match=r"row 2, column fdg_positive: not a yes/no"):
        lesion_visibility(visibility_measurements(), bad)
    twice = pd.concat([LESIONS, LESIONS.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match=r"a lesion is listed twice.*A/1"):
        lesion_visibility(visibility_measurements(), twice)
    m = visibility_measurements()
    with pytest.raises(InputError, match=r"a lesion is measured twice in one scan"):
        lesion_visibility(pd.concat([m, m.iloc[[0]]]), LESIONS)
    with pytest.raises(InputError, match="unknown visibility rule"):
        lesion_visibility(m, LESIONS, rule="eyeball")  # type: ignore[arg-type]


def tbr_measurements() -> pd.DataFrame:
    rows = []
    # 72 h: blood-pool SUVpeak 2.0 and 2.4 (mean 2.2); FDG-positive lesions 3.0, 4.0, 5.3
    # (mean 4.1); patient 2's lesion 2 is a flagged spill-in (15.1) and lesion 3 FDG-negative
    # 120 h: blood 1.8 and 2.0 (mean 1.9); lesions 3.5, 4.3, 3.9 (mean 3.9)
    for hours, blood, values in (
        (72, (2.0, 2.4), (3.0, 4.0, 5.3, 15.1, 9.0)),
        (120, (1.8, 2.0), (3.5, 4.3, 3.9, 15.0, 9.0)),
    ):
        rows.append(row("1", "tracer-only", hours, "blood_pool", kind="organ", suv_peak=blood[0]))
        rows.append(row("2", "tracer-only", hours, "blood_pool", kind="organ", suv_peak=blood[1]))
        rows.append(row("1", "tracer-only", hours, "1", suv_peak=values[0]))
        rows.append(row("1", "tracer-only", hours, "2", suv_peak=values[1], method="sphere"))
        rows.append(row("2", "tracer-only", hours, "1", suv_peak=values[2]))
        rows.append(row("2", "tracer-only", hours, "2", suv_peak=values[3], excluded=True))
        rows.append(row("2", "tracer-only", hours, "3", suv_peak=values[4], measurable=False))
    return pd.DataFrame(rows)


TBR_LESIONS = pd.DataFrame(
    {
        "patient": ["1", "1", "2", "2", "2"],
        "lesion": ["1", "2", "1", "2", "3"],
        "fdg_positive": [True, True, True, True, False],
        "long_axis_mm": 25.0,
    }
)


def test_tumour_to_blood_ratio_as_the_study() -> None:
    table = tumour_to_blood_ratio(tbr_measurements(), lesions_table=TBR_LESIONS)
    assert list(table.columns) == list(TBR_COLUMNS)
    at72, at120 = table.iloc[0], table.iloc[1]
    # 4.1 / 2.2 = 1.8636 (the study's "1.8"); 3.9 / 1.9 = 2.0526 ("2.1")
    assert at72["lesion_mean"] == pytest.approx(4.1)
    assert at72["reference_mean"] == pytest.approx(2.2)
    assert at72["ratio"] == pytest.approx(4.1 / 2.2)
    assert at120["ratio"] == pytest.approx(3.9 / 1.9)
    assert (at72["n_lesions"], at72["n_patients"], at72["n_reference"]) == (3, 2, 2)
    assert "FDG-positive" in at72["selection"] and "not excluded" in at72["selection"]
    choice = recommend_time_point(table)
    assert choice.nominal_hours == 120.0
    assert choice.ratio == pytest.approx(3.9 / 1.9)
    assert choice.table["chosen"].tolist() == [False, True]


def test_tumour_to_blood_ratio_options() -> None:
    m = tbr_measurements()
    # no lesion table: the FDG-negative lesion (9.0) counts: (3 + 4 + 5.3 + 9) / 4 = 5.325
    plain = tumour_to_blood_ratio(m)
    assert plain.iloc[0]["lesion_mean"] == pytest.approx(5.325)
    # the flagged outlier too: (3 + 4 + 5.3 + 15.1 + 9) / 5 = 7.28
    everything = tumour_to_blood_ratio(m, include_excluded=True)
    assert everything.iloc[0]["lesion_mean"] == pytest.approx(7.28)
    # measurable only drops the 9.0 (measurable False): (3 + 4 + 5.3) / 3 = 4.1
    assert tumour_to_blood_ratio(m, measurable_only=True).iloc[0]["lesion_mean"] == (
        pytest.approx(4.1)
    )
    # delineated only drops the sphere (4.0) as well: (3 + 5.3) / 2 = 4.15
    delineated = tumour_to_blood_ratio(m, lesions_table=TBR_LESIONS, delineated_only=True)
    assert delineated.iloc[0]["lesion_mean"] == pytest.approx(4.15)
    # blood-pool SUVmean (2.0 for both rows) instead of SUVpeak: 4.1 / 2.0
    by_mean = tumour_to_blood_ratio(m, lesions_table=TBR_LESIONS, reference_metric="suv_mean")
    assert by_mean.iloc[0]["ratio"] == pytest.approx(2.05)
    with pytest.raises(InputError, match="FDG status unknown without a lesion table"):
        tumour_to_blood_ratio(m, fdg_positive_only=True)


def test_recommend_time_point_ties_and_errors() -> None:
    tbr = pd.DataFrame(
        {
            "series": ["tracer-only"] * 3 + ["predose"],
            "nominal_hours": [72.0, 120.0, 168.0, 120.0],
            "n_lesions": [10, 10, 0, 10],
            "ratio": [2.0, 2.0, 9.9, 5.0],
        }
    )
    # 168 h has no lesions (does not compete); 72 and 120 tie -> the earlier
    assert recommend_time_point(tbr).nominal_hours == 72.0
    assert recommend_time_point(tbr, series="predose").ratio == 5.0
    with pytest.raises(InputError, match=r"no time point with a tumour-to-blood ratio"):
        recommend_time_point(tbr, series="other")


def test_match_lesions_by_stable_id() -> None:
    m = pd.DataFrame(
        [
            row("A", "tracer-only", 72, "1", centroid=(0, 0, 0)),
            row("A", "tracer-only", 72, "2", centroid=(50, 0, 0)),
            row("A", "tracer-only", 120, "2", centroid=(52, 0, 0)),
            row("A", "predose", 72, "1", centroid=(3, 4, 0)),
            row("B", "tracer-only", 72, "1", centroid=(0, 0, 0)),
            row("A", "tracer-only", 72, "blood_pool", kind="organ"),
        ]
    )
    match = match_lesions(m, by="id")
    rows = match.rows.set_index(["patient", "series", "nominal_hours", "voi"])
    assert rows.loc[("A", "predose", 72.0, "1"), "track"] == "1"
    assert rows.loc[("A", "predose", 72.0, "1"), "matched_by"] == "id"
    # distance (3, 4, 0) from (0, 0, 0) = 5 mm
    assert rows.loc[("A", "predose", 72.0, "1"), "distance_mm"] == pytest.approx(5.0)
    assert rows.loc[("A", "tracer-only", 120.0, "2"), "distance_mm"] == pytest.approx(2.0)
    assert match.unmatched[["patient", "voi"]].values.tolist() == [["B", "1"]]
    wide = match.wide("suv_peak")
    assert wide.shape == (3, 3)  # tracks A1, A2, B1 x scans (tracer 72, tracer 120, predose 72)


def test_match_lesions_by_centroid_for_unstable_ids() -> None:
    # segment names are per scan: "ROI-1" at 72 h is "ROI-2" at 120 h and vice versa
    m = pd.DataFrame(
        [
            row("A", "tracer-only", 72, "ROI-1", centroid=(0, 0, 0)),
            row("A", "tracer-only", 72, "ROI-2", centroid=(50, 0, 0)),
            row("A", "tracer-only", 120, "ROI-1", centroid=(51, 0, 0)),
            row("A", "tracer-only", 120, "ROI-2", centroid=(1, 0, 0)),
            row("A", "tracer-only", 120, "ROI-3", centroid=(200, 0, 0)),
        ]
    )
    match = match_lesions(m, by="centroid", tolerance_mm=10.0)
    got = match.rows.set_index(["nominal_hours", "voi"])
    assert got.loc[(120.0, "ROI-1"), "track"] == "ROI-2"
    assert got.loc[(120.0, "ROI-2"), "track"] == "ROI-1"
    assert got.loc[(120.0, "ROI-1"), "distance_mm"] == pytest.approx(1.0)
    assert got.loc[(120.0, "ROI-1"), "matched_by"] == "centroid"
    assert match.unmatched["voi"].tolist() == ["ROI-3"]
    # by id the names alone decide: ROI-1 with ROI-1, 51 mm apart
    by_id = match_lesions(m, by="id").rows.set_index(["nominal_hours", "voi"])
    assert by_id.loc[(120.0, "ROI-1"), "track"] == "ROI-1"
    assert by_id.loc[(120.0, "ROI-1"), "distance_mm"] == pytest.approx(51.0)
    # a tolerance below 1 mm matches nothing: every row starts its own track, names made unique
    strict = match_lesions(m, by="centroid", tolerance_mm=0.5)
    assert len(set(strict.rows["track"])) == 5
    assert "ROI-1@tracer-only/120h" in set(strict.rows["track"])
    assert len(strict.unmatched) == 5


def test_match_lesions_auto_falls_back_to_centroid_only_for_new_ids() -> None:
    m = pd.DataFrame(
        [
            row("A", "tracer-only", 72, "1", centroid=(0, 0, 0)),
            row("A", "tracer-only", 72, "2", centroid=(40, 0, 0)),
            row("A", "tracer-only", 120, "1", centroid=(38, 0, 0)),  # by id, although far
            row("A", "tracer-only", 120, "seg-5", centroid=(41, 0, 0)),  # near lesion 2
        ]
    )
    got = match_lesions(m).rows.set_index(["nominal_hours", "voi"])
    assert got.loc[(120.0, "1"), ["track", "matched_by"]].tolist() == ["1", "id"]
    assert got.loc[(120.0, "seg-5"), ["track", "matched_by"]].tolist() == ["2", "centroid"]


def test_match_lesions_errors() -> None:
    m = pd.DataFrame([row("A", "tracer-only", 72, "1"), row("A", "tracer-only", 72, "1")])
    with pytest.raises(InputError, match=r"a lesion is measured twice in one scan.*lesion 1"):
        match_lesions(m)
    with pytest.raises(InputError, match="unknown matching"):
        match_lesions(m, by="name")  # type: ignore[arg-type]
    no_centroids = pd.DataFrame([row("A", "tracer-only", 72, "1")]).drop(columns=["centroid_x_mm"])
    with pytest.raises(InputError, match="centroid_x_mm"):
        match_lesions(no_centroids, by="centroid")
    assert len(match_lesions(no_centroids, by="id").rows) == 1
    assert np.isnan(match_lesions(no_centroids, by="id").rows["distance_mm"]).all()


def test_tbr_with_a_lesion_table_and_no_lesion_row_is_empty_not_a_crash() -> None:
    # a scan with only its blood pool measured: the FDG filter got an empty list, which
    # pandas reads as "no columns" (KeyError 'suv_peak' with a traceback from `immunopet run`)
    blood_only = pd.DataFrame(
        {
            "patient": ["9"],
            "series": ["tracer-only"],
            "hours_pi": [72.0],
            "nominal_hours": [72],
            "voi": ["blood_pool"],
            "kind": ["organ"],
            "suv_peak": [2.2],
        }
    )
    table = pd.DataFrame(
        {"patient": ["1"], "lesion": ["1"], "fdg_positive": [True], "long_axis_mm": [30.0]}
    )
    (row,) = tumour_to_blood_ratio(blood_only, lesions_table=table).to_dict("records")
    assert row["n_lesions"] == 0 and row["n_reference"] == 1
    assert row["reference_mean"] == 2.2 and math.isnan(row["ratio"])
