"""The columns of the results store's ``measurements`` and ``scans`` tables, and how a cell
joins several warnings.

Their own module (no imports) so that what reads or writes the store does not import the
measuring pipeline that fills them (:mod:`immunopet.study.pipeline` re-exports them).
"""

from __future__ import annotations

__all__ = ["MEASUREMENT_COLUMNS", "SCAN_COLUMNS", "WARNING_SEPARATOR"]

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
