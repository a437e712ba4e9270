"""The one geometry-carrying volume type, and resampling between grids.

An :class:`ImageVolume` is an immutable pair of a 3-D array indexed ``[slice, row, column]``
(z, y, x) and a 4x4 affine that maps homogeneous voxel indices ``(k, j, i, 1)`` in that same
order to DICOM patient coordinates (LPS, mm). Conversion to NIfTI's RAS convention happens only
in :mod:`immunopet.io.nifti`.

Column ``c`` of the affine is the LPS step (mm) taken when array index ``c`` grows by one, so
``spacing_mm`` is the norm of the first three columns: ``(dz, dy, dx)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

from immunopet.errors import GeometryError

__all__ = ["ImageVolume", "Unit"]

FloatArray = npt.NDArray[np.floating]


class Unit(StrEnum):
    """What the voxel values of a volume mean."""

    BQML = "BQML"
    """Activity concentration, Bq/mL (decay-corrected as stated by the source)."""
    CNTS = "CNTS"
    """Scanner counts (Philips); needs a vendor factor to become Bq/mL."""
    SUV_BW = "SUVbw"
    """SUV normalised by body weight, g/mL, decay-corrected to injection."""
    SUV_LBM = "SUVlbm"
    """SUV normalised by lean body mass (SUL, Janmahasatian), g/mL."""
    SUV_BSA = "SUVbsa"
    """SUV normalised by body surface area (Du Bois), cm²/mL."""
    SUV_IBW = "SUVibw"
    """SUV normalised by ideal body weight (IBSI SUV manual), g/mL."""
    HU = "HU"
    """CT Hounsfield units."""
    LABEL = "LABEL"
    """Integer labels (masks, label maps)."""
    NONE = "NONE"
    """Unit-less: an operation broke the meaning of the original unit."""


@dataclass(frozen=True)
class ImageVolume:
    """A 3-D image with its voxel -> patient (LPS, mm) geometry.

    Parameters
    ----------
    array : numpy.ndarray
        Voxel values indexed ``[z, y, x]`` (slice, row, column). Kept as a read-only view
        (not copied).
    affine : numpy.ndarray, shape (4, 4)
        Maps homogeneous ``(k, j, i, 1)`` indices to LPS millimetres.
    unit : Unit or str
        Meaning of the voxel values.

    Examples
    --------
    >>> vol = ImageVolume.from_attributes(
    ...     array=np.zeros((3, 4, 5)), image_position_mm=(0.0, 0.0, 0.0),
    ...     image_orientation=(1, 0, 0, 0, 1, 0), pixel_spacing_mm=(2.0, 3.0),
    ...     slice_spacing_mm=4.0, unit="BQML")
    >>> vol.spacing_mm
    (4.0, 2.0, 3.0)
    >>> vol.voxel_to_lps([[2, 1, 1]]).tolist()
    [[3.0, 2.0, 8.0]]
    """

    array: np.ndarray
    affine: np.ndarray
    unit: Unit | str = Unit.NONE

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise GeometryError(
                "an image volume must be 3-D", tag="array.ndim", value=array.ndim, expected="3"
            )
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise GeometryError(
                "affine must be 4x4", tag="affine.shape", value=affine.shape, expected="(4, 4)"
            )
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError("affine is singular", tag="affine", value=affine.tolist())
        # a read-only view: no copy of large volumes, and the caller's own array stays
        # writeable (mutating it behind the volume's back is the caller's choice)
        array = array.view()
        array.flags.writeable = False
        affine = affine.copy()
        affine.flags.writeable = False
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "unit", Unit(self.unit))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_attributes(
        cls,
        *,
        array: np.ndarray,
        image_position_mm: tuple[float, float, float] | npt.ArrayLike,
        image_orientation: tuple[float, ...] | npt.ArrayLike,
        pixel_spacing_mm: tuple[float, float] | npt.ArrayLike,
        slice_spacing_mm: float,
        unit: Unit | str = Unit.NONE,
    ) -> ImageVolume:
        """Build a volume from DICOM-style attributes.

        Parameters
        ----------
        array : numpy.ndarray
            ``[z, y, x]`` voxel values.
        image_position_mm : (3,) float, mm
            (0020,0032) ImagePositionPatient of the first slice (index 0).
        image_orientation : (6,) float
            (0020,0037) ImageOrientationPatient: row direction cosines, then column.
        pixel_spacing_mm : (2,) float, mm
            (0028,0030) PixelSpacing: spacing between rows, then between columns.
        slice_spacing_mm : float, mm
            Signed distance between consecutive slices along ``row x column``.
        unit : Unit or str
            Meaning of the voxel values.
        """
        orientation = np.asarray(image_orientation, dtype=np.float64)
        row_cosine, col_cosine = orientation[:3], orientation[3:]
        if (
            orientation.shape != (6,)
            or abs(np.linalg.norm(row_cosine) - 1) > 1e-4
            or abs(np.linalg.norm(col_cosine) - 1) > 1e-4
            or abs(float(np.dot(row_cosine, col_cosine))) > 1e-4
        ):
            raise GeometryError(
                "direction cosines must be two orthogonal unit vectors",
                tag="(0020,0037) ImageOrientationPatient",
                value=orientation.tolist(),
                expected="6 values, |row| = |column| = 1, row . column = 0 (tolerance 1e-4)",
            )
        normal = np.cross(row_cosine, col_cosine)
        dy, dx = (float(v) for v in np.asarray(pixel_spacing_mm, dtype=np.float64))
        affine = np.eye(4)
        # index k (slice) moves along the normal, j (row) along the column cosine,
        # i (column) along the row cosine -- DICOM's naming is confusing on purpose.
        affine[:3, 0] = normal * float(slice_spacing_mm)
        affine[:3, 1] = col_cosine * dy
        affine[:3, 2] = row_cosine * dx
        affine[:3, 3] = np.asarray(image_position_mm, dtype=np.float64)
        return cls(array=np.asarray(array), affine=affine, unit=Unit(unit))

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        nz, ny, nx = self.array.shape
        return (nz, ny, nx)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing ``(dz, dy, dx)`` in mm."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm³)."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix of unit column vectors (LPS) for the z, y, x index axes."""
        return self.affine[:3, :3] / np.asarray(self.spacing_mm)

    # ------------------------------------------------------------------ coordinates
    def voxel_to_lps(self, indices: npt.ArrayLike) -> np.ndarray:
        """Map ``(..., 3)`` voxel indices ``(k, j, i)`` to LPS millimetres."""
        idx = np.asarray(indices, dtype=np.float64)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_voxel(self, points_mm: npt.ArrayLike) -> np.ndarray:
        """Map ``(..., 3)`` LPS points (mm) to fractional voxel indices ``(k, j, i)``."""
        pts = np.asarray(points_mm, dtype=np.float64)
        inverse = np.linalg.inv(self.affine)
        return pts @ inverse[:3, :3].T + inverse[:3, 3]

    def voxel_centres_lps(self) -> np.ndarray:
        """LPS coordinates (mm) of every voxel centre, shape ``(nz, ny, nx, 3)``."""
        grid = np.indices(self.shape, dtype=np.float64).reshape(3, -1).T
        return self.voxel_to_lps(grid).reshape(*self.shape, 3)

    # ------------------------------------------------------------------ derived objects
    def with_array(self, array: np.ndarray, unit: Unit | str | None = None) -> ImageVolume:
        """Return a new volume on the same grid with other values (and optionally unit)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise GeometryError(
                "new array does not fit the grid",
                tag="array.shape",
                value=array.shape,
                expected=str(self.shape),
            )
        return ImageVolume(
            array=array, affine=self.affine, unit=self.unit if unit is None else unit
        )

    def crop(self, box: tuple[slice, slice, slice]) -> ImageVolume:
        """The sub-volume of a box of index slices (step 1), at the same LPS positions.

        Examples
        --------
        >>> vol = ImageVolume(array=np.arange(27.0).reshape(3, 3, 3), affine=np.eye(4))
        >>> sub = vol.crop((slice(1, 3), slice(0, 2), slice(2, 3)))
        >>> sub.shape, sub.voxel_to_lps([0, 0, 0]).tolist(), float(sub.array[0, 0, 0])
        ((2, 2, 1), [1.0, 0.0, 2.0], 11.0)
        """
        starts = [part.indices(n)[0] for part, n in zip(box, self.shape, strict=True)]
        if any(part.step not in (None, 1) for part in box):
            raise GeometryError("a crop box must have step 1", tag="box", value=box)
        shift = np.eye(4)
        shift[:3, 3] = starts
        return ImageVolume(array=self.array[box], affine=self.affine @ shift, unit=self.unit)

    def same_grid(self, other: ImageVolume, tolerance_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape and voxel positions (within tolerance)."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=tolerance_mm)
        )

    def resample_to(
        self,
        target: ImageVolume,
        *,
        order: Literal[0, 1, 3] = 1,
        fill_value: float = 0.0,
    ) -> ImageVolume:
        """Resample onto ``target``'s grid (scipy ``affine_transform``).

        Parameters
        ----------
        target : ImageVolume
            The grid to sample on; only its geometry is used.
        order : {0, 1, 3}
            Interpolation order: 0 nearest neighbour (masks, labels), 1 trilinear, 3 cubic.
        fill_value : float
            Value outside this volume's field of view.

        Returns
        -------
        ImageVolume
            Same unit as this volume, on ``target``'s grid.
        """
        from scipy import ndimage  # here, not at module level: `import immunopet` stays light

        # target voxel -> LPS -> source voxel
        mapping = np.linalg.inv(self.affine) @ target.affine
        source = self.array
        if order == 0:
            out = ndimage.affine_transform(
                source,
                mapping[:3, :3],
                offset=mapping[:3, 3],
                output_shape=target.shape,
                order=0,
                mode="constant",
                cval=fill_value,
                output=source.dtype,
            )
        else:
            out = ndimage.affine_transform(
                source.astype(np.float64, copy=False),
                mapping[:3, :3],
                offset=mapping[:3, 3],
                output_shape=target.shape,
                order=order,
                mode="constant",
                cval=fill_value,
            )
        return ImageVolume(array=out, affine=target.affine, unit=self.unit)
