"""Benchmark of immunopet.metrics.voi_metrics on a whole-body-sized volume.

50 spherical lesions of 10-70 mm diameter (fixed seed) in a 200 x 200 x 300 voxel volume
([z, y, x] = 300 x 200 x 200, 12 million voxels). For every lesion all metrics are computed
(mean, max, min, SD, both SUVpeaks, volume, total activity), and the time is compared with a plain
NumPy pass over the same voxels (``image[mask].mean()`` and ``.max()``), which needs the same
whole-image boolean scan. Mask construction is not timed. Prints figures; asserts nothing.

Run: ``python benchmarks/bench_metrics.py [--spacing 2.0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from immunopet.metrics import voi_metrics

SHAPE = (300, 200, 200)  # [z, y, x]
N_LESIONS = 50


def make_image(rng: np.random.Generator, spacing: float) -> tuple[np.ndarray, list[tuple]]:
    """Noisy background (SUV 1 +- 0.2) with 50 Gaussian-profile lesions; returns lesion boxes."""
    image = rng.standard_normal(SHAPE, dtype=np.float32)
    image *= 0.2
    image += 1.0
    lesions = []
    for _ in range(N_LESIONS):
        diameter = rng.uniform(10.0, 70.0)
        radius_vox = diameter / 2 / spacing
        reach = int(np.ceil(radius_vox)) + 1
        centre = np.array([rng.integers(reach, n - reach) for n in SHAPE])
        box = tuple(slice(c - reach, c + reach + 1) for c in centre)
        k, j, i = np.ogrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]
        r2 = (k**2 + j**2 + i**2) * spacing**2
        inside = r2 <= (diameter / 2) ** 2
        uptake = rng.uniform(2.0, 12.0) * np.exp(-r2 / (2 * (diameter / 3) ** 2))
        image[box] += np.where(inside, uptake, 0.0).astype(np.float32)
        lesions.append((box, inside, diameter))
    return image, lesions


def full_mask(box: tuple, inside: np.ndarray) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[box] = inside
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=2.0, help="isotropic voxel size, mm")
    args = parser.parse_args()
    spacing = (args.spacing,) * 3
    wall_start = time.perf_counter()
    rng = np.random.default_rng(20240501)
    image, lesions = make_image(rng, args.spacing)

    metrics_time = 0.0
    numpy_time = 0.0
    n_voxels = 0
    peaks = []
    for box, inside, _ in lesions:
        mask = full_mask(box, inside)
        start = time.perf_counter()
        result = voi_metrics(image, mask, spacing)
        metrics_time += time.perf_counter() - start
        start = time.perf_counter()
        values = image[mask]
        plain = (float(values.mean()), float(values.max()))
        numpy_time += time.perf_counter() - start
        n_voxels += result.n_voxels
        peaks.append((result.peak_local, result.peak_global))
        if abs(plain[1] - result.max) > 1e-6:
            print(f"max differs: {plain[1]} vs {result.max}")

    diameters = [d for _, _, d in lesions]
    print(f"volume {SHAPE[2]} x {SHAPE[1]} x {SHAPE[0]} voxels (x, y, z), {args.spacing} mm")
    print(
        f"{N_LESIONS} lesions, diameter {min(diameters):.1f}-{max(diameters):.1f} mm, "
        f"{n_voxels} lesion voxels in all"
    )
    print(
        f"voi_metrics (all metrics, both peaks): {metrics_time:.3f} s "
        f"({1000 * metrics_time / N_LESIONS:.1f} ms per lesion)"
    )
    print(f"plain numpy mean+max over each mask:  {numpy_time:.3f} s")
    print(f"ratio voi_metrics / plain numpy:      {metrics_time / numpy_time:.2f}")
    wall = time.perf_counter() - wall_start
    print(f"whole benchmark incl. making the image and masks: {wall:.2f} s")
    local, global_ = np.asarray(peaks).T
    print(f"peak_global >= peak_local for all lesions: {bool(np.all(global_ >= local - 1e-12))}")


if __name__ == "__main__":
    main()
