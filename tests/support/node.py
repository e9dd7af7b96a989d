"""A node started in-process on free loopback ports, a client for it, and a node a test stops itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio
from quart import Blueprint

from node.config import Config
from node.context import NodeContext
from node.http.routes import ALL_BLUEPRINTS
from node.jobs.engine import JobsEngine
from node.supervisor import serve

CLIENT_TIMEOUT = 30.0  # seconds; a test that needs longer bounds its own waits


def node_config(tmp_path: Path, **overrides: Any) -> Config:
    """Storage under ``tmp_path``, both servers on free loopback ports; ``overrides`` on top."""
    values: dict[str, Any] = {
        "StorageDirectory": str(tmp_path / "storage"),
        "HttpPort": 0,
        "DicomPort": 0,
        "HttpBindAddress": "127.0.0.1",
        "DicomBindAddress": "127.0.0.1",
        "TemporaryDirectory": str(tmp_path / "tmp"),
    }
    values.update(overrides)
    return Config(values)


@contextmanager
def routes_added(routes: Sequence[Blueprint]) -> Iterator[None]:
    """The app registers ALL_BLUEPRINTS when it is created: ``routes`` are among them for that moment."""
    ALL_BLUEPRINTS.extend(routes)
    try:
        yield
    finally:
        for blueprint in routes:
            ALL_BLUEPRINTS.remove(blueprint)


async def start_node(
    nursery: trio.Nursery, config: Config, *, routes: Sequence[Blueprint] = (), **options: Any
) -> NodeContext:
    """A node serving in ``nursery`` once it is ready; ``routes`` are test-only blueprints its app
    serves besides its own, ``options`` go to :func:`serve` (``file_store``, ``load_jobs``)."""
    with routes_added(routes):
        return await nursery.start(partial(serve, config, **options))


def client_of(node: NodeContext, **options: Any) -> httpx.AsyncClient:
    """An HTTP client of the node's REST API (use it in ``async with``)."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{node.ports['http']}", **{"timeout": CLIENT_TIMEOUT, **options}
    )


def jobs_of(node: NodeContext) -> JobsEngine:
    """The node's jobs engine (there is one once the node has started)."""
    assert node.jobs is not None
    return node.jobs


@dataclass
class StoppableNode:
    """A node that the test stops itself, while the rest of the test goes on."""

    context: NodeContext
    scope: trio.CancelScope
    stopped: trio.Event

    def stop(self) -> None:
        self.scope.cancel()


async def start_stoppable_node(nursery: trio.Nursery, config: Config) -> StoppableNode:
    scope, stopped = trio.CancelScope(), trio.Event()

    async def run_node(task_status: trio.TaskStatus[NodeContext]) -> None:
        with scope:
            await serve(config, task_status=task_status)
        stopped.set()

    return StoppableNode(await nursery.start(run_node), scope, stopped)


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since ``before``, except Trio's cache of idle worker threads."""
    return [t for t in threading.enumerate() if t not in before and not t.name.startswith("Trio thread")]
