"""HttpCompressionEnabled: gzip or deflate answers for the clients that accept them.

As Orthanc decides it: an answer is compressed when its status is 200, its body is whole
(not streamed: archives are not) and not empty, and the client's Accept-Encoding lists
``gzip`` or ``deflate`` as a token of its own (gzip when both are). ``deflate`` is a zlib
stream. Large bodies are compressed in a worker thread.

Bodies that their format compresses already (PNG and JPEG images, gzip files) are sent in
the accepted encoding too, as Orthanc sends them, but in stored (level 0) deflate blocks:
deflating a PNG again costs a millisecond per 100 KB and gains a tenth of a percent.
"""

from __future__ import annotations

import zlib

from quart import Response
from quart.wrappers.response import DataBody

from ..offload import offload

GZIP, DEFLATE = "gzip", "deflate"
# What the window size (in bits) is added to, to ask zlib for each format.
_FORMAT_BITS = {GZIP: 16, DEFLATE: 0}
# The smallest window zlib takes; a window larger than the body gains nothing.
MIN_WINDOW_BITS = 9
# zlib's memory level for its largest window (8, its default); one less per halved window.
_MEMORY_LEVEL_OFFSET = zlib.MAX_WBITS - 8
# Bodies up to this size are compressed on the event loop: a thread hop would cost more.
INLINE_SIZE = 64 * 1024
# The same for bodies stored without compression (a copy and a checksum: some 50 times faster).
STORED_INLINE_SIZE = 1024 * 1024
PRECOMPRESSED_TYPES = frozenset({"image/png", "image/jpeg", "image/jp2", "application/gzip", "application/zip"})
STORED_LEVEL = 0
_OK = 200


def accepted_encoding(accept_encoding: str) -> str | None:
    """The encoding to answer with, from the tokens of Accept-Encoding (taken as they are)."""
    tokens = {token.strip() for token in accept_encoding.split(",")}
    return next((encoding for encoding in (GZIP, DEFLATE) if encoding in tokens), None)


def encode(data: bytes, encoding: str, level: int = zlib.Z_DEFAULT_COMPRESSION) -> bytes:
    """``data`` in ``encoding``, with a window no larger than it needs: a small JSON answer
    compresses as well in a 1 KiB window, and zlib sets that up in a quarter of the time of
    its 32 KiB default (which was 7% of the event loop's time under the REST jobs bench)."""
    window = min(zlib.MAX_WBITS, max(MIN_WINDOW_BITS, len(data).bit_length()))
    memory = max(1, window - _MEMORY_LEVEL_OFFSET)
    compressor = zlib.compressobj(level, zlib.DEFLATED, _FORMAT_BITS[encoding] + window, memory)
    return compressor.compress(data) + compressor.flush()


def whole_body_encoding(status: int, data: bytes, accept_encoding: str) -> str | None:
    """The encoding of a whole answer's body under the rules above, None to send it as it is."""
    if status != _OK or not data:
        return None
    return accepted_encoding(accept_encoding)


async def encoded(data: bytes, encoding: str, media_type: str = "") -> bytes:
    """``data`` compressed: on the event loop when small, in a worker thread otherwise; stored
    when ``media_type`` is compressed already."""
    if media_type in PRECOMPRESSED_TYPES:
        level, inline_size = STORED_LEVEL, STORED_INLINE_SIZE
    else:
        level, inline_size = zlib.Z_DEFAULT_COMPRESSION, INLINE_SIZE
    return encode(data, encoding, level) if len(data) <= inline_size else await offload(encode, data, encoding, level)


async def compressed(response: Response, accept_encoding: str) -> Response:
    """``response`` compressed in place when the rules above allow it."""
    if (
        accepted_encoding(accept_encoding) is None
        or response.status_code != _OK
        or not isinstance(response.response, DataBody)
        or "Content-Encoding" in response.headers
    ):
        return response
    data = await response.get_data(as_text=False)
    encoding = whole_body_encoding(response.status_code, data, accept_encoding)
    if encoding is None:
        return response
    response.set_data(await encoded(data, encoding, response.mimetype or ""))
    response.headers["Content-Encoding"] = encoding
    return response
