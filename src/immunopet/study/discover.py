"""Draft a study manifest from a folder of DICOM files (a PACS export).

:func:`draft_manifest_from_dicom` reads headers only and proposes the patients, injections and
scans of a ``study.toml`` for the user to check and complete:

1. every series under the folder is found with :func:`~immunopet.io.dicom.discover_dicom`;
2. each PET series' slice stack is checked with :func:`~immunopet.io.dicom.check_series`, the
   check ``immunopet run`` applies when loading: a series it refuses is listed as not placed,
   one accepted with a note (slices slightly off the uniform grid) gets that note;
   for each PET series the injection and scan date-times come from
   :func:`~immunopet.suv.factors.derive_suv` (the same rules as the analysis, so 89Zr scans
   days after injection are placed correctly); a series whose SUV cannot be derived is listed
   as "could not place: <file>: <reason>";
3. series are grouped by patient with (0010,0020) PatientID -- used for grouping only and never
   written -- and patients get the pseudonyms ``P01``, ``P02`` ... in the order of their first
   injection;
4. within a patient, series whose injection date-times lie within
   :data:`SAME_INJECTION_S` of the first of a group belong to one injection; injections are
   labelled ``series-1``, ``series-2`` ... in time order (rename them, e.g. ``tracer-only``);
5. the nominal time point is the hours after injection rounded to the nearest value of
   :data:`NOMINAL_HOURS` when within 10 % of it, otherwise to the nearest whole hour;
6. a CT is matched by (0020,0052) FrameOfReferenceUID, else by (0020,000D) StudyInstanceUID
   (the one acquired closest in time when several match);
7. injection date-time, injected activity and weight are copied from the headers (to the
   injection when all its scans agree, else to each scan's overrides) so the user can check
   them; ``unlabelled_mass_mg`` is 0 and must be set for a predose injection;
8. an 18F PET series (from its header's nuclide) is the patient's FDG reference scan
   (``[patients.fdg]``), not an injection of the study tracer; a patient's first one is
   placed, later ones are listed as not placed.

A PACS export has no VOIs: the draft has none. The manifest needs one PET series per folder;
a folder holding several PET series, or a second series at the same time point of the same
injection (e.g. a non-attenuation-corrected reconstruction), is listed as not placed.
No patient name, ID or birth date is written or printed; when folder names themselves contain
the patient's ID or name the draft says so (without repeating them).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset

from immunopet.errors import ImmunoPETError, InputError, describe_problem
from immunopet.io.dicom import DicomSeries, check_series, discover_dicom
from immunopet.study.manifest import format_manifest
from immunopet.study.model import FDG_NOMINAL_HOURS, Injection, Patient, Scan, Study
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import SuvDerivation, SuvOverrides

__all__ = [
    "NOMINAL_HOURS",
    "SAME_INJECTION_S",
    "Draft",
    "draft_manifest_from_dicom",
    "nominal_hours",
]

NOMINAL_HOURS: tuple[float, ...] = (1, 2, 3, 4, 24, 48, 72, 96, 120, 144, 168, 192)
"""Protocol time points (hours after injection) a scan is rounded to when within 10 %."""

SAME_INJECTION_S = 60.0
"""Injection date-times this close (seconds) to a group's first are one injection."""

_TOLERANCE = 0.10


def _when(moment: datetime | None) -> datetime:
    """A DICOM SUV record's date-time (always known for DICOM; the earliest otherwise)."""
    return datetime.min if moment is None else moment


def nominal_hours(hours: float) -> float:
    """The protocol time point of a scan taken ``hours`` after injection.

    Parameters
    ----------
    hours : float, hours

    Returns
    -------
    float, hours
        The nearest value of :data:`NOMINAL_HOURS` when ``hours`` is within 10 % of it,
        otherwise ``hours`` rounded to the nearest whole hour (halves up).

    Examples
    --------
    >>> nominal_hours(71.6), nominal_hours(115.0), nominal_hours(1.08), nominal_hours(60.4)
    (72.0, 120.0, 1.0, 60.0)
    """
    nearest = min(NOMINAL_HOURS, key=lambda n: abs(hours - n))
    if abs(hours - nearest) <= _TOLERANCE * nearest:
        return float(nearest)
    return float(math.floor(hours + 0.5))


