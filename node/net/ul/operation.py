"""A long operation (C-FIND, C-MOVE, C-GET) run while the peer's messages are still read: a
C-CANCEL reaches it between two answers, and the responses to sub-operations sent on the same
association (C-GET's C-STORE-RQs) come back to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from .assembly import Message
from .association import Association, PeerAborted, ReleaseRequested, TimedOut
from .dimse import C_CANCEL_RQ, RESPONSE_BIT
from .pdu import REASON_UNEXPECTED_PDU, PeerClosed, ProtocolError

log = logging.getLogger(__name__)

_ENDINGS = (PeerAborted, PeerClosed, ProtocolError, ReleaseRequested, TimedOut)


class Watch:
    """What the peer said while the operation ``message_id`` runs."""

    def __init__(self, association: Association, message_id: int) -> None:
        self.association = association
        self.message_id = message_id
        self.cancelled = False
        # Responses wait here for the operation (C-GET waits for one at a time); any beyond are dropped.
        self._send, self._responses = trio.open_memory_channel[Message](1)
        self.error: BaseException | None = None

    async def response(self, timeout: float | None) -> Message:
        """The next response to one of our sub-operations."""
        if timeout is None:
            return await self._responses.receive()
        with trio.move_on_after(timeout):
            return await self._responses.receive()
        raise TimedOut(f"no response to a sub-operation within {timeout} s")

    async def _read(self, scope: trio.CancelScope) -> None:
        """Until cancelled: the peer is silent while it waits for our answers, so no timeout here."""
        try:
            while True:
                message = await self.association.receive_message(timeout=None)
                field = message.command_field
                if field == C_CANCEL_RQ:
                    if message.command.get("MessageIDBeingRespondedTo") == self.message_id:
                        self.cancelled = True
                elif field & RESPONSE_BIT:
                    try:
                        self._send.send_nowait(message)
                    except trio.WouldBlock:
                        log.warning(
                            "%s from %s dropped: no sub-operation waits for it", message, self.association.calling_aet
                        )
                else:
                    raise ProtocolError(REASON_UNEXPECTED_PDU, f"{message} while #{self.message_id} is not done")
        except _ENDINGS as error:
            self.error = error
            scope.cancel()


async def run_watched(association: Association, message_id: int, operation: Callable[[Watch], Awaitable[None]]) -> None:
    """Run ``operation`` while a second task reads the peer's messages for it.

    What ends the association while it runs (an abort, a close, a protocol error) is raised
    here, as itself; so is the operation's own error.
    """
    watch = Watch(association, message_id)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch._read, nursery.cancel_scope)
            await operation(watch)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise first_real(group) from None
    if watch.error is not None:
        raise watch.error


def first_real(group: BaseExceptionGroup) -> BaseException:
    """The one exception that ended the nursery; the Cancelled of its siblings only follow it.

    When only Cancelled remain, the enclosing scope is being cancelled: one of them is it.
    """
    _, rest = group.split(trio.Cancelled)
    chosen: BaseException = rest if rest is not None else group
    while isinstance(chosen, BaseExceptionGroup):
        chosen = chosen.exceptions[0]
    return chosen
