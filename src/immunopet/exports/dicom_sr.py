"""The measurements of one scan as a DICOM SR, template TID 1500 "Measurement Report".

One Comprehensive 3D SR per scan, referencing the scan's SEG (each measurement group points at
its segment, TID 1411 "Volumetric ROI Measurements") and, through it, the PET series. Per VOI:

========================  ====================================  ===============  ===============
measurement               concept name (derivation / method)    unit (UCUM)      column
========================  ====================================  ===============  ===============
SUVmean                   SUVbw (Mean)                          g/ml{SUVbw}      suv_mean
SUVmax                    SUVbw (Maximum)                       g/ml{SUVbw}      suv_max
SUVpeak, IBSI local       SUVbw (Peak Value Within ROI /        g/ml{SUVbw}      suv_peak_local
                          99IMMUNOPET LOCALPEAK)
SUVpeak, IBSI global      SUVbw (Peak Value Within ROI /        g/ml{SUVbw}      suv_peak_global
                          99IMMUNOPET GLOBALPEAK)
volume                    Volume (SCT 118565006)                ml               volume_ml
long axis                 Long axis (SCT 103339001)             mm               long_axis_mm
time after injection      Time after the start of injection     h                hours_pi
                          (DCM 130194)
lesion-to-reference       99IMMUNOPET TBR, lesions only, when   {ratio}          ratio_to_
ratio                     the scan has the reference organ                       reference
                          ("Lesion / blood pool SUVpeak (IBSI
                          local peak)")
========================  ====================================  ===============  ===============

Measurements a scan does not have are not written: the baseline FDG scans
(:func:`~immunopet.exports.dicom_export.export_study_dicom`) have the study's one SUVpeak kind
and no long axis.

Each measurement group also states, as TID 1411 qualitative evaluations, the tracer of the scan:
(89457008, SCT, "Radionuclide") with its DICOM CID 4020 code (``^18^Fluorine`` for an FDG scan,
``^89^Zirconium`` for the study tracer), and, when known, (349358000, SCT, "Radiopharmaceutical
agent") with its CID 4021 code (``Fluorodeoxyglucose F^18^`` for FDG). The time after injection
(DCM 130194) is from the scan's own injection (the FDG injection for an FDG scan, about 1 h).

Lesion groups state whether the lesion is excluded from the quantitative analyses, as a
qualitative evaluation (99IMMUNOPET EXCLUDED "Excluded from quantitative analysis") answered
(373066001, SCT, "Yes") or (373067005, SCT, "No"): the study's ``[[exclusions]]`` as the run
applied them (the measurement row's ``excluded``; for an FDG scan, the manifest's exclusions of
that patient's lesion). A lesion whose exclusion the pipeline suggested (spill-in,
``suggested_exclusion``) but the study did not apply gets (99IMMUNOPET SUGGESTEDEXCL
"Exclusion suggested (spill-in), not applied") = Yes. The reasons stay in the tables
(``exclusion_reason``, ``suggested_exclusion``): TID 1411 has no text item for them.

The SUV concept and unit follow the scan's normalisation (DICOM CID 7180 / CID 85): SUVbw
(126401, ``g/ml{SUVbw}``), SUVlbm(Janma) (126405, ``g/ml{SUVlbm(Janma)}``, the
Janmahasatian lean body mass immunopet uses) or SUVbsa (126403, ``cm2/ml{SUVbsa}``). The method
code of each SUVpeak states which sphere (IBSI local intensity peak = centred on the hottest
voxel; global = highest over all centres in the VOI) and its radius; the ratio's code meaning
names the reference organ. The codes of the local scheme ``99IMMUNOPET`` are declared in
(0008,0110) CodingSchemeIdentificationSequence. Values are stored as (0040,A30A) NumericValue
(DS, 16 characters) and, when not whole, as the exact (0040,A161) FloatingPointValue.

The observer is the device immunopet; each group has a tracking identifier (the segment label)
and UID, and a time point context (the scan's nominal time point). UIDs, dates and patient
attributes follow :mod:`immunopet.exports._dicom_common`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from immunopet import __version__
from immunopet.errors import DicomInputError, InputError
from immunopet.exports._dicom_common import (
    content_digest,
    fix_clock_values,
    pet_date_time,
    pseudonymised,
    stable_uid,
)
from immunopet.exports.dicom_seg import SegmentInfo
from immunopet.io.dicom import DicomSeries

__all__ = [
    "EXCLUDED",
    "FDG_RADIOPHARMACEUTICAL",
    "GLOBAL_PEAK",
    "LOCAL_PEAK",
    "LOCAL_SCHEME",
    "NUCLIDE_CODES",
    "RADIONUCLIDE",
    "RADIOPHARMACEUTICAL",
    "RATIO",
    "SR_SERIES_NUMBER",
    "SUGGESTED_EXCLUSION",
    "SUV_CODES",
    "TIME_AFTER_INJECTION",
    "ScanContext",
    "VoiValues",
    "build_sr",
]

SR_SERIES_NUMBER = 9802
"""(0020,0011) SeriesNumber of an exported SR."""

LOCAL_SCHEME = "99IMMUNOPET"
"""Coding scheme designator of immunopet's own codes."""

