"""Orthanc identifiers: SHA-1 of the DICOM identifiers, as 8-8-8-8-8 hex groups."""

from __future__ import annotations

import functools
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


# The levels in order, for loops run with every store: iterating the enum itself goes through
# its metaclass and a generator each time.
LEVELS: tuple[Level, ...] = tuple(Level)

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


# Series whose parents' IDs are kept: those that instances arrive for at once (associations,
# clients and jobs in parallel), with room to spare.
_SERIES_KEPT = 64


@functools.lru_cache(maxsize=_SERIES_KEPT)
def _parent_ids(patient: str, study_uid: str, series_uid: str) -> tuple[str, str, str, str]:
    """The IDs of the patient, study and series, and the key the instance's ID extends: instances
    come a series at a time, and hashing the three parents again for each was most of the cost."""
    study = _study_key(patient, study_uid)
    series = f"{study}|{series_uid}"
    return _hash(patient), _hash(study), _hash(series), series


def hierarchy_ids(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> OrthancIds:
    """The four Orthanc IDs of an instance, patient first."""
    patient_id, study_id, series_id, series = _parent_ids(patient, study_uid, series_uid)
    return OrthancIds(patient_id, study_id, series_id, _hash(f"{series}|{sop_uid}"))
