"""DicomGetScu between two of our nodes: the archive sends the study back on the querier's own
association (the querier needs no DICOM port the archive can reach), as its declaration allows."""

from __future__ import annotations

from pathlib import Path

import trio

from node.dicom.ids import study_id
from tests.support.node import client_of
from tests.support.qr_corpus import STUDY_CHEST, STUDY_KNEE, corpus
from tests.support.query_retrieve import ARCHIVE_AET, QUERIER_AET, start_pair, study_instances, upload_files
from tests.support.rest import assert_error

CHEST = study_id("PAT1", STUDY_CHEST)
KNEE = study_id("pat2", STUDY_KNEE)


async def test_a_study_comes_back_by_c_get(nursery: trio.Nursery, tmp_path: Path) -> None:
    # The archive has the querier's AE title on a port where nothing listens: C-MOVE could not work.
    pair = await start_pair(nursery, tmp_path, archive_knows_querier={"Port": 1})
    async with client_of(pair.archive) as archive, client_of(pair.querier) as http:
        await upload_files(archive, corpus())
        got = await http.post(
            "/modalities/archive/get", json={"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_CHEST}]}
        )
        assert got.status_code == 200, got.text
        assert (got.json()["LocalAet"], got.json()["RemoteAet"]) == (QUERIER_AET, ARCHIVE_AET)
        assert await study_instances(http, CHEST) == await study_instances(archive, CHEST) != []
        query = await http.post(
            "/modalities/archive/query", json={"Level": "Series", "Query": {"StudyInstanceUID": STUDY_KNEE}}
        )
        retrieved = await http.post(
            f"/queries/{query.json()['ID']}/retrieve", json={"RetrieveMethod": "C-GET", "Full": True}
        )
        assert retrieved.status_code == 200, retrieved.text
        assert retrieved.json()["Query"][0]["0008,0052"] == {
            "Name": "QueryRetrieveLevel",
            "Type": "String",
            "Value": "SERIES",
        }
        assert await study_instances(http, KNEE) == await study_instances(archive, KNEE) != []
        # The same by C-MOVE: the archive fails every sub-operation, which fails the job (not so in Orthanc).
        moved = assert_error(await http.post(f"/queries/{query.json()['ID']}/retrieve", content=""), 500, 9)
        assert moved["Details"].startswith(f'C-MOVE SCU to AET "{ARCHIVE_AET}": sub-operations 1 failed, 0 completed')


async def test_a_c_get_the_archive_does_not_allow_fails(nursery: trio.Nursery, tmp_path: Path) -> None:
    pair = await start_pair(nursery, tmp_path, archive_knows_querier={"AllowGet": False})
    async with client_of(pair.archive) as archive, client_of(pair.querier) as http:
        await upload_files(archive, corpus())
        body = {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_CHEST}]}
        refused = assert_error(await http.post("/modalities/archive/get", json=body), 500, 9)
        assert ARCHIVE_AET in refused["Details"]
        assert await study_instances(http, CHEST) == []
