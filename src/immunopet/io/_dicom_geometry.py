"""Slice order and stack geometry of a DICOM series (private helpers of :mod:`immunopet.io.dicom`).

Slices are ordered by the projection of (0020,0032) ImagePositionPatient on the slice normal,
the cross product of the row and column direction cosines of (0020,0037)
ImageOrientationPatient. A stack is accepted when every slice has the same orientation, size
and pixel spacing, and consecutive positions are evenly spaced along the normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from immunopet.errors import DicomInputError, GeometryError
from immunopet.io._dicom_values import element_text

ORIENTATION_TOLERANCE = 1e-4
"""Largest difference between direction cosines of slices of one series."""

SPACING_TOLERANCE_MM = 0.01
"""Slice spacing may deviate by this much, or by :data:`SPACING_TOLERANCE_FRACTION` if larger."""

SPACING_TOLERANCE_FRACTION = 0.01
"""Relative tolerance of the slice spacing (1 %)."""

_TAGS = {
    "ImagePositionPatient": "(0020,0032) ImagePositionPatient",
    "ImageOrientationPatient": "(0020,0037) ImageOrientationPatient",
    "PixelSpacing": "(0028,0030) PixelSpacing",
    "Rows": "(0028,0010) Rows",
    "Columns": "(0028,0011) Columns",
    "SliceThickness": "(0018,0050) SliceThickness",
    "SpacingBetweenSlices": "(0018,0088) SpacingBetweenSlices",
}


@dataclass(frozen=True)
class SeriesGeometry:
    """The grid of a validated slice stack.

    Attributes
    ----------
    shape : (int, int, int)
        ``(slices, rows, columns)``.
    first_position_mm : (float, float, float), mm
        (0020,0032) ImagePositionPatient of slice 0 (the lowest along the normal).
    orientation : tuple of 6 float
        (0020,0037) ImageOrientationPatient (row cosines, then column cosines).
    pixel_spacing_mm : (float, float), mm
        (0028,0030) PixelSpacing: between rows, then between columns.
    slice_spacing_mm : float, mm
        Distance between consecutive slices along the normal (positive).
    slice_spacing_source : str
        Where the slice spacing came from: ``"positions"``, or for a single slice
        ``"(0018,0088) SpacingBetweenSlices"`` / ``"(0018,0050) SliceThickness"``.
    """

    shape: tuple[int, int, int]
    first_position_mm: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing_mm: tuple[float, float]
    slice_spacing_mm: float
    slice_spacing_source: str


def _floats(header: Dataset, keyword: str, count: int, file: Path) -> np.ndarray | None:
    """The ``count`` floats of a multi-valued DS element, None when absent."""
    text = element_text(header, keyword)
    if not text:
        return None
    values = text.split("\\")
    try:
        array = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomInputError(
            "value is not numeric", file=file, tag=_TAGS[keyword], value=text
        ) from exc
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise DicomInputError(
            "wrong number of values",
            file=file,
            tag=_TAGS[keyword],
            value=text,
            expected=f"{count} finite numbers",
        )
    return array


def slice_normal(header: Dataset, file: Path) -> np.ndarray | None:
    """Unit normal ``row x column`` of a slice, None without (0020,0037)."""
    orientation = _floats(header, "ImageOrientationPatient", 6, file)
    if orientation is None:
        return None
    return np.cross(orientation[:3], orientation[3:])


def sort_key_positions(headers: Sequence[Dataset], files: Sequence[Path]) -> list[float] | None:
    """Projection of each slice position on the first slice's normal; None when unavailable."""
    if not headers:
        return None
    try:
        normal = slice_normal(headers[0], files[0])
        if normal is None:
            return None
        keys = []
        for header, file in zip(headers, files, strict=True):
            position = _floats(header, "ImagePositionPatient", 3, file)
            if position is None:
                return None
            keys.append(float(position @ normal))
    except DicomInputError:
        return None
    return keys


def _require(header: Dataset, keyword: str, count: int, file: Path) -> np.ndarray:
    values = _floats(header, keyword, count, file)
    if values is None:
        raise DicomInputError(
            "required for stacking slices", file=file, tag=_TAGS[keyword], value="missing"
        )
    return values


def _require_int(header: Dataset, keyword: str, file: Path) -> int:
    value: Any = header.get(keyword)
    if value is None or value == "":
        raise DicomInputError("required image size", file=file, tag=_TAGS[keyword], value="missing")
    return int(value)


def _single_slice_spacing(header: Dataset, file: Path) -> tuple[float, str]:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        values = _floats(header, keyword, 1, file)
        if values is not None and values[0] > 0:
            return float(values[0]), _TAGS[keyword]
    raise DicomInputError(
        "a single-slice series needs a slice spacing",
        file=file,
        tag=_TAGS["SliceThickness"],
        value="missing",
        expected="(0018,0088) SpacingBetweenSlices or (0018,0050) SliceThickness > 0",
    )


