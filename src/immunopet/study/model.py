"""The study model: patient -> injection (series) -> scan -> VOI sources.

A *series* is identified by its injection: the tracer-only injection and the injection after
an unlabelled (cold) predose are two series of one patient; the cold mass dose is a property of
the injection. Hours after injection are derived from date-times of the scanner clock (days
count); the nominal time point (72 h, 120 h ...) is what the protocol called the scan.

Everything here is plain, immutable data: reading a manifest builds it
(:mod:`immunopet.study.manifest`), the pipeline consumes it (:mod:`immunopet.study.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from immunopet.suv.record import Normalisation, SuvOverrides

__all__ = [
    "AnalysisSettings",
    "Exclusion",
    "Injection",
    "Patient",
    "Scan",
    "ScanRef",
    "Study",
    "StudyInputs",
    "VoiSource",
]

VoiKind = Literal["lesion", "organ"]
PeakMethod = Literal["local", "global"]


@dataclass(frozen=True)
class VoiSource:
    """One file of VOIs for a scan.

    Attributes
    ----------
    path : Path
        NIfTI label map, DICOM SEG, RTSTRUCT, or a spheres CSV (see
        :func:`immunopet.voi.sources.load_vois`).
    kind : {"lesion", "organ"} or None
        What the VOIs are; ``None`` lets the source say (a CSV ``kind`` column).
    """

    path: Path
    kind: VoiKind | None = None


@dataclass(frozen=True)
class Scan:
    """One PET acquisition (with its optional CT) after one injection.

    Attributes
    ----------
    pet : Path
        A DICOM folder holding one PET series, or a NIfTI with a PET-BIDS sidecar.
    nominal_hours : float, hours
        The protocol's time point (1, 72, 120, 168 ...).
    ct : Path, optional
        The CT series folder.
    vois : tuple of VoiSource
    overrides : SuvOverrides
        Values replacing or completing the PET header (weight, injection date-time ...).
    organ_masks : Path, optional
        A NIfTI label map of the organs (names in its same-stem ``.tsv``): not measured, used
        for the distance of lesions to high-uptake organs (spill-in).
    """

    pet: Path
    nominal_hours: float
    ct: Path | None = None
    vois: tuple[VoiSource, ...] = ()
    overrides: SuvOverrides = field(default_factory=SuvOverrides)
    organ_masks: Path | None = None


@dataclass(frozen=True)
class Injection:
    """A tracer injection: the series of scans that follow it.

    Attributes
    ----------
    series : str
        The series label, e.g. ``"tracer-only"`` or ``"predose"``.
    injection_datetime : datetime, optional
        Scanner-clock date-time; when given it overrides the PET headers of its scans.
    injected_activity_bq : float, optional, Bq
    unlabelled_mass_mg : float, mg
        Cold antibody given before (or with) the tracer; 0 for tracer only.
    weight_kg : float, optional, kg
        Body weight at this injection (overrides the headers when given).
    scans : tuple of Scan
    """

    series: str
    scans: tuple[Scan, ...] = ()
    injection_datetime: datetime | None = None
    injected_activity_bq: float | None = None
    unlabelled_mass_mg: float = 0.0
    weight_kg: float | None = None


@dataclass(frozen=True)
class Patient:
    """A study participant, known only by the study's pseudonym."""

    pseudonym: str
    injections: tuple[Injection, ...] = ()


@dataclass(frozen=True)
class ScanRef:
    """A scan with the keys that locate it in the study (for iteration and results)."""

    patient: str
    series: str
    nominal_hours: float
    scan: Scan
    injection: Injection

    @property
    def scan_id(self) -> str:
        """A stable, readable key: ``"P01/tracer-only/120h"``."""
        return f"{self.patient}/{self.series}/{self.nominal_hours:g}h"


@dataclass(frozen=True)
class Exclusion:
    """A lesion left out of quantitative analyses, with the reason recorded."""

    patient: str
    lesion: str
    reason: str


@dataclass(frozen=True)
class AnalysisSettings:
    """Choices that change numbers; recorded in the provenance of every run.

    Attributes
    ----------
    normalisation : {"bw", "lbm", "bsa"}
    peak : {"local", "global"}
        Which SUVpeak the ``suv_peak`` column reports (IBSI local or global intensity peak).
    peak_radius_mm : float, mm
    min_long_axis_mm : float, mm
        Lesions below this long-axis diameter are left out of quantitative analyses.
    analysis_hours : float, hours
        The time point of the per-patient uptake analysis.
    reference_organ : str
        The organ of tumour-to-background ratios.
    spill_in_organ, spill_in_distance_mm :
        Lesions closer than this to that organ get a spill-in warning.
    """

    normalisation: Normalisation = "bw"
    peak: PeakMethod = "local"
    peak_radius_mm: float = 6.2
    min_long_axis_mm: float = 20.0
    analysis_hours: float = 120.0
    reference_organ: str = "blood_pool"
    spill_in_organ: str = "spleen"
    spill_in_distance_mm: float = 13.0


@dataclass(frozen=True)
class StudyInputs:
    """Study-level tables (any may be absent)."""

    clinical: Path | None = None
    adverse_events: Path | None = None
    blood_samples: Path | None = None
    counter_calibration: Path | None = None
    lesions: Path | None = None


@dataclass(frozen=True)
class Study:
    """A whole study as described by its manifest.

    ``show_paths`` is the study's declaration that its folder and file names identify nobody:
    only then do outputs name input files (by their path relative to ``root``); otherwise they
    name them by scan and role (``P01/tracer-only/120h PET``), see
    :mod:`immunopet.study.privacy`.
    """

    name: str
    root: Path
    patients: tuple[Patient, ...]
    inputs: StudyInputs = field(default_factory=StudyInputs)
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    exclusions: tuple[Exclusion, ...] = ()
    tracer: str = ""
    show_paths: bool = False

    def scans(self) -> Iterator[ScanRef]:
        """Every scan of every injection of every patient, in manifest order."""
        for patient in self.patients:
            for injection in patient.injections:
                for scan in injection.scans:
                    yield ScanRef(
                        patient=patient.pseudonym,
                        series=injection.series,
                        nominal_hours=scan.nominal_hours,
                        scan=scan,
                        injection=injection,
                    )
