"""ResourceModification jobs: /modify and /anonymize of patients, studies, series, and the bulk routes.

A thin wrapper: :class:`~node.services.modify.ResourceModification` does the work
and keeps the state; this class maps it onto the instance-set steps (one per
instance, then the deletion of the sources when KeepSource is false).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ...services.modify import ResourceModification
from ..instance_set import InstanceSetJob
from ..job import register_job_type

if TYPE_CHECKING:
    from ...context import NodeContext


@register_job_type
class ResourceModificationJob(InstanceSetJob):
    type_name: ClassVar[str] = "ResourceModification"
    has_trailing_step: ClassVar[bool] = True

    def __init__(self, modification: ResourceModification, instances: list[str], description: str = "REST API"):
        super().__init__(instances, description)
        self.modification = modification

    async def process_instance(self, context: NodeContext, instance: str) -> bool:
        return await self.modification.modify(context, instance)

    async def trailing_step(self, context: NodeContext) -> None:
        failed = set(self.failed)
        await self.modification.delete_sources(context, [i for i in self.instances if i not in failed])

    def content(self) -> dict[str, Any]:
        return {**super().content(), **self.modification.content()}

    def reset(self) -> None:
        super().reset()
        self.modification.reset()

    def serialize(self) -> dict[str, Any] | None:
        return {**(super().serialize() or {}), "Modification": self.modification.to_json()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ResourceModificationJob:
        job = cls(ResourceModification.from_json(data["Modification"]), [])
        job.restore_instance_set(data)
        return job
