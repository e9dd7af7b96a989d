"""Our C-ECHO / C-STORE SCP, driven by DCMTK's echoscu/storescu and by pynetdicom as clients.

pynetdicom clients always run in a worker thread (trio.to_thread.run_sync): a
blocking pynetdicom call on the Trio thread would stall the very node it talks to.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import trio
import trio.testing
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts
from pynetdicom import _config as pynetdicom_config
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import Verification

from node.context import NodeContext
from node.dicom.ids import hierarchy_ids
from node.net.scp import accepted_transfer_syntaxes
from tests.support.datasets import (
    CT_IMAGE_STORAGE,
    SHARED_TESTDATA,
    dataset_part,
    make_dataset,
    make_dicom,
    needs_testdata,
    random_pixels,
    to_bytes,
)
from tests.support.dcmtk import dcmtk_tool, needs_dcmtk, run_dcmtk
from tests.support.node import client_of, new_threads, node_config, start_node, start_stoppable_node
from tests.support.peers import CALLING, associate, c_store, client_ae
from tests.support.rest import count_instances, metadata_of
from tests.support.storage import stored_files

ECHOSCU, STORESCU = dcmtk_tool("echoscu"), dcmtk_tool("storescu")
needs_echoscu_storescu = needs_dcmtk(ECHOSCU, STORESCU)

ACCEPTED = 0x00
DATASET_TRAILING_PADDING = 0xFFFCFFFC
# Retired storage classes pynetdicom does not list (DCMTK, hence Orthanc, accepts them).
RETIRED_STORAGE = ["1.2.840.10008.5.1.4.1.1.6", "1.2.840.10008.5.1.4.1.1.5", "1.2.840.10008.5.1.4.1.1.3"]


# -- helpers --------------------------------------------------------------------------


def as_sent(data: bytes) -> Dataset:
    """The dataset, minus what a sender may rewrite: DCMTK's storescu recomputes group lengths
    and drops the trailing padding."""
    dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    for tag in [e.tag for e in dataset if e.tag.element == 0 or e.tag == DATASET_TRAILING_PADDING]:
        del dataset[tag]
    return dataset


def with_syntax(ds: Dataset, syntax: str) -> Dataset:
    """``ds`` to be sent in ``syntax``; compressed ones get an encapsulated (opaque) frame."""
    ds.file_meta.TransferSyntaxUID = syntax
    if UID(syntax).is_encapsulated:
        ds.Rows = ds.Columns = 4
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = encapsulate([b"\xff\xd8 opaque compressed frame \xff\xd9"])
        ds["PixelData"].VR = "OB"
    return ds


# -- C-ECHO and AE titles ---------------------------------------------------------------


@needs_echoscu_storescu
async def test_echoscu(node: NodeContext) -> None:
    done = await run_dcmtk(ECHOSCU, "-aet", CALLING, "-aec", "ORTHANC", "127.0.0.1", str(node.ports["dicom"]))
    assert done.returncode == 0, done.stderr.decode()


@needs_echoscu_storescu
async def test_called_aet_not_checked_by_default(node: NodeContext) -> None:
    done = await run_dcmtk(ECHOSCU, "-aec", "SOMEONE-ELSE", "127.0.0.1", str(node.ports["dicom"]))
    assert done.returncode == 0, done.stderr.decode()


@needs_echoscu_storescu
@pytest.mark.parametrize(
    ("strict", "called", "accepted"),
    [(False, "ORTHANC", True), (False, "orthanc", True), (False, "WRONG", False), (True, "orthanc", False)],
)
async def test_check_called_aet(
    nursery: trio.Nursery, tmp_path: Path, strict: bool, called: str, accepted: bool
) -> None:
    config = node_config(tmp_path, DicomCheckCalledAet=True, StrictAetComparison=strict)
    context = await start_node(nursery, config)
    done = await run_dcmtk(ECHOSCU, "-aec", called, "127.0.0.1", str(context.ports["dicom"]))
    assert (done.returncode == 0) is accepted, done.stderr.decode()
    if not accepted:
        assert b"Called AE Title Not Recognized" in done.stderr


async def _echo_status(port: int, calling: str) -> tuple[bool, int | None]:
    """(association accepted, C-ECHO status or None when the SCP aborted instead)."""

    def echo() -> tuple[bool, int | None]:
        ae = client_ae(calling)
        ae.add_requested_context(Verification)
        assoc = associate(ae, port)
        if not assoc.is_established:
            return False, None
        status = assoc.send_c_echo()
        if assoc.is_established:
            assoc.release()
        return True, int(status.Status) if "Status" in status else None

    return await trio.to_thread.run_sync(echo)


async def test_echo_authorization_by_declared_modality(nursery: trio.Nursery, tmp_path: Path) -> None:
    modalities = {
        "known": ["KNOWN", "127.0.0.1", 104],  # the array form allows everything
        "mute": {"AET": "MUTE", "Host": "127.0.0.1", "Port": 104, "AllowEcho": False},
    }
    config = node_config(tmp_path, DicomAlwaysAllowEcho=False, DicomModalities=modalities)
    port = (await start_node(nursery, config)).ports["dicom"]
    assert await _echo_status(port, "KNOWN") == (True, 0x0000)
    assert await _echo_status(port, "known") == (True, 0x0000)  # AET compared case-insensitively
    assert await _echo_status(port, "MUTE") == (True, None)  # refused command: association aborted
    assert await _echo_status(port, "STRANGER") == (True, None)


async def test_unknown_calling_aet_rejected_when_nothing_is_always_allowed(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    config = node_config(
        tmp_path,
        DicomAlwaysAllowEcho=False,
        DicomAlwaysAllowStore=False,
        DicomModalities={"known": ["KNOWN", "127.0.0.1", 104]},
    )
    port = (await start_node(nursery, config)).ports["dicom"]
    assert await _echo_status(port, "STRANGER") == (False, None)
    assert await _echo_status(port, "KNOWN") == (True, 0x0000)


# -- C-STORE ------------------------------------------------------------------------


async def _store_with_storescu(port: int, files: list[Path], *options: str) -> None:
    done = await run_dcmtk(
        STORESCU, "-v", "-R", "-aet", CALLING, "-aec", "ORTHANC", *options, "127.0.0.1", str(port), *map(str, files)
    )
    errors = done.stderr.decode()
    assert done.returncode == 0 and "E:" not in errors, errors


async def _assert_same_as_rest(
    nursery: trio.Nursery, tmp_path: Path, http: httpx.AsyncClient, files: list[Path], *, exact: bool
) -> None:
    """Each file, stored by C-STORE (``http`` reads that node), equals its REST upload to a fresh node.

    ``exact``: same bytes after the meta header; else same elements, as a sender may re-encode.
    """
    rest_node = await start_node(nursery, node_config(tmp_path / "rest"))
    async with client_of(rest_node) as rest:
        for file in files:
            uploaded = (await rest.post("/instances", content=file.read_bytes())).json()
            assert uploaded["Status"] in ("Success", "AlreadyStored"), file
            instance = uploaded["ID"]
            stored = await http.get(f"/instances/{instance}")
            assert stored.status_code == 200, f"{file.name} not stored under the same ID"
            assert stored.json()["ParentSeries"] == uploaded["ParentSeries"]
            by_dicom = (await http.get(f"/instances/{instance}/file")).content
            by_rest = (await rest.get(f"/instances/{instance}/file")).content
            if exact:
                assert dataset_part(by_dicom) == dataset_part(by_rest), f"{file.name}: dataset bytes differ"
            else:
                assert as_sent(by_dicom) == as_sent(by_rest), file.name
            received = await metadata_of(http, instance)
            assert received["TransferSyntax"] == (await metadata_of(rest, instance))["TransferSyntax"]
            assert received["Origin"] == "DicomProtocol"
            assert received["RemoteAET"] == CALLING
            assert received["CalledAET"] == "ORTHANC"
            assert received["RemoteIP"] == "127.0.0.1"
            assert (await metadata_of(rest, instance))["Origin"] == "RestApi"


@needs_echoscu_storescu
async def test_storescu_stores_like_rest_upload(
    nursery: trio.Nursery, tmp_path: Path, node: NodeContext, http: httpx.AsyncClient
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    files = []
    for number in range(3):
        path = folder / f"{number}.dcm"
        path.write_bytes(make_dicom(patient_id="STORESCU", instance_number=number, pixels=b"\x01\x02" * 64))
        files.append(path)
    await _store_with_storescu(node.ports["dicom"], files)
    assert await count_instances(http) == 3
    await _assert_same_as_rest(nursery, tmp_path, http, files, exact=True)


@needs_echoscu_storescu
async def test_large_dataset_records_the_md5_of_its_file(
    tmp_path: Path, node: NodeContext, http: httpx.AsyncClient
) -> None:
    """The MD5 of a large file is taken by the index while the file is flushed: the same as a small one's."""
    path = tmp_path / "large.dcm"
    path.write_bytes(to_bytes(random_pixels(256 * 1024, patient_id="LARGE")))
    await _store_with_storescu(node.ports["dicom"], [path])
    (instance,) = (await http.get("/instances")).json()
    stored = (await http.get(f"/instances/{instance}/file")).content
    base = f"/instances/{instance}/attachments/dicom"
    assert (await http.get(f"{base}/md5")).text == hashlib.md5(stored).hexdigest()
    assert (await http.get(f"{base}/compressed-md5")).text == hashlib.md5(stored).hexdigest()


