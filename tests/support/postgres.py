"""A throw-away PostgreSQL cluster for the test session, and a fresh database for each test.

The cluster lives in a temporary folder, listens on a free loopback port and keeps its Unix
socket in that folder, so it never meets a server the machine runs. It runs as the ``postgres``
user when the tests run as root (the server refuses root), with fsync off: a test never needs
its data after a power cut. Tests needing it are skipped, with the reason, when the server's
binaries are not installed.

Fixtures (registered by tests/conftest.py): ``postgres_cluster`` (session), ``postgres_database``
(a new empty database, its "PostgreSQL" option ready for a node's configuration) and
``any_index`` (an open index of each backend in turn, for the tests that hold for both).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.orthanc_process import free_port
from node.config import Config
from node.storage.index import Index
from node.storage.index.postgresql import PostgresIndex
from node.storage.index.sqlite import SqliteIndex
from node.storage.settings import PostgresSettings

SERVER_USER = "postgres"
START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections
MAX_CONNECTIONS = 200  # several nodes of 8 connections each, in one test


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True)

    def option(self, database: str, **extra: Any) -> dict[str, Any]:
        """The node's "PostgreSQL" option for ``database``."""
        return {
            "EnableIndex": True,
            "Host": self.host,
            "Port": self.port,
            "Database": database,
            "Username": self.user,
            **extra,
        }


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl, if PostgreSQL's server is installed."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")


@contextmanager
def throwaway_cluster(binaries: Path) -> Iterator[Cluster]:
    """A new cluster in a temporary folder, removed with it on exit (for the tests and the bench)."""
    folder = Path(tempfile.mkdtemp(prefix="test-postgres-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    port = free_port()
    user = SERVER_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
              "--locale=C", "--no-sync"])  # fmt: skip
        settings = (
            f"-F -h 127.0.0.1 -p {port} -k {folder} -c max_connections={MAX_CONNECTIONS} "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", settings,
              "-t", str(START_TIMEOUT), "-w", "start"])  # fmt: skip
        try:
            yield Cluster("127.0.0.1", port, user)
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server is not installed (no initdb/pg_ctl)")
    with throwaway_cluster(binaries) as cluster:
        yield cluster


_numbers = itertools.count(1)


@pytest.fixture
def postgres_database(postgres_cluster: Cluster) -> Iterator[dict[str, Any]]:
    """A new empty database; its "PostgreSQL" option, to put in a node's configuration."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    with postgres_cluster.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_cluster.option(name)
    finally:
        with postgres_cluster.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_settings(option: dict[str, Any], **extra: Any) -> PostgresSettings:
    return PostgresSettings.from_config(Config({"PostgreSQL": {**option, **extra}}))


@pytest.fixture(params=["sqlite", "postgresql"])
def index_backend(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """Each backend in turn: None for SQLite, the "PostgreSQL" option of a fresh database."""
    if request.param == "postgresql":
        option: dict[str, Any] = request.getfixturevalue("postgres_database")
        return option
    return None


@pytest.fixture
async def any_index(index_backend: dict[str, Any] | None, tmp_path: Path) -> AsyncIterator[Index]:
    """An open, empty index of each backend in turn."""
    index: Index
    if index_backend is None:
        index = SqliteIndex(tmp_path / "index")
    else:
        index = await PostgresIndex.open(postgres_settings(index_backend))
    try:
        yield index
    finally:
        await index.close()
