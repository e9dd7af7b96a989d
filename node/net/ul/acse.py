"""A-ASSOCIATE request, accept and reject PDUs, coded with ``struct`` for both roles.

Coding them through pynetdicom's PDU classes cost about 0.4 ms per association on each side
(every UID validated several times over, an object per item). What we send here is
pynetdicom's bytes exactly (the unit tests compare them); what we read is checked all the
way down before anything is built from it: every length against its container, AE titles
and UIDs as the standard shapes them, presentation context IDs, the count of transfer
syntaxes. Items of types we do not know, or know and do not act on (asynchronous operations,
extended negotiation, user identity), are skipped, as the standard asks receivers to do.
Anything malformed raises :class:`ProtocolError` (an A-ABORT); what the standard answers
with A-ASSOCIATE-RJ raises :class:`Rejected`.

The acceptor's decision is still pynetdicom's ``negotiate_as_acceptor`` (see
:mod:`.negotiate`), so a request's contexts are decoded into its ``PresentationContext``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydicom import config
from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext

from .pdu import (
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RQ,
    HEADER,
    ITEM_HEADER,
    REASON_INVALID_PARAMETER,
    ProtocolError,
    reject_pdu,
    walk_items,
)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
# The implementation we announce and write in file meta: pynetdicom's, whose codecs we ran first.
IMPLEMENTATION_UID = str(PYNETDICOM_IMPLEMENTATION_UID)
IMPLEMENTATION_VERSION = PYNETDICOM_IMPLEMENTATION_VERSION

PROTOCOL_VERSION = 0x0001
_FIXED = struct.Struct(">H2x16s16s32x")  # protocol version, called AE, calling AE (after the header)
_ITEMS_AT = _FIXED.size  # variable items start here in the body
_AE_LENGTH = 16
_AE_FORBIDDEN = frozenset("\\\x7f") | frozenset(chr(c) for c in range(0x20))
MAX_CONTEXT_ID = 255
MAX_UID = 64  # characters of a UID
# Transfer syntaxes one proposed context may list: the standard names about forty, and each one
# listed costs the acceptor a validated object.
MAX_TRANSFER_SYNTAXES = 128
# A peer's Maximum Length Received below this (other than 0, unlimited) is refused: every
# message would go out in thousands of tiny PDUs.
MIN_PEER_PDU = 1024

# Item types.
APPLICATION_CONTEXT_ITEM = 0x10
CONTEXT_RQ_ITEM = 0x20
CONTEXT_AC_ITEM = 0x21
ABSTRACT_SYNTAX_ITEM = 0x30
TRANSFER_SYNTAX_ITEM = 0x40
USER_INFORMATION_ITEM = 0x50
MAXIMUM_LENGTH_ITEM = 0x51
IMPLEMENTATION_UID_ITEM = 0x52
ROLE_SELECTION_ITEM = 0x54
IMPLEMENTATION_VERSION_ITEM = 0x55

_CONTEXT_FIXED = struct.Struct(">BxBx")  # context ID, reserved, result (RQ: reserved), reserved
_MAXIMUM_LENGTH = struct.Struct(">I")
_ROLE_UID_LENGTH = struct.Struct(">H")
_ROLE_FLAGS = 2  # SCU role, SCP role: a byte each after the UID

# A-ASSOCIATE-RJ (result, source, reason)
RESULT_PERMANENT, RESULT_TRANSIENT = 0x01, 0x02
REJECT_NO_REASON = (RESULT_PERMANENT, 0x01, 0x01)
REJECT_APPLICATION_CONTEXT = (RESULT_PERMANENT, 0x01, 0x02)
REJECT_CALLING_AET = (RESULT_PERMANENT, 0x01, 0x03)
REJECT_CALLED_AET = (RESULT_PERMANENT, 0x01, 0x07)
REJECT_PROTOCOL_VERSION = (RESULT_PERMANENT, 0x02, 0x02)
REJECT_LOCAL_LIMIT = (RESULT_TRANSIENT, 0x03, 0x02)
_REJECT_BODY = 4

# SOP class -> (SCU role, SCP role) of a role selection item, as pynetdicom's negotiation takes them.
Roles = dict[UID, tuple[bool | None, bool | None]]


class Rejected(Exception):
    """The association is to be refused with an A-ASSOCIATE-RJ of these (result, source, reason)."""

    def __init__(self, reason: tuple[int, int, int], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProposedContext(Protocol):
    """A presentation context we propose: ours (:class:`Proposal`) or pynetdicom's."""

    @property
    def context_id(self) -> int | None: ...
    @property
    def abstract_syntax(self) -> str | None: ...
    @property
    def transfer_syntax(self) -> Sequence[str]: ...
    @property
    def scu_role(self) -> bool | None: ...
    @property
    def scp_role(self) -> bool | None: ...


