"""The settings of a node, read from its configuration once, at start: one frozen object per subsystem.

:class:`~node.config.Config` loads the options and checks their types. Each subsystem's
settings class reads its options in its ``from_config``, by name, and turns them into the
types and units its code uses (seconds, bytes: :mod:`node.units`); code past start-up reads
these objects, never the configuration. The few settings a client may change while the
node runs are in :mod:`node.runtime_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config
from .errors import ErrorCode, OrthancError
from .http.settings import HttpSettings
from .jobs.engine import EngineSettings
from .net.settings import DicomSettings
from .remotes.queries import QueriesSettings
from .remotes.registry import RemotesSettings
from .services.transcoding import TranscodingSettings
from .storage.settings import StorageSettings
from .transfers.settings import TransfersSettings


@dataclass(frozen=True)
class NodeSettings:
    name: str  # shown in /system
    metrics_enabled: bool
    dictionary: Mapping[str, Any]  # the Dictionary option: private and extra tags, installed at start
    default_private_creator: str
    user_metadata: Mapping[str, Any]  # name -> number of the metadata clients may set
    user_content_types: Mapping[str, Any]  # name -> number, or [number, MIME type], of attachments clients may set
    check_revisions: bool  # a write over an existing metadata or attachment must name its revision (If-Match)
    storage: StorageSettings
    jobs: EngineSettings
    dicom: DicomSettings
    remotes: RemotesSettings
    queries: QueriesSettings  # the queries made to remote modalities, kept in memory
    http: HttpSettings
    transfers: TransfersSettings
    transcoding: TranscodingSettings  # lossy quality, ingest transcoding, the C-STORE SCU's preferred syntax
    members: int  # processes the command starts on this machine (0: one per core)
    member_id: str | None  # set: this process is one member of several sharing the index and storage

    @classmethod
    def from_config(cls, config: Config) -> NodeSettings:
        return cls(
            name=str(config["Name"]),
            metrics_enabled=bool(config["MetricsEnabled"]),
            dictionary=config["Dictionary"],
            default_private_creator=str(config["DefaultPrivateCreator"]),
            user_metadata=config["UserMetadata"],
            user_content_types=config["UserContentType"],
            check_revisions=bool(config["CheckRevisions"]),
            storage=StorageSettings.from_config(config),
            jobs=EngineSettings.from_config(config),
            dicom=DicomSettings.from_config(config),
            remotes=RemotesSettings.from_config(config),
            queries=QueriesSettings.from_config(config),
            http=HttpSettings.from_config(config),
            transfers=TransfersSettings.from_config(config),
            transcoding=TranscodingSettings.from_config(config),
            members=_checked_members(int(config["Members"])),
            member_id=None if config["MemberId"] is None else str(config["MemberId"]),
        )


MAX_MEMBERS = 64  # member processes on one machine: far more than cores would only contend


def _checked_members(members: int) -> int:
    if not 0 <= members <= MAX_MEMBERS:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Members must be between 0 (one per core) and {MAX_MEMBERS}")
    return members
