"""The per-scan job: PET -> SUV -> VOIs -> metrics -> table rows.

:func:`process_scan` is pure: it reads the scan's files and returns a :class:`ScanResult`
(one row for the ``scans`` table, one row per VOI for the ``measurements`` table); it writes
nothing, so it can run in any worker process and only the orchestrator writes results.

Steps
-----
1. **SUV.** A DICOM PET (a folder with one PET series) goes through
   :func:`~immunopet.suv.volume.read_suv_volume` with the scan's overrides completed by the
   injection's (``injection_datetime``, ``injected_activity_bq``, ``weight_kg``; a value set on
   the scan wins). A NIfTI PET (``.nii``/``.nii.gz``) goes through the same entry point with
   its PET-BIDS sidecar (:func:`~immunopet.suv.sidecar.derive_suv_from_sidecar`), in any
   normalisation the sidecar allows; weight and activity overrides replace the sidecar's
   values; the sidecar's relative timing (``ScanStart`` - ``InjectionStart``) gives the hours
   after injection, and an injection date-time override only dates the row.
2. **VOIs** from every :class:`~immunopet.study.model.VoiSource` of the scan
   (:func:`~immunopet.voi.sources.load_vois`, the source's kind). Two VOIs of one kind with
   the same name in one scan are an error, as is a VOI whose kind nobody states.
3. **Metrics** per VOI (:func:`~immunopet.metrics.measure_voi`, IBSI definitions), the
   long-axis and 3-D diameters and centroid (:mod:`immunopet.voi.geometry`).
4. **Per-scan relations.** ``ratio_to_reference`` = lesion ``suv_peak`` / ``suv_peak`` of the
   organ VOI named ``settings.reference_organ`` in the same scan (NaN when that organ has no
   VOI, and for organs). ``distance_to_spill_in_organ_mm`` = smallest voxel-centre distance
   from the lesion to the organ named ``settings.spill_in_organ`` -- to the organ itself, not
   to its 2 cm reference sphere: to the label of that name in the scan's ``organ_masks``
   label map when the manifest gives one, otherwise to the region grown in the PET around
   the organ's VOI (:func:`~immunopet.voi.geometry.grow_organ_region`: connected voxels at
   or above 50 % of the VOI's mean); NaN when the scan has neither. A lesion within
   ``settings.spill_in_distance_mm`` gets a warning naming the organ, the distance and how
   the organ was found, and ``suggested_exclusion`` states the exclusion it suggests. The
   suggestion is recorded, never applied: only the study's exclusions exclude.
5. **Exclusions** of the study (patient + lesion name) mark lesion rows ``excluded`` with
   their reason; the row keeps its numbers.
6. **QC images**: the coronal maximum-intensity projection of the SUV image and each VOI's
   projected mask (:func:`~immunopet.study.qc.qc_images`), which the store keeps and the
   report's QC page draws (so the report reads no PET again).

Warnings emitted while a scan is processed (SUV fallbacks, resampling, border cuts, ...) are
recorded in the rows (``warnings``, texts joined by :data:`WARNING_SEPARATOR`) and in
:attr:`ScanResult.warnings`; they are not printed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from immunopet.errors import ImmunoPETWarning, InputError, collect_warnings
from immunopet.image import ImageVolume
from immunopet.io.masks import read_label_map
from immunopet.metrics import describe_voi
from immunopet.study.columns import (
    MEASUREMENT_COLUMNS,
    SCAN_COLUMNS,
    WARNING_SEPARATOR,
    ScanResult,
)
from immunopet.study.model import AnalysisSettings, Exclusion, ScanRef
from immunopet.study.qc import qc_images
from immunopet.study.timepoints import check_nominal_hours
from immunopet.suv.record import SuvOverrides
from immunopet.suv.volume import read_suv_volume
from immunopet.voi.geometry import (
    ORGAN_GROW_FRACTION,
    distance_to_mask_mm,
    grow_organ_region,
)
from immunopet.voi.sources import Voi, load_vois
from immunopet.voi.spheres import bounding_box_slices

__all__ = [
    "MEASUREMENT_COLUMNS",
    "SCAN_COLUMNS",
    "WARNING_SEPARATOR",
    "ScanResult",
    "merged_overrides",
    "process_scan",
]


@dataclass(frozen=True)
class _LoadedPet:
    volume: ImageVolume
    row: dict[str, Any]
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------- SUV
def merged_overrides(ref: ScanRef) -> SuvOverrides:
    """The scan's SUV overrides completed by its injection's (a value on the scan wins).

    Examples
    --------
    >>> from pathlib import Path
    >>> from immunopet.study.model import Injection, Scan
    >>> inj = Injection(series="tracer-only", weight_kg=70.0, injected_activity_bq=37e6)
    >>> scan = Scan(pet=Path("pet"), nominal_hours=120, overrides=SuvOverrides(weight_kg=68.0))
    >>> o = merged_overrides(ScanRef("P01", "tracer-only", 120, scan, inj))
    >>> o.weight_kg, o.injected_activity_bq
    (68.0, 37000000.0)
    """
    own = ref.scan.overrides
    injection = ref.injection
    return replace(
        own,
        injection_datetime=own.injection_datetime or injection.injection_datetime,
        injected_activity_bq=(
            own.injected_activity_bq
            if own.injected_activity_bq is not None
            else injection.injected_activity_bq
        ),
        weight_kg=own.weight_kg if own.weight_kg is not None else injection.weight_kg,
    )


def _scan_row(ref: ScanRef, settings: AnalysisSettings, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scan_id": ref.scan_id,
        "patient": ref.patient,
        "series": ref.series,
        "nominal_hours": float(ref.nominal_hours),
        "unlabelled_mass_mg": float(ref.injection.unlabelled_mass_mg),
        "normalisation": settings.normalisation,
    }
    row.update(values)
    return row


def _load_pet(ref: ScanRef, settings: AnalysisSettings) -> _LoadedPet:
    """The scan's PET as SUV through the one entry point (DICOM or NIfTI + sidecar)."""
    suv = read_suv_volume(
        ref.scan.pet, overrides=merged_overrides(ref), normalisation=settings.normalisation
    )
    d = suv.derivation
    row = _scan_row(
        ref,
        settings,
        hours_pi=d.hours_after_injection,
        injection_datetime=d.injection_datetime,
        scan_datetime=d.scan_datetime,
        manufacturer=d.manufacturer,
        units=d.units,
        decay_correction=d.decay_correction,
        branch=d.branch,
        suv_bw_factor=d.suv_bw_factor,
        weight_kg=d.weight_kg,
        injected_activity_bq=d.injected_activity_bq,
    )
    return _LoadedPet(volume=suv.volume, row=row, warnings=tuple(d.warnings))


