"""The DICOM SCP: one Trio task per association, on the Upper Layer of :mod:`node.net.ul`.

A connection becomes an association once its request passes the AE-title checks and finds a
free slot (a total and a per-address limit); it then serves C-ECHO, C-STORE, C-FIND, C-MOVE
and C-GET one message at a time until the peer releases or aborts it, or the node stops.

Stopping is ordered so that no store is cut in half: the owner closes the store gate (a
C-STORE arriving from then on gets 0xA700), stops accepting connections, waits for the stores
already inside, then cancels every association, each of which sends an A-ABORT at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace

import trio

from ..context import NodeContext
from ..services.ingest import Origin
from .peers import Peers
from .qr_scp import QueryRetrieveSCP
from .store_scp import INLINE_LIMIT, StoreGate, dataset_prefix, handle_store
from .tcp import StartGate, listeners_of, set_no_delay
from .ul.acceptor import AcceptorSettings, accept
from .ul.acse import REJECT_LOCAL_LIMIT, AssociateRequest, Rejected
from .ul.assembly import Message
from .ul.association import Association, Limits, PeerAborted, ReleaseRequested, TimedOut
from .ul.dimse import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_GET_RQ,
    C_MOVE_RQ,
    C_STORE_RQ,
    RESPONSE_BIT,
    SUCCESS,
    UNRECOGNIZED_OPERATION,
    describe,
    response,
)
from .ul.negotiate import ContextPolicy, accepted_transfer_syntaxes
from .ul.pdu import PeerClosed, ProtocolError

__all__ = ["Peers", "accepted_transfer_syntaxes", "run_scp"]

log = logging.getLogger(__name__)


class NotAllowed(Exception):
    """The peer asked for an operation its AE title may not ask: the association is aborted."""


class AssociationSlots:
    """Associations open at once, in total and per peer address (0: no limit)."""

    def __init__(self, total: int, per_host: int) -> None:
        self._max_total = total
        self._max_per_host = per_host
        self._total = 0
        self._by_host: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, host: str) -> Iterator[None]:
        if (self._max_total and self._total >= self._max_total) or (
            self._max_per_host and self._by_host[host] >= self._max_per_host
        ):
            raise Rejected(REJECT_LOCAL_LIMIT, f"{self._total} associations open, {self._by_host[host]} from {host}")
        self._total += 1
        self._by_host[host] += 1
        try:
            yield
        finally:
            self._total -= 1
            self._by_host[host] -= 1
            if not self._by_host[host]:
                del self._by_host[host]


Handler = Callable[[Association, Message], Awaitable[None]]


class DicomServer:
    """What every association of one SCP shares: options, limits and the store gate."""

    def __init__(self, context: NodeContext) -> None:
        dicom, temporary = context.settings.dicom, context.settings.storage.temporary_directory
        self._context = context
        self.peers = replace(dicom.peers, modalities=context.remotes.modalities.values)
        self.gate = StoreGate(context.ingest, dicom.concurrent_stores, inline_limit=INLINE_LIMIT)
        self.slots = AssociationSlots(dicom.maximum_associations, dicom.maximum_associations_per_host)
        limits = Limits(
            timeout=dicom.scp_timeout,
            max_dataset=dicom.maximum_dataset_size,
            spool_directory=str(temporary) if temporary else None,
        )
        self.settings = AcceptorSettings(max_pdu=dicom.maximum_pdu_length, limits=limits)
        self._query_retrieve = QueryRetrieveSCP(context, self.peers, dicom.scu_timeout)
        self._handlers: dict[int, Handler] = {
            C_ECHO_RQ: self._echo,
            C_STORE_RQ: self._store,
            C_FIND_RQ: self._find,
            C_MOVE_RQ: self._move,
            C_GET_RQ: self._get,
        }

    async def handle(self, stream: trio.SocketStream) -> None:
        """One connection, from its first byte to its close; never raises but Cancelled."""
        try:
            await self._handle(stream)
        finally:  # whatever happened (the node stopping in the middle of a request included)
            if stream.socket.fileno() >= 0:  # most associations closed it already: no checkpoint more
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            set_no_delay(stream.socket)
            peer_ip = str(stream.socket.getpeername()[0])
        except OSError:  # gone already
            return
        try:
            with contextlib.ExitStack() as slot:

                def admit(request: AssociateRequest) -> ContextPolicy:
                    """AE titles first, so that a slot is never held by a peer we would refuse anyway."""
                    rejection = self.peers.rejection(request.called_aet, request.calling_aet, peer_ip)
                    if rejection is not None:
                        raise Rejected(rejection, f"{request.calling_aet} calling {request.called_aet}")
                    slot.enter_context(self.slots.hold(peer_ip))
                    return self._policy()

                association = await accept(stream, peer_ip, self.settings, admit, dataset_prefix)
                if association is not None:
                    association.on_close = slot.close  # not held while the peer takes its time to close
                    await self._serve(association)
        except Exception:  # a bug while negotiating: this connection ends, the server goes on
            log.exception("association request from %s failed", peer_ip)

    def _policy(self) -> ContextPolicy:
        """The options as they are now: REST (/tools/...) may change them while we run."""
        runtime = self._context.runtime
        patterns = runtime.accepted_transfer_syntaxes
        return ContextPolicy(accepted_transfer_syntaxes(patterns), runtime.unknown_sop_class_accepted)

    async def _serve(self, association: Association) -> None:
        who = f"{association.calling_aet} ({association.peer_ip})"
        try:
            while True:
                try:
                    # No name holds the message: a large dataset is freed as soon as it is handled.
                    await self._dispatch(association, await association.receive_message())
                except ReleaseRequested:
                    await association.answer_release()
                    return
        except trio.Cancelled:
            await association.cancelled_abort()
            raise
        except (PeerAborted, PeerClosed) as error:
            log.info("association with %s ended: %s", who, error)
        except ProtocolError as error:
            await association.protocol_abort(error)
        except TimedOut as error:
            log.info("association with %s aborted: %s", who, error)
            await association.abort()
        except NotAllowed as error:
            log.warning("association with %s aborted: %s", who, error)
            await association.abort()
        except Exception:  # a bug: this association ends, the server goes on
            log.exception("association with %s failed", who)
            await association.abort()
        finally:
            if not association.closed:
                await association.aclose()

    async def _dispatch(self, association: Association, message: Message) -> None:
        field = message.command_field
        handler = self._handlers.get(field)
        if handler is not None:
            await handler(association, message)
        elif field == C_CANCEL_RQ:
            log.debug("C-CANCEL from %s with nothing to cancel", association.calling_aet)
        elif field & RESPONSE_BIT:
            log.warning("unexpected %s from %s ignored", message, association.calling_aet)
        else:
            log.warning("%s from %s not supported", describe(message.command), association.calling_aet)
            await association.send_message(message.context_id, response(message.command, UNRECOGNIZED_OPERATION))

    def _check_allowed(self, association: Association, request: str) -> None:
        if not self.peers.allows(request, association.calling_aet, association.peer_ip):
            raise NotAllowed(f"C-{request.upper()} not allowed")

    async def _echo(self, association: Association, message: Message) -> None:
        self._check_allowed(association, "Echo")
        await association.send_message(message.context_id, response(message.command, SUCCESS))

    async def _store(self, association: Association, message: Message) -> None:
        self._check_allowed(association, "Store")
        origin = Origin(
            kind="DicomProtocol",
            remote_ip=association.peer_ip,
            remote_aet=association.calling_aet,
            called_aet=association.called_aet,
        )
        status = await handle_store(self.gate, message, origin)
        await association.send_message(message.context_id, response(message.command, status))

    async def _find(self, association: Association, message: Message) -> None:
        self._check_allowed(association, "Find")
        await self._query_retrieve.find(association, message)

    async def _move(self, association: Association, message: Message) -> None:
        self._check_allowed(association, "Move")
        await self._query_retrieve.move(association, message)

    async def _get(self, association: Association, message: Message) -> None:
        self._check_allowed(association, "Get")
        await self._query_retrieve.get(association, message)


@dataclass
class _AssociationTasks:
    nursery: trio.Nursery
    scope: trio.CancelScope


async def _association_nursery(*, task_status: trio.TaskStatus[_AssociationTasks]) -> None:
    """A nursery for the associations that the node's stop does not reach: the SCP cancels it
    itself, once the stores inside are done."""
    with trio.CancelScope(shield=True) as scope:
        async with trio.open_nursery() as nursery:
            task_status.started(_AssociationTasks(nursery, scope))
            await trio.sleep_forever()


async def run_scp(
    context: NodeContext,
    *,
    fd: int | None = None,
    gate: StartGate | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve DICOM until cancelled, on the inherited listening socket ``fd`` if there is one
    (accepting once the members' ``gate`` opens); reports the bound port."""
    dicom = context.settings.dicom
    server = DicomServer(context)
    listeners = await listeners_of(fd, dicom.port, dicom.bind_address, gate=gate)
    port = int(listeners[0].socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        associations: _AssociationTasks = await nursery.start(_association_nursery)
        try:
            task_status.started(port)
            await trio.serve_listeners(server.handle, listeners, handler_nursery=associations.nursery)
        finally:
            with trio.CancelScope(shield=True):
                server.gate.close()
                for listener in listeners:
                    await listener.aclose()
                await server.gate.wait_empty()
                associations.scope.cancel()
