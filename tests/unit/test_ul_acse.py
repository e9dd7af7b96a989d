"""Our struct-coded A-ASSOCIATE-RQ/AC against pynetdicom's PDU classes, in both directions, and
what malformed association PDUs do to the decoders (a ProtocolError or a rejection, nothing else).

The node sends pynetdicom's bytes exactly, reads what pynetdicom reads (the items we act on),
and negotiates as requestor as pynetdicom's ``negotiate_as_requestor`` does.
"""

from __future__ import annotations

import random

import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
from pynetdicom import pdu as pn_pdu
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_requestor

from node.net.ul import acse
from node.net.ul.negotiate import ContextPolicy
from node.net.ul.pdu import HEADER, ProtocolError
from node.net.ul.presentation import AcceptedContext
from node.net.ul.requestor import accepted_contexts, numbered

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
PRIVATE = "1.2.826.0.1.3680043.8.498.4242"  # odd length
VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
FUZZ_SEED = 20260211
FUZZ_CASES = 3000


def _context(sop_class: str, syntaxes: list[str], scu: bool | None = None, scp: bool | None = None):
    context = build_context(sop_class, syntaxes)
    context.scu_role, context.scp_role = scu, scp
    return context


# Proposals as the node makes them: queries, stores, a C-GET taking the SCP role for storage.
PROPOSALS: dict[str, list[PresentationContext]] = {
    "query": [_context(VERIFICATION, UNCOMPRESSED), _context(STUDY_FIND, UNCOMPRESSED)],
    "store": [_context(CT, [JPEGBaseline8Bit]), _context(CT, UNCOMPRESSED), _context(PRIVATE, [ExplicitVRBigEndian])],
    "get": [
        _context(STUDY_GET, UNCOMPRESSED),
        _context(CT, UNCOMPRESSED, scu=False, scp=True),
        _context(MR, [DeflatedExplicitVRLittleEndian], scu=True, scp=True),
    ],
    "many": [_context(CT, [ExplicitVRLittleEndian]) for _ in range(128)],
}


def _user_items(max_pdu: int, roles: list[SCP_SCU_RoleSelectionNegotiation]) -> list:
    length = MaximumLengthNotification()
    length.maximum_length_received = max_pdu
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = acse.IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = acse.IMPLEMENTATION_VERSION
    return [length, uid, *roles, version]


def _role(sop_class: str, scu: bool, scp: bool) -> SCP_SCU_RoleSelectionNegotiation:
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid, role.scu_role, role.scp_role = sop_class, scu, scp
    return role


def pynetdicom_request(calling: str, called: str, contexts: list[PresentationContext], max_pdu: int, extra=()) -> bytes:
    roles = {
        str(cx.abstract_syntax): _role(str(cx.abstract_syntax), bool(cx.scu_role), bool(cx.scp_role))
        for cx in contexts
        if cx.scu_role is not None or cx.scp_role is not None
    }
    primitive = A_ASSOCIATE()
    primitive.application_context_name = acse.APPLICATION_CONTEXT
    primitive.calling_ae_title, primitive.called_ae_title = calling, called
    primitive.presentation_context_definition_list = contexts
    primitive.user_information = _user_items(max_pdu, list(roles.values())) + list(extra)
    return pn_pdu.A_ASSOCIATE_RQ(primitive).encode()


def pynetdicom_accept(request: acse.AssociateRequest, results, roles, max_pdu: int) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = acse.APPLICATION_CONTEXT
    primitive.calling_ae_title, primitive.called_ae_title = request.calling_aet, request.called_aet
    primitive.result, primitive.result_source = 0x00, 0x01
    primitive.presentation_context_definition_results_list = results
    primitive.user_information = _user_items(max_pdu, roles)
    return pn_pdu.A_ASSOCIATE_AC(primitive).encode()


def _as_pynetdicom(proposals: list[acse.Proposal]) -> list[PresentationContext]:
    contexts = []
    for proposal in proposals:
        context = _context(
            proposal.abstract_syntax, list(proposal.transfer_syntax), proposal.scu_role, proposal.scp_role
        )
        context.context_id = proposal.context_id
        contexts.append(context)
    return contexts


def _body(pdu: bytes) -> bytes:
    return pdu[HEADER.size :]


@pytest.mark.parametrize("case", sorted(PROPOSALS))
@pytest.mark.parametrize(("calling", "called", "max_pdu"), [("A", "ORTHANC", 16384), ("SIXTEEN_CHARS_AE", "X", 0)])
def test_request_matches_pynetdicom(case: str, calling: str, called: str, max_pdu: int) -> None:
    proposals = numbered(PROPOSALS[case])
    ours = acse.encode_request(calling, called, proposals, max_pdu)
    assert ours == pynetdicom_request(calling, called, _as_pynetdicom(proposals), max_pdu)


