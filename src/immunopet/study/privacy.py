"""Keep folder and file names of a study out of every output.

PACS exports often name folders (and files) after the patient, and the absolute path of a
study says where it lives and who worked on it. Whatever a run stores or prints (tables,
provenance, warnings, failure messages, the report built from them) therefore passes through
a :class:`PathRedactor` first, which rewrites every path of the study in a text:

* by default (the study does not declare its names safe) an input is named by its scan and
  role (``"P01/tracer-only/120h PET"``, ``"P01/tracer-only/120h VOI file 2"``, ``"the
  clinical sheet"``); a file inside an input folder becomes ``"<input> (one of its files)"``;
  any other path under the study folder becomes ``"a file of the study"``;
* with ``show_paths = true`` in the manifest's ``[study]`` table, paths are written relative
  to the study folder (``"dicom/P01/tracer-only/120h/pet/IM0001.dcm"``); paths outside it are
  reduced to the file name alone.

In both cases no absolute path of the study survives. A path ends at whitespace or
punctuation unless the longer path exists (a folder "DOE JOHN" is replaced whole), and a
trailing "/" is kept (``"<folder>/[series 1 ...]"`` becomes ``"P01/... PET/[series 1 ...]"``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from immunopet.study.model import Study

__all__ = ["STUDY_FILE", "PathRedactor"]

STUDY_FILE = "a file of the study"
"""What an unnamed path under the study folder becomes when names are not shown."""

_INPUT_LABELS = {
    "clinical": "the clinical sheet",
    "adverse_events": "the adverse-event sheet",
    "blood_samples": "the blood sample sheet",
    "counter_calibration": "the counter calibration",
    "lesions": "the lesion sheet",
}

# characters that end a path inside a message; a name with such characters ("DOE JOHN",
# "scan (2).dcm") is still taken whole when that longer path exists (_extend)
_TAIL = r"(?P<tail>(?:/[^/\s:;,'\"()\[\]{}<>|]*)*)"
_STOPS = frozenset(" \t:;,'\"()[]{}<>|")
_LONGEST_NAME = 255


def _spellings(path: Path) -> list[str]:
    """The forms a path may take in a message: as given, absolute, resolved."""
    forms = {str(path), os.path.abspath(path)}
    with contextlib.suppress(OSError):  # resolve() fails only on symlink loops
        forms.add(str(path.resolve()))
    return [form.rstrip("/") or "/" for form in forms if form not in ("", ".", "/")]


class PathRedactor:
    """Rewrite the paths of one study in texts and table rows.

    Parameters
    ----------
    root : path-like
        The study folder (the manifest's folder).
    labels : mapping of path-like to str
        Known inputs (folders or files) and how to call them when names are not shown.
    show_paths : bool
        The study declares its names safe: write paths relative to ``root``.

    Examples
    --------
    >>> redactor = PathRedactor("/data/DOE_JOHN", {"/data/DOE_JOHN/pet": "P01/72h PET"})
    >>> redactor.redact("/data/DOE_JOHN/pet/IM1.dcm: (0054,1001) Units: unknown")
    'P01/72h PET (one of its files): (0054,1001) Units: unknown'
    >>> PathRedactor("/data/DOE_JOHN", {}, show_paths=True).redact("in /data/DOE_JOHN/a/b.csv")
    'in a/b.csv'
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        labels: Mapping[str | os.PathLike[str], str] | None = None,
        *,
        show_paths: bool = False,
    ) -> None:
        self.root = Path(root)
        self.show_paths = show_paths
        self._labels: dict[str, str] = {}
        self._relative: dict[str, str] = {}
        for path, label in (labels or {}).items():
            for form in _spellings(Path(path)):
                self._labels[form] = label
        root_forms = _spellings(self.root)
        for form in root_forms:
            self._labels.setdefault(form, STUDY_FILE)
            self._relative[form] = ""
        prefixes = sorted(self._labels, key=len, reverse=True)
        self._pattern = (
            re.compile(
                "(?P<prefix>"
                + "|".join(re.escape(p) for p in prefixes)
                + ")"
                + _TAIL
                + r"(?![\w.\-])"
            )
            if prefixes
            else None
        )
        self._roots = sorted(root_forms, key=len, reverse=True)

    @classmethod
    def for_study(cls, study: Study) -> PathRedactor:
        """The redactor of a study: its inputs labelled by scan and role."""
        labels: dict[str | os.PathLike[str], str] = {}
        root = Path(study.root)
        for name, label in _INPUT_LABELS.items():
            path = getattr(study.inputs, name, None)
            if path is not None:
                labels[_absolute(path, root)] = label
        for ref in study.scans():
            labels[_absolute(ref.scan.pet, root)] = f"{ref.scan_id} PET"
            if ref.scan.ct is not None:
                labels[_absolute(ref.scan.ct, root)] = f"{ref.scan_id} CT"
            if ref.scan.organ_masks is not None:
                labels[_absolute(ref.scan.organ_masks, root)] = f"{ref.scan_id} organ masks"
            for number, source in enumerate(ref.scan.vois, start=1):
                labels[_absolute(source.path, root)] = f"{ref.scan_id} VOI file {number}"
        for patient in study.patients:
            if patient.fdg is not None:
                fdg = f"{patient.pseudonym}/fdg"
                labels[_absolute(patient.fdg.pet, root)] = f"{fdg} PET"
                if patient.fdg.ct is not None:
                    labels[_absolute(patient.fdg.ct, root)] = f"{fdg} CT"
                for number, source in enumerate(patient.fdg.vois, start=1):
                    labels[_absolute(source.path, root)] = f"{fdg} VOI file {number}"
        return cls(root, labels, show_paths=study.show_paths)

    # ------------------------------------------------------------------ rewriting
    def _relative_form(self, path: str) -> str:
        for root in self._roots:
            if path == root:
                return "."
            if path.startswith(root + "/"):
                return path[len(root) + 1 :]
        return Path(path).name

    def _replacement(self, prefix: str, tail: str) -> str:
        if self.show_paths:
            return self._relative_form(prefix + tail)
        label = self._labels[prefix]
        # a trailing "/" is the text's separator ("<folder>/[series 1 ...]"): keep it
        end = "/" if tail.endswith("/") else ""
        if tail.strip("/") and label != STUDY_FILE:
            return f"{label} (one of its files){end}"
        return label + end

    def redact(self, text: str) -> str:
        """``text`` with every path of the study rewritten (see the module's notes).

        A path stops at whitespace or punctuation (``:;,'"()[]{}<>|``) unless the longer path
        exists on disk, so that a folder or file named "DOE JOHN" or "scan (2).dcm" inside a
        study folder is replaced whole instead of leaving its end in the text.
        """
        if self._pattern is None or not text:
            return text
        out: list[str] = []
        position = 0
        while (match := self._pattern.search(text, position)) is not None:
            end = _extend(text, match.start(), match.end())
            prefix = match.group("prefix")
            tail = text[match.start("tail") : end]
            out.append(text[position : match.start()])
            out.append(self._replacement(prefix, tail))
            position = end
        out.append(text[position:])
        return "".join(out)

    def path(self, path: str | os.PathLike[str]) -> str:
        """How to write one path of the study in an output."""
        text = os.path.abspath(path)
        redacted = self.redact(text)
        if redacted == text:  # outside the study: the file name alone, or nothing
            return Path(text).name if self.show_paths else "a file outside the study"
        return redacted

    def redact_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a table row with every text value redacted (paths turned into text)."""
        return {key: self._value(value) for key, value in row.items()}

    def redact_rows(self, rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
        """:meth:`redact_row` over rows."""
        return tuple(self.redact_row(row) for row in rows)

    def _value(self, value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return self.path(value)
        if isinstance(value, str):
            return self.redact(value)
        return value


def _extend(text: str, start: int, end: int) -> int:
    """Where the path starting at ``start`` ends: ``end`` (the regex's end) or later, at the
    last stop character or end of text (within one name length and one line) up to which the
    path exists on disk."""
    limit = min(len(text), end + _LONGEST_NAME)
    newline = text.find("\n", end, limit)
    if newline >= 0:
        limit = newline
    best = end
    for j in range(end + 1, limit + 1):
        if j < limit and text[j] not in _STOPS and text[j] != "/":
            continue
        candidate = text[start:j].rstrip("/")
        if candidate and os.path.lexists(candidate):
            best = j
    return best


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path
