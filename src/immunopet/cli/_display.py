"""How the command line shows immunopet's warnings: one line each, the study's paths redacted.

Python's default display of a warning is two lines naming our source file and line, and the
message as raised (with the absolute paths of the study's inputs). On the command line an
:class:`~immunopet.errors.ImmunoPETWarning` is shown instead as one line,
``immunopet <command>: warning: <message>``, once per message; other warnings keep Python's
display. A command that has read a study manifest calls :func:`redact_with` with the study's
redactor: from then on its warnings show no path of the study's inputs (the patients' folders
may carry names or hospital IDs). The error line that ends a command is not redacted: it names
the folder or file the user has to act on (an output folder, say), as the command wrote it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from immunopet.errors import ImmunoPETWarning

if TYPE_CHECKING:
    from immunopet.study.model import Study

__all__ = ["install", "redact_study", "redact_with", "warn_analysis_problems"]


class _State:
    command = "immunopet"
    redactor: Callable[[str], str] | None = None
    shown: ClassVar[set[str]] = set()
    python_display: Any = warnings.showwarning


def redact_with(redactor: Callable[[str], str] | None) -> None:
    """Redact the command's warnings with ``redactor`` (None: as they are)."""
    _State.redactor = redactor


def redact_study(study: Study) -> None:
    """Redact the command's warnings with the study's path redactor."""
    from immunopet.study.privacy import PathRedactor

    redact_with(PathRedactor.for_study(study).redact)


def _redact(text: str) -> str:
    """``text`` with the study's paths redacted when a redactor is set."""
    return text if _State.redactor is None else _State.redactor(text)


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if not issubclass(category, ImmunoPETWarning):
        _State.python_display(message, category, filename, lineno, file, line)
        return
    text = _redact(str(message))
    if text in _State.shown:
        return
    _State.shown.add(text)
    print(f"{_State.command}: warning: {text}", file=sys.stderr if file is None else file)


def install(command: str) -> Callable[[], None]:
    """Show warnings as described above while ``command`` runs; returns what undoes it."""
    previous = _State.python_display = warnings.showwarning
    _State.command = f"immunopet {command}"
    _State.redactor = None
    _State.shown = set()
    warnings.showwarning = _show

    def restore() -> None:
        warnings.showwarning = previous
        _State.redactor = None

    return restore


def warn_analysis_problems(problems: Sequence[str]) -> None:
    """Show the parts of the analysis not computed because an input is wrong
    (:attr:`~immunopet.analysis.results.StudyAnalysis.problems`) as warnings: the report
    says so too, but the command's output should not look like a complete analysis."""
    for problem in problems:
        warnings.warn(f"analysis: {problem}", ImmunoPETWarning, stacklevel=2)
