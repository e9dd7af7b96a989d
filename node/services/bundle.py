"""The services that jobs and the operations on stored resources may use, and nothing more.

A job or a service function receives this frozen bundle rather than the whole node:
what it can reach is visible in one place (no HTTP, no DICOM, no jobs engine, no
settings changed at run time), the bundle exists before the jobs engine that hands it
to every job, and the node context that holds both imports them in the ordinary way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..metrics import Metrics
from ..storage.files import FileStore
from ..storage.index import Index
from .images import Images
from .ingest import Ingest
from .resources import Resources
from .transcoding import TranscodingSettings


@dataclass(frozen=True)
class ServiceBundle:
    index: Index
    files: FileStore
    ingest: Ingest
    resources: Resources
    metrics: Metrics
    transcoding: TranscodingSettings  # lossy quality, for the jobs that transcode
    images: Images = field(init=False)  # decoding and rendering frames, on the resources above

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", Images(self.resources))
