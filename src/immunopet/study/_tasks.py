"""Running a study's jobs: in this process, in a local process pool, or on a Dask cluster.

A :class:`Task` is one job of a run (a scan, a patient's FDG scan, a Fig 5 slice pair): a
module-level function and its arguments, so that it can be pickled to a worker. The three
executors take a :class:`collections.deque` of tasks and yield one :class:`Outcome` per task as
it ends; the caller may add tasks to the deque while it reads outcomes (a Fig 5 pair, once the
scans it needs are measured): put at the left end, they run next.

* :func:`in_process`: one task after another, here;
* :func:`local_pool`: a :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers``
  processes (:func:`~immunopet.study._lifeline.new_pool`: they end with this process), at most
  two tasks per worker in flight so that a task added later does not wait behind all the
  others. When a worker process dies the pool breaks: the tasks that were in flight are run
  again one by one in a fresh single-worker pool (:func:`isolated`), so that the task that
  kills its worker again ends as a crash (:data:`WORKER_CRASH`) and the innocent ones
  complete; then a new pool takes the rest;
* :func:`on_dask`: a ``distributed.Client``; a task whose workers keep dying ends as
  ``KilledWorker`` and is recorded likewise.

A task never raises for its input's problem: :func:`run_task` turns an
:class:`~immunopet.errors.ImmunoPETError` into an outcome with the message, and any other
exception (a bug) into one with the traceback; only ``KeyboardInterrupt``/``SystemExit`` leave.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import multiprocessing.context
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

from immunopet.errors import ImmunoPETError
from immunopet.study._lifeline import new_pool, stop_pool

__all__ = [
    "WORKER_CRASH",
    "WORKER_PRELOAD",
    "Outcome",
    "Task",
    "TaskKind",
    "crashed",
    "in_process",
    "isolated",
    "local_pool",
    "mp_context",
    "on_dask",
    "run_task",
    "start_fork_server",
    "unexpected",
]

TaskKind = Literal["scan", "fdg", "fig5", "draw"]

WORKER_CRASH = "WorkerCrash"
"""``error_type`` of a task whose worker process died."""

WORKER_PRELOAD: tuple[str, ...] = (
    "immunopet.study._forkserver_exit",
    "immunopet.study._forkserver_gc",  # before the others: they are imported without collections
    "immunopet.study.runner",
    # what the jobs import where they run (the run's own process does not need them)
    "immunopet.study.pipeline",
)
"""Modules the ``forkserver`` imports once, before it forks the workers of a study run."""

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One job: ``function(*args)`` in a worker.

    Attributes
    ----------
    kind : {"scan", "fdg", "fig5", "draw"}
    label : str
        Unique among the tasks of its kind: the scan id, the pseudonym, ...
    function : callable
        A module-level function (pickled by name).
    args : tuple
    """

    kind: TaskKind
    label: str
    function: Callable[..., Any] = field(repr=False)
    args: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, label)``: identifies the task within a run."""
        return (self.kind, self.label)


@dataclass(frozen=True)
class Outcome:
    """How a task ended: its result, or the error in words.

    Attributes
    ----------
    kind, label : str
        The task's (see :class:`Task`).
    result : object or None
        What the function returned; None when it raised or its worker died.
    error_type : str
        The exception class name or :data:`WORKER_CRASH`; "" on success.
    message, detail : str
        The error in words, and the traceback of an unexpected one.
    seconds : float, s
        Time of the task where it ran.
    """

    kind: TaskKind
    label: str
    result: Any = None
    error_type: str = ""
    message: str = ""
    detail: str = ""
    seconds: float = math.nan

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, label)`` of the task."""
        return (self.kind, self.label)

    @property
    def ok(self) -> bool:
        """True when the function returned."""
        return not self.error_type


