"""/peers: the Orthanc peers, listed and changed through REST (their store and system routes are
in :mod:`.transfers`)."""

from __future__ import annotations

from quart import Blueprint

from ...errors import NoAnswer
from ..answers import node
from .remote_registry import add_registry_routes

blueprint = Blueprint("peers", __name__)

#: What GET /peers/{id} lists.
_SUB_ROUTES = ("configuration", "store", "store-straight", "system")

add_registry_routes(blueprint, "/peers", lambda: node().remotes.peers, _SUB_ROUTES, NoAnswer)
