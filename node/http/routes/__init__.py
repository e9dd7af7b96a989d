"""One blueprint per concern; the app registers them all."""

from . import (
    archive,
    create_dicom,
    instances,
    jobs,
    metadata,
    metrics,
    modalities,
    peers,
    queries,
    resource_tags,
    resources,
    rewrite,
    split_merge,
    system,
    tools,
    transfers,
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
    modalities.blueprint,
    peers.blueprint,
    queries.blueprint,
    transfers.blueprint,
]
