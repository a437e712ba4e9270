"""Generate the synthetic 89Zr immuno-PET trial: DICOM, VOIs, clinical tables and the truth.

Layout under ``outdir`` (see also the ``README.txt`` written there)::

    dicom/<patient>/<series>/<hours>h/{pet,ct}/      one DICOM file per slice
    vois/<patient>/<series>/<hours>h/lesions.nii.gz  visible lesions, label = lesion number
    vois/<patient>/<series>/<hours>h/lesion_spheres.csv  invisible FDG+ lesions (1 cm³ spheres)
    vois/<patient>/<series>/<hours>h/organ_points.csv    2 cm reference spheres per organ
    vois/<patient>/organs.nii.gz (+ organs.tsv)     organ label map on the PET grid (spill-in)
    scans.csv, lesions.csv, clinical.csv, adverse_events.csv, blood_samples.csv,
    counter_calibration.json, README.txt, study.toml
    truth/organs.csv, truth/lesions.csv, truth/blood.csv, truth/kinetics.csv

Everything is deterministic per seed: random streams come from ``numpy.random.SeedSequence``
keyed by (seed, patient, purpose), and DICOM UIDs from a seed string.

Lesion uptake (tracer-only, 120 h, viable rim) is drawn per patient so that the study's trends
exist but are noisy: a patient level around the published median SUVpeak of the patient's best
overall response (PD 2.4, SD 4.6, PR 5.9), a weak factor for CPS and none for TPS, then a
log-normal spread per lesion. A lesion is *visible* in a scan (delineated in the label map) when
its recovery-weighted uptake is at least :data:`VISIBILITY_CONTRAST` times the mean of the
blood pool and the tissue around it; otherwise an FDG-positive lesion gets a 1 cm³ sphere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from immunopet.errors import InputError
from immunopet.image import Unit
from immunopet.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series
from immunopet.io.masks import write_label_map
from immunopet.io.nifti import write_nifti
from immunopet.suv.nuclides import NUCLIDES
from immunopet.synthetic.anatomy import (
    ORGAN_NAMES,
    Anatomy,
    Lesion,
    Patient,
    Tissue,
    VoxelGrid,
    build_anatomy,
    organ_points_mm,
    place_lesions,
)
from immunopet.synthetic.atezolizumab import (
    COHORT,
    SIGMA_LESION,
    heterogeneity_truth,
    make_cohort_sheet,
    patient_level_suv,
)
from immunopet.synthetic.clinical import (
    TABLE1,
    BloodSchedule,
    CounterCalibration,
    draw_adverse_events,
    make_blood_samples,
    make_clinical_sheet,
)
from immunopet.synthetic.fdg import (
    FDG_ACTIVITY_BQ_PER_KG,
    FDG_DAYS_BEFORE,
    FDG_FRAME_DURATION_S,
    fdg_lesion_suv,
    fdg_suv_map,
)
from immunopet.synthetic.kinetics import (
    KINETIC_ORGANS,
    LESION_RELATIVE_ANCHORS,
    NECROTIC_CORE_FRACTION,
    ORGAN_ANCHORS,
    PREDOSE_LESION_FACTOR,
    TISSUE_ORGAN,
    Series,
    interpolate_suv,
    true_kinetics,
)
from immunopet.synthetic.manifest import write_trial_manifest
from immunopet.synthetic.presets import PRESETS, TrialConfig
from immunopet.synthetic.scanner import simulate_ct, simulate_pet

__all__ = [
    "BOR_LESION_SUV",
    "VISIBILITY_CONTRAST",
    "ScanRecord",
    "TrialManifest",
    "generate_trial",
    "lesion_field_of_view_mm",
]

BOR_LESION_SUV = {"PD": 2.4, "SD": 4.6, "PR": 5.9, "CR": 6.5, "NE": 3.5}
"""Median tumour SUV (tracer-only, 120 h) a patient's lesions scatter around, by BOR."""

VISIBILITY_CONTRAST = 3.0
"""A lesion is visible when recovery x SUV >= this x the mean of blood pool and surrounding
tissue (tuned so that about 30 % of FDG-positive lesions are visible with tracer only and
about 10 % after a predose; the study saw 25 % and 13.5 %)."""

NODE_CONTRAST = 2.3
"""Median uptake of FDG-negative nodes relative to the blood pool (tracer-only); the default
of ``TrialConfig.node_contrast`` (the atezolizumab preset's lymphoid tissue is higher)."""

_BASE_DATE = datetime(2018, 4, 9, 9, 0)
_START_BY_SERIES = {"tracer-only": 0, "predose": 1}
_ORGAN_TISSUE = {organ: tissue for tissue, organ in TISSUE_ORGAN.items()}


@dataclass(frozen=True)
class ScanRecord:
    """One generated scan.

    Attributes
    ----------
    patient, series : str
    nominal_hours : float, hours
        Scheduled time after injection (folder name).
    hours_pi : float, hours
        Actual interval from injection to scan start.
    vendor : str
    pet_dir, ct_dir, lesion_map : Path
    """

    patient: str
    series: str
    nominal_hours: float
    hours_pi: float
    vendor: str
    pet_dir: Path
    ct_dir: Path
    lesion_map: Path


