"""One remote DICOM modality: where it listens, what it may ask us, how we talk to it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..body_fields import boolean, integer, string
from ..errors import ErrorCode, OrthancError
from .json_fields import INT32_MAX, malformed, unsigned_field

#: Commands a modality may send to our SCP, each with its ``Allow...`` flag, in the order a body's
#: flags are checked (the first wrong one is the one reported).
SCP_REQUESTS = ("Echo", "Find", "FindWorklist", "Store", "Get", "Move", "NAction", "EventReport")
#: How C-FIND queries are patched for a remote (see :mod:`node.net.find_scu`).
MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE")
_GENERIC = "Generic"
#: Names of manufacturers that older configurations used, read as the behaviour they stand for.
_FORMER_MANUFACTURERS = {
    "AgfaImpax": "GenericNoWildcardInDates",
    "SyngoVia": "GenericNoWildcardInDates",
    "EFilm2": _GENERIC,
    "MedInria": _GENERIC,
    "ClearCanvas": _GENERIC,
    "Dcm4Chee": _GENERIC,
}
_LOWEST_PORT, _HIGHEST_PORT = 1, 65534  # the range a declared port must fall in
_ARRAY_FORM_LENGTHS = (3, 4)  # [AET, Host, Port] or [AET, Host, Port, Manufacturer]
_SIGNED_DIGITS = re.compile(r"[+-]?[0-9]+")  # a port may be written as a string of digits
_COMMITMENT = "AllowStorageCommitment"  # sets both storage-commitment flags, over their own keys


@dataclass(frozen=True)
class RemoteModality:
    aet: str
    host: str
    port: int
    manufacturer: str = _GENERIC
    allowed: frozenset[str] = field(default_factory=lambda: frozenset(SCP_REQUESTS))
    allow_transcoding: bool = True
    use_dicom_tls: bool = False
    local_aet: str = ""  # the calling AE title we use towards it; "" means the request's or DicomAet
    timeout: int = 0  # seconds; 0 means DicomScuTimeout

    def to_json(self) -> dict[str, Any]:
        """The full object of GET /modalities/{id}/configuration, every field present (and the form
        it is saved in: :func:`parse_modality` reads it back unchanged)."""
        flags = {f"Allow{request}": request in self.allowed for request in SCP_REQUESTS}
        return dict(
            sorted(
                {
                    "AET": self.aet,
                    "Host": self.host,
                    "Port": self.port,
                    "Manufacturer": self.manufacturer,
                    "AllowTranscoding": self.allow_transcoding,
                    "UseDicomTls": self.use_dicom_tls,
                    "LocalAet": self.local_aet,
                    "Timeout": self.timeout,
                    **flags,
                }.items()
            )
        )

    def calling_aet(self, requested: str | None, default: str) -> str:
        """Our AE title towards it: its own ``LocalAet`` wins over the request's, which wins over DicomAet."""
        return self.local_aet or requested or default

    def scu_timeout(self, requested: float | None, default: float | None) -> float | None:
        """Seconds every wait towards it may take: the request's, else its own, else DicomScuTimeout."""
        return requested or self.timeout or default


def _port(value: Any) -> int:
    """A port as a JSON integer or a string of digits, within the range of TCP ports we accept."""
    if isinstance(value, str) and _SIGNED_DIGITS.fullmatch(value):
        value = int(value)
    number = integer(value, ErrorCode.BAD_FILE_FORMAT)
    if abs(number) > INT32_MAX:
        raise malformed()
    if not _LOWEST_PORT <= number <= _HIGHEST_PORT:
        raise OrthancError(
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            f"A TCP port number must be in range [{_LOWEST_PORT}..{_HIGHEST_PORT}], but found: {number}",
        )
    return number


def _manufacturer(name: str) -> str:
    """One of :data:`MANUFACTURERS` (case-sensitive), or a former name of one."""
    if name in MANUFACTURERS:
        return name
    if name in _FORMER_MANUFACTURERS:
        return _FORMER_MANUFACTURERS[name]
    raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Unknown modality manufacturer: "{name}"')


def _string_field(body: dict[str, Any], name: str) -> str:
    return string(body.get(name), ErrorCode.BAD_FILE_FORMAT, f"String value expected in field: {name}")


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    return boolean(body[name], ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {name}")


def _allowed(body: dict[str, Any]) -> frozenset[str]:
    """The ``Allow...`` flags, each checked in turn; ``AllowStorageCommitment`` sets N-ACTION and
    N-EVENT-REPORT together, whatever their own keys say."""
    allowed = {request for request in SCP_REQUESTS if _flag(body, f"Allow{request}", True)}
    if _COMMITMENT in body:
        commitment = {"NAction", "EventReport"}
        allowed = allowed | commitment if _flag(body, _COMMITMENT, True) else allowed - commitment
    return frozenset(allowed)


def _from_array(value: list[Any]) -> RemoteModality:
    if len(value) not in _ARRAY_FORM_LENGTHS or not all(isinstance(item, str) for item in value[:2]):
        raise malformed()
    port = _port(value[2])
    if len(value) == _ARRAY_FORM_LENGTHS[0]:
        return RemoteModality(value[0], value[1], port)
    if not isinstance(value[3], str):
        raise malformed()
    return RemoteModality(value[0], value[1], port, _manufacturer(value[3]))


def _from_object(value: dict[str, Any]) -> RemoteModality:
    """The fields are checked in a fixed order, so that a body with several faults is answered
    with the same error as by Orthanc; unknown keys are ignored."""
    aet = _string_field(value, "AET")
    host = _string_field(value, "Host")
    if "Port" not in value:
        raise malformed()
    port = _port(value["Port"])
    manufacturer = _manufacturer(_string_field(value, "Manufacturer")) if "Manufacturer" in value else _GENERIC
    allowed = _allowed(value)
    allow_transcoding = _flag(value, "AllowTranscoding", True)
    use_dicom_tls = _flag(value, "UseDicomTls", False)
    local_aet = _string_field(value, "LocalAet") if "LocalAet" in value else ""
    return RemoteModality(
        aet=aet,
        host=host,
        port=port,
        manufacturer=manufacturer,
        allowed=allowed,
        allow_transcoding=allow_transcoding,
        use_dicom_tls=use_dicom_tls,
        local_aet=local_aet,
        timeout=unsigned_field(value, "Timeout"),
    )


def parse_modality(value: Any) -> RemoteModality:
    """A modality in either form of the configuration (array or object); Orthanc's errors otherwise."""
    if isinstance(value, list):
        return _from_array(value)
    if isinstance(value, dict):
        return _from_object(value)
    raise malformed()
