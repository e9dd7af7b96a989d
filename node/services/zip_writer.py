"""A ZIP archive produced front to back, one member at a time, without seeking.

Pure (no Trio, no I/O): the writer returns the bytes to emit, so the same code
feeds an HTTP stream or a temporary file. Members are deflated before their
local header is written, hence the header carries the real CRC and sizes and
no data descriptor is needed (the most widely readable form of ZIP). Only the
central directory (about 100 bytes per member) is kept until the end.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass

# Orthanc switches to ZIP64 from these figures on, with a margin below the limits of plain ZIP.
ZIP64_SIZE_THRESHOLD = 2 * 1024**3 - 64 * 1024**2
ZIP64_COUNT_THRESHOLD = 65525
# Level 1 costs a fraction of the CPU of the usual 6 and DICOM pixel data gains
# little from more effort; archives are read once and thrown away.
DEFAULT_LEVEL = 1

_U32 = 0xFFFFFFFF
_U16 = 0xFFFF
_VERSION_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5
_VERSION_DEFLATE = 20
_VERSION_ZIP64 = 45
_FLAG_UTF8 = 1 << 11
_METHOD_DEFLATE = 8
_UNIX_FILE_ATTRIBUTES = (0o100644 << 16) & _U32
_ZIP64_EXTRA_ID = 0x0001
_ZIP64_END_RECORD_SIZE = 44  # the size the ZIP64 end record states: its length after this field
# Record signatures.
_LOCAL_HEADER = 0x04034B50
_CENTRAL_HEADER = 0x02014B50
_ZIP64_END_RECORD = 0x06064B50
_ZIP64_END_LOCATOR = 0x07064B50
_END_RECORD = 0x06054B50


@dataclass(frozen=True)
class DeflatedFile:
    """A member's content once compressed, with what its headers must state."""

    chunks: tuple[bytes, ...]
    crc: int
    size: int

    @property
    def compressed_size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


def deflate(data: bytes, level: int = DEFAULT_LEVEL) -> DeflatedFile:
    """Raw deflate of a whole member (runs in a worker thread: zlib releases the GIL)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return DeflatedFile((compressor.compress(data), compressor.flush()), zlib.crc32(data), len(data))


def _dos_time(moment: float) -> tuple[int, int]:
    t = time.localtime(moment)
    dos_date = (max(t.tm_year, 1980) - 1980) << 9 | t.tm_mon << 5 | t.tm_mday
    dos_time = t.tm_hour << 11 | t.tm_min << 5 | t.tm_sec // 2
    return dos_time, dos_date


@dataclass(frozen=True)
class ZipMember:
    """One member ready to go out: its bytes, and its record for the central directory."""

    name: str
    chunks: tuple[bytes, ...]
    central: bytes
    size: int

    @property
    def length(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


class ZipWriter:
    """Lays out members one after the other, then the central directory.

    Two phases, so that a caller interrupted while delivering bytes can redo
    the step: :meth:`member` and :meth:`end` only compute bytes, :meth:`append`
    and :meth:`close` record that they were delivered. ``zip64`` forces the
    ZIP64 records everywhere (Orthanc's choice for big archives); without it
    they are still added wherever a figure overflows.
    """

    def __init__(self, *, zip64: bool = False, comment: bytes = b"", moment: float | None = None) -> None:
        self._zip64 = zip64
        self._comment = comment[:_U16]
        self._time, self._date = _dos_time(time.time() if moment is None else moment)
        self._central: list[bytes] = []
        self._names: set[str] = set()
        self.offset = 0
        self.closed = False

    def member(self, name: str, content: DeflatedFile) -> ZipMember:
        """The bytes of ``content`` stored as ``name`` right after what was appended so far."""
        if name in self._names:
            raise ValueError(f"duplicate ZIP member: {name}")
        encoded = name.encode("utf-8")
        flags = 0 if encoded.isascii() else _FLAG_UTF8
        compressed = content.compressed_size
        wide = self._zip64 or content.size >= _U32 or compressed >= _U32
        extra = struct.pack("<HHQQ", _ZIP64_EXTRA_ID, 16, content.size, compressed) if wide else b""
        header = struct.pack(
            "<IHHHHHIIIHH",
            _LOCAL_HEADER,
            _VERSION_ZIP64 if wide else _VERSION_DEFLATE,
            flags,
            _METHOD_DEFLATE,
            self._time,
            self._date,
            content.crc,
            _U32 if wide else compressed,
            _U32 if wide else content.size,
            len(encoded),
            len(extra),
        )
        central = self._central_record(encoded, flags, content, compressed)
        return ZipMember(name, (header + encoded + extra, *content.chunks), central, content.size)

    def _central_record(self, name: bytes, flags: int, content: DeflatedFile, compressed: int) -> bytes:
        values = (content.size, compressed, self.offset)
        wide = [self._zip64 or value >= _U32 for value in values]
        extra_values = [value for value, is_wide in zip(values, wide, strict=True) if is_wide]
        extra = b""
        if extra_values:
            extra = struct.pack(f"<HH{len(extra_values)}Q", _ZIP64_EXTRA_ID, 8 * len(extra_values), *extra_values)
        size, compressed_field, offset = (_U32 if w else v for v, w in zip(values, wide, strict=True))
        header = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            _CENTRAL_HEADER,
            _VERSION_MADE_BY,
            _VERSION_ZIP64 if extra_values else _VERSION_DEFLATE,
            flags,
            _METHOD_DEFLATE,
            self._time,
            self._date,
            content.crc,
            compressed_field,
            size,
            len(name),
            len(extra),
            0,
            0,
            0,
            _UNIX_FILE_ATTRIBUTES,
            offset,
        )
        return header + name + extra

    def append(self, member: ZipMember) -> None:
        """Record that ``member`` (made by :meth:`member` at this offset) was delivered."""
        self._names.add(member.name)
        self._central.append(member.central)
        self.offset += member.length

    def end(self, *pending: ZipMember) -> bytes:
        """Central directory and end records, as if ``pending`` members were appended first."""
        records = [*self._central, *(m.central for m in pending)]
        directory = b"".join(records)
        count, size = len(records), len(directory)
        start = self.offset + sum(m.length for m in pending)
        tail = [directory]
        if self._zip64 or count >= _U16 or start >= _U32 or size >= _U32:
            tail.append(
                struct.pack(
                    "<IQHHIIQQQQ",
                    _ZIP64_END_RECORD,
                    _ZIP64_END_RECORD_SIZE,
                    _VERSION_MADE_BY,
                    _VERSION_ZIP64,
                    0,
                    0,
                    count,
                    count,
                    size,
                    start,
                )
            )
            tail.append(struct.pack("<IIQI", _ZIP64_END_LOCATOR, 0, start + size, 1))
            count, start, size = min(count, _U16), min(start, _U32), min(size, _U32)
        tail.append(struct.pack("<IHHHHIIH", _END_RECORD, 0, 0, count, count, size, start, len(self._comment)))
        tail.append(self._comment)
        return b"".join(tail)

    def close(self, end: bytes) -> None:
        """Record that the bytes of :meth:`end` were delivered: the archive is complete."""
        self.offset += len(end)
        self._central = []
        self.closed = True
