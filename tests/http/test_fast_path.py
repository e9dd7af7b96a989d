"""The fast path (POST /instances, GET /instances/{id}/file, /system, /jobs/{id}) answers as the
app's routes do, and the rules of every route apply to it: credentials, compression, XML, metrics."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import trio

from node.context import NodeContext
from tests.support.datasets import make_dicom, random_pixels, to_bytes
from tests.support.jobs import finished
from tests.support.node import client_of, node_config, start_node
from tests.support.raw_http import RawConnection

USER, PASSWORD = "alice", "secret"
CREDENTIALS = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
BOUNDARY = "fastpathboundary"


def _form(data: bytes) -> bytes:
    """A multipart form of one file: served by the app's route, not by the fast path."""
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.dcm"\r\n\r\n'.encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_a_plain_upload_answers_as_a_form_of_one_file(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path))
    data = make_dicom(PatientID="FAST")
    async with client_of(node) as http:
        plain = await http.post("/instances", content=data)
        form = await http.post(
            "/instances", content=_form(data), headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        )
        again = await http.post("/instances/", content=data)
    assert plain.status_code == form.status_code == again.status_code == 200
    assert plain.headers["content-type"] == form.headers["content-type"] == "application/json; charset=utf-8"
    assert plain.json()["Status"] == "Success"
    assert form.text == again.text  # both AlreadyStored, byte for byte
    assert form.json() == {**plain.json(), "Status": "AlreadyStored"}


async def test_get_answers_as_head_does(nursery: trio.Nursery, tmp_path: Path) -> None:
    """GET is the fast path's, HEAD the app's: the same headers."""
    node = await start_node(nursery, node_config(tmp_path))
    async with client_of(node) as http:
        instance = (await http.post("/instances", content=make_dicom())).json()["ID"]
        for path in (f"/instances/{instance}/file", "/system"):
            got, head = await http.get(path), await http.head(path)
            assert got.status_code == head.status_code == 200
            assert dict(got.headers) == dict(head.headers)
        unknown = await http.get("/instances/nope/file")
    assert unknown.status_code == 404
    assert unknown.json()["OrthancStatus"] == 17
    assert unknown.json()["Uri"] == "/instances/nope/file"


async def test_answers_are_compressed_and_in_xml_as_asked(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path))
    async with client_of(node) as http:
        zipped = await http.post("/instances", content=make_dicom(), headers={"Accept-Encoding": "gzip"})
        xml = await http.get("/system", headers={"Accept": "application/xml", "Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json()["Status"] == "Success"  # httpx inflated it
    assert int(zipped.headers["content-length"]) < len(zipped.content)
    assert xml.headers["content-type"] == "application/xml; charset=utf-8"
    assert "<ApiVersion>" in xml.text


async def test_a_polled_job_answers_as_the_app_did(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path))
    async with client_of(node) as http:
        study = (await http.post("/instances", content=make_dicom())).json()["ParentStudy"]
        job = (await http.post(f"/studies/{study}/modify", json={"Asynchronous": True, "Replace": {}})).json()["ID"]
        await finished(node, job)
        answer = await http.get(f"/jobs/{job}/", headers={"Accept-Encoding": "identity"})
        unknown = await http.get("/jobs/nope")
    assert answer.status_code == 200
    assert answer.json()["ID"] == job
    assert answer.json()["State"] == "Success"
    assert unknown.status_code == 404
    assert unknown.content == b""


async def _credentials_needed(node: NodeContext) -> None:
    async with client_of(node, limits=httpx.Limits(max_connections=1)) as http:
        for method, path in (
            ("POST", "/instances"),
            ("GET", "/system"),
            ("GET", "/jobs/x"),
            ("GET", "/instances/x/file"),
        ):
            refused = await http.request(method, path, content=make_dicom() if method == "POST" else None)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == 'Basic realm="Orthanc Secure Area"'
        # The refused upload's body was read and dropped: the connection serves the next request.
        stored = await http.post("/instances", content=make_dicom(), headers={"Authorization": CREDENTIALS})
        assert stored.status_code == 200


async def test_fast_routes_need_credentials(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, AuthenticationEnabled=True, RegisteredUsers={USER: PASSWORD})
    node = await start_node(nursery, config)
    await _credentials_needed(node)


async def test_fast_routes_are_counted_in_the_metrics(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path))
    async with client_of(node) as http:
        before = _gets_counted((await http.get("/tools/metrics-prometheus")).text)
        for _ in range(3):
            await http.get("/system")
        after = _gets_counted((await http.get("/tools/metrics-prometheus")).text)
    assert after - before == 4  # the three GETs, and the first scrape


def _gets_counted(scrape: str) -> float:
    """GET requests the node counted so far, from its Prometheus scrape."""
    prefix = 'trionode_rest_api_request_duration_seconds_count{method="GET"}'
    return sum(float(line.split()[-1]) for line in scrape.splitlines() if line.startswith(prefix))


async def test_closed_connections_give_their_slot_back(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Clients that connect, ask once and leave, many more of them than the connection limit:
    each leaves its slot free for the next (the keep-alive watch of a connection ends with it)."""
    limit = 4
    node = await start_node(nursery, node_config(tmp_path, HttpMaximumConnections=limit))
    statuses = []
    for _ in range(limit * 5):
        stream = await trio.open_tcp_stream("127.0.0.1", node.ports["http"])
        async with stream:
            await stream.send_all(b"GET /system HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := await stream.receive_some(65536):
                answer += chunk
        statuses.append(answer.split(b" ", 2)[1])
    assert set(statuses) == {b"200"}


async def test_a_file_is_sent_as_stored_whatever_the_way(nursery: trio.Nursery, tmp_path: Path) -> None:
    """A large file, sent by the kernel from the disk (zero copy), compressed for a client that
    asks, or to an HTTP/1.0 client: the same bytes each time; a file gone from the disk is
    Orthanc's error, the connection serving on."""
    node = await start_node(nursery, node_config(tmp_path))
    data = to_bytes(random_pixels(3 * 1024 * 1024))
    async with client_of(node) as http:
        instance = (await http.post("/instances", content=data)).json()["ID"]
        plain = await http.get(f"/instances/{instance}/file", headers={"Accept-Encoding": "identity"})
        gzipped = await http.get(f"/instances/{instance}/file", headers={"Accept-Encoding": "gzip"})
        assert plain.content == gzipped.content == data
        assert plain.headers["content-length"] == str(len(data)) and "content-encoding" not in plain.headers
        assert gzipped.headers["content-encoding"] == "gzip"
        old = await RawConnection.open(node.ports["http"])
        await old.send(f"GET /instances/{instance}/file HTTP/1.0\r\n\r\n".encode())
        answer = await old.answer()
        assert answer is not None and answer.body == data
        await old.aclose()
        attachment = await node.resources.instance_attachment(instance)
        node.files.path_of(attachment.uuid).unlink()
        missing = await http.get(f"/instances/{instance}/file", headers={"Accept-Encoding": "identity"})
        assert missing.status_code == 404 and missing.json()["OrthancError"] == "Inexistent file"
        assert (await http.get("/system")).status_code == 200
