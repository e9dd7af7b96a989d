"""C-FIND as an SCU: the identifier of an outgoing query, the association that carries it, and
its answers.

The identifier follows Orthanc's rules, which clients rely on:

* ``Normalize`` (on by default) keeps only the keys a remote may be asked at the level: the
  tags of the level's module and of its ancestors' modules, the level's computed attributes
  (counters, ModalitiesInStudy...) and SpecificCharacterSet. Then the modality's
  manufacturer may need a universal wildcard (``*``) sent as an empty value (see
  :func:`_patch_for_manufacturer`).
* Whatever the normalization, the query gets its QueryRetrieveLevel and, when the user
  gave none, the identifier keys of its level and above as return keys (``*`` for GE, an
  empty value for everyone else).
* Patient Root at the patient level, Study Root at every other one.

A remote that answers nonsense (an unreadable identifier, too many answers) fails the
request with Orthanc's network error; it never reaches the node's state.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import datadict
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

from ..dicom.ids import Level
from ..dicom.json_elements import check_shape, dataset_encodings, set_from_json
from ..dicom.json_view import TagFormat, dataset_to_json, tags_json_by_key
from ..dicom.modules import MODULE_TAGS
from ..dicom.tag_numbers import (
    ACCESSION_NUMBER,
    MEDIA_STORAGE_SOP_CLASS_UID,
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_INSTANCE_UID,
)
from ..dicom.tags import format_tag, parse_tag
from ..errors import ErrorCode, OrthancError
from ..remotes.modality import RemoteModality
from .ul.dimse import CANCELLED, SUCCESS
from .ul.negotiate import PATIENT_ROOT_FIND, STUDY_ROOT_FIND, VERIFICATION
from .ul.requestor import FindResult, associate

log = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
# Answers of one C-FIND kept at most: past this, the remote is asked to stop and the request
# fails (a query that broad is better narrowed than held in memory).
MAX_FIND_ANSWERS = 100_000
UNIVERSAL_WILDCARD = "*"
UNPROCESSABLE = 422  # the HTTP status of a query the remote refused, as Orthanc answers it
_QUERY_SYNTAXES: list[str | UID] = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
_MODELS = 8  # query/retrieve models: find, move and get in both roots, and the worklist

#: QueryRetrieveLevel of each level, as sent on the wire.
QUERY_LEVELS = {Level.PATIENT: "PATIENT", Level.STUDY: "STUDY", Level.SERIES: "SERIES", Level.INSTANCE: "IMAGE"}
_FIND_MODELS = {Level.PATIENT: PATIENT_ROOT_FIND}

#: The identifiers that designate one answer of a level, as a C-MOVE of it sends them.
RETRIEVE_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (STUDY_INSTANCE_UID,),
    Level.SERIES: (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID),
    Level.INSTANCE: (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID),
}
# Identifier keys each level's query always carries, from the patient down.
_ADDED_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (PATIENT_ID, STUDY_INSTANCE_UID, ACCESSION_NUMBER),
    Level.SERIES: (PATIENT_ID, STUDY_INSTANCE_UID, ACCESSION_NUMBER, SERIES_INSTANCE_UID),
    Level.INSTANCE: (PATIENT_ID, STUDY_INSTANCE_UID, ACCESSION_NUMBER, SERIES_INSTANCE_UID, SOP_INSTANCE_UID),
}
_COMPUTED_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (
        NUMBER_OF_PATIENT_RELATED_STUDIES,
        NUMBER_OF_PATIENT_RELATED_SERIES,
        NUMBER_OF_PATIENT_RELATED_INSTANCES,
    ),
    Level.STUDY: (
        MODALITIES_IN_STUDY,
        NUMBER_OF_STUDY_RELATED_SERIES,
        NUMBER_OF_STUDY_RELATED_INSTANCES,
        SOP_CLASSES_IN_STUDY,
    ),
    Level.SERIES: (NUMBER_OF_SERIES_RELATED_INSTANCES,),
    Level.INSTANCE: (),
}
_QUERY_KEYS_EXPECTED = "Associative array of DICOM tags to strings expected in field: Query"
# Details of the failure statuses a C-FIND or C-MOVE may end with.
_STATUS_MEANINGS = {
    0xA700: "refused - out of resources",
    0xA701: "refused - out of resources, number of matches",
    0xA702: "refused - out of resources, sub-operations",
    0xA801: "refused - move destination unknown",
    0xA900: "identifier does not match SOP class",
    0x0122: "SOP class not supported",
    0xFE00: "cancelled",
}


def find_model(level: Level) -> str:
    """The information model of a C-FIND at ``level``: Patient Root for patients, else Study Root."""
    return _FIND_MODELS.get(level, STUDY_ROOT_FIND)


def parse_query_keys(value: Any) -> dict[int, str]:
    """The ``Query`` of a request body: tag (name or hex) -> string, in the order given."""
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _QUERY_KEYS_EXPECTED)
    keys: dict[int, str] = {}
    for name, text in value.items():
        try:
            tag = int(parse_tag(name))
        except OrthancError:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _QUERY_KEYS_EXPECTED) from None
        if not isinstance(text, str):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _QUERY_KEYS_EXPECTED)
        keys[tag] = text
    return keys


def allowed_keys(level: Level) -> frozenset[int]:
    """What a normalized query of ``level`` may ask: its modules and its ancestors', its computed
    attributes, SpecificCharacterSet."""
    tags = {SPECIFIC_CHARACTER_SET, *_COMPUTED_KEYS[level]}
    for upper in Level:
        if upper <= level:
            tags |= MODULE_TAGS[upper]
    return frozenset(tags)


def _normalized(level: Level, keys: Mapping[int, str]) -> dict[int, str]:
    allowed = allowed_keys(level)
    dropped = [format_tag(tag) for tag in keys if tag not in allowed]
    if dropped:
        log.info("C-FIND at %s level: keys not asked at that level left out: %s", level.title, ", ".join(dropped))
    return {tag: value for tag, value in keys.items() if tag in allowed}


def _is_date(tag: int) -> bool:
    try:
        return str(datadict.dictionary_VR(tag)) == "DA"
    except KeyError:
        return False


def _patch_for_manufacturer(keys: Mapping[int, str], manufacturer: str) -> dict[int, str]:
    """Remotes that do not take ``*`` as "anything": they get an empty value instead (the same
    meaning in DICOM), for dates only or for every key."""
    every_key = manufacturer == "GenericNoUniversalWildcard"
    dates_only = manufacturer == "GenericNoWildcardInDates"
    if not (every_key or dates_only):
        return dict(keys)
    return {
        tag: "" if value == UNIVERSAL_WILDCARD and (every_key or _is_date(tag)) else value
        for tag, value in keys.items()
    }


def _dataset(keys: Mapping[int, Any], character_set: str) -> Dataset:
    """A dataset of JSON values (strings, or lists of items for sequences), text encoded in
    ``character_set`` unless the keys name another one."""
    dataset = Dataset()
    dataset.SpecificCharacterSet = keys.get(SPECIFIC_CHARACTER_SET) or character_set
    encodings = dataset_encodings(dataset)
    for tag, value in keys.items():
        if tag != SPECIFIC_CHARACTER_SET:
            check_shape(tag, value)
            set_from_json(dataset, tag, value or None, encodings, "")
    return dataset


def find_identifier(
    level: Level, keys: Mapping[int, str], *, normalize: bool, manufacturer: str, character_set: str
) -> Dataset:
    """The identifier a query of ``level`` sends (see the module docstring)."""
    sent = _patch_for_manufacturer(_normalized(level, keys), manufacturer) if normalize else dict(keys)
    universal = UNIVERSAL_WILDCARD if manufacturer == "GE" else ""
    for tag in _ADDED_KEYS[level]:
        sent.setdefault(tag, universal)
    sent[QUERY_RETRIEVE_LEVEL] = QUERY_LEVELS[level]
    return _dataset(sent, character_set)


def identifier_of(keys: Mapping[str, Any], character_set: str) -> Dataset:
    """An identifier from tag names (or hex) to JSON values: strings, null, lists of items for
    sequences (a worklist query, a retrieve)."""
    return _dataset({int(parse_tag(name)): value for name, value in keys.items()}, character_set)


def status_failure_details(operation: str, called_aet: str, status: int, hint: str) -> str:
    """Orthanc's words for an operation that ended with a failure status; ``hint`` for a 0xCxxx one."""
    meaning = _STATUS_MEANINGS.get(status, hint)
    return f'{operation} SCU to AET "{called_aet}" has failed with DIMSE status 0x{status:04X} ({meaning})'