def run_task(task: Task) -> Outcome:
    """Run a task where it is called (a worker or here); never raises for a task's problem."""
    start = time.perf_counter()
    try:
        result = task.function(*task.args)
    except ImmunoPETError as exc:
        return Outcome(
            task.kind,
            task.label,
            None,
            type(exc).__name__,
            str(exc),
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:  # a bug: recorded with its traceback, the run goes on
        return unexpected(task, exc, seconds=time.perf_counter() - start)
    return Outcome(task.kind, task.label, result, seconds=time.perf_counter() - start)


def unexpected(task: Task, exc: BaseException, *, seconds: float = math.nan) -> Outcome:
    """The outcome of a task that failed for an unexpected reason (a bug), with its traceback.

    Also for a task whose result could not come back from its worker (a result that cannot
    be pickled): the task fails, the run goes on.
    """
    return Outcome(
        task.kind,
        task.label,
        None,
        type(exc).__name__,
        f"unexpected error ({type(exc).__name__}): {exc}",
        "".join(traceback.format_exception(exc)),
        seconds,
    )


def crashed(task: Task, what: str) -> Outcome:
    """The outcome of a task whose worker process died (``what``: how it was seen)."""
    return Outcome(
        task.kind,
        task.label,
        None,
        WORKER_CRASH,
        f"the worker process died while processing this {_NOUNS[task.kind]} ({what}): a "
        "crash in a compiled library, running out of memory, or a kill",
    )


_NOUNS: dict[str, str] = {"scan": "scan", "fdg": "scan", "fig5": "pair", "draw": "figure"}


def mp_context(preload: Sequence[str] = WORKER_PRELOAD) -> multiprocessing.context.BaseContext:
    """The start method of worker processes: ``forkserver`` where available, else ``spawn``.

    ``forkserver`` is safe with the threads DuckDB and tqdm keep in this process. The modules
    of ``preload`` are imported once by the fork server, before it forks any worker; they only
    take effect when it is not running yet (see :func:`start_fork_server`).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")


def start_fork_server(preload: Sequence[str]) -> None:
    """Start the fork server now, importing ``preload``, while this process goes on.

    The server imports the modules in its own process; workers started later are forked
    from it with those modules loaded. Does nothing where there is no ``forkserver`` or when
    the server runs already.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    mp_context(preload)
    forkserver.ensure_running()


def in_process(pending: deque[Task]) -> Iterator[Outcome]:
    """Run the tasks of ``pending`` here, one after another (tasks may be added meanwhile)."""
    while pending:
        yield run_task(pending.popleft())


def isolated(
    tasks: Sequence[Task], *, preload: Sequence[str] = WORKER_PRELOAD
) -> Iterator[Outcome]:
    """Run tasks one at a time in a single-worker pool, restarted after each crash."""
    pool: ProcessPoolExecutor | None = None
    try:
        for task in tasks:
            if pool is None:
                pool = new_pool(1, mp_context(preload))
            try:
                outcome = pool.submit(run_task, task).result()
            except BrokenProcessPool:
                outcome = crashed(task, "it failed again when run alone")
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
            except Exception as exc:  # the result could not come back: see `unexpected`
                outcome = unexpected(task, exc)
            yield outcome
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or closed early: stop now
        if pool is not None:
            stop_pool(pool)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    """A task that does nothing (starts a worker)."""


class _Start:
    """Hands the first tasks (or, without any, a no-op that starts a worker) to a new pool
    from a thread; :attr:`done` is set once they are all handed over.

    Starting a worker waits until the fork server has imported its modules (and ``submit``
    holds the pool's lock meanwhile); this thread, not the caller, waits.
    """

    def __init__(self, pool: ProcessPoolExecutor, tasks: Sequence[Task]) -> None:
        self.done = threading.Event()
        self.submitted: dict[Future[Outcome], Task] = {}
        self.refused: list[Task] = []  # not handed over: the pool broke
        self._pool = pool
        self._tasks = list(tasks)
        threading.Thread(target=self._run, name="immunopet-pool-start", daemon=True).start()

    def _run(self) -> None:
        try:
            if not self._tasks:
                with contextlib.suppress(Exception):  # a broken or stopped pool: seen later
                    self._pool.submit(_noop)
            for k, task in enumerate(self._tasks):
                try:
                    self.submitted[self._pool.submit(run_task, task)] = task
                except Exception:  # broken (or stopped): run again one by one by the caller
                    self.refused.extend(self._tasks[k:])
                    break
        finally:
            self.done.set()


def local_pool(
    pending: deque[Task],
    workers: int,
    *,
    here: Callable[[Task], bool] | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[Outcome]:
    """Run the tasks of ``pending`` in a pool of ``workers`` processes (see the module notes).

    Starting a worker waits for the fork server to have imported the workers' modules:
    meanwhile this process calls ``meanwhile()`` (the caller's own preparations), then, until
    the first worker runs, runs the tasks at the head of ``pending`` for which ``here(task)``
    is true.
    """
    first = True
    while pending:
        suspects: list[Task] = []
        pool = new_pool(workers, mp_context())
        in_flight: dict[Future[Outcome], Task] = {}
        finished = False
        try:
            if first and (here is not None or meanwhile is not None):
                # with work of its own for this process, the first tasks wait in the pool
                n_early = 0 if meanwhile is None else min(len(pending), 2 * workers)
                early = [pending.popleft() for _ in range(n_early)]
                start = _Start(pool, early)
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                run_here = here or (lambda task: False)
                while pending and run_here(pending[0]) and not start.done.is_set():
                    yield run_task(pending.popleft())
                start.done.wait()
                in_flight.update(start.submitted)
                suspects.extend(start.refused)
            first = False
            while pending or in_flight:
                while pending and len(in_flight) < 2 * workers and not suspects:
                    task = pending.popleft()
                    try:
                        in_flight[pool.submit(run_task, task)] = task
                    except BrokenProcessPool:
                        suspects.append(task)
                        break
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        suspects.append(task)
                        continue
                    except Exception as exc:  # the result could not come back: see `unexpected`
                        outcome = unexpected(task, exc)
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
            _LOG.warning("a worker process died; rerunning %d job(s) one by one", len(suspects))
            yield from isolated(suspects)


def on_dask(pending: deque[Task], client: Any) -> Iterator[Outcome]:
    """Run the tasks of ``pending`` on a ``distributed.Client`` (tasks may be added meanwhile)."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    futures: dict[Any, Task] = {}

    def submit_pending() -> list[Any]:
        submitted = []
        while pending:
            task = pending.popleft()
            future = client.submit(run_task, task, key=f"immunopet-{uuid.uuid4().hex}")
            futures[future] = task
            submitted.append(future)
        return submitted

    running = as_completed(submit_pending())
    for future in running:
        task = futures.pop(future)
        try:
            outcome = future.result()
        except KilledWorker:
            outcome = crashed(task, "Dask KilledWorker")
        except Exception as exc:  # cancelled, lost, communication errors
            outcome = Outcome(
                task.kind, task.label, None, type(exc).__name__, f"Dask task failed: {exc}"
            )
        future.release()
        yield outcome
        for added in submit_pending():
            running.add(added)
