"""Time and peak memory of generating the ``study`` preset of the synthetic trial.

Target: under 2 minutes and under 4 GiB on 2 cores. Prints wall time, CPU time, the peak
resident memory of this process and of the worker processes (``resource.getrusage``), and
the files written.

Usage: ``python benchmarks/bench_synth.py [--workers N] [--seed S]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from immunopet.synthetic.trial import generate_trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="study", choices=["study", "tiny"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        manifest = generate_trial(
            Path(tmp), preset=args.preset, seed=args.seed, workers=args.workers
        )
        wall = time.perf_counter() - start_wall
        cpu = time.process_time() - start_cpu
        files = sum(1 for p in Path(tmp).rglob("*") if p.is_file())
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
    own_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"bench_synth: preset={args.preset} seed={args.seed} workers={args.workers}")
    print(f"  patients {len(manifest.patients)}, scans {len(manifest.scans)}")
    print(f"  files {files}, {size_mb:.0f} MiB on disk")
    print(f"  wall {wall:.1f} s (target < 120 s), main-process CPU {cpu:.1f} s")
    print(f"  peak RSS main {own_mib:.0f} MiB, largest worker {child_mib:.0f} MiB (target < 4096)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
