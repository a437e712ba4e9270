"""The report's figures, drawn from a :class:`~immunopet.analysis.results.StudyAnalysis`.

Each ``plot_*`` function takes one part of the analysis and a PNG path, draws on its own
Agg figure (:mod:`immunopet.report.style`; no pyplot state, no display) and returns the path
written. A part without anything to draw raises :class:`~immunopet.errors.InputError`;
:func:`draw_all` skips such parts and returns the figures it could draw, keyed:

======================  ================================================================  ========
key                     what                                                              study
======================  ================================================================  ========
``biodistribution``     organ SUVmean +- SD vs hours after injection, a panel per series  Figure 2
``blood``               blood samples, %IA/L vs hours after injection per series          Figure 3
``lesion_uptake``       lesion SUVpeak per patient at the analysis time point             Figure 4
``uptake_by_response``  lesion SUVpeak by best overall response, medians, test p          Figure 6
``uptake_vs_cps``       per-patient median SUVpeak vs PD-L1 CPS, Spearman                 Figure 7
``survival_pfs``        Kaplan-Meier PFS by median split of uptake, numbers at risk
``survival_os``         the same for OS
``tumour_to_blood``     tumour-to-blood ratio per time point and series
``biomarkers``          forest plot: AUC for response (CI), Harrell's C for PFS and OS
``qc <scan id>``        coronal MIP with VOI outlines (one per scan given)
======================  ================================================================  ========

QC pages (:func:`qc_pages`, :func:`draw_qc_page`, :func:`qc_figure`) show a coronal
maximum-intensity projection of the SUV image in the radiological convention: the head at the
top, the patient's right on the viewer's left, pixels in their true millimetre proportions.
The study run computes those projections once per scan and stores them
(:mod:`immunopet.study.qc`); the pages only draw them.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from tqdm import tqdm

from immunopet.analysis.aggregates import PatientUptake
from immunopet.analysis.assemble import read_results
from immunopet.analysis.biodistribution import ORGAN_ORDER, SERIES_ORDER
from immunopet.analysis.clinical import BOR_CATEGORIES
from immunopet.analysis.lesions import TimePointChoice
from immunopet.analysis.results import SplitSurvival, StudyAnalysis
from immunopet.errors import ImmunoPETError, InputError
from immunopet.image import ImageVolume
from immunopet.report.drawing import DrawJob, FigureDrawer
from immunopet.report.figures_biomarkers import plot_biomarkers
from immunopet.report.figures_heterogeneity import plot_lesion_uptake_by_type
from immunopet.report.figures_kinetics import kinetics_figure_jobs
from immunopet.report.style import (
    EXCLUDED_COLOUR,
    GROUP_COLOURS,
    LESION_COLOUR,
    ORGAN_COLOURS,
    PET_COLOURMAP,
    figure_style,
    new_figure,
    organ_colour,
    organ_label,
    save_figure,
    series_colour,
    series_marker,
)
from immunopet.stats.results import TestResult
from immunopet.study.model import Study
from immunopet.study.qc import QC_DIR, QcImages, qc_file_name, qc_images, read_qc_images

if TYPE_CHECKING:  # matplotlib is imported where the figures are drawn (workers), not here
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

__all__ = [
    "FIGURE_KEYS",
    "draw_all",
    "draw_qc_page",
    "figure_jobs",
    "plot_biodistribution",
    "plot_biomarkers",
    "plot_blood",
    "plot_lesion_uptake",
    "plot_survival_split",
    "plot_tumour_to_blood",
    "plot_uptake_by_response",
    "plot_uptake_vs_cps",
    "qc_figure",
    "qc_page_job",
    "qc_page_jobs",
    "qc_pages",
]

_LOG = logging.getLogger(__name__)

FIGURE_KEYS: Final = (
    "biodistribution",
    "blood",
    "lesion_uptake",
    "uptake_by_response",
    "uptake_vs_tps",
    "uptake_vs_cps",
    "survival_pfs",
    "survival_os",
    "tumour_to_blood",
    "biomarkers",
    "heterogeneity",
)
"""Keys of the study figures of :func:`draw_all` under the default plan (QC pages follow as
``"qc <scan id>"``; each IHC marker of the plan draws ``uptake_vs_<column without _percent>``;
the kinetics figures :data:`~immunopet.report.figures_kinetics.KINETICS_FIGURE_KEYS` follow
when the analysis allows them)."""

_WIDE: Final = (9.0, 4.0)
_STANDARD: Final = (7.0, 4.5)
_MONTHS: Final = "months"


# ---------------------------------------------------------------------------- helpers
def _require(frame: pd.DataFrame | None, what: str, columns: Sequence[str]) -> pd.DataFrame:
    if frame is None or frame.empty:
        raise InputError("nothing to draw", tag=what, value="no rows", expected="a table with rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            "table lacks column(s) to draw",
            tag=what,
            value=", ".join(missing),
            expected="columns " + ", ".join(columns),
        )
    return frame


def _ordered_series(values: Sequence[str] | pd.Series) -> list[str]:
    present = {str(v) for v in values}
    return [s for s in SERIES_ORDER if s in present] + sorted(present - set(SERIES_ORDER))


def _p_text(p_value: float) -> str:
    if not math.isfinite(p_value):
        return "p not defined"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _spread(n: int, width: float = 0.25) -> np.ndarray:
    """Deterministic horizontal offsets for n dots of one column (no random jitter)."""
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-width, width, n)


def _metric_label(metric: str) -> str:
    return {"suv_peak": "SUVpeak", "suv_max": "SUVmax", "suv_mean": "SUVmean"}.get(metric, metric)


def _strip(
    ax: Axes,
    x: int,
    values: np.ndarray,
    *,
    width: float,
    label: str | None,
    median: float | None = None,
) -> None:
    """One column of lesion dots (sorted, spread evenly) with a bar at the given median."""
    values = np.sort(values[np.isfinite(values)])
    ax.scatter(
        x + _spread(len(values), width), values, color=LESION_COLOUR, edgecolor="black",
        linewidth=0.4, s=28, zorder=3, label=label,
    )  # fmt: skip
    if median is not None and math.isfinite(median):
        ax.hlines(median, x - 0.35, x + 0.35, color="black", lw=1.4, zorder=2)


def _hour_ticks(ax: Axes, hours: pd.Series) -> None:
    ticks = sorted(set(hours.astype(float)))
    ax.set_xticks(ticks, [f"{h:g}" for h in ticks])
    ax.set_xlabel("Hours after injection (nominal)")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "scan"


# ---------------------------------------------------------------------------- Figure 2
def plot_biodistribution(organ_uptake: pd.DataFrame, path: str | Path) -> Path:
    """Organ SUVmean (mean +- SD over patients) vs hours after injection, a panel per series.

    Parameters
    ----------
    organ_uptake : pandas.DataFrame
        :attr:`StudyAnalysis.organ_uptake` (``organ``, ``series``, ``nominal_hours``,
        ``mean``, ``sd``).
    path : path-like
        The PNG to write.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When the table is empty or lacks a column.
    """
    table = _require(
        organ_uptake, "organ_uptake", ("organ", "series", "nominal_hours", "mean", "sd")
    )
    series_list = _ordered_series(table["series"])
    present = set(table["organ"].astype(str))
    organs = [o for o in ORGAN_ORDER if o in present] + sorted(present - set(ORGAN_ORDER))
    with figure_style():
        figure = new_figure(4.0 * len(series_list) + 1.6, _WIDE[1])
        axes = figure.subplots(1, len(series_list), sharey=True, squeeze=False)[0]
        for ax, series in zip(axes, series_list, strict=True):
            rows = table[table["series"].astype(str) == series]
            for organ in organs:
                part = rows[rows["organ"].astype(str) == organ].sort_values("nominal_hours")
                if part.empty:
                    continue
                ax.errorbar(
                    part["nominal_hours"],
                    part["mean"],
                    yerr=part["sd"].fillna(0.0),
                    color=organ_colour(organ),
                    marker="o",
                    markersize=4,
                    capsize=2.5,
                    label=organ_label(organ),
                )
            _hour_ticks(ax, rows["nominal_hours"])
            cohort = str(rows["cohort"].iloc[0]) if "cohort" in rows.columns else ""
            ax.set_title(f"{series}\n{cohort}" if cohort else series, fontsize=9)
            ax.set_ylim(bottom=0.0)
        axes[0].set_ylabel("SUVmean (mean ± SD)")
        entries: dict[str, Any] = {}
        for ax in axes:
            entries.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        figure.legend(list(entries.values()), list(entries), loc="center right", title="Organ")
        figure.subplots_adjust(left=0.07, right=1.0 - 1.5 / figure.get_figwidth(), bottom=0.14)
        figure.suptitle("Biodistribution", fontsize=11)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- Figure 3
def plot_blood(
    blood: pd.DataFrame,
    path: str | Path,
    *,
    summary: pd.DataFrame | None = None,
    matrix: str = "plasma",
) -> Path:
    """Blood samples as %IA/L vs hours after injection: patients thin, cohort mean +- SD bold.

    Parameters
    ----------
    blood : pandas.DataFrame
        :attr:`StudyAnalysis.blood` (``patient``, ``series``, ``matrix``, ``hours_pi``,
        ``percent_ia_per_l``).
    path : path-like
    summary : pandas.DataFrame, optional
        :attr:`StudyAnalysis.blood_summary`: the mean +- SD of the biodistribution cohort per
        series and sample (drawn bold; without it only the patients' curves are drawn).
    matrix : {"plasma", "whole_blood"}
        The study shows plasma; whole blood is drawn when no plasma was counted.

    Returns
    -------
    Path
    """
    table = _require(
        blood, "blood", ("patient", "series", "matrix", "hours_pi", "percent_ia_per_l")
    )
    rows = table[table["matrix"] == matrix]
    if rows.empty:
        rows = table
        matrix = str(table["matrix"].iloc[0])
    rows = rows[np.isfinite(rows["percent_ia_per_l"].astype(float))]
    if rows.empty:
        raise InputError("nothing to draw", tag="blood", value="no finite %IA/L")
    with figure_style():
        figure = new_figure(*_STANDARD)
        ax = figure.add_subplot(1, 1, 1)
        for series in _ordered_series(rows["series"]):
            part = rows[rows["series"].astype(str) == series]
            colour = series_colour(series)
            for patient in sorted(set(part["patient"].astype(str))):
                one = part[part["patient"].astype(str) == patient].sort_values("hours_pi")
                ax.plot(one["hours_pi"], one["percent_ia_per_l"], color=colour, lw=0.7, alpha=0.35)
            if summary is None or summary.empty:
                continue
            means = summary[
                (summary["series"].astype(str) == series) & (summary["matrix"] == matrix)
            ].sort_values("hours_pi_mean")
            if means.empty:
                continue
            cohort = str(means["cohort"].iloc[0])
            label = f"{series} (mean ± SD; {cohort})"
            ax.errorbar(
                means["hours_pi_mean"], means["mean"], yerr=means["sd"].fillna(0.0),
                color=colour, marker=series_marker(series), capsize=3, lw=1.8, label=label,
            )  # fmt: skip
        ax.set_xlabel("Hours after injection")
        ax.set_ylabel(f"{matrix.replace('_', ' ').capitalize()} activity (%IA/L)")
        ax.set_ylim(bottom=0.0)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(loc="upper right")
        ax.set_title("Blood samples, decay-corrected to injection")
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- Figure 4
def _excluded_values(uptake: PatientUptake, measurements: pd.DataFrame) -> pd.DataFrame:
    """Values of lesions left out only by an exclusion (user or flagged), to mark them."""
    columns = ["patient", "lesion", "value", "reason"]
    excluded = uptake.excluded
    if excluded.empty or measurements.empty or uptake.metric not in measurements.columns:
        return pd.DataFrame(columns=columns)
    by_rule = excluded["rule"].astype(str).map(lambda r: set(r.split("; ")) <= {"user", "flagged"})
    chosen = excluded[by_rule & excluded["applied"].astype(bool)]
    rows = []
    lesion_rows = measurements[measurements["kind"].astype(str) == "lesion"]
    for patient, lesion, series, hours, reason in chosen[
        ["patient", "lesion", "series", "nominal_hours", "reason"]
    ].itertuples(index=False):
        match = lesion_rows[
            (lesion_rows["patient"].astype(str) == str(patient))
            & (lesion_rows["voi"].astype(str) == str(lesion))
            & (lesion_rows["series"].astype(str) == str(series))
            & (pd.to_numeric(lesion_rows["nominal_hours"]) == float(hours))
        ]
        if len(match):
            value = float(pd.to_numeric(match[uptake.metric]).iloc[0])
            rows.append(
                {
                    "patient": str(patient),
                    "lesion": str(lesion),
                    "value": value,
                    "reason": str(reason),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def plot_lesion_uptake(
    uptake: PatientUptake, path: str | Path, *, measurements: pd.DataFrame | None = None
) -> Path:
    """Lesion uptake per patient at the analysis time point (one column per patient).

    Parameters
    ----------
    uptake : PatientUptake
        :attr:`StudyAnalysis.uptake`.
    path : path-like
    measurements : pandas.DataFrame, optional
        The measurement table; when given, lesions left out by an exclusion are drawn as
        red crosses (their values are not in ``uptake``).

    Returns
    -------
    Path
    """
    lesions = _require(uptake.lesions, "uptake.lesions", ("patient", uptake.metric))
    excluded = (
        _excluded_values(uptake, measurements)
        if measurements is not None
        else pd.DataFrame(columns=["patient", "lesion", "value", "reason"])
    )
    patients = sorted(set(uptake.patients["patient"].astype(str)))
    fallback = {
        str(p): float(h)
        for p, h, f in uptake.patients[["patient", "nominal_hours", "fallback"]].itertuples(
            index=False
        )
        if bool(f)
    }
    label = _metric_label(uptake.metric)
    medians = {
        str(p): float(m) for p, m in uptake.patients[["patient", "median"]].itertuples(index=False)
    }
    with figure_style():
        figure = new_figure(max(5.0, 1.2 + 0.45 * len(patients)), _STANDARD[1])
        ax = figure.add_subplot(1, 1, 1)
        for x, patient in enumerate(patients):
            values = lesions.loc[lesions["patient"].astype(str) == patient, uptake.metric]
            _strip(
                ax, x, values.to_numpy(dtype=float), width=0.15,
                label="lesion" if x == 0 else None, median=medians.get(patient),
            )  # fmt: skip
            out = excluded[excluded["patient"] == patient]
            ax.scatter(
                np.full(len(out), x + 0.25), out["value"], marker="x", color=EXCLUDED_COLOUR,
                s=36, zorder=4, label="excluded" if len(excluded) and x == 0 else None,
            )  # fmt: skip
        ax.plot([], [], color="black", lw=1.4, label="patient median")
        ticks = [f"{p}\n({fallback[p]:g} h)" if p in fallback else p for p in patients]
        ax.set_xticks(range(len(patients)))
        ax.set_xticklabels(ticks, rotation=90 if len(patients) > 12 else 0)
        ax.set_xlim(-0.6, len(patients) - 0.4)
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel(label)
        ax.set_xlabel("Patient")
        ax.set_title(
            f"{label} per lesion, {uptake.series} {uptake.hours:g} h, "
            f"long axis ≥ {uptake.min_long_axis_mm:g} mm"
        )
        ax.legend(loc="upper right")
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.16, top=0.9)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- Figure 6
def plot_uptake_by_response(
    lesion_response: pd.DataFrame,
    path: str | Path,
    *,
    test: TestResult | None = None,
    metric: str = "suv_peak",
    column: str = "bor",
    order: Sequence[str] = BOR_CATEGORIES,
    metric_name: str | None = None,
) -> Path:
    """Lesion uptake by response category: dots per lesion, the test's group medians as bars.

    Parameters
    ----------
    lesion_response : pandas.DataFrame
        :attr:`StudyAnalysis.lesion_response` (the response column and the metric).
    path : path-like
    test : TestResult, optional
        The group test: its p-value goes into the title, its group medians
        (``extra["median <group>"]``) are drawn as bars.
    metric : str
        The value column.
    column : str
        The response column (``[analysis.response] column``).
    order : sequence of str
        Category order (the plan's categories; others follow alphabetically).
    metric_name : str, optional
        The metric the values are (``suv_peak`` ...) when ``metric`` names a generic column.

    Returns
    -------
    Path
    """
    table = _require(lesion_response, "lesion_response", (column, metric))
    present = set(table[column].astype(str))
    categories = [c for c in order if c in present]
    categories += sorted(present - set(categories))
    label = _metric_label(metric_name or metric)
    medians = {} if test is None else {
        g: float(test.extra[f"median {g}"]) for g in test.groups if f"median {g}" in test.extra
    }  # fmt: skip
    with figure_style():
        figure = new_figure(max(4.5, 1.5 + 1.0 * len(categories)), _STANDARD[1])
        ax = figure.add_subplot(1, 1, 1)
        for x, category in enumerate(categories):
            values = pd.to_numeric(table.loc[table[column].astype(str) == category, metric])
            values = values.to_numpy(dtype=float)
            median = medians.get(category)
            _strip(ax, x, values, width=0.25, label=None, median=median)
            if median is not None and math.isfinite(median):
                ax.annotate(f"{median:.1f}", (x + 0.37, median), va="center", fontsize=8)
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels(
            [f"{c}\n(n = {int((table[column].astype(str) == c).sum())})" for c in categories]
        )
        ax.set_xlim(-0.6, len(categories) - 0.2)
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel(
            "Best overall response (RECIST 1.1)" if column == "bor" else column.replace("_", " ")
        )
        ax.set_ylabel(f"{label} per lesion")
        title = f"{label} by response"
        if test is not None:
            title += f" ({test.test_name}, {_p_text(test.p_value)})"
        ax.set_title(title)
        figure.subplots_adjust(left=0.12, right=0.95, bottom=0.16, top=0.9)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- Figure 7
def plot_uptake_vs_cps(
    patients: pd.DataFrame,
    path: str | Path,
    *,
    test: TestResult | None = None,
    column: str = "cps_percent",
    marker_label: str = "PD-L1 CPS",
    uptake_column: str = "median",
    uptake_label: str = "Median SUVpeak of the patient's lesions",
) -> Path:
    """Per-patient lesion uptake against an IHC score (the study: the PD-L1 CPS).

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient: ``patient``, the uptake column and the marker column.
    path : path-like
    test : TestResult, optional
        The correlation, whose rho and p-value go into the title.
    column, marker_label : str
        The IHC column and its name.
    uptake_column, uptake_label : str
        The per-patient uptake column and its axis label.

    Returns
    -------
    Path
    """
    table = _require(patients, "patients", ("patient", uptake_column, column))
    x = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(table[uptake_column], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        raise InputError("nothing to draw", tag="patients", value=f"no {column} with uptake")
    names = table["patient"].astype(str).to_numpy()[keep]
    with figure_style():
        figure = new_figure(*_STANDARD)
        ax = figure.add_subplot(1, 1, 1)
        ax.scatter(x[keep], y[keep], color=LESION_COLOUR, edgecolor="black", s=34, zorder=3)
        for name, xi, yi in zip(names, x[keep], y[keep], strict=True):
            ax.annotate(name, (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=7)
        ax.set_xlabel(marker_label)
        ax.set_ylabel(uptake_label)
        ax.set_ylim(bottom=0.0)
        title = f"Uptake vs {marker_label}"
        if test is not None:
            title += f" (Spearman rho = {test.statistic:.2f}, {_p_text(test.p_value)})"
        ax.set_title(title)
        dropped = int((~keep).sum())
        if dropped:
            note = f"{dropped} patient(s) without {marker_label} or uptake not shown"
            ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", fontsize=7)
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- survival
def plot_survival_split(split: SplitSurvival, path: str | Path) -> Path:
    """Kaplan-Meier curves of the high and low uptake groups, numbers at risk below.

    Parameters
    ----------
    split : SplitSurvival
        One endpoint of :attr:`StudyAnalysis.split_survival`.
    path : path-like

    Returns
    -------
    Path
    """
    from lifelines.plotting import add_at_risk_counts

    _require(split.data, f"split_survival[{split.endpoint}]", ("group", "duration_days"))
    with figure_style():
        figure = new_figure(7.0, 5.0)
        ax = figure.add_axes((0.11, 0.32, 0.85, 0.58))
        fitters = []
        for group in ("high", "low"):
            curve = split.curves.get(group)
            if curve is None or curve.fitter is None:
                continue
            summary = split.summaries.get(group)
            median = summary.median if summary is not None else math.nan
            median_text = "NR" if not math.isfinite(median) else f"{median:.1f} mo"
            fitter: Any = curve.fitter
            fitter._label = f"{group} uptake (n = {curve.n}, median {median_text})"
            fitter.plot_survival_function(
                ax=ax,
                ci_show=False,
                show_censors=True,
                color=GROUP_COLOURS.get(group, "black"),
                censor_styles={"marker": "|", "ms": 8},
            )
            fitters.append(fitter)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlim(left=0.0)
        ax.set_xlabel(f"Time ({_MONTHS})")
        ax.set_ylabel(f"{split.endpoint} probability")
        title = (
            f"{split.endpoint} by uptake above/below {split.threshold:.2f} "
            f"({split.threshold_rule or 'median split'})"
        )
        if split.logrank is not None:
            title += f"\nlog-rank {_p_text(split.logrank.p_value)}"
        if split.cox is not None and not split.cox.table.empty:
            hr, lower, upper = split.cox.hazard_ratio("high_uptake")
            if all(math.isfinite(v) for v in (hr, lower, upper)):
                title += f", HR high vs low {hr:.2f} ({lower:.2f}–{upper:.2f})"
        ax.set_title(title)
        ax.legend(loc="best")
        if fitters:
            add_at_risk_counts(
                *fitters,
                ax=ax,
                fig=figure,
                rows_to_show=["At risk"],
                labels=[str(f._label).split(" ")[0] for f in fitters],
            )
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- ratios
def plot_tumour_to_blood(
    tumour_to_blood: pd.DataFrame,
    path: str | Path,
    *,
    time_point: TimePointChoice | None = None,
) -> Path:
    """Tumour-to-blood-pool ratio per time point and series; the recommended one ringed.

    Parameters
    ----------
    tumour_to_blood : pandas.DataFrame
        :attr:`StudyAnalysis.tumour_to_blood` (``series``, ``nominal_hours``, ``ratio``).
    path : path-like
    time_point : TimePointChoice, optional

    Returns
    -------
    Path
    """
    table = _require(tumour_to_blood, "tumour_to_blood", ("series", "nominal_hours", "ratio"))
    with figure_style():
        figure = new_figure(*_STANDARD)
        ax = figure.add_subplot(1, 1, 1)
        for series in _ordered_series(table["series"]):
            part = table[table["series"].astype(str) == series].sort_values("nominal_hours")
            colour, marker = series_colour(series), series_marker(series)
            ax.plot(part["nominal_hours"], part["ratio"], color=colour, marker=marker, label=series)
        if time_point is not None and math.isfinite(time_point.ratio):
            label = f"recommended: {time_point.nominal_hours:g} h"
            ax.scatter(
                [time_point.nominal_hours], [time_point.ratio], s=220, facecolor="none",
                edgecolor="black", lw=1.2, zorder=4, label=label,
            )  # fmt: skip
        _hour_ticks(ax, table["nominal_hours"])
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel("Mean lesion SUVpeak / blood pool SUVpeak")
        ax.set_title("Tumour-to-blood ratio")
        ax.legend(loc="best")
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- QC pages
def _mask_colour(name: str) -> str:
    organ = name.removeprefix("organ ").strip()
    return ORGAN_COLOURS.get(organ, LESION_COLOUR)


def _draw_qc_images(
    images: QcImages, title: str, *, vmax: float | None = None
) -> tuple[Figure, Axes]:
    """The QC figure of projected images and its image axes."""
    image, extent = images.coronal, images.extent_mm
    width_mm = extent[1] - extent[0]
    height_mm = extent[3] - extent[2]
    image_h = 5.4
    image_w = float(np.clip(image_h * width_mm / height_mm, 1.5, 9.0))
    left, gap, bar, legend = 0.75, 0.2, 0.15, 1.5
    fig_w = left + image_w + gap + bar + 0.55 + legend
    fig_h = image_h + 0.95
    top = vmax if vmax is not None else images.display_max
    top = top if top > 0 else 1.0
    with figure_style():
        figure = new_figure(fig_w, fig_h)
        ax = figure.add_axes((left / fig_w, 0.45 / fig_h, image_w / fig_w, image_h / fig_h))
        shown = ax.imshow(
            image,
            cmap=PET_COLOURMAP,
            vmin=0.0,
            vmax=top,
            origin="upper",
            extent=extent,
            interpolation="nearest",
            aspect="equal",
        )
        from matplotlib.lines import Line2D

        handles: dict[str, Line2D] = {}
        for name, projected in images.outlines.items():
            outline = np.asarray(projected, dtype=np.float32)
            colour = _mask_colour(name)
            if min(outline.shape) >= 2:
                ax.contour(
                    outline, levels=[0.5], colors=[colour], linewidths=0.9, origin="upper",
                    extent=extent,
                )  # fmt: skip
            lesion = colour == LESION_COLOUR
            if lesion:  # lesions share a colour: each is named beside its outline
                rows, cols = np.nonzero(outline > 0.5)
                x_mm = extent[0] + (cols.max() + 1) * (extent[1] - extent[0]) / outline.shape[1]
                z_mm = extent[3] - rows.min() * (extent[3] - extent[2]) / outline.shape[0]
                ax.annotate(name.removeprefix("lesion "), (x_mm, z_mm), fontsize=6, color=colour)
            label = "lesions" if lesion else name
            handles.setdefault(label, Line2D([], [], color=colour, lw=1.5, label=label))
        ax.grid(False)
        ax.set_xlabel("x (mm): patient right ← → left")
        ax.set_ylabel("z (mm): inferior → superior")
        ax.set_title(title, fontsize=9)
        cax = figure.add_axes(
            ((left + image_w + gap) / fig_w, 0.45 / fig_h, bar / fig_w, image_h / fig_h)
        )
        figure.colorbar(shown, cax=cax, label=f"{images.unit} (maximum-intensity projection)")
        if handles:
            figure.legend(
                handles=list(handles.values()),
                loc="upper right",
                bbox_to_anchor=(1.0, 1.0 - 0.45 / fig_h),
                fontsize=7,
                title="VOIs",
            )
    return figure, ax


def _draw_qc(
    volume: ImageVolume,
    masks: Mapping[str, np.ndarray],
    title: str,
    *,
    vmax: float | None = None,
) -> tuple[Figure, Axes]:
    """The QC figure of a volume and masks and its image axes (for tests)."""
    return _draw_qc_images(qc_images(volume, masks), title, vmax=vmax)


def draw_qc_page(
    images: QcImages, title: str, path: str | Path, *, vmax: float | None = None
) -> Path:
    """A QC page from a scan's stored QC images (:mod:`immunopet.study.qc`).

    Parameters
    ----------
    images : QcImages
        The coronal MIP of the SUV image, its extent (mm), colour-scale top and unit, and
        the VOIs' projected masks, each outlined in its organ's colour (lesions green).
    title : str
        Shown above the image (the scan id; no patient identifiers).
    path : path-like
    vmax : float, optional
        Top of the grey scale (SUV); default ``images.display_max``.

    Returns
    -------
    Path
    """
    figure, _ = _draw_qc_images(images, title, vmax=vmax)
    return save_figure(figure, path, copies=False)


def qc_figure(
    volume: ImageVolume,
    masks: Mapping[str, np.ndarray],
    title: str,
    path: str | Path,
    *,
    vmax: float | None = None,
) -> Path:
    """A QC page: coronal MIP of the SUV image with the VOI outlines and an SUV colour bar.

    A convenience over :func:`draw_qc_page` for a volume in memory: the projections come
    from :func:`immunopet.study.qc.qc_images` (the study run computes them once per scan).

    Parameters
    ----------
    volume : ImageVolume
        The SUV image ([z, y, x], LPS affine).
    masks : mapping of str to bool array
        VOI name -> mask on the volume's grid; each is projected (any voxel along the
        anterior-posterior axis) and outlined in its organ's colour (lesions green).
        Masks of another shape or empty are skipped.
    title : str
        Shown above the image (the scan id; no patient identifiers).
    path : path-like
    vmax : float, optional
        Top of the grey scale (SUV); default the 99.5th percentile of the projection.

    Returns
    -------
    Path

    Notes
    -----
    The projection runs along the array axis closest to the LPS anterior-posterior axis. The
    image is shown with the head at the top (whatever the slice order of the array: the
    sign of the affine's z step decides) and the patient's right on the viewer's left, in
    millimetres (``extent`` from the affine), so the pixel aspect is the voxel aspect.
    """
    return draw_qc_page(qc_images(volume, masks), title, path, vmax=vmax)


def qc_page_jobs(
    results_dir: str | Path,
    study: Study | None,
    outdir: str | Path,
    *,
    max_scans: int | None = None,
) -> list[DrawJob]:
    """The QC pages to draw (see :func:`qc_pages`), as jobs for a :class:`FigureDrawer`."""
    results = Path(results_dir)
    scans = read_results(results).get("scans", pd.DataFrame(columns=["scan_id"]))
    done = [str(scan_id) for scan_id in scans["scan_id"]] if "scan_id" in scans.columns else []
    if study is not None:
        processed = set(done)
        done = [ref.scan_id for ref in study.scans() if ref.scan_id in processed]
    if max_scans is not None:
        done = done[: max(0, max_scans)]
    return [qc_page_job(results, scan_id, outdir) for scan_id in done]


def qc_page_job(results_dir: str | Path, scan_id: str, outdir: str | Path) -> DrawJob:
    """The QC page of one scan (its QC images stored in ``results_dir``), as a job."""
    return DrawJob(
        key=f"qc {scan_id}",
        draw=partial(_qc_page, Path(results_dir) / QC_DIR / qc_file_name(scan_id), scan_id),
        path=Path(outdir) / _qc_file(scan_id),
        what=f"QC page of {scan_id}",
        tolerant=True,
    )


def qc_pages(
    results_dir: str | Path,
    study: Study | None,
    outdir: str | Path,
    *,
    max_scans: int | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> dict[str, Path]:
    """One QC page per processed scan, drawn from the QC images the run stored.

    Parameters
    ----------
    results_dir : path-like
        The results folder: its ``scans`` table says which scans were processed, and
        ``qc/<scan>.npz`` holds each one's images (:mod:`immunopet.study.qc`). No PET is
        read and no SUV derived here.
    study : Study, optional
        For the order of the pages (the manifest's); default the scans table's order.
    outdir : path-like
        Pages are written as ``qc_<scan id>.png``.
    max_scans : int, optional
        Draw at most this many.
    progress : bool
        A tqdm progress bar over scans.
    workers : int, optional
        Pages drawn in this many processes at once (default min(2, CPUs); 1 = here, one by
        one; :class:`~immunopet.report.drawing.FigureDrawer`). The pages are the same
        whatever the number.

    Returns
    -------
    dict of str to Path
        ``"qc <scan id>"`` -> page. A scan without stored QC images (results of an older
        version: run again) is skipped (logged).
    """
    jobs = qc_page_jobs(results_dir, study, outdir, max_scans=max_scans)
    with FigureDrawer(_qc_workers(workers, len(jobs)), progress=progress) as drawer:
        drawer.add(jobs)
        return drawer.finish()


def _qc_workers(workers: int | None, n_jobs: int) -> int:
    """Processes for ``n_jobs`` QC pages: ``workers``, by default min(2, CPUs), at most n_jobs."""
    wanted = workers if workers is not None else min(2, os.cpu_count() or 1)
    return max(1, min(wanted, n_jobs))


def _qc_page(source: Path, scan_id: str, path: Path) -> Path:
    """One QC page from its stored images (in a worker process or here)."""
    if not source.is_file():
        raise InputError("no QC images stored for this scan (run the study again to store them)")
    return draw_qc_page(read_qc_images(source), f"{scan_id} (coronal MIP)", path)


def _qc_file(scan_id: str) -> str:
    return f"qc_{_safe_name(scan_id)}.png"


# ---------------------------------------------------------------------------- all of them
def _marker_figures(analysis: StudyAnalysis) -> list[tuple[str, Callable[[Path], Path]]]:
    """One scatter per IHC marker of the plan with values (the study: CPS)."""
    patients = analysis.patient_clinical
    if patients is None:
        return []
    plan = analysis.plan
    aggregate = plan.patient_aggregate.replace("_", " ")
    uptake_label = f"{aggregate.capitalize()} {_metric_label(plan.uptake_metric)} of the lesions"
    jobs: list[tuple[str, Callable[[Path], Path]]] = []
    for marker in plan.ihc:
        if marker.column not in patients.columns:
            continue
        key = f"uptake_vs_{marker.column.removesuffix('_percent')}"
        draw = partial(
            plot_uptake_vs_cps,
            patients,
            test=analysis.tests.get(analysis.test_roles.get(f"ihc-rank:{marker.column}", "")),
            column=marker.column,
            marker_label=marker.label,
            uptake_column="uptake",
            uptake_label=uptake_label,
        )
        jobs.append((_safe_name(key), draw))
    return jobs


def figure_jobs(analysis: StudyAnalysis, outdir: str | Path) -> list[DrawJob]:
    """The study figures the analysis allows (see :func:`draw_all`), as jobs for a
    :class:`~immunopet.report.drawing.FigureDrawer`, in the report's order."""
    out = Path(outdir)
    a = analysis
    jobs: list[tuple[str, Callable[[Path], Path]]] = []
    if a.organ_uptake is not None:
        jobs.append(("biodistribution", partial(plot_biodistribution, a.organ_uptake)))
    if a.blood is not None:
        jobs.append(("blood", partial(plot_blood, a.blood, summary=a.blood_summary)))
    if a.uptake is not None:
        draw = partial(plot_lesion_uptake, a.uptake, measurements=a.measurements)
        jobs.append(("lesion_uptake", draw))
    if a.lesion_response is not None:
        draw = partial(
            plot_uptake_by_response,
            a.lesion_response,
            test=a.tests.get(a.test_roles.get("response", "")),
            metric="value",
            metric_name=a.plan.uptake_metric,
            column=a.plan.response.column,
            order=a.plan.response.categories,
        )
        jobs.append(("uptake_by_response", draw))
    jobs += _marker_figures(a)
    for endpoint, split in a.split_survival.items():
        jobs.append((f"survival_{endpoint.lower()}", partial(plot_survival_split, split)))
    if a.tumour_to_blood is not None:
        draw = partial(plot_tumour_to_blood, a.tumour_to_blood, time_point=a.time_point)
        jobs.append(("tumour_to_blood", draw))
    if a.biomarkers is not None:
        jobs.append(("biomarkers", partial(plot_biomarkers, a.biomarkers)))
    if a.heterogeneity is not None:
        jobs.append(("heterogeneity", partial(plot_lesion_uptake_by_type, a.heterogeneity)))
    drawn = [DrawJob(key, draw, out / f"{key}.png", f"figure {key}") for key, draw in jobs]
    return drawn + kinetics_figure_jobs(a, out)  # patlak, ki_baselines, residence


def draw_all(
    analysis: StudyAnalysis,
    outdir: str | Path,
    *,
    pet_images: Mapping[str, tuple[ImageVolume, Mapping[str, np.ndarray]]] | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Draw every figure the analysis allows, here, one after another.

    Parameters
    ----------
    analysis : StudyAnalysis
    outdir : path-like
        Created if needed; files ``<key>.png`` and ``qc_<scan id>.png``.
    pet_images : mapping of scan id to (ImageVolume, masks), optional
        SUV volumes with their VOI masks, one QC page each (:func:`qc_pages` draws them
        from the QC images a study run stored).
    progress : bool
        A tqdm progress bar over the figures.

    Returns
    -------
    dict of str to Path
        Keys of :data:`FIGURE_KEYS` (those drawn) and ``"qc <scan id>"``. A figure whose part
        is missing is left out; one that fails is left out and logged.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = figure_jobs(analysis, out)
    for scan_id, (volume, masks) in (pet_images or {}).items():
        title = f"{scan_id} (coronal MIP)"
        draw = partial(qc_figure, volume, masks, title)
        jobs.append(DrawJob(f"qc {scan_id}", draw, out / _qc_file(scan_id), f"figure qc {scan_id}"))

    drawn: dict[str, Path] = {}
    for job in tqdm(jobs, desc="figures", unit="figure", disable=not progress):
        try:
            drawn[job.key] = job.draw(job.path)
        except ImmunoPETError as exc:  # a figure its data do not allow; a bug propagates
            _LOG.warning("%s not drawn: %s", job.what, exc)
    return drawn
