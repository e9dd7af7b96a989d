"""The fixtures every test may use: a node started in-process on free ports, and an HTTP client
talking to it. The helpers are in :mod:`tests.support`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from tests.support.node import client_of, node_config, start_node

# The PostgreSQL cluster and the fixtures that run a test on each index backend.
pytest_plugins = ["tests.support.postgres"]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module to start the node with other options."""
    return {}


@pytest.fixture
async def node(nursery: trio.Nursery, tmp_path: Path, config_overrides: dict[str, Any]) -> NodeContext:
    return await start_node(nursery, node_config(tmp_path, **config_overrides))


@pytest.fixture
async def http(node: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(node) as client:
        yield client
