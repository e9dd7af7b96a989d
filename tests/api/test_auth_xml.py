"""HTTP access control (RemoteAccessAllowed, basic authentication, cross-site requests), error texts, XML
answers, DICOM JSON files."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart import Blueprint

from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node

REALM = 'Basic realm="Orthanc Secure Area"'


async def _client_of(nursery: trio.Nursery, tmp_path: Path, local_address: str = "127.0.0.1", **options: Any):
    node = await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False, **options))
    return client_of(node, transport=httpx.AsyncHTTPTransport(local_address=local_address))


def _assert_unauthorized(answer: httpx.Response) -> None:
    assert answer.status_code == 401 and answer.content == b""
    assert answer.headers["www-authenticate"] == REALM


async def test_basic_authentication(nursery: trio.Nursery, tmp_path: Path) -> None:
    options = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "s3cret:pass"}}
    async with await _client_of(nursery, tmp_path, **options) as http:
        _assert_unauthorized(await http.get("/system"))
        _assert_unauthorized(await http.get("/system", auth=("alice", "wrong")))
        _assert_unauthorized(await http.get("/system", auth=("bob", "s3cret:pass")))
        _assert_unauthorized(await http.get("/system", headers={"Authorization": "Bearer abc"}))
        _assert_unauthorized(await http.get("/system", headers={"Authorization": "Basic !!!"}))
        _assert_unauthorized(await http.post("/instances", content=make_dicom()))
        system = await http.get("/system", auth=("alice", "s3cret:pass"))  # a colon inside the password
        assert system.status_code == 200 and system.json()["IsHttpServerSecure"] is True
        stored = await http.post("/instances", content=make_dicom(), auth=("alice", "s3cret:pass"))
        metadata = f"/instances/{stored.json()['ID']}/metadata/HttpUsername"
        assert (await http.get(metadata, auth=("alice", "s3cret:pass"))).text == "alice"
        # Authentication comes before routing: unknown routes are not revealed.
        _assert_unauthorized(await http.get("/no/such/route"))


async def test_authentication_without_users_refuses_everyone(nursery: trio.Nursery, tmp_path: Path) -> None:
    async with await _client_of(nursery, tmp_path, AuthenticationEnabled=True) as http:
        _assert_unauthorized(await http.get("/system"))
        _assert_unauthorized(await http.get("/system", auth=("orthanc", "orthanc")))


async def test_remote_access_refused(nursery: trio.Nursery, tmp_path: Path) -> None:
    """A client that is not 127.0.0.1 (here 127.0.0.2, still local) is refused by default."""
    async with await _client_of(nursery, tmp_path, local_address="127.0.0.2") as http:
        _assert_unauthorized(await http.get("/system"))
        _assert_unauthorized(await http.get("/system", auth=("orthanc", "orthanc")))


async def test_remote_access_with_default_user(nursery: trio.Nursery, tmp_path: Path) -> None:
    async with await _client_of(nursery, tmp_path, local_address="127.0.0.2", RemoteAccessAllowed=True) as http:
        _assert_unauthorized(await http.get("/system"))
        system = await http.get("/system", auth=("orthanc", "orthanc"))
        assert system.status_code == 200 and system.json()["IsHttpServerSecure"] is False


async def test_remote_access_without_authentication(nursery: trio.Nursery, tmp_path: Path) -> None:
    options = {"RemoteAccessAllowed": True, "AuthenticationEnabled": False}
    async with await _client_of(nursery, tmp_path, local_address="127.0.0.2", **options) as http:
        system = await http.get("/system")
        assert system.status_code == 200 and system.json()["IsHttpServerSecure"] is False


XML = {"Accept": "application/xml"}


async def test_xml_layout(http: httpx.AsyncClient) -> None:
    answer = await http.get("/system", headers=XML)
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    text = answer.text
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<root>\n  <ApiVersion>16</ApiVersion>\n')
    assert "  <CheckRevisions>false</CheckRevisions>\n" in text
    assert "  <DatabaseBackendPlugin>null</DatabaseBackendPlugin>\n" in text
    assert text.endswith("</root>\n")
    top_level = [line[2:] for line in text.splitlines() if line.startswith("  <") and not line.startswith("  </")]
    names = [line[1 : line.index(">")] for line in top_level]
    assert names == sorted(names)  # members sorted like Orthanc's JSON keys
    assert (await http.get("/patients", headers=XML)).text == '<?xml version="1.0" encoding="utf-8"?>\n<root />\n'


async def test_xml_of_resources_and_tags(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom(patient_name="A&B<C>"))).json()
    patients = (await http.get("/patients", headers=XML)).text
    assert f"<root>\n  <item>{stored['ParentPatient']}</item>\n</root>\n" in patients
    study = (await http.get(f"/studies/{stored['ParentStudy']}", headers=XML)).text
    assert "  <PatientMainDicomTags>\n    <PatientID>PAT1</PatientID>\n" in study
    assert f"  <Series>\n    <item>{stored['ParentSeries']}</item>\n  </Series>\n" in study
    tags = (await http.get(f"/instances/{stored['ID']}/tags", params={"short": ""}, headers=XML)).text
    # Orthanc writes the key verbatim (`<0010,0010>`), which no XML parser accepts: ours stays well-formed.
    assert '  <member name="0010,0010">A&amp;B&lt;C&gt;</member>\n' in tags
    metadata = (await http.get(f"/instances/{stored['ID']}/metadata", params={"expand": ""}, headers=XML)).text
    assert "  <RemoteAET></RemoteAET>\n" in metadata


async def test_xml_negotiation(http: httpx.AsyncClient) -> None:
    for accept in ("application/xml;q=0.9", "application/xml; q=1, */*;q=0.1"):
        assert (await http.get("/patients", headers={"Accept": accept})).text.startswith("<?xml")
    for accept in ("application/xml, application/json", "text/html, application/xml", "text/xml", "*/*"):
        assert (await http.get("/patients", headers={"Accept": accept})).json() == []
    error = await http.get("/studies/nope/series", headers=XML)  # errors stay JSON
    assert error.status_code == 404 and error.json()["OrthancStatus"] == 17


async def test_file_as_dicom_json(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom(patient_name="JSON^MODEL"))).json()
    url = f"/instances/{stored['ID']}/file"
    answer = await http.get(url, headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/dicom+json")
    model = answer.json()
    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "JSON^MODEL"}]}
    assert model["00200013"] == {"vr": "IS", "Value": [1]}
    assert (await http.get(url)).headers["content-type"] == "application/dicom"
    assert (await http.get("/instances/nope/file", headers={"Accept": "application/dicom+json"})).status_code == 404


# -- open access, passwords, cross-site requests, internal errors ------------------------


def _insecure_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "INSECURE" in r.getMessage()]


async def test_open_access_is_warned_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cases = [
        ({}, None),
        ({"RemoteAccessAllowed": True, "RegisteredUsers": {"alice": "secret"}}, None),
        ({"RemoteAccessAllowed": True}, "orthanc / orthanc"),
        ({"RemoteAccessAllowed": True, "AuthenticationEnabled": False}, "anyone"),
    ]
    for number, (options, expected) in enumerate(cases):
        caplog.clear()
        async with trio.open_nursery() as nursery:
            await start_node(nursery, node_config(tmp_path / str(number), DicomServerEnabled=False, **options))
            nursery.cancel_scope.cancel()
        warnings = _insecure_warnings(caplog)
        if expected is None:
            assert warnings == [], options
        else:
            assert len(warnings) == 1 and expected in warnings[0], options


async def test_password_of_any_characters(nursery: trio.Nursery, tmp_path: Path) -> None:
    options = {"AuthenticationEnabled": True, "RegisteredUsers": {"zoë": "pässwörd"}}
    async with await _client_of(nursery, tmp_path, **options) as http:
        credentials = base64.b64encode("zoë:pässwörd".encode()).decode()
        assert (await http.get("/system", headers={"Authorization": f"Basic {credentials}"})).status_code == 200
        wrong = base64.b64encode("zoë:passwörd".encode()).decode()
        _assert_unauthorized(await http.get("/system", headers={"Authorization": f"Basic {wrong}"}))


async def test_cross_site_changes_are_refused(http: httpx.AsyncClient) -> None:
    own = str(http.base_url).rstrip("/")
    refused = await http.post("/instances", content=make_dicom(), headers={"Origin": "http://elsewhere.example"})
    assert refused.status_code == 403
    assert refused.json()["HttpStatus"] == 403 and "Origin" in refused.json()["Details"]
    assert (await http.post("/instances", content=make_dicom(), headers={"Origin": "null"})).status_code == 403
    assert (await http.get("/patients")).json() == []
    stored = await http.post("/instances", content=make_dicom(), headers={"Origin": own})  # the node's own page
    assert stored.status_code == 200
    patient = stored.json()["ParentPatient"]
    behind_proxy = {"Origin": "https://pacs.example", "X-Forwarded-Host": "pacs.example"}
    assert (await http.post("/tools/find", json={"Level": "Patient", "Query": {}}, headers=behind_proxy)).status_code == 200
    assert (await http.get("/patients", headers={"Origin": "http://elsewhere.example"})).status_code == 200
    assert (await http.delete(f"/patients/{patient}", headers={"Origin": "http://elsewhere.example"})).status_code == 403
    assert (await http.delete(f"/patients/{patient}")).status_code == 200  # no Origin: not a browser


failing = Blueprint("failing", __name__)
SECRET_PATH = "/var/lib/node-secret/index.sqlite"


@failing.route("/test/failing")
async def fail_with_an_internal_error() -> None:
    raise OSError(13, "Permission denied", SECRET_PATH)


async def test_internal_errors_stay_in_the_log(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False), routes=[failing])
    async with client_of(node) as http:
        answer = await http.get("/test/failing")
    assert answer.status_code == 500 and answer.json()["OrthancStatus"] == -1
    assert "secret" not in answer.text and "Permission" not in answer.text and "OSError" not in answer.text
    assert any(r.exc_info and SECRET_PATH in str(r.exc_info[1]) for r in caplog.records)  # logged in full
