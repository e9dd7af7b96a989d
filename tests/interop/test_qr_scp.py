"""C-FIND, C-MOVE and C-GET served by our SCP: DCMTK findscu/movescu/getscu as clients, our own
requestor for C-CANCEL, and real Orthanc 1.10.1 as the C-MOVE destination."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import trio
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.presentation import build_context

from node.context import NodeContext
from node.net import qr_scp
from node.net.ul.identifiers import encode_identifier
from node.net.ul.negotiate import STUDY_ROOT_FIND, STUDY_ROOT_MOVE
from node.net.ul.requestor import RetrieveResult, associate
from tests.support.datasets import make_dataset, make_dicom, to_bytes
from tests.support.dcmtk import dcmtk_tool, needs_dcmtk, run_dcmtk
from tests.support.dicom_remotes import Behaviour, start_remote
from tests.support.node import node_config, start_node
from tests.support.orthanc import RunningOrthanc, running_orthanc
from tests.support.peers import c_find
from tests.support.qr_corpus import STUDY_CHEST, STUDY_EMPTY_DATE, US_IMAGE_STORAGE, corpus, identifier

FINDSCU, MOVESCU, GETSCU = dcmtk_tool("findscu"), dcmtk_tool("movescu"), dcmtk_tool("getscu")
needs_qr_tools = needs_dcmtk(FINDSCU, MOVESCU, GETSCU)
CALLING = "QRSCU"
DESTINATION = "ORTHANCB"  # real Orthanc, declared in our DicomModalities


@pytest.fixture
def orthanc_destination(tmp_path: Path) -> Iterator[RunningOrthanc]:
    with running_orthanc(tmp_path / "orthanc", aet=DESTINATION) as running:
        yield running


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Our node lets QRSCU find, move and get; the destination is real Orthanc when a test asks for it."""
    modalities: dict[str, Any] = {
        "scu": {"AET": CALLING, "Host": "127.0.0.1", "Port": 1},
        "pynetdicom": ["QRTEST", "127.0.0.1", 1],  # the AE title of tests.support.peers.c_find
    }
    if "orthanc_destination" in request.fixturenames:
        orthanc = request.getfixturevalue("orthanc_destination")
        modalities["orthanc"] = [DESTINATION, "127.0.0.1", orthanc.dicom_port]
    return {"DicomModalities": modalities}


@pytest.fixture
async def archive(node: NodeContext) -> NodeContext:
    for data in corpus():
        await node.ingest.store(data)
    return node


