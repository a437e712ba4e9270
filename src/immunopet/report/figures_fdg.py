"""Fig 5-style panels: FDG versus 89Zr, same lesion, same slice (the FDG section).

Draws the slice pairs a study run stored (:mod:`immunopet.study.fig5`,
``RESULTS_DIR/qc/fig5_<patient>_<lesion>.npz``): FDG on the left, 89Zr on the right, both on
the same extent in mm, each with its own colour bar (the image's unit, e.g. SUVbw) and the
lesion's outline on that scan. It reads no PET and computes nothing: the slices, outlines,
extents and the tops of the colour scales come from the stored file.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from immunopet.errors import ImmunoPETError
from immunopet.report.drawing import DrawJob
from immunopet.report.style import (
    LESION_COLOUR,
    PET_COLOURMAP,
    figure_style,
    new_figure,
    save_figure,
)
from immunopet.study.fig5 import FIG5_PREFIX, Fig5Slices, read_fig5_slices
from immunopet.study.qc import QC_DIR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FIG5_KEY_PREFIX", "draw_fig5_pair", "fig5_page_jobs", "fig5_pages"]

FIG5_KEY_PREFIX: Final = "fig5 "
"""Figure keys of the panels: ``"fig5 <patient> <lesion>"``."""


def _panel(
    ax: Axes, image: np.ndarray, outline: np.ndarray, pair: Fig5Slices, top: float, title: str
) -> None:
    shown = ax.imshow(
        image,
        cmap=PET_COLOURMAP,
        vmin=0.0,
        vmax=top,
        origin="upper",
        extent=pair.extent_mm,
        interpolation="nearest",
        aspect="equal",
    )
    mask = np.asarray(outline, dtype=np.float32)
    if min(mask.shape) >= 2 and mask.any():
        ax.contour(
            mask,
            levels=[0.5],
            colors=[LESION_COLOUR],
            linewidths=1.2,
            origin="upper",
            extent=pair.extent_mm,
        )
    ax.grid(False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (mm): patient right ← → left")
    colour_bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    colour_bar.set_label(pair.unit)


def draw_fig5_pair(pair: Fig5Slices, path: str | Path) -> Path:
    """One lesion's FDG (left) and 89Zr (right) axial slices, side by side.

    Parameters
    ----------
    pair : Fig5Slices
        The stored slices (:func:`immunopet.study.fig5.read_fig5_slices`).
    path : path-like
        The PNG to write.

    Returns
    -------
    Path
    """
    with figure_style():
        figure = new_figure(9.5, 4.2)
        figure.set_layout_engine("constrained")
        left, right = figure.subplots(1, 2)
        _panel(left, pair.fdg, pair.fdg_outline, pair, pair.fdg_display_max, "FDG")
        _panel(
            right,
            pair.zirconium,
            pair.zirconium_outline,
            pair,
            pair.zirconium_display_max,
            f"89Zr, {pair.hours:g} h",
        )
        left.set_ylabel("y (mm): anterior → posterior")
        figure.suptitle(
            f"{pair.patient} lesion {pair.lesion}: axial slice z = {pair.z_mm:g} mm",
            fontsize=10,
        )
    return save_figure(figure, path)


def _fig5_page(source: Path, path: Path) -> Path:
    """Draw one stored pair (in a worker process or here)."""
    return draw_fig5_pair(read_fig5_slices(source), path)


def fig5_page_jobs(results_dir: str | Path, outdir: str | Path) -> list[DrawJob]:
    """The Fig 5 panels to draw (see :func:`fig5_pages`), largest lesion first, as jobs for a
    :class:`~immunopet.report.drawing.FigureDrawer`."""
    folder = Path(results_dir) / QC_DIR
    if not folder.is_dir():
        return []
    pairs = []
    for source in sorted(folder.glob(f"{FIG5_PREFIX}*.npz")):
        try:
            pairs.append((source, read_fig5_slices(source)))
        except ImmunoPETError:
            continue
    pairs.sort(key=lambda item: -item[1].volume_ml)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for source, pair in pairs:
        key = f"{FIG5_KEY_PREFIX}{pair.patient} {pair.lesion}"
        draw = partial(_fig5_page, source)
        jobs.append(DrawJob(key, draw, out / (source.stem + ".png"), f"figure {key}"))
    return jobs


def fig5_pages(results_dir: str | Path, outdir: str | Path) -> dict[str, Path]:
    """Draw every stored Fig 5 pair of a results folder (here, one after another).

    Parameters
    ----------
    results_dir : path-like
        ``qc/fig5_*.npz`` holds the pairs a run stored (none when the study has no FDG scan).
    outdir : path-like
        Panels are written as ``fig5_<patient>_<lesion>.png``.

    Returns
    -------
    dict of str to Path
        ``"fig5 <patient> <lesion>"`` -> panel, largest lesion first (the stored volume);
        a file that cannot be read is left out.
    """
    return {job.key: job.draw(job.path) for job in fig5_page_jobs(results_dir, outdir)}
