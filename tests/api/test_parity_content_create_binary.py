"""Binary values given to /tools/create-dicom as data URIs read back as Orthanc 1.10.1's do.

Only `data:application/octet-stream;base64,` marks binary data: its bytes are stored as
they are, padded to an even length with a NUL whatever the VR (an unknown private tag,
UN, included). Another data URI is an ordinary string, stored as written. Each
expectation was read off the real Orthanc with the same request.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.support.rest import post


def octet_stream(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


async def created_value(http: httpx.AsyncClient, tags: dict[str, Any], path: str) -> bytes:
    answer = await post(http, "/tools/create-dicom", {"Tags": {"PatientName": "BIN", **tags}, "PrivateCreator": "ME"})
    assert answer.status_code == 200, answer.text
    content = await http.get(f"/instances/{answer.json()['ID']}/content/{path}")
    assert content.status_code == 200
    return content.content


@pytest.mark.parametrize(
    ("tag", "path", "payload", "stored"),
    [
        ("ICCProfile", "0028-2000", bytes(range(256)) * 3, bytes(range(256)) * 3),
        ("ICCProfile", "0028-2000", b"\x00\x01\x02\xff\x80", b"\x00\x01\x02\xff\x80\x00"),
        ("RedPaletteColorLookupTableData", "0028-1201", b"\x00\x01\xff\x80", b"\x00\x01\xff\x80"),
        ("0009,1001", "0009-1001", b"\xff\xfe\x80", b"\xff\xfe\x80\x00"),  # UN: padded too
        ("PatientComments", "0010-4000", b"abc\x00def", b"abc "),  # text ends at its NUL
    ],
)
async def test_octet_stream_values_read_back(
    http: httpx.AsyncClient, tag: str, path: str, payload: bytes, stored: bytes
) -> None:
    assert await created_value(http, {tag: octet_stream(payload)}, path) == stored


async def test_other_data_uris_are_plain_strings(http: httpx.AsyncClient) -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    assert await created_value(http, {"ICCProfile": png}, "0028-2000") == png.encode()
    mixed_case = "data:Application/Octet-Stream;base64,AQI="
    assert await created_value(http, {"ICCProfile": mixed_case}, "0028-2000") == mixed_case.encode() + b"\0"
    text = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    assert await created_value(http, {"StudyDescription": text}, "0008-1030") == text.encode() + b" "  # padded
