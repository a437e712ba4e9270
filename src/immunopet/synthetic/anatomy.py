"""A cartoon human on a voxel grid: body, organs and tumours from analytic shapes.

Everything is built on the voxel-centre grid of an axis-aligned :class:`VoxelGrid` with
vectorised numpy: each shape (ellipsoid, elliptic cylinder, capsule) is evaluated only inside
its bounding box, so a 128 x 128 x 240 grid takes a fraction of a second. Shapes are painted
in a fixed order into a tissue label volume (later shapes win) and finally clipped to the body
outline.

Coordinates are DICOM patient coordinates (LPS, mm): +x towards the patient's left, +y
posterior, +z superior. The vertex of the head is at z = 0 and the body extends to negative z.
Positions below are those of a 1.75 m, 75 kg reference patient and are scaled with height (all
coordinates) and body-mass index (body outline and fat layer only).

Lesions are ellipsoids (axis-aligned) with a stable 1-based number per patient; large ones
(long axis >= :data:`NECROSIS_MIN_LONG_AXIS_MM`) get a less avid core (see :mod:`.kinetics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from immunopet.image import ImageVolume, Unit

__all__ = [
    "NECROSIS_CORE_SCALE",
    "NECROSIS_MIN_LONG_AXIS_MM",
    "ORGAN_NAMES",
    "Anatomy",
    "Lesion",
    "Patient",
    "Tissue",
    "VoxelGrid",
    "build_anatomy",
    "draw_lesions",
    "organ_points_mm",
    "place_lesions",
]

NECROSIS_MIN_LONG_AXIS_MM = 35.0
"""Lesions at least this long (mm) have a necrotic, less avid core."""

NECROSIS_CORE_SCALE = 0.55
"""Semi-axes of the necrotic core relative to the lesion's."""

ORGAN_NAMES = ("blood_pool", "liver", "spleen", "kidney", "lung", "bone_marrow", "brain")
"""Normal organs with a reference sphere, in the order tables list them."""


class Tissue(IntEnum):
    """Tissue classes of the label volume (values of :attr:`Anatomy.tissue`)."""

    AIR = 0
    SOFT_TISSUE = 1
    FAT = 2
    LUNG = 3
    LIVER = 4
    SPLEEN = 5
    KIDNEY = 6
    BLOOD_POOL = 7
    BONE = 8
    BONE_MARROW = 9
    BRAIN = 10
    MYOCARDIUM = 11


@dataclass(frozen=True)
class VoxelGrid:
    """An axis-aligned grid: slices along +z (LPS), rows along +y, columns along +x.

    Attributes
    ----------
    shape : (int, int, int)
        ``(nz, ny, nx)``.
    spacing_mm : (float, float, float), mm
        ``(dz, dy, dx)``.
    origin_mm : (float, float, float), mm
        LPS ``(x, y, z)`` of the centre of voxel ``(0, 0, 0)``.

    Examples
    --------
    >>> grid = VoxelGrid.centred(shape=(10, 4, 4), spacing_mm=(8.0, 8.0, 8.0), top_z_mm=8.0)
    >>> grid.origin_mm
    (-12.0, -12.0, -64.0)
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    @classmethod
    def centred(
        cls,
        *,
        shape: tuple[int, int, int],
        spacing_mm: tuple[float, float, float],
        top_z_mm: float,
    ) -> VoxelGrid:
        """A grid centred on x = y = 0 whose top slice centre is at ``top_z_mm``."""
        nz, ny, nx = shape
        dz, dy, dx = spacing_mm
        origin = (-(nx - 1) / 2 * dx, -(ny - 1) / 2 * dy, top_z_mm - (nz - 1) * dz)
        return cls(shape=shape, spacing_mm=spacing_mm, origin_mm=origin)

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from ``(k, j, i, 1)`` to LPS mm."""
        dz, dy, dx = self.spacing_mm
        affine = np.diag([0.0, 0.0, 0.0, 1.0])
        affine[2, 0] = dz
        affine[1, 1] = dy
        affine[0, 2] = dx
        affine[:3, 3] = self.origin_mm
        return affine

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """1-D voxel-centre coordinates ``(z, y, x)`` in mm along each array axis."""
        (nz, ny, nx), (dz, dy, dx) = self.shape, self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return (z0 + dz * np.arange(nz), y0 + dy * np.arange(ny), x0 + dx * np.arange(nx))

    def volume(self, array: np.ndarray, unit: Unit | str) -> ImageVolume:
        """Wrap an array on this grid as an :class:`ImageVolume`."""
        return ImageVolume(array=array, affine=self.affine, unit=unit)

    def index_range(self, low_mm: np.ndarray, high_mm: np.ndarray) -> tuple[slice, slice, slice]:
        """Array slices ``(z, y, x)`` of voxel centres within the LPS box ``[low, high]``."""
        out = []
        for axis, lps_axis in ((0, 2), (1, 1), (2, 0)):
            start = self.origin_mm[lps_axis]
            step = self.spacing_mm[axis]
            first = max(math.ceil((low_mm[lps_axis] - start) / step), 0)
            last = min(math.floor((high_mm[lps_axis] - start) / step), self.shape[axis] - 1)
            out.append(slice(first, max(last + 1, first)))
        return (out[0], out[1], out[2])


