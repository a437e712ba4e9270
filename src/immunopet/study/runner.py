"""Run a study: every scan through the per-scan job, locally or on a Dask cluster.

:func:`run_study` is the orchestrator. It

1. resolves the scans' paths against the study root and computes each scan's key
   (:mod:`immunopet.study.provenance`); scans whose stored results have the same key are
   skipped unless ``force``; likewise each patient's FDG reference scan
   (:func:`~immunopet.study.fdg.fdg_key`);
2. runs the jobs (:mod:`immunopet.study._tasks`): one per FDG scan
   (:func:`~immunopet.study.fdg.measure_fdg_patient`), one per scan
   (:func:`~immunopet.study.pipeline.process_scan`) and, once the FDG rows and the scans of
   the reference series at the analysis time point are in, one per Fig 5 slice pair
   (:func:`~immunopet.study.fig5.make_fig5_pair`), all in the same pool:

   * ``workers=1`` (and no Dask): in this process, one after another;
   * default: a :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` processes
     (default ``min(2, cpu_count)``), started with the ``forkserver`` method where available
     (safe with the threads DuckDB and tqdm keep in this process), else ``spawn``; the FDG
     jobs and the scans the Fig 5 choice needs go first, so that the pairs run beside the
     other scans;
   * ``scheduler="tcp://HOST:PORT"``: the Dask cluster at that address
     (``distributed.Client(address)``);
   * ``backend="dask"`` without an address: a ``distributed.LocalCluster`` of ``workers``
     single-threaded worker processes;

   The caller's own work joins in: ``meanwhile`` (``immunopet run``: importing what the
   analysis and the report need) while the first workers start, the first jobs already
   handed to the pool; ``on_stored`` (``immunopet run``: the QC pages of the measured scans)
   once the last job has gone to a worker, so that it fills the cores the last scans leave;
3. writes each result as it arrives, one transaction per scan (:class:`~immunopet.study.store.
   ResultsStore`; the Fig 5 pairs as files beside the QC images): only this process writes;
   workers only return rows;
4. copies the clinical sheet (and the blood sample sheet) into the store, writes the FDG rows
   with their keys (one transaction), removes the rows of scans no longer in the study,
   appends a provenance row and exports every table as CSV and Parquet.

The tables and files are the same whatever the backend and the number of workers (the store
orders its rows; notes keep the order of a sequential run).

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
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm import tqdm

from immunopet import __version__
from immunopet.errors import InputError, ManifestError
from immunopet.study._tasks import Outcome, Task, in_process, local_pool, on_dask
from immunopet.study.columns import ScanResult
from immunopet.study.fdg import (
    FdgResult,
    fdg_inputs,
    fdg_key,
    fdg_table,
    fdg_warning_notes,
    measure_fdg_patient,
)
from immunopet.study.fig5 import (
    Fig5Request,
    Fig5Slices,
    fig5_file_name,
    fig5_note,
    fig5_requests,
    is_fig5_scan,
    make_fig5_pair,
    remove_fig5_slices,
    write_fig5_slices,
)
from immunopet.study.model import AnalysisSettings, Exclusion, ScanRef, Study, VoiSource
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
from immunopet.study.qc import QC_DIR
from immunopet.study.store import ResultsStore

__all__ = ["IDENTIFYING_COLUMN_PATTERN", "Backend", "RunSummary", "ScanFailure", "run_study"]

Backend = Literal["local", "dask"]

IDENTIFYING_COLUMN_PATTERN = re.compile(
    r"name|birth|dob|mrn|patientid|ssn|bsn|initials|email|phone|address"
)
"""Column names (lower-cased, non-alphanumerics removed) that are dropped from study sheets."""


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


# ---------------------------------------------------------------------------- the jobs
def _scan_job(
    ref: ScanRef, settings: AnalysisSettings, exclusions: Sequence[Exclusion]
) -> ScanResult:
    """One scan's job (in a worker): :func:`~immunopet.study.pipeline.process_scan`."""
    from immunopet.study import pipeline  # where scans are measured (the workers preload it)

    return pipeline.process_scan(ref, settings, exclusions=exclusions)


