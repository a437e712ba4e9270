"""The speed table of issue 14: each row as a ratio to an anchor measured in the same run.

Rows (each the median of several runs; a row's subject and anchor runs alternate so that
the load of a shared machine falls on both alike):

1. ``immunopet --version`` (whole process)            / ``python -c "import pydicom, numpy"``
2. ``immunopet suv`` of a 300-slice 200x200 series to NIfTI (whole process)
                                                     / ``dcm2niix`` of the same series
   (both write uncompressed ``.nii``: the comparison is of reading and converting, not of
   gzip; immunopet writes float32 SUV, dcm2niix int16 with a scale)
3. in-process read of that series (discover + load)  / the floor: every file's bytes read
   and its pixel data taken with ``np.frombuffer`` (no parsing at all)
4. ``immunopet run`` of the synthetic study, 2 workers / the same with 1 worker
   (whole process, ``--force``, measuring, analysis and report); followed by the ceiling
   the machine allows just before and just after those runs: N copies of a CPU-bound loop
   run at once, time per copy / one copy alone (other jobs on a shared machine take cores
   away from both)
5. ``immunopet synth --preset study`` wall time      / the 60 s target

Prints one line per row: subject and anchor medians (s), the ratio and the target. Nothing
is asserted: timings on a loaded machine are noisy; the ratios are what to compare.

``--quick`` uses a 40-slice 64x64 series, the ``tiny`` preset and one run per row, so that
the test suite can smoke-test the script in well under a minute.

Usage: ``python benchmarks/bench_speed.py [--quick] [--repeats N] [--study-repeats N]``
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
if SRC.is_dir() and str(SRC) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(SRC))

import immunopet.io.dicom as dicom_module  # noqa: E402
from immunopet.image import ImageVolume, Unit  # noqa: E402
from immunopet.io.dicom import discover_dicom, load_series_volume  # noqa: E402
from immunopet.io.dicom_write import PetAcquisition, write_pet_series  # noqa: E402

_SCRIPT = Path(sys.executable).parent / "immunopet"  # the console script users run
IMMUNOPET = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "immunopet.cli.main"]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))


def write_series(folder: Path, shape: tuple[int, int, int]) -> list[Path]:
    """A Bq/mL volume of ``shape`` (per-slice rescale slopes), written Siemens-style."""
    rng = np.random.default_rng(0)
    scale = 1000.0 + 20000.0 * rng.uniform(size=shape[0])
    array = rng.uniform(size=shape).astype(np.float64) * scale[:, None, None]
    volume = ImageVolume.from_attributes(
        array=array,
        image_position_mm=(-400.0, -400.0, -900.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=3.0,
        unit=Unit.BQML,
    )
    acquisition = PetAcquisition(
        injection_datetime=datetime(2024, 3, 1, 9, 0),
        scan_datetime=datetime(2024, 3, 6, 9, 0),
        injected_activity_bq=37e6,
        weight_kg=70.0,
    )
    return write_pet_series(volume, folder, acquisition)


def timed(function: Callable[[], object]) -> float:
    """Wall time (s) of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def command(argv: Sequence[str], cwd: Path | None = None) -> Callable[[], None]:
    """A call that runs ``argv`` as a process (output discarded) and fails loudly."""

    def run() -> None:
        done = subprocess.run(
            list(argv), cwd=cwd, env=ENV, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n" + "\n".join(tail))

    return run


def alternate(
    subject: Callable[[], object],
    anchor: Callable[[], object],
    repeats: int,
    *,
    warm_up: bool = True,
    prepare: Callable[[], object] | None = None,
    cpu: tuple[list[float], list[float]] | None = None,
) -> tuple[float, float]:
    """Medians (s) of ``repeats`` alternating runs of subject and anchor.

    With ``warm_up`` (and more than one run) a first untimed round fills the caches. With
    ``cpu``, the CPU time (s, this process, all threads) of each timed run of subject and
    anchor is appended to its two lists.
    """
    subject_times: list[float] = []
    anchor_times: list[float] = []
    cpu_times = cpu if cpu is not None else ([], [])
    skip = 1 if warm_up and repeats > 1 else 0
    for k in range(repeats + skip):
        for function, times, cpu_list in (
            (subject, subject_times, cpu_times[0]),
            (anchor, anchor_times, cpu_times[1]),
        ):
            if prepare is not None:
                prepare()
            cpu_start = time.process_time()
            elapsed = timed(function)
            if k >= skip:
                times.append(elapsed)
                cpu_list.append(time.process_time() - cpu_start)
    return statistics.median(subject_times), statistics.median(anchor_times)


def print_row(what: str, subject: float, anchor_label: str, anchor: float, target: str) -> None:
    print(
        f"{what:<44} {subject:7.2f} s | {anchor_label:<34} {anchor:7.2f} s | "
        f"ratio {subject / anchor:5.2f} (target {target})",
        flush=True,
    )


def read_floor(files: list[Path], n_pixels: int) -> np.ndarray:
    """Every file's bytes and its 16-bit pixel data at the end, nothing parsed."""
    out = np.empty((len(files), n_pixels), dtype=np.int16)
    for k, path in enumerate(files):
        data = path.read_bytes()
        out[k] = np.frombuffer(data, dtype="<i2", offset=len(data) - 2 * n_pixels)
    return out


def read_ours(folder: Path) -> np.ndarray:
    """discover_dicom + load_series_volume, as every command reads a PET series."""
    return load_series_volume(discover_dicom(folder).pet[0]).array


def row_version(repeats: int) -> None:
    """Row 1: ``immunopet --version`` against importing pydicom and numpy."""
    version, anchor = alternate(
        command([*IMMUNOPET, "--version"]),
        command([sys.executable, "-c", "import pydicom, numpy"]),
        repeats,
    )
    print_row("immunopet --version", version, "import pydicom, numpy", anchor, "<= 2")


def row_series(scratch: Path, shape: tuple[int, int, int], repeats: int, rows: set[int]) -> None:
    """Rows 2 and 3: one series through ``immunopet suv`` and read in-process."""
    series = scratch / "series"
    files = write_series(series, shape)
    label = f"{shape[0]}x{shape[1]}x{shape[2]}"
    dcm2niix = shutil.which("dcm2niix")
    if 2 in rows and dcm2niix is None:
        print(f"immunopet suv {label}: skipped (dcm2niix not installed)")
    elif 2 in rows:
        niix_out = scratch / "niix"
        niix_out.mkdir()
        suv, anchor = alternate(
            command([*IMMUNOPET, "suv", str(series), "-o", str(scratch / "suv.nii")]),
            command([dcm2niix, "-z", "n", "-b", "n", "-f", "x", "-o", str(niix_out), str(series)]),
            repeats,
        )
        print_row(f"immunopet suv {label} -> .nii", suv, "dcm2niix -z n", anchor, "<= 4")
    if 3 in rows:
        n_pixels = shape[1] * shape[2]
        cpu: tuple[list[float], list[float]] = ([], [])
        ours, floor = alternate(
            lambda: read_ours(series),
            lambda: read_floor(files, n_pixels),
            max(repeats, 3),
            cpu=cpu,
        )
        print_row(f"read {label} in-process", ours, "file bytes + np.frombuffer", floor, "<= 5")
        ours_cpu, floor_cpu = (statistics.median(times) for times in cpu)
        print(  # CPU time is what a loaded machine disturbs least (wall time waits for a core)
            f"  (CPU time of the same runs, all threads: {ours_cpu * 1e3:.1f} ms vs "
            f"{floor_cpu * 1e3:.1f} ms = {ours_cpu / floor_cpu:.2f}x; load average "
            f"{os.getloadavg()[0]:.2f})",
            flush=True,
        )
        threads = dicom_module._READ_THREADS
        other_threads = 2 if threads == 1 else 1
        try:  # what another number of reading threads would bring, measured in the same run
            dicom_module._READ_THREADS = other_threads
            other, _ = alternate(
                lambda: read_ours(series), lambda: read_floor(files, n_pixels), max(repeats, 3)
            )
        finally:
            dicom_module._READ_THREADS = threads
        print(
            f"  (the same with {other_threads} pixel-reading thread(s) instead of {threads}: "
            f"{other:.3f} s; with {threads}: {ours:.3f} s)",
            flush=True,
        )


def row_study(
    scratch: Path, preset: str, repeats: int, workers: int, rows: set[int], *, quick: bool
) -> None:
    """Rows 5 and 4: ``immunopet synth`` of the preset, then ``immunopet run`` of it."""
    trial = scratch / "trial"
    synth = timed(command([*IMMUNOPET, "synth", str(trial), "--preset", preset, "--quiet"]))
    if 5 in rows:
        target_s = 10.0 if quick else 60.0
        print_row(f"immunopet synth --preset {preset}", synth, "target", target_s, "<= 1")
    if 4 not in rows:
        return
    results = scratch / "results"

    def run_with(n: int) -> Callable[[], None]:
        argv = ["run", str(trial / "study.toml"), "-o", str(results), "--force"]
        return command([*IMMUNOPET, *argv, "--workers", str(n)])

    def clear() -> None:
        shutil.rmtree(results, ignore_errors=True)

    before = _ceiling(workers)
    many, one = alternate(run_with(workers), run_with(1), repeats, warm_up=False, prepare=clear)
    print_row(f"immunopet run ({preset}), {workers} workers", many, "1 worker", one, "<= 0.55")
    after = _ceiling(workers)
    print(
        f"  (the machine's ceiling for that row now: {workers} CPU-bound processes at once "
        f"vs 1 alone = ratio {before:.2f} before the runs, {after:.2f} after; load average "
        f"{os.getloadavg()[0]:.2f})",
        flush=True,
    )


def _ceiling(workers: int) -> float:
    """Time per copy of ``workers`` CPU-bound loops at once over one alone, / ``workers``."""
    together, alone = alternate(lambda: _spin(workers), lambda: _spin(1), 3)
    return together / (workers * alone)


_SPIN = "x = 0\nfor i in range(10_000_000):\n    x += i * i"


def _spin(n: int) -> None:
    """Run ``n`` copies of a pure-Python loop at once (each the same work)."""
    processes = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
    for process in processes:
        process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one run per row")
    parser.add_argument("--repeats", type=int, default=5, help="runs per row 1-3 (default 5)")
    parser.add_argument(
        "--study-repeats", type=int, default=1, help="runs per row 4 (default 1; each is long)"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of row 4 (default 2)")
    parser.add_argument(
        "--rows",
        default="1,2,3,4,5",
        help="comma-separated rows to measure (default all: 1,2,3,4,5)",
    )
    args = parser.parse_args(argv)
    rows = {int(row) for row in args.rows.split(",") if row.strip()}
    # Bytecode of our sources as an installed package has it: with PYTHONDONTWRITEBYTECODE set
    # (as on CI machines and in containers) every process would compile each changed module
    # again, 0.1-0.2 s that a user's second run does not pay.
    compileall.compile_dir(str(SRC / "immunopet"), quiet=1)
    repeats = 1 if args.quick else args.repeats
    study_repeats = 1 if args.quick else args.study_repeats
    shape = (40, 64, 64) if args.quick else (300, 200, 200)
    preset = "tiny" if args.quick else "study"
    print(f"bench_speed: {os.cpu_count()} CPUs, medians of {repeats} alternating run(s)")
    with tempfile.TemporaryDirectory(prefix="immunopet-bench-speed-") as tmp:
        scratch = Path(tmp)
        if 1 in rows:
            row_version(repeats)
        if rows & {2, 3}:
            row_series(scratch, shape, repeats, rows)
        if rows & {4, 5}:
            row_study(scratch, preset, study_repeats, args.workers, rows, quick=args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
