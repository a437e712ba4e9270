"""Slice order and stack geometry of a DICOM series (private helpers of :mod:`immunopet.io.dicom`).

Slices are ordered by the projection of (0020,0032) ImagePositionPatient on the slice normal,
the cross product of the row and column direction cosines of (0020,0037)
ImageOrientationPatient. A stack is accepted when every slice has the same orientation, size
and positive pixel spacing, no step along the normal is a gap (1.5 times the median step or
more), and every slice lies within :data:`GRID_TOLERANCE_FRACTION` (0.1) of a slice of the
uniform grid fitted to all positions by least squares. Whole-body series have steps that
vary slightly at the bed junctions (e.g. 3.19-3.29 mm around 3.27 mm, every slice within
0.04 mm of the grid): they are read on the fitted grid and the deviation is recorded as a
warning (:attr:`SeriesGeometry.warnings`). A series within :data:`GRID_NOTE_MM` of the grid
is read on the grid through its first and last slice, exactly as written. Comparing each step
with the smallest step instead would refuse such series.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from immunopet.errors import DicomInputError, GeometryError
from immunopet.io._dicom_headers import SliceHeaders

ORIENTATION_TOLERANCE = 1e-4
"""Largest difference between direction cosines of slices of one series."""

SPACING_TOLERANCE_MM = 0.01
"""Two slices closer than this (mm) along the normal are at the same position."""

SPACING_TOLERANCE_FRACTION = 0.01
"""In-plane shift allowed between slices, as a fraction of the slice spacing (or 0.01 mm)."""

GRID_TOLERANCE_FRACTION = 0.1
"""Largest distance of a slice from the least-squares uniform grid, in slices (0.1 slice)."""

GRID_NOTE_MM = 0.01
"""A deviation from the uniform grid larger than this (mm) is recorded as a warning."""

MAX_ROWS_COLUMNS = 8192
"""Largest (0028,0010) Rows / (0028,0011) Columns accepted (PET and CT images have at most 1024)."""

GAP_FRACTION = 0.5
"""A step this much longer than the median step (1.5 x) is a gap: missing slices."""

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
        Where the slice spacing came from: ``"positions"`` (least-squares fit of all
        positions), or for a single slice ``"(0018,0088) SpacingBetweenSlices"`` /
        ``"(0018,0050) SliceThickness"``.
    warnings : tuple of str
        What was accepted but should be known: slices off the uniform grid by more than
        :data:`GRID_NOTE_MM` (and by how much). Loading emits each as a
        :class:`~immunopet.errors.GeometryWarning`.
    """

    shape: tuple[int, int, int]
    first_position_mm: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing_mm: tuple[float, float]
    slice_spacing_mm: float
    slice_spacing_source: str
    warnings: tuple[str, ...] = ()


_STACK_TAGS = (0x00200037, 0x00280010, 0x00280011, 0x00280030)
"""(0020,0037) ImageOrientationPatient, (0028,0010) Rows, (0028,0011) Columns, (0028,0030)
PixelSpacing: checked in every slice that does not store them as the slice before."""

_TAG_NUMBERS = {
    "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037,
    "PixelSpacing": 0x00280030,
    "Rows": 0x00280010,
    "Columns": 0x00280011,
    "SliceThickness": 0x00180050,
    "SpacingBetweenSlices": 0x00180088,
}


def _numbers(
    headers: SliceHeaders, index: int, keyword: str, count: int, file: Path
) -> list[float] | None:
    """The ``count`` numbers of a multi-valued DS element of slice ``index``, None when absent."""
    text = headers.text(index, _TAG_NUMBERS[keyword])
    if not text:
        return None
    values = text.split("\\")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise DicomInputError(
            "value is not numeric", file=file, tag=_TAGS[keyword], value=text
        ) from exc
    if len(numbers) != count or not all(map(math.isfinite, numbers)):
        raise DicomInputError(
            "wrong number of values",
            file=file,
            tag=_TAGS[keyword],
            value=text,
            expected=f"{count} finite numbers",
        )
    return numbers


def _floats(
    headers: SliceHeaders, index: int, keyword: str, count: int, file: Path
) -> np.ndarray | None:
    """:func:`_numbers` as a float64 array."""
    numbers = _numbers(headers, index, keyword, count, file)
    return None if numbers is None else np.array(numbers, dtype=np.float64)


def sort_key_positions(headers: Sequence[Dataset], files: Sequence[Path]) -> list[float] | None:
    """Projection of each slice position on the first slice's normal; None when unavailable."""
    if not headers:
        return None
    slices = SliceHeaders.of(headers)
    try:
        orientation = _floats(slices, 0, "ImageOrientationPatient", 6, files[0])
        if orientation is None:
            return None
        normal = np.cross(orientation[:3], orientation[3:])
        keys = []
        for index, file in enumerate(files):
            position = _floats(slices, index, "ImagePositionPatient", 3, file)
            if position is None:
                return None
            keys.append(float(position @ normal))
    except DicomInputError:
        return None
    return keys


