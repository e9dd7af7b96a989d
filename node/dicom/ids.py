"""Orthanc identifiers: SHA-1 of the DICOM identifiers, as 8-8-8-8-8 hex groups."""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import NamedTuple

_PLURALS = ("patients", "studies", "series", "instances")


class Level(IntEnum):
    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3

    @classmethod
    def from_plural(cls, plural: str) -> Level:
        """The level a URL segment names (`patients`... `instances`); ValueError for anything else."""
        return cls(_PLURALS.index(plural))

    @property
    def title(self) -> str:
        return ("Patient", "Study", "Series", "Instance")[self]

    @property
    def plural(self) -> str:
        return _PLURALS[self]

    @property
    def children_key(self) -> str:
        return ("Studies", "Series", "Instances", "")[self]

    @property
    def parent_key(self) -> str:
        return ("", "ParentPatient", "ParentStudy", "ParentSeries")[self]


_LEVEL_NAMES = {
    "patient": Level.PATIENT,
    "patients": Level.PATIENT,
    "study": Level.STUDY,
    "studies": Level.STUDY,
    "series": Level.SERIES,
    "instance": Level.INSTANCE,
    "instances": Level.INSTANCE,
    "image": Level.INSTANCE,
    "images": Level.INSTANCE,
}


def parse_level(text: str) -> Level | None:
    """Levels as accepted in request bodies (case-insensitive, plurals too)."""
    return _LEVEL_NAMES.get(text.strip().lower())


def _hash(text: str) -> str:
    d = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return f"{d[:8]}-{d[8:16]}-{d[16:24]}-{d[24:32]}-{d[32:]}"


def _study_key(patient: str, study_uid: str) -> str:
    """What a study's ID hashes; each lower level's key adds its own UID to its parent's."""
    return f"{patient}|{study_uid}"


def study_id(patient: str, study_uid: str) -> str:
    return _hash(_study_key(patient, study_uid))


class OrthancIds(NamedTuple):
    """The Orthanc IDs of an instance and of its series, study and patient.

    A tuple, patient first, so that ``ids[level]`` picks the ID of a :class:`Level`.
    """

    patient: str
    study: str
    series: str
    instance: str


def hierarchy_ids(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> OrthancIds:
    """The four Orthanc IDs of an instance, patient first."""
    study = _study_key(patient, study_uid)
    series = f"{study}|{series_uid}"
    return OrthancIds(_hash(patient), _hash(study), _hash(series), _hash(f"{series}|{sop_uid}"))