LOCAL_PEAK = "LOCALPEAK"
GLOBAL_PEAK = "GLOBALPEAK"
RATIO = "TBR"
"""Code values (scheme :data:`LOCAL_SCHEME`) of the two SUVpeak methods and the ratio."""

EXCLUDED = "EXCLUDED"
SUGGESTED_EXCLUSION = "SUGGESTEDEXCL"
"""Code values (scheme :data:`LOCAL_SCHEME`) of the exclusion flags of a lesion."""

TIME_AFTER_INJECTION = Code("130194", "DCM", "Time after the start of injection")
"""Concept name of the hours after injection."""

SUV_CODES: dict[str, tuple[Code, Code]] = {
    "bw": (Code("126401", "DCM", "SUVbw"), codes.UCUM.StandardizedUptakeValueBodyWeight),
    "lbm": (
        Code("126405", "DCM", "SUVlbm(Janma)"),
        codes.UCUM.StandardizedUptakeValueLeanBodyMassJanma,
    ),
    "bsa": (Code("126403", "DCM", "SUVbsa"), codes.UCUM.StandardizedUptakeValueBodySurfaceArea),
}
"""Normalisation -> (concept name, UCUM unit) of the SUV measurements."""

RADIONUCLIDE = Code("89457008", "SCT", "Radionuclide")
RADIOPHARMACEUTICAL = Code("349358000", "SCT", "Radiopharmaceutical agent")
"""Concept names of the tracer's qualitative evaluations (as in TID 10022)."""

NUCLIDE_CODES: dict[str, Code] = {
    "11C": Code("40565003", "SCT", "^11^Carbon"),
    "15O": Code("129504001", "SCT", "^15^Oxygen"),
    "18F": Code("77004003", "SCT", "^18^Fluorine"),
    "64Cu": Code("3932008", "SCT", "^64^Copper"),
    "68Ga": Code("35337001", "SCT", "^68^Gallium"),
    "82Rb": Code("79197006", "SCT", "^82^Rubidium"),
    "89Zr": Code("63360001", "SCT", "^89^Zirconium"),
    "124I": Code("40937006", "SCT", "^124^Iodine"),
}
"""DICOM CID 4020 "PET Radionuclide" code of each nuclide (canonical name)."""

FDG_RADIOPHARMACEUTICAL = Code("35321007", "SCT", "Fluorodeoxyglucose F^18^")
"""DICOM CID 4021 "PET Radiopharmaceutical" code of [18F]FDG."""

_MEAN = Code("373098007", "SCT", "Mean")
_MAXIMUM = Code("56851009", "SCT", "Maximum")
_PEAK = Code("126031", "DCM", "Peak Value Within ROI")
_VOLUME = Code("118565006", "SCT", "Volume")
_LONG_AXIS = Code("103339001", "SCT", "Long axis")
_ML = Code("ml", "UCUM", "milliliter")
_MM = Code("mm", "UCUM", "millimeter")
_HOUR = Code("h", "UCUM", "hour")
_RATIO_UNIT = Code("{ratio}", "UCUM", "ratio")
_PET_WHOLE_BODY = Code("44139-4", "LN", "PET whole body")


