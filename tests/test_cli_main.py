"""The `immunopet` dispatcher: every subcommand registered, help, version, env-info."""

from __future__ import annotations

import importlib.metadata

import pytest

from immunopet.cli.main import SUBCOMMANDS, build_parser, main


def test_every_subcommand_module_is_registered():
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert names == {name.replace("_", "-") for name in SUBCOMMANDS}
    assert {"demo", "run", "inspect", "measure", "report"} <= names


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "usage: immunopet" in capsys.readouterr().out


def test_env_info_lists_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env-info"]) == 0
    out = capsys.readouterr().out
    assert f"immunopet    {importlib.metadata.version('immunopet')}" in out
    assert "pydicom" in out and "lifelines" in out


class _EndedError(Exception):
    """Raised instead of ending the test process."""


def test_the_command_ends_without_teardown_once_only_daemon_threads_remain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import immunopet.cli.main as cli_main

    ended: list[int] = []

    def fake_exit(code: int) -> None:
        ended.append(code)
        raise _EndedError

    import atexit

    ran: list[str] = []  # the test process' own exit handlers must not run here
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append("atexit"))
    monkeypatch.setattr(cli_main.os, "_exit", fake_exit)
    with pytest.raises(_EndedError):
        cli_main._end_now(3)
    assert ended == [3] and ran == ["atexit"]
    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # not a daemon: a normal exit waits for it
    worker.start()
    try:
        assert cli_main._end_now(2) == 2
    finally:
        release.set()
        worker.join()
    assert ended == [3] and ran == ["atexit"]


def test_the_command_as_a_process_keeps_its_output_and_exit_code(tmp_path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "immunopet.cli.main"]
    done = subprocess.run([*command, "env-info"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "pydicom" in done.stdout
    missing = tmp_path / "nothing here"
    done = subprocess.run(
        [*command, "inspect", str(missing)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "immunopet inspect: error" in done.stderr
