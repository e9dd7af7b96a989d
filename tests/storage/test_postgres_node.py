"""The node on a PostgreSQL index: the REST API over it, a restart, two nodes sharing one
database and one storage folder, a cancelled statement, and the server's errors as Orthanc's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from node.errors import OrthancError
from node.storage.index.postgresql import PostgresIndex
from node.storage.index.queries import Sql
from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node, start_stoppable_node
from tests.support.postgres import Cluster, postgres_settings

CANCEL_BUDGET = 2.0  # seconds from a cancellation to the call's return
LOCK_WAIT_DEADLINE = 10.0  # seconds for the blocked statement to show up in pg_stat_activity
STUDY_UID, SERIES_UID = "1.2.826.0.1.3680043.8.1", "1.2.826.0.1.3680043.8.1.1"


@pytest.fixture
def config_overrides(postgres_database: dict[str, Any]) -> dict[str, Any]:
    return {"PostgreSQL": postgres_database}


def _series(count: int, start: int = 1) -> list[bytes]:
    return [
        make_dicom(study_uid=STUDY_UID, series_uid=SERIES_UID, sop_uid=f"{SERIES_UID}.{i}", instance_number=i)
        for i in range(start, start + count)
    ]


async def _post_all(clients: list[httpx.AsyncClient], bodies: list[bytes]) -> list[dict[str, Any]]:
    """Every body posted at once, in turn to each client."""
    answers: list[dict[str, Any]] = [{}] * len(bodies)

    async def post(i: int) -> None:
        response = await clients[i % len(clients)].post("/instances", content=bodies[i])
        assert response.status_code == 200, response.text
        answers[i] = response.json()

    async with trio.open_nursery() as nursery:
        for i in range(len(bodies)):
            nursery.start_soon(post, i)
    return answers


async def test_rest_api_on_postgresql(http: httpx.AsyncClient, node: NodeContext) -> None:
    answers = await _post_all([http], _series(3))
    assert {a["Status"] for a in answers} == {"Success"}
    assert (await http.post("/instances", content=_series(1)[0])).json()["Status"] == "AlreadyStored"
    patient, study = answers[0]["ParentPatient"], answers[0]["ParentStudy"]
    assert (await http.get("/patients")).json() == [patient]
    assert (await http.get("/studies")).json() == [study]
    found = await http.post("/tools/find", json={"Level": "Study", "Query": {"StudyInstanceUID": STUDY_UID}})
    assert found.json() == [study]
    series = (await http.get(f"/studies/{study}/series")).json()
    assert len(series) == 1 and len(series[0]["Instances"]) == 3
    stats = (await http.get("/statistics")).json()
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 1, 1, 3)
    kinds = [c["ChangeType"] for c in (await http.get("/changes", params={"limit": 100})).json()["Changes"]]
    assert kinds.count("NewInstance") == 3 and kinds.count("NewStudy") == 1
    deleted = await http.delete(f"/instances/{answers[0]['ID']}")
    assert deleted.status_code == 200
    assert (await http.get(f"/instances/{answers[0]['ID']}")).status_code == 404
    assert (await http.get("/statistics")).json()["CountInstances"] == 2


async def test_a_restarted_node_finds_its_data(nursery: trio.Nursery, tmp_path: Path, postgres_database: dict) -> None:
    config = node_config(tmp_path, PostgreSQL=postgres_database)
    first = await start_stoppable_node(nursery, config)
    async with client_of(first.context) as http:
        stored = (await http.post("/instances", content=_series(1)[0])).json()
    first.stop()
    await first.stopped.wait()
    second = await start_node(nursery, config)
    async with client_of(second) as http:
        assert (await http.get("/instances")).json() == [stored["ID"]]
        assert (await http.get(f"/instances/{stored['ID']}/file")).content == _series(1)[0]


async def test_two_nodes_ingesting_one_study(nursery: trio.Nursery, tmp_path: Path, postgres_database: dict) -> None:
    """Both nodes receive the same new study at once: one patient, study and series, and every instance."""
    config = node_config(tmp_path, PostgreSQL=postgres_database)
    nodes = [await start_node(nursery, config), await start_node(nursery, config)]
    bodies = _series(24)
    async with client_of(nodes[0]) as one, client_of(nodes[1]) as other:
        answers = await _post_all([one, other], bodies + bodies[:4])  # the first four twice, through each node
        assert sorted(a["Status"] for a in answers).count("Success") == 24
        stats = (await other.get("/statistics")).json()
        counts = (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"])
        assert counts == (1, 1, 1, 24)
        kinds = [c["ChangeType"] for c in (await one.get("/changes", params={"limit": 200})).json()["Changes"]]
        assert (kinds.count("NewPatient"), kinds.count("NewStudy"), kinds.count("NewSeries")) == (1, 1, 1)
        assert kinds.count("NewInstance") == 24
        for answer in answers[:3]:
            assert (await one.get(f"/instances/{answer['ID']}/file")).status_code == 200


async def _wait_for_lock_waiter(cluster: Cluster, database: str) -> None:
    """Until a statement of the index waits for a lock (another process's view: a bounded poll)."""
    with trio.fail_after(LOCK_WAIT_DEADLINE):
        while True:
            with cluster.connect() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    (database,),
                ).fetchone()
            if row and row[0]:
                return
            await trio.sleep(0.02)