def _many_files(folder: Path, count: int, patient_id: str) -> list[Path]:
    folder.mkdir()
    files = []
    for number in range(count):
        path = folder / f"{number}.dcm"
        path.write_bytes(make_dicom(patient_id=patient_id, instance_number=number))
        files.append(path)
    return files


@needs_echoscu_storescu
async def test_storescu_many_files_in_one_association(
    tmp_path: Path, node: NodeContext, http: httpx.AsyncClient
) -> None:
    files = _many_files(tmp_path / "many", 120, "MANY")
    await _store_with_storescu(node.ports["dicom"], files)
    assert await count_instances(http) == 120


@needs_echoscu_storescu
async def test_parallel_storescu_associations(tmp_path: Path, node: NodeContext, http: httpx.AsyncClient) -> None:
    batches = [_many_files(tmp_path / f"batch{n}", 30, f"PARALLEL{n}") for n in range(4)]
    async with trio.open_nursery() as nursery:
        for files in batches:
            nursery.start_soon(_store_with_storescu, node.ports["dicom"], files)
    assert await count_instances(http) == 120
    answer = await http.get("/patients")
    assert len(answer.json()) == 4


# storescu's option proposing a transfer syntax in a context of its own (with -R).
STORESCU_PROPOSAL = {
    "1.2.840.10008.1.2": "-xi",
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}