@dataclass(frozen=True)
class RemoteCall:
    """Who we call, as whom, with which bound on each wait."""

    modality: RemoteModality
    calling_aet: str
    timeout: float | None  # seconds; None: the requestor's default


@functools.lru_cache(maxsize=_MODELS)
def query_proposals(model: str) -> tuple[PresentationContext, ...]:
    """Verification beside a query or retrieve model, as Orthanc proposes: a remote that knows
    nothing of the model still associates, and its refusal of the model is reported as such.
    Built once per model (pynetdicom validates every UID) and never changed: an association
    numbers what it proposes without touching these."""
    return (build_context(VERIFICATION, _QUERY_SYNTAXES), build_context(model, _QUERY_SYNTAXES))


async def run_find(remote: RemoteCall, identifier: Dataset, model: str) -> list[Dataset]:
    """Every answer of a C-FIND of ``identifier`` in ``model``; Orthanc's errors when there are none."""
    modality = remote.modality
    async with associate(
        modality.host,
        modality.port,
        calling_aet=remote.calling_aet,
        called_aet=modality.aet,
        contexts=query_proposals(model),
        timeout=remote.timeout,
    ) as peer:
        if peer.context_for(model) is None:
            raise OrthancError(ErrorCode.DICOM_FIND_UNAVAILABLE, f"Remote AET is {modality.aet}")
        try:
            result: FindResult = await peer.c_find(identifier, model, limit=MAX_FIND_ANSWERS + 1)
        except OrthancError as error:
            if error.code is not ErrorCode.BAD_FILE_FORMAT:
                raise
            raise OrthancError(
                ErrorCode.NETWORK_PROTOCOL, f'C-FIND SCU to AET "{modality.aet}": an answer cannot be read'
            ) from error
    if len(result.answers) > MAX_FIND_ANSWERS:
        raise OrthancError(
            ErrorCode.NETWORK_PROTOCOL,
            f'C-FIND SCU to AET "{modality.aet}": more than {MAX_FIND_ANSWERS} answers, narrow the query',
        )
    # 0xFE00 also ends a C-FIND that the remote cut at its own limit: the answers sent are good.
    if result.status not in (SUCCESS, CANCELLED):
        details = status_failure_details("C-FIND", modality.aet, result.status, "unable to process - invalid query ?")
        raise OrthancError(ErrorCode.NETWORK_PROTOCOL, details, status=UNPROCESSABLE)
    return result.answers


