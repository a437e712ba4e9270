"""Fig 5-style slice pairs: FDG versus 89Zr through the centre of the largest lesions.

For the :data:`N_LESIONS` largest FDG-positive lesions of the study the run stores one pair
of axial SUV slices through the lesion's centre, each :data:`CROP_MM` x :data:`CROP_MM` mm:

* **which lesions**: the ``measurements`` table's lesion rows of the plan's reference series
  (``plan.reference_series``, tracer-only) at ``settings.analysis_hours``, FDG-positive by
  the ``fdg_measurements`` table (FDG SUVmax above ``plan.fdg_positive_suv_max``, the rule of
  :mod:`immunopet.analysis.fdg`), ranked by their 89Zr ``volume_ml`` (largest first; ties by
  patient and lesion);
* **which slice**: the 89Zr lesion mask's centre (mean voxel index, rounded) on the 89Zr
  scan's grid; the 89Zr slice is that grid's axial plane, cropped in-plane around the centre;
* **the FDG slice**: the FDG SUV image resampled onto exactly that cropped 89Zr slice
  (:meth:`~immunopet.image.ImageVolume.resample_to`, trilinear; its lesion mask by nearest
  neighbour), so that both panels show the same pixels of the same patient plane. On the
  synthetic trials both scans share a grid and the resampling is the identity.

Both SUV images come from :func:`immunopet.suv.volume.read_suv_volume` (the 89Zr scan with
its overrides completed by its injection's, as the per-scan pipeline does). The pairs are kept
as ``RESULTS_DIR/qc/fig5_<patient>_<lesion>.npz`` (:func:`write_fig5_slices`, atomic; only
arrays, numbers, the pseudonym, the lesion name and the unit: no path); the report only draws
them (:mod:`immunopet.report.figures_fdg`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from immunopet.errors import ImmunoPETError, ImmunoPETWarning, InputError
from immunopet.image import ImageVolume
from immunopet.study.model import Scan, ScanRef, Study, VoiSource
from immunopet.study.privacy import PathRedactor
from immunopet.study.qc import QC_DIR, _axis_roles, qc_file_name, save_npz_atomically
from immunopet.suv.record import Normalisation

__all__ = [
    "CROP_MM",
    "FIG5_PREFIX",
    "N_LESIONS",
    "Fig5Request",
    "Fig5Slices",
    "fig5_file_name",
    "fig5_note",
    "fig5_requests",
    "fig5_slices",
    "is_fig5_scan",
    "largest_fdg_positive_lesions",
    "make_fig5_pair",
    "read_fig5_slices",
    "remove_fig5_slices",
    "store_fig5_slices",
    "write_fig5_slices",
]

N_LESIONS: Final = 4
"""How many lesions get a Fig 5-style pair."""

CROP_MM: Final = 80.0
"""Side of the square crop around the lesion centre, mm."""

FIG5_PREFIX: Final = "fig5_"
"""Prefix of the pairs' file names inside ``RESULTS_DIR/qc``."""


@dataclass(frozen=True)
class Fig5Slices:
    """One lesion's FDG and 89Zr axial SUV slices on the same pixels.

    Attributes
    ----------
    patient, lesion : str
        Pseudonym and lesion name.
    fdg, zirconium : ndarray of float32, [rows, columns]
        SUV slices (the image's unit): rows from anterior to posterior, columns from the
        patient's right to left (radiological view).
    fdg_outline, zirconium_outline : bool ndarray, [rows, columns]
        The lesion's mask in that slice on each scan.
    extent_mm : tuple of 4 floats, mm
        ``(x_left_edge, x_right_edge, y_bottom_edge, y_top_edge)`` in LPS, pixel edges, for
        ``imshow(origin="upper", extent=...)`` (bottom = posterior, the larger y).
    z_mm : float
        LPS z of the slice, mm.
    unit : str
        The SUV unit (e.g. ``"SUVbw"``).
    fdg_display_max, zirconium_display_max : float
        Top of each colour scale: the slice's largest finite value (1 when not positive).
    hours : float, hours
        Nominal time point of the 89Zr scan.
    volume_ml : float, mL
        The lesion's 89Zr volume that ranked it.
    """

    patient: str
    lesion: str
    fdg: np.ndarray
    zirconium: np.ndarray
    fdg_outline: np.ndarray
    zirconium_outline: np.ndarray
    extent_mm: tuple[float, float, float, float]
    z_mm: float
    unit: str
    fdg_display_max: float
    zirconium_display_max: float
    hours: float
    volume_ml: float


