"""The routes that list, describe, create, replace and delete remotes, the same for /modalities and /peers.

Each remote kind registers them on its own blueprint with what differs: where its
registry is and which sub-routes its entries have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from quart import Blueprint, Response, request

from ...errors import OrthancError
from ...remotes.registry import Registry
from ..answers import empty, flag, json_answer, json_body, node, text_answer


class _Described(Protocol):
    def to_json(self) -> dict[str, Any]: ...


async def _entry_body(unparsable: Callable[[], Exception]) -> Any:
    """The JSON body of a PUT; ``unparsable()`` is raised when it is empty or not JSON."""
    try:
        body = await json_body()
    except OrthancError as error:
        raise unparsable() from error
    if body is None:
        raise unparsable()
    return body


def add_registry_routes(
    blueprint: Blueprint,
    path: str,
    registry: Callable[[], Registry[Any]],
    sub_routes: Sequence[str],
    unparsable: Callable[[], Exception],
) -> None:
    """GET ``path`` (names, or with ``?expand`` every entry's public object), GET/PUT/DELETE
    ``path/{id}`` and GET ``path/{id}/configuration``; a PUT whose body is empty or not JSON
    fails with ``unparsable()`` (Orthanc answers differently for modalities and peers)."""

    async def names() -> Response:
        await node().shared.refresh()
        if flag("expand"):
            described: list[tuple[str, _Described]] = registry().items()
            return json_answer({name: entry.to_json() for name, entry in described})
        return json_answer(registry().names())

    async def entry(name: str) -> Response:
        await node().shared.refresh()
        if request.method == "PUT":
            await registry().put(name, await _entry_body(unparsable))
            return text_answer("")
        if request.method == "DELETE":
            await registry().delete(name)
            return text_answer("")
        if registry().find(name) is None:
            return empty(404)  # an unknown name has no sub-routes: Orthanc answers a bare 404
        return json_answer(list(sub_routes))

    async def configuration(name: str) -> Response:
        await node().shared.refresh()
        described: _Described = registry().get(name)
        return json_answer(described.to_json())

    endpoint = path.strip("/")
    blueprint.add_url_rule(path, f"{endpoint}_names", names)
    blueprint.add_url_rule(f"{path}/<name>", f"{endpoint}_entry", entry, methods=["GET", "PUT", "DELETE"])
    blueprint.add_url_rule(f"{path}/<name>/configuration", f"{endpoint}_configuration", configuration)
