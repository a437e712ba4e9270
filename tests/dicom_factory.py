"""Tiny DICOM series for tests, written by :mod:`immunopet.io.dicom_write`.

Import from any test (pytest puts ``tests/`` on ``sys.path``)::

    from dicom_factory import make_acquisition, make_pet_series, make_pet_volume

    def test_something(tmp_path):
        folder = make_pet_series(tmp_path)                      # 8 x 16 x 16, Siemens, START
        volume = make_pet_volume()                              # the Bq/mL values written there

The default acquisition is a 89Zr scan 120 h (5 days) after injecting 37 MBq into a 70 kg,
1.75 m man: hand-computable SUV factors. Every value is deterministic (fixed seed, fixed
dates), so a test can recompute what was written with :func:`make_pet_volume` and the same
arguments.

Examples
--------
>>> make_acquisition().uptake_time_h
120.0
>>> make_pet_volume().shape
(8, 16, 16)
>>> [round(v, 6) for v in oblique_orientation(30.0, 0.0)]
[0.866025, 0.5, 0.0, -0.5, 0.866025, 0.0]
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series

__all__ = [
    "AXIAL",
    "INJECTION",
    "make_acquisition",
    "make_ct_series",
    "make_ct_volume",
    "make_pet_series",
    "make_pet_volume",
    "oblique_orientation",
]

INJECTION = datetime(2024, 3, 1, 9, 30, 0)
"""Injection date-time of :func:`make_acquisition` (scanner clock)."""

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""(0020,0037) ImageOrientationPatient of an axial slice."""


def oblique_orientation(about_z_deg: float, about_x_deg: float) -> tuple[float, ...]:
    """Direction cosines of an axial slice rotated about z, then about x (degrees)."""
    a, b = math.radians(about_z_deg), math.radians(about_x_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rotation = rx @ rz
    row, column = rotation @ [1.0, 0.0, 0.0], rotation @ [0.0, 1.0, 0.0]
    return tuple(float(v) for v in (*row, *column))


def make_acquisition(
    *,
    uptake_h: float = 120.0,
    injected_activity_bq: float = 37e6,
    weight_kg: float | None = 70.0,
    height_m: float | None = 1.75,
    sex: Literal["M", "F", "O"] | None = "M",
    nuclide: str = "89Zr",
    frame_duration_s: float = 600.0,
    series_number: int = 1,
    series_description: str = "PET 89Zr",
    uid_seed: str = "dicom-factory",
) -> PetAcquisition:
    """A PET acquisition ``uptake_h`` hours after :data:`INJECTION`."""
    return PetAcquisition(
        injection_datetime=INJECTION,
        scan_datetime=INJECTION + timedelta(hours=uptake_h),
        injected_activity_bq=injected_activity_bq,
        weight_kg=weight_kg,
        height_m=height_m,
        sex=sex,
        nuclide=nuclide,
        frame_duration_s=frame_duration_s,
        series_number=series_number,
        series_description=series_description,
        uid_seed=uid_seed,
    )


def make_pet_volume(
    shape: tuple[int, int, int] = (8, 16, 16),
    *,
    spacing_mm: tuple[float, float, float] = (4.0, 3.0, 2.5),
    origin_mm: tuple[float, float, float] = (-20.0, -24.0, -16.0),
    orientation: tuple[float, ...] = AXIAL,
    max_bqml: float = 20000.0,
    seed: int = 0,
) -> ImageVolume:
    """Bq/mL values, uniform random in each slice up to ``max_bqml * (k + 1) / nz``.

    Slice maxima grow with the slice index, so each slice gets its own rescale slope.
    ``spacing_mm`` is ``(dz, dy, dx)``; ``origin_mm`` the LPS centre of voxel (0, 0, 0).
    """
    rng = np.random.default_rng(seed)
    nz = shape[0]
    scale = max_bqml * (np.arange(nz) + 1.0) / nz
    array = rng.uniform(0.0, 1.0, size=shape) * scale[:, None, None]
    return ImageVolume.from_attributes(
        array=array,
        image_position_mm=origin_mm,
        image_orientation=orientation,
        pixel_spacing_mm=(spacing_mm[1], spacing_mm[2]),
        slice_spacing_mm=spacing_mm[0],
        unit=Unit.BQML,
    )


def make_ct_volume(
    shape: tuple[int, int, int] = (12, 24, 24),
    *,
    spacing_mm: tuple[float, float, float] = (3.0, 2.0, 2.0),
    origin_mm: tuple[float, float, float] = (-23.0, -24.0, -18.0),
    seed: int = 1,
) -> ImageVolume:
    """Integer HU in [-1000, 1500) on its own (finer) axial grid."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1500, size=shape).astype(np.float64)
    return ImageVolume.from_attributes(
        array=array,
        image_position_mm=origin_mm,
        image_orientation=AXIAL,
        pixel_spacing_mm=(spacing_mm[1], spacing_mm[2]),
        slice_spacing_mm=spacing_mm[0],
        unit=Unit.HU,
    )


def make_pet_series(
    tmp_path: Path,
    *,
    acquisition: PetAcquisition | None = None,
    volume: ImageVolume | None = None,
    vendor: Literal["siemens", "ge", "philips"] = "siemens",
    decay_correction: Literal["START", "ADMIN", "NONE"] = "START",
    slice_duration_s: float | None = None,
    subdir: str = "pet",
) -> Path:
    """Write a PET series into ``tmp_path / subdir`` and return that folder.

    Defaults: :func:`make_acquisition` and :func:`make_pet_volume` (8 x 16 x 16).
    """
    folder = Path(tmp_path) / subdir
    write_pet_series(
        make_pet_volume() if volume is None else volume,
        folder,
        make_acquisition() if acquisition is None else acquisition,
        vendor=vendor,
        decay_correction=decay_correction,
        slice_duration_s=slice_duration_s,
    )
    return folder


def make_ct_series(
    tmp_path: Path,
    *,
    acquisition: PetAcquisition | None = None,
    volume: ImageVolume | None = None,
    subdir: str = "ct",
) -> Path:
    """Write a CT series (default :func:`make_ct_volume`) into ``tmp_path / subdir``."""
    folder = Path(tmp_path) / subdir
    write_ct_series(
        make_ct_volume() if volume is None else volume,
        folder,
        make_acquisition() if acquisition is None else acquisition,
    )
    return folder
