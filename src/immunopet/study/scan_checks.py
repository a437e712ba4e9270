"""Checks of a study's scans from their headers: what ``validate`` adds to the manifest checks.

:func:`review_scans` opens every scan's PET (and CT) folder of a manifest that is otherwise
valid and runs the checks the analysis (``immunopet run``) runs on them, reading headers only:

* the slice stack of each DICOM PET series (and, as notes only, of the CT, which the analysis
  does not read), with :func:`immunopet.io.dicom.check_series` -- the
  one function that loading calls too, so a series ``validate`` accepts is one ``run`` reads
  (slices within 0.1 slice of a uniform grid are accepted with a note);
* the scan's ``nominal_hours`` against the hours after injection computed from the headers
  (:func:`immunopet.suv.factors.derive_suv` with the manifest's overrides) or from the PET-BIDS
  sidecar of a NIfTI PET, with :func:`immunopet.study.timepoints.check_nominal_hours` (which
  the pipeline applies too).

Each patient's baseline FDG scan (``[patients.fdg]``) is reviewed the same way, with the rules
that differ for 18F: the header's nuclide must be 18F (an 89Zr series listed as the FDG scan
is a problem, since ``run`` would measure it with the wrong half-life), the injection
date-time comes from that scan's header or its own ``[patients.fdg.overrides]`` (never from a
tracer injection), the 18F half-life (109.77 min) decides the IBSI rules the SUV engine
applies to a short-lived nuclide (an injection date assumed from the time of day), and
``nominal_hours`` (default 1 h) is checked against its own injection. What the SUV engine
assumed for an FDG scan is printed as a note (``run`` records no warning for it).

Every problem and note names a scan by pseudonym and role (``P01/fdg PET``,
``P01/tracer-only/120h PET``), never by its folder: messages pass through the study's
:class:`~immunopet.study.privacy.PathRedactor`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunopet.errors import ImmunoPETError, InputError, describe_problem
from immunopet.io.dicom import check_series, find_one_series
from immunopet.io.jsonfile import read_json_object
from immunopet.io.nifti import sidecar_path
from immunopet.study._toml_lines import Key, LineIndex, dotted
from immunopet.study.fdg import FDG_NUCLIDE, check_fdg_nuclide
from immunopet.study.manifest import Problem
from immunopet.study.model import Scan, ScanRef, Study
from immunopet.study.pipeline import merged_overrides
from immunopet.study.privacy import PathRedactor
from immunopet.study.timepoints import check_nominal_hours
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import SuvDerivation, SuvOverrides
from immunopet.suv.sidecar import derive_suv_from_sidecar

__all__ = ["FDG_NUCLIDE", "ScanReview", "review_scans"]


@dataclass(frozen=True)
class ScanReview:
    """What :func:`review_scans` found.

    Attributes
    ----------
    problems : tuple of Problem
        Errors, each on the manifest line of the scan's key: ``...scans[k].pet`` for a PET
        that cannot be read, ``...scans[k].nominal_hours`` for a time point far
        from the headers' hours after injection.
    notes : tuple of str
        Accepted with a note: slices slightly off the uniform grid, and problems of the CT
        series (the analysis does not read the CT, so they do not fail validation).
    hours_after_injection : dict of str to float
        Actual hours after injection by scan id, for the scans whose hours could be computed.
    """

    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    hours_after_injection: dict[str, float]


def _scan_keys(study: Study) -> Iterator[tuple[Key, ScanRef]]:
    refs = iter(study.scans())
    for i, patient in enumerate(study.patients):
        for j, injection in enumerate(patient.injections):
            for k, _ in enumerate(injection.scans):
                yield ("patients", i, "injections", j, "scans", k), next(refs)


def _message(error: ImmunoPETError) -> tuple[str, Any, str | None]:
    if isinstance(error, InputError):
        where = describe_problem(error.reason, file=error.file, tag=error.tag)
        return where, error.value, error.expected
    return str(error), None, None


def _nifti_hours(path: Path) -> float:
    sidecar = read_json_object(sidecar_path(path))
    values = []
    for key in ("ScanStart", "InjectionStart"):
        value = sidecar.get(key, 0.0 if key == "InjectionStart" else None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(
                "not a number", file=sidecar_path(path), tag=key, value=value, expected="seconds"
            )
        values.append(float(value))
    return (values[0] - values[1]) / 3600.0


def _fdg_before(study: Study, key: Key | None, done: set[int]) -> list[tuple[Key, str, Scan]]:
    """The FDG scans not yet reviewed of the patients up to ``key``'s (all when None): each
    patient's FDG scan is reviewed before the tracer scans, as the manifest lists it."""
    last = len(study.patients) - 1 if key is None else int(key[1])
    found: list[tuple[Key, str, Scan]] = []
    for i in range(last + 1):
        fdg = study.patients[i].fdg
        if i not in done and fdg is not None:
            found.append((("patients", i, "fdg"), f"{study.patients[i].pseudonym}/fdg", fdg))
        done.add(i)
    return found


