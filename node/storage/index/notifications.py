"""Messages between the processes that share one database, for an index that can carry them.

A message is a short text for one process (or for all of them, whatever the caller means by
its target): it is sent on the database's one channel, every listener receives every message
and its user keeps those meant for it. A message sent inside a transaction leaves at its
commit, so a listener that looks at the database on receipt sees what the sender wrote.

A listener that is not connected when a message leaves never receives it: after it connected
again it says so (:data:`MAYBE_LOST`), and its user then looks at the database instead.
"""

from __future__ import annotations

import abc
import json

CHANNEL = "dicom_node"  # one per database, so the nodes of two databases never cross
MESSAGE_MAX_CHARS = 1000  # a target and a word; PostgreSQL refuses payloads from 8000 bytes
MAYBE_LOST = None  # what a listener returns once messages may have been lost (it reconnected)

Message = tuple[str, str]  # (target, text)


def encode(target: str, text: str) -> str:
    payload = json.dumps([target, text])
    if len(payload) > MESSAGE_MAX_CHARS:
        raise ValueError(f"a message of {len(payload)} characters is too long")
    return payload


def decode(payload: str) -> Message | None:
    """The message in ``payload``, or None if it is not one of ours."""
    if len(payload) > MESSAGE_MAX_CHARS:
        return None
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value):
        return value[0], value[1]
    return None


class Listener(abc.ABC):
    """One process's reception of the messages; close it when done."""

    @abc.abstractmethod
    async def receive(self) -> list[Message] | None:
        """The next messages (at least one), or :data:`MAYBE_LOST` once some may have been lost."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class Notifications(abc.ABC):
    """The database's messages: send one, or start listening."""

    @abc.abstractmethod
    async def send(self, target: str, text: str) -> None:
        """Send at once (a transaction of its own)."""

    @abc.abstractmethod
    async def listen(self) -> Listener:
        """A listener receiving every message sent from now on."""
