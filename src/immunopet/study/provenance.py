"""Provenance of a study run: input fingerprints, scan keys, settings and library versions.

A scan's *key* decides whether its stored results are still current: it is the SHA-256 of

* the fingerprint of its input files (the PET, and every VOI source),
* what the manifest says about the scan (patient, series, time point, SUV overrides, cold mass),
* the analysis settings and the patient's lesion exclusions,
* the immunopet version.

The input fingerprint is built from file *metadata*, not content: for every file of the PET
folder (or the single PET/VOI file) its path relative to the input, its size in bytes and its
modification time in nanoseconds. This is cheap for a DICOM folder of hundreds of slices and
changes whenever a file is added, removed, replaced or rewritten; copying the data without
preserving times (``cp`` without ``-p``) changes it too, which only costs a recomputation. A
file rewritten with the same size within the file system's time resolution would go unnoticed;
use ``force`` after editing files in place by tools that restore times. An editable install
keeps its version number while its code changes: use ``force`` after changing the code.

:func:`hash_file` (content SHA-256) is used for the manifest itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from immunopet import __version__
from immunopet.io.masks import label_table_path
from immunopet.io.nifti import sidecar_path
from immunopet.study.model import AnalysisSettings, Exclusion, ScanRef

__all__ = [
    "LIBRARIES",
    "fingerprint_inputs",
    "hash_file",
    "library_versions",
    "manifest_reference",
    "recorded_manifest",
    "scan_inputs",
    "scan_key",
    "settings_json",
]

LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "pydicom",
    "nibabel",
    "highdicom",
    "scikit-image",
    "duckdb",
    "pyarrow",
    "dask",
    "distributed",
    "lifelines",
    "matplotlib",
    "jinja2",
)
"""Libraries whose versions are recorded with every run (and printed by ``env-info``)."""

_CHUNK = 1 << 20


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's content, as hex.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     p = Path(folder) / "a.txt"
    ...     _ = p.write_bytes(b"abc")
    ...     hash_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(folder: str, prefix: str, out: list[tuple[str, int, int]]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            name = prefix + entry.name
            if entry.is_dir():
                _walk(entry.path, name + "/", out)
            elif entry.is_file():
                info = entry.stat()
                out.append((name, info.st_size, info.st_mtime_ns))


def _entries(path: Path) -> list[tuple[str, int, int]]:
    """(relative name, size, mtime_ns) of every file of a folder, or of one file, sorted."""
    if path.is_dir():
        found: list[tuple[str, int, int]] = []
        _walk(str(path), "", found)  # os.scandir: a DICOM folder has hundreds of files
        return sorted(found)
    if path.is_file():
        info = path.stat()
        return [(path.name, info.st_size, info.st_mtime_ns)]
    return []


def fingerprint_inputs(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the names, sizes and modification times of the files of some inputs.

    Parameters
    ----------
    paths : iterable of path-like
        Files or folders (a folder counts every file below it). A path that does not exist
        enters as ``missing`` (the scan's job then reports the problem).

    Returns
    -------
    str
        Hex digest; see the module notes for what it does and does not detect.
    """
    digest = hashlib.sha256()
    for path in paths:
        item = Path(path)
        digest.update(f"input {item.as_posix()}\n".encode())
        entries = _entries(item)
        if not entries:
            digest.update(b"missing\n")
        for name, size, mtime_ns in entries:
            digest.update(f"{name}\t{size}\t{mtime_ns}\n".encode())
    return digest.hexdigest()


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def scan_inputs(ref: ScanRef) -> tuple[Path, ...]:
    """The files a scan's job reads.

    The PET (folder, or NIfTI with its JSON sidecar) and every VOI source (a NIfTI label map
    with its same-stem ``.tsv`` name table).
    """
    pet = ref.scan.pet
    paths = [pet]
    if _is_nifti(pet):
        paths.append(sidecar_path(pet))
    for source in ref.scan.vois:
        paths.append(source.path)
        if _is_nifti(source.path):
            paths.append(label_table_path(source.path))
    return tuple(paths)


def _plain(value: Any) -> Any:
    """JSON-ready form of dataclasses, paths and date-times (sorted keys when dumped)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def settings_json(settings: AnalysisSettings) -> str:
    """The analysis settings as canonical JSON (sorted keys).

    Examples
    --------
    >>> settings_json(AnalysisSettings(peak="global"))[:52]
    '{"analysis_hours": 120.0, "min_long_axis_mm": 20.0, '
    """
    return json.dumps(_plain(settings), sort_keys=True)


def scan_key(
    ref: ScanRef,
    settings: AnalysisSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
    inputs_fingerprint: str | None = None,
) -> str:
    """The key of a scan's results (see the module notes).

    Parameters
    ----------
    ref : ScanRef
    settings : AnalysisSettings
    exclusions : sequence of Exclusion
        The study's exclusions; only those of ``ref.patient`` enter the key.
    inputs_fingerprint : str, optional
        :func:`fingerprint_inputs` of :func:`scan_inputs`, when already computed.

    Returns
    -------
    str
        Hex SHA-256.
    """
    fingerprint = inputs_fingerprint or fingerprint_inputs(scan_inputs(ref))
    own = sorted(
        (e.lesion, e.reason) for e in exclusions if e.patient == ref.patient
    )  # order-independent
    injection = ref.injection
    document = {
        "inputs": fingerprint,
        "scan": {
            "scan_id": ref.scan_id,
            "pet": ref.scan.pet,
            "vois": ref.scan.vois,
            "overrides": ref.scan.overrides,
            "injection_datetime": injection.injection_datetime,
            "injected_activity_bq": injection.injected_activity_bq,
            "unlabelled_mass_mg": injection.unlabelled_mass_mg,
            "weight_kg": injection.weight_kg,
        },
        "settings": settings,
        "exclusions": own,
        "version": __version__,
    }
    text = json.dumps(_plain(document), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python, immunopet and :data:`LIBRARIES` (``"not installed"`` if absent).

    Examples
    --------
    >>> versions = library_versions()
    >>> sorted(versions)[:3]
    ['dask', 'distributed', 'duckdb']
    >>> versions["immunopet"] == __version__
    True
    """
    versions = {"python": platform.python_version(), "immunopet": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def manifest_reference(manifest: str | Path, results_dir: str | Path) -> str:
    """How the provenance names the manifest: relative to the results folder, never absolute.

    ``"../study.toml"`` when the manifest lies in a folder above the results folder (the
    default layout), else the manifest's file name alone (a report then needs the manifest
    given explicitly): no folder name of the study is recorded.

    Examples
    --------
    >>> manifest_reference("/data/trial/study.toml", "/data/trial/results")
    '../study.toml'
    >>> manifest_reference("/data/trial/study.toml", "/elsewhere/results")
    'study.toml'
    """
    manifest_abs = os.path.abspath(manifest)
    relative = Path(os.path.relpath(manifest_abs, os.path.abspath(results_dir)))
    if all(part == ".." for part in relative.parts[:-1]):
        return relative.as_posix()
    return Path(manifest_abs).name


def recorded_manifest(value: object, results_dir: str | Path) -> Path | None:
    """The manifest a run recorded (:func:`manifest_reference`), as a path; None when unknown."""
    if not value or not isinstance(value, str | os.PathLike):
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(results_dir) / path
