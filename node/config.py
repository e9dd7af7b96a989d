"""Orthanc-style configuration: JSON with comments, ${ENV} substitution, folder merge.

Pure: no Trio, no sockets. The only files read are the ones the caller names.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ErrorCode, OrthancError

# Every option the node accepts, with Orthanc's code default (what applies when no configuration file
# sets it: https://book.orthanc-server.com/users/configuration.html). Options are read only in the
# from_config of a subsystem's settings (node/settings.py), by indexing (config[name]): an option
# missing here fails loudly, never takes a local default.
DEFAULTS: dict[str, Any] = {
    "Name": "",
    "StorageDirectory": "OrthancStorage",
    "IndexDirectory": None,  # None: same as StorageDirectory
    "TemporaryDirectory": None,  # None: the OS temp dir
    "StorageCompression": False,
    "SyncStorageArea": True,  # flush files and index commits before a store is acknowledged
    "StoreMD5ForAttachments": True,
    "OverwriteInstances": False,
    "StableAge": 60,
    "DefaultEncoding": "Latin1",
    "ConcurrentJobs": 2,
    "JobsHistorySize": 10,
    "SaveJobs": True,
    "MediaArchiveSize": 1,
    "JobsRetry": {"Attempts": 0, "BackoffSeconds": 5},  # ours: transfers retried after a transient failure
    "MemberId": None,  # set by the supervisor on each member's command line: one of several on a shared index
    "JobsLeaseTimeout": 15,  # ours: seconds a cluster member holds a job without renewing its lease
    "PostgreSQL": {
        "EnableIndex": False,
        "Host": "localhost",
        "Port": 5432,
        "Database": "orthanc",
        "Username": "",
        "Password": "",
        "ConnectionUri": "",
        "PoolSize": 8,
    },
    "HttpServerEnabled": True,
    "HttpPort": 8042,
    "HttpBindAddress": "0.0.0.0",
    "RemoteAccessAllowed": False,
    "AuthenticationEnabled": None,  # None: same as RemoteAccessAllowed
    "RegisteredUsers": {},
    "HttpDescribeErrors": True,
    "HttpCompressionEnabled": True,  # gzip/deflate answers when the client accepts them
    "SynchronousZipStream": True,  # false: a synchronous archive is built whole before it is sent
    "HttpRequestTimeout": 30,  # s: longest wait for a client's bytes, or for room to send to it
    "HttpMinimumReceiveRate": 1024,  # bytes/s a client must sustain while sending a body, 0: none (ours)
    "HttpMaximumConnections": 100,  # open HTTP connections, 0: no limit; more get 503 and are closed (ours)
    "MaximumRequestSize": 512,  # MB; larger bodies get 413 (ours)
    "ExecuteLuaEnabled": False,
    "DicomServerEnabled": True,
    "DicomAet": "ORTHANC",
    "DicomPort": 4242,
    "DicomBindAddress": "0.0.0.0",
    "DicomCheckCalledAet": False,
    "StrictAetComparison": False,
    "DicomAlwaysAllowEcho": True,
    "DicomAlwaysAllowStore": True,
    "DicomAlwaysAllowFind": False,
    "DicomAlwaysAllowFindWorklist": False,
    "DicomAlwaysAllowGet": False,
    "DicomAlwaysAllowMove": False,
    "DicomCheckModalityHost": False,
    "DicomModalities": {},
    "DicomModalitiesInDatabase": False,  # true: modalities live in the index, the section above is ignored
    "OrthancPeers": {},
    "OrthancPeersInDatabase": False,
    "HttpTimeout": 60,  # s: longest wait on an Orthanc peer (its own Timeout wins)
    "HttpsVerifyPeers": True,
    "QueryRetrieveSize": 100,  # queries to remote modalities kept in memory (/queries), least recently used dropped
    "DicomEchoChecksFind": False,  # true: POST /modalities/{id}/echo also checks a C-FIND, unless the body says
    "StorageAccessOnFind": "Always",  # Always, Answers or Never: may C-FIND read stored files
    "CaseSensitivePN": False,
    "LimitFindResults": 0,  # 0: no limit
    "LimitFindInstances": 0,
    "DicomScpTimeout": 30,
    "DicomScuTimeout": 10,
    "DicomThreadsCount": 4,
    "MaximumPduLength": 16384,
    "DicomMaximumAssociations": 64,  # ours: associations open at once (0: no limit)
    "DicomMaximumAssociationsPerHost": 32,  # ours: of those, from one peer address (0: no limit)
    "DicomMaximumDatasetSize": 4096,  # ours: MB; a larger C-STORE dataset is refused with 0xA700
    "AcceptedTransferSyntaxes": ["1.2.840.10008.1.*"],
    "UnknownSopClassAccepted": False,
    "Dictionary": {},
    "DefaultPrivateCreator": "",
    "MetricsEnabled": True,
    "UserMetadata": {},  # name -> number (1024-65535) of metadata clients may set
    "UserContentType": {},  # name -> number (1024-65535), or [number, MIME type], of attachments clients may set
    "CheckRevisions": False,  # true: replacing or deleting a metadata or attachment needs its ETag in If-Match
    "DicomLossyTranscodingQuality": 90,  # 1-100: JPEG baseline quality factor (JPEG 2000: ratio 101 - quality)
    "IngestTranscoding": "",  # transfer syntax received instances are stored in; "": as received
    "IngestTranscodingOfUncompressed": True,  # IngestTranscoding applies to uncompressed instances
    "IngestTranscodingOfCompressed": True,  # IngestTranscoding applies to compressed instances
    "DicomScuPreferredTransferSyntax": "1.2.840.10008.1.2.1",  # first target when a C-STORE must transcode
    "Members": 1,  # ours: node processes sharing the ports, index and storage on this machine; 0: one per core
}

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(\"[^\"]*\"|'[^']*'|[^}]*))?\}")


def _substitute_env(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is None:
            return ""
        if len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'":
            return default[1:-1]
        return default

    return _ENV_PATTERN.sub(replace, text)


def _strip_comments(text: str) -> str:
    """Drop // and /* */ comments outside JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_config_text(text: str, origin: str = "<string>") -> dict[str, Any]:
    try:
        data = json.loads(_strip_comments(_substitute_env(text)))
    except json.JSONDecodeError as exc:
        raise OrthancError(ErrorCode.BAD_JSON, f"{origin} does not follow the JSON syntax: {exc}") from exc
    if not isinstance(data, dict):
        raise OrthancError(ErrorCode.BAD_JSON, f"{origin} does not follow the JSON syntax: not an object")
    return data


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    return [path]


