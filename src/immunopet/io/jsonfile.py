"""Reading a JSON file whose top level must be an object (sidecars, calibrations, settings)."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

from immunopet.errors import InputError

__all__ = ["read_json_object"]


def read_json_object(
    path: str | PathLike[str], *, what: str = "file", example: str = "an object {...}"
) -> dict[str, Any]:
    """The JSON object in ``path``.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the message ("sidecar", "calibration" ...).
    example : str
        What an acceptable content looks like, for the message.

    Raises
    ------
    InputError
        When the file cannot be read, is not valid JSON (line and column named), or its top
        level is not an object.
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the {what} ({exc.strerror})", file=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path
        ) from exc
    if not isinstance(content, dict):
        raise InputError(
            f"{what} must be a JSON object",
            file=path,
            value=type(content).__name__,
            expected=example,
        )
    return content
