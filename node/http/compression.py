"""HttpCompressionEnabled: gzip or deflate answers for the clients that accept them.

As Orthanc decides it: an answer is compressed when its status is 200, its body is whole
(not streamed: archives are not) and not empty, and the client's Accept-Encoding lists
``gzip`` or ``deflate`` as a token of its own (gzip when both are). ``deflate`` is a zlib
stream. Large bodies are compressed in a worker thread.
"""

from __future__ import annotations

import zlib

from quart import Response
from quart.wrappers.response import DataBody

from ..offload import offload

GZIP, DEFLATE = "gzip", "deflate"
_WINDOW_BITS = {GZIP: 16 + zlib.MAX_WBITS, DEFLATE: zlib.MAX_WBITS}
# Bodies up to this size are compressed on the event loop: a thread hop would cost more.
INLINE_SIZE = 64 * 1024
_OK = 200


def accepted_encoding(accept_encoding: str) -> str | None:
    """The encoding to answer with, from the tokens of Accept-Encoding (taken as they are)."""
    tokens = {token.strip() for token in accept_encoding.split(",")}
    return next((encoding for encoding in (GZIP, DEFLATE) if encoding in tokens), None)


def encode(data: bytes, encoding: str) -> bytes:
    compressor = zlib.compressobj(wbits=_WINDOW_BITS[encoding])
    return compressor.compress(data) + compressor.flush()


async def compressed(response: Response, accept_encoding: str) -> Response:
    """``response`` compressed in place when the rules above allow it."""
    encoding = accepted_encoding(accept_encoding)
    if (
        encoding is None
        or response.status_code != _OK
        or not isinstance(response.response, DataBody)
        or "Content-Encoding" in response.headers
    ):
        return response
    data = await response.get_data(as_text=False)
    if not data:
        return response
    body = encode(data, encoding) if len(data) <= INLINE_SIZE else await offload(encode, data, encoding)
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    return response
