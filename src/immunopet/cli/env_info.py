"""``immunopet env-info``: versions of immunopet, Python and the libraries, for bug reports."""

from __future__ import annotations

import argparse
import platform
from typing import Any

from immunopet.study.provenance import library_versions


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "env-info",
        help="print versions for a bug report",
        description="Print the versions of immunopet, Python and its libraries.",
    )
    parser.set_defaults(func=run)


def environment() -> dict[str, str]:
    """Name -> version of immunopet, Python, the platform and each library (or 'not installed')."""
    return {**library_versions(), "platform": platform.platform()}


def run(args: argparse.Namespace) -> int:
    for name, version in environment().items():
        print(f"{name:<12} {version}")
    return 0