# ---------------------------------------------------------------------------- VOIs
def _load_scan_vois(ref: ScanRef, volume: ImageVolume) -> list[Voi]:
    vois: list[Voi] = []
    seen: dict[tuple[str, str], str] = {}
    for source in ref.scan.vois:
        for voi in load_vois(source.path, reference=volume, kind=source.kind):
            if voi.kind is None:
                raise InputError(
                    f"scan {ref.scan_id}: VOI {voi.name!r}: kind unknown",
                    file=voi.source,
                    tag="kind",
                    value="missing",
                    expected="'lesion' or 'organ' (give the VOI source a kind)",
                )
            where = seen.get((voi.kind, voi.name))
            if where is not None:
                raise InputError(
                    f"scan {ref.scan_id}: two {voi.kind} VOIs named {voi.name!r} "
                    f"(in {where} and {voi.source})",
                    file=voi.source,
                    tag="voi",
                    value=voi.name,
                    expected=f"one {voi.kind} VOI per name in a scan",
                )
            seen[(voi.kind, voi.name)] = voi.source
            vois.append(voi)
    return vois


# ---------------------------------------------------------------------------- rows
_Box = tuple[slice, slice, slice]


def _box(voi: Voi) -> _Box:
    box = bounding_box_slices(voi.mask, (1, 1, 1))
    if box is None:
        raise InputError(f"VOI {voi.name!r} is empty", file=voi.source, tag="mask", value=0)
    return box


def _union(a: _Box, b: _Box) -> _Box:
    z, y, x = (slice(min(p.start, q.start), max(p.stop, q.stop)) for p, q in zip(a, b, strict=True))
    return (z, y, x)


