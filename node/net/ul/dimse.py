"""DIMSE command sets and the file meta of received instances, coded with ``struct``.

A command set is a handful of group-0000 elements in Implicit VR Little Endian; building a
pydicom Dataset for each (as pynetdicom does) costs about 1 ms per C-STORE, most of the time
an SCP spends on a small instance. The encoders here give pynetdicom's bytes exactly (the
tests compare them for every message we send), and the decoder reads what any peer sends.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from .acse import IMPLEMENTATION_UID, IMPLEMENTATION_VERSION
from .pdu import REASON_INVALID_PARAMETER, ProtocolError

Command = dict[str, Any]  # keyword -> int, str or list of (group, element) pairs

# Command fields (PS3.7 E.1).
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_CANCEL_RQ = 0x0FFF
RESPONSE_BIT = 0x8000
COMMAND_NAMES = {
    C_STORE_RQ: "C-STORE-RQ",
    C_STORE_RSP: "C-STORE-RSP",
    C_GET_RQ: "C-GET-RQ",
    C_GET_RSP: "C-GET-RSP",
    C_FIND_RQ: "C-FIND-RQ",
    C_FIND_RSP: "C-FIND-RSP",
    C_MOVE_RQ: "C-MOVE-RQ",
    C_MOVE_RSP: "C-MOVE-RSP",
    C_ECHO_RQ: "C-ECHO-RQ",
    C_ECHO_RSP: "C-ECHO-RSP",
    C_CANCEL_RQ: "C-CANCEL-RQ",
}

NO_DATASET = 0x0101  # CommandDataSetType when no dataset follows
HAS_DATASET = 0x0001
PRIORITY_MEDIUM = 0x0000

# Statuses.
SUCCESS = 0x0000
PENDING = 0xFF00
CANCELLED = 0xFE00
SUB_OPERATIONS_FAILED = 0xB000  # warning: some sub-operations failed
OUT_OF_RESOURCES = 0xA700
SOP_CLASS_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
UNRECOGNIZED_OPERATION = 0x0211

# Group-0000 elements: element number -> (keyword, VR), in tag order.
_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0003: ("RequestedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0600: ("MoveDestination", "AE"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x0901: ("OffendingElement", "AT"),
    0x0902: ("ErrorComment", "LO"),
    0x0903: ("ErrorID", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1001: ("RequestedSOPInstanceUID", "UI"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}
_BY_KEYWORD = {keyword: (element, vr) for element, (keyword, vr) in _ELEMENTS.items()}
_ELEMENT_HEADER = struct.Struct("<HHI")  # group, element, value length (Implicit VR LE)
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_AT = struct.Struct("<HH")
_TAG = struct.Struct("<HH")
_TAG_ORDER = {keyword: element for element, (keyword, _) in _ELEMENTS.items()}
# keyword -> (VR, its tag's bytes); None for the group length, which is not taken from the fields.
_ENCODING = {keyword: (vr, _TAG.pack(0, element) if element else None) for element, (keyword, vr) in _ELEMENTS.items()}
_GROUP_LENGTH_TAG = _ELEMENT_HEADER.pack(0, 0, 4)
_US_LENGTH = _UL.pack(_US.size)
_GROUP_LENGTH_ELEMENT = 12  # the CommandGroupLength element, header and value
# Text values are ASCII when well-formed; Latin-1 gives any peer's bytes back unchanged.
_TEXT = "latin-1"
MAX_COMMAND_SET = 1 << 16  # larger command sets are refused: ours stay below 1 kB


def _encode_value(vr: str, value: Any) -> bytes:
    if vr == "US":
        return _US.pack(value)
    if vr == "UL":
        return _UL.pack(value)
    if vr == "AT":
        return b"".join(_AT.pack(group, element) for group, element in value)
    raw = str(value).encode(_TEXT, "replace")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def encode_command(fields: Mapping[str, Any]) -> bytes:
    """The command set of ``fields`` (keyword -> value; None values are left out), group length first.

    A C-MOVE sends two command sets per sub-operation: the keywords are sorted by a table
    lookup and each element's tag bytes are ready made (an unknown keyword raises KeyError).
    """
    body: list[bytes] = []
    for keyword in sorted(fields, key=_TAG_ORDER.__getitem__):
        value = fields[keyword]
        if value is None:
            continue
        vr, tag = _ENCODING[keyword]
        if tag is None:  # the group length, computed here
            continue
        if vr == "US":
            body += (tag, _US_LENGTH, _US.pack(value))
        else:
            raw = _encode_value(vr, value)
            body += (tag, _UL.pack(len(raw)), raw)
    encoded = b"".join(body)
    return _GROUP_LENGTH_TAG + _UL.pack(len(encoded)) + encoded


def _decode_value(vr: str, raw: bytes) -> Any:
    if vr == "US":
        return _US.unpack(raw[:2])[0] if len(raw) >= 2 else None
    if vr == "UL":
        return _UL.unpack(raw[:4])[0] if len(raw) >= 4 else None
    if vr == "AT":
        return [_AT.unpack_from(raw, i) for i in range(0, len(raw) - 3, 4)]
    return raw.decode(_TEXT).strip(" \0")


def decode_command(data: bytes) -> Command:
    """The group-0000 elements we know, by keyword; unknown elements are skipped.

    Raises :class:`ProtocolError` on a command set that is cut short or lacks its command field.
    """
    command: Command = {}
    position, end = 0, len(data)
    while position < end:
        if end - position < _ELEMENT_HEADER.size:
            raise ProtocolError(REASON_INVALID_PARAMETER, "command element cut short")
        group, element, length = _ELEMENT_HEADER.unpack_from(data, position)
        position += _ELEMENT_HEADER.size
        if position + length > end:
            raise ProtocolError(REASON_INVALID_PARAMETER, f"command element (0000,{element:04x}) overruns")
        known = _ELEMENTS.get(element) if group == 0 else None
        if known is not None:
            keyword, vr = known
            if vr == "US" and length == _US.size:  # most elements: read in place
                command[keyword] = _US.unpack_from(data, position)[0]
            else:
                command[keyword] = _decode_value(vr, data[position : position + length])
        position += length
    if not isinstance(command.get("CommandField"), int):
        raise ProtocolError(REASON_INVALID_PARAMETER, "command set without a command field")
    return command


def has_dataset(command: Command) -> bool:
    return command.get("CommandDataSetType", NO_DATASET) != NO_DATASET


def response(request: Command, status: int, *, with_dataset: bool = False, **fields: Any) -> Command:
    """The response command to ``request``; ``fields`` add counters and the like."""
    command_field = request["CommandField"] | RESPONSE_BIT
    out: Command = {
        "CommandField": command_field,
        "MessageIDBeingRespondedTo": request.get("MessageID", 0),
        "AffectedSOPClassUID": request.get("AffectedSOPClassUID"),
        "CommandDataSetType": HAS_DATASET if with_dataset else NO_DATASET,
        "Status": status,
    }
    if command_field == C_STORE_RSP:
        out["AffectedSOPInstanceUID"] = request.get("AffectedSOPInstanceUID")
    out.update(fields)
    return out


# -- file meta ----------------------------------------------------------------------------------

PREAMBLE = bytes(128) + b"DICM"
_EXPLICIT_SHORT = struct.Struct("<HH2sH")  # group, element, VR, 2-byte length
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")  # group, element, VR, reserved, 4-byte length


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return _EXPLICIT_LONG.pack(2, element, vr, len(value)) + value
    return _EXPLICIT_SHORT.pack(2, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode(_TEXT, "replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, "DICM" and file meta of a received instance, as pynetdicom writes them."""
    elements = b"".join(
        [
            _meta_element(0x0001, b"OB", b"\x00\x01"),
            _meta_element(0x0002, b"UI", _padded(sop_class, b"\0")),
            _meta_element(0x0003, b"UI", _padded(sop_instance, b"\0")),
            _meta_element(0x0010, b"UI", _padded(transfer_syntax, b"\0")),
            _meta_element(0x0012, b"UI", _padded(IMPLEMENTATION_UID, b"\0")),
            _meta_element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION, b" ")),
        ]
    )
    return PREAMBLE + _meta_element(0x0000, b"UL", _UL.pack(len(elements))) + elements


