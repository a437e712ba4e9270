"""NIfTI-1 reading and writing at the LPS/RAS boundary, with JSON sidecars.

immunopet keeps one geometry convention (:class:`~immunopet.image.ImageVolume`: array
``[z, y, x]``, affine from ``(k, j, i)`` to DICOM LPS mm). NIfTI stores data indexed
``(i, j, k)`` with an affine to RAS mm. This module is the only place where the two meet:

- data: ``nifti[i, j, k] == ours[k, j, i]`` (a transpose of the axes);
- affine: ``A_ras = diag(-1, -1, 1, 1) @ A_lps[:, (i, j, k, t)]`` (columns reordered, then the
  x and y world axes negated).

The affine is written as both qform and sform with code 1 (scanner anatomical), spatial units
mm. NIfTI stores the sform rows as float32, so positions survive a round trip to about
1e-5 mm per 100 mm of distance, not to float64 precision.

Reading checks the geometry before any number depends on it (nibabel itself silently turns
a zero ``pixdim`` into 1 mm, a negative one into its absolute value, and gives a NaN or
singular affine without complaint). The affine comes from the first source the NIfTI-1
standard says to use, and each source is checked on the fields it uses:

=========================  ==================================================================
``sform_code`` > 0         ``srow_x/y/z``: finite, non-singular; else refused. An invalid
                           ``pixdim`` is then unused: a warning.
``qform_code`` > 0 only    ``pixdim[1:4]`` finite and > 0, ``pixdim[0]`` (qfac) -1, 0 or 1
                           (0 read as 1, as the standard says), finite ``qoffset``; else
                           refused.
both codes 0               ``pixdim[1:4]`` finite and > 0, else refused; accepted with a
                           warning: nibabel's fallback (axes along RAS with x flipped, origin
                           at the volume's centre) gives sizes and distances, not position.
=========================  ==================================================================

A sform in a template space (code 3 Talairach, 4 MNI152, 5 other template) measures in the
template's millimetres, not the patient's: a qform in scanner or aligned space (code 1 or 2)
is then used instead (a warning), and without one the file is refused, as is a qform alone in
a template space. A code outside 0-5 is refused. ``xyzt_units`` metres or microns scale the
affine to mm (a warning); unknown (0) is read as mm, as every common writer means it.

A JSON sidecar (PET-BIDS, see :mod:`immunopet.io.bids`) lives next to the image with the same
stem: ``sub-01_pet.nii.gz`` -> ``sub-01_pet.json``. Keys are written sorted alphabetically
(nested objects too), indented by 2 spaces.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel.openers import ImageOpener

from immunopet.errors import GeometryError, GeometryWarning, InputError
from immunopet.image import ImageVolume, Unit
from immunopet.io.atomic import atomic_path, write_text_atomically
from immunopet.io.jsonfile import read_json_object

__all__ = [
    "LPS_TO_RAS",
    "NiftiImage",
    "affine_lps_to_nifti",
    "affine_nifti_to_lps",
    "read_nifti",
    "read_sidecar",
    "sidecar_path",
    "write_nifti",
    "write_sidecar",
]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Homogeneous matrix negating the x (L->R) and y (P->A) world axes; its own inverse."""

_AXES_REORDER = [2, 1, 0, 3]
"""Column order turning a ``(k, j, i, t)`` affine into ``(i, j, k, t)`` (also its own inverse)."""

_SUV_UNIT_OF: dict[str, Unit] = {"lbm": Unit.SUV_LBM, "ibw": Unit.SUV_IBW}
"""Unit of a ``g/mL`` image whose sidecar states another normalisation than body weight."""
_SIDECAR_UNITS: dict[str, Unit] = {"Bq/mL": Unit.BQML, "g/mL": Unit.SUV_BW, "cm2/mL": Unit.SUV_BSA}
"""PET-BIDS ``Units`` values understood when reading, and the unit they give."""

_NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class NiftiImage:
    """A volume read from NIfTI, with its sidecar.

    Attributes
    ----------
    volume : ImageVolume
        Array ``[z, y, x]`` with an LPS affine.
    sidecar : dict or None
        The same-stem ``.json`` file's content, ``None`` when there is none.
    path : pathlib.Path
        The file read.
    warnings : tuple of str
        Geometric fallbacks used while reading (e.g. no qform/sform code).
    affine_source : {"sform", "qform", "pixdim"}
        Where the affine came from; ``"pixdim"`` means voxel sizes only, position unknown.
    """

    volume: ImageVolume
    sidecar: dict[str, Any] | None
    path: Path
    warnings: tuple[str, ...] = field(default=())
    affine_source: Literal["sform", "qform", "pixdim"] = "sform"


