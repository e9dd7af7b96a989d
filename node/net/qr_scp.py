"""C-FIND, C-MOVE and C-GET as an SCP, over the query/retrieve service.

Each operation runs while the peer's messages are still read (:func:`run_watched`): a
C-CANCEL stops it between two answers or sub-operations with status 0xFE00. C-MOVE sends
its sub-operations on an association of its own to the destination, as a requestor (the
declared modality of that AE title, as whom and with the timeout it asks for); C-GET
sends them back on the association it came on, in the contexts where the peer took the SCP
role. Every sub-operation is followed by a pending response with the counters. The files
are looked up and read ahead (:mod:`.read_ahead`) while the sub-operation before them waits
for its answer, so each C-STORE goes out as soon as the last one is answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import trio
from pynetdicom.presentation import PresentationContext, build_context

from ..context import NodeContext
from ..errors import OrthancError
from ..services.query_retrieve import QueryRetrieve
from .peers import Peers
from .read_ahead import FileReadAhead
from .ul.assembly import Message
from .ul.association import Association
from .ul.dimse import (
    CANCELLED,
    CANNOT_UNDERSTAND,
    PENDING,
    SUB_OPERATIONS_FAILED,
    SUCCESS,
    StoredFile,
    SubOperationCounters,
    counters,
    read_file_meta,
    response,
    store_request,
)
from .ul.identifiers import decode_identifier, encode_identifier
from .ul.operation import Watch, run_watched
from .ul.presentation import AcceptedContext
from .ul.requestor import AssociationFailed, Peer, associate
from .ul.store_proposal import PROPOSAL_WINDOW, Pair

log = logging.getLogger(__name__)

MAX_PROPOSED_CONTEXTS = 128  # what a requestor may propose in one association
MAX_ERROR_COMMENT = 64  # characters of an ErrorComment (an LO value)
_WARNING_CLASS = 0xB000  # statuses 0xBxxx: stored, with a warning


@dataclass
class Progress:
    """Sub-operations of one C-MOVE or C-GET."""

    total: int
    completed: int = 0
    failed: int = 0
    warning: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.warning

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def count(self, status: int) -> None:
        if status == SUCCESS:
            self.completed += 1
        elif status & 0xF000 == _WARNING_CLASS:
            self.warning += 1
        else:
            self.failed += 1

    def final_status(self, cancelled: bool) -> int:
        if cancelled:
            return CANCELLED
        return SUB_OPERATIONS_FAILED if self.failed or self.warning else SUCCESS

    def pending_fields(self) -> SubOperationCounters:
        return counters(self.remaining, self.completed, self.failed, self.warning)

    def final_fields(self, cancelled: bool) -> SubOperationCounters:
        """The final response keeps the remaining count only when it was cancelled."""
        return counters(self.remaining if cancelled else None, self.completed, self.failed, self.warning)


class QueryRetrieveSCP:
    """The three query/retrieve operations of one SCP; each answers its request to the end."""

    def __init__(self, context: NodeContext, peers: Peers, scu_timeout: float | None) -> None:
        self._service = QueryRetrieve(
            context.settings.dicom.find, context.index, context.resources, runtime=context.runtime
        )
        self._services = context.services
        self._index = context.index
        self._peers = peers
        self._our_aet = peers.our_aet
        self._scu_timeout = scu_timeout

    # -- C-FIND ------------------------------------------------------------------------------

    async def find(self, association: Association, message: Message) -> None:
        context = association.contexts[message.context_id]
        request = message.command
        try:
            identifier = decode_identifier(context, message.dataset)
        except OrthancError:
            await association.send_message(context.context_id, response(request, CANNOT_UNDERSTAND))
            return

        async def answer_all(watch: Watch) -> None:
            status = SUCCESS
            answers = self._service.find(identifier, our_aet=self._our_aet)
            try:
                async for answer in answers:
                    await trio.lowlevel.checkpoint()  # the watcher reads a C-CANCEL between two answers
                    if watch.cancelled:
                        status = CANCELLED
                        break
                    pending = response(request, PENDING, with_dataset=True)
                    await association.send_message(context.context_id, pending, encode_identifier(context, answer))
                if status == SUCCESS and (watch.cancelled or not answers.complete):
                    status = CANCELLED  # cancelled after the last answer, or cut by LimitFind*
            except OrthancError as error:
                log.warning("C-FIND from %s failed: %s", association.calling_aet, error)
                status = CANNOT_UNDERSTAND
            finally:
                await answers.aclose()
            await association.send_message(context.context_id, response(request, status))

        await run_watched(association, int(request.get("MessageID", 0)), answer_all)

    # -- C-MOVE and C-GET -------------------------------------------------------------------------

    async def _instances(self, association: Association, message: Message) -> list[str] | None:
        """The instances a C-MOVE/C-GET designates; None (after the failure response) if none."""
        context = association.contexts[message.context_id]
        try:
            return await self._service.instances_to_retrieve(decode_identifier(context, message.dataset))
        except OrthancError as error:
            log.warning("%s from %s: %s", message, association.calling_aet, error)
        await self._refuse_retrieve(association, message)
        return None

    @staticmethod
    async def _refuse_retrieve(association: Association, message: Message, comment: str | None = None) -> None:
        """A C-MOVE/C-GET that cannot start: failure, with zero counters as Orthanc gives them, and
        why when it helps the requestor (an unknown destination)."""
        comment = comment[:MAX_ERROR_COMMENT] if comment else None
        refusal = response(message.command, CANNOT_UNDERSTAND, ErrorComment=comment, **counters(None, 0, 0, 0))
        await association.send_message(message.context_id, refusal)

    async def _proposals(self, instances: list[str]) -> tuple[list[PresentationContext], frozenset[Pair]]:
        """A context per (SOP class, transfer syntax) of the instances (each is sent as stored),
        and the pairs proposed."""
        pairs: dict[Pair, None] = {}
        for record in await self._index.resources(instances):
            sop_class, syntax = record.metadata.get("SopClassUid"), record.metadata.get("TransferSyntax")
            if sop_class and syntax:
                pairs[(sop_class, syntax)] = None
        proposed = list(pairs)[:MAX_PROPOSED_CONTEXTS]
        return [build_context(sop_class, [syntax]) for sop_class, syntax in proposed], frozenset(proposed)

    @staticmethod
    async def _file(files: FileReadAhead, position: int, instance: str) -> bytes | None:
        try:
            return await files.get(position)
        except OrthancError as error:  # deleted since it was designated, or unreadable
            log.warning("instance %s not sent: %s", instance, error)
            return None

    async def move(self, association: Association, message: Message) -> None:
        request = message.command
        context_id = message.context_id
        destination = str(request.get("MoveDestination", ""))
        target = self._peers.destination(destination)
        if target is None:
            log.warning("C-MOVE from %s to unknown destination %r", association.calling_aet, destination)
            await self._refuse_retrieve(association, message, f"Unknown move destination: {destination}")
            return
        instances = await self._instances(association, message)
        if instances is None:
            return
        message_id = int(request.get("MessageID", 0))
        originator = (association.calling_aet, message_id)
        progress = Progress(len(instances))

        unsent: list[SubOperationCounters] = []  # the pending response of the last sub-operation, not sent yet
        ready: dict[int, tuple[bytes | None, StoredFile | None]] = {}  # the next file, taken while a C-STORE waited

        async def send_pending() -> None:
            """The pending response of the last sub-operation; the C-STORE after it goes out first
            when there is one, so that this write overlaps the wait for its answer."""
            if unsent:
                await association.send_message(context_id, response(request, PENDING, **unsent.pop()))

        async def take(files: FileReadAhead, position: int) -> tuple[bytes | None, StoredFile | None]:
            """The file at ``position`` and its meta (None, None when it cannot be read)."""
            if position in ready:
                return ready.pop(position)
            data = await self._file(files, position, instances[position])
            return data, read_file_meta(data) if data is not None else None

        async def while_waiting(files: FileReadAhead, position: int) -> None:
            """While the C-STORE of ``position`` waits for its answer: the pending response of the
            one before it, then the next file taken and its meta read, if its read has started
            (the answer is then followed at once by the next C-STORE)."""
            await send_pending()
            following = position + 1
            if following < len(instances) and files.started(following):
                ready[following] = await take(files, following)

        async def send_on(watch: Watch, peer: Peer, proposed: frozenset[Pair], files: FileReadAhead) -> None:
            """Sub-operations on one association, until done, cancelled, or an instance it did not
            propose a context for (the next association starts with that one)."""
            start = progress.done
            while progress.done < len(instances) and not watch.cancelled:
                position = progress.done
                instance = instances[position]
                data, meta = await take(files, position)
                if meta is not None and (meta.sop_class, meta.transfer_syntax) not in proposed and position > start:
                    ready[position] = data, meta
                    return
                if data is None or meta is None or peer.context_for(meta.sop_class, meta.transfer_syntax) is None:
                    log.warning("instance %s not sent to %s: no presentation context for it", instance, target.aet)
                    await send_pending()
                    progress.count(CANNOT_UNDERSTAND)
                else:
                    store = partial(
                        peer.c_store,
                        data,
                        meta=meta,
                        move_originator=originator,
                        while_waiting=partial(while_waiting, files, position),
                    )
                    progress.count(await files.beside(position, store))
                unsent.append(progress.pending_fields())

        async def send_all(watch: Watch) -> None:
            files = FileReadAhead(self._services, instances)
            try:
                while progress.done < len(instances) and not watch.cancelled:
                    window = instances[progress.done : progress.done + PROPOSAL_WINDOW]
                    proposals, proposed = await self._proposals(window)
                    async with associate(
                        target.host,
                        target.port,
                        calling_aet=target.calling_aet(None, self._our_aet),
                        called_aet=target.aet,
                        contexts=proposals,
                        timeout=target.scu_timeout(None, self._scu_timeout),
                    ) as peer:
                        await send_on(watch, peer, proposed, files)
            except AssociationFailed as error:
                log.warning("C-MOVE to %s: %s", destination, error)
                progress.failed += progress.remaining
            finally:
                files.close()
            await send_pending()
            final = response(request, progress.final_status(watch.cancelled), **progress.final_fields(watch.cancelled))
            await association.send_message(context_id, final)

        await run_watched(association, message_id, send_all)

    async def get(self, association: Association, message: Message) -> None:
        request = message.command
        context_id = message.context_id
        instances = await self._instances(association, message)
        if instances is None:
            return

        async def send_all(watch: Watch) -> None:
            progress = Progress(len(instances))
            files = FileReadAhead(self._services, instances)
            try:
                for position, instance in enumerate(instances):
                    if watch.cancelled:
                        break
                    progress.count(await self._store_back(association, watch, files, position, instance))
                    pending = response(request, PENDING, **progress.pending_fields())
                    await association.send_message(context_id, pending)
            finally:
                files.close()
            final = response(request, progress.final_status(watch.cancelled), **progress.final_fields(watch.cancelled))
            await association.send_message(context_id, final)

        await run_watched(association, int(request.get("MessageID", 0)), send_all)

    async def _store_back(
        self, association: Association, watch: Watch, files: FileReadAhead, position: int, instance: str
    ) -> int:
        """One C-GET sub-operation: a C-STORE-RQ to the peer on this association."""
        data = await self._file(files, position, instance)
        meta = read_file_meta(data) if data is not None else None
        if data is None or meta is None:
            return CANNOT_UNDERSTAND
        context = next(
            (
                cx
                for cx in association.contexts.values()
                if cx.as_scu and cx.abstract_syntax == meta.sop_class and cx.transfer_syntax == meta.transfer_syntax
            ),
            None,
        )
        if context is None:
            log.warning("C-GET: %s accepted no context to receive instance %s", association.calling_aet, instance)
            return CANNOT_UNDERSTAND
        return await files.beside(position, partial(self._exchange_back, association, watch, context, data, meta))

    @staticmethod
    async def _exchange_back(
        association: Association, watch: Watch, context: AcceptedContext, data: bytes, meta: StoredFile
    ) -> int:
        """The C-STORE-RQ of a C-GET sub-operation sent, and the status of its response."""
        message_id = association.next_message_id()
        command = store_request(message_id, meta)
        await association.send_message(context.context_id, command, memoryview(data)[meta.dataset_offset :])
        while True:
            answer = await watch.response(association.limits.timeout)
            if answer.command.get("MessageIDBeingRespondedTo") == message_id:
                return int(answer.command.get("Status", CANNOT_UNDERSTAND))
            log.warning("C-GET: stray %s from %s ignored", answer, association.calling_aet)
