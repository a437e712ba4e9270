"""Export a study as a PET-BIDS raw dataset (images in Bq/mL, blood samples, participants).

Layout (BIDS 1.10, PET datatype)::

    dataset_description.json  README  participants.tsv  participants.json
    sub-<p>/sub-<p>_sessions.tsv (+ .json)          one row per injection: body weight, cold mass
    sub-<p>/ses-<s>/sub-<p>_ses-<s>_scans.tsv (+ .json)   file -> nominal and actual hours p.i.
    sub-<p>/ses-<s>/pet/sub-<p>_ses-<s>_trc-<t>_rec-<acstat|nacstat>_run-<n>_pet.nii.gz (+ .json)
    sub-<p>/ses-<s>/pet/sub-<p>_ses-<s>_recording-manual_blood.tsv (+ _blood.json)
    sub-<p>/ses-fdg/pet/sub-<p>_ses-fdg_trc-FDG_rec-<acstat|nacstat>_pet.nii.gz (+ .json)
    derivatives/immunopet/    measurements.tsv (+ .json), when measurements are given
    derivatives/immunopet/    fdg_measurements.tsv (+ .json), when FDG measurements are given

Choices, with the part of the specification behind each:

- **Session = injection.** PET-BIDS: "a new session ... starts with a new injection". The label
  is the series name with non-alphanumerics removed (``tracer-only`` -> ``ses-traceronly``).
- **Several scans after one injection = runs.** The raw PET file rule
  (``rules/files/raw/pet.yaml``) allows the entities sub, ses, task, trc, rec and run only
  (no ``acq``), and "if more than one run of the same task and acquisition (tracer) are
  acquired during the same session, the ``run-<index>`` entity MUST be used". Runs are
  numbered in order of nominal hours (1, 72, 120 h -> run-1, run-2, run-3); the
  ``_scans.tsv`` of the session maps each file to its nominal and actual hours.
- **rec** takes the reserved values ``acstat`` (attenuation-corrected static) or ``nacstat``.
- **trc** names the tracer of every PET file (PET-BIDS: ``trc-<label>``, "the tracer used";
  e.g. ``trc-FDG``): the study's ``tracer`` (``89Zr-durvalumab`` -> ``trc-89Zrdurvalumab``),
  else the header's (0018,0031) Radiopharmaceutical, else the nuclide (``trc-Zr89``). It tells
  the study tracer's files from the baseline FDG scans' without reading a sidecar.
- **The baseline FDG scan** (``[patients.fdg]``) is its own injection, so its own session
  ``ses-fdg`` (with its own ``TimeZero`` = the FDG injection time, 18F decay and
  ``TracerName`` ``FDG``, ``TracerRadionuclide`` ``F18``), one file without ``run`` (one scan
  in the session), a row in ``_sessions.tsv`` (no unlabelled antibody: ``n/a``) and its
  ``_scans.tsv``. Its lesion measurements (the results store's ``fdg_measurements``) go to
  ``derivatives/immunopet/fdg_measurements.tsv`` with ``participant_id`` and ``session_id``.
- **Times** are seconds relative to ``TimeZero`` = the injection time of day, so a scan five
  days after injection has ``ScanStart`` ~ 432000 s; no calendar date is written.
- **Values** are activity concentration in Bq/mL as stored by the scanner (decay-corrected to
  scan start, ``ImageDecayCorrectionTime`` = ``ScanStart``). A series whose Bq/mL values
  cannot be had as stored (SUV-only scale, or stored without decay correction) is written
  decay-corrected to injection (``ImageDecayCorrectionTime`` = ``InjectionStart``), and the
  sidecar's ``ImmunoPET.values`` says so.
- **Blood** (``recording-manual``): ``time`` in s relative to TimeZero (sampling time),
  ``whole_blood_radioactivity`` and ``plasma_radioactivity`` in kBq/mL decay-corrected to
  TimeZero, as the PET-BIDS blood section asks ("the injected dose, the PET data, and blood
  data should all be decay-corrected to time zero"); metabolites are not measured for an
  antibody (``MetaboliteAvail`` false).
- **Participants**: only ``age`` (years, 89 and older written as 89, as BIDS recommends for
  privacy), ``sex`` (from the clinical sheet, when given) and ``body_weight`` (kg, at the
  first injection of the study tracer; PET-BIDS recommends it there, and per injection,
  the FDG scan's included, in ``sessions.tsv``).
  No name, birth date, patient ID or DICOM UID is written anywhere.
- **REQUIRED sidecar fields** that the data do not give are ``"n/a"`` only where the schema
  allows it (``InjectedMass``, ``InjectedMassUnits``, ``SpecificRadioactivity(Units)``);
  unknown reconstruction parameters are written as the label ``"none"``.

Layering: this module belongs to ``study`` and cannot use ``analysis``; the blood samples come
in already converted by :func:`immunopet.analysis.blood.blood_activity` (the
``export-bids`` command does that from the study's inputs).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset
from tqdm import tqdm

from immunopet import __version__
from immunopet.errors import ImmunoPETWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.atomic import atomic_path, write_text_atomically
from immunopet.io.bids import IMMUNOPET_KEY, pet_sidecar
from immunopet.io.dicom import find_one_pet
from immunopet.io.nifti import read_nifti, sidecar_path, write_nifti, write_sidecar
from immunopet.study._bids_fields import (
    REQUIRED_PET_DEFAULTS,
    dicom_fields,
    frame_duration_s,
    header_text,
    radiochemistry,
)
from immunopet.study.model import Injection, ScanRef, Study
from immunopet.study.pipeline import merged_overrides
from immunopet.suv.decay import elapsed_seconds
from immunopet.suv.record import SuvOverrides
from immunopet.suv.volume import read_activity_volume

__all__ = ["BIDS_VERSION", "FDG_SESSION", "FDG_TRACER", "bids_label", "export_bids"]

BIDS_VERSION = "1.10.0"
"""The BIDS version the export follows."""

FDG_SESSION = "fdg"
"""Session label of a patient's baseline FDG scan (``ses-fdg``)."""

