"""``immunopet run --dask`` ended mid-run (SIGKILL, SIGTERM) leaves no process and no
half-written results.

The long synthetic study of ``test_run_lifetime.py`` runs on a Dask ``LocalCluster`` of two
worker processes. Once the workers exist (and some scans are stored), the run is ended. Then:
every process it started (the Dask workers, their spawner's helpers) is gone within seconds,
and the results folder is whole: the store opens, every stored scan has its measurement rows,
every exported CSV/Parquet parses, and no temporary file is left in a visible name.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from immunopet.study.store import ResultsStore
from test_run_lifetime import (  # noqa: F401  (long_study is a fixture)
    _descendants,
    long_study,
    signal_and_reap,
    start_run,
)

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="reads the process tree from /proc"
    ),
    pytest.mark.slow,
]


def _start_dask(root: Path, results: Path) -> subprocess.Popen[bytes]:
    return start_run(root, results, "--dask")


def _wait_for_dask_workers(run: subprocess.Popen[bytes], settle_s: float) -> set[tuple[int, int]]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = _descendants(run.pid)
        if len(found) >= 2:  # the two Dask worker processes (and their helpers)
            time.sleep(settle_s)  # e.g. let the workers take and return their first scans
            return _descendants(run.pid)
        if run.poll() is not None:
            break
        time.sleep(0.2)
    _, err = run.communicate(timeout=30)
    pytest.fail(f"the Dask run did not start its workers: {run.returncode} {err.decode()[-2000:]}")


def _end(run: subprocess.Popen[bytes], how: str, settle_s: float = 2.0) -> tuple[int, str]:
    # the whole run takes ~10 s on a quiet 2-core machine, ~3 s of it before the workers
    # exist: 2 s more lets the workers take and return their first scans, well before the end
    processes = _wait_for_dask_workers(run, settle_s)
    return signal_and_reap(run, processes, how, timeout_s=90, grace_s=20)


def _results_are_whole(results: Path) -> None:
    if not (results / "immunopet.duckdb").exists():
        return  # ended before the first scan was stored: nothing half-written either
    with ResultsStore(results) as store:  # opening also finishes or drops a staged export
        scans = store.read_table("scans")
        measurements = (
            store.read_table("measurements") if "measurements" in store.tables() else None
        )
    if len(scans):
        assert measurements is not None
        assert set(scans["scan_id"]) <= set(measurements["scan_id"])
    for path in results.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            assert not path.name.endswith((".tmp", ".partial")), path.name
            if path.suffix == ".csv":
                pd.read_csv(path)
            elif path.suffix == ".parquet":
                pd.read_parquet(path)


def test_dask_run_killed_leaves_no_process_and_whole_results(
    long_study: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    code, _ = _end(_start_dask(long_study, results), "SIGKILL")
    assert code == -signal.SIGKILL
    _results_are_whole(results)


def test_dask_run_terminated_leaves_no_process_one_line(
    long_study: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    code, err = _end(_start_dask(long_study, results), "SIGTERM")
    assert code == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["immunopet run: terminated (SIGTERM)"], err
    _results_are_whole(results)


def test_dask_run_terminated_while_the_cluster_starts(
    long_study: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    # SIGTERM as soon as the worker processes exist: the nannies are still starting, and
    # distributed's own exit hook used to print a traceback for the cluster it could not close
    results = tmp_path / "results"
    code, err = _end(_start_dask(long_study, results), "SIGTERM", settle_s=0.0)
    assert code == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["immunopet run: terminated (SIGTERM)"], err
    _results_are_whole(results)