def load_config_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Any]:
    """Merge the top-level keys of every file; a key defined twice is an error."""
    merged: dict[str, Any] = {}
    for path in paths:
        for file in _files_of(Path(path)):
            section = parse_config_text(file.read_text(encoding="utf-8"), str(file))
            for key, value in section.items():
                if key in merged:
                    raise OrthancError(
                        ErrorCode.BAD_FILE_FORMAT,
                        f'The configuration section "{key}" is defined in 2 different configuration files',
                    )
                merged[key] = value
    return merged


class Config:
    """Read-only view of the options, with code defaults and type checks."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})
        for key, default in DEFAULTS.items():
            if key in self._values and default is not None:
                self._check_type(key, self._values[key], default)

    @staticmethod
    def _check_type(key: str, value: Any, default: Any) -> None:
        expected = bool if isinstance(default, bool) else type(default)
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise OrthancError(
                ErrorCode.BAD_PARAMETER_TYPE,
                f'The configuration option "{key}" must be of type {expected.__name__}',
            )

    def with_values(self, **values: Any) -> Config:
        """The same options, ``values`` replacing theirs."""
        return Config({**self._values, **values})

    def __getitem__(self, key: str) -> Any:
        """The option's value, else its code default; a KeyError for an option missing from DEFAULTS."""
        if key in self._values:
            return self._values[key]
        return DEFAULTS[key]