def _measure(ref: ScanRef, pet: _LoadedPet, voi: Voi, settings: AnalysisSettings) -> dict[str, Any]:
    described = describe_voi(
        pet.volume,
        voi.mask,
        voi_name=f"{ref.scan_id} {voi.kind} {voi.name}",
        peak_radius_mm=settings.peak_radius_mm,
    )
    metrics, long_axis = described.metrics, described.long_axis_mm
    centroid = described.centroid_lps_mm
    peak = metrics.peak_local if settings.peak == "local" else metrics.peak_global
    return {
        "patient": ref.patient,
        "series": ref.series,
        "hours_pi": pet.row["hours_pi"],
        "voi": voi.name,
        "kind": voi.kind,
        "suv_mean": metrics.mean,
        "suv_max": metrics.max,
        "suv_peak": peak,
        "volume_ml": metrics.volume_ml,
        "long_axis_mm": long_axis,
        "scan_id": ref.scan_id,
        "nominal_hours": float(ref.nominal_hours),
        "suv_min": metrics.min,
        "suv_sd": metrics.sd,
        "suv_peak_local": metrics.peak_local,
        "suv_peak_global": metrics.peak_global,
        "n_voxels": metrics.n_voxels,
        "total_activity": metrics.total_activity,
        "diameter_3d_mm": described.diameter_3d_mm,
        "centroid_x_mm": centroid[0],
        "centroid_y_mm": centroid[1],
        "centroid_z_mm": centroid[2],
        "method": voi.method,
        "source": voi.source,
        "measurable": (long_axis >= settings.min_long_axis_mm) if voi.kind == "lesion" else None,
        "ratio_to_reference": math.nan,
        "distance_to_spill_in_organ_mm": math.nan,
        "excluded": False,
        "exclusion_reason": None,
        "suggested_exclusion": None,
        "warnings": list(voi.warnings) + list(metrics.warnings),
    }


def _relate(
    ref: ScanRef,
    volume: ImageVolume,
    vois: Sequence[Voi],
    boxes: Sequence[_Box],
    rows: list[dict[str, Any]],
    settings: AnalysisSettings,
    exclusions: Sequence[Exclusion],
) -> None:
    organs = {
        voi.name: (voi, row, box)
        for voi, row, box in zip(vois, rows, boxes, strict=True)
        if voi.kind == "organ"
    }
    reference = organs.get(settings.reference_organ)
    lesions = [(voi, row, box) for voi, row, box in zip(vois, rows, boxes, strict=True)]
    lesions = [item for item in lesions if item[0].kind == "lesion"]
    organ = _spill_in_organ(ref, volume, organs, settings) if lesions else None
    if lesions and reference is None:
        warnings.warn(
            f"{ref.scan_id}: no organ VOI named {settings.reference_organ!r} "
            f"(settings.reference_organ; organs: {', '.join(sorted(organs)) or 'none'}): the "
            "lesions have no ratio_to_reference",
            ImmunoPETWarning,
            stacklevel=2,
        )
    if lesions and organ is None:
        warnings.warn(
            f"{ref.scan_id}: spill-in not checked: no organ VOI or organ-mask label named "
            f"{settings.spill_in_organ!r} (settings.spill_in_organ)",
            ImmunoPETWarning,
            stacklevel=2,
        )
    excluded = {e.lesion: e.reason for e in exclusions if e.patient == ref.patient}
    for voi, row, box in lesions:
        if reference is not None:
            row["ratio_to_reference"] = row["suv_peak"] / reference[1]["suv_peak"]
        if organ is not None:
            organ_mask, organ_box, how = organ
            both = _union(box, organ_box)
            distance = distance_to_mask_mm(volume.crop(both), voi.mask[both], organ_mask[both])
            row["distance_to_spill_in_organ_mm"] = distance
            if distance <= settings.spill_in_distance_mm + 1e-9:
                suggestion = (
                    f"spill-in from the {settings.spill_in_organ} ({distance:.1f} mm from it)"
                )
                row["suggested_exclusion"] = suggestion
                row["warnings"].append(
                    f"{ref.scan_id}: lesion {voi.name} lies {distance:.1f} mm from the "
                    f"{settings.spill_in_organ} ({how}; warning distance "
                    f"{settings.spill_in_distance_mm:g} mm): its uptake may include spill-in; "
                    f"exclusion suggested ({suggestion}), "
                    + (
                        "and the study excludes it"
                        if voi.name in excluded
                        else "not applied: add an [[exclusions]] entry to apply it"
                    )
                )
        if voi.name in excluded:
            row["excluded"] = True
            row["exclusion_reason"] = excluded[voi.name]


