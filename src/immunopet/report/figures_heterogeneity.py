"""Figure of lesion uptake by tumour type and patient (the heterogeneity section).

Draws :class:`~immunopet.analysis.heterogeneity.UptakeHeterogeneity` as it is: one column of
points per patient (one point per lesion, log scale), the patient's median as a bar, patients
grouped by tumour type in the analysis' order, and the variance shares of the mixed model in
the title. It computes nothing: the order, the patient medians and the shares come from the
analysis.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from immunopet.analysis.heterogeneity import UptakeHeterogeneity
from immunopet.errors import InputError
from immunopet.report.style import figure_style, new_figure, save_figure

__all__ = ["plot_lesion_uptake_by_type"]

_TYPE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_METRIC_LABELS = {"suv_max": "SUVmax", "suv_peak": "SUVpeak", "suv_mean": "SUVmean"}


def plot_lesion_uptake_by_type(heterogeneity: UptakeHeterogeneity, path: str | Path) -> Path:
    """Lesion uptake per patient, patients grouped by tumour type (log scale).

    Parameters
    ----------
    heterogeneity : UptakeHeterogeneity
        ``lesions`` (patient, tumour_type, value; in drawing order) and ``components``.
    path : path-like
        The PNG to write.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When there is no lesion to draw.
    """
    lesions = heterogeneity.lesions
    if lesions.empty:
        raise InputError("nothing to draw", tag="heterogeneity", value="no lesions")
    patients = list(dict.fromkeys(lesions["patient"].astype(str)))
    types = list(dict.fromkeys(lesions["tumour_type"].astype(str)))
    position = {p: i for i, p in enumerate(patients)}
    metric = _METRIC_LABELS.get(heterogeneity.metric, heterogeneity.metric)
    shares = heterogeneity.components.table.set_index("level")["share"]
    parts = [
        f"{label} {100 * float(shares[level]):.0f}%"
        for level, label in (
            ("tumour_type", "tumour type"),
            ("patient", "patient"),
            ("lesion", "lesion"),
        )
        if level in shares.index
    ]
    with figure_style():
        figure = new_figure(max(6.0, 0.28 * len(patients) + 2.0), 3.8)
        ax = figure.add_subplot(1, 1, 1)
        for t_index, kind in enumerate(types):
            colour = _TYPE_COLOURS[t_index % len(_TYPE_COLOURS)]
            rows = lesions[lesions["tumour_type"].astype(str) == kind]
            for patient in dict.fromkeys(rows["patient"].astype(str)):
                own = rows[rows["patient"].astype(str) == patient]
                xi = position[patient]
                offsets = [((i % 5) - 2) * 0.06 for i in range(len(own))]
                ax.scatter(
                    [xi + o for o in offsets],
                    own["value"].to_numpy(dtype=float),
                    s=14,
                    color=colour,
                    alpha=0.8,
                    zorder=3,
                )
                ax.hlines(
                    float(own["patient_median"].iloc[0]),
                    xi - 0.3,
                    xi + 0.3,
                    color="black",
                    lw=1.2,
                    zorder=4,
                )
            ax.scatter([], [], s=14, color=colour, label=f"{kind} (n={rows['patient'].nunique()})")
            ends = [position[p] for p in pd.unique(rows["patient"].astype(str))]
            if t_index > 0:
                ax.axvline(min(ends) - 0.5, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(patients)))
        ax.set_xticklabels(patients, rotation=90, fontsize=7)
        ax.set_xlim(-0.7, len(patients) - 0.3)
        ax.set_ylabel(f"Lesion {metric} ({heterogeneity.hours:g} h)")
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        title = "Lesion uptake by tumour type and patient (bar = patient median)"
        if parts:
            title += "\nvariance of log uptake: " + ", ".join(parts)
        ax.set_title(title, fontsize=9)
        figure.subplots_adjust(left=0.1, right=0.98, top=0.84, bottom=0.2)
        return save_figure(figure, path)
