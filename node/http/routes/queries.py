"""Query/retrieve against remote modalities: ``/modalities/{id}/query`` and the ``/queries`` it
creates, the retrieves (``DicomMoveScu`` jobs, and ``DicomGetScu`` ones beyond Orthanc), and
the older synchronous routes (``find-patient``... ``find``, ``find-worklist``).

The queries themselves are in :mod:`node.net.find_scu`, the jobs in
:mod:`node.transfers.move_scu`; here are the bodies as Orthanc reads them and its answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset
from quart import Blueprint, Response, request

from ...body_fields import integer, optional_string
from ...dicom.encodings import character_set_of
from ...dicom.ids import Level, parse_level
from ...dicom.json_view import TagFormat
from ...dicom.tag_numbers import (
    ACCESSION_NUMBER,
    MODALITIES_IN_STUDY,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    SERIES_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from ...dicom.tags import MAIN_TAGS, element_text, parse_tag
from ...errors import ErrorCode, OrthancError
from ...jobs.submit import submit, submit_options
from ...nesting import JsonTooDeep, load_json
from ...net.find_scu import (
    MODALITY_WORKLIST_FIND,
    RETRIEVE_KEYS,
    RemoteCall,
    answer_json,
    find,
    identifier_of,
    keys_json,
    parse_query_keys,
    run_find,
)
from ...remotes.modality import RemoteModality
from ...remotes.queries import StoredQuery
from ...transfers.move_scu import C_GET, C_MOVE, Item, RetrieveRequest, item_of, retrieve_job
from ..answers import body_bytes, flag, json_answer, json_body, node, tag_format, text_answer

blueprint = Blueprint("queries", __name__)

_OBJECT_EXPECTED = "Must provide a JSON object"
_MOVE_BODY = "Must provide a JSON body containing fields Resources and Level"
_RETRIEVE_METHODS = (C_MOVE, C_GET)
# The sub-routes of an answer: content and retrieve, then the queries of the levels below it
# (Orthanc lists the study one as "query-study", though the route is "query-studies").
_CHILD_ROUTES = {Level.STUDY: "query-study", Level.SERIES: "query-series", Level.INSTANCE: "query-instances"}
_CHILD_LEVELS = {"query-studies": Level.STUDY, "query-series": Level.SERIES, "query-instances": Level.INSTANCE}


# -- what every route needs ---------------------------------------------------------------------


def _character_set() -> str:
    return character_set_of(node().runtime.default_encoding)


def _remote_call(modality: RemoteModality, local_aet: str | None, timeout: float | None) -> RemoteCall:
    dicom = node().settings.dicom
    return RemoteCall(
        modality, modality.calling_aet(local_aet, dicom.aet), modality.scu_timeout(timeout, dicom.scu_timeout)
    )


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _OBJECT_EXPECTED)
    return body


def _local_aet(body: Mapping[str, Any]) -> str | None:
    return optional_string(body.get("LocalAet"), ErrorCode.BAD_FILE_FORMAT, "The field LocalAet must contain a string")


def _timeout(body: Mapping[str, Any]) -> float | None:
    """The ``Timeout`` of a body, in seconds (None when absent or 0: the modality's, else DicomScuTimeout)."""
    if "Timeout" not in body:
        return None
    seconds = integer(body["Timeout"], ErrorCode.BAD_FILE_FORMAT, "Integer value expected in field: Timeout")
    if seconds < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Unsigned integer value expected in field: Timeout")
    return float(seconds) or None


def _level(text: str) -> Level:
    level = parse_level(text)
    if level is None:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    return level


def _query_answer(query_id: str) -> Response:
    return json_answer({"ID": query_id, "Path": f"/queries/{query_id}"})


async def _run_query(
    name: str,
    modality: RemoteModality,
    level: Level,
    keys: dict[int, str],
    *,
    normalize: bool,
    local_aet: str | None,
    timeout: float | None,
) -> Response:
    """Ask the remote now (the request waits), keep the query and its answers, answer its ID."""
    answers = await find(
        _remote_call(modality, local_aet, timeout), level, keys, normalize=normalize, character_set=_character_set()
    )
    stored = StoredQuery(name, modality, level, keys, normalize, local_aet, timeout, tuple(answers))
    return _query_answer(node().queries.add(stored))


# -- /modalities/{id}/query and /queries ----------------------------------------------------------


@blueprint.route("/modalities/<name>/query", methods=["POST"])
async def query(name: str) -> Response:
    body = _body_object(await _json_or_nothing())
    if not isinstance(body.get("Level"), str):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The JSON body must contain field Level")
    normalize = body.get("Normalize", True)
    if not isinstance(normalize, bool):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The field Normalize must contain a Boolean")
    if not isinstance(body.get("Query", {}), dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The field Query must contain a JSON object")
    modality = node().remotes.modalities.get(name)
    level = _level(body["Level"])
    keys = parse_query_keys(body.get("Query", {}))
    local_aet, timeout = _local_aet(body), _timeout(body)
    return await _run_query(name, modality, level, keys, normalize=normalize, local_aet=local_aet, timeout=timeout)


@blueprint.route("/queries")
async def list_queries() -> Response:
    return json_answer(node().queries.ids())


@blueprint.route("/queries/<query_id>", methods=["GET", "DELETE"])
async def one_query(query_id: str) -> Response:
    if request.method == "DELETE":
        node().queries.delete(query_id)
        return text_answer("")
    node().queries.get(query_id)
    return json_answer(["answers", "level", "modality", "query", "retrieve"])


@blueprint.route("/queries/<query_id>/answers")
async def answers(query_id: str) -> Response:
    stored = node().queries.get(query_id)
    if flag("expand"):
        fmt = tag_format(TagFormat.FULL)
        return json_answer([answer_json(answer, fmt) for answer in stored.answers])
    return json_answer([str(index) for index in range(len(stored.answers))])


def _index(text: str) -> int:
    """An answer's index in the URI: a non-negative integer, else error 5 as Orthanc says."""
    if not (text.isascii() and text.isdigit()):
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, "Syntax error in some user-supplied data")
    return int(text)


@blueprint.route("/queries/<query_id>/answers/<index>")
async def answer_routes(query_id: str, index: str) -> Response:
    stored = node().queries.get(query_id)
    stored.answer(_index(index))
    below = [route for level, route in _CHILD_ROUTES.items() if level > stored.level]
    return json_answer(["content", "retrieve", *below])


@blueprint.route("/queries/<query_id>/answers/<index>/content")
async def answer_content(query_id: str, index: str) -> Response:
    answer = node().queries.get(query_id).answer(_index(index))
    return json_answer(answer_json(answer, tag_format(TagFormat.FULL)))


@blueprint.route("/queries/<query_id>/query")
async def query_keys(query_id: str) -> Response:
    return json_answer(keys_json(node().queries.get(query_id).keys, tag_format(TagFormat.FULL)))


@blueprint.route("/queries/<query_id>/level")
async def query_level(query_id: str) -> Response:
    return text_answer(node().queries.get(query_id).level.title)


@blueprint.route("/queries/<query_id>/modality")
async def query_modality(query_id: str) -> Response:
    return text_answer(node().queries.get(query_id).modality_name)


def _text_of(answer: Dataset, tag: int) -> str | None:
    """A value of an answer as text; None when it has none (absent, binary, a sequence)."""
    element = answer.get(tag)
    return element_text(element) if element is not None else None


@blueprint.route(
    "/queries/<query_id>/answers/<index>/<any('query-studies', 'query-series', 'query-instances'):route>",
    methods=["POST"],
)
async def child_query(query_id: str, index: str, route: str) -> Response:
    """A query one level (or more) below an answer, constrained by the answer's identifiers.

    Unlike Orthanc, the child query uses the LocalAet and Timeout of its parent unless its body
    gives them: asking a remote the second time as another AE title would rarely be wanted.
    """
    parent = node().queries.get(query_id)
    answer = parent.answer(_index(index))
    level = _CHILD_LEVELS[route]
    if level <= parent.level:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    body = _body_object(await _json_or_nothing())
    keys = parse_query_keys(body["Query"]) if "Query" in body else {}
    for tag in RETRIEVE_KEYS[parent.level]:
        text = _text_of(answer, tag)
        if text is None:
            raise OrthancError(ErrorCode.INEXISTENT_TAG)
        keys[tag] = text
    timeout = _timeout(body) or parent.timeout
    local_aet = _local_aet(body) or parent.local_aet
    modality = node().remotes.modalities.get(parent.modality_name)
    return await _run_query(
        parent.modality_name, modality, level, keys, normalize=parent.normalize, local_aet=local_aet, timeout=timeout
    )


# -- retrieves ------------------------------------------------------------------------------------


async def _retrieve_body() -> tuple[dict[str, Any], str | None]:
    """A retrieve's body: a JSON object, a target AET as plain text, or nothing; (fields, target)."""
    data = await body_bytes()
    if not data.strip():
        return {}, None
    try:
        parsed = load_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}, data.decode("utf-8", "replace").strip()
    except JsonTooDeep as error:
        raise OrthancError(
            ErrorCode.BAD_FILE_FORMAT, f"The body of the request is not accepted: {error.msg}"
        ) from error
    if not isinstance(parsed, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The body must be a JSON object, or a target AET as plain text")
    target = parsed.get("TargetAet")
    if target is not None and not isinstance(target, str):
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE)
    return parsed, target