def largest_fdg_positive_lesions(
    measurements: pd.DataFrame,
    fdg: pd.DataFrame,
    *,
    series: str,
    hours: float,
    threshold: float,
    n: int = N_LESIONS,
) -> pd.DataFrame:
    """The ``n`` largest FDG-positive lesions at the analysis time point.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The ``measurements`` table (``patient``, ``series``, ``nominal_hours``, ``voi``,
        ``kind``, ``volume_ml``, ``scan_id``).
    fdg : pandas.DataFrame
        The ``fdg_measurements`` table (``patient``, ``lesion``, ``fdg_suv_max``).
    series : str
        The 89Zr series (the plan's reference series).
    hours : float, hours
        Nominal time point of the analysis.
    threshold : float, g/mL
        FDG-positive when ``fdg_suv_max > threshold``.
    n : int

    Returns
    -------
    pandas.DataFrame
        ``patient``, ``lesion``, ``scan_id``, ``volume_ml``; largest volume first.
    """
    columns = ["patient", "lesion", "scan_id", "volume_ml"]
    if measurements.empty or fdg.empty:
        return pd.DataFrame(columns=columns)
    rows = measurements[
        (measurements["series"] == series)
        & (measurements["kind"] == "lesion")
        & np.isclose(pd.to_numeric(measurements["nominal_hours"]), hours)
    ]
    positive = fdg[pd.to_numeric(fdg["fdg_suv_max"]) > threshold]
    keys = set(zip(positive["patient"].astype(str), positive["lesion"].astype(str), strict=True))
    wanted = np.array(
        [(str(p), str(v)) in keys for p, v in zip(rows["patient"], rows["voi"], strict=True)],
        dtype=bool,
    )
    chosen = rows.loc[wanted].rename(columns={"voi": "lesion"})
    chosen = chosen.assign(volume_ml=pd.to_numeric(chosen["volume_ml"]))
    chosen = chosen.sort_values(
        ["volume_ml", "patient", "lesion"], ascending=[False, True, True], kind="stable"
    )
    return chosen[columns].head(n).reset_index(drop=True)


def _plane(volume: ImageVolume, array: np.ndarray) -> np.ndarray:
    """The one-slice ``array`` (on ``volume``'s grid) as [rows anterior->posterior, x R->L]."""
    x_axis, y_axis, z_axis = _axis_roles(volume)
    image = np.take(array, 0, axis=z_axis)
    kept = [a for a in range(3) if a != z_axis]
    image = image if kept == [y_axis, x_axis] else image.T
    if volume.affine[1, y_axis] < 0:  # index up = anterior: the first row must be the last
        image = image[::-1, :]
    if volume.affine[0, x_axis] < 0:  # index up = patient right: the first column the last
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def _extent(volume: ImageVolume) -> tuple[float, float, float, float]:
    x_axis, y_axis, _ = _axis_roles(volume)
    last = np.array(volume.shape, dtype=float) - 1.0
    lps = volume.voxel_to_lps(np.array([[0.0, 0.0, 0.0], last]))
    x_low, x_high = sorted((float(lps[0, 0]), float(lps[1, 0])))
    y_low, y_high = sorted((float(lps[0, 1]), float(lps[1, 1])))
    dx = abs(float(volume.affine[0, x_axis]))
    dy = abs(float(volume.affine[1, y_axis]))
    return (x_low - dx / 2, x_high + dx / 2, y_high + dy / 2, y_low - dy / 2)


def _top(image: np.ndarray) -> float:
    finite = image[np.isfinite(image)]
    top = float(finite.max()) if finite.size else 1.0
    return top if top > 0 else 1.0


