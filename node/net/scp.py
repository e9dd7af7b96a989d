"""The C-ECHO / C-STORE SCP: pynetdicom's threads bridged into the Trio loop.

pynetdicom serves each association in threads of its own (the association and its
DUL reader) and accepts connections in one more thread. Handlers run in those
threads: they settle locally what needs no Trio state (AE titles, presentation
contexts, authorization, the dataset's identity) and hand each received dataset
to the Trio loop with ``trio.from_thread.run``.

Stopping is ordered so that no store is cut in half and no thread outlives the
node: the owning task closes the store gate (a C-STORE arriving from then on gets
0xA700), stops accepting connections, waits for the stores already inside the
loop, then aborts the associations still open and joins every pynetdicom thread.
"""

from __future__ import annotations

import functools
import logging
import re
import socketserver
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import trio
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
    UID_dictionary,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import Verification, register_uid, uid_to_service_class
from pynetdicom.transport import ThreadedAssociationServer

from ..config import Config
from ..context import NodeContext
from ..dicom.parse import describe_instance, read_dataset, sop_identity
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..services.ingest import Ingest, Origin, PreparedInstance
from .tcp import rearm_quick_ack, set_no_delay

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DOES_NOT_MATCH_SOP_CLASS = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000

# A-ASSOCIATE-RJ (result, source, diagnostic): rejected permanent, by the service user.
REJECT_CALLING_AET = (0x01, 0x01, 0x03)
REJECT_CALLED_AET = (0x01, 0x01, 0x07)

# Ingest errors that mean "this dataset cannot be understood" rather than "it could not be stored".
_UNREADABLE = frozenset({ErrorCode.BAD_FILE_FORMAT, ErrorCode.INEXISTENT_TAG})

# When a context offers several transfer syntaxes, Orthanc 1.10.1 picks (measured against the
# real server) these four first, in this order, then any other by ascending UID.
_PREFERRED_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
_VERIFICATION_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
_KNOWN_SYNTAXES = tuple(uid for uid, info in UID_dictionary.items() if info[1] == "Transfer Syntax")
_UID_SHAPE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

MAX_ASSOCIATIONS = 64  # open at once; DicomThreadsCount bounds the stores running at once
_POLL_INTERVAL = 0.1  # s: how soon the accept loop notices a shutdown
_DUL_POLL_DELAY = 0.0005  # s: see _Handlers.on_open
_JOIN_TIMEOUT = 30.0  # s: a pynetdicom thread still alive after this is reported, not awaited


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


# -- who may talk to us -------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredModality:
    """The part of a DicomModalities entry that decides what it may ask us."""

    aet: str
    host: str
    allowed: frozenset[str]  # "Echo", "Store", ...


_ALLOW_FLAGS = ("Echo", "Find", "FindWorklist", "Get", "Move", "Store")


def declared_modalities(config: Config) -> list[DeclaredModality]:
    """DicomModalities in either form (networking.md §1); the array form allows everything."""
    out = []
    for entry in dict(config["DicomModalities"]).values():
        if isinstance(entry, list) and len(entry) >= 2:
            out.append(DeclaredModality(str(entry[0]), str(entry[1]), frozenset(_ALLOW_FLAGS)))
        elif isinstance(entry, dict) and "AET" in entry:
            allowed = frozenset(flag for flag in _ALLOW_FLAGS if entry.get(f"Allow{flag}", True))
            out.append(DeclaredModality(str(entry["AET"]), str(entry.get("Host", "")), allowed))
    return out


