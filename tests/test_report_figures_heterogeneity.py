"""The lesion-uptake-by-tumour-type figure draws the analysis as given."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from immunopet.analysis.heterogeneity import UptakeHeterogeneity
from immunopet.errors import InputError
from immunopet.report.figures_heterogeneity import plot_lesion_uptake_by_type
from immunopet.stats.heterogeneity import VarianceComponents


def _heterogeneity(lesions: pd.DataFrame) -> UptakeHeterogeneity:
    table = pd.DataFrame(
        {
            "level": ["tumour_type", "patient", "lesion", "total"],
            "variance": [0.1, 0.2, 0.3, 0.6],
            "share": [1 / 6, 1 / 3, 0.5, 1.0],
            "icc": [1 / 6, 0.5, float("nan"), float("nan")],
            "n": [2, 3, 6, 6],
        }
    )
    return UptakeHeterogeneity(VarianceComponents(table, "REML"), lesions, "suv_max", 168.0)


def test_draws_png(tmp_path: Path) -> None:
    lesions = pd.DataFrame(
        {
            "patient": ["A", "A", "B", "B", "C", "C"],
            "lesion": ["1", "2"] * 3,
            "tumour_type": ["bladder"] * 4 + ["TNBC"] * 2,
            "value": [2.0, 4.0, 5.0, 7.0, 1.0, 3.0],
            "patient_median": [3.0, 3.0, 6.0, 6.0, 2.0, 2.0],
        }
    )
    path = plot_lesion_uptake_by_type(_heterogeneity(lesions), tmp_path / "het.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_draw(tmp_path: Path) -> None:
    empty = pd.DataFrame(columns=["patient", "lesion", "tumour_type", "value", "patient_median"])
    with pytest.raises(InputError, match="nothing to draw"):
        plot_lesion_uptake_by_type(_heterogeneity(empty), tmp_path / "het.png")
