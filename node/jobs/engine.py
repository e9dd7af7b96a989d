"""The jobs engine: registry, pending queue, workers, user actions, history and outputs.

States and transitions are Orthanc's (Pending, Running, Paused, Retry, Success,
Failure), with one deliberate improvement:
pause and cancel do not wait for the end of the running step. Each running job
lives in its own cancel scope; a request cancels it, so the job leaves Running
at once even when its step is blocked on the network. The interrupted step left
no trace (see :mod:`node.jobs.job`) and runs again when the job resumes.

In a cluster (several members sharing one index) the jobs belong to the index (see
:mod:`node.jobs.cluster`): workers claim their jobs there instead of from the in-process
queue, every change of a job held here is a fenced write of its row, and the questions
about any job are answered from the rows. The registry then only holds the jobs this
member runs or holds.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..clock import utc_now
from ..config import Config
from ..errors import ErrorCode, OrthancError
from ..services.bundle import ServiceBundle
from . import types as _builtin_types  # noqa: F401  (registers the types saved jobs may need)
from .cluster import HINT_PENDING, LOST_MEMBER, Claim, ClusterJobs, row_facts
from .job import Job, JobOutput, Retry, Step, StepOutcome, StopReason
from .outputs import OutputStore
from .persist import JobsStore
from .queue import PendingQueue
from .record import NO_USER_DATA, JobRecord, JobState, PublicFacts, Request, is_not_running, job_answer
from .wakeups import ALL

log = logging.getLogger(__name__)

OUTPUT_KEY = "archive"
STOP_HOOK_TIMEOUT = 10.0
SETTLE_TIMEOUT = 0.1  # how long a pause/cancel call waits to see the running job leave Running
DEFAULT_MEMBER = "member"  # the member ID of a node on a shared index that was given none
MIN_LEASE_TTL = 1.0  # seconds: a shorter lease would be renewed in a busy loop, and lost under any load


@dataclass(frozen=True)
class _Ended:
    state: JobState
    code: ErrorCode = ErrorCode.SUCCESS
    details: str = ""
    output: JobOutput | None = None


@dataclass(frozen=True)
class EngineSettings:
    """The options of the engine: workers, finished jobs kept, outputs kept, persistence, cluster."""

    workers: int
    history_size: int
    outputs_kept: int
    save_jobs: bool
    member_id: str | None = None
    cluster: bool = False  # the jobs belong to the shared index (MemberId set, or a PostgreSQL index)
    lease_ttl: float = 15.0  # seconds a member holds a job's lease without renewing it
    cluster_scope: str = ""  # what names the shared index (its folder), for the wake-up hints

    @classmethod
    def from_config(cls, config: Config) -> EngineSettings:
        workers = int(config["ConcurrentJobs"])  # 0: one per core
        member = config["MemberId"]
        postgres = config["PostgreSQL"]
        index_folder = Path(config["IndexDirectory"] or config["StorageDirectory"]).resolve()
        lease_ttl = float(config["JobsLeaseTimeout"])
        if not lease_ttl >= MIN_LEASE_TTL:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"JobsLeaseTimeout must be at least {MIN_LEASE_TTL:g} second")
        return cls(
            workers=workers if workers > 0 else max(1, os.cpu_count() or 1),
            history_size=max(0, int(config["JobsHistorySize"])),
            outputs_kept=int(config["MediaArchiveSize"]),
            save_jobs=bool(config["SaveJobs"]),
            member_id=str(member) if member is not None else None,
            cluster=member is not None or bool(isinstance(postgres, dict) and postgres.get("EnableIndex")),
            lease_ttl=lease_ttl,
            cluster_scope=str(index_folder),
        )


class JobsEngine:
    """Runs jobs, handing each the node's :class:`ServiceBundle`."""

    def __init__(self, services: ServiceBundle, settings: EngineSettings, *, load: bool = True) -> None:
        self._services = services
        self._worker_count = settings.workers
        self._history_size = settings.history_size
        self._records: dict[str, JobRecord] = {}
        self._history: OrderedDict[str, None] = OrderedDict()  # completed jobs, oldest completion first
        self._queue = PendingQueue()
        self._outputs = OutputStore(settings.outputs_kept)
        self._cluster = (
            ClusterJobs(
                services.index,
                settings.member_id or DEFAULT_MEMBER,
                settings.lease_ttl,
                settings.cluster_scope,
                settings.history_size,
            )
            if settings.cluster
            else None
        )
        saved = settings.save_jobs and self._cluster is None  # a cluster's jobs are in the index anyway
        self.store = JobsStore(services.index, lambda: self._records, services.metrics) if saved else None
        self._load = load
        self._nursery: trio.Nursery | None = None

    # -- life cycle ------------------------------------------------------------
    @property
    def clustered(self) -> bool:
        """The jobs belong to an index shared by several members."""
        return self._cluster is not None

    @property
    def member(self) -> str | None:
        """In a cluster, this member's incarnation: the owner its rows name."""
        return self._cluster.me if self._cluster is not None else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore the saved jobs, then run the persister and the workers until cancelled."""
        if self._cluster is not None:
            await self._run_in_cluster(self._cluster, task_status)
            return
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.store is not None:
                if self._load:
                    self._restore(await self.store.load())
                else:
                    await self.store.forget_all()
                nursery.start_soon(self.store.run)
            for _ in range(self._worker_count):
                nursery.start_soon(self._worker)
            task_status.started()

    async def _run_in_cluster(self, cluster: ClusterJobs, task_status: trio.TaskStatus[None]) -> None:
        """Join the cluster, run its loops and the claimer; leave it (giving back the jobs held here),
        also when joining failed half-way. Leaving is bounded and never hides why the engine stops."""
        try:
            await cluster.start()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(cluster.run, lambda: self._records, self._lost, self._obey_all)
                nursery.start_soon(self._claimer, cluster)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await cluster.leave()

    def _restore(self, forms: list[dict[str, Any]]) -> None:
        """Saved jobs at start: unfinished ones are queued again, paused ones stay paused, ended ones go to history."""
        records = []
        for form in forms:
            try:
                records.append(JobRecord.from_saved(form))
            except (KeyError, ValueError, TypeError, OrthancError) as error:
                log.warning("cannot reload the saved job %s: %r", form.get("ID"), error)
        records.sort(key=lambda r: r.creation_time)
        for record in records:
            self._records[record.id] = record
            if not record.state.completed and record.state is not JobState.PAUSED:
                record.set_state(JobState.PENDING)
                self._queue.push(record)
        ended = sorted((r for r in records if r.state.completed), key=lambda r: r.completion_time or r.last_change)
        for record in ended:
            self._history[record.id] = None
        self._evict_history()
        if records:
            log.info("reloaded %d saved jobs", len(records))

    # -- submission and lookup -------------------------------------------------
    async def submit(self, job: Job, *, priority: int = 0, user_data: Any = NO_USER_DATA) -> JobRecord:
        """Run the job's submission hook, then queue it; the hook's error refuses the job."""
        await job.start(self._services)
        record = JobRecord(job=job, priority=priority, user_data=user_data)
        if self._cluster is not None:
            if not self._cluster.keeps(record):
                await self._cluster.insert(record)
                return record
            self._records[record.id] = record  # pinned here: held from the start
            await self._cluster.insert(record)
            return record
        self._records[record.id] = record
        self._queue.push(record)
        self._save(record, urgent=True)
        log.debug("job %s (%s) submitted with priority %d", record.id, job.type_name, priority)
        return record

    def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def records(self) -> list[JobRecord]:
        return list(self._records.values())

    def pending_in_order(self) -> list[JobRecord]:
        """The Pending jobs, first the one the next free worker takes (Retry jobs wait for their timer)."""
        return self._queue.in_order()

    def count_by_state(self) -> dict[str, int]:
        return dict(Counter(record.state.value for record in self._records.values()))

    async def wait_completed(self, record: JobRecord) -> PublicFacts | None:
        """Wait for Success or Failure: what the job shows then; None if it already left the registry
        (JobsHistorySize 0).

        In a cluster, a job that any member may run is followed through its row: the answer is
        the job as it ended there (also when no member could run it, and the row only says why).
        """
        cluster = self._cluster
        if cluster is None:
            await record.completed.wait()
            return record.facts() if self._records.get(record.id) is record else None
        if record.job.serialize() is None:  # pinned: it runs here
            await record.completed.wait()
            return record.facts() if await cluster.row(record.id) is not None else None
        row = await cluster.wait_ended(record.id)
        return row_facts(row) if row is not None else None

    # -- questions and actions of the REST API, about any job (of the cluster) ---------
    async def answer(self, job_id: str) -> dict[str, Any] | None:
        """GET /jobs/{id}, or None for an unknown job."""
        if self._cluster is None:
            record = self.get(job_id)
            return record.to_json(utc_now()) if record is not None else None
        row = await self._cluster.row(job_id)
        return job_answer(row_facts(row), utc_now()) if row is not None else None

    async def answers(self) -> list[dict[str, Any]]:
        """GET /jobs?expand, by ID."""
        now = utc_now()
        if self._cluster is None:
            return [record.to_json(now) for record in sorted(self.records(), key=lambda record: record.id)]
        return [job_answer(row_facts(row), now) for row in await self._services.index.job_rows()]

    async def ids(self) -> list[str]:
        if self._cluster is None:
            return sorted(record.id for record in self.records())
        return await self._services.index.job_ids()

    async def counts(self) -> dict[str, int]:
        if self._cluster is None:
            return self.count_by_state()
        return await self._services.index.job_counts()

    async def pending_ids(self) -> list[str]:
        """The Pending jobs, first the one the next free worker takes."""
        if self._cluster is None:
            return [record.id for record in self.pending_in_order()]
        return await self._services.index.job_ids(JobState.PENDING.value)

    async def act(self, action: str, job_id: str) -> bool:
        """pause, cancel, resume or resubmit (POST /jobs/{id}/...); False: unknown job or refused."""
        if action == "pause":
            return await self.pause(job_id)
        if action == "cancel":
            return await self.cancel(job_id)
        if self._cluster is None:
            return self.resume(job_id) if action == "resume" else self.resubmit(job_id)
        if action == "resume":
            return await self._cluster.resume(job_id)
        return await self._cluster.resubmit(job_id)

    async def reprioritize(self, job_id: str, priority: int) -> bool:
        if self._cluster is None:
            return self.set_priority(job_id, priority)
        return await self._cluster.set_priority(job_id, priority)

    async def remove(self, job_id: str) -> bool:
        """DELETE /jobs/{id} of a completed job."""
        if self._cluster is None:
            return self.delete(job_id)
        return await self._cluster.delete(job_id)

    async def find_output(self, job_id: str, key: str) -> JobOutput | None:
        if self._cluster is None or key != OUTPUT_KEY:
            return self.output(job_id, key)
        return await self._cluster.output(job_id)

    async def remove_output(self, job_id: str, key: str) -> bool:
        if self._cluster is None or key != OUTPUT_KEY:
            return self.delete_output(job_id, key)
        self._outputs.pop(job_id)
        return await self._cluster.delete_output(job_id)

    # -- user actions (POST /jobs/{id}/...): False means unknown job or refused --------
    async def pause(self, job_id: str) -> bool:
        if self._cluster is not None:
            return await self._cluster.stop(job_id, Request.PAUSE.value, SETTLE_TIMEOUT)
        record = self._records.get(job_id)
        if record is None:
            return False
        await self._pause_record(record)
        return True

    async def _pause_record(self, record: JobRecord) -> None:
        if record.state in (JobState.PENDING, JobState.RETRY):
            self._leave_queue(record)
            record.set_state(JobState.PAUSED)
            self._save(record, urgent=True)
        elif record.state is JobState.RUNNING:
            await self._interrupt(record, Request.PAUSE)

    async def cancel(self, job_id: str) -> bool:
        if self._cluster is not None:
            return await self._cluster.stop(job_id, Request.CANCEL.value, SETTLE_TIMEOUT)
        record = self._records.get(job_id)
        if record is None:
            return False
        await self._cancel_record(record)
        return True

    async def _cancel_record(self, record: JobRecord) -> None:
        if record.state in (JobState.PENDING, JobState.RETRY, JobState.PAUSED):
            self._leave_queue(record)
            self._complete(record, _Ended(JobState.FAILURE, ErrorCode.CANCELED_JOB))
            self._spawn_stop(record, StopReason.CANCELED)
        elif record.state is JobState.RUNNING:
            await self._interrupt(record, Request.CANCEL)

    def resume(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        if record is None or record.state is not JobState.PAUSED:
            return False
        record.set_state(JobState.PENDING)
        self._queue.push(record)
        self._save(record, urgent=True)
        return True

    def resubmit(self, job_id: str) -> bool:
        """Restart a failed job from its first step; the job may refuse with an OrthancError."""
        record = self._records.get(job_id)
        if record is None or record.state is not JobState.FAILURE:
            return False
        record.job.reset()
        self._history.pop(record.id, None)
        record.runtime = 0.0
        record.attempts = 0
        record.error_code, record.error_details = ErrorCode.SUCCESS, ""
        record.completion_time = None
        record.set_state(JobState.PENDING)
        self._queue.push(record)
        self._save(record, urgent=True)
        return True

    def set_priority(self, job_id: str, priority: int) -> bool:
        """Give a job that has not ended a new priority; a Pending one takes its new place in the queue
        (the last among its new equals, as if submitted now)."""
        record = self._records.get(job_id)
        if record is None or record.state.completed:
            return False
        record.priority = priority
        if record.state is JobState.PENDING:
            self._queue.discard(record)
            self._queue.push(record)
        self._save(record, urgent=True)
        return True

    def delete(self, job_id: str) -> bool:
        """Forget a completed job (DELETE /jobs/{id})."""
        record = self._records.get(job_id)
        if record is None or not record.state.completed:
            return False
        self._forget(job_id)
        return True

    def output(self, job_id: str, key: str) -> JobOutput | None:
        record = self._records.get(job_id)
        if record is None or record.state is not JobState.SUCCESS or key != OUTPUT_KEY:
            return None
        return self._outputs.get(job_id)

    def delete_output(self, job_id: str, key: str) -> bool:
        output = self._outputs.pop(job_id) if key == OUTPUT_KEY else None
        if output is None:
            return False
        self._discard(output)
        return True

    # -- workers -------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            record = await self._queue.get()
            if record.stop_hooks.value:
                await record.stop_hooks.wait_value(0)  # its stop hooks must finish before it runs again
            if record.state is JobState.PENDING:  # not paused or cancelled meanwhile
                await self._execute(record)

    async def _claimer(self, cluster: ClusterJobs) -> None:
        """The one claimer of a cluster member: it claims the next Pending row only when a worker is
        free, and runs its job in that worker. A single claimer keeps an idle member to one claim
        (a write transaction) per hint or idle poll, however many workers it has."""
        free = trio.Semaphore(self._worker_count)
        async with trio.open_nursery() as workers:
            while True:
                await free.acquire()
                claim = await self._next_claim(cluster)
                record = claim.record
                record.set_state(JobState.PENDING)  # as its row now says Running, until it runs here
                self._records[record.id] = record
                workers.start_soon(self._claimed, claim, free)

    async def _next_claim(self, cluster: ClusterJobs) -> Claim:
        while True:
            seen = cluster.pending_hints.value
            try:
                claim = await cluster.claim(self._records)
            except OrthancError as error:  # the index out of reach for a while: the next round tries again
                log.warning("cannot claim a job: %s", error)
                claim = None
            if claim is not None:
                return claim
            await cluster.wait_for_pending(seen)

    async def _claimed(self, claim: Claim, free: trio.Semaphore) -> None:
        """Run a claimed job in a free worker; the job may have been lost, paused or cancelled here
        while its earlier stop hooks ran: it then stays as that left it."""
        record = claim.record
        try:
            if record.stop_hooks.value:
                await record.stop_hooks.wait_value(0)
                if not self._still_claimed(record, claim):
                    return
            if claim.command is not None:  # asked while the member that ran it was stopping
                await self._obey(record, claim.command)
            else:
                await self._execute(record)
        finally:
            free.release()

    def _still_claimed(self, record: JobRecord, claim: Claim) -> bool:
        """The job is still held here under that claim, and still waits to run."""
        held = self._records.get(record.id) is record and record.generation == claim.generation
        return held and record.state is JobState.PENDING

    async def _obey_all(self, commands: list[tuple[str, str]]) -> None:
        """Commands found in the rows of jobs held here: each carried out in the background."""
        for job_id, command in commands:
            record = self._records.get(job_id)
            if record is not None:
                self._spawn(self._obey, record, command)

    async def _obey(self, record: JobRecord, command: str) -> None:
        """A pause or a cancel asked on any member, of a job held here (a write the index refuses is
        logged by the write: the job then stops here, and its row waits there for the next holder)."""
        running = record.state is JobState.RUNNING
        if command == Request.CANCEL.value:
            await self._cancel_record(record)
        else:
            await self._pause_record(record)
        if not running:  # a running job writes its new state itself as it leaves Running
            await self._settled(record)

    def _lost(self, record: JobRecord) -> None:
        """Another member took the job's lease: it stops here at once, and nothing more is written."""
        if record.state is JobState.RUNNING:
            record.request = Request.LOST
            if record.scope is not None:
                record.scope.cancel()
            return
        self._leave_queue(record)
        self._abandon(record)

    def _abandon(self, record: JobRecord) -> bool:
        """Forget a job whose lease was lost; a pinned one (no other member can run it) ends for its
        waiters, its stop hook started (True)."""
        self._records.pop(record.id, None)
        if record.job.serialize() is None and not record.state.completed:
            record.error_code, record.error_details = ErrorCode.INTERNAL_ERROR, LOST_MEMBER
            record.set_state(JobState.FAILURE)
            self._spawn_stop(record, StopReason.FAILURE)
            return True
        return False

    async def _settled(self, record: JobRecord, output: JobOutput | None = None) -> None:
        """Cluster: write the new state of a job held here, and tell whoever waits for it. A write
        refused (lease lost, index out of reach) leaves the job to whoever holds its row next."""
        cluster = self._cluster
        if cluster is None:
            return
        written = await cluster.write(record, output)
        if not written or not cluster.keeps(record):
            self._records.pop(record.id, None)
        if not written:
            return
        if record.state.completed:
            await cluster.ended()
        elif record.state is JobState.PENDING:
            await cluster.wakeups.notify(ALL, HINT_PENDING)

    async def _execute(self, record: JobRecord) -> None:
        self._queue.discard(record)
        record.request = None
        record.error_code = ErrorCode.SUCCESS
        outcome: _Ended | Retry | None = None
        finished = False
        try:
            with trio.CancelScope() as scope:
                record.scope = scope
                record.set_state(JobState.RUNNING)
                record.run_mark = trio.current_time()
                outcome = await self._run_steps(record)
            finished = True
        finally:
            record.scope = None
            self._account(record)
            if not finished:
                # The node is stopping: the job stays Running, as saved, and resumes at the next start.
                with trio.CancelScope(shield=True):
                    await self._stop_hook(record, StopReason.PAUSED)
        if record.request is Request.LOST:
            record.request = None
            record.set_state(JobState.PENDING)
            if not self._abandon(record):  # a pinned job got its stop hook there, as it failed
                self._spawn_stop(record, StopReason.PAUSED)
            return
        self._leave_running(record, outcome)
        await self._settled(record, outcome.output if isinstance(outcome, _Ended) else None)

    async def _run_steps(self, record: JobRecord) -> _Ended | Retry | None:
        """Steps until the job ends (its outcome) or a user request stops it between steps (None)."""
        job = record.job
        while record.request is None:
            result: _Ended | StepOutcome
            try:
                result = await job.step(self._services)
            except OrthancError as error:
                result = self._after_failure(record, error)
            except Exception:  # a bug in one job type fails that job, not the node
                # The traceback names internals (paths, library messages): it goes to the log only.
                log.exception("job %s (%s) failed on an unexpected error", record.id, job.type_name)
                return _Ended(JobState.FAILURE, ErrorCode.INTERNAL_ERROR, "")
            if isinstance(result, Retry):
                result = self._retry_or_fail(record, result)
            if isinstance(result, _Ended):
                return result
            self._account(record)
            if result is Step.DONE:
                return _Ended(JobState.SUCCESS, output=job.output())
            if isinstance(result, Retry):
                return result
            if not await self._progressed(record):
                record.request = Request.LOST
        return None

    async def _progressed(self, record: JobRecord) -> bool:
        """The job finished a step: saved (SaveJobs), or written to its row; False if its lease is lost."""
        if self._cluster is None:
            self._save(record)
            return True
        return await self._cluster.write(record)

    def _after_failure(self, record: JobRecord, error: OrthancError) -> _Ended | StepOutcome:
        """A step failed: the job fails, or (permissive) the step is counted as failed and skipped."""
        job = record.job
        if not job.permissive:
            return _Ended(JobState.FAILURE, error.code, error.details)
        log.warning("job %s: a failed step is skipped (permissive): %s", record.id, error)
        try:
            return job.skip_failed_step(error)
        except OrthancError as refused:
            return _Ended(JobState.FAILURE, refused.code, refused.details)

    def _retry_or_fail(self, record: JobRecord, retry: Retry) -> _Ended | StepOutcome:
        """A retry asked after a transient failure is counted; past its limit the failure stands."""
        if retry.failure is None:
            return retry
        if record.attempts >= retry.limit:
            return self._after_failure(record, retry.failure)
        record.attempts += 1
        log.info(
            "job %s: retry %d/%d in %s s: %s", record.id, record.attempts, retry.limit, retry.seconds, retry.failure
        )
        return retry

    def _leave_running(self, record: JobRecord, outcome: _Ended | Retry | None) -> None:
        if outcome is None:
            if record.request is Request.CANCEL:
                self._complete(record, _Ended(JobState.FAILURE, ErrorCode.CANCELED_JOB))
                reason = StopReason.CANCELED
            else:
                record.set_state(JobState.PAUSED)
                self._save(record, urgent=True)
                reason = StopReason.PAUSED
        elif isinstance(outcome, Retry):
            record.set_state(JobState.RETRY)
            self._save(record)
            record.scope = trio.CancelScope()  # cancelled by a pause or a cancel, even before the timer starts
            self._spawn(self._retry_later, record, record.scope, outcome.seconds)
            reason = StopReason.RETRY
        else:
            if outcome.output is not None:
                for evicted in self._outputs.put(record.id, outcome.output):
                    self._discard(evicted)
            self._complete(record, outcome)
            reason = StopReason.SUCCESS if outcome.state is JobState.SUCCESS else StopReason.FAILURE
        record.request = None
        self._spawn_stop(record, reason)

    async def _interrupt(self, record: JobRecord, request: Request) -> None:
        """Cancel the running step; a cancel outranks a pause asked for just before."""
        if record.request is not Request.CANCEL:
            record.request = request
        if record.scope is not None:
            record.scope.cancel()
        with trio.move_on_after(SETTLE_TIMEOUT):
            await record.status.wait_value(is_not_running)

    async def _retry_later(self, record: JobRecord, timer: trio.CancelScope, seconds: float) -> None:
        with timer:
            await trio.sleep(seconds)
            if record.state is JobState.RETRY and record.scope is timer:
                record.scope = None
                record.set_state(JobState.PENDING)
                if self._cluster is not None:
                    await self._settled(record)
                    return
                self._queue.push(record)
                self._save(record)

    def _leave_queue(self, record: JobRecord) -> None:
        """Take a Pending or Retry job out of the queue or its retry timer."""
        self._queue.discard(record)
        if record.state is JobState.RETRY and record.scope is not None:
            record.scope.cancel()
            record.scope = None

    # -- endings, history, outputs ---------------------------------------------------
    def _complete(self, record: JobRecord, ended: _Ended) -> None:
        record.set_state(ended.state)
        record.completion_time = record.last_change
        record.error_code, record.error_details = ended.code, ended.details
        self._services.metrics.job_finished(record.job.type_name, ended.state.value)
        if self._cluster is not None:
            return  # the history is the cluster's: trimmed in the index once the end is written
        self._history[record.id] = None
        self._save(record, urgent=True)
        self._evict_history()

    def _evict_history(self) -> None:
        while len(self._history) > self._history_size:
            oldest, _ = self._history.popitem(last=False)
            self._forget(oldest)

    def _forget(self, job_id: str) -> None:
        self._records.pop(job_id, None)
        self._history.pop(job_id, None)
        output = self._outputs.pop(job_id)
        if output is not None:
            self._discard(output)
        if self.store is not None:
            self.store.removed(job_id)

    def _discard(self, output: JobOutput) -> None:
        if output.path is not None:
            self._spawn(output.discard)

    # -- helpers -----------------------------------------------------------------------
    def _save(self, record: JobRecord, *, urgent: bool = False) -> None:
        if self.store is None:
            return
        if urgent:
            self.store.changed_urgently(record.id)
        else:
            self.store.changed(record.id)

    @staticmethod
    def _account(record: JobRecord) -> None:
        """Add the time since the last accounting to EffectiveRuntime."""
        now = trio.current_time()
        record.runtime += now - record.run_mark
        record.run_mark = now

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is None:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "The jobs engine is not running")
        self._nursery.start_soon(fn, *args)

    def _spawn_stop(self, record: JobRecord, reason: StopReason) -> None:
        """Run the stop hook in the background so the worker is free at once; a job type without one
        (most, short jobs among them) costs no task."""
        if type(record.job).stop is Job.stop:
            return
        record.stop_hooks.value += 1

        async def stop() -> None:
            try:
                with trio.CancelScope(shield=True):
                    await self._stop_hook(record, reason)
            finally:
                record.stop_hooks.value -= 1

        self._spawn(stop)

    async def _stop_hook(self, record: JobRecord, reason: StopReason) -> None:
        with trio.move_on_after(STOP_HOOK_TIMEOUT) as bound:
            try:
                await record.job.stop(self._services, reason)
            except OrthancError as error:
                log.warning("job %s: stop hook failed: %s", record.id, error)
            except Exception:  # a bug in one job type must not stop the engine
                log.exception("job %s (%s): stop hook failed", record.id, record.job.type_name)
        if bound.cancelled_caught:
            log.warning("job %s: stop hook gave up after %s s", record.id, STOP_HOOK_TIMEOUT)
