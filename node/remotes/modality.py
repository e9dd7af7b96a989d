"""One remote DICOM modality: where it listens, what it may ask us, how we talk to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..body_fields import boolean, integer, string
from ..errors import ErrorCode, OrthancError

#: Commands a modality may send to our SCP, each with its ``Allow...`` flag.
SCP_REQUESTS = ("Echo", "Find", "FindWorklist", "Get", "Move", "Store", "NAction", "EventReport")
#: How C-FIND queries are patched for a remote (see :mod:`node.net.find_scu`).
MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE")
_GENERIC = "Generic"
_LOWEST_PORT, _HIGHEST_PORT = 1, 65534  # the range a declared port must fall in
_ARRAY_FORM_LENGTHS = (3, 4)  # [AET, Host, Port] or [AET, Host, Port, Manufacturer]


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
        """The full object of GET /modalities/{id}/configuration, every field present."""
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
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    number = integer(value, ErrorCode.BAD_FILE_FORMAT)
    if not _LOWEST_PORT <= number <= _HIGHEST_PORT:
        raise OrthancError(
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            f"A TCP port number must be in range [{_LOWEST_PORT}..{_HIGHEST_PORT}], but found: {number}",
        )
    return number


def _manufacturer(value: Any) -> str:
    name = string(value, ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Manufacturer")
    if name not in MANUFACTURERS:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Unknown modality manufacturer: "{name}"')
    return name


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    return boolean(body[name], ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {name}")


def _string_field(body: dict[str, Any], name: str) -> str:
    return string(body.get(name), ErrorCode.BAD_FILE_FORMAT, f"String value expected in field: {name}")


def parse_modality(value: Any) -> RemoteModality:
    """A modality in either form of the configuration (array or object); Orthanc's errors otherwise."""
    if isinstance(value, list):
        if len(value) not in _ARRAY_FORM_LENGTHS or not all(isinstance(item, str) for item in value[:2]):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
        manufacturer = _manufacturer(value[3]) if len(value) == _ARRAY_FORM_LENGTHS[1] else _GENERIC
        return RemoteModality(value[0], value[1], _port(value[2]), manufacturer)
    if not isinstance(value, dict) or "AET" not in value or "Port" not in value:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
    commitment = _flag(value, "AllowStorageCommitment", True)
    defaults = {"NAction": commitment, "EventReport": commitment}
    allowed = frozenset(
        request for request in SCP_REQUESTS if _flag(value, f"Allow{request}", defaults.get(request, True))
    )
    timeout = integer(value.get("Timeout", 0), ErrorCode.BAD_FILE_FORMAT, "Integer value expected in field: Timeout")
    return RemoteModality(
        aet=_string_field(value, "AET"),
        host=_string_field(value, "Host"),
        port=_port(value["Port"]),
        manufacturer=_manufacturer(value.get("Manufacturer", _GENERIC)),
        allowed=allowed,
        allow_transcoding=_flag(value, "AllowTranscoding", True),
        use_dicom_tls=_flag(value, "UseDicomTls", False),
        local_aet=string(
            value.get("LocalAet", ""), ErrorCode.BAD_FILE_FORMAT, "String value expected in field: LocalAet"
        ),
        timeout=max(timeout, 0),
    )
