"""A-ASSOCIATE request, accept and reject PDUs: decoded with our checks first, then pynetdicom's
item codecs; encoded through pynetdicom's primitives.

pynetdicom's decoders assume well-formed input (lengths checked with ``assert``, unknown items
raising ``KeyError``, AE titles raising ``ValueError``). So the fixed fields are read here, the
items are walked and unknown ones dropped (:func:`pdu.known_items`), and anything pynetdicom
still raises means a malformed PDU: :class:`ProtocolError`, hence an A-ABORT.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom import pdu as pn_pdu
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from .pdu import (
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RQ,
    AC_ITEMS,
    AC_USER_ITEMS,
    HEADER,
    REASON_INVALID_PARAMETER,
    RQ_ITEMS,
    RQ_USER_ITEMS,
    ProtocolError,
    known_items,
    reject_pdu,
)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
# The implementation we announce and write in file meta: pynetdicom's, whose codecs we run.
IMPLEMENTATION_UID = str(PYNETDICOM_IMPLEMENTATION_UID)
IMPLEMENTATION_VERSION = PYNETDICOM_IMPLEMENTATION_VERSION

_FIXED = struct.Struct(">H2x16s16s32x")  # protocol version, called AE, calling AE (after the header)
_ITEMS_AT = _FIXED.size  # variable items start here in the body
_AE_FIELDS = slice(4, 36)  # both AE titles, in the body
_PLACEHOLDER_AES = b"A" * 32  # what pynetdicom decodes instead of titles it might refuse
_AE_FORBIDDEN = frozenset("\\\x7f") | frozenset(chr(c) for c in range(0x20))
MAX_CONTEXT_ID = 255
# A peer's Maximum Length Received below this (other than 0, unlimited) is refused: every
# message would go out in thousands of tiny PDUs.
MIN_PEER_PDU = 1024

# A-ASSOCIATE-RJ (result, source, reason)
RESULT_PERMANENT, RESULT_TRANSIENT = 0x01, 0x02
REJECT_NO_REASON = (RESULT_PERMANENT, 0x01, 0x01)
REJECT_APPLICATION_CONTEXT = (RESULT_PERMANENT, 0x01, 0x02)
REJECT_CALLING_AET = (RESULT_PERMANENT, 0x01, 0x03)
REJECT_CALLED_AET = (RESULT_PERMANENT, 0x01, 0x07)
REJECT_PROTOCOL_VERSION = (RESULT_PERMANENT, 0x02, 0x02)
REJECT_LOCAL_LIMIT = (RESULT_TRANSIENT, 0x03, 0x02)

Roles = dict[UID, tuple[bool | None, bool | None]]  # SOP class -> (SCU role, SCP role) proposed
# The sub-items of a user information item, as pynetdicom's A-ASSOCIATE primitive holds them.
UserItem = (
    MaximumLengthNotification
    | ImplementationClassUIDNotification
    | ImplementationVersionNameNotification
    | AsynchronousOperationsWindowNegotiation
    | SCP_SCU_RoleSelectionNegotiation
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityNegotiation
)


class Rejected(Exception):
    """The association is to be refused with an A-ASSOCIATE-RJ of these (result, source, reason)."""

    def __init__(self, reason: tuple[int, int, int], message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_ae(raw: bytes) -> str | None:
    """An AE title field: stripped ASCII without control characters or backslash, else None."""
    try:
        title = raw.decode("ascii").strip(" \0")
    except UnicodeDecodeError:
        return None
    if not title or any(c in _AE_FORBIDDEN for c in title):
        return None
    return title


@dataclass
class UserInformation:
    """What the user information item of an A-ASSOCIATE carries that we act on."""

    max_pdu: int = 0  # Maximum Length Received, 0: unlimited
    implementation_uid: str = ""
    implementation_version: str = ""
    roles: Roles = field(default_factory=dict)
    user_identity: UserIdentityNegotiation | None = None

    @classmethod
    def from_items(cls, items: Iterable[UserItem]) -> UserInformation:
        info = cls()
        for item in items:
            if isinstance(item, MaximumLengthNotification):
                info.max_pdu = int(item.maximum_length_received or 0)
            elif isinstance(item, ImplementationClassUIDNotification):
                info.implementation_uid = str(item.implementation_class_uid or "")
            elif isinstance(item, ImplementationVersionNameNotification):
                info.implementation_version = str(item.implementation_version_name or "")
            elif isinstance(item, SCP_SCU_RoleSelectionNegotiation) and item.sop_class_uid:
                info.roles[item.sop_class_uid] = (item.scu_role, item.scp_role)
            elif isinstance(item, UserIdentityNegotiation):
                info.user_identity = item
        return info


@dataclass
class AssociateRequest:
    called_aet: str
    calling_aet: str
    contexts: list[PresentationContext]
    user: UserInformation


def _decode_with_pynetdicom(
    pdu_class: type, pdu_type: int, body: bytes, top: frozenset[int], user: frozenset[int]
) -> A_ASSOCIATE:
    """Decode after dropping unknown items and replacing the AE titles, which we read ourselves."""
    cleaned = body[: _AE_FIELDS.start] + _PLACEHOLDER_AES + body[_AE_FIELDS.stop : _ITEMS_AT]
    cleaned += known_items(body, _ITEMS_AT, top, user)
    decoder = pdu_class()
    try:
        decoder.decode(HEADER.pack(pdu_type, len(cleaned)) + cleaned)
        return decoder.to_primitive()
    except Exception as error:  # pynetdicom's decoders raise anything on malformed items
        raise ProtocolError(REASON_INVALID_PARAMETER, f"undecodable association PDU: {error!r}") from error


def decode_request(body: bytes) -> AssociateRequest:
    """An A-ASSOCIATE-RQ body; :class:`Rejected` for what the standard answers with A-ASSOCIATE-RJ."""
    if len(body) < _ITEMS_AT:
        raise ProtocolError(REASON_INVALID_PARAMETER, "A-ASSOCIATE-RQ cut short")
    version, called_raw, calling_raw = _FIXED.unpack_from(body)
    if not version & 1:
        raise Rejected(REJECT_PROTOCOL_VERSION, f"protocol version 0x{version:04x}")
    primitive = _decode_with_pynetdicom(pn_pdu.A_ASSOCIATE_RQ, A_ASSOCIATE_RQ, body, RQ_ITEMS, RQ_USER_ITEMS)
    if str(primitive.application_context_name or "") != APPLICATION_CONTEXT:
        raise Rejected(REJECT_APPLICATION_CONTEXT, f"application context {primitive.application_context_name}")
    called, calling = decode_ae(called_raw), decode_ae(calling_raw)
    if calling is None:
        raise Rejected(REJECT_CALLING_AET, f"invalid calling AE title {calling_raw!r}")
    if called is None:
        raise Rejected(REJECT_CALLED_AET, f"invalid called AE title {called_raw!r}")
    contexts = list(primitive.presentation_context_definition_list)
    ids = [cx.context_id for cx in contexts]
    if any(i is None or i % 2 == 0 or i > MAX_CONTEXT_ID for i in ids) or len(set(ids)) != len(ids):
        raise ProtocolError(REASON_INVALID_PARAMETER, f"invalid presentation context IDs {ids}")
    if any(not cx.abstract_syntax or not cx.transfer_syntax for cx in contexts):
        raise ProtocolError(REASON_INVALID_PARAMETER, "presentation context without syntaxes")
    user = UserInformation.from_items(primitive.user_information)
    if 0 < user.max_pdu < MIN_PEER_PDU:
        raise Rejected(REJECT_NO_REASON, f"Maximum Length Received of {user.max_pdu} bytes")
    return AssociateRequest(called, calling, contexts, user)


def _user_items(max_pdu: int, roles: list[SCP_SCU_RoleSelectionNegotiation]) -> list[UserItem]:
    length = MaximumLengthNotification()
    length.maximum_length_received = max_pdu
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION
    return [length, uid, *roles, version]


def encode_accept(
    request: AssociateRequest,
    results: list[PresentationContext],
    roles: list[SCP_SCU_RoleSelectionNegotiation],
    max_pdu: int,
) -> bytes:
    """The A-ASSOCIATE-AC; no user identity answer, as Orthanc gives none."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = request.calling_aet
    primitive.called_ae_title = request.called_aet
    primitive.result = 0x00
    primitive.result_source = 0x01
    primitive.presentation_context_definition_results_list = results
    primitive.user_information = _user_items(max_pdu, roles)
    return pn_pdu.A_ASSOCIATE_AC(primitive).encode()


