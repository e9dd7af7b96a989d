"""The skeleton of every job that sends each instance of a list to one remote.

One step per instance: take the stored file (read ahead while the previous ones went
out, see :mod:`~node.net.read_ahead`, the next ones looked up while it goes), hand it to the
subclass's sender. What the sender opens (an association, an HTTP connection) is kept across the steps of a
run and closed by the stop hook; a pause or a cancel interrupts the step at once and
the sender's connection is dropped. A failed send is either permanent (the job fails,
or, permissive, counts the instance as failed) or transient: the step then asks to be
retried after the ``JobsRetry`` backoff and the next run starts again at the instance
that was not sent.
"""

from __future__ import annotations

import abc
from functools import partial
from typing import Any

from ..errors import OrthancError
from ..jobs.instance_set import InstanceSetJob
from ..jobs.job import StepOutcome, StopReason
from ..net.read_ahead import FileReadAhead, Transform
from ..services.bundle import ServiceBundle
from .retry import RetryPolicy, retry_or_raise


class InstanceSendJob(InstanceSetJob):
    """Subclasses name the job type, send one file, close what they opened, and describe the remote."""

    def __init__(
        self, instances: list[str], parents: list[str], retry: RetryPolicy, description: str = "REST API"
    ) -> None:
        super().__init__(instances, description)
        self.parents = list(parents)  # the resources the request named
        self.retry = retry
        self._files: FileReadAhead | None = None  # for the current run

    def transform(self, services: ServiceBundle) -> Transform | None:
        """What to do to each file in the reading thread before :meth:`send` gets it (nothing)."""
        return None

    @abc.abstractmethod
    async def send(self, services: ServiceBundle, instance: str, data: bytes) -> None:
        """Send one stored Part-10 file; raise an OrthancError (transient or not) if it did not go.

        Runs in the job's cancel scope: it may be interrupted at any ``await``.
        """

    @abc.abstractmethod
    async def disconnect(self, reason: StopReason) -> None:
        """Close what :meth:`send` keeps open (gracefully after the last instance, at once on a pause
        or a cancel); nothing to do if nothing is open."""

    @abc.abstractmethod
    def remote_content(self) -> dict[str, Any]:
        """The keys of the public Content that describe the remote and the transfer."""

    async def process_instance(self, services: ServiceBundle, instance: str) -> bool:
        if self._files is None:
            self._files = FileReadAhead(services, self.instances, self.transform(services))
        files = self._files
        data = await files.get(self.position)
        await files.beside(self.position, partial(self.send, services, instance, data))
        return True

    async def step(self, services: ServiceBundle) -> StepOutcome:
        try:
            return await super().step(services)
        except OrthancError as error:
            return retry_or_raise(error, self.retry)

    async def stop(self, services: ServiceBundle, reason: StopReason) -> None:
        files, self._files = self._files, None
        if files is not None:
            files.close()
        await self.disconnect(reason)

    def content(self) -> dict[str, Any]:
        content = super().content()
        if self.parents:
            content["ParentResources"] = self.parents
        content.update(self.remote_content())
        return dict(sorted(content.items()))

    def serialize(self) -> dict[str, Any] | None:
        return {**(super().serialize() or {}), "ParentResources": self.parents, "Retry": self.retry.to_json()}

    def restore_send_job(self, data: dict[str, Any]) -> None:
        """For subclasses' :meth:`deserialize`: the part :meth:`serialize` wrote here."""
        self.restore_instance_set(data)
        self.parents = list(data["ParentResources"])
        self.retry = RetryPolicy.from_json(data["Retry"])
