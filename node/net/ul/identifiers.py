"""Query/retrieve identifiers (C-FIND, C-MOVE, C-GET datasets) in the transfer syntax of their
presentation context."""

from __future__ import annotations

import logging
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import decode, encode

from ...errors import ErrorCode, OrthancError
from .presentation import AcceptedContext

log = logging.getLogger(__name__)

MAX_IDENTIFIER = 1 << 20  # bytes: a larger identifier is refused


def _codec(context: AcceptedContext) -> tuple[bool, bool, bool]:
    syntax = UID(context.transfer_syntax)
    return syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated


def decode_identifier(context: AcceptedContext, data: bytes | None) -> Dataset:
    """The identifier of a message; OrthancError (15) if it is missing, too large or unreadable."""
    if data is None or len(data) > MAX_IDENTIFIER:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "missing or oversized query/retrieve identifier")
    try:
        identifier = decode(BytesIO(data), *_codec(context))
        for _ in identifier:  # pydicom reads lazily: every element now, so errors surface here
            pass
    except Exception as error:  # pydicom raises about anything on malformed bytes
        log.warning("unreadable query/retrieve identifier: %r", error)
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "unreadable query/retrieve identifier") from None
    return identifier


def encode_identifier(context: AcceptedContext, identifier: Dataset) -> bytes:
    encoded = encode(identifier, *_codec(context))
    if encoded is None:  # pynetdicom's sign that pydicom could not write it
        raise OrthancError(ErrorCode.BAD_REQUEST, "the identifier cannot be encoded")
    return encoded
