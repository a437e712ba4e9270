"""The ``immunopet`` command: a thin dispatcher over one module per subcommand.

Each subcommand module defines ``register(subparsers)`` (adds its parser and sets
``func``) and a ``run(args) -> int``. ``main(argv)`` is callable from tests without a
subprocess. An :class:`~immunopet.errors.ImmunoPETError` becomes one line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from immunopet import __version__
from immunopet.errors import ImmunoPETError

__all__ = ["build_parser", "main"]

# subcommand modules, in the order `immunopet --help` lists them
SUBCOMMANDS = (
    "demo",
    "synth",
    "discover",
    "validate",
    "run",
    "inspect",
    "suv",
    "measure",
    "export_bids",
    "export_dicom",
    "report",
    "env_info",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="immunopet",
        description="Quantitative immuno-PET of 89Zr-labelled antibodies.",
    )
    parser.add_argument("--version", action="version", version=f"immunopet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"immunopet.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args))
    except ImmunoPETError as error:
        print(f"immunopet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
