"""VOIs from NIfTI label maps.

A label map is an integer NIfTI image: 0 is background, each positive value one VOI. It is
brought onto a reference grid (the PET): used as is when the grids match, resampled with
nearest neighbour otherwise (a :class:`~immunopet.errors.GeometryWarning`, also recorded in
:attr:`LabelMap.warnings`).

Label names follow the BIDS derivatives segmentation convention: a tab-separated look-up
table with the same stem as the image (``x_dseg.nii.gz`` -> ``x_dseg.tsv``), a header row and
at least the columns ``index`` and ``name``::

    index	name
    1	liver
    2	spleen

Names given as an argument take precedence over the file. DICOM SEG and RTSTRUCT sources
live in their own modules.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from immunopet.errors import GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.nifti import read_nifti, sidecar_path, write_nifti

__all__ = [
    "LabelMap",
    "describe_grid",
    "label_table_path",
    "read_label_map",
    "read_label_table",
    "write_label_map",
    "write_label_table",
]


@dataclass(frozen=True)
class LabelMap:
    """Integer VOI labels on a reference grid.

    Attributes
    ----------
    volume : ImageVolume
        Integer labels (unit LABEL) on the reference grid.
    labels : tuple of int
        Labels present on that grid, ascending, 0 excluded.
    names : dict of int to str
        Known label names (from the argument or the look-up table); may list labels
        that are not present.
    warnings : tuple of str
        Fallbacks used (resampling, labels lost by resampling).
    source : str or None
        The file read, named in error messages.
    """

    volume: ImageVolume
    labels: tuple[int, ...]
    names: dict[int, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str | None = None

    def mask(self, label: int) -> np.ndarray:
        """Boolean ``[z, y, x]`` mask of one label.

        Raises
        ------
        InputError
            When ``label`` is not present in the map (after resampling).
        """
        if isinstance(label, bool) or int(label) != label or int(label) not in self.labels:
            raise InputError(
                "label not present in the label map",
                file=self.source,
                tag="label",
                value=label,
                expected="one of " + (", ".join(map(str, self.labels)) or "(no labels)"),
            )
        return np.asarray(self.volume.array == int(label))

    def mask_by_name(self, name: str) -> np.ndarray:
        """Boolean mask of the label called ``name``.

        Raises
        ------
        InputError
            When no label has that name.
        """
        matches = [label for label, text in self.names.items() if text == name]
        if len(matches) != 1:
            raise InputError(
                "label name not found" if not matches else "label name is not unique",
                file=self.source,
                tag="name",
                value=name,
                expected="one of " + (", ".join(sorted(set(self.names.values()))) or "(none)"),
            )
        return self.mask(matches[0])


# ---------------------------------------------------------------------------- grids
def describe_grid(volume: ImageVolume) -> str:
    """One-line description of a grid: shape, spacing and first voxel position (LPS mm).

    Examples
    --------
    >>> vol = ImageVolume(np.zeros((2, 3, 4)), np.diag([3.0, 2.0, 1.0, 1.0]))
    >>> describe_grid(vol)
    'shape (2, 3, 4), spacing (3, 2, 1) mm, origin (0, 0, 0) mm LPS'
    """
    spacing = ", ".join(f"{v:.4g}" for v in volume.spacing_mm)
    origin = ", ".join(f"{v + 0.0:.4g}" for v in volume.affine[:3, 3])
    return f"shape {volume.shape}, spacing ({spacing}) mm, origin ({origin}) mm LPS"


def _overlaps(moving: ImageVolume, reference: ImageVolume) -> bool:
    """True when the bounding box of ``moving``'s field of view meets ``reference``'s."""
    edges = [(-0.5, n - 0.5) for n in moving.shape]
    corners = np.array(np.meshgrid(*edges, indexing="ij")).reshape(3, -1).T
    in_reference = reference.lps_to_voxel(moving.voxel_to_lps(corners))
    low = in_reference.min(axis=0)
    high = in_reference.max(axis=0)
    limit = np.asarray(reference.shape) - 0.5
    return bool(np.all(high >= -0.5) and np.all(low <= limit))


def _unpositioned_on_reference(
    volume: ImageVolume, reference: ImageVolume, path: Path
) -> ImageVolume:
    """A label map with no position, taken voxel for voxel on ``reference`` when it can be.

    Its shape and voxel sizes (within 0.1 %) must be the reference's: then drawing it on the
    reference grid is the only reading that does not move or stretch it. Otherwise resampling
    would place it by nibabel's guessed origin, so it is refused.
    """
    same_shape = tuple(volume.shape) == tuple(reference.shape)
    same_voxels = bool(np.allclose(volume.spacing_mm, reference.spacing_mm, rtol=1e-3, atol=0.0))
    if not (same_shape and same_voxels):
        raise GeometryError(
            "label map has no position (qform_code and sform_code 0) and another grid than the "
            "reference, so it cannot be placed",
            file=path,
            tag="qform_code, sform_code",
            value=describe_grid(volume),
            expected=(
                f"a qform or sform, or the reference's shape and voxel sizes "
                f"({describe_grid(reference)})"
            ),
        )
    return reference.with_array(np.asarray(volume.array), unit=Unit.LABEL)


def _inside(points_mm: np.ndarray, reference: ImageVolume) -> np.ndarray:
    """Which LPS points lie within the reference grid's field of view (voxel edges)."""
    index = reference.lps_to_voxel(points_mm)
    limit = np.asarray(reference.shape, dtype=np.float64) - 0.5
    return np.all((index >= -0.5) & (index <= limit), axis=-1)


