"""The node's HTTP/1.1, as a client sees it on the wire: pipelining, body framing, 100-continue,
HEAD, HTTP/1.0, and malformed requests refused without harm to the connections of others."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from node.context import NodeContext
from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node
from tests.support.raw_http import RawConnection

TIME_LIMIT = 10
Connector = Callable[[NodeContext], Awaitable[RawConnection]]


async def _node(nursery: trio.Nursery, tmp_path: Path, **options: object) -> NodeContext:
    return await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False, **options))


@pytest.fixture
async def connect() -> AsyncIterator[Connector]:
    """Opens connections to a node's HTTP port, closed at the end of the test."""
    opened: list[RawConnection] = []

    async def open_one(node: NodeContext) -> RawConnection:
        opened.append(await RawConnection.open(node.ports["http"]))
        return opened[-1]

    yield open_one
    for connection in opened:
        await connection.aclose()


def _chunked(data: bytes, size: int) -> bytes:
    """``data`` in chunks of ``size`` bytes, with a chunk extension and a trailer, as RFC 9112 allows."""
    parts = [b"%x;note=x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\nX-Trailer: yes\r\n\r\n"


async def test_pipelined_requests_are_answered_in_order(
    connect: Connector, nursery: trio.Nursery, tmp_path: Path
) -> None:
    node = await _node(nursery, tmp_path)
    data = make_dicom(PatientID="PIPE")
    connection = await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await connection.send(
            b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
            + b"GET /patients HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = [await connection.answer() for _ in range(3)]
    assert [answer.status for answer in answers if answer] == [200, 200, 200]
    assert b'"Version"' in answers[0].body  # type: ignore[union-attr]
    assert json.loads(answers[1].body)["Status"] == "Success"  # type: ignore[union-attr]
    assert answers[2].body.count(b'"') == 2  # type: ignore[union-attr]  # one patient ID


async def test_a_chunked_upload_is_stored(connect: Connector, nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await _node(nursery, tmp_path)
    data = make_dicom(PatientID="CHUNKED")
    connection = await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await connection.send(
            b"POST /instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(data, 100)
        )
        stored = await connection.answer("POST")
        await connection.send(b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n")
        after = await connection.answer()
    assert stored is not None and stored.status == 200, stored
    assert after is not None and after.status == 200  # the trailer was read: the connection goes on
    async with client_of(node) as http:
        instance = json.loads(stored.body)["ID"]
        assert (await http.get(f"/instances/{instance}/file")).content == data


async def test_100_continue_is_sent_when_the_body_is_wanted(
    connect: Connector, nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The client waits for it before sending the body; an early answer (401) comes without it."""
    node = await _node(nursery, tmp_path, AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"})
    data = make_dicom()
    head = b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n" % len(data)
    wanted, refused = await connect(node), await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await wanted.send(head + b"Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n")
        interim = await wanted.stream.receive_some(4096)
        await wanted.send(data)
        stored = await wanted.answer("POST")
        await refused.send(head + b"\r\n")
        early = await refused.stream.receive_some(4096)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert stored is not None and stored.status == 200
    assert early.startswith(b"HTTP/1.1 401 ")


async def test_head_has_no_body_and_http10_closes(connect: Connector, nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await _node(nursery, tmp_path)
    connection = await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await connection.send(b"HEAD /system HTTP/1.1\r\nHost: x\r\n\r\nGET /system HTTP/1.0\r\n\r\n")
        head = await connection.answer("HEAD")
        got = await connection.answer()
        closed = await connection.wait_closed()
    assert head is not None and got is not None
    assert head.body == b"" and head.headers["content-length"] == str(len(got.body))
    assert got.headers["connection"] == "close" and closed


async def test_an_answer_of_unknown_length_is_chunked(
    connect: Connector, nursery: trio.Nursery, tmp_path: Path
) -> None:
    node = await _node(nursery, tmp_path)
    async with client_of(node) as http:
        study = (await http.post("/instances", content=make_dicom())).json()["ParentStudy"]
    connection = await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await connection.send(f"GET /studies/{study}/archive HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        archive = await connection.answer()
    assert archive is not None and archive.status == 200
    assert archive.headers["transfer-encoding"] == "chunked" and "content-length" not in archive.headers
    assert archive.body.startswith(b"PK\x03\x04")


MALFORMED = {
    "no version": (b"GET /system\r\nHost: x\r\n\r\n", 400),
    "space in the target": (b"GET /sys tem HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "no host": (b"GET /system HTTP/1.1\r\n\r\n", 400),
    "header without colon": (b"GET /system HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n", 400),
    "folded header": (b"GET /system HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400),
    "length and chunked": (
        b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    "two lengths": (b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    "negative length": (b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "unknown coding": (b"POST /instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "HTTP/3.0": (b"GET /system HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    "head too large": (b"GET /system HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    "bad chunk size": (
        b"POST /instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        400,
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_request_is_refused_and_closes_its_connection(
    connect: Connector, nursery: trio.Nursery, tmp_path: Path, case: str
) -> None:
    request, status = MALFORMED[case]
    node = await _node(nursery, tmp_path)
    bad, good = await connect(node), await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await bad.send(request)
        answer = await bad.answer("POST")
        closed = await bad.wait_closed()
        await good.send(b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n")
        served = await good.answer()
    assert answer is not None and answer.status == status and closed
    assert served is not None and served.status == 200


async def test_http2_preface_closes_the_connection(connect: Connector, nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await _node(nursery, tmp_path)
    connection = await connect(node)
    with trio.fail_after(TIME_LIMIT):
        await connection.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert await connection.answer() is None


FUZZ_REQUESTS = 150
FUZZ_SEED = 20261207
# Requests the mutations start from: a plain GET, an upload by length, a chunked upload.
FUZZ_BASES = (
    b"GET /system?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\n\r\n" + b'{"Level":"Study","Query":{}}   ',
    b"POST /instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
)


def _mutated(rng: random.Random, data: bytes) -> bytes:
    """``data`` with a few bytes changed, removed, repeated or put in, as a faulty client might."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(out))
        kind = rng.randrange(4)
        if kind == 0:
            out[at] = rng.randrange(256)
        elif kind == 1:
            del out[at : at + rng.randint(1, 8)]
        elif kind == 2:
            out[at:at] = out[at : at + rng.randint(1, 16)] * rng.randint(1, 50)
        else:
            out[at:at] = rng.choice([b"\r\n", b"\n", b":", b" ", b"\x00", b"\r\n\r\n", b"chunked", b"99999999"])
    return bytes(out)


async def test_mutated_requests_fail_alone(
    connect: Connector, nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each mutated request gets an answer or a closed connection, within the time limit; the server
    logs no failure of its own and serves the next client as before."""
    node = await _node(nursery, tmp_path)
    rng = random.Random(FUZZ_SEED)
    with trio.fail_after(TIME_LIMIT * 3):
        for _ in range(FUZZ_REQUESTS):
            connection = await connect(node)
            await connection.send(_mutated(rng, rng.choice(FUZZ_BASES)))
            await connection.stream.send_eof()  # what a client sends no more cannot hold the server
            await connection.wait_closed()
        healthy = await connect(node)
        await healthy.send(b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await healthy.answer()
    assert answer is not None and answer.status == 200
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
