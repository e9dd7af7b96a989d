"""Upload bodies received in memory while small, in a private temporary file beyond.

Quart keeps a request's whole body in memory, and copies it once more when it
hands it over: an upload of a few hundred MB took about three times its size. The
routes of :data:`STREAMED_ROUTES` read their body themselves instead
(:func:`receive_upload`), at the pace they store it. A body up to
:data:`MEMORY_LIMIT` stays in memory as received (the small instance, the most
frequent upload, pays nothing more); a larger one goes to an unnamed temporary
file as it arrives, so receiving it costs a bounded amount of memory whatever
its size.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import IO, Any

import trio

from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import write_failure
from ..storage.private import make_folders
from ..units import MEGABYTE

# Bodies up to this size stay in memory.
MEMORY_LIMIT = 4 * MEGABYTE
# Past MEMORY_LIMIT, received bytes are written to the file in batches of this size (one thread hop each).
WRITE_BATCH = 1 * MEGABYTE
# (method, path) of the routes that read their body with receive_upload; Quart sees an empty body.
STREAMED_ROUTES = frozenset({("POST", "/instances")})
# Where a streamed route finds the ASGI receive channel of its request.
UPLOAD_KEY = "node.upload"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


def too_large(limit_bytes: int) -> OrthancError:
    """Orthanc's "bad request" with the status that says why: the body is over MaximumRequestSize."""
    return OrthancError(
        ErrorCode.BAD_REQUEST, f"The request body exceeds MaximumRequestSize ({limit_bytes // MEGABYTE} MB)", status=413
    )


class SpooledBody:
    """Bytes written once, then read: in memory up to MEMORY_LIMIT, in a temporary file beyond.

    The file is created without a name in ``folder`` (None: the OS temp folder), readable by
    the node's account only, and disappears when closed or when the process ends.
    """

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None
        self.size = 0

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Append ``data`` (blocking once on disk: call it from a thread then)."""
        if self._file is None and self.size + len(data) <= MEMORY_LIMIT:
            self._chunks.append(data)
        else:
            try:
                self._spill().write(data)
            except OSError as exc:
                raise write_failure(exc, self._folder or tempfile.gettempdir()) from exc
        self.size += len(data)

    def _spill(self) -> IO[bytes]:
        if self._file is None:
            if self._folder is not None:
                make_folders(self._folder)
            self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 (open until close())
            for chunk in self._chunks:
                self._file.write(chunk)
            self._chunks = []
        return self._file

    def reader(self) -> IO[bytes]:
        """The content from its start, as a seekable file (one reader at a time)."""
        if self._file is None:
            return io.BytesIO(self.read_all())
        self._file.flush()
        self._file.seek(0)
        return self._file

    def read_all(self) -> bytes:
        """The whole content in memory (blocking when on disk)."""
        if self._file is None:
            return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        return self.reader().read()

    def head(self, count: int) -> bytes:
        """The first ``count`` bytes at most (blocking when on disk)."""
        if self._file is None:
            return self.read_all()[:count]
        return self.reader().read(count)

    def close(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()
            self._file = None


async def receive_body(receive: Receive, limit_bytes: int, folder: Path | None) -> SpooledBody:
    """The rest of a request's body; 413 past ``limit_bytes``."""
    body = SpooledBody(folder)
    batch: list[bytes] = []
    batched = 0
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise OrthancError(ErrorCode.NETWORK_PROTOCOL, "The client went away before the end of its request")
            chunk = bytes(message.get("body", b""))
            if body.size + batched + len(chunk) > limit_bytes:
                raise too_large(limit_bytes)
            # Once a part waits in the batch, every later one joins it: written ahead, it would land first.
            if body.on_disk or batch or body.size + len(chunk) > MEMORY_LIMIT:
                batch.append(chunk)
                batched += len(chunk)
            else:
                body.write(chunk)
            more = message.get("more_body", False)
            if batch and (batched >= WRITE_BATCH or not more):
                await offload(_write_all, body, batch)
                batch, batched = [], 0
            if not more:
                return body
    except BaseException:
        body.close()
        raise


def _write_all(body: SpooledBody, chunks: list[bytes]) -> None:
    for chunk in chunks:
        body.write(chunk)


class _EmptyBody:
    """What Quart receives for a streamed route: an empty body, then nothing until the request ends."""

    def __init__(self) -> None:
        self._given = False

    async def __call__(self) -> Message:
        if not self._given:
            self._given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await trio.sleep_forever()


class StreamedUploads:
    """ASGI wrapper: the body of a streamed route is left for the route to read, not to Quart."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Any) -> None:
        if scope.get("type") == "http" and (scope["method"], _route_path(scope["path"])) in STREAMED_ROUTES:
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), UPLOAD_KEY: receive}}
            receive = _EmptyBody()
        await self.app(scope, receive, send)


def _route_path(path: str) -> str:
    """Routes match with or without a final slash."""
    return path.rstrip("/") or "/"


async def receive_upload(scope: Mapping[str, Any], limit_bytes: int, folder: Path | None) -> SpooledBody:
    """The body of a request to a streamed route, received now; 413 past ``limit_bytes``."""
    receive: Receive = scope["extensions"][UPLOAD_KEY]
    return await receive_body(receive, limit_bytes, folder)
