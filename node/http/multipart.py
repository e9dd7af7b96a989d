"""The files of a multipart/form-data upload, one part at a time.

Browsers send every selected file as a part of the same field name; each file part
is handed over as soon as it is complete, in a :class:`SpooledBody` of its own, so
a form of many files needs the memory (or temporary space) of one. Parts that are
not files (plain form fields) are skipped.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from ..errors import ErrorCode, OrthancError
from .spool import SpooledBody

# Parts of a form: beyond, the form is refused (each part costs parsing, and its own answer).
MAX_PARTS = 10_000
READ_SIZE = 64 * 1024


@dataclass
class FilePart:
    filename: str
    content: SpooledBody


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data body, None for any other content type."""
    mimetype, options = parse_options_header(content_type)
    if mimetype != "multipart/form-data":
        return None
    boundary = options.get("boundary", "")
    if not boundary:
        raise OrthancError(ErrorCode.BAD_REQUEST, "multipart/form-data without a boundary")
    return boundary.encode("latin-1")


def file_parts(body: SpooledBody, boundary: bytes, folder: Path | None) -> Generator[FilePart, None, None]:
    """The file parts of ``body`` in order; blocking (each ``next`` may read and write files).

    A part is never larger than the body, whose size is already bounded. The caller owns each
    part's content and closes it.
    """
    decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
    source = body.reader()
    current: FilePart | None = None  # the file part being received
    try:
        while True:
            chunk = source.read(READ_SIZE)
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, NeedData | Epilogue):
                if isinstance(event, File):
                    current = FilePart(event.filename, SpooledBody(folder))
                elif isinstance(event, Data) and current is not None:
                    current.content.write(event.data)
                    if not event.more_data:
                        part, current = current, None
                        yield part
                # Anything else is the preamble or a plain form field, whose data is skipped.
                event = decoder.next_event()
            if isinstance(event, Epilogue):
                return
            if not chunk:
                raise OrthancError(ErrorCode.BAD_REQUEST, "The multipart body ends before its last boundary")
    except ValueError as exc:  # malformed multipart, or too many parts
        raise OrthancError(ErrorCode.BAD_REQUEST, "Bad multipart/form-data body") from exc
    finally:
        if current is not None:
            current.content.close()
