"""The ``study.toml`` of a generated synthetic trial.

:func:`write_trial_manifest` turns a trial's ``scans.csv`` and ``lesions.csv`` into the study
manifest that :func:`immunopet.study.manifest.load_manifest` reads (same format; see that
module). This module sits in the ``synthetic`` layer, which must not import ``immunopet.study``:
it builds plain dicts and writes them with ``tomli_w``.

What goes in:

* ``[study]``: a name stating preset and seed, the tracer as the DICOM headers name it;
* ``[inputs]``: the clinical sheet, adverse events, blood samples, counter calibration and
  lesion table that exist in the trial folder;
* one ``[[patients]]`` per patient, one injection per series (in order of injection) with its
  unlabelled antibody mass (the one fact DICOM does not hold), and one scan per row of
  ``scans.csv`` with its PET and CT folders and three VOI files: the lesion label map and the
  lesion spheres (``kind = "lesion"``) and the organ points (``kind = "organ"``), and the
  patient's organ label map as ``organ_masks`` (for the spill-in distance);
* one ``[[exclusions]]`` per lesion flagged ``near_spleen`` in ``lesions.csv``.

Each patient's baseline FDG PET (``fdg_scans.csv``, when the trial has one) is its
``[patients.fdg]`` table, with the FDG lesion label map as its VOIs.
Injection date-times, activities and weights are *not* written: the headers hold them, and
the analysis of the synthetic trial is meant to read them there (vendor branches included).
A preset's ``settings`` (e.g. the atezolizumab design's day-7 ``analysis_hours``) and its
``analysis`` plan (what that study reports: SUVmax, the per-patient aggregate, the candidate
biomarkers ...) are written as ``[settings]`` and ``[analysis]``; everything else is left to
its default (the durvalumab presets state none: the defaults are that paper's Methods).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from immunopet.errors import InputError
from immunopet.synthetic.presets import PRESETS

if TYPE_CHECKING:  # trial.py imports this module
    from immunopet.synthetic.trial import TrialManifest

__all__ = ["SPILL_IN_REASON", "TRACER", "write_trial_manifest"]

TRACER = "89Zr-antibody"
"""The tracer as the synthetic DICOM names it in (0018,0031) Radiopharmaceutical."""

SPILL_IN_REASON = "spill-in from the spleen (synthetic truth)"
"""Reason recorded for the lesion placed next to the spleen."""

_INPUT_FILES = {
    "clinical": "clinical.csv",
    "adverse_events": "adverse_events.csv",
    "blood_samples": "blood_samples.csv",
    "counter_calibration": "counter_calibration.json",
    "lesions": "lesions.csv",
}
_VOI_COLUMNS = (("lesion_map", "lesion"), ("lesion_spheres", "lesion"), ("organ_points", "organ"))


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fp:
            return list(csv.DictReader(fp))
    except FileNotFoundError:
        raise InputError(
            "the synthetic trial has no such table", file=path, expected="a generated trial"
        ) from None


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX separators), absolute when on another drive."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _hours(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def _mass(text: str) -> float:
    return float(text) if text.strip() else 0.0


def _build_trial_manifest(
    outdir: Path,
    base: Path,
    *,
    name: str,
    settings: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of the trial in ``outdir`` as plain dicts, paths relative to ``base``.

    Parameters
    ----------
    outdir : Path
        The trial folder (holding ``scans.csv`` and ``lesions.csv``).
    base : Path
        The folder the manifest will be written to.
    name : str
        The study name.
    settings, analysis : dict, optional
        ``[settings]`` and ``[analysis]`` tables to write (the preset's).

    Returns
    -------
    dict
        Ready for ``tomli_w.dumps``.

    Raises
    ------
    InputError
        ``scans.csv`` is missing.
    """
    scans = _read_rows(outdir / "scans.csv")
    lesions_path = outdir / "lesions.csv"
    lesions = _read_rows(lesions_path) if lesions_path.is_file() else []
    inputs = {
        key: _relative(outdir / file, base)
        for key, file in _INPUT_FILES.items()
        if (outdir / file).is_file()
    }
    patients: dict[str, dict[str, dict[str, Any]]] = {}
    for row in scans:
        injections = patients.setdefault(row["patient"], {})
        injection = injections.setdefault(
            row["series"],
            {
                "series": row["series"],
                "unlabelled_mass_mg": _mass(row["cold_mass_mg"]),
                "scans": [],
                "_at": row["injection_datetime"],
            },
        )
        scan: dict[str, Any] = {
            "nominal_hours": _hours(row["nominal_hours"]),
            "pet": _relative(outdir / row["pet_dir"], base),
            "ct": _relative(outdir / row["ct_dir"], base),
            "vois": [
                {"path": _relative(outdir / row[column], base), "kind": kind}
                for column, kind in _VOI_COLUMNS
                if row.get(column)
            ],
        }
        if row.get("organ_masks"):
            scan["organ_masks"] = _relative(outdir / row["organ_masks"], base)
        injection["scans"].append(scan)
    fdg_path = outdir / "fdg_scans.csv"
    fdg_rows = {row["patient"]: row for row in _read_rows(fdg_path)} if fdg_path.is_file() else {}
    patient_tables = []
    for pseudonym, injections in patients.items():
        ordered = sorted(injections.values(), key=lambda inj: str(inj["_at"]))
        for injection in ordered:
            del injection["_at"]
        table: dict[str, Any] = {"id": pseudonym}
        fdg = fdg_rows.get(pseudonym)
        if fdg is not None:
            table["fdg"] = {
                "pet": _relative(outdir / fdg["pet_dir"], base),
                "vois": [{"path": _relative(outdir / fdg["lesion_map"], base), "kind": "lesion"}],
            }
        table["injections"] = ordered
        patient_tables.append(table)
    exclusions = [
        {"patient": row["patient"], "lesion": str(row["lesion"]), "reason": SPILL_IN_REASON}
        for row in lesions
        if row.get("near_spleen", "").strip().lower() == "true" and row["patient"] in patients
    ]
    manifest: dict[str, Any] = {"study": {"name": name, "tracer": TRACER}}
    if inputs:
        manifest["inputs"] = inputs
    if settings:
        manifest["settings"] = dict(settings)
    if analysis:
        manifest["analysis"] = dict(analysis)
    if exclusions:
        manifest["exclusions"] = exclusions
    manifest["patients"] = patient_tables
    return manifest


