"""One blueprint per concern; the app registers them all."""

from . import (
    archive,
    bulk_content,
    conformance,
    create_dicom,
    instances,
    jobs,
    metadata,
    metrics,
    resource_tags,
    resources,
    rewrite,
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
    rewrite.blueprint,
    tools.blueprint,
    metadata.blueprint,
    resource_tags.blueprint,
    split_merge.blueprint,
    bulk_content.blueprint,
    conformance.blueprint,
]
