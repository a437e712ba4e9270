"""Spherical VOIs and sphere means on a voxel grid.

Two jobs share the same geometry:

* :func:`sphere_mask` draws a sphere of a given radius or volume around a point (LPS, mm) on an
  :class:`~immunopet.image.ImageVolume` grid -- the 1 cm³ sphere for a lesion without visible
  uptake, the 2 cm diameter (4.2 cm³) sphere for normal tissue.
* :func:`sphere_means` computes, for every voxel of a set of centres, the mean image value in a
  sphere centred on that voxel -- the building block of SUVpeak (IBSI "intensity peak"), used by
  :mod:`immunopet.metrics` and by :mod:`immunopet.voi.segmentation`.

Which voxels a sphere contains
------------------------------
A voxel belongs to a sphere when its *centre* lies within the radius (distance <= r, with a
tolerance of one part in 10⁹ so that a centre exactly on the surface is inside). This is the IBSI
definition for the peak sphere. It makes the voxel-count volume of a single sphere deviate from
``4/3 π r³``: by lattice-point counting, the mean over all positions of the centre relative to the
grid is exactly the true volume (the expected number of lattice points in a randomly translated
body is its volume over the cell volume), but a single placement deviates. Voxel-count volume
with the sphere centred on a voxel centre, and the largest deviation over 200 random sub-voxel
placements of the centre:

=========================  ==============  ============================  ==============
sphere                     voxels (mm)     centred on a voxel            random, max |dev|
=========================  ==============  ============================  ==============
1 cm³ (r = 6.2035 mm)      1 x 1 x 1       1.021 mL (+2.1 %)             1.1 %
1 cm³                      2 x 2 x 2       0.984 mL (-1.6 %)             8.8 %
1 cm³                      4 x 4 x 4       1.216 mL (+21.6 %)            49 %
1 cm³                      3.27 x 2 x 2    0.929 mL (-7.1 %)             15 %
4.2 cm³ (r = 10.009 mm)    1 x 1 x 1       4.169 mL (-0.7 %)             0.6 %
4.2 cm³                    2 x 2 x 2       4.120 mL (-1.9 %)             5.1 %
4.2 cm³                    4 x 4 x 4       5.184 mL (+23.4 %)            16 %
=========================  ==============  ============================  ==============

Two facts bound these numbers. (1) For every placement, all selected voxels lie inside the sphere
of radius ``r + h`` and cover the sphere of radius ``r - h`` (``h`` = half the voxel diagonal).
(2) The mean over ``m³`` regularly spaced centre offsets within one voxel equals the voxel count
on a grid ``m`` times finer, so it converges to the true volume as ``m`` grows.

``method="supersample"`` keeps a voxel when at least half of ``n³`` regularly spaced sub-voxel
points lie inside the sphere. It does not reduce the worst-case deviation of a single placement,
and it is biased low because the surface curves away inside a boundary voxel (mean deviation over
random placements of a 1 cm³ sphere: -0.6 % on 1 mm, -2.8 % on 2 mm, -12.5 % on 4 mm voxels,
against under 1 % for ``"centre"``). ``"centre"`` is therefore the default; ``"supersample"``
is offered for comparison with tools that use partial-volume thresholding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume

__all__ = [
    "ORGAN_SPHERE_VOLUME_ML",
    "PEAK_RADIUS_MM",
    "PEAK_VOLUME_ML",
    "bounding_box_slices",
    "check_spacing_mm",
    "orthogonal_spacing_mm",
    "radius_for_volume_mm",
    "sphere_kernel",
    "sphere_mask",
    "sphere_means",
    "volume_for_radius_ml",
]

PEAK_VOLUME_ML = 1.0
"""Volume of the SUVpeak sphere, mL (IBSI: 1 cm³)."""

PEAK_RADIUS_MM = 6.2
"""Radius of the SUVpeak sphere, mm: IBSI's rounding of ``(3 / (4 π))^(1/3) x 10 = 6.2035`` mm."""

