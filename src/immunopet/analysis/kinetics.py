"""Patlak analysis of multi-day immuno-PET: irreversible (Ki) and reversible (VT) antibody uptake.

For each VOI (organ reference sphere or lesion) scanned at three or more times after one
injection, the Patlak plot (Jauw et al., J Nucl Med 2019;60:1825) is

.. math::

    \\frac{C_T(t)}{C_p(t)} = K_i \\, \\frac{\\int_0^t C_p(\\tau)\\,d\\tau}{C_p(t)} + V_T

with :math:`C_T` the tissue and :math:`C_p` the plasma activity concentration, both
decay-corrected to injection and in the same unit. Both are used here as body-weight SUV: the
tissue as measured (``suv_mean`` of the VOI), the plasma from the blood samples (%IA/L turned
into SUV with the patient's weight, :func:`immunopet.suv.samples.percent_ia_per_l_to_suv_bw`)
or from the image (the blood-pool VOI times the plasma-to-blood ratio). The ratio
:math:`C_T/C_p` then is mL plasma per mL tissue, the slope per hour; divided by the tissue
density (setting, default 1.0 g/mL) they give Ki in µL·g⁻¹·h⁻¹ and VT in mL/g.

Plasma input (per patient and series, :func:`plasma_input`):

``sampled``
    The counted blood samples (:func:`immunopet.analysis.blood.blood_activity`), plasma when
    counted, else whole blood times the plasma-to-blood ratio. Fitted with a bi-exponential
    :math:`A_1 e^{-a_1 t} + A_2 e^{-a_2 t}` (least squares in log concentration, at least four
    samples) integrated analytically; with fewer samples, a failed fit or
    ``sampled_fit = "interpolation"`` the stated interpolation below.
``image``
    The blood-pool VOI (aorta, whole blood) at each scan times the plasma-to-blood ratio,
    interpolated as below.

The interpolation is log-linear (exponential) between points, constant from injection to the
first point, and continues the last segment's exponential after the last point (constant when
that segment rises). Its integral is exact for that curve. Between a 1 h and a 72 h point it
misses the fast early clearance and overestimates the integral (so underestimates Ki) by about
15 % for the synthetic study's blood curve.

A fit is flagged (``flag``) when it has fewer than ``min_points`` points (no Ki), when
:math:`r` < ``min_r`` (0.9), or when there is no plasma input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import linregress

from immunopet.errors import InputError
from immunopet.suv.samples import percent_ia_per_l_to_suv_bw

__all__ = [
    "KINETICS_COLUMNS",
    "POINT_COLUMNS",
    "KineticsSettings",
    "PatlakFit",
    "PlasmaInput",
    "fit_patlak",
    "image_plasma_input",
    "patlak_fits",
    "patlak_table",
    "sampled_plasma_input",
]

KINETICS_COLUMNS = (
    "patient",
    "series",
    "voi",
    "kind",
    "ki_ul_per_g_per_h",
    "vt_ml_per_g",
    "r",
    "n_points",
    "input",
    "hours_first",
    "hours_last",
    "plasma_method",
    "flag",
)
"""Columns of :func:`patlak_table` (``kinetics.csv``), in order."""

InputKind = Literal["sampled", "image"]


@dataclass(frozen=True)
class KineticsSettings:
    """Settings of the Patlak analysis (defaults stated; may later come from ``[analysis]``).

    Attributes
    ----------
    tissue_density_g_per_ml : float, g/mL
        Turns per-mL into per-gram values (1.0, as Jauw et al.).
    plasma_to_blood_ratio : float
        Plasma over whole-blood activity concentration, used for whole-blood samples and the
        image-derived input: ``1 / (1 - haematocrit)`` for an antibody that stays in plasma
        (default haematocrit 0.40 -> 1.667).
    input : {"auto", "sampled", "image"}
        ``auto`` uses the blood samples when a series has any, else the image.
    sampled_fit : {"biexponential", "interpolation"}
    blood_voi : str
        The organ VOI of the blood pool (image-derived input; no Patlak of its own).
    organ_metric, lesion_metric : str
        Measurement column taken as tissue concentration (the VOI mean).
    min_points : int
        Fewest time points for a fit (3).
    min_r : float
        A fit with a smaller correlation coefficient is flagged (0.9).
    """

    tissue_density_g_per_ml: float = 1.0
    plasma_to_blood_ratio: float = 1.0 / (1.0 - 0.40)
    input: Literal["auto", "sampled", "image"] = "auto"
    sampled_fit: Literal["biexponential", "interpolation"] = "biexponential"
    blood_voi: str = "blood_pool"
    organ_metric: str = "suv_mean"
    lesion_metric: str = "suv_mean"
    min_points: int = 3
    min_r: float = 0.9

    def __post_init__(self) -> None:
        for name in ("tissue_density_g_per_ml", "plasma_to_blood_ratio"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(
                    "kinetics setting must be a positive number",
                    tag=name,
                    value=value,
                    expected="a number > 0",
                )
        choices = {"input": ("auto", "sampled", "image"), "sampled_fit": _FITS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(
                    "unknown kinetics setting value",
                    tag=name,
                    value=getattr(self, name),
                    expected=" or ".join(allowed),
                )
        if not (isinstance(self.min_points, int) and self.min_points >= 2):
            raise InputError(
                "too few points for a line",
                tag="min_points",
                value=self.min_points,
                expected=">= 2",
            )

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> KineticsSettings:
        """Settings from a mapping (e.g. a TOML table); unknown keys are refused.

        Raises
        ------
        InputError
            Unknown key or invalid value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise InputError(
                "unknown kinetics setting",
                tag=", ".join(unknown),
                value="present",
                expected="one of " + ", ".join(sorted(known)),
            )
        return cls(**dict(table))