def _retrieve_method(body: Mapping[str, Any]) -> str:
    """``RetrieveMethod`` (ours, as in later Orthanc versions): C-MOVE by default, or C-GET."""
    method = body.get("RetrieveMethod", C_MOVE)
    if method not in _RETRIEVE_METHODS:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'RetrieveMethod must be "C-MOVE" or "C-GET"')
    return str(method)


def _content_format(body: Mapping[str, Any]) -> TagFormat:
    """How the job shows its items: ``Simplify`` or ``Full`` in the body, else short (hex keys)."""
    if body.get("Simplify") is True:
        return TagFormat.SIMPLIFY
    if body.get("Full") is True:
        return TagFormat.FULL
    return TagFormat.SHORT


def _retrieve_request(
    modality: RemoteModality,
    body: Mapping[str, Any],
    *,
    local_aet: str | None,
    timeout: float | None,
    target_aet: str | None,
    method: str,
) -> RetrieveRequest:
    settings = node().settings
    remote = _remote_call(modality, local_aet, timeout)
    temporary = settings.storage.temporary_directory
    return RetrieveRequest(
        modality=modality,
        local_aet=remote.calling_aet,
        target_aet=target_aet or settings.dicom.aet,
        timeout=remote.timeout,
        character_set=_character_set(),
        method=method,
        query_format=_content_format(body),
        retry=settings.transfers.retry,
        max_dataset=settings.dicom.maximum_dataset_size,
        spool_directory=str(temporary) if temporary else None,
    )


