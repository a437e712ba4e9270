"""PET series -> SUV volume: the join of the DICOM reader and the SUV derivation.

The stored values of a PET series (after per-slice rescale) are multiplied by the series' SUV
factor; images stored without decay correction get each slice's own correction as well. The
returned :class:`SuvVolume` keeps the :class:`~immunopet.suv.record.SuvDerivation` so that every
SUV can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from immunopet.image import ImageVolume, Unit
from immunopet.io.dicom import DicomSeries, find_one_pet, load_series_volume
from immunopet.suv.factors import derive_suv
from immunopet.suv.record import SuvDerivation, SuvOverrides

__all__ = ["Normalisation", "SuvVolume", "read_suv_volume"]

Normalisation = Literal["bw", "lbm", "bsa"]

_UNITS: dict[str, Unit] = {"bw": Unit.SUV_BW, "lbm": Unit.SUV_LBM, "bsa": Unit.SUV_BSA}


@dataclass(frozen=True)
class SuvVolume:
    """An SUV image with the record of how it was derived.

    Attributes
    ----------
    volume : ImageVolume
        SUV decay-corrected to injection, unit ``SUVbw``, ``SUVlbm`` or ``SUVbsa``.
    derivation : SuvDerivation
        Tags, branch, factors and warnings.
    normalisation : {"bw", "lbm", "bsa"}
    """

    volume: ImageVolume
    derivation: SuvDerivation
    normalisation: Normalisation


def read_suv_volume(
    source: str | Path | DicomSeries,
    *,
    overrides: SuvOverrides | None = None,
    normalisation: Normalisation = "bw",
) -> SuvVolume:
    """Read one PET series and convert it to SUV.

    Parameters
    ----------
    source : path or DicomSeries
        A folder holding exactly one PET series, or a series from
        :func:`immunopet.io.dicom.discover_dicom`.
    overrides : SuvOverrides, optional
        Values that replace or complete the header (recorded as overrides).
    normalisation : {"bw", "lbm", "bsa"}
        Body weight (g/mL), lean body mass (SUL, g/mL) or body surface area (cm²/mL).

    Raises
    ------
    SuvError
        When no SUV can be derived (the message names the file and tag).
    DicomInputError, GeometryError
        When the series cannot be read or stacked.
    """
    series = source if isinstance(source, DicomSeries) else find_one_pet(source)
    derivation = derive_suv(series.headers, source=series.files[0], overrides=overrides)
    stored = load_series_volume(series)
    factor = derivation.factor(normalisation)
    values = np.asarray(stored.array, dtype=np.float32) * np.float32(factor)
    if derivation.slice_corrections:
        per_slice = np.array(
            [derivation.slice_corrections[str(h.SOPInstanceUID)] for h in series.headers],
            dtype=np.float32,
        )
        values *= per_slice[:, np.newaxis, np.newaxis]
    return SuvVolume(
        volume=stored.with_array(values, unit=_UNITS[normalisation]),
        derivation=derivation,
        normalisation=normalisation,
    )
