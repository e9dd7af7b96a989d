"""What clients change while the node runs, shared by the members of one index.

A single node keeps the settings changed through /tools (default encoding, accepted transfer
syntaxes, unknown SOP classes, the metrics switch) in memory, and the modalities and peers of
DicomModalitiesInDatabase / OrthancPeersInDatabase in the index. Members (MemberId) each
have their memory: a change answered by one is saved in the index as a global property, and
every member reads those properties again before answering a route that shows or uses them,
and at least every :data:`POLL_INTERVAL` (what their DICOM servers use). The supervisor
forgets :data:`RUNTIME_PROPERTY` at the start of every run: these settings last one run, as
a single node's do.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from .errors import OrthancError
from .metrics import Metrics
from .remotes.registry import Remotes
from .runtime_settings import RuntimeSettings
from .storage.index import Index

log = logging.getLogger(__name__)

RUNTIME_PROPERTY = "MembersRuntimeSettings"  # ours: the JSON of the settings below
POLL_INTERVAL = 1.0  # seconds between a member's reads of what the others changed


class SharedState:
    """Reads and saves the settings clients change (when ``shared``: a member), see above."""

    def __init__(
        self, index: Index, runtime: RuntimeSettings, metrics: Metrics, remotes: Remotes, *, shared: bool
    ) -> None:
        self._index = index
        self._runtime = runtime
        self._metrics = metrics
        self._remotes = remotes
        self.shared = shared
        self._saved: str | None = None

    def _snapshot(self) -> dict[str, Any]:
        runtime = self._runtime
        return {
            "DefaultEncoding": runtime.default_encoding,
            "AcceptedTransferSyntaxes": list(runtime.accepted_transfer_syntaxes),
            "UnknownSopClassAccepted": runtime.unknown_sop_class_accepted,
            "MetricsEnabled": self._metrics.enabled,
        }

    async def publish(self) -> None:
        """Save the settings as this member has them now (after a client changed one)."""
        if self.shared:
            self._saved = json.dumps(self._snapshot())
            await self._index.set_property(RUNTIME_PROPERTY, self._saved)

    async def refresh(self) -> None:
        """Take what another member saved since the last look."""
        if not self.shared:
            return
        await self._remotes.refresh()
        saved = await self._index.get_property(RUNTIME_PROPERTY)
        if saved is None or saved == self._saved:
            return
        self._saved = saved
        try:
            values = json.loads(saved)
            runtime = self._runtime
            runtime.default_encoding = str(values["DefaultEncoding"])
            runtime.accepted_transfer_syntaxes = [str(pattern) for pattern in values["AcceptedTransferSyntaxes"]]
            runtime.unknown_sop_class_accepted = bool(values["UnknownSopClassAccepted"])
            self._metrics.enabled = bool(values["MetricsEnabled"])
        except (ValueError, KeyError, TypeError) as error:  # written by another version: keep ours
            log.warning("ignoring the shared settings found in the index: %s", error)

    async def follow(self) -> None:
        """Refresh every POLL_INTERVAL until cancelled (members only)."""
        while self.shared:
            await trio.sleep(POLL_INTERVAL)
            try:
                await self.refresh()
            except OrthancError as error:  # the index out of reach for a while: the next round tries again
                log.warning("cannot read the settings shared by the other members: %s", error)