_FITS = ("biexponential", "interpolation")


# ---------------------------------------------------------------------------- plasma input
@dataclass(frozen=True)
class PlasmaInput:
    """Plasma activity concentration over time (SUVbw, decay-corrected to injection).

    Attributes
    ----------
    source : {"sampled", "image"}
    method : str
        ``"biexponential"`` or ``"interpolation"``.
    hours : tuple of float, hours
        The measured points (samples or scans).
    values : tuple of float, SUV
        Plasma at ``hours``.
    biexponential : tuple of 4 float or None
        ``(A1, a1, A2, a2)`` (SUV, 1/h) when ``method == "biexponential"``.
    warning : str
        Why a fallback was taken (empty when none).
    """

    source: InputKind
    method: Literal["biexponential", "interpolation"]
    hours: tuple[float, ...]
    values: tuple[float, ...]
    biexponential: tuple[float, float, float, float] | None = None
    warning: str = ""

    def concentration(self, hours: float | np.ndarray) -> np.ndarray:
        """Plasma SUV at ``hours`` (hours after injection)."""
        t = np.atleast_1d(np.asarray(hours, dtype=np.float64))
        if self.biexponential is not None:
            a1, r1, a2, r2 = self.biexponential
            return np.asarray(a1 * np.exp(-r1 * t) + a2 * np.exp(-r2 * t))
        knots, values = np.asarray(self.hours), np.asarray(self.values)
        out = np.interp(t, knots, np.log(values))
        late = t > knots[-1]
        rate = _tail_rate(self.hours, self.values)
        out[late] = np.log(values[-1]) - rate * (t[late] - knots[-1])
        return np.exp(out)

    def integral(self, hours: float | np.ndarray) -> np.ndarray:
        """:math:`\\int_0^t C_p` (SUV·h) at ``hours``, exact for the stated curve."""
        t = np.atleast_1d(np.asarray(hours, dtype=np.float64))
        if self.biexponential is not None:
            a1, r1, a2, r2 = self.biexponential
            return np.asarray(a1 * -np.expm1(-r1 * t) / r1 + a2 * -np.expm1(-r2 * t) / r2)
        return np.array([self._piecewise_integral(float(x)) for x in t])

    def _piecewise_integral(self, t: float) -> float:
        knots, values = self.hours, self.values
        total = values[0] * min(t, knots[0])  # constant from injection to the first point
        for i in range(len(knots) - 1):
            if t <= knots[i]:
                break
            end = min(t, knots[i + 1])
            rate = _segment_rate(knots[i], knots[i + 1], values[i], values[i + 1])
            total += _exp_integral(values[i], rate, end - knots[i])
        if t > knots[-1]:
            total += _exp_integral(values[-1], _tail_rate(knots, values), t - knots[-1])
        return total


