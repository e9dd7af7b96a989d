"""/shared-tags, /instances-tags, /module and /module-patient of a resource (full format by default)."""

from __future__ import annotations

from quart import Blueprint, Response

from ...dicom.ids import Level
from ...dicom.json_view import TagFormat
from ...services.tag_views import TagViews
from ..answers import json_answer, node, tag_format

blueprint = Blueprint("resource_tags", __name__)

_PARENTS = "<any(patients, studies, series):plural>"


def _views() -> TagViews:
    return TagViews(node().index, node().resources)


@blueprint.route(f"/{_PARENTS}/<public_id>/shared-tags")
async def shared_tags(plural: str, public_id: str) -> Response:
    return json_answer(await _views().shared_tags(public_id, Level.from_plural(plural), tag_format(TagFormat.FULL)))


@blueprint.route(f"/{_PARENTS}/<public_id>/instances-tags")
async def instances_tags(plural: str, public_id: str) -> Response:
    return json_answer(await _views().instances_tags(public_id, Level.from_plural(plural), tag_format(TagFormat.FULL)))


@blueprint.route("/<any(patients, studies, series, instances):plural>/<public_id>/module")
async def module(plural: str, public_id: str) -> Response:
    level = Level.from_plural(plural)
    return json_answer(await _views().module(public_id, level, level, tag_format(TagFormat.FULL)))


@blueprint.route("/studies/<public_id>/module-patient")
async def module_patient(public_id: str) -> Response:
    answer = await _views().module(public_id, Level.STUDY, Level.PATIENT, tag_format(TagFormat.FULL))
    return json_answer(answer)
