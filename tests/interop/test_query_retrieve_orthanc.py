"""Differential test: the same C-FIND queries to real Orthanc 1.10.1 and to our query/retrieve
service, over the same files, must give the same answers (same datasets, same values, in the
same character set) and fail in the same cases.

Orthanc runs once for the module, on free loopback ports, and is asked with a pynetdicom SCU
in a worker thread. Our answers go through pynetdicom's encoder and decoder (implicit VR
little endian, as the SCP sends them) before the comparison, so what is compared is what a
client would read. What may legitimately differ is normalized: the order of the answers
(Orthanc's is that of its SQL lookup), and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from node.config import Config
from node.context import NodeContext
from node.dicom.query import FindAnswer
from node.errors import OrthancError
from node.runtime_settings import RuntimeSettings
from node.services.query_retrieve import FindSettings, QueryRetrieve
from tests.support.datasets import SHARED_TESTDATA
from tests.support.orthanc import RunningOrthanc, needs_orthanc, running_orthanc
from tests.support.peers import c_find
from tests.support.qr_corpus import STUDY_BRAIN, STUDY_CHEST, STUDY_EMPTY_DATE, STUDY_KNEE, corpus, identifier, uid
from tests.support.query_retrieve import answer_on_the_wire

pytestmark = needs_orthanc

AET = "ORTHANC"
STATUS_SUCCESS = 0x0000
STATUS_UNABLE_TO_PROCESS = 0xC000
# Real scanner files, when ../shared/testdata is there: more character sets, sequences, dates.
REAL_FILES = (
    "DummyCT.dcm", "Encodings/Lena-latin1.dcm", "Encodings/Lena-latin2.dcm", "Encodings/Lena-cyrillic.dcm",
    "Encodings/Lena-utf8.dcm", "Encodings/Lena-shift-jis.dcm", "Encodings/Lena-greek.dcm",
    "Encodings/ISO_IR13.dcm", "Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm",
    "Knee/T2/IM-0001-0001.dcm", "Comunix/Ct/IM-0001-0001.dcm", "Comunix/Pet/IM-0001-0001.dcm",
    "PatientWith2studies/TEST_1_study_1234.dcm", "PatientWith2studies/TEST_1_study_2345.dcm",
)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    level: str
    keys: dict[str, Any] = field(default_factory=dict)

    def identifier(self) -> Dataset:
        return identifier(self.level, **self.keys)


SCENARIOS = [
    Scenario("patients with counters", "PATIENT", dict(
        PatientName="", PatientID="", PatientBirthDate="", PatientSex="", NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedSeries="", NumberOfPatientRelatedInstances="")),
    Scenario("PN case-insensitive wildcard", "PATIENT", dict(PatientName="doe*", PatientID="")),
    Scenario("patient tags of a study are its own copy", "STUDY", dict(PatientName="*JR", StudyInstanceUID="")),
    Scenario("patient tags of a series come from its study", "SERIES", dict(PatientName="", SeriesInstanceUID="")),
    Scenario("patient tags of an instance come from its study", "IMAGE", dict(PatientName="DOE^JOHN^^JR")),
    Scenario("PatientID wildcard is case-sensitive", "PATIENT", dict(PatientID="pat?", PatientName="")),
    Scenario("upper-cased accents match, lower-level counter stays empty", "PATIENT", dict(
        PatientName="MÜLLER^JÜRGEN", SpecificCharacterSet="ISO_IR 100", NumberOfStudyRelatedSeries="")),
    Scenario("study list with counters", "STUDY", dict(
        PatientName="", PatientID="", StudyDate="", StudyTime="", AccessionNumber="", StudyDescription="",
        StudyInstanceUID="", ReferringPhysicianName="", ModalitiesInStudy="", SOPClassesInStudy="",
        NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances="")),
    Scenario("closed date range", "STUDY", dict(StudyDate="20200101-20200401", StudyInstanceUID="")),
    Scenario("open date range matches empty dates", "STUDY", dict(StudyDate="-20200101", PatientName="")),
    Scenario("date range from", "STUDY", dict(StudyDate="20200315-", AccessionNumber="")),
    Scenario("UID list", "STUDY", dict(StudyInstanceUID=f"{STUDY_CHEST}\\{STUDY_KNEE}\\1.2.3", StudyDescription="")),
    Scenario("ModalitiesInStudy wildcard", "STUDY", dict(ModalitiesInStudy="C*", NumberOfStudyRelatedInstances="")),
    Scenario("ModalitiesInStudy list", "STUDY", dict(ModalitiesInStudy="PT\\US", PatientName="")),
    Scenario("ModalitiesInStudy is case-sensitive", "STUDY", dict(ModalitiesInStudy="ct", PatientName="")),
    Scenario("Modality at study level matches nothing", "STUDY", dict(Modality="CT", PatientName="")),
    Scenario("accession number is case-sensitive", "STUDY", dict(AccessionNumber="ACC2", PatientName="")),
    Scenario("wildcard in a list is literal", "STUDY", dict(AccessionNumber="ACC1\\acc*", PatientName="")),
    Scenario("non-main keys read from the first instance", "STUDY", dict(
        PatientName="DOE^JOHN", PatientWeight="", SeriesDescription="", InstitutionAddress="")),
    Scenario("series main tag at study level, without file", "STUDY", dict(SeriesDescription="", PatientID="")),
    Scenario("non-main constraint at study level", "STUDY", dict(PatientWeight="82.5", StudyInstanceUID="")),
    Scenario("sequences of a real file at study level", "STUDY", dict(
        PatientID="ozp00SjY2xG", ReferencedImageSequence=[], DerivationCodeSequence=[], StudyDescription="")),
    Scenario("time range", "STUDY", dict(StudyTime="100000-110000", StudyInstanceUID="")),
    Scenario("series of a study", "SERIES", dict(
        StudyInstanceUID=STUDY_CHEST, SeriesInstanceUID="", Modality="", SeriesNumber="", SeriesDescription="",
        NumberOfSeriesRelatedInstances="")),
    Scenario("modality list, ancestor constraint", "SERIES", dict(Modality="CT\\PT", PatientName="DOE*", SeriesDate="")),
    Scenario("non-main constraint read from files", "SERIES", dict(ImageType="ORIGINAL*", SeriesInstanceUID="")),
    Scenario("instances of a series", "IMAGE", dict(
        StudyInstanceUID=STUDY_CHEST, SeriesInstanceUID=uid(1, 1), SOPInstanceUID="", InstanceNumber="",
        SOPClassUID="", NumberOfSeriesRelatedInstances="")),
    Scenario("sequence keys copied from the file", "IMAGE", dict(
        StudyInstanceUID=STUDY_BRAIN, ReferencedImageSequence=[], DerivationCodeSequence=[], SOPInstanceUID="")),
    Scenario("lower-case level name", "study", dict(PatientID="PAT1", StudyInstanceUID="")),
    Scenario("instance level spelled INSTANCE", "INSTANCE", dict(PatientID="pat2", SOPInstanceUID="")),
    Scenario("answers in Latin-1 whatever the query's character set", "STUDY", dict(
        SpecificCharacterSet="ISO_IR 192", PatientName="*", StudyDescription="")),
    Scenario("a query key asking for RetrieveAETitle", "STUDY", dict(RetrieveAETitle="", AccessionNumber="ACC1")),
]  # fmt: skip

FAILING = [
    Scenario("wildcard on a UID", "STUDY", dict(StudyInstanceUID="1.2.826*")),
    Scenario("wildcard on a date", "STUDY", dict(StudyDate="2020*")),
    Scenario("wildcard in a date range", "STUDY", dict(StudyDate="2020*-2021")),
    Scenario("unknown level", "FOO", dict(PatientName="")),
]


# Answers in UTF-8, no file ever read, at most 3 answers (2 at instance level).
RESTRICTED = {"DefaultEncoding": "Utf8", "StorageAccessOnFind": "Never", "LimitFindResults": 3, "LimitFindInstances": 2}
RESTRICTED_SCENARIOS = [
    Scenario("UTF-8 answers", "STUDY", dict(
        StudyInstanceUID=f"{STUDY_EMPTY_DATE}\\{STUDY_KNEE}", PatientName="", StudyDescription="")),
    Scenario("no file for non-main keys or sequences", "IMAGE", dict(
        StudyInstanceUID=STUDY_BRAIN, PatientWeight="", ReferencedImageSequence=[], SOPInstanceUID="")),
    Scenario("as many matches as the limit", "SERIES", dict(
        SeriesInstanceUID=f"{uid(1, 1)}\\{uid(1, 2)}\\{uid(2, 1)}", Modality="", SeriesDescription="")),
]  # fmt: skip
# Deliberate deviation: Orthanc applies its limit to the candidates that pass the main-tag
# lookup (it takes limit + 1 of them, and ends with 0xFE00 when there were more), before
# constraints outside the main tags filter them. Here no file may be read, so nothing
# matches: Orthanc still says "matching terminated" (0xFE00), we say complete (0x0000), the
# answers being the same (none). We count the limit on real matches only.
COMPLETE_HERE = Scenario(
    "no file for non-main constraints", "SERIES", dict(ImageType="ORIGINAL*", SeriesInstanceUID="")
)
# Orthanc's answers are the first ones of its SQL lookup: only their number and the status compare.
TRUNCATED = [
    Scenario("patients", "PATIENT", dict(PatientID="")),
    Scenario("instances", "IMAGE", dict(SOPInstanceUID="")),
]
STATUS_MATCHING_TERMINATED = 0xFE00


def _files() -> list[bytes]:
    real = [(SHARED_TESTDATA / name).read_bytes() for name in REAL_FILES] if SHARED_TESTDATA.is_dir() else []
    return corpus() + real


def _running(folder: Path, options: dict[str, Any]) -> Iterator[RunningOrthanc]:
    with running_orthanc(folder, aet=AET, overrides={"DicomAlwaysAllowFind": True, **options}) as running:
        for data in _files():
            httpx.post(f"{running.http_url}/instances", content=data, timeout=30).raise_for_status()
        yield running


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    yield from _running(tmp_path_factory.mktemp("orthanc"), {})


@pytest.fixture(scope="module")
def restricted_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    yield from _running(tmp_path_factory.mktemp("orthanc-restricted"), RESTRICTED)


async def _ours(node: NodeContext, http: httpx.AsyncClient, **options: Any) -> QueryRetrieve:
    for data in _files():
        (await http.post("/instances", content=data)).raise_for_status()
    config = Config(options)
    return QueryRetrieve(
        FindSettings.from_config(config), node.index, node.resources, runtime=RuntimeSettings.from_config(config)
    )


def _canonical(dataset: Dataset) -> dict[str, Any]:
    """Tag → value as a client reads it: text (values joined by `\\`), or items."""
    out: dict[str, Any] = {}
    for element in dataset:
        value = element.value
        if element.VR == "SQ":
            out[str(element.tag)] = [_canonical(item) for item in value]
        elif isinstance(value, (list, MultiValue)):
            out[str(element.tag)] = "\\".join(str(v) for v in value)
        else:
            out[str(element.tag)] = "" if value is None else str(value)
    return out


def _as_received(answer: FindAnswer) -> dict[str, Any]:
    """Our answer after the wire: encoded as the SCP sends it, decoded as a client does."""
    return _canonical(answer_on_the_wire(answer))


def _sorted(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(answers, key=repr)


async def test_answers_match_orthanc(orthanc: RunningOrthanc, node: NodeContext, http: httpx.AsyncClient) -> None:
    qr = await _ours(node, http)
    differences = []
    for scenario in SCENARIOS:
        theirs, status = await trio.to_thread.run_sync(c_find, orthanc.dicom_port, AET, scenario.identifier())
        assert status == STATUS_SUCCESS, f"{scenario.name}: Orthanc answered {status:#06x}"
        ours = [_as_received(answer) async for answer in qr.find(scenario.identifier(), our_aet=AET)]
        expected = _sorted([_canonical(answer) for answer in theirs])
        if _sorted(ours) != expected:
            differences.append(f"{scenario.name}:\n  Orthanc {expected}\n  ours    {_sorted(ours)}")
    assert not differences, "\n".join(differences)


async def test_failures_match_orthanc(orthanc: RunningOrthanc, node: NodeContext, http: httpx.AsyncClient) -> None:
    qr = await _ours(node, http)
    for scenario in FAILING:
        theirs, status = await trio.to_thread.run_sync(c_find, orthanc.dicom_port, AET, scenario.identifier())
        assert (theirs, status) == ([], STATUS_UNABLE_TO_PROCESS), scenario.name
        with pytest.raises(OrthancError):
            _ = [answer async for answer in qr.find(scenario.identifier(), our_aet=AET)]


async def test_restricted_options_match_orthanc(
    restricted_orthanc: RunningOrthanc, node: NodeContext, http: httpx.AsyncClient
) -> None:
    qr = await _ours(node, http, **RESTRICTED)
    for scenario in RESTRICTED_SCENARIOS:
        theirs, status = await trio.to_thread.run_sync(
            c_find, restricted_orthanc.dicom_port, AET, scenario.identifier()
        )
        ours = [_as_received(answer) async for answer in qr.find(scenario.identifier(), our_aet=AET)]
        assert status == STATUS_SUCCESS, scenario.name
        assert _sorted(ours) == _sorted([_canonical(answer) for answer in theirs]), scenario.name
    for scenario in TRUNCATED:
        theirs, status = await trio.to_thread.run_sync(
            c_find, restricted_orthanc.dicom_port, AET, scenario.identifier()
        )
        answers = qr.find(scenario.identifier(), our_aet=AET)
        found = [answer async for answer in answers]
        assert (len(found), answers.complete) == (len(theirs), False), scenario.name
        assert status == STATUS_MATCHING_TERMINATED, scenario.name
    answers = qr.find(COMPLETE_HERE.identifier(), our_aet=AET)
    theirs, status = await trio.to_thread.run_sync(
        c_find, restricted_orthanc.dicom_port, AET, COMPLETE_HERE.identifier()
    )
    assert ([a async for a in answers], answers.complete) == ([], True)
    assert (theirs, status) == ([], STATUS_MATCHING_TERMINATED)
