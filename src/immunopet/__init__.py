"""immunopet: quantitative immuno-PET of 89Zr-labelled antibodies.

From DICOM PET/CT and VOIs to SUVs that are right for multi-day delays, lesion and organ
metrics, the study's analysis and a report.
"""

from __future__ import annotations

from immunopet.errors import ImmunoPETError, ImmunoPETWarning
from immunopet.image import ImageVolume, Unit

__version__ = "0.1.0"

__all__ = ["ImageVolume", "ImmunoPETError", "ImmunoPETWarning", "Unit", "__version__"]
