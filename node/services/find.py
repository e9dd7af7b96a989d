"""Local search: POST /tools/find and /tools/lookup.

Constraints on main DICOM tags are checked against the index; the others against
the stored file of one instance of each candidate, read only for candidates that
already passed the index, and only until the requested page is full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from ..body_fields import boolean, integer, json_object, string
from ..dicom.ids import Level, parse_level
from ..dicom.json_view import TagFormat
from ..dicom.matching import Constraint, parse_constraint
from ..dicom.parse import read_dataset
from ..dicom.tag_numbers import MODALITIES_IN_STUDY
from ..dicom.tags import MAIN_TAGS, format_tag, parse_tag, shown_text, text_translation, too_long
from ..errors import ErrorCode, OrthancError
from ..nesting import load_json
from ..offload import offload
from ..storage.index import Index
from .ingest import normalize_identifier
from .resources import Resources

# The levels whose main tags include each tag.
_MAIN_LEVELS: dict[int, set[Level]] = {}
for _level, _tags in MAIN_TAGS.items():
    for _tag in _tags:
        _MAIN_LEVELS.setdefault(_tag, set()).add(_level)


@dataclass
class FindRequest:
    level: Level
    constraints: list[Constraint] = field(default_factory=list)
    expand: bool = False
    since: int = 0
    limit: int = 0  # 0: no limit
    tag_format: TagFormat = TagFormat.SIMPLIFY
    # ModalitiesInStudy: a study matches when one of its series has a modality matching one of these.
    modalities: tuple[Constraint, ...] = ()


def _counts(body: dict[str, Any], *keys: str) -> list[int]:
    """Limit and Since: both must be integers before either is checked for its sign (Orthanc's order)."""
    values = [integer(body.get(key, 0), ErrorCode.BAD_REQUEST, f'Field "{key}" should be an integer') for key in keys]
    for key, value in zip(keys, values, strict=True):
        if value < 0:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Field "{key}" should be a positive integer')
    return values


def _flag(body: dict[str, Any], key: str) -> bool:
    return boolean(body.get(key, False), ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {key}")


def body_tag_format(body: dict[str, Any], default: TagFormat = TagFormat.SIMPLIFY) -> TagFormat:
    """`Simplify`, then `Short`, then `Full`: the first one true wins, as with URL flags."""
    flags = [(_flag(body, "Simplify"), TagFormat.SIMPLIFY), (_flag(body, "Short"), TagFormat.SHORT)]
    flags.append((_flag(body, "Full"), TagFormat.FULL))
    return next((fmt for on, fmt in flags if on), default)


def parse_find_request(raw: bytes) -> FindRequest:
    """Validate a /tools/find body; errors carry Orthanc's codes and Details texts."""
    try:
        body = load_json(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):  # nested too deeply included
        body = None
    body = json_object(body, ErrorCode.BAD_REQUEST, "The body must contain a JSON object")
    level_text = string(body.get("Level"), ErrorCode.BAD_REQUEST, 'Field "Level" is missing, or should be a string')
    query = json_object(
        body.get("Query"), ErrorCode.BAD_REQUEST, 'Field "Query" is missing, or should be a JSON object'
    )
    case_sensitive = boolean(
        body.get("CaseSensitive", False), ErrorCode.BAD_REQUEST, 'Field "CaseSensitive" should be a Boolean'
    )
    limit, since = _counts(body, "Limit", "Since")
    expand, tag_format = _flag(body, "Expand"), body_tag_format(body)
    level = parse_level(level_text)
    if level is None:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown resource level: {level_text}")
    constraints = []
    modalities: tuple[Constraint, ...] = ()
    for name in sorted(query):
        value = string(query[name], ErrorCode.BAD_REQUEST, f'Tag "{name}" should be associated with a string')
        if not value:
            continue  # universal match: the tag is not even looked up
        tag = int(parse_tag(name))
        if tag == MODALITIES_IN_STUDY:  # a list whose items may hold wildcards
            items = (parse_constraint(tag, item, case_sensitive=case_sensitive) for item in value.split("\\"))
            modalities = tuple(item for item in items if item is not None)
            continue
        constraint = parse_constraint(tag, value, case_sensitive=case_sensitive)
        if constraint is not None:
            constraints.append(constraint)
    return FindRequest(level, constraints, expand, since, limit, tag_format, modalities)


def _split(constraints: list[Constraint], level: Level) -> tuple[list[Constraint], list[Constraint]] | None:
    """Index constraints and file constraints; None when a tag belongs to a lower level only.

    Orthanc 1.10.1 matches nothing in that case (e.g. Modality at study level).
    """
    indexed, in_file = [], []
    for constraint in constraints:
        levels = _MAIN_LEVELS.get(constraint.tag)
        if not levels:
            in_file.append(constraint)
        elif min(levels) <= level:
            indexed.append(constraint)
        else:
            return None
    return indexed, in_file


def _file_value(dataset: Dataset, tag: int) -> str | None:
    """A top-level value as Orthanc matches it: sequences, binary and too long values are absent."""
    if tag not in dataset:
        return None
    raw = dataset.get_item(tag)
    text = shown_text(dataset[tag], raw, text_translation(dataset))
    return None if text is None or too_long(text) else text


class Finder:
    """Searches of the local index; stateless, so a route builds one per call."""

    def __init__(self, index: Index, resources: Resources) -> None:
        self._index = index
        self._resources = resources

    async def find(self, request: FindRequest) -> list[str]:
        """Matching IDs in creation order, after skipping ``since`` and up to ``limit``."""
        split = _split(request.constraints, request.level)
        if split is None or (request.modalities and request.level != Level.STUDY):
            return []  # ModalitiesInStudy is a key of studies only
        indexed, in_file = split
        wanted = request.since + request.limit if request.limit else None
        found: list[str] = []
        for public_id, tags in await self._index.all_tags_of_level(request.level):
            if not all(c.matches(tags.get(format_tag(c.tag))) for c in indexed):
                continue
            if request.modalities and not await self._has_modality(public_id, request.modalities):
                continue
            if in_file and not await self._file_matches(public_id, request.level, in_file):
                continue
            found.append(public_id)
            if wanted is not None and len(found) >= wanted:
                break
        return found[request.since :]

    async def _has_modality(self, study: str, modalities: tuple[Constraint, ...]) -> bool:
        summary = (await self._index.descendant_summaries([study], Level.STUDY)).get(study)
        found = summary.modalities if summary is not None else []
        return any(constraint.matches(modality) for modality in found for constraint in modalities)

    async def _file_matches(self, public_id: str, level: Level, constraints: list[Constraint]) -> bool:
        instance = public_id
        if level != Level.INSTANCE:
            instances = await self._index.descendants(public_id, Level.INSTANCE)
            if not instances:
                return False
            instance = instances[0]
        data = await self._resources.instance_file(instance)
        dataset = await offload(lambda: read_dataset(data, stop_before_pixels=True))
        return all(constraint.matches(_file_value(dataset, constraint.tag)) for constraint in constraints)

    async def answer(self, request: FindRequest) -> list[Any]:
        ids = await self.find(request)
        if request.expand:
            return await self._resources.many_json(ids, request.tag_format)
        return ids

    async def lookup(self, text: str) -> list[dict[str, str]]:
        """Resources whose PatientID, Study/Series/SOPInstanceUID equals the normalized value."""
        value = normalize_identifier(text)
        if not value:
            return []
        return [
            {"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.title}
            for public_id, level in await self._index.lookup_identifier(value)
        ]
