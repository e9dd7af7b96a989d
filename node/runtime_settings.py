"""The settings a client may change while the node runs, through /tools.

``PUT /tools/default-encoding``, ``/tools/accepted-transfer-syntaxes`` and
``/tools/unknown-sop-class-accepted`` change them; they start from the configured values
and are lost at stop, as in Orthanc. One object per node: the C-FIND service and every
association request read it when they start, so a change applies to the next ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config


@dataclass
class RuntimeSettings:
    default_encoding: str  # of created instances and C-FIND answers (Orthanc's name: Latin1, Utf8...)
    accepted_transfer_syntaxes: list[str]  # patterns (`*`, `?`) the C-STORE SCP accepts
    unknown_sop_class_accepted: bool  # accept SOP classes outside the storage list

    @classmethod
    def from_config(cls, config: Config) -> RuntimeSettings:
        return cls(
            default_encoding=str(config["DefaultEncoding"]),
            accepted_transfer_syntaxes=list(config["AcceptedTransferSyntaxes"]),
            unknown_sop_class_accepted=bool(config["UnknownSopClassAccepted"]),
        )
