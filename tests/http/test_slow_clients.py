"""Clients that send or read too slowly are cut; connections over the limit are refused at once.

On virtual time (autojump_clock): the node's timeouts expire as soon as everything waits.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trio
from trio.testing import MockClock

from node.config import DEFAULTS
from node.context import NodeContext
from node.jobs.record import JobRecord, JobState
from tests.support.datasets import make_dataset, random_pixels, to_bytes
from tests.support.jobs import until
from tests.support.node import client_of, node_config, start_node

TIMEOUT = DEFAULTS["HttpRequestTimeout"]
MAX_CONNECTIONS = DEFAULTS["HttpMaximumConnections"]
TRICKLE_PERIOD = 10  # seconds between the bytes of a trickling client
ANNOUNCED = 1024 * 1024  # the body a trickling client announces
PIXEL_DATA = 0x7FE00010
KERNEL_PATIENCE = 0.25  # seconds of real idleness before virtual time jumps (see patient_clock)


async def _node(nursery: trio.Nursery, tmp_path: Path, **options: Any) -> NodeContext:
    return await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False, **options))


async def _trickle(port: int, outcomes: list[str], announced: list[int] | None = None) -> None:
    """Announce a body, then send it a byte every TRICKLE_PERIOD; record how the node ended it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        head = f"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: {ANNOUNCED}\r\n\r\n".encode()
        try:
            await stream.send_all(head + b"\0")
            if announced is not None:
                announced.append(1)
            while True:
                with trio.move_on_after(TRICKLE_PERIOD):
                    answer = await stream.receive_some(65536)
                    outcomes.append(answer.split(b"\r\n")[0].decode() if answer else "closed")
                    return
                await stream.send_all(b"\0")
        except trio.BrokenResourceError:
            outcomes.append("closed")


async def test_trickling_clients_are_cut_and_the_excess_refused(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any
) -> None:
    node = await _node(nursery, tmp_path)
    port = node.ports["http"]
    outcomes: list[str] = []
    clients = MAX_CONNECTIONS + 50
    # Every trickling client is cut well before its body could have arrived (in ANNOUNCED periods).
    with trio.fail_after(3 * TIMEOUT):
        async with trio.open_nursery() as clients_nursery:
            for _ in range(clients):
                clients_nursery.start_soon(_trickle, port, outcomes)
            await until(lambda: len(outcomes) >= clients - MAX_CONNECTIONS)
            # The excess was refused at once, and the others are held, not served:
            assert trio.current_time() < TRICKLE_PERIOD
            assert outcomes == ["HTTP/1.1 503 Service Unavailable"] * (clients - MAX_CONNECTIONS)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/system")).status_code == 503  # no room for anyone meanwhile
    assert outcomes.count("closed") == MAX_CONNECTIONS
    # ...and the node serves again.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/system")).status_code == 200


