"""/tools/bulk-content: the description of many resources in one call, at their own level or
at one level of interest reached up or down the hierarchy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..body_fields import boolean, json_object, optional_string, string_list
from ..dicom.ids import Level, parse_level
from ..dicom.json_view import TagFormat
from ..errors import ErrorCode, OrthancError
from ..nesting import load_json
from ..storage.index import Index
from .resources import Resources


@dataclass(frozen=True)
class BulkContentRequest:
    resources: list[str]
    level: Level | None  # None: each resource at its own level
    metadata: bool
    tag_format: TagFormat


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    return boolean(body.get(name, default), ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {name}")


def parse_bulk_content_request(raw: bytes) -> BulkContentRequest:
    """Validate the body; errors carry Orthanc's codes and Details texts."""
    try:
        body = load_json(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):  # nested too deeply included
        body = None
    body = json_object(body, ErrorCode.BAD_REQUEST, "The body must contain a JSON object")
    resources = string_list(
        body.get("Resources"), ErrorCode.BAD_FILE_FORMAT, "List of strings expected in field: Resources"
    )
    level_text = optional_string(body.get("Level"), ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Level")
    level = None
    if level_text is not None:
        level = parse_level(level_text)
        if level is None:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    full, short = _flag(body, "Full", False), _flag(body, "Short", False)
    tag_format = TagFormat.SHORT if short else TagFormat.FULL if full else TagFormat.SIMPLIFY
    return BulkContentRequest(resources, level, _flag(body, "Metadata", True), tag_format)


class BulkContent:
    def __init__(self, index: Index, resources: Resources) -> None:
        self._index = index
        self._resources = resources

    async def _at_level(self, public_id: str, level: Level) -> list[str]:
        """The resources of ``level`` above or below one resource (none when it is unknown)."""
        found = await self._index.level_of(public_id)
        if found is None:
            return []
        if found <= level:
            return await self._index.descendants(public_id, level)  # itself at its own level
        record = await self._index.resource(public_id)
        while record is not None and record.level > level and record.parent is not None:
            record = await self._index.resource(record.parent)
        return [record.public_id] if record is not None and record.level == level else []

    async def _ids(self, request: BulkContentRequest) -> list[str]:
        """Without a level, the known resources as listed (repeats kept); with one, the set of
        resources reached, in the order of their IDs, as Orthanc answers them."""
        if request.level is None:
            return request.resources
        reached: set[str] = set()
        for public_id in request.resources:
            reached.update(await self._at_level(public_id, request.level))
        return sorted(reached)

    async def describe(self, request: BulkContentRequest) -> list[dict[str, Any]]:
        answer = []
        for record in await self._index.resources(await self._ids(request)):
            entry = await self._resources.to_json(record, request.tag_format)
            if request.metadata:
                entry["Metadata"] = dict(record.metadata)
            answer.append(entry)
        return answer