def _extra_items() -> list:
    """User information items we skip: they must not change what we read."""
    identity = UserIdentityNegotiation()
    identity.user_identity_type, identity.primary_field = 1, b"user"
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = window.maximum_number_operations_performed = 1
    extended = SOPClassExtendedNegotiation()
    extended.sop_class_uid, extended.service_class_application_information = CT, b"\x01\x00"
    return [identity, window, extended]


@pytest.mark.parametrize("case", sorted(PROPOSALS))
@pytest.mark.parametrize("extra", [False, True])
def test_request_decodes_as_pynetdicom_decodes(case: str, extra: bool) -> None:
    contexts = PROPOSALS[case]
    for number, context in enumerate(contexts):
        context.context_id = 2 * number + 1
    pdu = pynetdicom_request("MODALITY", "ORTHANC", contexts, 32768, _extra_items() if extra else ())
    reference = pn_pdu.A_ASSOCIATE_RQ()
    reference.decode(pdu)
    expected = reference.to_primitive()
    ours = acse.decode_request(_body(pdu))
    assert (ours.calling_aet, ours.called_aet) == ("MODALITY", "ORTHANC")
    assert [(cx.context_id, cx.abstract_syntax, cx.transfer_syntax) for cx in ours.contexts] == [
        (cx.context_id, cx.abstract_syntax, cx.transfer_syntax) for cx in expected.presentation_context_definition_list
    ]
    expected_roles = {
        item.sop_class_uid: (item.scu_role, item.scp_role)
        for item in expected.user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }
    assert ours.user == acse.UserInformation(
        32768, acse.IMPLEMENTATION_UID, acse.IMPLEMENTATION_VERSION, expected_roles
    )


def _policy() -> ContextPolicy:
    return ContextPolicy((ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit), accept_unknown=False)


@pytest.mark.parametrize("case", sorted(PROPOSALS))
def test_accept_matches_pynetdicom_and_negotiates_as_pynetdicom(case: str) -> None:
    """The acceptor's AC (rejections and role replies included) is pynetdicom's, and the
    requestor reads from it what pynetdicom's negotiation reads."""
    proposals = numbered(PROPOSALS[case])
    request = acse.decode_request(_body(acse.encode_request("SCU", "ORTHANC", proposals, 16384)))
    results, roles, accepted = _policy().negotiate(request)
    ours = acse.encode_accept(request, results, roles, 16384)
    assert ours == pynetdicom_accept(request, results, roles, 16384)

    reference = pn_pdu.A_ASSOCIATE_AC()
    reference.decode(ours)
    primitive = reference.to_primitive()
    replied = {
        item.sop_class_uid: (item.scu_role, item.scp_role)
        for item in primitive.user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }
    proposed = _as_pynetdicom(proposals)
    answered = primitive.presentation_context_definition_results_list
    expected = [
        AcceptedContext.from_result(cx) for cx in negotiate_as_requestor(proposed, answered, replied) if cx.result == 0
    ]
    answer = acse.decode_accept(_body(ours))
    assert answer.user.max_pdu == 16384
    assert accepted_contexts(proposals, answer) == expected
    assert len(expected) == len(accepted)


def test_proposals_are_numbered_without_changing_the_given_contexts() -> None:
    contexts = PROPOSALS["get"]
    for context in contexts:
        context.context_id = None
    assert [p.context_id for p in numbered(contexts)] == [1, 3, 5]
    assert [cx.context_id for cx in contexts] == [None, None, None]
    with pytest.raises(ValueError, match="at most 128"):
        numbered(PROPOSALS["many"] + PROPOSALS["query"])


def test_accepted_in_a_syntax_not_proposed_breaks_the_protocol() -> None:
    proposals = numbered(PROPOSALS["query"])
    for syntax in (JPEGBaseline8Bit, None):
        answer = acse.AssociateAccept([acse.ContextResult(3, 0, syntax)], acse.UserInformation())
        with pytest.raises(ProtocolError):
            accepted_contexts(proposals, answer)
    refused = acse.AssociateAccept(
        [acse.ContextResult(3, 3, None), acse.ContextResult(9, 0, None)], acse.UserInformation()
    )
    assert accepted_contexts(proposals, refused) == []


# -- malformed input ------------------------------------------------------------------------------------


def _request_body() -> bytes:
    return _body(acse.encode_request("CALLING", "CALLED", numbered(PROPOSALS["get"]), 16384))


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new, 1)


def _context_item(context_id: int, sop_class: bytes, syntaxes: list[bytes]) -> bytes:
    value = bytes([context_id, 0, 0, 0]) + b"\x30\x00" + len(sop_class).to_bytes(2, "big") + sop_class
    for syntax in syntaxes:
        value += b"\x40\x00" + len(syntax).to_bytes(2, "big") + syntax
    return b"\x20\x00" + len(value).to_bytes(2, "big") + value


