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