def _cut_by_field_of_view(
    array: np.ndarray, volume: ImageVolume, reference: ImageVolume
) -> dict[int, tuple[int, int]]:
    """Labels with voxel centres outside ``reference``'s field of view: label -> (out, all).

    The corners of the labelled box are checked first (a map inside the PET's field of view,
    the ordinary case, costs eight points); otherwise the labelled voxels are checked in
    chunks of a million.
    """
    nonzero = np.nonzero(array)
    if nonzero[0].size == 0:
        return {}
    low = [int(axis.min()) for axis in nonzero]
    high = [int(axis.max()) for axis in nonzero]
    corners = np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij")).reshape(3, -1).T
    if np.all(_inside(volume.voxel_to_lps(corners), reference)):
        return {}
    labels = array[nonzero]
    outside = np.zeros(labels.shape, dtype=bool)
    chunk = 1_000_000
    for start in range(0, labels.size, chunk):
        index = np.stack([axis[start : start + chunk] for axis in nonzero], axis=1)
        outside[start : start + chunk] = ~_inside(volume.voxel_to_lps(index), reference)
    found = {}
    for label in np.unique(labels[outside]):
        mine = labels == label
        found[int(label)] = (int(np.count_nonzero(outside & mine)), int(np.count_nonzero(mine)))
    return found


# ---------------------------------------------------------------------------- names
def label_table_path(path: str | Path) -> Path:
    """The look-up table next to a label map: same stem, ``.tsv``.

    Examples
    --------
    >>> label_table_path("voi/sub-01_dseg.nii.gz").as_posix()
    'voi/sub-01_dseg.tsv'
    """
    return sidecar_path(path).with_suffix(".tsv")


def read_label_table(path: str | Path) -> dict[int, str]:
    """Read a BIDS-style ``index``/``name`` TSV look-up table.

    Raises
    ------
    InputError
        When a column is missing, an index is not an integer >= 1, or repeats.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = reader.fieldnames or []
        for column in ("index", "name"):
            if column not in columns:
                raise InputError(
                    "column missing from the label table",
                    file=path,
                    tag=column,
                    value=columns,
                    expected="tab-separated columns 'index' and 'name'",
                )
        names: dict[int, str] = {}
        for line, row in enumerate(reader, start=2):
            text = (row["index"] or "").strip()
            try:
                index = int(text)
            except ValueError:
                index = -1
            if index < 1:
                raise InputError(
                    f"invalid label index on line {line}",
                    file=path,
                    tag="index",
                    value=text,
                    expected="an integer >= 1",
                )
            if index in names:
                raise InputError(
                    f"label index repeated on line {line}",
                    file=path,
                    tag="index",
                    value=index,
                    expected="each index once",
                )
            names[index] = (row["name"] or "").strip()
    return names


def write_label_table(names: Mapping[int, str], path: str | Path) -> Path:
    """Write an ``index``/``name`` TSV look-up table (rows sorted by index)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "name"])
        for index in sorted(names):
            writer.writerow([int(index), names[index]])
    return path


