"""Concurrent stores share index transactions (group commit) and still behave one by one."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import outcome
import pytest
import trio
import trio.testing

from node.context import NodeContext
from node.dicom.ids import Level, hierarchy_ids
from node.storage.batch import Batcher
from node.storage.index.base import ATTACHMENT_DICOM, Attachment, NewInstance
from node.storage.index.sqlite import SqliteIndex
from node.storage.thread import DedicatedThread, StartedCall
from tests.support.datasets import make_dicom
from tests.support.storage import stored_files


async def _post_all(http: httpx.AsyncClient, bodies: list[bytes]) -> list[dict]:
    answers: list[dict] = [{}] * len(bodies)

    async def post(i: int) -> None:
        response = await http.post("/instances", content=bodies[i])
        assert response.status_code == 200
        answers[i] = response.json()

    async with trio.open_nursery() as nursery:
        for i in range(len(bodies)):
            nursery.start_soon(post, i)
    return answers


async def test_concurrent_uploads_of_one_series(http: httpx.AsyncClient, node: NodeContext) -> None:
    bodies = [make_dicom(study_uid="1.2.3", series_uid="1.2.3.4", instance_number=i + 1) for i in range(12)]
    answers = await _post_all(http, bodies)
    assert [a["Status"] for a in answers] == ["Success"] * 12
    assert len({a["ParentSeries"] for a in answers}) == 1
    stats = (await http.get("/statistics")).json()
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"]) == (1, 1, 1)
    assert stats["CountInstances"] == 12
    changes = (await http.get("/changes", params={"limit": 100})).json()["Changes"]
    kinds = [c["ChangeType"] for c in changes]
    assert kinds.count("NewInstance") == 12
    assert (kinds.count("NewSeries"), kinds.count("NewStudy"), kinds.count("NewPatient")) == (1, 1, 1)


async def test_concurrent_uploads_of_one_instance(http: httpx.AsyncClient, node: NodeContext) -> None:
    body = make_dicom(sop_uid="1.2.3.4.5.6")
    answers = await _post_all(http, [body] * 6)
    assert sorted(a["Status"] for a in answers) == ["AlreadyStored"] * 5 + ["Success"]
    assert (await http.get("/statistics")).json()["CountInstances"] == 1
    assert len(stored_files(node.files)) == 1


@pytest.fixture
def thread() -> Iterator[DedicatedThread]:
    worker = DedicatedThread("test-batcher")
    yield worker
    worker.stop()


def _square_or_refuse(batches: list[list[int]]) -> Callable[[list[int]], list[outcome.Outcome[int]]]:
    """A batch function that records its batches and fails negative items on their own."""

    def run(items: list[int]) -> list[outcome.Outcome[int]]:
        batches.append(list(items))
        return [outcome.Error(ValueError(i)) if i < 0 else outcome.Value(i * i) for i in items]

    return run


async def test_batcher_groups_waiting_calls_and_keeps_each_outcome(thread: DedicatedThread) -> None:
    batches: list[list[int]] = []
    batcher: Batcher[int, int] = Batcher(thread, _square_or_refuse(batches))
    items = [1, 2, -3, 4, 5, -6, 7, 8]
    results: dict[int, object] = {}

    async def submit(item: int) -> None:
        try:
            results[item] = await batcher.submit(item)
        except ValueError as error:
            results[item] = error

    busy = threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(thread.run, busy.wait)  # the writer is busy: the submits queue up meanwhile
        await trio.testing.wait_all_tasks_blocked()
        for item in items:
            nursery.start_soon(submit, item)
        await trio.testing.wait_all_tasks_blocked()
        busy.set()
    assert [sorted(batch) for batch in batches] == [sorted(items)]  # one batch, each item once
    for item in items:
        if item < 0:
            assert isinstance(results[item], ValueError) and results[item].args == (item,)
        else:
            assert results[item] == item * item


async def test_batcher_completes_a_submitted_item_despite_cancellation(thread: DedicatedThread) -> None:
    batches: list[list[int]] = []
    batcher: Batcher[int, int] = Batcher(thread, _square_or_refuse(batches))
    with trio.CancelScope() as scope:
        scope.cancel()
        result = await batcher.submit(5)  # a queued write is never abandoned halfway
    assert result == 25 and batches == [[5]]


async def test_batcher_queues_each_item_before_later_work_on_the_thread(thread: DedicatedThread) -> None:
    """Closing the index queues its work after the pending stores: none may be left behind it."""
    batches: list[list[int]] = []
    order: list[str] = []

    def run_batch(items: list[int]) -> list[outcome.Outcome[int]]:
        batches.append(sorted(items))
        order.append("batch")
        return [outcome.Value(i) for i in items]

    batcher: Batcher[int, int] = Batcher(thread, run_batch)
    busy = threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(thread.run, busy.wait)  # the writer is busy: the next submits wait together
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(batcher.submit, 1)
        nursery.start_soon(batcher.submit, 2)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(thread.run, order.append, "later work")
        await trio.testing.wait_all_tasks_blocked()
        busy.set()
    assert batches == [[1, 2]] and order == ["batch", "later work"]


def _new_instance(sop_uid: str, instance_number: object = "1") -> NewInstance:
    """What the index gets for one instance; a tag value that is not text makes its insert fail."""
    tags: dict[Level, dict[str, Any]] = {level: {} for level in Level}
    tags[Level.INSTANCE]["0020,0013"] = instance_number
    return NewInstance(
        ids=hierarchy_ids("PAT", "1.2", "1.2.3", sop_uid),
        tags=tags,
        identifiers={level: {} for level in Level},
        attachment=Attachment(ATTACHMENT_DICOM, f"uuid-{sop_uid}", 10, 10, "", ""),
        metadata={},
        series_metadata={},
        last_update="20240101T000000",
        index_in_series=None,
        expected_instances=None,
    )


async def test_a_failing_store_in_a_batch_fails_alone(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path)
    busy = threading.Event()
    outcomes: dict[str, object] = {}

    async def store(new: NewInstance) -> None:
        try:
            outcomes[new.ids[3]] = (await index.store(new, overwrite=False)).already_stored
        except TypeError as error:
            outcomes[new.ids[3]] = error

    batch = [_new_instance("1.2.3.1"), _new_instance("1.2.3.2", instance_number=object()), _new_instance("1.2.3.3")]
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(index._thread.run, busy.wait)  # white box: hold the writer so the stores batch up
            await trio.testing.wait_all_tasks_blocked()
            for new in batch:
                nursery.start_soon(store, new)
            await trio.testing.wait_all_tasks_blocked()
            busy.set()
        good, bad, other = (outcomes[new.ids[3]] for new in batch)
        assert good is False and other is False and isinstance(bad, TypeError)
        assert (await index.statistics())["CountInstances"] == 2
    finally:
        await index.close()


async def test_batcher_takes_its_batch_once_hold_is_entered(thread: DedicatedThread) -> None:
    """Items submitted while a drain waits for what it holds (another member's write lock) join that drain."""
    batches: list[list[int]] = []
    waiting, release = threading.Event(), threading.Event()

    @contextmanager
    def hold() -> Iterator[None]:
        waiting.set()
        release.wait()
        yield

    batcher: Batcher[int, int] = Batcher(thread, _square_or_refuse(batches), hold)
    results: list[int] = []

    async def submit(item: int) -> None:
        results.append(await batcher.submit(item))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(submit, 1)
        await trio.to_thread.run_sync(waiting.wait)  # the drain of 1 waits in hold
        nursery.start_soon(submit, 2)
        nursery.start_soon(submit, 3)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert [sorted(batch) for batch in batches] == [[1, 2, 3]] and sorted(results) == [1, 4, 9]


@pytest.mark.parametrize("where", ["enter", "exit"])
async def test_a_failure_of_hold_reaches_every_item_of_the_batch(thread: DedicatedThread, where: str) -> None:
    """Entering hold (BEGIN) or leaving it (COMMIT) fails: every caller of the batch learns it, and
    the next batch runs as usual."""
    batches: list[list[int]] = []
    failing = [True]

    @contextmanager
    def hold() -> Iterator[None]:
        if failing[0] and where == "enter":
            raise OSError("no lock")
        yield
        if failing[0]:
            raise OSError("no commit")

    batcher: Batcher[int, int] = Batcher(thread, _square_or_refuse(batches), hold)
    busy = threading.Event()
    errors: list[BaseException] = []

    async def submit(item: int) -> None:
        try:
            await batcher.submit(item)
        except OSError as error:
            errors.append(error)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(thread.run, busy.wait)  # the submits queue up meanwhile
        await trio.testing.wait_all_tasks_blocked()
        for item in (1, 2, 3):
            nursery.start_soon(submit, item)
        await trio.testing.wait_all_tasks_blocked()
        busy.set()
    assert len(errors) == 3
    failing[0] = False
    assert await batcher.submit(4) == 16


async def test_stores_arriving_while_another_process_holds_the_write_lock_join_one_batch(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path)
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)  # another member's connection
    batches: list[int] = []
    entered = threading.Event()
    real_hold, real_run = index._store_batcher._hold, index._store_batcher._run_batch  # white box

    def hold() -> Any:
        entered.set()
        return real_hold()

    def run_batch(items: list[Any]) -> Any:
        batches.append(len(items))
        return real_run(items)

    index._store_batcher._hold, index._store_batcher._run_batch = hold, run_batch
    stored: list[bool] = []

    async def store(sop_uid: str) -> None:
        stored.append((await index.store(_new_instance(sop_uid), overwrite=False)).already_stored)

    try:
        other.execute("BEGIN IMMEDIATE")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store, "1.2.3.1")
            await trio.to_thread.run_sync(entered.wait)  # its batch waits for the lock
            nursery.start_soon(store, "1.2.3.2")
            nursery.start_soon(store, "1.2.3.3")
            await trio.testing.wait_all_tasks_blocked()
            other.execute("COMMIT")
        assert batches == [3] and stored == [False] * 3
        assert (await index.statistics())["CountInstances"] == 3
    finally:
        other.close()
        await index.close()


