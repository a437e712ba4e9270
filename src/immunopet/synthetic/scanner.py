"""Scanner effects: SUV maps to activity concentration, resolution blur, noise, and a CT.

Activity concentration at scan start (the value a PET image decay-corrected to ``START``
holds) from SUVbw:

.. math:: C = \\mathrm{SUV} \\cdot \\frac{A_\\mathrm{inj}\\, 2^{-\\Delta t / T_{1/2}}}{W}

with :math:`A_\\mathrm{inj}` the injected activity (Bq), :math:`\\Delta t` the full interval
from injection to scan start (days count), :math:`T_{1/2}` = 78.41 h for 89Zr and :math:`W`
the body weight in grams.

Resolution is an isotropic Gaussian (``fwhm_mm``, 6.5 mm by default, which includes the
positron range of 89Zr). Noise is Gaussian with the variance of the counts a voxel collects:

.. math:: \\sigma^2(C) = \\frac{C}{\\varepsilon\\, V\\, \\tau}

(:math:`\\varepsilon` an effective sensitivity, :math:`V` the voxel volume in mL,
:math:`\\tau` the frame duration in s), so the relative noise grows as the activity decays:
scans at 120-168 h are visibly noisier than at 72 h. Negative values are set to 0, as an
OSEM reconstruction would not produce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from immunopet.image import ImageVolume, Unit
from immunopet.suv.decay import decay_factor
from immunopet.synthetic.anatomy import Anatomy, Tissue

__all__ = [
    "TISSUE_HU",
    "ScannerModel",
    "activity_concentration_bqml",
    "simulate_ct",
    "simulate_pet",
]

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

TISSUE_HU: Mapping[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.FAT: -100.0,
    Tissue.LUNG: -850.0,
    Tissue.LIVER: 55.0,
    Tissue.SPLEEN: 45.0,
    Tissue.KIDNEY: 30.0,
    Tissue.BLOOD_POOL: 40.0,
    Tissue.BONE: 700.0,
    Tissue.BONE_MARROW: 250.0,
    Tissue.BRAIN: 35.0,
    Tissue.MYOCARDIUM: 45.0,
}
"""Low-dose CT Hounsfield units per tissue (lesions are 35 HU, necrotic cores 15 HU)."""

LESION_HU = 35.0
NECROSIS_HU = 15.0


@dataclass(frozen=True)
class ScannerModel:
    """PET scanner and reconstruction effects.

    Attributes
    ----------
    fwhm_mm : float, mm
        Resolution (Gaussian FWHM), including the 89Zr positron range.
    sensitivity : float
        Effective detected counts per decay after reconstruction (sets the noise level).
    blur : bool
        Apply the resolution blur (``False`` for exact read-back tests).
    noise : bool
        Add noise (``False`` for exact read-back tests).
    ct_noise_hu : float, HU
        Standard deviation of the CT noise.
    """

    fwhm_mm: float = 6.5
    sensitivity: float = 6.0e-4
    blur: bool = True
    noise: bool = True
    ct_noise_hu: float = 12.0


def activity_concentration_bqml(
    suv: np.ndarray | float,
    *,
    injected_activity_bq: float,
    weight_kg: float,
    hours_since_injection: float,
    half_life_s: float,
) -> np.ndarray | float:
    """Activity concentration at scan start (Bq/mL) from SUVbw decay-corrected to injection.

    Parameters
    ----------
    suv : float or array
    injected_activity_bq : float, Bq
    weight_kg : float, kg
    hours_since_injection : float, hours
        Full interval from injection to scan start.
    half_life_s : float, s

    Examples
    --------
    SUV 1 at 120 h after 37 MBq in 74 kg: 37e6 * 2**(-120/78.41) / 74000 = 173.09 Bq/mL

    >>> round(activity_concentration_bqml(1.0, injected_activity_bq=37e6, weight_kg=74.0,
    ...     hours_since_injection=120.0, half_life_s=78.41 * 3600), 2)
    173.09
    """
    remaining = decay_factor(hours_since_injection * 3600.0, half_life_s)
    return suv * injected_activity_bq * float(remaining) / (weight_kg * 1000.0)


def simulate_pet(
    suv_map: ImageVolume,
    *,
    injected_activity_bq: float,
    weight_kg: float,
    hours_since_injection: float,
    half_life_s: float,
    frame_duration_s: float,
    scanner: ScannerModel,
    rng: np.random.Generator,
) -> ImageVolume:
    """The PET image (Bq/mL decay-corrected to scan start) a scanner makes of an SUV map.

    Parameters
    ----------
    suv_map : ImageVolume
        True SUVbw per voxel.
    injected_activity_bq : float, Bq
    weight_kg : float, kg
    hours_since_injection : float, hours
    half_life_s : float, s
    frame_duration_s : float, s
        Acquisition time per bed (sets the counts).
    scanner : ScannerModel
    rng : numpy.random.Generator
        Used only when ``scanner.noise``.

    Returns
    -------
    ImageVolume
        Unit ``BQML`` on the grid of ``suv_map``, float32.
    """
    concentration = np.asarray(
        activity_concentration_bqml(
            suv_map.array.astype(np.float64),
            injected_activity_bq=injected_activity_bq,
            weight_kg=weight_kg,
            hours_since_injection=hours_since_injection,
            half_life_s=half_life_s,
        )
    )
    if scanner.blur:
        sigma = [scanner.fwhm_mm * FWHM_TO_SIGMA / d for d in suv_map.spacing_mm]
        concentration = ndimage.gaussian_filter(concentration, sigma=sigma, mode="constant")
    if scanner.noise:
        counts_per_bqml = scanner.sensitivity * suv_map.voxel_volume_ml * frame_duration_s
        variance = np.clip(concentration, 0.0, None) / counts_per_bqml
        concentration = concentration + rng.standard_normal(concentration.shape) * np.sqrt(variance)
        np.clip(concentration, 0.0, None, out=concentration)
    return suv_map.with_array(concentration.astype(np.float32), unit=Unit.BQML)


def simulate_ct(
    anatomy: Anatomy, *, scanner: ScannerModel, rng: np.random.Generator
) -> ImageVolume:
    """Low-dose CT (HU, int16) of an anatomy built on the CT grid.

    Parameters
    ----------
    anatomy : Anatomy
        Tissue and lesion labels on the CT grid.
    scanner : ScannerModel
        ``ct_noise_hu`` sets the noise; ``noise=False`` gives noise-free HU.
    rng : numpy.random.Generator
    """
    table = np.zeros(max(int(t) for t in Tissue) + 1, dtype=np.float32)
    for tissue, hu in TISSUE_HU.items():
        table[int(tissue)] = hu
    hu_map = table[anatomy.tissue]
    hu_map[anatomy.lesion_labels > 0] = LESION_HU
    hu_map[anatomy.necrotic_core] = NECROSIS_HU
    if scanner.noise and scanner.ct_noise_hu > 0:
        body = anatomy.tissue != Tissue.AIR
        hu_map[body] += rng.normal(0.0, scanner.ct_noise_hu, int(body.sum())).astype(np.float32)
    return anatomy.grid.volume(np.rint(hu_map).astype(np.int16), Unit.HU)