def check_stack(headers: Sequence[Dataset], files: Sequence[Path], label: str) -> SeriesGeometry:
    """Validate that sorted slices form one regular grid and return it.

    Parameters
    ----------
    headers, files : sequences of equal length
        Slice headers and their files, sorted along the slice normal.
    label : str
        Names the series in error messages.

    Raises
    ------
    DicomInputError
        A required geometry tag is missing or malformed.
    GeometryError
        Mixed orientations, sizes or pixel spacings; duplicate positions; a missing slice or
        uneven spacing; slices displaced within their plane.
    """
    if not headers:
        raise DicomInputError("series has no image files", file=label)
    orientation0 = _require(headers[0], "ImageOrientationPatient", 6, files[0])
    row, column = orientation0[:3], orientation0[3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(column) - 1) > 1e-3
        or abs(float(row @ column)) > 1e-3
    ):
        raise GeometryError(
            "direction cosines are not orthonormal",
            file=files[0],
            tag=_TAGS["ImageOrientationPatient"],
            value=orientation0.tolist(),
            expected="two perpendicular unit vectors",
        )
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    rows0 = _require_int(headers[0], "Rows", files[0])
    columns0 = _require_int(headers[0], "Columns", files[0])
    spacing0 = _require(headers[0], "PixelSpacing", 2, files[0])
    positions = np.empty((len(headers), 3))
    for index, (header, file) in enumerate(zip(headers, files, strict=True)):
        orientation = _require(header, "ImageOrientationPatient", 6, file)
        if np.max(np.abs(orientation - orientation0)) > ORIENTATION_TOLERANCE:
            raise GeometryError(
                f"mixed slice orientations in series {label}",
                file=file,
                tag=_TAGS["ImageOrientationPatient"],
                value=orientation.tolist(),
                expected=f"{orientation0.tolist()} as in {files[0].name}",
            )
        for keyword, first in (("Rows", rows0), ("Columns", columns0)):
            value = _require_int(header, keyword, file)
            if value != first:
                raise GeometryError(
                    f"slices of series {label} differ in size",
                    file=file,
                    tag=_TAGS[keyword],
                    value=value,
                    expected=f"{first} as in {files[0].name}",
                )
        spacing = _require(header, "PixelSpacing", 2, file)
        if np.max(np.abs(spacing - spacing0)) > ORIENTATION_TOLERANCE * max(1.0, spacing0.max()):
            raise GeometryError(
                f"slices of series {label} differ in pixel spacing",
                file=file,
                tag=_TAGS["PixelSpacing"],
                value=spacing.tolist(),
                expected=f"{spacing0.tolist()} as in {files[0].name}",
            )
        positions[index] = _require(header, "ImagePositionPatient", 3, file)

    n = len(headers)
    distances = positions @ normal
    if n == 1:
        slice_spacing, source = _single_slice_spacing(headers[0], files[0])
    else:
        slice_spacing = _check_spacing(positions, distances, normal, files, label)
        source = "positions"
    return SeriesGeometry(
        shape=(n, rows0, columns0),
        first_position_mm=(float(positions[0, 0]), float(positions[0, 1]), float(positions[0, 2])),
        orientation=(
            float(orientation0[0]),
            float(orientation0[1]),
            float(orientation0[2]),
            float(orientation0[3]),
            float(orientation0[4]),
            float(orientation0[5]),
        ),
        pixel_spacing_mm=(float(spacing0[0]), float(spacing0[1])),
        slice_spacing_mm=slice_spacing,
        slice_spacing_source=source,
    )


def _check_spacing(
    positions: np.ndarray,
    distances: np.ndarray,
    normal: np.ndarray,
    files: Sequence[Path],
    label: str,
) -> float:
    """Check even spacing along the normal and no in-plane shift; return the spacing (mm)."""
    tag = _TAGS["ImagePositionPatient"]
    steps = np.diff(distances)
    order_problem = np.flatnonzero(steps < 0)
    if order_problem.size:  # pragma: no cover - callers sort first
        raise GeometryError(f"slices of series {label} are not sorted", file=label, tag=tag)
    duplicate_tolerance = SPACING_TOLERANCE_MM
    duplicates = np.flatnonzero(steps <= duplicate_tolerance)
    if duplicates.size:
        i = int(duplicates[0])
        raise GeometryError(
            f"two slices at the same position in series {label}",
            file=files[i + 1],
            tag=tag,
            value=f"{distances[i + 1]:.4f} mm along the normal, as {files[i].name}",
            expected="one slice per position",
        )
    smallest = float(steps.min())
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * smallest)
    multiples = np.rint(steps / smallest)
    if np.all(np.abs(steps - multiples * smallest) <= tolerance * multiples):
        gaps = np.flatnonzero(multiples > 1)
        if gaps.size:
            i = int(gaps[0])
            missing = int(multiples[gaps].sum() - gaps.size)
            raise GeometryError(
                f"missing slice(s) in series {label}: gap of {steps[i]:.4g} mm between slice "
                f"positions {distances[i]:.4g} mm ({files[i].name}) and "
                f"{distances[i + 1]:.4g} mm ({files[i + 1].name}); "
                f"{missing} slice(s) missing in all",
                file=label,
                tag=tag,
                value=f"{steps[i]:.4g} mm",
                expected=f"slice spacing {smallest:.4g} mm",
            )
        spacing = float(distances[-1] - distances[0]) / (len(distances) - 1)
    else:
        expected = float(np.median(steps))
        worst = int(np.argmax(np.abs(steps - expected)))
        raise GeometryError(
            f"uneven slice spacing in series {label} between slice positions "
            f"{distances[worst]:.4g} mm ({files[worst].name}) and "
            f"{distances[worst + 1]:.4g} mm ({files[worst + 1].name})",
            file=label,
            tag=tag,
            value=f"{steps[worst]:.4g} mm",
            expected=f"slice spacing {expected:.4g} mm",
        )
    shifts = np.diff(positions, axis=0)
    in_plane = shifts - np.outer(shifts @ normal, normal)
    shift_norms = np.linalg.norm(in_plane, axis=1)
    worst = int(np.argmax(shift_norms))
    if shift_norms[worst] > max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * spacing):
        raise GeometryError(
            f"slices of series {label} are shifted within their plane (gantry tilt?)",
            file=files[worst + 1],
            tag=tag,
            value=f"{shift_norms[worst]:.4g} mm in-plane shift from {files[worst].name}",
            expected="positions along the slice normal",
        )
    return spacing
