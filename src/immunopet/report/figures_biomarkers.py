"""Forest plot of the candidate biomarkers (the biomarker section).

Draws :class:`~immunopet.stats.results.BiomarkerComparison` as it is (split out of
:mod:`immunopet.report.figures`, which re-exports it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from immunopet.errors import InputError
from immunopet.report.style import figure_style, new_figure, save_figure, series_colour
from immunopet.stats.results import BiomarkerComparison

__all__ = ["plot_biomarkers"]


# ---------------------------------------------------------------------------- biomarkers
def plot_biomarkers(biomarkers: BiomarkerComparison, path: str | Path) -> Path:
    """Forest plot: AUC for response and Harrell's C for PFS, OS, each with its interval.

    Parameters
    ----------
    biomarkers : BiomarkerComparison
        :attr:`StudyAnalysis.biomarkers` (the rows of group ``"all"`` are drawn).
    path : path-like

    Returns
    -------
    Path
    """
    table = biomarkers.table
    missing = [c for c in ("group", "candidate", "auc") if c not in table.columns]
    if table.empty or missing:
        raise InputError("nothing to draw", tag="biomarkers", value=", ".join(missing) or "no rows")
    rows = table[table["group"].astype(str) == "all"].reset_index(drop=True)
    if rows.empty:
        raise InputError("nothing to draw", tag="biomarkers", value="no group 'all'")
    candidates = rows["candidate"].astype(str).tolist()
    y = np.arange(len(candidates))[::-1]
    panels = (
        ("auc", "AUC, response", "auc_lower", "auc_upper", "n_response"),
        ("c_pfs", "Harrell's C, PFS", "c_pfs_lower", "c_pfs_upper", "n_pfs"),
        ("c_os", "Harrell's C, OS", "c_os_lower", "c_os_upper", "n_os"),
    )
    with figure_style():
        figure = new_figure(9.0, 1.3 + 0.45 * len(candidates))
        axes = figure.subplots(1, 3, sharey=True)
        for ax, (column, title, low, high, n_column) in zip(axes, panels, strict=True):
            values = pd.to_numeric(rows.get(column, pd.Series(np.nan, index=rows.index)))
            values = values.to_numpy(dtype=float)
            if low is not None and high is not None and low in rows and high in rows:
                lower = pd.to_numeric(rows[low]).to_numpy(dtype=float)
                upper = pd.to_numeric(rows[high]).to_numpy(dtype=float)
                has = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(values)
                ax.hlines(y[has], lower[has], upper[has], color="black", lw=1.2)
            ax.scatter(
                values, y, marker="D", color=series_colour("tracer-only"), zorder=3, clip_on=False
            )
            ns = rows.get(n_column)
            for yi, value, n in zip(
                y, values, ns if ns is not None else [None] * len(y), strict=True
            ):
                text = "n.e." if not math.isfinite(value) else f"{value:.2f}"
                if n is not None and not pd.isna(n):
                    text += f" (n={int(n)})"
                ax.annotate(
                    text, (1.05, yi), xycoords=("axes fraction", "data"), fontsize=7, va="center"
                )
            ax.axvline(0.5, color="grey", ls="--", lw=0.8)
            ax.set_xlim(0.0, 1.0)
            ax.set_title(title)
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(y)
        axes[0].set_yticklabels(candidates)
        axes[0].set_ylim(-0.7, len(candidates) - 0.3)
        figure.subplots_adjust(left=0.24, right=0.93, wspace=0.45, top=0.82, bottom=0.12)
        figure.suptitle("Candidate biomarkers (0.5 = no discrimination)", fontsize=11)
        return save_figure(figure, path)