FDG_TRACER = "FDG"
"""``TracerName`` and ``trc`` label of the baseline FDG scans."""

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_DROPPED_MEASUREMENT_COLUMNS = frozenset({"source", "warnings", "scan_id"})
"""Measurement columns not exported: file paths and free text may identify a patient."""


# ---------------------------------------------------------------------------- labels
def bids_label(text: str, *, what: str = "label") -> str:
    """A BIDS entity label from free text: letters and digits only.

    Raises
    ------
    InputError
        When nothing is left.

    Examples
    --------
    >>> bids_label("tracer-only"), bids_label("P 01")
    ('traceronly', 'P01')
    """
    label = re.sub(r"[^0-9A-Za-z]", "", text)
    if not label:
        raise InputError(
            "cannot form a BIDS label",
            tag=what,
            value=text,
            expected="text with at least one letter or digit",
        )
    return label


def _unique_labels(names: Sequence[str], what: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        label = bids_label(name, what=what)
        if label in owner and owner[label] != name:
            raise InputError(
                f"two {what}s give the same BIDS label",
                tag=what,
                value=f"{owner[label]!r} and {name!r} -> {label!r}",
                expected="names that differ in their letters or digits",
            )
        owner[label] = name
        labels[name] = label
    return labels


# ---------------------------------------------------------------------------- one scan
@dataclass(frozen=True)
class _LoadedScan:
    """One scan ready to be written: Bq/mL volume, complete sidecar, facts for the tables."""

    volume: ImageVolume
    sidecar: dict[str, Any]
    attenuation_corrected: bool
    hours_after_injection: float | None
    weight_kg: float | None
    injection_datetime: datetime | None
    input_paths: tuple[Path | None, ...] = field(default=())


def _resolve(study: Study, path: Path) -> Path:
    return path if path.is_absolute() else study.root / path


def _scrub(texts: Iterable[Any], paths: Iterable[Path | None], replacement: str) -> list[str]:
    """Replace input paths (which may carry a patient's name) in messages by the BIDS name."""
    needles = sorted({str(p) for p in paths if p is not None}, key=len, reverse=True)
    out = []
    for text in texts:
        text = str(text)
        for needle in needles:
            text = text.replace(needle, replacement)
        out.append(text)
    return out


def _load_dicom_scan(
    ref: ScanRef, pet: Path, overrides: SuvOverrides, tracer: str, tracer_mass_mg: float | None
) -> _LoadedScan:
    series = find_one_pet(pet)
    activity = read_activity_volume(series, overrides=overrides)
    derivation, reference, how = activity.derivation, activity.decay_reference, activity.how
    header = series.header
    fields, notes, attenuation_corrected = dicom_fields(header)
    if not tracer:
        items = header.get("RadiopharmaceuticalInformationSequence") or [Dataset()]
        tracer = header_text(items[0], "Radiopharmaceutical")
    fields.update(
        radiochemistry(
            derivation.injected_activity_bq / 1e6,
            tracer_mass_mg,
            ref.injection.unlabelled_mass_mg,
            tracer,
        )
    )
    sidecar = pet_sidecar(
        derivation,
        units="Bq/mL",
        tracer_name=tracer or None,
        frame_duration_s=frame_duration_s(header, str(series.files[0])),
        decay_reference=reference,
        extra=fields,
    )
    own = dict(sidecar[IMMUNOPET_KEY])
    own["warnings"] = [*own.get("warnings", []), *notes]
    own["values"] = how
    own["source_format"] = "DICOM"
    sidecar[IMMUNOPET_KEY] = own
    return _LoadedScan(
        volume=activity.volume.with_array(
            np.asarray(activity.volume.array, dtype=np.float32), unit=Unit.BQML
        ),
        sidecar=sidecar,
        attenuation_corrected=attenuation_corrected,
        hours_after_injection=derivation.hours_after_injection,
        weight_kg=derivation.weight_kg,
        injection_datetime=derivation.injection_datetime,
        input_paths=(pet, series.folder, series.files[0]),
    )


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _load_nifti_scan(
    ref: ScanRef, pet: Path, overrides: SuvOverrides, tracer: str, tracer_mass_mg: float | None
) -> _LoadedScan:
    image = read_nifti(pet)
    json_path = sidecar_path(pet)
    if image.sidecar is None:
        raise InputError(
            "a NIfTI PET needs its PET-BIDS sidecar to be exported",
            file=json_path,
            value="missing",
            expected="the JSON written next to the image (TimeZero, ScanStart, Units ...)",
        )
    given = dict(image.sidecar)
    if given.get("Units") != "Bq/mL":
        raise InputError(
            "only activity-concentration NIfTI images can be exported as raw PET-BIDS",
            file=json_path,
            tag="Units",
            value=given.get("Units", "missing"),
            expected="'Bq/mL' (export the DICOM series instead)",
        )
    for key in ("TimeZero", "ScanStart", "InjectionStart", "FrameTimesStart", "FrameDuration"):
        if key not in given:
            raise InputError(
                "PET-BIDS field missing in the sidecar",
                file=json_path,
                tag=key,
                value="missing",
                expected="a complete PET-BIDS time section",
            )
    sidecar = {**REQUIRED_PET_DEFAULTS, **given}
    if tracer:
        sidecar["TracerName"] = tracer
    if overrides.injected_activity_bq is not None:
        sidecar["InjectedRadioactivity"] = overrides.injected_activity_bq / 1e6
        sidecar["InjectedRadioactivityUnits"] = "MBq"
    activity = _number_or_none(sidecar.get("InjectedRadioactivity"))
    if activity is not None and sidecar.get("InjectedRadioactivityUnits") == "MBq":
        sidecar.update(
            radiochemistry(
                activity,
                tracer_mass_mg,
                ref.injection.unlabelled_mass_mg,
                str(sidecar["TracerName"]),
            )
        )
    own_given = given.get(IMMUNOPET_KEY)
    own = dict(own_given) if isinstance(own_given, Mapping) else {}
    weight = overrides.weight_kg
    if weight is None:
        weight = _number_or_none(own.get("weight_kg"))
    if weight is not None:
        own["weight_kg"] = weight
    own["values"] = "as given in the NIfTI input"
    own["source_format"] = "NIfTI"
    sidecar[IMMUNOPET_KEY] = own
    start = _number_or_none(sidecar.get("ScanStart"))
    injection = _number_or_none(sidecar.get("InjectionStart"))
    hours = None if start is None or injection is None else (start - injection) / 3600.0
    text = str(sidecar.get("AttenuationCorrection", "")).strip().lower()
    return _LoadedScan(
        volume=image.volume,
        sidecar=sidecar,
        attenuation_corrected=text != "none",
        hours_after_injection=hours,
        weight_kg=weight,
        injection_datetime=overrides.injection_datetime,
        input_paths=(pet, json_path),
    )


def _load_scan(
    ref: ScanRef, study: Study, tracer_mass_mg: float | None, *, fdg: bool = False
) -> _LoadedScan:
    pet = _resolve(study, ref.scan.pet)
    overrides = merged_overrides(ref)
    tracer = FDG_TRACER if fdg else study.tracer
    mass = None if fdg else tracer_mass_mg
    if pet.name.lower().endswith(_NIFTI_SUFFIXES):
        return _load_nifti_scan(ref, pet, overrides, tracer, mass)
    return _load_dicom_scan(ref, pet, overrides, tracer, mass)


def _tracer_label(sidecar: Mapping[str, Any]) -> str:
    """The ``trc`` label of a PET file: its TracerName, else its radionuclide.

    Examples
    --------
    >>> _tracer_label({"TracerName": "89Zr-durvalumab", "TracerRadionuclide": "Zr89"})
    '89Zrdurvalumab'
    >>> _tracer_label({"TracerName": "n/a", "TracerRadionuclide": "Zr89"})
    'Zr89'
    """
    for key in ("TracerName", "TracerRadionuclide"):
        text = re.sub(r"[^0-9A-Za-z]", "", str(sidecar.get(key) or ""))
        if text and text.lower() != "na":
            return text
    return "unknown"


# ---------------------------------------------------------------------------- tables
def _write_tsv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as temporary:
        frame.to_csv(
            temporary,
            sep="\t",
            index=False,
            na_rep="n/a",
            lineterminator="\n",
            float_format="%.10g",
        )
    return path


def _write_json(content: Mapping[str, Any], path: Path) -> Path:
    return write_sidecar(content, path)


@dataclass
class _Session:
    """One injection of one participant, as exported."""

    subject: str
    session: str
    patient: str
    series: str
    unlabelled_mass_mg: float | None
    weight_kg: float | None = None
    time_zero: datetime | None = None
    scans: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fdg: bool = False

    @property
    def folder(self) -> Path:
        return Path(f"sub-{self.subject}") / f"ses-{self.session}"

    @property
    def stem(self) -> str:
        return f"sub-{self.subject}_ses-{self.session}"


_BLOOD_COLUMNS = (
    "patient",
    "series",
    "sample",
    "matrix",
    "sample_datetime",
    "bq_per_ml_at_injection",
)


def _check_blood(blood: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _BLOOD_COLUMNS if c not in blood.columns]
    if missing:
        raise InputError(
            "blood table lacks required column(s)",
            file="blood",
            tag=", ".join(missing),
            value="missing",
            expected="the output of immunopet.analysis.blood.blood_activity",
        )
    unknown = sorted(set(blood["matrix"].astype(str)) - {"whole_blood", "plasma"})
    if unknown:
        raise InputError(
            "unknown blood matrix",
            file="blood",
            tag="matrix",
            value=unknown,
            expected="'whole_blood' or 'plasma'",
        )
    out = blood.copy()
    out["patient"] = out["patient"].astype(str)
    out["series"] = out["series"].astype(str)
    out["sample"] = out["sample"].astype(str)
    out["sample_datetime"] = pd.to_datetime(out["sample_datetime"])
    if "injection_datetime" in out.columns:
        out["injection_datetime"] = pd.to_datetime(out["injection_datetime"])
    return out


def _write_blood(session: _Session, rows: pd.DataFrame, outdir: Path) -> Path | None:
    """Write the session's manual blood samples; None when there is nothing to write."""
    if rows.empty:
        return None
    if session.time_zero is None:
        note = (
            f"sub-{session.subject} ses-{session.session}: blood samples not exported: the "
            "injection date-time (TimeZero) is unknown for this session"
        )
        session.notes.append(note)
        warnings.warn(note, ImmunoPETWarning, stacklevel=3)
        return None
    time_zero = session.time_zero.replace(microsecond=0)
    notes: list[str] = []
    if "injection_datetime" in rows.columns:
        gaps = {
            abs(elapsed_seconds(time_zero, t.to_pydatetime())) for t in rows["injection_datetime"]
        }
        if max(gaps) > 60.0:
            notes.append(
                f"the blood table's injection time differs from the PET TimeZero by up to "
                f"{max(gaps):.0f} s; blood radioactivity is decay-corrected to the table's time"
            )
    wide = rows.pivot_table(
        index=["sample", "sample_datetime"],
        columns="matrix",
        values="bq_per_ml_at_injection",
        aggfunc="first",
    ).reset_index()
    table = pd.DataFrame(
        {"time": [elapsed_seconds(time_zero, t.to_pydatetime()) for t in wide["sample_datetime"]]}
    )
    description: dict[str, Any] = {
        "MetaboliteAvail": False,
        "DispersionCorrected": False,
        "time": {
            "Description": "Time of blood sampling relative to TimeZero (the injection) of the "
            "_pet.json files of this session",
            "Units": "s",
        },
    }
    for matrix, column, words in (
        ("whole_blood", "whole_blood_radioactivity", "whole blood"),
        ("plasma", "plasma_radioactivity", "plasma"),
    ):
        available = matrix in wide.columns and bool(wide[matrix].notna().any())
        description["WholeBloodAvail" if matrix == "whole_blood" else "PlasmaAvail"] = available
        if available:
            table[column] = wide[matrix].to_numpy(dtype=np.float64) / 1000.0
            description[column] = {
                "Description": f"Radioactivity concentration in {words}, manual venous samples "
                "counted in a well counter, decay-corrected to TimeZero (the injection)",
                "Units": "kBq/mL",
            }
    if notes:
        description[IMMUNOPET_KEY] = {"warnings": notes}
        for note in notes:
            warnings.warn(f"{session.stem}: {note}", ImmunoPETWarning, stacklevel=3)
    table = table.sort_values("time", kind="stable")
    pet_dir = outdir / session.folder / "pet"
    pet_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{session.stem}_recording-manual_blood"
    _write_json(description, pet_dir / f"{stem}.json")
    return _write_tsv(table, pet_dir / f"{stem}.tsv")


def _read_clinical(study: Study) -> dict[str, dict[str, Any]]:
    """Age (capped at 89) and sex per pseudonym from the clinical sheet; nothing else."""
    path = study.inputs.clinical
    if path is None:
        return {}
    path = _resolve(study, path)
    if not path.is_file():
        raise InputError("clinical sheet not found", file=path)
    try:
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV table ({exc})", file=path) from exc
    if "patient" not in sheet.columns:
        note = f"{path}: no 'patient' column; age and sex are not exported"
        warnings.warn(note, ImmunoPETWarning, stacklevel=3)
        return {}
    out: dict[str, dict[str, Any]] = {}
    sexes = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "O": "O", "OTHER": "O"}
    for _, row in sheet.iterrows():
        entry: dict[str, Any] = {}
        if "age" in sheet.columns:
            age = pd.to_numeric(pd.Series([row["age"]]), errors="coerce").iloc[0]
            entry["age"] = None if pd.isna(age) else min(float(age), 89.0)
        if "sex" in sheet.columns:
            entry["sex"] = sexes.get(str(row["sex"]).strip().upper())
        out[str(row["patient"]).strip()] = entry
    return out


