"""Real Orthanc 1.10.1 as the modality of a C-STORE job and as the peer of an HTTP store job: the
instances arrive with the Orthanc identifiers they have here."""

from __future__ import annotations

from pathlib import Path

import httpx

from node.context import NodeContext
from tests.support.datasets import make_dicom
from tests.support.orthanc import running_orthanc
from tests.support.rest import upload

STUDY = "1.2.826.0.1.3680043.8.498.20"


async def test_orthanc_receives_by_dicom_and_by_http(
    node: NodeContext, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored = [
        await upload(http, make_dicom(patient_id="TOORTHANC", study_uid=STUDY, instance_number=n)) for n in range(3)
    ]
    ids = sorted(item["ID"] for item in stored)
    study = stored[0]["ParentStudy"]
    with running_orthanc(tmp_path / "orthanc", aet="ORTHANCB") as orthanc:
        await node.remotes.modalities.put("orthanc", ["ORTHANCB", "127.0.0.1", orthanc.dicom_port])
        await node.remotes.peers.put("orthanc", [orthanc.http_url])
        async with httpx.AsyncClient(base_url=orthanc.http_url) as reference:
            content = (await http.post("/modalities/orthanc/store", json=[study])).json()
            assert (content["InstancesCount"], content["FailedInstancesCount"]) == (3, 0)
            assert sorted((await reference.get("/instances")).json()) == ids
            assert (await reference.delete(f"/studies/{study}")).status_code == 200
            content = (await http.post("/peers/orthanc/store", json={"Resources": [study], "Compress": True})).json()
            assert (content["InstancesCount"], content["Peer"]) == (3, [orthanc.http_url + "/"])
            assert sorted((await reference.get("/instances")).json()) == ids
            system = (await http.get("/peers/orthanc/system")).json()
            assert (system["Version"], system["DicomAet"]) == ("1.10.1", "ORTHANCB")