async def test_a_cancelled_statement_returns_promptly(postgres_cluster: Cluster, postgres_database: dict) -> None:
    index = await PostgresIndex.open(postgres_settings(postgres_database))
    try:
        with postgres_cluster.connect(postgres_database["Database"]) as locker:
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE resources IN ACCESS EXCLUSIVE MODE")
            scope = trio.CancelScope()
            returned_at = 0.0

            async def blocked() -> None:
                nonlocal returned_at
                with scope:
                    await index.statistics()
                returned_at = trio.current_time()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocked)
                await _wait_for_lock_waiter(postgres_cluster, postgres_database["Database"])
                cancelled_at = trio.current_time()
                scope.cancel()
            assert scope.cancelled_caught
            assert returned_at - cancelled_at < CANCEL_BUDGET
            locker.execute("ROLLBACK")
        # The pool serves on: the cancelled connection was dropped, not handed out again.
        assert (await index.statistics())["CountInstances"] == 0
        assert await index._read(lambda sql: Sql.row(sql, "SELECT 1")) == (1,)
    finally:
        await index.close()


async def test_database_errors_reach_the_client_as_orthanc_errors(
    http: httpx.AsyncClient, postgres_cluster: Cluster, postgres_database: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with postgres_cluster.connect(postgres_database["Database"]) as conn:
        conn.execute("DROP TABLE changes")
    with caplog.at_level(logging.ERROR, logger="node.storage.index.postgresql"):
        answer = await http.get("/changes")
    assert answer.status_code == 500
    assert answer.json()["OrthancStatus"] == 11
    assert "does not exist" not in answer.text  # the server's words stay in the log
    assert any('relation "changes" does not exist' in record.getMessage() for record in caplog.records)


async def test_a_missing_database_stops_the_start(postgres_cluster: Cluster) -> None:
    option = postgres_cluster.option("no_such_database")
    with pytest.raises(OrthancError, match="Cannot connect to PostgreSQL"):
        await PostgresIndex.open(postgres_settings(option))


async def test_connections_the_server_dropped_are_replaced_unseen(
    http: httpx.AsyncClient, postgres_cluster: Cluster, postgres_database: dict[str, Any]
) -> None:
    """A server restarted or failed over, an administrator's pg_terminate_backend: the idle
    connections of the pool are dead, and each used to fail the request that took it (503)
    before the pool replaced it."""
    assert (await http.post("/instances", content=_series(1)[0])).status_code == 200
    with postgres_cluster.connect() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (postgres_database["Database"],),
        )
    for body in _series(8, start=2):
        response = await http.post("/instances", content=body)
        assert response.status_code == 200, response.text
