"""THE one PET -> SUV entry point: DICOM series or NIfTI + PET-BIDS sidecar in, SUV image out.

:func:`read_suv_volume` is what every caller (the study pipeline, ``immunopet measure``,
``immunopet suv``, the QC figures) uses to turn a PET into SUV; :func:`read_activity_volume`
gives activity concentration (Bq/mL) with the same record, for exports. Both return the
:class:`~immunopet.suv.record.SuvDerivation` that explains every number: the normalisation,
each input value with its source, the rule taken and every warning. No SUV arithmetic exists
outside :mod:`immunopet.suv` (``tests/test_suv_engine.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from immunopet.errors import SuvError
from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import DicomSeries, find_one_pet, load_series_volume_owned
from immunopet.io.nifti import read_nifti, sidecar_path
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import NORMALISATIONS, Normalisation, SuvDerivation, SuvOverrides
from immunopet.suv.sidecar import derive_suv_from_sidecar

__all__ = [
    "ActivityVolume",
    "Normalisation",
    "SuvVolume",
    "is_nifti",
    "read_activity_volume",
    "read_suv_volume",
    "suv_unit",
]

_UNITS: dict[str, Unit] = {
    "bw": Unit.SUV_BW,
    "lbm": Unit.SUV_LBM,
    "bsa": Unit.SUV_BSA,
    "ibw": Unit.SUV_IBW,
}


def suv_unit(normalisation: str) -> Unit:
    """The image unit of an SUV of this normalisation.

    Examples
    --------
    >>> suv_unit("bsa").value
    'SUVbsa'
    """
    return _UNITS[normalisation]


@dataclass(frozen=True)
class SuvVolume:
    """An SUV image with the record of how it was derived.

    Attributes
    ----------
    volume : ImageVolume
        SUV decay-corrected to injection, unit ``SUVbw``, ``SUVlbm``, ``SUVbsa`` or ``SUVibw``.
    derivation : SuvDerivation
        Tags, rule, factors and warnings; ``derivation.normalisation`` is ``normalisation``.
    normalisation : {"bw", "lbm", "bsa", "ibw"}
    frame_of_reference_uid : str or None
        Of the DICOM series (None for NIfTI).
    """

    volume: ImageVolume
    derivation: SuvDerivation
    normalisation: Normalisation
    frame_of_reference_uid: str | None = None


@dataclass(frozen=True)
class ActivityVolume:
    """Activity concentration (Bq/mL) of a PET series, with its SUV record.

    Attributes
    ----------
    volume : ImageVolume
        Bq/mL, unit ``BQML``.
    derivation : SuvDerivation
    decay_reference : {"scan", "injection"} or None
        What the values are decay-corrected to: ``None`` = as (0054,1102) DecayCorrection
        says (values as stored), ``"injection"`` = converted from SUV.
    how : str
        One line for provenance.
    """

    volume: ImageVolume
    derivation: SuvDerivation
    decay_reference: Literal["scan", "injection"] | None
    how: str


_SLAB = 16
"""Slices multiplied at a time by :func:`scaled_float32` (a few MB of float64 at once)."""


def scaled_float32(
    array: np.ndarray,
    factor: float,
    per_slice: np.ndarray | None = None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``array × factor × per_slice[k]`` computed in float64, returned as float32.

    Slab by slab, so that no float64 copy of the whole volume is made; each voxel is the same
    float32 as ``(np.asarray(array, np.float64) * factor * per_slice[k]).astype(np.float32)``.
    ``out`` (float32, the shape of ``array``; ``array`` itself is allowed) receives the result
    instead of a new array: a volume of fresh memory costs its page faults, ~20 ms per 48 MB.

    Examples
    --------
    >>> scaled_float32(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]), 0.5, np.array([1.0, 2.0]))
    array([[[0.5, 1. ]],
    <BLANKLINE>
           [[3. , 4. ]]], dtype=float32)
    """
    if out is None:
        out = np.empty(np.shape(array), dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != np.shape(array):
        raise ValueError(
            f"out must be float32 of shape {np.shape(array)}, not {out.dtype} {out.shape}"
        )
    buffer = np.empty((min(_SLAB, len(out)), *out.shape[1:]), dtype=np.float64)  # reused
    for start in range(0, len(out), _SLAB):
        stop = min(start + _SLAB, len(out))
        slab = buffer[: stop - start]
        np.multiply(array[start:stop], factor, out=slab, dtype=np.float64)
        if per_slice is not None:
            slab *= per_slice[start:stop, np.newaxis, np.newaxis]
        out[start:stop] = slab
    return out


def is_nifti(path: str | Path) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``)."""
    return Path(path).name.lower().endswith((".nii", ".nii.gz"))


def _check_normalisation(normalisation: str, where: object) -> None:
    if normalisation not in NORMALISATIONS:
        raise SuvError(
            "unknown SUV normalisation",
            file=str(where),
            tag="--normalisation",
            value=normalisation,
            expected="bw, lbm, bsa or ibw",
        )


def _dicom_stored(
    source: str | Path | DicomSeries, overrides: SuvOverrides | None, on_invalid: str
) -> tuple[DicomSeries, SuvDerivation, np.ndarray | None, ImageVolume, np.ndarray]:
    """The series, its derivation, the per-slice corrections (None: none), the stored volume
    and the writeable array under it (this call's alone)."""
    series = source if isinstance(source, DicomSeries) else find_one_pet(source)
    derivation = derive_suv(
        series.headers,
        source=series.files[0],
        files=series.files,
        overrides=overrides,
        on_invalid="warn" if on_invalid == "warn" else "raise",
    )
    stored, owned = load_series_volume_owned(series)
    per_slice = None
    if derivation.slice_corrections:
        per_slice = np.array(
            [derivation.slice_corrections[str(h.SOPInstanceUID)] for h in series.headers],
            dtype=np.float64,
        )
    return series, derivation, per_slice, stored, owned


def read_suv_volume(
    source: str | Path | DicomSeries,
    *,
    overrides: SuvOverrides | None = None,
    normalisation: Normalisation | str = "bw",
    on_invalid: Literal["raise", "warn"] = "raise",
) -> SuvVolume:
    """Read one PET (DICOM series or NIfTI + PET-BIDS sidecar) and convert it to SUV.

    Parameters
    ----------
    source : path or DicomSeries
        A folder holding exactly one PET series, a series from
        :func:`immunopet.io.dicom.discover_dicom`, or a ``.nii``/``.nii.gz`` file with its
        same-stem JSON sidecar.
    overrides : SuvOverrides, optional
        Values that replace or complete the header (recorded as overrides).
    normalisation : {"bw", "lbm", "bsa", "ibw"}
        Body weight (g/mL), lean body mass (SUL, Janmahasatian, g/mL), body surface area
        (Du Bois, cm²/mL) or ideal body weight (g/mL).
    on_invalid : {"raise", "warn"}
        For DICOM validation problems that leave the number computable.

    Raises
    ------
    SuvError
        When no SUV can be derived (the message names the file, the tag and the override).
    DicomInputError, GeometryError, InputError
        When the image cannot be read or stacked.
    """
    _check_normalisation(str(normalisation), source)
    if not isinstance(source, DicomSeries) and is_nifti(source):
        path = Path(source)
        image = read_nifti(path)
        if image.sidecar is None:
            raise SuvError(
                "no PET-BIDS sidecar next to the image (a NIfTI PET needs its PET-BIDS sidecar)",
                file=path,
                tag="sidecar",
                value="missing",
                expected=f"{sidecar_path(path).name} with Units, InjectedRadioactivity, timing",
            )
        derivation = derive_suv_from_sidecar(
            image.sidecar, overrides=overrides, source=sidecar_path(path)
        )
        factor = derivation.factor(normalisation)
        values = scaled_float32(image.volume.array, factor)
        derivation = replace(
            derivation,
            normalisation=normalisation,  # type: ignore[arg-type]
            warnings=(*image.warnings, *derivation.warnings),
        )
        return SuvVolume(
            volume=image.volume.with_array(values, unit=suv_unit(normalisation)),
            derivation=derivation,
            normalisation=normalisation,  # type: ignore[arg-type]
        )
    series, derivation, per_slice, stored, owned = _dicom_stored(source, overrides, on_invalid)
    factor = derivation.factor(normalisation)
    values = scaled_float32(owned, factor, per_slice, out=owned)  # the stored values: not kept
    return SuvVolume(
        volume=stored.with_array(values, unit=suv_unit(normalisation)),
        derivation=replace(derivation, normalisation=normalisation),  # type: ignore[arg-type]
        normalisation=normalisation,  # type: ignore[arg-type]
        frame_of_reference_uid=series.frame_of_reference_uid or None,
    )


def read_activity_volume(
    source: str | Path | DicomSeries, *, overrides: SuvOverrides | None = None
) -> ActivityVolume:
    """Read one DICOM PET series as activity concentration (Bq/mL).

    Values stored as Bq/mL (or counts with the Philips (7053,1009) factor) and decay-corrected
    to scan start or injection are returned as stored. Otherwise (GML/CM2ML images, Philips
    SUV factor only, DecayCorrection NONE) the SUVbw decay-corrected to injection is turned
    back into Bq/mL at injection: :math:`C = \\mathrm{SUV_{bw}} \\cdot A / W_g`.

    Raises
    ------
    SuvError
        When the series has no SUV; or no activity is known for an image stored as SUV.
    """
    series, derivation, per_slice, stored, _ = _dicom_stored(source, overrides, "raise")
    if per_slice is None:
        per_slice = np.ones(len(series.headers), dtype=np.float64)
    values = np.asarray(stored.array, dtype=np.float64)
    if derivation.bqml_factor is not None and derivation.decay_correction in ("START", "ADMIN"):
        bqml = values * derivation.bqml_factor
        if derivation.slice_corrections and derivation.decay_correction == "START":
            bqml = bqml * per_slice[:, np.newaxis, np.newaxis]
        reference: Literal["scan", "injection"] | None = None
        how = "as stored by the scanner"
    else:
        activity = derivation.injected_activity_bq
        if not activity > 0:  # NaN for a GML image without a dose
            raise SuvError(
                "activity concentration is not known for this series, only its SUV",
                file=series.files[0],
                tag="(0018,1074) RadionuclideTotalDose",
                value="missing",
                expected="the injected activity (--injected-activity-bq), or write SUV",
            )
        suv = values * derivation.suv_bw_factor * per_slice[:, np.newaxis, np.newaxis]
        bqml = suv * activity / (derivation.weight_kg * 1000.0)
        reference = "injection"
        how = "converted from SUVbw; decay-corrected to injection"
    return ActivityVolume(
        volume=stored.with_array(bqml, unit=Unit.BQML),
        derivation=derivation,
        decay_reference=reference,
        how=how,
    )
