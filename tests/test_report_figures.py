"""Report figures: every figure is a PNG of the expected pixel size; QC pages put a hot
sphere where the geometry says (head up, patient's right on the viewer's left, mm aspect).

Pixel sizes are width/height in inches x 110 dpi, the sizes the functions document. The
hand-made analysis and the synthetic trial come from ``test_analysis_assemble.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from immunopet.analysis.results import StudyAnalysis
from immunopet.errors import InputError
from immunopet.image import ImageVolume
from immunopet.report.figures import (
    FIGURE_KEYS,
    _draw_qc,
    draw_all,
    plot_blood,
    plot_lesion_uptake,
    qc_figure,
    qc_pages,
)
from immunopet.report.style import DPI, ORGAN_COLOURS, save_figure
from immunopet.study.manifest import load_manifest
from immunopet.study.model import AnalysisSettings
from test_analysis_assemble import (  # noqa: F401  (fixtures)
    hand,
    report_trial,
    trial_analysis,
)

# inches of each figure (see the functions): hand-made analysis = 1 series, 4 patients,
# 3 response categories, 5 biomarker candidates
HAND_SIZES_IN = {
    "biodistribution": (4.0 * 1 + 1.6, 4.0),
    "lesion_uptake": (max(5.0, 1.2 + 0.45 * 4), 4.5),
    "uptake_by_response": (max(4.5, 1.5 + 1.0 * 3), 4.5),
    "uptake_vs_tps": (7.0, 4.5),
    "uptake_vs_cps": (7.0, 4.5),
    "survival_pfs": (7.0, 5.0),
    "survival_os": (7.0, 5.0),
    "tumour_to_blood": (7.0, 4.5),
    "biomarkers": (9.0, 1.3 + 0.45 * 4),
    "heterogeneity": (max(6.0, 0.28 * 4 + 2.0), 3.8),
}


def _pixels(path: Path) -> tuple[int, int]:
    image = imread(path)
    return image.shape[1], image.shape[0]


def _expected(size_in: tuple[float, float]) -> tuple[int, int]:
    return round(size_in[0] * DPI), round(size_in[1] * DPI)


def test_draw_all_hand_made(hand: StudyAnalysis, tmp_path: Path) -> None:  # noqa: F811
    drawn = draw_all(hand, tmp_path)
    # no blood samples in the hand-made results: no blood figure, no error
    assert set(drawn) == set(HAND_SIZES_IN)
    for key, path in drawn.items():
        assert path == tmp_path / f"{key}.png"
        assert path.stat().st_size > 5000
        assert _pixels(path) == _expected(HAND_SIZES_IN[key]), key


def test_draw_all_without_parts(tmp_path: Path) -> None:
    empty = pd.DataFrame()
    analysis = StudyAnalysis(
        name="empty",
        tracer="",
        settings=AnalysisSettings(),
        scans=empty,
        measurements=empty,
        failures=empty,
        schedule=empty,
    )
    assert draw_all(analysis, tmp_path) == {}


def test_blood_figure(tmp_path: Path) -> None:
    blood = pd.DataFrame(
        {
            "patient": ["P1", "P1", "P2", "P2"] * 2,
            "series": ["tracer-only"] * 4 + ["predose"] * 4,
            "matrix": "plasma",
            "hours_pi": [0.1, 72.0, 0.5, 71.0] * 2,
            "percent_ia_per_l": [16.0, 5.0, 15.0, 5.5, 17.0, 10.0, 18.0, 11.0],
        }
    )
    path = plot_blood(blood, tmp_path / "blood.png")
    assert _pixels(path) == _expected((7.0, 4.5))
    with pytest.raises(InputError, match="nothing to draw"):
        plot_blood(blood.iloc[0:0], tmp_path / "none.png")


def test_lesion_uptake_marks_the_excluded_lesion(
    hand: StudyAnalysis,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert hand.uptake is not None
    with_cross = plot_lesion_uptake(hand.uptake, tmp_path / "a.png", measurements=hand.measurements)
    without = plot_lesion_uptake(hand.uptake, tmp_path / "b.png")
    red = np.array([0xD6, 0x27, 0x28]) / 255.0  # EXCLUDED_COLOUR

    def red_pixels(path: Path) -> int:
        image = imread(path)[..., :3]
        return int((np.abs(image - red).max(axis=2) < 0.08).sum())

    assert red_pixels(with_cross) > 10
    assert red_pixels(without) == 0


# ---------------------------------------------------------------------------- QC geometry
SHAPE = (50, 20, 30)  # z, y, x
SPACING = (4.0, 5.0, 2.0)  # dz, dy, dx (mm): anisotropic on purpose
ORIGIN = (-30.0, -50.0, -200.0)  # LPS of voxel (0, 0, 0)
CENTRE_INDEX = (40, 10, 22)  # k, j, i of the hot sphere
# LPS of the centre: x = -30 + 22 * 2 = 14 (patient's left of the middle), y = 0,
# z = -200 + 40 * 4 = -40 (near the top of a field from -200 to -4).
# Extent of the projection (voxel edges): x from -31 to 29 (60 mm), z from -202 to -2 (200 mm).
# Expected place in the image: 45/60 = 0.75 of the width from the left (the viewer's right:
# the patient's left), 38/200 = 0.19 of the height from the top.
EXPECTED_FRACTION = (0.75, 0.19)
ASPECT = 60.0 / 200.0


def _sphere_volume(*, head_first: bool) -> tuple[ImageVolume, np.ndarray]:
    k, j, i = np.indices(SHAPE)
    dz, dy, dx = SPACING
    distance = np.sqrt(
        ((k - CENTRE_INDEX[0]) * dz) ** 2
        + ((j - CENTRE_INDEX[1]) * dy) ** 2
        + ((i - CENTRE_INDEX[2]) * dx) ** 2
    )
    mask = distance <= 8.0
    values = np.where(mask, 10.0, 1.0).astype(np.float32)
    affine = np.array(
        [
            [0.0, 0.0, dx, ORIGIN[0]],
            [0.0, dy, 0.0, ORIGIN[1]],
            [dz, 0.0, 0.0, ORIGIN[2]],
            [0, 0, 0, 1],
        ]
    )
    if head_first:  # slices stored top to bottom: the same patient, a reversed array
        top = ORIGIN[2] + (SHAPE[0] - 1) * dz
        affine = affine.copy()
        affine[2, 0], affine[2, 3] = -dz, top
        values, mask = values[::-1].copy(), mask[::-1].copy()
    return ImageVolume(values, affine, unit="SUVbw"), mask


def _hot_spot(volume: ImageVolume, path: Path) -> tuple[tuple[float, float], float]:
    """Fractions (from the left, from the top) of the darkest pixels' centroid inside the
    image axes, and the axes' width/height."""
    figure, ax = _draw_qc(volume, {}, "test")
    save_figure(figure, path)
    image = imread(path)[..., :3].mean(axis=2)
    box = ax.get_window_extent()
    height = image.shape[0]
    top, left = height - box.y1, box.x0
    rows = slice(math.ceil(top) + 2, math.floor(height - box.y0) - 2)
    cols = slice(math.ceil(left) + 2, math.floor(box.x1) - 2)
    region = image[rows, cols]
    r, c = np.nonzero(region <= region.min() + 0.02)
    x = (cols.start + c.mean() + 0.5 - left) / box.width
    z = (rows.start + r.mean() + 0.5 - top) / box.height
    return (float(x), float(z)), box.width / box.height