async def find(
    remote: RemoteCall,
    level: Level,
    keys: Mapping[int, str],
    *,
    normalize: bool = True,
    character_set: str,
) -> list[Dataset]:
    """The answers of a query of ``level`` (see :func:`find_identifier`)."""
    identifier = find_identifier(
        level, keys, normalize=normalize, manufacturer=remote.modality.manufacturer, character_set=character_set
    )
    return await run_find(remote, identifier, find_model(level))


# Orthanc keeps each answer as a DICOM file, whose meta header repeats the answer's SOP class
# and instance: its JSON shows them too, and clients may read them there.
_META_COPIES = ((SOP_CLASS_UID, MEDIA_STORAGE_SOP_CLASS_UID), (SOP_INSTANCE_UID, MEDIA_STORAGE_SOP_INSTANCE_UID))


def answer_json(answer: Dataset, fmt: TagFormat) -> dict[str, Any]:
    """An answer as Orthanc shows it."""
    copies = [(meta, answer[tag].value) for tag, meta in _META_COPIES if tag in answer and answer[tag].value]
    if copies:
        answer = copy.copy(answer)
        for meta, value in copies:
            answer.add(DataElement(meta, "UI", value))
    return dataset_to_json(answer, fmt)


def keys_json(keys: Mapping[int, str], fmt: TagFormat) -> dict[str, Any]:
    """Query keys as Orthanc shows them, in tag order."""
    return tags_json_by_key({format_tag(tag): keys[tag] for tag in sorted(keys)}, fmt)
