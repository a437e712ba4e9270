"""A run with two workers: the same files as with one; FDG rows reused; figures drawn by workers.

Uses the tiny synthetic trial of ``test_analysis_assemble.py`` (generated once per session).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import threading
from collections import deque
from functools import partial
from pathlib import Path

import pytest

from immunopet.cli.main import main
from immunopet.report import figures
from immunopet.report.drawing import DrawJob, FigureDrawer
from immunopet.study import runner
from immunopet.study._tasks import Outcome, Task, in_process, isolated, local_pool
from immunopet.study.manifest import load_manifest
from immunopet.study.qc import QC_DIR, qc_file_name
from immunopet.study.store import ResultsStore
from test_analysis_assemble import report_trial  # noqa: F401  (a fixture)

# files whose content records when or how the run was made (times, run id, backend, workers)
_RECORDS_THE_RUN = {"provenance.csv", "provenance.parquet", "immunopet.duckdb"}


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in suffixes and path.name not in _RECORDS_THE_RUN
    }


@pytest.mark.slow
def test_one_and_two_workers_write_identical_results_and_figures(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    manifest = report_trial / "study.toml"
    outputs = {}
    for workers in (1, 2):
        results, report = tmp_path / f"results{workers}", tmp_path / f"report{workers}"
        argv = ["run", str(manifest), "-o", str(results), "--report", str(report)]
        assert main([*argv, "--workers", str(workers), "--quiet"]) == 0
        tables = _files(results, (".csv", ".parquet", ".json", ".npz"))
        outputs[workers] = (tables, _files(report / "figures", (".png",)))
    tables, pngs = outputs[1]
    # every table of the results folder and of its analysis, the analysis' JSON, the stored
    # QC images and Fig 5 pairs, and every PNG of the report: byte for byte
    assert "analysis/lesion_uptake.csv" in tables and "analysis/analysis.json" in tables
    assert "fdg_measurements.csv" in tables
    assert any(name.startswith(f"{QC_DIR}/fig5_") for name in tables)
    assert any(name.startswith("fig5_") for name in pngs) and "biodistribution.png" in pngs
    n_scans = len(list(load_manifest(manifest).scans()))
    assert sum(name.startswith("qc_") for name in pngs) == n_scans
    assert outputs[2][0].keys() == tables.keys()
    assert [name for name in tables if outputs[2][0][name] != tables[name]] == []
    assert outputs[2][1].keys() == pngs.keys()
    assert [name for name in pngs if outputs[2][1][name] != pngs[name]] == []


def test_fdg_rows_are_reused_until_their_inputs_change(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "trial"
    shutil.copytree(report_trial, root, ignore=shutil.ignore_patterns("results", "report"))
    study = load_manifest(root / "study.toml")
    measured: list[str] = []
    real = runner.measure_fdg_patient

    def counted(patient: str, *args: object) -> object:
        measured.append(patient)
        return real(patient, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "measure_fdg_patient", counted)
    results = tmp_path / "results"
    with_fdg = [patient.pseudonym for patient in study.patients if patient.fdg is not None]
    assert len(with_fdg) >= 2
    runner.run_study(study, results, workers=1, progress=False)
    assert measured == with_fdg
    with ResultsStore(results) as store:
        first = store.read_table("fdg_measurements")
    pairs = {p.name: p.read_bytes() for p in (results / QC_DIR).glob("fig5_*.npz")}
    assert pairs

    measured.clear()
    runner.run_study(study, results, workers=1, progress=False)
    assert measured == []  # every FDG scan current: its stored rows are used
    with ResultsStore(results) as store:
        again = store.read_table("fdg_measurements")
    assert again.equals(first)
    assert {p.name: p.read_bytes() for p in (results / QC_DIR).glob("fig5_*.npz")} == pairs
    assert (results / "fdg_measurements.csv").read_bytes() == first.to_csv(index=False).encode()

    # a VOI file of one patient's FDG scan changes: that patient's scan is measured again
    changed = next(p for p in study.patients if p.fdg is not None)
    assert changed.fdg is not None
    voi = root / changed.fdg.vois[0].path
    stat = voi.stat()
    os.utime(voi, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    measured.clear()
    runner.run_study(study, results, workers=1, progress=False)
    assert measured == [changed.pseudonym]
    measured.clear()
    runner.run_study(study, results, workers=1, progress=False, force=True)
    assert measured == with_fdg


def test_executors_run_tasks_added_while_they_run() -> None:
    for run in (in_process, lambda pending: local_pool(pending, 2)):
        pending = deque(Task("draw", f"sqrt {x}", math.sqrt, (float(x),)) for x in (4, 9))
        seen: list[Outcome] = []
        for outcome in run(pending):
            seen.append(outcome)
            if len(seen) == 1:  # a follow-up, known only once a first result is in
                pending.appendleft(Task("draw", "sqrt 16", math.sqrt, (16.0,)))
        assert sorted(outcome.result for outcome in seen) == [2.0, 3.0, 4.0]
        assert all(outcome.ok and outcome.seconds >= 0 for outcome in seen)


def test_a_result_that_cannot_come_back_from_its_worker_fails_that_task_only() -> None:
    # a lock cannot be pickled: the worker cannot send it back (it ended the whole run before)
    for run in (lambda pending: local_pool(pending, 2), isolated):
        tasks = [
            Task("scan", "sqrt 4", math.sqrt, (4.0,)),
            Task("scan", "a lock", threading.Lock, ()),
            Task("scan", "sqrt 9", math.sqrt, (9.0,)),
        ]
        outcomes = {o.label: o for o in run(deque(tasks))}
        assert outcomes["sqrt 4"].result == 2.0 and outcomes["sqrt 9"].result == 3.0
        failed = outcomes["a lock"]
        assert not failed.ok and failed.error_type == "TypeError", failed
        assert failed.message.startswith("unexpected error (TypeError): cannot pickle")
        assert "Traceback" in failed.detail


def test_a_task_that_raises_is_an_outcome_not_an_exception() -> None:
    (outcome,) = in_process(deque([Task("draw", "bad", math.sqrt, (-1.0,))]))
    assert not outcome.ok
    assert outcome.error_type == "ValueError"
    assert outcome.message == "unexpected error (ValueError): math domain error"
    assert "Traceback" in outcome.detail


def _qc_job(results: Path, scan_id: str, folder: Path, **changes: object) -> DrawJob:
    job = DrawJob(
        key=f"qc {scan_id}",
        draw=partial(figures._qc_page, results / QC_DIR / qc_file_name(scan_id), scan_id),
        path=folder / figures._qc_file(scan_id),
        what=f"QC page of {scan_id}",
        tolerant=True,
    )
    return dataclasses.replace(job, **changes)  # type: ignore[arg-type]


def test_figure_drawer_workers_draw_the_same_files(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    results = report_trial / "results"
    scans = [ref.scan_id for ref in load_manifest(report_trial / "study.toml").scans()][:3]
    drawn = {}
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        jobs = [_qc_job(results, scan_id, folder) for scan_id in scans]
        here = _qc_job(results, scans[0], folder, key="here", path=folder / "here.png")
        here = dataclasses.replace(here, draw=lambda path, job=here: job.draw(path))  # no pickle
        missing = _qc_job(tmp_path, scans[0], folder, key="missing", what="QC page of nothing")
        with caplog.at_level(logging.WARNING), FigureDrawer(workers) as drawer:
            drawer.add([*jobs, here])
            drawer.add([missing])
            pages = drawer.finish()
        assert list(pages) == [*(job.key for job in jobs), "here"]  # in the order added
        drawn[workers] = {key: path.read_bytes() for key, path in pages.items()}
        assert drawn[workers]["here"] == drawn[workers][f"qc {scans[0]}"]
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert messages == [
            "QC page of nothing not drawn: no QC images stored for this scan "
            "(run the study again to store them)"
        ]
        caplog.clear()
    assert drawn[1] == drawn[2]


def test_figure_that_cannot_be_written_is_raised_here(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    scan_id = next(iter(load_manifest(report_trial / "study.toml").scans())).scan_id
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    unwritable = blocker / "page.png"
    job = _qc_job(report_trial / "results", scan_id, tmp_path, path=unwritable, tolerant=False)
    with pytest.raises(OSError), FigureDrawer(2) as drawer:
        drawer.add([job])
        drawer.finish()


class _CrashOnUnpickle:
    """Kills the process that unpickles it (a worker), like a segfault would."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (1,))


