"""Our struct-coded DIMSE commands, P-DATA fragmentation and file meta against pynetdicom's encoders.

The SCP and SCU send what pynetdicom would send, byte for byte (the association PDUs are
compared in test_ul_acse.py).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import dimse_messages, dimse_primitives
from pynetdicom.dsutils import create_file_meta, encode, encode_file_meta
from pynetdicom.pdu import P_DATA_TF

from node.net.ul import dimse
from node.net.ul.pdu import HEADER, MESSAGE_COMMAND, ProtocolError, p_data_pdus, parse_pdvs

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
VERIFICATION = "1.2.840.10008.1.1"
INSTANCE = "1.2.826.0.1.3680043.8.498.12345678901234567890"  # even and odd lengths below
ODD_INSTANCE = INSTANCE + "1"

# (pynetdicom primitive, message class, primitive attributes, dataset bytes or None)
CASES: list[tuple[str, str, dict[str, Any], bytes | None]] = [
    ("C_ECHO", "C_ECHO_RQ", {"MessageID": 1, "AffectedSOPClassUID": VERIFICATION}, None),
    ("C_ECHO", "C_ECHO_RSP", {"MessageIDBeingRespondedTo": 1, "AffectedSOPClassUID": VERIFICATION, "Status": 0}, None),
    (
        "C_STORE",
        "C_STORE_RQ",
        {"MessageID": 7, "AffectedSOPClassUID": CT, "AffectedSOPInstanceUID": ODD_INSTANCE, "Priority": 2},
        b"\x08\x00\x18\x00" * 5000,
    ),
    (
        "C_STORE",
        "C_STORE_RQ",
        {
            "MessageID": 65535,
            "AffectedSOPClassUID": CT,
            "AffectedSOPInstanceUID": INSTANCE,
            "Priority": 0,
            "MoveOriginatorApplicationEntityTitle": "MOVER",
            "MoveOriginatorMessageID": 3,
        },
        b"\x00" * 10,
    ),
    (
        "C_STORE",
        "C_STORE_RSP",
        {
            "MessageIDBeingRespondedTo": 7,
            "AffectedSOPClassUID": CT,
            "AffectedSOPInstanceUID": ODD_INSTANCE,
            "Status": 0xA700,
        },
        None,
    ),
    ("C_FIND", "C_FIND_RQ", {"MessageID": 2, "AffectedSOPClassUID": STUDY_FIND, "Priority": 0}, b"\x10\x00" * 9),
    (
        "C_FIND",
        "C_FIND_RSP",
        {"MessageIDBeingRespondedTo": 2, "AffectedSOPClassUID": STUDY_FIND, "Status": 0xFF00},
        b"\x10\x00" * 9,
    ),
    ("C_FIND", "C_FIND_RSP", {"MessageIDBeingRespondedTo": 2, "AffectedSOPClassUID": STUDY_FIND, "Status": 0}, None),
    (
        "C_MOVE",
        "C_MOVE_RQ",
        {"MessageID": 4, "AffectedSOPClassUID": STUDY_MOVE, "Priority": 0, "MoveDestination": "DEST"},
        b"\x20\x00" * 4,
    ),
    (
        "C_MOVE",
        "C_MOVE_RSP",
        {
            "MessageIDBeingRespondedTo": 4,
            "AffectedSOPClassUID": STUDY_MOVE,
            "Status": 0xFF00,
            "NumberOfRemainingSuboperations": 5,
            "NumberOfCompletedSuboperations": 1,
            "NumberOfFailedSuboperations": 0,
            "NumberOfWarningSuboperations": 0,
        },
        None,
    ),
    ("C_GET", "C_GET_RQ", {"MessageID": 5, "AffectedSOPClassUID": STUDY_GET, "Priority": 0}, b"\x20\x00" * 4),
    (
        "C_GET",
        "C_GET_RSP",
        {
            "MessageIDBeingRespondedTo": 5,
            "AffectedSOPClassUID": STUDY_GET,
            "Status": 0xB000,
            "NumberOfCompletedSuboperations": 3,
            "NumberOfFailedSuboperations": 1,
            "NumberOfWarningSuboperations": 0,
            "ErrorComment": "odd",
        },
        None,
    ),
    ("C_CANCEL", "C_CANCEL_RQ", {"MessageIDBeingRespondedTo": 9}, None),
]


def pynetdicom_pdus(primitive_name: str, message_name: str, fields: dict[str, Any], data: bytes | None, max_pdu: int):
    primitive = getattr(dimse_primitives, primitive_name)()
    for name, value in fields.items():
        setattr(primitive, name, value)
    if data is not None:
        setattr(primitive, "DataSet" if primitive_name == "C_STORE" else "Identifier", BytesIO(data))
    message = getattr(dimse_messages, message_name)()
    message.primitive_to_message(primitive)
    command = encode(message.command_set, True, True)
    return command, [P_DATA_TF(p).encode() for p in message.encode_msg(5, max_pdu)]


@pytest.mark.parametrize("max_pdu", [0, 64, 16384])
@pytest.mark.parametrize(("primitive", "message", "fields", "data"), CASES)
def test_commands_and_fragments_match_pynetdicom(
    primitive: str, message: str, fields: dict[str, Any], data: bytes | None, max_pdu: int
) -> None:
    expected_command, expected_pdus = pynetdicom_pdus(primitive, message, fields, data, max_pdu)
    command_field = {name: field for field, name in dimse.COMMAND_NAMES.items()}[message.replace("_", "-")]
    ours = {
        **fields,
        "CommandField": command_field,
        "CommandDataSetType": dimse.HAS_DATASET if data else dimse.NO_DATASET,
    }
    command = dimse.encode_command(ours)
    assert command == expected_command
    pdus = list(p_data_pdus(5, MESSAGE_COMMAND, command, max_pdu))
    if data:
        pdus += p_data_pdus(5, 0, data, max_pdu)
    assert pdus == expected_pdus
    decoded = dimse.decode_command(command)
    assert decoded == {"CommandGroupLength": len(command) - 12, **ours}


def test_file_meta_matches_pynetdicom() -> None:
    for instance in (INSTANCE, ODD_INSTANCE):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            meta = create_file_meta(sop_class_uid=CT, sop_instance_uid=instance, transfer_syntax=syntax)
            assert dimse.file_meta(CT, instance, syntax) == b"\0" * 128 + b"DICM" + encode_file_meta(meta)


def test_pdvs_parsed_back() -> None:
    data = bytes(range(256)) * 40
    pdus = list(p_data_pdus(3, 0, data, 1000))
    fragments = []
    for pdu in pdus:
        _, length = HEADER.unpack_from(pdu)
        assert len(pdu) == HEADER.size + length <= HEADER.size + 1000
        ((context, control, fragment),) = parse_pdvs(pdu[HEADER.size :])
        assert context == 3
        fragments.append(bytes(fragment))
    assert b"".join(fragments) == data
    assert control == 2  # the last one


@pytest.mark.parametrize("body", [b"", b"\x00\x00\x00\x10\x01\x03", b"\x00\x00\x00\x01\x01", b"\x00\x00"])
def test_malformed_pdv_lists_raise(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(parse_pdvs(body))


@pytest.mark.parametrize("data", [b"\x00\x00\x00\x01\x04\x00\x00", b"\x00\x00\x01\x00\x02\x00\x00\x00\x30\x00"])
def test_malformed_command_sets_raise(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        dimse.decode_command(data)
