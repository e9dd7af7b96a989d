"""The ``OrthancPeerStore`` job (``POST /peers/{id}/store``): each stored file POSTed to ``{Url}instances``.

One kept-alive HTTP connection per run (:mod:`.peer_poster`), kept across the steps and
closed by the stop hook; files are read ahead meanwhile (:mod:`~node.net.read_ahead`).
``Compress`` gzips each body (``Content-Encoding: gzip``); ``Size`` counts the bytes
sent, compressed or not. ``Transcode`` converts each file to that transfer syntax first
(in a worker thread); one that cannot be converted goes in its own syntax, as with Orthanc.
"""

from __future__ import annotations

import gzip
from functools import partial
from typing import Any, ClassVar, Self

from ..jobs.job import StopReason, register_job_type
from ..net.read_ahead import Transform
from ..services.bundle import ServiceBundle
from ..services.transcoding import transcoded_or_original
from ..units import MEGABYTE
from .peer_client import PeerTarget
from .peer_poster import InstancePoster, instance_poster
from .retry import RetryPolicy
from .send_job import InstanceSendJob

GZIP_LEVEL = 6  # zlib's default: most of the gain of 9 at a fraction of its time


def public_peer(target: PeerTarget) -> list[str] | dict[str, Any]:
    """The peer as the job's Content shows it, never with its password: ``[url]``, ``[url, user, ""]``,
    or, when it has headers or a timeout of its own, an object."""
    peer = target.peer
    if not (peer.headers or peer.timeout or peer.pkcs11 or peer.properties):
        return [peer.url, peer.username, ""] if peer.username else [peer.url]
    shown: dict[str, Any] = {
        **dict(peer.properties),
        "HttpHeaders": dict(peer.headers),
        "Pkcs11": peer.pkcs11,
        "Timeout": peer.timeout,
        "Url": peer.url,
    }
    if peer.username:
        shown["Username"] = peer.username
    return dict(sorted(shown.items()))


def _in_turn(steps: list[Transform], data: bytes) -> bytes:
    for step in steps:
        data = step(data)
    return data


@register_job_type
class OrthancPeerStoreJob(InstanceSendJob):
    type_name: ClassVar[str] = "OrthancPeerStore"

    def __init__(
        self,
        instances: list[str],
        parents: list[str],
        retry: RetryPolicy,
        target: PeerTarget,
        *,
        compress: bool = False,
        transcode: str | None = None,
        description: str = "REST API",
    ) -> None:
        super().__init__(instances, parents, retry, description)
        self.target = target
        self.compress = compress
        self.transcode = transcode
        self.size = 0  # bytes sent so far
        self._client: InstancePoster | None = None

    async def send(self, services: ServiceBundle, instance: str, data: bytes) -> None:
        """``data`` comes transcoded and gzipped as asked, by :meth:`transform` in the reading thread."""
        if self._client is None:
            self._client = instance_poster(self.target)
        await self._client.post_instance(data, gzipped=self.compress)
        self.size += len(data)

    def transform(self, services: ServiceBundle) -> Transform | None:
        """Transcoding (a file that cannot be goes in its own syntax, as with Orthanc) and gzip, in
        the thread that reads the file."""
        steps: list[Transform] = []
        if self.transcode is not None:
            steps.append(
                partial(transcoded_or_original, target=self.transcode, quality=services.transcoding.lossy_quality)
            )
        if self.compress:
            steps.append(partial(gzip.compress, compresslevel=GZIP_LEVEL))
        return partial(_in_turn, steps) if steps else None

    async def disconnect(self, reason: StopReason) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def remote_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "Compress": self.compress,
            "Peer": public_peer(self.target),
            "Size": str(self.size),
            "SizeMB": self.size // MEGABYTE,
        }
        if self.transcode is not None:
            content["Transcode"] = self.transcode
        return content

    def reset(self) -> None:
        super().reset()
        self.size = 0

    def serialize(self) -> dict[str, Any] | None:
        return {
            **(super().serialize() or {}),
            "Target": self.target.to_json(),
            "Compress": self.compress,
            "Transcode": self.transcode,
            "Size": self.size,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Self:
        job = cls(
            [],
            [],
            RetryPolicy(),
            PeerTarget.from_json(data["Target"]),
            compress=bool(data["Compress"]),
            transcode=data["Transcode"],
        )
        job.restore_send_job(data)
        job.size = int(data["Size"])
        return job