async def _submit_retrieve(body: Mapping[str, Any], retrieve: RetrieveRequest, items: list[Item]) -> Response:
    options = submit_options(dict(body), synchronous=True)
    return json_answer(await submit(node().jobs, retrieve_job(retrieve, items), options))


def _answer_keys(answer: Dataset) -> dict[int, str]:
    keys = {}
    for element in answer:
        text = element_text(element)
        if text is not None:
            keys[int(element.tag)] = text
    return keys


async def _retrieve_answers(query_id: str, index: str | None) -> Response:
    body, target = await _retrieve_body()
    method = _retrieve_method(body)
    # Orthanc reads this Timeout more loosely than the others: a negative one means none.
    timeout = integer(body.get("Timeout", 0), ErrorCode.BAD_PARAMETER_TYPE)
    stored = node().queries.get(query_id)
    chosen = [stored.answer(_index(index))] if index is not None else list(stored.answers)
    items = [item_of(_answer_keys(answer), stored.level) for answer in chosen]
    retrieve = _retrieve_request(
        stored.modality,
        body,
        local_aet=stored.local_aet,
        timeout=float(timeout) if timeout > 0 else stored.timeout,
        target_aet=target,
        method=method,
    )
    return await _submit_retrieve(body, retrieve, items)


@blueprint.route("/queries/<query_id>/retrieve", methods=["POST"])
async def retrieve_all(query_id: str) -> Response:
    return await _retrieve_answers(query_id, None)


