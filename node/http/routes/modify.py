"""/modify and /anonymize: of one instance (the file is answered, not stored), or as a job."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ...dicom.ids import Level
from ...dicom.modification import ModificationPlan, bulk_level, parse_anonymize_request, parse_modify_request
from ...errors import ErrorCode, OrthancError
from ...jobs.submit import SubmitOptions, submit, submit_options
from ...jobs.types.modification import ResourceModificationJob, RewriteJob
from ...services.modify import ResourceModification, complete_plan, instances_of, modified_instance
from ..answers import jobs_engine, json_answer, json_body, node, request_origin

blueprint = Blueprint("modify", __name__)


def _plan(action: str, body: Any, level: Level | None, *, job: bool) -> ModificationPlan:
    creator = node().config["DefaultPrivateCreator"] or ""
    if action.endswith("anonymize"):
        return parse_anonymize_request(body, default_private_creator=creator, job=job)
    return parse_modify_request(body, level=level, default_private_creator=creator, job=job)


@blueprint.route("/instances/<public_id>/<any(modify, anonymize):action>", methods=["POST"])
async def modify_instance(public_id: str, action: str) -> Response:
    plan = _plan(action, await json_body(), None, job=False)
    await node().resources.get(public_id, Level.INSTANCE)
    plan = await complete_plan(node().index, plan)
    return Response(await modified_instance(node(), public_id, plan), content_type="application/dicom")


async def submit_rewrite(body: Any, job: RewriteJob[Any], options: SubmitOptions | None = None) -> Response:
    """Submit a job that rewrites instances (modify, anonymize, split, merge): synchronous by default."""
    options = options or submit_options(body, synchronous=True)
    return json_answer(await submit(jobs_engine(), job, options))


async def _run_job(body: Any, plan: ModificationPlan, level: Level | None, resources: list[str]) -> Response:
    options = submit_options(body, synchronous=True)
    instances = await instances_of(node(), resources)
    plan = await complete_plan(node().index, plan)
    modification = ResourceModification(plan, level, request_origin())
    return await submit_rewrite(body, ResourceModificationJob(modification, instances), options)


@blueprint.route(
    "/<any(patients, studies, series):plural>/<public_id>/<any(modify, anonymize):action>", methods=["POST"]
)
async def modify_resource(plural: str, public_id: str, action: str) -> Response:
    level = Level.from_plural(plural)
    body = await json_body()
    plan = _plan(action, body, level, job=True)
    await node().resources.get(public_id, level)
    return await _run_job(body, plan, level, [public_id])


@blueprint.route("/tools/<any('bulk-modify', 'bulk-anonymize'):action>", methods=["POST"])
async def bulk_modify(action: str) -> Response:
    body = await json_body()
    plan = _plan(action, body, None if action.endswith("anonymize") else bulk_level(body), job=True)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "List of strings expected in field: Resources")
    return await _run_job(body, plan, None, resources)
