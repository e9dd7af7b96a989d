"""The services that jobs and the operations on stored resources may use, and nothing more.

A job or a service function receives this frozen bundle rather than the whole node:
what it can reach is visible in one place (no HTTP, no DICOM, no jobs engine, no
settings changed at run time), the bundle exists before the jobs engine that hands it
to every job, and the node context that holds both imports them in the ordinary way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import Metrics
from ..storage.files import FileStore
from ..storage.index import Index
from .ingest import Ingest
from .resources import Resources


@dataclass(frozen=True)
class ServiceBundle:
    index: Index
    files: FileStore
    ingest: Ingest
    resources: Resources
    metrics: Metrics
