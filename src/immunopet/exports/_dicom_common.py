"""What the DICOM SEG and SR exports share: stable UIDs, pseudonymised headers, fixed dates.

Reproducibility
---------------
Every UID an export creates is ``2.25.`` followed by the integer of a name-based UUID (RFC
4122 version 5, SHA-1) of the sources, which are the source PET's (0020,000E)
SeriesInstanceUID, the role of the UID (``"seg-series"``, ``"sr-instance"``, ...) and a SHA-256
digest of the content (masks or values). The same inputs give the same UIDs, new content gives
new UIDs, and no patient data enter the hash.
(0008,0023) ContentDate / (0008,0033) ContentTime, (0008,0021) SeriesDate / (0008,0031)
SeriesTime and (0008,0012) InstanceCreationDate / (0008,0013) InstanceCreationTime are the source
PET's series date and time (or its study date and time when absent), not the clock, and so is
(0018,A002) ContributionDateTime; highdicom's random (0020,9164) DimensionOrganizationUID is
replaced by a derived one: a rerun writes byte-identical files.

Privacy
-------
highdicom copies the patient and study modules from the source images. :func:`pseudonymised`
gives it copies of the PET headers whose (0010,0010) PatientName and (0010,0020) PatientID are
the study's pseudonym and whose (0010,0030) PatientBirthDate, (0008,0050) AccessionNumber,
(0008,0090) ReferringPhysicianName and (0020,0010) StudyID are empty; everything else a SEG or
SR carries from the PET (study UID and date, sex, frame of reference) the PET already had.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Sequence

from pydicom.dataset import Dataset
from pydicom.uid import UID

from immunopet.errors import InputError

__all__ = [
    "EMPTIED_KEYWORDS",
    "content_digest",
    "fix_clock_values",
    "pet_date_time",
    "pseudonymised",
    "stable_uid",
]

EMPTIED_KEYWORDS = (
    "PatientBirthDate",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
"""Patient/study attributes an export writes empty (they may identify the patient)."""

_REMOVED_KEYWORDS = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "OperatorsName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "IssuerOfPatientID",
)


def content_digest(parts: Iterable[bytes | str]) -> str:
    """SHA-256 (hex) of the parts, each prefixed by its length (no ambiguous joins).

    Examples
    --------
    >>> content_digest(["a", "bc"]) == content_digest(["ab", "c"])
    False
    """
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "little"))
        sha.update(data)
    return sha.hexdigest()


def stable_uid(*sources: str) -> UID:
    """A ``2.25.`` UID derived from ``sources`` alone (same sources, same UID).

    ``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)`` ignores its entropy sources
    (it returns a random UUID), hence a version-5 UUID here.

    Examples
    --------
    >>> stable_uid("1.2.3", "seg-series") == stable_uid("1.2.3", "seg-series")
    True
    >>> stable_uid("1.2.3", "a") == stable_uid("1.2.3", "b")
    False
    >>> str(stable_uid("1.2.3")).startswith("2.25.")
    True
    """
    name = "\x1f".join(["immunopet", *sources])
    return UID(f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}")


def pseudonymised(headers: Sequence[Dataset], pseudonym: str) -> list[Dataset]:
    """Copies of the headers with the patient named by the pseudonym only (see module notes).

    Raises
    ------
    InputError
        An empty pseudonym, or one longer than 64 characters ((0010,0020) PatientID is LO).
    """
    if not pseudonym.strip() or len(pseudonym) > 64 or "\\" in pseudonym:
        raise InputError(
            "invalid pseudonym for the DICOM export",
            tag="(0010,0020) PatientID",
            value=pseudonym,
            expected="a non-empty text of at most 64 characters, no '\\'",
        )
    out = []
    for header in headers:
        ds = copy.deepcopy(header)
        ds.PatientName = pseudonym + "^"  # one component, marked as such (PS3.5 6.2.1.2)
        ds.PatientID = pseudonym
        for keyword in EMPTIED_KEYWORDS:
            setattr(ds, keyword, "")
        for keyword in _REMOVED_KEYWORDS:
            if keyword in ds:
                delattr(ds, keyword)
        out.append(ds)
    return out


def pet_date_time(header: Dataset, *, source: str) -> tuple[str, str]:
    """The date and time an export uses for its content: the PET's series date and time.

    Falls back to (0008,0020) StudyDate / (0008,0030) StudyTime, then (0008,0022)
    AcquisitionDate / (0008,0032) AcquisitionTime. A missing time is ``000000``.

    Raises
    ------
    InputError
        No date at all.

    Examples
    --------
    >>> ds = Dataset(); ds.StudyDate = "20180412"; ds.StudyTime = "095410.5"
    >>> pet_date_time(ds, source="pet")
    ('20180412', '095410.5')
    """
    for date_kw, time_kw in (
        ("SeriesDate", "SeriesTime"),
        ("StudyDate", "StudyTime"),
        ("AcquisitionDate", "AcquisitionTime"),
    ):
        date = str(header.get(date_kw, "") or "").strip()
        if date:
            time = str(header.get(time_kw, "") or "").strip() or "000000"
            return date, time
    raise InputError(
        "the PET has no date to give the exported DICOM objects",
        file=source,
        tag="(0008,0021) SeriesDate",
        value="missing",
        expected="a series, study or acquisition date in the PET header",
    )


def fix_clock_values(dataset: Dataset, date: str, time: str, uid_source: str) -> None:
    """Replace what highdicom took from the clock or a random generator (see module notes).

    (0008,0012)/(0008,0013) instance creation and every (0018,A002) ContributionDateTime
    become ``date``/``time``; every (0020,9164) DimensionOrganizationUID becomes a UID derived
    from ``uid_source``.
    """
    dataset.InstanceCreationDate = date
    dataset.InstanceCreationTime = time
    for item in dataset.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + time
    organisation = stable_uid(uid_source, "dimension-organization")
    for keyword in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in dataset.get(keyword, []):
            if "DimensionOrganizationUID" in item:
                item.DimensionOrganizationUID = organisation
