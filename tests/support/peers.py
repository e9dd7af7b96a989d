"""pynetdicom clients of a DICOM server (ours or Orthanc): blocking, so always run them in a worker
thread (``trio.to_thread.run_sync``): on the Trio thread they would stall the node they talk to."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

CALLING = "TESTSCU"
CALLED = "ORTHANC"
PEER_TIMEOUT = 30  # seconds for each step of an association
MAX_PROPOSED_CONTEXTS = 128  # what a requestor may propose in one association
PENDING_STATUSES = (0xFF00, 0xFF01)
REACTOR_POLL = 0.0001  # s between looks at pynetdicom's reader thread (as pynetdicom itself polls)
REACTOR_SETTLE = 0.005  # s the thread must stay parked: longer than its 1 ms round, under load too


def client_ae(calling: str = CALLING) -> AE:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PEER_TIMEOUT
    return ae


def associate(ae: AE, port: int, called: str = CALLED) -> Association:
    return ae.associate("127.0.0.1", port, ae_title=called)


def c_store(port: int, datasets: Sequence[Dataset], *, calling: str = CALLING) -> list[int]:
    """C-STORE every dataset over one association, each (SOP class, transfer syntax) in a context
    of its own; their statuses."""
    ae = client_ae(calling)
    pairs = dict.fromkeys((str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets)
    assert len(pairs) <= MAX_PROPOSED_CONTEXTS
    for sop_class, syntax in pairs:
        ae.add_requested_context(sop_class, [syntax])
    association = associate(ae, port)
    assert association.is_established
    try:
        statuses = []
        for ds in datasets:
            _pause_reactor(association)
            statuses.append(int(association.send_c_store(ds).Status))
        return statuses
    finally:
        association.release()


def _pause_reactor(association: Association) -> None:
    """Make sure pynetdicom's own reader thread is parked before a request goes out.

    pynetdicom 3.0 pauses that thread itself, but checks a flag the thread sets just before it
    parks: when the thread has just been let through, the request can go out while it still
    runs, and a prompt answer (ours come within a millisecond) is taken by that thread as an
    unexpected message, leaving the request to wait for its DIMSE timeout. Waiting here until
    the flag has stayed set longer than one round of that thread (1 ms of sleep) closes the window.
    """
    association._reactor_checkpoint.clear()
    deadline = time.monotonic() + PEER_TIMEOUT
    while time.monotonic() < deadline:
        if association._is_paused:
            time.sleep(REACTOR_SETTLE)
            if association._is_paused:
                return
        else:
            time.sleep(REACTOR_POLL)
    raise TimeoutError("pynetdicom's reader thread did not pause")


def c_find(port: int, called: str, query: Dataset, *, calling: str = "QRTEST") -> tuple[list[Dataset], int]:
    """The answers and the final status of one C-FIND (patient root at PATIENT level, else study root)."""
    ae = client_ae(calling)
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if query.QueryRetrieveLevel == "PATIENT"
        else StudyRootQueryRetrieveInformationModelFind
    )
    ae.add_requested_context(model)
    association = associate(ae, port, called)
    if not association.is_established:
        raise ConnectionError(f"no association with {called} on port {port}")
    answers: list[Dataset] = []
    final = -1
    try:
        for status, answer in association.send_c_find(query, model):
            if status is None:
                raise ConnectionError("C-FIND got no answer")
            if answer is not None and status.Status in PENDING_STATUSES:
                answers.append(answer)
            else:
                final = int(status.Status)
    finally:
        association.release()
    return answers, final
