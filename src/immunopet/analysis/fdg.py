"""Lesion FDG positivity from the baseline FDG reference scans.

The rule (stated, not a standard's): a lesion is FDG-positive when its SUVmax (bw, g/mL) on
the patient's FDG PET is above :data:`FDG_POSITIVE_SUV_MAX` = 2.5, the long-used fixed
threshold of FDG PET reading. PERCIST 1.0 (Wahl et al. 2009) instead asks for SULpeak above
1.5 x liver SULmean + 2 SD; no liver VOI is drawn on the FDG scans here, so the fixed
threshold is used. The reader's flag (``fdg_positive`` of the baseline lesion table,
``lesions.csv``) stays what the other analyses use; this table puts both side by side.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from immunopet.analysis.lesions import _lesion_id, _lesion_table

__all__ = ["FDG_LESION_COLUMNS", "FDG_POSITIVE_SUV_MAX", "fdg_positivity"]

FDG_POSITIVE_SUV_MAX: Final = 2.5
"""SUVmax (g/mL) above which a lesion is FDG-positive on its FDG reference scan."""

FDG_LESION_COLUMNS: Final = (
    "patient",
    "lesion",
    "fdg_suv_max",
    "fdg_positive",
    "reader_flag",
    "agree",
)
"""Columns of ``RESULTS_DIR/analysis/fdg_lesions.csv``."""


def fdg_positivity(
    measurements: pd.DataFrame,
    lesions_table: pd.DataFrame | None = None,
    threshold: float = FDG_POSITIVE_SUV_MAX,
) -> pd.DataFrame:
    """Each measured lesion's FDG positivity, with the reader's flag beside it.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The ``fdg_measurements`` table (``patient``, ``lesion``, ``fdg_suv_max``).
    lesions_table : pandas.DataFrame, optional
        The baseline lesion table (``patient``, ``lesion``, ``fdg_positive``,
        ``long_axis_mm``); without it ``reader_flag`` and ``agree`` are empty.
    threshold : float, g/mL
        ``fdg_positive`` is ``fdg_suv_max > threshold``.

    Returns
    -------
    pandas.DataFrame
        :data:`FDG_LESION_COLUMNS`, in the measurements' order; ``reader_flag`` and
        ``agree`` are nullable booleans (empty for a lesion the reader did not list).
    """
    out = pd.DataFrame(
        {
            "patient": measurements["patient"].astype(str).str.strip().to_numpy(),
            "lesion": [_lesion_id(v) for v in measurements["lesion"]],
            "fdg_suv_max": pd.to_numeric(measurements["fdg_suv_max"]).astype("float64").to_numpy(),
        }
    )
    out["fdg_positive"] = out["fdg_suv_max"] > threshold
    reader = pd.Series(pd.NA, index=out.index, dtype="boolean")
    if lesions_table is not None:
        flags = _lesion_table(lesions_table).set_index(["patient", "lesion"])["fdg_positive"]
        keys = pd.MultiIndex.from_frame(out[["patient", "lesion"]])
        reader = pd.Series(flags.reindex(keys).to_numpy(), index=out.index).astype("boolean")
    out["reader_flag"] = reader
    out["agree"] = (out["fdg_positive"].astype("boolean") == reader).astype("boolean")
    return out[list(FDG_LESION_COLUMNS)]