@dataclass(frozen=True)
class Patient:
    """Body size of a synthetic patient.

    Attributes
    ----------
    height_m : float, m
    weight_kg : float, kg
    sex : {"M", "F"}
    """

    height_m: float
    weight_kg: float
    sex: str

    @property
    def length_scale(self) -> float:
        """All coordinates scale with height relative to 1.75 m."""
        return self.height_m / 1.75

    @property
    def girth_scale(self) -> float:
        """Body outline scale from body-mass index relative to 24.5 kg/m², clipped to 0.8-1.35."""
        bmi = self.weight_kg / self.height_m**2
        return float(np.clip(math.sqrt(bmi / 24.5), 0.8, 1.35))


@dataclass(frozen=True)
class Lesion:
    """One tumour or lymph node.

    Attributes
    ----------
    number : int
        1-based number, stable across all scans and series of the patient (label value).
    site : str
        ``lung``, ``mediastinal_node``, ``liver``, ``adrenal``, ``bone`` for FDG-positive
        tumours; ``mediastinal_node``, ``axillary_node``, ``supraclavicular_node``,
        ``abdominal_node`` for FDG-negative tracer-positive nodes.
    centre_mm : (float, float, float), mm
        LPS centre.
    semi_axes_mm : (float, float, float), mm
        Ellipsoid semi-axes along x, y, z.
    fdg_positive : bool
        Positive on the baseline FDG PET (malignant).
    near_spleen : bool
        Touches the spleen (spill-in case).
    """

    number: int
    site: str
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    fdg_positive: bool
    near_spleen: bool = False

    @property
    def long_axis_mm(self) -> float:
        """Longest diameter, mm."""
        return 2.0 * max(self.semi_axes_mm)

    @property
    def diameter_mm(self) -> float:
        """Diameter of the sphere of equal volume, mm."""
        a, b, c = self.semi_axes_mm
        return 2.0 * (a * b * c) ** (1.0 / 3.0)

    @property
    def necrotic(self) -> bool:
        """True when the lesion has a less avid core."""
        return self.long_axis_mm >= NECROSIS_MIN_LONG_AXIS_MM


@dataclass(frozen=True)
class Anatomy:
    """Tissue and lesion label volumes of one patient on one grid.

    Attributes
    ----------
    grid : VoxelGrid
    tissue : numpy.ndarray of uint8
        :class:`Tissue` value per voxel (lesions not included).
    lesion_labels : numpy.ndarray of uint16
        Lesion number per voxel, 0 outside lesions.
    necrotic_core : numpy.ndarray of bool
        Voxels in the core of a necrotic lesion.
    """

    grid: VoxelGrid
    tissue: np.ndarray
    lesion_labels: np.ndarray
    necrotic_core: np.ndarray


