"""Write a file so that a crash leaves either the old file or the new one, never half of one.

:func:`atomic_path` hands out a temporary name in the target's folder; the caller writes the
whole file there (with any library: pandas, nibabel, pydicom, ``json``); on success the bytes
are flushed to disk (``fsync``), the file gets the mode a plain ``open(path, "w")`` would
give it (``0666 & ~umask``) and is renamed over the target with :func:`os.replace` (atomic on
POSIX and Windows within one file system), then the folder is flushed. On any failure,
``KeyboardInterrupt`` included, the temporary file is removed and the previous target, if
any, is left untouched. A process killed mid-write leaves at most a hidden ``.<name>.*.tmp``
file next to the target, never a partial target.

The temporary name ends with the target's own suffixes (``.nii.gz``, ``.tsv``, ``.json``)
because writers choose the format or the compression by the suffix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomically"]


def _umask() -> int:
    """The process's umask: read from ``/proc`` (Linux), else by setting it and back (for an
    instant a file another thread creates would then get mode 0666)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def _fsync_folder(folder: Path) -> None:
    """Flush the rename itself (POSIX); folders cannot be opened on Windows."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write ``path`` through; renamed into place when the block ends.

    Parameters
    ----------
    path : path-like
        The file to (re)write. Its folder is created if needed.

    Yields
    ------
    pathlib.Path
        The temporary file (in the same folder, same suffixes) to write completely.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "table.csv"
    ...     with atomic_path(target) as temporary:
    ...         _ = temporary.write_text("a,b\\n1,2\\n")
    ...     print(target.read_text().splitlines(), sorted(p.name for p in Path(folder).iterdir()))
    ['a,b', '1,2'] ['table.csv']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + "".join(target.suffixes[-2:])
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _fsync_file(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_folder(target.parent)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