@dataclass(frozen=True)
class Peers:
    """AE-title and modality checks of networking.md §2, from one snapshot of the config."""

    our_aet: str
    check_called_aet: bool
    strict: bool
    check_host: bool
    always_allowed: frozenset[str]
    modalities: tuple[DeclaredModality, ...]

    @classmethod
    def from_config(cls, config: Config) -> Peers:
        return cls(
            our_aet=str(config["DicomAet"]),
            check_called_aet=bool(config["DicomCheckCalledAet"]),
            strict=bool(config["StrictAetComparison"]),
            check_host=bool(config["DicomCheckModalityHost"]),
            always_allowed=frozenset(f for f in _ALLOW_FLAGS if config[f"DicomAlwaysAllow{f}"]),
            modalities=tuple(declared_modalities(config)),
        )

    def same_aet(self, a: str, b: str) -> bool:
        a, b = a.strip(), b.strip()
        return a == b if self.strict else a.upper() == b.upper()

    def _matching(self, calling_aet: str, ip: str) -> list[DeclaredModality]:
        found = [m for m in self.modalities if self.same_aet(m.aet, calling_aet)]
        return [m for m in found if m.host == ip] if self.check_host else found

    def rejection(self, called_aet: str, calling_aet: str, ip: str) -> tuple[int, int, int] | None:
        """Why an association request is refused, or None to negotiate it."""
        if self.check_called_aet and not self.same_aet(called_aet, self.our_aet):
            return REJECT_CALLED_AET
        if not self.always_allowed and not self._matching(calling_aet, ip):
            return REJECT_CALLING_AET
        return None

    def allows(self, request: str, calling_aet: str, ip: str) -> bool:
        """May this peer send a C-`request` (Echo, Store...)?"""
        if request in self.always_allowed:
            return True
        found = self._matching(calling_aet, ip)
        if self.check_host:
            return any(request in m.allowed for m in found)
        return bool(found) and all(request in m.allowed for m in found)


# -- presentation contexts ------------------------------------------------------------


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


_STORAGE_SOP_CLASSES = frozenset({str(cx.abstract_syntax) for cx in AllStoragePresentationContexts}) | frozenset(
    _named_storage_classes()
)
_routed: set[str] = set()  # SOP classes we registered with pynetdicom's storage service
_routing_lock = threading.Lock()


def _route_to_storage(sop_class: str) -> None:
    """Make pynetdicom dispatch C-STOREs of a SOP class it has no service for to its storage service."""
    if sop_class in _routed:
        return
    with _routing_lock:
        if uid_to_service_class(sop_class) is ServiceClass:
            register_uid(sop_class, "Storage_" + sop_class.replace(".", "_"), StorageServiceClass)
        _routed.add(sop_class)


def _is_unknown(sop_class: str) -> bool:
    """Neither pydicom nor pynetdicom knows it (a private SOP class, say)."""
    if sop_class in UID_dictionary or not _UID_SHAPE.match(sop_class):
        return False
    return sop_class in _routed or uid_to_service_class(sop_class) is ServiceClass


@dataclass(frozen=True)
class ContextPolicy:
    """Which proposed presentation contexts we accept, and with which transfer syntaxes."""

    storage_syntaxes: tuple[str, ...]
    accept_unknown: bool

    @classmethod
    def current(cls, context: NodeContext) -> ContextPolicy:
        """The options as they are now: REST (/tools/...) may change them while we run."""
        runtime, config = context.runtime, context.config
        patterns = runtime.get("AcceptedTransferSyntaxes", config["AcceptedTransferSyntaxes"])
        unknown = runtime.get("UnknownSopClassAccepted", config["UnknownSopClassAccepted"])
        return cls(accepted_transfer_syntaxes(patterns), bool(unknown))

    def _syntaxes_for(self, sop_class: str) -> Sequence[str]:
        if sop_class == Verification:
            return _VERIFICATION_SYNTAXES
        if sop_class in _STORAGE_SOP_CLASSES or (self.accept_unknown and _is_unknown(sop_class)):
            _route_to_storage(sop_class)
            return self.storage_syntaxes
        return ()

    def supported(self, requested: Iterable[PresentationContext]) -> list[PresentationContext]:
        """Supported contexts for exactly the abstract syntaxes a peer proposes.

        Built per association: cheaper than pynetdicom copying every storage class for each
        one, and the only way to take SOP classes that pynetdicom does not know.
        """
        out: dict[str, PresentationContext] = {}
        for context in requested:
            sop_class = str(context.abstract_syntax)
            if sop_class not in out and (syntaxes := self._syntaxes_for(sop_class)):
                out[sop_class] = build_context(sop_class, list(syntaxes))
        return list(out.values())


# -- the Trio side ------------------------------------------------------------------


def dimse_status(error: OrthancError) -> int:
    """The C-STORE status of an ingest error."""
    return STATUS_CANNOT_UNDERSTAND if error.code in _UNREADABLE else STATUS_OUT_OF_RESOURCES


