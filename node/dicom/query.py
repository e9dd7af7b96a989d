"""Query/retrieve identifiers read the way Orthanc 1.10.1 reads them, and C-FIND answers built.

Pure: a C-FIND identifier comes in, constraints and the list of keys to answer come out; an
answer is built from values the caller found (main DICOM tags of the index, or values of
one stored file in Orthanc's short JSON form). A C-MOVE or C-GET identifier gives the level,
tag and values that designate what to send. The service in services/query_retrieve.py does
the looking up.

Rules measured against Orthanc 1.10.1:
- matching is case-sensitive, except PN values (unless CaseSensitivePN), compared upper-cased
  character by character: accents count (`Test-é` matches `TEST-É`, not `TEST-E`);
- a wildcard in a value of a VR without wildcard matching, or in a date/time range, fails the
  query; inside a list of values (`a\\b*`) it is a literal character;
- a constraint on a main tag of a level below the query level (Modality at study level)
  matches nothing; ModalitiesInStudy is the way to ask that, at study level only;
- each answer holds every key of the query, RetrieveAETitle, QueryRetrieveLevel as asked,
  SpecificCharacterSet of DefaultEncoding (characters that set cannot encode are dropped), and
  the counters asked for at the query's own level (other levels' counters stay empty).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from ..errors import ErrorCode, OrthancError
from .ids import Level, parse_level
from .json_elements import set_from_json
from .json_view import TagFormat, dataset_to_json
from .matching import Constraint, Kind, dictionary_vr, parse_constraint
from .parse import read_dataset
from .tag_numbers import (
    ACCESSION_NUMBER,
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    RETRIEVE_AE_TITLE,
    SERIES_INSTANCE_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_INSTANCE_UID,
)
from .tags import MAIN_TAGS, TextReader, format_tag, raw_vr

# Attributes computed from the index, each answered at its own level only.
COUNTERS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (
        NUMBER_OF_PATIENT_RELATED_STUDIES,
        NUMBER_OF_PATIENT_RELATED_SERIES,
        NUMBER_OF_PATIENT_RELATED_INSTANCES,
    ),
    Level.STUDY: (
        NUMBER_OF_STUDY_RELATED_SERIES,
        NUMBER_OF_STUDY_RELATED_INSTANCES,
        MODALITIES_IN_STUDY,
        SOP_CLASSES_IN_STUDY,
    ),
    Level.SERIES: (NUMBER_OF_SERIES_RELATED_INSTANCES,),
    Level.INSTANCE: (),
}
_ALL_COUNTERS = frozenset(tag for tags in COUNTERS.values() for tag in tags)
_NOT_KEYS = frozenset([SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL])
_WILDCARDS = ("*", "?")

# The lowest level whose main tags hold each tag: a constraint on a tag whose levels all lie
# below the query level matches nothing.
_MAIN_LEVEL: dict[int, Level] = {}
for _level in sorted(Level, reverse=True):
    for _tag in MAIN_TAGS[_level]:
        _MAIN_LEVEL[_tag] = _level


def upper_case(text: str) -> str:
    """Each character upper-cased on its own (`ß` stays, where str.upper would give `SS`)."""
    return "".join(upper if len(upper := c.upper()) == 1 else c for c in text)


@dataclass(frozen=True)
class KeyConstraint:
    """The condition on one key; PN values are compared upper-cased unless CaseSensitivePN."""

    constraint: Constraint
    fold: bool

    @property
    def tag(self) -> int:
        return self.constraint.tag

    def matches(self, value: str | None) -> bool:
        if value is not None and self.fold:
            value = upper_case(value)
        return self.constraint.matches(value)


@dataclass(frozen=True)
class FindQuery:
    """What one C-FIND identifier asks: at which level, which keys, under which conditions."""

    level: Level
    level_text: str  # QueryRetrieveLevel as written, echoed in each answer
    keys: tuple[int, ...]  # answered keys, in the order of the identifier
    sequences: tuple[int, ...]  # sequence keys: copied from a stored file, never matched
    index_constraints: tuple[KeyConstraint, ...]  # on main DICOM tags
    file_constraints: tuple[KeyConstraint, ...]  # on other tags, checked in a stored file
    modalities: tuple[Constraint, ...]  # ModalitiesInStudy: one series must match one of them
    matches_nothing: bool = False

    @functools.cached_property
    def counters(self) -> tuple[int, ...]:
        """The computed attributes the query asks for at its level."""
        return tuple(tag for tag in COUNTERS[self.level] if tag in self.keys)

    @property
    def answer_needs_file(self) -> bool:
        """Whether answers need a stored file: sequences, or keys beyond the main tags and counters."""
        return bool(self.sequences) or any(t not in _MAIN_LEVEL and t not in _ALL_COUNTERS for t in self.keys)


def _text(identifier: Dataset, reader: TextReader, element: RawDataElement | DataElement) -> str | None:
    return reader.text(identifier, element, reader.codec)


def _is_sequence(identifier: Dataset, element: RawDataElement | DataElement) -> bool:
    if isinstance(element, RawDataElement):
        vr = raw_vr(element)
        return vr == "SQ" or (vr is None and identifier[element.tag].VR == "SQ")
    return element.VR == "SQ"


def read_level(identifier: Dataset, operation: str) -> tuple[Level, str] | None:
    """QueryRetrieveLevel and its text, None when absent or empty; error 3 when unknown."""
    element = identifier.get_item(QUERY_RETRIEVE_LEVEL)
    text = _text(identifier, TextReader(identifier), element) if element is not None else None
    if not text:
        return None
    level = parse_level(text)
    if level is None:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"{operation}: unknown QueryRetrieveLevel {text!r}")
    return level, text


def _key_constraint(tag: int, text: str, case_sensitive_pn: bool) -> KeyConstraint | None:
    vr = dictionary_vr(tag)
    fold = vr == "PN" and not case_sensitive_pn
    constraint = parse_constraint(tag, upper_case(text) if fold else text, case_sensitive=True, vr=vr)
    if constraint is not None and constraint.kind is Kind.RANGE and any(w in text for w in _WILDCARDS):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Wildcards are not allowed in a range: {text}")
    return KeyConstraint(constraint, fold) if constraint is not None else None


def _modality_alternatives(text: str) -> tuple[Constraint, ...]:
    """ModalitiesInStudy: a list whose items may hold wildcards, matched case-sensitively."""
    items = (parse_constraint(MODALITIES_IN_STUDY, item, case_sensitive=True, vr="CS") for item in text.split("\\"))
    return tuple(item for item in items if item is not None)


def parse_find(identifier: Dataset, *, case_sensitive_pn: bool) -> FindQuery:
    """Read a C-FIND identifier; error 8 without QueryRetrieveLevel, error 3 on a bad level or value."""
    found = read_level(identifier, "C-FIND")
    if found is None:
        raise OrthancError(ErrorCode.BAD_REQUEST, "C-FIND request without QueryRetrieveLevel (0008,0052)")
    level, level_text = found
    reader = TextReader(identifier)
    keys: list[int] = []
    sequences: list[int] = []
    on_index: list[KeyConstraint] = []
    on_file: list[KeyConstraint] = []
    modalities: tuple[Constraint, ...] = ()
    nothing = False
    for tag in list(identifier.keys()):
        element = identifier.get_item(tag)
        if tag & 0xFFFF == 0 or tag in _NOT_KEYS or element is None:  # group lengths are no keys
            continue
        if _is_sequence(identifier, element):
            sequences.append(tag)
            continue
        keys.append(tag)
        text = _text(identifier, reader, element)
        if not text:
            continue  # a return key only
        if tag == MODALITIES_IN_STUDY:
            modalities = _modality_alternatives(text)
            nothing = nothing or level != Level.STUDY
            continue
        constraint = _key_constraint(tag, text, case_sensitive_pn)
        if constraint is None:
            continue
        main_level = _MAIN_LEVEL.get(tag)
        if main_level is None:
            on_file.append(constraint)
        elif main_level > level:
            nothing = True
        else:
            on_index.append(constraint)
    return FindQuery(
        level, level_text, tuple(keys), tuple(sequences), tuple(on_index), tuple(on_file), modalities, nothing
    )


# -- answers --------------------------------------------------------------------------------


def _answer_codec(charset: str) -> str:
    """The Python codec of the answers' character set (ISO_IR 6: ASCII only)."""
    return "ascii" if charset == "ISO_IR 6" else convert_encodings([charset])[0]