def write_trial_manifest(
    trial: TrialManifest | str | os.PathLike[str],
    path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the ``study.toml`` of a generated synthetic trial.

    Parameters
    ----------
    trial : TrialManifest or path-like
        What :func:`~immunopet.synthetic.trial.generate_trial` returned, or the trial folder.
    path : path-like, optional
        Where to write; default ``<trial folder>/study.toml``. Paths in the manifest are
        relative to its folder.

    Returns
    -------
    Path
        The manifest written.

    Raises
    ------
    InputError
        The folder holds no ``scans.csv``.
    """
    settings: dict[str, Any] = {}
    analysis: dict[str, Any] = {}
    if isinstance(trial, str | os.PathLike):
        outdir = Path(trial)
        name = "Synthetic 89Zr immuno-PET trial"
    else:
        outdir = Path(trial.outdir)
        name = f"Synthetic 89Zr immuno-PET trial (preset {trial.preset}, seed {trial.seed})"
        config = PRESETS.get(trial.preset)
        if config is not None:
            settings = dict(config.settings)
            analysis = dict(config.analysis)
    target = Path(path) if path is not None else outdir / "study.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest = _build_trial_manifest(
        outdir, target.parent, name=name, settings=settings, analysis=analysis
    )
    header = (
        "# Study manifest of a synthetic 89Zr immuno-PET trial (immunopet.synthetic).\n"
        "# All data are simulated; paths are relative to this file. Check it with\n"
        "# `immunopet validate study.toml`.\n\n"
    )
    target.write_text(header + tomli_w.dumps(manifest), encoding="utf-8")
    return target