_PARTICIPANT_COLUMNS: dict[str, dict[str, Any]] = {
    "participant_id": {
        "Description": "Participant identifier: sub- followed by the study pseudonym"
    },
    "age": {
        "Description": "Age at inclusion; 89 and older are written as 89 (BIDS privacy "
        "recommendation)",
        "Units": "year",
    },
    "sex": {
        "Description": "Sex of the participant as recorded in the clinical sheet",
        "Levels": {"M": "male", "F": "female", "O": "other"},
    },
    "body_weight": {
        "Description": "Body weight at the first injection of the study tracer (used for SUV); "
        "the weight at each injection (the FDG scan's included) is in sub-<label>_sessions.tsv",
        "Units": "kg",
    },
}

_SESSION_COLUMNS: dict[str, dict[str, Any]] = {
    "session_id": {
        "Description": "Session identifier: one session per tracer injection (ses-fdg: the "
        "baseline FDG PET/CT, its own 18F injection)"
    },
    "body_weight": {"Description": "Body weight at this injection (used for SUV)", "Units": "kg"},
    "unlabelled_antibody_mass": {
        "Description": "Mass of unlabelled (cold) antibody given before the tracer at this "
        "injection; 0 for tracer only, n/a for the FDG session",
        "Units": "mg",
    },
}

