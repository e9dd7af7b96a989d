"""/modify and /anonymize: of one instance (the file is answered, not stored), or as a job.

The rewrite pipeline, one module per layer: :mod:`node.dicom.rewrite_plan` (request to
plan), :mod:`node.dicom.rewrite` (the rules and the UID map), :mod:`node.services.rewrite`
(applies a plan to stored instances), :mod:`node.jobs.types.rewrite` (the job), here the route.
The job routes of one resource are answered by the fast path (:mod:`node.http.fast_jobs`), through
:func:`rewrite_resource` as the app's route here does.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response

from ...body_fields import string_list
from ...context import NodeContext
from ...dicom.ids import Level
from ...dicom.rewrite_plan import ModificationPlan, bulk_level, parse_anonymize_request, parse_modify_request
from ...errors import ErrorCode
from ...jobs.submit import SubmitOptions, submit, submit_options
from ...jobs.types.rewrite import ResourceModificationJob, RewriteJob
from ...services.ingest import Origin
from ...services.rewrite import (
    ResourceModification,
    complete_plan,
    instances_below,
    instances_of,
    modified_instance,
)
from ..answers import json_answer, json_body, node, request_origin

blueprint = Blueprint("rewrite", __name__)


def _plan(context: NodeContext, action: str, body: Any, level: Level | None, *, job: bool) -> ModificationPlan:
    creator = context.settings.default_private_creator
    if action.endswith("anonymize"):
        return parse_anonymize_request(body, default_private_creator=creator, job=job)
    return parse_modify_request(body, level=level, default_private_creator=creator, job=job)


@blueprint.route("/instances/<public_id>/<any(modify, anonymize):action>", methods=["POST"])
async def modify_instance(public_id: str, action: str) -> Response:
    plan = _plan(node(), action, await json_body(), None, job=False)
    await node().resources.get(public_id, Level.INSTANCE)
    plan = await complete_plan(node().index, plan)
    return Response(await modified_instance(node().services, public_id, plan), content_type="application/dicom")


async def _submitted(
    context: NodeContext, body: Any, job: RewriteJob[Any], options: SubmitOptions | None = None
) -> dict[str, Any]:
    """Submit a job that rewrites instances (modify, anonymize, split, merge): synchronous by default."""
    options = options or submit_options(body, synchronous=True)
    job.answer_first = None if options.synchronous else trio.current_time()
    return await submit(context.jobs, job, options)


async def submit_rewrite(body: Any, job: RewriteJob[Any]) -> Response:
    """The answer of a route that submits a job rewriting instances (split, merge)."""
    return json_answer(await _submitted(node(), body, job))


async def _run_job(
    context: NodeContext,
    body: Any,
    plan: ModificationPlan,
    level: Level | None,
    instances: list[str],
    options: SubmitOptions,
    origin: Origin,
) -> dict[str, Any]:
    plan = await complete_plan(context.index, plan)
    modification = ResourceModification(plan, level, origin)
    return await _submitted(context, body, ResourceModificationJob(modification, instances), options)


async def rewrite_resource(
    context: NodeContext, level: Level, public_id: str, action: str, body: Any, origin: Origin
) -> dict[str, Any]:
    """POST /{patients,studies,series}/{id}/{modify,anonymize} with its parsed body: the job's answer."""
    plan = _plan(context, action, body, level, job=True)
    instances = await instances_below(context.services, public_id, level)
    options = submit_options(body, synchronous=True)
    return await _run_job(context, body, plan, level, instances, options, origin)


@blueprint.route(
    "/<any(patients, studies, series):plural>/<public_id>/<any(modify, anonymize):action>", methods=["POST"]
)
async def modify_resource(plural: str, public_id: str, action: str) -> Response:
    """The app's route, for its URL map and for a request the fast path leaves to it."""
    body = await json_body()
    return json_answer(
        await rewrite_resource(node(), Level.from_plural(plural), public_id, action, body, request_origin())
    )


@blueprint.route("/tools/<any('bulk-modify', 'bulk-anonymize'):action>", methods=["POST"])
async def bulk_modify(action: str) -> Response:
    body = await json_body()
    plan = _plan(node(), action, body, None if action.endswith("anonymize") else bulk_level(body), job=True)
    resources = string_list(
        body.get("Resources"), ErrorCode.BAD_FILE_FORMAT, "List of strings expected in field: Resources"
    )
    options = submit_options(body, synchronous=True)  # a bad field is refused before an unknown resource
    instances = await instances_of(node().services, resources)
    return json_answer(await _run_job(node(), body, plan, None, instances, options, request_origin()))