@dataclass(frozen=True)
class TrialManifest:
    """What :func:`generate_trial` wrote.

    Attributes
    ----------
    outdir : Path
    preset : str
    seed : int
    patients : tuple of str
    scans : tuple of ScanRecord
    tables : dict of str to Path
        ``clinical``, ``lesions``, ``scans``, ``adverse_events``, ``blood_samples``,
        ``counter_calibration``, ``fdg_scans``, ``truth_organs``, ``truth_lesions``,
        ``truth_blood``,
        ``truth_kinetics``,
        ``study`` (the ``study.toml`` manifest).
    """

    outdir: Path
    preset: str
    seed: int
    patients: tuple[str, ...]
    scans: tuple[ScanRecord, ...]
    tables: dict[str, Path]


@dataclass(frozen=True)
class _PatientModel:
    pseudonym: str
    index: int
    body: Patient
    clinical_row: int
    vendor: str
    lesions: tuple[Lesion, ...]
    organ_scale: dict[str, float]
    tumour_suv120: dict[int, float]
    node_level: dict[int, float]
    tumour_type: str = ""
    bor: str = ""
    level_suv120: float = math.nan


_ROW_KEYS = (
    "scans",
    "truth_organs",
    "truth_lesions",
    "blood_samples",
    "truth_blood",
    "truth_kinetics",
    "fdg_scans",
)
KINETICS_TRUTH_COLUMNS = ("patient", "series", "voi", "kind", "ki_ul_per_g_per_h", "vt_ml_per_g")
"""Columns of ``truth/kinetics.csv``."""


@dataclass
class _PatientOutput:
    model: _PatientModel
    scans: list[ScanRecord] = field(default_factory=list)
    rows: dict[str, list[dict[str, object]]] = field(
        default_factory=lambda: {key: [] for key in _ROW_KEYS}
    )


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _cps_factor(cps: str) -> float:
    try:
        return 0.85 + 0.3 * float(cps) / 100.0
    except ValueError:
        return 1.0


def lesion_field_of_view_mm(config: TrialConfig) -> tuple[np.ndarray, np.ndarray]:
    """LPS corners (mm) of the box every synthetic lesion lies in whole.

    The voxel-centre extent common to the PET and CT grids, less one PET voxel (the largest
    spacing) on every side, so each lesion, its 1 cm³ sphere and its peak sphere are inside
    the field of view of both scans.
    """
    lows, highs = [], []
    grids = ((config.pet_shape, config.pet_spacing_mm), (config.ct_shape, config.ct_spacing_mm))
    for shape, spacing in grids:
        grid = VoxelGrid.centred(shape=shape, spacing_mm=spacing, top_z_mm=config.top_z_mm)
        z, y, x = grid.axes_mm()
        lows.append([x.min(), y.min(), z.min()])
        highs.append([x.max(), y.max(), z.max()])
    margin = max(config.pet_spacing_mm)
    return np.max(lows, axis=0) + margin, np.min(highs, axis=0) - margin


def _nearest_voxel_centre_mm(
    grid: VoxelGrid, point_mm: tuple[float, float, float]
) -> tuple[float, float, float]:
    """LPS centre (mm) of the voxel of ``grid`` nearest ``point_mm``.

    A lesion's 1 cm³ sphere (radius 6.2 mm) is centred there: on a coarse grid (8 mm voxels,
    half-diagonal 6.9 mm) a sphere centred between voxel centres can select no voxel at all.
    """
    affine = grid.affine
    index = np.linalg.solve(affine[:3, :3], np.asarray(point_mm) - affine[:3, 3])
    index = np.clip(np.rint(index), 0, np.asarray(grid.shape) - 1)
    centre = affine[:3, :3] @ index + affine[:3, 3]
    return float(centre[0]), float(centre[1]), float(centre[2])


