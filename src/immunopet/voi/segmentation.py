"""Semi-automatic lesion delineation: thresholds grown from a seed or inside a bounding VOI.

The user points at a lesion -- a seed voxel (index or LPS point) or a bounding VOI drawn around
it -- and a threshold method delineates it. Every method follows the same three steps:

1. **Lesion maximum.** With a bounding VOI: its hottest finite voxel. With a seed: the hottest
   finite voxel within ``search_radius_mm`` (default 10 mm) of the seed, so a click near the
   lesion's edge still finds its maximum (ties: the first voxel in [z, y, x] order). ``suv_max``
   is that voxel's value; ``suv_peak`` is the mean in the 1 cm³ sphere (radius 6.2 mm, every
   image voxel, cut at the border) centred on it -- the IBSI local intensity peak.
2. **Threshold.** Voxels with value ``>= threshold`` (and inside the bounding VOI, if given):

   ============  ================================================================================
   method        threshold
   ============  ================================================================================
   ``fixed``     ``fixed_threshold`` (SUV)
   ``suv2.5``    2.5 (SUV)
   ``suv4.0``    4.0 (SUV)
   ``41max``     0.41 x SUVmax
   ``50max``     0.50 x SUVmax
   ``50peak``    0.50 x SUVpeak
   ``a50peak``   0.50 x (SUVpeak + background): 50 % of SUVpeak adapted to the local background
                 (A50%P); ``background`` given, or measured as the *median* of the voxels at
                 10-20 mm (``background_shell_mm``) from the ``50peak`` region (the median
                 ignores a neighbouring hot organ that reaches into part of the shell)
   ``percist``   1.5 x liver SUVmean + 2 x liver SD (PERCIST 1.0 measurability threshold; give
                 ``liver_mean`` and ``liver_sd`` measured in a 3 cm liver sphere, same unit)
   ``mv2``       majority vote: voxels in at least 2 of ``vote_methods``
   ``mv3``       majority vote: voxels in at least 3 of ``vote_methods``
   ============  ================================================================================

   The default ``vote_methods`` are the four methods of the ACCURATE tool used in DLBCL
   metabolic-tumour-volume studies (Boellaard group; Burggraaff et al.): SUV 2.5, SUV 4.0,
   41 % of SUVmax and A50%P. Each member is first delineated on its own (steps 1-3); a voxel's
   votes are the number of member delineations containing it.
3. **Connectivity.** The result is the 6-connected component (faces only; ``scipy.ndimage.label``)
   of the thresholded voxels that contains the lesion maximum. If the maximum itself is below the
   threshold (e.g. SUV 4.0 on a lesion with SUVmax 3), the result is empty and a note says so.

Absolute SUV thresholds (``fixed``, ``suv2.5``, ``suv4.0``) need an SUV image: a volume whose
unit is Bq/mL, counts, HU or labels is refused (a unit-less volume is trusted to hold SUVs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from immunopet.errors import GeometryError, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.voi.spheres import (
    PEAK_RADIUS_MM,
    bounding_box_slices,
    orthogonal_spacing_mm,
    sphere_kernel,
    sphere_means,
)

__all__ = [
    "MAJORITY_VOTE_METHODS",
    "LesionSegmentation",
    "SegmentationMethod",
    "segment_lesion",
]


class SegmentationMethod(StrEnum):
    """Threshold methods of :func:`segment_lesion` (strings are accepted too)."""

    FIXED = "fixed"
    SUV_2_5 = "suv2.5"
    SUV_4_0 = "suv4.0"
    MAX_41 = "41max"
    MAX_50 = "50max"
    PEAK_50 = "50peak"
    A50_PEAK = "a50peak"
    PERCIST = "percist"
    MV2 = "mv2"
    MV3 = "mv3"


MAJORITY_VOTE_METHODS: tuple[SegmentationMethod, ...] = (
    SegmentationMethod.SUV_2_5,
    SegmentationMethod.SUV_4_0,
    SegmentationMethod.MAX_41,
    SegmentationMethod.A50_PEAK,
)
"""Default members of the MV2/MV3 majority votes (the ACCURATE tool's four methods)."""

_VOTES = {SegmentationMethod.MV2: 2, SegmentationMethod.MV3: 3}
_ABSOLUTE = {SegmentationMethod.FIXED, SegmentationMethod.SUV_2_5, SegmentationMethod.SUV_4_0}
_NOT_SUV = {Unit.BQML, Unit.CNTS, Unit.HU, Unit.LABEL}
_SIX_CONNECTED = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class LesionSegmentation:
    """A semi-automatic lesion delineation and how it was obtained.

    Attributes
    ----------
    mask : numpy.ndarray of bool
        The delineation on the volume's grid (read-only).
    method : SegmentationMethod
    threshold : float or None, image unit
        The threshold applied (None for majority votes).
    max_index : tuple of 3 int
        Voxel index ``(k, j, i)`` of the lesion maximum the component grows from.
    suv_max : float, image unit
        Value at ``max_index``.
    suv_peak : float, image unit
        Mean in the 1 cm³ sphere centred on ``max_index`` (IBSI local intensity peak).
    background : float or None, image unit
        Background used by A50%P (given or measured), else None.
    background_source : {"given", "shell"} or None
    members : tuple of SegmentationMethod
        Methods voted on (majority votes only).
    votes_required : int or None
        2 for MV2, 3 for MV3.
    n_voxels : int
    volume_ml : float, mL
    notes : tuple of str
        Anything a reader should know (empty result, background shell used, ...).
    """

    mask: npt.NDArray[np.bool_]
    method: SegmentationMethod
    threshold: float | None
    max_index: tuple[int, int, int]
    suv_max: float
    suv_peak: float
    background: float | None = None
    background_source: str | None = None
    members: tuple[SegmentationMethod, ...] = ()
    votes_required: int | None = None
    n_voxels: int = 0
    volume_ml: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


def _method(value: SegmentationMethod | str) -> SegmentationMethod:
    try:
        return SegmentationMethod(str(value).lower())
    except ValueError:
        raise InputError(
            "unknown segmentation method",
            tag="method",
            value=value,
            expected=", ".join(m.value for m in SegmentationMethod),
        ) from None


def _positive(value: float | None, name: str, *, allow_zero: bool = False) -> float:
    if value is None:
        raise InputError(f"{name} is required for this method", tag=name, value="missing")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise InputError(
            f"{name} must be a finite {'non-negative' if allow_zero else 'positive'} number",
            tag=name,
            value=value,
        )
    return number


def _find_maximum(
    values: np.ndarray,
    volume: ImageVolume,
    seed_index: Sequence[int] | npt.ArrayLike | None,
    seed_lps_mm: Sequence[float] | npt.ArrayLike | None,
    bounding_mask: npt.ArrayLike | None,
    search_radius_mm: float,
) -> tuple[tuple[int, int, int], npt.NDArray[np.bool_] | None]:
    given = sum(x is not None for x in (seed_index, seed_lps_mm, bounding_mask))
    if given != 1:
        raise InputError(
            "give exactly one of seed_index, seed_lps_mm and bounding_mask",
            tag="seed",
            value=f"{given} given",
        )
    shape = values.shape
    if bounding_mask is not None:
        allowed = np.asarray(bounding_mask)
        if allowed.shape != shape:
            raise GeometryError(
                "bounding VOI does not match the image",
                tag="bounding_mask.shape",
                value=allowed.shape,
                expected=str(shape),
            )
        allowed = allowed.astype(bool)
        box = bounding_box_slices(allowed)
        if box is None:
            raise InputError("bounding VOI is empty", tag="bounding_mask", value=0)
        inside = values[box]
        candidates = allowed[box] & np.isfinite(inside)
        if not candidates.any():
            raise InputError(
                "bounding VOI holds no finite voxel", tag="bounding_mask", value=int(allowed.sum())
            )
        offset = np.unravel_index(
            int(np.argmax(np.where(candidates, inside, -np.inf))), inside.shape
        )
        k, j, i = (int(o) + b.start for o, b in zip(offset, box, strict=True))
        return (k, j, i), allowed
    if seed_lps_mm is not None:
        point = np.asarray(seed_lps_mm, dtype=np.float64).reshape(-1)
        if point.shape != (3,):
            raise InputError("seed must be three LPS coordinates", tag="seed_lps_mm", value=point)
        seed = np.rint(volume.lps_to_voxel(point)).astype(int)
    else:
        seed = np.asarray(seed_index).reshape(-1)
        if seed.shape != (3,) or not np.issubdtype(seed.dtype, np.integer):
            raise InputError(
                "seed index must be three integers (k, j, i)",
                tag="seed_index",
                value=seed_index,
            )
    if np.any(seed < 0) or np.any(seed >= np.asarray(shape)):
        raise GeometryError(
            "seed lies outside the image",
            tag="seed_lps_mm" if seed_lps_mm is not None else "seed_index",
            value=seed.tolist(),
            expected=f"an index within {shape}",
        )
    if search_radius_mm < 0 or not math.isfinite(search_radius_mm):
        raise InputError(
            "search radius must be >= 0", tag="search_radius_mm", value=search_radius_mm
        )
    if search_radius_mm > 0:
        kernel = sphere_kernel(orthogonal_spacing_mm(volume), search_radius_mm)
    else:
        kernel = np.ones((1, 1, 1), dtype=bool)
    half = np.asarray(kernel.shape) // 2
    lo = np.maximum(seed - half, 0)
    hi = np.minimum(seed + half + 1, np.asarray(shape))
    window = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    k_lo = lo - (seed - half)
    k_window = tuple(slice(a, a + (b - c)) for a, b, c in zip(k_lo, hi, lo, strict=True))
    candidates = kernel[k_window] & np.isfinite(values[window])
    if not candidates.any():
        raise InputError(
            "no finite voxel near the seed", tag="seed", value=seed.tolist(), expected="finite"
        )
    local = np.where(candidates, values[window], -np.inf)
    offset = np.unravel_index(int(np.argmax(local)), local.shape)
    best_index = tuple(int(a + b) for a, b in zip(lo, offset, strict=True))
    return (best_index[0], best_index[1], best_index[2]), None


def _component(
    region: Callable[[tuple[slice, ...]], npt.NDArray[np.bool_]],
    shape: tuple[int, ...],
    start: tuple[int, int, int],
) -> npt.NDArray[np.bool_]:
    """The 6-connected component of ``region`` containing ``start`` (empty if start is out).

    ``region(window)`` evaluates the thresholded voxels of a window only. A window around
    ``start`` is labelled and doubled until the component no longer touches a window face that
    is not an image face, so small lesions in whole-body images stay cheap.
    """
    out = np.zeros(shape, dtype=bool)
    point = tuple(slice(a, a + 1) for a in start)
    if not region(point).any():
        return out
    extent = np.asarray(shape)
    centre = np.asarray(start)
    half = 32
    while True:
        lo = np.maximum(centre - half, 0)
        hi = np.minimum(centre + half + 1, extent)
        window = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        labels, _ = ndimage.label(region(window), structure=_SIX_CONNECTED)
        component = labels == labels[tuple(centre - lo)]
        touches = False
        for axis in range(3):
            if lo[axis] > 0 and component.take(0, axis=axis).any():
                touches = True
            if hi[axis] < extent[axis] and component.take(-1, axis=axis).any():
                touches = True
        if not touches:
            out[window] = component
            return out
        half *= 2


def _shell_background(
    values: np.ndarray,
    core: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    shell_mm: tuple[float, float],
) -> tuple[float, int]:
    inner, outer = shell_mm
    if not (0 <= inner < outer) or not math.isfinite(outer):
        raise InputError(
            "background shell must satisfy 0 <= inner < outer",
            tag="background_shell_mm",
            value=shell_mm,
        )
    where = np.argwhere(core)
    pad = np.ceil(outer / np.asarray(spacing_mm)).astype(int) + 1
    lo = np.maximum(where.min(axis=0) - pad, 0)
    hi = np.minimum(where.max(axis=0) + pad + 1, np.asarray(values.shape))
    window = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    distance = ndimage.distance_transform_edt(~core[window], sampling=spacing_mm)
    crop = values[window].astype(np.float64, copy=False)
    shell = (distance > inner) & (distance <= outer) & np.isfinite(crop)
    n_shell = int(shell.sum())
    if n_shell == 0:
        raise InputError(
            "no image voxel in the background shell; give background explicitly",
            tag="background_shell_mm",
            value=shell_mm,
        )
    return float(np.median(crop[shell])), n_shell


def segment_lesion(
    volume: ImageVolume,
    *,
    seed_index: Sequence[int] | npt.ArrayLike | None = None,
    seed_lps_mm: Sequence[float] | npt.ArrayLike | None = None,
    bounding_mask: npt.ArrayLike | None = None,
    method: SegmentationMethod | str = SegmentationMethod.MAX_41,
    fixed_threshold: float | None = None,
    background: float | None = None,
    background_shell_mm: tuple[float, float] = (10.0, 20.0),
    liver_mean: float | None = None,
    liver_sd: float | None = None,
    vote_methods: Sequence[SegmentationMethod | str] = MAJORITY_VOTE_METHODS,
    search_radius_mm: float = 10.0,
) -> LesionSegmentation:
    """Delineate one lesion by a threshold method grown from a seed or inside a bounding VOI.

    Parameters
    ----------
    volume : ImageVolume
        The PET image, in SUV for the absolute thresholds.
    seed_index : sequence of 3 int, optional
        A voxel ``(k, j, i)`` on or near the lesion.
    seed_lps_mm : sequence of 3 float, mm, optional
        A point (LPS) on or near the lesion; rounded to the nearest voxel.
    bounding_mask : array_like of bool, optional
        A VOI around the lesion: the maximum is searched in it, and the result stays inside it.
        Give exactly one of ``seed_index``, ``seed_lps_mm`` and ``bounding_mask``.
    method : SegmentationMethod or str
        See the module notes; default ``"41max"``.
    fixed_threshold : float, image unit, optional
        Threshold of ``"fixed"``.
    background : float, image unit, optional
        Background of ``"a50peak"``; measured in a shell when not given.
    background_shell_mm : (float, float), mm
        Inner and outer distance of the background shell from the ``50peak`` region.
    liver_mean, liver_sd : float, image unit, optional
        Liver SUVmean and SD for ``"percist"``.
    vote_methods : sequence of SegmentationMethod or str
        Members of ``"mv2"``/``"mv3"``; default :data:`MAJORITY_VOTE_METHODS`.
    search_radius_mm : float, mm
        Radius around a seed in which the lesion maximum is searched (0: the seed itself).

    Returns
    -------
    LesionSegmentation

    Raises
    ------
    InputError
        Unknown method, missing or invalid parameter, not exactly one seed, an absolute SUV
        threshold on a non-SUV image, fewer vote members than votes required.
    GeometryError
        Seed outside the image, a bounding VOI of another shape, or a sheared grid.

    Examples
    --------
    >>> img = np.zeros((9, 9, 9)); img[3:6, 3:6, 3:6] = 2.0; img[4, 4, 4] = 5.0
    >>> vol = ImageVolume.from_attributes(array=img, image_position_mm=(0, 0, 0),
    ...     image_orientation=(1, 0, 0, 0, 1, 0), pixel_spacing_mm=(4.0, 4.0),
    ...     slice_spacing_mm=4.0, unit="SUVbw")
    >>> seg = segment_lesion(vol, seed_index=(4, 4, 4), method="41max")
    >>> seg.threshold, seg.n_voxels   # 0.41 x 5 = 2.05: only the hottest voxel
    (2.05, 1)
    >>> segment_lesion(vol, seed_index=(4, 4, 4), method="suv2.5").n_voxels
    1
    >>> segment_lesion(vol, seed_index=(4, 4, 4), method="fixed", fixed_threshold=1.5).n_voxels
    27
    """
    chosen = _method(method)
    values = volume.array  # read-only; compared window by window in float64
    if not np.issubdtype(values.dtype, np.number):
        raise InputError("image must hold numbers", tag="array", value=str(values.dtype))
    max_index, allowed = _find_maximum(
        values, volume, seed_index, seed_lps_mm, bounding_mask, search_radius_mm
    )
    spacing = orthogonal_spacing_mm(volume)
    at_max = np.zeros(values.shape, dtype=bool)
    at_max[max_index] = True
    suv_max = float(values[max_index])
    suv_peak = float(sphere_means(values, at_max, spacing, radius_mm=PEAK_RADIUS_MM)[0])
    notes: list[str] = []
    context = _Context(
        values=values,
        allowed=allowed,
        max_index=max_index,
        suv_max=suv_max,
        suv_peak=suv_peak,
        spacing=spacing,
        unit=Unit(volume.unit),
        fixed_threshold=fixed_threshold,
        background=background,
        background_shell_mm=background_shell_mm,
        liver_mean=liver_mean,
        liver_sd=liver_sd,
    )
    members: tuple[SegmentationMethod, ...] = ()
    votes_required: int | None = None
    threshold: float | None
    if chosen in _VOTES:
        votes_required = _VOTES[chosen]
        members = tuple(_method(m) for m in vote_methods)
        if any(m in _VOTES for m in members):
            raise InputError(
                "a majority vote cannot contain a majority vote",
                tag="vote_methods",
                value=[m.value for m in members],
            )
        if len(members) < votes_required:
            raise InputError(
                "fewer vote members than votes required",
                tag="vote_methods",
                value=len(members),
                expected=f"at least {votes_required}",
            )
        votes = np.zeros(values.shape, dtype=np.int16)
        for member in members:
            votes += context.delineate(context.threshold(member, notes))
        required = votes_required
        mask = _component(lambda window: votes[window] >= required, values.shape, max_index)
        threshold = None
    else:
        threshold = context.threshold(chosen, notes)
        mask = context.delineate(threshold)
    if not mask.any():
        notes.append(
            f"{chosen.value}: the lesion maximum ({suv_max:.3g}) does not reach the "
            "threshold; the delineation is empty"
        )
    mask.flags.writeable = False
    n_voxels = int(mask.sum())
    return LesionSegmentation(
        mask=mask,
        method=chosen,
        threshold=threshold,
        max_index=max_index,
        suv_max=suv_max,
        suv_peak=suv_peak,
        background=context.background_used,
        background_source=context.background_source,
        members=members,
        votes_required=votes_required,
        n_voxels=n_voxels,
        volume_ml=n_voxels * volume.voxel_volume_ml,
        notes=tuple(notes),
    )


@dataclass
class _Context:
    """Everything a single threshold method needs (and the background it measured)."""

    values: np.ndarray
    allowed: npt.NDArray[np.bool_] | None
    max_index: tuple[int, int, int]
    suv_max: float
    suv_peak: float
    spacing: tuple[float, float, float]
    unit: Unit
    fixed_threshold: float | None
    background: float | None
    background_shell_mm: tuple[float, float]
    liver_mean: float | None
    liver_sd: float | None
    background_used: float | None = None
    background_source: str | None = None

    def delineate(self, threshold: float) -> npt.NDArray[np.bool_]:
        """Component of finite, allowed voxels ``>= threshold`` containing the maximum."""

        def region(window: tuple[slice, ...]) -> npt.NDArray[np.bool_]:
            block = self.values[window].astype(np.float64, copy=False)
            inside = np.isfinite(block) & (block >= threshold)
            if self.allowed is not None:
                inside &= self.allowed[window]
            return inside

        return _component(region, self.values.shape, self.max_index)

    def threshold(self, method: SegmentationMethod, notes: list[str]) -> float:
        if method in _ABSOLUTE and self.unit in _NOT_SUV:
            raise InputError(
                "an absolute SUV threshold needs an SUV image",
                tag="unit",
                value=self.unit.value,
                expected="SUVbw, SUVlbm, SUVbsa (or a relative method such as 41max)",
            )
        if method is SegmentationMethod.FIXED:
            return _positive(self.fixed_threshold, "fixed_threshold")
        if method is SegmentationMethod.SUV_2_5:
            return 2.5
        if method is SegmentationMethod.SUV_4_0:
            return 4.0
        if method is SegmentationMethod.MAX_41:
            return 0.41 * self.suv_max
        if method is SegmentationMethod.MAX_50:
            return 0.5 * self.suv_max
        if method is SegmentationMethod.PEAK_50:
            return 0.5 * self.suv_peak
        if method is SegmentationMethod.PERCIST:
            mean = _positive(self.liver_mean, "liver_mean")
            sd = _positive(self.liver_sd, "liver_sd", allow_zero=True)
            return 1.5 * mean + 2.0 * sd
        if method is SegmentationMethod.A50_PEAK:
            return 0.5 * (self.suv_peak + self._background(notes))
        raise InputError("not a threshold method", tag="method", value=method.value)

    def _background(self, notes: list[str]) -> float:
        if self.background_used is not None:
            return self.background_used
        if self.background is not None:
            number = float(self.background)
            if not math.isfinite(number):
                raise InputError("background must be finite", tag="background", value=number)
            self.background_used, self.background_source = number, "given"
            return number
        core = self.delineate(0.5 * self.suv_peak)
        level, n_shell = _shell_background(
            self.values, core, self.spacing, self.background_shell_mm
        )
        inner, outer = self.background_shell_mm
        notes.append(
            f"a50peak: background {level:.4g} = median of {n_shell} voxels at {inner:g}-{outer:g}"
            " mm from the 50 % of SUVpeak region"
        )
        self.background_used, self.background_source = level, "shell"
        return level
