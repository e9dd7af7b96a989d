"""C-STORE SCU: the ``DicomModalityStore`` job (``POST /modalities/{id}/store``) and store-straight.

A job opens one association per run and sends every instance on it, in the stored
file's own transfer syntax when the remote accepts it: the contexts proposed come from the
SOP classes and syntaxes of the instances about to be sent (the index knows them), plus,
when the modality allows transcoding, DicomScuPreferredTransferSyntax and the uncompressed
syntaxes for each SOP class. An instance whose syntax the remote refuses is transcoded (in a
worker thread) to the first of those it accepted; never to a lossy syntax, which would give
it a new SOP Instance UID. One that can go in none fails on its own, with a clear error, and
the association stays up for the others. A pause or a cancel aborts the association at
once; the next run opens a new one.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Self

import trio
from pydicom.uid import ExplicitVRLittleEndian

from ..dicom.transcode import CannotTranscode
from ..errors import ErrorCode, OrthancError
from ..jobs.job import StopReason, register_job_type
from ..net.settings import DicomSettings
from ..net.ul.dimse import SUCCESS, StoredFile, read_file_meta
from ..net.ul.requestor import Peer, associate
from ..net.ul.store_proposal import PROPOSAL_WINDOW, UNCOMPRESSED, Pair, StoreProposal, store_proposal
from ..offload import offload
from ..remotes.modality import RemoteModality
from ..services.bundle import ServiceBundle
from ..services.transcoding import TranscodingSettings, transcode_in_thread
from .retry import RetryPolicy, TransferFailed
from .send_job import InstanceSendJob
from .store_request import StoreRequest

WARNING_CLASS, WARNING_MASK = 0xB000, 0xF000  # C-STORE-RSP warnings: the instance is stored all the same
COERCED = 0x0001  # success with elements coerced (an old warning code)
OUT_OF_RESOURCES_CLASS = 0xA700  # refused for now: worth another attempt later


@dataclass(frozen=True)
class ModalityTarget:
    """Where a store goes and as whom, fixed at submission (a modality changed later does not
    redirect a job already queued, as in Orthanc)."""

    remote_aet: str
    host: str
    port: int
    calling_aet: str
    timeout: float | None  # seconds for each wait; None: the requestor's default
    max_pdu: int
    move_originator: tuple[str, int] | None = None  # (AET, message ID) of the C-MOVE this store stands for
    allow_transcoding: bool = True  # the modality's AllowTranscoding
    preferred_syntax: str = str(ExplicitVRLittleEndian)  # DicomScuPreferredTransferSyntax

    @classmethod
    def resolve(
        cls, modality: RemoteModality, request: StoreRequest, dicom: DicomSettings, transcoding: TranscodingSettings
    ) -> ModalityTarget:
        """Calling AET: the modality's LocalAet, else the request's, else DicomAet. Timeout: the
        request's, else the modality's, else DicomScuTimeout."""
        originator = None
        if request.move_originator_id != 0:
            originator = (request.move_originator_aet or dicom.aet, request.move_originator_id)
        return cls(
            remote_aet=modality.aet,
            host=modality.host,
            port=modality.port,
            calling_aet=modality.calling_aet(request.local_aet, dicom.aet),
            timeout=modality.scu_timeout(request.timeout, dicom.scu_timeout),
            max_pdu=dicom.maximum_pdu_length,
            move_originator=originator,
            allow_transcoding=modality.allow_transcoding,
            preferred_syntax=transcoding.scu_preferred_syntax,
        )

    def fallback_syntaxes(self) -> tuple[str, ...]:
        """What a file may be transcoded to, in order of preference, when its own syntax is refused."""
        if not self.allow_transcoding:
            return ()
        return tuple(dict.fromkeys((self.preferred_syntax, *UNCOMPRESSED)))

    def proposal(self, wanted: list[Pair]) -> StoreProposal:
        """The contexts to propose for these files: theirs, and what they may be transcoded to."""
        return store_proposal(wanted, self.fallback_syntaxes())

    def associate(self, proposal: StoreProposal) -> AbstractAsyncContextManager[Peer]:
        """An association with the remote proposing these contexts (see :func:`associate`)."""
        return associate(
            self.host,
            self.port,
            calling_aet=self.calling_aet,
            called_aet=self.remote_aet,
            contexts=proposal.contexts,
            timeout=self.timeout,
            max_pdu=self.max_pdu,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "RemoteAet": self.remote_aet,
            "Host": self.host,
            "Port": self.port,
            "LocalAet": self.calling_aet,
            "Timeout": self.timeout,
            "MaximumPduLength": self.max_pdu,
            "MoveOriginator": list(self.move_originator) if self.move_originator else None,
            "AllowTranscoding": self.allow_transcoding,
            "PreferredTransferSyntax": self.preferred_syntax,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModalityTarget:
        originator = data["MoveOriginator"]
        return cls(
            remote_aet=str(data["RemoteAet"]),
            host=str(data["Host"]),
            port=int(data["Port"]),
            calling_aet=str(data["LocalAet"]),
            timeout=None if data["Timeout"] is None else float(data["Timeout"]),
            max_pdu=int(data["MaximumPduLength"]),
            move_originator=(str(originator[0]), int(originator[1])) if originator else None,
            allow_transcoding=bool(data.get("AllowTranscoding", True)),
            preferred_syntax=str(data.get("PreferredTransferSyntax", ExplicitVRLittleEndian)),
        )


def _accepted_syntaxes(peer: Peer, sop_class: str) -> set[str]:
    contexts = peer.association.contexts.values()
    return {c.transfer_syntax for c in contexts if c.abstract_syntax == sop_class and c.as_scu}


async def _transcoded_for(peer: Peer, data: bytes, meta: StoredFile, target: ModalityTarget) -> bytes:
    """The file in a syntax the remote accepted for its SOP class (see the module's docstring)."""
    accepted = _accepted_syntaxes(peer, meta.sop_class)
    choices = [syntax for syntax in target.fallback_syntaxes() if syntax in accepted]
    refused = (
        f'The remote AET "{peer.called_aet}" accepted no presentation context for SOP class '
        f"{meta.sop_class} in transfer syntax {meta.transfer_syntax} (instance {meta.sop_instance})"
    )
    if not choices:
        why = (
            "and none it accepted is one to transcode to"
            if target.allow_transcoding
            else "and AllowTranscoding is false"
        )
        raise TransferFailed(f"{refused}, {why}", transient=False)
    for syntax in choices:
        try:
            return (await offload(partial(transcode_in_thread, data, syntax, lossy=False))).data
        except CannotTranscode:
            continue  # the next syntax the remote accepted
    raise TransferFailed(
        f"{refused}, and it cannot be transcoded to {', '.join(choices)}",
        transient=False,
        code=ErrorCode.INTERNAL_ERROR,
    )


async def send_file(peer: Peer, data: bytes, meta: StoredFile, target: ModalityTarget) -> None:
    """One C-STORE of a file, transcoded if the remote refused its syntax; a failure status is an error."""
    sent: StoredFile | None = meta
    if peer.context_for(meta.sop_class, meta.transfer_syntax) is None:
        data, sent = await _transcoded_for(peer, data, meta, target), None  # its own meta, read again
    status = await peer.c_store(data, meta=sent, move_originator=target.move_originator)
    if status in (SUCCESS, COERCED) or status & WARNING_MASK == WARNING_CLASS:
        return
    raise TransferFailed(
        f'C-STORE SCU to AET "{peer.called_aet}" has failed with DIMSE status 0x{status:04X}',
        transient=status & 0xFF00 == OUT_OF_RESOURCES_CLASS,
    )


class _Stopped(Exception):
    """Thrown into the association's block to end it with an A-ABORT."""


class StoreAssociation:
    """An association kept open between the steps of a job run, for one proposal of contexts.

    The block of :func:`~node.net.ul.requestor.associate` is entered here and left later, by
    :meth:`release` or :meth:`abort`, or by the error of a C-STORE, which goes through it so
    that the association ends as the requestor ends any (aborted, the error worded alike).
    """

    def __init__(self, target: ModalityTarget) -> None:
        self._target = target
        self._stack: AsyncExitStack | None = None
        self._peer: Peer | None = None
        self._proposed: frozenset[Pair] = frozenset()

    def covers(self, pair: Pair) -> bool:
        """Whether the open association proposed this (SOP class, syntax)."""
        return self._peer is not None and pair in self._proposed

    async def open(self, proposal: StoreProposal) -> None:
        await self.release()
        stack = AsyncExitStack()
        self._peer = await stack.enter_async_context(self._target.associate(proposal))
        self._stack, self._proposed = stack, proposal.pairs

    async def store(self, data: bytes, meta: StoredFile) -> None:
        peer = self._peer
        if peer is None:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "No association is open")
        try:
            await send_file(peer, data, meta, self._target)
        except TransferFailed:
            raise  # the association itself is fine
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await self.abort()
            raise
        except BaseException as error:
            await self._leave(error)  # raises the requestor's AssociationFailed for network errors
            raise

    async def release(self) -> None:
        """A-RELEASE (bounded by the timeout; the socket is closed whatever happens)."""
        peer = self._peer
        try:
            await self._leave(None)
        finally:
            if peer is not None and not peer.association.closed:
                await peer.association.aclose()

    async def abort(self) -> None:
        """A-ABORT now, and close without waiting for the remote."""
        await self._leave(_Stopped())

    async def _leave(self, error: BaseException | None) -> None:
        stack, self._stack, self._peer, self._proposed = self._stack, None, None, frozenset()
        if stack is None:
            return
        if error is None:
            await stack.aclose()
        else:
            await stack.__aexit__(type(error), error, error.__traceback__)


