"""Time reading a viewer's DICOM SEG onto a whole-body PET grid.

Writes a 545-slice 128 x 128 PET series (2 mm slices) and a second series on the same grid
0.045 mm higher, and on that second series a binary SEG with 11 small segments that all carry
the label "Neoplasm, Secondary" (as a viewer writes them). Then times, best of 3,
:func:`immunopet.io.seg.read_seg` onto the first PET's grid, and reports the peak resident
memory the reading added and whether every segment kept its voxel count.

Before issue 11 this SEG was refused (repeated labels); with unique labels the old reader
resampled all segments on the whole grid and dropped the top plane of a segment.
Run: ``python benchmarks/bench_seg.py``. No asserts.
"""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import find_one_pet, load_series_volume
from immunopet.io.dicom_write import PetAcquisition, write_pet_series
from immunopet.io.seg import read_seg, read_source_images

SHAPE = (545, 128, 128)
N_SEGMENTS = 11
REPEATS = 3


def _volume(z0_mm: float) -> ImageVolume:
    rng = np.random.default_rng(0)
    return ImageVolume.from_attributes(
        array=rng.uniform(0.0, 5000.0, size=SHAPE),
        image_position_mm=(-256.0, -256.0, z0_mm),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(4.0, 4.0),
        slice_spacing_mm=2.0,
        unit=Unit.BQML,
    )


def _acquisition(series_number: int) -> PetAcquisition:
    injection = datetime(2024, 3, 1, 9, 30)
    return PetAcquisition(
        injection_datetime=injection,
        scan_datetime=injection + timedelta(hours=120),
        injected_activity_bq=37e6,
        weight_kg=70.0,
        series_number=series_number,
        uid_seed=f"bench-seg-{series_number}",
    )


def write_inputs(folder: Path) -> tuple[Path, Path, list[int]]:
    """The PET folder, the SEG file and the voxel count of each segment."""
    pet = folder / "pet"
    write_pet_series(_volume(-1000.0), pet, _acquisition(1))
    off = folder / "off"
    write_pet_series(_volume(-1000.0 + 0.045), off, _acquisition(2))
    rng = np.random.default_rng(1)
    masks = np.zeros((*SHAPE, N_SEGMENTS), dtype=bool)
    for n in range(N_SEGMENTS):
        k, j, i = rng.integers(0, SHAPE[0] - 12), *rng.integers(10, 100, 2)
        masks[k : k + 12, j : j + 10, i : i + 10, n] = rng.random((12, 10, 10)) < 0.8
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n + 1,
            segment_label="Neoplasm, Secondary",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type="MANUAL",
        )
        for n in range(N_SEGMENTS)
    ]
    seg = hd.seg.Segmentation(
        source_images=read_source_images(find_one_pet(off)),
        pixel_array=masks,
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="viewer",
        manufacturer_model_name="viewer",
        software_versions="0",
        device_serial_number="0",
    )
    path = folder / "viewer.dcm"
    seg.save_as(path)
    return pet, path, [int(n) for n in masks.sum(axis=(0, 1, 2))]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="immunopet-bench-seg-") as tmp:
        start = time.perf_counter()
        pet_folder, seg_path, counts = write_inputs(Path(tmp))
        print(
            f"wrote PET {SHAPE} twice and a {N_SEGMENTS}-segment SEG in "
            f"{time.perf_counter() - start:.1f} s"
        )
        pet = load_series_volume(find_one_pet(pet_folder))
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            read = read_seg(seg_path, reference=pet)
            times.append(time.perf_counter() - start)
        after_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kept = [int(mask.sum()) for mask in read.values()] == counts
        print(
            f"read_seg: {min(times):.2f} s (best of {REPEATS}); peak RSS {before_mb:.0f} -> "
            f"{after_mb:.0f} MB; every segment kept its {sum(counts)} voxels: {kept}"
        )


if __name__ == "__main__":
    main()
