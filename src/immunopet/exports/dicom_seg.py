"""The VOIs of one scan as a DICOM Segmentation (SEG) on the PET series.

One binary segment per VOI, in the order given, numbered from 1. (0062,0005) SegmentLabel is the
VOI name (``"<kind> <name>"`` when a lesion and an organ of the scan share a name), the kind is
in the segmented property codes (SNOMED CT), as :mod:`immunopet.io.seg` reads them back:

=========  =================================  ===============================================
kind       category                           type
=========  =================================  ===============================================
lesion     Morphologically Abnormal Structure Lesion (52988006)
organ      Anatomical Structure (91723000)    the organ's own code when the name is known
                                              (aorta for ``blood_pool``, liver, spleen, kidney,
                                              lung, bone marrow, brain), otherwise Organ
=========  =================================  ===============================================

Segments from spheres, label maps, SEG or RTSTRUCT files are (0062,0008) SegmentAlgorithmType
``MANUAL`` (a person placed or drew them); threshold VOIs are ``SEMIAUTOMATIC`` with immunopet
and the threshold method as the algorithm. The source images are the PET headers (pixel data are
not needed); UIDs, dates and patient attributes follow :mod:`immunopet.exports._dicom_common`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
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
from immunopet.io.dicom import DicomSeries
from immunopet.io.seg import check_voi_masks, reference_grid
from immunopet.voi.sources import Voi

__all__ = ["SEG_SERIES_NUMBER", "SegmentInfo", "build_seg", "segment_codes", "segment_labels"]

SEG_SERIES_NUMBER = 9801
"""(0020,0011) SeriesNumber of an exported SEG."""

_ORGAN_TYPES: dict[str, Code] = {
    "blood_pool": codes.SCT.Aorta,
    "aorta": codes.SCT.Aorta,
    "liver": codes.SCT.Liver,
    "spleen": codes.SCT.Spleen,
    "kidney": codes.SCT.Kidney,
    "lung": codes.SCT.Lung,
    "bone_marrow": codes.SCT.BoneMarrow,
    "brain": codes.SCT.Brain,
}


@dataclass(frozen=True)
class SegmentInfo:
    """What the SR needs to know about one segment.

    Attributes
    ----------
    number : int
        (0062,0004) SegmentNumber.
    label : str
        (0062,0005) SegmentLabel.
    category, property_type : pydicom.sr.coding.Code
        Segmented property category and type.
    """

    number: int
    label: str
    category: Code
    property_type: Code


def segment_codes(kind: str | None, name: str) -> tuple[Code, Code]:
    """(category, type) codes of a VOI (see the module notes).

    Examples
    --------
    >>> [c.meaning for c in segment_codes("organ", "liver")]
    ['Anatomical Structure', 'Liver']
    >>> segment_codes("lesion", "3")[1].value
    '52988006'
    """
    if kind == "lesion":
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion
    if kind == "organ":
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        return codes.SCT.AnatomicalStructure, _ORGAN_TYPES.get(key, codes.SCT.Organ)
    return codes.SCT.Tissue, codes.SCT.Tissue


def segment_labels(vois: Sequence[Voi]) -> list[str]:
    """Segment labels: the VOI names, prefixed by the kind when two kinds share a name.

    Examples
    --------
    >>> m = np.ones((1, 1, 1), dtype=bool)
    >>> segment_labels([Voi("1", "lesion", m, "a", "sphere"), Voi("1", "organ", m, "b", "sphere"),
    ...                 Voi("liver", "organ", m, "b", "sphere")])
    ['lesion 1', 'organ 1', 'liver']
    """
    counts = Counter(voi.name for voi in vois)
    return [f"{voi.kind} {voi.name}" if counts[voi.name] > 1 else voi.name for voi in vois]


def _algorithm(voi: Voi) -> tuple[str, hd.AlgorithmIdentificationSequence | None]:
    if voi.method.startswith("threshold"):
        return "SEMIAUTOMATIC", hd.AlgorithmIdentificationSequence(
            name="immunopet " + voi.method,
            family=codes.cid7162.HistogramAnalysis,
            version=__version__,
        )
    return "MANUAL", None


def build_seg(
    vois: Sequence[Voi],
    series: DicomSeries,
    *,
    pseudonym: str,
) -> tuple[hd.seg.Segmentation, list[SegmentInfo]]:
    """A SEG of the VOIs on the PET series, and the description of each segment.

    Parameters
    ----------
    vois : sequence of Voi
        Masks ``[z, y, x]`` on the series' grid (slice ``k`` = the series' ``k``-th file).
    series : DicomSeries
        The PET series measured.
    pseudonym : str
        The study's pseudonym: (0010,0010) PatientName and (0010,0020) PatientID.

    Returns
    -------
    (highdicom.seg.Segmentation, list of SegmentInfo)

    Raises
    ------
    InputError
        No VOI, an invalid name or an empty mask, an invalid pseudonym, a PET without date.
    GeometryError
        A mask not on the series' grid.
    DicomInputError
        The PET headers lack what a SEG needs.
    """
    labels = segment_labels(vois)
    where = f"SEG of {series.label}"
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    if repeated:
        raise InputError(
            "two VOIs of one kind share a name; a SEG needs one segment label per VOI",
            file=where,
            tag="(0062,0005) SegmentLabel",
            value=", ".join(repeated),
            expected="unique VOI names per kind",
        )
    grid = reference_grid(series)
    checked = check_voi_masks(
        {label: voi.mask for label, voi in zip(labels, vois, strict=True)}, grid.shape, where=where
    )
    descriptions = []
    infos = []
    for number, (label, voi) in enumerate(zip(labels, vois, strict=True), start=1):
        category, property_type = segment_codes(voi.kind, voi.name)
        algorithm_type, algorithm = _algorithm(voi)
        tracking_uid = stable_uid(series.series_uid, "segment", label)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=category,
                segmented_property_type=property_type,
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
                tracking_uid=tracking_uid,
                tracking_id=label,
            )
        )
        infos.append(SegmentInfo(number, label, category, property_type))
    pixels = np.stack(list(checked.values()), axis=-1).astype(np.uint8)
    digest = content_digest(
        [
            *(f"{i.number}|{i.label}|{i.property_type.value}" for i in infos),
            np.packbits(pixels).tobytes(),
        ]
    )
    date, time = pet_date_time(series.header, source=series.label)
    try:
        seg = hd.seg.Segmentation(
            source_images=pseudonymised(series.headers, pseudonym),
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=stable_uid(series.series_uid, "seg-series", digest),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=stable_uid(series.series_uid, "seg-instance", digest),
            instance_number=1,
            manufacturer="immunopet",
            manufacturer_model_name="immunopet",
            software_versions=__version__,
            device_serial_number="none",
            content_label="VOIS",
            content_description="VOIs measured by immunopet",
            series_description="immunopet VOIs",
            content_date=date,
            content_time=time,
            series_date=date,
            series_time=time,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomInputError(
            f"the PET headers do not make a SEG ({exc})", file=series.label
        ) from exc
    fix_clock_values(seg, date, time, str(seg.SOPInstanceUID))
    return seg, infos