_SCAN_COLUMNS: dict[str, dict[str, Any]] = {
    "filename": {"Description": "PET image, relative to the session folder"},
    "nominal_hours": {
        "Description": "Time point of the protocol (scheduled time after injection)",
        "Units": "h",
    },
    "hours_after_injection": {
        "Description": "Actual time from injection to the scan reference time (ScanStart)",
        "Units": "h",
    },
}


def _write_participants(
    outdir: Path, subjects: Mapping[str, str], sessions: Sequence[_Session], study: Study
) -> Path:
    clinical = _read_clinical(study)
    rows = []
    for patient, subject in subjects.items():
        first = next(
            (s for s in sessions if s.patient == patient and s.weight_kg and not s.fdg), None
        )
        row: dict[str, Any] = {"participant_id": f"sub-{subject}"}
        if clinical:
            entry = clinical.get(patient, {})
            row["age"] = entry.get("age")
            row["sex"] = entry.get("sex")
        row["body_weight"] = first.weight_kg if first else None
        rows.append(row)
    table = pd.DataFrame(rows)
    described = {c: _PARTICIPANT_COLUMNS[c] for c in table.columns}
    _write_json(described, outdir / "participants.json")
    return _write_tsv(table, outdir / "participants.tsv")


def _write_sessions(outdir: Path, subject: str, sessions: Sequence[_Session]) -> None:
    folder = outdir / f"sub-{subject}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "session_id": [f"ses-{s.session}" for s in sessions],
            "body_weight": [s.weight_kg for s in sessions],
            "unlabelled_antibody_mass": [s.unlabelled_mass_mg for s in sessions],
        }
    )
    _write_json(_SESSION_COLUMNS, folder / f"sub-{subject}_sessions.json")
    _write_tsv(table, folder / f"sub-{subject}_sessions.tsv")