def _require(headers: SliceHeaders, index: int, keyword: str, count: int, file: Path) -> np.ndarray:
    values = _floats(headers, index, keyword, count, file)
    if values is None:
        raise DicomInputError(
            "required for stacking slices", file=file, tag=_TAGS[keyword], value="missing"
        )
    return values


def _require_int(header: Dataset, keyword: str, file: Path) -> int:
    try:
        value: Any = header.get(keyword)
    except Exception as exc:  # pydicom raises many types on damaged elements
        raise DicomInputError(
            f"unreadable element: {type(exc).__name__}", file=file, tag=_TAGS[keyword]
        ) from exc
    if value is None or value == "":
        raise DicomInputError("required image size", file=file, tag=_TAGS[keyword], value="missing")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise DicomInputError(
            "not an integer", file=file, tag=_TAGS[keyword], value=str(value)
        ) from exc
    if not 0 < number <= MAX_ROWS_COLUMNS:
        raise GeometryError(
            "image size out of range",
            file=file,
            tag=_TAGS[keyword],
            value=number,
            expected=f"1 to {MAX_ROWS_COLUMNS}",
        )
    return number


def _require_spacing(headers: SliceHeaders, index: int, file: Path) -> np.ndarray:
    spacing = _require(headers, index, "PixelSpacing", 2, file)
    if np.any(spacing <= 0):
        raise GeometryError(
            "pixel spacing must be positive",
            file=file,
            tag=_TAGS["PixelSpacing"],
            value=headers.text(index, _TAG_NUMBERS["PixelSpacing"]),
            expected="two numbers > 0 (mm between rows, between columns)",
        )
    return spacing


def _single_slice_spacing(headers: SliceHeaders, file: Path) -> tuple[float, str]:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        values = _floats(headers, 0, keyword, 1, file)
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
        Mixed orientations, sizes or pixel spacings; a pixel spacing that is not positive; an
        image size outside 1 to :data:`MAX_ROWS_COLUMNS`; duplicate positions; a gap (missing
        slices); a slice more than :data:`GRID_TOLERANCE_FRACTION` slice off the least-squares
        uniform grid; slices displaced within their plane.
    """
    if not headers:
        raise DicomInputError("series has no image files", file=label)
    slices = SliceHeaders.of(headers)
    orientation0 = _require(slices, 0, "ImageOrientationPatient", 6, files[0])
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
    first_slice = slices.scratch(0)  # conversions leave slices[0] as stored
    rows0 = _require_int(first_slice, "Rows", files[0])
    columns0 = _require_int(first_slice, "Columns", files[0])
    spacing0 = _require_spacing(slices, 0, files[0])
    stacked: list[list[float]] = []
    # slices storing these as the slice before (which passed) are not checked again
    changed = set(slices.changed(_STACK_TAGS))
    for index, file in enumerate(files):
        position = _numbers(slices, index, "ImagePositionPatient", 3, file)
        if position is None:
            raise DicomInputError(
                "required for stacking slices",
                file=file,
                tag=_TAGS["ImagePositionPatient"],
                value="missing",
            )
        stacked.append(position)
        if index not in changed:
            continue
        orientation = _require(slices, index, "ImageOrientationPatient", 6, file)
        if np.max(np.abs(orientation - orientation0)) > ORIENTATION_TOLERANCE:
            raise GeometryError(
                f"mixed slice orientations in series {label}",
                file=file,
                tag=_TAGS["ImageOrientationPatient"],
                value=orientation.tolist(),
                expected=f"{orientation0.tolist()} as in {files[0].name}",
            )
        converted = slices.scratch(index)
        for keyword, first in (("Rows", rows0), ("Columns", columns0)):
            value = _require_int(converted, keyword, file)
            if value != first:
                raise GeometryError(
                    f"slices of series {label} differ in size",
                    file=file,
                    tag=_TAGS[keyword],
                    value=value,
                    expected=f"{first} as in {files[0].name}",
                )
        spacing = _require_spacing(slices, index, file)
        if np.max(np.abs(spacing - spacing0)) > ORIENTATION_TOLERANCE * max(1.0, spacing0.max()):
            raise GeometryError(
                f"slices of series {label} differ in pixel spacing",
                file=file,
                tag=_TAGS["PixelSpacing"],
                value=spacing.tolist(),
                expected=f"{spacing0.tolist()} as in {files[0].name}",
            )

    n = len(headers)
    positions = np.array(stacked, dtype=np.float64).reshape(n, 3)
    distances = positions @ normal
    notes: list[str] = []
    first = positions[0]
    if n == 1:
        slice_spacing, source = _single_slice_spacing(slices, files[0])
    else:
        slice_spacing, origin, notes = _check_spacing(positions, distances, normal, files, label)
        source = "positions"
        first = positions[0] + normal * (origin - distances[0])
    return SeriesGeometry(
        shape=(n, rows0, columns0),
        first_position_mm=(float(first[0]), float(first[1]), float(first[2])),
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
        warnings=tuple(notes),
    )


def fit_uniform_grid(distances: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares fit of ``distance = origin + spacing * index`` to sorted slice positions.

    Parameters
    ----------
    distances : array of float, mm
        Positions along the slice normal, sorted, one per slice (at least two).

    Returns
    -------
    (float, float, numpy.ndarray), mm
        The fitted origin and spacing, and each slice's residual (position minus grid).

    Examples
    --------
    >>> origin, spacing, residual = fit_uniform_grid(np.array([0.0, 3.2, 6.6, 9.8]))
    >>> round(origin, 3), round(spacing, 3), np.round(residual, 3).tolist()
    (-0.02, 3.28, [0.02, -0.06, 0.06, -0.02])
    """
    index = np.arange(distances.size, dtype=np.float64)
    spacing, origin = np.polyfit(index, distances, 1)
    residual = distances - (origin + spacing * index)
    return float(origin), float(spacing), residual


