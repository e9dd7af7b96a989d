"""Ingest on each way of deploying: our node with 1 and 2 members, on SQLite and on PostgreSQL,
against Orthanc 1.10.1 on SQLite and with its PostgreSQL plugin, in the same run.

Each server starts afresh for every repeat (its own folder; on PostgreSQL a new database on
one throw-away cluster that every server of the run shares), then stores the tiny ingest set
once per case (REST with 4 and 16 client processes, storescu with 4 associations), the
study deleted, untimed, after each measure. Orthanc is measured once per backend, case and
repeat; its sample stands beside each of our members counts on that backend. The order of
the servers alternates between repeats, so that a change of the machine's load weighs on
both alike.

Where PostgreSQL's server, or Orthanc's plugin for it, is not installed, the figures that
need it are left out and the results say so (:attr:`Plan.notes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bench.common import Server, orthanc, our_node, tiny_instances, upload
from bench.figures import Outcome, Run, cstore_load, delete_study, rest_load
from bench.report import ORTHANC, OURS, Figure, Row
from tests.support.postgres import Cluster, server_binaries, throwaway_cluster

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")
SQLITE, POSTGRESQL = "SQLite", "PostgreSQL"
MEMBERS = (1, 2)
GROUP = "deployments"
WARM_UP_INSTANCES = 10
_NAMES = {"rest": "REST", "cstore": "C-STORE (storescu)"}


@dataclass(frozen=True)
class Deployment:
    """One server of the comparison: ours (with ``members``) or Orthanc (members 0), on a backend."""

    backend: str
    members: int

    @property
    def ours(self) -> bool:
        return self.members > 0


def figure(method: str, clients: int, backend: str, members: int) -> Figure:
    return Figure(
        f"deploy-{method}-tiny-x{clients}-{backend.lower()}-m{members}",
        f"{_NAMES[method]} ingest, tiny, {clients} clients, {backend}, ours with {members} member(s)",
        "instances/s", group=GROUP, clients=clients,
    )  # fmt: skip


@dataclass
class Plan:
    """What this machine can compare: the backends, and whether Orthanc runs on each."""

    backends: list[str]
    orthanc_on: set[str]
    notes: list[str] = field(default_factory=list)


def plan(with_orthanc: bool) -> Plan:
    found = Plan([SQLITE], {SQLITE} if with_orthanc else set())
    if server_binaries() is None:
        found.notes.append("PostgreSQL's server is not installed: no PostgreSQL figures.")
        return found
    found.backends.append(POSTGRESQL)
    found.notes.append(
        "The PostgreSQL figures share one throw-away cluster run with fsync and synchronous_commit off, "
        "for ours and Orthanc alike."
    )
    if with_orthanc and PLUGIN.exists():
        found.orthanc_on.add(POSTGRESQL)
    elif with_orthanc:
        found.notes.append(f"Orthanc's PostgreSQL plugin ({PLUGIN}) is not installed: our PostgreSQL figures alone.")
    return found


def _fresh_database(cluster: Cluster, name: str) -> None:
    with cluster.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _orthanc_postgresql(cluster: Cluster, database: str) -> dict[str, Any]:
    """The plugin's options: the index in ``database``, the files on the disk as ours are."""
    return {
        "Plugins": [str(PLUGIN)],
        "PostgreSQL": {
            "EnableIndex": True, "EnableStorage": False, "Host": cluster.host, "Port": cluster.port,
            "Database": database, "Username": cluster.user, "Password": "", "Lock": False,
        },
    }  # fmt: skip


def starter(
    deployment: Deployment, options: dict[str, Any], cluster: Cluster | None
) -> Callable[[Path], AbstractContextManager[Server]]:
    """How to start one deployment's server afresh in a folder."""
    settings = dict(options)
    if deployment.backend == POSTGRESQL:
        assert cluster is not None
        database = f"m{deployment.members}"  # ours x1, ours x2, Orthanc (m0): a database each
        _fresh_database(cluster, database)
        if deployment.ours:
            settings["PostgreSQL"] = cluster.option(database)
        else:
            settings.update(_orthanc_postgresql(cluster, database))
    if deployment.ours:
        return lambda folder: our_node(folder, settings, jobs=False, members=deployment.members)
    return lambda folder: orthanc(folder, settings)