def encode_reject(reason: tuple[int, int, int]) -> bytes:
    return reject_pdu(*reason)


# -- requestor side ---------------------------------------------------------------------------


def encode_request(
    calling_aet: str,
    called_aet: str,
    contexts: list[PresentationContext],
    max_pdu: int,
    extra_items: list[UserItem] | None = None,
) -> bytes:
    """An A-ASSOCIATE-RQ proposing ``contexts`` (with their roles, when set)."""
    roles = []
    for cx in contexts:
        if cx.scu_role is not None or cx.scp_role is not None:
            role = SCP_SCU_RoleSelectionNegotiation()
            role.sop_class_uid = cx.abstract_syntax
            role.scu_role, role.scp_role = bool(cx.scu_role), bool(cx.scp_role)
            roles.append(role)
    unique_roles = list({str(r.sop_class_uid): r for r in roles}.values())
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = calling_aet
    primitive.called_ae_title = called_aet
    primitive.presentation_context_definition_list = contexts
    primitive.user_information = _user_items(max_pdu, unique_roles) + list(extra_items or [])
    return pn_pdu.A_ASSOCIATE_RQ(primitive).encode()


@dataclass
class AssociateAccept:
    contexts: list[PresentationContext]  # results, as the acceptor sent them
    user: UserInformation


def decode_accept(body: bytes) -> AssociateAccept:
    if len(body) < _ITEMS_AT:
        raise ProtocolError(REASON_INVALID_PARAMETER, "A-ASSOCIATE-AC cut short")
    primitive = _decode_with_pynetdicom(pn_pdu.A_ASSOCIATE_AC, A_ASSOCIATE_AC, body, AC_ITEMS, AC_USER_ITEMS)
    contexts = list(primitive.presentation_context_definition_results_list)
    user = UserInformation.from_items(primitive.user_information)
    if 0 < user.max_pdu < MIN_PEER_PDU:
        raise ProtocolError(REASON_INVALID_PARAMETER, f"Maximum Length Received of {user.max_pdu} bytes")
    return AssociateAccept(contexts, user)


def decode_reject(body: bytes) -> tuple[int, int, int]:
    return body[1], body[2], body[3]