@needs_echoscu_storescu
@needs_testdata
@pytest.mark.usefixtures("raw_file_sending")
async def test_real_files_in_every_transfer_syntax(
    nursery: trio.Nursery, tmp_path: Path, node: NodeContext, http: httpx.AsyncClient
) -> None:
    """Compressed, big-endian, deflated and bare-dataset files keep their encoding over C-STORE."""
    files = sorted((SHARED_TESTDATA / "TransferSyntaxes").glob("*.dcm"))
    for file in files:
        syntax = file.name.removesuffix(".dcm")
        if syntax in STORESCU_PROPOSAL:
            await _store_with_storescu(node.ports["dicom"], [file], STORESCU_PROPOSAL[syntax])
        else:  # no storescu option proposes it alone: pynetdicom sends the file as it is
            sop_class = str(pydicom.dcmread(file, stop_before_pixels=True).SOPClassUID)
            send = partial(_send_file, node.ports["dicom"], file, sop_class, syntax)
            assert await trio.to_thread.run_sync(send) == 0x0000
    await _assert_same_as_rest(nursery, tmp_path, http, files, exact=False)


async def test_instance_sent_twice_keeps_one_file(node: NodeContext, http: httpx.AsyncClient) -> None:
    """The second file is written in the association thread, then removed when indexing finds it known."""
    ds = make_dataset(patient_id="TWICE")
    statuses = await trio.to_thread.run_sync(c_store, node.ports["dicom"], [ds, ds])
    assert statuses == [0x0000, 0x0000]  # as Orthanc: an instance already stored is a success
    assert await count_instances(http) == 1
    assert len(stored_files(node.files)) == 1


