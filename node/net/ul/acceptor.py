"""The acceptor's side of association establishment, from a fresh connection to an
:class:`Association` (or to a reject, an abort or a closed socket).

The whole A-ASSOCIATE-RQ must arrive within ARTIM of the connection opening, however slowly
its bytes trickle in, and nothing of it is buffered beyond what has arrived. The request is
checked by the caller's ``admit`` (AE titles, then the association limits, in that order)
before the contexts are negotiated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import trio

from ..tcp import rearm_quick_ack
from .acse import AssociateRequest, Rejected, decode_request, encode_accept, encode_reject
from .assembly import DatasetPrefix
from .association import ARTIM_TIMEOUT, Association, Limits, TimedOut, drain_and_close, send_abort, send_last
from .negotiate import ContextPolicy
from .pdu import (
    A_ASSOCIATE_RQ,
    PDU_NAMES,
    REASON_UNEXPECTED_PDU,
    SOURCE_PROVIDER,
    PDUReader,
    PeerClosed,
    ProtocolError,
    p_data_limit,
)

log = logging.getLogger(__name__)

Admit = Callable[[AssociateRequest], ContextPolicy]  # raises Rejected


@dataclass(frozen=True)
class AcceptorSettings:
    max_pdu: int  # the Maximum Length we announce (0: unlimited)
    limits: Limits
    artim: float = ARTIM_TIMEOUT


async def accept(
    stream: trio.SocketStream,
    peer_ip: str,
    settings: AcceptorSettings,
    admit: Admit,
    dataset_prefix: DatasetPrefix | None = None,
) -> Association | None:
    """Negotiate an association on ``stream``; None once it was refused (the stream is then closed)."""
    reader = PDUReader(
        stream, p_data_limit=p_data_limit(settings.max_pdu), after_receive=partial(rearm_quick_ack, stream.socket)
    )
    try:
        first: tuple[int, bytes] | None = None
        with trio.move_on_after(settings.artim):
            first = await reader.read()
        if first is None:
            log.info("connection from %s closed: no association request within %s s", peer_ip, settings.artim)
            await stream.aclose()
            return None
        pdu_type, body = first
        if pdu_type != A_ASSOCIATE_RQ:
            raise ProtocolError(REASON_UNEXPECTED_PDU, f"{PDU_NAMES[pdu_type]} before any association")
        request = decode_request(body)
        policy = admit(request)
    except PeerClosed:
        await stream.aclose()
        return None
    except ProtocolError as error:
        log.warning("association request from %s aborted: %s", peer_ip, error)
        await send_abort(stream, SOURCE_PROVIDER, error.reason)
        await drain_and_close(stream, settings.artim)
        return None
    except Rejected as rejection:
        log.warning("association request from %s rejected: %s", peer_ip, rejection)
        await send_last(stream, encode_reject(rejection.reason))
        await drain_and_close(stream, settings.artim)
        return None
    results, roles, accepted = policy.negotiate(request)
    association = Association(
        stream,
        reader,
        contexts=accepted,
        peer_max_pdu=request.user.max_pdu,
        limits=settings.limits,
        calling_aet=request.calling_aet,
        called_aet=request.called_aet,
        peer_ip=peer_ip,
        dataset_prefix=dataset_prefix,
    )
    try:
        await association.send_pdu(encode_accept(request, results, roles, settings.max_pdu))
    except (PeerClosed, TimedOut) as error:
        log.info("association from %s lost before it began: %s", peer_ip, error)
        await association.aclose()
        return None
    return association