def _write_scans(outdir: Path, session: _Session) -> None:
    folder = outdir / session.folder
    table = pd.DataFrame(session.scans, columns=list(_SCAN_COLUMNS))
    _write_json(_SCAN_COLUMNS, folder / f"{session.stem}_scans.json")
    _write_tsv(table, folder / f"{session.stem}_scans.tsv")


def _write_description(outdir: Path, study: Study, *, derivative: bool = False) -> Path:
    name = study.name or "immuno-PET study"
    content: dict[str, Any] = {
        "Name": f"{name}: immunopet measurements" if derivative else name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative" if derivative else "raw",
        "GeneratedBy": [
            {
                "Name": "immunopet",
                "Version": __version__,
                "Description": "VOI measurements (SUV) of the PET images"
                if derivative
                else "PET-BIDS export of an immuno-PET study from DICOM",
            }
        ],
    }
    return _write_json(content, outdir / "dataset_description.json")


def _readme(study: Study, sessions: Sequence[_Session], n_scans: int, has_blood: bool) -> str:
    subjects = sorted({s.subject for s in sessions})
    lines = [
        study.name or "Immuno-PET study",
        "",
        f"PET-BIDS dataset written by immunopet {__version__}.",
        f"Tracer: {study.tracer or 'see TracerName in the _pet.json files'}.",
        f"{len(subjects)} participants, {len(sessions)} sessions (one per injection), "
        f"{n_scans} PET scans.",
        "",
        "Conventions",
        "- TimeZero is the injection time of day; ScanStart, InjectionStart and the blood",
        "  sample times are seconds after it, days included (a scan 5 days after injection",
        "  has ScanStart near 432000 s). No calendar date is stored.",
        "- Images are activity concentration (Bq/mL), as stored by the scanner: decay-corrected",
        "  to the scan start (ImageDecayCorrectionTime = ScanStart) unless the sidecar's",
        "  ImmunoPET.values says otherwise. They are not SUV.",
        "- Several scans after one injection are runs of its session, numbered in order of the",
        "  protocol time point; sub-<label>_ses-<label>_scans.tsv gives nominal and actual hours",
        "  after injection of each file.",
        "- Body weight: participants.tsv (first injection) and sub-<label>_sessions.tsv (each",
        "  injection, with the unlabelled antibody mass given before the tracer).",
        "- The trc entity names the tracer of each PET file.",
    ]
    n_fdg = sum(s.fdg for s in sessions)
    if n_fdg:
        lines += [
            f"- {n_fdg} baseline FDG PET scans: session ses-fdg of each participant that had one",
            "  (trc-FDG, TracerRadionuclide F18; TimeZero is the FDG injection, ScanStart about",
            "  3600 s). Their lesions' SUVs: derivatives/immunopet/fdg_measurements.tsv.",
        ]
    if has_blood:
        lines += [
            "- Blood: *_recording-manual_blood.tsv, venous samples counted in a well counter,",
            "  kBq/mL decay-corrected to TimeZero.",
        ]
    lines += [
        "- The ImmunoPET object in each _pet.json records how the values were derived (SUV",
        "  branch, sources of weight and activity, warnings).",
        "",
    ]
    return "\n".join(lines)


