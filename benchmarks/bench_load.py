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
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import discover_dicom, load_series_volume
from immunopet.io.dicom_write import PetAcquisition, write_pet_series

SHAPE = (300, 200, 200)
REPEATS = 3


def write_series(folder: Path) -> list[Path]:
    """A 300 x 200 x 200 Bq/mL volume, slice maxima varying, written Siemens-style."""
    rng = np.random.default_rng(0)
    scale = 1000.0 + 20000.0 * rng.uniform(size=SHAPE[0])
    array = rng.uniform(size=SHAPE).astype(np.float64) * scale[:, None, None]
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
