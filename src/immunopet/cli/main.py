"""The ``immunopet`` command: a thin dispatcher over one module per subcommand.

Each subcommand module defines ``register(subparsers)`` (adds its parser and sets
``func``) and a ``run(args) -> int``. ``main(argv)`` is callable from tests without a
subprocess. An :class:`~immunopet.errors.ImmunoPETError` becomes one line on stderr and exit
code 2; so does an :class:`OSError` (a read-only folder, a full disk: the path and what to do).
Ctrl-C ends the command with one line and exit code 130, SIGTERM with exit code 143, after
the same clean-up (worker processes stopped, the results database closed with every finished
scan kept). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from immunopet import __version__
from immunopet.errors import ImmunoPETError, describe_os_error

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


def _wanted_subcommands(argv: Sequence[str]) -> tuple[str, ...]:
    """The subcommand modules the parser needs for ``argv``.

    The first argument that is not an option names the subcommand (the top level has only
    ``--version`` and ``--help``, neither taking a value): only that module is imported, so a
    command pays for its own imports and not for every other one's. ``--version`` alone needs
    none; top-level help (before any command), no command and an unknown command import all,
    for the listing.
    """
    for token in argv:
        if token in ("-h", "--help"):
            return SUBCOMMANDS
        if token.startswith("-"):
            continue
        name = token.replace("-", "_")
        return (name,) if name in SUBCOMMANDS else SUBCOMMANDS
    if "--version" in argv:
        return ()
    return SUBCOMMANDS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only the subcommands it needs are registered.

    Without ``argv`` every subcommand is registered (the full ``--help``).
    """
    parser = argparse.ArgumentParser(
        prog="immunopet",
        description="Quantitative immuno-PET of 89Zr-labelled antibodies.",
    )
    parser.add_argument("--version", action="version", version=f"immunopet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = SUBCOMMANDS if argv is None else _wanted_subcommands(argv)
    for name in names:
        module = importlib.import_module(f"immunopet.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Called without ``argv`` (the ``immunopet`` command), the process ends here once the
    command is done (:func:`_end_now`).
    """
    if argv is None:
        return _end_now(_main(sys.argv[1:]))
    return _main(argv)


def _end_now(code: int) -> int:
    """End the process with ``code`` after Python's exit handlers, without the interpreter's
    teardown of every module the command imported (up to 0.7 s after ``immunopet run``).

    Output is flushed and the ``atexit`` handlers run (logging, multiprocessing, temporary
    folders), as at a normal exit; what is skipped is freeing objects that nothing else
    would see. When a thread other than daemons still runs (a normal exit waits for it), or
    output cannot be flushed, the process exits the normal way instead.
    """
    import atexit
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in others if t.is_alive()):
        return code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # e.g. a closed pipe: the normal way
        return code
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _main(argv: Sequence[str]) -> int:
    argv = list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from immunopet.cli._display import install
    from immunopet.study._lifeline import Terminated, install_interrupt_handlers

    restore = install_interrupt_handlers()
    restore_display = install(args.command)
    try:
        return int(args.func(args))
    except ImmunoPETError as error:
        print(f"immunopet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"immunopet {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"immunopet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`immunopet inspect DIR | head`): no message
        _silence_stdout()
        return 141
    except OSError as error:
        print(f"immunopet {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    finally:
        restore_display()
        restore()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced by something without a fd
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