def fig5_slices(
    zirconium: ImageVolume,
    zirconium_mask: np.ndarray,
    fdg: ImageVolume,
    fdg_mask: np.ndarray,
    *,
    crop_mm: float = CROP_MM,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float, float], float
]:
    """The axial slice pair through the 89Zr mask's centre (see the module's notes).

    Parameters
    ----------
    zirconium, fdg : ImageVolume
        SUV images.
    zirconium_mask, fdg_mask : bool ndarray
        The lesion's mask on each image's grid.
    crop_mm : float, mm
        Side of the in-plane crop (clipped at the image's edge).

    Returns
    -------
    fdg_slice, zirconium_slice, fdg_outline, zirconium_outline : ndarray
        [rows, columns] in the radiological view (see :class:`Fig5Slices`).
    extent_mm : tuple of 4 floats, mm
    z_mm : float, mm
    """
    mask = np.asarray(zirconium_mask, dtype=bool)
    if not mask.any():
        raise InputError("the 89Zr lesion mask is empty", tag="mask", value="0 voxels")
    centre = np.rint(np.argwhere(mask).mean(axis=0)).astype(int)
    _, _, z_axis = _axis_roles(zirconium)
    spacing = np.abs(zirconium.affine[:3, :3]).max(axis=0)  # mm per index step, per axis
    box = []
    for axis in range(3):
        if axis == z_axis:
            box.append(slice(int(centre[axis]), int(centre[axis]) + 1))
            continue
        half = math.ceil(crop_mm / 2.0 / float(spacing[axis]))
        low = max(int(centre[axis]) - half, 0)
        box.append(slice(low, min(int(centre[axis]) + half + 1, zirconium.shape[axis])))
    slab = zirconium.crop((box[0], box[1], box[2]))
    zr_outline = mask[box[0], box[1], box[2]]
    fdg_slab = fdg.resample_to(slab, order=1, fill_value=math.nan)
    fdg_mask_volume = fdg.with_array(np.asarray(fdg_mask, dtype=np.uint8))
    fdg_outline = fdg_mask_volume.resample_to(slab, order=0).array > 0
    z_mm = float(slab.voxel_to_lps(np.zeros((1, 3)))[0, 2])
    return (
        _plane(slab, np.asarray(fdg_slab.array, dtype=np.float32)),
        _plane(slab, np.asarray(slab.array, dtype=np.float32)),
        _plane(slab, fdg_outline),
        _plane(slab, zr_outline),
        _extent(slab),
        z_mm,
    )


def _lesion_mask(
    sources: Sequence[VoiSource], root: Path, reference: ImageVolume, name: str
) -> np.ndarray:
    from immunopet.voi.sources import load_vois  # where the pair is cut (see make_fig5_pair)

    for source in sources:
        if source.kind == "organ":
            continue
        path = source.path if Path(source.path).is_absolute() else root / source.path
        for voi in load_vois(path, reference=reference, kind="lesion"):
            if voi.name == name:
                return np.asarray(voi.mask, dtype=bool)
    raise InputError("lesion VOI not found", tag="lesion", value=name)


@dataclass(frozen=True)
class Fig5Request:
    """What one Fig 5 pair needs: both scans (absolute paths) and the lesion (a job's input).

    Attributes
    ----------
    patient, lesion : str
    zirconium : ScanRef
        The 89Zr scan, paths absolute, overrides as given (completed by its injection's).
    fdg : Scan
        The patient's FDG scan, paths absolute.
    normalisation : str
    volume_ml : float, mL
        The lesion's 89Zr volume that ranked it.
    """

    patient: str
    lesion: str
    zirconium: ScanRef
    fdg: Scan
    normalisation: Normalisation
    volume_ml: float


def is_fig5_scan(ref: ScanRef, study: Study) -> bool:
    """True when the Fig 5 choice reads ``ref``'s lesions (reference series, analysis hours)."""
    return ref.series == study.plan.reference_series and bool(
        np.isclose(float(ref.nominal_hours), study.settings.analysis_hours)
    )