def describe(command: Command) -> str:
    name = COMMAND_NAMES.get(command.get("CommandField", -1), f"command 0x{command.get('CommandField', 0):04x}")
    return f"{name} #{command.get('MessageID', command.get('MessageIDBeingRespondedTo', '?'))}"


class SubOperationCounters(TypedDict):
    """The counter fields of a C-MOVE/C-GET response (None: the field is left out)."""

    NumberOfRemainingSuboperations: int | None
    NumberOfCompletedSuboperations: int
    NumberOfFailedSuboperations: int
    NumberOfWarningSuboperations: int


def counters(remaining: int | None, completed: int, failed: int, warning: int) -> SubOperationCounters:
    """The sub-operation counters of a C-MOVE/C-GET response (no remaining count in the final one)."""
    return {
        "NumberOfRemainingSuboperations": remaining,
        "NumberOfCompletedSuboperations": completed,
        "NumberOfFailedSuboperations": failed,
        "NumberOfWarningSuboperations": warning,
    }


_META_VR_LONG = frozenset([b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"])
_META_FIELDS = {0x0002: "sop_class", 0x0003: "sop_instance", 0x0010: "transfer_syntax"}


@dataclass(frozen=True)
class StoredFile:
    """What a C-STORE requestor needs of a Part-10 file: its identity, and where its dataset starts."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    dataset_offset: int


def read_file_meta(data: bytes) -> StoredFile | None:
    """The file meta of a Part-10 file (explicit VR little endian), or None if it has none we can read."""
    if data[128:132] != b"DICM":
        return None
    values: dict[str, str] = {}
    position, end = len(PREAMBLE), len(data)
    while position + 8 <= end:
        group, element, vr, short_length = _EXPLICIT_SHORT.unpack_from(data, position)
        if group != 2:
            break
        if vr in _META_VR_LONG:
            if position + 12 > end:
                return None
            (length,) = _UL.unpack_from(data, position + 8)
            value_at = position + 12
        else:
            length, value_at = short_length, position + 8
        if value_at + length > end:
            return None
        field = _META_FIELDS.get(element)
        if field is not None:
            values[field] = data[value_at : value_at + length].decode(_TEXT).strip(" \0")
        position = value_at + length
    if len(values) != len(_META_FIELDS):
        return None
    return StoredFile(values["sop_class"], values["sop_instance"], values["transfer_syntax"], position)


def store_request(message_id: int, stored: StoredFile, *, move_originator: tuple[str, int] | None = None) -> Command:
    """The C-STORE-RQ command that sends ``stored`` as it is; a C-MOVE sub-operation names its originator."""
    command: Command = {
        "CommandField": C_STORE_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": stored.sop_class,
        "AffectedSOPInstanceUID": stored.sop_instance,
        "Priority": PRIORITY_MEDIUM,
        "CommandDataSetType": HAS_DATASET,
    }
    if move_originator is not None:
        command["MoveOriginatorApplicationEntityTitle"], command["MoveOriginatorMessageID"] = move_originator
    return command