_MEASUREMENT_UNITS = {
    "hours_pi": "h",
    "nominal_hours": "h",
    "volume_ml": "mL",
    "long_axis_mm": "mm",
    "diameter_3d_mm": "mm",
    "centroid_x_mm": "mm",
    "centroid_y_mm": "mm",
    "centroid_z_mm": "mm",
    "distance_to_spill_in_organ_mm": "mm",
}


def _write_measurements(
    outdir: Path,
    study: Study,
    measurements: pd.DataFrame,
    subjects: Mapping[str, str],
    session_labels: Mapping[tuple[str, str], str],
    runs: Mapping[tuple[str, str, float], int],
) -> Path:
    missing = [c for c in ("patient", "series") if c not in measurements.columns]
    if missing:
        raise InputError(
            "measurements lack required column(s)",
            file="measurements",
            tag=", ".join(missing),
            value="missing",
            expected="the measurements table of the results store",
        )
    folder = outdir / "derivatives" / "immunopet"
    folder.mkdir(parents=True, exist_ok=True)
    _write_description(folder, study, derivative=True)
    table = measurements.copy()
    patients = table["patient"].astype(str)
    series = table["series"].astype(str)
    unknown = sorted({p for p in patients if p not in subjects})
    if unknown:
        raise InputError(
            "measurements name patients that are not in the study",
            file="measurements",
            tag="patient",
            value=unknown,
            expected="pseudonyms of the manifest",
        )
    front = pd.DataFrame(
        {
            "participant_id": [f"sub-{subjects[p]}" for p in patients],
            "session_id": [
                f"ses-{session_labels.get((p, s), bids_label(s, what='series'))}"
                for p, s in zip(patients, series, strict=True)
            ],
        },
        index=table.index,
    )
    if "nominal_hours" in table.columns:
        front["run"] = [
            runs.get((p, s, float(h))) if pd.notna(h) else None
            for p, s, h in zip(patients, series, table["nominal_hours"], strict=True)
        ]
    kept = [
        c for c in table.columns if c not in {"patient", "series", *_DROPPED_MEASUREMENT_COLUMNS}
    ]
    out = pd.concat([front, table[kept]], axis=1)
    suv_unit = "cm2/mL" if study.settings.normalisation == "bsa" else "g/mL"
    described: dict[str, dict[str, Any]] = {
        "participant_id": {"Description": "Participant (sub-<pseudonym>)"},
        "session_id": {"Description": "Session (one per tracer injection)"},
    }
    if "run" in out.columns:
        described["run"] = {"Description": "Run index of the PET file in its session"}
    for column in kept:
        entry: dict[str, Any] = {"Description": column.replace("_", " ")}
        if column.startswith("suv_") or column == "ratio_to_reference":
            entry["Units"] = suv_unit if column.startswith("suv_") else "1"
        elif column in _MEASUREMENT_UNITS:
            entry["Units"] = _MEASUREMENT_UNITS[column]
        described[column] = entry
    _write_json(described, folder / "measurements.json")
    return _write_tsv(out, folder / "measurements.tsv")


_FDG_MEASUREMENT_UNITS = {"volume_ml": "mL", "hours_pi": "h"}


def _check_fdg_measurements(table: pd.DataFrame, sessions: Mapping[str, str]) -> None:
    """Refuse FDG measurements without patients, or of patients without an FDG session."""
    if "patient" not in table.columns:
        raise InputError(
            "FDG measurements lack the patient column",
            file="fdg_measurements",
            tag="patient",
            value="missing",
            expected="the fdg_measurements table of the results store",
        )
    patients = table["patient"].astype(str)
    unknown = sorted({p for p in patients if p not in sessions})
    if unknown:
        raise InputError(
            "FDG measurements name patients without an FDG scan in the study",
            file="fdg_measurements",
            tag="patient",
            value=unknown,
            expected="pseudonyms with [patients.fdg] in the manifest",
        )


