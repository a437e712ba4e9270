"""Checking a parsed manifest (private to :mod:`immunopet.study.manifest`).

:class:`Problem` is one thing wrong with a manifest; :class:`Checker` walks the parsed TOML,
checks each value's type, range, choice or path and records a :class:`Problem` (with its line)
for each one that is wrong, so that validation reports every problem at once. The helpers for
arrays of strings and numbers and for activities written in MBq are shared by the modules that
read the tables of a manifest.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from pydicom import dcmread

from immunopet.errors import describe_problem
from immunopet.study._toml_lines import Key, LineIndex, dotted

__all__ = [
    "Checker",
    "Problem",
    "bq_from_mbq",
    "hours_value",
    "number_list",
    "shown",
    "text_list",
]

_NIFTI_SUFFIXES: Final = (".nii.gz", ".nii")
_DATETIME_EXAMPLE: Final = "a TOML local date-time without quotes, e.g. 2018-04-09T09:36:00"


# ----------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest.

    Attributes
    ----------
    file : str
        The manifest as named by the caller.
    line : int or None
        1-based line the problem is on (its table's header for a missing key); ``None`` when
        the problem has no place in the text (the file is missing).
    key : str
        Dotted key with 0-based array indices, e.g. ``"patients[0].injections[1].scans[0].pet"``.
    message : str
    value : object, optional
        The value found (``None``: not printed).
    expected : str, optional
        What would have been accepted.

    Examples
    --------
    >>> print(Problem("study.toml", 12, "settings.peak", "not a choice", "max", "local or global"))
    study.toml:12: settings.peak: not a choice (found 'max'; expected local or global)
    """

    file: str
    line: int | None
    key: str
    message: str
    value: Any = None
    expected: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return describe_problem(
            self.message, file=where, tag=self.key or None, value=self.value, expected=self.expected
        )


# ----------------------------------------------------------------------------- checking
_MISSING = object()


