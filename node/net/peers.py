"""Who may talk to our SCP, and ask what: the AE-title and modality checks of Orthanc."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Config
from .ul.acse import REJECT_CALLED_AET, REJECT_CALLING_AET


@dataclass(frozen=True)
class DeclaredModality:
    """The part of a DicomModalities entry that decides what it may ask us, and where we reach it."""

    aet: str
    host: str
    port: int | None  # None: the entry names no usable port, so it is no C-MOVE destination
    allowed: frozenset[str]  # "Echo", "Store", ...


ALLOW_FLAGS = ("Echo", "Find", "FindWorklist", "Get", "Move", "Store")
_MAX_PORT = 65535


def _port(value: Any) -> int | None:
    """A TCP port given as a number or as digits, else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= _MAX_PORT else None


def declared_modalities(option: Mapping[str, Any]) -> list[DeclaredModality]:
    """The DicomModalities option, its entries in either form; the array form allows everything."""
    out = []
    entry: Any
    for entry in dict(option).values():
        if isinstance(entry, list) and len(entry) >= 2:
            port = _port(entry[2]) if len(entry) >= 3 else None
            out.append(DeclaredModality(str(entry[0]), str(entry[1]), port, frozenset(ALLOW_FLAGS)))
        elif isinstance(entry, dict) and "AET" in entry:
            allowed = frozenset(flag for flag in ALLOW_FLAGS if entry.get(f"Allow{flag}", True))
            host = entry.get("Host", "")
            out.append(DeclaredModality(str(entry["AET"]), str(host), _port(entry.get("Port")), allowed))
    return out


@dataclass(frozen=True)
class Peers:
    """AE-title and modality checks, from one snapshot of the config."""

    our_aet: str
    check_called_aet: bool
    strict: bool
    check_host: bool
    always_allowed: frozenset[str]
    modalities: tuple[DeclaredModality, ...]

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
            modalities=tuple(declared_modalities(config["DicomModalities"])),
        )

    def same_aet(self, a: str, b: str) -> bool:
        a, b = a.strip(), b.strip()
        return a == b if self.strict else a.upper() == b.upper()

    def _matching(self, calling_aet: str, ip: str) -> list[DeclaredModality]:
        found = [m for m in self.modalities if self.same_aet(m.aet, calling_aet)]
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

    def destination(self, aet: str) -> tuple[str, int] | None:
        """(host, port) of the first declared modality with this AE title and a usable port: where a
        C-MOVE to ``aet`` sends its sub-operations."""
        for modality in self.modalities:
            if modality.port is not None and self.same_aet(modality.aet, aet):
                return modality.host, modality.port
        return None
