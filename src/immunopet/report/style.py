"""One look for every figure of the report: fonts, sizes, and the colours of series and organs.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through :mod:`matplotlib.pyplot`'s global state: no display is opened, nothing leaks between
figures, and drawing works in worker processes and on headless machines. The style is applied
with :func:`figure_style`, a :func:`matplotlib.rc_context` (the caller's own rcParams are
restored afterwards).

Colours are fixed per meaning so that a reader can compare figures: the tracer-only series is
always blue and the predose series always orange (Okabe-Ito palette, safe for colour-blind
readers); every organ has its own colour in the biodistribution and QC figures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "EXCLUDED_COLOUR",
    "GROUP_COLOURS",
    "LESION_COLOUR",
    "ORGAN_COLOURS",
    "ORGAN_LABELS",
    "PET_COLOURMAP",
    "PRINT_DPI",
    "RC_PARAMS",
    "SERIES_COLOURS",
    "SERIES_MARKERS",
    "figure_style",
    "new_figure",
    "organ_colour",
    "organ_label",
    "save_figure",
    "series_colour",
    "series_marker",
]

DPI: Final = 110
"""Resolution of the saved PNGs (dots per inch): a 7 x 4.5 in figure is 770 x 495 pixels."""

SERIES_COLOURS: Final = {"tracer-only": "#0072B2", "predose": "#E69F00"}
"""Series -> colour (Okabe-Ito blue and orange)."""

SERIES_MARKERS: Final = {"tracer-only": "o", "predose": "s"}
"""Series -> marker (a second cue besides colour)."""

_OTHER_SERIES: Final = ("#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

ORGAN_COLOURS: Final = {
    "blood_pool": "#D62728",
    "liver": "#8C564B",
    "spleen": "#9467BD",
    "kidney": "#FF7F0E",
    "lung": "#17BECF",
    "bone_marrow": "#BCBD22",
    "brain": "#7F7F7F",
}
"""Organ VOI name -> colour (the organs of :data:`~immunopet.analysis.biodistribution.
ORGAN_ORDER`)."""

ORGAN_LABELS: Final = {
    "blood_pool": "Blood pool",
    "liver": "Liver",
    "spleen": "Spleen",
    "kidney": "Kidney",
    "lung": "Lung",
    "bone_marrow": "Bone marrow",
    "brain": "Brain",
}
"""Organ VOI name -> label shown in figures."""

_OTHER_ORGANS: Final = ("#1F77B4", "#2CA02C", "#E377C2", "#AEC7E8", "#98DF8A", "#C5B0D5")

LESION_COLOUR: Final = "#00A651"
"""Lesions that enter the analysis (and lesion outlines in QC pages)."""

EXCLUDED_COLOUR: Final = "#D62728"
"""Lesions left out of the analysis by an exclusion."""

GROUP_COLOURS: Final = {"high": "#D55E00", "low": "#0072B2"}
"""Median-split groups of uptake -> colour (Kaplan-Meier curves)."""

PET_COLOURMAP: Final = "gray_r"
"""Colour map of PET maximum-intensity projections: white background, high SUV dark."""

RC_PARAMS: Final[dict[Any, Any]] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "lines.linewidth": 1.5,
    "lines.markersize": 5.0,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "image.interpolation": "nearest",
    "svg.fonttype": "none",
}
"""The matplotlib settings of every report figure."""


def _stable_pick(name: str, palette: tuple[str, ...]) -> str:
    """A colour chosen by a hash of the name: the same name gets the same colour everywhere."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return palette[digest[0] % len(palette)]


def series_colour(series: str) -> str:
    """Colour of a series (a fixed one for tracer-only and predose).

    Examples
    --------
    >>> series_colour("tracer-only"), series_colour("predose")
    ('#0072B2', '#E69F00')
    >>> series_colour("other") == series_colour("other")
    True
    """
    return SERIES_COLOURS.get(series) or _stable_pick(series, _OTHER_SERIES)


def series_marker(series: str) -> str:
    """Marker of a series (``"o"`` tracer-only, ``"s"`` predose, ``"^"`` others)."""
    return SERIES_MARKERS.get(series, "^")


def organ_colour(organ: str) -> str:
    """Colour of an organ VOI (a fixed one for the study's organs).

    Examples
    --------
    >>> organ_colour("spleen")
    '#9467BD'
    """
    return ORGAN_COLOURS.get(organ) or _stable_pick(organ, _OTHER_ORGANS)


def organ_label(organ: str) -> str:
    """Readable organ name (``"bone_marrow"`` -> ``"Bone marrow"``).

    Examples
    --------
    >>> organ_label("bone_marrow"), organ_label("thyroid_gland")
    ('Bone marrow', 'Thyroid gland')
    """
    return ORGAN_LABELS.get(organ) or organ.replace("_", " ").capitalize()


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply :data:`RC_PARAMS` for the duration of a ``with`` block."""
    import matplotlib as mpl  # here: the report's HTML uses this module's names, not matplotlib

    with mpl.rc_context(RC_PARAMS):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on the Agg canvas (no pyplot, no display).

    Parameters
    ----------
    width_in, height_in : float, inches
        Size; at :data:`DPI` the PNG has ``round(width_in * DPI)`` x ``round(height_in * DPI)``
        pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


PRINT_DPI: Final = 300
"""Resolution of the print copy of every figure (``<name>_300dpi.png``)."""


def save_figure(figure: Figure, path: str | Path, *, copies: bool = True) -> Path:
    """Save a figure as PNG at :data:`DPI`, and as SVG and a 300-dpi PNG beside it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : path-like
        The PNG shown in the report; its folder is created.
    copies : bool
        Also write ``<stem>.svg`` (vector; byte for byte the same for the same figure) and
        ``<stem>_300dpi.png`` (print) next to it.

    Returns
    -------
    Path
        The PNG written at :data:`DPI`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=DPI, format="png")
    if copies:
        import matplotlib as mpl

        # fixed element ids and no date: the same figure gives the same SVG on every run
        with mpl.rc_context({"svg.hashsalt": "immunopet"}):
            figure.savefig(target.with_suffix(".svg"), format="svg", metadata={"Date": None})
        figure.savefig(target.with_name(f"{target.stem}_300dpi.png"), dpi=PRINT_DPI, format="png")
    return target
