"""The query/retrieve service behind the C-FIND, C-MOVE and C-GET SCP, independent of the wire.

C-FIND runs on the index: one query gives the main DICOM tags of every resource of the
level, constraints on main tags are checked there, and the counters (NumberOf…Related…,
ModalitiesInStudy, SOPClassesInStudy) come from one more query per chunk of candidates. A
stored file (the first instance of the resource) is read only when the query needs more
than main tags and StorageAccessOnFind allows it; its values then answer the query, as in
Orthanc. How identifiers are read and answers built is in dicom/query.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from ..config import Config
from ..dicom.encodings import character_set_of
from ..dicom.ids import Level
from ..dicom.query import AnswerBuilder, FindAnswer, FindQuery, parse_find, parse_retrieve, stored_values
from ..dicom.tag_numbers import (
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    SOP_CLASSES_IN_STUDY,
)
from ..dicom.tags import format_tag
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..runtime_settings import RuntimeSettings
from ..storage.index import Index
from ..storage.index.base import DescendantSummary
from .ingest import normalize_identifier
from .resources import Resources

log = logging.getLogger(__name__)

# StorageAccessOnFind: may stored files be read to match (Always), only to answer (Answers), never?
STORAGE_ACCESS_MODES = ("Always", "Answers", "Never")
_CHUNK = 256  # candidates whose counters are asked of the index at once


@dataclass(frozen=True)
class FindSettings:
    """The options of C-FIND: which stored files it may read, how it matches names, how much it answers."""

    files_to_match: bool  # a constraint outside the main tags may be checked in a stored file
    files_to_answer: bool  # a key outside the main tags may be answered from a stored file
    case_sensitive_pn: bool
    limit_results: int  # answers at patient, study and series level; 0: no limit
    limit_instances: int  # answers at instance level; 0: no limit

    @classmethod
    def from_config(cls, config: Config) -> FindSettings:
        mode = config["StorageAccessOnFind"]
        if mode not in STORAGE_ACCESS_MODES:
            raise OrthancError(
                ErrorCode.PARAMETER_OUT_OF_RANGE,
                f'The option "StorageAccessOnFind" must be one of {", ".join(STORAGE_ACCESS_MODES)}: {mode}',
            )
        return cls(
            files_to_match=mode == "Always",
            files_to_answer=mode != "Never",
            case_sensitive_pn=bool(config["CaseSensitivePN"]),
            limit_results=int(config["LimitFindResults"]),
            limit_instances=int(config["LimitFindInstances"]),
        )


class FindAnswers:
    """The answers of one C-FIND, found as they are iterated: the search goes no further than
    the iteration (on a C-CANCEL, stop iterating and ``aclose()``). Once iterated to the end, ``complete`` is False if LimitFindResults or
    LimitFindInstances left matches unanswered: the final status is then 0xFE00, not success.
    Errors of the query (OrthancError) are raised by the first iteration."""

    def __init__(self, answers: AsyncGenerator[FindAnswer | None, None]) -> None:
        self._answers = answers
        self.complete = True

    def __aiter__(self) -> FindAnswers:
        return self

    async def __anext__(self) -> FindAnswer:
        answer = await self._answers.__anext__()
        if answer is None:  # the search's mark of a limit reached with matches left
            self.complete = False
            await self._answers.aclose()
            raise StopAsyncIteration
        return answer

    async def aclose(self) -> None:
        await self._answers.aclose()


# The counters of each level, and the level of the descendants each one counts.
_COUNTED: dict[Level, dict[int, Level]] = {
    Level.PATIENT: {
        NUMBER_OF_PATIENT_RELATED_STUDIES: Level.STUDY,
        NUMBER_OF_PATIENT_RELATED_SERIES: Level.SERIES,
        NUMBER_OF_PATIENT_RELATED_INSTANCES: Level.INSTANCE,
    },
    Level.STUDY: {NUMBER_OF_STUDY_RELATED_SERIES: Level.SERIES, NUMBER_OF_STUDY_RELATED_INSTANCES: Level.INSTANCE},
    Level.SERIES: {NUMBER_OF_SERIES_RELATED_INSTANCES: Level.INSTANCE},
    Level.INSTANCE: {},
}


def _counter_values(level: Level, summary: DescendantSummary) -> dict[int, str]:
    counts = {tag: str(summary.counts.get(lower, 0)) for tag, lower in _COUNTED[level].items()}
    if level == Level.STUDY:
        counts[MODALITIES_IN_STUDY] = "\\".join(summary.modalities)
        counts[SOP_CLASSES_IN_STUDY] = "\\".join(summary.sop_classes)
    return counts


def _log_dropped(tag: int, error: OrthancError) -> None:
    log.info("C-FIND: value of %s left out of an answer: %s", format_tag(tag), error.details)


class QueryRetrieve:
    """C-FIND answers and C-MOVE/C-GET resolution over the local index and files.

    ``runtime`` holds the default encoding, which a client may change: it is read at each query.
    """

    def __init__(self, settings: FindSettings, index: Index, resources: Resources, *, runtime: RuntimeSettings) -> None:
        self._index = index
        self._resources = resources
        self._runtime = runtime
        self._files_to_match = settings.files_to_match
        self._files_to_answer = settings.files_to_answer
        self._case_sensitive_pn = settings.case_sensitive_pn
        self._limits = {level: settings.limit_results for level in Level}
        self._limits[Level.INSTANCE] = settings.limit_instances

    # -- C-FIND -----------------------------------------------------------------------------

    def find(self, identifier: Dataset, *, our_aet: str) -> FindAnswers:
        """The answers to a C-FIND identifier, in the order resources were stored."""
        return FindAnswers(self._answers(identifier, our_aet))

    async def _answers(self, identifier: Dataset, our_aet: str) -> AsyncGenerator[FindAnswer | None, None]:
        query = parse_find(identifier, case_sensitive_pn=self._case_sensitive_pn)
        if query.matches_nothing or (query.file_constraints and not self._files_to_match):
            return  # without a file to look into, a constraint outside the main tags matches nothing
        encoding = self._runtime.default_encoding
        builder = AnswerBuilder(query, our_aet, character_set_of(encoding), _log_dropped)
        limit, sent = self._limits[query.level], 0
        async with aclosing(self._matches(query)) as matches:
            async for values, summary in matches:
                if limit and sent == limit:
                    yield None
                    return
                counters = _counter_values(query.level, summary) if summary is not None else {}
                yield builder.build(values, counters)
                sent += 1

    async def _matches(
        self, query: FindQuery
    ) -> AsyncGenerator[tuple[Mapping[str, Any], DescendantSummary | None], None]:
        """Each matching resource: the values that answer for it, and its summary when needed."""
        level = query.level
        read_file = query.answer_needs_file and self._files_to_answer
        summarize = level != Level.INSTANCE and bool(query.counters or query.modalities or read_file)
        rows = await self._index.all_tags_of_level(level)
        for start in range(0, len(rows), _CHUNK):
            chunk = [
                (public_id, tags)
                for public_id, tags in rows[start : start + _CHUNK]
                if all(c.matches(tags.get(format_tag(c.tag))) for c in query.index_constraints)
            ]
            if not chunk:
                continue
            summaries = await self._index.descendant_summaries([i for i, _ in chunk], level) if summarize else {}
            for public_id, tags in chunk:
                summary = summaries.get(public_id)
                if summarize and summary is None:
                    continue  # deleted since the index was read
                modalities = summary.modalities if summary is not None else []
                if query.modalities and not any(c.matches(m) for m in modalities for c in query.modalities):
                    continue
                values: Mapping[str, Any] = tags
                if read_file:
                    instance = public_id if summary is None else summary.first_instance
                    found = await self._stored_values(instance, query)
                    if found is None or not all(
                        c.matches(_text(found.get(format_tag(c.tag)))) for c in query.file_constraints
                    ):
                        continue
                    values = found
                yield values, summary

    async def _stored_values(self, instance: str | None, query: FindQuery) -> dict[str, Any] | None:
        """The values the query asks for in one stored file; None if the instance is gone."""
        if instance is None:
            return None
        try:
            data = await self._resources.instance_file(instance)
        except OrthancError as error:
            if error.code == ErrorCode.UNKNOWN_RESOURCE:
                return None  # deleted since the index was read
            raise
        return await offload(stored_values, data, (*query.keys, *query.sequences))

    # -- C-MOVE and C-GET -------------------------------------------------------------------

    async def instances_to_retrieve(self, identifier: Dataset) -> list[str]:
        """Instances (public IDs, each once, in storage order per designated resource) that a
        C-MOVE or C-GET identifier designates.

        The level's identifier (PatientID; AccessionNumber when it has a value, else
        StudyInstanceUID; SeriesInstanceUID; SOPInstanceUID), possibly a `\\` list, each value
        compared as /tools/lookup does. Without QueryRetrieveLevel, the first identifier
        present among instance, series, study and patient ones decides. Errors (OrthancError):
        no identifier or nothing stored matches (8), unknown level or wildcard (3).
        """
        request = parse_retrieve(identifier)
        tag = format_tag(request.tag)
        resources: dict[str, None] = {}
        for value in request.values:
            found = await self._index.lookup_identifier_at(request.level, tag, normalize_identifier(value))
            resources.update(dict.fromkeys(found))
        instances: dict[str, None] = {}
        for resource in resources:
            instances.update(dict.fromkeys(await self._index.descendants(resource, Level.INSTANCE)))
        if not instances:
            raise OrthancError(ErrorCode.BAD_REQUEST, "No stored resource matches the C-MOVE or C-GET request")
        return list(instances)


def _text(value: Any) -> str | None:
    """A stored value as constraints see it: sequences and binary values are no text."""
    return value if isinstance(value, str) else None
