"""A presentation context as negotiated: what the rest of the layer needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AcceptedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    as_scu: bool  # we may send requests of this SOP class on it
    as_scp: bool  # we may receive them