def _make_patient(config: TrialConfig, index: int, seed: int) -> _PatientModel:
    pseudonym = config.pseudonyms[index]
    row = TABLE1[config.clinical_rows[index] - 1] if config.cohort == "durvalumab" else None
    cohort_row = COHORT[config.clinical_rows[index] - 1] if row is None else None
    sex = row.sex if row is not None else cohort_row.sex if cohort_row is not None else "M"
    rng = _rng(seed, index, 0)
    if sex == "F":
        height, weight = rng.normal(1.66, 0.06), rng.normal(66.0, 10.0)
    else:
        height, weight = rng.normal(1.78, 0.06), rng.normal(80.0, 12.0)
    body = Patient(
        height_m=round(float(np.clip(height, 1.52, 1.92)), 2),
        weight_kg=round(float(np.clip(weight, 45.0, 120.0)), 1),
        sex=sex,
    )
    lesions = place_lesions(
        body,
        n_tumours=config.tumours_per_patient[index],
        n_large=config.large_per_patient[index],
        n_nodes=config.nodes_per_patient[index],
        near_spleen=config.spleen_lesion_patient == pseudonym,
        rng=_rng(seed, index, 1),
        field_of_view_mm=lesion_field_of_view_mm(config),
    )
    rng = _rng(seed, index, 2)
    # per-patient organ variability: log-normal, sigma 0.08, clipped to +-2 sigma
    organ_scale = {
        organ: float(np.exp(np.clip(rng.normal(0.0, 0.08), -0.16, 0.16)))
        for organ in ORGAN_ANCHORS["tracer-only"]
    }
    if row is not None:
        level = BOR_LESION_SUV[row.bor] * _cps_factor(row.cps) * float(np.exp(rng.normal(0.0, 0.2)))
        sigma_lesion, tumour_type, bor = 0.5, "", row.bor
    elif cohort_row is not None:
        level = patient_level_suv(cohort_row, rng)
        sigma_lesion, tumour_type, bor = SIGMA_LESION, cohort_row.tumour_type, cohort_row.bor
    else:  # pragma: no cover - TrialConfig.cohort is one of the two
        raise InputError("unknown cohort", tag="cohort", value=config.cohort)
    tumour_suv120: dict[int, float] = {}
    node_level: dict[int, float] = {}
    for lesion in lesions:
        if lesion.near_spleen:
            tumour_suv120[lesion.number] = 5.0
        elif lesion.fdg_positive:
            tumour_suv120[lesion.number] = level * float(np.exp(rng.normal(0.0, sigma_lesion)))
        else:
            node_level[lesion.number] = config.node_contrast * float(np.exp(rng.normal(0.0, 0.3)))
    return _PatientModel(
        pseudonym=pseudonym,
        index=index,
        body=body,
        clinical_row=config.clinical_rows[index],
        vendor=config.vendors[index % len(config.vendors)],
        lesions=lesions,
        organ_scale=organ_scale,
        tumour_suv120=tumour_suv120,
        node_level=node_level,
        tumour_type=tumour_type,
        bor=bor,
        level_suv120=level,
    )


def _organ_value(model: _PatientModel, series: str, organ: str, hours: float) -> float:
    anchors = ORGAN_ANCHORS[series][organ]
    return float(interpolate_suv(hours, anchors)) * model.organ_scale[organ]


def _recovery(diameter_mm: float, fwhm_mm: float) -> float:
    return 1.0 - math.exp(-0.5 * (diameter_mm / (0.9 * fwhm_mm)) ** 2)


def _lesion_rim_suv(
    model: _PatientModel, lesion: Lesion, series: str, hours: float, scan_rng: np.random.Generator
) -> float:
    if lesion.fdg_positive:
        value = model.tumour_suv120[lesion.number] * float(
            interpolate_suv(hours, LESION_RELATIVE_ANCHORS)
        )
        return value * (PREDOSE_LESION_FACTOR if series == "predose" else 1.0)
    # FDG-negative node: follows the blood pool with unstable contrast between scans
    ratio = model.node_level[lesion.number] * float(np.exp(scan_rng.normal(0.0, 0.35)))
    if series == "predose":
        ratio *= 0.5
    return ratio * _organ_value(model, series, "blood_pool", hours)


def _suv_map(
    anatomy: Anatomy, model: _PatientModel, series: str, hours: float, rims: dict[int, float]
) -> np.ndarray:
    table = np.zeros(max(int(t) for t in Tissue) + 1, dtype=np.float64)
    for tissue, organ in TISSUE_ORGAN.items():
        table[int(tissue)] = _organ_value(model, series, organ, hours)
    suv = table[anatomy.tissue]
    lesion_table = np.zeros(max([*rims, 0]) + 1, dtype=np.float64)
    for number, value in rims.items():
        lesion_table[number] = value
    inside = anatomy.lesion_labels > 0
    suv[inside] = lesion_table[anatomy.lesion_labels[inside]]
    suv[anatomy.necrotic_core] *= NECROTIC_CORE_FRACTION
    return suv


def _host_tissue(anatomy: Anatomy, number: int) -> Tissue:
    values = anatomy.tissue[anatomy.lesion_labels == number]
    if values.size == 0:
        return Tissue.SOFT_TISSUE
    counts = np.bincount(values)
    counts[int(Tissue.AIR)] = 0
    return Tissue(int(np.argmax(counts))) if counts.any() else Tissue.SOFT_TISSUE


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
    return path


def _write_organ_masks(grid: VoxelGrid, anatomy: Anatomy, folder: Path) -> Path:
    """The patient's organ label map on the PET grid (``organs.nii.gz`` + ``organs.tsv``).

    Label ``n`` is organ ``ORGAN_NAMES[n - 1]``; lesion voxels belong to no organ (as in an
    organ segmentation of the CT). Used by the analysis for the distance of lesions to the
    spleen (spill-in), never measured.
    """
    labels = np.zeros(grid.shape, dtype=np.uint8)
    outside_lesions = anatomy.lesion_labels == 0
    for number, organ in enumerate(ORGAN_NAMES, start=1):
        tissue = _ORGAN_TISSUE.get(organ)
        if tissue is not None:
            labels[(anatomy.tissue == int(tissue)) & outside_lesions] = number
    folder.mkdir(parents=True, exist_ok=True)
    names = {number: organ for number, organ in enumerate(ORGAN_NAMES, start=1)}
    return write_label_map(grid.volume(labels, Unit.LABEL), folder / "organs.nii.gz", names)