async def findscu(port: int, folder: Path, *keys: str, model: str = "-S") -> list[pydicom.Dataset]:
    folder.mkdir()
    done = await run_dcmtk(
        FINDSCU, model, "-aet", CALLING, "-aec", "ORTHANC", "-X", "-od", str(folder),
        *[arg for key in keys for arg in ("-k", key)], "127.0.0.1", str(port),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return [pydicom.dcmread(path) for path in sorted(folder.glob("rsp*.dcm"))]


@needs_qr_tools
async def test_findscu_at_each_level(archive: NodeContext, tmp_path: Path) -> None:
    port = archive.ports["dicom"]
    patients = await findscu(port, tmp_path / "p", "0008,0052=PATIENT", "PatientName=DOE*", "PatientID", model="-P")
    assert [(str(a.PatientName), a.PatientID) for a in patients] == [("DOE^JOHN", "PAT1")]
    studies = await findscu(port, tmp_path / "s", "0008,0052=STUDY", "StudyDate=20200101-20201231", "StudyInstanceUID")
    assert sorted(a.StudyDate for a in studies) == ["20200101", "20200315"]
    assert {a.RetrieveAETitle for a in studies} == {"ORTHANC"}
    series = await findscu(
        port, tmp_path / "e", "0008,0052=SERIES", f"StudyInstanceUID={STUDY_CHEST}", "Modality=C?", "SeriesNumber"
    )
    assert [(a.Modality, a.SeriesNumber) for a in series] == [("CT", 1)]
    instances = await findscu(
        port, tmp_path / "i", "0008,0052=IMAGE", f"StudyInstanceUID={STUDY_CHEST}", "SOPInstanceUID", "InstanceNumber"
    )
    assert len(instances) == 3


async def test_find_with_a_pynetdicom_scu(archive: NodeContext) -> None:
    """pynetdicom as a second, independent C-FIND client."""
    query = identifier("STUDY", PatientName="", StudyInstanceUID="", ModalitiesInStudy="CT")
    answers, status = await trio.to_thread.run_sync(c_find, archive.ports["dicom"], "ORTHANC", query)
    assert status == 0x0000
    assert sorted(str(a.StudyInstanceUID) for a in answers) == sorted([STUDY_CHEST, STUDY_EMPTY_DATE])


@needs_qr_tools
async def test_find_refused_to_an_unknown_aet(archive: NodeContext, tmp_path: Path) -> None:
    """C-FIND is not always allowed (DicomAlwaysAllowFind): the association is aborted."""
    (tmp_path / "out").mkdir()
    done = await run_dcmtk(
        FINDSCU, "-S", "-aet", "STRANGER", "-aec", "ORTHANC", "-k", "0008,0052=STUDY", "127.0.0.1",
        str(archive.ports["dicom"]),
    )  # fmt: skip
    assert b"Peer aborted Association" in done.stderr


async def test_find_cancelled_after_the_first_answer(archive: NodeContext) -> None:
    async with associate(
        "127.0.0.1",
        archive.ports["dicom"],
        calling_aet=CALLING,
        called_aet="ORTHANC",
        contexts=[build_context(STUDY_ROOT_FIND, [ExplicitVRLittleEndian])],
    ) as peer:
        result = await peer.c_find(identifier("STUDY", StudyInstanceUID=""), STUDY_ROOT_FIND, limit=1)
        complete = await peer.c_find(identifier("STUDY", StudyInstanceUID=""), STUDY_ROOT_FIND)
    assert result.status == 0xFE00
    assert 1 <= len(result.answers) < 5
    assert (complete.status, len(complete.answers)) == (0x0000, 5)


@needs_qr_tools
async def test_movescu_to_real_orthanc(
    archive: NodeContext, orthanc_destination: RunningOrthanc, tmp_path: Path
) -> None:
    done = await run_dcmtk(
        MOVESCU, "-S", "-aet", CALLING, "-aec", "ORTHANC", "-aem", DESTINATION,
        "-k", "0008,0052=STUDY", "-k", f"StudyInstanceUID={STUDY_CHEST}", "127.0.0.1", str(archive.ports["dicom"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    async with httpx.AsyncClient(base_url=orthanc_destination.http_url) as orthanc:
        assert (await orthanc.get("/statistics")).json()["CountInstances"] == 3
        instance = (await orthanc.get("/instances")).json()[0]
        metadata = (await orthanc.get(f"/instances/{instance}/metadata", params={"expand": ""})).json()
    assert metadata["RemoteAET"] == "ORTHANC"
    assert metadata["CalledAET"] == DESTINATION


@needs_qr_tools
async def test_move_to_unknown_destination_fails(archive: NodeContext) -> None:
    done = await run_dcmtk(
        MOVESCU, "-S", "-aet", CALLING, "-aec", "ORTHANC", "-aem", "NOWHERE",
        "-k", "0008,0052=STUDY", "-k", f"StudyInstanceUID={STUDY_CHEST}", "127.0.0.1", str(archive.ports["dicom"]),
    )  # fmt: skip
    assert b"Move response with error status (Failed: UnableToProcess)" in done.stderr


async def test_move_cancelled(
    archive: NodeContext, orthanc_destination: RunningOrthanc, http: httpx.AsyncClient
) -> None:
    """A C-CANCEL right after the C-MOVE-RQ stops the sub-operations: final 0xFE00, some remaining."""
    study = "1.2.826.0.1.3680043.8.498.99"
    for number in range(20):
        await archive.ingest.store(make_dicom(patient_id="MANY", study_uid=study, instance_number=number))
    async with associate(
        "127.0.0.1",
        archive.ports["dicom"],
        calling_aet=CALLING,
        called_aet="ORTHANC",
        contexts=[build_context(STUDY_ROOT_MOVE, [ExplicitVRLittleEndian])],
    ) as peer:
        association = peer.association
        (context_id,) = association.contexts
        request = {
            "CommandField": 0x0021, "MessageID": 7, "AffectedSOPClassUID": STUDY_ROOT_MOVE, "Priority": 0,
            "CommandDataSetType": 0x0001, "MoveDestination": DESTINATION,
        }  # fmt: skip
        move_identifier = identifier("STUDY", StudyInstanceUID=study)
        await association.send_message(
            context_id, request, encode_identifier(association.contexts[context_id], move_identifier)
        )
        await association.send_message(
            context_id, {"CommandField": 0x0FFF, "MessageIDBeingRespondedTo": 7, "CommandDataSetType": 0x0101}
        )
        while True:
            answer = (await association.receive_message()).command
            if answer["Status"] != 0xFF00:
                break
    assert answer["Status"] == 0xFE00
    assert answer["NumberOfRemainingSuboperations"] > 0


@needs_qr_tools
async def test_getscu(archive: NodeContext, tmp_path: Path) -> None:
    folder = tmp_path / "got"
    folder.mkdir()
    done = await run_dcmtk(
        GETSCU, "-S", "-aet", CALLING, "-aec", "ORTHANC", "-od", str(folder),
        "-k", "0008,0052=STUDY", "-k", f"StudyInstanceUID={STUDY_CHEST}", "127.0.0.1", str(archive.ports["dicom"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    received = sorted(str(pydicom.dcmread(path).SOPInstanceUID) for path in folder.iterdir())
    chest = [
        ds for ds in (pydicom.dcmread(io.BytesIO(data)) for data in corpus()) if ds.StudyInstanceUID == STUDY_CHEST
    ]
    assert received == sorted(str(ds.SOPInstanceUID) for ds in chest)


async def _move_study(source: NodeContext, study: str, destination: str) -> tuple[RetrieveResult, list[int]]:
    """Our requestor's C-MOVE of a study served by ``source``: its result, and the remaining count of each pending answer."""
    seen: list[int] = []
    async with associate(
        "127.0.0.1",
        source.ports["dicom"],
        calling_aet=CALLING,
        called_aet="ORTHANC",
        contexts=[build_context(STUDY_ROOT_MOVE, [ExplicitVRLittleEndian])],
    ) as peer:
        result = await peer.c_move(
            identifier("STUDY", StudyInstanceUID=study), STUDY_ROOT_MOVE, destination,
            on_pending=lambda progress: seen.append(progress.remaining),
        )  # fmt: skip
    return result, seen


async def test_requestor_c_move_between_two_of_our_nodes(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Our requestor's C-MOVE, served by our SCP, whose sub-operations go to a second node."""
    destination = await start_node(nursery, node_config(tmp_path / "destination", DicomAet="SECOND"))
    modalities = {
        "scu": [CALLING, "127.0.0.1", 1],
        "second": ["SECOND", "127.0.0.1", destination.ports["dicom"]],
    }
    source = await start_node(nursery, node_config(tmp_path / "source", DicomModalities=modalities))
    for data in corpus():
        await source.ingest.store(data)
    result, seen = await _move_study(source, STUDY_CHEST, "SECOND")
    assert (result.status, result.completed, result.failed, result.warning) == (0x0000, 3, 0, 0)
    assert seen == [2, 1, 0]
    assert (await destination.index.statistics())["CountInstances"] == 3


async def test_move_opens_the_next_association_for_a_kind_it_did_not_propose(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contexts of a C-MOVE's association come from the next instances only: an instance of
    another (SOP class, syntax) ends that association and opens the next, which proposes from it
    on; every instance arrives, in order, and the pending counters follow them."""
    monkeypatch.setattr(qr_scp, "PROPOSAL_WINDOW", 2)
    sink = await start_remote(nursery, Behaviour.STORE)
    modalities = {"scu": [CALLING, "127.0.0.1", 1], "sink": ["SINK", "127.0.0.1", sink.port]}
    source = await start_node(nursery, node_config(tmp_path / "source", DicomModalities=modalities))
    study, series = "1.2.826.0.1.3680043.8.498.77", "1.2.826.0.1.3680043.8.498.77.1"
    kinds = ["CT", "CT", "US", "US", "CT"]
    sent = []
    for number, kind in enumerate(kinds):
        ds = make_dataset(patient_id="KINDS", study_uid=study, series_uid=series, instance_number=number)
        if kind == "US":
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
        await source.ingest.store(to_bytes(ds))
        sent.append(str(ds.SOPInstanceUID))
    result, seen = await _move_study(source, study, "SINK")
    assert (result.status, result.completed, result.failed) == (0x0000, 5, 0)
    assert seen == [4, 3, 2, 1, 0]
    assert [len(connection.stored) for connection in sink.connections] == [2, 2, 1]  # CT CT | US US | CT
    assert sink.stored == sent
