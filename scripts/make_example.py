"""Write one small, realistic 89Zr PET/CT example as DICOM.

Usage::

    python scripts/make_example.py OUTDIR

writes ``OUTDIR/pet`` (64 x 64 x 40 voxels of 4 mm, Siemens flavour, DecayCorrection START)
and ``OUTDIR/ct`` (128 x 128 x 80 voxels of 2 mm, HU) covering the same field of view.
The tracer is 37 MBq of a 89Zr-labelled antibody injected 120 h (5 days) before the scan into
a 70 kg, 1.75 m patient. The phantom is defined in SUVbw and converted to Bq/mL at scan start:
a warm body ellipsoid (SUV 1.5), a liver (SUV 5), a spleen (SUV 12), a blood pool cylinder
(SUV 2) and four hot spheres (SUV 4 to 10, 10 to 20 mm radius), plus mild Gaussian noise.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series

INJECTED_BQ = 37e6
WEIGHT_KG = 70.0
UPTAKE_H = 120.0
HALF_LIFE_H = 78.41
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# (centre x, y, z in mm LPS, radius mm, SUV)
HOT_SPHERES = (
    ((-60.0, 10.0, 20.0), 15.0, 8.0),
    ((50.0, -20.0, -30.0), 10.0, 10.0),
    ((20.0, 40.0, 50.0), 20.0, 4.0),
    ((-30.0, -35.0, -50.0), 12.0, 6.0),
)


def grid(shape: tuple[int, int, int], spacing_mm: float) -> ImageVolume:
    """An empty axial grid of ``shape`` centred on the LPS origin."""
    origin = tuple(-(n - 1) / 2.0 * spacing_mm for n in (shape[2], shape[1], shape[0]))
    return ImageVolume.from_attributes(
        array=np.zeros(shape),
        image_position_mm=origin,
        image_orientation=AXIAL,
        pixel_spacing_mm=(spacing_mm, spacing_mm),
        slice_spacing_mm=spacing_mm,
    )


def ellipsoid(
    points: np.ndarray, centre: tuple[float, ...], radii: tuple[float, ...]
) -> np.ndarray:
    """Boolean mask of voxel centres (LPS, mm) inside an axis-aligned ellipsoid."""
    scaled = (points - np.asarray(centre)) / np.asarray(radii)
    return np.sum(scaled**2, axis=-1) <= 1.0


def make_pet(rng: np.random.Generator) -> ImageVolume:
    """The PET phantom in Bq/mL decay-corrected to scan start."""
    volume = grid((40, 64, 64), 4.0)
    points = volume.voxel_centres_lps()
    suv = np.zeros(volume.shape)
    suv[ellipsoid(points, (0, 0, 0), (110, 80, 200))] = 1.5  # body
    suv[ellipsoid(points, (-50, 0, 30), (45, 35, 40))] = 5.0  # liver (patient's right = -x)
    suv[ellipsoid(points, (60, 20, 40), (20, 20, 25))] = 12.0  # spleen
    suv[ellipsoid(points, (10, 20, 0), (12, 12, 200))] = 2.0  # aorta: blood pool
    for centre, radius, value in HOT_SPHERES:
        suv[ellipsoid(points, centre, (radius, radius, radius))] = value
    suv = np.clip(suv * (1.0 + 0.1 * rng.standard_normal(suv.shape)), 0.0, None)
    # SUVbw = C / (A_inj x 2^(-t/T) / W): Bq/mL at scan start per SUV unit
    bqml_per_suv = INJECTED_BQ * 2.0 ** (-UPTAKE_H / HALF_LIFE_H) / (WEIGHT_KG * 1000.0)
    return volume.with_array(suv * bqml_per_suv, unit=Unit.BQML)


def make_ct(rng: np.random.Generator) -> ImageVolume:
    """The CT on its own 2 mm grid: air, soft tissue, lungs, liver, spine."""
    volume = grid((80, 128, 128), 2.0)
    points = volume.voxel_centres_lps()
    hu = np.full(volume.shape, -1000.0)
    hu[ellipsoid(points, (0, 0, 0), (110, 80, 200))] = 20.0
    for x in (-55.0, 55.0):
        hu[ellipsoid(points, (x, -5, 60), (35, 40, 60))] = -820.0
    hu[ellipsoid(points, (-50, 0, 30), (45, 35, 40))] = 60.0
    hu[ellipsoid(points, (0, 45, 0), (12, 12, 200))] = 700.0
    hu = np.rint(hu + 10.0 * rng.standard_normal(hu.shape))
    return volume.with_array(hu, unit=Unit.HU)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder to write pet/ and ct/ into")
    parser.add_argument("--seed", type=int, default=20240306, help="noise seed")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    injection = datetime(2024, 3, 1, 9, 30)
    acquisition = PetAcquisition(
        injection_datetime=injection,
        scan_datetime=injection + timedelta(hours=UPTAKE_H),
        injected_activity_bq=INJECTED_BQ,
        weight_kg=WEIGHT_KG,
        height_m=1.75,
        sex="M",
        nuclide="89Zr",
        patient_id="EXAMPLE-01",
        patient_name="EXAMPLE^SYNTHETIC",
        series_description="PET 89Zr-antibody 120h",
        uid_seed="immunopet-example",
    )
    pet = make_pet(rng)
    ct = make_ct(rng)
    pet_files = write_pet_series(
        pet, args.outdir / "pet", acquisition, vendor="siemens", decay_correction="START"
    )
    ct_files = write_ct_series(ct, args.outdir / "ct", acquisition)
    print(
        f"wrote {len(pet_files)} PET slices ({pet.shape[2]}x{pet.shape[1]}, "
        f"{pet.spacing_mm[0]:g} mm) to {args.outdir / 'pet'}: 89Zr, "
        f"{INJECTED_BQ / 1e6:g} MBq injected {UPTAKE_H:g} h before the scan, "
        f"{WEIGHT_KG:g} kg, Siemens flavour, DecayCorrection START, "
        f"max {pet.array.max():.0f} Bq/mL"
    )
    print(
        f"wrote {len(ct_files)} CT slices ({ct.shape[2]}x{ct.shape[1]}, "
        f"{ct.spacing_mm[0]:g} mm) to {args.outdir / 'ct'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
