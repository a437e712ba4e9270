"""Time `immunopet demo` for the `tiny` and `study` presets (targets: < 1 min and < 5 min).

Each preset runs into a fresh temporary folder, as a new user's first `make demo` would
(generation, measurement of every scan, analysis, figures, QC pages and the HTML report).
Prints wall-clock seconds per preset and the peak resident memory of the process tree.

Usage: python benchmarks/bench_demo.py [tiny] [study]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {"tiny": 60.0, "study": 300.0}


def time_demo(preset: str) -> tuple[float, float]:
    """Seconds and peak child RSS (MiB) of one demo run into a new folder."""
    with tempfile.TemporaryDirectory(prefix=f"immunopet-demo-{preset}-") as tmp:
        command = [
            sys.executable,
            "-m",
            "immunopet.cli.main",
            "demo",
            str(Path(tmp) / "demo"),
            "--preset",
            preset,
            "--quiet",
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mib


def main(presets: list[str]) -> None:
    for preset in presets or ["tiny", "study"]:
        seconds, peak_mib = time_demo(preset)
        verdict = "within" if seconds <= TARGETS_S[preset] else "OVER"
        print(
            f"demo --preset {preset:<5}  {seconds:7.1f} s  (target {TARGETS_S[preset]:.0f} s, "
            f"{verdict})  peak RSS of largest process {peak_mib:.0f} MiB"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