ORGAN_SPHERE_VOLUME_ML = 4.2
"""Volume of the normal-tissue sphere (2 cm diameter, 4.19 mL, quoted as 4.2 cm³), mL."""

# Relative tolerance on squared distances: a centre exactly on the surface is inside.
_SURFACE_TOLERANCE = 1e-9


def check_spacing_mm(spacing: Sequence[float] | npt.ArrayLike) -> tuple[float, float, float]:
    """Validate a voxel spacing ``(dz, dy, dx)``.

    Parameters
    ----------
    spacing : sequence of 3 float, mm
        Voxel spacing along the array axes [z, y, x].

    Returns
    -------
    tuple of 3 float, mm
        The spacing as plain floats.

    Raises
    ------
    GeometryError
        Not three finite positive numbers.

    Examples
    --------
    >>> check_spacing_mm([2, 2, 3.27])
    (2.0, 2.0, 3.27)
    """
    try:
        values = np.asarray(spacing, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(
            "spacing is not numeric", tag="spacing", value=spacing, expected="(dz, dy, dx) in mm"
        ) from None
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise GeometryError(
            "invalid voxel spacing",
            tag="spacing",
            value=np.asarray(spacing).tolist(),
            expected="three finite positive numbers (dz, dy, dx) in mm",
        )
    return (float(values[0]), float(values[1]), float(values[2]))


def orthogonal_spacing_mm(
    volume: ImageVolume, *, name: str = "volume"
) -> tuple[float, float, float]:
    """Spacing ``(dz, dy, dx)`` of a volume whose grid axes are orthogonal.

    Sphere kernels, SUVpeak and diameters use index x spacing as distances, which is exact for
    any orientation as long as the axes are orthogonal (every PET reconstruction); a sheared grid
    (e.g. gantry tilt) is refused.

    Raises
    ------
    GeometryError
        The grid axes are not orthogonal.
    """
    direction = volume.direction
    gram = direction.T @ direction
    if not np.allclose(gram, np.eye(3), atol=1e-6):
        raise GeometryError(
            "grid axes are not orthogonal",
            file=name,
            tag="affine",
            value=np.round(gram, 6).tolist(),
            expected="orthogonal axes (resample a sheared grid first)",
        )
    return volume.spacing_mm


def radius_for_volume_mm(volume_ml: float) -> float:
    """Radius (mm) of the sphere with a given volume (mL).

    .. math:: r = \\left(\\frac{3 V}{4 \\pi}\\right)^{1/3}, \\quad V \\text{ in mm}^3

    Examples
    --------
    >>> round(radius_for_volume_mm(1.0), 4)
    6.2035
    >>> round(radius_for_volume_mm(4.2), 3)
    10.009
    """
    if not math.isfinite(volume_ml) or volume_ml <= 0:
        raise InputError(
            "sphere volume must be positive", tag="volume_ml", value=volume_ml, expected="> 0 mL"
        )
    return float((3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0))


def volume_for_radius_ml(radius_mm: float) -> float:
    """Volume (mL) of the sphere with a given radius (mm).

    Examples
    --------
    >>> round(volume_for_radius_ml(10.0), 3)
    4.189
    """
    if not math.isfinite(radius_mm) or radius_mm <= 0:
        raise InputError(
            "sphere radius must be positive", tag="radius_mm", value=radius_mm, expected="> 0 mm"
        )
    return 4.0 / 3.0 * math.pi * radius_mm**3 / 1000.0


def sphere_kernel(
    spacing_mm: Sequence[float], radius_mm: float = PEAK_RADIUS_MM
) -> npt.NDArray[np.bool_]:
    """Boolean footprint of the voxels whose centres lie within ``radius_mm`` of the middle voxel.

    Parameters
    ----------
    spacing_mm : sequence of 3 float, mm
        Voxel spacing ``(dz, dy, dx)``; the grid axes are taken as orthogonal.
    radius_mm : float, mm
        Sphere radius; default the SUVpeak radius 6.2 mm.

    Returns
    -------
    numpy.ndarray of bool
        Odd-sized array (``2 floor(r / d) + 1`` along each axis) centred on the middle voxel.

    Examples
    --------
    >>> int(sphere_kernel((2.0, 2.0, 2.0)).sum())   # IBSI peak sphere on 2 mm voxels
    123
    >>> sphere_kernel((4.0, 4.0, 4.0)).shape
    (3, 3, 3)
    """
    dz, dy, dx = check_spacing_mm(spacing_mm)
    if not math.isfinite(radius_mm) or radius_mm <= 0:
        raise InputError(
            "sphere radius must be positive", tag="radius_mm", value=radius_mm, expected="> 0 mm"
        )
    reach = [math.floor(radius_mm * (1 + _SURFACE_TOLERANCE) / d) for d in (dz, dy, dx)]
    k, j, i = np.ogrid[-reach[0] : reach[0] + 1, -reach[1] : reach[1] + 1, -reach[2] : reach[2] + 1]
    squared = (k * dz) ** 2 + (j * dy) ** 2 + (i * dx) ** 2
    kernel: npt.NDArray[np.bool_] = squared <= radius_mm**2 * (1 + _SURFACE_TOLERANCE)
    return kernel


def bounding_box_slices(
    mask: npt.ArrayLike, pad_voxels: Sequence[int] = (0, 0, 0)
) -> tuple[slice, slice, slice] | None:
    """Slices of a mask's bounding box, padded and clipped to the array (None if empty).

    Three ``any`` reductions instead of ``argwhere``: cheap on whole-body arrays.

    Examples
    --------
    >>> m = np.zeros((5, 6, 7), dtype=bool); m[2, 3, 4] = True
    >>> bounding_box_slices(m, (1, 1, 10))
    (slice(1, 4, None), slice(2, 5, None), slice(0, 7, None))
    """
    where = np.asarray(mask, dtype=bool)
    if where.ndim != 3:
        raise GeometryError("mask must be 3-D [z, y, x]", tag="mask.ndim", value=where.ndim)
    # reduce over the whole array once (along z), then only over the occupied slab
    found_z = np.flatnonzero(where.reshape(where.shape[0], -1).any(axis=1))
    if found_z.size == 0:
        return None
    slab = where[found_z[0] : found_z[-1] + 1]
    found = [found_z, np.flatnonzero(slab.any(axis=(0, 2))), np.flatnonzero(slab.any(axis=(0, 1)))]
    z, y, x = (
        slice(max(int(f[0]) - int(p), 0), min(int(f[-1]) + int(p) + 1, n))
        for f, p, n in zip(found, pad_voxels, where.shape, strict=True)
    )
    return (z, y, x)


def sphere_means(
    array: npt.ArrayLike,
    centres: npt.ArrayLike,
    spacing_mm: Sequence[float],
    *,
    radius_mm: float = PEAK_RADIUS_MM,
) -> npt.NDArray[np.float64]:
    """Mean image value in a sphere centred on each voxel of ``centres``.

    Every image voxel whose centre lies within the radius enters the mean, not only voxels of
    some VOI (IBSI). The sphere is cut at the image border: the mean is over the voxels inside
    the image. Non-finite voxels (NaN, ±inf) are treated like voxels outside the image and do not
    enter any mean.

    The sums are one convolution over a crop of the image around the centres' bounding box,
    padded by the radius (direct convolution for small kernels, FFT otherwise); the number of
    voxels entering each mean is the same convolution of the finite-voxel indicator.

    Parameters
    ----------
    array : array_like, shape (nz, ny, nx)
        Image values.
    centres : array_like of bool, same shape
        Voxels on which spheres are centred.
    spacing_mm : sequence of 3 float, mm
        ``(dz, dy, dx)``.
    radius_mm : float, mm
        Sphere radius, default the SUVpeak radius 6.2 mm.

    Returns
    -------
    numpy.ndarray of float64, shape (n_centres,)
        One mean per centre, in the order of ``numpy.argwhere(centres)`` (C order). NaN for a
        centre whose sphere holds no finite voxel.

    Examples
    --------
    >>> img = np.zeros((5, 5, 5)); img[2, 2, 2] = 7.0
    >>> centre = np.zeros((5, 5, 5), dtype=bool); centre[2, 2, 2] = True
    >>> sphere_means(img, centre, (4.0, 4.0, 4.0)).tolist()   # 7 / 19 voxels
    [0.3684210526315789]
    """
    image = np.asarray(array)
    where = np.asarray(centres, dtype=bool)
    if image.ndim != 3 or where.shape != image.shape:
        raise GeometryError(
            "centres do not fit the image",
            tag="centres.shape",
            value=where.shape,
            expected=f"{image.shape} (3-D, same as the image)",
        )
    kernel = sphere_kernel(spacing_mm, radius_mm)
    crop = bounding_box_slices(where, [n // 2 for n in kernel.shape])
    if crop is None:
        return np.empty(0, dtype=np.float64)
    values = image[crop].astype(np.float64, copy=False)
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    weights = kernel.astype(np.float64)
    inner = where[crop]
    if kernel.sum() * values.size <= 20_000_000:
        # direct convolution; the kernel is symmetric so correlate == convolve
        sums = ndimage.correlate(filled, weights, mode="constant", cval=0.0)[inner]
        counts = ndimage.correlate(finite.astype(np.float64), weights, mode="constant")[inner]
    else:
        from scipy import signal  # imported here: ~0.4 s that every run would pay at start

        sums = signal.fftconvolve(filled, weights, mode="same")[inner]
        counts = np.rint(signal.fftconvolve(finite.astype(np.float64), weights, mode="same"))[inner]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)
    return np.asarray(means, dtype=np.float64)


def sphere_mask(
    volume_or_grid: ImageVolume,
    centre_lps_mm: Sequence[float] | npt.ArrayLike,
    *,
    radius_mm: float | None = None,
    volume_ml: float | None = None,
    method: Literal["centre", "supersample"] = "centre",
    subsamples: int = 5,
) -> npt.NDArray[np.bool_]:
    """Boolean mask of a sphere around a point, on the grid of a volume.

    Parameters
    ----------
    volume_or_grid : ImageVolume
        The grid (only its shape and affine are used; oblique grids are handled exactly).
    centre_lps_mm : sequence of 3 float, mm
        Sphere centre in DICOM patient coordinates (LPS); need not be a voxel centre.
    radius_mm : float, mm, optional
        Sphere radius. Give exactly one of ``radius_mm`` and ``volume_ml``.
    volume_ml : float, mL, optional
        Sphere volume, e.g. 1.0 (lesion) or :data:`ORGAN_SPHERE_VOLUME_ML` (normal tissue).
    method : {"centre", "supersample"}
        ``"centre"``: a voxel is in when its centre is within the radius (IBSI, the default).
        ``"supersample"``: a voxel is in when at least half of ``subsamples³`` regularly spaced
        points inside it are within the radius (closer to the true volume for a single
        placement on coarse grids; see the module notes for the expected deviations).
    subsamples : int
        Sub-voxel points per axis for ``"supersample"``.

    Returns
    -------
    numpy.ndarray of bool, shape of the grid
        The sphere, cut at the grid border.

    Raises
    ------
    InputError
        Neither or both of ``radius_mm`` and ``volume_ml``, non-positive size, unknown method.
    GeometryError
        The sphere selects no voxel of the grid (centre outside the image, or a sphere smaller
        than the voxel spacing).

    Examples
    --------
    >>> grid = ImageVolume.from_attributes(
    ...     array=np.zeros((11, 11, 11)), image_position_mm=(0.0, 0.0, 0.0),
    ...     image_orientation=(1, 0, 0, 0, 1, 0), pixel_spacing_mm=(2.0, 2.0),
    ...     slice_spacing_mm=2.0)
    >>> int(sphere_mask(grid, (10.0, 10.0, 10.0), volume_ml=1.0).sum())
    123
    """
    if (radius_mm is None) == (volume_ml is None):
        raise InputError(
            "give exactly one sphere size",
            tag="radius_mm/volume_ml",
            value=(radius_mm, volume_ml),
            expected="one of radius_mm or volume_ml",
        )
    radius = radius_for_volume_mm(volume_ml) if volume_ml is not None else float(radius_mm or 0)
    if not math.isfinite(radius) or radius <= 0:
        raise InputError("sphere radius must be positive", tag="radius_mm", value=radius_mm)
    if method not in ("centre", "supersample"):
        raise InputError(
            "unknown sphere method",
            tag="method",
            value=method,
            expected="'centre' or 'supersample'",
        )
    if subsamples < 1:
        raise InputError("subsamples must be at least 1", tag="subsamples", value=subsamples)
    centre = np.asarray(centre_lps_mm, dtype=np.float64).reshape(-1)
    if centre.shape != (3,) or not np.all(np.isfinite(centre)):
        raise InputError(
            "sphere centre must be three finite LPS coordinates",
            tag="centre_lps_mm",
            value=np.asarray(centre_lps_mm).tolist(),
            expected="(L, P, S) in mm",
        )
    linear = volume_or_grid.affine[:3, :3]
    shape = volume_or_grid.shape
    centre_index = volume_or_grid.lps_to_voxel(centre)
    # extent of the sphere along each index axis: r x norm of the matching row of A^-1
    reach = radius * np.linalg.norm(np.linalg.inv(linear), axis=1)
    low = np.maximum(np.floor(centre_index - reach).astype(int) - 1, 0)
    high = np.minimum(np.ceil(centre_index + reach).astype(int) + 2, np.asarray(shape))
    out = np.zeros(shape, dtype=bool)
    if np.any(high <= low):
        raise GeometryError(
            "sphere lies outside the image",
            tag="centre_lps_mm",
            value=centre.tolist(),
            expected=f"a point within the grid of shape {shape}",
        )
    k, j, i = np.meshgrid(
        *(np.arange(lo, hi) for lo, hi in zip(low, high, strict=True)), indexing="ij"
    )
    offsets = np.stack([k, j, i], axis=-1).astype(np.float64) - centre_index
    world = offsets @ linear.T
    squared = np.einsum("...a,...a->...", world, world)
    limit = radius**2 * (1 + _SURFACE_TOLERANCE)
    inside = squared <= limit
    if method == "supersample":
        corners = np.array(
            [[a, b, c] for a in (-0.5, 0.5) for b in (-0.5, 0.5) for c in (-0.5, 0.5)]
        )
        half_diagonal = float(np.max(np.linalg.norm(corners @ linear.T, axis=1)))
        distance = np.sqrt(squared)
        shell = np.abs(distance - radius) < half_diagonal
        steps = (np.arange(subsamples) + 0.5) / subsamples - 0.5
        sub = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
        shell_world = world[shell]  # (m, 3)
        points = shell_world[:, None, :] + (sub @ linear.T)[None, :, :]
        fraction = np.mean(np.einsum("mpa,mpa->mp", points, points) <= limit, axis=1)
        inside = distance <= radius - half_diagonal
        inside[shell] = fraction >= 0.5
    out[low[0] : high[0], low[1] : high[1], low[2] : high[2]] = inside
    if not out.any():
        raise GeometryError(
            "sphere selects no voxel",
            tag="centre_lps_mm",
            value=centre.tolist(),
            expected=f"a sphere of radius {radius:.3g} mm reaching a voxel of the grid",
        )
    return out
