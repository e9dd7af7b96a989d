"""Revisions of metadata and attachments, as the REST API exposes them in ETag and If-Match.

An ETag is ``"revision-md5"``: the MD5 is that of the value (of the uncompressed file for an
attachment). Like Orthanc on SQLite, the index keeps no revision: every stored item is at
revision 0, and a write that replaces one reports revision 1. A client that sends If-Match
writes only over the item its ETag names (409 otherwise); with CheckRevisions, a client that
replaces or deletes an existing item must send it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import ErrorCode, OrthancError

STORED_REVISION = 0
_MISSING_IF_MATCH = 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'


@dataclass(frozen=True)
class ETag:
    revision: int
    md5: str

    def header(self) -> str:
        return f'"{self.revision}-{self.md5}"'


def value_md5(value: str | bytes) -> str:
    return hashlib.md5(value.encode("utf-8") if isinstance(value, str) else value).hexdigest()


def stored_etag(md5: str) -> ETag:
    return ETag(STORED_REVISION, md5)


def parse_if_match(text: str) -> ETag:
    """The ETag of an If-Match header, quoted or not; error 3 when it is not ``revision-md5``."""
    bare = text.strip().strip('"')
    revision, dash, md5 = bare.partition("-")
    if not dash or not revision.isdigit():
        raise OrthancError(
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            f'The "if-match" HTTP header should contain the ETag (revision followed by MD5 hash), but found: {bare}',
        )
    return ETag(int(revision), md5)


@dataclass(frozen=True)
class WriteCondition:
    """What a write must find: the If-Match of the request (if any), and the CheckRevisions option."""

    if_match: ETag | None
    check_revisions: bool

    def check(self, current_md5: str | None, *, deleting: bool = False) -> int:
        """The revision the write gives (``current_md5``: the item now, None when absent), or error 43."""
        if current_md5 is None:
            return STORED_REVISION
        if self.if_match is not None:
            if self.if_match != stored_etag(current_md5):
                raise OrthancError(ErrorCode.REVISION)
        elif self.check_revisions:
            raise OrthancError(ErrorCode.REVISION, _MISSING_IF_MATCH if deleting else "")
        return STORED_REVISION + 1