@pytest.mark.slow
def test_a_drawing_worker_that_dies_costs_only_its_figure(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    results = report_trial / "results"
    scans = [ref.scan_id for ref in load_manifest(report_trial / "study.toml").scans()][:3]
    jobs = [_qc_job(results, scan_id, tmp_path) for scan_id in scans]
    doomed = dataclasses.replace(jobs[1], draw=partial(figures._qc_page, _CrashOnUnpickle()))
    with caplog.at_level(logging.WARNING), FigureDrawer(2) as drawer:
        drawer.add([jobs[0], doomed, jobs[2]])
        pages = drawer.finish()
    assert list(pages) == [jobs[0].key, jobs[2].key]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages[-1].startswith(f"QC page of {scans[1]} not drawn: the worker process died")


def test_run_study_hands_each_stored_scan_to_on_stored_once_and_calls_meanwhile_once(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = load_manifest(report_trial / "study.toml")
    results = tmp_path / "results"
    handed: list[list[str]] = []
    missing: list[str] = []
    calls: list[str] = []

    def on_stored(scan_ids: list[str]) -> None:  # the QC images exist when a scan is handed
        handed.append(list(scan_ids))
        missing.extend(s for s in scan_ids if not (results / QC_DIR / qc_file_name(s)).is_file())

    summary = runner.run_study(
        study,
        results,
        workers=2,
        progress=False,
        on_stored=on_stored,
        meanwhile=lambda: calls.append("meanwhile"),
    )
    assert calls == ["meanwhile"]
    assert missing == []
    flat = [scan_id for batch in handed for scan_id in batch]
    assert sorted(flat) == sorted(summary.processed) and len(flat) == len(set(flat))
    assert len(handed) >= 1 and all(handed)  # the stored ones at the tail, then one by one


def test_figure_drawer_draws_a_key_once_and_keeps_the_order_added(
    report_trial: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    results = report_trial / "results"
    scans = [ref.scan_id for ref in load_manifest(report_trial / "study.toml").scans()][:3]
    jobs = [_qc_job(results, scan_id, tmp_path) for scan_id in scans]
    with FigureDrawer(2) as drawer:
        drawer.add(jobs[1:], fill=True)  # QC pages: drawn when nothing else waits
        drawer.add([jobs[0], jobs[1]])  # jobs[1] again: not drawn twice
        pages = drawer.finish()
    assert list(pages) == [jobs[1].key, jobs[2].key, jobs[0].key]
    again = figures.qc_page_job(results, scans[0], tmp_path)
    assert (again.key, again.path, again.what, again.tolerant) == (
        jobs[0].key,
        jobs[0].path,
        jobs[0].what,
        jobs[0].tolerant,
    )
