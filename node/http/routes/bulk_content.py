"""POST /tools/bulk-content: many resources described in one call."""

from __future__ import annotations

from quart import Blueprint, Response

from ...services.bulk_content import BulkContent, parse_bulk_content_request
from ..answers import body_bytes, json_answer, node

blueprint = Blueprint("bulk_content", __name__)


@blueprint.route("/tools/bulk-content", methods=["POST"])
async def bulk_content() -> Response:
    request = parse_bulk_content_request(await body_bytes())
    return json_answer(await BulkContent(node().index, node().resources).describe(request))
