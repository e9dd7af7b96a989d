"""Which presentation contexts we accept, with which transfer syntax and roles, in Orthanc's order
of preference; the decision itself is pynetdicom's ``negotiate_as_acceptor``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
    UID_dictionary,
)
from pynetdicom import AllStoragePresentationContexts
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_acceptor
from pynetdicom.service_class import ServiceClass
from pynetdicom.sop_class import uid_to_service_class

from .acse import AssociateRequest
from .presentation import AcceptedContext

VERIFICATION = "1.2.840.10008.1.1"
# Query/retrieve information models, as Orthanc accepts them (no worklists without a plugin).
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
QUERY_RETRIEVE_MODELS = frozenset(
    [PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET, STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET]
)

# When a context offers several transfer syntaxes, Orthanc 1.10.1 picks (measured against the
# real server) these four first, in this order, then any other by ascending UID.
_PREFERRED_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
# For verification and query/retrieve, whose datasets we decode ourselves.
UNCOMPRESSED_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
_KNOWN_SYNTAXES = tuple(uid for uid, info in UID_dictionary.items() if info[1] == "Transfer Syntax")
_UID_SHAPE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SUPPORTED_CACHE = 4096  # abstract syntaxes whose supported context is kept (peers may propose any)


def _syntax_rank(uid: str) -> tuple[int, tuple[int, ...]]:
    if uid in _PREFERRED_SYNTAXES:
        return (_PREFERRED_SYNTAXES.index(uid), ())
    return (len(_PREFERRED_SYNTAXES), tuple(int(part) for part in uid.split(".")))


@functools.lru_cache(maxsize=16)
def _matching_syntaxes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    matching = (uid for uid in _KNOWN_SYNTAXES if any(fnmatchcase(uid, p) for p in patterns))
    return tuple(sorted(matching, key=_syntax_rank))


def accepted_transfer_syntaxes(patterns: Iterable[str]) -> tuple[str, ...]:
    """Known transfer syntaxes matching AcceptedTransferSyntaxes (`*`/`?`), most preferred first."""
    return _matching_syntaxes(tuple(patterns))


def _named_storage_classes() -> set[str]:
    """Storage SOP classes of pydicom's dictionary: pynetdicom lacks the retired and trial ones."""
    return {
        uid
        for uid, (name, kind, *_) in UID_dictionary.items()
        if kind == "SOP Class"
        and "Storage" in name
        and "Commitment" not in name
        and uid != MediaStorageDirectoryStorage
    }


STORAGE_SOP_CLASSES = frozenset({str(cx.abstract_syntax) for cx in AllStoragePresentationContexts}) | frozenset(
    _named_storage_classes()
)


def is_unknown_sop_class(sop_class: str) -> bool:
    """A well-formed UID that neither pydicom nor pynetdicom knows (a private SOP class, say)."""
    if sop_class in UID_dictionary or not _UID_SHAPE.match(sop_class):
        return False
    return uid_to_service_class(sop_class) is ServiceClass


@functools.lru_cache(maxsize=_SUPPORTED_CACHE)
def _supported_context(sop_class: str, syntaxes: tuple[str, ...], storage: bool) -> PresentationContext:
    """Our side of one abstract syntax, built once: pynetdicom validates every UID it is given
    (a storescu proposal of 120 contexts, each matched against our 30-odd transfer syntaxes,
    cost 40 ms per association). ``negotiate_as_acceptor`` only reads it."""
    supported = build_context(sop_class, list(syntaxes))
    if storage:
        supported.scu_role = supported.scp_role = True
    return supported


@dataclass(frozen=True)
class ContextPolicy:
    """Which proposed presentation contexts we accept, and with which transfer syntaxes."""

    storage_syntaxes: tuple[str, ...]
    accept_unknown: bool

    def is_storage(self, sop_class: str) -> bool:
        return sop_class in STORAGE_SOP_CLASSES or (self.accept_unknown and is_unknown_sop_class(sop_class))

    def _syntaxes_for(self, sop_class: str) -> Sequence[str]:
        if sop_class == VERIFICATION:
            return UNCOMPRESSED_SYNTAXES
        if sop_class in QUERY_RETRIEVE_MODELS:
            return UNCOMPRESSED_SYNTAXES
        if self.is_storage(sop_class):
            return self.storage_syntaxes
        return ()

    def supported(self, requested: Iterable[PresentationContext]) -> list[PresentationContext]:
        """Supported contexts for exactly the abstract syntaxes a peer proposes.

        Storage contexts take either role, so a C-GET requestor may ask us to send it instances.
        """
        out: dict[str, PresentationContext] = {}
        for context in requested:
            sop_class = str(context.abstract_syntax)
            if sop_class not in out and (syntaxes := self._syntaxes_for(sop_class)):
                out[sop_class] = _supported_context(sop_class, tuple(syntaxes), self.is_storage(sop_class))
        return list(out.values())

    def negotiate(
        self, request: AssociateRequest
    ) -> tuple[list[PresentationContext], list[SCP_SCU_RoleSelectionNegotiation], list[AcceptedContext]]:
        """(results for the A-ASSOCIATE-AC, role replies, the contexts accepted)."""
        results, roles = negotiate_as_acceptor(request.contexts, self.supported(request.contexts), request.user.roles)
        accepted = [AcceptedContext.from_result(cx) for cx in results if cx.result == 0]
        return results, roles, accepted
