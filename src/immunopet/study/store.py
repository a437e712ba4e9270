"""The results store: one embedded DuckDB file per results folder, with CSV/Parquet exports.

``RESULTS_DIR/immunopet.duckdb`` holds the tables

======================  ======================================================================
``scans``               one row per scan processed (:data:`~immunopet.study.columns.SCAN_COLUMNS`)
``measurements``        one row per VOI per scan (:data:`~.columns.MEASUREMENT_COLUMNS`)
``failures``            one row per scan that could not be processed: the error, in words
``provenance``          one row per run: versions, settings, manifest hash, input keys, times
``clinical``            the clinical sheet as read (identifying columns dropped)
``blood``               blood samples (written by whoever computes them; free schema)
``fdg_measurements``    lesions of the FDG reference scans (:mod:`immunopet.study.fdg`)
``scan_keys``           internal: the key each stored scan was computed with
``fdg_keys``            internal: the key each patient's stored FDG rows were computed with
======================  ======================================================================

Only one process writes (the orchestrator; workers return results). :meth:`ResultsStore.
write_scan` replaces one scan's rows in a single transaction (delete the old rows of that scan,
insert the new ones, record the key), so a run killed midway keeps every scan it finished, and
a rerun skips exactly those (:meth:`ResultsStore.is_current`). DuckDB keeps committed
transactions in its write-ahead log, so they survive a killed process.

:meth:`ResultsStore.export` writes every table as ``<name>.csv`` and ``<name>.parquet``, as one
set: all files are first written into a staging folder ``RESULTS_DIR/.export-*``, which gets a
``.complete`` marker once every file is whole; only then are the files renamed into place. A
failed write (full disk, read-only folder) removes the staging folder and leaves the previous
set untouched; a run killed while renaming leaves a complete staging folder, whose renames the
next :class:`ResultsStore` opened on the folder finishes (an incomplete one is removed). So the
folder holds either the old set or the new one, never a mix.

Failures to write are errors (:class:`~immunopet.errors.StorageError`, one line naming the
path and what to do): a write-ahead log that cannot be written (full disk), a checkpoint that
fails when the store is closed, an export that cannot be written. SIGINT/SIGTERM arriving
during a transaction, a checkpoint or the swap of the export set take effect when it is done
(:func:`~immunopet.study._lifeline.deferred_interrupts`).

Beside the database, ``RESULTS_DIR/qc/<scan>.npz`` holds each stored scan's QC images
(:mod:`immunopet.study.qc`), written atomically (a temporary file renamed) before the scan's
transaction; a failed or removed scan loses its file, and a scan whose file is missing is not
current for a run (:meth:`ResultsStore.is_current` with ``with_qc``).

Files are created with the permissions the umask allows (mode ``0666 & ~umask``), the
database and the exports alike.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from immunopet.errors import InputError, StorageError, describe_os_error
from immunopet.study._lifeline import deferred_interrupts
from immunopet.study.columns import MEASUREMENT_COLUMNS, SCAN_COLUMNS, ScanResult
from immunopet.study.qc import QC_DIR, qc_file_name, write_qc_images

__all__ = ["DATABASE_NAME", "EXPORTED_TABLES", "ResultsStore"]

DATABASE_NAME = "immunopet.duckdb"
"""File name of the database inside the results folder."""

EXPORTED_TABLES = (
    "scans",
    "measurements",
    "blood",
    "clinical",
    "provenance",
    "failures",
    "fdg_measurements",
)
"""Tables written by :meth:`ResultsStore.export` (those that exist)."""

_STRING = pa.string()
_FLOAT = pa.float64()
_TIME = pa.timestamp("us")

_SCAN_TYPES: dict[str, pa.DataType] = {
    "nominal_hours": _FLOAT,
    "hours_pi": _FLOAT,
    "injection_datetime": _TIME,
    "scan_datetime": _TIME,
    "unlabelled_mass_mg": _FLOAT,
    "suv_bw_factor": _FLOAT,
    "weight_kg": _FLOAT,
    "injected_activity_bq": _FLOAT,
    "n_vois": pa.int64(),
}
_SCAN_SCHEMA = pa.schema([(name, _SCAN_TYPES.get(name, _STRING)) for name in SCAN_COLUMNS])

_TEXT_MEASUREMENTS = {
    "patient",
    "series",
    "voi",
    "kind",
    "scan_id",
    "method",
    "source",
    "exclusion_reason",
    "suggested_exclusion",
    "warnings",
}
_MEASUREMENT_SCHEMA = pa.schema(
    [
        (
            name,
            _STRING
            if name in _TEXT_MEASUREMENTS
            else pa.int64()
            if name == "n_voxels"
            else pa.bool_()
            if name in ("measurable", "excluded")
            else _FLOAT,
        )
        for name in MEASUREMENT_COLUMNS
    ]
)

_FAILURE_SCHEMA = pa.schema(
    [
        ("scan_id", _STRING),
        ("patient", _STRING),
        ("series", _STRING),
        ("nominal_hours", _FLOAT),
        ("error_type", _STRING),
        ("message", _STRING),
        ("detail", _STRING),
        ("key", _STRING),
        ("run_id", _STRING),
        ("failed_at", _TIME),
    ]
)

_PROVENANCE_SCHEMA = pa.schema(
    [
        ("run_id", _STRING),
        ("started_at", _TIME),
        ("finished_at", _TIME),
        ("package_version", _STRING),
        ("python_version", _STRING),
        ("library_versions", _STRING),
        ("settings", _STRING),
        ("study_name", _STRING),
        ("manifest_path", _STRING),
        ("manifest_hash", _STRING),
        ("backend", _STRING),
        ("workers", pa.int64()),
        ("n_scans", pa.int64()),
        ("n_processed", pa.int64()),
        ("n_skipped", pa.int64()),
        ("n_failed", pa.int64()),
        ("input_keys", _STRING),
        ("warnings", _STRING),
    ]
)

_KEY_SCHEMA = pa.schema(
    [("scan_id", _STRING), ("key", _STRING), ("run_id", _STRING), ("written_at", _TIME)]
)

_SCHEMAS: dict[str, pa.Schema] = {
    "scans": _SCAN_SCHEMA,
    "measurements": _MEASUREMENT_SCHEMA,
    "failures": _FAILURE_SCHEMA,
    "provenance": _PROVENANCE_SCHEMA,
    "scan_keys": _KEY_SCHEMA,
}
_PER_SCAN = ("scans", "measurements", "failures", "scan_keys")
_SCAN_ORDERED = ("scans", "measurements", "failures")
_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us"): "TIMESTAMP",
}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _create_sql(name: str, schema: pa.Schema) -> str:
    columns = ", ".join(f'"{f.name}" {_DUCK_TYPES[f.type]}' for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {name} ({columns})"


_STAGING_PREFIX = ".export-"
_COMPLETE = ".complete"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _follow_umask(path: Path) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would have (``0666 & ~umask``)."""
    os.chmod(path, 0o666 & ~_umask())


