"""Jobs that rewrite stored instances: ResourceModification (/modify and /anonymize of patients,
studies, series, and the bulk routes), and the base that SplitStudy and MergeStudy share with it.

Thin wrappers: an :class:`~node.services.rewrite.InstanceRewrite` does the work and
keeps the state; :class:`RewriteJob` maps it onto the instance-set steps (one per
instance, then the deletion of the sources when KeepSource is false).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Self, TypeVar, cast

from ...services.bundle import ServiceBundle
from ...services.rewrite import SOURCES_BATCH, InstanceRewrite, ResourceModification
from ..instance_set import InstanceSetJob
from ..job import register_job_type

RewriteT = TypeVar("RewriteT", bound=InstanceRewrite)


class RewriteJob(InstanceSetJob, Generic[RewriteT]):
    """An instance-set job whose steps are an :class:`InstanceRewrite`; subclasses name the type."""

    has_trailing_step: ClassVar[bool] = True
    rewrite_type: ClassVar[type[InstanceRewrite]]  # the class RewriteT stands for: a ClassVar cannot name it

    def __init__(self, rewrite: RewriteT, instances: list[str], description: str = "REST API") -> None:
        super().__init__(instances, description)
        self.rewrite = rewrite

    async def process_instance(self, services: ServiceBundle, instance: str) -> bool:
        upcoming = self.instances[self.position + 1 : self.position + 1 + SOURCES_BATCH]
        return await self.rewrite.rewrite_and_store(services, instance, upcoming)

    async def trailing_step(self, services: ServiceBundle) -> None:
        failed = set(self.failed)  # a source that could not be moved is kept
        await self.rewrite.delete_sources(services, [i for i in self.instances if i not in failed])

    def content(self) -> dict[str, Any]:
        return {**super().content(), **self.rewrite.content()}

    def reset(self) -> None:
        super().reset()
        self.rewrite.reset()

    def serialize(self) -> dict[str, Any] | None:
        return {**(super().serialize() or {}), "Modification": self.rewrite.to_json()}  # key of saved jobs

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Self:
        job = cls(cast(RewriteT, cls.rewrite_type.from_json(data["Modification"])), [])
        job.restore_instance_set(data)
        return job


@register_job_type
class ResourceModificationJob(RewriteJob[ResourceModification]):
    type_name: ClassVar[str] = "ResourceModification"
    rewrite_type: ClassVar[type[InstanceRewrite]] = ResourceModification
