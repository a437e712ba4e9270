"""No process of ``immunopet run`` outlives it, however it ends (SIGKILL, SIGTERM, Ctrl-C).

A running ``immunopet run --workers 2`` (the synthetic tiny trial, its patients repeated so
that the run lasts) is ended once its workers exist; every process it started (the
forkserver, the resource tracker, the workers) must be gone a few seconds later. SIGTERM and
Ctrl-C end it with exit codes 143 and 130 and one line on stderr, no traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from immunopet.study._lifeline import process_start_ticks
from immunopet.synthetic.trial import generate_trial

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree from /proc"
)

REPEATS = 12
"""Copies of each patient in the long manifest (12 scans each: 432 scans)."""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def _descendants(pid: int) -> set[tuple[int, int]]:
    """(pid, start ticks) of every living process below ``pid``."""
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            ticks = process_start_ticks(child)
            if ticks is not None:
                found.add((child, ticks))
            todo.append(child)
    return found


def _alive(processes: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(pid, ticks) for pid, ticks in processes if process_start_ticks(pid) == ticks}


@pytest.fixture(scope="module")
def long_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifetime") / "trial"
    generate_trial(root, preset="tiny", seed=3, progress=False)
    text = (root / "study.toml").read_text()
    head, *patients = text.split("[[patients]]\n")
    copies = [
        re.sub(r'^id = "(P\d+)"', rf'id = "R{n:02d}\1"', block, count=1, flags=re.M)
        for n in range(REPEATS)
        for block in patients
    ]
    head = re.sub(r"exclusions = \[.*?\]\n", "", head, flags=re.S)
    (root / "long.toml").write_text(head + "".join("[[patients]]\n" + b for b in copies))
    return root


def start_run(root: Path, results: Path, *options: str) -> subprocess.Popen[bytes]:
    """``immunopet run long.toml -o RESULTS --workers 2 --no-report --quiet OPTIONS`` in its own
    session (so that a Ctrl-C reaches its whole process group), output captured."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    argv = ["run", "long.toml", "-o", str(results), "--workers", "2", "--no-report", "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-m", "immunopet.cli.main", *argv, *options],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _start(root: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    return start_run(root, tmp_path / "results")


def _wait_for_workers(run: subprocess.Popen[bytes]) -> set[tuple[int, int]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _descendants(run.pid)
        # the resource tracker, the forkserver and two workers
        if len(found) >= 4:
            time.sleep(1.0)  # let the workers take their first scans
            return _descendants(run.pid)
        if run.poll() is not None:
            break
        time.sleep(0.1)
    _, err = run.communicate(timeout=30)
    pytest.fail(f"the run did not start its workers: {run.returncode} {err.decode()[-2000:]}")


def signal_and_reap(
    run: subprocess.Popen[bytes],
    processes: set[tuple[int, int]],
    how: str,
    *,
    timeout_s: float = 60,
    grace_s: float = 10,
) -> tuple[int, str]:
    """Send ``how`` to the run, wait for it and for ``processes`` to end (else fail), and
    kill whatever this test started that is still running. Returns (exit code, stderr)."""
    try:
        assert run.poll() is None, f"the run ended ({run.returncode}) before {how}: too short"
        if how == "SIGINT":  # Ctrl-C in a terminal: the whole foreground process group
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(getattr(signal, how))
        _, err = run.communicate(timeout=timeout_s)
        deadline = time.monotonic() + grace_s
        while _alive(processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _alive(processes)
        assert not left, f"still running after {how}: {sorted(left)}"
    finally:
        for pid, ticks in _alive(processes):  # clean up what this test started
            if process_start_ticks(pid) == ticks:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return run.returncode, err.decode()


def _end_and_check(run: subprocess.Popen[bytes], how: str) -> tuple[int, str]:
    return signal_and_reap(run, _wait_for_workers(run), how)


def test_kill_9_leaves_no_process(long_study: Path, tmp_path: Path) -> None:
    code, _ = _end_and_check(_start(long_study, tmp_path), "SIGKILL")
    assert code == -signal.SIGKILL


def test_sigterm_leaves_no_process_and_says_so(long_study: Path, tmp_path: Path) -> None:
    code, err = _end_and_check(_start(long_study, tmp_path), "SIGTERM")
    assert code == 143
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["immunopet run: terminated (SIGTERM)"], err


def test_ctrl_c_leaves_no_process_one_line_exit_130(long_study: Path, tmp_path: Path) -> None:
    code, err = _end_and_check(_start(long_study, tmp_path), "SIGINT")
    assert code == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == ["immunopet run: interrupted"], err


def _sleep_then(value: int) -> int:
    time.sleep(30)
    return value


def test_stop_pool_returns_when_a_killed_worker_left_half_a_message() -> None:
    # A worker killed while writing its result leaves a partial message in the result pipe;
    # the pool's manager thread then waits for the rest. Simulated by writing a length header
    # announcing 1000 bytes and only 1 of them: stop_pool must still return, within seconds.
    import multiprocessing
    import struct
    import threading

    from immunopet.study._lifeline import new_pool, stop_pool

    pool = new_pool(1, multiprocessing.get_context("forkserver"))
    future = pool.submit(_sleep_then, 1)
    deadline = time.monotonic() + 30
    while not getattr(pool, "_processes", None) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.write(pool._result_queue._writer.fileno(), struct.pack("!i", 1000) + b"x")  # type: ignore[attr-defined]
    time.sleep(0.5)  # the manager thread now waits for the other 999 bytes
    done = threading.Event()
    stopper = threading.Thread(target=lambda: (stop_pool(pool), done.set()), daemon=True)
    stopper.start()
    assert done.wait(timeout=20), "stop_pool hung on a half-written result"
    assert future.cancelled() or future.done()
