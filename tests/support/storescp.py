"""DCMTK's storescp as a C-STORE destination on a free loopback port, files written to a folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio

from bench.orthanc_process import free_port

from .dcmtk import dcmtk_tool, without_nagle

STORESCP = dcmtk_tool("storescp")
START_TIMEOUT = 10.0  # seconds for storescp to listen
PROBE_INTERVAL = 0.02  # seconds between connection attempts while it starts (it says nothing when it listens)


@asynccontextmanager
async def running_storescp(folder: Path, aet: str = "STORESCP", options: Sequence[str] = ()) -> AsyncIterator[int]:
    """storescp writing what it receives into ``folder`` (created); yields its port once it listens.

    ``options``: more of storescp's options, e.g. ``["+xi"]`` to accept Implicit VR Little Endian only."""
    if STORESCP is None:
        pytest.skip("DCMTK storescp not found outside the venv (apt-get install dcmtk)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [STORESCP, "-od", str(folder), "--aetitle", aet, *options, str(port)]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            partial(
                trio.run_process, command, env=without_nagle(), capture_stdout=True, capture_stderr=True, check=False
            )
        )
        try:
            with trio.fail_after(START_TIMEOUT):
                while True:
                    try:
                        await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                        break
                    except OSError:
                        await trio.sleep(PROBE_INTERVAL)
            yield port
        finally:
            process.terminate()
