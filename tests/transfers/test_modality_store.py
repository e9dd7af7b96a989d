"""POST /modalities/{id}/store and /store-straight: C-STORE SCU jobs against DCMTK's storescp and a
second node of ours, every body form Orthanc takes, and Orthanc's answers to bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pydicom
import trio

from node.context import NodeContext
from node.jobs.record import JobState
from tests.support.datasets import make_dicom
from tests.support.dicom_remotes import Behaviour, start_remote
from tests.support.jobs import finished
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error, upload
from tests.support.storescp import running_storescp

STUDY = "1.2.826.0.1.3680043.8.498.1"
UNKNOWN_ID = "66a662ce-7430e543-bad44d47-0dc5a943-ec7a538e"


async def _three_instances(http: httpx.AsyncClient) -> list[dict[str, str]]:
    series = "1.2.826.0.1.3680043.8.498.2"
    return [
        await upload(http, make_dicom(patient_id="SCU", study_uid=STUDY, series_uid=series, instance_number=n))
        for n in range(3)
    ]


async def test_a_study_reaches_storescp_on_one_association(
    node: NodeContext, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored = await _three_instances(http)
    study = stored[0]["ParentStudy"]
    async with running_storescp(tmp_path / "received") as port:
        await node.remotes.modalities.put("scp", ["STORESCP", "127.0.0.1", port])
        answer = await http.post("/modalities/scp/store", content=study)  # a bare ID, as text
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 3,
        "LocalAet": "ORTHANC",
        "ParentResources": [study],
        "RemoteAet": "STORESCP",
    }
    received = [pydicom.dcmread(path) for path in (tmp_path / "received").iterdir()]
    assert sorted(str(ds.InstanceNumber) for ds in received) == ["0", "1", "2"]


async def test_body_forms_calling_aet_and_move_originator(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_remote(nursery, Behaviour.STORE)
    stored = await _three_instances(http)
    ids = [item["ID"] for item in stored]
    await node.remotes.modalities.put("remote", ["REMOTE", "127.0.0.1", remote.port])
    for text in (json.dumps(ids[0]), json.dumps(ids[:2]), json.dumps({"Resources": [stored[0]["ParentSeries"]]})):
        answer = await http.post("/modalities/remote/store", content=text)
        assert answer.status_code == 200, answer.text
    counts = [len(c.stored) for c in remote.connections]
    assert counts == [1, 2, 3]  # one association per job, every instance on it
    options = {"Resources": [ids[0]], "LocalAet": "MINE", "MoveOriginatorID": 7, "Synchronous": True}
    content = (await http.post("/modalities/remote/store", json=options)).json()
    assert (content["LocalAet"], content["MoveOriginatorAET"], content["MoveOriginatorID"]) == ("MINE", "ORTHANC", 7)
    await node.remotes.modalities.put(
        "fixed", {"AET": "REMOTE", "Host": "127.0.0.1", "Port": remote.port, "LocalAet": "FIXED"}
    )
    content = (await http.post("/modalities/fixed/store", json={"Resources": [ids[0]], "LocalAet": "MINE"})).json()
    assert content["LocalAet"] == "FIXED" and "MoveOriginatorID" not in content


async def test_between_two_nodes_instances_keep_their_ids(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    other = await start_node(nursery, node_config(tmp_path / "b", DicomAet="NODEB"))
    stored = await _three_instances(http)
    await node.remotes.modalities.put("b", ["NODEB", "127.0.0.1", other.ports["dicom"]])
    body = {"Resources": [stored[0]["ParentPatient"]], "Asynchronous": True}
    job = (await http.post("/modalities/b/store", json=body)).json()
    assert (await finished(node, job["ID"])).state is JobState.SUCCESS
    answer = (await http.get(f"/jobs/{job['ID']}")).json()
    assert (answer["Type"], answer["Progress"], answer["Content"]["RemoteAet"]) == ("DicomModalityStore", 100, "NODEB")
    async with client_of(other) as http_b:
        assert sorted((await http_b.get("/instances")).json()) == sorted(item["ID"] for item in stored)


async def test_store_straight_sends_the_body_as_it_is(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_remote(nursery, Behaviour.STORE)
    await node.remotes.modalities.put("remote", ["REMOTE", "127.0.0.1", remote.port])
    data = make_dicom(patient_id="STRAIGHT")
    answer = await http.post("/modalities/remote/store-straight", content=data)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert answer.json() == {"SOPClassUID": ds.SOPClassUID, "SOPInstanceUID": ds.SOPInstanceUID}
    assert remote.stored == [ds.SOPInstanceUID]
    assert (await http.get("/instances")).json() == []  # not stored here
    assert_error(
        await http.post("/modalities/remote/store-straight", content=b"junk"),
        400,
        15,
        "Cannot parse an invalid DICOM file (size: 4 bytes)",
    )


async def test_bad_requests_get_orthancs_errors(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_remote(nursery, Behaviour.STORE)
    await node.remotes.modalities.put("remote", ["REMOTE", "127.0.0.1", remote.port])
    instance = (await upload(http, make_dicom()))["ID"]
    cases = [
        ("/modalities/nope/store", instance, 404, 7, "No modality with symbolic name: nope"),
        ("/modalities/remote/store", "nonsense", 400, 15, "Must provide a JSON value"),
        (
            "/modalities/remote/store",
            '["0000-bad"]',
            400,
            15,
            "This string is not a valid Orthanc identifier: 0000-bad",
        ),
        (
            "/modalities/remote/store",
            "[5]",
            400,
            15,
            "Resources to be exported must be specified as a JSON array of strings",
        ),
        ("/modalities/remote/store", "5", 400, 15, "Must provide a JSON object, or a JSON array of strings"),
        ("/modalities/remote/store", "{}", 400, 15, 'Missing field in JSON: "Resources"'),
        ("/modalities/remote/store", '{"Resources": "x"}', 400, 15, 'JSON field "Resources" must contain an array'),
        (
            "/modalities/remote/store",
            json.dumps({"Resources": [instance], "Timeout": -1}),
            400,
            15,
            "Unsigned integer value expected in field: Timeout",
        ),
        ("/modalities/remote/store", json.dumps({"Resources": [instance], "LocalAet": 5}), 400, 5, None),
        ("/modalities/remote/store", UNKNOWN_ID, 404, 17, None),
        ("/modalities/nope/store-straight", make_dicom(), 404, 7, "No modality with symbolic name: nope"),
    ]
    for path, body, status, code, details in cases:
        assert_error(await http.post(path, content=body), status, code, details)
    assert remote.connections == []  # nothing reached the remote
    empty = (await http.post("/modalities/remote/store", json={"Resources": []})).json()
    assert empty == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 0,
        "LocalAet": "ORTHANC",
        "RemoteAet": "REMOTE",
    }


async def test_refused_and_rejecting_modalities_fail_with_error_9(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    instance = (await upload(http, make_dicom()))["ID"]
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    closed_port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    await node.remotes.modalities.put("closed", ["CLOSED", "127.0.0.1", closed_port])
    details = 'DicomAssociation - connecting to AET "CLOSED": TCP Initialization Error: Connection refused'
    assert_error(await http.post("/modalities/closed/store", content=instance), 500, 9, details)
    assert_error(await http.post("/modalities/closed/store-straight", content=make_dicom()), 500, 9, details)
    strict = await start_node(nursery, node_config(tmp_path / "strict", DicomAet="STRICT", DicomCheckCalledAet=True))
    await node.remotes.modalities.put("wrong", ["WRONG", "127.0.0.1", strict.ports["dicom"]])
    body = assert_error(await http.post("/modalities/wrong/store", content=instance), 500, 9)
    assert body["Details"].startswith(
        'DicomAssociation - connecting to AET "WRONG": DUL Association Rejected (result 1'
    )