async def test_every_storage_sop_class(node: NodeContext, http: httpx.AsyncClient) -> None:
    classes = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts] + RETIRED_STORAGE
    datasets = [make_dataset(patient_id="ALLSOP", SOPClassUID=uid) for uid in classes]
    for ds in datasets:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    port = node.ports["dicom"]
    for start in range(0, len(datasets), 100):
        statuses = await trio.to_thread.run_sync(c_store, port, datasets[start : start + 100])
        assert set(statuses) == {0x0000}
    assert await count_instances(http) == len(classes)


async def test_every_accepted_transfer_syntax_one_context_each(node: NodeContext, http: httpx.AsyncClient) -> None:
    syntaxes = accepted_transfer_syntaxes(["1.2.840.10008.1.*"])
    assert {JPEGBaseline8Bit, JPEG2000, RLELossless, DeflatedExplicitVRLittleEndian} <= set(syntaxes)
    datasets = [with_syntax(make_dataset(patient_id="ALLTS"), syntax) for syntax in syntaxes]
    statuses = await trio.to_thread.run_sync(c_store, node.ports["dicom"], datasets)
    assert statuses == [0x0000] * len(datasets)
    for ds, syntax in zip(datasets, syntaxes, strict=True):
        instance = hierarchy_ids(ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)[3]
        assert (await metadata_of(http, instance))["TransferSyntax"] == syntax


async def test_preferred_transfer_syntax_in_a_combined_context(node: NodeContext) -> None:
    """Offered several syntaxes in one context, we pick Explicit VR Little Endian, as Orthanc does."""

    def negotiate() -> str:
        ae = client_ae()
        ae.add_requested_context(CT_IMAGE_STORAGE, [ImplicitVRLittleEndian, JPEGBaseline8Bit, ExplicitVRLittleEndian])
        assoc = associate(ae, node.ports["dicom"])
        try:
            (context,) = assoc.accepted_contexts
            return str(context.transfer_syntax[0])
        finally:
            assoc.release()

    assert await trio.to_thread.run_sync(negotiate) == ExplicitVRLittleEndian


def _negotiate(port: int, sop_class: str, syntax: str) -> int | None:
    """Result of one proposed context (0 accepted), None if the association failed."""
    ae = client_ae()
    ae.add_requested_context(sop_class, [syntax])
    ae.add_requested_context(Verification)
    assoc = associate(ae, port)
    if not assoc.is_established:
        return None
    try:
        results = {str(cx.abstract_syntax): cx.result for cx in assoc.accepted_contexts + assoc.rejected_contexts}
        return results[sop_class]
    finally:
        assoc.release()


async def test_accepted_transfer_syntaxes_option(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, AcceptedTransferSyntaxes=["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.5?"])
    port = (await start_node(nursery, config)).ports["dicom"]
    negotiate = partial(trio.to_thread.run_sync, _negotiate, port, CT_IMAGE_STORAGE)
    assert await negotiate(ExplicitVRLittleEndian) == ACCEPTED
    assert await negotiate(JPEGBaseline8Bit) == ACCEPTED
    assert await negotiate(ImplicitVRLittleEndian) != ACCEPTED
    assert await negotiate("1.2.840.10008.1.2.4.70") != ACCEPTED


