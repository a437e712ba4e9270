"""Time reading a PET series: bare pydicom against immunopet's discover + load.

Writes a 300-slice 200 x 200 PET series (per-slice rescale slopes) into a temporary folder
once, then times, best of 3:

(a) bare pydicom: ``dcmread`` every file, ``pixel_array`` and the per-slice rescale into one
    float32 array (files taken in name order, no sorting or checks);
(b) :func:`immunopet.io.dicom.discover_dicom` + :func:`immunopet.io.dicom.load_series_volume`
    (header walk, grouping, sorting along the normal, geometry checks, pixel data, rescale).

Prints both times and the ratio b / a; the target is at most 1.3. No asserts.
Run: ``python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from bench_speed import write_series as write_speed_series
from immunopet.io.dicom import discover_dicom, load_series_volume

SHAPE = (300, 200, 200)
REPEATS = 3


def write_series(folder: Path) -> list[Path]:
    """The 300 x 200 x 200 series of ``bench_speed.py`` (the same writer, the same data)."""
    return write_speed_series(folder, SHAPE)


def read_bare(files: list[Path]) -> np.ndarray:
    """(a) dcmread + pixel_array + per-slice rescale, nothing else."""
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    out = np.empty((len(files), first.Rows, first.Columns), dtype=np.float32)
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        out[k] = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return out


def read_immunopet(folder: Path) -> np.ndarray:
    """(b) discover_dicom + load_series_volume."""
    inventory = discover_dicom(folder)
    return load_series_volume(inventory.pet[0]).array


def best_of(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Smallest wall time (s) over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="immunopet-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        files = write_series(folder)
        print(
            f"wrote {len(files)} slices of {SHAPE[1]}x{SHAPE[2]} in "
            f"{time.perf_counter() - start:.2f} s"
        )
        bare = read_bare(files)
        ours = read_immunopet(folder)
        print(f"max |difference| between the two readings: {np.abs(bare - ours).max():.3g}")
        t_bare = best_of(lambda: read_bare(files))
        t_ours = best_of(lambda: read_immunopet(folder))
        print(f"(a) bare pydicom read + rescale       : {t_bare:.3f} s (best of {REPEATS})")
        print(f"(b) discover_dicom + load_series_volume: {t_ours:.3f} s (best of {REPEATS})")
        print(f"ratio b / a: {t_ours / t_bare:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
