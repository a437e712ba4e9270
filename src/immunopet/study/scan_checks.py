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
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunopet.errors import ImmunoPETError, InputError, describe_problem
from immunopet.io.dicom import check_series, find_one_series
from immunopet.io.jsonfile import read_json_object
from immunopet.io.nifti import sidecar_path
from immunopet.study._toml_lines import Key, LineIndex
from immunopet.study.manifest import Problem
from immunopet.study.model import ScanRef, Study
from immunopet.study.pipeline import merged_overrides
from immunopet.study.timepoints import check_nominal_hours
from immunopet.suv.factors import derive_suv

__all__ = ["ScanReview", "review_scans"]


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
    """
    file = str(manifest)
    index = LineIndex(Path(manifest).read_text(encoding="utf-8"))
    problems: list[Problem] = []
    notes: list[str] = []
    hours: dict[str, float] = {}

    def add(key: Key, error: ImmunoPETError) -> None:
        message, value, expected = _message(error)
        problems.append(Problem(file, index.line_of(key), _dotted(key), message, value, expected))

    for key, ref in _scan_keys(study):
        pet = ref.scan.pet
        try:
            if pet.is_dir():
                series = find_one_series(pet, modality="PT")
                notes.extend(f"{ref.scan_id}: {note}" for note in check_series(series).warnings)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    derivation = derive_suv(
                        series.headers, source=series.files[0], overrides=merged_overrides(ref)
                    )
                actual = derivation.hours_after_injection
            else:
                actual = _nifti_hours(pet)
        except ImmunoPETError as error:
            add((*key, "pet"), error)
        else:
            hours[ref.scan_id] = actual
            try:
                check_nominal_hours(ref.nominal_hours, actual, file=pet)
            except ImmunoPETError as error:
                add((*key, "nominal_hours"), error)
        ct = ref.scan.ct
        if ct is not None and ct.is_dir():
            try:
                series = find_one_series(ct, modality="CT")
                notes.extend(f"{ref.scan_id}: {note}" for note in check_series(series).warnings)
            except ImmunoPETError as error:  # the analysis does not read the CT: a note
                notes.append(f"{ref.scan_id}: ct not readable as a series: {error}")
    return ScanReview(problems=tuple(problems), notes=tuple(notes), hours_after_injection=hours)


def _dotted(key: Key) -> str:
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
