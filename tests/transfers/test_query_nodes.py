"""C-FIND SCU between two of our nodes: one queries the other at each level through the REST
API, the queries are kept up to QueryRetrieveSize, and a remote that answers garbage fails its
request while the node goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.support.find_remote import start_broken_find_remote
from tests.support.node import client_of, node_config, start_node
from tests.support.qr_corpus import STUDY_BRAIN, STUDY_CHEST, STUDY_EMPTY_DATE, STUDY_KNEE, STUDY_US, corpus, uid
from tests.support.query_retrieve import ARCHIVE_AET, LOOPBACK, start_pair, upload_files
from tests.support.rest import assert_error


async def _answers(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    created = await http.post("/modalities/archive/query", json=body)
    assert created.status_code == 200, created.text
    query = created.json()["ID"]
    answers = await http.get(f"/queries/{query}/answers?expand&simplify")
    return query, answers.json()


async def test_each_level_is_asked_of_the_other_node(nursery: trio.Nursery, tmp_path: Path) -> None:
    pair = await start_pair(nursery, tmp_path)
    async with client_of(pair.archive) as archive, client_of(pair.querier) as http:
        await upload_files(archive, corpus())
        _, patients = await _answers(http, {"Level": "Patient", "Query": {"PatientName": ""}})
        assert sorted(p["PatientID"] for p in patients) == ["PAT1", "PAT3", "PAT4", "pat2"]
        assert {p["RetrieveAETitle"] for p in patients} == {ARCHIVE_AET}
        _, studies = await _answers(http, {"Level": "Study", "Query": {"StudyDate": "20200101-"}})
        assert sorted(s["StudyInstanceUID"] for s in studies) == sorted([STUDY_CHEST, STUDY_BRAIN, STUDY_KNEE])
        query, series = await _answers(http, {"Level": "Series", "Query": {"StudyInstanceUID": STUDY_CHEST}})
        assert sorted(s["SeriesInstanceUID"] for s in series) == [uid(1, 1), uid(1, 2)]
        _, instances = await _answers(http, {"Level": "Instance", "Query": {"SeriesInstanceUID": uid(1, 1)}})
        assert {i["QueryRetrieveLevel"] for i in instances} == {"IMAGE"} and len(instances) >= 1
        child = await http.post(f"/queries/{query}/answers/0/query-instances", json={})
        grandchildren = await http.get(f"/queries/{child.json()['ID']}/answers?expand&simplify")
        assert {i["SeriesInstanceUID"] for i in grandchildren.json()} == {series[0]["SeriesInstanceUID"]}
        assert (await http.get(f"/queries/{query}/level")).text == "Series"
        assert (await http.get(f"/queries/{query}/modality")).text == "archive"
        _, nothing = await _answers(http, {"Level": "Study", "Query": {"StudyInstanceUID": STUDY_EMPTY_DATE + ".9"}})
        assert nothing == [] and STUDY_US


async def test_queries_kept_are_bounded_least_recently_used_first(nursery: trio.Nursery, tmp_path: Path) -> None:
    pair = await start_pair(nursery, tmp_path, querier={"QueryRetrieveSize": 2})
    async with client_of(pair.querier) as http:
        first, _ = await _answers(http, {"Level": "Patient"})
        second, _ = await _answers(http, {"Level": "Patient"})
        assert (await http.get(f"/queries/{first}")).status_code == 200  # now the most recently used
        third, _ = await _answers(http, {"Level": "Patient"})
        assert sorted((await http.get("/queries")).json()) == sorted([first, third])
        assert_error(await http.get(f"/queries/{second}/answers"), 404, 17)
        assert_error(await http.post(f"/queries/{second}/retrieve", content=""), 404, 17)


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # pydicom's, on the garbage
async def test_a_remote_refusing_us_or_answering_garbage_fails_the_request_not_the_node(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    broken = await start_broken_find_remote(nursery)
    pair = await start_pair(nursery, tmp_path)  # the archive does not know the third node below
    modalities = {
        "archive": [ARCHIVE_AET, LOOPBACK, pair.archive.ports["dicom"]],
        "broken": ["BROKEN", LOOPBACK, broken.port],
    }
    node = await start_node(nursery, node_config(tmp_path / "third", DicomModalities=modalities))
    async with client_of(node) as http:
        refused = assert_error(await http.post("/modalities/archive/query", json={"Level": "Study"}), 500, 9)
        assert ARCHIVE_AET in refused["Details"]
        for _ in range(2):
            garbage = assert_error(await http.post("/modalities/broken/query", json={"Level": "Study"}), 500, 9)
            assert garbage["Details"] == 'C-FIND SCU to AET "BROKEN": an answer cannot be read'
        assert len(broken.finds) == 2
        assert (await http.get("/queries")).json() == []
        assert (await http.get("/system")).status_code == 200
