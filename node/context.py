"""The services of one running node, handed to the HTTP app, the SCP and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Config
from .metrics import Metrics
from .services.ingest import Ingest
from .services.resources import Resources
from .storage.files import FileStore
from .storage.index import Index

if TYPE_CHECKING:
    from .jobs.engine import JobsEngine


@dataclass
class NodeContext:
    config: Config
    index: Index
    files: FileStore
    ingest: Ingest
    resources: Resources
    jobs: JobsEngine | None = None
    # Settings changed at run time through the REST API (/tools/default-encoding...).
    runtime: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = 0.0  # time.time() at start, for orthanc_up_time_s