def _representable(value: Any, codec: str) -> Any:
    """A value (strings, nested in sequence items too) without the characters ``codec`` cannot encode."""
    if isinstance(value, str):
        return value.encode(codec, errors="ignore").decode(codec)
    if isinstance(value, list):
        return [{key: _representable(inner, codec) for key, inner in item.items()} for item in value]
    return value


# VRs whose ASCII text an answer holds as it is: such an answer is written without pydicom.
_PLAIN_VRS = frozenset(["AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"])
# A text value that may stand for binary data (a data URI, see set_from_json) is left to pydicom.
_BINARY_URI = "data:"


class FindAnswer:
    """One C-FIND answer. When it holds ASCII text alone (most answers), ``plain`` lists its
    elements, (tag, VR, text) in tag order, for the SCP to write as they are: making them
    pydicom elements cost more than finding the answer. :attr:`dataset` is the answer as
    pydicom has it, made on demand for plain answers."""

    def __init__(self, plain: list[tuple[int, str, str]] | None, dataset: Dataset | None = None) -> None:
        self.plain = plain
        self._dataset = dataset

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = Dataset()
            for tag, vr, text in self.plain or ():
                self._dataset.add(DataElement(tag, vr, text))
        return self._dataset


def _plain(chosen: Mapping[int, Any], vrs: dict[int, str]) -> list[tuple[int, str, str]] | None:
    """The elements of an answer of ASCII text values of plain VRs only; None for any other.
    ``vrs`` keeps the VRs of tags looked up in the dictionary, for the next answers."""
    elements = []
    for tag in sorted(chosen):
        value = chosen[tag]
        if not isinstance(value, str) or not value.isascii() or value.startswith(_BINARY_URI):
            return None
        vr = vrs.get(tag)
        if vr is None:
            vr = vrs[tag] = dictionary_vr(tag)
        if vr not in _PLAIN_VRS:
            return None
        elements.append((tag, vr, value))
    return elements


