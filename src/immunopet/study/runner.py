"""Run a study: every scan through the per-scan job, locally or on a Dask cluster.

:func:`run_study` is the orchestrator. It

1. resolves the scans' paths against the study root and computes each scan's key
   (:mod:`immunopet.study.provenance`); scans whose stored results have the same key are
   skipped unless ``force``;
2. runs :func:`~immunopet.study.pipeline.process_scan` for the others:

   * ``workers=1`` (and no Dask): in this process, one scan after another;
   * default: a :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` processes
     (default ``min(2, cpu_count)``), started with the ``forkserver`` method where available
     (safe with the threads DuckDB and tqdm keep in this process), else ``spawn``;
   * ``scheduler="tcp://HOST:PORT"``: the Dask cluster at that address
     (``distributed.Client(address)``);
   * ``backend="dask"`` without an address: a ``distributed.LocalCluster`` of ``workers``
     single-threaded worker processes;

3. writes each result as it arrives, one transaction per scan (:class:`~immunopet.study.store.
   ResultsStore`): only this process writes; workers only return rows;
4. copies the clinical sheet (and the blood sample sheet) into the store, removes the rows of
   scans no longer in the study, appends a provenance row and exports every table as CSV and
   Parquet.

Failures
--------
A scan whose job raises (an :class:`~immunopet.errors.ImmunoPETError`, or anything else: a
bug) is recorded in the ``failures`` table with the message, and the other scans continue.
When a worker process dies (a crash in a C library, out of memory, a kill), the local pool
breaks: the scans that were in flight are rerun one by one in a fresh single-worker pool, so
the scan that kills its worker again is recorded as a failure and the innocent ones complete;
then the pool is restarted for the rest. On Dask a task whose workers keep dying ends as
``KilledWorker`` and is recorded likewise.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import re
import time
import traceback
import uuid
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm import tqdm

from immunopet import __version__
from immunopet.errors import ImmunoPETError, InputError, ManifestError
from immunopet.study import pipeline
from immunopet.study._lifeline import new_pool, stop_pool
from immunopet.study.fdg import measure_fdg_lesions
from immunopet.study.fig5 import store_fig5_slices
from immunopet.study.model import AnalysisSettings, Exclusion, ScanRef, Study, VoiSource
from immunopet.study.pipeline import ScanResult
from immunopet.study.privacy import PathRedactor
from immunopet.study.provenance import (
    fingerprint_inputs,
    hash_file,
    library_versions,
    manifest_reference,
    scan_inputs,
    scan_key,
    settings_json,
)
from immunopet.study.store import ResultsStore

__all__ = ["IDENTIFYING_COLUMN_PATTERN", "Backend", "RunSummary", "ScanFailure", "run_study"]

Backend = Literal["local", "dask"]

IDENTIFYING_COLUMN_PATTERN = re.compile(
    r"name|birth|dob|mrn|patientid|ssn|bsn|initials|email|phone|address"
)
"""Column names (lower-cased, non-alphanumerics removed) that are dropped from study sheets."""

WORKER_CRASH = "WorkerCrash"
"""``error_type`` of a scan whose worker process died."""

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanFailure:
    """A scan that could not be processed.

    Attributes
    ----------
    scan_id : str
    error_type : str
        The exception class name, or ``"WorkerCrash"``.
    message : str
        The error in words (file, tag, value, expectation for input errors).
    """

    scan_id: str
    error_type: str
    message: str


@dataclass(frozen=True)
class RunSummary:
    """What a run did.

    Attributes
    ----------
    run_id : str
    results_dir : Path
    n_scans : int
        Scans in the study.
    processed, skipped : tuple of str
        Scan ids computed in this run, and those whose stored results were current.
    failures : tuple of ScanFailure
    job_seconds : mapping of str to float, s
        Time of each job, measured around the job where it ran.
    wall_seconds : float, s
        Whole run, including hashing, writing, the clinical copy and the exports.
    backend : str
        ``"in-process"``, ``"local"``, ``"dask-local"`` or ``"dask:<address>"``.
    workers : int
    exports : mapping of str to Path
        The CSV and Parquet files written.
    warnings : tuple of str
        Run-level notes (columns dropped, stale scans removed, exclusions not matched).
    """

    run_id: str
    results_dir: Path
    n_scans: int
    processed: tuple[str, ...]
    skipped: tuple[str, ...]
    failures: tuple[ScanFailure, ...]
    job_seconds: Mapping[str, float]
    wall_seconds: float
    backend: str
    workers: int
    exports: Mapping[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[str, ...]:
        """Scan ids that failed."""
        return tuple(f.scan_id for f in self.failures)

    @property
    def ok(self) -> bool:
        """True when no scan failed."""
        return not self.failures

    @property
    def summary(self) -> str:
        """A few lines for people: counts, failures, where the results are."""
        lines = [
            f"{self.n_scans} scans: {len(self.processed)} processed, {len(self.skipped)} "
            f"skipped (results current), {len(self.failures)} failed "
            f"[{self.backend}, {self.workers} worker(s), {self.wall_seconds:.1f} s]"
        ]
        lines += [f"  failed {f.scan_id}: {f.message}" for f in self.failures]
        lines += [f"  note: {note}" for note in self.warnings]
        lines.append(f"results: {self.results_dir}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Outcome:
    scan_id: str
    result: ScanResult | None
    error_type: str = ""
    message: str = ""
    detail: str = ""
    seconds: float = math.nan


# ---------------------------------------------------------------------------- the job
def _run_job(ref: ScanRef, settings: AnalysisSettings, exclusions: Sequence[Exclusion]) -> _Outcome:
    """Run one scan's job where it is called (a worker); never raises for a scan's problem."""
    start = time.perf_counter()
    try:
        result = pipeline.process_scan(ref, settings, exclusions=exclusions)
    except ImmunoPETError as exc:
        return _Outcome(
            ref.scan_id,
            None,
            type(exc).__name__,
            str(exc),
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:  # a bug: recorded with its traceback, the run goes on
        return _Outcome(
            ref.scan_id,
            None,
            type(exc).__name__,
            f"unexpected error ({type(exc).__name__}): {exc}",
            traceback.format_exc(),
            time.perf_counter() - start,
        )
    return _Outcome(ref.scan_id, result, seconds=time.perf_counter() - start)


def _crash(ref: ScanRef, what: str) -> _Outcome:
    return _Outcome(
        ref.scan_id,
        None,
        WORKER_CRASH,
        f"the worker process died while processing this scan ({what}): a crash in a "
        "compiled library, running out of memory, or a kill",
    )


_Job = tuple[ScanRef, AnalysisSettings, tuple[Exclusion, ...]]


def _in_process(jobs: Sequence[_Job]) -> Iterator[_Outcome]:
    for job in jobs:
        yield _run_job(*job)


def _mp_context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["immunopet.study.pipeline"])
        return context
    return multiprocessing.get_context("spawn")


def _isolated(jobs: Sequence[_Job]) -> Iterator[_Outcome]:
    """Run jobs one at a time in a single-worker pool, restarted after each crash."""
    pool: ProcessPoolExecutor | None = None
    try:
        for job in jobs:
            if pool is None:
                pool = new_pool(1, _mp_context())
            try:
                outcome = pool.submit(_run_job, *job).result()
            except BrokenProcessPool:
                outcome = _crash(job[0], "it failed again when run alone")
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
            yield outcome
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or closed early: stop now
        if pool is not None:
            stop_pool(pool)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _local_pool(jobs: Sequence[_Job], workers: int) -> Iterator[_Outcome]:
    pending = deque(jobs)
    while pending:
        suspects: list[_Job] = []
        pool = new_pool(workers, _mp_context())
        in_flight: dict[Future[_Outcome], _Job] = {}
        finished = False
        try:
            while pending or in_flight:
                while pending and len(in_flight) < 2 * workers and not suspects:
                    job = pending.popleft()
                    try:
                        in_flight[pool.submit(_run_job, *job)] = job
                    except BrokenProcessPool:
                        suspects.append(job)
                        break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    job = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        suspects.append(job)
                        continue
                    yield outcome
                if suspects and not in_flight:
                    break
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True, cancel_futures=True)
            else:  # interrupted (Ctrl-C, SIGTERM) or closed early: stop the workers now
                stop_pool(pool)
        if suspects:
            _LOG.warning("a worker process died; rerunning %d scan(s) one by one", len(suspects))
            yield from _isolated(suspects)


def _dask(jobs: Sequence[_Job], client: Any) -> Iterator[_Outcome]:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    futures = {
        client.submit(_run_job, *job, key=f"immunopet-{uuid.uuid4().hex}"): job for job in jobs
    }
    for future in as_completed(futures):
        job = futures[future]
        try:
            outcome = future.result()
        except KilledWorker:
            outcome = _crash(job[0], "Dask KilledWorker")
        except Exception as exc:  # cancelled, lost, communication errors
            outcome = _Outcome(job[0].scan_id, None, type(exc).__name__, f"Dask task failed: {exc}")
        future.release()
        yield outcome


def _redacted(outcome: _Outcome, redactor: PathRedactor) -> _Outcome:
    """The outcome with every path of the study rewritten (:mod:`~immunopet.study.privacy`)."""
    result = outcome.result
    if result is not None:
        result = replace(
            result,
            scan=redactor.redact_row(result.scan),
            measurements=redactor.redact_rows(result.measurements),
            warnings=tuple(redactor.redact(text) for text in result.warnings),
        )
    return replace(
        outcome,
        result=result,
        message=redactor.redact(outcome.message),
        detail=redactor.redact(outcome.detail),
    )


# ---------------------------------------------------------------------------- study inputs
def _resolve(ref: ScanRef, root: Path) -> ScanRef:
    scan = ref.scan
    pet = scan.pet if scan.pet.is_absolute() else root / scan.pet
    vois = tuple(
        source if source.path.is_absolute() else VoiSource(root / source.path, source.kind)
        for source in scan.vois
    )
    # the job needs its own scan only: the injection travels without its list of scans
    return replace(
        ref, scan=replace(scan, pet=pet, vois=vois), injection=replace(ref.injection, scans=())
    )


def _read_sheet(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".xlsx", ".xls", ".ods")):
            return pd.read_excel(path)
        if name.endswith((".tsv", ".tab")):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ManifestError("study sheet not found", file=path) from None
    except (OSError, ValueError, ImportError) as exc:
        raise ManifestError(f"cannot read the study sheet ({exc})", file=path) from exc


def _safe_sheet(path: Path, redactor: PathRedactor, notes: list[str]) -> pd.DataFrame:
    label = redactor.path(path)
    try:
        frame = _read_sheet(path)
    except ManifestError as exc:  # name the sheet as every output does
        raise ManifestError(redactor.redact(str(exc))) from None
    dropped = [
        str(column)
        for column in frame.columns
        if str(column) != "patient"
        and IDENTIFYING_COLUMN_PATTERN.search(re.sub(r"[^a-z0-9]", "", str(column).lower()))
    ]
    if dropped:
        notes.append(
            f"{label}: identifying column(s) not copied: {', '.join(dropped)} "
            "(only the study pseudonym 'patient' is kept)"
        )
    return frame.drop(columns=dropped)


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _check_unique(refs: Sequence[ScanRef]) -> None:
    seen: set[str] = set()
    for ref in refs:
        if ref.scan_id in seen:
            raise ManifestError(
                "two scans have the same patient, series and time point",
                tag="scan",
                value=ref.scan_id,
                expected="one scan per patient, series and nominal hours",
            )
        seen.add(ref.scan_id)


def _unmatched_exclusions(store: ResultsStore, exclusions: Sequence[Exclusion]) -> list[str]:
    if not exclusions:
        return []
    lesions = store.read_table("measurements")
    lesions = lesions[lesions["kind"] == "lesion"]
    present = set(zip(lesions["patient"], lesions["voi"], strict=True))
    return [
        f"exclusion of {e.patient} lesion {e.lesion!r} matches no lesion VOI"
        for e in exclusions
        if (e.patient, e.lesion) not in present
    ]


WEIGHT_TOLERANCE_KG = 0.5
"""Scans of one injection whose body weights differ by more than this get a recorded warning."""


def _weight_disagreements(store: ResultsStore) -> list[str]:
    """One note per injection whose scans used different body weights (each keeps its own).

    The weight belongs to the injection (the SUV of every scan after it refers to it): a header
    weight that changes between scans of one injection is most likely a typing error, and the
    SUVs of those scans are then not comparable. Weights of different injections may differ.
    """
    scans = store.read_table("scans")
    if scans.empty or "weight_kg" not in scans:
        return []
    notes = []
    for (patient, series), group in scans.groupby(["patient", "series"], sort=True):
        weights = group["weight_kg"].dropna()
        if len(weights) > 1 and weights.max() - weights.min() > WEIGHT_TOLERANCE_KG:
            used = ", ".join(
                f"{scan_id}: {weight:g} kg"
                for scan_id, weight in zip(group["scan_id"], group["weight_kg"], strict=True)
            )
            notes.append(
                f"{patient} {series}: body weight differs between scans of one injection "
                f"({used}); each scan's SUV uses its own value (scans.weight_kg) -- set "
                f"weight_kg on the injection in the manifest to use one"
            )
    return notes


# ---------------------------------------------------------------------------- the run
def run_study(
    study: Study,
    results_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    backend: Backend = "local",
    progress: bool = True,
    force: bool = False,
    manifest_path: str | Path | None = None,
) -> RunSummary:
    """Process every scan of a study into the results store and export the tables.

    Parameters
    ----------
    study : Study
        Relative paths are taken relative to ``study.root``.
    results_dir : path-like
        The results folder (database and exports).
    workers : int, optional
        Worker processes; default ``min(2, cpu_count)``. ``1`` runs in this process
        (local backend). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``"tcp://host:8786"``); implies Dask.
    backend : {"local", "dask"}
        ``"dask"`` without ``scheduler`` starts a ``distributed.LocalCluster`` of ``workers``
        single-threaded processes.
    progress : bool
        A tqdm progress bar over scans.
    force : bool
        Recompute scans whose stored results are current.
    manifest_path : path-like, optional
        The manifest the study was read from; its path and SHA-256 go into the provenance.

    Returns
    -------
    RunSummary

    Raises
    ------
    InputError
        Invalid ``workers`` or ``backend``; the results database in use by another process.
    ManifestError
        Two scans with the same patient, series and time point; a clinical or blood sheet
        that cannot be read. Both are checked before any scan is processed.

    Notes
    -----
    Problems of single scans never raise: they end in the ``failures`` table and in
    :attr:`RunSummary.failures`. On a Dask cluster of other machines, every worker needs
    the same immunopet version and the study's files under the same paths (a shared file
    system); results travel back to this process, which alone writes the store.
    """
    started = datetime.now()
    clock = time.perf_counter()
    if backend not in ("local", "dask"):
        raise InputError("unknown backend", tag="backend", value=backend, expected="local or dask")
    n_workers = _default_workers() if workers is None else workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise InputError("need at least one worker", tag="workers", value=workers, expected=">= 1")
    settings = study.settings
    exclusions = tuple(study.exclusions)
    refs = [_resolve(ref, Path(study.root)) for ref in study.scans()]
    _check_unique(refs)
    notes: list[str] = []
    redactor = PathRedactor.for_study(study)
    sheets = {
        table: (_safe_sheet(Path(study.root) / path, redactor, notes) if path is not None else None)
        for table, path in (
            ("clinical", study.inputs.clinical),
            ("blood", study.inputs.blood_samples),
        )
    }
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"

    with ResultsStore(results_dir) as store:
        fingerprints = {ref.scan_id: fingerprint_inputs(scan_inputs(ref)) for ref in refs}
        keys = {
            ref.scan_id: scan_key(
                ref, settings, exclusions=exclusions, inputs_fingerprint=fingerprints[ref.scan_id]
            )
            for ref in refs
        }
        todo = [
            ref
            for ref in refs
            if force or not store.is_current(ref.scan_id, keys[ref.scan_id], with_qc=True)
        ]
        todo_ids = {ref.scan_id for ref in todo}
        skipped = tuple(ref.scan_id for ref in refs if ref.scan_id not in todo_ids)
        jobs = [(ref, settings, exclusions) for ref in todo]
        by_id = {ref.scan_id: ref for ref in refs}

        processed: list[str] = []
        failures: list[ScanFailure] = []
        job_seconds: dict[str, float] = {}
        bar = tqdm(
            total=len(refs),
            initial=len(skipped),
            desc="scans",
            unit="scan",
            disable=not progress,
        )
        client: Any = None
        outcomes: Iterator[_Outcome] = iter(())
        cluster: Any = None
        try:
            if scheduler is not None or backend == "dask":
                from distributed import Client, LocalCluster

                if scheduler is not None:
                    client = Client(scheduler)
                    label = f"dask:{scheduler}"
                    n_workers = len(client.scheduler_info().get("workers", {})) or n_workers
                else:
                    cluster = LocalCluster(
                        n_workers=n_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                    client = Client(cluster)
                    label = "dask-local"
                outcomes = _dask(jobs, client)
            elif n_workers == 1:
                label = "in-process"
                outcomes = _in_process(jobs)
            else:
                label = "local"
                outcomes = _local_pool(jobs, n_workers)

            for outcome in outcomes:
                outcome = _redacted(outcome, redactor)
                ref = by_id[outcome.scan_id]
                job_seconds[outcome.scan_id] = outcome.seconds
                if outcome.result is not None:
                    store.write_scan(outcome.result, keys[ref.scan_id], run_id=run_id)
                    processed.append(ref.scan_id)
                else:
                    store.write_failure(
                        {
                            "scan_id": ref.scan_id,
                            "patient": ref.patient,
                            "series": ref.series,
                            "nominal_hours": float(ref.nominal_hours),
                            "error_type": outcome.error_type,
                            "message": outcome.message,
                            "detail": outcome.detail,
                            "key": keys[ref.scan_id],
                            "run_id": run_id,
                        }
                    )
                    failures.append(ScanFailure(ref.scan_id, outcome.error_type, outcome.message))
                    bar.set_postfix(failed=len(failures))
                bar.update(1)
        finally:
            bar.close()
            if isinstance(outcomes, Generator):  # ended early (an error, Ctrl-C): stop workers
                outcomes.close()
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()

        for table, frame in sheets.items():
            if frame is not None:
                store.write_table(table, frame)
        fdg, fdg_notes = measure_fdg_lesions(study, redactor)
        notes.extend(fdg_notes)
        if any(patient.fdg is not None for patient in study.patients):
            store.write_table("fdg_measurements", fdg)
        # Fig 5-style FDG vs 89Zr slices (none without FDG scans; earlier ones removed)
        measured = store.read_table("measurements") if not fdg.empty else fdg.iloc[:0]
        _, fig5_notes = store_fig5_slices(study, measured, fdg, results_dir, redactor)
        notes.extend(fig5_notes)
        stale = store.prune(by_id)
        if stale:
            notes.append(f"results of scans no longer in the study removed: {', '.join(stale)}")
        notes.extend(_unmatched_exclusions(store, exclusions))
        notes.extend(_weight_disagreements(store))
        manifest = None if manifest_path is None else Path(manifest_path)
        store.write_provenance(
            {
                "run_id": run_id,
                "started_at": started,
                "finished_at": datetime.now(),
                "package_version": __version__,
                "python_version": library_versions()["python"],
                "library_versions": json.dumps(library_versions(), sort_keys=True),
                "settings": settings_json(settings),
                "study_name": study.name,
                "manifest_path": (
                    None if manifest is None else manifest_reference(manifest, results_dir)
                ),
                "manifest_hash": (
                    hash_file(manifest) if manifest is not None and manifest.is_file() else None
                ),
                "backend": label,
                "workers": n_workers,
                "n_scans": len(refs),
                "n_processed": len(processed),
                "n_skipped": len(skipped),
                "n_failed": len(failures),
                "input_keys": json.dumps(
                    {
                        scan_id: {"inputs": fingerprints[scan_id], "key": keys[scan_id]}
                        for scan_id in by_id
                    },
                    sort_keys=True,
                ),
                "warnings": json.dumps(notes),
            }
        )
        exports = store.export()
    return RunSummary(
        run_id=run_id,
        results_dir=Path(results_dir),
        n_scans=len(refs),
        processed=tuple(processed),
        skipped=skipped,
        failures=tuple(failures),
        job_seconds=job_seconds,
        wall_seconds=time.perf_counter() - clock,
        backend=label,
        workers=n_workers,
        exports=exports,
        warnings=tuple(notes),
    )
