"""A study whose every PET is unreadable ends with its failures listed, never a traceback."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from immunopet.synthetic.trial import generate_trial


def test_every_scan_failing_ends_with_the_failures_and_no_traceback(tmp_path: Path) -> None:
    root = tmp_path / "study"
    generate_trial(root, preset="tiny", seed=0, progress=False)
    pets = [p for p in root.rglob("*.dcm") if "pet" in p.parent.name.lower() or "PT" in p.name]
    assert pets
    for path in pets:  # cut every PET file short: no series can be read
        path.write_bytes(path.read_bytes()[:-100])
    done = subprocess.run(
        [sys.executable, "-m", "immunopet.cli.main", "run", "study.toml", "--workers", "1"],
        cwd=root,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, done.stderr[-2000:]
    with open(root / "results" / "failures.csv", newline="") as handle:
        failed = list(csv.DictReader(handle))
    assert len(failed) >= 12  # every scan of the tiny trial (12 study-tracer scans)
