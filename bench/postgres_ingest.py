"""REST ingest on a PostgreSQL index: our node against Orthanc 1.10.1 with its PostgreSQL plugin.

    python -m bench.postgres_ingest [--count N] [--repeat N]

Tiny instances (no pixels) posted by 4 keep-alive clients, both servers on one throw-away
PostgreSQL cluster (a database each, fresh for every repeat), files on the local disk,
SyncStorageArea on. Needs PostgreSQL's server binaries and the orthanc-postgresql package;
prints the medians, ours / Orthanc's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench.common import Server, fmt, median, orthanc, our_node, ratio, tiny_instances, upload
from tests.support.postgres import Cluster, server_binaries, throwaway_cluster

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")
CLIENTS = 4


def _timed(server: Server, bodies: list[bytes]) -> float:
    """Instances per second over the whole upload."""
    started = time.perf_counter()
    trio.run(upload, server.http_url, bodies, CLIENTS)
    return len(bodies) / (time.perf_counter() - started)


def _fresh_database(cluster: Cluster, name: str) -> None:
    with cluster.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _plugin_options(cluster: Cluster, database: str) -> dict[str, Any]:
    return {
        "Plugins": [str(PLUGIN)],
        "PostgreSQL": {
            "EnableIndex": True, "EnableStorage": False, "Host": cluster.host, "Port": cluster.port,
            "Database": database, "Username": cluster.user, "Password": "", "Lock": False,
        },
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    binaries = server_binaries()
    if binaries is None or not PLUGIN.exists():
        print("needs PostgreSQL's server and the orthanc-postgresql plugin", file=sys.stderr)
        return 2
    ours: list[float] = []
    theirs: list[float] = []
    with throwaway_cluster(binaries) as cluster:
        for repeat in range(args.repeat):
            bodies = tiny_instances(args.count, f"pg{repeat}")
            with tempfile.TemporaryDirectory() as folder:
                for name in ("ours", "orthanc"):
                    (Path(folder) / name).mkdir()
                _fresh_database(cluster, "ours")
                with our_node(Path(folder) / "ours", {"PostgreSQL": cluster.option("ours")}) as server:
                    ours.append(_timed(server, bodies))
                _fresh_database(cluster, "orthanc")
                with orthanc(Path(folder) / "orthanc", _plugin_options(cluster, "orthanc")) as server:
                    theirs.append(_timed(server, bodies))
            print(f"repeat {repeat + 1}: ours {ours[-1]:.0f}/s, Orthanc {theirs[-1]:.0f}/s", flush=True)
    mine, reference = median(ours), median(theirs)
    print(
        f"REST x{CLIENTS} tiny on PostgreSQL: ours {fmt(mine, '.0f')}/s, Orthanc {fmt(reference, '.0f')}/s, "
        f"ratio {fmt(ratio(mine, reference), '.2f')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
