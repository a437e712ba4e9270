"""The fields of a PET-BIDS ``_pet.json`` that come from the DICOM header and the study.

Helpers of :mod:`immunopet.study.bids_export`: reconstruction method and filter, attenuation
correction, frame duration, and the radiochemistry (injected mass, specific radioactivity, the
unlabelled antibody given before the tracer). What the SUV engine derives (times, activity,
nuclide) comes from :func:`immunopet.io.bids.pet_sidecar`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydicom.dataset import Dataset

from immunopet.errors import InputError

__all__ = [
    "REQUIRED_PET_DEFAULTS",
    "antibody",
    "dicom_fields",
    "frame_duration_s",
    "header_text",
    "radiochemistry",
]

REQUIRED_PET_DEFAULTS: dict[str, Any] = {
    "Manufacturer": "n/a",
    "ManufacturersModelName": "n/a",
    "TracerName": "n/a",
    "TracerRadionuclide": "n/a",
    "InjectedMass": "n/a",
    "InjectedMassUnits": "n/a",
    "SpecificRadioactivity": "n/a",
    "SpecificRadioactivityUnits": "n/a",
    "ModeOfAdministration": "bolus",
    "AcquisitionMode": "static",
    "ReconMethodName": "n/a",
    "ReconMethodParameterLabels": ["none"],
    "ReconMethodParameterUnits": ["none"],
    "ReconMethodParameterValues": [0],
    "ReconFilterType": "none",
    "AttenuationCorrection": "n/a",
}
"""What a PET sidecar says when the source does not tell (values the schema accepts)."""


def header_text(ds: Dataset, keyword: str) -> str:
    """A header value as stripped text (multi-valued joined by backslashes; ``""`` if absent)."""
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, str | bytes):
        return str(value).strip()
    return "\\".join(str(v).strip() for v in value)


def _recon_parameters(method: str) -> dict[str, Any]:
    """Iterations and subsets from (0054,1103) ReconstructionMethod, e.g. ``OSEM3D 3i21s``.

    Examples
    --------
    >>> _recon_parameters("PSF+TOF 3i21s")["ReconMethodParameterValues"]
    [21, 3]
    >>> _recon_parameters("OSEM")["ReconMethodParameterLabels"]
    ['none']
    """
    iterations = re.search(r"(\d+)\s*(?:iterations?|iter|it|i)(?![a-z])", method, re.IGNORECASE)
    subsets = re.search(r"(\d+)\s*(?:subsets?|sub|s)(?![a-z])", method, re.IGNORECASE)
    labels, values = [], []
    if subsets:
        labels.append("subsets")
        values.append(int(subsets.group(1)))
    if iterations:
        labels.append("iterations")
        values.append(int(iterations.group(1)))
    if not labels:
        return {
            "ReconMethodParameterLabels": ["none"],
            "ReconMethodParameterUnits": ["none"],
            "ReconMethodParameterValues": [0],
        }
    return {
        "ReconMethodParameterLabels": labels,
        "ReconMethodParameterUnits": ["none"] * len(labels),
        "ReconMethodParameterValues": values,
    }


def _recon_filter(kernel: str) -> tuple[dict[str, Any], str | None]:
    """ReconFilterType/Size from (0018,1210) ConvolutionKernel (FWHM in mm).

    Examples
    --------
    >>> _recon_filter("XYZ Gauss2.00")[0]
    {'ReconFilterType': 'Gauss', 'ReconFilterSize': 2.0}
    >>> _recon_filter("")[0]
    {'ReconFilterType': 'none'}
    """
    text = kernel.strip()
    if not text or text.lower() in ("none", "all-pass", "allpass"):
        return {"ReconFilterType": "none"}, None
    size = re.search(r"(\d+(?:\.\d+)?)", text)
    name = re.sub(r"^XYZ\s*", "", text[: size.start()] if size else text).strip(" :-_") or text
    if size is None:
        note = f"(0018,1210) ConvolutionKernel {text!r} has no filter size; ReconFilterSize not set"
        return {"ReconFilterType": name}, note
    return {"ReconFilterType": name, "ReconFilterSize": float(size.group(1))}, None


def dicom_fields(ds: Dataset) -> tuple[dict[str, Any], list[str], bool]:
    """Sidecar fields from the first PET header; returns (fields, notes, attenuation-corrected)."""
    notes: list[str] = []
    fields: dict[str, Any] = {}
    model = header_text(ds, "ManufacturerModelName")
    fields["ManufacturersModelName"] = model or "n/a"
    method = header_text(ds, "ReconstructionMethod")
    fields["ReconMethodName"] = method or "n/a"
    fields.update(_recon_parameters(method))
    filter_fields, note = _recon_filter(header_text(ds, "ConvolutionKernel"))
    fields.update(filter_fields)
    if note:
        notes.append(note)
    corrected = {v.upper() for v in header_text(ds, "CorrectedImage").split("\\") if v}
    attenuation = header_text(ds, "AttenuationCorrectionMethod")
    attenuation_corrected = "ATTN" in corrected
    if attenuation:
        fields["AttenuationCorrection"] = attenuation
    elif attenuation_corrected:
        fields["AttenuationCorrection"] = (
            "attenuation corrected ((0028,0051) CorrectedImage ATTN; method not recorded)"
        )
    else:
        fields["AttenuationCorrection"] = "none"
    body_part = header_text(ds, "BodyPartExamined")
    if body_part:
        fields["BodyPart"] = body_part
    return fields, notes, attenuation_corrected


def frame_duration_s(ds: Dataset, where: str) -> float:
    """(0018,1242) ActualFrameDuration in s; an error naming ``where`` when it is missing."""
    value = ds.get("ActualFrameDuration")
    try:
        duration_s = float(value) / 1000.0 if value not in (None, "") else math.nan
    except (TypeError, ValueError):
        duration_s = math.nan
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise InputError(
            "PET-BIDS needs the frame duration",
            file=where,
            tag="(0018,1242) ActualFrameDuration",
            value="missing" if value in (None, "") else value,
            expected="milliseconds > 0",
        )
    return duration_s


def antibody(tracer: str) -> str:
    """``"89Zr-durvalumab"`` -> ``"durvalumab"`` (the unlabelled drug of a tracer name)."""
    return re.sub(r"^\s*\[?\d+\]?\s*[A-Z][a-z]?\s*[-\s]\s*", "", tracer).strip() or tracer


def radiochemistry(
    injected_mbq: float, tracer_mass_mg: float | None, cold_mass_mg: float, tracer: str
) -> dict[str, Any]:
    """InjectedMass and SpecificRadioactivity (when the tracer mass is known), and the
    unlabelled antibody given before the tracer as the ``Pharmaceutical*`` fields."""
    fields: dict[str, Any] = {}
    if tracer_mass_mg is not None:
        fields["InjectedMass"] = tracer_mass_mg
        fields["InjectedMassUnits"] = "mg"
        fields["SpecificRadioactivity"] = injected_mbq / tracer_mass_mg
        fields["SpecificRadioactivityUnits"] = "MBq/mg"
    if cold_mass_mg > 0:
        fields["PharmaceuticalName"] = f"unlabelled {antibody(tracer)}" if tracer else "unlabelled"
        fields["PharmaceuticalDoseAmount"] = cold_mass_mg
        fields["PharmaceuticalDoseUnits"] = "mg"
        fields["PharmaceuticalDoseRegimen"] = "single dose before the tracer injection"
    return fields
