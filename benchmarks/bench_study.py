"""Throughput of ``run_study`` on the synthetic ``study`` preset with 1 and 2 workers.

Generates the preset once (or reuses a trial folder given as argument), then runs the whole
study with ``workers=1`` (in this process) and ``workers=2`` (a process pool), each with
``force=True`` into its own results folder. Prints scans per second, the speed-up, and the
pipeline overhead with one worker::

    overhead = (wall time - sum of per-scan job times) / wall time

i.e. the share of the run spent outside the jobs: hashing inputs, writing DuckDB
transactions, the progress bar, the clinical copy, provenance and the CSV/Parquet exports.
Target: under 10 %.

Usage: ``python benchmarks/bench_study.py [TRIAL_DIR] [--workers N] [--dask]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from immunopet.study.manifest import load_manifest
from immunopet.study.runner import RunSummary, run_study


def _report(label: str, summary: RunSummary) -> float:
    rate = len(summary.processed) / summary.wall_seconds
    jobs = sum(summary.job_seconds.values())
    print(
        f"  {label:<22} {len(summary.processed):3d} scans in {summary.wall_seconds:6.1f} s "
        f"= {rate:5.2f} scans/s (sum of job times {jobs:6.1f} s, "
        f"{len(summary.failures)} failed)"
    )
    for failure in summary.failures[:3]:
        print(f"    failed {failure.scan_id}: {failure.message[:200]}")
    return rate


def _ensure_trial(folder: Path | None, scratch: Path) -> Path:
    if folder is not None and (folder / "study.toml").is_file():
        return folder
    from immunopet.synthetic.trial import generate_trial

    target = folder if folder is not None else scratch / "trial"
    start = time.perf_counter()
    generate_trial(target, preset="study", seed=0, workers=2)
    print(f"  generated the 'study' preset in {time.perf_counter() - start:.0f} s -> {target}")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trial", nargs="?", type=Path, default=None, help="trial folder")
    parser.add_argument("--workers", type=int, default=2, help="parallel run (default 2)")
    parser.add_argument("--dask", action="store_true", help="also time a Dask LocalCluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_study_") as tmp:
        scratch = Path(tmp)
        trial = _ensure_trial(args.trial, scratch)
        study = load_manifest(trial / "study.toml")
        n_scans = sum(1 for _ in study.scans())
        print(f"bench_study: {study.name}: {n_scans} scans")
        one = run_study(study, scratch / "one", workers=1, progress=False, force=True)
        rate_one = _report("1 worker (in-process)", one)
        many = run_study(study, scratch / "many", workers=args.workers, progress=False, force=True)
        rate_many = _report(f"{args.workers} workers (processes)", many)
        if args.dask:
            dask = run_study(
                study,
                scratch / "dask",
                workers=args.workers,
                backend="dask",
                progress=False,
                force=True,
            )
            _report(f"{args.workers} workers (Dask local)", dask)
    overhead = (one.wall_seconds - sum(one.job_seconds.values())) / one.wall_seconds
    print(f"  speed-up {args.workers} vs 1 worker: {rate_many / rate_one:.2f}x")
    print(f"  pipeline overhead with 1 worker: {overhead:.1%} (target < 10 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
