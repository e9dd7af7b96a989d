"""Where a member's time goes under tiny ingest: py-spy on every member, the load in client processes.

    python -m bench.profile_members [--members 1] [--clients 4] [--method rest|storescu]
                                    [--count 2000] [--idle] [--gil] [--rate 250] [--sync on|off]

Starts our node (``--members N``), records each member with py-spy (``raw`` collapsed stacks)
while the clients (:mod:`bench.client` processes, or storescu) store ``count`` tiny instances,
then prints, per member and over all: the share of samples in each thread, and the share of
each category of work (:data:`CATEGORIES`, first match from the leaf up) in each thread. With
``--idle`` the samples of waiting threads count too (where the time goes, waits included);
without it only running ones; ``--gil`` keeps the samples that hold the GIL only (who holds
the one core a member can use). Also prints the split of REST requests between members
(``trionode_member_rest_requests_total``) and the rate.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.common import Server, descendants, our_node, tiny_instances
from bench.figures import write_set
from bench.load import http_load, storescu_load
from tests.support.dcmtk import dcmtk_tool

PY_SPY = Path(sys.executable).with_name("py-spy")
MINIMUM_SHOWN = 0.5  # % of the samples below which a category is left out
# (category, pattern matched against one frame "function (file:line)"), looked for from the leaf
# up: the first frame of a stack that matches one names its category.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("lock wait (BEGIN IMMEDIATE poll)", r"__enter__ \(node/storage/index/sqlite\.py"),
    ("COMMIT (WAL fsync)", r"__exit__ \(node/storage/index/sqlite\.py"),
    ("wait for the file (written)", r"result_blocking \(node/storage/thread\.py"),
    ("index rows (insert_instance)", r"node/storage/index/queries\.py"),
    ("file write + fsync", r"write \(node/storage/files\.py"),
    ("metrics", r"node/metrics\.py|prometheus_client|node/http/instrument\.py:2[4-9]"),
    ("DICOM parse", r"node/dicom/parse\.py|pydicom"),
    ("ingest (describe, ids)", r"node/services/ingest\.py"),
    ("DIMSE (pynetdicom)", r"pynetdicom|node/net/"),
    ("HTTP (hypercorn, h11)", r"hypercorn|h11/"),
    ("fast path, ASGI wrappers", r"node/http/"),
    ("trio scheduler and I/O", r"trio/"),
    ("thread hand-offs", r"threading\.py|queue\.py|node/storage/thread\.py|node/storage/batch\.py"),
)


def member_pids(server: Server) -> list[int]:
    """The node processes answering: the members of a supervisor, or the node itself."""
    found = []
    for pid in descendants(server.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--member-id" in command:
            found.append(pid)
    return found or [server.pid]


def thread_kind(frame: str) -> str:
    name = frame.lower()
    for kind in ("sqlite-index", "sqlite-reader", "mainthread", "trio", "pynetdicom", "dicom"):
        if kind in name:
            return kind
    return "worker threads"


def categorize(frames: list[str]) -> str:
    for frame in reversed(frames):
        for category, pattern in CATEGORIES:
            if re.search(pattern, frame):
                return category
    return "other"


Samples = Counter[tuple[str, str, str]]  # (thread kind, category, leaf frame) -> samples


def read_samples(path: Path) -> Samples:
    """The samples of py-spy's raw output, by thread kind, category and leaf frame."""
    counts: Samples = Counter()
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        # With --threads the first frame is "process ...", the second the thread.
        thread = next((f for f in frames[:3] if f.startswith("thread ")), "thread ?")
        counts[(thread_kind(thread), categorize(frames), frames[-1])] += int(number)
    return counts


