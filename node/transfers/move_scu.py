"""Retrieving from a remote modality as a job: ``DicomMoveScu`` (one C-MOVE per query answer or
per requested resource, the remote sending to a target AE) and ``DicomGetScu`` (the same with
C-GET, the instances coming back on our own association: for the remotes that cannot open a
connection to us, behind NAT say).

Each step opens its own association and closes it before the step ends, so a pause or a
cancel aborts it at once (the job's scope is the step's), and a resumed job starts again
with the retrieve it was in. A transient failure (connection refused, timeout, a remote out
of resources) is retried as ``JobsRetry`` says; anything else fails the job with Orthanc's
error and the remote's own words when it gave some.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

from ..dicom.ids import Level
from ..dicom.json_view import TagFormat, tags_json_by_key
from ..dicom.tag_numbers import (
    ACCESSION_NUMBER,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from ..dicom.tags import format_tag
from ..errors import ErrorCode, OrthancError
from ..jobs.job import Job, Step, StepOutcome, register_job_type
from ..net.find_scu import QUERY_LEVELS, RETRIEVE_KEYS, identifier_of, query_proposals, status_failure_details
from ..net.store_scp import INLINE_LIMIT, StoreGate, dataset_prefix, handle_store
from ..net.ul.dimse import SUCCESS
from ..net.ul.negotiate import (
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from ..net.ul.requestor import Peer, RetrieveResult, associate
from ..remotes.modality import RemoteModality, parse_modality
from ..services.bundle import ServiceBundle
from ..services.ingest import Origin
from .retry import RetryPolicy, TransferFailed, retry_or_raise

log = logging.getLogger(__name__)

C_MOVE, C_GET = "C-MOVE", "C-GET"
_SYNTAXES: list[str | UID] = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
_MODELS = {
    C_MOVE: {Level.PATIENT: PATIENT_ROOT_MOVE, Level.STUDY: STUDY_ROOT_MOVE},
    C_GET: {Level.PATIENT: PATIENT_ROOT_GET, Level.STUDY: STUDY_ROOT_GET},
}
# The keys of a query answer a job keeps to retrieve it (and shows in its Content).
ITEM_TAGS = (
    QUERY_RETRIEVE_LEVEL,
    PATIENT_ID,
    STUDY_INSTANCE_UID,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    ACCESSION_NUMBER,
)
_LEVEL_OF = {name: level for level, name in QUERY_LEVELS.items()} | {"INSTANCE": Level.INSTANCE}
_OUT_OF_RESOURCES_CLASS = 0xA700  # statuses 0xA7xx: the remote may manage later
_WARNING_CLASS = 0xB000
_STATUS_CLASS = 0xFF00
_RESOURCE_NOT_FOUND = "unable to process - resource not found ?"
_STORES_AT_ONCE = 1  # a C-GET brings its instances back one after the other

Item = dict[str, str]  # "gggg,eeee" -> value: the keys of one retrieve


def _model(method: str, level: Level) -> str:
    models = _MODELS[method]
    return models.get(level, models[Level.STUDY])


def item_level(item: Item) -> Level:
    """The level of a retrieve item; error 8 when it names none we know."""
    level = _LEVEL_OF.get(item.get(format_tag(QUERY_RETRIEVE_LEVEL), "").strip().upper())
    if level is None:
        raise OrthancError(ErrorCode.BAD_REQUEST, "A retrieve needs a QueryRetrieveLevel")
    return level


def check_item(item: Item) -> Item:
    """The item, if it names the identifiers of its level (error 8 otherwise, as Orthanc refuses
    a C-MOVE it could not describe)."""
    level = item_level(item)
    missing = [format_tag(tag) for tag in RETRIEVE_KEYS[level] if not item.get(format_tag(tag))]
    if missing:
        raise OrthancError(
            ErrorCode.BAD_REQUEST, f"A retrieve at {level.title} level needs a value for {', '.join(missing)}"
        )
    return item


def item_of(keys: dict[int, str], level: Level) -> Item:
    """The retrieve item of a query answer (or of a requested resource) at ``level``: its
    identifiers, with the level set when the answer lacks it."""
    item = {format_tag(tag): keys[tag] for tag in ITEM_TAGS if tag in keys}
    item.setdefault(format_tag(QUERY_RETRIEVE_LEVEL), QUERY_LEVELS[level])
    return check_item(item)


def retrieve_identifier(item: Item, character_set: str) -> Dataset:
    """What one C-MOVE/C-GET asks for: the level and the identifiers that designate it, no more."""
    level = item_level(item)
    keys = {format_tag(QUERY_RETRIEVE_LEVEL): QUERY_LEVELS[level]}
    for tag in RETRIEVE_KEYS[level]:
        keys[format_tag(tag)] = item[format_tag(tag)]
    return identifier_of(keys, character_set)


# What a C-GET proposes to receive, within the 128 presentation contexts of an association (two
# go to Verification and the retrieve model). The image classes met most often come in every
# common compressed syntax too, one context per syntax: a remote sends what it stored as it is,
# and converts (or fails) only when we proposed nothing that fits. Other classes come uncompressed.
_IMAGE_CLASSES = (
    uid.CTImageStorage,
    uid.EnhancedCTImageStorage,
    uid.MRImageStorage,
    uid.EnhancedMRImageStorage,
    uid.ComputedRadiographyImageStorage,
    uid.DigitalXRayImageStorageForPresentation,
    uid.DigitalXRayImageStorageForProcessing,
    uid.DigitalMammographyXRayImageStorageForPresentation,
    uid.UltrasoundImageStorage,
    uid.UltrasoundMultiFrameImageStorage,
    uid.SecondaryCaptureImageStorage,
    uid.XRayAngiographicImageStorage,
    uid.NuclearMedicineImageStorage,
    uid.PositronEmissionTomographyImageStorage,
)
_COMPRESSED_SYNTAXES = (
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.JPEGLosslessSV1,
    uid.JPEGBaseline8Bit,
    uid.JPEGLSLossless,
    uid.RLELossless,
)
_OTHER_CLASSES = (
    uid.BasicTextSRStorage, uid.EnhancedSRStorage, uid.ComprehensiveSRStorage, uid.KeyObjectSelectionDocumentStorage,
    uid.GrayscaleSoftcopyPresentationStateStorage, uid.EncapsulatedPDFStorage, uid.RTStructureSetStorage,
    uid.RTPlanStorage, uid.RTDoseStorage, uid.RTImageStorage, uid.SegmentationStorage, uid.RawDataStorage,
    uid.SpatialRegistrationStorage, uid.XRayRadiofluoroscopicImageStorage,
    uid.DigitalMammographyXRayImageStorageForProcessing, uid.EnhancedXAImageStorage, uid.VLPhotographicImageStorage,
    uid.MultiFrameSingleBitSecondaryCaptureImageStorage, uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage, uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    uid.XRayRadiationDoseSRStorage, uid.EnhancedPETImageStorage, uid.BreastTomosynthesisImageStorage,
    uid.LegacyConvertedEnhancedCTImageStorage, uid.MRSpectroscopyStorage, uid.VLWholeSlideMicroscopyImageStorage,
    uid.OphthalmicPhotography8BitImageStorage,
)  # fmt: skip
_MAX_STORAGE_CONTEXTS = 126


def _receiving(sop_class: str, syntaxes: list[str | UID]) -> PresentationContext:
    """A storage context in which we take the SCP role only."""
    context = build_context(sop_class, syntaxes)
    context.scu_role, context.scp_role = False, True
    return context


def _get_proposals() -> list[PresentationContext]:
    contexts = []
    for sop_class in _IMAGE_CLASSES:
        contexts.append(_receiving(sop_class, _SYNTAXES))
        contexts.extend(_receiving(sop_class, [syntax]) for syntax in _COMPRESSED_SYNTAXES)
    contexts.extend(_receiving(sop_class, _SYNTAXES) for sop_class in _OTHER_CLASSES)
    if len(contexts) > _MAX_STORAGE_CONTEXTS:
        raise ValueError(f"{len(contexts)} storage contexts for a C-GET, at most {_MAX_STORAGE_CONTEXTS} fit")
    return contexts


_STORAGE_PROPOSALS = tuple(_get_proposals())


@dataclass(frozen=True)
class RetrieveRequest:
    """Where a retrieve job goes, as whom, and how it gets the instances."""

    modality: RemoteModality
    local_aet: str  # our calling AE title
    target_aet: str  # C-MOVE: where the remote sends the instances (unused by C-GET)
    timeout: float | None  # seconds for each wait; None: the requestor's default
    character_set: str  # of the identifiers we send
    method: str = C_MOVE
    query_format: TagFormat = TagFormat.SHORT  # how Content shows the items
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_dataset: int = 1 << 30  # C-GET: bytes of one received instance
    spool_directory: str | None = None  # C-GET: where large received instances wait

    def to_json(self) -> dict[str, Any]:
        return {
            "Modality": self.modality.to_json(),
            "LocalAet": self.local_aet,
            "TargetAet": self.target_aet,
            "Timeout": self.timeout,
            "CharacterSet": self.character_set,
            "Method": self.method,
            "Format": self.query_format.value,
            "Retry": self.retry.to_json(),
            "MaximumDatasetSize": self.max_dataset,
            "SpoolDirectory": self.spool_directory,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetrieveRequest:
        return cls(
            modality=parse_modality(data["Modality"]),
            local_aet=str(data["LocalAet"]),
            target_aet=str(data["TargetAet"]),
            timeout=None if data["Timeout"] is None else float(data["Timeout"]),
            character_set=str(data["CharacterSet"]),
            method=str(data["Method"]),
            query_format=TagFormat(data["Format"]),
            retry=RetryPolicy.from_json(data["Retry"]),
            max_dataset=int(data["MaximumDatasetSize"]),
            spool_directory=data["SpoolDirectory"],
        )


def _failure(request: RetrieveRequest, result: RetrieveResult) -> TransferFailed | None:
    """Why a retrieve that ended with ``result`` failed, or None if it did not.

    Unlike Orthanc, a warning status with failed sub-operations is a failure: the instances
    did not all arrive. It may be transient (the target was busy), like a remote out of
    resources; any other failure status will be answered the same next time.
    """
    aet, method = request.modality.aet, request.method
    status = result.status
    if status == SUCCESS or (status & _STATUS_CLASS == _WARNING_CLASS and not result.failed):
        return None
    if status & _STATUS_CLASS == _WARNING_CLASS:
        counts = f"{result.failed} failed, {result.completed} completed, {result.warning} with a warning"
        details = f'{method} SCU to AET "{aet}": sub-operations {counts} (DIMSE status 0x{status:04X})'
        transient = True
    else:
        details = status_failure_details(method, aet, status, _RESOURCE_NOT_FOUND)
        transient = status & _STATUS_CLASS == _OUT_OF_RESOURCES_CLASS
    if method == C_MOVE:
        details += f', moving to AET "{request.target_aet}"'
    if result.comment:
        details += f": {result.comment}"
    return TransferFailed(details, transient=transient)


class RetrieveJob(Job):
    """The steps both retrieve methods share: one retrieve per item, an association each."""

    method: ClassVar[str]

    def __init__(self, request: RetrieveRequest, items: list[Item], description: str = "REST API") -> None:
        self.request = request
        self.items = [check_item(item) for item in items]
        self.description = description
        self.position = 0

    def content(self) -> dict[str, Any]:
        fmt = self.request.query_format
        return {
            "Description": self.description,
            "LocalAet": self.request.local_aet,
            "Query": [dict(sorted(tags_json_by_key(item, fmt).items())) for item in self.items],
            "RemoteAet": self.request.modality.aet,
        }

    def progress(self) -> float:
        return 1.0 if not self.items else self.position / len(self.items)

    def _advance(self) -> Step:
        self.position += 1
        return Step.DONE if self.position >= len(self.items) else Step.CONTINUE

    async def step(self, services: ServiceBundle) -> StepOutcome:
        if self.position >= len(self.items):
            return Step.DONE
        try:
            await self._retrieve_item(services, self.items[self.position])
        except OrthancError as error:
            return retry_or_raise(error, self.request.retry)
        return self._advance()

    def skip_failed_step(self, error: OrthancError) -> StepOutcome:
        log.warning("%s of %s skipped (permissive): %s", self.method, self.items[self.position], error)
        return self._advance()

    async def _retrieve_item(self, services: ServiceBundle, item: Item) -> None:
        request = self.request
        modality = request.modality
        model = _model(self.method, item_level(item))
        async with associate(
            modality.host,
            modality.port,
            calling_aet=request.local_aet,
            called_aet=modality.aet,
            contexts=self._proposals(model),
            timeout=request.timeout,
            max_dataset=request.max_dataset,
            spool_directory=request.spool_directory,
            dataset_prefix=dataset_prefix,
        ) as peer:
            if peer.context_for(model) is None:
                raise self._unavailable()
            identifier = retrieve_identifier(item, request.character_set)
            result = await self._run(services, peer, identifier, model)
        failure = _failure(request, result)
        if failure is not None:
            raise failure

    def _proposals(self, model: str) -> Sequence[PresentationContext]:
        return query_proposals(model)

    def _unavailable(self) -> OrthancError:
        """The remote accepted the association but not the retrieve model."""
        raise NotImplementedError

    async def _run(self, services: ServiceBundle, peer: Peer, identifier: Dataset, model: str) -> RetrieveResult:
        raise NotImplementedError

    def reset(self) -> None:
        self.position = 0

    def serialize(self) -> dict[str, Any] | None:
        return {
            "Description": self.description,
            "Request": self.request.to_json(),
            "Query": self.items,
            "Position": self.position,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        job = cls(RetrieveRequest.from_json(data["Request"]), list(data["Query"]), str(data["Description"]))
        job.position = int(data["Position"])
        return job


@register_job_type
class DicomMoveScuJob(RetrieveJob):
    """C-MOVE: the remote opens its own association to the target and sends the instances there."""

    type_name: ClassVar[str] = "DicomMoveScu"
    method: ClassVar[str] = C_MOVE

    def _unavailable(self) -> OrthancError:
        return OrthancError(ErrorCode.DICOM_MOVE_UNAVAILABLE, f"Remote AET is {self.request.modality.aet}")

    async def _run(self, services: ServiceBundle, peer: Peer, identifier: Dataset, model: str) -> RetrieveResult:
        return await peer.c_move(identifier, model, self.request.target_aet)


@register_job_type
class DicomGetScuJob(RetrieveJob):
    """C-GET: the instances come back on our association and are stored as a C-STORE to our SCP
    would store them (same checks, origin DicomProtocol)."""

    type_name: ClassVar[str] = "DicomGetScu"
    method: ClassVar[str] = C_GET

    def _proposals(self, model: str) -> Sequence[PresentationContext]:
        return [*super()._proposals(model), *_STORAGE_PROPOSALS]

    def _unavailable(self) -> OrthancError:
        aet = self.request.modality.aet
        return OrthancError(ErrorCode.NETWORK_PROTOCOL, f"Remote AET {aet} does not support C-GET")

    async def _run(self, services: ServiceBundle, peer: Peer, identifier: Dataset, model: str) -> RetrieveResult:
        modality = self.request.modality
        gate = StoreGate(services.ingest, _STORES_AT_ONCE, inline_limit=INLINE_LIMIT)
        origin = Origin(
            kind="DicomProtocol", remote_ip=modality.host, remote_aet=modality.aet, called_aet=self.request.local_aet
        )
        return await peer.c_get(identifier, model, partial(handle_store, gate, origin=origin))


def retrieve_job(request: RetrieveRequest, items: list[Item]) -> RetrieveJob:
    """The job of ``request``'s method."""
    job_class = DicomGetScuJob if request.method == C_GET else DicomMoveScuJob
    return job_class(request, items)