def _hours_label(hours: float) -> str:
    return f"{hours:g}h"


def _generate_patient(
    config: TrialConfig, seed: int, index: int, out: Path, progress: Callable[[], None] | None
) -> _PatientOutput:
    """Generate every scan of one patient; return its table rows."""
    pet_grid = VoxelGrid.centred(
        shape=config.pet_shape, spacing_mm=config.pet_spacing_mm, top_z_mm=config.top_z_mm
    )
    ct_grid = VoxelGrid.centred(
        shape=config.ct_shape, spacing_mm=config.ct_spacing_mm, top_z_mm=config.top_z_mm
    )
    half_life_s = NUCLIDES["89Zr"].half_life_s
    model = _make_patient(config, index, seed)
    calibration = CounterCalibration()
    uid_seed = f"immunopet-synthetic-{config.name}-{seed}"
    result = _PatientOutput(model=model)
    scans = result.scans
    organ_rows = result.rows["truth_organs"]
    lesion_truth = result.rows["truth_lesions"]
    scan_rows = result.rows["scans"]
    blood_rows = result.rows["blood_samples"]
    blood_truth = result.rows["truth_blood"]
    sampled: set[tuple[str, str]] = set()
    pet_anatomy = build_anatomy(pet_grid, model.body, model.lesions)
    ct_anatomy = build_anatomy(ct_grid, model.body, model.lesions)
    organ_map = _write_organ_masks(pet_grid, pet_anatomy, out / "vois" / model.pseudonym)
    result.rows["fdg_scans"].append(
        _write_fdg_scan(config, seed, model, pet_grid, pet_anatomy, out, uid_seed)
    )
    for s_index, series, hours in _scan_plan(config, model):
        inj_rng = _rng(seed, model.index, 10 + s_index)
        first = _BASE_DATE + timedelta(days=23 * model.index)
        injection = first + timedelta(
            days=config.series_gap_days * s_index, minutes=int(inj_rng.integers(0, 120))
        )
        scan_rng = _rng(seed, model.index, 100 + s_index, round(hours * 10))
        offset_min = float(scan_rng.normal(0.0, 4.0 if hours < 6 else 25.0))
        scan_time = (injection + timedelta(hours=hours, minutes=offset_min)).replace(microsecond=0)
        hours_pi = (scan_time - injection).total_seconds() / 3600.0
        series_name: Series = "predose" if series == "predose" else "tracer-only"

        rims = {
            lesion.number: _lesion_rim_suv(model, lesion, series_name, hours_pi, scan_rng)
            for lesion in model.lesions
        }
        suv = _suv_map(pet_anatomy, model, series_name, hours_pi, rims)
        pet = simulate_pet(
            pet_grid.volume(suv, Unit.SUV_BW),
            injected_activity_bq=config.injected_activity_bq,
            weight_kg=model.body.weight_kg,
            hours_since_injection=hours_pi,
            half_life_s=half_life_s,
            frame_duration_s=config.frame_duration_s,
            scanner=config.scanner,
            rng=scan_rng,
        )
        folder = Path(model.pseudonym) / series / _hours_label(hours)
        acquisition = PetAcquisition(
            injection_datetime=injection,
            scan_datetime=scan_time,
            injected_activity_bq=config.injected_activity_bq,
            weight_kg=model.body.weight_kg,
            height_m=model.body.height_m,
            sex="F" if model.body.sex == "F" else "M",
            nuclide="89Zr",
            frame_duration_s=config.frame_duration_s,
            patient_name=f"SYNTHETIC^{model.pseudonym}",
            patient_id=f"SYN-{model.pseudonym}",
            series_number=1,
            series_description=f"PET 89Zr {series} {_hours_label(hours)}",
            uid_seed=uid_seed,
        )
        pet_dir = out / "dicom" / folder / "pet"
        ct_dir = out / "dicom" / folder / "ct"
        write_pet_series(pet, pet_dir, acquisition, vendor=model.vendor)  # type: ignore[arg-type]
        ct_rng = _rng(seed, model.index, 200 + s_index, round(hours * 10))
        write_ct_series(
            simulate_ct(ct_anatomy, scanner=config.scanner, rng=ct_rng), ct_dir, acquisition
        )

        # truth and VOIs
        for organ in ORGAN_NAMES:
            organ_rows.append(
                {
                    "patient": model.pseudonym,
                    "series": series,
                    "hours_pi": round(hours_pi, 4),
                    "nominal_hours": hours,
                    "organ": organ,
                    "suv_true": _organ_value(model, series_name, organ, hours_pi),
                }
            )
        blood = _organ_value(model, series_name, "blood_pool", hours_pi)
        visible_map = np.zeros(pet_grid.shape, dtype=np.uint16)
        spheres = []
        labels = pet_anatomy.lesion_labels
        for lesion in model.lesions:
            mask = labels == lesion.number
            n_voxels = int(mask.sum())
            suv_true = float(suv[mask].mean()) if n_voxels else float("nan")
            host = _host_tissue(pet_anatomy, lesion.number)
            host_suv = _organ_value(
                model, series_name, TISSUE_ORGAN.get(host, "soft_tissue"), hours_pi
            )
            background = 0.5 * (blood + host_suv)
            contrast = (
                _recovery(lesion.diameter_mm, config.scanner.fwhm_mm) * rims[lesion.number]
            ) / background
            visible = bool(n_voxels and contrast >= VISIBILITY_CONTRAST)
            if visible:
                visible_map[mask] = lesion.number
            elif lesion.fdg_positive:
                x, y, z = _nearest_voxel_centre_mm(pet_grid, lesion.centre_mm)
                spheres.append(
                    {
                        "lesion": lesion.number,
                        "x_mm": round(x, 2),
                        "y_mm": round(y, 2),
                        "z_mm": round(z, 2),
                        "volume_ml": 1.0,
                    }
                )
            lesion_truth.append(
                {
                    "patient": model.pseudonym,
                    "series": series,
                    "hours_pi": round(hours_pi, 4),
                    "nominal_hours": hours,
                    "lesion": lesion.number,
                    "diameter_mm": round(lesion.diameter_mm, 2),
                    "suv_true": suv_true,
                    "suv_rim": rims[lesion.number],
                    "host_tissue": TISSUE_ORGAN.get(host, "soft_tissue"),
                    "visible": visible,
                    "n_voxels": n_voxels,
                }
            )
        voi_dir = out / "vois" / folder
        voi_dir.mkdir(parents=True, exist_ok=True)
        lesion_map = write_nifti(
            pet_grid.volume(visible_map, Unit.LABEL), voi_dir / "lesions.nii.gz"
        )
        _write_csv(
            pd.DataFrame(spheres, columns=["lesion", "x_mm", "y_mm", "z_mm", "volume_ml"]),
            voi_dir / "lesion_spheres.csv",
        )
        points = organ_points_mm(model.body)
        _write_csv(
            pd.DataFrame(
                [
                    {"organ": o, "x_mm": p[0], "y_mm": p[1], "z_mm": p[2], "diameter_mm": 20.0}
                    for o, p in points.items()
                ]
            ),
            voi_dir / "organ_points.csv",
        )
        scans.append(
            ScanRecord(
                patient=model.pseudonym,
                series=series,
                nominal_hours=hours,
                hours_pi=hours_pi,
                vendor=model.vendor,
                pet_dir=pet_dir,
                ct_dir=ct_dir,
                lesion_map=lesion_map,
            )
        )
        scan_rows.append(
            {
                "patient": model.pseudonym,
                "series": series,
                "nominal_hours": hours,
                "hours_pi": round(hours_pi, 4),
                "injection_datetime": injection.isoformat(),
                "scan_datetime": scan_time.isoformat(),
                "injected_activity_bq": config.injected_activity_bq,
                "cold_mass_mg": 750.0 if series == "predose" else 0.0,
                "vendor": model.vendor,
                "weight_kg": model.body.weight_kg,
                "height_m": model.body.height_m,
                "sex": model.body.sex,
                "pet_dir": str(pet_dir.relative_to(out)),
                "ct_dir": str(ct_dir.relative_to(out)),
                "lesion_map": str(lesion_map.relative_to(out)),
                "lesion_spheres": str((voi_dir / "lesion_spheres.csv").relative_to(out)),
                "organ_points": str((voi_dir / "organ_points.csv").relative_to(out)),
                "organ_masks": str(organ_map.relative_to(out)),
            }
        )
        # blood samples once per series (with its first scan)
        if (model.pseudonym, series) not in sampled:
            sampled.add((model.pseudonym, series))
            schedule = BloodSchedule.for_protocol(model.index < config.extensive_patients)
            rows, truth = make_blood_samples(
                patient=model.pseudonym,
                series=series,
                injection=injection,
                injected_activity_bq=config.injected_activity_bq,
                weight_kg=model.body.weight_kg,
                schedule=schedule,
                blood_pool_suv=tuple(
                    _organ_value(model, series_name, "blood_pool", h) for h in schedule.hours
                ),
                calibration=calibration,
                rng=_rng(seed, model.index, 300 + s_index),
            )
            blood_rows.extend(rows)
            blood_truth.extend(truth)
        if progress is not None:
            progress()
    result.rows["truth_kinetics"].extend(_kinetics_truth(model, scans, lesion_truth))
    return result


