"""Sending to remote nodes: C-STORE to modalities and HTTP stores to Orthanc peers.

``/store`` queues a job (synchronous by default, as in Orthanc); ``/store-straight``
sends the request's own body at once, without storing it. ``/peers/{id}/system``
relays the peer's ``/system``.
"""

from __future__ import annotations

import httpx
from quart import Blueprint, Response

from ...errors import ErrorCode, OrthancError
from ...jobs.submit import submit, submit_options
from ...services.rewrite import instances_of
from ...transfers.modality_store import DicomModalityStoreJob, ModalityTarget, store_straight
from ...transfers.peer_client import PeerClient, PeerHttpError, PeerTarget
from ...transfers.peer_store import OrthancPeerStoreJob
from ...transfers.store_request import StoreRequest, parse_store_request
from ..answers import body_bytes, empty, json_answer, node, text_answer

blueprint = Blueprint("transfers", __name__)

JSON_TYPE = "application/json"


def _peer_target(name: str) -> PeerTarget:
    context = node()
    peer = context.remotes.peers.get(name)
    settings = context.settings.transfers
    return PeerTarget(peer, peer.http_timeout(settings.http_timeout), settings.https_verify_peers)


@blueprint.route("/modalities/<name>/store", methods=["POST"])
async def store_to_modality(name: str) -> Response:
    context = node()
    modality = context.remotes.modalities.get(name)
    request = parse_store_request(await body_bytes(), peer=False)
    options = submit_options(request.options, synchronous=True)
    instances = await instances_of(context.services, request.resources)
    target = ModalityTarget.resolve(modality, request, context.settings.dicom, context.settings.transcoding)
    job = DicomModalityStoreJob(instances, request.resources, context.settings.transfers.retry, target)
    return json_answer(await submit(context.jobs, job, options))


@blueprint.route("/modalities/<name>/store-straight", methods=["POST"])
async def store_straight_to_modality(name: str) -> Response:
    context = node()
    modality = context.remotes.modalities.get(name)
    target = ModalityTarget.resolve(
        modality, StoreRequest(resources=[], options=None), context.settings.dicom, context.settings.transcoding
    )
    return json_answer(await store_straight(target, await body_bytes()))


@blueprint.route("/peers/<name>/store", methods=["POST"])
async def store_to_peer(name: str) -> Response:
    context = node()
    target = _peer_target(name)
    request = parse_store_request(await body_bytes(), peer=True)
    options = submit_options(request.options, synchronous=True)
    instances = await instances_of(context.services, request.resources)
    job = OrthancPeerStoreJob(
        instances,
        request.resources,
        context.settings.transfers.retry,
        target,
        compress=request.compress,
        transcode=request.transcode,
    )
    return json_answer(await submit(context.jobs, job, options))


@blueprint.route("/peers/<name>/store-straight", methods=["POST"])
async def store_straight_to_peer(name: str) -> Response:
    target = _peer_target(name)
    data = await body_bytes()
    async with PeerClient(target) as client:
        try:
            answer = await client.post_instance(data, gzipped=False)
        except PeerHttpError as error:
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"Cannot send DICOM to remote peer: {name}") from error
    return _relayed(answer)


@blueprint.route("/peers/<name>/system", methods=["GET"])
async def peer_system(name: str) -> Response:
    async with PeerClient(_peer_target(name)) as client:
        answer = await client.request("GET", "system")
    if not answer.is_success:
        return empty(answer.status_code)  # the peer's refusal, passed on without its body
    return _relayed(answer)


def _relayed(answer: httpx.Response) -> Response:
    """The peer's answer as it came (an Orthanc peer formats its JSON as we would)."""
    return text_answer(answer.content, answer.headers.get("Content-Type", JSON_TYPE))
