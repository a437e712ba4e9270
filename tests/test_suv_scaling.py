"""The slab-wise SUV multiplication gives the float32 of the whole-volume float64 product."""

from __future__ import annotations

import numpy as np
import pytest

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
