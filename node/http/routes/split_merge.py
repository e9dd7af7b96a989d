"""/studies/{id}/split and /studies/{id}/merge: SplitStudy and MergeStudy jobs."""

from __future__ import annotations

from quart import Blueprint, Response

from ...jobs.types.split_merge import MergeStudyJob, SplitStudyJob
from ...services.split_merge import prepare_merge, prepare_split
from ..answers import json_body, json_object_body, node, request_origin
from .rewrite import submit_rewrite

blueprint = Blueprint("split_merge", __name__)


@blueprint.route("/studies/<public_id>/split", methods=["POST"])
async def split_study(public_id: str) -> Response:
    body = await json_object_body()
    split, instances = await prepare_split(node().services, public_id, body, request_origin())
    return await submit_rewrite(body, SplitStudyJob(split, instances))


@blueprint.route("/studies/<public_id>/merge", methods=["POST"])
async def merge_study(public_id: str) -> Response:
    body = await json_body()  # checked after the target study, as Orthanc does
    merge, instances = await prepare_merge(node().services, public_id, body, request_origin())
    return await submit_rewrite(body, MergeStudyJob(merge, instances))
