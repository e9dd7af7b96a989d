"""Checks of the JSON fields that describe a remote (and of the bodies of the routes that talk to one),
answered with the code and words of Orthanc's own checks, which clients match on."""

from __future__ import annotations

from typing import Any

from ..body_fields import integer
from ..errors import ErrorCode, OrthancError

INT32_MAX = 2**31 - 1  # the largest number a 32-bit field takes: anything larger is refused as malformed


def malformed() -> OrthancError:
    """A value of the wrong shape where Orthanc says no more than "Bad file format"."""
    return OrthancError(ErrorCode.BAD_FILE_FORMAT)


def unsigned_field(body: dict[str, Any], name: str) -> int:
    """A non-negative integer field, 0 when absent."""
    if name not in body:
        return 0
    number = integer(body[name], ErrorCode.BAD_FILE_FORMAT, f"Integer value expected in field: {name}")
    if number > INT32_MAX:
        raise malformed()
    if number < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Unsigned integer value expected in field: {name}")
    return number
