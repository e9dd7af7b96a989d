"""Two node processes on one machine (`--members 2`): one port, one index, one storage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import trio
from pydicom.uid import generate_uid

from node.members import MEMBER_ID_FLAG, SUPERVISOR_FLAG
from tests.support.datasets import make_dicom
from tests.support.dcmtk import dcmtk_tool, needs_dcmtk, run_dcmtk
from tests.support.members import (
    FRESH,
    RESTART_TIMEOUT,
    Cluster,
    alive,
    answers,
    cluster,
    kill_member,
    stop,
    wait_until,
    write_cluster_config,
)
from tests.support.process import ROOT, START_TIMEOUT

STORESCU = dcmtk_tool("storescu")
INSTANCES = 24
REQUESTS_PER_MEMBER = re.compile(r'^trionode_member_rest_requests_total\{member="(\d+)"\} (\S+)$', re.M)


def _one_series(count: int) -> list[bytes]:
    """Instances of one new patient, study and series."""
    study, series = generate_uid(), generate_uid()
    return [
        make_dicom(patient_id="MEMBERS", study_uid=study, series_uid=series, instance_number=number + 1)
        for number in range(count)
    ]


async def _fresh(running: Cluster, method: str, path: str, **options: object) -> httpx.Response:
    """One request on a connection of its own."""
    async with httpx.AsyncClient(base_url=running.url, headers=FRESH) as http:
        return await http.request(method, path, **options)  # type: ignore[arg-type]


async def _statistics(running: Cluster) -> dict[str, int]:
    return dict((await _fresh(running, "GET", "/statistics")).json())


async def _metrics(running: Cluster) -> str:
    answer = await _fresh(running, "GET", "/tools/metrics-prometheus")
    assert answer.status_code == 200
    return answer.text


def _served(metrics: str) -> dict[str, float]:
    """REST requests answered so far, by member."""
    return {member: float(count) for member, count in REQUESTS_PER_MEMBER.findall(metrics)}


async def test_concurrent_rest_ingest_is_shared_and_served_by_both(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        before = _served(await _metrics(running))
        ids: list[str] = []

        async def store(data: bytes) -> None:
            answer = await _fresh(running, "POST", "/instances", content=data)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["ID"])

        async with trio.open_nursery() as nursery:  # concurrently: both members create the study at once
            for data in _one_series(INSTANCES):
                nursery.start_soon(store, data)
        for public_id in ids:
            assert (await _fresh(running, "GET", f"/instances/{public_id}/tags")).status_code == 200
        statistics = await _statistics(running)
        assert (statistics["CountPatients"], statistics["CountStudies"], statistics["CountSeries"]) == (1, 1, 1)
        assert statistics["CountInstances"] == INSTANCES

        text = await _metrics(running)
        served = _served(text)
        assert set(served) == {"1", "2"} and all(count > 0 for count in served.values()), served
        # One scrape shows the cluster: every request since the first scrape, whichever member
        # answered it. A request counts once its answer is sent: the last one before this scrape
        # may still be on its way to the counter.
        assert 2 * INSTANCES + 1 <= sum(served.values()) - sum(before.values()) <= 2 * INSTANCES + 2
        assert f"orthanc_count_instances {INSTANCES} " in text
        posts = re.search(r'^trionode_rest_api_request_duration_seconds_count\{method="POST"\} (\S+)$', text, re.M)
        assert posts is not None and float(posts.group(1)) == INSTANCES


async def _spread_burst(running: Cluster, connections: int, requests: int) -> dict[str, float]:
    """``connections`` keep-alive connections opened at once (queued while the members start), then
    ``requests`` on each: the REST requests each member served meanwhile."""
    before = _served(await _metrics(running))
    clients = [httpx.AsyncClient(base_url=running.url, timeout=START_TIMEOUT) for _ in range(connections)]
    try:
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(client.get, "/system")
        for _ in range(requests - 1):
            for client in clients:
                assert (await client.get("/system")).status_code == 200
    finally:
        for client in clients:
            await client.aclose()
    served = _served(await _metrics(running))
    return {member: served.get(member, 0) - before.get(member, 0) for member in ("1", "2")}


async def test_a_burst_of_keep_alive_connections_is_spread_over_the_members(tmp_path: Path) -> None:
    """Connections opened at once, then kept: each member takes some (a member holding more waits
    longer before it accepts), where a hash of their addresses could give all to one."""
    async with cluster(tmp_path) as running:
        served = await _spread_burst(running, connections=4, requests=10)
    assert min(served.values()) >= 10 and sum(served.values()) >= 40, served


async def test_connections_opened_while_the_members_start_wait_for_all_of_them(tmp_path: Path) -> None:
    """Keep-alive connections opened before any member serves are spread over the members: the
    first member ready does not take them all while the other is still starting."""
    async with cluster(tmp_path, serving=False) as running:
        assert "node ready" not in running.output()
        served = await _spread_burst(running, connections=4, requests=10)
        assert min(served.values()) >= 10 and sum(served.values()) >= 40, served


async def test_a_reset_starts_every_member_again_behind_the_gate(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        before = running.members()
        assert (await _fresh(running, "POST", "/tools/reset")).status_code == 200

        async def replaced() -> bool:
            now = running.members()
            return len(now) == 2 and not now & before and running.output().count("node ready") == 4

        await wait_until(replaced, RESTART_TIMEOUT, "both members to start again")
        served = await _spread_burst(running, connections=4, requests=10)
        assert min(served.values()) >= 10 and sum(served.values()) >= 40, served
        assert running.output().count("members accept connections: every member serves") == 2


@needs_dcmtk(STORESCU)
async def test_storescu_into_the_shared_port(tmp_path: Path) -> None:
    files = []
    for number, data in enumerate(_one_series(6)):
        files.append(tmp_path / f"{number}.dcm")
        files[-1].write_bytes(data)
    async with cluster(tmp_path) as running:
        async with trio.open_nursery() as nursery:  # one association per file, two at a time
            for pair in (files[0:2], files[2:4], files[4:6]):
                for file in pair:
                    nursery.start_soon(
                        run_dcmtk, STORESCU, "-aec", "ORTHANC", "127.0.0.1", str(running.dicom_port), str(file)
                    )
        statistics = await _statistics(running)
        assert (statistics["CountSeries"], statistics["CountInstances"]) == (1, 6)


async def test_a_killed_member_is_started_again(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        before = running.members()
        assert len(before) == 2
        await kill_member(running, min(before))
        for _ in range(10):
            assert await answers(running.url)


async def test_sigterm_stops_every_member(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        members = running.members()
        assert await stop(running) == 0
        assert not any(alive(pid) for pid in members)


async def test_members_stop_when_their_supervisor_dies(tmp_path: Path) -> None:
    """Orphans would hold the ports against the next supervisor."""
    async with cluster(tmp_path) as running:
        members = running.members()
        running.process.kill()
        await running.process.wait()

        async def all_gone() -> bool:
            return not any(alive(pid) for pid in members)

        await wait_until(all_gone, 30, "the orphaned members to stop")
        assert "the supervisor of the members is gone" in running.output()


async def test_a_member_whose_supervisor_died_before_it_watched_stops(tmp_path: Path) -> None:
    """The supervisor may die while a member still starts: the member knows its supervisor from
    its command line, not from whoever its parent is once it serves (by then, the adopting init
    process, which it took for its supervisor and watched for ever, holding the ports)."""
    gone = await trio.lowlevel.open_process([sys.executable, "-c", "pass"])
    await gone.wait()
    config, _, _ = write_cluster_config(tmp_path)
    log = tmp_path / "member.log"
    with open(log, "ab") as output:
        member = await trio.lowlevel.open_process(
            [sys.executable, "-m", "node", str(config), MEMBER_ID_FLAG, "1", SUPERVISOR_FLAG, str(gone.pid)],
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
    try:
        with trio.move_on_after(START_TIMEOUT):
            await member.wait()
        stopped = member.returncode is not None
    finally:
        if member.returncode is None:
            member.kill()
            await member.wait()
    output = log.read_text(errors="replace")
    assert stopped and "the supervisor of the members is gone" in output, output[-3000:]


async def test_a_delete_on_one_member_is_not_served_stale_by_the_other(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        (data,) = _one_series(1)
        public_id = (await _fresh(running, "POST", "/instances", content=data)).json()["ID"]
        for _ in range(8):  # both members, most likely, keep its /tags answer and its parsed file
            assert (await _fresh(running, "GET", f"/instances/{public_id}/tags")).status_code == 200
            assert (await _fresh(running, "GET", f"/instances/{public_id}/simplified-tags")).status_code == 200
        assert (await _fresh(running, "DELETE", f"/instances/{public_id}")).status_code == 200
        for _ in range(8):
            assert (await _fresh(running, "GET", f"/instances/{public_id}/tags")).status_code == 404
            assert (await _fresh(running, "GET", f"/instances/{public_id}/simplified-tags")).status_code == 404


async def test_settings_changed_on_one_member_hold_on_every_member(tmp_path: Path) -> None:
    async with cluster(tmp_path, DicomModalitiesInDatabase=True) as running:
        modality = {"AET": "REMOTE", "Host": "127.0.0.1", "Port": 104}
        assert (await _fresh(running, "PUT", "/modalities/remote", json=modality)).status_code == 200
        assert (await _fresh(running, "PUT", "/tools/default-encoding", content="Utf8")).status_code == 200
        assert (await _fresh(running, "PUT", "/tools/metrics", content="0")).status_code == 200
        for _ in range(8):  # fresh connections: both members answer, most likely
            assert (await _fresh(running, "GET", "/modalities")).json() == ["remote"]
            assert (await _fresh(running, "GET", "/tools/default-encoding")).text == "Utf8"
            assert (await _fresh(running, "GET", "/tools/metrics")).text == "0"


async def test_a_clients_shutdown_of_one_member_stops_the_group(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        members = running.members()
        assert (await _fresh(running, "POST", "/tools/shutdown")).status_code == 200
        with trio.fail_after(RESTART_TIMEOUT):
            assert await running.process.wait() == 0
        assert not any(alive(pid) for pid in members)
