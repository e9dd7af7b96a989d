"""Transcoding stored instances: the options, and the rule of the callers that keep the original.

:mod:`node.dicom.transcode` does the work on bytes. Here: the transcoding options read from
the configuration, and :func:`transcoded_or_original`, the behaviour of archives, jobs,
peers and ingest when an instance cannot be transcoded (a syntax without an encoder, a
source that does not decode): the file goes on in its own syntax, with a warning in the
log, as Orthanc does. The routes that answer one transcoded file let the error through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from pydicom.uid import UID, ExplicitVRLittleEndian

from ..config import Config
from ..dicom.transcode import DEFAULT_QUALITY, CannotTranscode, Transcoded, transcode
from ..errors import ErrorCode, OrthancError
from ..offload import offload, one_at_a_time
from ..worker_processes import WorkerDied, run_blocking, worker_processes

log = logging.getLogger(__name__)

MIN_QUALITY, MAX_QUALITY = 1, 100  # DicomLossyTranscodingQuality
# Syntaxes whose pixel data is not compressed, for IngestTranscodingOfUncompressed (deflate
# compresses the whole dataset, so it counts as compressed, as in Orthanc).
UNCOMPRESSED_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})
# Video streams (MPEG2, MPEG-4, HEVC: 1.2.840.10008.1.2.4.100 to .108): never transcoded at ingest.
_VIDEO_PREFIX = "1.2.840.10008.1.2.4.10"


def _syntax_option(value: str, name: str) -> str:
    value = value.strip()
    if value and not UID(value).is_transfer_syntax:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Unknown transfer syntax in option "{name}": {value}')
    return value


@dataclass(frozen=True)
class TranscodingSettings:
    lossy_quality: int = DEFAULT_QUALITY  # 1-100: JPEG baseline's quality factor, JPEG 2000's ratio
    ingest_syntax: str = ""  # IngestTranscoding: what received instances are stored in ("": as received)
    ingest_uncompressed: bool = True  # IngestTranscodingOfUncompressed
    ingest_compressed: bool = True  # IngestTranscodingOfCompressed
    scu_preferred_syntax: str = str(ExplicitVRLittleEndian)  # tried first when a C-STORE must transcode

    @classmethod
    def from_config(cls, config: Config) -> TranscodingSettings:
        quality = int(config["DicomLossyTranscodingQuality"])
        if not MIN_QUALITY <= quality <= MAX_QUALITY:
            raise OrthancError(
                ErrorCode.PARAMETER_OUT_OF_RANGE,
                f"DicomLossyTranscodingQuality must be between {MIN_QUALITY} and {MAX_QUALITY}",
            )
        return cls(
            lossy_quality=quality,
            ingest_syntax=_syntax_option(str(config["IngestTranscoding"]), "IngestTranscoding"),
            ingest_uncompressed=bool(config["IngestTranscodingOfUncompressed"]),
            ingest_compressed=bool(config["IngestTranscodingOfCompressed"]),
            scu_preferred_syntax=_syntax_option(
                str(config["DicomScuPreferredTransferSyntax"]), "DicomScuPreferredTransferSyntax"
            )
            or str(ExplicitVRLittleEndian),
        )

    def ingest_target(self, source: str) -> str | None:
        """The syntax a received instance in ``source`` is to be stored in; None: as it is."""
        target = self.ingest_syntax
        if not target or source == target or source.startswith(_VIDEO_PREFIX):
            return None
        wanted = self.ingest_uncompressed if source in UNCOMPRESSED_SYNTAXES else self.ingest_compressed
        return target if wanted else None


AS_RECEIVED = TranscodingSettings()  # the defaults: no ingest transcoding
_J2K_ENCODER = "openjpeg-encoder"  # not safe in two threads at once


def transcode_in_thread(data: bytes, target: str, *, quality: int = DEFAULT_QUALITY, lossy: bool = True) -> Transcoded:
    """:func:`~node.dicom.transcode.transcode` as every worker thread of the node must call it: in
    one of the node's worker processes (CharLS holds the GIL while it encodes, OpenJPEG is not
    safe in two threads; see :mod:`node.worker_processes`), cancelled with the caller. Where it
    runs inline (no Trio run to host it), JPEG 2000 encodings run one at a time."""
    work = partial(transcode, quality=quality, lossy=lossy, j2k_guard=partial(one_at_a_time, _J2K_ENCODER))
    try:
        return run_blocking(worker_processes(), work, data, target)
    except WorkerDied:
        raise CannotTranscode(target, "the codec's process ended during the work") from None


def transcoded_or_original(data: bytes, target: str, quality: int) -> bytes:
    """``data`` in ``target``, or ``data`` itself when it cannot be (logged). Blocking: a worker thread's."""
    try:
        return transcode_in_thread(data, target, quality=quality).data
    except CannotTranscode as error:
        log.warning("cannot transcode an instance to %s, keeping its transfer syntax: %s", target, error.reason)
        return data


async def transcode_off_loop(data: bytes, target: str, quality: int) -> bytes:
    """:func:`transcoded_or_original` in a worker thread."""
    return await offload(transcoded_or_original, data, target, quality)