@pytest.mark.parametrize("head_first", [False, True])
def test_qc_hot_sphere_lands_where_the_geometry_says(head_first: bool, tmp_path: Path) -> None:
    volume, _ = _sphere_volume(head_first=head_first)
    (x, z), aspect = _hot_spot(volume, tmp_path / "qc.png")
    assert x == pytest.approx(EXPECTED_FRACTION[0], abs=0.03)
    assert z == pytest.approx(EXPECTED_FRACTION[1], abs=0.02)  # upper part: head up
    assert aspect == pytest.approx(ASPECT, rel=0.03)


def test_qc_outline_in_the_organ_colour(tmp_path: Path) -> None:
    volume, mask = _sphere_volume(head_first=True)
    path = qc_figure(volume, {"organ liver": mask}, "outline", tmp_path / "qc.png")
    image = imread(path)[..., :3]
    liver = np.array([int(ORGAN_COLOURS["liver"][n : n + 2], 16) for n in (1, 3, 5)]) / 255.0
    assert int((np.abs(image - liver).max(axis=2) < 0.08).sum()) > 20
    without = imread(qc_figure(volume, {}, "plain", tmp_path / "plain.png"))[..., :3]
    assert int((np.abs(without - liver).max(axis=2) < 0.08).sum()) == 0


