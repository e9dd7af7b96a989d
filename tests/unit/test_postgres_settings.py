"""The "PostgreSQL" option: typed, ConnectionUri first, the plugin's other keys ignored."""

from __future__ import annotations

import pytest

from node.config import Config
from node.errors import OrthancError
from node.storage.settings import PostgresSettings


def test_defaults_leave_the_index_in_sqlite() -> None:
    settings = PostgresSettings.from_config(Config())
    assert not settings.enabled and settings.pool_size == 8
    assert settings.connection_parameters() == {"host": "localhost", "port": 5432, "dbname": "orthanc"}


def test_keys_and_connection_uri() -> None:
    section = {"EnableIndex": True, "Host": "db", "Port": 5433, "Username": "u", "Password": "s3cret", "Lock": False}
    settings = PostgresSettings.from_config(Config({"PostgreSQL": section}))
    assert settings.enabled and "s3cret" not in repr(settings)
    assert settings.connection_parameters() == {"host": "db", "port": 5433, "dbname": "orthanc", "user": "u", "password": "s3cret"}
    uri = "postgresql://u:p@db:5433/other"
    with_uri = PostgresSettings.from_config(Config({"PostgreSQL": {**section, "ConnectionUri": uri}}))
    assert with_uri.connection_parameters() == {"conninfo": uri}


@pytest.mark.parametrize("section", [{"Port": "5432"}, {"EnableIndex": 1}, {"PoolSize": 0}, {"PoolSize": True}])
def test_bad_values_are_refused_at_start(section: dict[str, object]) -> None:
    with pytest.raises(OrthancError, match="PostgreSQL"):
        PostgresSettings.from_config(Config({"PostgreSQL": section}))