def _write_fdg_scan(
    config: TrialConfig,
    seed: int,
    model: _PatientModel,
    grid: VoxelGrid,
    anatomy: Anatomy,
    out: Path,
    uid_seed: str,
) -> dict[str, object]:
    """Write the patient's baseline FDG PET and its lesion label map; its ``fdg_scans`` row.

    The FDG injection is :data:`~immunopet.synthetic.fdg.FDG_DAYS_BEFORE` days before the
    first 89Zr injection, the scan about 60 min after it (18F in the header); every lesion is
    in the label map (the reader outlines them on the FDG PET/CT), FDG-negative ones too.
    """
    rng = _rng(seed, model.index, 400)
    first = _BASE_DATE + timedelta(days=23 * model.index - FDG_DAYS_BEFORE)
    injection = first - timedelta(minutes=int(rng.integers(30, 90)))
    scan_time = injection + timedelta(minutes=round(float(rng.normal(60.0, 5.0))))
    hours_pi = (scan_time - injection).total_seconds() / 3600.0
    activity = round(FDG_ACTIVITY_BQ_PER_KG * model.body.weight_kg, -6)
    suv = fdg_suv_map(anatomy, fdg_lesion_suv(model.lesions, rng))
    pet = simulate_pet(
        grid.volume(suv, Unit.SUV_BW),
        injected_activity_bq=activity,
        weight_kg=model.body.weight_kg,
        hours_since_injection=hours_pi,
        half_life_s=NUCLIDES["18F"].half_life_s,
        frame_duration_s=FDG_FRAME_DURATION_S,
        scanner=config.scanner,
        rng=rng,
    )
    acquisition = PetAcquisition(
        injection_datetime=injection,
        scan_datetime=scan_time,
        injected_activity_bq=activity,
        weight_kg=model.body.weight_kg,
        height_m=model.body.height_m,
        sex="F" if model.body.sex == "F" else "M",
        nuclide="18F",
        frame_duration_s=FDG_FRAME_DURATION_S,
        patient_name=f"SYNTHETIC^{model.pseudonym}",
        patient_id=f"SYN-{model.pseudonym}",
        series_number=1,
        series_description="PET FDG baseline",
        uid_seed=uid_seed,
    )
    pet_dir = out / "dicom" / model.pseudonym / "fdg" / "pet"
    write_pet_series(pet, pet_dir, acquisition, vendor=model.vendor)  # type: ignore[arg-type]
    voi_dir = out / "vois" / model.pseudonym / "fdg"
    voi_dir.mkdir(parents=True, exist_ok=True)
    labels = anatomy.lesion_labels.astype(np.uint16)
    lesion_map = write_nifti(grid.volume(labels, Unit.LABEL), voi_dir / "lesions.nii.gz")
    return {
        "patient": model.pseudonym,
        "injection_datetime": injection.isoformat(),
        "scan_datetime": scan_time.isoformat(),
        "hours_pi": round(hours_pi, 4),
        "injected_activity_bq": activity,
        "pet_dir": str(pet_dir.relative_to(out)),
        "lesion_map": str(lesion_map.relative_to(out)),
    }