@dataclass(frozen=True)
class Proposal:
    """One presentation context of an A-ASSOCIATE-RQ we send, numbered."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: tuple[str, ...]
    scu_role: bool | None = None  # the roles we propose, if any (None: no role selection)
    scp_role: bool | None = None

    def proposed_roles(self) -> tuple[bool, bool] | None:
        """The roles of the role selection item we send for it, None when we send none."""
        if self.scu_role is None and self.scp_role is None:
            return None
        return bool(self.scu_role), bool(self.scp_role)


@dataclass
class UserInformation:
    """What the user information item of an A-ASSOCIATE carries that we act on."""

    max_pdu: int = 0  # Maximum Length Received, 0: unlimited
    implementation_uid: str = ""
    implementation_version: str = ""
    roles: Roles = field(default_factory=dict)


@dataclass
class AssociateRequest:
    called_aet: str
    calling_aet: str
    contexts: list[PresentationContext]
    user: UserInformation


@dataclass(frozen=True)
class ContextResult:
    """One presentation context of an A-ASSOCIATE-AC, as the acceptor sent it."""

    context_id: int
    result: int  # 0: accepted
    transfer_syntax: str | None  # the accepted one (none may come with a refusal)


@dataclass
class AssociateAccept:
    contexts: list[ContextResult]
    user: UserInformation


# -- reading ---------------------------------------------------------------------------------------


def _malformed(message: str) -> ProtocolError:
    return ProtocolError(REASON_INVALID_PARAMETER, message)


def decode_ae(raw: bytes) -> str | None:
    """An AE title field: stripped ASCII without control characters or backslash, else None."""
    try:
        title = raw.decode("ascii").strip(" \0")
    except UnicodeDecodeError:
        return None
    if not title or any(c in _AE_FORBIDDEN for c in title):
        return None
    return title


def _uid(data: bytes, first: int, end: int, what: str) -> str:
    """A UID item value (the standard pads none, some peers add a NUL or a space)."""
    try:
        uid = data[first:end].decode("ascii").rstrip(" \0")
    except UnicodeDecodeError:
        raise _malformed(f"{what} is not ASCII") from None
    if not 0 < len(uid) <= MAX_UID or not uid.isprintable():
        raise _malformed(f"invalid {what} {uid[:MAX_UID]!r}")
    return uid


def _text(data: bytes, first: int, end: int) -> str:
    return data[first:end].decode("ascii", "replace").rstrip(" \0")


def _fixed_fields(body: bytes, what: str) -> tuple[int, bytes, bytes]:
    if len(body) < _ITEMS_AT:
        raise _malformed(f"{what} cut short")
    version, called, calling = _FIXED.unpack_from(body)
    return int(version), called, calling


def _decode_user(body: bytes, first: int, end: int) -> UserInformation:
    user = UserInformation()
    for item_type, start, stop in walk_items(body, first, end):
        if item_type == MAXIMUM_LENGTH_ITEM:
            if stop - start != _MAXIMUM_LENGTH.size:
                raise _malformed(f"Maximum Length item of {stop - start} bytes")
            (user.max_pdu,) = _MAXIMUM_LENGTH.unpack_from(body, start)
        elif item_type == IMPLEMENTATION_UID_ITEM:
            user.implementation_uid = _uid(body, start, stop, "implementation class UID")
        elif item_type == IMPLEMENTATION_VERSION_ITEM:
            user.implementation_version = _text(body, start, stop)
        elif item_type == ROLE_SELECTION_ITEM:
            if stop - start < _ROLE_UID_LENGTH.size:
                raise _malformed("role selection item cut short")
            (length,) = _ROLE_UID_LENGTH.unpack_from(body, start)
            uid_end = start + _ROLE_UID_LENGTH.size + length
            if uid_end + _ROLE_FLAGS != stop:
                raise _malformed(f"role selection item of {stop - start} bytes with a UID of {length}")
            uid = _uid(body, start + _ROLE_UID_LENGTH.size, uid_end, "role selection SOP class")
            user.roles[UID(uid, validation_mode=config.IGNORE)] = (bool(body[uid_end]), bool(body[uid_end + 1]))
    if 0 < user.max_pdu < MIN_PEER_PDU:
        raise Rejected(REJECT_NO_REASON, f"Maximum Length Received of {user.max_pdu} bytes")
    return user


def _context_fields(body: bytes, first: int, end: int) -> tuple[int, int]:
    """(context ID, result) of a presentation context item, whose sub-items follow."""
    if end - first < _CONTEXT_FIXED.size:
        raise _malformed("presentation context item cut short")
    context_id, result = _CONTEXT_FIXED.unpack_from(body, first)
    return int(context_id), int(result)


def _proposed_context(body: bytes, first: int, end: int) -> PresentationContext:
    context_id, _ = _context_fields(body, first, end)
    abstract_syntax = None
    syntaxes: list[str] = []
    for item_type, a, b in walk_items(body, first + _CONTEXT_FIXED.size, end):
        if item_type == ABSTRACT_SYNTAX_ITEM:
            abstract_syntax = _uid(body, a, b, "abstract syntax")
        elif item_type == TRANSFER_SYNTAX_ITEM:
            if len(syntaxes) >= MAX_TRANSFER_SYNTAXES:
                raise _malformed(f"more than {MAX_TRANSFER_SYNTAXES} transfer syntaxes in one context")
            syntaxes.append(_uid(body, a, b, "transfer syntax"))
    if abstract_syntax is None or not syntaxes:
        raise _malformed(f"presentation context {context_id} without syntaxes")
    context = PresentationContext()
    try:  # pynetdicom checks the values again; what it refuses is malformed all the same
        context.context_id = context_id
        context.abstract_syntax = abstract_syntax
        for syntax in syntaxes:
            context.add_transfer_syntax(syntax)
    except (ValueError, TypeError) as error:
        raise _malformed(f"presentation context {context_id}: {error}") from None
    return context


def _check_ids(ids: list[int]) -> None:
    if any(i % 2 == 0 or i > MAX_CONTEXT_ID for i in ids) or len(set(ids)) != len(ids):
        raise _malformed(f"invalid presentation context IDs {ids[:MAX_CONTEXT_ID]}")


def decode_request(body: bytes) -> AssociateRequest:
    """An A-ASSOCIATE-RQ body; :class:`Rejected` for what the standard answers with A-ASSOCIATE-RJ."""
    version, called_raw, calling_raw = _fixed_fields(body, "A-ASSOCIATE-RQ")
    if not version & PROTOCOL_VERSION:
        raise Rejected(REJECT_PROTOCOL_VERSION, f"protocol version 0x{version:04x}")
    application_context = None
    spans: list[tuple[int, int]] = []  # of the presentation context items, decoded once all is checked
    user = None
    for item_type, first, end in walk_items(body, _ITEMS_AT, len(body)):
        if item_type == APPLICATION_CONTEXT_ITEM and application_context is None:
            application_context = _uid(body, first, end, "application context")
        elif item_type == CONTEXT_RQ_ITEM:
            if len(spans) > MAX_CONTEXT_ID:
                raise _malformed("more presentation contexts than IDs")
            spans.append((first, end))
        elif item_type == USER_INFORMATION_ITEM and user is None:
            user = (first, end)
    if application_context != APPLICATION_CONTEXT:
        raise Rejected(REJECT_APPLICATION_CONTEXT, f"application context {application_context}")
    called, calling = decode_ae(called_raw), decode_ae(calling_raw)
    if calling is None:
        raise Rejected(REJECT_CALLING_AET, f"invalid calling AE title {calling_raw!r}")
    if called is None:
        raise Rejected(REJECT_CALLED_AET, f"invalid called AE title {called_raw!r}")
    _check_ids([_context_fields(body, first, end)[0] for first, end in spans])
    contexts = [_proposed_context(body, first, end) for first, end in spans]
    information = _decode_user(body, *user) if user is not None else UserInformation()
    return AssociateRequest(called, calling, contexts, information)


def decode_accept(body: bytes) -> AssociateAccept:
    """An A-ASSOCIATE-AC body (what it means for our proposal is the requestor's to decide)."""
    _fixed_fields(body, "A-ASSOCIATE-AC")
    results: list[ContextResult] = []
    user = UserInformation()
    for item_type, first, end in walk_items(body, _ITEMS_AT, len(body)):
        if item_type == CONTEXT_AC_ITEM:
            context_id, result = _context_fields(body, first, end)
            syntaxes = [
                _uid(body, a, b, "transfer syntax")
                for sub_type, a, b in walk_items(body, first + _CONTEXT_FIXED.size, end)
                if sub_type == TRANSFER_SYNTAX_ITEM
            ]
            results.append(ContextResult(context_id, result, syntaxes[0] if syntaxes else None))
        elif item_type == USER_INFORMATION_ITEM:
            try:
                user = _decode_user(body, first, end)
            except Rejected as error:  # a requestor cannot reject: it aborts
                raise _malformed(str(error)) from None
    return AssociateAccept(results, user)


def decode_reject(body: bytes) -> tuple[int, int, int]:
    """(result, source, reason) of an A-ASSOCIATE-RJ body (the reader checked its length)."""
    if len(body) != _REJECT_BODY:
        raise _malformed(f"A-ASSOCIATE-RJ of {len(body)} bytes")
    return body[1], body[2], body[3]


# -- writing ---------------------------------------------------------------------------------------


def _item(item_type: int, value: bytes) -> bytes:
    return ITEM_HEADER.pack(item_type, len(value)) + value


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(_AE_LENGTH)[:_AE_LENGTH]


def _role_item(sop_class: str, scu: bool, scp: bool) -> bytes:
    uid = sop_class.encode("ascii")
    return _item(ROLE_SELECTION_ITEM, _ROLE_UID_LENGTH.pack(len(uid)) + uid + bytes([scu, scp]))


def _user_item(max_pdu: int, roles: Sequence[bytes]) -> bytes:
    return _item(
        USER_INFORMATION_ITEM,
        _item(MAXIMUM_LENGTH_ITEM, _MAXIMUM_LENGTH.pack(max_pdu))
        + _item(IMPLEMENTATION_UID_ITEM, IMPLEMENTATION_UID.encode("ascii"))
        + b"".join(roles)
        + _item(IMPLEMENTATION_VERSION_ITEM, IMPLEMENTATION_VERSION.encode("ascii")),
    )


def _pdu(pdu_type: int, called_aet: str, calling_aet: str, items: bytes) -> bytes:
    body = _FIXED.pack(PROTOCOL_VERSION, _ae(called_aet), _ae(calling_aet)) + items
    return HEADER.pack(pdu_type, len(body)) + body


_APPLICATION_CONTEXT_BYTES = _item(APPLICATION_CONTEXT_ITEM, APPLICATION_CONTEXT.encode("ascii"))


def encode_request(calling_aet: str, called_aet: str, contexts: Sequence[ProposedContext], max_pdu: int) -> bytes:
    """An A-ASSOCIATE-RQ proposing ``contexts`` (numbered), with a role selection item for each
    SOP class whose roles are set (the last context's, when several set them)."""
    items = [_APPLICATION_CONTEXT_BYTES]
    roles: dict[str, bytes] = {}
    for context in contexts:
        sop_class = str(context.abstract_syntax)
        syntaxes = b"".join(_item(TRANSFER_SYNTAX_ITEM, str(ts).encode("ascii")) for ts in context.transfer_syntax)
        value = (
            _CONTEXT_FIXED.pack(context.context_id, 0)
            + _item(ABSTRACT_SYNTAX_ITEM, sop_class.encode("ascii"))
            + syntaxes
        )
        items.append(_item(CONTEXT_RQ_ITEM, value))
        if context.scu_role is not None or context.scp_role is not None:
            scu, scp = bool(context.scu_role), bool(context.scp_role)
            if not (scu or scp):
                raise ValueError(f"neither role proposed for {sop_class}")
            roles[sop_class] = _role_item(sop_class, scu, scp)
    items.append(_user_item(max_pdu, list(roles.values())))
    return _pdu(A_ASSOCIATE_RQ, called_aet, calling_aet, b"".join(items))


def encode_accept(
    request: AssociateRequest,
    results: Sequence[PresentationContext],
    roles: Sequence[SCP_SCU_RoleSelectionNegotiation],
    max_pdu: int,
) -> bytes:
    """The A-ASSOCIATE-AC; no user identity answer, as Orthanc gives none."""
    items = [_APPLICATION_CONTEXT_BYTES]
    for result in results:
        syntax = _item(TRANSFER_SYNTAX_ITEM, str(result.transfer_syntax[0]).encode("ascii"))
        items.append(_item(CONTEXT_AC_ITEM, _CONTEXT_FIXED.pack(result.context_id, result.result) + syntax))
    role_items = [_role_item(str(r.sop_class_uid), bool(r.scu_role), bool(r.scp_role)) for r in roles]
    items.append(_user_item(max_pdu, role_items))
    return _pdu(A_ASSOCIATE_AC, request.called_aet, request.calling_aet, b"".join(items))


def encode_reject(reason: tuple[int, int, int]) -> bytes:
    return reject_pdu(*reason)