def _write_fdg_measurements(
    outdir: Path,
    study: Study,
    table: pd.DataFrame,
    subjects: Mapping[str, str],
    sessions: Mapping[str, str],
) -> Path:
    """``derivatives/immunopet/fdg_measurements.tsv``: the FDG lesions by participant."""
    patients = table["patient"].astype(str)
    folder = outdir / "derivatives" / "immunopet"
    folder.mkdir(parents=True, exist_ok=True)
    _write_description(folder, study, derivative=True)
    front = pd.DataFrame(
        {
            "participant_id": [f"sub-{subjects[p]}" for p in patients],
            "session_id": [f"ses-{sessions[p]}" for p in patients],
        },
        index=table.index,
    )
    kept = [c for c in table.columns if c not in {"patient", *_DROPPED_MEASUREMENT_COLUMNS}]
    out = pd.concat([front, table[kept]], axis=1)
    suv_unit = "cm2/mL" if study.settings.normalisation == "bsa" else "g/mL"
    described: dict[str, dict[str, Any]] = {
        "participant_id": {"Description": "Participant (sub-<pseudonym>)"},
        "session_id": {"Description": "Session of the baseline FDG PET/CT"},
    }
    for column in kept:
        entry: dict[str, Any] = {"Description": column.replace("_", " ")}
        if column.startswith("fdg_suv_"):
            entry["Description"] = (
                f"{column[4:].replace('_', ' ')} of the lesion on the FDG PET "
                f"(SUV{study.settings.normalisation}, decay-corrected to the FDG injection)"
            )
            entry["Units"] = suv_unit
        elif column in _FDG_MEASUREMENT_UNITS:
            entry["Units"] = _FDG_MEASUREMENT_UNITS[column]
        described[column] = entry
    _write_json(described, folder / "fdg_measurements.json")
    return _write_tsv(out, folder / "fdg_measurements.tsv")


# ---------------------------------------------------------------------------- export
def _plan(
    study: Study,
) -> tuple[dict[str, str], list[_Session], list[tuple[_Session, ScanRef, int | None]]]:
    subjects = _unique_labels([p.pseudonym for p in study.patients], "patient pseudonym")
    sessions: list[_Session] = []
    work: list[tuple[_Session, ScanRef, int | None]] = []
    for patient in study.patients:
        series_names = [i.series for i in patient.injections]
        if patient.fdg is not None:  # its own injection: its own session, before the tracer's
            labels = _unique_labels([FDG_SESSION, *series_names], "series")
            fdg = patient.fdg
            injection = Injection(series=FDG_SESSION, scans=(fdg,))
            session = _Session(
                subject=subjects[patient.pseudonym],
                session=labels[FDG_SESSION],
                patient=patient.pseudonym,
                series=FDG_SESSION,
                unlabelled_mass_mg=None,
                fdg=True,
            )
            sessions.append(session)
            ref = ScanRef(patient.pseudonym, FDG_SESSION, fdg.nominal_hours, fdg, injection)
            work.append((session, ref, None))
        labels = _unique_labels(series_names, "series")
        for injection in patient.injections:
            session = _Session(
                subject=subjects[patient.pseudonym],
                session=labels[injection.series],
                patient=patient.pseudonym,
                series=injection.series,
                unlabelled_mass_mg=injection.unlabelled_mass_mg,
                weight_kg=injection.weight_kg,
                time_zero=injection.injection_datetime,
            )
            sessions.append(session)
            order = sorted(
                range(len(injection.scans)), key=lambda i: injection.scans[i].nominal_hours
            )
            for run, index in enumerate(order, start=1):
                scan = injection.scans[index]
                ref = ScanRef(
                    patient=patient.pseudonym,
                    series=injection.series,
                    nominal_hours=scan.nominal_hours,
                    scan=scan,
                    injection=injection,
                )
                work.append((session, ref, run))
    return subjects, sessions, work


