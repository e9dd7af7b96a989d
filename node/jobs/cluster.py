"""Jobs that belong to a cluster of members sharing one index: rows, leases and hints.

With several members behind one address, a job must not live in the memory of the member that
happened to take its request. Here the index's jobs table is the truth (see
:mod:`node.storage.index.job_leases`): every member reads it to answer about any job, claims the
next Pending row for a free worker, renews the leases of the rows it holds, frees the rows of
members that stopped renewing, and asks the holder of a running job to pause or cancel it by
setting the row's command and sending a hint (:mod:`.wakeups`; through the index's own
messages when it has them, PostgreSQL's, so that members on several machines hear each other).

A member that cannot renew its leases (the index unreachable, as in a network partition) stops
the jobs it holds, without writing, shortly before the leases end: by then another member may
take them. Once it reaches the index again it gives their rows back before it claims any.

A job whose state cannot be saved (an archive) is pinned to the member that took it: its row
has that member as owner from the start, so only that member claims it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import trio
from trio_util import AsyncValue, periodic

from ..clock import utc_now
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.index.base import ClaimedJob, Index, JobRow
from .index_wakeups import IndexWakeUps
from .job import JobOutput
from .record import NO_USER_DATA, JobRecord, JobState, PublicFacts
from .wakeups import ALL, RESYNC, UnixDatagramWakeUps, WakeUps

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # an idle worker looks for Pending rows this often even without a hint
ROW_POLL = 0.01  # how often a member that asked for a pause or a cancel reads the row again
MEMBER_SILENCE_TTLS = 3  # a member whose heartbeat is older than this many lease lengths is gone
# A member that could not renew its leases stops their jobs this long before they end (by its own
# clock, counted from the start of its last renewal), or a third of a lease before if that is less.
PARTITION_MARGIN = 2.0
HINT_COMMAND = "command"  # a command waits in a row you hold
HINT_PENDING = "pending"  # a row became Pending
HINT_ENDED = "ended"  # a job ended (for those waiting for it)
LOST_MEMBER = "The member running this job stopped, and this kind of job cannot be resumed by another"


@dataclass(frozen=True)
class Claim:
    """A claimed row, its job rebuilt (or found among this member's), and the command waiting in it."""

    record: JobRecord
    command: str | None


def row_facts(row: JobRow) -> PublicFacts:
    """What GET /jobs/{id} shows of a row; its state and priority columns are the truth."""
    form = json.loads(row.data)
    completion = form.get("CompletionTime")
    return PublicFacts(
        id=row.id,
        type_name=str(form["Type"]),
        state=JobState(row.state),
        priority=row.priority,
        content=form.get("Content", {}),
        fraction=float(form.get("Progress", 0.0)),
        creation_time=datetime.fromisoformat(form["CreationTime"]),
        completion_time=datetime.fromisoformat(completion) if completion else None,
        runtime=int(form["RuntimeMs"]) / 1000,
        error_code=ErrorCode(int(form["ErrorCode"])),
        error_details=str(form["ErrorDetails"]),
        attempts=int(form.get("Attempts", 0)),
        user_data=form.get("UserData", NO_USER_DATA),
    )


def _output_form(output: JobOutput) -> dict[str, Any]:
    data = base64.b64encode(output.data).decode() if output.data is not None else None
    path = str(output.path) if output.path is not None else None
    return {"Path": path, "Data": data, "ContentType": output.content_type, "Filename": output.filename}


def output_of(form: dict[str, Any]) -> JobOutput | None:
    """The output a row records: its file (in the shared storage folder) or its bytes."""
    saved = form.get("Output")
    if not isinstance(saved, dict):
        return None
    data = saved.get("Data")
    path = saved.get("Path")
    return JobOutput(
        data=base64.b64decode(data) if data is not None else None,
        path=Path(path) if path is not None else None,
        content_type=str(saved.get("ContentType", "application/zip")),
        filename=str(saved.get("Filename", "archive.zip")),
    )


def _changed(form: dict[str, Any], state: JobState, **fields: Any) -> str:
    """A row's form moved by a user action to ``state``: the text to write."""
    now = utc_now().isoformat()
    form = {**form, "State": state.value, "LastStateChange": now, **fields}
    if state.completed:
        form["CompletionTime"] = now
    return json.dumps(form)


async def _next_hint(hints: AsyncValue[int], seen: int) -> None:
    """Until the count of hints passes ``seen``, or IDLE_POLL passed (a lost hint costs no more)."""
    with trio.move_on_after(IDLE_POLL):
        await hints.wait_value(lambda count: count > seen)


class ClusterJobs:
    """One member's side of the cluster's jobs: its incarnation, its leases, its hints."""

    def __init__(self, index: Index, member_id: str, lease_ttl: float, scope: str, history_size: int) -> None:
        self.index = index
        self._history_size = history_size
        # The incarnation: a restarted member does not inherit the leases of the one it replaces.
        self.me = f"{member_id}-{uuid.uuid4().hex[:8]}"
        self.ttl = lease_ttl
        self.ttl_ms = int(lease_ttl * 1000)
        self._member_max_age = self.ttl_ms * MEMBER_SILENCE_TTLS
        self.wakeups = self._wake_ups(scope)
        self.pending_hints = AsyncValue(0)  # counts "a row became Pending", for idle workers
        self.ended_hints = AsyncValue(0)  # counts "a job ended", for those waiting for one
        self._margin = min(PARTITION_MARGIN, lease_ttl / 3)
        # Until when (trio's clock) the leases held here surely last: renewed, or stopped by then.
        self._leases_last = AsyncValue(math.inf)
        self._give_back = False  # the jobs stopped by the partition rule have rows still held here

    def _wake_ups(self, scope: str) -> WakeUps:
        """The index's own messages where it has them (members may be on several machines), else
        datagrams between the processes of this machine."""
        notifications = self.index.notifications()
        if notifications is not None:
            return IndexWakeUps(notifications, self.me)
        return UnixDatagramWakeUps(scope, self.me, self._live_members)

    async def _live_members(self) -> list[str]:
        return await self.index.live_members(self._member_max_age)

    # -- life cycle ---------------------------------------------------------------
    async def start(self) -> None:
        await self.wakeups.open()
        await self.index.register_member(self.me, os.getpid())

    async def leave(self) -> None:
        """Give back the rows this member holds, so that others take them at once."""
        try:
            await self.index.release_member_jobs(self.me)
            await self.index.unregister_member(self.me)
            await self.wakeups.notify(ALL, HINT_PENDING)
        finally:
            await self.wakeups.close()

    async def run(
        self,
        held: Callable[[], dict[str, JobRecord]],
        lost: Callable[[JobRecord], None],
        commands: Callable[[list[tuple[str, str]]], Awaitable[None]],
    ) -> None:
        """Renew, reap and listen until cancelled. ``held`` are the jobs this member holds; ``lost``
        is told of those whose lease another member took, ``commands`` gets the commands found."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._renew, held, lost, commands)
            nursery.start_soon(self._reap)
            nursery.start_soon(self._listen, commands)

    async def _renew(
        self,
        held: Callable[[], dict[str, JobRecord]],
        lost: Callable[[JobRecord], None],
        commands: Callable[[list[tuple[str, str]]], Awaitable[None]],
    ) -> None:
        """Every third of a lease: a job held since before the renewal and missing from its result
        (or claimed again since, by another) is lost. A renewal that fails is tried at the next
        tick; meanwhile the partition rule (:meth:`_stop_unrenewed`) keeps watch."""
        self._leases_last.value = trio.current_time() + self.ttl - self._margin
        async with trio.open_nursery() as nursery, aclosing(periodic(self.ttl / 3)) as ticks:
            nursery.start_soon(self._stop_unrenewed, held, lost)
            async for _ in ticks:
                sent = trio.current_time()
                before = {job_id: record.generation for job_id, record in held().items()}
                try:
                    if self._give_back:
                        await self.index.release_member_jobs(self.me)
                        self._give_back = False
                        await self.wakeups.notify(ALL, HINT_PENDING)
                    renewed = await self.index.renew_job_leases(self.me, self.ttl_ms)
                except OrthancError as error:
                    log.warning("member %s could not renew its leases: %s", self.me, error)
                    continue
                self._leases_last.value = sent + self.ttl - self._margin
                leases = {lease.id: lease for lease in renewed}
                for job_id, generation in before.items():
                    record = held().get(job_id)
                    if record is None or record.generation != generation:
                        continue  # it changed hands here meanwhile: the renewal says nothing of it
                    lease = leases.get(job_id)
                    if lease is None or lease.generation != generation:
                        lost(record)
                await commands([(lease.id, lease.command) for lease in leases.values() if lease.command])

    async def _stop_unrenewed(
        self, held: Callable[[], dict[str, JobRecord]], lost: Callable[[JobRecord], None]
    ) -> None:
        """The partition rule: when the leases held here may end before the next renewal, the jobs
        held here stop as if their leases were lost (nothing written), and their rows are given
        back at the first renewal that reaches the index (no claim before that)."""
        while True:
            last = self._leases_last.value
            with trio.move_on_at(last):
                await self._renewed_since(last)
                continue
            stopped = list(held().values())
            self._give_back = True
            if stopped:
                log.warning("member %s could not renew its leases in time: %d jobs stop here", self.me, len(stopped))
            for record in stopped:
                lost(record)
            await self._renewed_since(last)

    async def _renewed_since(self, last: float) -> None:
        await self._leases_last.wait_value(lambda value: value != last)

    async def _reap(self) -> None:
        async with aclosing(periodic(self.ttl / 2)) as ticks:
            async for _ in ticks:
                try:
                    freed = await self.index.reap_job_leases(self._member_max_age)
                except OrthancError as error:
                    log.warning("member %s could not free expired leases: %s", self.me, error)
                    continue
                if freed:
                    await self.wakeups.notify(ALL, HINT_PENDING)

    async def _listen(self, commands: Callable[[list[tuple[str, str]]], Awaitable[None]]) -> None:
        async for hint in self.wakeups:
            if hint in (HINT_COMMAND, RESYNC):
                try:
                    await commands(await self.index.job_commands(self.me))
                except OrthancError as error:  # the next renewal brings them
                    log.warning("member %s could not read its commands: %s", self.me, error)
            if hint in (HINT_PENDING, RESYNC):
                self.pending_hints.value += 1
            if hint in (HINT_ENDED, RESYNC):
                self.ended_hints.value += 1

    # -- this member's rows ---------------------------------------------------------
    def form_text(self, record: JobRecord, output: JobOutput | None) -> str:
        form = record.shared_form()
        form["Content"] = record.job.content()
        form["Progress"] = record.job.progress()
        if output is not None:
            form["Output"] = _output_form(output)
        return json.dumps(form)

    async def insert(self, record: JobRecord) -> None:
        pinned = record.job.serialize() is None
        await self.index.insert_job(
            record.id,
            self.form_text(record, None),
            state=record.state.value,
            priority=record.priority,
            owner=self.me if pinned else None,
            ttl_ms=self.ttl_ms,
        )
        await self.wakeups.notify(ALL, HINT_PENDING)

    @staticmethod
    def keeps(record: JobRecord) -> bool:
        """Whether this member still holds the job after writing its state: while it runs or waits
        to retry, and a pinned job until it ends."""
        state = record.state
        pinned = record.job.serialize() is None
        return state in (JobState.RUNNING, JobState.RETRY) or (pinned and not state.completed)

    async def write(self, record: JobRecord, output: JobOutput | None = None) -> bool:
        """The fenced write of a job this member holds; False: the lease is lost, nothing written."""
        state = record.state
        return await self.index.write_owned_job(
            record.id,
            self.me,
            record.generation,
            self.form_text(record, output),
            state=state.value,
            owner_after=self.me if self.keeps(record) else None,
            ttl_ms=self.ttl_ms,
            requeue=state is JobState.PENDING or state.completed,
        )

    async def claim(self, mine: dict[str, JobRecord]) -> Claim | None:
        """The next Pending row for a free worker, or None if there is none.

        ``mine`` are the jobs this member holds (a pinned one is claimed there); any other is
        rebuilt from its row. One that cannot be (its type unknown here, or never saved) fails.
        """
        if self._give_back:
            return None
        while True:
            claimed = await self.index.claim_job(self.me, self.ttl_ms)
            if claimed is None:
                return None
            record = mine.get(claimed.id) or await self._rebuild(claimed)
            if record is not None:
                break
        record.generation = claimed.generation
        record.priority = claimed.priority
        return Claim(record, claimed.command)

    async def _rebuild(self, claimed: ClaimedJob) -> JobRecord | None:
        form = json.loads(claimed.data)
        try:
            if form.get("Job") is None:
                raise OrthancError(ErrorCode.INTERNAL_ERROR, LOST_MEMBER)
            return JobRecord.from_saved(form)
        except (KeyError, ValueError, TypeError, OrthancError) as error:
            log.warning("job %s cannot run on this member: %r", claimed.id, error)
            code = error.code if isinstance(error, OrthancError) else ErrorCode.INTERNAL_ERROR
            details = error.details if isinstance(error, OrthancError) else ""
            text = _changed(form, JobState.FAILURE, ErrorCode=int(code), ErrorDetails=details)
            state = JobState.FAILURE.value
            await self.index.write_owned_job(
                claimed.id, self.me, claimed.generation, text, state=state, owner_after=None, ttl_ms=self.ttl_ms,
                requeue=True,
            )  # fmt: skip
            await self.ended()
            return None

    async def wait_for_pending(self, seen: int) -> None:
        """Until a hint says a row became Pending after ``seen`` hints, or IDLE_POLL passed."""
        await _next_hint(self.pending_hints, seen)

    async def ended(self) -> None:
        """A job ended: its waiters are told, and the history keeps the JobsHistorySize that ended last."""
        await self.wakeups.notify(ALL, HINT_ENDED)
        for data in await self.index.trim_job_history(self._history_size):
            output = output_of(json.loads(data))
            if output is not None:
                await output.discard()

    # -- any job, from any member -------------------------------------------------------
    async def row(self, job_id: str) -> JobRow | None:
        return await self.index.job_row(job_id)

    async def stop(self, job_id: str, command: str, settle: float) -> bool:
        """Pause or cancel (``command``): a row nobody holds directly, one a member runs or holds
        through its command. The answer waits up to ``settle`` seconds for the row to leave Running."""
        row = await self.index.job_row(job_id)
        if row is None:
            return False
        cancel = command == "cancel"
        state = JobState(row.state)
        if state.completed or (state is JobState.PAUSED and not cancel):
            return True
        if state is not JobState.RUNNING and state is not JobState.RETRY and (row.owner is None or not cancel):
            new = JobState.FAILURE if cancel else JobState.PAUSED
            fields = {"ErrorCode": int(ErrorCode.CANCELED_JOB), "ErrorDetails": ""} if cancel else {}
            text = _changed(json.loads(row.data), new, **fields)
            if await self.index.replace_job(row, text, state=new.value, priority=row.priority, requeue=cancel):
                if cancel:
                    await self.ended()
                return True
            return await self.stop(job_id, command, settle)  # the row changed meanwhile: look again
        tell = HINT_COMMAND if self.wakeups.through_index else None  # the index sends it at commit
        owner = await self.index.set_job_command(job_id, command, tell_owner=tell)
        if owner is None:
            return await self.stop(job_id, command, settle)
        if tell is None:
            await self.wakeups.notify(owner, HINT_COMMAND)
        with trio.move_on_after(settle):
            while True:
                row = await self.index.job_row(job_id)
                if row is None or row.state not in (JobState.RUNNING.value, JobState.RETRY.value):
                    break
                await trio.sleep(ROW_POLL)
        return True

    async def resume(self, job_id: str) -> bool:
        row = await self.index.job_row(job_id)
        if row is None or row.state != JobState.PAUSED.value:
            return False
        text = _changed(json.loads(row.data), JobState.PENDING)
        if not await self.index.replace_job(
            row, text, state=JobState.PENDING.value, priority=row.priority, requeue=True
        ):
            return await self.resume(job_id)
        await self.wakeups.notify(ALL, HINT_PENDING)
        return True

    async def resubmit(self, job_id: str) -> bool:
        """A failed job from its first step; the job may refuse with an OrthancError."""
        row = await self.index.job_row(job_id)
        if row is None or row.state != JobState.FAILURE.value:
            return False
        form = json.loads(row.data)
        if form.get("Job") is None:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, f"Jobs of type {form['Type']} cannot be resubmitted")
        record = JobRecord.from_saved(form)
        record.job.reset()
        record.priority = row.priority
        record.runtime, record.attempts, record.completion_time = 0.0, 0, None
        record.error_code, record.error_details = ErrorCode.SUCCESS, ""
        record.set_state(JobState.PENDING)
        text = self.form_text(record, None)
        if not await self.index.replace_job(
            row, text, state=JobState.PENDING.value, priority=row.priority, requeue=True
        ):
            return await self.resubmit(job_id)
        await self.wakeups.notify(ALL, HINT_PENDING)
        return True

    async def set_priority(self, job_id: str, priority: int) -> bool:
        row = await self.index.job_row(job_id)
        if row is None or JobState(row.state).completed:
            return False
        text = json.dumps({**json.loads(row.data), "Priority": priority})
        pending = row.state == JobState.PENDING.value
        if not await self.index.replace_job(row, text, state=row.state, priority=priority, requeue=pending):
            return await self.set_priority(job_id, priority)
        return True

    async def delete(self, job_id: str) -> bool:
        data = await self.index.delete_ended_job(job_id)
        if data is None:
            return False
        output = output_of(json.loads(data))
        if output is not None:
            await output.discard()
        return True

    async def output(self, job_id: str) -> JobOutput | None:
        """The output a successful job recorded, if its file is still there."""
        row = await self.index.job_row(job_id)
        if row is None or row.state != JobState.SUCCESS.value:
            return None
        output = output_of(json.loads(row.data))
        if output is not None and output.path is not None and not await offload(output.path.is_file):
            return None
        return output

    async def delete_output(self, job_id: str) -> bool:
        row = await self.index.job_row(job_id)
        if row is None:
            return False
        form = json.loads(row.data)
        output = output_of(form)
        if output is None:
            return False
        form.pop("Output")
        if not await self.index.replace_job(row, json.dumps(form), state=row.state, priority=row.priority):
            return await self.delete_output(job_id)
        await output.discard()
        return True

    async def wait_ended(self, job_id: str) -> JobRow | None:
        """The row once its job ended, wherever it ran; None if it is gone (JobsHistorySize 0)."""
        while True:
            seen = self.ended_hints.value
            row = await self.index.job_row(job_id)
            if row is None or JobState(row.state).completed:
                return row
            await _next_hint(self.ended_hints, seen)
