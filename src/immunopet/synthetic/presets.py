"""Designs of the synthetic trial: ``study`` (durvalumab), ``atezolizumab`` and ``tiny`` (tests).

``study`` follows seed 000: 13 patients, two series 12 days apart (``tracer-only`` then
``predose``), scans at 1/72/120/168 h for the first 3 patients and 72/120 h for the rest,
102 FDG-positive lesions (33 with a long axis of at least 20 mm), a spill-in lesion next to
the spleen in P09, and FDG-negative tracer-positive lymph nodes. Which patients miss scans is
this package's reading of the paper (not stated per patient there): P01 and P10 have no
``predose`` scans (Fig. 2D averages patients 2 and 3 only; P10 died two days after the start of
treatment), and P12 has no ``tracer-only`` 120 h scan (Fig. 4 uses its 72 h scan). That leaves
10 patients with all scheduled scans, as published.

``atezolizumab`` follows seed 001 (:mod:`immunopet.synthetic.atezolizumab`): 22 patients of
three tumour types, one injection (no predose), scans on day 0 (1 h), 2, 4 and 7 for the first
four patients and on days 4 and 7 for the others (the abstract does not give the schedule;
days 0/2/4/7 are this package's reading of the study), SUVmax at day 7 as the study's metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from immunopet.synthetic.kinetics import SERIES_NAMES
from immunopet.synthetic.scanner import ScannerModel

__all__ = ["ATEZOLIZUMAB", "PRESETS", "STUDY", "TINY", "TrialConfig"]


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines a synthetic trial apart from the seed.

    Attributes
    ----------
    name : str
    clinical_rows : tuple of int
        Row of the published Table 1 (1-13) each patient takes, in patient order; the number
        of patients is its length.
    pet_shape : (int, int, int)
        PET grid ``(nz, ny, nx)``.
    pet_spacing_mm : (float, float, float), mm
        PET voxel size ``(dz, dy, dx)``.
    ct_shape : (int, int, int)
    ct_spacing_mm : (float, float, float), mm
    top_z_mm : float, mm
        z of the top slice centre of both grids (the vertex is at 0).
    extensive_patients : int
        The first this many patients are scanned at ``extensive_hours``, the rest at
        ``standard_hours``; blood sampling follows the same split.
    extensive_hours, standard_hours : tuple of float, hours
    series : tuple of str
    series_gap_days : int
        Days between the two injections.
    without_predose : tuple of str
        Pseudonyms with no scans of the second series.
    missing_scans : tuple of (str, str, float)
        (pseudonym, series, nominal hours) scans that did not take place.
    tumours_per_patient, large_per_patient, nodes_per_patient : tuple of int
        FDG-positive tumours, how many of them >= 20 mm, FDG-negative tracer-positive nodes.
    spleen_lesion_patient : str or None
        Pseudonym whose last large tumour touches the spleen.
    vendors : tuple of str
        Vendor flavours cycled over patients.
    injected_activity_bq : float, Bq
    frame_duration_s : float, s
    scanner : ScannerModel
    cohort : {"durvalumab", "atezolizumab"}
        Which clinical design the patients follow: rows of the durvalumab Table 1
        (``clinical_rows``) or the atezolizumab cohort (``clinical_rows`` = its rows).
    node_contrast : float
        Median uptake of FDG-negative tracer-positive nodes (lymphoid tissue, inflammation)
        relative to the blood pool.
    settings : mapping
        ``[settings]`` values the trial's ``study.toml`` states (e.g. ``analysis_hours``).
    analysis : mapping
        The ``[analysis]`` plan the trial's ``study.toml`` states (what the study reports).
    """

    name: str
    clinical_rows: tuple[int, ...]
    pet_shape: tuple[int, int, int]
    pet_spacing_mm: tuple[float, float, float]
    ct_shape: tuple[int, int, int]
    ct_spacing_mm: tuple[float, float, float]
    top_z_mm: float
    extensive_patients: int
    extensive_hours: tuple[float, ...]
    standard_hours: tuple[float, ...]
    tumours_per_patient: tuple[int, ...]
    large_per_patient: tuple[int, ...]
    nodes_per_patient: tuple[int, ...]
    series: tuple[str, ...] = SERIES_NAMES
    series_gap_days: int = 12
    without_predose: tuple[str, ...] = ()
    missing_scans: tuple[tuple[str, str, float], ...] = ()
    spleen_lesion_patient: str | None = None
    vendors: tuple[str, ...] = ("siemens", "ge", "philips")
    injected_activity_bq: float = 37.0e6
    frame_duration_s: float = 600.0
    scanner: ScannerModel = field(default_factory=ScannerModel)
    cohort: Literal["durvalumab", "atezolizumab"] = "durvalumab"
    node_contrast: float = 2.3
    settings: Mapping[str, object] = field(default_factory=dict)
    analysis: Mapping[str, object] = field(default_factory=dict)

    @property
    def pseudonyms(self) -> tuple[str, ...]:
        """``P01``, ``P02`` ... one per patient."""
        return tuple(f"P{i:02d}" for i in range(1, len(self.clinical_rows) + 1))

    def hours_for(self, patient_index: int) -> tuple[float, ...]:
        """Nominal scan hours of the 0-based patient."""
        if patient_index < self.extensive_patients:
            return self.extensive_hours
        return self.standard_hours


