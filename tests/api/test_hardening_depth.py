"""Deep nesting fails its request, never the node: DICOM sequences (ingest, create-dicom,
modify of a stored file) and JSON bodies are refused beyond their bounds, and a worker
that exhausts the stack or the memory fails its caller with an Orthanc error.

The boundary cases run on a node in-process; the requests that used to kill the node
run against a node in a subprocess whose memory is capped.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.context import NodeContext
from node.errors import ErrorCode, OrthancError
from node.nesting import MAX_JSON_DEPTH, MAX_SEQUENCE_DEPTH
from node.offload import offload
from tests.support.datasets import make_dicom
from tests.support.jobs import finished
from tests.support.process import node_process, write_config
from tests.support.rest import assert_error

CONTENT_SEQUENCE = 0x0040A730
VALUE_TYPE = 0x0040A040
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
_UNDEFINED = 0xFFFFFFFF
MEMORY_CAP = 1536 * 1024 * 1024  # the subprocess node's address space
CRASH_DEPTH = 300  # sequences: what used to take pydicom's writer down
JSON_CRASH_DEPTH = 100_000  # nested arrays: what used to make json.loads raise RecursionError


def _delimiter(element: int, length: int = 0) -> bytes:
    return struct.pack("<HHI", 0xFFFE, element, length)


def nested_sequences(depth: int, *, undefined_length: bool) -> bytes:
    """``depth`` ContentSequences, each the only item's content of the one above (explicit VR
    little endian), built bottom-up without recursion."""
    inner = struct.pack("<HH2sH", VALUE_TYPE >> 16, VALUE_TYPE & 0xFFFF, b"CS", 4) + b"TEXT"
    head = struct.pack("<HH2sH", CONTENT_SEQUENCE >> 16, CONTENT_SEQUENCE & 0xFFFF, b"SQ", 0)
    for _ in range(depth):
        if undefined_length:
            item = _delimiter(_ITEM, _UNDEFINED) + inner + _delimiter(_ITEM_END)
            inner = head + struct.pack("<I", _UNDEFINED) + item + _delimiter(_SEQUENCE_END)
        else:
            item = _delimiter(_ITEM, len(inner)) + inner
            inner = head + struct.pack("<I", len(item)) + item
    return inner


def deep_file(depth: int, *, undefined_length: bool = True, **tags: Any) -> bytes:
    """A valid Part-10 file whose last element nests ``depth`` sequences (every other tag comes before it)."""
    return make_dicom(**tags) + nested_sequences(depth, undefined_length=undefined_length)


def nested_content(depth: int) -> dict[str, Any]:
    """The JSON of ``depth`` nested ContentSequences, as create-dicom and Replace take it."""
    value: dict[str, Any] = {"ValueType": "TEXT"}
    for _ in range(depth):
        value = {"ContentSequence": [value]}
    return value


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def content_depth(tags: dict[str, Any]) -> int:
    depth, level = 0, tags
    while "ContentSequence" in level:
        depth += 1
        level = level["ContentSequence"][0]
    return depth


async def replace_stored_file(http: httpx.AsyncClient, storage: Path, instance: str, data: bytes) -> None:
    """Put ``data`` in place of an instance's file, as if an older version had stored it."""
    file_uuid = (await http.get(f"/instances/{instance}")).json()["FileUuid"]
    path = storage / file_uuid[:2] / file_uuid[2:4] / file_uuid
    temporary = path.with_suffix(".test")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- in-process: the bounds themselves ------------------------------------------------------


@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined-length", "defined-length"])
async def test_ingest_refuses_one_level_beyond_the_bound(http: httpx.AsyncClient, undefined_length: bool) -> None:
    deepest = await http.post("/instances", content=deep_file(MAX_SEQUENCE_DEPTH, undefined_length=undefined_length))
    assert deepest.status_code == 200, deepest.text
    tags = (await http.get(f"/instances/{deepest.json()['ID']}/simplified-tags")).json()
    assert content_depth(tags) == MAX_SEQUENCE_DEPTH

    too_deep = deep_file(MAX_SEQUENCE_DEPTH + 1, undefined_length=undefined_length, patient_id="DEEP")
    body = assert_error(await http.post("/instances", content=too_deep), 400, ErrorCode.BAD_FILE_FORMAT)
    assert f"nested deeper than {MAX_SEQUENCE_DEPTH} levels" in body["Details"]
    assert (await http.get("/statistics")).json()["CountInstances"] == 1


async def test_create_dicom_bounds_sequences(http: httpx.AsyncClient) -> None:
    created = await http.post("/tools/create-dicom", json={"Tags": {"PatientName": "OK", **nested_content(MAX_SEQUENCE_DEPTH)}})
    assert created.status_code == 200, created.text
    tags = (await http.get(f"/instances/{created.json()['ID']}/simplified-tags")).json()
    assert content_depth(tags) == MAX_SEQUENCE_DEPTH

    body = {"Tags": {"PatientName": "DEEP", **nested_content(MAX_SEQUENCE_DEPTH + 1)}}
    refused = assert_error(await http.post("/tools/create-dicom", json=body), 400, ErrorCode.BAD_FILE_FORMAT)
    assert f"nested deeper than {MAX_SEQUENCE_DEPTH} levels" in refused["Details"]
    assert (await http.get("/statistics")).json()["CountInstances"] == 1


async def test_modify_bounds_replaced_sequences(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom())).json()
    deepest = {"Replace": nested_content(MAX_SEQUENCE_DEPTH)}
    answer = await http.post(f"/instances/{stored['ID']}/modify", json=deepest)
    assert answer.status_code == 200 and answer.content.startswith(b"\0" * 128 + b"DICM")
    too_deep = {"Replace": nested_content(MAX_SEQUENCE_DEPTH + 1)}
    for path in (f"/instances/{stored['ID']}/modify", f"/studies/{stored['ParentStudy']}/modify"):
        assert_error(await http.post(path, json=too_deep), 400, ErrorCode.BAD_FILE_FORMAT)
    assert (await http.get("/statistics")).json()["CountInstances"] == 1


