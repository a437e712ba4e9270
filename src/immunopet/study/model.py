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
    "FDG_NOMINAL_HOURS",
    "AnalysisPlan",
    "AnalysisSettings",
    "Exclusion",
    "IhcMarker",
    "Injection",
    "Patient",
    "ResponsePlan",
    "Scan",
    "ScanRef",
    "Study",
    "StudyInputs",
    "VoiSource",
]

VoiKind = Literal["lesion", "organ"]
PeakMethod = Literal["local", "global"]
UptakeMetric = Literal["suv_peak", "suv_max", "suv_mean"]
PatientAggregate = Literal["median", "mean", "geometric_mean", "max"]
NotEvaluable = Literal["landmark", "exclude", "progression", "no-progression"]
BiodistributionCohort = Literal["full-schedule", "all"]
TumourToBloodLesions = Literal["quantitative", "fdg-positive", "all"]
SPLIT_RULES: tuple[str, ...] = ("median-of-lesions", "median-of-patients")


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


FDG_NOMINAL_HOURS = 1.0
"""Default nominal uptake time of an FDG reference scan (hours after the FDG injection)."""


@dataclass(frozen=True)
class Patient:
    """A study participant, known only by the study's pseudonym.

    Attributes
    ----------
    pseudonym : str
    injections : tuple of Injection
        The 89Zr (study tracer) injections and their scans.
    fdg : Scan, optional
        The baseline FDG PET/CT (manifest ``[patients.fdg]``): a reference scan with its own
        injection (18F, in its header or ``overrides``), not one of the tracer's series. Its
        SUV follows the ordinary rules (decay to injection with the 18F half-life) through
        :func:`immunopet.suv.volume.read_suv_volume`; its lesion VOIs (same lesion numbers as
        the tracer scans) give the lesions' FDG positivity.
    """

    pseudonym: str
    injections: tuple[Injection, ...] = ()
    fdg: Scan | None = None


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
class ResponsePlan:
    """How the clinical sheet defines response and progression (``[analysis.response]``).

    Attributes
    ----------
    column : str
        The clinical column holding the response category (default ``"bor"``, RECIST 1.1
        best overall response).
    categories : tuple of str
        The categories compared by the Kruskal-Wallis test, in display order (the paper's
        Methods: PD, SD, PR, CR). Other values (NE) enter no category group.
    progression : tuple of str
        Categories that count as progressive disease (default ``("PD",)``).
    responders : tuple of str
        Categories that count as response in the biomarker comparison (``("CR", "PR")``).
    not_evaluable : tuple of str
        Categories meaning "not evaluable" (default ``("NE",)``).
    landmark_weeks : float, weeks
        Progression "at the landmark" (the paper: at the 6-week evaluation) is a PFS event at
        or before ``7 * landmark_weeks`` days; no progression is PFS beyond it. ``0``: the
        response categories alone decide (``progression`` vs the others).
    ne_rule : {"landmark", "exclude", "progression", "no-progression"}
        What a not-evaluable patient does in the progression test: ``"landmark"`` (default)
        decides from the PFS like everyone else, ``"exclude"`` leaves the patient out, the
        others put the patient in that group.
    """

    column: str = "bor"
    categories: tuple[str, ...] = ("PD", "SD", "PR", "CR")
    progression: tuple[str, ...] = ("PD",)
    responders: tuple[str, ...] = ("CR", "PR")
    not_evaluable: tuple[str, ...] = ("NE",)
    landmark_weeks: float = 6.0
    ne_rule: NotEvaluable = "landmark"


@dataclass(frozen=True)
class IhcMarker:
    """An immunohistochemistry score tested against uptake (``[[analysis.ihc]]``).

    Attributes
    ----------
    column : str
        Numeric clinical column (``tps_percent``, ``cps_percent``, ``pd1_percent`` ...).
    label : str
        Name in tables and the report.
    cutoffs : tuple of float
        Group limits: values below the first, between, at or above the last (the paper's
        PD-L1 groups 0 %, 1-49 %, >= 50 %: ``(1, 50)``).
    """

    column: str
    label: str
    cutoffs: tuple[float, ...] = (1.0, 50.0)