# ---------------------------------------------------------------------------- label maps
def _integer_labels(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        integral = finite & (array == np.round(np.where(finite, array, 0.0)))
        if not np.all(integral):
            bad = array[~integral].flat[0]
            raise InputError(
                "label map has non-integer values",
                file=path,
                tag="voxel values",
                value=float(bad),
                expected="integer labels (0 background)",
            )
        array = array.astype(np.int64)
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(
            "label map values are not numbers",
            file=path,
            tag="datatype",
            value=str(array.dtype),
            expected="an integer type",
        )
    if array.size and array.min() < 0:
        raise InputError(
            "label map has negative values",
            file=path,
            tag="voxel values",
            value=int(array.min()),
            expected="labels >= 0 (0 background)",
        )
    return array


def _present(array: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.unique(array) if v != 0)


def read_label_map(
    path: str | Path,
    *,
    reference: ImageVolume,
    names: Mapping[int, str] | None = None,
) -> LabelMap:
    """Read a NIfTI label map onto a reference grid.

    Parameters
    ----------
    path : path-like
        ``.nii`` / ``.nii.gz`` with integer labels (integral float values are accepted).
    reference : ImageVolume
        The grid the VOIs are wanted on (usually the PET).
    names : mapping of int to str, optional
        Label names; default from the same-stem ``.tsv`` look-up table when it exists.

    Returns
    -------
    LabelMap

    Raises
    ------
    InputError
        Non-integer or negative values; invalid look-up table.
    GeometryError
        When the map's field of view does not overlap the reference grid at all; when the map
        has no position (both qform and sform codes 0) and not the reference's shape and voxel
        sizes; when its geometry is unusable (see :func:`~immunopet.io.nifti.read_nifti`).

    Warns
    -----
    GeometryWarning
        When the map is on another grid and is resampled (nearest neighbour); when labels
        are cut by the reference's field of view (voxels outside it, counted per label) or
        disappear in that resampling; when a map without position is placed voxel for voxel
        on the reference grid; all are also kept in ``warnings``.
    """
    path = Path(path)
    image = read_nifti(path, unit=Unit.LABEL)
    array = _integer_labels(np.asarray(image.volume.array), path)
    volume = image.volume.with_array(array, unit=Unit.LABEL)
    notes = list(image.warnings)
    if image.affine_source == "pixdim" and not volume.same_grid(reference):
        volume = _unpositioned_on_reference(volume, reference, path)
        note = (
            f"{path}: label map without position (qform_code and sform_code 0) has the "
            "reference's shape and voxel sizes: placed voxel for voxel on the reference grid"
        )
        warnings.warn(note, GeometryWarning, stacklevel=2)
        notes.append(note)
    if not volume.same_grid(reference):
        if not _overlaps(volume, reference):
            raise GeometryError(
                "label map does not overlap the reference image",
                file=path,
                tag="affine",
                value=describe_grid(volume),
                expected=f"a field of view meeting the reference grid ({describe_grid(reference)})",
            )
        before = _present(array)
        cut = _cut_by_field_of_view(array, volume, reference)
        volume = volume.resample_to(reference, order=0, fill_value=0)
        note = (
            f"{path}: label map resampled (nearest neighbour) from {describe_grid(image.volume)} "
            f"onto the reference grid {describe_grid(reference)}"
        )
        warnings.warn(note, GeometryWarning, stacklevel=2)
        notes.append(note)
        partly = {label: counts for label, counts in cut.items() if counts[0] < counts[1]}
        if partly:
            parts = ", ".join(
                f"{label} ({out} of {total} voxels, {100.0 * out / total:.0f} %)"
                for label, (out, total) in sorted(partly.items())
            )
            note = (
                f"{path}: labels cut by the reference field of view: {parts} lie outside it; "
                "their VOIs hold only the part inside (volumes and metrics of that part)"
            )
            warnings.warn(note, GeometryWarning, stacklevel=2)
            notes.append(note)
        lost = sorted(set(before) - set(_present(volume.array)))
        if lost:
            note = f"{path}: labels {lost} have no voxel on the reference grid after resampling"
            warnings.warn(note, GeometryWarning, stacklevel=2)
            notes.append(note)
    if names is None:
        table = label_table_path(path)
        names = read_label_table(table) if table.is_file() else {}
    return LabelMap(
        volume=volume,
        labels=_present(volume.array),
        names={int(k): str(v) for k, v in names.items()},
        warnings=tuple(notes),
        source=str(path),
    )


def write_label_map(
    labels: ImageVolume,
    path: str | Path,
    names: Mapping[int, str] | None = None,
) -> Path:
    """Write integer labels as NIfTI, and their names as the same-stem ``.tsv`` table.

    The on-disk type is the smallest of uint8, int16 and int32 that holds the largest label.

    Raises
    ------
    InputError
        When the values are not non-negative integers.
    """
    path = Path(path)
    array = _integer_labels(np.asarray(labels.array), path)
    top = int(array.max()) if array.size else 0
    dtype = np.uint8 if top <= 255 else np.int16 if top <= 32767 else np.int32
    write_nifti(labels.with_array(array, unit=Unit.LABEL), path, dtype=dtype)
    if names:
        write_label_table(names, label_table_path(path))
    return path
