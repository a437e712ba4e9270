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

Layout: ``OUTDIR/<patient>/<series>/<hours>h/seg.dcm`` and ``sr.dcm`` (path parts reduced to
letters, digits, ``.``, ``_`` and ``-``). Each file is written to a temporary name and renamed
into place.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import highdicom as hd
import pandas as pd
from pydicom.dataset import Dataset

from immunopet.errors import InputError
from immunopet.exports.dicom_seg import SegmentInfo, build_seg
from immunopet.exports.dicom_sr import ScanContext, VoiValues, build_sr
from immunopet.io.dicom import DicomSeries, find_one_pet
from immunopet.study.model import ScanRef, Study, VoiSource
from immunopet.study.pipeline import merged_overrides
from immunopet.study.store import DATABASE_NAME, ResultsStore
from immunopet.suv.volume import read_suv_volume
from immunopet.voi.sources import Voi, load_vois

__all__ = ["DicomExport", "ExportedScan", "export_scan", "export_study_dicom", "write_dicom"]

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
        segment=segment, ratio_to_reference=_number(row, "ratio_to_reference"), **numbers
    )


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
    """Write a dataset (a highdicom SOP instance) through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        dataset.save_as(temporary, enforce_file_format=True)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


# ---------------------------------------------------------------------------- study
def _part(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", text).strip(".") or "_"


def _resolve(ref: ScanRef, root: Path) -> ScanRef:
    scan = ref.scan
    pet = scan.pet if scan.pet.is_absolute() else root / scan.pet
    vois = tuple(
        source if source.path.is_absolute() else VoiSource(root / source.path, source.kind)
        for source in scan.vois
    )
    return replace(ref, scan=replace(scan, pet=pet, vois=vois))


def _scan_vois(ref: ScanRef, series: DicomSeries, study: Study) -> list[Voi]:
    suv = read_suv_volume(
        series, overrides=merged_overrides(ref), normalisation=study.settings.normalisation
    )
    vois: list[Voi] = []
    for source in ref.scan.vois:
        vois.extend(load_vois(source.path, reference=suv.volume, kind=source.kind))
    return vois


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
        vois, kept = _matched(ref, _scan_vois(ref, series, study), rows, str(ref.scan.pet))
        context = ScanContext(
            pseudonym=ref.patient,
            normalisation=study.settings.normalisation,
            hours_pi=_number(kept[0], "hours_pi"),
            peak_radius_mm=study.settings.peak_radius_mm,
            reference_organ=study.settings.reference_organ,
            peak=study.settings.peak,
            time_point=f"{ref.series} {ref.nominal_hours:g} h",
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
    return DicomExport(scans=tuple(exported), notes=tuple(notes))
