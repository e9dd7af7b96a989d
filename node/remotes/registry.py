"""The live registry of modalities and peers, changed through REST while the node runs.

Declared in the configuration file, or, with ``DicomModalitiesInDatabase`` /
``OrthancPeersInDatabase``, kept in the index (the file's section is then ignored).
A change made through REST is saved before it is applied and answered, so a node
restarted at any moment comes back with what its clients were told.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from ..config import Config
from ..errors import ErrorCode, OrthancError
from ..storage.index import Index
from .modality import RemoteModality, parse_modality
from .orthanc_peer import OrthancPeer, parse_peer

T = TypeVar("T")
log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_-]+")
MODALITIES_PROPERTY = "DicomModalities"  # the index's global property holding them, as JSON
PEERS_PROPERTY = "OrthancPeers"


def check_symbolic_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise OrthancError(
            ErrorCode.BAD_FILE_FORMAT,
            "Only alphanumeric, dash characters and underscores are allowed in the names of "
            f"modalities/peers, but found: {name}",
        )
    return name


@dataclass(frozen=True)
class _Kind(Generic[T]):
    """What differs between modalities and peers: parsing, saving and the words of the errors."""

    option: str  # the configuration option and the index property
    parse: Callable[[Any], T]
    to_storage: Callable[[T], Any]
    unknown: str  # Details when a route names an entry that does not exist
    unknown_on_delete: str
    unknown_code: ErrorCode


class Registry(Generic[T]):
    """Entries by symbolic name, listed in name order as Orthanc does.

    A change is saved, then applied, under a lock: two clients changing entries at once
    each save the other's change too, so the index never lags behind what was answered.
    """

    def __init__(self, kind: _Kind[T], entries: Mapping[str, T], index: Index | None, saved: str | None = None) -> None:
        self._kind = kind
        self._entries = dict(entries)
        self._index = index  # set: changes are saved there
        self._saved = saved  # the index's text of the entries held
        self._changing = trio.Lock()

    async def refresh(self) -> None:
        """Take the entries another process (a member) saved in the index since they were read.
        A broken entry keeps the ones held, and is logged."""
        if self._index is None:
            return
        saved = await self._index.get_property(self._kind.option)
        if saved == self._saved:
            return
        try:
            section = json.loads(saved) if saved else {}
            if not isinstance(section, dict):
                raise ValueError("not a JSON object")
            self._entries = _parse_all(self._kind, section, "the index")
        except (OrthancError, ValueError) as error:
            log.warning("%s in the index not taken: %s", self._kind.option, error)
        self._saved = saved

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())

    def values(self) -> list[T]:
        return [entry for _, entry in self.items()]

    def find(self, name: str) -> T | None:
        return self._entries.get(name)

    def get(self, name: str) -> T:
        """The entry, or the error an SCU route answers for an unknown name."""
        entry = self._entries.get(name)
        if entry is None:
            raise OrthancError(self._kind.unknown_code, f"{self._kind.unknown}{name}")
        return entry

    async def put(self, name: str, body: Any) -> None:
        """Create or replace ``name`` from a body in either form (the body is checked before the name)."""
        entry = self._kind.parse(body)
        check_symbolic_name(name)
        async with self._changing:
            await self.refresh()
            await self._replace_all({**self._entries, name: entry})

    async def delete(self, name: str) -> None:
        async with self._changing:
            await self.refresh()
            if name not in self._entries:
                raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"{self._kind.unknown_on_delete}{name}")
            await self._replace_all({key: entry for key, entry in self._entries.items() if key != name})

    async def _replace_all(self, entries: dict[str, T]) -> None:
        if self._index is not None:
            stored = {name: self._kind.to_storage(entry) for name, entry in entries.items()}
            saved = json.dumps(stored)
            await self._index.set_property(self._kind.option, saved)
            self._saved = saved
        self._entries = entries


MODALITIES = _Kind[RemoteModality](
    MODALITIES_PROPERTY,
    parse_modality,
    RemoteModality.to_json,
    unknown="No modality with symbolic name: ",
    unknown_on_delete="Unknown DICOM modality with symbolic name: ",
    unknown_code=ErrorCode.INEXISTENT_ITEM,
)
PEERS = _Kind[OrthancPeer](
    PEERS_PROPERTY,
    parse_peer,
    OrthancPeer.to_storage,
    unknown="No peer with symbolic name: ",
    unknown_on_delete="Unknown Orthanc peer: ",
    unknown_code=ErrorCode.UNKNOWN_RESOURCE,
)


def _parse_all(kind: _Kind[T], section: Mapping[str, Any], origin: str) -> dict[str, T]:
    entries = {}
    for name, value in section.items():
        try:
            entries[check_symbolic_name(name)] = kind.parse(value)
        except OrthancError as error:
            raise OrthancError(
                ErrorCode.BAD_FILE_FORMAT, f"{origin}: entry {name!r} of {kind.option} is invalid: {error.details}"
            ) from error
    return entries


@dataclass(frozen=True)
class RemotesSettings:
    """The sections of the configuration file, parsed (a broken entry stops the node at start), and
    how the remotes are checked."""

    modalities: Mapping[str, RemoteModality]
    modalities_in_database: bool
    peers: Mapping[str, OrthancPeer]
    peers_in_database: bool
    echo_checks_find: bool  # a C-ECHO of a modality through REST also checks a C-FIND unless told otherwise

    @classmethod
    def from_config(cls, config: Config) -> RemotesSettings:
        return cls(
            modalities=_parse_all(MODALITIES, config["DicomModalities"], "the configuration"),
            modalities_in_database=bool(config["DicomModalitiesInDatabase"]),
            peers=_parse_all(PEERS, config["OrthancPeers"], "the configuration"),
            peers_in_database=bool(config["OrthancPeersInDatabase"]),
            echo_checks_find=bool(config["DicomEchoChecksFind"]),
        )


async def _load(kind: _Kind[T], declared: Mapping[str, T], in_database: bool, index: Index) -> Registry[T]:
    if not in_database:
        return Registry(kind, declared, None)
    saved = await index.get_property(kind.option)
    return Registry(kind, _parse_all(kind, json.loads(saved) if saved else {}, "the index"), index, saved)


@dataclass(frozen=True)
class Remotes:
    modalities: Registry[RemoteModality]
    peers: Registry[OrthancPeer]

    async def refresh(self) -> None:
        """Take what other members changed (entries kept in the index only)."""
        await self.modalities.refresh()
        await self.peers.refresh()

    @classmethod
    async def load(cls, settings: RemotesSettings, index: Index) -> Remotes:
        return cls(
            modalities=await _load(MODALITIES, settings.modalities, settings.modalities_in_database, index),
            peers=await _load(PEERS, settings.peers, settings.peers_in_database, index),
        )
