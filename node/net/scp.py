"""The C-ECHO / C-STORE SCP: pynetdicom's threads bridged into the Trio loop."""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

import trio
from pydicom.uid import UID_dictionary
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from ..context import NodeContext
from ..errors import OrthancError
from ..services.ingest import Origin
from .tcp import rearm_quick_ack, set_no_delay

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

_ALL_TRANSFER_SYNTAXES = sorted(uid for uid, info in UID_dictionary.items() if info[1] == "Transfer Syntax")


def accepted_transfer_syntaxes(patterns: list[str]) -> list[str]:
    """Known transfer syntaxes matching the `*`/`?` patterns of AcceptedTransferSyntaxes."""
    return [uid for uid in _ALL_TRANSFER_SYNTAXES if any(fnmatch.fnmatchcase(uid, p) for p in patterns)]


def _socket_of(event: evt.Event) -> Any:
    dul_socket = getattr(event.assoc.dul, "socket", None)
    return getattr(dul_socket, "socket", None)


def build_ae(context: NodeContext) -> AE:
    config = context.config
    ae = AE(ae_title=config["DicomAet"])
    ae.maximum_pdu_size = int(config["MaximumPduLength"])
    ae.network_timeout = float(config["DicomScpTimeout"])
    ae.dimse_timeout = float(config["DicomScpTimeout"])
    ae.acse_timeout = float(config["DicomScuTimeout"])
    ae.maximum_associations = max(1, int(config["DicomThreadsCount"]) * 4)
    ae.require_called_aet = bool(config["DicomCheckCalledAet"])
    syntaxes = accepted_transfer_syntaxes(
        context.runtime.get("AcceptedTransferSyntaxes", config["AcceptedTransferSyntaxes"])
    )
    ae.add_supported_context(Verification)
    for storage in AllStoragePresentationContexts:
        ae.add_supported_context(storage.abstract_syntax, syntaxes)
    if context.runtime.get("UnknownSopClassAccepted", config["UnknownSopClassAccepted"]):
        ae.unrestricted_accepted = True  # type: ignore[attr-defined]
    return ae


async def run_scp(context: NodeContext, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve C-ECHO and C-STORE until cancelled; reports the bound port."""
    config = context.config
    token = trio.lowlevel.current_trio_token()
    ae = build_ae(context)

    def on_open(event: evt.Event) -> None:
        set_no_delay(_socket_of(event))

    def on_data(event: evt.Event) -> None:
        rearm_quick_ack(_socket_of(event))

    def on_echo(event: evt.Event) -> int:
        return STATUS_SUCCESS

    def on_store(event: evt.Event) -> int:
        requestor = event.assoc.requestor
        origin = Origin(
            kind="DicomProtocol",
            remote_ip=str(requestor.address),
            remote_aet=str(requestor.ae_title).strip(),
            called_aet=str(event.assoc.acceptor.ae_title).strip(),
        )
        try:
            data = event.encoded_dataset()
            trio.from_thread.run(context.ingest.store, data, origin, trio_token=token)
        except trio.RunFinishedError:
            return STATUS_OUT_OF_RESOURCES
        except OrthancError as error:
            log.warning("C-STORE from %s refused: %s", origin.remote_aet, error)
            return STATUS_CANNOT_UNDERSTAND
        return STATUS_SUCCESS

    handlers = [
        (evt.EVT_CONN_OPEN, on_open),
        (evt.EVT_DATA_RECV, on_data),
        (evt.EVT_C_ECHO, on_echo),
        (evt.EVT_C_STORE, on_store),
    ]
    address = (config["DicomBindAddress"], int(config["DicomPort"]))
    server = await trio.to_thread.run_sync(lambda: ae.start_server(address, block=False, evt_handlers=handlers))
    try:
        task_status.started(server.server_address[1])
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.shutdown)
            await trio.to_thread.run_sync(ae.shutdown)
