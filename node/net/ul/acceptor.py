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
from functools import lru_cache, partial

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
from .presentation import AcceptedContext

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
        request = _decode(body)
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
    accepted, accept_pdu = _agreement(body, policy, settings.max_pdu)
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
        await association.send_pdu(accept_pdu)
    except (PeerClosed, TimedOut) as error:
        log.info("association from %s lost before it began: %s", peer_ip, error)
        await association.aclose()
        return None
    return association


# A modality sends the same association request every time, and decoding and negotiating one
# that proposes a hundred contexts costs milliseconds (pynetdicom validates every UID in it): the
# outcomes for the last few requests are kept, by their bytes. Requests are immutable once
# decoded (nothing downstream changes them), and only the small ones are kept.
_REMEMBERED_REQUESTS = 32
_REMEMBERED_SIZE = 1 << 16  # bytes: a request with 120 contexts of 3 transfer syntaxes is about 10 kB


def _decode(body: bytes) -> AssociateRequest:
    return _decode_remembered(body) if len(body) <= _REMEMBERED_SIZE else decode_request(body)


@lru_cache(maxsize=_REMEMBERED_REQUESTS)
def _decode_remembered(body: bytes) -> AssociateRequest:
    return decode_request(body)  # a request raising is not remembered


def _agreement(body: bytes, policy: ContextPolicy, max_pdu: int) -> tuple[tuple[AcceptedContext, ...], bytes]:
    """The contexts accepted for an admitted request, and the A-ASSOCIATE-AC that says so."""
    if len(body) <= _REMEMBERED_SIZE:
        return _agreement_remembered(body, policy, max_pdu)
    return _negotiate(decode_request(body), policy, max_pdu)


@lru_cache(maxsize=_REMEMBERED_REQUESTS)
def _agreement_remembered(
    body: bytes, policy: ContextPolicy, max_pdu: int
) -> tuple[tuple[AcceptedContext, ...], bytes]:
    return _negotiate(_decode_remembered(body), policy, max_pdu)


def _negotiate(
    request: AssociateRequest, policy: ContextPolicy, max_pdu: int
) -> tuple[tuple[AcceptedContext, ...], bytes]:
    results, roles, accepted = policy.negotiate(request)
    return tuple(accepted), encode_accept(request, results, roles, max_pdu)
