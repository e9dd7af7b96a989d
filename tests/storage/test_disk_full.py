"""A full disk, for real: a tiny tmpfs mounted for the test and filled up.

A store that finds no room answers 507 (REST) or 0xA700 (C-STORE), leaves no temporary
file, says so in the log, and the node stores again as soon as there is room.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import trio
from pydicom.dataset import Dataset

from node.context import NodeContext
from node.errors import ErrorCode
from node.storage.files import TEMPORARY_SUFFIX
from tests.support.datasets import make_dataset, make_dicom, random_pixels, to_bytes
from tests.support.node import client_of, node_config, start_node
from tests.support.peers import c_store
from tests.support.rest import count_instances
from tests.support.storage import fill_disk, small_tmpfs, stored_files

INSTANCE_PIXELS = 512 * 1024  # bytes that deflate cannot shrink (archives compress)
SOME_ROOM = 64 * 1024  # less than an instance needs: its write starts, then fails


def big_dataset(patient: str) -> Dataset:
    return random_pixels(INSTANCE_PIXELS, patient_id=patient)


def big_instance(patient: str) -> bytes:
    return to_bytes(big_dataset(patient))


def disk_full_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any("disk full" in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)


def assert_storage_full(answer: httpx.Response, secret: Path) -> None:
    assert answer.status_code == 507
    body = answer.json()
    assert (body["HttpStatus"], body["HttpError"]) == (507, "Insufficient Storage")
    assert (body["OrthancStatus"], body["Details"]) == (ErrorCode.CANNOT_WRITE_FILE, "The storage area is full")
    assert str(secret) not in answer.text and "No space left" not in answer.text


async def test_full_storage_disk_refuses_then_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        config = node_config(tmp_path, StorageDirectory=str(disk / "storage"))
        async with trio.open_nursery() as nursery:
            node: NodeContext = await start_node(nursery, config)
            async with client_of(node) as http:
                assert (await http.post("/instances", content=make_dicom(patient_id="BEFORE"))).status_code == 200
                before = stored_files(node.files)
                filler = fill_disk(disk, leave=SOME_ROOM)

                assert_storage_full(await http.post("/instances", content=big_instance("REST")), disk)
                scu = big_dataset("SCU")
                assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [scu]) == [0xA700]
                assert stored_files(node.files) == before  # the partial temporary files are gone
                assert disk_full_logged(caplog)
                assert await count_instances(http) == 1

                filler.unlink()  # room again: no restart needed
                assert (await http.post("/instances", content=big_instance("REST"))).json()["Status"] == "Success"
                assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [scu]) == [0x0000]
                assert await count_instances(http) == 3
                assert not [p for p in stored_files(node.files) if p.name.endswith(TEMPORARY_SUFFIX)]
            nursery.cancel_scope.cancel()


async def test_full_index_disk_refuses_then_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The index alone on the full disk: the file is written, the commit fails, the file is removed."""
    with small_tmpfs(tmp_path / "disk") as disk:
        config = node_config(tmp_path, IndexDirectory=str(disk / "index"))
        async with trio.open_nursery() as nursery:
            node: NodeContext = await start_node(nursery, config)
            async with client_of(node) as http:
                assert (await http.post("/instances", content=make_dicom(patient_id="BEFORE"))).status_code == 200
                before = stored_files(node.files)
                filler = fill_disk(disk)
                # A new patient, study and series each, with long tags: soon more than the room left in the log.
                bodies = [make_dicom(patient_id=f"FULL{i}", ImageComments="x" * 8000) for i in range(20)]
                answers = [await http.post("/instances", content=body) for body in bodies]
                refused = [a for a in answers if a.status_code != 200]
                assert refused, "the index never filled the disk"
                for answer in refused:
                    assert_storage_full(answer, disk)
                stored = len(answers) - len(refused)
                assert len(stored_files(node.files)) == len(before) + stored  # refused stores left no file
                assert any("index: disk full" in r.getMessage() for r in caplog.records)

                filler.unlink()
                assert (await http.post("/instances", content=to_bytes(make_dataset()))).status_code == 200
                assert await count_instances(http) == 2 + stored
            nursery.cancel_scope.cancel()


async def test_full_temporary_disk_fails_the_archive_job(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        config = node_config(tmp_path, TemporaryDirectory=str(disk / "tmp"))
        async with trio.open_nursery() as nursery:
            node: NodeContext = await start_node(nursery, config)
            async with client_of(node) as http:
                study = (await http.post("/instances", content=big_instance("ARCHIVE"))).json()["ParentStudy"]
                fill_disk(disk, leave=SOME_ROOM)
                job = (await http.post(f"/studies/{study}/archive", json={"Asynchronous": True})).json()
                record = node.jobs.get(job["ID"])  # type: ignore[union-attr]
                assert record is not None
                await node.jobs.wait_completed(record)  # type: ignore[union-attr]
                await record.stop_hooks.wait_value(0)  # the failed job's clean-up, which runs after it ends
                state = (await http.get(f"/jobs/{job['ID']}")).json()
                assert (state["State"], state["ErrorCode"]) == ("Failure", ErrorCode.CANNOT_WRITE_FILE)
                assert str(disk) not in str(state)
                assert not [p for p in (disk / "tmp").rglob("*") if p.is_file()]  # the partial archive is removed
                assert disk_full_logged(caplog)
            nursery.cancel_scope.cancel()