@register_job_type
class DicomModalityStoreJob(InstanceSendJob):
    type_name: ClassVar[str] = "DicomModalityStore"

    def __init__(
        self,
        instances: list[str],
        parents: list[str],
        retry: RetryPolicy,
        target: ModalityTarget,
        description: str = "REST API",
    ) -> None:
        super().__init__(instances, parents, retry, description)
        self.target = target
        self._association = StoreAssociation(target)

    async def send(self, services: ServiceBundle, instance: str, data: bytes) -> None:
        meta = read_file_meta(data)
        if meta is None:
            raise TransferFailed(
                f"Instance {instance} has no readable DICOM meta header",
                transient=False,
                code=ErrorCode.BAD_FILE_FORMAT,
            )
        pair = (meta.sop_class, meta.transfer_syntax)
        if not self._association.covers(pair):
            await self._association.open(self.target.proposal([pair, *await self._pairs_ahead(services)]))
        await self._association.store(data, meta)

    async def _pairs_ahead(self, services: ServiceBundle) -> list[Pair]:
        """(SOP class, syntax) of the next instances, as the index recorded them when they were stored."""
        ahead = self.instances[self.position : self.position + PROPOSAL_WINDOW]
        pairs = []
        for record in await services.index.resources(ahead):
            sop_class, syntax = record.metadata.get("SopClassUid"), record.metadata.get("TransferSyntax")
            if sop_class and syntax:
                pairs.append((sop_class, syntax))
        return pairs

    async def disconnect(self, reason: StopReason) -> None:
        if reason in (StopReason.PAUSED, StopReason.CANCELED):
            await self._association.abort()
        else:
            await self._association.release()

    def remote_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"LocalAet": self.target.calling_aet, "RemoteAet": self.target.remote_aet}
        if self.target.move_originator is not None:
            content["MoveOriginatorAET"], content["MoveOriginatorID"] = self.target.move_originator
        return content

    def serialize(self) -> dict[str, Any] | None:
        return {**(super().serialize() or {}), "Target": self.target.to_json()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Self:
        job = cls([], [], RetryPolicy(), ModalityTarget.from_json(data["Target"]))
        job.restore_send_job(data)
        return job


async def store_straight(target: ModalityTarget, data: bytes) -> dict[str, str]:
    """Send one file as it is, on an association of its own (``POST /modalities/{id}/store-straight``)."""
    meta = read_file_meta(data)
    if meta is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)")
    async with target.associate(target.proposal([(meta.sop_class, meta.transfer_syntax)])) as peer:
        await send_file(peer, data, meta, target)
    return {"SOPClassUID": meta.sop_class, "SOPInstanceUID": meta.sop_instance}