@blueprint.route("/queries/<query_id>/answers/<index>/retrieve", methods=["POST"])
async def retrieve_one(query_id: str, index: str) -> Response:
    return await _retrieve_answers(query_id, index)


def _resource_keys(value: Any) -> dict[int, str]:
    """One element of ``Resources``: tags (names or hex) to strings."""
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Resources elements must be JSON objects")
    keys = {}
    for name, text in value.items():
        tag = int(parse_tag(name))
        if not isinstance(text, str):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Resources elements must map DICOM tags to strings")
        keys[tag] = text
    return keys


async def _retrieve_resources(name: str, method: str) -> Response:
    """``/modalities/{id}/move`` (and ``/get``): a job retrieving each of ``Resources`` at ``Level``."""
    body = await json_body()
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("Resources"), list)
        or not isinstance(body.get("Level"), str)
    ):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _MOVE_BODY)
    level = _level(body["Level"])
    local_aet = optional_string(body.get("LocalAet"), ErrorCode.BAD_PARAMETER_TYPE)
    target = optional_string(body.get("TargetAet"), ErrorCode.BAD_PARAMETER_TYPE) if method == C_MOVE else None
    modality = node().remotes.modalities.get(name)
    timeout = _timeout(body)
    items = []
    for resource in body["Resources"]:
        keys = _resource_keys(resource)
        keys.pop(QUERY_RETRIEVE_LEVEL, None)  # the request's Level, whatever the element says
        items.append(item_of(keys, level))
    retrieve = _retrieve_request(modality, body, local_aet=local_aet, timeout=timeout, target_aet=target, method=method)
    return await _submit_retrieve(body, retrieve, items)


@blueprint.route("/modalities/<name>/move", methods=["POST"])
async def move(name: str) -> Response:
    return await _retrieve_resources(name, C_MOVE)


@blueprint.route("/modalities/<name>/get", methods=["POST"])
async def get(name: str) -> Response:
    return await _retrieve_resources(name, C_GET)


# -- the older synchronous finds -------------------------------------------------------------------


def _scalar_text(name: str, value: Any) -> str:
    """A value of an older find's body as text, as Orthanc reads JSON scalars."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"A string value is expected for {name}")


class _NoAnswer(Exception):
    """The body is not one these routes take: Orthanc answers 400 with an empty body."""


def _merged(body: Any, level: Level, inherited: Mapping[int, str] | None = None) -> dict[int, str]:
    """The main tags of ``level`` (empty: asked for), the body's values over them, then ``inherited``."""
    if not isinstance(body, dict):
        raise _NoAnswer
    keys = dict.fromkeys(MAIN_TAGS[level], "")
    for name, value in body.items():
        keys[int(parse_tag(name))] = _scalar_text(name, value)
    keys.update(inherited or {})
    return keys


_CARRIED = {
    Level.PATIENT: (),
    Level.STUDY: (PATIENT_ID, ACCESSION_NUMBER, MODALITIES_IN_STUDY),
    Level.SERIES: (PATIENT_ID, ACCESSION_NUMBER, STUDY_INSTANCE_UID),
    Level.INSTANCE: (PATIENT_ID, ACCESSION_NUMBER, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID),
}
# What an older find below the patient level needs besides a patient ID or an accession number,
# each longer than this.
_SHORTEST_IDENTIFIER = 2
_REQUIRED_ABOVE: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (),
    Level.STUDY: (),
    Level.SERIES: (STUDY_INSTANCE_UID,),
    Level.INSTANCE: (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID),
}


def _level_keys(keys: Mapping[int, str], level: Level) -> dict[int, str]:
    """Only the main tags of ``level``, plus the identifiers of the levels above that it carries."""
    selected = {tag: value for tag, value in keys.items() if tag in MAIN_TAGS[level]}
    for tag in _CARRIED[level]:
        if tag in keys:
            selected[tag] = keys[tag]
    return selected


