"""What the node writes is for its own account only, whatever the umask; storage errors stay in the log.

Stored files, the index and asynchronous archives: files 0600, folders 0700. The archive
folder has an unpredictable name and is checked before every reuse.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from node.context import NodeContext
from node.jobs.types.archive import archive_folder
from node.storage.settings import StorageSettings
from tests.support.datasets import make_dicom
from tests.support.jobs import finished
from tests.support.node import client_of, node_config, start_node

PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that narrows nothing: any private mode must then come from the node itself."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def test_files_index_and_archives_are_private(nursery: trio.Nursery, tmp_path: Path, open_umask: None) -> None:
    config = node_config(tmp_path, StorageDirectory=str(tmp_path / "data" / "storage"))
    node = await start_node(nursery, config)
    async with client_of(node) as http:
        answer = (await http.post("/instances", content=make_dicom())).json()
        assert (await http.put(f"/instances/{answer['ID']}/attachments/1025", content=b"x")).status_code == 200
        job = (await http.post(f"/studies/{answer['ParentStudy']}/archive", json={"Asynchronous": True})).json()
        await finished(node, job["ID"])
    settings = StorageSettings.from_config(config)
    storage = settings.storage_directory
    folders = [storage.parent, storage, *(p for p in storage.rglob("*") if p.is_dir())]
    files = [p for p in storage.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"}
    stored = [p for p in files if not p.name.startswith("index.sqlite") and p.name not in node.files.reserved()]
    assert len(stored) == 2  # the instance and the attachment (the files held in reserve are checked too)
    archives = archive_folder(settings)
    (archive,) = archives.iterdir()
    folders += [archives, archives.parent]
    files.append(archive)
    assert {str(p): oct(mode(p)) for p in folders} == {str(p): oct(PRIVATE_FOLDER) for p in folders}
    assert {str(p): oct(mode(p)) for p in files} == {str(p): oct(PRIVATE_FILE) for p in files}


async def test_archive_folder_is_unpredictable_and_checked_before_reuse(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = node_config(tmp_path)
    settings = StorageSettings.from_config(config)
    first = archive_folder(settings)
    assert archive_folder(settings) == first  # one per run, reused
    # Someone else's folder of the same form, and one loosened to everyone: neither is used nor deleted.
    foreign = first.with_name(first.name[:-3] + "zzz")
    foreign.mkdir(mode=PRIVATE_FOLDER)
    os.chown(foreign, NOBODY, NOBODY)
    os.chmod(first, 0o777)
    second = archive_folder(settings)
    assert second not in (first, foreign) and mode(second) == PRIVATE_FOLDER
    assert "no longer private" in caplog.text
    await start_node(nursery, config)  # the start-up removes what a previous run left, of its own only
    assert foreign.is_dir() and not second.exists()
    assert "not a private folder of this account" in caplog.text
    third = archive_folder(settings)
    assert third not in (first, second) and third.name.startswith(first.name[:-8])


async def test_storage_errors_are_logged_not_answered(
    http: httpx.AsyncClient, node: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="node.storage.files")
    instance = (await http.post("/instances", content=make_dicom())).json()["ID"]
    file_uuid = (await http.get(f"/instances/{instance}")).json()["FileUuid"]
    path = node.files.path_of(file_uuid)
    path.unlink()
    path.mkdir()  # a real OS error on read (EISDIR) that names the path
    answer = await http.get(f"/instances/{instance}/file")
    assert answer.status_code == 500
    assert str(path) not in answer.text and "directory" not in answer.text
    assert answer.json()["Details"] == "Cannot read from the storage area"
    assert str(path) in caplog.text and "Is a directory" in caplog.text
