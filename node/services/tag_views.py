"""Tags of a resource read from its files: shared tags, tags of each instance, modules.

Main DICOM tags come from the index; these views need the stored files, so each one
reads what it must (one file for a module, every file for shared and instance tags)
off the Trio thread.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from ..dicom.ids import Level
from ..dicom.json_view import TagFormat, dataset_to_json
from ..dicom.modules import module_of, select
from ..dicom.parse import read_dataset
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.index import Index
from .resources import Resources


def _string_entries(dataset: Dataset) -> dict[str, Any]:
    """Top-level elements that Orthanc shows with Type String, in the full format."""
    full = dataset_to_json(dataset, TagFormat.FULL)
    return {key: entry for key, entry in full.items() if entry["Type"] == "String"}


class TagViews:
    def __init__(self, index: Index, resources: Resources) -> None:
        self._index = index
        self._resources = resources

    async def _instances(self, public_id: str, level: Level) -> list[str]:
        await self._resources.get(public_id, level)  # error 17 when unknown at this level
        return await self._index.descendants(public_id, Level.INSTANCE)

    async def _read(self, instance: str, *, pixels: bool = False) -> Dataset:
        data = await self._resources.instance_file(instance)
        return await offload(lambda: read_dataset(data, stop_before_pixels=not pixels))

    async def shared_tags(self, public_id: str, level: Level, fmt: TagFormat) -> dict[str, Any]:
        """String-valued tags equal in every instance of the resource (one file in memory at a time)."""
        first: Dataset | None = None
        shared: dict[str, Any] = {}
        for instance in await self._instances(public_id, level):
            dataset = await self._read(instance)
            entries = await offload(_string_entries, dataset)
            if first is None:
                first, shared = dataset, entries
            else:
                shared = {key: entry for key, entry in shared.items() if entries.get(key) == entry}
        if first is None:
            return {}
        return dataset_to_json(select(first, {int(key.replace(",", ""), 16) for key in shared}), fmt)

    async def instances_tags(self, public_id: str, level: Level, fmt: TagFormat) -> dict[str, Any]:
        """The tags of every instance of the resource, by instance ID."""
        answer = {}
        for instance in await self._instances(public_id, level):
            dataset = await self._read(instance, pixels=True)
            answer[instance] = await offload(dataset_to_json, dataset, fmt)
        return answer

    async def module(self, public_id: str, level: Level, module: Level, fmt: TagFormat) -> dict[str, Any]:
        """The ``module`` tags found in the first instance of the resource."""
        instances = await self._instances(public_id, level)
        if not instances:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        dataset = await self._read(instances[0])
        return dataset_to_json(module_of(dataset, module), fmt)