def _absolute_scan(scan: Scan, root: Path) -> Scan:
    def absolute(path: Path) -> Path:
        return path if Path(path).is_absolute() else root / path

    vois = tuple(VoiSource(absolute(source.path), source.kind) for source in scan.vois)
    return replace(scan, pet=absolute(scan.pet), vois=vois)


def fig5_requests(
    study: Study, measurements: pd.DataFrame, fdg: pd.DataFrame, *, n: int = N_LESIONS
) -> list[Fig5Request]:
    """The pairs to make: the ``n`` largest FDG-positive lesions, largest first.

    Parameters
    ----------
    study : Study
    measurements : pandas.DataFrame
        The ``measurements`` table; rows of scans no longer in the study are left out.
    fdg : pandas.DataFrame
        The ``fdg_measurements`` table.
    n : int
    """
    settings, plan = study.settings, study.plan
    refs = {ref.scan_id: ref for ref in study.scans()}
    if not measurements.empty:
        measurements = measurements[measurements["scan_id"].astype(str).isin(set(refs))]
    chosen = largest_fdg_positive_lesions(
        measurements,
        fdg,
        series=plan.reference_series,
        hours=settings.analysis_hours,
        threshold=plan.fdg_positive_suv_max,
        n=n,
    )
    root = Path(study.root)
    patients = {patient.pseudonym: patient for patient in study.patients}
    requests = []
    for row in chosen.itertuples(index=False):
        ref = refs[str(row.scan_id)]
        scan = patients[str(row.patient)].fdg
        if scan is None:  # a measured FDG lesion implies an FDG scan
            continue
        zr_scan = _absolute_scan(ref.scan, root)
        requests.append(
            Fig5Request(
                patient=str(row.patient),
                lesion=str(row.lesion),
                zirconium=replace(ref, scan=zr_scan, injection=replace(ref.injection, scans=())),
                fdg=_absolute_scan(scan, root),
                normalisation=settings.normalisation,
                volume_ml=float(row.volume_ml),
            )
        )
    return requests


def make_fig5_pair(request: Fig5Request) -> Fig5Slices:
    """Read both SUV images and cut the pair of one lesion (writes nothing).

    Raises
    ------
    ImmunoPETError
        When a scan cannot be read or the lesion's VOI is missing or empty.
    """
    # imported where the pair is cut (a worker; with one worker, here): a run's own process
    # that only plans and stores the pairs does not import the measuring stack
    from immunopet.study.pipeline import merged_overrides
    from immunopet.suv.volume import read_suv_volume

    ref, scan = request.zirconium, request.fdg
    with warnings.catch_warnings():
        # the scan's and the FDG job's own readings record these warnings; shown from a
        # worker they would be printed a second time, with the inputs' paths
        warnings.simplefilter("ignore", ImmunoPETWarning)
        zr = read_suv_volume(
            ref.scan.pet, overrides=merged_overrides(ref), normalisation=request.normalisation
        ).volume
        fdg_volume = read_suv_volume(
            scan.pet, overrides=scan.overrides, normalisation=request.normalisation
        ).volume
    root = Path()  # the requests' paths are absolute
    fdg_image, zr_image, fdg_outline, zr_outline, extent, z_mm = fig5_slices(
        zr,
        _lesion_mask(ref.scan.vois, root, zr, request.lesion),
        fdg_volume,
        _lesion_mask(scan.vois, root, fdg_volume, request.lesion),
    )
    return Fig5Slices(
        patient=request.patient,
        lesion=request.lesion,
        fdg=fdg_image,
        zirconium=zr_image,
        fdg_outline=fdg_outline,
        zirconium_outline=zr_outline,
        extent_mm=extent,
        z_mm=z_mm,
        unit=str(zr.unit),
        fdg_display_max=_top(fdg_image),
        zirconium_display_max=_top(zr_image),
        hours=float(ref.nominal_hours),
        volume_ml=request.volume_ml,
    )


def fig5_note(request: Fig5Request, error: object) -> str:
    """The note of a pair that could not be made (paths not yet redacted)."""
    return f"{request.patient}/{request.lesion} Fig 5 slices not made: {error}"


