"""Drawing the report's figures in worker processes.

A report draws many independent PNGs: the study figures (:func:`~immunopet.report.figures.
figure_jobs`), the Fig 5 panels (:func:`~immunopet.report.figures_fdg.fig5_page_jobs`) and one
QC page per scan (:func:`~immunopet.report.figures.qc_page_jobs`). :class:`FigureDrawer` takes
them as :class:`DrawJob` values as soon as they are known (the QC pages and Fig 5 panels
before the analysis is assembled, the figures after it) and draws them

* with ``workers=1``: here, one after another, when :meth:`FigureDrawer.finish` is called;
* otherwise: in a pool of worker processes (:func:`~immunopet.study._lifeline.new_pool`: they
  end with this process) that starts drawing at once, while this process goes on (assembling
  the analysis). A thread of this process hands the jobs to the pool, at most two per worker
  at a time, the jobs added with ``fill=True`` (the QC pages: many, short) only when no other
  job waits: a figure added later (once the analysis is assembled) is drawn next, and the
  short pages are left for the end, where they keep both cores busy until the last one. A
  job that cannot be pickled is drawn here. A worker that dies is replaced and its jobs drawn
  again one by one (:func:`~immunopet.study._tasks.isolated`).

The figures are the same files whatever the number of workers (each job draws alone, with its
own figure object and style).

A job whose data do not allow the figure (an :class:`~immunopet.errors.ImmunoPETError`) is
left out and logged as a warning, one line; a file that cannot be written (``OSError``) is an
error, raised in this process as it would be by drawing here.
"""

from __future__ import annotations

import heapq
import logging
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Final

from tqdm import tqdm

from immunopet.errors import ImmunoPETError
from immunopet.study._lifeline import new_pool, stop_pool
from immunopet.study._tasks import (
    WORKER_CRASH,
    Outcome,
    Task,
    crashed,
    isolated,
    mp_context,
    run_task,
)

__all__ = ["REPORT_PRELOAD", "DrawJob", "FigureDrawer", "draw_job"]

REPORT_PRELOAD: Final = (
    "immunopet.study._forkserver_exit",  # the server ends at once with the report's process
    "immunopet.study._forkserver_gc",  # no collections of what it imports, in it or the workers
    "immunopet.report.drawing",
    "immunopet.report.figures",
    "immunopet.report.figures_fdg",
    "immunopet.report.figures_kinetics",
    # the figure modules import matplotlib where they draw (the report's own process, which
    # only lists the drawings, does not import it): the workers get it here
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
)
"""Modules the fork server imports once for the workers that draw."""

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrawJob:
    """One PNG to draw.

    Attributes
    ----------
    key : str
        The figure's key in the report (``"biodistribution"``, ``"qc P01/x/1h"``, ...).
    draw : callable
        ``draw(path) -> path``; a module-level function or a :func:`functools.partial` of
        one, so that it can be pickled to a worker.
    path : Path
        The PNG to write.
    what : str
        How the log names it when it is not drawn (``"figure biodistribution"``).
    tolerant : bool
        Also an ``OSError`` or ``ValueError`` (an unreadable stored file) only leaves the
        figure out (the QC pages).
    """

    key: str
    draw: Callable[[Path], Path]
    path: Path
    what: str
    tolerant: bool = False


_Drawn = tuple[Path | None, str, OSError | None]


def draw_job(job: DrawJob) -> _Drawn:
    """Draw one job (here or in a worker): ``(path, "", None)``, ``(None, why, None)`` when the
    data do not allow it, ``(None, why, error)`` when the file cannot be written."""
    try:
        return job.draw(job.path), "", None
    except ImmunoPETError as exc:
        return None, str(exc), None
    except (OSError, ValueError) as exc:
        if job.tolerant:
            return None, str(exc), None
        if isinstance(exc, OSError):
            return None, str(exc), exc
        raise


def _picklable(job: DrawJob) -> bool:
    try:
        pickle.dumps(job)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


