"""A node started in-process on free ports, and an HTTP client talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.config import Config
from node.context import NodeContext
from node.supervisor import serve


def node_config(tmp_path: Path, **overrides: Any) -> Config:
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


async def start_node(nursery: trio.Nursery, config: Config, **kwargs: Any) -> NodeContext:
    return await nursery.start(partial(serve, config, **kwargs))


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module to start the node with other options."""
    return {}


@pytest.fixture
async def node(nursery: trio.Nursery, tmp_path: Path, config_overrides: dict[str, Any]) -> NodeContext:
    return await start_node(nursery, node_config(tmp_path, **config_overrides))


@pytest.fixture
async def http(node: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.ports['http']}", timeout=30) as client:
        yield client
