"""The options of the DICOM server: where it listens, who may talk to it, how much it takes."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..services.query_retrieve import FindSettings
from ..units import MEGABYTE, SECOND
from .peers import Peers


@dataclass(frozen=True)
class DicomSettings:
    enabled: bool
    port: int
    bind_address: str
    peers: Peers  # our AE title, the declared modalities and what each may ask
    scp_timeout: float | None  # seconds each PDU may take to arrive; None: no limit
    scu_timeout: float | None  # seconds to connect and for each PDU when a C-MOVE associates; None: the default
    concurrent_stores: int  # C-STOREs indexed at once (DicomThreadsCount)
    maximum_pdu_length: int  # bytes, the Maximum Length we announce
    maximum_associations: int  # open at once; 0: no limit
    maximum_associations_per_host: int  # open at once from one peer address; 0: no limit
    maximum_dataset_size: int  # bytes of one received dataset
    find: FindSettings

    @classmethod
    def from_config(cls, config: Config) -> DicomSettings:
        return cls(
            enabled=bool(config["DicomServerEnabled"]),
            port=int(config["DicomPort"]),
            bind_address=str(config["DicomBindAddress"]),
            peers=Peers.from_config(config),
            scp_timeout=float(config["DicomScpTimeout"]) * SECOND or None,
            scu_timeout=float(config["DicomScuTimeout"]) * SECOND or None,
            concurrent_stores=int(config["DicomThreadsCount"]),
            maximum_pdu_length=int(config["MaximumPduLength"]),
            maximum_associations=int(config["DicomMaximumAssociations"]),
            maximum_associations_per_host=int(config["DicomMaximumAssociationsPerHost"]),
            maximum_dataset_size=int(config["DicomMaximumDatasetSize"]) * MEGABYTE,
            find=FindSettings.from_config(config),
        )

    @property
    def aet(self) -> str:
        return self.peers.our_aet