def _long_enough(keys: Mapping[int, str], *tags: int) -> bool:
    return all(len(keys.get(tag, "")) > _SHORTEST_IDENTIFIER for tag in tags)


def _constrained(keys: Mapping[int, str], level: Level) -> bool:
    """Orthanc refuses the older finds that would list a whole archive."""
    if level is Level.PATIENT:
        return True
    patient_or_accession = _long_enough(keys, PATIENT_ID) or _long_enough(keys, ACCESSION_NUMBER)
    return patient_or_accession and _long_enough(keys, *_REQUIRED_ABOVE[level])


async def _find_level(remote: RemoteCall, level: Level, keys: Mapping[int, str]) -> list[Dataset]:
    return await find(remote, level, _level_keys(keys, level), character_set=_character_set())


def _simplified(answers: list[Dataset]) -> list[dict[str, Any]]:
    return [answer_json(answer, TagFormat.SIMPLIFY) for answer in answers]


_FIND_ROUTES = {
    "find-patient": Level.PATIENT,
    "find-study": Level.STUDY,
    "find-series": Level.SERIES,
    "find-instance": Level.INSTANCE,
}


@blueprint.route(
    "/modalities/<name>/<any('find-patient', 'find-study', 'find-series', 'find-instance'):route>", methods=["POST"]
)
async def find_level(name: str, route: str) -> Response:
    level = _FIND_ROUTES[route]
    try:
        keys = _merged(await _json_or_nothing(), level)
    except _NoAnswer:
        return text_answer("", status=400)
    if not _constrained(keys, level):
        return text_answer("", status=400)
    remote = _remote_call(node().remotes.modalities.get(name), None, None)
    return json_answer(_simplified(await _find_level(remote, level, keys)))


async def _json_or_nothing() -> Any:
    """The body as JSON; None when it is not JSON (these routes then answer an empty 400)."""
    data = await body_bytes()
    try:
        return load_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError, JsonTooDeep):
        return None


def _inherited(answer: Dataset, *tags: int) -> dict[int, str]:
    """The values of ``tags`` that a parent's answer has, for the queries below it."""
    values = {tag: _text_of(answer, tag) for tag in tags}
    return {tag: text for tag, text in values.items() if text is not None}


@blueprint.route("/modalities/<name>/find", methods=["POST"])
async def find_tree(name: str) -> Response:
    """Patients, each with its studies, each with its series: a query per level and per parent."""
    body = await _json_or_nothing()
    try:
        patient_keys = _merged(body, Level.PATIENT)
    except _NoAnswer:
        return text_answer("", status=400)
    remote = _remote_call(node().remotes.modalities.get(name), None, None)
    tree = []
    for patient in await _find_level(remote, Level.PATIENT, patient_keys):
        studies = []
        study_keys = _merged(body, Level.STUDY, _inherited(patient, PATIENT_ID))
        for study in await _find_level(remote, Level.STUDY, study_keys):
            inherited = _inherited(study, PATIENT_ID, STUDY_INSTANCE_UID)
            series = await _find_level(remote, Level.SERIES, _merged(body, Level.SERIES, inherited))
            studies.append({**answer_json(study, TagFormat.SIMPLIFY), "Series": _simplified(series)})
        tree.append({**answer_json(patient, TagFormat.SIMPLIFY), "Studies": studies})
    return json_answer(tree)


@blueprint.route("/modalities/<name>/find-worklist", methods=["POST"])
async def find_worklist(name: str) -> Response:
    """A C-FIND in the Modality Worklist model, its body the query (sequences as lists of items)."""
    body = await _json_or_nothing()
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _OBJECT_EXPECTED)
    identifier = identifier_of(body, _character_set())
    remote = _remote_call(node().remotes.modalities.get(name), None, None)
    return json_answer(_simplified(await run_find(remote, identifier, MODALITY_WORKLIST_FIND)))
