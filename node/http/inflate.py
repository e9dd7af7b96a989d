"""Decompressing uploads within bounds: a gzip body, the members of a ZIP archive.

A few MB of deflated zeros expand to GBs. Output is produced in pieces of bounded
size and counted as it comes, one ZIP member at a time:

- one decompressed file (the gzip body, a ZIP member) may not exceed
  MaximumRequestSize, like an upload sent as is (413);
- past :data:`RATIO_FREE_SIZE`, the output may not exceed :data:`MAX_RATIO` times
  the compressed input, for each member and for the whole archive (400): DICOM
  files compress a few times, rarely beyond tens; only small, blank images do more;
- an archive may declare at most :data:`MAX_ZIP_ENTRIES` entries: Python's zipfile
  holds every entry's description in memory before the first is read.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import ErrorCode, OrthancError
from ..units import MEGABYTE
from .spool import SpooledBody, too_large

log = logging.getLogger(__name__)

MAX_RATIO = 100
RATIO_FREE_SIZE = 32 * MEGABYTE
MAX_ZIP_ENTRIES = 100_000
# Decompressed output is produced at most this much at a time.
PIECE = 1 * MEGABYTE
# gzip with its header and trailer (zlib's window bits for that format).
_GZIP_WBITS = 16 + zlib.MAX_WBITS

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_EOCD_SIZE = 56
_ZIP64_COUNT = 0xFFFF


class ExpansionBudget:
    """Decompressed bytes that ``compressed`` bytes of input may produce (see the module's rules)."""

    def __init__(self, compressed: int) -> None:
        self._allowed = max(RATIO_FREE_SIZE, MAX_RATIO * compressed)
        self.produced = 0

    def spend(self, count: int) -> None:
        self.produced += count
        if self.produced > self._allowed:
            raise OrthancError(
                ErrorCode.BAD_FILE_FORMAT,
                f"Compressed upload refused: it expands more than {MAX_RATIO} times (a decompression bomb?)",
            )


def gunzip(body: SpooledBody, limit_bytes: int, folder: Path | None) -> SpooledBody:
    """The decompressed content of a gzip body (one member or several in a row); blocking."""
    budget = ExpansionBudget(body.size)
    out = SpooledBody(folder)
    try:
        source = body.reader()
        decompressor = zlib.decompressobj(_GZIP_WBITS)
        inside = False  # a member started and not ended yet
        while chunk := source.read(PIECE):
            while chunk:
                inside = True
                piece = decompressor.decompress(chunk, PIECE)
                chunk = decompressor.unconsumed_tail
                if decompressor.eof:
                    chunk = decompressor.unused_data + chunk
                    decompressor = zlib.decompressobj(_GZIP_WBITS)
                    inside = False
                budget.spend(len(piece))
                if out.size + len(piece) > limit_bytes:
                    raise too_large(limit_bytes)
                out.write(piece)
        if inside:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot decompress the gzip body: it is truncated")
    except zlib.error as exc:
        out.close()
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot decompress the gzip body") from exc
    except BaseException:
        out.close()
        raise
    return out


def _declared_entries(source: IO[bytes]) -> int:
    """The entry count of a ZIP archive's end record (ZIP64 included), read before zipfile parses the rest."""
    size = source.seek(0, 2)
    start = max(0, size - _EOCD_SIZE - _MAX_COMMENT)
    source.seek(start)
    tail = source.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise zipfile.BadZipFile("no end of central directory")
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = at - _ZIP64_LOCATOR_SIZE
    if count == _ZIP64_COUNT and locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        source.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
        record = source.read(_ZIP64_EOCD_SIZE)
        if record[:4] != _ZIP64_EOCD or len(record) < _ZIP64_EOCD_SIZE:
            raise zipfile.BadZipFile("bad ZIP64 end of central directory")
        count = int.from_bytes(record[32:40], "little")
    source.seek(0)
    return count


@contextmanager
def zip_errors() -> Iterator[None]:
    """What zipfile and zlib raise on a damaged archive, as Orthanc's "bad file format"."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot read the ZIP archive") from exc


class ZipUpload:
    """The members of an uploaded ZIP archive, read one at a time within the budget; blocking calls."""

    def __init__(self, body: SpooledBody, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._budget = ExpansionBudget(body.size)
        source = body.reader()
        with zip_errors():
            entries = _declared_entries(source)
            if entries > MAX_ZIP_ENTRIES:
                raise OrthancError(
                    ErrorCode.BAD_FILE_FORMAT, f"ZIP archive refused: more than {MAX_ZIP_ENTRIES} entries"
                )
            self._archive = zipfile.ZipFile(source)

    def members(self) -> list[zipfile.ZipInfo]:
        return [info for info in self._archive.infolist() if not info.is_dir()]

    def read(self, info: zipfile.ZipInfo) -> bytes | None:
        """The member's content; None for a member that cannot be read (encrypted, unknown method)."""
        if info.file_size > self._limit:
            raise too_large(self._limit)
        own = ExpansionBudget(info.compress_size)
        pieces: list[bytes] = []
        size = 0
        with zip_errors():
            try:
                member = self._archive.open(info)
            except (NotImplementedError, RuntimeError) as exc:  # unsupported method, or a password needed
                log.warning("skipping ZIP entry %s: %s", info.filename, exc)
                return None
            with member:
                while piece := member.read(PIECE):
                    own.spend(len(piece))
                    self._budget.spend(len(piece))
                    size += len(piece)
                    if size > self._limit:
                        raise too_large(self._limit)
                    pieces.append(piece)
        return b"".join(pieces)

    def close(self) -> None:
        self._archive.close()
