"""pynetdicom clients of a DICOM server (ours or Orthanc): blocking, so always run them in a worker
thread (``trio.to_thread.run_sync``): on the Trio thread they would stall the node they talk to."""

from __future__ import annotations

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
        return [int(association.send_c_store(ds).Status) for ds in datasets]
    finally:
        association.release()


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