def _spill_in_organ(
    ref: ScanRef,
    volume: ImageVolume,
    organs: dict[str, tuple[Voi, dict[str, Any], _Box]],
    settings: AnalysisSettings,
) -> tuple[np.ndarray, _Box, str] | None:
    """The spill-in organ's mask, its box and how it was found; None when unknown.

    From the scan's organ label map (the label named ``settings.spill_in_organ``) when the
    manifest gives one; otherwise the region grown in the PET around that organ's VOI
    (:func:`~immunopet.voi.geometry.grow_organ_region`); None when neither exists.
    """
    name = settings.spill_in_organ
    if ref.scan.organ_masks is not None:
        label_map = read_label_map(ref.scan.organ_masks, reference=volume)
        if name in label_map.names.values():
            mask = label_map.mask_by_name(name)
            box = bounding_box_slices(mask, (1, 1, 1))
            if box is not None:
                return mask, box, "the organ mask"
        warnings.warn(
            f"{ref.scan.organ_masks}: no voxel labelled {name!r}; the distance to the {name} "
            "is measured to the region grown around its VOI instead",
            ImmunoPETWarning,
            stacklevel=2,
        )
    seed = organs.get(name)
    if seed is None:
        return None
    mask = grow_organ_region(volume, seed[0].mask)
    box = bounding_box_slices(mask, (1, 1, 1))
    if box is None:  # pragma: no cover - the region holds the seed
        return None
    how = f"region grown in the PET from the {name} VOI at {ORGAN_GROW_FRACTION:.0%} of its mean"
    return mask, box, how


def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def process_scan(
    ref: ScanRef,
    settings: AnalysisSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
) -> ScanResult:
    """Measure every VOI of one scan (reads files, writes nothing).

    Parameters
    ----------
    ref : ScanRef
        The scan, with paths that exist as given (the runner resolves them against the
        study root).
    settings : AnalysisSettings
        Normalisation, peak choice and radius, measurability threshold, reference and
        spill-in organs.
    exclusions : sequence of Exclusion
        The study's exclusions; those of ``ref.patient`` mark lesion rows.

    Returns
    -------
    ScanResult

    Raises
    ------
    SuvError, DicomInputError, GeometryError, InputError
        When the PET cannot be read or converted to SUV, a VOI cannot be read or lies outside
        the field of view, two VOIs of one kind share a name, or a VOI has no kind; each
        message names the file (and the scan for VOI-name problems).
    """
    with collect_warnings() as caught:
        pet = _load_pet(ref, settings)
        check_nominal_hours(ref.nominal_hours, pet.row["hours_pi"], file=ref.scan.pet)
        vois = _load_scan_vois(ref, pet.volume)
        boxes = [_box(voi) for voi in vois]
        rows = [_measure(ref, pet, voi, settings) for voi in vois]
        _relate(ref, pet.volume, vois, boxes, rows, settings, exclusions)
        qc = qc_images(pet.volume, {f"{voi.kind} {voi.name}": voi.mask for voi in vois})
    row_notes = [_unique(row["warnings"]) for row in rows]
    recorded = set(pet.warnings).union(*row_notes)
    emitted = [note for note in caught if note not in recorded]
    scan_notes = _unique([*pet.warnings, *emitted])
    for row, notes in zip(rows, row_notes, strict=True):
        row["warnings"] = WARNING_SEPARATOR.join(notes)
    scan_row = dict(pet.row)
    scan_row["n_vois"] = len(rows)
    scan_row["warnings"] = WARNING_SEPARATOR.join(scan_notes)
    all_notes = _unique(scan_notes + [note for notes in row_notes for note in notes])
    return ScanResult(
        scan_id=ref.scan_id,
        scan={column: scan_row.get(column) for column in SCAN_COLUMNS},
        measurements=tuple({column: row[column] for column in MEASUREMENT_COLUMNS} for row in rows),
        warnings=tuple(all_notes),
        qc=qc,
    )
