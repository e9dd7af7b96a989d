"""GET /tools/dicom-conformance: the DICOM services of the node, as plain text.

Written from what the node negotiates (node.net.ul.negotiate), so that the statement
follows the code: the storage SOP classes, the query/retrieve models, and the transfer
syntaxes accepted at the moment of the request (AcceptedTransferSyntaxes).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.uid import UID_dictionary
from quart import Blueprint, Response

from ...net.scp import accepted_transfer_syntaxes
from ...net.ul.negotiate import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STORAGE_SOP_CLASSES,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    VERIFICATION,
)
from ..answers import node, text_answer

blueprint = Blueprint("conformance", __name__)

_NAME_WIDTH = 60


def _name(uid: str) -> str:
    entry = UID_dictionary.get(uid)
    return (entry[4] or entry[0]) if entry else uid


def _table(uids: Iterable[str]) -> list[str]:
    rows = sorted((_name(uid), uid) for uid in uids)
    return [f"  {name:<{_NAME_WIDTH}} | {uid}" for name, uid in rows]


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", "", title, "-" * len(title), "", *lines]


def conformance_statement(storage_syntaxes: Iterable[str], accept_unknown: bool) -> str:
    """The statement for the current settings."""
    unknown = ["", "  Any other SOP class is accepted too (UnknownSopClassAccepted)."] if accept_unknown else []
    lines = ["DICOM services of this node", "=" * len("DICOM services of this node")]
    lines += _section("Verification (C-ECHO), as SCP and as SCU", _table([VERIFICATION]))
    lines += _section("Storage (C-STORE), as SCP and as SCU", _table(STORAGE_SOP_CLASSES) + unknown)
    lines += _section("Query (C-FIND), as SCP and as SCU", _table([PATIENT_ROOT_FIND, STUDY_ROOT_FIND]))
    lines += _section("Retrieve (C-MOVE), as SCP and as SCU", _table([PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE]))
    lines += _section("Retrieve (C-GET), as SCP", _table([PATIENT_ROOT_GET, STUDY_ROOT_GET]))
    lines += _section(
        "Transfer syntaxes",
        [
            "Storage presentation contexts are accepted with these transfer syntaxes",
            "(AcceptedTransferSyntaxes), Explicit VR Little Endian preferred:",
            "",
            *_table(storage_syntaxes),
            "",
            "Verification and query/retrieve contexts use the uncompressed ones.",
            "No extended negotiation.",
        ],
    )
    return "\n".join(lines) + "\n"


@blueprint.route("/tools/dicom-conformance")
async def dicom_conformance() -> Response:
    runtime = node().runtime
    syntaxes = accepted_transfer_syntaxes(runtime.accepted_transfer_syntaxes)
    return text_answer(conformance_statement(syntaxes, runtime.unknown_sop_class_accepted))
