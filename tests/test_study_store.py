"""The DuckDB results store: atomic per-scan writes, keys, failures, free tables, exports.

Rows are built by hand here (no images needed); the values read back are compared with the
values written.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow
import pytest

from immunopet.errors import InputError
from immunopet.study.pipeline import MEASUREMENT_COLUMNS, SCAN_COLUMNS, ScanResult
from immunopet.study.store import ResultsStore

CONTRACT_FIRST = [
    "patient",
    "series",
    "hours_pi",
    "voi",
    "kind",
    "suv_mean",
    "suv_max",
    "suv_peak",
    "volume_ml",
    "long_axis_mm",
]


def scan_row(scan_id: str) -> dict[str, Any]:
    patient, series, hours = scan_id.split("/")
    row: dict[str, Any] = dict.fromkeys(SCAN_COLUMNS)
    row.update(
        scan_id=scan_id,
        patient=patient,
        series=series,
        nominal_hours=float(hours.rstrip("h")),
        hours_pi=float(hours.rstrip("h")) + 0.25,
        injection_datetime=datetime(2018, 4, 9, 9, 36),
        scan_datetime=datetime(2018, 4, 12, 9, 51),
        unlabelled_mass_mg=0.0,
        manufacturer="SIEMENS",
        units="BQML",
        decay_correction="START",
        branch="BQML/START",
        suv_bw_factor=3.3e-3,
        weight_kg=64.7,
        injected_activity_bq=37e6,
        normalisation="bw",
        n_vois=2,
        warnings="",
    )
    return row


def measurement(scan_id: str, voi: str, kind: str, suv_mean: float) -> dict[str, Any]:
    patient, series, hours = scan_id.split("/")
    row: dict[str, Any] = dict.fromkeys(MEASUREMENT_COLUMNS, 1.0)
    row.update(
        patient=patient,
        series=series,
        voi=voi,
        kind=kind,
        suv_mean=suv_mean,
        scan_id=scan_id,
        nominal_hours=float(hours.rstrip("h")),
        n_voxels=8,
        method="sphere",
        source="organ_points.csv",
        measurable=None if kind == "organ" else True,
        ratio_to_reference=math.nan,
        excluded=False,
        exclusion_reason=None,
        suggested_exclusion=None,
        warnings="",
    )
    return row


def result(scan_id: str, suv: float = 2.0) -> ScanResult:
    return ScanResult(
        scan_id=scan_id,
        scan=scan_row(scan_id),
        measurements=(
            measurement(scan_id, "1", "lesion", suv),
            measurement(scan_id, "liver", "organ", suv / 2),
        ),
    )


def test_write_and_read_back(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_scan(result("P01/tracer-only/72h", 4.0), "key-a")
        store.write_scan(result("P01/tracer-only/120h", 5.0), "key-b")
        rows = store.read_table("measurements")
        scans = store.read_table("scans")
    assert list(rows.columns[:10]) == CONTRACT_FIRST
    # ordered by patient, series, nominal hours (72 before 120), then VOI order
    assert list(rows["scan_id"]) == ["P01/tracer-only/72h"] * 2 + ["P01/tracer-only/120h"] * 2
    assert list(rows["suv_mean"]) == [4.0, 2.0, 5.0, 2.5]
    assert rows["measurable"][0] == True  # noqa: E712 (a nullable boolean)
    assert pd.isna(rows["measurable"][1])  # organs: NULL
    assert math.isnan(rows["ratio_to_reference"][0])
    assert list(scans["scan_datetime"]) == [pd.Timestamp("2018-04-12 09:51")] * 2
    assert list(scans.columns) == list(SCAN_COLUMNS)


def test_rewrite_replaces_and_keys(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_scan(result("P01/tracer-only/72h", 4.0), "key-a")
        assert store.is_current("P01/tracer-only/72h", "key-a")
        assert not store.is_current("P01/tracer-only/72h", "key-b")
        assert not store.is_current("P02/tracer-only/72h", "key-a")
        store.write_scan(result("P01/tracer-only/72h", 6.0), "key-b")
        rows = store.read_table("measurements")
        assert list(rows["suv_mean"]) == [6.0, 3.0]  # replaced, not appended
        assert store.is_current("P01/tracer-only/72h", "key-b")
        assert store.stored_keys() == {"P01/tracer-only/72h": "key-b"}


def test_failed_write_leaves_the_old_rows(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_scan(result("P01/tracer-only/72h", 4.0), "key-a")
        broken = result("P01/tracer-only/72h", 9.0)
        broken.measurements[1]["n_voxels"] = "eight"  # fails after the old rows were deleted
        with pytest.raises((pyarrow.ArrowInvalid, pyarrow.ArrowTypeError)):
            store.write_scan(broken, "key-b")
        assert list(store.read_table("measurements")["suv_mean"]) == [4.0, 2.0]
        assert len(store.read_table("scans")) == 1
        assert store.is_current("P01/tracer-only/72h", "key-a")


def test_committed_scans_survive_a_killed_process(tmp_path: Path) -> None:
    # a separate Python writes two scans and dies without closing the database (os._exit)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_study_store import result
        from immunopet.study.store import ResultsStore
        store = ResultsStore({str(tmp_path)!r})
        store.write_scan(result("P01/tracer-only/72h"), "k1")
        store.write_scan(result("P01/tracer-only/120h"), "k2")
        os._exit(1)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
    assert done.returncode == 1
    with ResultsStore(tmp_path) as store:
        assert store.stored_keys() == {"P01/tracer-only/72h": "k1", "P01/tracer-only/120h": "k2"}
        assert len(store.read_table("measurements")) == 4


def test_failure_replaces_results(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_scan(result("P01/tracer-only/72h"), "key-a")
        store.write_failure(
            {
                "scan_id": "P01/tracer-only/72h",
                "patient": "P01",
                "series": "tracer-only",
                "nominal_hours": 72.0,
                "error_type": "SuvError",
                "message": "pet/1.dcm: (0054,1001) Units: unsupported units",
                "key": "key-b",
                "run_id": "r1",
            }
        )
        failures = store.read_table("failures")
        assert list(failures["message"]) == ["pet/1.dcm: (0054,1001) Units: unsupported units"]
        assert store.read_table("measurements").empty
        assert not store.is_current("P01/tracer-only/72h", "key-a")
        # a later success clears the failure
        store.write_scan(result("P01/tracer-only/72h"), "key-c")
        assert store.read_table("failures").empty


def test_prune_removes_scans_not_in_the_study(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_scan(result("P01/tracer-only/72h"), "a")
        store.write_scan(result("P02/tracer-only/72h"), "b")
        assert store.prune(["P01/tracer-only/72h"]) == ["P02/tracer-only/72h"]
        assert set(store.read_table("scans")["scan_id"]) == {"P01/tracer-only/72h"}


def test_free_tables(tmp_path: Path) -> None:
    clinical = pd.DataFrame({"patient": ["P01", "P02"], "os_days": [823, 760], "bor": ["SD", "PR"]})
    with ResultsStore(tmp_path) as store:
        store.write_table("clinical", clinical)
        store.write_table("clinical", clinical.iloc[:1])  # replaced
        back = store.read_table("clinical")
        assert back.to_dict("list") == {"patient": ["P01"], "os_days": [823], "bor": ["SD"]}
        with pytest.raises(InputError, match="not a table that can be written"):
            store.write_table("measurements", clinical)
        with pytest.raises(InputError, match="not a table that can be written"):
            store.write_table("x; DROP TABLE scans", clinical)
        with pytest.raises(InputError, match="no such table"):
            store.read_table("blood")


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    out = tmp_path / "results"
    with ResultsStore(out) as store:
        store.write_scan(result("P01/tracer-only/72h", 4.0), "a")
        store.write_table("clinical", pd.DataFrame({"patient": ["P01"], "bor": ["SD"]}))
        written = store.export()
        expected = store.read_table("measurements")
    names = {"scans", "measurements", "clinical", "provenance", "failures"}
    assert set(written) == {f"{n}.{ext}" for n in names for ext in ("csv", "parquet")}
    assert all(path.parent == out and path.is_file() for path in written.values())
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind
    header = (out / "measurements.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == CONTRACT_FIRST
    assert header == list(MEASUREMENT_COLUMNS)
    parquet = pd.read_parquet(out / "measurements.parquet")
    assert list(parquet["suv_mean"]) == list(expected["suv_mean"]) == [4.0, 2.0]
    csv = pd.read_csv(out / "measurements.csv")
    assert list(csv["voi"].astype(str)) == ["1", "liver"]
