"""C-GET SCU against real Orthanc 1.10.1 (beyond Orthanc 1.10.1, which has none): a study comes
back on our own association, so Orthanc needs no route to us, and each instance keeps its
transfer syntax, JPEG 2000 included, because the compressed syntaxes are proposed too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from node.context import NodeContext
from node.dicom.ids import study_id
from tests.support.datasets import needs_testdata
from tests.support.orthanc import RunningOrthanc, needs_orthanc
from tests.support.qr_corpus import STUDY_CHEST, STUDY_KNEE
from tests.support.query_retrieve import LOOPBACK, declare_in_orthanc, orthanc_archive, study_instances
from tests.support.rest import assert_error

pytestmark = needs_orthanc

AET, OUR_AET = "ORTHANC", "NODE"
KNEE_UID = "2.16.840.1.113669.632.20.121711.10000160881"  # the JPEG 2000 study of the shared test data
KNEE = study_id("887", KNEE_UID)
CHEST = study_id("PAT1", STUDY_CHEST)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    with orthanc_archive(tmp_path_factory.mktemp("orthanc"), AET, DicomAlwaysAllowFind=True) as running:
        yield running


@pytest.fixture
def config_overrides(orthanc: RunningOrthanc) -> dict[str, Any]:
    return {"DicomAet": OUR_AET, "DicomModalities": {"orthanc": [AET, LOOPBACK, orthanc.dicom_port]}}


@pytest.fixture
async def theirs(orthanc: RunningOrthanc, node: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    """Orthanc's REST API; Orthanc knows our AE title (C-GET is allowed to declared modalities
    only), at a port where nothing listens: the instances cannot come back any other way."""
    declare_in_orthanc(orthanc, "node", OUR_AET, 1)
    async with httpx.AsyncClient(base_url=orthanc.http_url, timeout=30) as client:
        yield client


async def _transfer_syntaxes(client: httpx.AsyncClient, instances: list[str]) -> list[str]:
    return [(await client.get(f"/instances/{i}/metadata/TransferSyntax")).text for i in instances]


@needs_testdata
async def test_a_compressed_study_comes_back_by_c_get(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    query = await http.post("/modalities/orthanc/query", json={"Level": "Study", "Query": {"PatientID": "887"}})
    retrieved = await http.post(f"/queries/{query.json()['ID']}/retrieve", json={"RetrieveMethod": "C-GET"})
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.json()["Query"][0]["0020,000d"] == KNEE_UID
    instances = await study_instances(http, KNEE)
    assert instances == await study_instances(theirs, KNEE) != []
    assert await _transfer_syntaxes(http, instances) == await _transfer_syntaxes(theirs, instances)
    metadata = (await http.get(f"/instances/{instances[0]}/metadata?expand")).json()
    assert (metadata["Origin"], metadata["RemoteAET"], metadata["CalledAET"]) == ("DicomProtocol", AET, OUR_AET)
    jobs = (await http.get("/jobs?expand")).json()
    assert [(job["Type"], job["State"]) for job in jobs] == [("DicomGetScu", "Success")]


async def test_get_route_and_its_errors(node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient) -> None:
    got = await http.post(
        "/modalities/orthanc/get", json={"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_CHEST}]}
    )
    assert got.status_code == 200, got.text
    assert got.json() == {
        "Description": "REST API",
        "LocalAet": OUR_AET,
        "Query": [{"0008,0052": "STUDY", "0020,000d": STUDY_CHEST}],
        "RemoteAet": AET,
    }
    assert await study_instances(http, CHEST) == await study_instances(theirs, CHEST) != []
    missing = {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_KNEE + ".404"}]}
    body = assert_error(await http.post("/modalities/orthanc/get", json=missing), 500, 9)
    assert body["Details"].startswith(f'C-GET SCU to AET "{AET}" has failed with DIMSE status 0xC000')
    assert_error(await http.post("/modalities/orthanc/get", json={"Level": "Study"}), 400, 15)
    query = await http.post("/modalities/orthanc/query", json={"Level": "Study"})
    assert_error(await http.post(f"/queries/{query.json()['ID']}/retrieve", json={"RetrieveMethod": "C-ECHO"}), 400, 15)