async def test_json_bodies_beyond_the_bound(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom())).json()
    deepest = {"Level": "Study", "Query": {}, "Extra": nested_arrays(MAX_JSON_DEPTH - 1).decode()}
    assert (await http.post("/tools/find", json=deepest)).json() == [stored["ParentStudy"]]
    # Brackets inside strings are text, not structure.
    quoted = {"Level": "Study", "Query": {"PatientName": "[" * (MAX_JSON_DEPTH + 1) + "*"}}
    assert (await http.post("/tools/find", json=quoted)).json() == []

    too_deep = b'{"Level": "Study", "Query": {}, "Extra": ' + nested_arrays(MAX_JSON_DEPTH) + b"}"
    assert_error(await http.post("/tools/find", content=too_deep), 400, ErrorCode.BAD_REQUEST)
    answer = await http.post(f"/studies/{stored['ParentStudy']}/modify", content=too_deep)
    body = assert_error(answer, 400, ErrorCode.BAD_FILE_FORMAT)
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in body["Details"]


async def test_modify_of_a_stored_file_too_deep_fails_alone(http: httpx.AsyncClient, node: NodeContext) -> None:
    """A file stored before the bound existed fails the requests and jobs that must decode it."""
    stored = (await http.post("/instances", content=make_dicom())).json()
    await replace_stored_file(http, node.files.root, stored["ID"], deep_file(MAX_SEQUENCE_DEPTH + 1))
    assert_error(await http.get(f"/instances/{stored['ID']}/tags"), 400, ErrorCode.BAD_FILE_FORMAT)
    assert_error(await http.post(f"/instances/{stored['ID']}/modify", json={}), 400, ErrorCode.BAD_FILE_FORMAT)
    job = (await http.post(f"/studies/{stored['ParentStudy']}/modify", json={"Asynchronous": True})).json()
    await finished(node, job["ID"])
    state = (await http.get(f"/jobs/{job['ID']}")).json()
    assert state["State"] == "Failure" and state["ErrorCode"] == ErrorCode.BAD_FILE_FORMAT
    assert (await http.get(f"/instances/{stored['ID']}/file")).status_code == 200  # the file itself is served


# -- the worker boundary ----------------------------------------------------------------------


def _recurse(depth: int = 0) -> int:
    return _recurse(depth + 1) + 1


def _allocate_everything() -> bytes:
    return bytes(sys.maxsize // 2)


def _bug() -> None:
    raise ValueError("a bug stays a bug")


async def test_offload_turns_exhaustion_into_orthanc_errors() -> None:
    with pytest.raises(OrthancError) as stack:
        await offload(_recurse)
    assert stack.value.code is ErrorCode.INTERNAL_ERROR and stack.value.http_status == 500
    with pytest.raises(OrthancError) as memory:
        await offload(_allocate_everything)
    assert memory.value.code is ErrorCode.NOT_ENOUGH_MEMORY
    with pytest.raises(ValueError, match="a bug stays a bug"):  # nothing else is caught
        await offload(_bug)


# -- subprocess: the requests that used to kill the node --------------------------------------


async def test_deep_requests_fail_and_the_node_keeps_serving(tmp_path: Path) -> None:
    config, url = write_config(tmp_path)
    async with (
        node_process(config, url, tmp_path / "node.log", memory_limit=MEMORY_CAP) as process,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):

        async def still_serving() -> None:
            assert process.returncode is None
            assert (await http.get("/system")).status_code == 200

        stored = (await http.post("/instances", content=make_dicom())).json()
        for undefined_length in (True, False):
            data = deep_file(CRASH_DEPTH, undefined_length=undefined_length, patient_id="DEEP")
            assert_error(await http.post("/instances", content=data), 400, ErrorCode.BAD_FILE_FORMAT)
            await still_serving()

        body = {"Tags": {"PatientName": "DEEP", **nested_content(CRASH_DEPTH)}}
        assert len(httpx.Request("POST", url, json=body).read()) < 16 * 1024  # a small request
        assert_error(await http.post("/tools/create-dicom", json=body), 400, ErrorCode.BAD_REQUEST)  # unparsable
        await still_serving()

        arrays = nested_arrays(JSON_CRASH_DEPTH)
        assert_error(await http.post("/tools/find", content=arrays), 400, ErrorCode.BAD_REQUEST)
        await still_serving()
        replace = b'{"Replace": {"StudyDescription": ' + arrays + b"}}"
        for path in (f"/instances/{stored['ID']}/modify", f"/studies/{stored['ParentStudy']}/modify"):
            assert_error(await http.post(path, content=replace), 400, ErrorCode.BAD_FILE_FORMAT)
            await still_serving()

        await replace_stored_file(http, tmp_path / "storage", stored["ID"], deep_file(CRASH_DEPTH))
        assert_error(await http.post(f"/instances/{stored['ID']}/modify", json={}), 400, ErrorCode.BAD_FILE_FORMAT)
        await still_serving()
        answer = await http.post(f"/studies/{stored['ParentStudy']}/modify", json={"Replace": {"StudyID": "2"}})
        assert_error(answer, 400, ErrorCode.BAD_FILE_FORMAT)  # the synchronous job failed
        await still_serving()
        assert_error(await http.get(f"/instances/{stored['ID']}/tags"), 400, ErrorCode.BAD_FILE_FORMAT)
        await still_serving()
        assert (await http.get("/statistics")).json()["CountInstances"] == 1
