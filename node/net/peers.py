"""Who may talk to our SCP, and ask what: the AE-title and modality checks of Orthanc."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..remotes.modality import RemoteModality
from .ul.acse import REJECT_CALLED_AET, REJECT_CALLING_AET


@dataclass(frozen=True)
class Peers:
    """AE-title and modality checks: the options from the configuration, the modalities as they are now.

    ``modalities`` is called at each check, so a modality added, changed or removed
    through REST counts from the next association or request on.
    """

    our_aet: str
    check_called_aet: bool
    strict: bool
    check_host: bool
    always_allowed: frozenset[str]
    modalities: Callable[[], Sequence[RemoteModality]] = tuple

    @classmethod
    def from_config(cls, config: Config) -> Peers:
        always = {
            "Echo": config["DicomAlwaysAllowEcho"],
            "Find": config["DicomAlwaysAllowFind"],
            "FindWorklist": config["DicomAlwaysAllowFindWorklist"],  # no worklist service: only admits unknown AETs
            "Get": config["DicomAlwaysAllowGet"],
            "Move": config["DicomAlwaysAllowMove"],
            "Store": config["DicomAlwaysAllowStore"],
        }
        return cls(
            our_aet=str(config["DicomAet"]),
            check_called_aet=bool(config["DicomCheckCalledAet"]),
            strict=bool(config["StrictAetComparison"]),
            check_host=bool(config["DicomCheckModalityHost"]),
            always_allowed=frozenset(flag for flag, allowed in always.items() if allowed),
        )

    def same_aet(self, a: str, b: str) -> bool:
        a, b = a.strip(), b.strip()
        return a == b if self.strict else a.upper() == b.upper()

    def _matching(self, calling_aet: str, ip: str) -> list[RemoteModality]:
        found = [m for m in self.modalities() if self.same_aet(m.aet, calling_aet)]
        return [m for m in found if m.host == ip] if self.check_host else found

    def rejection(self, called_aet: str, calling_aet: str, ip: str) -> tuple[int, int, int] | None:
        """Why an association request is refused (A-ASSOCIATE-RJ), or None to negotiate it."""
        if self.check_called_aet and not self.same_aet(called_aet, self.our_aet):
            return REJECT_CALLED_AET
        if not self.always_allowed and not self._matching(calling_aet, ip):
            return REJECT_CALLING_AET
        return None

    def allows(self, request: str, calling_aet: str, ip: str) -> bool:
        """May this peer send a C-`request` (Echo, Store...)?

        With several modalities of that AET: one of those at the peer's address must allow it
        when hosts are checked, else all of them must.
        """
        if request in self.always_allowed:
            return True
        found = self._matching(calling_aet, ip)
        if self.check_host:
            return any(request in m.allowed for m in found)
        return bool(found) and all(request in m.allowed for m in found)

    def destination(self, aet: str) -> RemoteModality | None:
        """The first declared modality with this AE title: where a C-MOVE to ``aet`` sends its
        sub-operations, as whom and with which timeout."""
        for modality in self.modalities():
            if self.same_aet(modality.aet, aet):
                return modality
        return None