@dataclass(frozen=True)
class Draft:
    """A proposed study manifest.

    Attributes
    ----------
    study : Study
        Patients ``P01`` ... with injections ``series-1`` ... and their scans (absolute paths,
        no VOIs).
    unplaced : tuple of str
        One line per PET series not in the study: ``"could not place: <file>: <reason>"``.
    notes : tuple of str
        Other things the user should know (CT not matched, folder names with patient data).
    hours_after_injection : mapping of str to float
        Actual hours after injection of each scan, by scan id (``"P01/series-1/72h"``).
    """

    study: Study
    unplaced: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    hours_after_injection: Mapping[str, float] = field(default_factory=dict)

    def to_toml(self, path: str | os.PathLike[str]) -> str:
        """The manifest text for a file at ``path`` (paths relative to its folder).

        The unplaced series and the notes are comments at the end.
        """
        base = Path(path).resolve().parent
        preamble = [
            "Study manifest drafted by `immunopet discover` from DICOM headers.",
            "Check every value, then:",
            "  - rename the series labels (series-1, series-2 ... in time order), e.g.",
            '    "tracer-only" / "predose", and set unlabelled_mass_mg of a predose injection;',
            "  - check nominal_hours (rounded to the protocol's time points; actual hours in the",
            "    comment above each scan);",
            "  - add vois = [ { path = ..., kind = ... } ] to each scan and the [inputs] tables",
            "    (clinical, adverse_events, blood_samples, counter_calibration, lesions);",
            "  - run `immunopet validate` on this file.",
            "Patients are numbered in the order of their first injection; no patient name, ID",
            "or birth date is written here.",
        ]
        comments = {
            scan_id: [f"{hours:.2f} h after injection"]
            for scan_id, hours in self.hours_after_injection.items()
        }
        postscript = list(self.notes)
        if self.unplaced:
            postscript.append("PET series not in this draft (add them by hand where needed):")
            postscript += self.unplaced
        return format_manifest(
            self.study,
            base=base,
            preamble=preamble,
            scan_comments=comments,
            postscript=postscript,
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_toml` to ``path`` (folder created); returns ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_toml(target), encoding="utf-8")
        return target


@dataclass(frozen=True)
class _Placed:
    series: DicomSeries
    folder: Path
    derivation: SuvDerivation
    patient_key: str


def _folder_of(series: DicomSeries) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in series.files]))


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _header_text(header: Dataset, keyword: str) -> str:
    value = header.get(keyword, "")
    return "" if value is None else str(value).strip()


def _patient_key(series: DicomSeries) -> str:
    patient_id = _header_text(series.header, "PatientID")
    return f"id:{patient_id}" if patient_id else f"study:{series.study_uid}"


def _identifying_words(header: Dataset) -> set[str]:
    """PatientID and the alphabetic parts of PatientName (3+ letters), lower case."""
    words = {_header_text(header, "PatientID").lower()}
    for part in _header_text(header, "PatientName").replace("^", " ").split():
        if part.isalpha():
            words.add(part.lower())
    return {w for w in words if len(w) >= 3}


def _series_moment(series: DicomSeries) -> datetime | None:
    header = series.header
    for date_key, time_key in (
        ("SeriesDate", "SeriesTime"),
        ("AcquisitionDate", "AcquisitionTime"),
    ):
        text = _header_text(header, date_key) + _header_text(header, time_key)[:6]
        try:
            return datetime.strptime(text, "%Y%m%d%H%M%S")
        except ValueError:
            continue
    return None


def _could_not_place(series: DicomSeries, reason: str) -> str:
    where = series.files[0] if series.files else series.label
    return f"could not place: {where}: {reason}"


def _reason(error: ImmunoPETError) -> str:
    if isinstance(error, InputError):
        return describe_problem(
            error.reason, tag=error.tag, value=error.value, expected=error.expected
        )
    return str(error)


def _match_ct(
    pet: _Placed, cts: tuple[DicomSeries, ...], ct_folders: Mapping[str, Path]
) -> tuple[Path | None, str | None]:
    """The CT folder for a PET series, or None and why (None, None when there is no CT)."""
    frame = pet.series.frame_of_reference_uid
    candidates = [s for s in cts if frame and s.frame_of_reference_uid == frame]
    if not candidates:
        candidates = [s for s in cts if s.study_uid and s.study_uid == pet.series.study_uid]
    if not candidates:
        return None, None
    moment = _when(pet.derivation.scan_datetime)

    def distance(ct: DicomSeries) -> float:
        when = _series_moment(ct)
        return math.inf if when is None else abs((when - moment).total_seconds())

    best = min(candidates, key=distance)
    folder = ct_folders[best.series_uid]
    sharing = [s for s in cts if any(_under(f.parent, folder) for f in s.files)]
    if len(sharing) > 1:
        return None, f"{folder}: holds {len(sharing)} CT series; ct not set for its PET"
    return folder, None


def _agreed(values: list[object]) -> bool:
    return all(v == values[0] for v in values)


def draft_manifest_from_dicom(root: str | os.PathLike[str], *, progress: bool = False) -> Draft:
    """Propose a study manifest from the DICOM files under ``root``.

    Parameters
    ----------
    root : str or path-like
        A folder searched recursively (a PACS export).
    progress : bool
        Show a progress bar while reading headers.

    Returns
    -------
    Draft
        See the module notes for the rules. ``Draft.write("study.toml")`` writes it.

    Raises
    ------
    DicomInputError
        ``root`` does not exist.
    """
    inventory = discover_dicom(Path(root), progress=progress)
    top = Path(root).resolve()
    unplaced: list[str] = []
    notes: list[str] = []
    pet_folders = {s.series_uid: _folder_of(s) for s in inventory.pet if s.files}
    ct_folders = {s.series_uid: _folder_of(s) for s in inventory.ct if s.files}
    placed: list[_Placed] = []
    identifying: dict[str, set[str]] = {}
    for series in inventory.pet:
        if not series.files:
            unplaced.append(_could_not_place(series, "no readable image file"))
            continue
        if series.damaged:
            first = series.damaged[0]
            unplaced.append(
                _could_not_place(
                    series,
                    f"{len(series.damaged)} damaged file(s), e.g. {first.path}: {first.reason}",
                )
            )
            continue
        folder = pet_folders[series.series_uid]
        sharing = [uid for uid, f in pet_folders.items() if _under(f, folder)]
        if len(sharing) > 1:
            unplaced.append(
                _could_not_place(
                    series,
                    f"its folder {folder} holds {len(sharing)} PET series; the manifest needs "
                    "one PET series per folder",
                )
            )
            continue
        try:
            geometry = check_series(series)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                derivation = derive_suv(series.headers, source=series.files[0])
        except ImmunoPETError as error:
            unplaced.append(_could_not_place(series, _reason(error)))
            continue
        notes.extend(f"{series.files[0]}: {note}" for note in geometry.warnings)
        key = _patient_key(series)
        identifying.setdefault(key, set()).update(_identifying_words(series.header))
        placed.append(_Placed(series, folder, derivation, key))
    if any(p.patient_key.startswith("study:") for p in placed):
        notes.append(
            "some PET series have no (0010,0020) PatientID: each of their studies became a "
            "patient; merge patients by hand where needed"
        )

    by_patient: dict[str, list[_Placed]] = {}
    for item in placed:
        by_patient.setdefault(item.patient_key, []).append(item)
    order = sorted(
        by_patient,
        key=lambda k: min(_when(p.derivation.injection_datetime) for p in by_patient[k]),
    )
    width = max(2, len(str(len(order))))
    patients: list[Patient] = []
    hours_after: dict[str, float] = {}
    n_identifying = 0
    for number, key in enumerate(order, start=1):
        pseudonym = f"P{number:0{width}d}"
        items = sorted(
            by_patient[key],
            key=lambda p: (
                _when(p.derivation.injection_datetime),
                _when(p.derivation.scan_datetime),
            ),
        )
        fdg_items = [p for p in items if p.derivation.nuclide == "18F"]
        items = [p for p in items if p.derivation.nuclide != "18F"]
        fdg = (
            None
            if not fdg_items
            else Scan(pet=fdg_items[0].folder, nominal_hours=FDG_NOMINAL_HOURS)
        )
        unplaced += [
            _could_not_place(
                p.series,
                "a second 18F (FDG) PET of the patient: the manifest "
                "holds one FDG reference scan per patient",
            )
            for p in fdg_items[1:]
        ]
        groups: list[list[_Placed]] = []
        for item in items:
            start = _when(groups[-1][0].derivation.injection_datetime) if groups else None
            moment = _when(item.derivation.injection_datetime)
            if start is not None and (moment - start).total_seconds() <= SAME_INJECTION_S:
                groups[-1].append(item)
            else:
                groups.append([item])
        injections: list[Injection] = []
        for index, group in enumerate(groups, start=1):
            label = f"series-{index}"
            injection, group_hours, group_unplaced, group_notes = _draft_injection(
                label, pseudonym, group, inventory.ct, ct_folders
            )
            injections.append(injection)
            hours_after.update(group_hours)
            unplaced += group_unplaced
            notes += group_notes
            words = identifying.get(key, set())
            paths = [s.pet for s in injection.scans] + [s.ct for s in injection.scans if s.ct]
            texts = [os.path.relpath(path, top).lower() for path in paths]
            n_identifying += sum(any(w in text for w in words) for text in texts)
        patients.append(Patient(pseudonym=pseudonym, injections=tuple(injections), fdg=fdg))
    if n_identifying:
        notes.insert(
            0,
            f"{n_identifying} folder path(s) contain a patient name or ID from the DICOM "
            "headers: rename those folders (or move the data) before sharing this manifest",
        )
    tracers = Counter(_tracer(p.series.header) for p in placed)
    tracers.pop("", None)
    study = Study(
        name="Study drafted from DICOM",
        root=top,
        patients=tuple(patients),
        tracer=tracers.most_common(1)[0][0] if tracers else "",
    )
    return Draft(
        study=study,
        unplaced=tuple(unplaced),
        notes=tuple(notes),
        hours_after_injection=hours_after,
    )


def _tracer(header: Dataset) -> str:
    sequence = header.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        return ""
    return _header_text(sequence[0], "Radiopharmaceutical")


def _draft_injection(
    label: str,
    pseudonym: str,
    group: list[_Placed],
    cts: tuple[DicomSeries, ...],
    ct_folders: Mapping[str, Path],
) -> tuple[Injection, dict[str, float], list[str], list[str]]:
    """One injection's scans, their hours, the series left out and notes."""
    unplaced: list[str] = []
    notes: list[str] = []
    hours: dict[str, float] = {}
    kept: dict[float, _Placed] = {}
    for item in sorted(group, key=lambda p: _when(p.derivation.scan_datetime)):
        nominal = nominal_hours(item.derivation.hours_after_injection)
        if nominal in kept:
            unplaced.append(
                _could_not_place(
                    item.series,
                    f"same time point ({pseudonym} {label} {nominal:g} h) as the PET in "
                    f"{kept[nominal].folder}; the manifest takes one PET per time point",
                )
            )
            continue
        kept[nominal] = item
    moments = [p.derivation.injection_datetime for p in kept.values()]
    activities = [p.derivation.injected_activity_bq for p in kept.values()]
    weights = [p.derivation.weight_kg for p in kept.values()]
    scans: list[Scan] = []
    for nominal, item in kept.items():
        ct, note = _match_ct(item, cts, ct_folders)
        if note is not None:
            notes.append(note)
        derivation = item.derivation
        scans.append(
            Scan(
                pet=item.folder.resolve(),
                nominal_hours=nominal,
                ct=None if ct is None else ct.resolve(),
                overrides=SuvOverrides(
                    injection_datetime=derivation.injection_datetime,
                    weight_kg=derivation.weight_kg,
                    injected_activity_bq=derivation.injected_activity_bq,
                ),
            )
        )
        hours[f"{pseudonym}/{label}/{nominal:g}h"] = derivation.hours_after_injection
    injection = Injection(
        series=label,
        scans=tuple(scans),
        injection_datetime=moments[0] if _agreed(list(moments)) else None,
        injected_activity_bq=activities[0] if _agreed(list(activities)) else None,
        weight_kg=weights[0] if _agreed(list(weights)) else None,
    )
    return injection, hours, unplaced, notes
