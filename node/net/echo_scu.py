"""C-ECHO as a requestor: is a remote modality there, and, when asked, does it also answer a C-FIND?

A C-ECHO alone only proves the remote speaks DICOM; many clients check a modality before
querying it, so the check may include a study-level C-FIND for a StudyInstanceUID that no
archive holds (no answers expected, only a successful final status).
"""

from __future__ import annotations

from collections.abc import Callable

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom.presentation import PresentationContext, build_context

from ..errors import ErrorCode, OrthancError
from .ul.dimse import SUCCESS
from .ul.negotiate import STUDY_ROOT_FIND, VERIFICATION
from .ul.requestor import Peer, associate

_SYNTAXES: list[str] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


# Verification and study-root C-FIND, built once (the association numbers its own copies).
_PROPOSALS: tuple[PresentationContext, ...] = (
    build_context(VERIFICATION, _SYNTAXES),
    build_context(STUDY_ROOT_FIND, _SYNTAXES),
)


async def _check_find(peer: Peer) -> None:
    if peer.context_for(STUDY_ROOT_FIND) is None:
        raise OrthancError(ErrorCode.DICOM_FIND_UNAVAILABLE, f"Remote AET is {peer.called_aet}")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = generate_uid()
    query.PatientID = query.AccessionNumber = ""
    status = (await peer.c_find(query, STUDY_ROOT_FIND)).status
    if status != SUCCESS:
        raise OrthancError(
            ErrorCode.NETWORK_PROTOCOL,
            f'C-FIND SCU to AET "{peer.called_aet}" has failed with DIMSE status 0x{status:04X}',
        )


async def echo(
    host: str,
    port: int,
    *,
    calling_aet: str,
    called_aet: str,
    timeout: float | None,
    check_find: Callable[[], bool],
) -> bool:
    """Whether the remote answered the C-ECHO with success (and the C-FIND too, when ``check_find()``).

    ``check_find`` is asked once the C-ECHO succeeded, as Orthanc reads that option only
    then (a bad value of it in a request fails that request after the echo). No
    association raises :class:`~node.net.ul.requestor.AssociationFailed`; a remote that
    takes no C-FIND, or fails it, raises too when checked.
    """
    async with associate(
        host, port, calling_aet=calling_aet, called_aet=called_aet, contexts=_PROPOSALS, timeout=timeout
    ) as peer:
        if await peer.c_echo() != SUCCESS:
            return False
        if check_find():
            await _check_find(peer)
    return True
