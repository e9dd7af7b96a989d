"""Stopping the node unwinds the services in the reverse order of their start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node


async def test_services_stop_in_reverse_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="node.supervisor")
    async with trio.open_nursery() as nursery:
        context = await start_node(nursery, node_config(tmp_path))
        async with client_of(context) as http:
            assert (await http.post("/instances", content=make_dicom())).status_code == 200
        nursery.cancel_scope.cancel()
    stops = [r.getMessage() for r in caplog.records if r.getMessage().endswith("stopped")]
    assert stops == ["http stopped", "dicom stopped", "jobs stopped", "stability stopped", "node stopped"]


async def test_a_port_in_use_stops_what_had_started(tmp_path: Path) -> None:
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = node_config(tmp_path, HttpPort=port)
        with pytest.RaisesGroup(OSError, flatten_subgroups=True):
            async with trio.open_nursery() as nursery:
                await start_node(nursery, config)
    # The same storage opens again: the index was closed cleanly.
    async with trio.open_nursery() as nursery:
        context = await start_node(nursery, node_config(tmp_path))
        assert context.ports["http"] > 0
        nursery.cancel_scope.cancel()
