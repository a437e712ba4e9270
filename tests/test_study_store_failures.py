"""Failed writes of the results store are one line naming the path, never half a result set.

Real file systems are used where this process may mount them (root: a read-only bind mount and
a small tmpfs, as in CI containers); the same conditions are also simulated (an ``OSError``
with errno ENOSPC, a DuckDB IOException at the checkpoint) so that they run everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from immunopet.cli.main import main
from immunopet.errors import ImmunoPETError, StorageError
from immunopet.study import store as store_module
from immunopet.study.store import DATABASE_NAME, ResultsStore


def _mount(args: list[str]) -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    return done.returncode == 0


def _umount(path: Path) -> None:
    done = subprocess.run(["umount", str(path)], capture_output=True, check=False)
    if done.returncode != 0:  # still busy: detach it now, the kernel frees it when unused
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    if not _mount(["--bind", "-o", "ro", str(folder), str(folder)]):
        pytest.skip("cannot make a read-only bind mount here (needs root)")
    try:
        yield folder
    finally:
        _umount(folder)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if not _mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)]):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        _umount(folder)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    for block in (65536, 1):
        with contextlib.suppress(OSError), filler.open("ab", buffering=0) as handle:
            while True:
                handle.write(b"\0" * block)
    return filler


def _exports(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*") if p.suffix in (".csv", ".parquet")}


def _table(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"patient": [f"P{i:02d}" for i in range(n)], "age": range(n)})


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# ---------------------------------------------------------------------------- read-only
def test_read_only_results_folder_is_one_line_with_advice(read_only_folder: Path) -> None:
    with pytest.raises(StorageError) as caught:
        ResultsStore(read_only_folder)
    message = str(caught.value)
    assert str(read_only_folder / DATABASE_NAME) in message
    assert "Read-only file system" in message
    assert "writable file system" in message
    assert "no other process" not in message


def test_cli_run_into_read_only_folder(
    read_only_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "study.toml"
    manifest.write_text('[study]\nname = "x"\n\n[[patients]]\nid = "P01"\n')
    code = main(["run", str(manifest), "-o", str(read_only_folder / "results"), "--quiet"])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("immunopet run: error: cannot create the results folder")
    assert str(read_only_folder / "results") in line


# ---------------------------------------------------------------------------- full disk
def test_full_disk_write_ahead_log_is_an_error_and_keeps_earlier_rows(small_disk: Path) -> None:
    results = small_disk / "results"
    with ResultsStore(results) as store:
        store.write_table("clinical", _table(3))
    store = ResultsStore(results)
    try:
        _fill(small_disk)
        with pytest.raises(StorageError, match="No space left on device") as caught:
            store.write_table("clinical", _table(50_000))
        assert str(results / DATABASE_NAME) in str(caught.value)
        assert "free disk space" in str(caught.value)
    finally:
        (small_disk / "filler").unlink(missing_ok=True)
        with contextlib.suppress(ImmunoPETError):
            store.close()
    with ResultsStore(results) as store:
        assert len(store.read_table("clinical")) == 3


def test_full_disk_export_keeps_the_previous_set(small_disk: Path) -> None:
    results = small_disk / "results"
    with ResultsStore(results) as store:
        store.write_table("clinical", _table(3))
        store.export()
        before = {p.name: p.read_bytes() for p in results.glob("*.csv")}
        store.write_table("clinical", _table(20_000))
        try:
            _fill(small_disk)
            with pytest.raises(StorageError, match="No space left on device"):
                store.export()
        finally:
            (small_disk / "filler").unlink(missing_ok=True)
    after = {p.name: p.read_bytes() for p in results.glob("*.csv")}
    assert after == before
    assert not list(results.glob(".export-*"))


def test_simulated_full_disk_in_export_keeps_the_previous_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_table("clinical", _table(3))
        store.write_table("blood", _table(2))
        store.export()
        before = _exports(tmp_path)
        store.write_table("clinical", _table(7))
        store.write_table("blood", _table(5))
        calls = []

        def full(table: object, path: Path) -> None:
            calls.append(path)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            store_module.pq.write_table(table, path)

        monkeypatch.setattr(store_module, "_write_parquet", full)
        with pytest.raises(StorageError) as caught:
            store.export()
    assert "No space left on device (free disk space" in str(caught.value)
    after = _exports(tmp_path)
    assert after == before
    assert not list(tmp_path.glob(".export-*"))


def test_checkpoint_failure_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(self: ResultsStore) -> None:
        raise duckdb.IOException(
            f'IO Error: Could not write file "{self.path}": No space left on device'
        )

    store = ResultsStore(tmp_path)
    store.write_table("clinical", _table(3))
    monkeypatch.setattr(ResultsStore, "_checkpoint", failing)
    with pytest.raises(StorageError, match="checkpoint") as caught:
        store.close()
    assert str(tmp_path / DATABASE_NAME) in str(caught.value)
    assert "free disk space" in str(caught.value)
    store.close()  # idempotent
    monkeypatch.undo()
    with ResultsStore(tmp_path) as again:  # the write-ahead log is replayed
        assert len(again.read_table("clinical")) == 3


def test_checkpoint_failure_in_a_run_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(self: ResultsStore) -> None:
        raise duckdb.IOException("IO Error: Could not write: No space left on device")

    monkeypatch.setattr(ResultsStore, "_checkpoint", failing)
    manifest = tmp_path / "study.toml"
    manifest.write_text('[study]\nname = "x"\n\n[[patients]]\nid = "P01"\n')
    code = main(["run", str(manifest), "--quiet", "--no-report"])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot save the results database (checkpoint)" in line
    assert str(tmp_path / "results" / DATABASE_NAME) in line


# ---------------------------------------------------------------------------- killed swap
def test_complete_staging_left_by_a_killed_run_is_finished(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.write_table("clinical", _table(3))
        store.export()
    staging = tmp_path / ".export-killed"
    staging.mkdir()
    (staging / "clinical.csv").write_text("new\n")
    (staging / "clinical.parquet").write_bytes(b"new")
    (staging / ".complete").touch()
    os.replace(staging / "clinical.csv", tmp_path / "clinical.csv")  # killed after one rename
    incomplete = tmp_path / ".export-incomplete"
    incomplete.mkdir()
    (incomplete / "clinical.csv").write_text("half")
    ResultsStore(tmp_path).close()
    assert (tmp_path / "clinical.csv").read_text() == "new\n"
    assert (tmp_path / "clinical.parquet").read_bytes() == b"new"
    assert not list(tmp_path.glob(".export-*"))


# ---------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_modes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with ResultsStore(tmp_path / "results") as store:
            store.write_table("clinical", _table(3))
            written = store.export()
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in [*written.values(), tmp_path / "results" / DATABASE_NAME]
    }
    assert modes == dict.fromkeys(modes, expected)


# ---------------------------------------------------------------------------- report figures
def _empty_analysis() -> object:
    from immunopet.analysis.results import StudyAnalysis
    from immunopet.study.model import AnalysisSettings

    empty = pd.DataFrame()
    return StudyAnalysis(
        name="empty",
        tracer="",
        settings=AnalysisSettings(),
        scans=empty,
        measurements=empty,
        failures=empty,
        schedule=empty,
        biomarkers=empty,  # type: ignore[arg-type]
    )


def test_figure_that_cannot_be_drawn_is_one_line_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from immunopet.errors import ImmunoPETError
    from immunopet.report import figures

    def broken(*args: object, **kwargs: object) -> Path:
        raise ImmunoPETError("no rows to draw")

    monkeypatch.setattr(figures, "plot_biomarkers", broken)
    with caplog.at_level(logging.WARNING):
        assert figures.draw_all(_empty_analysis(), tmp_path) == {}  # type: ignore[arg-type]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["figure biomarkers not drawn: no rows to draw"]
    # no traceback reaches the user: Python's last-resort handler prints exc_info when given
    assert all(r.exc_info is None for r in warnings)


def test_figure_that_cannot_be_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from immunopet.report import figures

    def full(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "biomarkers.png"))

    monkeypatch.setattr(figures, "plot_biomarkers", full)
    with pytest.raises(OSError, match="No space left"):
        figures.draw_all(_empty_analysis(), tmp_path)  # type: ignore[arg-type]


def test_database_in_use_by_another_process_says_so(tmp_path: Path) -> None:
    ResultsStore(tmp_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True);"
            " time.sleep(60)",
            str(tmp_path / DATABASE_NAME),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        with pytest.raises(ImmunoPETError) as caught:
            ResultsStore(tmp_path)
        message = str(caught.value)
        assert "in use by another process" in message
        assert str(tmp_path / DATABASE_NAME) in message
    finally:
        holder.kill()
        holder.wait()


def _grandchildren() -> set[int]:
    """Processes two levels below this one (pool workers under the forkserver)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat_line = Path(f"/proc/{entry}/stat").read_bytes()
                fields = stat_line[stat_line.rfind(b")") + 2 :].split()
                if fields[0] != b"Z":
                    tree.setdefault(int(fields[1]), []).append(int(entry))
    return {g for child in tree.get(os.getpid(), []) for g in tree.get(child, [])}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_write_failure_mid_run_is_one_line_and_stops_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from immunopet.synthetic.trial import generate_trial

    generate_trial(tmp_path / "trial", preset="tiny", seed=3)

    def full(self: ResultsStore, *args: object, **kwargs: object) -> None:
        raise StorageError(f"cannot write the results database: {self.path}: No space left")

    monkeypatch.setattr(ResultsStore, "write_scan", full)
    code = main(
        ["run", str(tmp_path / "trial" / "study.toml"), "--workers", "2", "--quiet", "--no-report"]
    )
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("immunopet run: error: cannot write the results database: ")
    deadline = time.monotonic() + 10
    while _grandchildren() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _grandchildren()
