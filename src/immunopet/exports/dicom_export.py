"""One DICOM SEG and one SR (TID 1500) per measured scan: the results back to PACS and viewers.

:func:`export_scan` turns one scan's PET series, VOIs and measurement rows into a SEG
(:mod:`immunopet.exports.dicom_seg`) and an SR that refers to it
(:mod:`immunopet.exports.dicom_sr`); ``immunopet measure --sr`` uses it directly.
:func:`export_study_dicom` does it for every scan of a study that the results store holds
measurements for (``immunopet export-dicom``).

The values written are the stored measurement rows (what ``measurements.csv`` shows). The masks
are those the rows were measured on: each scan's PET and VOI sources are read again exactly as
the pipeline reads them (same SUV overrides and normalisation, so threshold VOIs grow the same
way), and a VOI whose voxel count differs from the stored ``n_voxels`` -- inputs changed since
the run -- is refused. Scans measured on a NIfTI PET have no DICOM series to refer to and are
skipped, with a note; so are scans without stored measurements (failed or not run).

Each patient's baseline FDG scan (``[patients.fdg]``) is exported the same way from the
results store's ``fdg_measurements`` (:mod:`immunopet.study.fdg`): its lesion VOIs read again
as that module reads them (lesion sources only, on the FDG PET with its own overrides), matched
by lesion name and voxel count; the SR holds SUVmean, SUVmax, the study's SUVpeak kind (the
one the table stores), volume and the hours after the FDG injection, with ``^18^Fluorine`` and
``Fluorodeoxyglucose F^18^`` as the tracer (see :mod:`immunopet.exports.dicom_sr`). Lesions
are flagged excluded as the run flagged them (the row's ``excluded``); on an FDG scan, as the
manifest's ``[[exclusions]]`` name them (the FDG table has no flag).

Layout: ``OUTDIR/<patient>/<series>/<hours>h/seg.dcm`` and ``sr.dcm``, and
``OUTDIR/<patient>/fdg/seg.dcm`` and ``sr.dcm`` for the FDG scan (path parts reduced to
letters, digits, ``.``, ``_`` and ``-``). Each file is written to a temporary name and renamed
into place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import highdicom as hd
import pandas as pd
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from immunopet.errors import InputError
from immunopet.exports.dicom_seg import SegmentInfo, build_seg
from immunopet.exports.dicom_sr import (
    FDG_RADIOPHARMACEUTICAL,
    ScanContext,
    VoiValues,
    build_sr,
)
from immunopet.io.atomic import atomic_path
from immunopet.io.dicom import DicomSeries, find_one_pet
from immunopet.study.model import Patient, Scan, ScanRef, Study, VoiSource
from immunopet.study.pipeline import merged_overrides
from immunopet.study.store import DATABASE_NAME, ResultsStore
from immunopet.suv.volume import read_suv_volume
from immunopet.voi.sources import Voi, load_vois

__all__ = [
    "FDG_FOLDER",
    "DicomExport",
    "ExportedScan",
    "export_scan",
    "export_study_dicom",
    "header_radiopharmaceutical",
    "write_dicom",
]

FDG_FOLDER = "fdg"
"""Folder (under the patient's) and scan id suffix of the baseline FDG scan's files."""

_VALUE_COLUMNS = (
    "suv_mean",
    "suv_max",
    "suv_peak_local",
    "suv_peak_global",
    "volume_ml",
    "long_axis_mm",
)


@dataclass(frozen=True)
class ExportedScan:
    """The files written for one scan.

    Attributes
    ----------
    scan_id : str
        ``"P01/tracer-only/120h"``, or ``"P01/fdg"`` for the baseline FDG scan.
    seg : Path
    sr : Path
    n_vois : int
    """

    scan_id: str
    seg: Path
    sr: Path
    n_vois: int


@dataclass(frozen=True)
class DicomExport:
    """What :func:`export_study_dicom` did.

    Attributes
    ----------
    scans : tuple of ExportedScan
    notes : tuple of str
        Scans skipped, and why.
    """

    scans: tuple[ExportedScan, ...]
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One line: scans exported, VOIs, scans skipped."""
        n_vois = sum(s.n_vois for s in self.scans)
        text = f"DICOM export: {len(self.scans)} scans, {n_vois} VOIs (one SEG + one SR per scan)"
        return text + (f"; {len(self.notes)} skipped" if self.notes else "")


def _context(
    study: Study,
    pseudonym: str,
    hours_pi: float | None,
    time_point: str,
    nuclide: str | None,
    *,
    radiopharmaceutical: Code | None = None,
) -> ScanContext:
    """The SR context of one scan: the study's settings and the scan's own values."""
    return ScanContext(
        pseudonym=pseudonym,
        normalisation=study.settings.normalisation,
        hours_pi=hours_pi,
        peak_radius_mm=study.settings.peak_radius_mm,
        reference_organ=study.settings.reference_organ,
        peak=study.settings.peak,
        time_point=time_point,
        nuclide=nuclide,
        radiopharmaceutical=radiopharmaceutical,
    )


_FDG_CODES = frozenset({("35321007", "SCT"), ("C-B1031", "SRT")})
"""(0054,0304) RadiopharmaceuticalCodeSequence codes of [18F]FDG (CID 4021, SNOMED and SRT)."""

_FDG_TEXT = re.compile(r"\bFDG\b|fluorodeoxyglucose|fludeoxyglucose", re.IGNORECASE)


def header_radiopharmaceutical(series: DicomSeries, nuclide: str | None) -> Code | None:
    """The CID 4021 radiopharmaceutical of a PET series, as far as its header says it.

    Only [18F]FDG is recognised: an 18F series whose first (0054,0016)
    RadiopharmaceuticalInformationSequence item has an FDG code in (0054,0304)
    RadiopharmaceuticalCodeSequence (SCT 35321007 or SRT C-B1031) or names FDG in (0018,0031)
    Radiopharmaceutical ("FDG", "Fluorodeoxyglucose", "Fludeoxyglucose"). Anything else (an
    antibody, another 18F tracer, no header) gives None: nothing is guessed.

    Parameters
    ----------
    series : DicomSeries
        The PET series (its first header is read).
    nuclide : str or None
        The canonical nuclide of the series' SUV derivation (``"18F"``, ``"89Zr"``).

    Returns
    -------
    pydicom.sr.coding.Code or None
        :data:`~immunopet.exports.dicom_sr.FDG_RADIOPHARMACEUTICAL` or None.
    """
    if nuclide != "18F" or not series.headers:
        return None
    sequence = series.headers[0].get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        return None
    item = sequence[0]
    for code in item.get("RadiopharmaceuticalCodeSequence") or ():
        key = (str(code.get("CodeValue", "")), str(code.get("CodingSchemeDesignator", "")))
        if key in _FDG_CODES:
            return FDG_RADIOPHARMACEUTICAL
    text = item.get("Radiopharmaceutical")
    if text is not None and _FDG_TEXT.search(str(text)):
        return FDG_RADIOPHARMACEUTICAL
    return None


def _number(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _values(segment: SegmentInfo, row: Mapping[str, Any], where: str) -> VoiValues:
    numbers = {}
    for column in _VALUE_COLUMNS:
        number = _number(row, column)
        if number is None:
            raise InputError(
                f"VOI {segment.label!r}: a measurement is missing",
                file=where,
                tag=column,
                value=str(row.get(column)),
                expected="a finite number",
            )
        numbers[column] = number
    return VoiValues(
        segment=segment,
        ratio_to_reference=_number(row, "ratio_to_reference"),
        excluded=_flag(row.get("excluded")),
        suggested_exclusion=_text(row.get("suggested_exclusion")),
        **numbers,
    )


def _flag(value: Any) -> bool | None:
    """A stored ``excluded`` value as a bool (None: the row does not say)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _text(value: Any) -> bool:
    """Whether a stored text (``suggested_exclusion``) says something."""
    return isinstance(value, str) and bool(value.strip())


def export_scan(
    series: DicomSeries,
    vois: Sequence[Voi],
    rows: Sequence[Mapping[str, Any]],
    context: ScanContext,
) -> tuple[hd.seg.Segmentation, hd.sr.Comprehensive3DSR]:
    """The SEG of the VOIs and the SR of their measurement rows, for one scan.

    Parameters
    ----------
    series : DicomSeries
        The PET series measured.
    vois : sequence of Voi
        The VOIs, on the series' grid.
    rows : sequence of mapping
        One per VOI, same order, with the columns of ``measurements``/``immunopet measure``:
        ``suv_mean``, ``suv_max``, ``suv_peak_local``, ``suv_peak_global``, ``volume_ml``,
        ``long_axis_mm`` and optionally ``ratio_to_reference``.
    context : ScanContext

    Returns
    -------
    (highdicom.seg.Segmentation, highdicom.sr.Comprehensive3DSR)

    Raises
    ------
    InputError, GeometryError, DicomInputError
        See :func:`~immunopet.exports.dicom_seg.build_seg` and
        :func:`~immunopet.exports.dicom_sr.build_sr`; a row without a value.
    """
    if len(rows) != len(vois):
        raise InputError(
            "VOIs and measurement rows differ in number",
            file=series.label,
            tag="rows",
            value=len(rows),
            expected=f"{len(vois)} (one per VOI)",
        )
    seg, segments = build_seg(vois, series, pseudonym=context.pseudonym)
    values = [
        _values(segment, row, series.label) for segment, row in zip(segments, rows, strict=True)
    ]
    return seg, build_sr(seg, values, series, context)


def write_dicom(dataset: Dataset, path: Path) -> Path:
    """Write a dataset (a highdicom SOP instance) through a temporary file renamed into place.

    The file is flushed to disk before the rename (:func:`~immunopet.io.atomic.atomic_path`):
    a crash leaves the previous file whole and no partial one.
    """
    with atomic_path(path) as temporary:
        dataset.save_as(temporary, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------- study
def _part(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", text).strip(".") or "_"


def _resolve_scan(scan: Scan, root: Path) -> Scan:
    pet = scan.pet if scan.pet.is_absolute() else root / scan.pet
    vois = tuple(
        source if source.path.is_absolute() else VoiSource(root / source.path, source.kind)
        for source in scan.vois
    )
    return replace(scan, pet=pet, vois=vois)


def _resolve(ref: ScanRef, root: Path) -> ScanRef:
    return replace(ref, scan=_resolve_scan(ref.scan, root))


def _scan_vois(ref: ScanRef, series: DicomSeries, study: Study) -> tuple[list[Voi], str | None]:
    """The scan's VOIs as the pipeline reads them, and the nuclide of its PET."""
    suv = read_suv_volume(
        series, overrides=merged_overrides(ref), normalisation=study.settings.normalisation
    )
    vois: list[Voi] = []
    for source in ref.scan.vois:
        vois.extend(load_vois(source.path, reference=suv.volume, kind=source.kind))
    return vois, suv.derivation.nuclide


def _matched(
    ref: ScanRef, vois: Sequence[Voi], rows: pd.DataFrame, where: str
) -> tuple[list[Voi], list[dict[str, Any]]]:
    by_key = {(voi.kind, voi.name): voi for voi in vois}
    kept_vois, kept_rows = [], []
    for row in rows.to_dict("records"):
        key = (row["kind"], str(row["voi"]))
        voi = by_key.get(key)
        if voi is None or voi.n_voxels != int(row["n_voxels"]):
            found = "missing" if voi is None else f"{voi.n_voxels} voxels"
            raise InputError(
                f"scan {ref.scan_id}: {key[0]} VOI {key[1]!r} is not what was measured "
                "(inputs changed since the run; run `immunopet run` again)",
                file=where,
                tag="n_voxels",
                value=found,
                expected=f"{int(row['n_voxels'])} voxels as stored",
            )
        kept_vois.append(voi)
        kept_rows.append(row)
    return kept_vois, kept_rows


def export_study_dicom(
    study: Study,
    results_dir: str | Path,
    outdir: str | Path,
) -> DicomExport:
    """Write one SEG and one SR per measured scan of the study.

    Parameters
    ----------
    study : Study
        Relative paths are taken relative to ``study.root``.
    results_dir : path-like
        The results folder of ``immunopet run`` (its ``immunopet.duckdb``).
    outdir : path-like
        Created if needed.

    Returns
    -------
    DicomExport

    Raises
    ------
    InputError
        No results store; a VOI that is not what was measured; see :func:`export_scan`.
    SuvError, DicomInputError, GeometryError
        The PET or a VOI source cannot be read again.
    """
    results = Path(results_dir)
    if not (results / DATABASE_NAME).is_file():
        raise InputError(
            "no results store: measure the study first (immunopet run)",
            file=results / DATABASE_NAME,
            value="missing",
        )
    with ResultsStore(results) as store:
        measurements = store.read_table("measurements")
        has_fdg = "fdg_measurements" in store.tables()
        fdg_rows = store.read_table("fdg_measurements") if has_fdg else None
    out = Path(outdir)
    exported: list[ExportedScan] = []
    notes: list[str] = []
    for original in study.scans():
        ref = _resolve(original, study.root)
        rows = measurements[measurements["scan_id"] == ref.scan_id]
        if rows.empty:
            notes.append(f"{ref.scan_id}: no stored measurements (not exported)")
            continue
        if ref.scan.pet.name.lower().endswith((".nii", ".nii.gz")):
            notes.append(f"{ref.scan_id}: NIfTI PET, no DICOM series to refer to (not exported)")
            continue
        series = find_one_pet(ref.scan.pet)
        measured, nuclide = _scan_vois(ref, series, study)
        vois, kept = _matched(ref, measured, rows, str(ref.scan.pet))
        context = _context(
            study,
            ref.patient,
            _number(kept[0], "hours_pi"),
            f"{ref.series} {ref.nominal_hours:g} h",
            nuclide,
        )
        seg, sr = export_scan(series, vois, kept, context)
        folder = out / _part(ref.patient) / _part(ref.series) / f"{ref.nominal_hours:g}h"
        exported.append(
            ExportedScan(
                scan_id=ref.scan_id,
                seg=write_dicom(seg, folder / "seg.dcm"),
                sr=write_dicom(sr, folder / "sr.dcm"),
                n_vois=len(vois),
            )
        )
    for patient in study.patients:
        if patient.fdg is None:
            continue
        scan_id = f"{patient.pseudonym}/{FDG_FOLDER}"
        rows = None if fdg_rows is None else fdg_rows[fdg_rows["patient"] == patient.pseudonym]
        if rows is None or rows.empty:
            notes.append(f"{scan_id}: no stored FDG measurements (not exported)")
            continue
        scan = _resolve_scan(patient.fdg, study.root)
        if scan.pet.name.lower().endswith((".nii", ".nii.gz")):
            notes.append(f"{scan_id}: NIfTI PET, no DICOM series to refer to (not exported)")
            continue
        folder = out / _part(patient.pseudonym) / FDG_FOLDER
        exported.append(_export_fdg(patient, scan, rows, study, folder))
    return DicomExport(scans=tuple(exported), notes=tuple(notes))


def _fdg_vois(scan: Scan, series: DicomSeries, study: Study) -> tuple[list[Voi], str | None]:
    """The FDG scan's lesion VOIs as :func:`immunopet.study.fdg.measure_fdg_lesions` reads them
    (organ sources left out, every VOI a lesion), and the nuclide of its PET."""
    suv = read_suv_volume(
        series, overrides=scan.overrides, normalisation=study.settings.normalisation
    )
    vois: list[Voi] = []
    for source in scan.vois:
        if source.kind != "organ":
            vois.extend(load_vois(source.path, reference=suv.volume, kind="lesion"))
    return vois, suv.derivation.nuclide


def _export_fdg(
    patient: Patient, scan: Scan, rows: pd.DataFrame, study: Study, folder: Path
) -> ExportedScan:
    """The SEG and SR of one patient's baseline FDG scan from its stored lesion rows."""
    scan_id = f"{patient.pseudonym}/{FDG_FOLDER}"
    series = find_one_pet(scan.pet)
    measured, nuclide = _fdg_vois(scan, series, study)
    by_name = {voi.name: voi for voi in measured}
    vois: list[Voi] = []
    records = rows.to_dict("records")
    for row in records:
        voi = by_name.get(str(row["lesion"]))
        if voi is None or voi.n_voxels != int(row["n_voxels"]):
            raise InputError(
                f"scan {scan_id}: lesion VOI {str(row['lesion'])!r} is not what was measured "
                "(inputs changed since the run; run `immunopet run` again)",
                file=str(scan.pet),
                tag="n_voxels",
                value="missing" if voi is None else f"{voi.n_voxels} voxels",
                expected=f"{int(row['n_voxels'])} voxels as stored",
            )
        vois.append(voi)
    seg, segments = build_seg(vois, series, pseudonym=patient.pseudonym)
    local = study.settings.peak == "local"
    excluded = {e.lesion for e in study.exclusions if e.patient == patient.pseudonym}
    values = []
    for segment, row in zip(segments, records, strict=True):
        numbers = {}
        for column in ("fdg_suv_mean", "fdg_suv_max", "fdg_suv_peak", "volume_ml"):
            number = _number(row, column)
            if number is None:
                raise InputError(
                    f"FDG lesion {segment.label!r}: a measurement is missing",
                    file=series.label,
                    tag=column,
                    value=str(row.get(column)),
                    expected="a finite number",
                )
            numbers[column] = number
        values.append(
            VoiValues(
                segment=segment,
                suv_mean=numbers["fdg_suv_mean"],
                suv_max=numbers["fdg_suv_max"],
                suv_peak_local=numbers["fdg_suv_peak"] if local else None,
                suv_peak_global=None if local else numbers["fdg_suv_peak"],
                volume_ml=numbers["volume_ml"],
                long_axis_mm=None,
                excluded=segment.label in excluded,
            )
        )
    context = _context(
        study,
        patient.pseudonym,
        _number(records[0], "hours_pi"),
        f"FDG baseline {scan.nominal_hours:g} h",
        nuclide,
        radiopharmaceutical=FDG_RADIOPHARMACEUTICAL if nuclide == "18F" else None,
    )
    sr = build_sr(seg, values, series, context)
    return ExportedScan(
        scan_id=scan_id,
        seg=write_dicom(seg, folder / "seg.dcm"),
        sr=write_dicom(sr, folder / "sr.dcm"),
        n_vois=len(vois),
    )
