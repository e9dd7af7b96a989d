"""The query/retrieve service on an in-process node: files uploaded over HTTP, then C-FIND
identifiers answered and C-MOVE identifiers resolved as the SCP will ask them.

Options are given to the service through its own Config (same index, same files), so one
node serves every variant. Behaviour checked against Orthanc 1.10.1 is in
test_query_retrieve_orthanc.py; this file pins each rule on its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from node.config import Config
from node.context import NodeContext
from node.errors import ErrorCode, OrthancError
from node.runtime_settings import RuntimeSettings
from node.services.query_retrieve import FindSettings, QueryRetrieve
from tests.support.datasets import CT_IMAGE_STORAGE, SHARED_TESTDATA
from tests.support.qr_corpus import (
    STUDY_BRAIN,
    STUDY_CHEST,
    STUDY_EMPTY_DATE,
    STUDY_KNEE,
    STUDY_US,
    US_IMAGE_STORAGE,
    corpus,
    identifier,
    uid,
)
from tests.support.query_retrieve import answer_on_the_wire

OUR_AET = "OURAET"


@pytest.fixture
async def qr(node: NodeContext, http: httpx.AsyncClient) -> QueryRetrieve:
    for data in corpus():
        (await http.post("/instances", content=data)).raise_for_status()
    return QueryRetrieve(node.settings.dicom.find, node.index, node.resources, runtime=node.runtime)


def variant(node: NodeContext, runtime: RuntimeSettings | None = None, **options: Any) -> QueryRetrieve:
    """The service with other options, on the same index and files."""
    config = Config(options)
    runtime = runtime or RuntimeSettings.from_config(config)
    return QueryRetrieve(FindSettings.from_config(config), node.index, node.resources, runtime=runtime)


async def find(service: QueryRetrieve, level: str | None, **keys: Any) -> list[Dataset]:
    """The answers, as a client reads them off the wire."""
    return [answer_on_the_wire(answer) async for answer in service.find(identifier(level, **keys), our_aet=OUR_AET)]


async def values(service: QueryRetrieve, level: str, keyword: str, **keys: Any) -> list[str]:
    """One key of every answer (the key is asked too), sorted."""
    answers = await find(service, level, **{keyword: "", **keys})
    return sorted(str(answer[keyword].value or "") for answer in answers)


async def test_answers_hold_the_keys_asked_and_what_orthanc_adds(qr: QueryRetrieve) -> None:
    answers = await find(qr, "PATIENT", PatientID="PAT1", PatientName="", PatientBirthDate="", OtherPatientIDs="")
    assert len(answers) == 1
    answer = answers[0]
    assert answer.QueryRetrieveLevel == "PATIENT"
    assert answer.RetrieveAETitle == OUR_AET
    assert answer.SpecificCharacterSet == "ISO_IR 100"
    assert (answer.PatientID, str(answer.PatientName), answer.PatientBirthDate) == ("PAT1", "DOE^JOHN", "19700101")
    assert "OtherPatientIDs" in answer and not answer.OtherPatientIDs  # absent from the files: empty
    assert set(answer.keys()) == {0x00080005, 0x00080052, 0x00080054, 0x00100010, 0x00100020, 0x00100030, 0x00101000}


async def test_person_names_ignore_case_other_values_do_not(qr: QueryRetrieve) -> None:
    assert await values(qr, "PATIENT", "PatientID", PatientName="doe*") == ["PAT1"]
    assert await values(qr, "PATIENT", "PatientID", PatientName="SMITH^ANNA") == ["PAT4"]
    assert await values(qr, "PATIENT", "PatientID", PatientName="MÜLLER*", SpecificCharacterSet="ISO_IR 100") == [
        "pat2"
    ]
    assert await values(qr, "PATIENT", "PatientID", PatientName="MULLER*") == []  # accents count
    assert await values(qr, "PATIENT", "PatientID", PatientID="pat?") == ["pat2"]
    assert await values(qr, "PATIENT", "PatientID", PatientID="PAT?") == ["PAT1", "PAT3", "PAT4"]
    assert await values(qr, "STUDY", "AccessionNumber", AccessionNumber="ACC2") == []
    assert await values(qr, "STUDY", "AccessionNumber", AccessionNumber="acc2") == ["acc2"]


async def test_case_sensitive_pn_option(node: NodeContext, qr: QueryRetrieve) -> None:
    strict = variant(node, CaseSensitivePN=True)
    assert await values(strict, "PATIENT", "PatientID", PatientName="doe*") == []
    assert await values(strict, "PATIENT", "PatientID", PatientName="DOE*") == ["PAT1"]


async def test_date_ranges(qr: QueryRetrieve) -> None:
    assert await values(qr, "STUDY", "StudyDate", StudyDate="20200101-20200401") == ["20200101", "20200315"]
    assert await values(qr, "STUDY", "StudyDate", StudyDate="20200315-") == ["20200315", "20210615"]
    # An empty date sorts before any other: an open lower bound takes it, as in Orthanc.
    assert await values(qr, "STUDY", "StudyDate", StudyDate="-20200101") == ["", "20191231", "20200101"]
    assert await values(qr, "STUDY", "StudyDate", StudyDate="20191231") == ["20191231"]
    assert await values(qr, "STUDY", "StudyTime", StudyTime="100000-110000") == ["101500"]


async def test_uid_lists_and_wildcards_in_lists(qr: QueryRetrieve) -> None:
    listed = await values(qr, "STUDY", "StudyInstanceUID", StudyInstanceUID=f"{STUDY_CHEST}\\{STUDY_US}\\1.2.3")
    assert listed == sorted([STUDY_CHEST, STUDY_US])
    assert await values(qr, "STUDY", "AccessionNumber", AccessionNumber="ACC1\\ACC*") == ["ACC1"]  # literal `*`
    assert await values(qr, "SERIES", "Modality", Modality="CT\\PT") == ["CT", "CT", "PT"]


@pytest.mark.parametrize(
    ("level", "keys", "code"),
    [
        (None, {"PatientName": ""}, ErrorCode.BAD_REQUEST),
        ("", {"PatientName": ""}, ErrorCode.BAD_REQUEST),
        ("FOO", {"PatientName": ""}, ErrorCode.PARAMETER_OUT_OF_RANGE),
        ("STUDY", {"StudyInstanceUID": "1.2.826*"}, ErrorCode.PARAMETER_OUT_OF_RANGE),
        ("STUDY", {"StudyDate": "2020*"}, ErrorCode.PARAMETER_OUT_OF_RANGE),
        ("STUDY", {"StudyDate": "2020*-2021"}, ErrorCode.PARAMETER_OUT_OF_RANGE),
        ("SERIES", {"SeriesDate": "2020?"}, ErrorCode.PARAMETER_OUT_OF_RANGE),
    ],
)
async def test_bad_queries_fail(qr: QueryRetrieve, level: str | None, keys: dict[str, str], code: ErrorCode) -> None:
    with pytest.raises(OrthancError) as raised:
        await find(qr, level, **keys)
    assert raised.value.code == code


async def test_study_counters_and_modalities_in_study(qr: QueryRetrieve) -> None:
    keys = dict.fromkeys(
        ["ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"], ""
    )
    answers = {a.StudyInstanceUID: a for a in await find(qr, "STUDY", StudyInstanceUID="", **keys)}
    chest = answers[STUDY_CHEST]
    assert (list(chest.ModalitiesInStudy), chest.SOPClassesInStudy) == (["CT", "PT"], CT_IMAGE_STORAGE)
    assert (chest.NumberOfStudyRelatedSeries, chest.NumberOfStudyRelatedInstances) == (2, 3)
    assert answers[STUDY_US].SOPClassesInStudy == US_IMAGE_STORAGE
    assert await values(qr, "STUDY", "StudyInstanceUID", ModalitiesInStudy="C*") == sorted(
        [STUDY_CHEST, STUDY_EMPTY_DATE]
    )
    assert await values(qr, "STUDY", "StudyInstanceUID", ModalitiesInStudy="PT\\US") == sorted([STUDY_CHEST, STUDY_US])
    assert await values(qr, "STUDY", "StudyInstanceUID", ModalitiesInStudy="ct") == []
    # A main tag of a lower level matches nothing; ModalitiesInStudy works at study level only.
    assert await find(qr, "STUDY", Modality="CT") == []
    assert await find(qr, "SERIES", ModalitiesInStudy="CT") == []


async def test_counters_of_each_level(qr: QueryRetrieve) -> None:
    patients = await find(qr, "PATIENT", PatientID="PAT1", NumberOfPatientRelatedStudies="",
                          NumberOfPatientRelatedSeries="", NumberOfPatientRelatedInstances="",
                          NumberOfStudyRelatedSeries="")  # fmt: skip
    patient = patients[0]
    assert (patient.NumberOfPatientRelatedStudies, patient.NumberOfPatientRelatedSeries) == (2, 3)
    assert patient.NumberOfPatientRelatedInstances == 4
    assert patient.NumberOfStudyRelatedSeries is None  # another level's counter: present, empty
    series = await find(qr, "SERIES", SeriesInstanceUID=uid(1, 1), NumberOfSeriesRelatedInstances="")
    assert series[0].NumberOfSeriesRelatedInstances == 2


async def test_series_and_instance_levels(qr: QueryRetrieve) -> None:
    series = await find(qr, "SERIES", StudyInstanceUID=STUDY_CHEST, SeriesInstanceUID="", SeriesDescription="")
    assert sorted((s.SeriesInstanceUID, s.SeriesDescription) for s in series) == [
        (uid(1, 1), "Axial"),
        (uid(1, 2), "PET"),
    ]
    images = await find(qr, "IMAGE", PatientName="DOE^JOHN", SeriesInstanceUID=uid(1, 1), SOPInstanceUID="",
                        InstanceNumber="")  # fmt: skip
    assert sorted((i.SOPInstanceUID, i.InstanceNumber) for i in images) == [(uid(1, 1, 1), 1), (uid(1, 1, 2), 2)]
    [without_number] = await find(qr, "INSTANCE", SOPInstanceUID=uid(1, 2, 1), InstanceNumber="")
    assert (without_number.QueryRetrieveLevel, without_number.InstanceNumber) == ("INSTANCE", None)


async def test_keys_outside_main_tags_read_from_the_first_instance(node: NodeContext, qr: QueryRetrieve) -> None:
    keys = dict(StudyInstanceUID=STUDY_CHEST, PatientWeight="", ImageType="", SeriesDescription="")
    [always] = await find(qr, "STUDY", **keys)
    # From the first instance stored: even a series main tag is then answered at study level.
    assert (always.PatientWeight, list(always.ImageType), always.SeriesDescription) == (
        "82.5",
        ["ORIGINAL", "PRIMARY", "AXIAL"],
        "Axial",
    )
    [main_only] = await find(qr, "STUDY", StudyInstanceUID=STUDY_CHEST, SeriesDescription="")
    assert main_only.SeriesDescription == ""  # without a file, only main tags of the level and above
    [never] = await find(variant(node, StorageAccessOnFind="Never"), "STUDY", **keys)
    assert (never.PatientWeight, never.ImageType, never.SeriesDescription) == (None, "", "")  # empty DS: None
    [answers] = await find(variant(node, StorageAccessOnFind="Answers"), "STUDY", **keys)
    assert answers.PatientWeight == "82.5"


async def test_constraints_outside_main_tags(node: NodeContext, qr: QueryRetrieve) -> None:
    assert await values(qr, "IMAGE", "SOPInstanceUID", ImageType="DERIVED*") == [uid(1, 1, 2)]
    assert await values(qr, "SERIES", "SeriesInstanceUID", ImageType="ORIGINAL*") == [uid(1, 1)]
    assert await values(qr, "STUDY", "StudyInstanceUID", PatientWeight="82.5") == [STUDY_CHEST]
    for mode in ("Answers", "Never"):  # files may not be read to match: nothing matches
        assert await find(variant(node, StorageAccessOnFind=mode), "IMAGE", ImageType="DERIVED*") == []


async def test_sequences_are_copied_from_the_file(node: NodeContext, qr: QueryRetrieve) -> None:
    keys = dict(StudyInstanceUID=STUDY_BRAIN, ReferencedImageSequence=[], DerivationCodeSequence=[Dataset()])
    [answer] = await find(qr, "IMAGE", **keys)
    assert [item.ReferencedSOPInstanceUID for item in answer.ReferencedImageSequence] == [uid(1, 1, 1, 1)]
    assert "DerivationCodeSequence" not in answer  # not in the file: left out
    [never] = await find(variant(node, StorageAccessOnFind="Never"), "IMAGE", **keys)
    assert "ReferencedImageSequence" not in never


async def test_answers_in_the_default_encoding(node: NodeContext, qr: QueryRetrieve) -> None:
    query = dict(PatientID="PAT3", PatientName="", StudyDescription="")
    [latin1] = await find(qr, "STUDY", **query)
    # What ISO_IR 100 cannot hold is dropped, as Orthanc does (no `?` in its place).
    assert (latin1.SpecificCharacterSet, str(latin1.PatientName), latin1.StudyDescription) == ("ISO_IR 100", "^", "")
    [utf8] = await find(variant(node, runtime=replace(node.runtime, default_encoding="Utf8")), "STUDY", **query)
    assert (utf8.SpecificCharacterSet, str(utf8.PatientName)) == ("ISO_IR 192", "Иванов^Иван")
    assert utf8.StudyDescription == "Без даты"
    [ascii_] = await find(variant(node, DefaultEncoding="Ascii"), "PATIENT", PatientID="pat2", PatientName="")
    assert (ascii_.SpecificCharacterSet, str(ascii_.PatientName)) == ("ISO_IR 6", "Mller^Jrgen")
    cyrillic = dict(SpecificCharacterSet="ISO_IR 192", PatientName="иванов*")  # PN: case-insensitive beyond ASCII
    assert await values(qr, "PATIENT", "PatientID", **cyrillic) == ["PAT3"]


async def test_limits_cut_answers_short(node: NodeContext, qr: QueryRetrieve) -> None:
    limited = variant(node, LimitFindResults=2, LimitFindInstances=3)
    answers = limited.find(identifier("STUDY", StudyInstanceUID=""), our_aet=OUR_AET)
    assert len([a async for a in answers]) == 2 and not answers.complete
    exact = limited.find(identifier("PATIENT", PatientID="PAT?", PatientSex="M"), our_aet=OUR_AET)
    assert len([a async for a in exact]) == 1 and exact.complete
    two = limited.find(identifier("SERIES", StudyInstanceUID=STUDY_CHEST), our_aet=OUR_AET)
    assert len([a async for a in two]) == 2 and two.complete  # as many as the limit: complete
    instances = limited.find(identifier("IMAGE", SOPInstanceUID=""), our_aet=OUR_AET)
    assert len([a async for a in instances]) == 3 and not instances.complete


async def test_a_resource_deleted_during_the_search_is_skipped(qr: QueryRetrieve, http: httpx.AsyncClient) -> None:
    answers = qr.find(identifier("IMAGE", SOPInstanceUID="", PatientWeight=""), our_aet=OUR_AET)
    first = await answers.__anext__()
    for study in (await http.get("/studies")).json():
        (await http.delete(f"/studies/{study}")).raise_for_status()
    assert [a async for a in answers] == [] and answers.complete
    assert answer_on_the_wire(first).SOPInstanceUID == uid(1, 1, 1)


async def test_answers_stop_when_closed(qr: QueryRetrieve) -> None:
    answers = qr.find(identifier("IMAGE", SOPInstanceUID=""), our_aet=OUR_AET)
    await answers.__anext__()
    await answers.aclose()  # what a C-CANCEL does
    assert [a async for a in answers] == []


@pytest.mark.skipif(not SHARED_TESTDATA.is_dir(), reason=f"shared test data not found at {SHARED_TESTDATA}")
async def test_names_of_every_character_set(qr: QueryRetrieve, http: httpx.AsyncClient) -> None:
    """Names in 14 character sets, answered in Latin-1: each as the REST API shows it, less what
    Latin-1 cannot hold."""
    files = sorted((SHARED_TESTDATA / "Encodings").glob("*.dcm"))
    for path in files:
        (await http.post("/instances", content=path.read_bytes())).raise_for_status()
    expected = {}
    for patient in (await http.get("/patients?expand")).json():
        tags = patient["MainDicomTags"]
        expected[tags["PatientID"]] = tags["PatientName"].encode("latin-1", "ignore").decode("latin-1")
    answers = await find(qr, "PATIENT", PatientID="", PatientName="")
    assert {a.PatientID: str(a.PatientName) for a in answers} == expected
    assert expected["latin1"] == "Test-éüäöò" and expected["cyrillic"] == "Test-"


async def test_instances_to_retrieve(qr: QueryRetrieve, http: httpx.AsyncClient) -> None:
    ids = {item["MainDicomTags"]["SOPInstanceUID"]: item["ID"] for item in (await http.get("/instances?expand")).json()}

    async def retrieve(level: str | None, **keys: str) -> list[str]:
        found = await qr.instances_to_retrieve(identifier(level, **keys))
        by_id = {v: k for k, v in ids.items()}
        return [by_id[i] for i in found]

    chest = [uid(1, 1, 1), uid(1, 1, 2), uid(1, 2, 1)]
    assert await retrieve("PATIENT", PatientID="PAT1") == [*chest, uid(2, 1, 1)]
    assert await retrieve("STUDY", StudyInstanceUID=STUDY_CHEST) == chest
    assert await retrieve("STUDY", AccessionNumber="acc1", StudyInstanceUID=STUDY_KNEE) == chest  # accession wins
    assert await retrieve("STUDY", AccessionNumber="", StudyInstanceUID=STUDY_CHEST) == chest  # unless empty
    assert await retrieve("SERIES", SeriesInstanceUID=f"{uid(1, 2)}\\9.9\\{uid(2, 1)}") == [uid(1, 2, 1), uid(2, 1, 1)]
    assert await retrieve("IMAGE", SOPInstanceUID=uid(3, 1, 1), StudyInstanceUID=STUDY_CHEST) == [uid(3, 1, 1)]
    assert await retrieve("STUDY", StudyInstanceUID=f"{STUDY_BRAIN}\\{STUDY_BRAIN}") == [uid(2, 1, 1)]  # once
    # Without a level: the first identifier present, from instance up to patient.
    assert await retrieve(None, SeriesInstanceUID=uid(3, 1), PatientID="PAT1") == [uid(3, 1, 1)]
    assert await retrieve(None, PatientID="PAT4") == [uid(5, 1, 1)]


@pytest.mark.parametrize(
    ("level", "keys", "code"),
    [
        ("STUDY", {"StudyInstanceUID": "1.2.3"}, ErrorCode.BAD_REQUEST),
        ("STUDY", {"PatientID": "PAT1"}, ErrorCode.BAD_REQUEST),
        (None, {"PatientName": "DOE^JOHN"}, ErrorCode.BAD_REQUEST),
        ("STUDY", {"StudyInstanceUID": "1.2.826*"}, ErrorCode.PARAMETER_OUT_OF_RANGE),
        ("FOO", {"StudyInstanceUID": STUDY_CHEST}, ErrorCode.PARAMETER_OUT_OF_RANGE),
    ],
)
async def test_what_cannot_be_retrieved(
    qr: QueryRetrieve, level: str | None, keys: dict[str, str], code: ErrorCode
) -> None:
    with pytest.raises(OrthancError) as raised:
        await qr.instances_to_retrieve(identifier(level, **keys))
    assert raised.value.code == code


def test_storage_access_on_find_is_checked() -> None:
    with pytest.raises(OrthancError) as raised:
        FindSettings.from_config(Config({"StorageAccessOnFind": "Sometimes"}))
    assert raised.value.code == ErrorCode.PARAMETER_OUT_OF_RANGE
