"""A store is acknowledged only once its file and its index entry are on the disk (SyncStorageArea).

The node runs with file stores that record or fail their flushes (the documented
``file_store`` extension point of :func:`serve`): the records give the order of flush,
rename and folder flush, or, for a file written under a reserved name, that its name was
flushed before its bytes were; a flush that fails must turn the answer into an error, which
only a node that waits for the flush before answering can do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import trio

from node.context import NodeContext
from node.errors import ErrorCode
from node.storage.files import TEMPORARY_SUFFIX, FileStore
from tests.support.datasets import make_dataset, make_dicom
from tests.support.node import client_of, node_config, start_node
from tests.support.peers import c_store
from tests.support.storage import (
    CreatingStore,
    FailingFileFlush,
    FailingFolderFlush,
    RecordingStore,
    stored_files,
)

SQLITE_SYNCHRONOUS = {1: "NORMAL", 2: "FULL"}


async def start(nursery: trio.Nursery, tmp_path: Path, store: type[FileStore], **options: Any) -> NodeContext:
    return await start_node(nursery, node_config(tmp_path, **options), file_store=store)


async def index_synchronous(node: NodeContext) -> str:
    """The SQLite `synchronous` setting of a write of the index other than a store's, read on
    its connection (the setting is per connection; journaled stores commit with their own)."""
    index: Any = node.index

    def level() -> Any:
        with index._tx():
            return index._db.execute("PRAGMA synchronous").fetchone()

    row = await index._run(level)
    return SQLITE_SYNCHRONOUS[row[0]]


def assert_flushed_in_order(store: RecordingStore, file_uuid: str, existed: set[Path]) -> None:
    """The file flushed under its temporary name, then (renamed) its folder, then the name of each
    folder above that this write created (those in ``existed`` were there before)."""
    final = store.path_of(file_uuid)
    kinds_and_paths = [(kind, path) for kind, path, _ in store.flushes]
    first = kinds_and_paths.index(("file", str(final) + TEMPORARY_SUFFIX))
    expected = [("folder", str(final.parent))]
    for created, holder in ((final.parent, final.parent.parent), (final.parent.parent, final.parent.parent.parent)):
        if created not in existed:
            expected.append(("folder", str(holder)))
    file_flush, *folder_flushes = store.flushes[first : first + 1 + len(expected)]
    assert file_flush[2] is False  # not renamed yet
    assert [(kind, path) for kind, path, _ in folder_flushes] == expected
    assert final.name in folder_flushes[0][2]  # renamed before its folder is flushed


def assert_name_flushed_before_file(store: RecordingStore, file_uuid: str, existed: set[Path]) -> None:
    """A reserved name: its folder flushed once it held the name, then the name of each folder
    above that the reservation created; all of it before the file itself is flushed."""
    final = store.path_of(file_uuid)
    file_flush = store.flushes.index(("file", str(final), True))  # written under its final name
    name_flush = next(
        number
        for number, (kind, path, names) in enumerate(store.flushes)
        if (kind, path) == ("folder", str(final.parent)) and final.name in cast(frozenset[str], names)
    )
    expected = [("folder", str(final.parent))]
    for created, holder in ((final.parent, final.parent.parent), (final.parent.parent, final.parent.parent.parent)):
        if created not in existed:
            expected.append(("folder", str(holder)))
    assert name_flush + len(expected) <= file_flush
    assert [(kind, path) for kind, path, _ in store.flushes[name_flush : name_flush + len(expected)]] == expected


class CreatingRecordingStore(RecordingStore, CreatingStore):
    """Records its flushes, and creates every file (no reserved names)."""


async def test_rest_and_c_store_flush_file_rename_then_flush_folders(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start(nursery, tmp_path, CreatingRecordingStore)
    store = node.files
    assert isinstance(store, RecordingStore)
    async with client_of(node) as http:
        answer = await http.post("/instances", content=make_dicom())
        assert answer.status_code == 200
        rest_uuid = (await http.get(f"/instances/{answer.json()['ID']}")).json()["FileUuid"]
        ds = make_dataset(patient_id="SCU")
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [ds]) == [0x0000]
        found = (await http.post("/tools/lookup", content=ds.SOPInstanceUID)).json()
        scu_uuid = (await http.get(f"/instances/{found[0]['ID']}")).json()["FileUuid"]
    first = store.path_of(rest_uuid)
    assert_flushed_in_order(store, rest_uuid, existed=set())  # a fresh storage area: both folders created
    assert_flushed_in_order(store, scu_uuid, existed={first.parent, first.parent.parent})
    assert await index_synchronous(node) == "FULL"


async def test_rest_and_c_store_use_names_flushed_before_the_file(nursery: trio.Nursery, tmp_path: Path) -> None:
    """With reserved names (the default), a write flushes only its file: its name is durable already."""
    node = await start(nursery, tmp_path, RecordingStore)
    store = node.files
    assert isinstance(store, RecordingStore)
    async with client_of(node) as http:
        answer = await http.post("/instances", content=make_dicom())
        assert answer.status_code == 200
        rest_uuid = (await http.get(f"/instances/{answer.json()['ID']}")).json()["FileUuid"]
        ds = make_dataset(patient_id="SCU")
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [ds]) == [0x0000]
        found = (await http.post("/tools/lookup", content=ds.SOPInstanceUID)).json()
        scu_uuid = (await http.get(f"/instances/{found[0]['ID']}")).json()["FileUuid"]
    for file_uuid in (rest_uuid, scu_uuid):
        assert_name_flushed_before_file(store, file_uuid, existed=set())  # the reservation made both folders
        assert not any(kind == "file" and path.endswith(TEMPORARY_SUFFIX) for kind, path, _ in store.flushes)
    assert await index_synchronous(node) == "FULL"


@pytest.mark.parametrize("store", [FailingFileFlush, FailingFolderFlush])
async def test_a_failed_flush_is_never_acknowledged(
    nursery: trio.Nursery, tmp_path: Path, store: type[FileStore], caplog: pytest.LogCaptureFixture
) -> None:
    node = await start(nursery, tmp_path, store)
    async with client_of(node) as http:
        answer = await http.post("/instances", content=make_dicom())
        assert answer.status_code == 500
        body = answer.json()
        assert (body["OrthancStatus"], body["OrthancError"]) == (ErrorCode.CANNOT_WRITE_FILE, "Cannot write to file")
        assert str(tmp_path) not in answer.text and "Input/output error" not in answer.text
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [make_dataset()]) == [0xA700]
        assert (await http.get("/statistics")).json()["CountInstances"] == 0
    assert stored_files(node.files) == []  # neither the temporary file nor the renamed one stays
    assert any("Input/output error" in r.getMessage() and str(tmp_path) in r.getMessage() for r in caplog.records)


async def test_sync_storage_area_false_flushes_nothing(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start(nursery, tmp_path, RecordingStore, SyncStorageArea=False)
    store = node.files
    assert isinstance(store, RecordingStore)
    async with client_of(node) as http:
        assert (await http.post("/instances", content=make_dicom())).status_code == 200
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [make_dataset()]) == [0x0000]
        assert (await http.get("/statistics")).json()["CountInstances"] == 2
    assert store.flushes == []
    assert await index_synchronous(node) == "NORMAL"
    assert all(not p.name.endswith(TEMPORARY_SUFFIX) for p in stored_files(store))


async def test_concurrent_durable_stores_all_flushed(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Group commit under durability: every concurrent store is flushed before its own answer."""
    node = await start(nursery, tmp_path, RecordingStore)
    store = node.files
    assert isinstance(store, RecordingStore)
    bodies = [make_dicom(study_uid="1.2.3", series_uid="1.2.3.4", instance_number=i + 1) for i in range(12)]
    ids: list[str] = []
    async with client_of(node) as http:

        async def post(body: bytes) -> None:
            answer = await http.post("/instances", content=body)
            assert answer.status_code == 200
            ids.append(answer.json()["ID"])

        async with trio.open_nursery() as posts:
            for body in bodies:
                posts.start_soon(post, body)
        uuids = [(await http.get(f"/instances/{i}")).json()["FileUuid"] for i in ids]
    every_folder = set(store.root.glob("*")) | set(store.root.glob("*/*"))  # the names above: see the test before
    for file_uuid in uuids:
        assert_name_flushed_before_file(store, file_uuid, existed=every_folder)
    assert len(stored_files(store)) == 12
