"""Figures of target engagement (Patlak) and time-integrated activity.

They draw :class:`~immunopet.analysis.target_engagement.TargetEngagement` as it is and
compute nothing: the Patlak points and their fitted lines, the medians, ranges and baselines
all come from the analysis.

=================  ========================================================================
key                what
=================  ========================================================================
``patlak``         Patlak plot per organ: C_T/C_p against the normalised time
                   (integral of C_p / C_p), every patient and series with its fitted line
``ki_baselines``   Ki per organ (and the lesions pooled) by series, patients' values, the
                   median, the same patient joined across series, the non-specific baseline
                   of Jauw et al. (log scale)
``residence``      residence time per organ by series: median (bar), range and patients
                   (log scale)
=================  ========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from immunopet.analysis.results import StudyAnalysis
from immunopet.analysis.target_engagement import LESIONS, TargetEngagement
from immunopet.errors import InputError
from immunopet.report.drawing import DrawJob
from immunopet.report.style import (
    LESION_COLOUR,
    figure_style,
    new_figure,
    organ_label,
    save_figure,
    series_colour,
    series_marker,
)

if TYPE_CHECKING:
    from matplotlib.artist import Artist

__all__ = [
    "KINETICS_FIGURE_KEYS",
    "kinetics_figure_jobs",
    "plot_ki_baselines",
    "plot_patlak",
    "plot_residence_times",
]

KINETICS_FIGURE_KEYS: Final = ("patlak", "ki_baselines", "residence")
"""Keys of the figures of :func:`kinetics_figure_jobs`."""

_BASELINE_COLOUR: Final = "#444444"


def _series_list(part: TargetEngagement, present: set[str]) -> list[str]:
    first = [s for s in (part.reference_series, part.comparison_series) if s in present]
    return first + sorted(present - set(first))


def _label(voi: str) -> str:
    return "Lesions" if voi == LESIONS else organ_label(voi)


def _nothing(what: str) -> InputError:
    return InputError("nothing to draw", tag=what, value="no fitted rows", expected="a fit")


# ---------------------------------------------------------------------------- Patlak plots
def plot_patlak(part: TargetEngagement, path: str | Path) -> Path:
    """Patlak plots of the organs with at least one fit, one panel per organ.

    Parameters
    ----------
    part : TargetEngagement
        ``points`` (x_h, y, y_fit per VOI and scan) and ``summary`` (organ order).
    path : path-like
        The PNG to write.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When no organ has a fitted line.
    """
    points = part.points[part.points["kind"].astype(str) == "organ"]
    fitted = points[np.isfinite(pd.to_numeric(points["y_fit"], errors="coerce"))]
    if fitted.empty:
        raise _nothing("patlak")
    order = [str(v) for v in part.summary["voi"] if str(v) in set(fitted["voi"].astype(str))]
    organs = list(dict.fromkeys(order))
    series_all = _series_list(part, {str(s) for s in points["series"]})
    columns = min(3, len(organs))
    rows = math.ceil(len(organs) / columns)
    with figure_style():
        figure = new_figure(3.3 * columns + 0.4, 2.7 * rows + 0.9)
        axes = figure.subplots(rows, columns, squeeze=False)
        for index, organ in enumerate(organs):
            ax = axes[index // columns][index % columns]
            own = points[points["voi"].astype(str) == organ]
            for (patient, series), voi_points in _by_patient_series(own):
                colour = series_colour(series)
                line = voi_points[np.isfinite(pd.to_numeric(voi_points["y_fit"]))]
                filled = not line.empty
                ax.scatter(
                    voi_points["x_h"], voi_points["y"], s=22, zorder=3,
                    marker=series_marker(series), edgecolor=colour, linewidth=1.0,
                    facecolor=colour if filled else "none", alpha=1.0 if filled else 0.45,
                )  # fmt: skip
                if filled:
                    ax.plot(line["x_h"], line["y_fit"], color=colour, lw=1.0, alpha=0.8)
                    last = line.iloc[-1]
                    ax.annotate(
                        patient, (float(last["x_h"]), float(last["y_fit"])), fontsize=6,
                        color=colour, xytext=(3, 0), textcoords="offset points", va="center",
                    )  # fmt: skip
            ax.set_title(_label(organ), fontsize=9)
            ax.set_xlim(left=0.0)
            ax.set_ylim(bottom=0.0)
            if index % columns == 0:
                ax.set_ylabel("C$_T$ / C$_p$ (mL/mL)")
            if index // columns == rows - 1:
                ax.set_xlabel("$\\int_0^t$C$_p$ d$\\tau$ / C$_p$(t) (h)")
        for index in range(len(organs), rows * columns):
            axes[index // columns][index % columns].set_visible(False)
        handles = [
            axes[0][0].scatter(
                [], [], marker=series_marker(s), color=series_colour(s), label=s, s=22
            )
            for s in series_all
        ]
        figure.legend(handles=handles, loc="upper right", ncols=len(handles), fontsize=8)
        figure.suptitle("Patlak plots (slope = Ki, intercept = VT; open: not fitted)", fontsize=10)
        figure.tight_layout(rect=(0.0, 0.0, 1.0, 0.94))
        return save_figure(figure, path)


def _by_patient_series(points: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """The points of each patient and series (in the analysis' order: patient, series)."""
    keys = list(
        dict.fromkeys(zip(points["patient"].astype(str), points["series"].astype(str), strict=True))
    )
    patient = points["patient"].astype(str)
    series = points["series"].astype(str)
    return [(key, points[(patient == key[0]) & (series == key[1])]) for key in keys]


# ---------------------------------------------------------------------------- Ki vs baselines
def plot_ki_baselines(part: TargetEngagement, path: str | Path) -> Path:
    """Ki per organ (and the lesions pooled) by series against the non-specific baselines.

    Parameters
    ----------
    part : TargetEngagement
        ``fits`` (each VOI's Ki), ``summary`` (medians, order, baselines) and ``pairs``.
    path : path-like

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When no VOI has a Ki.
    """
    summary = part.summary[pd.to_numeric(part.summary["n_fitted"]) > 0]
    if summary.empty:
        raise _nothing("ki_baselines")
    groups = list(dict.fromkeys(str(v) for v in summary["voi"]))
    series_all = _series_list(part, {str(s) for s in summary["series"]})
    offsets = dict(
        zip(
            series_all,
            np.linspace(-0.2, 0.2, len(series_all)) if len(series_all) > 1 else [0.0],
            strict=True,
        )
    )
    fits = part.fits.assign(
        group=np.where(
            part.fits["kind"].astype(str) == "lesion", LESIONS, part.fits["voi"].astype(str)
        ),
        ki=pd.to_numeric(part.fits["ki_ul_per_g_per_h"], errors="coerce"),
    )
    fits = fits[np.isfinite(fits["ki"]) & (fits["ki"] > 0)]
    with figure_style():
        figure = new_figure(max(5.5, 1.1 * len(groups) + 2.0), 4.2)
        ax = figure.subplots()
        place: dict[tuple[str, str, str], tuple[float, float]] = {}
        for x, group in enumerate(groups):
            for series in series_all:
                own = fits[(fits["group"] == group) & (fits["series"].astype(str) == series)]
                n = len(own)
                spread = np.linspace(-0.07, 0.07, n) if n > 1 else np.zeros(n)
                xs = x + offsets[series] + spread
                colour = LESION_COLOUR if group == LESIONS else series_colour(series)
                ax.scatter(
                    xs, own["ki"], s=16, marker=series_marker(series), color=colour,
                    edgecolor="black", linewidth=0.3, zorder=3, alpha=0.85,
                )  # fmt: skip
                for xi, patient, ki in zip(xs, own["patient"].astype(str), own["ki"], strict=True):
                    place[(group, series, patient)] = (float(xi), float(ki))
                row = summary[(summary["voi"].astype(str) == group) & (summary["series"] == series)]
                if not row.empty and math.isfinite(float(row["ki_median"].iloc[0])):
                    ax.hlines(
                        float(row["ki_median"].iloc[0]), x + offsets[series] - 0.14,
                        x + offsets[series] + 0.14, color=series_colour(series), lw=2.0, zorder=4,
                    )  # fmt: skip
            baseline = part.baselines.get(group)
            if baseline is not None:
                ax.hlines(
                    baseline, x - 0.42, x + 0.42, color=_BASELINE_COLOUR, lw=1.2,
                    linestyles="dashed", zorder=2,
                )  # fmt: skip
        for voi, patient in zip(
            part.pairs["voi"].astype(str), part.pairs["patient"].astype(str), strict=True
        ):
            ends = [
                place.get((voi, s, patient))
                for s in (part.reference_series, part.comparison_series)
            ]
            if ends[0] is not None and ends[1] is not None:
                ax.plot(
                    [ends[0][0], ends[1][0]], [ends[0][1], ends[1][1]], color="#999999",
                    lw=0.6, zorder=1,
                )  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)), [_label(g) for g in groups], rotation=20)
        ax.set_ylabel("Ki (µL·g⁻¹·h⁻¹, log scale)")
        from matplotlib.lines import Line2D

        handles: list[Artist] = [
            ax.scatter([], [], marker=series_marker(s), color=series_colour(s), label=s, s=16)
            for s in series_all
        ]
        if LESIONS in groups:  # lesion points keep the lesion colour; the marker gives the series
            handles.append(
                ax.scatter([], [], marker="o", color=LESION_COLOUR, label="lesions", s=16)
            )
        handles += [
            Line2D([], [], color="black", lw=2.0, label="median"),
            Line2D([], [], color=_BASELINE_COLOUR, lw=1.2, ls="--",
                   label="non-specific (Jauw 2019)"),
        ]  # fmt: skip
        ax.legend(handles=handles, fontsize=7, loc="best")
        ax.set_title("Patlak Ki by organ and series (grey: same patient)", fontsize=10)
        figure.tight_layout()
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- residence
def plot_residence_times(part: TargetEngagement, path: str | Path) -> Path:
    """Residence time per organ by series: median bar, range line and patients' values.

    Parameters
    ----------
    part : TargetEngagement
        ``residence_summary`` (median, min, max) and ``residence`` (per patient).
    path : path-like

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When there are no residence times.
    """
    summary = part.residence_summary
    if summary.empty:
        raise _nothing("residence")
    organs = list(dict.fromkeys(str(o) for o in summary["organ"]))
    series_all = _series_list(part, {str(s) for s in summary["series"]})
    width = 0.8 / len(series_all)
    with figure_style():
        figure = new_figure(max(5.5, 1.0 * len(organs) + 2.0), 4.0)
        ax = figure.subplots()
        for k, series in enumerate(series_all):
            shift = (k - (len(series_all) - 1) / 2) * width
            rows = summary[summary["series"].astype(str) == series]
            xs = [organs.index(str(o)) + shift for o in rows["organ"]]
            ax.bar(
                xs, rows["residence_time_h_median"], width=width * 0.9,
                color=series_colour(series), alpha=0.75, label=f"{series} (median)",
            )  # fmt: skip
            ax.vlines(
                xs, rows["residence_time_h_min"], rows["residence_time_h_max"],
                color="black", lw=1.0,
            )  # fmt: skip
            own = part.residence[part.residence["series"].astype(str) == series]
            px = [organs.index(str(o)) + shift for o in own["organ"]]
            ax.scatter(px, own["residence_time_h"], s=9, color="black", zorder=3)
        ax.set_yscale("log")
        ax.set_xticks(range(len(organs)), [organ_label(o) for o in organs], rotation=20)
        ax.set_ylabel("Residence time (h = MBq·h/MBq, log scale)")
        ax.legend(fontsize=7, loc="best")
        ax.set_title(
            "Residence time per organ (reference organ masses; line: range; dots: patients)",
            fontsize=9,
        )
        figure.tight_layout()
        return save_figure(figure, path)


# ---------------------------------------------------------------------------- jobs
def kinetics_figure_jobs(analysis: StudyAnalysis, outdir: str | Path) -> list[DrawJob]:
    """The kinetics figures the analysis allows, as jobs for a
    :class:`~immunopet.report.drawing.FigureDrawer` (none without a target-engagement part;
    the Patlak and Ki figures only with at least one fit)."""
    part = analysis.target_engagement
    if part is None:
        return []
    out = Path(outdir)
    jobs: list[tuple[str, Callable[[Path], Path]]] = []
    if part.n_fitted > 0:
        jobs.append(("patlak", partial(plot_patlak, part)))
        jobs.append(("ki_baselines", partial(plot_ki_baselines, part)))
    if not part.residence_summary.empty:
        jobs.append(("residence", partial(plot_residence_times, part)))
    return [DrawJob(key, draw, out / f"{key}.png", f"figure {key}") for key, draw in jobs]
