"""The options of transfers to remote nodes: HTTP towards Orthanc peers, and retries."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..units import SECOND
from .retry import RetryPolicy


@dataclass(frozen=True)
class TransfersSettings:
    http_timeout: float  # seconds any wait on a peer may take, unless the peer sets its own Timeout
    https_verify_peers: bool  # check the certificates of https:// peers
    retry: RetryPolicy  # JobsRetry

    @classmethod
    def from_config(cls, config: Config) -> TransfersSettings:
        return cls(
            http_timeout=float(config["HttpTimeout"]) * SECOND,
            https_verify_peers=bool(config["HttpsVerifyPeers"]),
            retry=RetryPolicy.from_config(config),
        )
