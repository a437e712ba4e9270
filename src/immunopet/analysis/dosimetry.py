"""Time-integrated activity per organ and lesion, and residence times for a dosimetry program.

For each VOI of one injection the activity concentration as a fraction of the injected
activity per mL, :math:`a(t) = \\mathrm{SUV}(t) / W[\\mathrm{g}]` decay-corrected to injection
(:func:`immunopet.suv.samples.suv_bw_to_fraction_ia_per_ml`), is turned into physical
(not decay-corrected) activity :math:`a(t)\\,2^{-t/T}` and integrated over time:

* from injection to the first scan the first scan's value (decay-corrected) is taken as
  constant (the antibody reaches the organs' blood within minutes);
* between scans, trapezoids of the physical activity;
* after the last scan, physical decay only (no biological clearance): the tail
  :math:`a_\\mathrm{last}\\,2^{-t_\\mathrm{last}/T} / \\lambda` (conservative).

The result, the time-integrated activity coefficient per mL (:math:`\\tilde a`, h/mL), times
the organ mass (g, reference adult of ICRP Publication 89 unless given) over the tissue
density is the organ's residence time :math:`\\tau` (h, the number OLINDA/EXM and IDAC-Dose
take as "number of disintegrations per unit administered activity" in MBq·h/MBq), and times
the injected activity its cumulated activity (MBq·h).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from immunopet.errors import InputError
from immunopet.suv.decay import integrate_physical_activity
from immunopet.suv.nuclides import find_nuclide
from immunopet.suv.samples import suv_bw_to_fraction_ia_per_ml

__all__ = [
    "ICRP89_ADULT_MALE_MASS_G",
    "RESIDENCE_COLUMNS",
    "TIA_COLUMNS",
    "DosimetrySettings",
    "integrate_activity",
    "residence_times",
    "time_integrated_activity",
]

ICRP89_ADULT_MALE_MASS_G: Mapping[str, float] = {
    "liver": 1800.0,
    "spleen": 150.0,
    "kidney": 310.0,
    "lung": 1200.0,
    "bone_marrow": 1170.0,
    "brain": 1450.0,
}
"""Reference organ masses (g), ICRP Publication 89 adult male: liver, spleen, both kidneys,
both lungs (with blood), red (active) marrow, brain."""

OLINDA_NAMES: Mapping[str, str] = {
    "liver": "Liver",
    "spleen": "Spleen",
    "kidney": "Kidneys",
    "lung": "Lungs",
    "bone_marrow": "Red Marrow",
    "brain": "Brain",
}
"""Source-organ names as OLINDA/EXM and IDAC-Dose list them."""

TIA_COLUMNS = (
    "patient",
    "series",
    "voi",
    "kind",
    "tiac_h_per_ml",
    "cumulated_activity_mbq_h_per_ml",
    "n_points",
    "hours_first",
    "hours_last",
    "tail_fraction",
)
"""Columns of :func:`time_integrated_activity`."""

RESIDENCE_COLUMNS = (
    "patient",
    "series",
    "organ",
    "source_organ",
    "mass_g",
    "cumulated_activity_mbq_h",
    "residence_time_h",
)
"""Columns of :func:`residence_times` (``source_organ`` and ``residence_time_h`` are what a
dosimetry program takes)."""


@dataclass(frozen=True)
class DosimetrySettings:
    """Settings of the time-integrated activity.

    Attributes
    ----------
    nuclide : str
        Its half-life gives the physical decay (``"89Zr"``: 78.41 h).
    organ_mass_g : mapping of str to float, g
        Organ masses for the residence times (default ICRP 89 adult male).
    tissue_density_g_per_ml : float, g/mL
    metric : str
        Measurement column taken as concentration (the VOI mean SUV).
    """

    nuclide: str = "89Zr"
    organ_mass_g: Mapping[str, float] = field(
        default_factory=lambda: dict(ICRP89_ADULT_MALE_MASS_G)
    )
    tissue_density_g_per_ml: float = 1.0
    metric: str = "suv_mean"


def integrate_activity(
    hours: np.ndarray, fraction_per_ml: np.ndarray, half_life_h: float
) -> tuple[float, float]:
    """Time-integrated physical activity of one VOI (see the module text for the rule).

    Parameters
    ----------
    hours : array, hours
        Scan times after injection (at least one).
    fraction_per_ml : array, 1/mL
        Fraction of the injected activity per mL at ``hours``, decay-corrected to injection.
    half_life_h : float, hours

    Returns
    -------
    (tiac_h_per_ml, tail_fraction)
        The integral (h/mL) and the part of it after the last scan.

    Examples
    --------
    One scan at one half-life, 1e-5 /mL decay-corrected: before it the physical activity
    decays from 1e-5 to 0.5e-5, integral 1e-5 (1 - 1/2) / lambda = 1e-5 T / (2 ln 2); after
    it 0.5e-5 / lambda, the same again: in all 1e-5 T / ln 2, half of it in the tail.

    >>> tiac, tail = integrate_activity(np.array([78.41]), np.array([1e-5]), 78.41)
    >>> round(tiac / (1e-5 * 78.41), 6), round(tail, 6)
    (1.442695, 0.5)
    """
    total, tail = integrate_physical_activity(hours, fraction_per_ml, half_life_h)
    return total, tail / total if total > 0 else math.nan


def time_integrated_activity(
    measurements: pd.DataFrame,
    scans: pd.DataFrame,
    settings: DosimetrySettings = DosimetrySettings(),
) -> pd.DataFrame:
    """Time-integrated activity coefficient per mL of every VOI per patient and series.

    Parameters
    ----------
    measurements : pandas.DataFrame
        VOI measurements (``patient``, ``series``, ``hours_pi``, ``voi``, ``kind`` and the
        metric), SUVbw decay-corrected to injection.
    scans : pandas.DataFrame
        ``patient``, ``series``, ``weight_kg``, ``injected_activity_bq``.
    settings : DosimetrySettings

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TIA_COLUMNS`; ``cumulated_activity_mbq_h_per_ml`` is the coefficient
        times the injected activity.

    Raises
    ------
    InputError
        A required column is missing or a series has no valid weight or activity.
    """
    for name, frame, columns in (
        ("measurements", measurements, ("patient", "series", "hours_pi", "voi", "kind")),
        ("scans", scans, ("patient", "series", "weight_kg", "injected_activity_bq")),
    ):
        needed = (*columns, settings.metric) if name == "measurements" else columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(
                f"{name} lack required column(s) for the time-integrated activity",
                file=name,
                tag=", ".join(missing),
                value="missing",
                expected="columns " + ", ".join(needed),
            )
    half_life_h = find_nuclide(settings.nuclide).half_life_s / 3600.0
    body: dict[tuple[str, str], tuple[float, float]] = {}
    for row in scans.itertuples(index=False):
        weight = float(pd.to_numeric(row.weight_kg, errors="coerce"))
        activity = float(pd.to_numeric(row.injected_activity_bq, errors="coerce"))
        if math.isfinite(weight) and weight > 0 and math.isfinite(activity) and activity > 0:
            body.setdefault((str(row.patient), str(row.series)), (weight, activity))
    rows = []
    frame = measurements.assign(
        patient=measurements["patient"].astype(str),
        series=measurements["series"].astype(str),
        voi=measurements["voi"].astype(str),
        kind=measurements["kind"].astype(str),
    )
    for (patient, series, kind, voi), group in frame.groupby(
        ["patient", "series", "kind", "voi"], sort=True
    ):
        if (patient, series) not in body:
            raise InputError(
                "no body weight or injected activity for the series",
                file="scans",
                tag="weight_kg, injected_activity_bq",
                value=f"{patient}/{series}",
                expected="positive numbers",
            )
        weight_kg, activity_bq = body[(patient, series)]
        hours = pd.to_numeric(group["hours_pi"], errors="coerce").to_numpy(np.float64)
        suv = pd.to_numeric(group[settings.metric], errors="coerce").to_numpy(np.float64)
        keep = np.isfinite(hours) & np.isfinite(suv) & (hours >= 0)
        if not keep.any():
            continue
        fraction = np.asarray(suv_bw_to_fraction_ia_per_ml(suv[keep], weight_kg))
        tiac, tail = integrate_activity(hours[keep], fraction, half_life_h)
        rows.append(
            {
                "patient": patient,
                "series": series,
                "voi": voi,
                "kind": kind,
                "tiac_h_per_ml": tiac,
                "cumulated_activity_mbq_h_per_ml": tiac * activity_bq / 1e6,
                "n_points": int(keep.sum()),
                "hours_first": float(hours[keep].min()),
                "hours_last": float(hours[keep].max()),
                "tail_fraction": tail,
            }
        )
    return pd.DataFrame(rows, columns=list(TIA_COLUMNS))


def residence_times(
    tia: pd.DataFrame, settings: DosimetrySettings = DosimetrySettings()
) -> pd.DataFrame:
    """Residence time and cumulated activity of each organ with a mass (OLINDA/IDAC input).

    Parameters
    ----------
    tia : pandas.DataFrame
        Output of :func:`time_integrated_activity`.
    settings : DosimetrySettings

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESIDENCE_COLUMNS`, one row per patient, series and organ:
        :math:`\\tau = \\tilde a \\cdot m / \\rho` (h) and :math:`\\tau \\cdot A_0` (MBq·h).
    """
    organs = tia[(tia["kind"] == "organ") & tia["voi"].isin(list(settings.organ_mass_g))]
    rows = []
    for row in organs.itertuples(index=False):
        mass_g = float(settings.organ_mass_g[str(row.voi)])
        volume_ml = mass_g / settings.tissue_density_g_per_ml
        rows.append(
            {
                "patient": row.patient,
                "series": row.series,
                "organ": row.voi,
                "source_organ": OLINDA_NAMES.get(str(row.voi), str(row.voi)),
                "mass_g": mass_g,
                "cumulated_activity_mbq_h": float(row.cumulated_activity_mbq_h_per_ml) * volume_ml,
                "residence_time_h": float(row.tiac_h_per_ml) * volume_ml,
            }
        )
    return pd.DataFrame(rows, columns=list(RESIDENCE_COLUMNS))