def _kinetics_truth(
    model: _PatientModel, scans: list[ScanRecord], lesion_truth: list[dict[str, object]]
) -> list[dict[str, object]]:
    """True Patlak Ki and VT of the organs and FDG-positive tumours for each scanned series.

    A tumour's truth refers to the mean over its voxels (the VOI of a visible lesion): its
    rim curve times the constant ratio of that mean to the rim (necrotic core). FDG-negative
    nodes follow the blood pool with a contrast redrawn per scan and have no kinetic truth.
    """
    rows: list[dict[str, object]] = []
    blood_scale = model.organ_scale["blood_pool"]
    for series in dict.fromkeys(scan.series for scan in scans):
        series_name: Series = "predose" if series == "predose" else "tracer-only"
        for organ in KINETIC_ORGANS:
            ki, vt = true_kinetics(
                series_name,
                organ,
                tissue_scale=model.organ_scale[organ],
                blood_scale=blood_scale,
            )
            rows.append(
                {
                    "patient": model.pseudonym,
                    "series": series,
                    "voi": organ,
                    "kind": "organ",
                    "ki_ul_per_g_per_h": ki,
                    "vt_ml_per_g": vt,
                }
            )
        for lesion in model.lesions:
            if not lesion.fdg_positive:
                continue
            voxel_ratio = next(
                (
                    float(row["suv_true"]) / float(row["suv_rim"])  # type: ignore[arg-type]
                    for row in lesion_truth
                    if row["series"] == series
                    and row["lesion"] == lesion.number
                    and int(row["n_voxels"]) > 0  # type: ignore[call-overload]
                ),
                1.0,
            )
            ki, vt = true_kinetics(
                series_name,
                "tumour",
                tissue_scale=model.tumour_suv120[lesion.number] * voxel_ratio,
                blood_scale=blood_scale,
            )
            rows.append(
                {
                    "patient": model.pseudonym,
                    "series": series,
                    "voi": str(lesion.number),
                    "kind": "lesion",
                    "ki_ul_per_g_per_h": ki,
                    "vt_ml_per_g": vt,
                }
            )
    return rows


def _scan_plan(config: TrialConfig, model: _PatientModel) -> list[tuple[int, str, float]]:
    plan = []
    for s_index, series in enumerate(config.series):
        if s_index > 0 and model.pseudonym in config.without_predose:
            continue
        for hours in config.hours_for(model.index):
            if (model.pseudonym, series, hours) not in config.missing_scans:
                plan.append((s_index, series, hours))
    return plan


def _run_patient(args: tuple[TrialConfig, int, int, Path]) -> _PatientOutput:
    config, seed, index, out = args
    return _generate_patient(config, seed, index, out, None)


