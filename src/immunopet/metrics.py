"""VOI metrics: SUVmean, SUVmax, SUVpeak (local and global), volume, total activity, ratios.

:func:`voi_metrics` is a contract relied on from outside (DESIGN.md): ``voi_metrics(image, mask,
spacing)`` with ``image`` a float array [z, y, x], ``mask`` a boolean array of the same shape and
``spacing`` ``(dz, dy, dx)`` in mm returns a :class:`VoiMetrics`.

Definitions (IBSI 1, "intensity-based statistical features" and "local intensity features")
------------------------------------------------------------------------------------------------
* ``mean``, ``max``, ``min``: over the mask voxels.
* ``sd``: *population* standard deviation, ``sqrt(1/N Σ (x - mean)²)``, the square root of the
  IBSI "intensity variance" feature (which divides by N, not N - 1).
* ``peak_local`` (IBSI "local intensity peak"): the mean of all image voxels whose centres lie
  within 6.2 mm (the radius of a 1 cm³ sphere) of the centre of the mask voxel with the maximum
  intensity; if several mask voxels share the maximum, the highest of their sphere means.
* ``peak_global`` (IBSI "global intensity peak"): the highest such sphere mean over all sphere
  centres that are mask voxels.
* In both peaks, every image voxel within the sphere enters the mean, not only mask voxels; the
  sphere is cut at the image border (the mean is over the voxels inside the image). Distances are
  in world units (mm), so the sphere holds the right voxels on anisotropic grids.
* ``volume_ml`` = number of mask voxels x voxel volume (voxel counting; IBSI's "volume"
  morphological feature uses a surface mesh instead and is not computed here).
* ``total_activity`` = ``mean x volume_ml`` ("total lesion activity", the analogue of TLG): in
  SUV x mL for an SUV image, in Bq for a Bq/mL image.

Missing values
--------------
Non-finite voxels (NaN, ±inf; e.g. outside the reconstructed field of view after resampling)
never enter a sphere mean: they are treated like voxels beyond the image border. Inside the mask
they are an error by default (``on_nan="raise"``); with ``on_nan="omit"`` they are left out of the
statistics, the volume still counts every mask voxel, and the number omitted is recorded in
``n_missing`` and ``warnings`` (a :class:`MetricsWarning` is also emitted).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from immunopet.errors import GeometryError, ImmunoPETWarning, InputError
from immunopet.image import ImageVolume
from immunopet.voi.geometry import centroid_lps, long_axis_mm, max_diameter_3d_mm
from immunopet.voi.spheres import (
    PEAK_RADIUS_MM,
    bounding_box_slices,
    check_spacing_mm,
    orthogonal_spacing_mm,
    sphere_kernel,
    sphere_means,
)

__all__ = [
    "MetricsWarning",
    "VoiDescription",
    "VoiMetrics",
    "describe_voi",
    "measure_voi",
    "tumour_to_blood_pool_ratio",
    "tumour_to_reference_ratio",
    "tumour_to_reference_ratios",
    "voi_metrics",
]


class MetricsWarning(ImmunoPETWarning):
    """Something changed a VOI metric (e.g. missing voxels left out); recorded in the result."""


@dataclass(frozen=True)
class VoiMetrics:
    """Metrics of one VOI on one image (IBSI definitions; see the module notes).

    Attributes
    ----------
    mean, max, min : float, image unit
        Over the mask voxels.
    sd : float, image unit
        Population standard deviation (divisor N) over the mask voxels.
    peak_local : float, image unit
        Mean in the 1 cm³ sphere centred on the hottest mask voxel (IBSI local intensity peak).
    peak_global : float, image unit
        Highest 1 cm³ sphere mean over centres in the mask (IBSI global intensity peak).
    volume_ml : float, mL
        Mask voxels x voxel volume.
    n_voxels : int
        Number of mask voxels.
    total_activity : float, image unit x mL
        ``mean x volume_ml`` (total lesion activity; SUV·mL for SUV images).
    peak_local_index, peak_global_index : tuple of 3 int
        Voxel index ``(k, j, i)`` of the sphere centre of each peak.
    peak_radius_mm : float, mm
        Radius of the peak sphere used.
    n_missing : int
        Mask voxels left out because they were not finite (``on_nan="omit"``).
    warnings : tuple of str
        What changed a number, in words.
    """

    mean: float
    max: float
    min: float
    sd: float
    peak_local: float
    peak_global: float
    volume_ml: float
    n_voxels: int
    total_activity: float
    peak_local_index: tuple[int, int, int]
    peak_global_index: tuple[int, int, int]
    peak_radius_mm: float = PEAK_RADIUS_MM
    n_missing: int = 0
    warnings: tuple[str, ...] = ()


def _as_mask(mask: npt.ArrayLike, shape: tuple[int, ...], voi_name: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(mask)
    if array.shape != shape:
        raise GeometryError(
            "mask does not match the image",
            file=voi_name,
            tag="mask.shape",
            value=array.shape,
            expected=str(shape),
        )
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number) or not np.all((array == 0) | (array == 1)):
        raise InputError(
            "mask must be boolean (or 0/1)",
            file=voi_name,
            tag="mask",
            value=str(array.dtype),
            expected="bool array, or numbers that are all 0 or 1 (use labels == n for a label map)",
        )
    return array.astype(bool)


def voi_metrics(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    *,
    voi_name: str = "VOI",
    peak_radius_mm: float = PEAK_RADIUS_MM,
    on_nan: Literal["raise", "omit"] = "raise",
) -> VoiMetrics:
    """Compute the metrics of one VOI.

    Parameters
    ----------
    image : array_like of float, shape (nz, ny, nx)
        Voxel values (SUV or Bq/mL), indexed [z, y, x].
    mask : array_like of bool, same shape
        The VOI.
    spacing : sequence of 3 float, mm
        Voxel spacing ``(dz, dy, dx)``.
    voi_name : str
        Name used in error messages and warnings (e.g. ``"lesion 3"``).
    peak_radius_mm : float, mm
        Radius of the peak sphere; default 6.2 mm (1 cm³, IBSI).
    on_nan : {"raise", "omit"}
        What to do with non-finite voxels inside the mask (see the module notes).

    Returns
    -------
    VoiMetrics

    Raises
    ------
    GeometryError
        Mask and image shapes differ, the image is not 3-D, or the spacing is invalid.
    InputError
        Empty mask, a non-boolean mask, non-finite mask voxels with ``on_nan="raise"``, or no
        finite mask voxel at all.

    Examples
    --------
    >>> img = np.ones((5, 5, 5)); img[2, 2, 2] = 10.0
    >>> m = voi_metrics(img, img > 0, (2.0, 2.0, 2.0))
    >>> m.max, m.n_voxels, m.volume_ml
    (10.0, 125, 1.0)
    >>> # 117 of the 123 sphere voxels lie in the image (the 6 at 3 voxels along an axis do not)
    >>> round(m.peak_local, 4)   # (10 + 116 x 1) / 117
    1.0769
    """
    values = np.asarray(image)
    if values.ndim != 3:
        raise GeometryError(
            "image must be 3-D [z, y, x]", file=voi_name, tag="image.ndim", value=values.ndim
        )
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        raise InputError(
            "image must be real numbers", file=voi_name, tag="image", value=str(values.dtype)
        )
    spacing_mm = check_spacing_mm(spacing)
    inside = _as_mask(mask, values.shape, voi_name)
    if on_nan not in ("raise", "omit"):
        raise InputError(
            "unknown NaN policy", tag="on_nan", value=on_nan, expected="'raise' or 'omit'"
        )
    # Work on the mask's bounding box padded by the sphere's reach: the only whole-image pass is
    # the bounding-box reduction, so a small lesion in a whole-body image stays cheap.
    reach = [n // 2 for n in sphere_kernel(spacing_mm, peak_radius_mm).shape]
    crop = bounding_box_slices(inside, reach)
    if crop is None:
        raise InputError(
            "the VOI is empty", file=voi_name, tag="mask", value=0, expected="at least one voxel"
        )
    origin = np.array([s.start for s in crop])
    values = values[crop]
    inside = inside[crop]
    index = np.argwhere(inside)
    n_voxels = int(index.shape[0])
    voxels = values[tuple(index.T)].astype(np.float64)
    finite = np.isfinite(voxels)
    n_missing = int(n_voxels - finite.sum())
    notes: list[str] = []
    if n_missing:
        if on_nan == "raise":
            raise InputError(
                "non-finite voxel values inside the VOI",
                file=voi_name,
                tag="image",
                value=f"{n_missing} of {n_voxels} voxels",
                expected="finite values (or on_nan='omit')",
            )
        if n_missing == n_voxels:
            raise InputError(
                "no finite voxel value inside the VOI",
                file=voi_name,
                tag="image",
                value=f"{n_voxels} non-finite voxels",
            )
        note = (
            f"{voi_name}: {n_missing} of {n_voxels} voxels are not finite and were left out of "
            "mean, max, min, sd and the peak centres"
        )
        notes.append(note)
        warnings.warn(note, MetricsWarning, stacklevel=2)
        voxels, index = voxels[finite], index[finite]
    centres = np.zeros(values.shape, dtype=bool)
    centres[tuple(index.T)] = True
    # sphere_means returns C order == argwhere order == order of `index`/`voxels`
    means = sphere_means(values, centres, spacing_mm, radius_mm=peak_radius_mm)
    hottest = np.flatnonzero(voxels == voxels.max())
    local = hottest[np.argmax(means[hottest])]
    best = int(np.argmax(means))
    mean = float(voxels.mean())
    voxel_volume_ml = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    volume_ml = n_voxels * voxel_volume_ml
    return VoiMetrics(
        mean=mean,
        max=float(voxels.max()),
        min=float(voxels.min()),
        sd=float(voxels.std()),
        peak_local=float(means[local]),
        peak_global=float(means[best]),
        volume_ml=volume_ml,
        n_voxels=n_voxels,
        total_activity=mean * volume_ml,
        peak_local_index=_index_tuple(index[local] + origin),
        peak_global_index=_index_tuple(index[best] + origin),
        peak_radius_mm=float(peak_radius_mm),
        n_missing=n_missing,
        warnings=tuple(notes),
    )


def _index_tuple(row: npt.NDArray[np.integer]) -> tuple[int, int, int]:
    return (int(row[0]), int(row[1]), int(row[2]))


def measure_voi(
    volume: ImageVolume,
    mask: npt.ArrayLike | ImageVolume,
    *,
    voi_name: str = "VOI",
    peak_radius_mm: float = PEAK_RADIUS_MM,
    on_nan: Literal["raise", "omit"] = "raise",
) -> VoiMetrics:
    """Compute the metrics of one VOI on an :class:`~immunopet.image.ImageVolume`.

    A convenience wrapper of :func:`voi_metrics` with ``spacing = volume.spacing_mm``. The peak
    sphere uses the spacing only, i.e. it assumes orthogonal grid axes (true for every PET
    reconstruction; a sheared grid raises).

    Parameters
    ----------
    volume : ImageVolume
        The image (SUV or Bq/mL).
    mask : array_like of bool or ImageVolume
        The VOI; an ``ImageVolume`` mask must be on the same grid.
    voi_name, peak_radius_mm, on_nan
        As in :func:`voi_metrics`.

    Raises
    ------
    GeometryError
        The mask is on another grid, or the grid is sheared.
    """
    if isinstance(mask, ImageVolume):
        if not volume.same_grid(mask):
            raise GeometryError(
                "mask is not on the image grid (resample it first)",
                file=voi_name,
                tag="mask.affine",
                value=mask.shape,
                expected=f"the grid of the image, shape {volume.shape}",
            )
        mask_array: npt.ArrayLike = mask.array
    else:
        mask_array = mask
    spacing_mm = orthogonal_spacing_mm(volume, name=voi_name)
    return voi_metrics(
        volume.array,
        mask_array,
        spacing_mm,
        voi_name=voi_name,
        peak_radius_mm=peak_radius_mm,
        on_nan=on_nan,
    )


# ---------------------------------------------------------------------------------------- ratios
def _check_reference(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InputError(
            "reference value must be positive",
            tag=name,
            value=value,
            expected="a finite number > 0",
        )
    return number


@dataclass(frozen=True)
class VoiDescription:
    """A VOI's intensity metrics and its geometry: one row of a measurement table.

    Attributes
    ----------
    metrics : VoiMetrics
    long_axis_mm : float, mm
        RECIST-style longest in-plane (axial) diameter.
    diameter_3d_mm : float, mm
        Longest 3-D diameter.
    centroid_lps_mm : tuple of 3 float, mm
        Centre of the VOI's voxels in patient coordinates (LPS).
    """

    metrics: VoiMetrics
    long_axis_mm: float
    diameter_3d_mm: float
    centroid_lps_mm: tuple[float, float, float]


def describe_voi(
    volume: ImageVolume,
    mask: npt.ArrayLike,
    *,
    voi_name: str = "VOI",
    peak_radius_mm: float = PEAK_RADIUS_MM,
) -> VoiDescription:
    """Metrics (:func:`measure_voi`) and geometry of one VOI on an image.

    The geometry is computed on the VOI's bounding box only: whole-body arrays are about a
    hundred times larger than a lesion's box, and the result is the same.

    Raises
    ------
    InputError
        Empty mask, or missing values inside it.
    GeometryError
        Mask shape differs from the image, or the grid is sheared.
    """
    metrics = measure_voi(volume, mask, voi_name=voi_name, peak_radius_mm=peak_radius_mm)
    where = np.asarray(mask, dtype=bool)
    box = bounding_box_slices(where, (1, 1, 1))
    if box is None:  # pragma: no cover - measure_voi refuses empty masks first
        raise InputError("VOI is empty", file=voi_name, tag="mask", value=0)
    sub, sub_mask = volume.crop(box), where[box]
    x, y, z = (float(v) for v in centroid_lps(sub, sub_mask))
    return VoiDescription(
        metrics=metrics,
        long_axis_mm=long_axis_mm(sub_mask, sub),
        diameter_3d_mm=max_diameter_3d_mm(sub_mask, sub),
        centroid_lps_mm=(x, y, z),
    )


def tumour_to_reference_ratio(
    lesion_value: float, reference_value: float, *, reference_name: str = "reference"
) -> float:
    """Ratio of a lesion value to a reference value (e.g. SUVpeak lesion / SUVmean blood pool).

    Both values must be in the same unit; the ratio is unit-less.

    Raises
    ------
    InputError
        The reference is not a finite number > 0, or the lesion value is not finite.

    Examples
    --------
    >>> tumour_to_reference_ratio(4.1, 2.0, reference_name="blood pool")
    2.05
    """
    reference = _check_reference(reference_value, reference_name)
    lesion = float(lesion_value)
    if not math.isfinite(lesion):
        raise InputError("lesion value must be finite", tag="lesion_value", value=lesion_value)
    return lesion / reference


def tumour_to_reference_ratios(
    lesion_values: npt.ArrayLike,
    reference_values: npt.ArrayLike,
    *,
    reference_name: str = "reference",
) -> npt.NDArray[np.float64]:
    """Element-wise lesion / reference ratios for a table column (NumPy broadcasting).

    Typical use: one row per lesion VOI and scan, ``reference_values`` the blood-pool (aorta)
    value of the same scan. A NaN lesion value gives a NaN ratio (a missing measurement);
    a reference <= 0 or not finite is an error naming its position.

    Examples
    --------
    >>> tumour_to_reference_ratios([4.0, 3.0, np.nan], [2.0, 1.5, 2.0]).tolist()
    [2.0, 2.0, nan]
    """
    lesions = np.asarray(lesion_values, dtype=np.float64)
    references = np.asarray(reference_values, dtype=np.float64)
    try:
        lesions, references = np.broadcast_arrays(lesions, references)
    except ValueError:
        raise InputError(
            "lesion and reference values do not broadcast",
            tag=reference_name,
            value=(lesions.shape, references.shape),
            expected="equal lengths, or one reference value",
        ) from None
    bad = ~np.isfinite(references) | (references <= 0)
    if np.any(bad):
        position = tuple(int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"reference value at position {position[0] if len(position) == 1 else position} "
            "must be positive",
            tag=reference_name,
            value=float(references[position]),
            expected="a finite number > 0",
        )
    return np.asarray(lesions / references, dtype=np.float64)


def tumour_to_blood_pool_ratio(
    lesion_values: npt.ArrayLike, blood_pool_values: npt.ArrayLike
) -> float:
    """Tumour-to-blood-pool ratio as a ratio of means: mean(lesions) / mean(blood pool).

    This is the study-level definition of the durvalumab study (seed 000): the mean lesion
    SUVpeak over all lesions at a time point divided by the mean aorta SUVpeak over the patients
    at that time point (it found 4.1 / 2.2 = 1.8 at 72 h). NaN entries (missing measurements) are
    ignored in both means. For per-lesion ratios use :func:`tumour_to_reference_ratios`.

    Raises
    ------
    InputError
        No finite lesion value, or the mean blood-pool value is not > 0.

    Examples
    --------
    >>> round(tumour_to_blood_pool_ratio([3.9, 4.3], [2.1, 2.3]), 3)
    1.864
    """
    lesions = np.asarray(lesion_values, dtype=np.float64).reshape(-1)
    blood = np.asarray(blood_pool_values, dtype=np.float64).reshape(-1)
    if not np.any(np.isfinite(lesions)):
        raise InputError(
            "no lesion value", tag="lesion_values", value=lesions.size, expected="a finite value"
        )
    if not np.any(np.isfinite(blood)):
        raise InputError(
            "no blood-pool value",
            tag="blood_pool_values",
            value=blood.size,
            expected="a finite value",
        )
    reference = _check_reference(float(np.nanmean(blood)), "blood_pool_values (mean)")
    return float(np.nanmean(lesions)) / reference