def _executor(
    pending: deque[Task], n_workers: int, client: Any, meanwhile: Callable[[], object] | None
) -> Iterator[Outcome]:
    if client is None and n_workers > 1:
        # the caller's preparations, then the FDG scans (measured in this process before they
        # were jobs) here until the first worker runs (the fork server imports what the
        # workers need meanwhile)
        return local_pool(
            pending, n_workers, here=lambda task: task.kind == "fdg", meanwhile=meanwhile
        )
    if meanwhile is not None:
        meanwhile()
    return on_dask(pending, client) if client is not None else in_process(pending)


def _local_cluster(n_workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` single-threaded worker processes.

    Its workers log only CRITICAL: a worker that loses the scheduler while the run ends
    (Ctrl-C, SIGTERM) logs an ERROR with a traceback on our stderr, and a task's own failure
    is recorded with its scan anyway. A cluster interrupted while it starts cannot be closed
    (its nannies are still starting) and distributed's exit hook would print a traceback for
    it: the hook and asyncio's report of the unstarted nanny are dropped (the worker processes
    end with this process, which is ending).
    """
    from distributed import LocalCluster

    try:
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    except BaseException:
        import atexit

        from distributed.deploy import spec

        atexit.unregister(spec.close_clusters)
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        raise


def _redacted(outcome: Outcome, redactor: PathRedactor) -> Outcome:
    """The outcome with every path of the study rewritten (:mod:`~immunopet.study.privacy`)."""
    result = outcome.result
    if isinstance(result, ScanResult):
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


# ---------------------------------------------------------------------------- FDG and Fig 5
class _ReferenceScans:
    """The FDG jobs of a run and the Fig 5 pairs that follow them.

    Each patient's FDG scan is one job; its rows are stored with a key
    (:func:`~immunopet.study.fdg.fdg_key`) and reused while the key holds (unless ``force``).
    Once every FDG result is in and every scan of the reference series at the analysis time
    point is stored, :meth:`fig5_tasks` returns (once) one job per Fig 5 pair
    (:func:`~immunopet.study.fig5.fig5_requests`); each pair is written as it arrives.
    Notes keep the order of a sequential run: patients', then the pairs' ranks.
    """

    def __init__(
        self,
        study: Study,
        store: ResultsStore,
        results_dir: str | Path,
        *,
        force: bool,
        todo: Sequence[ScanRef],
    ) -> None:
        self.study = study
        self.store = store
        self.folder = Path(results_dir) / QC_DIR
        self.results_dir = Path(results_dir)
        root = Path(study.root)
        self.scans = {p.pseudonym: p.fdg for p in study.patients if p.fdg is not None}
        self.keys = {
            patient: fdg_key(
                patient, scan, study.settings, fingerprint_inputs(fdg_inputs(scan, root))
            )
            for patient, scan in self.scans.items()
        }
        stored = {} if force or not self.scans else store.stored_fdg()
        self.results: dict[str, FdgResult] = {
            patient: FdgResult(patient, tuple(rows))
            for patient, (key, rows) in stored.items()
            if self.keys.get(patient) == key
        }
        self.waiting = {ref.scan_id for ref in todo if is_fig5_scan(ref, study)}
        self.requests: list[Fig5Request] | None = None
        self.fig5_problems: dict[int, str] = {}

    def fdg_tasks(self) -> list[Task]:
        """One job per FDG scan whose stored rows are not current."""
        return [
            Task(
                "fdg",
                patient,
                measure_fdg_patient,
                (patient, scan, self.study.settings, Path(self.study.root)),
            )
            for patient, scan in self.scans.items()
            if patient not in self.results
        ]

    def scan_done(self, scan_id: str) -> None:
        """A scan's outcome is stored."""
        self.waiting.discard(scan_id)

    def take(self, outcome: Outcome) -> None:
        """An FDG or Fig 5 outcome."""
        if outcome.kind == "fdg":
            result = outcome.result
            if not isinstance(result, FdgResult):  # a bug or a dead worker: no rows
                result = FdgResult(
                    outcome.label, (), f"{outcome.label}/fdg not measured: {outcome.message}"
                )
            self.results[outcome.label] = result
            return
        index = int(outcome.label.split(" ", 1)[0])
        request = (self.requests or [])[index]
        pair = outcome.result
        if isinstance(pair, Fig5Slices):
            write_fig5_slices(pair, self.folder / fig5_file_name(request.patient, request.lesion))
        else:
            self.fig5_problems[index] = fig5_note(request, outcome.message)

    def fdg_frame(self) -> pd.DataFrame:
        """The ``fdg_measurements`` table, patients in the study's order."""
        return fdg_table(self.results[p] for p in self.scans if p in self.results)

    def fig5_tasks(self) -> list[Task]:
        """The Fig 5 jobs, once their inputs are stored (then never again)."""
        if self.requests is not None or not self.scans or self.waiting:
            return []
        if len(self.results) < len(self.scans):
            return []
        fdg = self.fdg_frame()
        measured = self.store.read_table("measurements") if not fdg.empty else fdg.iloc[:0]
        self.requests = fig5_requests(self.study, measured, fdg)
        remove_fig5_slices(self.results_dir)  # the folder holds this run's pairs only
        return [
            Task("fig5", f"{k} {request.patient}/{request.lesion}", make_fig5_pair, (request,))
            for k, request in enumerate(self.requests)
        ]

    def finish(self, redactor: PathRedactor) -> list[str]:
        """Store the FDG rows and keys; the notes of this part of the run (paths redacted)."""
        if not self.scans:
            remove_fig5_slices(self.results_dir)
            return []
        ordered = [self.results[p] for p in self.scans]
        keys = pd.DataFrame(
            [{"patient": r.patient, "key": self.keys[r.patient]} for r in ordered if not r.note],
            columns=["patient", "key"],
        )
        self.store.write_tables({"fdg_measurements": self.fdg_frame(), "fdg_keys": keys})
        notes = [r.note for r in ordered if r.note]
        notes += fdg_warning_notes(ordered)
        notes += [self.fig5_problems[k] for k in sorted(self.fig5_problems)]
        return [redactor.redact(note) for note in notes]


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
    on_stored: Callable[[Sequence[str]], object] | None = None,
    meanwhile: Callable[[], object] | None = None,
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
    on_stored : callable, optional
        ``on_stored(scan_ids)``: the caller's work on measured scans (``immunopet run``: their
        QC pages), called in this process once the last job has gone to a worker, with the
        scans stored so far, then with each scan stored after that, so that this work fills
        the cores the last scans leave idle. Its QC images are in the results folder.
    meanwhile : callable, optional
        The caller's own preparations (``immunopet run``: importing what the analysis and the
        report need), called once in this process when the jobs are ready to run: with a
        local pool, while its first workers start.

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
        by_id = {ref.scan_id: ref for ref in refs}
        references = _ReferenceScans(study, store, results_dir, force=force, todo=todo)
        scan_tasks = [
            Task("scan", ref.scan_id, _scan_job, (ref, settings, exclusions)) for ref in todo
        ]
        if n_workers > 1 or scheduler is not None or backend == "dask":
            # the scans the Fig 5 choice needs first: its pairs then run beside the others
            scan_tasks.sort(key=lambda task: task.label not in references.waiting)
        pending = deque([*references.fdg_tasks(), *scan_tasks])
        pending.extendleft(reversed(references.fig5_tasks()))  # all inputs current already

        processed: list[str] = []
        stored: list[str] = []  # not yet given to on_stored
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
        outcomes: Iterator[Outcome] = iter(())
        cluster: Any = None
        try:
            if scheduler is not None or backend == "dask":
                from distributed import Client

                if scheduler is not None:
                    client = Client(scheduler)
                    label = f"dask:{scheduler}"
                    n_workers = len(client.scheduler_info().get("workers", {})) or n_workers
                else:
                    cluster = _local_cluster(n_workers)
                    client = Client(cluster)
                    label = "dask-local"
            else:
                label = "in-process" if n_workers == 1 else "local"
            outcomes = _executor(pending, n_workers, client, meanwhile)

            for outcome in outcomes:
                if outcome.kind != "scan":
                    references.take(outcome)
                    pending.extendleft(reversed(references.fig5_tasks()))
                    continue
                outcome = _redacted(outcome, redactor)
                ref = by_id[outcome.label]
                job_seconds[ref.scan_id] = outcome.seconds
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
                references.scan_done(ref.scan_id)
                pending.extendleft(reversed(references.fig5_tasks()))
                if outcome.result is not None:
                    stored.append(ref.scan_id)
                if on_stored is not None and not pending and stored:
                    on_stored(stored)  # the last jobs run: the caller's work fills in
                    stored = []
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
        notes.extend(references.finish(redactor))
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
