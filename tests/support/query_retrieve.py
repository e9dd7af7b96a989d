"""Counterparts of the query/retrieve SCU tests: two of our nodes, one querying and retrieving
from the other, and real Orthanc told where our node listens."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dsutils import decode

from bench.orthanc_process import RunningOrthanc, free_port
from node.context import NodeContext
from node.dicom.query import FindAnswer
from node.net.ul.identifiers import encode_identifier
from node.net.ul.negotiate import STUDY_ROOT_FIND
from node.net.ul.presentation import AcceptedContext

from .datasets import SHARED_TESTDATA
from .node import node_config, start_node
from .orthanc import running_orthanc
from .qr_corpus import corpus
from .rest import upload

QUERIER_AET, ARCHIVE_AET = "QUERIER", "ARCHIVE"
# The context our SCP answers a C-FIND in, as most clients propose it.
FIND_CONTEXT = AcceptedContext(1, STUDY_ROOT_FIND, ImplicitVRLittleEndian, False, True)
LOOPBACK = "127.0.0.1"
ORTHANC_TIMEOUT = 30.0  # seconds for a REST call to Orthanc


@dataclass(frozen=True)
class NodePair:
    querier: NodeContext  # asks (modality "archive") and retrieves
    archive: NodeContext  # answers, and sends to the querier (its modality "querier")


async def start_pair(
    nursery: trio.Nursery,
    tmp_path: Path,
    *,
    querier: dict[str, Any] | None = None,
    archive: dict[str, Any] | None = None,
    archive_knows_querier: dict[str, Any] | None = None,
) -> NodePair:
    """Two nodes that declare each other on fixed free ports; the dicts are extra options of each,
    and extra fields of the querier's declaration at the archive."""
    querier_port, archive_port = free_port(), free_port()
    known_querier = {"AET": QUERIER_AET, "Host": LOOPBACK, "Port": querier_port, **(archive_knows_querier or {})}
    archive_node = await start_node(
        nursery,
        node_config(
            tmp_path / "archive",
            DicomAet=ARCHIVE_AET,
            DicomPort=archive_port,
            DicomModalities={"querier": known_querier},
            **(archive or {}),
        ),
    )
    querier_node = await start_node(
        nursery,
        node_config(
            tmp_path / "querier",
            DicomAet=QUERIER_AET,
            DicomPort=querier_port,
            DicomModalities={"archive": [ARCHIVE_AET, LOOPBACK, archive_port]},
            **(querier or {}),
        ),
    )
    return NodePair(querier_node, archive_node)


async def upload_files(http: httpx.AsyncClient, files: list[bytes]) -> list[dict[str, Any]]:
    return [await upload(http, data) for data in files]


def declare_in_orthanc(orthanc: RunningOrthanc, name: str, aet: str, port: int) -> None:
    """PUT /modalities/{name} on Orthanc (it keeps it in memory): it may then query, retrieve from
    and C-MOVE to that AE title."""
    answer = httpx.put(f"{orthanc.http_url}/modalities/{name}", json=[aet, LOOPBACK, port], timeout=ORTHANC_TIMEOUT)
    answer.raise_for_status()


def orthanc_upload(orthanc: RunningOrthanc, files: list[bytes]) -> None:
    for data in files:
        httpx.post(f"{orthanc.http_url}/instances", content=data, timeout=ORTHANC_TIMEOUT).raise_for_status()


async def study_instances(client: httpx.AsyncClient, study: str) -> list[str]:
    """The Orthanc IDs of a study's instances (the same on any Orthanc-compatible node), sorted."""
    answer = await client.get(f"/studies/{study}/instances")
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return sorted(instance["ID"] for instance in answer.json())


KNEE_FILES = ("Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm", "Knee/T2/IM-0001-0001.dcm")  # JPEG 2000


def archive_files() -> list[bytes]:
    """The query/retrieve corpus, and a JPEG 2000 study when the shared test data is there."""
    knee = [(SHARED_TESTDATA / name).read_bytes() for name in KNEE_FILES] if SHARED_TESTDATA.is_dir() else []
    return corpus() + knee


@contextmanager
def orthanc_archive(folder: Path, aet: str, **options: Any) -> Iterator[RunningOrthanc]:
    """Real Orthanc holding :func:`archive_files`, declaring itself as modality "self"."""
    with running_orthanc(folder, aet=aet, overrides=options) as running:
        orthanc_upload(running, archive_files())
        declare_in_orthanc(running, "self", aet, running.dicom_port)
        yield running


def answer_on_the_wire(answer: FindAnswer) -> Dataset:
    """What a client reads of a C-FIND answer: encoded as our SCP sends it, decoded by pynetdicom."""
    return decode(io.BytesIO(encode_identifier(FIND_CONTEXT, answer)), True, True)