class StoreGate:
    """Admits C-STOREs into the Trio loop until closed; then knows when the last one is out."""

    def __init__(self, ingest: Ingest, concurrent: int) -> None:
        self._ingest = ingest
        self._limiter = trio.CapacityLimiter(max(1, concurrent))
        self._open = True
        self._inside = 0
        self._empty = trio.Event()

    async def commit(self, prepared: PreparedInstance, origin: Origin) -> int:
        """Index one dataset prepared in an association thread; the DIMSE status of the answer.

        Once closed, the prepared file is removed and the store refused.
        """
        if not self._open:
            await offload(self._ingest.discard, prepared)
            return STATUS_OUT_OF_RESOURCES
        self._inside += 1
        try:
            try:
                await self._limiter.acquire()
            except BaseException:  # cancelled before commit could own the file
                with trio.CancelScope(shield=True):
                    await offload(self._ingest.discard, prepared)
                raise
            try:
                await self._ingest.commit(prepared)
            finally:
                self._limiter.release()
        except OrthancError as error:
            log.warning("C-STORE from %s (%s) refused: %s", origin.remote_aet, origin.remote_ip, error)
            return dimse_status(error)
        finally:
            self._inside -= 1
            if not self._open and self._inside == 0:
                self._empty.set()
        return STATUS_SUCCESS

    def close(self) -> None:
        self._open = False
        if self._inside == 0:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()


# -- the pynetdicom side (runs in pynetdicom's threads) ------------------------------------


def _socket_of(event: evt.Event) -> Any:
    dul_socket = getattr(event.assoc.dul, "socket", None)
    return getattr(dul_socket, "socket", None)


def _identity_problem(event: evt.Event, dataset: Dataset) -> int | None:
    """Orthanc's check before storing: the dataset must name the SOP class and instance of the command."""
    sop_class, sop_instance = sop_identity(dataset)
    if not sop_class or not sop_instance:
        return STATUS_CANNOT_UNDERSTAND
    request = event.request
    if (sop_class, sop_instance) != (request.AffectedSOPClassUID, request.AffectedSOPInstanceUID):
        return STATUS_DOES_NOT_MATCH_SOP_CLASS
    return None