@pytest.mark.parametrize("accepted", [False, True])
async def test_unknown_sop_class(nursery: trio.Nursery, tmp_path: Path, accepted: bool) -> None:
    private_class = "1.2.826.0.1.3680043.8.498.424242"
    context = await start_node(nursery, node_config(tmp_path, UnknownSopClassAccepted=accepted))
    port = context.ports["dicom"]
    result = await trio.to_thread.run_sync(_negotiate, port, private_class, ExplicitVRLittleEndian)
    assert (result == ACCEPTED) is accepted
    if accepted:
        ds = make_dataset(patient_id="PRIVATE", SOPClassUID=private_class)
        ds.file_meta.MediaStorageSOPClassUID = private_class
        assert await trio.to_thread.run_sync(c_store, port, [ds]) == [0x0000]
        assert (await context.index.statistics())["CountInstances"] == 1


async def test_user_identity_accepted_without_an_answer(node: NodeContext) -> None:
    """As Orthanc: a user identity is not checked, and no server response is sent even if asked for."""

    def negotiate() -> list[str]:
        identity = UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.primary_field, identity.secondary_field = b"user", b"password"
        identity.positive_response_requested = True
        ae = client_ae()
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", node.ports["dicom"], ae_title="ORTHANC", ext_neg=[identity])
        assert assoc.is_established
        try:
            assert int(assoc.send_c_echo().Status) == 0
            return [type(item).__name__ for item in assoc.acceptor.primitive.user_information]
        finally:
            assoc.release()

    items = await trio.to_thread.run_sync(negotiate)
    assert "UserIdentityNegotiation" not in items
    assert "MaximumLengthNotification" in items


async def test_maximum_pdu_length(nursery: trio.Nursery, tmp_path: Path) -> None:
    context = await start_node(nursery, node_config(tmp_path, MaximumPduLength=32768))

    def announced() -> int:
        ae = client_ae()
        ae.add_requested_context(Verification)
        assoc = associate(ae, context.ports["dicom"])
        try:
            return int(assoc.acceptor.maximum_length)
        finally:
            assoc.release()

    assert await trio.to_thread.run_sync(announced) == 32768


# -- bad datasets ---------------------------------------------------------------------