@dataclass(frozen=True)
class VoiValues:
    """The measured values of one VOI (SUV in the scan's normalisation).

    Attributes
    ----------
    segment : SegmentInfo
        Its segment in the scan's SEG.
    suv_mean, suv_max : float
    suv_peak_local, suv_peak_global : float or None
        None: not measured (not written).
    volume_ml : float, mL
    long_axis_mm : float or None, mm
    ratio_to_reference : float or None
        Lesion SUVpeak / reference-organ SUVpeak (None or NaN: not written).
    excluded : bool or None
        The lesion is excluded from the quantitative analyses (None: not stated).
    suggested_exclusion : bool
        The pipeline suggested excluding it (spill-in); stated only when not ``excluded``.
    """

    segment: SegmentInfo
    suv_mean: float
    suv_max: float
    suv_peak_local: float | None
    suv_peak_global: float | None
    volume_ml: float
    long_axis_mm: float | None
    ratio_to_reference: float | None = None
    excluded: bool | None = None
    suggested_exclusion: bool = False


@dataclass(frozen=True)
class ScanContext:
    """What the SR states about the scan as a whole.

    Attributes
    ----------
    pseudonym : str
        The patient's pseudonym ((0010,0010) PatientName and (0010,0020) PatientID).
    normalisation : {"bw", "lbm", "bsa"}
    hours_pi : float or None, hours
        Time from injection to the scan (None: not written).
    peak_radius_mm : float, mm
        Radius of the SUVpeak sphere.
    reference_organ : str
        The organ of ``ratio_to_reference``.
    peak : {"local", "global"}
        The SUVpeak of ``ratio_to_reference`` (numerator and denominator).
    time_point : str
        The scan's time point, e.g. ``"tracer-only 120 h"``.
    nuclide : str or None
        The canonical nuclide of the scan (``"89Zr"``, ``"18F"``): its CID 4020 code is stated
        in every group (nothing when None or not in :data:`NUCLIDE_CODES`).
    radiopharmaceutical : Code or None
        Its CID 4021 code, when known (:data:`FDG_RADIOPHARMACEUTICAL` for FDG scans).
    """

    pseudonym: str
    normalisation: str
    hours_pi: float | None
    peak_radius_mm: float
    reference_organ: str = "blood_pool"
    peak: str = "local"
    time_point: str = ""
    nuclide: str | None = None
    radiopharmaceutical: Code | None = None


def _local(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=LOCAL_SCHEME, meaning=meaning[:64])


def _measurements(values: VoiValues, context: ScanContext) -> list[hd.sr.Measurement]:
    suv_name, suv_unit = SUV_CODES[context.normalisation]
    radius = f"{context.peak_radius_mm:g} mm"
    local = _local(LOCAL_PEAK, f"IBSI local intensity peak, sphere radius {radius}")
    global_ = _local(GLOBAL_PEAK, f"IBSI global intensity peak, sphere radius {radius}")
    items: list[
        tuple[Code | hd.sr.CodedConcept, float | None, Code, Code | None, hd.sr.CodedConcept | None]
    ] = [
        (suv_name, values.suv_mean, suv_unit, _MEAN, None),
        (suv_name, values.suv_max, suv_unit, _MAXIMUM, None),
        (suv_name, values.suv_peak_local, suv_unit, _PEAK, local),
        (suv_name, values.suv_peak_global, suv_unit, _PEAK, global_),
        (_VOLUME, values.volume_ml, _ML, None, None),
        (_LONG_AXIS, values.long_axis_mm, _MM, None, None),
        (TIME_AFTER_INJECTION, context.hours_pi, _HOUR, None, None),
    ]
    if values.segment.category.value == "49755003":  # lesions only
        organ = context.reference_organ.replace("_", " ")
        ratio = _local(RATIO, f"Lesion / {organ} SUVpeak (IBSI {context.peak} peak)")
        items.append((ratio, values.ratio_to_reference, _RATIO_UNIT, None, None))
    out = []
    for name, value, unit, derivation, method in items:
        if value is None or not math.isfinite(value):
            continue
        out.append(
            hd.sr.Measurement(
                name=name,
                value=float(value),
                unit=unit,
                derivation=derivation,
                method=method,
            )
        )
    return out