# ---------------------------------------------------------------------------- shapes
def _ellipsoid(
    grid: VoxelGrid, centre: np.ndarray, semi: np.ndarray
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    box = grid.index_range(centre - semi, centre + semi)
    z, y, x = (axis[s] for axis, s in zip(grid.axes_mm(), box, strict=True))
    dist = (
        ((z[:, None, None] - centre[2]) / semi[2]) ** 2
        + ((y[None, :, None] - centre[1]) / semi[1]) ** 2
        + ((x[None, None, :] - centre[0]) / semi[0]) ** 2
    )
    return box, dist <= 1.0


def _cylinder(
    grid: VoxelGrid, centre_xy: np.ndarray, semi_xy: np.ndarray, z_low: float, z_high: float
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    low = np.array([centre_xy[0] - semi_xy[0], centre_xy[1] - semi_xy[1], z_low])
    high = np.array([centre_xy[0] + semi_xy[0], centre_xy[1] + semi_xy[1], z_high])
    box = grid.index_range(low, high)
    z, y, x = (axis[s] for axis, s in zip(grid.axes_mm(), box, strict=True))
    inside = (((y[:, None] - centre_xy[1]) / semi_xy[1]) ** 2) + (
        ((x[None, :] - centre_xy[0]) / semi_xy[0]) ** 2
    ) <= 1.0
    return box, np.broadcast_to(inside[None, :, :], (z.size, y.size, x.size))


def _capsule(
    grid: VoxelGrid, start: np.ndarray, end: np.ndarray, radius: float
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    box = grid.index_range(np.minimum(start, end) - radius, np.maximum(start, end) + radius)
    z, y, x = (axis[s] for axis, s in zip(grid.axes_mm(), box, strict=True))
    points = np.stack(np.broadcast_arrays(x[None, None, :], y[None, :, None], z[:, None, None]), -1)
    direction = end - start
    t = np.clip(((points - start) @ direction) / float(direction @ direction), 0.0, 1.0)
    nearest = start + t[..., None] * direction
    return box, np.sum((points - nearest) ** 2, axis=-1) <= radius**2


def _paint(
    target: np.ndarray, shape: tuple[tuple[slice, slice, slice], np.ndarray], value: int
) -> None:
    box, mask = shape
    region = target[box]
    region[mask] = value


# ---------------------------------------------------------------------------- reference body
# Reference-patient positions (x, y, z) in mm; z = 0 at the vertex.
_LUNG_R = ((-80.0, 5.0, -380.0), (62.0, 80.0, 125.0))
_LUNG_L = ((82.0, 5.0, -385.0), (60.0, 80.0, 120.0))
_LIVER = ((-62.0, -5.0, -545.0), (88.0, 82.0, 78.0))
_SPLEEN = ((100.0, 45.0, -545.0), (32.0, 48.0, 52.0))
_KIDNEY_R = ((-72.0, 55.0, -640.0), (30.0, 28.0, 55.0))
_KIDNEY_L = ((72.0, 55.0, -625.0), (30.0, 28.0, 55.0))
_HEART = ((18.0, -20.0, -455.0), (58.0, 50.0, 55.0))
_AORTA = (
    ((5.0, -15.0, -425.0), (5.0, -15.0, -345.0), 15.0),
    ((5.0, -15.0, -345.0), (20.0, 25.0, -325.0), 14.0),
    ((20.0, 25.0, -325.0), (20.0, 42.0, -365.0), 13.0),
    ((20.0, 42.0, -365.0), (15.0, 45.0, -820.0), 12.0),
)
_SPINE_XY, _SPINE_Z = (0.0, 62.0), (-880.0, -195.0)
_SPINE_BONE_R, _SPINE_MARROW_R = 19.0, 14.0
_ADRENAL_R = (-55.0, 45.0, -575.0)
_ADRENAL_L = (55.0, 45.0, -560.0)

_ORGAN_POINTS = {
    "blood_pool": (5.0, -15.0, -385.0),
    "liver": (-75.0, 0.0, -555.0),
    "spleen": (102.0, 48.0, -545.0),
    "kidney": (72.0, 55.0, -625.0),
    "lung": (85.0, 0.0, -330.0),
    "bone_marrow": (0.0, 62.0, -680.0),
    "brain": (0.0, 0.0, -90.0),
}


def _scaled(point: tuple[float, float, float], scale: float) -> np.ndarray:
    return np.asarray(point, dtype=np.float64) * scale


def organ_points_mm(patient: Patient) -> dict[str, tuple[float, float, float]]:
    """LPS centres (mm) of the 2 cm reference spheres of :data:`ORGAN_NAMES` in ``patient``.

    Each point lies at least 10 mm inside its organ for every supported body size, so a
    sphere of 2 cm diameter stays inside it on the noise-free, blur-free image.

    Examples
    --------
    >>> organ_points_mm(Patient(1.75, 75.0, "M"))["liver"]
    (-75.0, 0.0, -555.0)
    """
    s = patient.length_scale
    return {
        name: (float(p[0] * s), float(p[1] * s), float(p[2] * s))
        for name, p in _ORGAN_POINTS.items()
    }


def build_anatomy(grid: VoxelGrid, patient: Patient, lesions: tuple[Lesion, ...]) -> Anatomy:
    """Paint the body, organs and lesions of ``patient`` on ``grid``.

    Parameters
    ----------
    grid : VoxelGrid
    patient : Patient
    lesions : tuple of Lesion
        Drawn into :attr:`Anatomy.lesion_labels` in order (later lesions win overlaps).

    Returns
    -------
    Anatomy

    Examples
    --------
    >>> grid = VoxelGrid.centred(shape=(120, 64, 64), spacing_mm=(8.0, 8.0, 8.0), top_z_mm=4.0)
    >>> anatomy = build_anatomy(grid, Patient(1.75, 75.0, "M"), ())
    >>> sorted(int(v) for v in np.unique(anatomy.tissue))[:4]
    [0, 1, 2, 3]
    """
    s = patient.length_scale
    g = patient.girth_scale * s
    tissue = np.zeros(grid.shape, dtype=np.uint8)

    def ell(spec: tuple[tuple[float, float, float], tuple[float, float, float]]) -> tuple:
        return _ellipsoid(grid, _scaled(spec[0], s), _scaled(spec[1], s))

    # outline: head, neck, trunk, thighs (fat shell + soft tissue inside)
    fat = max(6.0, 14.0 * patient.girth_scale**2)
    trunk_semi = np.array([165.0 * g, 110.0 * g])
    trunk_z = (-870.0 * s, -245.0 * s)
    thigh_z = (-1100.0 * s, -840.0 * s)
    body_parts = [
        _ellipsoid(grid, _scaled((0, 0, -105), s), _scaled((72, 92, 105), s)),
        _cylinder(grid, np.array([0.0, 5.0 * s]), np.array([55.0, 55.0]) * s, -250 * s, -180 * s),
        _cylinder(grid, np.zeros(2), trunk_semi, *trunk_z),
    ]
    for side in (-1.0, 1.0):
        body_parts.append(
            _cylinder(grid, np.array([side * 85.0 * s, 0.0]), np.full(2, 72.0 * g), *thigh_z)
        )
    body = np.zeros(grid.shape, dtype=bool)
    for box, mask in body_parts:
        body[box] |= mask
    tissue[body] = Tissue.FAT
    _paint(tissue, _cylinder(grid, np.zeros(2), trunk_semi - fat, *trunk_z), Tissue.SOFT_TISSUE)
    for side in (-1.0, 1.0):
        centre = np.array([side * 85.0 * s, 0.0])
        _paint(
            tissue,
            _cylinder(grid, centre, np.full(2, 72.0 * g - fat), *thigh_z),
            Tissue.SOFT_TISSUE,
        )
        _paint(tissue, _cylinder(grid, centre, np.full(2, 14.0 * s), *thigh_z), Tissue.BONE)
        _paint(tissue, _cylinder(grid, centre, np.full(2, 8.0 * s), *thigh_z), Tissue.BONE_MARROW)
    _paint(tissue, body_parts[1], Tissue.SOFT_TISSUE)
    _paint(tissue, body_parts[0], Tissue.SOFT_TISSUE)
    _paint(tissue, ell(((0, 0, -105), (66, 86, 98))), Tissue.BONE)
    _paint(tissue, ell(((0, 0, -105), (60, 80, 90))), Tissue.BRAIN)

    # thorax and abdomen
    _paint(tissue, ell(_LUNG_R), Tissue.LUNG)
    _paint(tissue, ell(_LUNG_L), Tissue.LUNG)
    _paint(tissue, ell(((5, 0, -380), (30, 55, 120))), Tissue.SOFT_TISSUE)  # mediastinum
    _paint(tissue, ell(_HEART), Tissue.MYOCARDIUM)
    _paint(tissue, ell((_HEART[0], (46.0, 38.0, 43.0))), Tissue.BLOOD_POOL)
    for start, end, radius in _AORTA:
        _paint(
            tissue,
            _capsule(grid, _scaled(start, s), _scaled(end, s), radius * s),
            Tissue.BLOOD_POOL,
        )
    _paint(tissue, ell(_LIVER), Tissue.LIVER)
    _paint(tissue, ell(_SPLEEN), Tissue.SPLEEN)
    _paint(tissue, ell(_KIDNEY_R), Tissue.KIDNEY)
    _paint(tissue, ell(_KIDNEY_L), Tissue.KIDNEY)

    # skeleton: spine and iliac wings (cortical shell + marrow)
    spine_xy = _scaled((_SPINE_XY[0], _SPINE_XY[1], 0.0), s)[:2]
    spine_z = (_SPINE_Z[0] * s, _SPINE_Z[1] * s)
    _paint(tissue, _cylinder(grid, spine_xy, np.full(2, _SPINE_BONE_R * s), *spine_z), Tissue.BONE)
    _paint(
        tissue,
        _cylinder(grid, spine_xy, np.full(2, _SPINE_MARROW_R * s), *spine_z),
        Tissue.BONE_MARROW,
    )
    for side in (-1.0, 1.0):
        _paint(tissue, ell(((side * 95, 35, -800), (45, 22, 50))), Tissue.BONE)
        _paint(tissue, ell(((side * 95, 35, -800), (38, 15, 43))), Tissue.BONE_MARROW)

    tissue[~body] = Tissue.AIR
    labels, core = draw_lesions(grid, lesions)
    return Anatomy(grid=grid, tissue=tissue, lesion_labels=labels, necrotic_core=core)


def draw_lesions(grid: VoxelGrid, lesions: tuple[Lesion, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Lesion label volume (uint16) and necrotic-core mask of ``lesions`` on ``grid``.

    A lesion smaller than a voxel still gets the voxel that contains its centre, so every
    lesion has at least one voxel when its centre lies inside the grid.
    """
    labels = np.zeros(grid.shape, dtype=np.uint16)
    core = np.zeros(grid.shape, dtype=bool)
    inverse = np.linalg.inv(grid.affine)
    for lesion in lesions:
        centre = np.asarray(lesion.centre_mm, dtype=np.float64)
        semi = np.asarray(lesion.semi_axes_mm, dtype=np.float64)
        box, mask = _ellipsoid(grid, centre, semi)
        if not mask.any():
            k, j, i = np.rint(inverse[:3, :3] @ centre + inverse[:3, 3]).astype(int)
            if all(0 <= v < n for v, n in zip((k, j, i), grid.shape, strict=True)):
                labels[k, j, i] = lesion.number
            continue
        _paint(labels, (box, mask), lesion.number)
        if lesion.necrotic:
            core_box, core_mask = _ellipsoid(grid, centre, semi * NECROSIS_CORE_SCALE)
            region = core[core_box]
            region[core_mask & (labels[core_box] == lesion.number)] = True
    core &= labels > 0
    return labels, core


# ---------------------------------------------------------------------------- lesion placement
_TUMOUR_SITES = ("lung", "mediastinal_node", "liver", "adrenal", "bone")
_TUMOUR_SITE_P = (0.38, 0.2, 0.17, 0.1, 0.15)
_NODE_SITES = ("mediastinal_node", "axillary_node", "supraclavicular_node", "abdominal_node")
_NODE_SITE_P = (0.5, 0.2, 0.15, 0.15)


def _inside(point: np.ndarray, spec: tuple, s: float, shrink: float) -> bool:
    centre, semi = _scaled(spec[0], s), _scaled(spec[1], s) * shrink
    return bool(np.sum(((point - centre) / semi) ** 2) <= 1.0)


def _site_centre(site: str, s: float, rng: np.random.Generator) -> np.ndarray:
    def in_ellipsoid(spec: tuple, shrink: float) -> np.ndarray:
        centre, semi = _scaled(spec[0], s), _scaled(spec[1], s) * shrink
        while True:
            u = rng.uniform(-1.0, 1.0, 3)
            if u @ u <= 1.0:
                return np.asarray(centre + u * semi)

    side = float(rng.choice((-1.0, 1.0)))
    if site == "lung":
        return in_ellipsoid(_LUNG_R if side < 0 else _LUNG_L, 0.7)
    if site == "liver":
        return in_ellipsoid(_LIVER, 0.65)
    if site == "adrenal":
        base = np.asarray(_ADRENAL_R if side < 0 else _ADRENAL_L) * s
        return np.asarray(base + rng.normal(0.0, 4.0, 3))
    if site == "bone":
        if rng.uniform() < 0.7:
            z = rng.uniform(-800.0, -300.0)
            return np.array([_SPINE_XY[0], _SPINE_XY[1], z]) * s
        return np.array([side * 95.0, 35.0, -800.0]) * s + rng.normal(0.0, 8.0, 3)
    if site == "mediastinal_node":
        return (
            np.array(
                [rng.uniform(-30.0, 35.0), rng.uniform(-35.0, 15.0), rng.uniform(-430.0, -300.0)]
            )
            * s
        )
    if site == "axillary_node":
        return np.array([side * 128.0, rng.uniform(-20.0, 20.0), rng.uniform(-340.0, -290.0)]) * s
    if site == "supraclavicular_node":
        return np.array([side * 45.0, rng.uniform(-10.0, 10.0), rng.uniform(-262.0, -250.0)]) * s
    if site == "abdominal_node":
        return (
            np.array(
                [rng.uniform(-35.0, 35.0), rng.uniform(0.0, 30.0), rng.uniform(-720.0, -640.0)]
            )
            * s
        )
    raise ValueError(site)  # pragma: no cover - sites are the module's own constants


def _near_spleen_centre(s: float, radius: float) -> np.ndarray:
    # from the spleen centre medially and slightly posterior, just beyond its surface
    centre, semi = _scaled(_SPLEEN[0], s), _scaled(_SPLEEN[1], s)
    direction = np.array([-1.0, 0.25, 0.0])
    direction /= np.linalg.norm(direction)
    to_surface = 1.0 / math.sqrt(float(np.sum((direction / semi) ** 2)))
    return np.asarray(centre + direction * (to_surface + radius + 1.0))


def place_lesions(
    patient: Patient,
    *,
    n_tumours: int,
    n_large: int,
    n_nodes: int,
    near_spleen: bool,
    rng: np.random.Generator,
    field_of_view_mm: tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]
    | None = None,
) -> tuple[Lesion, ...]:
    """Draw lesion positions and sizes for one patient.

    Parameters
    ----------
    patient : Patient
    n_tumours : int
        FDG-positive tumours (numbers ``1 .. n_tumours``).
    n_large : int
        How many of them have a long axis of at least 20 mm (20-70 mm; the rest 8-19 mm).
    n_nodes : int
        FDG-negative, tracer-positive lymph nodes of 8-16 mm (numbered after the tumours).
    near_spleen : bool
        Make the last large tumour an adrenal lesion touching the spleen.
    rng : numpy.random.Generator
    field_of_view_mm : ((float, float, float), (float, float, float)), mm, optional
        LPS corners ``(low, high)`` of the box every lesion must lie in whole (the scans'
        field of view less a margin): a position whose lesion would reach beyond it is drawn
        again, and the last draw is moved inside when no draw fits.

    Returns
    -------
    tuple of Lesion
        Lesions keep clear of each other and of the organ reference spheres, and lie inside
        ``field_of_view_mm``.
    """
    s = patient.length_scale
    low = None if field_of_view_mm is None else np.asarray(field_of_view_mm[0], dtype=np.float64)
    high = None if field_of_view_mm is None else np.asarray(field_of_view_mm[1], dtype=np.float64)

    def fits(centre: np.ndarray, reach: float) -> bool:
        if low is None or high is None:
            return True
        return bool(np.all(centre - reach >= low) and np.all(centre + reach <= high))

    def moved_inside(centre: np.ndarray, reach: float) -> np.ndarray:
        if low is None or high is None or fits(centre, reach):
            return centre
        if np.any(high - low < 2.0 * reach):
            raise ValueError(
                f"a lesion of reach {reach:.1f} mm does not fit the field of view {low}..{high}"
            )
        return np.clip(centre, low + reach, high - reach)

    keep_clear = [np.asarray(p) for p in organ_points_mm(patient).values()]
    clear_radius = [10.0] * len(keep_clear)
    lesions: list[Lesion] = []

    def add(site: str, long_axis: float, fdg: bool, spleen: bool = False) -> None:
        semi = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)]) * long_axis / 2
        semi = rng.permutation(semi)
        for _ in range(200):
            if spleen:
                centre = _near_spleen_centre(s, float(semi[0]))
            else:
                centre = _site_centre(site, s, rng)
            reach = float(np.max(semi))
            if fits(centre, reach) and (
                spleen
                or all(
                    np.linalg.norm(centre - other) > reach + r + 3.0
                    for other, r in zip(keep_clear, clear_radius, strict=True)
                )
            ):
                break
        centre = moved_inside(centre, float(np.max(semi)))
        keep_clear.append(centre)
        clear_radius.append(float(np.max(semi)))
        lesions.append(
            Lesion(
                number=len(lesions) + 1,
                site=site,
                centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                semi_axes_mm=(float(semi[0]), float(semi[1]), float(semi[2])),
                fdg_positive=fdg,
                near_spleen=spleen,
            )
        )

    for index in range(n_tumours):
        large = index < n_large
        spleen = near_spleen and index == n_large - 1
        site = "adrenal" if spleen else str(rng.choice(_TUMOUR_SITES, p=_TUMOUR_SITE_P))
        if large:
            top = 70.0 if site == "lung" else 45.0
            long_axis = float(np.exp(rng.uniform(math.log(20.0), math.log(top))))
            if spleen:
                long_axis = 24.0
        else:
            long_axis = float(rng.uniform(8.0, 19.0))
        add(site, long_axis, fdg=True, spleen=spleen)
    for _ in range(n_nodes):
        add(str(rng.choice(_NODE_SITES, p=_NODE_SITE_P)), float(rng.uniform(8.0, 16.0)), False)
    return tuple(lesions)
