"""Writing a study as a manifest (private to :mod:`immunopet.study.manifest`).

:func:`format_manifest` gives the TOML text of a :class:`~immunopet.study.model.Study` and
:func:`write_manifest` writes it; :func:`immunopet.study.manifest.load_manifest` reads the
file back to the same study (paths relative to the manifest's folder where they lie inside
it, activities in MBq written so that they read back to the same Bq).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from math import nextafter
from pathlib import Path
from typing import Any, Final

import tomli_w

from immunopet.study._manifest_check import bq_from_mbq, hours_value
from immunopet.study.model import (
    FDG_NOMINAL_HOURS,
    AnalysisPlan,
    AnalysisSettings,
    Injection,
    ResponsePlan,
    Scan,
    Study,
    StudyInputs,
)
from immunopet.suv.record import SuvOverrides

__all__ = ["format_manifest", "write_manifest"]

_MBQ: Final = 1.0e6


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies inside it, else absolute (POSIX separators)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _mbq(activity_bq: float) -> float:
    """MBq that :func:`bq_from_mbq` turns back into exactly ``activity_bq`` when one exists.

    Always the case for activities of up to 15 significant digits (DICOM DS values, typed
    values); for other floats the result may differ by one unit in the last place.
    """
    shifted = float(Decimal(repr(float(activity_bq))).scaleb(-6))
    guess = activity_bq / _MBQ
    for candidate in (shifted, guess, nextafter(guess, math.inf), nextafter(guess, 0.0)):
        if bq_from_mbq(candidate) == activity_bq:
            return candidate
    return shifted


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }"
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()  # 2018-04-09T09:36:00, as people write it
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def format_manifest(
    study: Study,
    *,
    base: Path,
    preamble: Sequence[str] = (),
    scan_comments: Mapping[str, Sequence[str]] | None = None,
    postscript: Sequence[str] = (),
) -> str:
    """The TOML text of a study, paths relative to ``base`` where they lie inside it.

    Parameters
    ----------
    study : Study
    base : Path
        The folder the manifest will be in.
    preamble, postscript : sequence of str
        Comment lines (without ``#``) put before and after the tables.
    scan_comments : mapping of str to sequence of str, optional
        Comment lines above a scan, by :attr:`~immunopet.study.model.ScanRef.scan_id`.

    Returns
    -------
    str
        Scan overrides are written only where they differ from the injection's values, so
        that reading the text back gives the same study.
    """
    comments = scan_comments or {}
    out: list[str] = [f"# {line}".rstrip() for line in preamble]
    if out:
        out.append("")

    def put(name: str, value: Any) -> None:
        if value is not None:
            out.append(f"{name} = {_toml_value(value)}")

    out.append("[study]")
    put("name", study.name)
    if study.tracer:
        put("tracer", study.tracer)
    if study.show_paths:
        put("show_paths", True)
    inputs = {f.name: getattr(study.inputs, f.name) for f in fields(StudyInputs)}
    if any(v is not None for v in inputs.values()):
        out += ["", "[inputs]"]
        for name, value in inputs.items():
            put(name, None if value is None else _relative(value, base))
    out += ["", "[settings]"]
    for f in fields(AnalysisSettings):
        put(f.name, getattr(study.settings, f.name))
    if study.plan != AnalysisPlan():
        out += _format_plan(study.plan)
    for exclusion in study.exclusions:
        out += ["", "[[exclusions]]"]
        put("patient", exclusion.patient)
        put("lesion", exclusion.lesion)
        put("reason", exclusion.reason)
    refs = {(r.patient, r.series, r.nominal_hours): r.scan_id for r in study.scans()}
    for patient in study.patients:
        out += ["", "[[patients]]"]
        put("id", patient.pseudonym)
        if patient.fdg is not None:
            out += _format_fdg(patient.fdg, base)
        for injection in patient.injections:
            out += ["", "[[patients.injections]]"]
            put("series", injection.series)
            put("injection_datetime", injection.injection_datetime)
            if injection.injected_activity_bq is not None:
                put("injected_activity_mbq", _mbq(injection.injected_activity_bq))
            put("unlabelled_mass_mg", injection.unlabelled_mass_mg)
            put("weight_kg", injection.weight_kg)
            for scan in injection.scans:
                out.append("")
                scan_id = refs.get((patient.pseudonym, injection.series, scan.nominal_hours), "")
                out += [f"# {line}".rstrip() for line in comments.get(scan_id, ())]
                out.append("[[patients.injections.scans]]")
                put("nominal_hours", hours_value(scan.nominal_hours))
                put("pet", _relative(scan.pet, base))
                put("ct", None if scan.ct is None else _relative(scan.ct, base))
                if scan.organ_masks is not None:
                    put("organ_masks", _relative(scan.organ_masks, base))
                if scan.vois:
                    out.append("vois = [")
                    for voi in scan.vois:
                        item = {"path": _relative(voi.path, base), "kind": voi.kind}
                        out.append(f"    {_toml_value(item)},")
                    out.append("]")
                extra = _scan_overrides(scan.overrides, injection)
                if extra:
                    out.append("[patients.injections.scans.overrides]")
                    for name, value in extra.items():
                        put(name, value)
    if postscript:
        out.append("")
        out += [f"# {line}".rstrip() for line in postscript]
    return "\n".join(out) + "\n"


def _format_fdg(scan: Scan, base: Path) -> list[str]:
    """The ``[patients.fdg]`` table of a patient's FDG reference scan."""
    lines = ["", "[patients.fdg]"]
    if scan.nominal_hours != FDG_NOMINAL_HOURS:
        lines.append(f"nominal_hours = {_toml_value(hours_value(scan.nominal_hours))}")
    lines.append(f"pet = {_toml_value(_relative(scan.pet, base))}")
    if scan.ct is not None:
        lines.append(f"ct = {_toml_value(_relative(scan.ct, base))}")
    if scan.vois:
        lines.append("vois = [")
        for voi in scan.vois:
            item = {"path": _relative(voi.path, base), "kind": voi.kind}
            lines.append(f"    {_toml_value(item)},")
        lines.append("]")
    extra = _scan_overrides(scan.overrides, Injection(series="fdg"))
    if extra:
        lines.append("[patients.fdg.overrides]")
        lines += [f"{name} = {_toml_value(value)}" for name, value in extra.items()]
    return lines


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _format_plan(plan: AnalysisPlan) -> list[str]:
    """The ``[analysis]`` tables of a plan (every key written)."""
    lines: list[str] = ["", "[analysis]"]
    for f in fields(AnalysisPlan):
        if f.name not in ("response", "ihc"):
            lines.append(f"{f.name} = {_toml_value(_plain(getattr(plan, f.name)))}")
    if not plan.ihc:
        lines.append("ihc = []")
    lines += ["", "[analysis.response]"]
    for f in fields(ResponsePlan):
        lines.append(f"{f.name} = {_toml_value(_plain(getattr(plan.response, f.name)))}")
    for marker in plan.ihc:
        lines += ["", "[[analysis.ihc]]"]
        lines.append(f"column = {_toml_value(marker.column)}")
        lines.append(f"label = {_toml_value(marker.label)}")
        lines.append(f"cutoffs = {_toml_value(list(marker.cutoffs))}")
    return lines


def _scan_overrides(overrides: SuvOverrides, injection: Injection) -> dict[str, Any]:
    """The override values a scan must state itself (those its injection does not give)."""
    values: dict[str, Any] = {}
    if overrides.weight_kg != injection.weight_kg and overrides.weight_kg is not None:
        values["weight_kg"] = overrides.weight_kg
    if overrides.height_m is not None:
        values["height_m"] = overrides.height_m
    if overrides.sex is not None:
        values["sex"] = overrides.sex
    moment = overrides.injection_datetime
    if moment != injection.injection_datetime and moment is not None:
        values["injection_datetime"] = moment
    activity = overrides.injected_activity_bq
    if activity != injection.injected_activity_bq and activity is not None:
        values["injected_activity_mbq"] = _mbq(activity)
    if overrides.half_life_s is not None:
        values["half_life_s"] = overrides.half_life_s
    return values


def write_manifest(study: Study, path: str | os.PathLike[str]) -> Path:
    """Write a study as a manifest that :func:`~immunopet.study.manifest.load_manifest` reads
    back to the same study.

    Parameters
    ----------
    study : Study
    path : str or path-like
        The ``.toml`` file to write (its folder is created). Paths inside the manifest's
        folder are written relative to it, others absolute.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Every setting is written explicitly. A scan's overrides that equal its injection's
    ``injection_datetime``, ``injected_activity_bq`` or ``weight_kg`` are not repeated: reading
    applies the injection's values to its scans. A study built by hand whose injection gives a
    value that one of its scans' overrides lacks therefore reads back with that value filled
    in (the manifest has no way to say "not for this scan").
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = format_manifest(study, base=target.resolve().parent)
    target.write_text(text, encoding="utf-8")
    return target