def _qualitative(values: VoiValues, context: ScanContext) -> list[hd.sr.QualitativeEvaluation]:
    out = []
    if values.segment.category.value == "49755003" and values.excluded is not None:
        answer = codes.SCT.Yes if values.excluded else codes.SCT.No
        name = _local(EXCLUDED, "Excluded from quantitative analysis")
        out.append(hd.sr.QualitativeEvaluation(name=name, value=answer))
        if values.suggested_exclusion and not values.excluded:
            name = _local(SUGGESTED_EXCLUSION, "Exclusion suggested (spill-in), not applied")
            out.append(hd.sr.QualitativeEvaluation(name=name, value=codes.SCT.Yes))
    nuclide = NUCLIDE_CODES.get(context.nuclide or "")
    if nuclide is not None:
        out.append(hd.sr.QualitativeEvaluation(name=RADIONUCLIDE, value=nuclide))
    if context.radiopharmaceutical is not None:
        out.append(
            hd.sr.QualitativeEvaluation(name=RADIOPHARMACEUTICAL, value=context.radiopharmaceutical)
        )
    return out


def _digest(values: Sequence[VoiValues], context: ScanContext) -> str:
    parts = [repr(context)]
    parts.extend(repr(v) for v in values)
    return content_digest(parts)


def build_sr(
    seg: hd.seg.Segmentation,
    values: Sequence[VoiValues],
    series: DicomSeries,
    context: ScanContext,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of the VOIs of one scan.

    Parameters
    ----------
    seg : highdicom.seg.Segmentation
        The scan's SEG (from :func:`~immunopet.exports.dicom_seg.build_seg`).
    values : sequence of VoiValues
        One per segment to report.
    series : DicomSeries
        The PET series measured.
    context : ScanContext

    Returns
    -------
    highdicom.sr.Comprehensive3DSR

    Raises
    ------
    InputError
        Unknown normalisation, no VOI, an invalid pseudonym, a PET without date.
    DicomInputError
        highdicom refuses the content.
    """
    if context.normalisation not in SUV_CODES:
        raise InputError(
            "unknown SUV normalisation for the SR",
            tag="normalisation",
            value=context.normalisation,
            expected="bw, lbm or bsa",
        )
    if not values:
        raise InputError("no VOI to report", file=series.label, tag="vois", value=0)
    digest = _digest(values, context)
    uid = series.series_uid
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=stable_uid("device", "immunopet"),
            name="immunopet",
            manufacturer_name="immunopet",
            model_name="immunopet",
        ),
    )
    time_point = None
    if context.time_point:
        time_point = hd.sr.TimePointContext(time_point=context.time_point[:64])
    groups = []
    for item in values:
        segment = item.segment
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=stable_uid(uid, "tracking", segment.label),
                    identifier=segment.label,
                ),
                referenced_segment=hd.sr.ReferencedSegment.from_segmentation(
                    seg, segment_number=segment.number
                ),
                finding_type=segment.property_type,
                finding_category=segment.category,
                time_point_context=time_point,
                measurements=_measurements(item, context),
                qualitative_evaluations=_qualitative(item, context) or None,
            )
        )
    date, time = pet_date_time(series.header, source=series.label)
    evidence = pseudonymised(series.headers, context.pseudonym)
    try:
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=device),
            procedure_reported=_PET_WHOLE_BODY,
            imaging_measurements=groups,
        )
        sr = hd.sr.Comprehensive3DSR(
            evidence=[*evidence, seg],
            content=report[0],
            series_instance_uid=stable_uid(uid, "sr-series", digest),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=stable_uid(uid, "sr-instance", digest),
            instance_number=1,
            manufacturer="immunopet",
            is_complete=True,
            series_description="immunopet measurements",
            content_date=date,
            content_time=time,
            series_date=date,
            series_time=time,
            coding_schemes=[
                hd.coding_schemes.CodingSchemeIdentificationItem(
                    designator=LOCAL_SCHEME,
                    name="immunopet local codes",
                    responsible_organization="immunopet",
                )
            ],
            software_versions=__version__,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomInputError(f"cannot make the SR ({exc})", file=series.label) from exc
    fix_clock_values(sr, date, time, str(sr.SOPInstanceUID))
    return sr