async def test_others_are_served_while_clients_trickle(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any
) -> None:
    node = await _node(nursery, tmp_path)
    port = node.ports["http"]
    outcomes: list[str] = []
    announced: list[int] = []
    with trio.fail_after(3 * TIMEOUT):
        async with trio.open_nursery() as clients_nursery:
            for _ in range(MAX_CONNECTIONS // 2):
                clients_nursery.start_soon(_trickle, port, outcomes, announced)
            await until(lambda: len(announced) == MAX_CONNECTIONS // 2)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                stored = await http.post("/instances", content=to_bytes(make_dataset()))
                assert stored.status_code == 200
                assert trio.current_time() < TRICKLE_PERIOD  # served at once, the trickling clients still held
    assert outcomes == ["closed"] * (MAX_CONNECTIONS // 2)


async def test_a_slow_but_steady_upload_is_not_cut(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    """Twice the minimum rate, for far longer than the request timeout: it arrives whole."""
    node = await _node(nursery, tmp_path)
    rate = 2 * DEFAULTS["HttpMinimumReceiveRate"]
    dataset = make_dataset()
    dataset.add_new(PIXEL_DATA, "OB", bytes(rate * 5 * TIMEOUT))
    data = to_bytes(dataset)

    async def paced() -> AsyncIterator[bytes]:
        for start in range(0, len(data), rate):
            yield data[start : start + rate]
            await trio.sleep(1)

    async with client_of(node, timeout=None) as http:
        answer = await http.post("/instances", content=paced(), headers={"Content-Length": str(len(data))})
    assert answer.status_code == 200
    assert trio.current_time() > 5 * TIMEOUT


async def _stalled_archive_request(port: int, study: str) -> trio.SocketStream:
    """Ask for a synchronous archive on a socket with a small receive buffer, and never read."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(f"GET /studies/{study}/archive HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return stream


@pytest.fixture
def patient_clock() -> MockClock:
    """Virtual time that moves on only after real idleness: a socket waiting on the kernel's TCP window
    updates (delayed acknowledgements take up to some 200 ms) is not mistaken for a client gone silent."""
    return MockClock(autojump_threshold=KERNEL_PATIENCE)


async def _large_study(http: httpx.AsyncClient) -> str:
    """A study of 16 MB, more than the socket buffers hold; its ID."""
    for _ in range(8):
        stored = await http.post("/instances", content=to_bytes(random_pixels(2 * 1024 * 1024, study_uid="1.2.3.4.5")))
    return str(stored.json()["ParentStudy"])


async def _running(node: NodeContext, count: int) -> list[JobRecord]:
    """Once ``count`` jobs run, those jobs."""
    assert node.jobs is not None
    jobs = node.jobs
    with trio.fail_after(TIMEOUT):
        await until(lambda: sum(r.state is JobState.RUNNING for r in jobs.records()) == count)
    return [r for r in jobs.records() if r.state is JobState.RUNNING]


async def test_stalled_archive_readers_give_the_job_workers_back(
    nursery: trio.Nursery, tmp_path: Path, patient_clock: MockClock
) -> None:
    node = await _node(nursery, tmp_path, ConcurrentJobs=2)
    assert node.jobs is not None
    port = node.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=None) as http:
        study = await _large_study(http)
        stalled = [await _stalled_archive_request(port, study) for _ in range(2)]
        synchronous = await _running(node, 2)
        job = (await http.post(f"/studies/{study}/archive", json={"Asynchronous": True})).json()
        record = node.jobs.get(job["ID"])
        assert record is not None
        with trio.fail_after(10 * TIMEOUT):
            await record.completed.wait()
    assert record.state is JobState.SUCCESS
    assert [r.state for r in synchronous] == [JobState.FAILURE] * 2
    for stream in stalled:
        await stream.aclose()


async def test_a_stalled_reader_does_not_delay_the_stop(tmp_path: Path, patient_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        node = await _node(nursery, tmp_path)
        async with client_of(node, timeout=None) as http:
            study = await _large_study(http)
        stalled = await _stalled_archive_request(node.ports["http"], study)
        await _running(node, 1)
        # Virtual time moves only once the node is idle: its send to the silent client is stalled by then.
        await trio.sleep(TIMEOUT / 2)
        stop = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - stop < TIMEOUT / 4  # not the rest of the send's timeout
    await stalled.aclose()


async def test_http2_is_not_served(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Its many requests per connection would escape the limits kept per request; Orthanc serves none either."""
    node = await _node(nursery, tmp_path)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    headers = [(":method", "GET"), (":path", "/system"), (":scheme", "http"), (":authority", "127.0.0.1")]
    client.send_headers(1, headers, end_stream=True)
    events = []
    stream = await trio.open_tcp_stream("127.0.0.1", node.ports["http"])
    async with stream:
        await stream.send_all(client.data_to_send())
        with trio.fail_after(TIMEOUT):
            while data := await stream.receive_some(65536):
                events += client.receive_data(data)
    assert not any(isinstance(event, h2.events.ResponseReceived) for event in events)