def _with_context(item: bytes) -> bytes:
    body = _request_body()
    user_at = body.rindex(b"\x50\x00")
    return body[:user_at] + item + body[user_at:]


MALFORMED = {
    "lying item length": lambda: _replace(_request_body(), b"\x10\x00\x00\x15", b"\x10\x00\x00\x55"),
    "cut short": lambda: _request_body()[:60],
    "even context ID": lambda: _with_context(_context_item(4, CT.encode(), [b"1.2.840.10008.1.2"])),
    "duplicate context ID": lambda: _with_context(_context_item(1, CT.encode(), [b"1.2.840.10008.1.2"])),
    "no transfer syntax": lambda: _with_context(_context_item(7, CT.encode(), [])),
    "non-ASCII UID": lambda: _with_context(_context_item(7, b"1.2.\xff", [b"1.2.840.10008.1.2"])),
    "UID too long": lambda: _with_context(_context_item(7, b"1." * 40, [b"1.2.840.10008.1.2"])),
    "empty UID": lambda: _with_context(_context_item(7, b"\0", [b"1.2.840.10008.1.2"])),
    "too many syntaxes": lambda: _with_context(_context_item(7, CT.encode(), [b"1.2.840.10008.1.2"] * 129)),
    "maximum length of 3 bytes": lambda: _replace(_request_body(), b"\x51\x00\x00\x04", b"\x51\x00\x00\x03"),
    "role item of another length than its UID's": lambda: _replace(
        _request_body(), b"\x54\x00\x00\x1d\x00\x19", b"\x54\x00\x00\x1d\x00\x18"
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_are_protocol_errors(case: str) -> None:
    with pytest.raises(ProtocolError):
        acse.decode_request(MALFORMED[case]())


REJECTED = {
    "protocol version": (lambda: b"\x00\x02" + _request_body()[2:], acse.REJECT_PROTOCOL_VERSION),
    "application context": (
        lambda: _replace(_request_body(), acse.APPLICATION_CONTEXT.encode(), b"1.2.840.10008.3.1.1.2"),
        acse.REJECT_APPLICATION_CONTEXT,
    ),
    "calling AE": (lambda: _replace(_request_body(), b"CALLING ", b"CALL\\NG "), acse.REJECT_CALLING_AET),
    "called AE": (lambda: _replace(_request_body(), b"CALLED", b"      "), acse.REJECT_CALLED_AET),
    "tiny maximum length": (
        lambda: _replace(_request_body(), b"\x51\x00\x00\x04\x00\x00\x40\x00", b"\x51\x00\x00\x04\x00\x00\x00\x10"),
        acse.REJECT_NO_REASON,
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_requests_the_standard_rejects(case: str) -> None:
    make, reason = REJECTED[case]
    with pytest.raises(acse.Rejected) as raised:
        acse.decode_request(make())
    assert raised.value.reason == reason


def test_unknown_and_unused_items_are_skipped() -> None:
    body = _request_body()
    user_at = body.rindex(b"\x50\x00")
    user_length = int.from_bytes(body[user_at + 2 : user_at + 4], "big")
    user = body[user_at + 4 : user_at + 4 + user_length] + b"\x5a\x00\x00\x03abc"
    odd = body[:user_at] + b"\x77\x00\x00\x01z" + b"\x50\x00" + len(user).to_bytes(2, "big") + user
    assert acse.decode_request(odd) == acse.decode_request(body)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom's, on damaged UIDs
def test_mutated_association_pdus_only_fail_as_the_protocol_says() -> None:
    """Random damage to a request and to an accept: a result, a ProtocolError or a rejection."""
    rng = random.Random(FUZZ_SEED)
    request = _request_body()
    results, roles, _ = _policy().negotiate(acse.decode_request(request))
    accept = _body(acse.encode_accept(acse.decode_request(request), results, roles, 16384))
    proposals = numbered(PROPOSALS["get"])
    outcomes = set()
    for _ in range(FUZZ_CASES):
        data = bytearray(rng.choice((request, accept)))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.6:
                data[at] = rng.randrange(256)
            elif rng.random() < 0.5:
                del data[at : at + rng.randint(1, 40)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
        try:
            if data[:1] == request[:1] and rng.random() < 0.5:
                acse.decode_request(bytes(data))
            else:
                accepted_contexts(proposals, acse.decode_accept(bytes(data)))
            outcomes.add("decoded")
        except ProtocolError:
            outcomes.add("protocol error")
        except acse.Rejected:
            outcomes.add("rejected")
    assert {"decoded", "protocol error"} <= outcomes
