"""Errors and warnings of immunopet.

One base error, :class:`ImmunoPETError`; every subclass also inherits the builtin it
specialises, so ``except ValueError`` keeps working for callers that do not know us.
An input error names the file, the DICOM tag or column, the value found and what was
expected (see :func:`describe_problem`).
"""

from __future__ import annotations

import contextlib
import errno
import warnings
from collections.abc import Iterator
from os import PathLike
from typing import Any

__all__ = [
    "DicomInputError",
    "GeometryError",
    "GeometryWarning",
    "ImmunoPETError",
    "ImmunoPETWarning",
    "InputError",
    "ManifestError",
    "StorageError",
    "SuvError",
    "SuvWarning",
    "collect_warnings",
    "describe_os_error",
    "describe_problem",
]


def describe_problem(
    message: str,
    *,
    file: str | PathLike[str] | None = None,
    tag: str | None = None,
    value: Any = None,
    expected: str | None = None,
) -> str:
    """Compose a one-line message: ``file: tag: message (found X; expected Y)``.

    Parameters
    ----------
    message : str
        What is wrong, in words.
    file : path-like, optional
        The file (or folder, or series) the problem was found in.
    tag : str, optional
        The DICOM tag written as ``"(0054,1001) Units"``, or a column/field name.
    value : object, optional
        The value found. ``None`` means "not given" and is not printed; pass the
        string ``"missing"`` to say that a value is absent.
    expected : str, optional
        What would have been accepted.

    Examples
    --------
    >>> describe_problem("unsupported units", file="pet/1.dcm", tag="(0054,1001) Units",
    ...                  value="PROPCPS", expected="BQML, CNTS or GML")
    "pet/1.dcm: (0054,1001) Units: unsupported units (found 'PROPCPS'; expected BQML, CNTS or GML)"
    """
    parts = []
    if file is not None:
        parts.append(str(file))
    if tag is not None:
        parts.append(tag)
    parts.append(message)
    text = ": ".join(parts)
    details = []
    if value is not None:
        details.append(f"found {value!r}")
    if expected is not None:
        details.append(f"expected {expected}")
    if details:
        text += " (" + "; ".join(details) + ")"
    return text


class ImmunoPETError(Exception):
    """Base class of every error raised by immunopet."""


class InputError(ImmunoPETError, ValueError):
    """An input (file, header, table, argument) cannot be used as given.

    The keyword arguments are kept as attributes so that callers (the CLI, validators)
    can report them in their own layout.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike[str] | None = None,
        tag: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ) -> None:
        self.reason = message
        self.file = None if file is None else str(file)
        self.tag = tag
        self.value = value
        self.expected = expected
        super().__init__(
            describe_problem(message, file=file, tag=tag, value=value, expected=expected)
        )


class DicomInputError(InputError):
    """A DICOM file or series is unreadable, incomplete or inconsistent."""


class SuvError(InputError):
    """No SUV can be derived from the header (and the overrides given)."""


class GeometryError(InputError):
    """Slices, grids or masks do not form a consistent geometry."""


class ManifestError(InputError):
    """A study manifest or clinical sheet is invalid."""


class StorageError(ImmunoPETError, OSError):
    """An output (results database, export, report) cannot be written or saved whole.

    The message names the path, what went wrong and what to do (:func:`describe_os_error`).
    """


_ADVICE = {
    errno.ENOSPC: "free disk space (or choose another output folder) and run again",
    errno.EDQUOT: "free space within your disk quota (or choose another folder) and run again",
    errno.EROFS: "choose an output folder on a writable file system",
    errno.EACCES: "choose an output folder you may write to (or change its permissions)",
    errno.EPERM: "choose an output folder you may write to (or change its permissions)",
}


def describe_os_error(error: OSError, *, path: str | PathLike[str] | None = None) -> str:
    """One line for a failed file operation: the path, what went wrong, what to do.

    Parameters
    ----------
    error : OSError
    path : path-like, optional
        The path to name when the error carries none.

    Examples
    --------
    >>> import errno
    >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "results/x.csv"))
    'results/x.csv: No space left on device (free disk space (or choose another output folder) and run again)'
    """  # noqa: E501
    where = error.filename if error.filename is not None else path
    what = error.strerror or str(error) or type(error).__name__
    advice = _ADVICE.get(error.errno or 0, "check the path and its folder, then run again")
    return f"{where if where is not None else 'a file'}: {what} ({advice})"


class ImmunoPETWarning(UserWarning):
    """Base class of immunopet's warnings; each is also recorded with the result."""


class SuvWarning(ImmunoPETWarning):
    """A fallback or assumption was used while deriving an SUV factor."""


class GeometryWarning(ImmunoPETWarning):
    """A geometric fallback was used (e.g. a mask resampled onto the PET grid)."""


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the :class:`ImmunoPETWarning` messages raised inside the block, each once.

    The caller records them with its result (and shows them its own way); they are not shown
    by Python. Other warnings pass on as they were raised.

    Examples
    --------
    >>> with collect_warnings() as notes:
    ...     warnings.warn("weight read as grams", SuvWarning)
    ...     warnings.warn("weight read as grams", SuvWarning)
    >>> notes
    ['weight read as grams']
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImmunoPETWarning)
        try:
            yield notes
        finally:
            notes.extend(
                dict.fromkeys(
                    str(w.message) for w in caught if issubclass(w.category, ImmunoPETWarning)
                )
            )
    for other in caught:
        if not issubclass(other.category, ImmunoPETWarning):
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