def generate_trial(
    outdir: str | Path,
    *,
    preset: Literal["tiny", "study", "atezolizumab"] | TrialConfig = "tiny",
    seed: int = 0,
    progress: bool = False,
    workers: int = 1,
) -> TrialManifest:
    """Generate a synthetic 89Zr immuno-PET trial into ``outdir``.

    Parameters
    ----------
    outdir : str or Path
        Output folder (created; existing files of the same names are overwritten).
    preset : {"tiny", "study", "atezolizumab"} or TrialConfig
        Design; see :mod:`immunopet.synthetic.presets`.
    seed : int
        Same seed, same files (pixel data and UIDs), whatever ``workers`` is.
    progress : bool
        Show a tqdm progress bar over scans.
    workers : int
        Patients generated in parallel processes (1 = in this process).

    Returns
    -------
    TrialManifest

    Raises
    ------
    InputError
        Unknown preset name or ``workers`` < 1.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise InputError(
                "unknown preset", tag="preset", value=preset, expected=" or ".join(PRESETS)
            )
        config = PRESETS[preset]
    else:
        config = preset
    if workers < 1:
        raise InputError("need at least one worker", tag="workers", value=workers, expected=">= 1")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    n_patients = len(config.clinical_rows)
    n_scans = sum(
        len(_scan_plan(config, _make_patient(config, i, seed))) for i in range(n_patients)
    )
    bar = tqdm(total=n_scans, desc="synth", unit="scan", disable=not progress)
    if workers == 1:
        outputs = [
            _generate_patient(config, seed, i, out, lambda: bar.update(1))
            for i in range(n_patients)
        ]
    else:
        jobs = [(config, seed, i, out) for i in range(n_patients)]
        outputs = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for output in pool.map(_run_patient, jobs):
                bar.update(len(output.scans))
                outputs.append(output)
    bar.close()
    rows: dict[str, list[dict[str, object]]] = {key: [] for key in _ROW_KEYS}
    for output in outputs:
        for key in _ROW_KEYS:
            rows[key].extend(output.rows[key])
    tables = _write_tables(
        out, config, seed, [o.model for o in outputs], rows, CounterCalibration()
    )
    manifest = TrialManifest(
        outdir=out,
        preset=config.name,
        seed=seed,
        patients=tuple(o.model.pseudonym for o in outputs),
        scans=tuple(scan for o in outputs for scan in o.scans),
        tables=tables,
    )
    tables["study"] = write_trial_manifest(manifest)
    return manifest


_README = """Synthetic 89Zr immuno-PET trial (immunopet.synthetic), preset {preset}, seed {seed}.
All data are simulated. Patient names/IDs are pseudonyms (SYNTHETIC^P01 / SYN-P01).

dicom/<patient>/<series>/<hours>h/pet/   PET, one file per slice, Bq/mL (Philips: CNTS)
                                         decay-corrected to scan start; vendor flavour per
                                         patient (siemens, ge, philips). Injection date-time
                                         is days before the scan (89Zr, T1/2 78.41 h).
dicom/<patient>/<series>/<hours>h/ct/    low-dose CT (HU) on its own grid, same frame of
                                         reference.
vois/<patient>/<series>/<hours>h/lesions.nii.gz      label map on the PET grid, label value =
                                         lesion number (stable across scans), only lesions a
                                         reader would delineate (visible uptake).
vois/<patient>/<series>/<hours>h/lesion_spheres.csv  FDG-positive lesions without visible
                                         uptake: centre (LPS mm) of a 1 cm3 sphere.
vois/<patient>/<series>/<hours>h/organ_points.csv    centre (LPS mm) of a 2 cm sphere per
                                         organ: blood_pool (aorta), liver, spleen, kidney, lung,
                                         bone_marrow, brain.
vois/<patient>/organs.nii.gz             organ label map on the PET grid (names in organs.tsv;
                                         lesion voxels unlabelled): the organs themselves, for
                                         the distance of lesions to the spleen (spill-in).
study.toml            the study manifest (immunopet validate / load_manifest).
scans.csv             one row per scan: times, activity, body size, vendor, paths.
fdg_scans.csv         the baseline FDG PET per patient (dicom/<patient>/fdg/pet, 18F, about
                      60 min after the FDG injection, a week before the first 89Zr injection;
                      no CT) and its lesion label map vois/<patient>/fdg/lesions.nii.gz (every
                      lesion, FDG-avid as lesions.csv fdg_positive says).
lesions.csv           one row per lesion: site, diameter_mm (equal-volume sphere),
                      long_axis_mm, centre, fdg_positive (baseline FDG), near_spleen, necrotic.
clinical.csv          Table 1 of the durvalumab study (seed 000) with pseudonyms; NR is
                      censored (event 0) at an assumed follow-up; see the note column.
adverse_events.csv    patient, CTCAE v4.0 term, grade; counts reproduce Table 2.
blood_samples.csv     whole blood and plasma cpm/mL counted at counting_datetime (decay
                      correct to sample and injection); counter_calibration.json gives
                      cpm per Bq.