async def test_a_batch_whose_transaction_is_lost_commits_none_of_its_stores(tmp_path: Path) -> None:
    """SQLite rolls a whole transaction back on some errors (a full disk): the stores after the
    failing one fail too, rather than commit on their own."""
    index = SqliteIndex(tmp_path)
    busy = threading.Event()
    failures: list[Exception] = []

    def lost() -> None:  # white box: what SQLite does on a full disk, then the error
        index._db.execute("ROLLBACK")
        raise OSError("disk full")

    async def store(sop_uid: str, write: Callable[[], object] | None) -> None:
        written: StartedCall[object] | None = None
        if write is not None:  # deferred: the index's thread runs it, when the store needs it
            written = StartedCall()
            written.defer(write)
        try:
            await index.store(_new_instance(sop_uid), overwrite=False, written=written)
        except Exception as error:
            failures.append(error)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(index._thread.run, busy.wait)  # white box: the stores batch up
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store, "1.2.3.1", lost)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store, "1.2.3.2", None)
            await trio.testing.wait_all_tasks_blocked()
            busy.set()
        assert len(failures) == 2
        assert (await index.statistics())["CountInstances"] == 0
    finally:
        await index.close()


async def test_stores_arriving_while_a_group_commits_form_the_next_group(tmp_path: Path) -> None:
    """With file recovery, stores commit on the event loop in groups: those that come while the
    first one waits for its file share one transaction, and a failing one fails alone there."""
    index = SqliteIndex(tmp_path)
    assert index.enable_file_recovery() is not None
    release = threading.Event()
    first_file: StartedCall[bool] = StartedCall()
    first_file.defer(release.wait)  # the first store's file holds its group open
    outcomes: dict[str, object] = {}

    async def store(new: NewInstance, written: StartedCall[bool] | None = None) -> None:
        try:
            outcomes[new.ids[3]] = (await index.store(new, overwrite=False, written=written)).already_stored
        except TypeError as error:
            outcomes[new.ids[3]] = error

    following = [_new_instance("1.2.3.2"), _new_instance("1.2.3.3", instance_number=object()), _new_instance("1.2.3.4")]
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store, _new_instance("1.2.3.1"), first_file)
            await trio.testing.wait_all_tasks_blocked()
            before = index._transactions  # white box: the transactions begun so far
            for new in following:
                nursery.start_soon(store, new)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert index._transactions == before + 1
        assert [outcomes[f"{new.ids[3]}"] for new in following[::2]] == [False, False]
        assert isinstance(outcomes[following[1].ids[3]], TypeError)
        assert (await index.statistics())["CountInstances"] == 3
    finally:
        release.set()
        await index.close()


async def test_a_shared_index_takes_the_write_lock_once_the_files_are_durable(tmp_path: Path) -> None:
    """With other processes writing to the index (members), a group's transaction begins only
    once its files are durable: meanwhile another member takes the write lock and commits."""
    index = SqliteIndex(tmp_path, shared=True)
    assert index.enable_file_recovery() is not None
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, timeout=0)  # another member's
    release = threading.Event()
    file: StartedCall[bool] = StartedCall()
    file.defer(release.wait)  # the store's file, not durable until released
    stored: list[bool] = []

    async def store() -> None:
        stored.append((await index.store(_new_instance("1.2.3.1"), overwrite=False, written=file)).already_stored)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            await trio.testing.wait_all_tasks_blocked()  # the store waits for its file
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if the store's transaction held it
                other.execute("INSERT INTO global_properties(name, value) VALUES ('other member', '1')")
                other.execute("COMMIT")
                assert stored == []
            finally:
                release.set()  # the store cannot be cancelled: it ends once its file does
        assert stored == [False]
        assert (await index.statistics())["CountInstances"] == 1
    finally:
        other.close()
        await index.close()