# ---------------------------------------------------------------------------- the trial
@pytest.mark.slow
def test_trial_figures_and_qc_pages(
    report_trial: Path,  # noqa: F811
    trial_analysis: StudyAnalysis,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = load_manifest(report_trial / "study.toml")
    pages = qc_pages(report_trial / "results", study, tmp_path, max_scans=2)
    assert list(pages) == ["qc P01/tracer-only/72h", "qc P01/tracer-only/120h"]
    assert all(p.stat().st_size > 5000 for p in pages.values())
    # drawn one by one here, the same pages byte for byte (the default used 2 processes)
    alone = qc_pages(report_trial / "results", study, tmp_path / "alone", max_scans=2, workers=1)
    assert list(alone) == list(pages)
    for key, page in pages.items():
        assert alone[key].read_bytes() == page.read_bytes()
    volume, _ = _sphere_volume(head_first=False)
    drawn = draw_all(trial_analysis, tmp_path / "figures", pet_images={"P09/x/1h": (volume, {})})
    # two scans per series: no Patlak fit, so of the kinetics figures only the residence times
    assert set(drawn) == {*FIGURE_KEYS, "residence", "qc P09/x/1h"}
    assert drawn["qc P09/x/1h"].name == "qc_P09_x_1h.png"
    # two series, two time points: the biodistribution figure has two panels
    assert _pixels(drawn["biodistribution"]) == _expected((4.0 * 2 + 1.6, 4.0))


def test_every_study_figure_also_as_svg_and_300_dpi(
    hand: StudyAnalysis,  # noqa: F811
    tmp_path: Path,
) -> None:
    from immunopet.report.style import PRINT_DPI

    drawn = draw_all(hand, tmp_path)
    for key, path in drawn.items():
        svg = path.with_suffix(".svg")
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml"), key
        big = path.with_name(f"{path.stem}_300dpi.png")
        width_in, height_in = HAND_SIZES_IN[key]
        assert _pixels(big) == (round(width_in * PRINT_DPI), round(height_in * PRINT_DPI))


def test_p_values_in_titles_have_three_decimals() -> None:
    from immunopet.report.figures import _p_text

    assert (_p_text(0.0612), _p_text(0.00004), _p_text(0.004)) == (
        "p = 0.061",
        "p < 0.001",
        "p = 0.004",
    )


def test_the_same_figure_gives_the_same_svg_bytes(tmp_path: Path) -> None:
    """No random element ids and no date in the SVG copy: reruns of a study give equal files."""
    from immunopet.report.style import figure_style, new_figure

    def draw(folder: Path) -> bytes:
        with figure_style():
            figure = new_figure(3.0, 2.0)
            ax = figure.add_subplot()
            ax.plot([1, 2, 3], [2, 1, 3], label="a")
            ax.legend()
        save_figure(figure, folder / "f.png")  # outside the style, as the Fig 5 panels are
        return (folder / "f.svg").read_bytes()

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert b"clip-path" in first and b"<dc:date>" not in first
    assert first == second
