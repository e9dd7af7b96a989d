"""Both servers of the differential scenarios: one real Orthanc for the whole folder (it takes
seconds to stop), emptied before each scenario, and a fresh node of ours for each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.compat import SHARED_OPTIONS, Servers, orthanc_reset
from tests.support.node import CLIENT_TIMEOUT, client_of, node_config, start_node
from tests.support.orthanc import RunningOrthanc, running_orthanc


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    folder = tmp_path_factory.mktemp("compat-orthanc")
    (folder / "tmp").mkdir()  # its TemporaryDirectory: Orthanc writes asynchronous archives there
    with running_orthanc(folder, aet="ORTHANC", overrides=SHARED_OPTIONS) as running:
        yield running


@pytest.fixture
async def servers(orthanc: RunningOrthanc, nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Servers]:
    node = await start_node(nursery, node_config(tmp_path, **SHARED_OPTIONS))
    async with client_of(node) as ours, httpx.AsyncClient(base_url=orthanc.http_url, timeout=CLIENT_TIMEOUT) as theirs:
        yield Servers(ours, theirs, await orthanc_reset(theirs))
