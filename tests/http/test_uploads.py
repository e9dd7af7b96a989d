"""Uploads: every part of a multipart form, decompression within bounds, bodies spooled past a size.

Memory is measured on this very process (the node runs in it): the peak resident size
is reset before the request (Linux /proc/self/clear_refs) and read after it.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio

from node.config import DEFAULTS
from node.context import NodeContext
from tests.support.datasets import make_dataset, make_dicom, to_bytes
from tests.support.node import client_of, node_config, start_node

MB = 1024 * 1024
PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # what clear_refs takes to reset the peak resident size to the current one
# Growth of the peak resident size allowed for a request that must not hold its payload in memory.
BOUNDED_GROWTH = 200 * MB
FORM = "file"
PIXEL_DATA = 0x7FE00010  # the field name browsers give every file of a multiple file input


def _status_kb(field: str) -> int:
    line = next(line for line in PROC_STATUS.read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


@contextmanager
def peak_growth() -> Iterator[list[int]]:
    """Bytes by which the peak resident size rose over the block, in the one-element list it yields."""
    try:
        CLEAR_REFS.write_text(RESET_PEAK)
    except OSError:
        pytest.skip("the peak resident size can only be reset on Linux (/proc/self/clear_refs)")
    base = _status_kb("VmRSS")
    growth = [0]
    yield growth
    growth[0] = (_status_kb("VmHWM") - base) * 1024


def _zip_of_identical_members(count: int, member_size: int) -> bytes:
    """A ZIP of ``count`` members of ``member_size`` zero bytes, deflated once and written ``count`` times."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = bytes(MB)
    crc = 0
    parts = []
    for _ in range(member_size // MB):
        parts.append(deflater.compress(piece))
        crc = zlib.crc32(piece, crc)
    parts.append(deflater.flush())
    deflated = b"".join(parts)
    out, directory = io.BytesIO(), io.BytesIO()
    for i in range(count):
        name = f"member{i}.dcm".encode()
        fields = (20, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc, len(deflated), member_size, len(name))
        directory.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, out.tell()))
        directory.write(name)
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + name + deflated)
    start = out.tell()
    out.write(directory.getvalue())
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory.getvalue()), start, 0))
    return out.getvalue()


async def _patient_ids(http: httpx.AsyncClient) -> list[str]:
    patients = (await http.get("/patients", params={"expand": ""})).json()
    return sorted(p["MainDicomTags"]["PatientID"] for p in patients)


# -- multipart forms ---------------------------------------------------------------


async def test_every_part_of_the_same_name_is_stored(http: httpx.AsyncClient) -> None:
    files = [(FORM, (f"{name}.dcm", make_dicom(patient_id=name))) for name in ("A", "B", "C")]
    answer = await http.post("/instances", files=files)
    assert answer.status_code == 200
    assert [entry["Status"] for entry in answer.json()] == ["Success"] * 3
    assert await _patient_ids(http) == ["A", "B", "C"]


async def test_a_bad_part_gets_its_own_entry(http: httpx.AsyncClient) -> None:
    files = [
        (FORM, ("a.dcm", make_dicom(patient_id="A"))),
        (FORM, ("notes.txt", b"not DICOM")),
        (FORM, ("b.dcm", make_dicom(patient_id="B"))),
    ]
    answer = await http.post("/instances", files=files, data={"comment": "a plain field is not a file"})
    assert answer.status_code == 200
    first, bad, last = answer.json()
    assert first["Status"] == last["Status"] == "Success"
    assert bad["Status"] == "Failure" and bad["Filename"] == "notes.txt"
    assert bad["HttpStatus"] == 400 and bad["OrthancStatus"] == 15
    assert await _patient_ids(http) == ["A", "B"]


async def test_a_form_where_nothing_could_be_stored_fails(http: httpx.AsyncClient) -> None:
    """As Orthanc 1.10.1: a single bad part is a 400 with its error."""
    answer = await http.post("/instances", files=[(FORM, ("notes.txt", b"not DICOM"))])
    assert answer.status_code == 400 and answer.json()["OrthancStatus"] == 15
    empty = await http.post("/instances", files=[(FORM, ("empty.dcm", b""))])
    assert empty.status_code == 400 and empty.json()["Details"] == "Received an empty DICOM file"


# -- decompression bombs -------------------------------------------------------------


async def test_zip_bomb_is_refused_in_bounded_memory(http: httpx.AsyncClient) -> None:
    bomb = _zip_of_identical_members(8, 200 * MB)  # 1.6 GB of zeros in about 1.6 MB
    with peak_growth() as growth:
        answer = await http.post("/instances", content=bomb)
    assert answer.status_code in (400, 413)
    assert growth[0] < BOUNDED_GROWTH, f"peak grew by {growth[0] // MB} MB"
    assert (await http.post("/instances", content=make_dicom())).status_code == 200


async def test_gzip_bomb_is_refused_in_bounded_memory(http: httpx.AsyncClient) -> None:
    member = gzip.compress(bytes(100 * MB), compresslevel=9)
    bomb = member * 15  # 1.5 GB of zeros in about 1.5 MB, as a valid series of gzip members
    with peak_growth() as growth:
        answer = await http.post("/instances", content=bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code in (400, 413)
    assert growth[0] < BOUNDED_GROWTH, f"peak grew by {growth[0] // MB} MB"


async def test_an_archive_of_too_many_entries_is_refused(http: httpx.AsyncClient) -> None:
    """Refused from its end record, before zipfile reads a description of each entry into memory."""
    declared = 200_000
    start = b"PK\x03\x04" + bytes(26)
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, declared, declared, 0, 0)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(start), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    answer = await http.post("/instances", content=start + zip64_end + locator + end)
    assert answer.status_code == 400 and "entries" in answer.json()["Details"]


# -- bodies larger than memory should hold -------------------------------------------


async def test_default_request_size_is_a_few_hundred_mb(node: NodeContext) -> None:
    """A body announced over the default limit is refused at once, before it is sent."""
    limit = DEFAULTS["MaximumRequestSize"]
    assert limit <= 1024
    stream = await trio.open_tcp_stream("127.0.0.1", node.ports["http"])
    async with stream:
        announced = (limit + 1) * MB
        await stream.send_all(f"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: {announced}\r\n\r\n".encode())
        with trio.fail_after(10):
            answer = await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 413")


async def test_large_zip_upload_is_spooled_and_read_member_by_member(http: httpx.AsyncClient) -> None:
    member_size = 5 * MB
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(20):
            dataset = make_dataset(patient_id=f"Z{i:02d}")
            dataset.add_new(PIXEL_DATA, "OB", bytes(member_size))
            archive.writestr(f"{i}.dcm", to_bytes(dataset))
    upload = buffer.getvalue()  # about 100 MB
    with peak_growth() as growth:
        answer = await http.post("/instances", content=upload)
    assert answer.status_code == 200 and len(answer.json()) == 20
    # Held at once: what is kept in memory while receiving, and a few members.
    assert growth[0] < 10 * member_size, f"peak grew by {growth[0] // MB} MB for a {len(upload) // MB} MB upload"


async def test_chunked_body_over_the_limit(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Without a Content-Length, the limit is checked as the body arrives."""
    node = await start_node(nursery, node_config(tmp_path, MaximumRequestSize=8, DicomServerEnabled=False))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield bytes(MB)

    async with client_of(node) as http:
        answer = await http.post("/instances", content=chunks())
        assert answer.status_code == 413 and answer.json()["OrthancStatus"] == 8
        assert (await http.post("/instances", content=make_dicom())).status_code == 200
