"""The small 2-D images a scan's quality-control page shows, computed by the per-scan job.

:func:`qc_images` projects a scan's SUV image and its VOI masks once, where the job already
holds them (:func:`~immunopet.study.pipeline.process_scan`); the results store keeps them as
``RESULTS_DIR/qc/<scan>.npz`` (:func:`write_qc_images`, :func:`read_qc_images`), and the report
only draws them (:func:`immunopet.report.figures.qc_pages`): it reads no PET and derives no SUV.

The projection is the coronal maximum-intensity projection in the radiological convention:
rows from superior to inferior, columns from the patient's right to left, with the extent in
LPS millimetres so that the page shows the pixels in their true proportions.

An ``.npz`` holds only arrays and numbers, VOI names and the image's unit: no path, no header
value.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from immunopet.errors import InputError
from immunopet.image import ImageVolume

__all__ = [
    "QC_DIR",
    "QcImages",
    "qc_file_name",
    "qc_images",
    "read_qc_images",
    "save_npz_atomically",
    "write_qc_images",
]

QC_DIR = "qc"
"""Folder of the QC images inside a results folder."""

DISPLAY_PERCENTILE = 99.5
"""Percentile of the projection used as the top of the page's colour scale."""


@dataclass(frozen=True)
class QcImages:
    """One scan's QC images.

    Attributes
    ----------
    coronal : ndarray of float32, [rows, columns]
        Coronal maximum-intensity projection of the SUV image (NaN counted as 0): rows from
        superior to inferior, columns from the patient's right to left.
    extent_mm : tuple of 4 floats, mm
        ``(x_left_edge, x_right_edge, z_bottom_edge, z_top_edge)`` in LPS, the outer edges of
        the border pixels, for ``imshow(origin="upper", extent=...)``.
    display_max : float
        Top of the colour scale: the 99.5th percentile of ``coronal`` (1 when that is not
        positive or the image has no finite value).
    unit : str
        The SUV image's unit (e.g. ``"SUVbw"``).
    outlines : dict of str to bool ndarray
        VOI name (``"<kind> <name>"``) -> its mask projected the same way (any voxel along the
        anterior-posterior axis), the shape of ``coronal``; empty masks are left out.
    """

    coronal: np.ndarray
    extent_mm: tuple[float, float, float, float]
    display_max: float
    unit: str
    outlines: dict[str, np.ndarray] = field(default_factory=dict)


def _axis_roles(volume: ImageVolume) -> tuple[int, int, int]:
    """Array axes most aligned with LPS x (left), y (posterior) and z (superior)."""
    directions = np.abs(volume.affine[:3, :3])  # row = LPS axis, column = array axis
    directions = directions / np.linalg.norm(directions, axis=0, keepdims=True)
    z_axis = int(np.argmax(directions[2]))
    rest = [a for a in range(3) if a != z_axis]
    x_axis = max(rest, key=lambda a: directions[0, a])
    y_axis = next(a for a in rest if a != x_axis)
    return x_axis, y_axis, z_axis


def _coronal(volume: ImageVolume, array: np.ndarray) -> np.ndarray:
    """Coronal maximum projection of ``array`` (on the volume's grid), oriented [z down, x]."""
    x_axis, y_axis, z_axis = _axis_roles(volume)
    projection = np.max(array, axis=y_axis)
    kept = [a for a in range(3) if a != y_axis]  # remaining axes in array order
    image = projection if kept == [z_axis, x_axis] else projection.T  # -> [z, x]
    affine = volume.affine
    if affine[2, z_axis] > 0:  # index up = superior: the top row must be the last index
        image = image[::-1, :]
    if affine[0, x_axis] < 0:  # index up = patient right: the first column must be the last
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def _extent(volume: ImageVolume) -> tuple[float, float, float, float]:
    """LPS mm edges (x left, x right, z bottom, z top) of the coronal projection."""
    x_axis, _, z_axis = _axis_roles(volume)
    shape = volume.array.shape
    corners = np.array(
        [[0.0, 0.0, 0.0], [float(shape[0] - 1), float(shape[1] - 1), float(shape[2] - 1)]]
    )
    lps = volume.voxel_to_lps(corners)
    x_low, x_high = sorted((float(lps[0, 0]), float(lps[1, 0])))
    z_low, z_high = sorted((float(lps[0, 2]), float(lps[1, 2])))
    dx = abs(float(volume.affine[0, x_axis]))
    dz = abs(float(volume.affine[2, z_axis]))
    return (x_low - dx / 2, x_high + dx / 2, z_low - dz / 2, z_high + dz / 2)


