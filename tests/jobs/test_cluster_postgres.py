"""Members sharing one PostgreSQL database (and one storage folder), as members on several
machines do: hints travel through the database (NOTIFY), and DICOM reaches any member.

The two members here have different index folders, which name their datagram sockets: a hint
that took that way could not reach the other member, so a cancel that takes effect within the
settle time proves the database carried it (the next lease renewal is seconds away).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from node.jobs.engine import SETTLE_TIMEOUT
from tests.support.cluster import held_by, row_when, start_member
from tests.support.datasets import make_dicom
from tests.support.dcmtk import dcmtk_tool, needs_dcmtk, run_dcmtk
from tests.support.job_types import JOURNAL
from tests.support.node import client_of

BLOCKED = {"Type": "TestArchive", "Asynchronous": True, "Steps": 2, "BlockAt": 0, "Label": "blocked"}
ACTION_BOUND = SETTLE_TIMEOUT + 0.4  # the answer comes once the owner acted; HTTP round trips on top
STORESCU = dcmtk_tool("storescu")
STUDY_UID, SERIES_UID = "1.2.826.0.1.3680043.8.498.7", "1.2.826.0.1.3680043.8.498.7.1"
INSTANCES = 12


def _apart(tmp_path: Path, name: str, database: dict[str, Any]) -> dict[str, Any]:
    """A member's options: the shared database and storage folder, an index folder of its own."""
    return {"PostgreSQL": database, "IndexDirectory": str(tmp_path / f"index-{name}")}


async def test_a_cancel_reaches_the_running_member_through_the_database(
    tmp_path: Path, postgres_database: dict[str, Any]
) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_member(nursery, tmp_path, "a", **_apart(tmp_path, "a", postgres_database))
        b = await start_member(nursery, tmp_path, "b", **_apart(tmp_path, "b", postgres_database))
        async with client_of(a) as http_a, client_of(b) as http_b:
            job_id = (await http_a.post("/test/jobs", json=BLOCKED)).json()["ID"]  # pinned to A
            await row_when(b, job_id, held_by(a))
            assert (await http_b.get(f"/jobs/{job_id}")).json()["State"] == "Running"

            asked = trio.current_time()
            assert (await http_b.post(f"/jobs/{job_id}/cancel", json={})).status_code == 200
            assert trio.current_time() - asked < ACTION_BOUND
            ended = (await http_b.get(f"/jobs/{job_id}")).json()  # A ended it before B answered
            assert (ended["State"], ended["ErrorCode"]) == ("Failure", 37)
            assert JOURNAL == ["blocked:0", "blocked:stop:Canceled"]
        nursery.cancel_scope.cancel()


def _study(folder: Path) -> list[Path]:
    folder.mkdir()
    files = []
    for number in range(1, INSTANCES + 1):
        path = folder / f"{number}.dcm"
        path.write_bytes(
            make_dicom(
                study_uid=STUDY_UID, series_uid=SERIES_UID, sop_uid=f"{SERIES_UID}.{number}", instance_number=number
            )
        )
        files.append(path)
    return files


@needs_dcmtk(STORESCU)
async def test_one_study_stored_through_two_members_at_once(tmp_path: Path, postgres_database: dict[str, Any]) -> None:
    """Each member receives the whole study by C-STORE at the same time: one patient, study and series."""
    files = _study(tmp_path / "study")
    async with trio.open_nursery() as nursery:
        members = [await start_member(nursery, tmp_path, name, PostgreSQL=postgres_database) for name in "ab"]

        async def store(port: int) -> None:
            done = await run_dcmtk(STORESCU, "-aec", "ORTHANC", "127.0.0.1", str(port), *map(str, files))
            assert done.returncode == 0, done.stderr.decode()

        async with trio.open_nursery() as senders:
            for member in members:
                senders.start_soon(store, member.ports["dicom"])
        async with client_of(members[0]) as http_a, client_of(members[1]) as http_b:
            stats = (await http_b.get("/statistics")).json()
            counts = (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"])
            assert counts == (1, 1, 1, INSTANCES)
            (series,) = (await http_a.get("/series")).json()
            assert (await http_a.get(f"/series/{series}")).json()["Status"] == "Unknown"
            instances = (await http_b.get(f"/series/{series}/instances")).json()
            assert len(instances) == INSTANCES
            for instance in instances[:2]:  # each member reads the files, whichever wrote them
                for http in (http_a, http_b):
                    assert (await http.get(f"/instances/{instance['ID']}/file")).content[128:132] == b"DICM"
        nursery.cancel_scope.cancel()
