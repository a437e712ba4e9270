"""Measure the lesions of each patient's baseline FDG reference scan (``[patients.fdg]``).

The FDG PET is read through the one SUV entry point
(:func:`immunopet.suv.volume.read_suv_volume`: 18F from its header, decay to the injection
with that half-life, the study's normalisation) and each lesion VOI of the FDG scan is
measured with :func:`immunopet.metrics.describe_voi`. The rows are stored in the results
database as the table ``fdg_measurements`` (:data:`FDG_MEASUREMENT_COLUMNS`); the analysis
turns them into FDG positivity (:mod:`immunopet.analysis.fdg`).

A patient whose FDG scan cannot be measured gets a note (one line, paths redacted), never a
stopped run: the FDG scan is a reference, not the study's measurement.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import pandas as pd

from immunopet.errors import ImmunoPETError
from immunopet.metrics import describe_voi
from immunopet.study.model import Study
from immunopet.study.privacy import PathRedactor
from immunopet.suv.volume import read_suv_volume
from immunopet.voi.sources import load_vois

__all__ = ["FDG_MEASUREMENT_COLUMNS", "measure_fdg_lesions"]

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


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def measure_fdg_lesions(
    study: Study, redactor: PathRedactor | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """SUV metrics of every lesion VOI of every patient's FDG reference scan.

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
        One line per FDG scan that could not be measured.
    """
    redactor = PathRedactor.for_study(study) if redactor is None else redactor
    root = Path(study.root)
    settings = study.settings
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for patient in study.patients:
        scan = patient.fdg
        if scan is None:
            continue
        try:
            suv = read_suv_volume(
                _absolute(scan.pet, root),
                overrides=scan.overrides,
                normalisation=settings.normalisation,
            )
            derivation = suv.derivation
            start, scanned = derivation.injection_datetime, derivation.scan_datetime
            hours = math.nan
            if start is not None and scanned is not None:
                hours = (scanned - start).total_seconds() / 3600.0
            for source in scan.vois:
                if source.kind == "organ":
                    continue
                for voi in load_vois(
                    _absolute(source.path, root), reference=suv.volume, kind="lesion"
                ):
                    described = describe_voi(
                        suv.volume,
                        voi.mask,
                        voi_name=f"{patient.pseudonym}/fdg lesion {voi.name}",
                        peak_radius_mm=settings.peak_radius_mm,
                    )
                    m = described.metrics
                    rows.append(
                        {
                            "patient": patient.pseudonym,
                            "lesion": voi.name,
                            "fdg_suv_max": m.max,
                            "fdg_suv_peak": m.peak_local
                            if settings.peak == "local"
                            else m.peak_global,
                            "fdg_suv_mean": m.mean,
                            "volume_ml": m.volume_ml,
                            "n_voxels": m.n_voxels,
                            "nuclide": derivation.nuclide,
                            "hours_pi": hours,
                        }
                    )
        except ImmunoPETError as error:
            notes.append(redactor.redact(f"{patient.pseudonym}/fdg not measured: {error}"))
    return pd.DataFrame(rows, columns=list(FDG_MEASUREMENT_COLUMNS)), notes
