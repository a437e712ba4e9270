"""The slab-wise SUV multiplication gives the float32 of the whole-volume float64 product,
in a new array or in place (in the loaded volume's own array)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import discover_dicom, load_series_volume, load_series_volume_owned
from immunopet.io.dicom_write import PetAcquisition, write_pet_series
from immunopet.suv.volume import scaled_float32


@pytest.mark.parametrize("n_slices", [1, 15, 16, 17, 40])
def test_slabs_give_the_same_float32_as_one_float64_product(n_slices: int) -> None:
    rng = np.random.default_rng(n_slices)
    activity = (rng.random((n_slices, 7, 9)) * 3e4).astype(np.float32)
    factor = 70_000 / 1.234567e7  # g / Bq
    per_slice = 1.0 + rng.random(n_slices) * 1e-3
    reference = np.asarray(activity, dtype=np.float64) * factor
    reference *= per_slice[:, np.newaxis, np.newaxis]
    np.testing.assert_array_equal(
        scaled_float32(activity, factor, per_slice), reference.astype(np.float32)
    )
    np.testing.assert_array_equal(
        scaled_float32(activity, factor),
        (np.asarray(activity, dtype=np.float64) * factor).astype(np.float32),
    )


@pytest.mark.parametrize("per_slice", [False, True])
def test_in_place_gives_the_same_values_as_a_new_array(per_slice: bool) -> None:
    rng = np.random.default_rng(7)
    activity = (rng.random((33, 5, 6)) * 3e4).astype(np.float32)
    corrections = 1.0 + rng.random(33) * 1e-3 if per_slice else None
    expected = scaled_float32(activity, 0.0123, corrections)
    result = scaled_float32(activity, 0.0123, corrections, out=activity)
    assert result is activity
    np.testing.assert_array_equal(activity, expected)


def test_the_owned_array_is_the_one_under_the_volume(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    volume = ImageVolume.from_attributes(
        array=rng.random((4, 6, 5)) * 1e4,
        image_position_mm=(0.0, 0.0, 0.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(2.0, 2.0),
        slice_spacing_mm=3.0,
        unit=Unit.BQML,
    )
    acquisition = PetAcquisition(
        injection_datetime=datetime(2024, 1, 1, 9),
        scan_datetime=datetime(2024, 1, 2, 9),
        injected_activity_bq=3.7e7,
        weight_kg=70.0,
    )
    write_pet_series(volume, tmp_path / "pet", acquisition)
    series = discover_dicom(tmp_path / "pet").pet[0]
    loaded, owned = load_series_volume_owned(series)
    np.testing.assert_array_equal(loaded.array, load_series_volume(series).array)
    assert owned.flags.writeable and not loaded.array.flags.writeable
    owned[0, 0, 0] = -1.0
    assert loaded.array[0, 0, 0] == -1.0


def test_an_out_array_of_another_type_or_shape_is_refused() -> None:
    activity = np.ones((3, 2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="float32"):
        scaled_float32(activity, 2.0, out=np.empty((3, 2, 2), dtype=np.float64))
    with pytest.raises(ValueError, match="shape"):
        scaled_float32(activity, 2.0, out=np.empty((3, 2, 1), dtype=np.float32))
