"""DicomMoveScu between two of our nodes, and against remotes that misbehave: the archive's C-MOVE
sends as the destination's declared LocalAet; a job stuck on a silent remote is cancelled within
100 ms with its connection closed; a remote that is down for a while is retried and the job then
succeeds, while a permanent failure is not retried."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from bench.orthanc_process import free_port
from node.context import NodeContext
from node.dicom.ids import study_id
from node.jobs.record import JobState
from tests.support.dicom_remotes import Behaviour, start_remote
from tests.support.jobs import finished, record_of, until
from tests.support.node import client_of, node_config, start_node, start_stoppable_node
from tests.support.qr_corpus import STUDY_CHEST, corpus
from tests.support.query_retrieve import ARCHIVE_AET, LOOPBACK, QUERIER_AET, start_pair, study_instances, upload_files
from tests.support.rest import assert_error

CANCEL_DEADLINE = 0.1  # seconds from the cancel request to the job out of Running, its connection closed
CHEST = study_id("PAT1", STUDY_CHEST)
NOT_THERE = "1.2.3.4.404"
LONG_TIMEOUT = 3600  # seconds: only the cancel may end the wait
MOVE_CHEST = {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_CHEST}]}


async def test_a_study_moves_between_our_nodes(nursery: trio.Nursery, tmp_path: Path) -> None:
    known_as = {"LocalAet": "ARCHIVE-OUT", "Timeout": 5}
    pair = await start_pair(nursery, tmp_path, archive_knows_querier=known_as)
    async with client_of(pair.archive) as archive, client_of(pair.querier) as http:
        await upload_files(archive, corpus())
        query = await http.post("/modalities/archive/query", json={"Level": "Study", "Query": {"PatientID": "PAT1"}})
        moved = await http.post(f"/queries/{query.json()['ID']}/retrieve", json={"TargetAet": QUERIER_AET})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["LocalAet"], moved.json()["RemoteAet"], len(moved.json()["Query"])) == (
            QUERIER_AET,
            ARCHIVE_AET,
            2,
        )
        instances = await study_instances(http, CHEST)
        assert instances == await study_instances(archive, CHEST) != []
        # The archive's sub-operations came as the querier's declaration there says.
        sender = await http.get(f"/instances/{instances[0]}/metadata/RemoteAET")
        assert sender.text == "ARCHIVE-OUT"


async def _submit_move(http: httpx.AsyncClient, modality: str, **body: object) -> str:
    answer = await http.post(f"/modalities/{modality}/move", json={**MOVE_CHEST, "Asynchronous": True, **body})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


async def _cancel_within_deadline(node: NodeContext, http: httpx.AsyncClient, job: str) -> None:
    record = record_of(node, job)
    asked = trio.current_time()
    assert (await http.post(f"/jobs/{job}/cancel", content="")).status_code == 200
    with trio.fail_after(CANCEL_DEADLINE):
        await record.completed.wait()
    assert trio.current_time() - asked < CANCEL_DEADLINE
    assert (record.state, record.error_code) == (JobState.FAILURE, 37)


async def test_a_move_stuck_on_a_silent_remote_is_cancelled_within_100_ms(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    silent = await start_remote(nursery, Behaviour.SILENT)
    mute = await start_remote(nursery, Behaviour.STORE, answered=0)  # associates, then never answers
    modalities = {"silent": ["SILENT", LOOPBACK, silent.port], "mute": ["MUTE", LOOPBACK, mute.port]}
    node = await start_node(nursery, node_config(tmp_path, DicomModalities=modalities))
    async with client_of(node) as http:
        for remote, name in ((silent, "silent"), (mute, "mute")):
            job = await _submit_move(http, name, Timeout=LONG_TIMEOUT)
            with trio.fail_after(5):
                await until(lambda remote=remote: bool(remote.connections) and remote.connections[-1].stalled.is_set())
            await _cancel_within_deadline(node, http, job)
            with trio.fail_after(CANCEL_DEADLINE):
                await remote.connections[-1].closed.wait()
        assert mute.connections[-1].aborted.is_set()


async def test_a_remote_down_for_a_while_is_retried_until_the_move_succeeds(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    archive_port, querier_port = free_port(), free_port()
    archive_config = {
        "DicomAet": ARCHIVE_AET,
        "DicomPort": archive_port,
        "DicomModalities": {"querier": [QUERIER_AET, LOOPBACK, querier_port]},
    }
    # The archive gets its study while its DICOM server is off, then stops.
    loading = await start_stoppable_node(
        nursery, node_config(tmp_path / "archive", **archive_config, DicomServerEnabled=False)
    )
    async with client_of(loading.context) as archive_http:
        await upload_files(archive_http, corpus())
        expected = await study_instances(archive_http, CHEST)
    loading.stop()
    await loading.stopped.wait()
    retry = {"Attempts": 5, "BackoffSeconds": 0.2}
    querier = await start_node(
        nursery,
        node_config(
            tmp_path / "querier",
            DicomAet=QUERIER_AET,
            DicomPort=querier_port,
            JobsRetry=retry,
            DicomModalities={"archive": [ARCHIVE_AET, LOOPBACK, archive_port]},
        ),
    )
    async with client_of(querier) as http:
        job = await _submit_move(http, "archive")
        record = record_of(querier, job)
        with trio.fail_after(10):
            await until(lambda: record.attempts >= 1)  # connection refused: transient
        await start_node(nursery, node_config(tmp_path / "archive", **archive_config))
        done = await finished(querier, job)
        assert done.state is JobState.SUCCESS, done.error_details
        assert 1 <= done.attempts <= retry["Attempts"]
        assert (await http.get(f"/jobs/{job}")).json()["Attempts"] == done.attempts
        assert await study_instances(http, CHEST) == expected != []
        # A permanent failure (the archive has no such study) is not retried.
        missing = {"Level": "Study", "Resources": [{"StudyInstanceUID": NOT_THERE}]}
        body = assert_error(await http.post("/modalities/archive/move", json=missing), 500, 9)
        assert body["Details"].startswith(f'C-MOVE SCU to AET "{ARCHIVE_AET}" has failed with DIMSE status 0xC000')
        failed = [r for r in querier.jobs.records() if r.state is JobState.FAILURE]
        assert [r.attempts for r in failed] == [0]


async def test_our_archive_says_why_a_move_target_is_refused(nursery: trio.Nursery, tmp_path: Path) -> None:
    pair = await start_pair(nursery, tmp_path)
    async with client_of(pair.archive) as archive, client_of(pair.querier) as http:
        await upload_files(archive, corpus())
        body = assert_error(
            await http.post("/modalities/archive/move", json={**MOVE_CHEST, "TargetAet": "NOSUCH"}), 500, 9
        )
        assert body["Details"] == (
            f'C-MOVE SCU to AET "{ARCHIVE_AET}" has failed with DIMSE status 0xC000 '
            '(unable to process - resource not found ?), moving to AET "NOSUCH": Unknown move destination: NOSUCH'
        )
