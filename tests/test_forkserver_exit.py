"""The fork server's quick exit is registered in the fork server only.

Registered in any other process it would replace that process's exit code with 0: in pytest
(whose doctest collection imports every module) a failing session exited 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / "script.py"
    script.write_text(f"import sys\nsys.path.insert(0, {SRC!r})\n" + textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_an_ordinary_import_keeps_the_exit_code(tmp_path: Path) -> None:
    done = run_python(
        """
        import immunopet.study._forkserver_exit as module
        print(module.ENDS_AT_EXIT)
        sys.exit(3)
        """,
        tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "False"


def test_the_fork_server_preload_registers_the_quick_exit(tmp_path: Path) -> None:
    (tmp_path / "probe_preload.py").write_text(
        textwrap.dedent(
            f"""
            import immunopet.study._forkserver_exit as module
            from pathlib import Path
            Path({str(tmp_path / "seen.txt")!r}).write_text(str(module.ENDS_AT_EXIT))
            """
        )
    )
    done = run_python(
        f"""
        sys.path.insert(0, {str(tmp_path)!r})
        import multiprocessing as mp

        if __name__ == "__main__":
            context = mp.get_context("forkserver")
            context.set_forkserver_preload(["probe_preload"])
            with context.Pool(1) as pool:
                print(pool.map(abs, [-1]))
            sys.exit(4)
        """,
        tmp_path,
    )
    assert done.returncode == 4, done.stderr
    assert (tmp_path / "seen.txt").read_text() == "True"


def test_a_failing_pytest_session_that_imports_it_fails(tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text(
        "import immunopet.study._forkserver_exit\n\n\ndef test_fails():\n    assert False\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert "1 failed" in done.stdout
    assert done.returncode == 1
