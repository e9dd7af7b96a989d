"""The requestor role: ``async with associate(...) as peer:`` then C-ECHO, C-STORE, C-FIND,
C-MOVE and C-GET on one association, released at the end of the block.

Cancelling the block's scope (a job cancelled or paused) reaches every wait here: the
association is aborted at once (A-ABORT on the wire within milliseconds), never left half
way. Any error out of the block aborts it too; a clean exit releases it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import cast

import trio
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.presentation import SCP_SCU_ROLES

from ...errors import ErrorCode, OrthancError
from ..tcp import rearm_quick_ack, set_no_delay
from .acse import AssociateAccept, Proposal, ProposedContext, decode_accept, decode_reject, encode_request
from .assembly import DatasetPrefix, Message
from .association import Association, Limits, PeerAborted, TimedOut
from .dimse import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_GET_RQ,
    C_MOVE_RQ,
    C_STORE_RQ,
    CANNOT_UNDERSTAND,
    HAS_DATASET,
    NO_DATASET,
    PENDING,
    PRIORITY_MEDIUM,
    RESPONSE_BIT,
    Command,
    StoredFile,
    read_file_meta,
    response,
    store_request,
)
from .identifiers import decode_identifier, encode_identifier
from .negotiate import VERIFICATION
from .pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    PDU_NAMES,
    REASON_INVALID_PARAMETER,
    REASON_UNEXPECTED_PDU,
    SOURCE_PROVIDER,
    PDUReader,
    PeerClosed,
    ProtocolError,
    p_data_limit,
)
from .presentation import AcceptedContext

log = logging.getLogger(__name__)

DEFAULT_MAX_PDU = 16384  # the Maximum Length we announce as requestor
DEFAULT_TIMEOUT = 30.0  # s, when none is given: no wait of the requestor is ever unbounded
REJECTED_TRANSIENT = 2  # A-ASSOCIATE-RJ result: rejected for now (1 is for good)
ACCEPTED = 0  # result of a presentation context in an A-ASSOCIATE-AC
IPV6 = 6
MAX_PROPOSED = 128  # presentation contexts in one request: their IDs are the odd numbers up to 255
PENDING_WITH_WARNING = 0xFF01


class AssociationFailed(OrthancError):
    """No association: connection refused, rejected, aborted or timed out (Orthanc's error 9).

    ``transient``: trying again later may work (a refused connection, a timeout, a peer gone or
    rejecting for now), unlike a permanent rejection or no common presentation context.
    """

    def __init__(self, details: str, *, transient: bool = True) -> None:
        super().__init__(ErrorCode.NETWORK_PROTOCOL, details)
        self.transient = transient


def _connecting(called_aet: str, reason: str, *, transient: bool = True) -> AssociationFailed:
    """An association that could not be set up, in Orthanc's words."""
    return AssociationFailed(f'DicomAssociation - connecting to AET "{called_aet}": {reason}', transient=transient)


@dataclass
class RetrieveResult:
    """The last response to a C-MOVE or C-GET: status, sub-operation counters, the peer's comment."""

    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    comment: str = ""  # ErrorComment, if the peer said why it failed


@dataclass
class FindResult:
    status: int
    answers: list[Dataset] = field(default_factory=list)


def _is_pending(status: int) -> bool:
    return status in (PENDING, PENDING_WITH_WARNING)


def _retrieve_result(fields: Command) -> RetrieveResult:
    """Status and counters of a C-MOVE or C-GET response (absent counters count as 0)."""
    return RetrieveResult(
        status=int(fields.get("Status", CANNOT_UNDERSTAND)),
        completed=int(fields.get("NumberOfCompletedSuboperations") or 0),
        failed=int(fields.get("NumberOfFailedSuboperations") or 0),
        warning=int(fields.get("NumberOfWarningSuboperations") or 0),
        remaining=int(fields.get("NumberOfRemainingSuboperations") or 0),
        comment=str(fields.get("ErrorComment") or ""),
    )


StoreHandler = Callable[[Message], Awaitable[int]]
"""Takes one instance a C-GET sends back (a C-STORE-RQ and its dataset); the C-STORE-RSP status."""


class Peer:
    """An established association, seen from the requestor: one operation at a time."""

    def __init__(self, association: Association, called_aet: str) -> None:
        self.association = association
        self.called_aet = called_aet

    def context_for(self, sop_class: str, transfer_syntax: str | None = None) -> AcceptedContext | None:
        """An accepted context where we may send requests of ``sop_class`` (in that syntax if given)."""
        for context in self.association.contexts.values():
            if (
                context.abstract_syntax == sop_class
                and context.as_scu
                and transfer_syntax in (None, context.transfer_syntax)
            ):
                return context
        return None

    def _context(self, sop_class: str, transfer_syntax: str | None = None) -> AcceptedContext:
        context = self.context_for(sop_class, transfer_syntax)
        if context is None:
            wanted = sop_class if transfer_syntax is None else f"{sop_class} in {transfer_syntax}"
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"{self.called_aet} accepted no context for {wanted}")
        return context

    async def _response_to(self, message_id: int) -> Message:
        """The next response to ``message_id``; other messages are a protocol error."""
        message = await self.association.receive_message()
        command = message.command
        if not command["CommandField"] & RESPONSE_BIT or command.get("MessageIDBeingRespondedTo") != message_id:
            raise ProtocolError(REASON_UNEXPECTED_PDU, f"unexpected {message} while waiting for #{message_id}")
        return message

    async def c_echo(self) -> int:
        context = self._context(VERIFICATION)
        message_id = self.association.next_message_id()
        command = {
            "CommandField": C_ECHO_RQ,
            "MessageID": message_id,
            "AffectedSOPClassUID": VERIFICATION,
            "CommandDataSetType": NO_DATASET,
        }
        await self.association.send_message(context.context_id, command)
        return int((await self._response_to(message_id)).command.get("Status", CANNOT_UNDERSTAND))

    async def c_store(
        self,
        data: bytes,
        *,
        meta: StoredFile | None = None,
        move_originator: tuple[str, int] | None = None,
        while_waiting: Callable[[], Awaitable[object]] | None = None,
    ) -> int:
        """Send one Part-10 file as it is stored (no transcoding); the C-STORE-RSP status.

        ``meta``: the file's, when the caller read it already. ``while_waiting`` runs once the
        request is out, before its response is awaited (a C-MOVE's pending response to its own
        requestor, say): what it does then costs no time of its own.
        """
        meta = meta or read_file_meta(data)
        if meta is None:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot send a file without its DICOM meta header")
        context = self._context(meta.sop_class, meta.transfer_syntax)
        message_id = self.association.next_message_id()
        command = store_request(message_id, meta, move_originator=move_originator)
        await self.association.send_message(context.context_id, command, memoryview(data)[meta.dataset_offset :])
        if while_waiting is not None:
            await while_waiting()
        return int((await self._response_to(message_id)).command.get("Status", CANNOT_UNDERSTAND))

    async def _send_query(
        self, command_field: int, sop_class: str, identifier: Dataset, **fields: str
    ) -> tuple[AcceptedContext, int]:
        """Send a C-FIND, C-MOVE or C-GET request with its identifier; its context and message ID."""
        context = self._context(sop_class)
        message_id = self.association.next_message_id()
        command = {
            "CommandField": command_field,
            "MessageID": message_id,
            "AffectedSOPClassUID": sop_class,
            "Priority": PRIORITY_MEDIUM,
            "CommandDataSetType": HAS_DATASET,
            **fields,
        }
        await self.association.send_message(context.context_id, command, encode_identifier(context, identifier))
        return context, message_id

    async def c_find(self, identifier: Dataset, sop_class: str, *, limit: int = 0) -> FindResult:
        """Every answer of a C-FIND (at most ``limit`` if set, then C-CANCEL) and its final status."""
        context, message_id = await self._send_query(C_FIND_RQ, sop_class, identifier)
        result = FindResult(PENDING)
        cancelled = False
        while True:
            response = await self._response_to(message_id)
            result.status = int(response.command.get("Status", CANNOT_UNDERSTAND))
            if not _is_pending(result.status):
                return result
            if response.dataset is not None and not cancelled:
                result.answers.append(decode_identifier(context, response.dataset))
            if limit and len(result.answers) >= limit and not cancelled:
                await self._cancel(context, message_id)
                cancelled = True

    async def _cancel(self, context: AcceptedContext, message_id: int) -> None:
        command = {
            "CommandField": C_CANCEL_RQ,
            "MessageIDBeingRespondedTo": message_id,
            "CommandDataSetType": NO_DATASET,
        }
        await self.association.send_message(context.context_id, command)

    async def c_move(
        self,
        identifier: Dataset,
        sop_class: str,
        destination: str,
        *,
        on_pending: Callable[[RetrieveResult], None] | None = None,
    ) -> RetrieveResult:
        """A C-MOVE to ``destination``; ``on_pending`` sees each pending response's counters."""
        _, message_id = await self._send_query(C_MOVE_RQ, sop_class, identifier, MoveDestination=destination)
        while True:
            result = _retrieve_result((await self._response_to(message_id)).command)
            if not _is_pending(result.status):
                return result
            if on_pending is not None:
                on_pending(result)

    async def c_get(
        self,
        identifier: Dataset,
        sop_class: str,
        on_store: StoreHandler,
        *,
        on_pending: Callable[[RetrieveResult], None] | None = None,
    ) -> RetrieveResult:
        """A C-GET: the instances come back on this association, as C-STORE-RQs in the contexts
        where we took the SCP role; each goes to ``on_store``, whose status answers it.
        ``on_pending`` sees each pending response's counters."""
        _, message_id = await self._send_query(C_GET_RQ, sop_class, identifier)
        while True:
            message = await self.association.receive_message()
            if message.command_field == C_STORE_RQ:
                await self._take_instance(message, on_store)
                continue
            fields = message.command
            if not message.command_field & RESPONSE_BIT or fields.get("MessageIDBeingRespondedTo") != message_id:
                raise ProtocolError(REASON_UNEXPECTED_PDU, f"unexpected {message} while waiting for #{message_id}")
            result = _retrieve_result(fields)
            if not _is_pending(result.status):
                return result
            if on_pending is not None:
                on_pending(result)

    async def _take_instance(self, message: Message, on_store: StoreHandler) -> None:
        """One C-GET sub-operation, received: stored by ``on_store`` if we took the SCP role for it."""
        context = self.association.contexts[message.context_id]
        if context.as_scp:
            status = await on_store(message)
        else:
            log.warning("%s from %s on a context where we are not SCP: refused", message, self.called_aet)
            status = CANNOT_UNDERSTAND
        await self.association.send_message(message.context_id, response(message.command, status))


