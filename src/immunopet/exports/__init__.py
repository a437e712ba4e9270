"""Results in other formats: DICOM SEG + SR (TID 1500) for PACS and viewers.

``exports`` writes what ``study`` and ``analysis`` produced; nothing but the CLI imports it.
"""

from immunopet.exports.dicom_export import export_scan, export_study_dicom

__all__ = ["export_scan", "export_study_dicom"]