@pytest.fixture
def raw_file_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom then sends a file given by path as it is, instead of decoding and re-encoding it."""
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)


def _send_file(port: int, path: Path, sop_class: str, syntax: str = ExplicitVRLittleEndian) -> int:
    """C-STORE one file in one association (as it is, with ``raw_file_sending``)."""
    ae = client_ae()
    ae.add_requested_context(sop_class, [syntax])
    assoc = associate(ae, port)
    try:
        return int(assoc.send_c_store(path).Status)
    finally:
        assoc.release()


def _with_dataset(good: bytes, dataset: bytes) -> bytes:
    return good[: len(good) - len(dataset_part(good))] + dataset


@pytest.mark.parametrize(
    ("damage", "status"),
    [
        ("garbage", 0xC000),  # nothing readable after the meta header
        ("truncated", 0xC000),  # the last value is cut short
        ("other-instance", 0xA900),  # the dataset is not the instance the command announces
    ],
)
@pytest.mark.usefixtures("raw_file_sending")
async def test_bad_dataset_is_refused_and_nothing_stored(
    node: NodeContext, http: httpx.AsyncClient, tmp_path: Path, damage: str, status: int
) -> None:
    ds = make_dataset(patient_id="BAD", pixels=b"\x01\x02" * 500)
    good = to_bytes(ds)
    if damage == "garbage":  # the UIDs pynetdicom needs to send it, then noise
        identity = Dataset()
        identity.SOPClassUID, identity.SOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        identity.file_meta = ds.file_meta
        data = _with_dataset(good, dataset_part(to_bytes(identity)) + b"\x10\x00\x10\x00PN\xff\x7fnoise" * 10)
    elif damage == "truncated":
        data = good[:-300]
    else:
        other = make_dataset(patient_id="BAD")
        other.file_meta = ds.file_meta
        data = _with_dataset(good, dataset_part(to_bytes(other)))
    path = tmp_path / f"{damage}.dcm"
    path.write_bytes(data)
    assert await trio.to_thread.run_sync(_send_file, node.ports["dicom"], path, CT_IMAGE_STORAGE) == status
    assert await count_instances(http) == 0
    assert not stored_files(node.files)


# -- stopping -----------------------------------------------------------------------


def _hold_open(port: int, opened: Callable[[], Any]) -> bool:
    """Open an association, echo, tell the test, then wait for the SCP to end it."""
    ae = client_ae()
    ae.add_requested_context(Verification)
    assoc = associate(ae, port)
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    trio.from_thread.run_sync(opened)
    assoc.join(30)
    return assoc.is_aborted


async def test_stopping_the_node_aborts_a_pynetdicom_association(tmp_path: Path) -> None:
    """pynetdicom as the peer: it sees the A-ABORT, and no thread outlives the node."""
    before = set(threading.enumerate())
    outcome: dict[str, bool] = {}
    async with trio.open_nursery() as nursery:
        stoppable = await start_stoppable_node(nursery, node_config(tmp_path))
        context = stoppable.context
        opened = trio.Event()

        async def client() -> None:
            outcome["aborted"] = await trio.to_thread.run_sync(_hold_open, context.ports["dicom"], opened.set)

        nursery.start_soon(client)
        await opened.wait()
        stoppable.stop()
    assert outcome["aborted"], "the open association should be aborted by the stop"
    assert new_threads(before) == []


def _two_stores(
    port: int, first: Dataset, second: Dataset, stop_while_first_inside: Callable[[], Any], release: Callable[[], Any]
) -> tuple[int, int]:
    """Store ``first`` and, once the node began stopping, ``second``, on two open associations."""
    ae = client_ae()
    ae.add_requested_context(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])
    slow, late = associate(ae, port), associate(ae, port)
    result: dict[str, int] = {}
    sender = threading.Thread(target=lambda: result.update(first=int(slow.send_c_store(first).Status)))
    sender.start()
    try:
        trio.from_thread.run(stop_while_first_inside)
        result["second"] = int(late.send_c_store(second).Status)
    finally:
        trio.from_thread.run_sync(release)
        sender.join(30)
    return result["first"], result["second"]


async def test_store_arriving_while_the_node_stops_gets_out_of_resources(tmp_path: Path) -> None:
    """A store in progress completes; one arriving once the stop began is refused with 0xA700."""
    first, second = make_dataset(patient_id="FIRST"), make_dataset(patient_id="SECOND")
    async with trio.open_nursery() as nursery:
        stoppable = await start_stoppable_node(nursery, node_config(tmp_path))
        context = stoppable.context
        inside, release = trio.Event(), trio.Event()

        async def hold(result: Any) -> None:
            """An ingest listener (a real extension point) holding the first store."""
            inside.set()
            await release.wait()

        context.ingest.listeners.append(hold)

        async def stop_while_first_inside() -> None:
            await inside.wait()
            stoppable.stop()
            await trio.testing.wait_all_tasks_blocked()  # the SCP has closed its gate and waits

        port = context.ports["dicom"]
        statuses = await trio.to_thread.run_sync(_two_stores, port, first, second, stop_while_first_inside, release.set)
    assert statuses == (0x0000, 0xA700)
    assert len(stored_files(context.files)) == 1  # the first one


async def test_options_changed_through_rest_apply_to_next_associations(
    node: NodeContext, http: httpx.AsyncClient
) -> None:
    port, private_class = node.ports["dicom"], "1.2.826.0.1.3680043.8.498.424243"
    negotiate = partial(trio.to_thread.run_sync, _negotiate, port)
    assert await negotiate(private_class, ExplicitVRLittleEndian) != ACCEPTED
    assert (await http.put("/tools/unknown-sop-class-accepted", content="1")).status_code == 200
    assert await negotiate(private_class, ExplicitVRLittleEndian) == ACCEPTED
    assert (await http.put("/tools/accepted-transfer-syntaxes", content="1.2.840.10008.1.2")).status_code == 200
    assert await negotiate(CT_IMAGE_STORAGE, ExplicitVRLittleEndian) != ACCEPTED
    assert await negotiate(CT_IMAGE_STORAGE, ImplicitVRLittleEndian) == ACCEPTED
