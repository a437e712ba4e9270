"""Measure the lesions of each patient's baseline FDG reference scan (``[patients.fdg]``).

The FDG PET is read through the one SUV entry point
(:func:`immunopet.suv.volume.read_suv_volume`: 18F from its header, decay to the injection
with that half-life, the study's normalisation) and each lesion VOI of the FDG scan is
measured with :func:`immunopet.metrics.describe_voi`. The rows are stored in the results
database as the table ``fdg_measurements`` (:data:`FDG_MEASUREMENT_COLUMNS`); the analysis
turns them into FDG positivity (:mod:`immunopet.analysis.fdg`).

A patient whose FDG scan cannot be measured gets a note (one line, paths redacted), never a
stopped run: the FDG scan is a reference, not the study's measurement.

A study run measures each patient's FDG scan as one job (:func:`measure_fdg_patient`) in the
same worker pool as the 89Zr scans, and keeps each patient's rows with a key
(:func:`fdg_key`: the inputs' fingerprint, the scan entry, the settings that enter, the
version), so that a rerun reuses the rows whose key has not changed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pandas as pd

from immunopet import __version__
from immunopet.errors import ImmunoPETError, InputError, collect_warnings
from immunopet.study.model import AnalysisSettings, Injection, Scan, ScanRef, Study, VoiSource
from immunopet.study.privacy import PathRedactor
from immunopet.study.provenance import _plain, scan_inputs
from immunopet.suv.nuclides import NUCLIDES
from immunopet.suv.record import SuvDerivation

__all__ = [
    "FDG_MEASUREMENT_COLUMNS",
    "FdgResult",
    "fdg_inputs",
    "fdg_key",
    "fdg_table",
    "fdg_warning_notes",
    "measure_fdg_lesions",
    "measure_fdg_patient",
]

FDG_MEASUREMENT_COLUMNS: Final = (
    "patient",
    "lesion",
    "fdg_suv_max",
    "fdg_suv_peak",
    "fdg_suv_mean",
    "volume_ml",
    "n_voxels",
    "nuclide",
    "hours_pi",
)
"""Columns of the ``fdg_measurements`` table (SUV in g/mL for ``bw``; hours after the FDG
injection; ``nuclide`` as the header names it)."""


FDG_NUCLIDE = "18F"
"""The nuclide of a baseline FDG scan (``[patients.fdg]``)."""

_HALF_LIFE_AGREEMENT = 0.01
"""Relative agreement of a header half-life with 18F's when no nuclide is named."""


def check_fdg_nuclide(derivation: SuvDerivation, pet: Path) -> None:
    """Refuse a PET whose header names another nuclide than 18F for an FDG scan."""
    fluorine = NUCLIDES[FDG_NUCLIDE]
    nuclide = derivation.nuclide
    if nuclide == FDG_NUCLIDE:
        return
    if nuclide is None and (
        abs(derivation.half_life_s / fluorine.half_life_s - 1.0) <= _HALF_LIFE_AGREEMENT
    ):
        return
    found = nuclide if nuclide is not None else f"half-life {derivation.half_life_s:g} s"
    tag = derivation.sources.get("nuclide") or derivation.sources.get(
        "half_life_s", "(0018,1075) RadionuclideHalfLife"
    )
    raise InputError(
        "an FDG reference scan ([patients.fdg]) must be an 18F PET; this series is not "
        "(a tracer scan belongs under [[patients.injections.scans]])",
        file=pet,
        tag=tag,
        value=found,
        expected=f"{FDG_NUCLIDE} (half-life {fluorine.half_life_s:g} s)",
    )


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


@dataclass(frozen=True)
class FdgResult:
    """The lesions one patient's FDG scan gave (one job of a study run).

    Attributes
    ----------
    patient : str
        The pseudonym.
    rows : tuple of dict
        One row per lesion measured, keys :data:`FDG_MEASUREMENT_COLUMNS`.
    note : str
        Why the scan (or part of it) could not be measured, "" when it was; paths not yet
        redacted (the orchestrator redacts).
    warnings : tuple of str
        What was assumed or repaired while reading the scan (the SUV derivation's and the
        VOIs' warnings), each once; paths not yet redacted.
    """

    patient: str
    rows: tuple[dict[str, Any], ...] = ()
    note: str = ""
    warnings: tuple[str, ...] = ()


def fdg_inputs(scan: Scan, root: Path) -> tuple[Path, ...]:
    """The files the FDG job of ``scan`` reads: its PET and every non-organ VOI source.

    Relative paths are taken relative to ``root``; a NIfTI PET brings its JSON sidecar and a
    NIfTI label map its name table (as :func:`~immunopet.study.provenance.scan_inputs`).
    """
    vois = tuple(
        VoiSource(_absolute(source.path, root), source.kind)
        for source in scan.vois
        if source.kind != "organ"
    )
    absolute = replace(scan, pet=_absolute(scan.pet, root), vois=vois)
    return scan_inputs(ScanRef("", "fdg", 0.0, absolute, Injection("fdg")))