async def _open_stream(host: str, port: int) -> trio.SocketStream:
    """A connection to ``host``; an IP address is connected to directly, which takes half the
    time of trio's resolving and racing of the addresses a name may have (a tenth of a
    millisecond of each query)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == IPV6 else socket.AF_INET
    except ValueError:  # a host name
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _connect(host: str, port: int, timeout: float, called_aet: str) -> trio.SocketStream:
    try:
        with trio.fail_after(timeout):
            return await _open_stream(host, port)
    except trio.TooSlowError:
        raise _connecting(
            called_aet, f"TCP Initialization Error: no connection to {host}:{port} within {timeout} s"
        ) from None
    except OSError as error:
        raise _connecting(called_aet, f"TCP Initialization Error: {_connect_failure(error)}") from None


def _connect_failure(error: OSError) -> str:
    """Why the connection failed, in the system's words ("Connection refused"): trio groups the
    failed attempts (one per address of the host) behind one error of its own."""
    attempts = getattr(error.__cause__, "exceptions", ())
    first = next((attempt for attempt in attempts if isinstance(attempt, OSError)), error)
    return os.strerror(first.errno) if first.errno else str(first)


def numbered(contexts: Sequence[ProposedContext]) -> list[Proposal]:
    """The contexts to propose, numbered 1, 3, 5... in their order (the given objects untouched,
    so callers may keep theirs for every association)."""
    if len(contexts) > MAX_PROPOSED:
        raise ValueError(f"{len(contexts)} presentation contexts proposed, at most {MAX_PROPOSED}")
    return [
        Proposal(
            2 * number + 1,
            str(context.abstract_syntax),
            tuple(str(syntax) for syntax in context.transfer_syntax),
            context.scu_role,
            context.scp_role,
        )
        for number, context in enumerate(contexts)
    ]


def accepted_contexts(proposals: Sequence[Proposal], accept: AssociateAccept) -> list[AcceptedContext]:
    """What the acceptor accepted of our proposals, with our roles on each.

    As pynetdicom's requestor negotiation decides: results for contexts we did not propose are
    ignored, the roles follow the standard's table when both sides sent role selection, else
    we are SCU only. A context accepted in a transfer syntax we did not propose, or in none,
    breaks the protocol.
    """
    results = {result.context_id: result for result in accept.contexts}
    accepted = []
    for proposal in proposals:
        result = results.get(proposal.context_id)
        if result is None or result.result != ACCEPTED:
            continue
        if result.transfer_syntax not in proposal.transfer_syntax:
            raise ProtocolError(
                REASON_INVALID_PARAMETER,
                f"context {proposal.context_id} accepted in {result.transfer_syntax}, which was not proposed",
            )
        replied = accept.user.roles.get(cast(UID, proposal.abstract_syntax))  # a UID is a str
        as_scu, as_scp = True, False
        if replied is not None:
            as_scu, as_scp = SCP_SCU_ROLES[proposal.proposed_roles() or (None, None)][replied][:2]
        accepted.append(
            AcceptedContext(
                proposal.context_id, proposal.abstract_syntax, result.transfer_syntax, as_scu=as_scu, as_scp=as_scp
            )
        )
    return accepted


async def _negotiate(
    stream: trio.SocketStream,
    reader: PDUReader,
    *,
    calling_aet: str,
    called_aet: str,
    contexts: Sequence[ProposedContext],
    max_pdu: int,
    limits: Limits,
    peer_ip: str,
    dataset_prefix: DatasetPrefix | None,
) -> Association:
    proposals = numbered(contexts)
    await stream.send_all(encode_request(calling_aet, called_aet, proposals, max_pdu))
    answer: tuple[int, bytes] | None = None
    with trio.move_on_after(limits.timeout or DEFAULT_TIMEOUT):
        answer = await reader.read()
    if answer is None:
        raise TimedOut("DUL network read timeout (no answer to the association request)")
    pdu_type, body = answer
    if pdu_type == A_ASSOCIATE_RJ:
        result, source, reason = decode_reject(body)
        raise _connecting(
            called_aet,
            f"DUL Association Rejected (result {result}, source {source}, reason {reason})",
            transient=result == REJECTED_TRANSIENT,
        )
    if pdu_type == A_ABORT:
        raise PeerAborted(body[2], body[3])
    if pdu_type != A_ASSOCIATE_AC:
        raise ProtocolError(REASON_UNEXPECTED_PDU, f"{PDU_NAMES[pdu_type]} in answer to an association request")
    accept = decode_accept(body)
    return Association(
        stream,
        reader,
        contexts=accepted_contexts(proposals, accept),
        peer_max_pdu=accept.user.max_pdu,
        limits=limits,
        calling_aet=calling_aet,
        called_aet=called_aet,
        peer_ip=peer_ip,
        dataset_prefix=dataset_prefix,
    )


@asynccontextmanager
async def associate(
    host: str,
    port: int,
    *,
    calling_aet: str,
    called_aet: str,
    contexts: Sequence[ProposedContext],
    timeout: float | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    max_dataset: int = 1 << 30,
    spool_directory: str | None = None,
    dataset_prefix: DatasetPrefix | None = None,
) -> AsyncIterator[Peer]:
    """An association proposing ``contexts`` (their ``scu_role``/``scp_role`` proposed too; their
    context IDs are assigned here, by position, without changing the objects).

    Raises :class:`AssociationFailed` when none is established, including when the peer
    accepted none of the contexts. ``dataset_prefix`` heads each received dataset (the file meta
    of the instances a C-GET brings back).
    """
    timeout = timeout or DEFAULT_TIMEOUT
    limits = Limits(timeout=timeout, max_dataset=max_dataset, spool_directory=spool_directory)
    stream = await _connect(host, port, timeout, called_aet)
    set_no_delay(stream.socket)
    reader = PDUReader(
        stream, p_data_limit=p_data_limit(max_pdu), after_receive=partial(rearm_quick_ack, stream.socket)
    )
    try:
        association = await _negotiate(
            stream,
            reader,
            calling_aet=calling_aet,
            called_aet=called_aet,
            contexts=contexts,
            max_pdu=max_pdu,
            limits=limits,
            peer_ip=host,
            dataset_prefix=dataset_prefix,
        )
    except BaseException as error:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        if isinstance(error, _UPPER_LAYER_ERRORS):
            raise _connecting(called_aet, str(error)) from error
        raise
    if not association.contexts:
        await association.abort(SOURCE_PROVIDER, linger=0)
        raise AssociationFailed(f"{called_aet} accepted none of the proposed presentation contexts", transient=False)
    try:
        yield Peer(association, called_aet)
    except trio.Cancelled:
        await association.cancelled_abort()
        raise
    except ProtocolError as error:
        await association.abort(SOURCE_PROVIDER, error.reason, linger=0)
        raise AssociationFailed(f"DicomAssociation with {called_aet}: {error}") from error
    except (PeerAborted, PeerClosed) as error:  # nothing to tell a peer that is gone
        await association.aclose()
        raise AssociationFailed(f"DicomAssociation with {called_aet}: {error}") from error
    except _UPPER_LAYER_ERRORS as error:
        await association.abort(linger=0)
        raise AssociationFailed(f"DicomAssociation with {called_aet}: {error}") from error
    except BaseException:
        await association.abort(linger=0)
        raise
    try:
        await association.release()
    except _UPPER_LAYER_ERRORS as error:  # what we asked for is done: a failed release only ends it sooner
        log.info("release of the association with %s failed: %s", called_aet, error)
        await association.abort(linger=0)


_UPPER_LAYER_ERRORS = (PeerAborted, PeerClosed, TimedOut, ProtocolError, trio.BrokenResourceError)