class Checker:
    """Walks the parsed manifest, collects problems and builds the study when there are none."""

    def __init__(self, file: str, base: Path, index: LineIndex) -> None:
        self.file = file
        self.base = base
        self.index = index
        self.problems: list[Problem] = []

    def add(self, key: Key, message: str, value: Any = None, expected: str | None = None) -> None:
        self.problems.append(
            Problem(self.file, self.index.line_of(key), dotted(key), message, value, expected)
        )

    # -- structure
    def table(
        self, data: Any, key: Key, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The table at ``key`` after checking its type, unknown and missing keys."""
        if not isinstance(data, dict):
            self.add(key, "not a table", shown(data), "a TOML table")
            return None
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                message = f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"
                self.add((*key, name), message, name, "one of " + ", ".join(allowed))
        for name in required:
            if name not in data:
                self.add((*key, name), "missing required key", expected="a value")
        return data

    def array(self, data: Mapping[str, Any], name: str, key: Key, what: str) -> list[Any]:
        value = data.get(name, [])
        if not isinstance(value, list):
            self.add((*key, name), "not an array", shown(value), what)
            return []
        return value

    # -- scalars (None when absent or wrong; the problem is recorded)
    def text(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        nonempty: bool = False,
        allow_int: bool = False,
    ) -> str | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if allow_int and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.add((*key, name), "not a string", shown(value), "a quoted string")
            return None
        if nonempty and not value.strip():
            self.add((*key, name), "empty", value, "a non-empty string")
            return None
        return value

    def number(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        minimum: float = 0.0,
        strict: bool = True,
    ) -> float | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        expected = f"a number {'>' if strict else '>='} {minimum:g}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add((*key, name), "not a number", shown(value), expected)
            return None
        number = float(value)
        if not (number > minimum if strict else number >= minimum) or not math.isfinite(number):
            self.add((*key, name), "out of range", value, expected)
            return None
        return number

    def choice(
        self, data: Mapping[str, Any], name: str, key: Key, options: Sequence[str]
    ) -> str | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            message = "not one of the choices" + (f"; did you mean {close[0]!r}?" if close else "")
            self.add((*key, name), message, shown(value), " | ".join(options))
            return None
        return str(value)

    def moment(self, data: Mapping[str, Any], name: str, key: Key) -> datetime | None:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                self.add(
                    (*key, name),
                    "date-time has a UTC offset; the manifest uses the scanner clock",
                    value.isoformat(),
                    _DATETIME_EXAMPLE,
                )
                return None
            return value
        problem = "a date or time alone" if isinstance(value, date | time) else "not a date-time"
        self.add((*key, name), problem, shown(value), _DATETIME_EXAMPLE)
        return None

    # -- paths
    def path(
        self,
        data: Mapping[str, Any],
        name: str,
        key: Key,
        *,
        kind: str,
    ) -> Path | None:
        """A path relative to the manifest, checked to exist as ``kind`` says.

        ``kind``: ``"file"``, ``"any"`` (file or folder), ``"PT"`` or ``"CT"`` (a DICOM folder
        of that modality, or a NIfTI file; a PET NIfTI also needs its JSON sidecar).
        """
        written = self.text(data, name, key, nonempty=True)
        if written is None:
            return None
        path = self.base / Path(written).expanduser()
        where = (*key, name)
        if not path.exists():
            self.add(where, "no such file or folder", written, _describe_kind(kind))
            return None
        if kind == "file" and not path.is_file():
            self.add(where, "not a file", written, "a file")
            return None
        if kind in ("PT", "CT"):
            if path.is_dir():
                problem = _dicom_folder_problem(path, kind)
                if problem is not None:
                    self.add(where, problem, written, _describe_kind(kind))
                    return None
            elif not written.lower().endswith(_NIFTI_SUFFIXES):
                self.add(where, "neither a folder nor a NIfTI file", written, _describe_kind(kind))
                return None
            elif kind == "PT" and not _sidecar_of(path).is_file():
                self.add(
                    where,
                    "PET NIfTI without its PET-BIDS JSON sidecar",
                    written,
                    f"{_sidecar_of(path).name} next to it",
                )
                return None
        return path.resolve()


def _describe_kind(kind: str) -> str:
    return {
        "file": "an existing file",
        "any": "an existing file or folder",
        "PT": "a folder holding one DICOM PET series, or a .nii/.nii.gz with a .json sidecar",
        "CT": "a folder holding one DICOM CT series, or a .nii/.nii.gz file",
    }[kind]


def shown(value: Any) -> Any:
    """A value as shown in a message: dates as ISO text, tables as 'a table'."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return value


def _sidecar_of(path: Path) -> Path:
    name = path.name
    for suffix in _NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def _looks_like_dicom(path: Path) -> bool:
    """Preamble + ``DICM``, or a raw data set starting with group 0002 or 0008."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 2 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008)


def _dicom_folder_problem(folder: Path, modality: str) -> str | None:
    """Why ``folder`` cannot hold a DICOM series of ``modality``; None when it can.

    Cheap: files are visited in sorted order and stop at the first whose (0008,0060) Modality
    (read alone, without pixel data) is ``modality``.
    """
    seen: set[str] = set()
    n_files = 0
    for current, subfolders, names in os.walk(folder):
        subfolders.sort()
        for name in sorted(names):
            n_files += 1
            path = Path(current) / name
            if not _looks_like_dicom(path):
                continue
            try:
                header = dcmread(
                    path, stop_before_pixels=True, force=True, specific_tags=["Modality"]
                )
            except Exception:  # pydicom raises many types on damaged files
                continue
            found = str(header.get("Modality", "") or "")
            if found == modality:
                return None
            seen.add(found or "?")
    if n_files == 0:
        return "empty folder"
    if not seen:
        return f"no DICOM file among the folder's {n_files} file(s)"
    name = {"PT": "PET", "CT": "CT"}.get(modality, modality)
    return f"the folder holds no {name} image ((0008,0060) Modality {', '.join(sorted(seen))})"


def text_list(c: Checker, data: Mapping[str, Any], name: str, key: Key) -> tuple[str, ...] | None:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        c.add((*key, name), "not an array of strings", shown(value), 'e.g. ["PD"]')
        return None
    return tuple(str(v).strip() for v in value)


def number_list(
    c: Checker, data: Mapping[str, Any], name: str, key: Key, *, increasing: bool = False
) -> tuple[float, ...] | None:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return None
    ok = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if ok and increasing:
        ok = len(value) > 0 and all(a < b for a, b in itertools.pairwise(value))
    if not ok:
        expected = "an increasing array of numbers" if increasing else "an array of numbers"
        c.add((*key, name), "not " + expected.replace("an ", "an ", 1), shown(value), expected)
        return None
    return tuple(float(v) for v in value)


def bq_from_mbq(activity_mbq: float) -> float:
    """Bq from MBq by shifting the decimal point of the number as written (36.9 -> 36900000.0).

    ``36.9 * 1e6`` happens to be exact, but about 3 % of such products are not; shifting the
    shortest decimal representation never adds a rounding error of its own.
    """
    return float(Decimal(repr(float(activity_mbq))).scaleb(6))


def hours_value(hours: float) -> float | int:
    return int(hours) if float(hours).is_integer() else hours
