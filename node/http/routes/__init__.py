"""One blueprint per concern; the app registers them all."""

from . import (
    archive,
    create_dicom,
    instances,
    jobs,
    metadata,
    metrics,
    modify,
    resource_tags,
    resources,
    split_merge,
    system,
    tools,
)

ALL_BLUEPRINTS = [
    archive.blueprint,
    system.blueprint,
    instances.blueprint,
    resources.blueprint,
    metrics.blueprint,
    jobs.blueprint,
    create_dicom.blueprint,
    modify.blueprint,
    tools.blueprint,
    metadata.blueprint,
    resource_tags.blueprint,
    split_merge.blueprint,
]
