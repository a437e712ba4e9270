"""Smoke test of ``benchmarks/bench_speed.py --quick``: it runs and prints ratios.

Only the cheap rows (start-up, one small series) run here; the study rows are the same code
path with ``immunopet synth`` and ``immunopet run``, which their own tests cover. Timings
are never asserted: the machine may be loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_a_ratio_per_row() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_speed.py"), "--quick", "--rows", "1,2,3"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    rows = [line for line in done.stdout.splitlines() if "ratio" in line]
    expected = ["immunopet --version", "immunopet suv 40x64x64", "read 40x64x64 in-process"]
    if shutil.which("dcm2niix") is None:
        expected.remove("immunopet suv 40x64x64")
    assert [row.split(" -> ")[0].split("  ")[0] for row in rows] == expected, done.stdout
    for row in rows:
        assert re.search(r"ratio +\d+\.\d\d \(target <= [\d.]+\)", row), row