# ---------------------------------------------------------------------------- affines
def affine_lps_to_nifti(affine_lps: npt.ArrayLike) -> np.ndarray:
    """Turn an immunopet affine (``(k, j, i)`` -> LPS) into a NIfTI affine (``(i, j, k)`` -> RAS).

    Examples
    --------
    >>> lps = np.array([[0, 0, 1, 10], [0, 2, 0, 20], [3, 0, 0, 30], [0, 0, 0, 1.0]])
    >>> (affine_lps_to_nifti(lps) + 0.0).tolist()[:3]
    [[-1.0, 0.0, 0.0, -10.0], [0.0, -2.0, 0.0, -20.0], [0.0, 0.0, 3.0, 30.0]]
    """
    affine = np.asarray(affine_lps, dtype=np.float64)
    return LPS_TO_RAS @ affine[:, _AXES_REORDER]


def affine_nifti_to_lps(affine_ras: npt.ArrayLike) -> np.ndarray:
    """Inverse of :func:`affine_lps_to_nifti`."""
    affine = np.asarray(affine_ras, dtype=np.float64)
    return (LPS_TO_RAS @ affine)[:, _AXES_REORDER]


# ---------------------------------------------------------------------------- sidecars
def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar next to a NIfTI file: same folder, same stem, ``.json``.

    Raises
    ------
    InputError
        When ``path`` does not end in ``.nii`` or ``.nii.gz``.

    Examples
    --------
    >>> sidecar_path("data/sub-01_pet.nii.gz").as_posix()
    'data/sub-01_pet.json'
    """
    path = Path(path)
    name = path.name
    for suffix in _NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    raise InputError(
        "not a NIfTI file name",
        file=path,
        tag="file name",
        value=name,
        expected="a name ending in .nii or .nii.gz",
    )


def _to_json(value: Any) -> Any:
    """``json.dump`` fallback for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_sidecar(sidecar: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``sidecar`` as pretty-printed JSON with keys sorted alphabetically.

    Parameters
    ----------
    sidecar : mapping
        JSON-ready content (numpy scalars are converted).
    path : path-like
        The ``.json`` file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    text = json.dumps(dict(sidecar), indent=2, sort_keys=True, default=_to_json)
    return write_text_atomically(path, text + "\n")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """Read a JSON sidecar (an object at top level).

    Raises
    ------
    InputError
        When the file is not valid JSON or its top level is not an object.
    """
    return read_json_object(path, what="sidecar")


# ---------------------------------------------------------------------------- writing
def _storage_dtype(array: np.ndarray, dtype: npt.DTypeLike | None, path: Path) -> np.dtype:
    if dtype is None:
        if np.issubdtype(array.dtype, np.floating):
            return np.dtype(np.float32)
        if array.dtype == np.bool_:
            return np.dtype(np.uint8)
        return array.dtype
    target = np.dtype(dtype)
    if np.issubdtype(target, np.integer) and array.size:
        if np.issubdtype(array.dtype, np.floating) and not np.all(array == np.round(array)):
            raise InputError(
                "non-integer values cannot be stored as integers without scaling",
                file=path,
                tag="dtype",
                value=str(target),
                expected="integral values, or a floating dtype",
            )
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise InputError(
                "values do not fit the integer dtype",
                file=path,
                tag="dtype",
                value=f"{target} for values in [{low}, {high}]",
                expected=f"values in [{info.min}, {info.max}]",
            )
    return target


def write_nifti(
    volume: ImageVolume,
    path: str | Path,
    *,
    sidecar: Mapping[str, Any] | None = None,
    dtype: npt.DTypeLike | None = None,
) -> Path:
    """Write a volume as NIfTI-1 (``.nii`` or ``.nii.gz``), optionally with a JSON sidecar.

    Parameters
    ----------
    volume : ImageVolume
        The image; its LPS affine is converted to RAS.
    path : path-like
        Output file; must end in ``.nii`` or ``.nii.gz`` (gzip by the suffix).
    sidecar : mapping, optional
        Written to the same-stem ``.json`` (keys sorted alphabetically).
    dtype : numpy dtype, optional
        On-disk data type. Default float32 for floating data, uint8 for booleans, the
        array's own dtype for integers (labels). No ``scl_slope``/``scl_inter`` scaling is
        ever used: values are cast, and integer casts must be exact.

    Returns
    -------
    pathlib.Path
        The image path.

    Raises
    ------
    InputError
        When the name is not a NIfTI name, or values do not fit an integer ``dtype``.
    """
    path = Path(path)
    json_path = sidecar_path(path)  # validates the suffix before anything is written
    array = np.asarray(volume.array)
    storage = _storage_dtype(array, dtype, path)
    # (z, y, x) C order is NIfTI's x-fastest order: the transposed view is written as it lies
    data = np.transpose(array, (2, 1, 0)).astype(storage, copy=False)
    affine = affine_lps_to_nifti(volume.affine)
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_data_dtype(storage)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units(xyz="mm", t="sec")
    header["descrip"] = f"immunopet {Unit(volume.unit).value}".encode()[:80]
    with atomic_path(path) as temporary:
        nib.save(image, temporary)
    if sidecar is not None:
        write_sidecar(sidecar, json_path)
    return path


# ---------------------------------------------------------------------------- geometry checks
_UNIT_TO_MM = {1: 1000.0, 3: 0.001}
"""``xyzt_units & 7`` codes other than mm (2) and unknown (0): metres and microns."""
_UNIT_NAMES = {1: "metres", 3: "microns"}
_TEMPLATE_CODES = {3: "Talairach", 4: "MNI152", 5: "a template"}
"""qform/sform codes of template spaces: their millimetres are the template's, not the patient's."""
_SINGULAR = 1e-6
"""``|det| / product of column lengths`` below which the 3x3 part of an affine is singular."""


@contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """Silence nibabel's header-fix log lines (we report the raw fields ourselves)."""
    logger = logging.getLogger("nibabel.global")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _numbers(values: npt.ArrayLike) -> tuple[float, ...]:
    """Plain floats for messages (``nan`` and ``inf`` kept)."""
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _raw_header(path: Path, image: nib.Nifti1Image) -> Any:
    """The header as stored, before nibabel's check-and-fix (which rewrites bad pixdims)."""
    header_class = type(image.header)
    with _quiet_nibabel(), ImageOpener(str(path)) as handle:
        return header_class.from_fileobj(handle, check=False)


def _singular(matrix: np.ndarray) -> bool:
    """True when the 3x3 part maps voxels onto a plane, a line or a point."""
    lengths = np.linalg.norm(matrix[:3, :3], axis=0)
    if not np.all(lengths > 0):
        return True
    return bool(abs(np.linalg.det(matrix[:3, :3])) / np.prod(lengths) < _SINGULAR)


def _check_affine(affine: np.ndarray, path: Path, tag: str) -> None:
    if not np.all(np.isfinite(affine)):
        raise GeometryError(
            "affine has non-finite values",
            file=path,
            tag=tag,
            value=[_numbers(row) for row in affine[:3]],
            expected="finite numbers (mm)",
        )
    if _singular(affine):
        raise GeometryError(
            "affine is singular (voxels would have no volume)",
            file=path,
            tag=tag,
            value=[_numbers(row) for row in affine[:3]],
            expected="three independent voxel axes of non-zero length",
        )


def _template_space(path: Path, codes: Mapping[str, int]) -> GeometryError:
    """The refusal of a geometry that only maps into a template space (not patient mm)."""
    name, code = next((n, c) for n, c in codes.items() if c in _TEMPLATE_CODES)
    return GeometryError(
        f"the geometry maps into a template space ({_TEMPLATE_CODES[code]}), whose millimetres "
        "are not the patient's: volumes and distances would be wrong",
        file=path,
        tag=name,
        value=code,
        expected="a qform or sform in scanner (1) or aligned (2) space",
    )


def _qform_affine(
    path: Path, image: nib.Nifti1Image, pixdim: np.ndarray, code: int, voxel_ok: bool
) -> np.ndarray:
    """The qform affine after checking the fields it is made of."""
    if not voxel_ok:
        raise GeometryError(
            "voxel size is not usable; it is the qform",
            file=path,
            tag="pixdim[1:4]",
            value=_numbers(pixdim[1:4]),
            expected="finite voxel sizes > 0 (mm)",
        )
    if pixdim[0] not in (-1.0, 0.0, 1.0):
        raise GeometryError(
            "qfac (slice direction sign) is not -1 or 1",
            file=path,
            tag="pixdim[0]",
            value=float(pixdim[0]),
            expected="-1 or 1 (0 is read as 1)",
        )
    with np.errstate(invalid="ignore", over="ignore"):
        affine = np.asarray(image.header.get_qform(), dtype=np.float64)  # qfac 0 read as 1
    _check_affine(affine, path, f"quatern_b/c/d, qoffset_x/y/z (qform_code {code})")
    return affine


def _checked_affine(
    path: Path, image: nib.Nifti1Image
) -> tuple[np.ndarray, Literal["sform", "qform", "pixdim"], list[str]]:
    """The RAS affine to use, where it came from and the warnings; refuses unusable geometry.

    See the module's notes for the rules.
    """
    raw = _raw_header(path, image)
    notes: list[str] = []
    codes = {name: int(raw[name]) for name in ("qform_code", "sform_code")}
    for name, code in codes.items():
        if code not in nib.nifti1.xform_codes.value_set():
            raise GeometryError(
                "unknown coordinate code",
                file=path,
                tag=name,
                value=code,
                expected="0 (unknown), 1 (scanner), 2 (aligned), 3 (Talairach), 4 (MNI) or 5",
            )
    qform_code, sform_code = codes["qform_code"], codes["sform_code"]
    pixdim = np.asarray(raw["pixdim"], dtype=np.float64)
    voxel = pixdim[1:4]
    voxel_ok = bool(np.all(np.isfinite(voxel)) and np.all(voxel > 0))
    source: Literal["sform", "qform", "pixdim"]
    if sform_code in _TEMPLATE_CODES or (sform_code == 0 and qform_code in _TEMPLATE_CODES):
        if qform_code not in (1, 2):
            raise _template_space(path, codes)
        source = "qform"
        affine = _qform_affine(path, image, pixdim, qform_code, voxel_ok)
        notes.append(
            f"{path}: the sform maps into a template space ({_TEMPLATE_CODES[sform_code]}); "
            f"the qform (code {qform_code}, patient mm) gives the geometry instead"
        )
    elif sform_code > 0:
        source = "sform"
        affine = np.asarray(raw.get_sform(), dtype=np.float64)
        _check_affine(affine, path, f"srow_x/y/z (sform_code {sform_code})")
        if not voxel_ok:
            spacing = np.linalg.norm(affine[:3, :3], axis=0)
            notes.append(
                f"{path}: pixdim[1:4] {_numbers(voxel)} is not a voxel size; unused: the sform "
                f"(code {sform_code}) gives voxel sizes {_numbers(np.round(spacing, 4))} "
                "(i, j, k) mm"
            )
    elif qform_code > 0:
        source = "qform"
        affine = _qform_affine(path, image, pixdim, qform_code, voxel_ok)
    else:
        if not voxel_ok:
            raise GeometryError(
                "voxel size is not usable; it is the only geometry (no qform/sform)",
                file=path,
                tag="pixdim[1:4]",
                value=_numbers(voxel),
                expected="finite voxel sizes > 0 (mm)",
            )
        source = "pixdim"
        affine = np.asarray(image.affine, dtype=np.float64)
        _check_affine(affine, path, "pixdim[1:4]")
        notes.append(
            f"{path}: qform_code and sform_code are 0; position unknown: voxel sizes "
            f"{_numbers(voxel)} (i, j, k) mm from pixdim, axes assumed along RAS with x "
            "flipped and the origin at the volume's centre (nibabel's fallback); sizes and "
            "distances are right, positions relative to other images are not known"
        )
    units = int(raw["xyzt_units"]) & 0x07
    if units in _UNIT_TO_MM:
        affine = affine.copy()
        affine[:3, :] *= _UNIT_TO_MM[units]
        notes.append(
            f"{path}: xyzt_units says {_UNIT_NAMES[units]}; positions and voxel sizes "
            f"converted to mm (x {_UNIT_TO_MM[units]:g})"
        )
    return affine, source, notes


# ---------------------------------------------------------------------------- reading
def _unit_from(unit: Unit | str | None, sidecar: Mapping[str, Any] | None, path: Path) -> Unit:
    if unit is not None:
        return Unit(unit)
    if sidecar is None or "Units" not in sidecar:
        return Unit.NONE
    text = sidecar["Units"]
    if text not in _SIDECAR_UNITS:
        raise InputError(
            "unsupported sidecar units",
            file=sidecar_path(path),
            tag="Units",
            value=text,
            expected=" or ".join(repr(k) for k in _SIDECAR_UNITS) + " (or pass unit=)",
        )
    own = sidecar.get("ImmunoPET")
    normalisation = own.get("normalisation") if isinstance(own, Mapping) else None
    if text == "g/mL" and normalisation in _SUV_UNIT_OF:
        return _SUV_UNIT_OF[str(normalisation)]
    return _SIDECAR_UNITS[text]


def read_nifti(path: str | Path, *, unit: Unit | str | None = None) -> NiftiImage:
    """Read a 3-D NIfTI image into LPS geometry, with its same-stem JSON sidecar if any.

    Parameters
    ----------
    path : path-like
        ``.nii`` or ``.nii.gz`` file.
    unit : Unit or str, optional
        Meaning of the values. Default: from the sidecar ``"Units"`` (``"Bq/mL"`` -> BQML,
        ``"g/mL"`` -> SUVbw, or SUVlbm/SUVibw when ``ImmunoPET.normalisation`` says so,
        ``"cm2/mL"`` -> SUVbsa), else ``NONE``.

    Returns
    -------
    NiftiImage

    Raises
    ------
    InputError
        When the file is unreadable, not 3-D (a 4-D file with one volume is accepted; a
        dynamic series is not), or the sidecar's ``Units`` is unknown.
    GeometryError
        When the geometry the file declares cannot give right sizes: a zero, negative or
        non-finite voxel size that the affine uses, a non-finite or singular affine, a qfac
        other than -1/0/1, an unknown qform/sform code (see the module's notes).

    Warns
    -----
    GeometryWarning
        No qform/sform (position unknown), an unused invalid ``pixdim``, spatial units in
        metres or microns; each also kept in ``warnings``.

    Notes
    -----
    The affine is the sform when its code is non-zero, else the qform, else a voxel-size-only
    affine (recorded as a warning), as nibabel's ``image.affine``, after the checks above.
    """
    path = Path(path)
    json_path = sidecar_path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        with _quiet_nibabel(), np.errstate(invalid="ignore", over="ignore"):
            image = nib.load(path)  # a NaN/inf pixdim gives a NaN affine: refused below
    except Exception as exc:  # nibabel raises several unrelated types
        raise InputError(f"not a readable NIfTI file ({exc})", file=path) from exc
    if not isinstance(image, nib.Nifti1Image):  # Nifti2Image is a subclass
        raise InputError(
            "not a NIfTI image", file=path, value=type(image).__name__, expected="NIfTI-1 or -2"
        )
    shape = tuple(int(n) for n in image.shape)
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        dynamic = len(shape) >= 4 and shape[3] > 1
        raise InputError(
            "dynamic (4-D) images are not supported" if dynamic else "image is not 3-D",
            file=path,
            tag="dim",
            value=shape,
            expected="a 3-D volume (or 4-D with one frame); split dynamic series into frames",
        )
    affine_ras, source, notes = _checked_affine(path, image)
    for note in notes:
        warnings.warn(note, GeometryWarning, stacklevel=2)
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # truncated .nii.gz: EOFError, zlib.error, OSError, ValueError
        raise InputError(
            f"image data unreadable (truncated or damaged file?): {type(exc).__name__}",
            file=path,
            tag="image data",
            expected=f"{int(np.prod(shape))} voxels as the header declares",
        ) from exc
    data = data.reshape(shape[:3])
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    affine = affine_nifti_to_lps(affine_ras)
    sidecar = read_sidecar(json_path) if json_path.is_file() else None
    volume = ImageVolume(array=array, affine=affine, unit=_unit_from(unit, sidecar, path))
    return NiftiImage(
        volume=volume, sidecar=sidecar, path=path, warnings=tuple(notes), affine_source=source
    )
