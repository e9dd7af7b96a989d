"""Job types that exist only for the tests of the engine, and a route that submits them.

Registered on import, like the product's own types. An in-process node serves the route when
started with ``routes=[blueprint]`` (see :func:`tests.support.node.start_node`); a node in a
process of its own, when started by :mod:`tests.support.process`. Nothing here ships with the product.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, Response

from node.context import NodeContext
from node.errors import ErrorCode, OrthancError
from node.http.answers import json_answer, json_body, node
from node.jobs.instance_set import InstanceSetJob
from node.jobs.job import Job, JobOutput, Retry, Step, StepOutcome, StopReason, register_job_type
from node.jobs.submit import submit, submit_options

#: "label:step" each time a test job starts a step, and "label:stop:Reason" for its stop hook.
JOURNAL: list[str] = []


async def block_on_io() -> None:
    """Wait forever for bytes that never come, as a step talking to a silent peer does."""
    left, right = trio.socket.socketpair()
    with left, right:
        await left.recv(1)


@register_job_type
class StepsJob(Job):
    """``steps`` steps of ``delay`` seconds; one may block on I/O, fail, or ask for a retry."""

    type_name = "TestSteps"

    def __init__(
        self,
        steps: int = 1,
        *,
        delay: float = 0.0,
        label: str = "",
        block_at: int | None = None,
        fail_at: int | None = None,
        retry_at: int | None = None,
        output: str | None = None,
        output_path: str | None = None,
    ) -> None:
        self.steps, self.delay, self.label = steps, delay, label
        self.block_at, self.fail_at, self.retry_at = block_at, fail_at, retry_at
        self.output_text, self.output_path = output, output_path
        self.position = 0

    def content(self) -> dict[str, Any]:
        return {"Description": "Test", "Label": self.label, "Position": self.position, "Steps": self.steps}

    def progress(self) -> float:
        return 1.0 if self.steps == 0 else self.position / self.steps

    async def step(self, context: NodeContext) -> StepOutcome:
        index = self.position
        if index >= self.steps:
            return Step.DONE
        JOURNAL.append(f"{self.label}:{index}")
        if index == self.block_at:
            await block_on_io()
        if self.delay:
            await trio.sleep(self.delay)
        if index == self.fail_at:
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"step {index} failed")
        if index == self.retry_at:
            self.retry_at = None
            return Retry(5.0)
        if index == self.steps - 1 and self.output_path is not None:
            await trio.Path(self.output_path).write_bytes((self.output_text or "").encode())
        self.position += 1
        return Step.DONE if self.position >= self.steps else Step.CONTINUE

    async def stop(self, context: NodeContext, reason: StopReason) -> None:
        JOURNAL.append(f"{self.label}:stop:{reason.value}")

    def reset(self) -> None:
        self.position = 0

    def output(self) -> JobOutput | None:
        if self.output_path is not None:
            return JobOutput(path=Path(self.output_path))
        return JobOutput(data=self.output_text.encode()) if self.output_text is not None else None

    def serialize(self) -> dict[str, Any] | None:
        return {
            "Steps": self.steps, "Delay": self.delay, "Label": self.label, "BlockAt": self.block_at,
            "FailAt": self.fail_at, "RetryAt": self.retry_at, "Output": self.output_text,
            "OutputPath": self.output_path, "Position": self.position,
        }  # fmt: skip

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        job = cls(
            data["Steps"], delay=data["Delay"], label=data["Label"], block_at=data["BlockAt"],
            fail_at=data["FailAt"], retry_at=data["RetryAt"], output=data["Output"], output_path=data["OutputPath"],
        )  # fmt: skip
        job.position = data["Position"]
        return job


@register_job_type
class ArchiveLikeJob(StepsJob):
    """Like Archive/Media: never saved, and refuses resubmission."""

    type_name = "TestArchive"

    def serialize(self) -> dict[str, Any] | None:
        return None

    def reset(self) -> None:
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "Cannot resubmit the creation of an archive")


@register_job_type
class InstancesJob(InstanceSetJob):
    """Instances named "bad…" raise an Orthanc error, "bug…" an unexpected one, "gone…" are counted as
    failed, others succeed."""

    type_name = "TestInstances"
    has_trailing_step = True

    async def process_instance(self, context: NodeContext, instance: str) -> bool:
        await trio.sleep(0)
        if instance.startswith("bad"):
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"cannot send {instance}")
        if instance.startswith("bug"):
            raise RuntimeError(f"internal state of {instance} in /var/lib/secret")
        return not instance.startswith("gone")

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        job = cls([])
        job.restore_instance_set(data)
        return job


def job_from_body(body: dict[str, Any]) -> Job:
    kind = body.get("Type", "TestSteps")
    if kind == "TestInstances":
        return InstancesJob(list(body.get("Instances", [])))
    cls = ArchiveLikeJob if kind == "TestArchive" else StepsJob
    return cls(
        int(body.get("Steps", 1)), delay=float(body.get("Delay", 0)), label=str(body.get("Label", "")),
        block_at=body.get("BlockAt"), fail_at=body.get("FailAt"), output=body.get("Output"),
    )  # fmt: skip


blueprint = Blueprint("test_jobs", __name__)


@blueprint.route("/test/jobs", methods=["POST"])
async def submit_test_job() -> Response:
    """Like every job-creating route: synchronous unless the body says otherwise."""
    body = await json_body()
    job = job_from_body(body if isinstance(body, dict) else {})
    return json_answer(await submit(node().jobs, job, submit_options(body, synchronous=True)))