def _storage_error(error: OSError, path: Path, what: str) -> StorageError:
    return StorageError(f"{what}: {describe_os_error(error, path=path)}")


def _finish_swap(staging: Path, target: Path) -> None:
    """Rename every file of a complete staging folder into ``target``, then remove it."""
    for item in sorted(staging.iterdir()):
        if item.name != _COMPLETE:
            os.replace(item, target / item.name)
    shutil.rmtree(staging, ignore_errors=True)


def _recover_exports(target: Path) -> None:
    """Finish the swap of a complete staging folder left by a killed run; drop incomplete ones."""
    with contextlib.suppress(OSError):
        for staging in sorted(target.glob(_STAGING_PREFIX + "*")):
            if not staging.is_dir():
                continue
            if (staging / _COMPLETE).is_file():
                _finish_swap(staging, target)
            else:
                shutil.rmtree(staging, ignore_errors=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


class ResultsStore:
    """The DuckDB results database of a study's results folder.

    Parameters
    ----------
    results_dir : path-like
        Created if needed; the database is ``results_dir / "immunopet.duckdb"``.

    Raises
    ------
    InputError
        When the database cannot be opened (e.g. another process has it open for writing).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, ResultsStore(folder) as store:
    ...     store.is_current("P01/tracer-only/120h", "abc")
    False
    """

    def __init__(self, results_dir: str | Path) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / DATABASE_NAME
        self._closed = False
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error(exc, self.results_dir, "cannot create the results folder") from exc
        new = not self.path.exists()
        with deferred_interrupts():
            try:
                # one thread: the store's writes are small, and the cores are the workers'
                self._con = duckdb.connect(str(self.path), config={"threads": 1})
            except duckdb.Error as exc:
                raise self._open_error(exc) from exc
            try:
                for name, schema in _SCHEMAS.items():
                    self._con.execute(_create_sql(name, schema))
            except duckdb.Error as exc:
                self._con.close()
                raise self._database_error(exc, "cannot write the results database") from exc
        if new:
            with contextlib.suppress(OSError):
                _follow_umask(self.path)
        _recover_exports(self.results_dir)

    def _open_error(self, exc: duckdb.Error) -> InputError | StorageError:
        text = str(exc)
        if "lock" in text.lower():
            return InputError(
                "the results database is in use by another process",
                file=self.path,
                expected="no other immunopet run or DuckDB client writing this results folder "
                "(wait for it to end, or choose another folder with -o)",
            )
        return self._database_error(exc, "cannot open the results database")

    def _database_error(self, exc: duckdb.Error, what: str) -> StorageError:
        """One line for a failed database write: the path, the cause, what to do."""
        text = str(exc)
        for number, marker in (
            (errno.ENOSPC, "No space left on device"),
            (errno.EDQUOT, "Disk quota exceeded"),
            (errno.EROFS, "Read-only file system"),
            (errno.EACCES, "Permission denied"),
        ):
            if marker.lower() in text.lower():
                return _storage_error(OSError(number, marker), self.path, what)
        if not os.access(self.results_dir, os.W_OK):
            return _storage_error(
                OSError(errno.EACCES, "Permission denied"), self.results_dir, what
            )
        return StorageError(
            f"{what}: {self.path}: {text} (check the disk and the folder, then run again; "
            "scans already stored are kept)"
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Write everything into the database file (a checkpoint) and close it (idempotent).

        Raises
        ------
        StorageError
            When the checkpoint fails (e.g. the disk is full): the committed transactions stay
            in the write-ahead log beside the database, and the next opening replays them once
            the cause is removed.
        """
        if self._closed:
            return
        self._closed = True
        with deferred_interrupts():
            try:
                self._checkpoint()
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                raise self._database_error(
                    exc, "cannot save the results database (checkpoint)"
                ) from exc
            self._con.close()

    def _checkpoint(self) -> None:
        self._con.execute("CHECKPOINT")

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(Exception):  # already failing: keep the first error
            self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.results_dir)!r})"

    # ------------------------------------------------------------------ writing
    def _insert(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        schema = _SCHEMAS[name]
        table = pa.Table.from_pylist(
            [{f.name: row.get(f.name) for f in schema} for row in rows], schema=schema
        )
        self._con.register("_immunopet_rows", table)
        try:
            self._con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _immunopet_rows")
        finally:
            self._con.unregister("_immunopet_rows")

    def _transaction(self, work: Callable[[], None]) -> None:
        with deferred_interrupts():
            self._con.begin()
            try:
                work()
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    self._con.rollback()
                if isinstance(exc, duckdb.Error):
                    raise self._database_error(exc, "cannot write the results database") from exc
                raise
            try:
                self._con.commit()
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    self._con.rollback()
                raise self._database_error(exc, "cannot write the results database") from exc

    def _delete_scan(self, scan_id: str) -> None:
        for name in _PER_SCAN:
            self._con.execute(f"DELETE FROM {name} WHERE scan_id = ?", [scan_id])

    def qc_path(self, scan_id: str) -> Path:
        """Where the QC images of ``scan_id`` are kept (``RESULTS_DIR/qc/<scan>.npz``)."""
        return self.results_dir / QC_DIR / qc_file_name(scan_id)

    def _remove_qc(self, scan_id: str) -> None:
        try:
            self.qc_path(scan_id).unlink(missing_ok=True)
        except OSError as exc:
            raise _storage_error(exc, self.qc_path(scan_id), "cannot remove QC images") from exc

    def write_scan(self, result: ScanResult, key: str, *, run_id: str = "") -> None:
        """Replace one scan's rows (scans, measurements, failures, key) in one transaction.

        Parameters
        ----------
        result : ScanResult
        key : str
            The scan key (:func:`~immunopet.study.provenance.scan_key`).
        run_id : str
            The run that computed it.
        """
        now = datetime.now()
        with deferred_interrupts():
            if result.qc is None:
                self._remove_qc(result.scan_id)
            else:
                path = self.qc_path(result.scan_id)
                try:
                    write_qc_images(result.qc, path)
                except OSError as exc:
                    raise _storage_error(exc, path, "cannot write QC images") from exc

        def work() -> None:
            self._delete_scan(result.scan_id)
            self._insert("scans", [result.scan])
            self._insert("measurements", list(result.measurements))
            self._insert(
                "scan_keys",
                [{"scan_id": result.scan_id, "key": key, "run_id": run_id, "written_at": now}],
            )

        self._transaction(work)

    def write_failure(self, row: Mapping[str, Any]) -> None:
        """Record a scan that failed; its earlier results are removed (they are not current).

        Parameters
        ----------
        row : mapping
            ``scan_id``, ``patient``, ``series``, ``nominal_hours``, ``error_type``,
            ``message``, ``detail``, ``key``, ``run_id`` (``failed_at`` defaults to now).
        """
        values = dict(row)
        values.setdefault("failed_at", datetime.now())

        def work() -> None:
            self._delete_scan(str(values["scan_id"]))
            self._insert("failures", [values])

        self._transaction(work)
        self._remove_qc(str(values["scan_id"]))

    def write_provenance(self, row: Mapping[str, Any]) -> None:
        """Append one run's provenance row (columns of the ``provenance`` table)."""
        self._transaction(lambda: self._insert("provenance", [row]))

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove the rows of every scan not in ``keep`` (scans no longer in the study).

        Returns
        -------
        list of str
            The scan ids removed, sorted.
        """
        wanted = set(keep)
        with deferred_interrupts():
            present = {
                row[0]
                for name in _PER_SCAN
                for row in self._con.execute(f"SELECT DISTINCT scan_id FROM {name}").fetchall()
            }
        stale = sorted(present - wanted)

        def work() -> None:
            for scan_id in stale:
                self._delete_scan(scan_id)

        if stale:
            self._transaction(work)
        for scan_id in stale:
            self._remove_qc(scan_id)
        return stale

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Replace a free-schema table (``clinical``, ``blood`` ...) with a DataFrame.

        Raises
        ------
        InputError
            When ``name`` is not a lower-case identifier or is one of the managed tables.
        """
        self.write_tables({name: frame})

    def write_tables(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """Replace several free-schema tables in one transaction (all or none of them).

        Raises
        ------
        InputError
            When a name is not a lower-case identifier or is one of the managed tables.
        """
        for name in frames:
            if not _NAME.match(name) or name in _SCHEMAS:
                raise InputError(
                    "not a table that can be written",
                    tag="name",
                    value=name,
                    expected="a lower-case identifier other than " + ", ".join(_SCHEMAS),
                )
        views = {name: f"_immunopet_frame_{k}" for k, name in enumerate(frames)}

        def work() -> None:
            for name, view in views.items():
                self._con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {view}")

        for name, view in views.items():
            self._con.register(view, frames[name])
        try:
            self._transaction(work)
        finally:
            for view in views.values():
                self._con.unregister(view)

    # ------------------------------------------------------------------ reading
    def is_current(self, scan_id: str, key: str, *, with_qc: bool = False) -> bool:
        """True when the stored results of ``scan_id`` were computed with ``key``.

        With ``with_qc`` its QC images must be stored too (results of a version that did not
        keep them are then computed again).
        """
        with deferred_interrupts():
            found = self._con.execute(
                "SELECT key FROM scan_keys WHERE scan_id = ?", [scan_id]
            ).fetchall()  # fetchall: a half-read result would block the connection
        current = bool(found) and found[0][0] == key
        return current and (not with_qc or self.qc_path(scan_id).is_file())

    def stored_fdg(self) -> dict[str, tuple[str, list[dict[str, Any]]]]:
        """Pseudonym -> (key, rows) of every patient whose FDG rows were stored with a key.

        The rows are those of the ``fdg_measurements`` table (as dicts, in stored order); a
        patient without a key (a scan that could not be measured) is not listed.
        """
        if not {"fdg_keys", "fdg_measurements"} <= set(self.tables()):
            return {}
        keys = self.read_table("fdg_keys")
        rows = self.read_table("fdg_measurements")
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for row in rows.to_dict("records"):
            by_patient.setdefault(str(row["patient"]), []).append(row)
        return {
            str(patient): (str(key), by_patient.get(str(patient), []))
            for patient, key in zip(keys["patient"], keys["key"], strict=True)
        }

    def stored_keys(self) -> dict[str, str]:
        """Scan id -> key of every scan with stored results."""
        with deferred_interrupts():
            return dict(self._con.execute("SELECT scan_id, key FROM scan_keys").fetchall())

    def tables(self) -> list[str]:
        """Names of the tables in the database, sorted."""
        with deferred_interrupts():
            rows = self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        return sorted(row[0] for row in rows)

    def _query(self, name: str) -> str:
        if name not in self.tables():
            raise InputError(
                "no such table in the results store",
                file=self.path,
                tag="table",
                value=name,
                expected=", ".join(self.tables()),
            )
        if name in _SCAN_ORDERED:
            order = "patient, series, nominal_hours, rowid"
        elif name == "provenance":
            order = "started_at, rowid"
        else:
            order = "rowid"
        return f"SELECT * FROM {name} ORDER BY {order}"

    def read_table(self, name: str) -> pd.DataFrame:
        """One table as a DataFrame (scans and measurements in patient/series/time order).

        Raises
        ------
        InputError
            When the table does not exist.
        """
        with deferred_interrupts():
            return self._con.sql(self._query(name)).df()

    def read_arrow(self, name: str) -> pa.Table:
        """One table as a :class:`pyarrow.Table` with the database's column types."""
        with deferred_interrupts():
            table: pa.Table = self._con.sql(self._query(name)).to_arrow_table()
        return table

    # ------------------------------------------------------------------ export
    def export(self, directory: str | Path | None = None) -> dict[str, Path]:
        """Write every table of :data:`EXPORTED_TABLES` as CSV and Parquet, as one set.

        Parameters
        ----------
        directory : path-like, optional
            Default: the results folder.

        Returns
        -------
        dict
            ``"<table>.csv"`` / ``"<table>.parquet"`` -> path written.

        Raises
        ------
        StorageError
            When a file cannot be written (full disk, read-only folder); the previous set
            of exports is then left as it was.
        """
        target = self.results_dir if directory is None else Path(directory)
        try:
            target.mkdir(parents=True, exist_ok=True)
            _recover_exports(target)
            staging = Path(tempfile.mkdtemp(dir=target, prefix=_STAGING_PREFIX))
        except OSError as exc:
            raise _storage_error(exc, target, "cannot write the exports") from exc
        try:
            with deferred_interrupts():
                names = self._write_exports(staging)
                (staging / _COMPLETE).touch()
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise _storage_error(exc, target, "cannot write the exports") from exc
            raise
        with deferred_interrupts():
            try:
                for name in EXPORTED_TABLES:  # a table no longer present: its old files go
                    for suffix in (".csv", ".parquet"):
                        if f"{name}{suffix}" not in names:
                            (target / f"{name}{suffix}").unlink(missing_ok=True)
                _finish_swap(staging, target)
            except OSError as exc:
                raise _storage_error(exc, target, "cannot put the exports in place") from exc
        return {name: target / name for name in names}

    def _write_exports(self, staging: Path) -> list[str]:
        present = set(self.tables())
        names: list[str] = []
        for name in EXPORTED_TABLES:
            if name not in present:
                continue
            table = self.read_arrow(name)
            csv_path = staging / f"{name}.csv"
            parquet_path = staging / f"{name}.parquet"
            _write_csv(table.to_pandas(), csv_path)
            _write_parquet(table, parquet_path)
            for path in (csv_path, parquet_path):
                _follow_umask(path)
                names.append(path.name)
        return names
