"""``immunopet env-info``: versions of immunopet, Python and the libraries, for bug reports."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from typing import Any

LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "pydicom",
    "nibabel",
    "highdicom",
    "lifelines",
    "matplotlib",
    "dask",
    "distributed",
    "duckdb",
    "pyarrow",
    "jinja2",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "env-info",
        help="print versions for a bug report",
        description="Print the versions of immunopet, Python and its libraries.",
    )
    parser.set_defaults(func=run)


def environment() -> dict[str, str]:
    """Name -> version of immunopet, Python, the platform and each library (or 'not installed')."""
    info = {
        "immunopet": importlib.metadata.version("immunopet"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in LIBRARIES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "not installed"
    return info


def run(args: argparse.Namespace) -> int:
    for name, version in environment().items():
        print(f"{name:<12} {version}")
    return 0