_MANIFEST_KEYS: dict[str, str] = {
    "--injection-datetime": "injection_datetime",
    "--weight-kg": "weight_kg",
    "--height-m": "height_m",
    "--sex": "sex",
    "--injected-activity-bq": "injected_activity_mbq",
    "--half-life-s": "half_life_s",
}
"""The manifest key of each command-line override flag the SUV engine names in a refusal."""


def _manifest_flags(text: str, table: str) -> str:
    """``text`` with the override flags the SUV engine names turned into manifest keys.

    Examples
    --------
    >>> _manifest_flags("a date-time, or --injection-datetime", "[patients.fdg.overrides]")
    'a date-time, or injection_datetime in [patients.fdg.overrides]'
    """
    for flag, key in _MANIFEST_KEYS.items():
        text = re.sub(re.escape(flag) + r"(?![\w-])", f"{key} in {table}", text)
    return text


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def _header_derivation(
    pet: Path, overrides: SuvOverrides, notes: list[str], label: str
) -> SuvDerivation:
    """The SUV record of a PET from its headers only (DICOM series or PET-BIDS sidecar)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pet.is_dir():
            series = find_one_series(pet, modality="PT")
            notes.extend(f"{label}: {note}" for note in check_series(series).warnings)
            return derive_suv(series.headers, source=series.files[0], overrides=overrides)
        return derive_suv_from_sidecar(
            read_json_object(sidecar_path(pet)), overrides=overrides, source=sidecar_path(pet)
        )


def review_scans(study: Study, manifest: str | Path) -> ScanReview:
    """Check every scan's images from their headers, as the analysis will.

    Parameters
    ----------
    study : Study
        From :func:`immunopet.study.manifest.load_manifest`.
    manifest : path
        The manifest file (for the line numbers of the problems).

    Returns
    -------
    ScanReview
        Problems and notes name scans by pseudonym and role; FDG scans are keyed
        ``"P01/fdg"`` in ``hours_after_injection``.
    """
    file = str(manifest)
    index = LineIndex(Path(manifest).read_text(encoding="utf-8"))
    redactor = PathRedactor.for_study(study)
    root = Path(study.root)
    problems: list[Problem] = []
    notes: list[str] = []
    hours: dict[str, float] = {}

    def add(key: Key, error: ImmunoPETError, label: str) -> None:
        message, value, expected = _message(error)
        table = "[patients.fdg.overrides]" if "fdg" in key else "the scan's overrides"
        message = _manifest_flags(redactor.redact(message), table)
        if expected is not None:
            expected = _manifest_flags(expected, table)
        if label not in message:
            message = f"{label}: {message}"
        if isinstance(value, str):
            value = redactor.redact(value)
        problems.append(Problem(file, index.line_of(key), dotted(key), message, value, expected))

    def review(key: Key, scan_id: str, scan: Scan, overrides: SuvOverrides, fdg: bool) -> None:
        pet = _absolute(scan.pet, root)
        label = f"{scan_id} PET"
        found: list[str] = []
        try:
            if fdg or pet.is_dir():
                derivation = _header_derivation(pet, overrides, found, scan_id)
                if fdg:
                    check_fdg_nuclide(derivation, pet)
                    found.extend(f"{scan_id}: {warning}" for warning in derivation.warnings)
                actual = derivation.hours_after_injection
            else:
                actual = _nifti_hours(pet)
        except ImmunoPETError as error:
            add((*key, "pet"), error, label)
        else:
            hours[scan_id] = actual
            try:
                check_nominal_hours(scan.nominal_hours, actual, file=pet)
            except ImmunoPETError as error:
                add((*key, "nominal_hours"), error, label)
        notes.extend(redactor.redact(note) for note in found)
        ct = None if scan.ct is None else _absolute(scan.ct, root)
        if ct is not None and ct.is_dir():
            try:
                series = find_one_series(ct, modality="CT")
                notes.extend(
                    redactor.redact(f"{scan_id}: {note}") for note in check_series(series).warnings
                )
            except ImmunoPETError as error:  # the analysis does not read the CT: a note
                notes.append(redactor.redact(f"{scan_id}: ct not readable as a series: {error}"))

    fdg_done: set[int] = set()
    for key, ref in _scan_keys(study):
        fdg_scans = _fdg_before(study, key, fdg_done)
        for fdg_key, fdg_id, fdg_scan in fdg_scans:
            review(fdg_key, fdg_id, fdg_scan, fdg_scan.overrides, fdg=True)
        review(key, ref.scan_id, ref.scan, merged_overrides(ref), fdg=False)
    for fdg_key, fdg_id, fdg_scan in _fdg_before(study, None, fdg_done):
        review(fdg_key, fdg_id, fdg_scan, fdg_scan.overrides, fdg=True)
    return ScanReview(problems=tuple(problems), notes=tuple(notes), hours_after_injection=hours)
