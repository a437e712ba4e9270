"""Start-up cost of the command line: a command imports what it needs and nothing more.

Each check runs a fresh interpreter (the test process has long imported everything) and
lists which heavy libraries ended up in ``sys.modules``. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from immunopet.cli.main import SUBCOMMANDS, _wanted_subcommands

HEAVY = ("scipy", "pandas", "matplotlib", "dask", "distributed", "duckdb", "pyarrow")
SRC = str(Path(__file__).resolve().parents[1] / "src")

PROBE = """
import json, sys
from immunopet.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "modules": loaded}))
"""


def loaded_modules(*argv: str) -> tuple[object, set[str]]:
    """Exit code and top-level packages imported by ``immunopet ARGV`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def test_version_imports_nothing_heavy() -> None:
    code, modules = loaded_modules("--version")
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "pydicom" not in modules


def test_import_immunopet_is_light() -> None:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    probe = "import sys, immunopet; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert not {name.split(".")[0] for name in out} & set(HEAVY)


def test_inspect_help_does_not_import_the_study_stack() -> None:
    code, modules = loaded_modules("inspect", "--help")
    assert code == 0
    assert not modules & {"pandas", "matplotlib", "dask", "duckdb"}


def test_suv_of_a_series_imports_only_what_it_uses(tmp_path: Path) -> None:
    from dicom_factory import make_pet_series

    folder = make_pet_series(tmp_path / "pet")
    code, modules = loaded_modules("suv", str(folder), "-o", str(tmp_path / "suv.nii"))
    assert code == 0
    assert (tmp_path / "suv.nii").is_file()
    unused = {"pandas", "matplotlib", "dask", "duckdb", "pyarrow", "multiprocessing"}
    assert not modules & unused, sorted(modules & unused)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--version"], ()),
        (["suv", "folder", "-o", "x.nii.gz"], ("suv",)),
        (["export-dicom", "study.toml", "out"], ("export_dicom",)),
        (["--help"], SUBCOMMANDS),
        (["-h", "suv"], SUBCOMMANDS),
        ([], SUBCOMMANDS),
        (["no-such-command"], SUBCOMMANDS),
    ],
)
def test_only_the_named_subcommand_is_registered(
    argv: list[str], expected: tuple[str, ...]
) -> None:
    assert _wanted_subcommands(argv) == expected


def test_a_closed_pipe_ends_quietly() -> None:
    # `immunopet inspect DIR | head`: the reader closes the pipe; no traceback, exit 141
    code = (
        "import sys, argparse\n"
        "from immunopet.cli import main as m\n"
        "def fail(args):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "def parser(argv=None):\n"
        "    p = argparse.ArgumentParser()\n"
        "    p.set_defaults(func=fail, command='inspect')\n"
        "    return p\n"
        "m.build_parser = parser\n"
        "sys.exit(m.main([]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 141
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "modules",
    [
        # what reads the results: the analysis, the HTML, the exports
        "immunopet.study.store, immunopet.analysis.assemble, immunopet.report.html",
        # the process of `immunopet run` with workers: it plans, stores, analyses and lists the
        # drawings; the workers measure and draw (the fork server preloads what they need)
        "immunopet.cli.run, immunopet.study.runner, immunopet.report.build, "
        "immunopet.report.drawing, immunopet.analysis.kinetics",
    ],
)
def test_what_reads_results_imports_neither_the_measuring_stack_nor_matplotlib(
    modules: str,
) -> None:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    probe = f"import sys, {modules}; print(' '.join(sorted(sys.modules)))"
    out = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
    )
    unused = {"immunopet.study.pipeline", "immunopet.metrics", "highdicom", "matplotlib"}
    assert not out & unused, sorted(out & unused)


def test_the_fork_server_preloads_what_the_workers_import() -> None:
    """The modules the run's process no longer imports are preloaded for its workers."""
    from immunopet.report.drawing import REPORT_PRELOAD
    from immunopet.study._tasks import WORKER_PRELOAD

    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    names = ", ".join(m for m in (*WORKER_PRELOAD, *REPORT_PRELOAD) if "_forkserver" not in m)
    probe = f"import sys, {names}; print(' '.join(sorted(sys.modules)))"
    out = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
    )
    wanted = {"immunopet.study.pipeline", "immunopet.metrics", "matplotlib.figure"}
    assert wanted <= out, sorted(wanted - out)