class FigureDrawer:
    """Draws :class:`DrawJob` values, in worker processes when ``workers > 1``.

    Use as a context manager: leaving it by an exception (Ctrl-C included) stops the workers
    at once; :meth:`finish` waits for every job and returns the figures drawn.

    Parameters
    ----------
    workers : int
        Processes (1 = here, at :meth:`finish`).
    progress : bool
        A tqdm bar over the jobs while :meth:`finish` waits.
    """

    def __init__(self, workers: int, *, progress: bool = False) -> None:
        self.workers = max(1, workers)
        self.progress = progress
        self._jobs: list[DrawJob] = []
        self._keys: set[str] = set()
        self._futures: dict[str, Future[Outcome]] = {}
        self._pool: ProcessPoolExecutor | None = None
        # the jobs not yet handed to the pool: (rank, order added, task, its future)
        self._waiting: list[tuple[int, int, Task, Future[Outcome]]] = []
        self._in_flight = 0
        self._closed = False
        self._changed = threading.Condition()
        self._feeder: threading.Thread | None = None

    def __enter__(self) -> FigureDrawer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._pool is not None:
            if kind is None:
                if self._feeder is not None:
                    self._feeder.join()
                self._pool.shutdown(wait=True, cancel_futures=True)
            else:  # interrupted or failed: the drawings are not wanted any more
                stop_pool(self._pool)
            self._pool = None

    def add(self, jobs: Sequence[DrawJob], *, fill: bool = False) -> None:
        """Queue jobs; with workers they start at once.

        A job whose key was added before is left out. Jobs added with ``fill`` (the QC pages)
        go to a worker only when no other job waits; their order in :meth:`finish` is still
        the order added.
        """
        for job in jobs:
            if job.key in self._keys:
                continue
            self._keys.add(job.key)
            self._jobs.append(job)
            if self.workers > 1 and _picklable(job):
                task = Task("draw", job.key, draw_job, (job,))
                future: Future[Outcome] = Future()
                self._futures[job.key] = future
                self._hand_over(task, future, rank=1 if fill else 0)

    def _hand_over(self, task: Task, future: Future[Outcome], *, rank: int) -> None:
        if self._pool is None:
            self._pool = new_pool(self.workers, mp_context(REPORT_PRELOAD))
            self._feeder = threading.Thread(
                target=self._feed, name="immunopet-figures", daemon=True
            )
            self._feeder.start()
        with self._changed:
            heapq.heappush(self._waiting, (rank, len(self._futures), task, future))
            self._changed.notify_all()

    def _feed(self) -> None:
        """The thread that hands the waiting jobs to the pool, best rank first."""
        limit = 2 * self.workers
        while True:
            with self._changed:
                while not self._closed and (not self._waiting or self._in_flight >= limit):
                    self._changed.wait()
                if self._closed:  # what still waits is not wanted any more
                    for _, _, _, future in self._waiting:
                        future.cancel()
                    self._waiting.clear()
                    return
                _, _, task, future = heapq.heappop(self._waiting)
                self._in_flight += 1
            try:
                if self._pool is None:
                    raise BrokenProcessPool("the drawing workers were stopped")
                drawing = self._pool.submit(run_task, task)
            except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down
                self._ended()
                future.set_exception(exc)
                continue
            drawing.add_done_callback(partial(self._landed, future))

    def _ended(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def _landed(self, future: Future[Outcome], drawing: Future[Outcome]) -> None:
        """A job handed to the pool has ended: its outcome goes to the job's future."""
        self._ended()
        if drawing.cancelled():
            future.cancel()
        elif drawing.exception() is not None:
            future.set_exception(drawing.exception())
        else:
            future.set_result(drawing.result())

    def finish(self) -> dict[str, Path]:
        """Wait for every job; the figures drawn, by key, in the order the jobs were added.

        Raises
        ------
        OSError
            When a figure could not be written.
        RuntimeError
            When drawing failed for an unexpected reason (a bug).
        """
        outcomes: dict[str, Outcome] = {}
        broken: list[DrawJob] = []
        with tqdm(
            total=len(self._jobs), desc="figures", unit="figure", disable=not self.progress
        ) as bar:
            for job in self._jobs:  # those drawn here first: the workers go on meanwhile
                if job.key not in self._futures:
                    outcomes[job.key] = run_task(Task("draw", job.key, draw_job, (job,)))
                    bar.update(1)
            for job in self._jobs:
                future = self._futures.get(job.key)
                if future is None:
                    continue
                try:
                    outcomes[job.key] = future.result()
                except BrokenProcessPool:
                    broken.append(job)
                    continue
                bar.update(1)
            if broken:
                _LOG.warning("a worker process died; drawing %d figure(s) again", len(broken))
                tasks = [Task("draw", job.key, draw_job, (job,)) for job in broken]
                for outcome in isolated(tasks, preload=REPORT_PRELOAD):
                    outcomes[outcome.label] = outcome
                    bar.update(1)
        drawn: dict[str, Path] = {}
        for job in self._jobs:
            outcome = outcomes.get(job.key) or crashed(Task("draw", job.key, draw_job), "lost")
            if not outcome.ok:
                if outcome.error_type == WORKER_CRASH:
                    _LOG.warning("%s not drawn: %s", job.what, outcome.message)
                    continue
                raise RuntimeError(f"{job.what}: {outcome.message}\n{outcome.detail}")
            path, problem, error = outcome.result
            if error is not None:
                raise error
            if path is None:
                _LOG.warning("%s not drawn: %s", job.what, problem)
            else:
                drawn[job.key] = path
        return drawn
