"""Drawing the report's figures in worker processes.

A report draws many independent PNGs: the study figures (:func:`~immunopet.report.figures.
figure_jobs`), the Fig 5 panels (:func:`~immunopet.report.figures_fdg.fig5_page_jobs`) and one
QC page per scan (:func:`~immunopet.report.figures.qc_page_jobs`). :class:`FigureDrawer` takes
them as :class:`DrawJob` values as soon as they are known (the QC pages and Fig 5 panels
before the analysis is assembled, the figures after it) and draws them

* with ``workers=1``: here, one after another, when :meth:`FigureDrawer.finish` is called;
* otherwise: in a pool of worker processes (:func:`~immunopet.study._lifeline.new_pool`: they
  end with this process) that starts drawing at once, while this process goes on (assembling
  the analysis). A job that cannot be pickled is drawn here. A worker that dies is replaced
  and its jobs drawn again one by one (:func:`~immunopet.study._tasks.isolated`).

The figures are the same files whatever the number of workers (each job draws alone, with its
own figure object and style).

A job whose data do not allow the figure (an :class:`~immunopet.errors.ImmunoPETError`) is
left out and logged as a warning, one line; a file that cannot be written (``OSError``) is an
error, raised in this process as it would be by drawing here.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
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
    "immunopet.report.drawing",
    "immunopet.report.figures",
    "immunopet.report.figures_fdg",
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
        self._futures: dict[str, Future[Outcome]] = {}
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> FigureDrawer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            if kind is None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            else:  # interrupted or failed: the drawings are not wanted any more
                stop_pool(self._pool)
            self._pool = None

    def add(self, jobs: Sequence[DrawJob]) -> None:
        """Queue jobs; with workers they start at once."""
        for job in jobs:
            self._jobs.append(job)
            if self.workers > 1 and _picklable(job):
                if self._pool is None:
                    self._pool = new_pool(self.workers, mp_context(REPORT_PRELOAD))
                task = Task("draw", job.key, draw_job, (job,))
                self._futures[job.key] = self._pool.submit(run_task, task)

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
