"""The files of a send job, read ahead: same bytes, same order, and the error of an instance that
vanished comes at its turn, not before."""

from __future__ import annotations

import gzip

import httpx
import pytest

from node.context import NodeContext
from node.errors import ErrorCode, OrthancError
from node.net import read_ahead
from node.net.read_ahead import FileReadAhead
from tests.support.datasets import make_dicom
from tests.support.rest import upload

COUNT = 40  # more than one batch read ahead


async def _stored(http: httpx.AsyncClient, count: int) -> list[str]:
    return [(await upload(http, make_dicom(patient_id="AHEAD", instance_number=n)))["ID"] for n in range(count)]


async def _file(http: httpx.AsyncClient, instance: str) -> bytes:
    return (await http.get(f"/instances/{instance}/file")).content


async def test_every_file_in_order_across_batches(
    node: NodeContext, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_ahead, "AHEAD_FILES", 8)
    monkeypatch.setattr(read_ahead, "GROUP_BYTES", 1)  # one file per worker call: every group boundary
    instances = await _stored(http, COUNT)
    files = FileReadAhead(node.services, instances)
    assert [await files.get(i) for i in range(COUNT)] == [await _file(http, i) for i in instances]
    files.close()


async def test_a_resumed_run_and_a_transform(node: NodeContext, http: httpx.AsyncClient) -> None:
    instances = await _stored(http, 5)
    files = FileReadAhead(node.services, instances, gzip.compress)
    assert gzip.decompress(await files.get(0)) == await _file(http, instances[0])
    assert gzip.decompress(await files.get(3)) == await _file(http, instances[3])  # skipped ahead
    assert gzip.decompress(await files.get(1)) == await _file(http, instances[1])  # and back (a new run)
    files.close()


async def test_vanished_instances_fail_at_their_turn(node: NodeContext, http: httpx.AsyncClient) -> None:
    instances = await _stored(http, 6)
    attachment = await node.index.dicom_attachment(instances[4])
    assert attachment is not None
    node.files.path_of(attachment.uuid).unlink()  # the file gone, the index unaware
    files = FileReadAhead(node.services, [*instances[:2], "no-such-instance", *instances[2:]])
    assert await files.get(0) == await _file(http, instances[0])
    assert await files.get(1) == await _file(http, instances[1])
    with pytest.raises(OrthancError) as unknown:
        await files.get(2)
    assert unknown.value.code == ErrorCode.UNKNOWN_RESOURCE
    assert await files.get(3) == await _file(http, instances[2])
    assert await files.get(4) == await _file(http, instances[3])
    with pytest.raises(OrthancError) as missing:
        await files.get(5)
    assert missing.value.code == ErrorCode.INEXISTENT_FILE
    assert await files.get(6) == await _file(http, instances[5])
    files.close()


async def test_refilled_beside_the_send(
    node: NodeContext, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a send job does: the next files looked up and started while one goes out, so that
    ``get`` never waits on the index."""
    monkeypatch.setattr(read_ahead, "AHEAD_FILES", 8)
    monkeypatch.setattr(read_ahead, "LOOKUP_FILES", 16)  # two windows of reads per lookup
    instances = await _stored(http, COUNT)
    files = FileReadAhead(node.services, instances)
    lookups = 0  # instances looked up
    looked_up = node.index.dicom_attachments

    async def counted(asked: list[str]) -> object:
        nonlocal lookups
        lookups += len(asked)
        return await looked_up(asked)

    got = [await files.get(0)]
    monkeypatch.setattr(node.index, "dicom_attachments", counted)
    for position in range(1, COUNT):
        if files.refill_due():
            await files.refill(position)
            assert not files.refill_due()
        before = lookups
        got.append(await files.get(position))
        assert lookups == before  # taken as read ahead, not looked up in turn
    assert lookups == COUNT - read_ahead.LOOKUP_FILES  # each looked up once, after the first query
    files.close()
    monkeypatch.undo()
    assert got == [await _file(http, i) for i in instances]


async def test_beside_starts_reads_from_what_one_lookup_found(
    node: NodeContext, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending through ``beside``: the reads of several windows come from one index query, and
    every file still arrives, in order."""
    monkeypatch.setattr(read_ahead, "AHEAD_FILES", 4)
    monkeypatch.setattr(read_ahead, "LOOKUP_FILES", 16)
    instances = await _stored(http, COUNT)
    queries = 0
    looked_up = node.index.dicom_attachments

    async def counted(asked: list[str]) -> object:
        nonlocal queries
        queries += 1
        return await looked_up(asked)

    monkeypatch.setattr(node.index, "dicom_attachments", counted)
    files = FileReadAhead(node.services, instances)
    sent: list[bytes] = []
    for position in range(COUNT):
        data = await files.get(position)

        async def send(data: bytes = data) -> None:
            sent.append(data)

        await files.beside(position, send)
    files.close()
    assert queries == -(-COUNT // read_ahead.LOOKUP_FILES)  # 40 instances, 16 per query: 3 queries
    monkeypatch.undo()
    assert sent == [await _file(http, i) for i in instances]
