"""What a REST client of the node does in the tests: upload, read back, and check Orthanc's error answers."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pydicom
from pydicom.dataset import Dataset

from .datasets import to_bytes


def assert_error(answer: httpx.Response, status: int, code: int, details: str | None = None) -> dict[str, Any]:
    """The answer is Orthanc's error JSON for ``status`` and error ``code``, naming the request, with
    these ``details`` when given; its body."""
    assert answer.status_code == status, answer.text[:500]
    body = answer.json()
    assert (body["HttpStatus"], body["OrthancStatus"]) == (status, code), body
    assert body["Method"] == answer.request.method and body["Uri"] == answer.request.url.path, body
    assert body["Message"] == body["OrthancError"], body
    if details is not None:
        assert body.get("Details") == details, body
    return body


async def upload(http: httpx.AsyncClient, data: bytes | Dataset) -> dict[str, Any]:
    """POST /instances, which must succeed; its answer (ID, ParentStudy, Status...)."""
    answer = await http.post("/instances", content=to_bytes(data) if isinstance(data, Dataset) else data)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def get_json(http: httpx.AsyncClient, path: str) -> Any:
    """GET ``path``, which must succeed; its JSON."""
    answer = await http.get(path)
    assert answer.status_code == 200, f"{path}: {answer.status_code}"
    return answer.json()


async def post(http: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as it is when it is text (valid JSON or not), else as JSON."""
    return await http.post(path, content=body if isinstance(body, str) else json.dumps(body))


async def count_instances(http: httpx.AsyncClient) -> int:
    return int((await get_json(http, "/statistics"))["CountInstances"])


async def file_of(http: httpx.AsyncClient, instance: str) -> Dataset:
    """The stored file of an instance, parsed."""
    answer = await http.get(f"/instances/{instance}/file")
    assert answer.status_code == 200, answer.text
    return pydicom.dcmread(io.BytesIO(answer.content))


async def metadata_of(http: httpx.AsyncClient, instance: str) -> dict[str, str]:
    """Every metadata of an instance, by name."""
    return dict(await get_json(http, f"/instances/{instance}/metadata?expand"))
