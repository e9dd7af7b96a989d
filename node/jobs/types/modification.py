"""Jobs that rewrite stored instances: ResourceModification (/modify and /anonymize of patients,
studies, series, and the bulk routes), and the base that SplitStudy and MergeStudy share with it.

Thin wrappers: an :class:`~node.services.modify.InstanceRewrite` does the work and
keeps the state; :class:`RewriteJob` maps it onto the instance-set steps (one per
instance, then the deletion of the sources when KeepSource is false).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

from ...services.modify import InstanceRewrite, ResourceModification
from ..instance_set import InstanceSetJob
from ..job import register_job_type

if TYPE_CHECKING:
    from ...context import NodeContext

RewriteT = TypeVar("RewriteT", bound=InstanceRewrite)


class RewriteJob(InstanceSetJob, Generic[RewriteT]):
    """An instance-set job whose steps are an :class:`InstanceRewrite`; subclasses name the type."""

    has_trailing_step: ClassVar[bool] = True
    rewrite_type: ClassVar[type[InstanceRewrite]]  # the class RewriteT stands for: a ClassVar cannot name it

    def __init__(self, rewrite: RewriteT, instances: list[str], description: str = "REST API") -> None:
        super().__init__(instances, description)
        self.modification = rewrite

    async def process_instance(self, context: NodeContext, instance: str) -> bool:
        return await self.modification.modify(context, instance)

    async def trailing_step(self, context: NodeContext) -> None:
        failed = set(self.failed)  # a source that could not be moved is kept
        await self.modification.delete_sources(context, [i for i in self.instances if i not in failed])

    def content(self) -> dict[str, Any]:
        return {**super().content(), **self.modification.content()}

    def reset(self) -> None:
        super().reset()
        self.modification.reset()

    def serialize(self) -> dict[str, Any] | None:
        return {**(super().serialize() or {}), "Modification": self.modification.to_json()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Self:
        job = cls(cast(RewriteT, cls.rewrite_type.from_json(data["Modification"])), [])
        job.restore_instance_set(data)
        return job


@register_job_type
class ResourceModificationJob(RewriteJob[ResourceModification]):
    type_name: ClassVar[str] = "ResourceModification"
    rewrite_type: ClassVar[type[InstanceRewrite]] = ResourceModification