truth/organs.csv      true organ SUVmean per scan (before blur and noise).
truth/lesions.csv     true lesion SUVmean per scan (mean over the lesion's voxels before blur
                      and noise), whether it was visible, its rim SUV.
truth/blood.csv       true blood-pool SUV and plasma %IA/L per blood sample.
truth/kinetics.csv    true Patlak Ki (uL/g/h) and VT (mL/g) per patient, series and organ or
                      FDG-positive tumour (voi = lesion number), at a tissue density of
                      1 g/mL: the irreversible two-tissue compartment model fitted to the
                      synthetic curves (immunopet.synthetic.kinetics).
Series: tracer-only (first injection), predose (750 mg unlabelled antibody before the tracer,
{gap} days later). hours_pi = actual hours after injection; nominal_hours = schedule.
"""


_README_ATEZOLIZUMAB = """
Preset atezolizumab (seed 001 design): one injection (tracer-only), no predose; 22 patients,
tumour_type bladder / NSCLC / TNBC in clinical.csv (not Table 1 of the durvalumab study: the
columns tps_percent, cps_percent, rnaseq_score, bor, pfs/os are drawn, see
immunopet.synthetic.atezolizumab). truth/patients.csv: each patient's tumour type, BOR and
median true tumour SUV (120 h reference; day 7 = 0.95 of it). truth/heterogeneity.csv: the
variance components of log tumour uptake the generator draws from.
"""


def _write_tables(
    out: Path,
    config: TrialConfig,
    seed: int,
    models: list[_PatientModel],
    rows: dict[str, list[dict[str, object]]],
    calibration: CounterCalibration,
) -> dict[str, Path]:
    pseudonyms = tuple(m.pseudonym for m in models)
    tables: dict[str, Path] = {}
    tables["scans"] = _write_csv(pd.DataFrame(rows["scans"]), out / "scans.csv")
    tables["fdg_scans"] = _write_csv(pd.DataFrame(rows["fdg_scans"]), out / "fdg_scans.csv")
    lesion_rows = [
        {
            "patient": m.pseudonym,
            "lesion": lesion.number,
            "site": lesion.site,
            "diameter_mm": round(lesion.diameter_mm, 2),
            "long_axis_mm": round(lesion.long_axis_mm, 2),
            "x_mm": round(lesion.centre_mm[0], 2),
            "y_mm": round(lesion.centre_mm[1], 2),
            "z_mm": round(lesion.centre_mm[2], 2),
            "fdg_positive": lesion.fdg_positive,
            "near_spleen": lesion.near_spleen,
            "necrotic": lesion.necrotic,
        }
        for m in models
        for lesion in m.lesions
    ]
    tables["lesions"] = _write_csv(pd.DataFrame(lesion_rows), out / "lesions.csv")
    if config.cohort == "atezolizumab":
        sheet = make_cohort_sheet(pseudonyms, _rng(seed, 8888))
        tables["truth_heterogeneity"] = _write_csv(
            heterogeneity_truth(), out / "truth" / "heterogeneity.csv"
        )
        tables["truth_patients"] = _write_csv(
            pd.DataFrame(
                [
                    {
                        "patient": m.pseudonym,
                        "tumour_type": m.tumour_type,
                        "bor": m.bor,
                        "level_suv120": m.level_suv120,
                    }
                    for m in models
                ]
            ),
            out / "truth" / "patients.csv",
        )
    else:
        sheet = make_clinical_sheet(pseudonyms, config.clinical_rows)
    tables["clinical"] = _write_csv(sheet, out / "clinical.csv")
    events = draw_adverse_events(pseudonyms, _rng(seed, 9999))
    tables["adverse_events"] = _write_csv(events, out / "adverse_events.csv")
    tables["blood_samples"] = _write_csv(
        pd.DataFrame(rows["blood_samples"]), out / "blood_samples.csv"
    )
    calibration_path = out / "counter_calibration.json"
    calibration_path.write_text(
        json.dumps(
            {
                "nuclide": calibration.nuclide,
                "half_life_s": calibration.half_life_s,
                "cpm_per_bq": calibration.cpm_per_bq,
                "counts": "net counts per minute per mL, background subtracted",
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    tables["counter_calibration"] = calibration_path
    tables["truth_organs"] = _write_csv(
        pd.DataFrame(rows["truth_organs"]), out / "truth" / "organs.csv"
    )
    tables["truth_lesions"] = _write_csv(
        pd.DataFrame(rows["truth_lesions"]), out / "truth" / "lesions.csv"
    )
    tables["truth_blood"] = _write_csv(
        pd.DataFrame(rows["truth_blood"]), out / "truth" / "blood.csv"
    )
    tables["truth_kinetics"] = _write_csv(
        pd.DataFrame(rows["truth_kinetics"], columns=list(KINETICS_TRUTH_COLUMNS)),
        out / "truth" / "kinetics.csv",
    )
    readme = _README.format(preset=config.name, seed=seed, gap=config.series_gap_days)
    if config.cohort == "atezolizumab":
        readme += _README_ATEZOLIZUMAB
    (out / "README.txt").write_text(readme)
    return tables
