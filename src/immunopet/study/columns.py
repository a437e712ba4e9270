"""The rows one scan contributes to the results store: the columns of the ``measurements``
and ``scans`` tables, how a cell joins several warnings, and :class:`ScanResult`.

Their own module so that what reads or writes the store (the run's own process, the analysis,
the report) does not import the measuring pipeline that fills them
(:mod:`immunopet.study.pipeline` re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from immunopet.study.qc import QcImages

__all__ = ["MEASUREMENT_COLUMNS", "SCAN_COLUMNS", "WARNING_SEPARATOR", "ScanResult"]

MEASUREMENT_COLUMNS = (
    "patient",
    "series",
    "hours_pi",
    "voi",
    "kind",
    "suv_mean",
    "suv_max",
    "suv_peak",
    "volume_ml",
    "long_axis_mm",
    "scan_id",
    "nominal_hours",
    "suv_min",
    "suv_sd",
    "suv_peak_local",
    "suv_peak_global",
    "n_voxels",
    "total_activity",
    "diameter_3d_mm",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "method",
    "source",
    "measurable",
    "ratio_to_reference",
    "distance_to_spill_in_organ_mm",
    "excluded",
    "exclusion_reason",
    "suggested_exclusion",
    "warnings",
)
"""Columns of a measurement row, in order (the first ten are the stable contract).

Units: SUV columns in the scan's normalisation (g/mL for bw/lbm, cm²/mL for bsa), lengths
and coordinates (LPS) in mm, ``volume_ml`` in mL, ``total_activity`` in SUV x mL, hours
after injection in h. ``measurable`` is None for organs."""

SCAN_COLUMNS = (
    "scan_id",
    "patient",
    "series",
    "nominal_hours",
    "hours_pi",
    "injection_datetime",
    "scan_datetime",
    "unlabelled_mass_mg",
    "manufacturer",
    "units",
    "decay_correction",
    "branch",
    "suv_bw_factor",
    "weight_kg",
    "injected_activity_bq",
    "normalisation",
    "n_vois",
    "warnings",
)
"""Columns of a scan row, in order.

``units``/``decay_correction``/``branch`` describe the stored PET values ((0054,1001),
(0054,1102) and the SUV branch for DICOM; the sidecar ``Units`` and ``PET-BIDS/<Units>`` for
NIfTI); ``suv_bw_factor`` turns stored values into SUVbw at injection."""

WARNING_SEPARATOR = " | "
"""Joins several warning texts in one table cell."""


@dataclass(frozen=True)
class ScanResult:
    """The rows one scan contributes to the results store.

    Attributes
    ----------
    scan_id : str
        ``"P01/tracer-only/120h"`` (see :attr:`~immunopet.study.model.ScanRef.scan_id`).
    scan : dict
        One row of the ``scans`` table, keys :data:`SCAN_COLUMNS`.
    measurements : tuple of dict
        One row per VOI, keys :data:`MEASUREMENT_COLUMNS`, in source order.
    warnings : tuple of str
        Every warning of the scan and its VOIs.
    qc : QcImages, optional
        The small 2-D images of the scan's QC page (SUV projection and VOI outlines), which
        the results store keeps beside the tables (:mod:`immunopet.study.qc`).
    """

    scan_id: str
    scan: dict[str, Any]
    measurements: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = field(default=())
    qc: QcImages | None = None
