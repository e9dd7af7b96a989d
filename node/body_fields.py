"""Type checks of the values found in JSON request bodies.

Orthanc refuses a field of the wrong type with a code and a message that depend on the
route (``Boolean value expected in field: X`` with error 15 for job options, ``Field "X"
should be a Boolean`` with error 8 for /tools/find...), and clients match on them. So the
checks are written once and every caller passes the error code and message it answers
with. Each check returns its value, typed, or raises :class:`~node.errors.OrthancError`.
"""

from __future__ import annotations

from typing import Any

from .errors import ErrorCode, OrthancError

__all__ = ["boolean", "integer", "json_object", "optional_string", "string", "string_list"]


def json_object(value: Any, code: ErrorCode, message: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OrthancError(code, message)
    return value


def boolean(value: Any, code: ErrorCode, message: str = "") -> bool:
    if not isinstance(value, bool):
        raise OrthancError(code, message)
    return value


def integer(value: Any, code: ErrorCode, message: str = "") -> int:
    """An integer; JSON's true and false, which Python counts as integers, are not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrthancError(code, message)
    return value


def string(value: Any, code: ErrorCode, message: str = "") -> str:
    if not isinstance(value, str):
        raise OrthancError(code, message)
    return value


def optional_string(value: Any, code: ErrorCode, message: str = "") -> str | None:
    """A string, or None (a field that is absent or null)."""
    return None if value is None else string(value, code, message)


def string_list(value: Any, code: ErrorCode, message: str = "") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise OrthancError(code, message)
    return value