def fdg_key(patient: str, scan: Scan, settings: AnalysisSettings, inputs_fingerprint: str) -> str:
    """The key of a patient's FDG rows: inputs, scan entry, the settings that enter, version.

    A stored FDG result with the same key is current (a rerun reuses its rows).
    """
    document = {
        "inputs": inputs_fingerprint,
        "patient": patient,
        "pet": scan.pet,
        "vois": scan.vois,
        "overrides": scan.overrides,
        "settings": {
            "normalisation": settings.normalisation,
            "peak": settings.peak,
            "peak_radius_mm": settings.peak_radius_mm,
        },
        "version": __version__,
    }
    text = json.dumps(_plain(document), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def measure_fdg_patient(
    patient: str, scan: Scan, settings: AnalysisSettings, root: str | Path
) -> FdgResult:
    """SUV metrics of every lesion VOI of one patient's FDG reference scan (writes nothing).

    Parameters
    ----------
    patient : str
        The pseudonym.
    scan : Scan
        The patient's ``fdg`` scan; relative paths are taken relative to ``root``.
    settings : AnalysisSettings
        Normalisation, SUVpeak kind and radius.
    root : path-like
        The study root.

    Returns
    -------
    FdgResult
        The rows, and a note (instead of an exception) when an input problem stopped the
        measurement: the rows of the lesions measured before it are kept.
    """
    root = Path(root)
    rows: list[dict[str, Any]] = []
    # the warnings are returned with the rows: a worker's own display would show raw paths
    with collect_warnings() as notes:
        note = _measure_fdg_scan(patient, scan, settings, root, rows)
    return FdgResult(patient, tuple(rows), note, tuple(notes))


def _measure_fdg_scan(
    patient: str, scan: Scan, settings: AnalysisSettings, root: Path, rows: list[dict[str, Any]]
) -> str:
    """Append one row per lesion of ``scan`` to ``rows``; the note of a problem, else ""."""
    # imported where a scan is measured (a worker; with one worker, here): a run's own
    # process that only plans and stores the rows does not import the measuring stack
    from immunopet.metrics import describe_voi
    from immunopet.suv.volume import read_suv_volume
    from immunopet.voi.sources import load_vois

    try:
        suv = read_suv_volume(
            _absolute(scan.pet, root),
            overrides=scan.overrides,
            normalisation=settings.normalisation,
        )
        derivation = suv.derivation
        check_fdg_nuclide(derivation, _absolute(scan.pet, root))  # not an 18F PET: no rows
        start, scanned = derivation.injection_datetime, derivation.scan_datetime
        hours = math.nan
        if start is not None and scanned is not None:
            hours = (scanned - start).total_seconds() / 3600.0
        for source in scan.vois:
            if source.kind == "organ":
                continue
            for voi in load_vois(_absolute(source.path, root), reference=suv.volume, kind="lesion"):
                described = describe_voi(
                    suv.volume,
                    voi.mask,
                    voi_name=f"{patient}/fdg lesion {voi.name}",
                    peak_radius_mm=settings.peak_radius_mm,
                )
                m = described.metrics
                rows.append(
                    {
                        "patient": patient,
                        "lesion": voi.name,
                        "fdg_suv_max": m.max,
                        "fdg_suv_peak": m.peak_local if settings.peak == "local" else m.peak_global,
                        "fdg_suv_mean": m.mean,
                        "volume_ml": m.volume_ml,
                        "n_voxels": m.n_voxels,
                        "nuclide": derivation.nuclide,
                        "hours_pi": hours,
                    }
                )
    except ImmunoPETError as error:
        return f"{patient}/fdg not measured: {error}"
    return ""


def fdg_table(results: Iterable[FdgResult]) -> pd.DataFrame:
    """The ``fdg_measurements`` table of some results, in their order."""
    rows = [row for result in results for row in result.rows]
    return pd.DataFrame(rows, columns=list(FDG_MEASUREMENT_COLUMNS))


def measure_fdg_lesions(
    study: Study, redactor: PathRedactor | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """SUV metrics of every lesion VOI of every patient's FDG reference scan.

    One :func:`measure_fdg_patient` after another (a study run gives each patient's scan
    to its worker pool instead).

    Parameters
    ----------
    study : Study
        Patients without ``fdg`` are skipped; only VOI sources of kind ``lesion`` (or
        unspecified) are measured.
    redactor : PathRedactor, optional
        Rewrites paths in the notes (default: the study's).

    Returns
    -------
    table : pandas.DataFrame
        :data:`FDG_MEASUREMENT_COLUMNS`, one row per lesion; SUVpeak is the study's
        ``settings.peak`` kind with ``settings.peak_radius_mm``.
    notes : list of str
        One line per FDG scan that could not be measured, then each warning of a scan read
        (``<patient>/fdg: <warning>``).
    """
    redactor = PathRedactor.for_study(study) if redactor is None else redactor
    results = [
        measure_fdg_patient(patient.pseudonym, patient.fdg, study.settings, study.root)
        for patient in study.patients
        if patient.fdg is not None
    ]
    notes = [redactor.redact(result.note) for result in results if result.note]
    notes += [redactor.redact(note) for note in fdg_warning_notes(results)]
    return fdg_table(results), notes


def fdg_warning_notes(results: Iterable[FdgResult]) -> list[str]:
    """``<patient>/fdg: <warning>`` for every warning of the results (paths not redacted)."""
    return [f"{result.patient}/fdg: {warning}" for result in results for warning in result.warnings]
