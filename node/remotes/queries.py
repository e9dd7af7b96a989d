"""The queries made to remote modalities (``POST /modalities/{id}/query``), kept in memory with
their answers so that a client can browse them and retrieve from them later.

At most ``QueryRetrieveSize`` are kept: storing one more drops the query used least
recently (reading a query counts as using it). They are lost when the node stops, as in
Orthanc.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

from pydicom.dataset import Dataset

from ..config import Config
from ..dicom.ids import Level
from ..errors import ErrorCode, OrthancError
from .modality import RemoteModality


@dataclass(frozen=True)
class QueriesSettings:
    size: int  # queries kept at once (at least one)

    @classmethod
    def from_config(cls, config: Config) -> QueriesSettings:
        return cls(size=max(1, int(config["QueryRetrieveSize"])))


@dataclass(frozen=True)
class StoredQuery:
    """One query as it was made, and what the remote answered."""

    modality_name: str  # the symbolic name, as the route named it
    modality: RemoteModality  # its parameters when the query was made: a retrieve goes there
    level: Level
    keys: dict[int, str]  # what the user asked, before normalization and the added keys
    normalize: bool
    local_aet: str | None  # the LocalAet of the request, if any
    timeout: float | None  # the Timeout of the request, if any
    answers: tuple[Dataset, ...]

    def answer(self, index: int) -> Dataset:
        """The answer at ``index``; error 3 out of range, as Orthanc answers."""
        if not 0 <= index < len(self.answers):
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
        return self.answers[index]


class QueryStore:
    """Queries by ID, the least recently used first out."""

    def __init__(self, settings: QueriesSettings) -> None:
        self._size = settings.size
        self._queries: OrderedDict[str, StoredQuery] = OrderedDict()

    def add(self, query: StoredQuery) -> str:
        query_id = str(uuid.uuid4())
        self._queries[query_id] = query
        while len(self._queries) > self._size:
            self._queries.popitem(last=False)
        return query_id

    def get(self, query_id: str) -> StoredQuery:
        """The query (now the most recently used); error 17 for an unknown or dropped ID."""
        query = self._queries.get(query_id)
        if query is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        self._queries.move_to_end(query_id)
        return query

    def delete(self, query_id: str) -> None:
        """Forget the query; an unknown ID is no error (Orthanc answers 200 as well)."""
        self._queries.pop(query_id, None)

    def ids(self) -> list[str]:
        return sorted(self._queries)
