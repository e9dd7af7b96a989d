"""A presentation context as negotiated: what the rest of the layer needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass

from pynetdicom.presentation import PresentationContext


@dataclass(frozen=True)
class AcceptedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    as_scu: bool  # we may send requests of this SOP class on it
    as_scp: bool  # we may receive them

    @classmethod
    def from_result(cls, result: PresentationContext) -> AcceptedContext:
        """An accepted result of pynetdicom's negotiation, as requestor or acceptor (roles are ours)."""
        if result.context_id is None:  # a result always carries the ID of the proposal it answers
            raise ValueError(f"negotiated presentation context without an ID: {result}")
        return cls(
            result.context_id,
            str(result.abstract_syntax),
            str(result.transfer_syntax[0]),
            as_scu=bool(result.as_scu),
            as_scp=bool(result.as_scp),
        )