def _segment_rate(t0: float, t1: float, c0: float, c1: float) -> float:
    """Exponential rate (1/h, positive = falling) through two points."""
    return math.log(c0 / c1) / (t1 - t0)


def _tail_rate(knots: tuple[float, ...], values: tuple[float, ...]) -> float:
    """Rate continuing after the last point: the last segment's, 0 when it rises."""
    if len(knots) < 2:
        return 0.0
    return max(_segment_rate(knots[-2], knots[-1], values[-2], values[-1]), 0.0)


def _exp_integral(c0: float, rate: float, duration: float) -> float:
    """:math:`\\int_0^d c_0 e^{-k s} ds`."""
    if abs(rate * duration) < 1e-12:
        return c0 * duration
    return c0 * -math.expm1(-rate * duration) / rate


def _fit_biexponential(
    hours: np.ndarray, values: np.ndarray
) -> tuple[float, float, float, float] | None:
    """Least squares in log concentration; None when it fails or is not a decay."""
    order = np.argsort(hours)
    t, c = hours[order], values[order]
    half = max(2, len(t) // 2)
    slow = linregress(t[-half:], np.log(c[-half:]))
    r2 = max(-float(slow.slope), 1e-4)
    a2 = float(np.exp(slow.intercept))
    rest = c[: len(t) - half] - a2 * np.exp(-r2 * t[: len(t) - half])
    a1 = float(max(np.max(rest), 0.1 * a2)) if rest.size else a2
    r1 = 10.0 * r2

    def residual(p: np.ndarray) -> np.ndarray:
        b1, k1, b2, k2 = np.exp(p)
        return np.asarray(np.log(b1 * np.exp(-k1 * t) + b2 * np.exp(-k2 * t)) - np.log(c))

    try:
        fit = least_squares(residual, np.log([a1, r1, a2, r2]), method="lm")
    except (ValueError, FloatingPointError):
        return None
    b1, k1, b2, k2 = (float(v) for v in np.exp(fit.x))
    if not all(math.isfinite(v) and v > 0 for v in (b1, k1, b2, k2)):
        return None
    if k1 < k2:
        b1, k1, b2, k2 = b2, k2, b1, k1
    if k2 > 5.0 or np.max(np.abs(fit.fun)) > 0.5:
        return None
    return (b1, k1, b2, k2)


def _interpolation(
    source: InputKind, hours: np.ndarray, values: np.ndarray, warning: str = ""
) -> PlasmaInput:
    order = np.argsort(hours, kind="stable")
    frame = pd.DataFrame({"h": hours[order], "c": values[order]}).groupby("h", sort=True).mean()
    return PlasmaInput(
        source=source,
        method="interpolation",
        hours=tuple(float(h) for h in frame.index),
        values=tuple(float(c) for c in frame["c"]),
        warning=warning,
    )


def sampled_plasma_input(
    blood: pd.DataFrame,
    weight_kg: float,
    settings: KineticsSettings = KineticsSettings(),
) -> PlasmaInput | None:
    """Plasma input of one patient and series from its blood samples.

    Parameters
    ----------
    blood : pandas.DataFrame
        Rows of :func:`immunopet.analysis.blood.blood_activity` for one patient and series
        (``hours_pi``, ``matrix``, ``percent_ia_per_l``, decay-corrected to injection).
    weight_kg : float, kg
        Body weight at the injection (turns %IA/L into SUVbw).
    settings : KineticsSettings

    Returns
    -------
    PlasmaInput or None
        None when no sample has a positive concentration.
    """
    usable = blood[
        np.isfinite(pd.to_numeric(blood["percent_ia_per_l"], errors="coerce"))
        & (pd.to_numeric(blood["percent_ia_per_l"], errors="coerce") > 0)
    ]
    plasma = usable[usable["matrix"] == "plasma"]
    factor = 1.0
    if plasma.empty:
        plasma = usable[usable["matrix"] == "whole_blood"]
        factor = settings.plasma_to_blood_ratio
    if plasma.empty:
        return None
    hours = plasma["hours_pi"].to_numpy(dtype=np.float64)
    values = (
        np.asarray(
            percent_ia_per_l_to_suv_bw(plasma["percent_ia_per_l"].to_numpy(np.float64), weight_kg)
        )
        * factor
    )
    if settings.sampled_fit == "biexponential":
        if len(np.unique(hours)) >= 4:
            params = _fit_biexponential(hours, values)
            if params is not None:
                return PlasmaInput(
                    source="sampled",
                    method="biexponential",
                    hours=tuple(float(h) for h in hours),
                    values=tuple(float(v) for v in values),
                    biexponential=params,
                )
            warning = "bi-exponential fit of the blood samples failed: interpolated"
        else:
            warning = f"{len(np.unique(hours))} blood sample times (< 4): interpolated"
        return _interpolation("sampled", hours, values, warning)
    return _interpolation("sampled", hours, values)


def image_plasma_input(
    hours: np.ndarray, blood_suv: np.ndarray, settings: KineticsSettings = KineticsSettings()
) -> PlasmaInput | None:
    """Image-derived plasma input: blood-pool SUV at the scans times the plasma/blood ratio.

    Returns None when no scan has a positive blood-pool value.
    """
    hours = np.asarray(hours, dtype=np.float64)
    values = np.asarray(blood_suv, dtype=np.float64)
    keep = np.isfinite(hours) & np.isfinite(values) & (values > 0)
    if not keep.any():
        return None
    return _interpolation("image", hours[keep], values[keep] * settings.plasma_to_blood_ratio)


# ---------------------------------------------------------------------------- Patlak
@dataclass(frozen=True)
class PatlakFit:
    """One Patlak fit.

    Attributes
    ----------
    slope_per_h : float, mL plasma / (mL tissue h)
    intercept : float, mL plasma / mL tissue
    r : float
        Pearson correlation of the plot.
    n_points : int
    hours : tuple of float, hours
    x : tuple of float, hours
        :math:`\\int_0^t C_p / C_p(t)` (normalised time).
    y : tuple of float
        :math:`C_T(t) / C_p(t)`.
    """

    slope_per_h: float
    intercept: float
    r: float
    n_points: int
    hours: tuple[float, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]

    def ki_ul_per_g_per_h(self, density_g_per_ml: float = 1.0) -> float:
        """Ki in µL·g⁻¹·h⁻¹ at the tissue density."""
        return self.slope_per_h * 1000.0 / density_g_per_ml

    def vt_ml_per_g(self, density_g_per_ml: float = 1.0) -> float:
        """VT (intercept) in mL/g at the tissue density."""
        return self.intercept / density_g_per_ml


def fit_patlak(
    hours: np.ndarray, tissue: np.ndarray, plasma: PlasmaInput, *, min_points: int = 3
) -> PatlakFit:
    """Patlak plot and its least-squares line for one VOI.

    Parameters
    ----------
    hours : array, hours
        Scan times after injection.
    tissue : array, SUV
        Tissue concentration at ``hours`` (same unit as ``plasma``).
    plasma : PlasmaInput
    min_points : int
        With fewer valid points the slope, intercept and r are NaN.

    Returns
    -------
    PatlakFit

    Examples
    --------
    Constant plasma 2: the plot is y = t + 0.5 when the tissue is 2 t + 1.

    >>> flat = PlasmaInput("image", "interpolation", (0.0, 10.0), (2.0, 2.0))
    >>> fit = fit_patlak(np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0, 9.0]), flat)
    >>> round(fit.slope_per_h, 9), round(fit.intercept, 9), round(fit.r, 9)
    (1.0, 0.5, 1.0)
    """
    t = np.asarray(hours, dtype=np.float64)
    c = np.asarray(tissue, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(c) & (t > 0)
    t, c = t[keep], c[keep]
    order = np.argsort(t, kind="stable")
    t, c = t[order], c[order]
    cp = plasma.concentration(t)
    x = plasma.integral(t) / cp
    y = c / cp
    n = len(t)
    if n < min_points or len(np.unique(x)) < 2:
        slope = intercept = r = math.nan
    else:
        line = linregress(x, y)
        slope, intercept, r = float(line.slope), float(line.intercept), float(line.rvalue)
    return PatlakFit(
        slope_per_h=slope,
        intercept=intercept,
        r=r,
        n_points=n,
        hours=tuple(float(v) for v in t),
        x=tuple(float(v) for v in x),
        y=tuple(float(v) for v in y),
    )


def _weights(scans: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    if scans is None or not {"patient", "series", "weight_kg"} <= set(scans.columns):
        return out
    for patient, series, weight in scans[["patient", "series", "weight_kg"]].itertuples(
        index=False
    ):
        value = pd.to_numeric(pd.Series([weight]), errors="coerce").iloc[0]
        if pd.notna(value) and value > 0:
            out.setdefault((str(patient), str(series)), float(value))
    return out


def _inputs(
    measurements: pd.DataFrame,
    blood: pd.DataFrame | None,
    scans: pd.DataFrame | None,
    settings: KineticsSettings,
) -> dict[tuple[str, str], PlasmaInput | None]:
    weights = _weights(scans)
    keys = sorted(set(zip(measurements["patient"], measurements["series"], strict=True)))
    out: dict[tuple[str, str], PlasmaInput | None] = {}
    for patient, series in keys:
        chosen: PlasmaInput | None = None
        if settings.input in ("auto", "sampled") and blood is not None and not blood.empty:
            rows = blood[(blood["patient"] == patient) & (blood["series"] == series)]
            weight = weights.get((patient, series))
            if not rows.empty and weight is not None:
                chosen = sampled_plasma_input(rows, weight, settings)
        if chosen is None and settings.input in ("auto", "image"):
            pool = measurements[
                (measurements["patient"] == patient)
                & (measurements["series"] == series)
                & (measurements["kind"] == "organ")
                & (measurements["voi"] == settings.blood_voi)
            ]
            if not pool.empty:
                chosen = image_plasma_input(
                    pool["hours_pi"].to_numpy(np.float64),
                    pd.to_numeric(pool[settings.organ_metric], errors="coerce").to_numpy(
                        np.float64
                    ),
                    settings,
                )
        out[(patient, series)] = chosen
    return out


def patlak_table(
    measurements: pd.DataFrame,
    *,
    blood: pd.DataFrame | None = None,
    scans: pd.DataFrame | None = None,
    settings: KineticsSettings = KineticsSettings(),
) -> pd.DataFrame:
    """Patlak Ki and VT of every organ and lesion VOI per patient and series.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The study's VOI measurements (``patient``, ``series``, ``hours_pi``, ``voi``, ``kind``
        and the metric columns), SUVbw decay-corrected to injection.
    blood : pandas.DataFrame, optional
        :func:`immunopet.analysis.blood.blood_activity` of the study's samples.
    scans : pandas.DataFrame, optional
        The scans table (``weight_kg`` per patient and series, for the sampled input).
    settings : KineticsSettings

    Returns
    -------
    pandas.DataFrame
        One row per patient, series and VOI (the blood-pool VOI left out), columns
        :data:`KINETICS_COLUMNS`; Ki and VT are NaN when there are too few points or no
        plasma input, and ``flag`` says why (or that r < ``min_r``).

    Raises
    ------
    InputError
        When a required measurement column is missing.
    """
    return patlak_fits(measurements, blood=blood, scans=scans, settings=settings)[0]


POINT_COLUMNS = ("patient", "series", "voi", "kind", "hours_pi", "x_h", "y", "y_fit")
"""Columns of the Patlak plot points of :func:`patlak_fits`: ``x_h`` =
:math:`\\int_0^t C_p / C_p(t)` (hours), ``y`` = :math:`C_T(t)/C_p(t)` (mL plasma per mL
tissue) and ``y_fit`` the fitted line at ``x_h`` (NaN where no line was fitted)."""


def patlak_fits(
    measurements: pd.DataFrame,
    *,
    blood: pd.DataFrame | None = None,
    scans: pd.DataFrame | None = None,
    settings: KineticsSettings = KineticsSettings(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Patlak table (:func:`patlak_table`) and the points of every Patlak plot.

    Parameters
    ----------
    measurements, blood, scans, settings
        As :func:`patlak_table`.

    Returns
    -------
    (table, points)
        ``table`` with columns :data:`KINETICS_COLUMNS`; ``points`` one row per VOI and scan
        with a plasma input, columns :data:`POINT_COLUMNS` (per mL of tissue, before the
        density), sorted like ``table`` then by time.

    Raises
    ------
    InputError
        When a required measurement column is missing.
    """
    required = ("patient", "series", "hours_pi", "voi", "kind")
    metrics = {settings.organ_metric, settings.lesion_metric}
    missing = [c for c in (*required, *sorted(metrics)) if c not in measurements.columns]
    if missing:
        raise InputError(
            "measurements lack required column(s) for the Patlak analysis",
            file="measurements",
            tag=", ".join(missing),
            value="missing",
            expected="columns " + ", ".join((*required, *sorted(metrics))),
        )
    frame = measurements.copy()
    for column in ("patient", "series", "voi", "kind"):
        frame[column] = frame[column].astype(str)
    if blood is not None and not blood.empty:
        blood = blood.assign(
            patient=blood["patient"].astype(str), series=blood["series"].astype(str)
        )
    inputs = _inputs(frame, blood, scans, settings)
    rows: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    tissue_rows = frame[~((frame["kind"] == "organ") & (frame["voi"] == settings.blood_voi))]
    groups = tissue_rows.groupby(["patient", "series", "kind", "voi"], sort=False)
    for (patient, series, kind, voi), group in groups:
        metric = settings.lesion_metric if kind == "lesion" else settings.organ_metric
        hours = pd.to_numeric(group["hours_pi"], errors="coerce").to_numpy(np.float64)
        tissue = pd.to_numeric(group[metric], errors="coerce").to_numpy(np.float64)
        valid = np.isfinite(hours) & np.isfinite(tissue) & (hours > 0)
        plasma = inputs.get((patient, series))
        row: dict[str, Any] = {
            "patient": patient,
            "series": series,
            "voi": voi,
            "kind": kind,
            "ki_ul_per_g_per_h": math.nan,
            "vt_ml_per_g": math.nan,
            "r": math.nan,
            "n_points": int(valid.sum()),
            "input": "" if plasma is None else plasma.source,
            "hours_first": float(hours[valid].min()) if valid.any() else math.nan,
            "hours_last": float(hours[valid].max()) if valid.any() else math.nan,
            "plasma_method": "" if plasma is None else plasma.method,
            "flag": "",
        }
        flags = []
        if plasma is None:
            flags.append("no plasma input (no blood samples, no blood-pool VOI)")
        else:
            fit = fit_patlak(hours, tissue, plasma, min_points=settings.min_points)
            for t, x, y in zip(fit.hours, fit.x, fit.y, strict=True):
                points.append(
                    {
                        "patient": patient,
                        "series": series,
                        "voi": voi,
                        "kind": kind,
                        "hours_pi": t,
                        "x_h": x,
                        "y": y,
                        "y_fit": fit.intercept + fit.slope_per_h * x,
                    }
                )
            if row["n_points"] < settings.min_points:
                flags.append(f"fewer than {settings.min_points} time points")
            else:
                density = settings.tissue_density_g_per_ml
                row.update(
                    ki_ul_per_g_per_h=fit.ki_ul_per_g_per_h(density),
                    vt_ml_per_g=fit.vt_ml_per_g(density),
                    r=fit.r,
                )
                if not (math.isfinite(fit.r) and fit.r >= settings.min_r):
                    flags.append(f"r < {settings.min_r:g}")
                if plasma.warning:
                    flags.append(plasma.warning)
        row["flag"] = "; ".join(flags)
        rows.append(row)
    keys = ["patient", "series", "kind", "voi"]
    out = pd.DataFrame(rows, columns=list(KINETICS_COLUMNS))
    out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    plot = pd.DataFrame(points, columns=list(POINT_COLUMNS))
    plot = plot.sort_values([*keys, "hours_pi"], kind="stable").reset_index(drop=True)
    return out, plot