def export_bids(
    study: Study,
    outdir: str | PathLike[str],
    *,
    blood: pd.DataFrame | None = None,
    measurements: pd.DataFrame | None = None,
    fdg_measurements: pd.DataFrame | None = None,
    tracer_mass_mg: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a study as a PET-BIDS raw dataset (see the module docstring for the layout).

    Parameters
    ----------
    study : Study
        The study (from :func:`immunopet.study.manifest.load_manifest`); relative paths are
        taken from ``study.root``.
    outdir : path-like
        The dataset folder (created).
    blood : pandas.DataFrame, optional
        Counted blood samples as returned by
        :func:`immunopet.analysis.blood.blood_activity` (columns ``patient``, ``series``,
        ``sample``, ``matrix``, ``sample_datetime``, ``bq_per_ml_at_injection``); written as
        ``*_recording-manual_blood.tsv`` per session.
    measurements : pandas.DataFrame, optional
        VOI measurements (the results store's table) written to ``derivatives/immunopet/``
        with ``participant_id``/``session_id``/``run`` instead of pseudonym and series; the
        columns ``source``, ``warnings`` and ``scan_id`` are left out (paths, free text).
    fdg_measurements : pandas.DataFrame, optional
        The lesions of the baseline FDG scans (the results store's ``fdg_measurements``,
        :data:`immunopet.study.fdg.FDG_MEASUREMENT_COLUMNS`), written to
        ``derivatives/immunopet/fdg_measurements.tsv`` with ``participant_id`` and
        ``session_id`` (``ses-fdg``) instead of the pseudonym.
    tracer_mass_mg : float, mg, optional
        Mass of labelled antibody per injection of the study tracer (``InjectedMass``; then
        ``SpecificRadioactivity`` in MBq/mg). ``"n/a"`` when not given, and for FDG.
    overwrite : bool
        Write into an ``outdir`` that already holds files (files of the same names are
        replaced, others left alone).
    progress : bool
        Show a progress bar over scans.

    Returns
    -------
    pathlib.Path
        ``outdir``.

    Raises
    ------
    InputError
        When ``outdir`` holds files and ``overwrite`` is false, two pseudonyms or series give
        the same BIDS label, a scan cannot be read or lacks what PET-BIDS requires (the
        message names the input file and tag), or a table lacks columns.

    Warns
    -----
    ImmunoPETWarning
        For blood samples that match no session or cannot be placed in time.
    """
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a folder", file=out, expected="a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            "output folder is not empty",
            file=out,
            expected="an empty or new folder (or overwrite=True)",
        )
    if tracer_mass_mg is not None and not (math.isfinite(tracer_mass_mg) and tracer_mass_mg > 0):
        raise InputError(
            "tracer mass must be positive",
            tag="tracer_mass_mg",
            value=tracer_mass_mg,
            expected="mg > 0",
        )
    blood_rows = _check_blood(blood) if blood is not None else None
    subjects, sessions, work = _plan(study)
    fdg_sessions = {s.patient: s.session for s in sessions if s.fdg}
    if fdg_measurements is not None:
        _check_fdg_measurements(fdg_measurements, fdg_sessions)
    out.mkdir(parents=True, exist_ok=True)
    if blood is None and study.inputs.blood_samples is not None:
        warnings.warn(
            "the study names blood samples but none were passed (blood=); no _blood.tsv written",
            ImmunoPETWarning,
            stacklevel=2,
        )

    runs: dict[tuple[str, str, float], int] = {}
    for session, ref, run in tqdm(work, desc="BIDS export", unit="scan", disable=not progress):
        loaded = _load_scan(ref, study, tracer_mass_mg, fdg=session.fdg)
        rec = "acstat" if loaded.attenuation_corrected else "nacstat"
        entities = f"trc-{_tracer_label(loaded.sidecar)}_rec-{rec}"
        if run is not None:
            entities += f"_run-{run}"
        name = f"{session.stem}_{entities}_pet.nii.gz"
        relative = session.folder / "pet" / name
        sidecar = dict(loaded.sidecar)
        own = dict(sidecar.get(IMMUNOPET_KEY) or {})
        own["nominal_hours"] = ref.nominal_hours
        own["warnings"] = _scrub(own.get("warnings", []), loaded.input_paths, relative.as_posix())
        sidecar[IMMUNOPET_KEY] = own
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        write_nifti(loaded.volume, out / relative, sidecar=sidecar)
        if run is not None:
            runs[(ref.patient, ref.series, float(ref.nominal_hours))] = run
        session.scans.append(
            {
                "filename": f"pet/{name}",
                "nominal_hours": ref.nominal_hours,
                "hours_after_injection": loaded.hours_after_injection,
            }
        )
        if session.weight_kg is None and loaded.weight_kg is not None:
            session.weight_kg = loaded.weight_kg
        if session.time_zero is None and loaded.injection_datetime is not None:
            session.time_zero = loaded.injection_datetime

    has_blood = False
    if blood_rows is not None:
        known = {(s.patient, s.series) for s in sessions if not s.fdg}
        pairs = set(zip(blood_rows["patient"], blood_rows["series"], strict=True))
        for patient, series in sorted(pairs - known):
            warnings.warn(
                f"blood samples of {patient}/{series} match no session of the study; not exported",
                ImmunoPETWarning,
                stacklevel=2,
            )
        for session in sessions:
            if session.fdg:
                continue
            rows = blood_rows[
                (blood_rows["patient"] == session.patient)
                & (blood_rows["series"] == session.series)
            ]
            has_blood |= _write_blood(session, rows, out) is not None

    session_labels = {(s.patient, s.series): s.session for s in sessions if not s.fdg}
    for subject in subjects.values():
        _write_sessions(out, subject, [s for s in sessions if s.subject == subject])
    for session in sessions:
        if session.scans:
            _write_scans(out, session)
    _write_participants(out, subjects, sessions, study)
    _write_description(out, study)
    write_text_atomically(out / "README", _readme(study, sessions, len(work), has_blood))
    if measurements is not None:
        _write_measurements(out, study, measurements, subjects, session_labels, runs)
    if fdg_measurements is not None:
        _write_fdg_measurements(out, study, fdg_measurements, subjects, fdg_sessions)
    return out
