"""Worker processes that end with the run, however the run ends.

A :class:`concurrent.futures.ProcessPoolExecutor` worker waits for work on a pipe whose
writing end it holds itself, so it never sees the orchestrator die; it then keeps the
``forkserver`` (through the "alive" pipe every client holds) and the resource tracker (through
its pipe) alive as well: after ``kill -9`` of ``immunopet run`` all of them stayed forever.

:func:`worker_initializer` (the pool's ``initializer``) therefore, in each worker,

* ignores SIGINT: Ctrl-C reaches the whole foreground process group, and the orchestrator
  alone decides what happens (it stops the workers, see :func:`stop_pool`), so no worker
  prints a ``KeyboardInterrupt`` traceback;
* asks Linux to kill it when its parent (the forkserver) dies (``PR_SET_PDEATHSIG``);
* starts a daemon thread that checks twice a second whether the orchestrator still lives
  (same pid, same start time, not a zombie) and ends the worker with ``os._exit`` when not.

Once the workers are gone, the forkserver and the resource tracker see end-of-file on their
pipes and exit by themselves.

In the orchestrator, :func:`install_interrupt_handlers` turns SIGINT into
:class:`KeyboardInterrupt` and SIGTERM into :class:`Terminated`, except inside
:func:`deferred_interrupts` (a DuckDB transaction, the swap of the export set): a signal that
arrives there is raised when the block ends, so an interruption never leaves half a write
(DuckDB would otherwise turn it into ``RuntimeError: Query interrupted`` mid-commit).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module for its signal handlers: no multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.context import BaseContext

__all__ = [
    "POLL_SECONDS",
    "Terminated",
    "deferred_interrupts",
    "install_interrupt_handlers",
    "new_pool",
    "process_start_ticks",
    "stop_pool",
    "worker_initializer",
]

POLL_SECONDS = 0.5
"""How often a worker checks that the orchestrator still lives."""

_PR_SET_PDEATHSIG = 1


def process_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None when unknown.

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return int(fields[19])


def _alive(pid: int, start_ticks: int | None) -> bool:
    if start_ticks is not None:
        return process_start_ticks(pid) == start_ticks
    try:  # no /proc (macOS): the pid exists (a zombie counts as alive here)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a pid of another user: reused
        return False
    return True


def _watch(pid: int, start_ticks: int | None) -> None:
    while _alive(pid, start_ticks):
        time.sleep(POLL_SECONDS)
    os._exit(1)  # the orchestrator is gone: nothing will read this worker's result


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _thread_lock_for_tqdm() -> None:
    # a tqdm bar (even a disabled one) would create a multiprocessing lock in the worker; a
    # killed worker leaves it registered and the resource tracker then warns of a leak
    with contextlib.suppress(ImportError):
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())


def worker_initializer(orchestrator_pid: int, orchestrator_start: int | None) -> None:
    """Run in every worker when it starts (see the module's notes).

    Parameters
    ----------
    orchestrator_pid : int
        ``os.getpid()`` of the process that owns the pool.
    orchestrator_start : int or None
        :func:`process_start_ticks` of that process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _thread_lock_for_tqdm()
    if not _alive(orchestrator_pid, orchestrator_start):
        os._exit(1)
    threading.Thread(
        target=_watch,
        args=(orchestrator_pid, orchestrator_start),
        name="immunopet-lifeline",
        daemon=True,
    ).start()


def new_pool(workers: int, context: BaseContext) -> ProcessPoolExecutor:
    """A process pool of ``workers`` whose workers end when this process ends."""
    from concurrent.futures import ProcessPoolExecutor

    pid = os.getpid()
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=worker_initializer,
        initargs=(pid, process_start_ticks(pid)),
    )


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """End a pool now: kill its workers, cancel what is queued, do not wait for running jobs.

    For an interrupted run (Ctrl-C, SIGTERM, an error in the orchestrator): the results of
    running jobs are lost anyway, and waiting for them would keep the user waiting.
    """
    processes = dict(getattr(pool, "_processes", None) or {})
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.kill()
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.join(timeout=5)
    # A worker killed while writing its result leaves half a message in the result pipe, and
    # the pool's manager thread would wait for the rest for ever. The dead workers' ends are
    # closed; closing ours turns that wait into end-of-file, which the pool treats as broken.
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()
    # the workers are dead: the pool's manager thread sees it at once; waiting for it lets
    # the pool release its queues (else the resource tracker warns of leaked semaphores)
    pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------- signals
class Terminated(KeyboardInterrupt):
    """Raised in the orchestrator on SIGTERM, so that it unwinds (and cleans up) like Ctrl-C."""


_deferral = threading.local()


def _depth() -> int:
    return int(getattr(_deferral, "depth", 0))


def _raise_or_defer(signum: int, frame: object) -> None:
    error: KeyboardInterrupt = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    if _depth() > 0 and threading.current_thread() is threading.main_thread():
        if getattr(_deferral, "pending", None) is None:
            _deferral.pending = error
        return
    raise error


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """A block that SIGINT/SIGTERM do not cut short: they are raised when it ends.

    Only effective after :func:`install_interrupt_handlers`; blocks may nest.
    """
    _deferral.depth = _depth() + 1
    try:
        yield
    finally:
        _deferral.depth = _depth() - 1
        pending = getattr(_deferral, "pending", None)
        if _depth() == 0 and pending is not None:
            _deferral.pending = None
            raise pending


def install_interrupt_handlers() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM as described in the module's notes; returns the undo.

    Does nothing (and returns a no-op) outside the main thread, where Python allows no
    signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        signum: signal.signal(signum, _raise_or_defer) for signum in (signal.SIGINT, signal.SIGTERM)
    }

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
