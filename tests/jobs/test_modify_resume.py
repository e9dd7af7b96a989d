"""A rewrite job that redoes steps after a crash stores no copy: modify, anonymize, split and
merge give a redone instance the identifiers it got the first time, so it is found already
stored, and a redone deletion of the sources skips those already gone.

In-process, a job is reloaded from a save older than its progress (what a crash leaves);
in a subprocess, a real node is killed (SIGKILL) in the middle of a 240-instance
modification and restarted on the same storage.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from node.dicom.ids import Level
from node.dicom.rewrite_plan import parse_anonymize_request, parse_modify_request
from node.jobs.types.rewrite import ResourceModificationJob, RewriteJob
from node.jobs.types.split_merge import MergeStudyJob, SplitStudyJob
from node.services.ingest import Origin
from node.services.rewrite import ResourceModification, complete_plan, instances_of
from node.services.split_merge import prepare_merge, prepare_split
from node.storage.index.sqlite import SqliteIndex
from tests.support.process import kill, node_process, write_config
from tests.support.rest import metadata_of
from tests.support.studies import Study, upload_study

SAVED_AFTER = 2  # steps done when the job is saved
REDONE = 3  # steps done after that save, before the "crash"


async def _job(kind: str, http: httpx.AsyncClient, node: NodeContext, source: Study) -> RewriteJob[Any]:
    if kind == "modify":
        plan = parse_modify_request({"Replace": {"StudyDescription": "Redone"}}, level=Level.STUDY, job=True)
        instances = await instances_of(node, [source.study])
        return ResourceModificationJob(ResourceModification(plan, Level.STUDY, Origin()), instances)
    if kind == "anonymize":
        plan = await complete_plan(node.index, parse_anonymize_request({}, job=True))
        instances = await instances_of(node, [source.study])
        return ResourceModificationJob(ResourceModification(plan, Level.STUDY, Origin()), instances)
    if kind == "split":
        split, instances = await prepare_split(node, source.study, {"Series": list(source.series)}, Origin())
        return SplitStudyJob(split, instances)
    target = await upload_study(http, patient="TARGET", series=1, per_series=1)
    merge, instances = await prepare_merge(node, target.study, {"Resources": [source.study]}, Origin())
    return MergeStudyJob(merge, instances)


async def _steps(job: RewriteJob[Any], node: NodeContext, count: int) -> None:
    for _ in range(count):
        await job.step(node)


def _reloaded(job: RewriteJob[Any], saved: dict[str, Any]) -> RewriteJob[Any]:
    return type(job).deserialize(json.loads(json.dumps(saved)))


async def _provenance(http: httpx.AsyncClient, instance: str) -> str | None:
    metadata = await metadata_of(http, instance)
    return metadata.get("ModifiedFrom") or metadata.get("AnonymizedFrom")


@pytest.mark.parametrize("kind", ["modify", "anonymize", "split", "merge"])
async def test_redone_steps_store_no_copy(http: httpx.AsyncClient, node: NodeContext, kind: str) -> None:
    source = await upload_study(http, series=2, per_series=3)
    job = await _job(kind, http, node, source)
    before = (await http.get("/statistics")).json()["CountInstances"]
    moved = len(job.instances)

    await _steps(job, node, SAVED_AFTER)
    saved = job.serialize()
    await _steps(job, node, REDONE)  # done, but not in the save: a crash now makes the job redo them
    assert saved is not None
    resumed = _reloaded(job, saved)
    await _steps(resumed, node, moved - SAVED_AFTER)
    before_deletion = resumed.serialize()
    assert before_deletion is not None
    await _steps(resumed, node, 1)  # the trailing step: deletes the sources unless kept
    redone_deletion = _reloaded(resumed, before_deletion)  # crashed during it: done again
    await _steps(redone_deletion, node, 1)

    assert resumed.progress() == redone_deletion.progress() == 1
    assert resumed.content()["FailedInstancesCount"] == 0
    kept = moved if kind in ("modify", "anonymize") else 0  # split and merge delete the sources
    assert (await http.get("/statistics")).json()["CountInstances"] == before - moved + kept + moved
    if kind in ("modify", "anonymize"):
        created = resumed.content()
        new_instances = (await http.get(f"/studies/{created['ID']}/instances")).json()
        sources = Counter([await _provenance(http, instance["ID"]) for instance in new_instances])
        assert sources == Counter(job.instances)  # each source rewritten exactly once


def _saved_position(forms: dict[str, str], job_id: str) -> int:
    return int(json.loads(forms[job_id])["Job"]["Position"])


async def _what_the_crash_left(storage: Path, job_id: str) -> tuple[int, int]:
    """(position saved for the job, instances stored) in the index of the killed node."""
    index = SqliteIndex(storage)
    try:
        return _saved_position(await index.saved_jobs(), job_id), len(await index.list_ids(Level.INSTANCE))
    finally:
        await index.close()


INSTANCES = 240
KILL_AT_PROGRESS = 30  # percent


async def _upload(http: httpx.AsyncClient) -> Study:
    return await upload_study(http, series=2, per_series=INSTANCES // 2)


async def _job_state(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    return (await http.get(f"/jobs/{job_id}")).json()


async def test_sigkill_during_a_modification_duplicates_nothing(tmp_path: Path) -> None:
    config, url = write_config(tmp_path)
    log = tmp_path / "node.log"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with node_process(config, url, log) as process:
            source = await _upload(http)
            body = {"Asynchronous": True, "Replace": {"StudyDescription": "After the crash"}}
            job_id = (await http.post(f"/studies/{source.study}/modify", json=body)).json()["ID"]
            with trio.fail_after(30):
                while (state := await _job_state(http, job_id))["Progress"] < KILL_AT_PROGRESS:
                    assert state["State"] in ("Pending", "Running"), state
                    await trio.sleep(0.005)
            await kill(process)
        assert state["State"] == "Running" and state["Progress"] < 100, state

        saved_position, stored = await _what_the_crash_left(tmp_path / "storage", job_id)
        assert stored - INSTANCES > saved_position  # steps done since the last save: they will be redone

        async with node_process(config, url, log):
            with trio.fail_after(60):
                while (state := await _job_state(http, job_id))["State"] != "Success":
                    assert state["State"] in ("Pending", "Running"), state
                    await trio.sleep(0.05)
            assert state["Content"]["FailedInstancesCount"] == 0
            assert (await http.get("/statistics")).json()["CountInstances"] == 2 * INSTANCES
            new_instances = (await http.get(f"/studies/{state['Content']['ID']}/instances")).json()
            sources = Counter([await _provenance(http, instance["ID"]) for instance in new_instances])
            assert sources == Counter(source.instances)  # every source exactly once