def qc_images(volume: ImageVolume, masks: Mapping[str, np.ndarray]) -> QcImages:
    """Project an SUV image and its VOI masks for the QC page.

    Parameters
    ----------
    volume : ImageVolume
        The SUV image ([z, y, x], LPS affine).
    masks : mapping of str to bool array
        VOI name -> mask on the volume's grid. Masks of another shape or empty are left out.

    Returns
    -------
    QcImages

    Notes
    -----
    The projection runs along the array axis closest to the LPS anterior-posterior axis;
    the sign of the affine's z step decides which end is the head, whatever the slice
    order of the array.
    """
    values = np.nan_to_num(np.asarray(volume.array, dtype=np.float32), nan=0.0)
    image = _coronal(volume, values)
    finite = image[np.isfinite(image)]
    top = float(np.percentile(finite, DISPLAY_PERCENTILE)) if finite.size else 1.0
    outlines: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        array = np.asarray(mask, dtype=bool)
        if array.shape != values.shape or not array.any():
            continue
        outlines[name] = _coronal(volume, array)
    return QcImages(
        coronal=image,
        extent_mm=_extent(volume),
        display_max=top if top > 0 else 1.0,
        unit=str(volume.unit),
        outlines=outlines,
    )


def qc_file_name(scan_id: str) -> str:
    """The ``.npz`` name of a scan's QC images (characters other than ``A-Za-z0-9_.-`` -> ``_``).

    Examples
    --------
    >>> qc_file_name("P01/tracer-only/72h")
    'P01_tracer-only_72h.npz'
    """
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", scan_id).strip("_") or "scan") + ".npz"


def write_qc_images(images: QcImages, path: str | Path) -> Path:
    """Write ``images`` to ``path`` atomically (a temporary file in the folder, then renamed).

    The file gets the mode a plain ``open(path, "w")`` would have (``0666 & ~umask``). On
    failure the temporary file is removed and the previous file, if any, is left as it was.

    Returns
    -------
    Path
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    names = list(images.outlines)
    stack = (
        np.stack([images.outlines[name] for name in names])
        if names
        else np.zeros((0, *images.coronal.shape), dtype=bool)
    )
    return save_npz_atomically(
        target,
        coronal=images.coronal,
        extent_mm=np.asarray(images.extent_mm, dtype=np.float64),
        display_max=np.float64(images.display_max),
        unit=np.str_(images.unit),
        outline_names=np.asarray(names, dtype=np.str_),
        outlines=stack,
    )


def save_npz_atomically(path: str | Path, **arrays: np.ndarray | np.generic) -> Path:
    """``numpy.savez_compressed`` to ``path`` atomically (a temporary file, then renamed).

    The file gets the mode a plain ``open(path, "w")`` would have (``0666 & ~umask``). On
    failure the temporary file is removed and the previous file, if any, is left as it was.

    Returns
    -------
    Path
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".qc-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


def read_qc_images(path: str | Path) -> QcImages:
    """Read the QC images written by :func:`write_qc_images`.

    Raises
    ------
    InputError
        When the file cannot be read or is not a QC image file.
    """
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as data:
            names = [str(name) for name in data["outline_names"]]
            stack = np.asarray(data["outlines"], dtype=bool)
            extent = tuple(float(v) for v in data["extent_mm"])
            return QcImages(
                coronal=np.asarray(data["coronal"]),
                extent_mm=(extent[0], extent[1], extent[2], extent[3]),
                display_max=float(data["display_max"]),
                unit=str(data["unit"]),
                outlines={name: stack[k] for k, name in enumerate(names)},
            )
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise InputError(
            f"cannot read the QC images: {exc}",
            file=source,
            expected="an .npz written by immunopet run (run it again to rewrite it)",
        ) from exc