@dataclass(frozen=True)
class AnswerBuilder:
    """Builds the answers of one query: same keys, same character set for each."""

    query: FindQuery
    retrieve_aet: str
    charset: str
    on_dropped: Callable[[int, OrthancError], None]
    _vrs: dict[int, str] = field(default_factory=dict, compare=False)  # see _plain

    def build(self, values: Mapping[str, Any], counters: Mapping[int, str]) -> FindAnswer:
        """``values``: tag (`gggg,eeee`) → text, None (empty) or sequence items (short JSON);
        ``counters``: the computed attributes of this resource."""
        chosen: dict[int, Any] = {SPECIFIC_CHARACTER_SET: self.charset, RETRIEVE_AE_TITLE: self.retrieve_aet}
        for tag in self.query.keys:
            value = values.get(format_tag(tag))
            chosen[tag] = value if isinstance(value, str) else ""
        chosen[QUERY_RETRIEVE_LEVEL] = self.query.level_text
        chosen.update((tag, counters[tag]) for tag in self.query.counters if tag in counters)
        for tag in self.query.sequences:
            items = values.get(format_tag(tag))
            if isinstance(items, list):
                chosen[tag] = items
        plain = _plain(chosen, self._vrs)  # ASCII text is the same in every character set of answers
        if plain is not None:
            return FindAnswer(plain)
        answer = Dataset()
        answer.add(DataElement(SPECIFIC_CHARACTER_SET, "CS", chosen.pop(SPECIFIC_CHARACTER_SET)))
        codec = _answer_codec(self.charset)
        for tag, value in chosen.items():
            try:
                set_from_json(answer, tag, _representable(value, codec), [codec], "")
            except OrthancError as error:  # a value its VR cannot hold: left out, as Orthanc does
                self.on_dropped(tag, error)
        return FindAnswer(None, answer)


def stored_values(data: bytes, tags: Iterable[int]) -> dict[str, Any]:
    """Values of ``tags`` in a stored file, as Orthanc's short JSON gives them: text, None for
    binary and too long values, items for sequences; absent tags are left out. Blocking."""
    dataset = read_dataset(data, stop_before_pixels=True)
    subset = Dataset()
    for tag in (SPECIFIC_CHARACTER_SET, *tags):
        element = dataset.get_item(tag)
        if element is not None:
            subset[tag] = element
    return dataset_to_json(subset, TagFormat.SHORT)


# -- C-MOVE and C-GET -------------------------------------------------------------------------

# The identifier designating what to retrieve at each level (at study level AccessionNumber
# wins when it has a value), and the levels tried, in order, when the request names none.
_RETRIEVE_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (ACCESSION_NUMBER, STUDY_INSTANCE_UID),
    Level.SERIES: (SERIES_INSTANCE_UID,),
    Level.INSTANCE: (SOP_INSTANCE_UID,),
}
_LEVELS_TRIED = (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT)


@dataclass(frozen=True)
class RetrieveRequest:
    """The resources a C-MOVE or C-GET identifier designates: values of one identifier tag."""

    level: Level
    tag: int
    values: tuple[str, ...]


def parse_retrieve(identifier: Dataset) -> RetrieveRequest:
    """Error 8 without any usable identifier, error 3 on an unknown level or a wildcard."""
    found = read_level(identifier, "C-MOVE/C-GET")
    reader = TextReader(identifier)
    for level in (found[0],) if found else _LEVELS_TRIED:
        for tag in _RETRIEVE_KEYS[level]:
            element = identifier.get_item(tag)
            text = _text(identifier, reader, element) if element is not None else None
            if not text:
                continue
            values = tuple(value for value in text.split("\\") if value)
            if any(w in value for value in values for w in _WILDCARDS):
                raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Wildcards are not allowed to retrieve: {text}")
            return RetrieveRequest(level, tag, values)
    raise OrthancError(ErrorCode.BAD_REQUEST, "C-MOVE/C-GET request without an identifier of what to send")