DEFAULT_IHC: tuple[IhcMarker, ...] = (
    IhcMarker("tps_percent", "PD-L1 TPS"),
    IhcMarker("cps_percent", "PD-L1 CPS"),
)


@dataclass(frozen=True)
class AnalysisPlan:
    """The study's analysis plan: the manifest's ``[analysis]`` table (defaults: the paper).

    The defaults reproduce the Methods of the durvalumab study (seed 000): lesion SUVpeak of
    FDG-positive lesions >= 20 mm on the tracer-only scan at ``settings.analysis_hours``;
    the per-patient median for IHC, the per-patient mean for the survival split; the split
    threshold is the median SUVpeak of all those lesions.

    Attributes
    ----------
    uptake_metric : {"suv_peak", "suv_max", "suv_mean"}
        The lesion value every uptake analysis uses (the kind of peak is ``settings.peak``).
    patient_aggregate : {"median", "mean", "geometric_mean", "max"}
        Per-patient summary of lesion values for IHC tests, biomarkers and
        ``patient_uptake.csv``.
    split_aggregate : {"median", "mean", "geometric_mean", "max"}
        Per-patient summary compared with the split threshold (the paper: "average SUVpeak").
    split : str or float
        ``"median-of-lesions"`` (the paper's Methods), ``"median-of-patients"`` (median of the
        per-patient ``split_aggregate``) or a fixed threshold (same unit as the metric).
    fallback_hours : tuple of float, hours
        Time points used, in order, for a patient without a scan at the analysis time point.
    reference_series, comparison_series : str
        Series names: the reference (tracer only) carries the quantitative analysis; the
        comparison (e.g. after a cold predose) is compared with it. Any names.
    tumour_to_blood_lesions : {"quantitative", "fdg-positive", "all"}
        Lesions of the tumour-to-blood ratio: ``"quantitative"`` (default: FDG-positive,
        >= ``min_long_axis_mm``, not excluded; as the paper's quantitative analyses),
        ``"fdg-positive"`` (every FDG-positive lesion, placeholders included), ``"all"``.
    biodistribution_cohort : {"full-schedule", "all"}
        Patients of the organ and blood curves per series: those with every scheduled time
        point of that series (default; the paper's first three patients) or everyone scanned.
    response : ResponsePlan
    ihc : tuple of IhcMarker
    biomarkers : tuple of str
        Candidates of the biomarker comparison: ``"uptake"`` (the per-patient aggregate) and
        numeric clinical columns (IHC scores, an RNA-seq score ...).
    fdg_positive_suv_max : float, g/mL
        A lesion is FDG-positive on its FDG reference scan when its SUVmax is above this
        (default 2.5, the long-used fixed threshold; PERCIST's liver-based threshold needs a
        liver VOI on the FDG scan). Compared with the reader's ``fdg_positive`` in
        ``fdg_lesions.csv``; the other analyses keep the reader's flag.
    """

    uptake_metric: UptakeMetric = "suv_peak"
    patient_aggregate: PatientAggregate = "median"
    split_aggregate: PatientAggregate = "mean"
    split: str | float = "median-of-lesions"
    fallback_hours: tuple[float, ...] = (72.0,)
    reference_series: str = "tracer-only"
    comparison_series: str = "predose"
    tumour_to_blood_lesions: TumourToBloodLesions = "quantitative"
    biodistribution_cohort: BiodistributionCohort = "full-schedule"
    response: ResponsePlan = field(default_factory=ResponsePlan)
    ihc: tuple[IhcMarker, ...] = DEFAULT_IHC
    biomarkers: tuple[str, ...] = ("uptake", "tps_percent", "cps_percent")
    fdg_positive_suv_max: float = 2.5


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
    plan: AnalysisPlan = field(default_factory=AnalysisPlan)

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
