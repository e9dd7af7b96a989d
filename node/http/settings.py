"""The options of the REST API: where it listens, who may use it, what it takes from a client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Config
from ..units import MEGABYTE, SECOND

# Accepted when remote access and authentication are on and no user is declared, as in Orthanc.
DEFAULT_USER = "orthanc"
DEFAULT_PASSWORD = "orthanc"


@dataclass(frozen=True)
class HttpSettings:
    enabled: bool
    port: int
    bind_address: str
    remote_access_allowed: bool  # false: clients other than loopback get 401
    authentication_enabled: bool
    registered_users: Mapping[str, str]  # as declared: user -> password
    describe_errors: bool  # a JSON body on errors
    request_timeout: float  # seconds a client may stay silent while it owes bytes, or leave an answer unread; 0: none
    minimum_receive_rate: float  # bytes per second a client must average while sending a body; 0: none
    maximum_connections: int  # open at once; 0: no limit
    maximum_request_size: int  # bytes of a request body
    execute_lua_enabled: bool  # only chooses between 403 and "not implemented"
    compression_enabled: bool  # gzip/deflate answers to clients that accept them
    synchronous_zip_stream: bool  # false: a synchronous archive is built whole, then sent with its length

    @classmethod
    def from_config(cls, config: Config) -> HttpSettings:
        remote = bool(config["RemoteAccessAllowed"])
        authentication = config["AuthenticationEnabled"]  # None: same as RemoteAccessAllowed
        return cls(
            enabled=bool(config["HttpServerEnabled"]),
            port=int(config["HttpPort"]),
            bind_address=str(config["HttpBindAddress"]),
            remote_access_allowed=remote,
            authentication_enabled=remote if authentication is None else bool(authentication),
            registered_users={str(name): str(password) for name, password in config["RegisteredUsers"].items()},
            describe_errors=bool(config["HttpDescribeErrors"]),
            request_timeout=float(config["HttpRequestTimeout"]) * SECOND,
            minimum_receive_rate=float(config["HttpMinimumReceiveRate"]),
            maximum_connections=int(config["HttpMaximumConnections"]),
            maximum_request_size=int(config["MaximumRequestSize"]) * MEGABYTE,
            execute_lua_enabled=bool(config["ExecuteLuaEnabled"]),
            compression_enabled=bool(config["HttpCompressionEnabled"]),
            synchronous_zip_stream=bool(config["SynchronousZipStream"]),
        )

    @property
    def accepted_users(self) -> dict[str, str]:
        """The credentials accepted: the declared users, or Orthanc's default one when nobody is
        declared and remote clients must authenticate."""
        if self.authentication_enabled and self.remote_access_allowed and not self.registered_users:
            return {DEFAULT_USER: DEFAULT_PASSWORD}
        return dict(self.registered_users)

    @property
    def is_secure(self) -> bool:
        """False when whoever reaches the port gets in: remote access without authentication, or
        with only the default user (``IsHttpServerSecure`` in /system)."""
        if not self.remote_access_allowed:
            return True
        return self.authentication_enabled and bool(self.registered_users)
