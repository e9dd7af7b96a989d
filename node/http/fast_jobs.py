"""POST /{patients,studies,series}/{id}/{modify,anonymize} on the fast path (see fast_path.py).

A client that rewrites resources as jobs submits them one POST each, then polls GET /jobs/{id}
(already on the fast path). Through the app, the framework around a submission (its request,
response and context objects, hooks, dispatch) cost more of the event loop than checking the
resource and queuing the job, and the jobs under way wait for the loop as the requests do.
Here the body is read as the app reads it and the answer made by the same function as the
app's route (:func:`~node.http.routes.rewrite.rewrite_resource`), so both answer alike, errors
included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar

from ..context import NodeContext
from ..dicom.ids import Level
from ..offload import offload
from ..services.ingest import Origin
from .answers import parse_json_body
from .asgi import Message, Receive
from .routes.rewrite import rewrite_resource
from .spool import receive_body

AnswerT = TypeVar("AnswerT")

_LEVELS = {level.plural: level for level in (Level.PATIENT, Level.STUDY, Level.SERIES)}
_ACTIONS = frozenset({"modify", "anonymize"})
_SEGMENTS = 4  # "", plural, ID, action


def rewrite_target(path: str) -> tuple[Level, str, str] | None:
    """(level, resource ID, action) of a path the route serves, as the app's route matches it
    (a single leading slash, no final one)."""
    segments = path.split("/")
    if len(segments) != _SEGMENTS or segments[0] or not segments[2] or segments[3] not in _ACTIONS:
        return None
    level = _LEVELS.get(segments[1])
    return None if level is None else (level, segments[2], segments[3])


Handler = Callable[[Message, Receive, str], Awaitable[AnswerT]]


class FastRewrites(Generic[AnswerT]):
    """The route, for a fast path whose answers ``answer(scope, data)`` makes; ``origin(scope)``
    says who sent a request."""

    def __init__(
        self,
        context: NodeContext,
        answer: Callable[[Message, Any], AnswerT],
        origin: Callable[[Message], Origin],
    ) -> None:
        self._context = context
        self._answer = answer
        self._origin = origin
        self._limit = context.settings.http.maximum_request_size
        self._folder = context.settings.storage.temporary_directory

    def route(self, path: str) -> tuple[Handler[AnswerT], str] | None:
        """The handler of a POST to ``path`` and its argument, if it is served here."""
        target = rewrite_target(path)
        return (partial(self._submit, target), path) if target is not None else None

    async def _submit(self, target: tuple[Level, str, str], scope: Message, receive: Receive, _: str) -> AnswerT:
        level, public_id, action = target
        content = await receive_body(receive, self._limit, self._folder)
        try:
            data = await offload(content.read_all) if content.on_disk else content.read_all()
        finally:
            content.close()
        body = parse_json_body(data)
        origin = self._origin(scope)
        return self._answer(scope, await rewrite_resource(self._context, level, public_id, action, body, origin))