STUDY = TrialConfig(
    name="study",
    clinical_rows=tuple(range(1, 14)),
    pet_shape=(240, 128, 128),
    pet_spacing_mm=(4.0, 4.0, 4.0),
    ct_shape=(120, 170, 170),
    ct_spacing_mm=(8.0, 3.0, 3.0),
    top_z_mm=8.0,
    extensive_patients=3,
    extensive_hours=(1.0, 72.0, 120.0, 168.0),
    standard_hours=(72.0, 120.0),
    tumours_per_patient=(8, 7, 6, 9, 8, 10, 7, 9, 12, 6, 7, 7, 6),
    large_per_patient=(3, 2, 2, 3, 2, 3, 2, 3, 6, 2, 2, 2, 1),
    nodes_per_patient=(4, 3, 3, 4, 3, 3, 4, 3, 4, 3, 3, 4, 3),
    without_predose=("P01", "P10"),
    missing_scans=(("P12", "tracer-only", 120.0),),
    spleen_lesion_patient="P09",
)
"""The 89Zr-durvalumab design (seed 000)."""

TINY = TrialConfig(
    name="tiny",
    clinical_rows=(1, 7, 9),
    pet_shape=(100, 64, 64),
    pet_spacing_mm=(8.0, 8.0, 8.0),
    ct_shape=(50, 80, 80),
    ct_spacing_mm=(16.0, 6.4, 6.4),
    top_z_mm=8.0,
    extensive_patients=0,
    extensive_hours=(1.0, 72.0, 120.0, 168.0),
    standard_hours=(72.0, 120.0),
    tumours_per_patient=(4, 3, 4),
    large_per_patient=(2, 1, 2),
    nodes_per_patient=(1, 1, 1),
    spleen_lesion_patient="P03",
)
"""Three patients (Table 1 rows 1, 7, 9: SD, PR, PD), 8 mm voxels, 72/120 h, both series."""

ATEZOLIZUMAB = TrialConfig(
    name="atezolizumab",
    clinical_rows=tuple(range(1, 23)),
    pet_shape=(100, 64, 64),
    pet_spacing_mm=(8.0, 8.0, 8.0),
    ct_shape=(50, 80, 80),
    ct_spacing_mm=(16.0, 6.4, 6.4),
    top_z_mm=8.0,
    extensive_patients=4,
    extensive_hours=(1.0, 48.0, 96.0, 168.0),
    standard_hours=(96.0, 168.0),
    tumours_per_patient=(4, 3, 5, 3, 4, 3, 4, 3, 5, 4, 3, 4, 5, 3, 4, 3, 4, 3, 4, 3, 3, 4),
    large_per_patient=(3, 2, 3, 2, 3, 2, 3, 2, 3, 3, 2, 3, 3, 2, 3, 2, 3, 2, 3, 2, 2, 3),
    nodes_per_patient=(2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1),
    series=("tracer-only",),
    cohort="atezolizumab",
    node_contrast=4.0,
    settings={"analysis_hours": 168.0},
    analysis={
        "uptake_metric": "suv_max",
        "patient_aggregate": "geometric_mean",
        "split_aggregate": "geometric_mean",
        "split": "median-of-patients",
        "fallback_hours": [96.0],
        "reference_series": "tracer-only",
        "biomarkers": ["uptake", "tps_percent", "cps_percent", "rnaseq_score"],
        "response": {"column": "bor", "responders": ["CR", "PR"], "landmark_weeks": 0},
    },
)
"""The 89Zr-atezolizumab design (seed 001): 22 patients, bladder/NSCLC/TNBC, 8 mm voxels."""

PRESETS: dict[str, TrialConfig] = {"study": STUDY, "tiny": TINY, "atezolizumab": ATEZOLIZUMAB}
"""Presets by name."""