def remove_fig5_slices(results_dir: str | Path) -> None:
    """Remove the ``fig5_*.npz`` files of a results folder (before a run stores its own)."""
    folder = Path(results_dir) / QC_DIR
    for old in folder.glob(f"{FIG5_PREFIX}*.npz") if folder.is_dir() else []:
        old.unlink(missing_ok=True)


def store_fig5_slices(
    study: Study,
    measurements: pd.DataFrame,
    fdg: pd.DataFrame,
    results_dir: str | Path,
    redactor: PathRedactor | None = None,
    *,
    n: int = N_LESIONS,
) -> tuple[list[Path], list[str]]:
    """Compute and store the pairs of the ``n`` largest FDG-positive lesions, one by one.

    Earlier ``fig5_*.npz`` files of the results folder are removed first, so that the folder
    holds the pairs of this run only. (A study run makes the pairs of
    :func:`fig5_requests` with :func:`make_fig5_pair` in its worker pool.)

    Returns
    -------
    paths : list of Path
        The files written, largest lesion first.
    notes : list of str
        One line per lesion whose pair could not be made (paths redacted).
    """
    redactor = PathRedactor.for_study(study) if redactor is None else redactor
    remove_fig5_slices(results_dir)
    folder = Path(results_dir) / QC_DIR
    paths: list[Path] = []
    notes: list[str] = []
    for request in fig5_requests(study, measurements, fdg, n=n):
        try:
            pair = make_fig5_pair(request)
        except ImmunoPETError as error:
            notes.append(redactor.redact(fig5_note(request, error)))
            continue
        paths.append(
            write_fig5_slices(pair, folder / fig5_file_name(request.patient, request.lesion))
        )
    return paths, notes


def fig5_file_name(patient: str, lesion: str) -> str:
    """``fig5_<patient>_<lesion>.npz`` (other characters than ``A-Za-z0-9_.-`` -> ``_``).

    Examples
    --------
    >>> fig5_file_name("P01", "3")
    'fig5_P01_3.npz'
    """
    return FIG5_PREFIX + qc_file_name(f"{patient}_{lesion}")


def write_fig5_slices(pair: Fig5Slices, path: str | Path) -> Path:
    """Write ``pair`` to ``path`` atomically (:func:`~immunopet.study.qc.save_npz_atomically`)."""
    return save_npz_atomically(
        path,
        patient=np.str_(pair.patient),
        lesion=np.str_(pair.lesion),
        fdg=pair.fdg,
        zirconium=pair.zirconium,
        fdg_outline=pair.fdg_outline,
        zirconium_outline=pair.zirconium_outline,
        extent_mm=np.asarray(pair.extent_mm, dtype=np.float64),
        z_mm=np.float64(pair.z_mm),
        unit=np.str_(pair.unit),
        fdg_display_max=np.float64(pair.fdg_display_max),
        zirconium_display_max=np.float64(pair.zirconium_display_max),
        hours=np.float64(pair.hours),
        volume_ml=np.float64(pair.volume_ml),
    )


def read_fig5_slices(path: str | Path) -> Fig5Slices:
    """Read a pair written by :func:`write_fig5_slices`.

    Raises
    ------
    InputError
        When the file cannot be read or is not such a file.
    """
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as data:
            extent = tuple(float(v) for v in data["extent_mm"])
            return Fig5Slices(
                patient=str(data["patient"]),
                lesion=str(data["lesion"]),
                fdg=np.asarray(data["fdg"]),
                zirconium=np.asarray(data["zirconium"]),
                fdg_outline=np.asarray(data["fdg_outline"], dtype=bool),
                zirconium_outline=np.asarray(data["zirconium_outline"], dtype=bool),
                extent_mm=(extent[0], extent[1], extent[2], extent[3]),
                z_mm=float(data["z_mm"]),
                unit=str(data["unit"]),
                fdg_display_max=float(data["fdg_display_max"]),
                zirconium_display_max=float(data["zirconium_display_max"]),
                hours=float(data["hours"]),
                volume_ml=float(data["volume_ml"]),
            )
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise InputError(
            f"cannot read the Fig 5 slices: {exc}",
            file=source,
            expected="an .npz written by immunopet run (run it again to rewrite it)",
        ) from exc