def _measure(run: Run, deployment: Deployment, server: Server) -> None:
    # First requests pay for imports and caches: kept out of the figures, as in the pair's.
    trio.run(upload, server.http_url, tiny_instances(WARM_UP_INSTANCES, f"WARM-{server.name}"))
    tool = run.tools["storescu"]
    fileset = run.data.ingest["tiny"]
    requests = [("POST", "/instances", path) for path in fileset.files]
    for method, clients in run.sizes.deployment_cases:
        send: Callable[[], Outcome]
        if method == "rest":
            send = partial(rest_load, server, requests, None, clients)
        elif tool is not None:
            send = partial(cstore_load, server, fileset.files, tool, clients)
        else:
            continue
        members = MEMBERS if not deployment.ours else (deployment.members,)
        first = figure(method, clients, deployment.backend, members[0])
        sample = run.measure(first, server, send)  # Orthanc: recorded as that of the first members count
        for count in members[1:]:  # ... and of the others
            run.record(figure(method, clients, deployment.backend, count), ORTHANC, sample)
        delete_study(server, fileset.study_uid)


@contextmanager
def _cluster(found: Plan) -> Iterator[Cluster | None]:
    binaries = server_binaries()
    if POSTGRESQL not in found.backends or binaries is None:
        yield None
        return
    with throwaway_cluster(binaries) as cluster:
        yield cluster


def run_deployments(
    run: Run, folder: Path, options: dict[str, Any], with_orthanc: bool,
    guarded: Callable[[Run, list[str], str, Callable[[], Any]], Any], failures: list[str],
) -> None:  # fmt: skip
    """Every deployment, ``run.sizes.repeat`` times, each measured on every case of ``run.sizes.deployment_cases``."""
    found = plan(with_orthanc)
    for text in found.notes:
        run.note(text)
    deployments = [
        Deployment(backend, members)
        for backend in found.backends
        for members in ((0,) if backend in found.orthanc_on else ()) + MEMBERS
    ]
    with ExitStack() as stack:
        cluster = stack.enter_context(_cluster(found))
        for repeat in range(run.sizes.repeat):
            for number, deployment in enumerate(deployments if repeat % 2 == 0 else deployments[::-1]):
                name = f"{OURS} x{deployment.members}" if deployment.ours else ORTHANC
                what = f"repeat {repeat + 1}/{run.sizes.repeat}, deployments, {name} on {deployment.backend}"
                server_folder = folder / f"deploy-{repeat}-{number}"
                server_folder.mkdir(parents=True)

                def measure(deployment: Deployment = deployment, server_folder: Path = server_folder) -> None:
                    with starter(deployment, options, cluster)(server_folder) as server:
                        _measure(run, deployment, _named(server, deployment))

                guarded(run, failures, what, measure)


def _named(server: Server, deployment: Deployment) -> Server:
    """The server under the name the figures file its samples by: ours or Orthanc."""
    return Server(OURS if deployment.ours else ORTHANC, server.http_url, server.dicom_port, server.aet, server.pid)


def scaling_lines(rows: list[Row]) -> list[str]:
    """Ours with 2 members against ours with 1, per backend and case: the gain of the second member."""
    by_key = {row.figure.key: row for row in rows}
    lines = []
    for key, row in by_key.items():
        if not (key.startswith("deploy-") and key.endswith("-m2")):
            continue
        one = by_key.get(key[: -len("-m2")] + "-m1")
        two_rate, one_rate = row.medians.get(OURS), one.medians.get(OURS) if one else None
        if two_rate is None or not one_rate:
            continue
        label = row.figure.label.split(", ours with")[0]
        lines.append(f"- {label}: 2 members {two_rate:.0f}/s, 1 member {one_rate:.0f}/s: x{two_rate / one_rate:.2f}")
    return lines
