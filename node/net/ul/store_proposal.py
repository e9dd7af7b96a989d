"""The presentation contexts a C-STORE requestor proposes for the files it is about to send.

Each (SOP class, syntax) pair of the files gets a context of its own with that one syntax:
the acceptor then says yes or no to exactly what we can send as it is. Each SOP class is
also proposed in the ``fallbacks`` syntaxes, what the requestor may transcode a file to
when its own is refused (by default Explicit and Implicit VR Little Endian, which any
storage SCP accepts). An association carries at most 128 contexts: pairs are taken in the
order given (the next files first) until they are full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

MAX_CONTEXTS = 128  # what one A-ASSOCIATE-RQ may propose (odd context IDs 1..255)
UNCOMPRESSED = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))

# Instances whose (SOP class, syntax) shape the contexts of a new storage association: the index
# gives them at some 60 us each, before the first C-STORE can go. One of a pair not among them
# (rare: a study is mostly of one kind) opens the next association, proposing from it on.
PROPOSAL_WINDOW = 64

Pair = tuple[str, str]  # (SOP class UID, transfer syntax UID)


@dataclass(frozen=True)
class StoreProposal:
    contexts: list[PresentationContext]
    pairs: frozenset[Pair]  # every (SOP class, syntax) proposed


def store_proposal(wanted: Iterable[Pair], fallbacks: Sequence[str] = UNCOMPRESSED) -> StoreProposal:
    """Contexts for the pairs in ``wanted``, in order, as many as fit in one association."""
    proposed: dict[Pair, None] = {}
    classes: set[str] = set()
    for sop_class, syntax in wanted:
        extra = (syntax, *fallbacks) if sop_class not in classes else (syntax,)
        new = [(sop_class, uid) for uid in dict.fromkeys(extra) if (sop_class, uid) not in proposed]
        if len(proposed) + len(new) > MAX_CONTEXTS:
            break
        proposed.update(dict.fromkeys(new))
        classes.add(sop_class)
    return StoreProposal([build_context(sop, [uid]) for sop, uid in proposed], frozenset(proposed))
