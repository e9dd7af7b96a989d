"""A body over MaximumRequestSize is refused with 413 and the node keeps serving."""

from __future__ import annotations

import httpx
import pytest

from tests.support.datasets import make_dicom
from tests.support.rest import assert_error


@pytest.fixture
def config_overrides() -> dict:
    return {"MaximumRequestSize": 1}


async def test_oversized_body(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/instances", content=b"\0" * (2 * 1024 * 1024)), 413, 8)
    assert (await http.post("/instances", content=make_dicom())).json()["Status"] == "Success"
