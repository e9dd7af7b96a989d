"""Query/retrieve identifiers (C-FIND, C-MOVE, C-GET datasets) in the transfer syntax of their
presentation context.

Coding one through pydicom costs a tenth of a millisecond and more per identifier, the larger
part of a C-FIND's own work on either side. Two shortcuts keep pydicom's results exactly:

* an identifier of plain ASCII text elements (what queries and most answers are) is written
  here with ``struct``, byte for byte as pydicom writes it, a C-FIND answer of such elements
  without ever being a pydicom dataset (:class:`~node.dicom.query.FindAnswer`); anything
  else goes to pydicom;
* a received identifier is read by pydicom, but only the elements whose decoding could fail
  are decoded at once (numbers, names, sequences, binary values, anything not ASCII): the
  others, ASCII text, decode without error whenever they are read.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Iterable
from io import BytesIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import PersonName
from pynetdicom.dsutils import decode, encode

from ...dicom.query import FindAnswer
from ...dicom.tags import raw_vr
from ...errors import ErrorCode, OrthancError
from .presentation import AcceptedContext

log = logging.getLogger(__name__)

MAX_IDENTIFIER = 1 << 20  # bytes: a larger identifier is refused

# Text VRs pydicom writes as the value's characters, several values joined by backslashes.
_STRING_VRS = frozenset(["AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"])
_NUMBER_STRING_VRS = frozenset(["IS", "DS"])
_LONG_LENGTH_VRS = frozenset(["UC", "UR", "UT"])  # explicit VR: a 32-bit length after two reserved bytes
_SHORT_LENGTH_LIMIT = 0xFFFF
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")
_IMPLICIT = struct.Struct("<HHI")
_ESCAPE = 0x1B  # starts an ISO 2022 escape sequence: decoding it is pydicom's business
# Text VRs whose ASCII values pydicom decodes without any error (a strip, a split at most).
_SAFE_TEXT_VRS = _STRING_VRS


def _codec(context: AcceptedContext) -> tuple[bool, bool, bool]:
    return _syntax_codec(context.transfer_syntax)


@functools.cache
def _syntax_codec(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """Implicit VR, little endian, deflated: worked out once per syntax (a UID is checked as it is made)."""
    syntax = UID(transfer_syntax)
    return syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated


def _needs_decoding(element: object) -> bool:
    """Whether pydicom's decoding of this element might fail (so it is to be done now)."""
    if not isinstance(element, RawDataElement):
        return False  # decoded already (sequences of undefined length)
    if raw_vr(element) not in _SAFE_TEXT_VRS:
        return True
    value = element.value
    return value is not None and not (value.isascii() and _ESCAPE not in value)


def decode_identifier(context: AcceptedContext, data: bytes | None) -> Dataset:
    """The identifier of a message; OrthancError (15) if it is missing, too large or unreadable."""
    if data is None or len(data) > MAX_IDENTIFIER:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "missing or oversized query/retrieve identifier")
    try:
        identifier = decode(BytesIO(data), *_codec(context))
        for tag in list(identifier.keys()):  # pydicom reads lazily: what could fail, now
            if _needs_decoding(identifier.get_item(tag)):
                identifier[tag]
    except Exception as error:  # pydicom raises about anything on malformed bytes
        log.warning("unreadable query/retrieve identifier: %r", error)
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "unreadable query/retrieve identifier") from None
    return identifier


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, (MultiValue, list)) else [value]


def _written_as_text(name: PersonName) -> bool:
    """Whether pydicom writes ``name`` as its characters: it writes the bytes the name was read
    from or first written as, if any, else its components joined."""
    kept = name.original_string
    return kept is None or (isinstance(kept, bytes) and kept.isascii() and kept.decode("ascii") == str(name))


def _text(vr: str, value: object) -> str | None:
    """The characters pydicom writes for a value of ``vr``; None when pydicom must write it."""
    if value is None:
        return ""
    values = _values(value)
    if vr in _STRING_VRS:
        texts = [v for v in values if isinstance(v, str)]
    elif vr in _NUMBER_STRING_VRS:
        texts = [v.original_string if hasattr(v, "original_string") else str(v) for v in values]
    elif vr == "PN":
        texts = [str(v) for v in values if isinstance(v, PersonName) and _written_as_text(v)]
    else:
        return None
    return "\\".join(texts) if len(texts) == len(values) else None


def _plain_elements(identifier: Dataset) -> list[tuple[int, str, str]] | None:
    """(tag, VR, text) of each element, in tag order, if ``identifier`` holds ASCII text elements only."""
    elements = []
    for element in identifier.elements():
        if isinstance(element, RawDataElement):
            return None
        text = _text(element.VR, element.value)
        if text is None:
            return None
        elements.append((int(element.tag), str(element.VR), text))
    return elements


def _write_plain(elements: Iterable[tuple[int, str, str]], implicit: bool) -> bytes | None:
    """Little endian elements of ASCII text, as pydicom writes them; None if one is not ASCII."""
    out = []
    for tag, vr, text in elements:
        if not text.isascii():
            return None
        value = text.encode("ascii")
        if len(value) % 2:
            value += b"\0" if vr == "UI" else b" "
        group, number = tag >> 16, tag & 0xFFFF
        if implicit:
            out.append(_IMPLICIT.pack(group, number, len(value)))
        elif vr in _LONG_LENGTH_VRS:
            out.append(_EXPLICIT_LONG.pack(group, number, vr.encode("ascii"), len(value)))
        elif len(value) <= _SHORT_LENGTH_LIMIT:
            out.append(_EXPLICIT_SHORT.pack(group, number, vr.encode("ascii"), len(value)))
        else:
            return None
        out.append(value)
    return b"".join(out)


def encode_identifier(context: AcceptedContext, identifier: Dataset | FindAnswer) -> bytes:
    """``identifier`` in the context's transfer syntax; a plain C-FIND answer (see FindAnswer)
    written without pydicom when the syntax is little endian and not deflated."""
    implicit, little_endian, deflated = _codec(context)
    if little_endian and not deflated:
        elements = identifier.plain if isinstance(identifier, FindAnswer) else _plain_elements(identifier)
        plain = _write_plain(elements, implicit) if elements is not None else None
        if plain is not None:
            return plain
    dataset = identifier.dataset if isinstance(identifier, FindAnswer) else identifier
    encoded = encode(dataset, implicit, little_endian, deflated)
    if encoded is None:  # pynetdicom's sign that pydicom could not write it
        raise OrthancError(ErrorCode.BAD_REQUEST, "the identifier cannot be encoded")
    return encoded
