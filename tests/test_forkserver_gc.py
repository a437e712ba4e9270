"""The fork server imports without collections and its workers leave its objects alone.

Python's documentation of ``gc.freeze`` for processes that fork without exec: collector off in
the parent while it builds what the children share, frozen before each fork, on again in the
child. In pytest (whose doctest collection imports every module) nothing may change.
"""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

from test_forkserver_exit import run_python


def test_an_ordinary_import_leaves_the_collector_as_it_was() -> None:
    import immunopet.study._forkserver_gc as module

    assert module.FREEZES is False
    assert gc.isenabled()


def test_the_workers_of_the_fork_server_collect_only_their_own_objects(tmp_path: Path) -> None:
    (tmp_path / "probe_preload.py").write_text(
        textwrap.dedent(
            """
            import gc

            COLLECTING_WHILE_PRELOADED = gc.isenabled()
            SHARED = [[index] for index in range(50_000)]  # objects the collector tracks


            def state(_):
                return gc.isenabled(), gc.get_freeze_count(), COLLECTING_WHILE_PRELOADED
            """
        )
    )
    done = run_python(
        f"""
        sys.path.insert(0, {str(tmp_path)!r})
        import gc
        import multiprocessing as mp

        import probe_preload

        if __name__ == "__main__":
            context = mp.get_context("forkserver")
            context.set_forkserver_preload(
                ["immunopet.study._forkserver_exit", "immunopet.study._forkserver_gc",
                 "probe_preload"]
            )
            with context.Pool(1) as pool:
                enabled, frozen, preloaded_collecting = pool.map(probe_preload.state, [0])[0]
            print(enabled, frozen >= 50_000, preloaded_collecting)
            print(gc.isenabled(), gc.get_freeze_count())
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    worker, parent = done.stdout.splitlines()
    # the worker collects, but not what the server preloaded, which it imported without collecting
    assert worker == "True True False"
    assert parent == "True 0"  # the run's own process is not touched


def test_the_preloads_name_it_before_the_modules_it_should_not_collect() -> None:
    from immunopet.report.drawing import REPORT_PRELOAD
    from immunopet.study._tasks import WORKER_PRELOAD

    for preload in (WORKER_PRELOAD, REPORT_PRELOAD):
        assert preload[:2] == ("immunopet.study._forkserver_exit", "immunopet.study._forkserver_gc")
