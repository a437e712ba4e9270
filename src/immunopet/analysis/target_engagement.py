"""Target engagement (Patlak) and time-integrated activity of a study, for the report.

:func:`target_engagement` turns the study's VOI measurements, blood samples and scans into a
:class:`TargetEngagement`: every number the report's section "Target engagement (Patlak) and
time-integrated activity" shows, and the tables of ``RESULTS_DIR/analysis/``
(:func:`kinetics_tables`):

=========================  ===============================================================
table                      what
=========================  ===============================================================
kinetics                   every Patlak fit: Ki (µL·g⁻¹·h⁻¹), VT (mL/g), r, points, plasma
                           input and flag per patient, series and VOI
time_integrated_activity   the time-integrated activity coefficient per mL and cumulated
                           activity per patient, series and VOI
residence_times            residence time (h) and cumulated activity per organ, patient and
                           series (for a dosimetry program)
kinetics_summary           Ki (µL·g⁻¹·h⁻¹) and VT (mL/g) per organ (lesions pooled as
                           ``lesions``) and series: VOIs, fitted, n with r below the limit,
                           median, quartiles (linear interpolation, as numpy/R type 7),
                           range; the non-specific baseline of Jauw et al. and the median's
                           ratio to it
kinetics_paired            per organ: the patients with a fitted Ki in both series, their
                           medians and median difference, and the Wilcoxon signed-rank test
                           when there are enough pairs (else why not)
kinetics_flagged           the VOIs without a Ki (and why) or with a flag (r below the limit,
                           a fallback plasma input)
kinetics_flag_summary      those reasons counted per kind of VOI
patlak_points              every point of every Patlak plot with its fitted line
residence_time_summary     residence time (h) and cumulated activity (MBq·h) per organ and
                           series: n, median, range
=========================  ===============================================================

These are the only Patlak fits and integrals of a run: the report shows the same numbers.

Jauw et al. (J Nucl Med 2019;60:1825) report Ki of non-specific (not target-mediated) uptake
around 0.7 (kidney), 1.1 (liver), 0.2 (lung) and 0.5 (spleen) µL·g⁻¹·h⁻¹
(:data:`JAUW_NONSPECIFIC_KI`): an organ's Ki well above its baseline suggests target-mediated
uptake; Ki always includes non-specific, irreversible catabolism.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from immunopet.analysis.biodistribution import ORGAN_ORDER
from immunopet.analysis.dosimetry import (
    RESIDENCE_COLUMNS,
    TIA_COLUMNS,
    DosimetrySettings,
    residence_times,
    time_integrated_activity,
)
from immunopet.analysis.kinetics import POINT_COLUMNS, KineticsSettings, patlak_fits
from immunopet.errors import ImmunoPETError
from immunopet.stats.groups import wilcoxon_signed_rank
from immunopet.stats.results import TestResult

__all__ = [
    "FLAGGED_COLUMNS",
    "FLAG_SUMMARY_COLUMNS",
    "JAUW_NONSPECIFIC_KI",
    "LESIONS",
    "MIN_PAIRS",
    "PAIRED_COLUMNS",
    "RESIDENCE_SUMMARY_COLUMNS",
    "SUMMARY_COLUMNS",
    "TargetEngagement",
    "kinetics_tables",
    "target_engagement",
]

JAUW_NONSPECIFIC_KI: Final[Mapping[str, float]] = {
    "kidney": 0.7,
    "liver": 1.1,
    "lung": 0.2,
    "spleen": 0.5,
}
"""Ki of non-specific uptake (µL·g⁻¹·h⁻¹) reported by Jauw et al., J Nucl Med 2019;60:1825."""

LESIONS: Final = "lesions"
"""The ``voi`` of the summary rows that pool every lesion."""

MIN_PAIRS: Final = 6
"""Fewest pairs for the signed-rank test: with 5 or fewer, no two-sided exact p can fall
below 0.05 (the smallest is :math:`2^{1-n}` = 0.0625 for n = 5)."""

SUMMARY_COLUMNS: Final = (
    "kind",
    "voi",
    "series",
    "n_vois",
    "n_fitted",
    "n_low_r",
    "ki_median",
    "ki_q1",
    "ki_q3",
    "ki_min",
    "ki_max",
    "vt_median",
    "vt_q1",
    "vt_q3",
    "vt_min",
    "vt_max",
    "jauw_ki",
    "ki_median_over_jauw",
)
"""Columns of :attr:`TargetEngagement.summary` (``ki_*`` in µL·g⁻¹·h⁻¹, ``vt_*`` in mL/g)."""

PAIRED_COLUMNS: Final = (
    "voi",
    "n_pairs",
    "reference_series",
    "comparison_series",
    "ki_median_reference",
    "ki_median_comparison",
    "median_difference",
    "n_lower",
    "test",
    "statistic",
    "p_value",
    "method",
    "note",
)
"""Columns of :attr:`TargetEngagement.paired`: ``median_difference`` is the median of
comparison − reference over the pairs, ``n_lower`` the pairs where the comparison is lower."""

PAIR_COLUMNS: Final = ("voi", "patient", "ki_reference", "ki_comparison")
"""Columns of :attr:`TargetEngagement.pairs` (µL·g⁻¹·h⁻¹)."""

FLAGGED_COLUMNS: Final = (
    "patient",
    "series",
    "voi",
    "kind",
    "n_points",
    "fitted",
    "ki_ul_per_g_per_h",
    "r",
    "flag",
)
"""Columns of :attr:`TargetEngagement.flagged`."""

FLAG_SUMMARY_COLUMNS: Final = ("kind", "reason", "fitted", "n")
"""Columns of :attr:`TargetEngagement.flag_summary`: how many VOIs (organ or lesion rows)
carry each reason (a row with two reasons counts under both)."""

RESIDENCE_SUMMARY_COLUMNS: Final = (
    "organ",
    "source_organ",
    "series",
    "n",
    "residence_time_h_median",
    "residence_time_h_min",
    "residence_time_h_max",
    "cumulated_activity_mbq_h_median",
    "tail_fraction_median",
)
"""Columns of :attr:`TargetEngagement.residence_summary`."""


@dataclass(frozen=True)
class TargetEngagement:
    """Patlak target engagement and time-integrated activity of a study.

    Attributes
    ----------
    fits : DataFrame
        One Patlak fit per patient, series and VOI (:data:`~immunopet.analysis.kinetics.
        KINETICS_COLUMNS`, the rows of ``kinetics.csv``).
    points : DataFrame
        The Patlak plot points (:data:`~immunopet.analysis.kinetics.POINT_COLUMNS`).
    summary : DataFrame
        Ki and VT per organ (and the lesions pooled) and series, :data:`SUMMARY_COLUMNS`.
    pairs : DataFrame
        Organ Ki of the patients fitted in both series, :data:`PAIR_COLUMNS`.
    paired : DataFrame
        The paired comparison per organ, :data:`PAIRED_COLUMNS`.
    tests : dict of str to TestResult
        The signed-rank tests computed, keyed by organ.
    flagged : DataFrame
        VOIs without a Ki or with a flag, :data:`FLAGGED_COLUMNS`.
    flag_summary : DataFrame
        The reasons of ``flagged`` counted, :data:`FLAG_SUMMARY_COLUMNS`.
    tia : DataFrame
        Time-integrated activity per VOI (:data:`~immunopet.analysis.dosimetry.TIA_COLUMNS`).
    residence : DataFrame
        Residence times per organ, patient and series
        (:data:`~immunopet.analysis.dosimetry.RESIDENCE_COLUMNS`).
    residence_summary : DataFrame
        :data:`RESIDENCE_SUMMARY_COLUMNS`.
    settings : KineticsSettings
    dosimetry : DosimetrySettings
    reference_series, comparison_series : str
        Tracer-only and predose (the plan's series).
    baselines : mapping of str to float, µL·g⁻¹·h⁻¹
        :data:`JAUW_NONSPECIFIC_KI`.
    min_pairs : int
    inputs : dict of str to int
        Patlak fits per plasma input (``"sampled"``, ``"image"``, ``""`` = none).
    notes : tuple of str
        What the reader of the numbers must know (``"kinetics: ..."``).
    """

    fits: pd.DataFrame
    points: pd.DataFrame
    summary: pd.DataFrame
    pairs: pd.DataFrame
    paired: pd.DataFrame
    flagged: pd.DataFrame
    flag_summary: pd.DataFrame
    tia: pd.DataFrame
    residence: pd.DataFrame
    residence_summary: pd.DataFrame
    settings: KineticsSettings
    dosimetry: DosimetrySettings
    reference_series: str
    comparison_series: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    baselines: Mapping[str, float] = field(default_factory=lambda: dict(JAUW_NONSPECIFIC_KI))
    min_pairs: int = MIN_PAIRS
    inputs: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_fitted(self) -> int:
        """Fits with a Ki."""
        return int(np.isfinite(pd.to_numeric(self.fits["ki_ul_per_g_per_h"])).sum())


# ---------------------------------------------------------------------------- helpers
def _organ_rank(voi: str) -> tuple[int, str]:
    if voi == LESIONS:
        return (len(ORGAN_ORDER) + 1, voi)
    return (ORGAN_ORDER.index(voi), voi) if voi in ORGAN_ORDER else (len(ORGAN_ORDER), voi)


def _series_rank(series: str, reference: str, comparison: str) -> tuple[int, str]:
    order = {reference: 0, comparison: 1}
    return (order.get(series, 2), series)


def _spread(values: np.ndarray) -> dict[str, float]:
    """Median, quartiles (numpy's linear rule = R type 7) and range; NaN when empty."""
    if values.size == 0:
        return dict.fromkeys(("median", "q1", "q3", "min", "max"), math.nan)
    q1, median, q3 = np.percentile(values, [25.0, 50.0, 75.0])
    return {
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _summary(
    fits: pd.DataFrame, settings: KineticsSettings, reference: str, comparison: str
) -> pd.DataFrame:
    if fits.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    frame = fits.assign(
        group=np.where(fits["kind"] == "lesion", LESIONS, fits["voi"].astype(str)),
        ki=pd.to_numeric(fits["ki_ul_per_g_per_h"], errors="coerce"),
        vt=pd.to_numeric(fits["vt_ml_per_g"], errors="coerce"),
        r_value=pd.to_numeric(fits["r"], errors="coerce"),
    )
    keys = sorted(
        {
            (str(k), str(g), str(s))
            for k, g, s in zip(frame["kind"], frame["group"], frame["series"], strict=True)
        },
        key=lambda t: (_organ_rank(t[1]), _series_rank(t[2], reference, comparison)),
    )
    rows = []
    for kind, group, series in keys:
        part = frame[(frame["group"] == group) & (frame["series"] == series)]
        ki = part["ki"].to_numpy(np.float64)
        vt = part["vt"].to_numpy(np.float64)
        fitted = np.isfinite(ki)
        r_values = part["r_value"].to_numpy(np.float64)[fitted]
        ki_stats = _spread(ki[fitted])
        vt_stats = _spread(vt[fitted & np.isfinite(vt)])
        baseline = JAUW_NONSPECIFIC_KI.get(group, math.nan) if kind == "organ" else math.nan
        ratio = ki_stats["median"] / baseline if math.isfinite(baseline) else math.nan
        rows.append(
            {
                "kind": kind,
                "voi": group,
                "series": series,
                "n_vois": len(part),
                "n_fitted": int(fitted.sum()),
                "n_low_r": int((~(r_values >= settings.min_r)).sum()),
                **{f"ki_{k}": v for k, v in ki_stats.items()},
                **{f"vt_{k}": v for k, v in vt_stats.items()},
                "jauw_ki": baseline,
                "ki_median_over_jauw": ratio,
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _paired(
    fits: pd.DataFrame, reference: str, comparison: str, min_pairs: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, TestResult]]:
    organs = fits[fits["kind"] == "organ"].assign(
        ki=pd.to_numeric(fits["ki_ul_per_g_per_h"], errors="coerce")
    )
    organs = organs[np.isfinite(organs["ki"].to_numpy(np.float64))]
    pair_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    tests: dict[str, TestResult] = {}
    present = sorted({str(v) for v in organs["voi"]}, key=_organ_rank)
    for voi in present:
        part = organs[organs["voi"] == voi]
        ref = dict(
            zip(
                part.loc[part["series"] == reference, "patient"],
                part.loc[part["series"] == reference, "ki"],
                strict=True,
            )
        )
        com = dict(
            zip(
                part.loc[part["series"] == comparison, "patient"],
                part.loc[part["series"] == comparison, "ki"],
                strict=True,
            )
        )
        patients = sorted(set(ref) & set(com))
        a = np.array([float(ref[p]) for p in patients])
        b = np.array([float(com[p]) for p in patients])
        pair_rows.extend(
            {"voi": voi, "patient": p, "ki_reference": x, "ki_comparison": y}
            for p, x, y in zip(patients, a, b, strict=True)
        )
        row: dict[str, Any] = {
            "voi": voi,
            "n_pairs": len(patients),
            "reference_series": reference,
            "comparison_series": comparison,
            "ki_median_reference": float(np.median(a)) if a.size else math.nan,
            "ki_median_comparison": float(np.median(b)) if b.size else math.nan,
            "median_difference": float(np.median(b - a)) if a.size else math.nan,
            "n_lower": int((b < a).sum()),
            "test": "",
            "statistic": math.nan,
            "p_value": math.nan,
            "method": "",
            "note": "",
        }
        if len(patients) < min_pairs:
            row["note"] = (
                f"too few pairs for the signed-rank test ({len(patients)} < {min_pairs}: "
                "with 5 or fewer no two-sided p can fall below 0.05)"
            )
        else:
            try:
                result = wilcoxon_signed_rank(b, a, labels=(comparison, reference))
            except ImmunoPETError as exc:
                row["note"] = f"signed-rank test not computed ({exc})"
            else:
                tests[voi] = result
                row.update(
                    test=result.test_name,
                    statistic=result.statistic,
                    p_value=result.p_value,
                    method=result.method,
                    note="; ".join(result.notes),
                )
        rows.append(row)
    return (
        pd.DataFrame(pair_rows, columns=list(PAIR_COLUMNS)),
        pd.DataFrame(rows, columns=list(PAIRED_COLUMNS)),
        tests,
    )


def _flagged(fits: pd.DataFrame) -> pd.DataFrame:
    fitted = np.isfinite(pd.to_numeric(fits["ki_ul_per_g_per_h"], errors="coerce"))
    chosen = (~fitted) | (fits["flag"].fillna("").astype(str) != "")
    out = fits[chosen].assign(fitted=fitted[chosen])
    return out.reindex(columns=list(FLAGGED_COLUMNS)).reset_index(drop=True)


def _flag_summary(flagged: pd.DataFrame) -> pd.DataFrame:
    counts: dict[tuple[str, str, bool], int] = {}
    for kind, fitted, flag in flagged[["kind", "fitted", "flag"]].itertuples(index=False):
        for reason in str(flag).split("; ") if str(flag) else ["(none)"]:
            key = (str(kind), reason, bool(fitted))
            counts[key] = counts.get(key, 0) + 1
    rows = [
        {"kind": k, "reason": r, "fitted": f, "n": n}
        for (k, r, f), n in sorted(
            counts.items(), key=lambda kv: (kv[0][0] != "organ", kv[0][2], -kv[1])
        )
    ]
    return pd.DataFrame(rows, columns=list(FLAG_SUMMARY_COLUMNS))


def _residence_summary(
    residence: pd.DataFrame, tia: pd.DataFrame, reference: str, comparison: str
) -> pd.DataFrame:
    if residence.empty:
        return pd.DataFrame(columns=list(RESIDENCE_SUMMARY_COLUMNS))
    tails = {
        (str(p), str(s), str(v)): float(t)
        for p, s, v, t in tia[["patient", "series", "voi", "tail_fraction"]].itertuples(index=False)
    }
    keys = sorted(
        {(str(o), str(s)) for o, s in zip(residence["organ"], residence["series"], strict=True)},
        key=lambda t: (_organ_rank(t[0]), _series_rank(t[1], reference, comparison)),
    )
    rows = []
    for organ, series in keys:
        part = residence[(residence["organ"] == organ) & (residence["series"] == series)]
        tau = pd.to_numeric(part["residence_time_h"]).to_numpy(np.float64)
        cumulated = pd.to_numeric(part["cumulated_activity_mbq_h"]).to_numpy(np.float64)
        tail = np.array([tails.get((str(p), series, organ), math.nan) for p in part["patient"]])
        rows.append(
            {
                "organ": organ,
                "source_organ": str(part["source_organ"].iloc[0]),
                "series": series,
                "n": len(part),
                "residence_time_h_median": float(np.median(tau)),
                "residence_time_h_min": float(tau.min()),
                "residence_time_h_max": float(tau.max()),
                "cumulated_activity_mbq_h_median": float(np.median(cumulated)),
                "tail_fraction_median": float(np.nanmedian(tail))
                if np.isfinite(tail).any()
                else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(RESIDENCE_SUMMARY_COLUMNS))


POOR_LESION_SHARE: Final = 0.2
"""Lesion Ki is called poor when more than this share of the lesion fits has r below the
limit or a Ki <= 0."""


def _lesion_quality(fits: pd.DataFrame, settings: KineticsSettings) -> list[str]:
    """A note when the lesion fits are poor (many with a low r or a Ki <= 0)."""
    lesions = fits[fits["kind"] == "lesion"]
    ki = pd.to_numeric(lesions["ki_ul_per_g_per_h"], errors="coerce").to_numpy(np.float64)
    r = pd.to_numeric(lesions["r"], errors="coerce").to_numpy(np.float64)
    fitted = np.isfinite(ki)
    n_fitted = int(fitted.sum())
    if n_fitted == 0:
        return []
    low_r = int((fitted & ~(r >= settings.min_r)).sum())
    not_positive = int((fitted & (ki <= 0)).sum())
    poor = int((fitted & (~(r >= settings.min_r) | (ki <= 0))).sum())
    if poor <= POOR_LESION_SHARE * n_fitted:
        return []
    return [
        f"kinetics: lesion Ki is poor on these data: of {n_fitted} lesion fits, {low_r} have "
        f"r < {settings.min_r:g} and {not_positive} a Ki <= 0 (small or invisible lesions are "
        "1 mL spheres of noise and blood); read lesion Ki with caution"
    ]


# ---------------------------------------------------------------------------- the part
def target_engagement(
    measurements: pd.DataFrame,
    scans: pd.DataFrame,
    *,
    blood: pd.DataFrame | None = None,
    reference_series: str = "tracer-only",
    comparison_series: str = "predose",
    settings: KineticsSettings | None = None,
    dosimetry: DosimetrySettings | None = None,
    min_pairs: int = MIN_PAIRS,
) -> TargetEngagement:
    """Patlak fits, their summaries and the time-integrated activity of a study.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The VOI measurements of the results store (SUVbw decay-corrected to injection).
    scans : pandas.DataFrame
        The scans table (``weight_kg``, ``injected_activity_bq`` per patient and series).
    blood : pandas.DataFrame, optional
        :func:`immunopet.analysis.blood.blood_activity` of the study's samples (the sampled
        plasma input; without it the image-derived input).
    reference_series, comparison_series : str
        Tracer-only and predose series (the analysis plan's).
    settings : KineticsSettings, optional
        Default :class:`~immunopet.analysis.kinetics.KineticsSettings` ().
    dosimetry : DosimetrySettings, optional
        Default :class:`~immunopet.analysis.dosimetry.DosimetrySettings` ().
    min_pairs : int
        Fewest pairs for the signed-rank test (:data:`MIN_PAIRS`).

    Returns
    -------
    TargetEngagement

    Raises
    ------
    InputError
        When the measurements lack a column the Patlak analysis needs. A problem of the
        time-integrated activity only (no weight or activity of a series) leaves its tables
        empty and says why in ``notes``.
    """
    settings = settings if settings is not None else KineticsSettings()
    dosimetry = dosimetry if dosimetry is not None else DosimetrySettings()
    fits, points = patlak_fits(measurements, blood=blood, scans=scans, settings=settings)
    pairs, paired, tests = _paired(fits, reference_series, comparison_series, min_pairs)
    notes: list[str] = []
    n_fitted = int(np.isfinite(pd.to_numeric(fits["ki_ul_per_g_per_h"])).sum())
    if n_fitted == 0 and not fits.empty:
        most = int(pd.to_numeric(fits["n_points"]).max())
        notes.append(
            f"kinetics: no Patlak fit: every VOI has fewer than {settings.min_points} time "
            f"points after one injection (at most {most}) or no plasma input"
        )
    notes.extend(_lesion_quality(fits, settings))
    try:
        tia = time_integrated_activity(measurements, scans, dosimetry)
        residence = residence_times(tia, dosimetry)
    except ImmunoPETError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"kinetics: time-integrated activity not computed ({text})")
        tia = pd.DataFrame(columns=list(TIA_COLUMNS))
        residence = pd.DataFrame(columns=list(RESIDENCE_COLUMNS))
    flagged = _flagged(fits)
    counted = fits["input"].astype(str).value_counts(sort=False)
    inputs = {str(k): int(v) for k, v in counted.items()}
    return TargetEngagement(
        fits=fits,
        points=points,
        summary=_summary(fits, settings, reference_series, comparison_series),
        pairs=pairs,
        paired=paired,
        flagged=flagged,
        flag_summary=_flag_summary(flagged),
        tia=tia,
        residence=residence,
        residence_summary=_residence_summary(residence, tia, reference_series, comparison_series),
        settings=settings,
        dosimetry=dosimetry,
        reference_series=reference_series,
        comparison_series=comparison_series,
        tests=tests,
        min_pairs=min_pairs,
        inputs=inputs,
        notes=tuple(notes),
    )


def kinetics_tables(part: TargetEngagement | None) -> dict[str, pd.DataFrame]:
    """The machine-readable tables of :func:`target_engagement` (see the module notes).

    Returns
    -------
    dict of str to DataFrame
        Empty when ``part`` is None.
    """
    if part is None:
        return {}
    return {
        "kinetics": part.fits.reset_index(drop=True),
        "time_integrated_activity": part.tia.reset_index(drop=True),
        "residence_times": part.residence.reset_index(drop=True),
        "kinetics_summary": part.summary.reset_index(drop=True),
        "kinetics_paired": part.paired.reset_index(drop=True),
        "kinetics_flagged": part.flagged.reset_index(drop=True),
        "kinetics_flag_summary": part.flag_summary.reset_index(drop=True),
        "patlak_points": part.points.reindex(columns=list(POINT_COLUMNS)).reset_index(drop=True),
        "residence_time_summary": part.residence_summary.reset_index(drop=True),
    }