class _Handlers:
    """pynetdicom event handlers of one server; they run in association threads."""

    def __init__(self, context: NodeContext, gate: StoreGate, token: trio.lowlevel.TrioToken) -> None:
        self._context = context
        self._ingest = context.ingest
        self._peers = Peers.from_config(context.config)
        self._gate = gate
        self._token = token

    def bindings(self) -> list[tuple[evt.EventType, Any]]:
        return [
            (evt.EVT_CONN_OPEN, self.on_open),
            (evt.EVT_DATA_RECV, self.on_data),
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
        ]

    def on_open(self, event: evt.Event) -> None:
        set_no_delay(_socket_of(event))
        # pynetdicom's reader thread sleeps this long whenever it finds nothing to do, several
        # times per C-STORE: 1 ms by default, which caps storescu near 300 instances/s. 0.5 ms
        # costs about 1 % of a core more per idle association.
        event.assoc.dul._run_loop_delay = _DUL_POLL_DELAY

    def on_data(self, event: evt.Event) -> None:
        rearm_quick_ack(_socket_of(event))

    def on_requested(self, event: evt.Event) -> None:
        """Check the AE titles, then offer contexts for what the peer proposes."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        calling, called = str(request.calling_ae_title), str(request.called_ae_title)
        rejection = self._peers.rejection(called, calling, assoc.requestor.address)
        if rejection is not None:
            log.warning("association from %s (%s) to %s rejected", calling, assoc.requestor.address, called)
            assoc.acse.send_reject(*rejection)
            assoc.kill()
            return
        policy = ContextPolicy.current(self._context)
        assoc.acceptor.supported_contexts = policy.supported(request.presentation_context_definition_list)

    def _allowed(self, event: evt.Event, request: str) -> bool:
        requestor = event.assoc.requestor
        if self._peers.allows(request, str(requestor.ae_title), requestor.address):
            return True
        log.warning("C-%s from %s (%s) not allowed: aborting", request.upper(), requestor.ae_title, requestor.address)
        event.assoc.abort(block=False)
        return False

    def on_echo(self, event: evt.Event) -> int:
        return STATUS_SUCCESS if self._allowed(event, "Echo") else STATUS_OUT_OF_RESOURCES

    def on_store(self, event: evt.Event) -> int:
        """Parse, check and write the file here, in the association thread; only indexing runs on Trio."""
        if not self._allowed(event, "Store"):
            return STATUS_OUT_OF_RESOURCES
        assoc = event.assoc
        origin = Origin(
            kind="DicomProtocol",
            remote_ip=assoc.requestor.address,
            remote_aet=str(assoc.requestor.ae_title).strip(),
            called_aet=str(assoc.requestor.primitive.called_ae_title).strip(),
        )
        data = event.encoded_dataset()
        try:
            dataset = read_dataset(data)
            problem = _identity_problem(event, dataset)
            if problem is not None:
                return problem
            prepared = self._ingest.prepare(describe_instance(data, dataset), origin)
        except OrthancError as error:
            log.warning("C-STORE from %s (%s) refused: %s", origin.remote_aet, origin.remote_ip, error)
            return dimse_status(error)
        try:
            return trio.from_thread.run(self._gate.commit, prepared, origin, trio_token=self._token)
        except trio.RunFinishedError:  # the node stopped while this dataset was on its way
            self._ingest.discard(prepared)
            return STATUS_OUT_OF_RESOURCES
        except trio.Cancelled:  # commit was cancelled and removed the file itself
            return STATUS_OUT_OF_RESOURCES


class _Server(ThreadedAssociationServer):
    """pynetdicom's server, but run and stopped by us, so its thread can be joined."""

    def shutdown(self) -> None:
        # AssociationServer.shutdown also unregisters from the AE, where only start_server registers.
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def build_ae(config: Config) -> AE:
    ae = AE(ae_title=config["DicomAet"])
    ae.maximum_pdu_size = int(config["MaximumPduLength"])
    timeout = float(config["DicomScpTimeout"]) or None  # 0: no timeout
    ae.network_timeout = timeout
    ae.dimse_timeout = timeout
    ae.acse_timeout = timeout
    ae.maximum_associations = MAX_ASSOCIATIONS
    # Checked in EVT_REQUESTED, with StrictAetComparison and the declared modalities.
    ae.require_called_aet = False
    # Only to satisfy pynetdicom: the contexts of each association are built when it is requested.
    ae.add_supported_context(Verification, list(_VERIFICATION_SYNTAXES))
    return ae


def _stop_threads(ae: AE, server_thread: threading.Thread) -> None:
    """Abort the associations still open and join every thread they use (blocking: run in a thread).

    Called once the server no longer accepts: the list of associations cannot grow.
    """
    associations = [a for a in ae.active_associations if a.is_acceptor]
    for association in associations:
        association.abort(block=False)
    threads: list[threading.Thread] = [server_thread]
    for association in associations:
        threads += [association, association.dul]
    for thread in threads:
        thread.join(_JOIN_TIMEOUT)
        if thread.is_alive():
            log.error("DICOM thread %s still running %.0f s after the SCP stopped", thread.name, _JOIN_TIMEOUT)


async def run_scp(context: NodeContext, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve C-ECHO and C-STORE until cancelled; reports the bound port."""
    config = context.config
    gate = StoreGate(context.ingest, int(config["DicomThreadsCount"]))
    handlers = _Handlers(context, gate, trio.lowlevel.current_trio_token())
    ae = build_ae(config)
    address = (config["DicomBindAddress"], int(config["DicomPort"]))
    server = await trio.to_thread.run_sync(
        lambda: ae.make_server(address, evt_handlers=handlers.bindings(), server_class=_Server)
    )
    server_thread = threading.Thread(
        target=server.serve_forever, args=(_POLL_INTERVAL,), name=f"dicom-scp:{server.server_address[1]}", daemon=True
    )
    server_thread.start()
    try:
        task_status.started(server.server_address[1])
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            gate.close()
            await trio.to_thread.run_sync(server.shutdown)
            await gate.wait_empty()
            await trio.to_thread.run_sync(_stop_threads, ae, server_thread)
