"""The services of one running node, handed to the HTTP app and the SCP.

Built once the jobs engine exists, so that every field is set from the start. Jobs and
the operations on stored resources get only its :class:`ServiceBundle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from .jobs.engine import JobsEngine
from .metrics import Metrics
from .remotes.queries import QueryStore
from .remotes.registry import Remotes
from .runtime_settings import RuntimeSettings
from .services.bundle import ServiceBundle
from .services.ingest import Ingest
from .services.resources import Resources
from .services.transcoding import TranscodingSettings
from .settings import NodeSettings
from .shared_state import SharedState
from .storage.files import FileStore
from .storage.index import Index


class Lifecycle:
    """What a client asked of the running node (/tools/reset, /tools/shutdown), which the
    supervisor waits for: the first request wins."""

    RESET = "reset"  # stop, read the configuration again, start again
    SHUTDOWN = "shutdown"  # stop

    def __init__(self) -> None:
        self.action: str | None = None
        self._requested = trio.Event()

    def request(self, action: str) -> None:
        if self.action is None:
            self.action = action
            self._requested.set()

    async def wait(self) -> str:
        await self._requested.wait()
        assert self.action is not None
        return self.action


@dataclass
class NodeContext:
    settings: NodeSettings
    runtime: RuntimeSettings  # what clients may change while the node runs (/tools/default-encoding...)
    services: ServiceBundle
    jobs: JobsEngine
    remotes: Remotes  # the modalities and Orthanc peers, as changed through REST
    queries: QueryStore  # the queries made to remote modalities, with their answers (/queries)
    shared: SharedState  # the settings above that clients change, as the members of one index share them
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0  # time.time() at start, for orthanc_up_time_s
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    @property
    def index(self) -> Index:
        return self.services.index

    @property
    def files(self) -> FileStore:
        return self.services.files

    @property
    def ingest(self) -> Ingest:
        return self.services.ingest

    @property
    def resources(self) -> Resources:
        return self.services.resources

    @property
    def metrics(self) -> Metrics:
        return self.services.metrics

    @property
    def transcoding(self) -> TranscodingSettings:
        return self.services.transcoding
