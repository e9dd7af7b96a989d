"""A small instance received alone has its file write deferred (see Ingest.receive): run by the
index thread once its rows are in, or started in a worker when the index is busy, or never when
the instance is abandoned first. Each way ends with the file and its index entry both there, or
neither."""

from __future__ import annotations

import httpx
import trio

from node.context import NodeContext
from node.dicom.parse import parse_instance
from node.services.ingest import Origin
from tests.support.datasets import make_dicom
from tests.support.storage import stored_files


async def test_an_instance_abandoned_before_its_write_ran_leaves_no_file(
    http: httpx.AsyncClient, node: NodeContext
) -> None:
    prepared = await node.ingest.receive(make_dicom(), Origin(), parse_instance, inline=True)
    path = node.files.path_of(prepared.new.attachment.uuid)
    assert prepared.written is not None
    assert not path.exists() or path.stat().st_size == 0  # not written yet (a reserved name is an empty file)
    await node.ingest.abandon(prepared)
    assert not stored_files(node.files)
    assert prepared.new.attachment.uuid not in node.files.reserved()  # its name is not handed out again
    assert (await http.get("/instances")).json() == []


async def test_instances_committed_together_are_each_written_once_and_indexed(
    http: httpx.AsyncClient, node: NodeContext
) -> None:
    """The first commit finds the index idle (its write runs there), the others find it busy
    (theirs start in workers): every file is written and indexed."""
    bodies = [make_dicom(instance_number=i + 1) for i in range(6)]
    prepared = [await node.ingest.receive(body, Origin(), parse_instance, inline=True) for body in bodies]
    async with trio.open_nursery() as nursery:
        for one in prepared:
            nursery.start_soon(node.ingest.commit, one)
    assert len(stored_files(node.files)) == 6
    assert len((await http.get("/instances")).json()) == 6
    for one, body in zip(prepared, bodies, strict=True):
        assert node.files.read(one.new.attachment.uuid) == body