def _check_spacing(
    positions: np.ndarray,
    distances: np.ndarray,
    normal: np.ndarray,
    files: Sequence[Path],
    label: str,
) -> tuple[float, float, list[str]]:
    """Check that slices lie on one uniform grid along the normal and are not shifted in-plane.

    Returns
    -------
    (float, float, list of str)
        The fitted spacing (mm, positive), the fitted position of slice 0 along the normal (mm)
        and the warnings (deviations from the grid larger than :data:`GRID_NOTE_MM`).
    """
    tag = _TAGS["ImagePositionPatient"]
    steps = np.diff(distances)
    order_problem = np.flatnonzero(steps < 0)
    if order_problem.size:  # pragma: no cover - callers sort first
        raise GeometryError(f"slices of series {label} are not sorted", file=label, tag=tag)
    duplicates = np.flatnonzero(steps <= SPACING_TOLERANCE_MM)
    if duplicates.size:
        i = int(duplicates[0])
        raise GeometryError(
            f"two slices at the same position in series {label}",
            file=files[i + 1],
            tag=tag,
            value=f"{distances[i + 1]:.4f} mm along the normal, as {files[i].name}",
            expected="one slice per position",
        )
    typical = float(statistics.median(steps.tolist()))  # np.median imports numpy.ma (~15 ms)
    gaps = np.flatnonzero(steps >= (1.0 + GAP_FRACTION) * typical)
    if gaps.size:
        i = int(gaps[0])
        missing = int(np.sum(np.rint(steps[gaps] / typical)) - gaps.size)
        raise GeometryError(
            f"missing slice(s) in series {label}: gap of {steps[i]:.4g} mm between slice "
            f"positions {distances[i]:.4g} mm ({files[i].name}) and "
            f"{distances[i + 1]:.4g} mm ({files[i + 1].name}); "
            f"about {max(missing, 1)} slice(s) missing in all",
            file=label,
            tag=tag,
            value=f"{steps[i]:.4g} mm",
            expected=f"slice spacing {typical:.4g} mm",
        )
    origin, spacing, residual = fit_uniform_grid(distances)
    worst = int(np.argmax(np.abs(residual)))
    deviation = float(abs(residual[worst]))
    tolerance = GRID_TOLERANCE_FRACTION * spacing
    if deviation > tolerance:
        raise GeometryError(
            f"uneven slice spacing in series {label}: slice positions do not lie on one "
            f"uniform grid; {files[worst].name} at {distances[worst]:.4g} mm is "
            f"{residual[worst]:+.3g} mm ({deviation / spacing:.2f} slice) off the "
            f"least-squares grid of spacing {spacing:.4g} mm"
            + _neighbours(distances, files, worst),
            file=files[worst],
            tag=tag,
            value=f"{deviation:.3g} mm off the grid",
            expected=f"within {GRID_TOLERANCE_FRACTION:g} slice ({tolerance:.3g} mm)",
        )
    notes = []
    if deviation <= GRID_NOTE_MM:
        # a regular series: the grid through the first and last slice, exactly as written
        # (the least-squares grid would move slice 0 by rounding-level amounts)
        origin = float(distances[0])
        spacing = float(distances[-1] - distances[0]) / (len(distances) - 1)
    else:
        notes.append(
            f"slice positions deviate from a uniform grid by up to {deviation:.3g} mm "
            f"({deviation / spacing:.3f} slice, at {files[worst].name}; steps "
            f"{steps.min():.4g}-{steps.max():.4g} mm); read on the least-squares grid of "
            f"spacing {spacing:.4g} mm (tolerance {GRID_TOLERANCE_FRACTION:g} slice)"
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
    return spacing, origin, notes


def _neighbours(distances: np.ndarray, files: Sequence[Path], index: int) -> str:
    parts = [
        f"{files[i].name} at {distances[i]:.4g} mm"
        for i in (index - 1, index + 1)
        if 0 <= i < len(files)
    ]
    return f" (neighbours: {', '.join(parts)})" if parts else ""