def show(title: str, samples: Samples, seconds: float, rate: int, detail: int) -> None:
    """Shares of the samples by thread kind, then by category, then (``detail``) by leaf frame."""
    total = sum(samples.values())
    print(f"\n{title}: {total} samples over {seconds:.1f} s ({total / max(seconds * rate, 1):.2f} threads busy)")
    by_thread: Counter[str] = Counter()
    by_category: Counter[tuple[str, str]] = Counter()
    for (thread, category, _), number in samples.items():
        by_thread[thread] += number
        by_category[(thread, category)] += number
    for thread, number in by_thread.most_common():
        print(f"  {thread:<16} {100 * number / total:5.1f} %")
        for (_, category), count in ((k, n) for k, n in by_category.most_common() if k[0] == thread):
            if 100 * count / total < MINIMUM_SHOWN:
                continue
            print(f"      {category:<34} {100 * count / total:5.1f} %")
            leaves = Counter({f: n for (t, c, f), n in samples.items() if (t, c) == (thread, category)})
            for leaf, n in leaves.most_common(detail):
                print(f"          {leaf[:90]:<90} {100 * n / total:5.1f} %")


def member_split(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.http_url}/tools/metrics-prometheus", timeout=30).text
    found = {}
    for line in text.splitlines():
        match = re.match(r'trionode_member_rest_requests_total\{member="([^"]+)"\} (\S+)', line)
        if match:
            found[match[1]] = float(match[2])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--method", choices=["rest", "storescu"], default="rest")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--idle", action="store_true", help="count the samples of waiting threads too")
    parser.add_argument("--gil", action="store_true", help="count only the samples that hold the GIL")
    parser.add_argument("--sync", choices=["on", "off"], default="on")
    parser.add_argument("--detail", type=int, default=0, help="leaf frames shown per category")
    parser.add_argument("--keep", type=Path, help="folder to copy py-spy's raw outputs into")
    args = parser.parse_args(argv)
    os.environ["TCP_NODELAY"] = "1"
    with tempfile.TemporaryDirectory(prefix="profile-members-") as scratch:
        folder = Path(scratch)
        files = write_set(folder / "data", tiny_instances(args.count, "PROFILE")).files
        (folder / "node").mkdir()
        options = {"SyncStorageArea": args.sync == "on"}
        with our_node(folder / "node", options, jobs=False, members=args.members) as server:
            warm = write_set(folder / "warm", tiny_instances(40, "WARM")).files
            http_load(server.http_url, [("POST", "/instances", f) for f in warm], processes=4).check()
            before = member_split(server)
            spies = []
            for pid in member_pids(server):
                output = folder / f"spy-{pid}.txt"
                command = [str(PY_SPY), "record", "-p", str(pid), "-f", "raw", "-o", str(output), "-r", str(args.rate)]
                command += ["--threads", "--nonblocking"] + (["--idle"] if args.idle else [])
                command += ["--gil"] if args.gil else []
                spies.append(
                    (pid, output, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                )
            time.sleep(1.0)  # py-spy attaches
            cpu = server.cpu_seconds()
            started = time.monotonic()
            if args.method == "rest":
                load = http_load(server.http_url, [("POST", "/instances", f) for f in files], processes=args.clients)
            else:
                tool = dcmtk_tool("storescu")
                assert tool is not None, "storescu not installed"
                load = storescu_load(server, files, args.clients, tool)
            load.check()
            seconds = time.monotonic() - started
            used = server.cpu_seconds() - cpu
            for _, _, spy in spies:
                spy.send_signal(signal.SIGINT)
            for _, _, spy in spies:
                spy.wait(timeout=60)
            after = member_split(server)
        total: Samples = Counter()
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for _, output, _ in spies:
                if output.exists():
                    shutil.copyfile(output, args.keep / output.name)
        for pid, output, _ in spies:
            samples = read_samples(output)
            show(f"member pid {pid}", samples, seconds, args.rate, args.detail)
            total.update(samples)
        if len(spies) > 1:
            show("all members", total, seconds * len(spies), args.rate, args.detail)
    split = {member: after.get(member, 0) - before.get(member, 0) for member in after}
    print(f"\n{args.method} x{args.clients}, {args.members} member(s): {load.rate:.0f} instances/s, "
          f"server CPU {1000 * used / args.count:.2f} ms per instance, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if split:
        print("REST requests per member: " + ", ".join(f"{m}: {n:.0f}" for m, n in sorted(split.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
