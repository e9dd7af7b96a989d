"""DICOM networking of our node against real Orthanc 1.10.1, in the same run.

    python bench/dimse.py [--quick] [--repeat N] [--only ours|orthanc] [--no-sync]

Cases: DCMTK storescu into each server, tiny instances and ~0.5 MB CT slices, with one
association and with 4 parallel associations (one storescu process each, files split
evenly); the cost of an association (A-ASSOCIATE-RQ/AC, one C-ECHO, release) from a
raw-socket client that costs next to nothing itself; findscu listing 1,000 studies; movescu of
a 500-instance study to DCMTK storescp (which drops what it receives, so the sink costs little);
and, for our node, how long after SIGTERM an idle association gets its A-ABORT.

TCP_NODELAY=1 is in the environment of storescu and Orthanc (DCMTK leaves Nagle on
otherwise, and every C-STORE then waits 40 ms for a delayed ACK). Both servers run with
their default durability (each flushes what it stores before answering); ``--no-sync``
turns SyncStorageArea off in both. The load generator check runs Orthanc's tiny case with one
more storescu process than each measured case (2 for 1, 5 for 4): where the rate rises, the
measured case is bound by its clients (one association waits for each answer before sending
the next instance), not by the server.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench`, `node` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import Verification

from bench.common import Server, ct_instances, fmt, median, orthanc, our_node, ratio, tiny_instances, upload
from bench.load import children_cpu
from bench.orthanc_process import free_port, orthanc_binary
from node.net.ul import acse
from node.net.ul.dimse import C_ECHO_RQ, NO_DATASET, encode_command
from node.net.ul.pdu import RELEASE_RQ_PDU, p_data_pdus
from tests.support.dcmtk import dcmtk_tool

TARGETS = {("tiny", 1): 1.0, ("tiny", 4): 1.0, ("ct", 1): 1.0, ("ct", 4): 1.0}
ASSOCIATION_TARGET_MS = 2.0
ABORT_TARGET_MS = 100.0
ASSOCIATIONS = 200  # per measure of the association cost
LOAD_CHECK_CLIENTS = (1, 2, 4, 5)  # storescu processes in the load generator check


@dataclass(frozen=True)
class Case:
    kind: str  # tiny, ct
    associations: int

    @property
    def name(self) -> str:
        return f"storescu {self.kind:<4} x{self.associations}"


@dataclass(frozen=True)
class Measure:
    rate: float  # instances per second
    server_cpu_ms: float  # per instance, all threads of the server
    client_cpu_ms: float  # per instance, every storescu process


def write_files(folder: Path, instances: list[bytes]) -> list[Path]:
    folder.mkdir()
    paths = []
    for number, data in enumerate(instances):
        path = folder / f"{number:05d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def storescu(server: Server, files: list[Path], associations: int, tool: str) -> Measure:
    """Every file sent by ``associations`` storescu processes at once (process start included)."""
    shares = [files[i::associations] for i in range(associations)]
    command = [tool, "-aet", "BENCH", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)]
    server_before, client_before = server.cpu_seconds(), children_cpu()
    start = time.perf_counter()
    processes = [subprocess.Popen([*command, *map(str, share)], stderr=subprocess.PIPE) for share in shares]
    errors = [p.communicate()[1].decode() for p in processes]
    elapsed = time.perf_counter() - start
    for process, error in zip(processes, errors, strict=True):
        if process.returncode != 0 or "E:" in error:
            raise RuntimeError(f"storescu failed ({process.returncode}): {error[-2000:]}")
    count = len(files)
    return Measure(
        count / elapsed,
        1000 * (server.cpu_seconds() - server_before) / count,
        1000 * (children_cpu() - client_before) / count,
    )


# -- association cost, from a raw-socket client ----------------------------------------------------


def _read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    header = _receive(sock, 6)
    pdu_type, length = struct.unpack(">BxI", header)
    return pdu_type, _receive(sock, length)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def _echo_pdus() -> tuple[bytes, bytes]:
    context = build_context(Verification, [ExplicitVRLittleEndian])
    context.context_id = 1
    request = acse.encode_request("BENCH", "ORTHANC", [context], 16384)
    command = {"CommandField": C_ECHO_RQ, "MessageID": 1, "AffectedSOPClassUID": Verification}
    echo = b"".join(p_data_pdus(1, 0x01, encode_command({**command, "CommandDataSetType": NO_DATASET}), 16384))
    return request, echo


def association_ms(server: Server, count: int = ASSOCIATIONS) -> float:
    """Median wall time of connect + A-ASSOCIATE + C-ECHO + release + close, in ms."""
    request, echo = _echo_pdus()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", server.dicom_port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request)
            if _read_pdu(sock)[0] != 2:
                raise RuntimeError("association not accepted")
            sock.sendall(echo)
            _read_pdu(sock)
            sock.sendall(RELEASE_RQ_PDU)
            _read_pdu(sock)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def abort_after_sigterm_ms(folder: Path) -> float:
    """Our node only: an idle association, SIGTERM to the node, then ms until its A-ABORT arrives."""
    folder.mkdir(parents=True)
    with our_node(folder, jobs=False) as server:
        request, _ = _echo_pdus()
        sock = socket.create_connection(("127.0.0.1", server.dicom_port))
        with sock:
            sock.sendall(request)
            _read_pdu(sock)
            start = time.perf_counter()
            os.kill(server.pid, 15)
            pdu_type, _ = _read_pdu(sock)
            elapsed = time.perf_counter() - start
    if pdu_type != 7:
        raise RuntimeError(f"expected an A-ABORT, got PDU type {pdu_type}")
    return 1000 * elapsed


def spread(values: list[float] | None) -> str:
    """The range of a case's measures, next to its median."""
    return f"[{min(values):.0f}-{max(values):.0f}]" if values else "[-]"


# -- running and reporting --------------------------------------------------------------------------


Results = dict[str, dict[Case, list[Measure]]]


# -- query/retrieve -----------------------------------------------------------------------------------

SINK_AET = "SINK"
QUERY_TIMES = 3  # findscu runs per server, the median is kept


def qr_options(sink_port: int) -> dict[str, object]:
    return {
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {"sink": [SINK_AET, "127.0.0.1", sink_port]},
    }


def qr_setup(server: Server, studies: int, moved: list[bytes]) -> str:
    """``studies`` one-instance studies to list, and the study to move; its StudyInstanceUID."""
    trio.run(upload, server.http_url, [tiny_instances(1, f"find{n}")[0] for n in range(studies)])
    study = trio.run(upload, server.http_url, moved)
    return str(httpx.get(f"{server.http_url}/studies/{study}", timeout=30).json()["MainDicomTags"]["StudyInstanceUID"])


def query_retrieve(server: Server, study_uid: str, moved: int) -> tuple[float, float]:
    """(ms for one findscu listing every study, instances/s of one movescu of the study to the sink)."""
    peer = ["-aet", "BENCH", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)]
    find = [dcmtk_tool("findscu") or "findscu", "-S", "-k", "0008,0052=STUDY", "-k", "StudyInstanceUID", *peer]
    times = []
    for _ in range(QUERY_TIMES):
        start = time.perf_counter()
        subprocess.run(find, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    move = [dcmtk_tool("movescu") or "movescu", "-S", "-aem", SINK_AET, "-k", "0008,0052=STUDY",
            "-k", f"StudyInstanceUID={study_uid}", *peer]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(move, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "Failed" in done.stderr:
        raise RuntimeError(f"movescu failed: {done.stderr[-2000:]}")
    return 1000 * statistics.median(times), moved / elapsed


def run_sink(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """DCMTK storescp that accepts and drops every instance."""
    storescp = dcmtk_tool("storescp") or "storescp"
    command = [storescp, "--ignore", "-od", str(folder), "--aetitle", SINK_AET, str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_server(server: Server, cases: list[Case], files: dict[Case, list[Path]], tool: str) -> dict[Case, Measure]:
    warm = files[cases[0]][:20]
    storescu(server, warm, 1, tool)  # imports and caches out of the figures (instances stored again later are new)
    return {case: storescu(server, files[case], case.associations, tool) for case in cases}


def report(cases: list[Case], results: Results, setup: dict[str, list[float]], extra: list[str]) -> None:
    ours, theirs = results.get("ours", {}), results.get("Orthanc", {})
    print()
    print(f"{'case':<20}{'ours/s':>8}{'Orthanc/s':>11}{'ratio':>7}{'target':>8}"
          f"{'server CPU ms/inst ours':>25}{'Orthanc':>9}{'storescu CPU ms/inst':>22}")  # fmt: skip
    for case in cases:
        a = median([m.rate for m in ours.get(case, [])])
        b = median([m.rate for m in theirs.get(case, [])])
        quotient = ratio(a, b)
        target = TARGETS.get((case.kind, case.associations))
        verdict = "" if quotient is None or target is None else ("ok" if quotient >= target else "BELOW")
        cpu_a = median([m.server_cpu_ms for m in ours.get(case, [])])
        cpu_b = median([m.server_cpu_ms for m in theirs.get(case, [])])
        client = median([m.client_cpu_ms for m in ours.get(case, []) + theirs.get(case, [])])
        print(f"{case.name:<20}{fmt(a, '.0f'):>8}{fmt(b, '.0f'):>11}{fmt(quotient, '.2f'):>7}{fmt(target, '.1f'):>8}"
              f"{fmt(cpu_a, '.2f'):>25}{fmt(cpu_b, '.2f'):>9}{fmt(client, '.2f'):>22}  {verdict}")  # fmt: skip
    a, b = median(setup.get("ours", [])), median(setup.get("Orthanc", []))
    verdict = "" if a is None else ("ok" if a < ASSOCIATION_TARGET_MS else "ABOVE")
    print(f"{'association set-up':<20}{fmt(a, '.2f'):>8}{fmt(b, '.2f'):>11}{fmt(ratio(a, b), '.2f'):>7}"
          f"{'<' + str(ASSOCIATION_TARGET_MS):>8}  ms, median of {ASSOCIATIONS} (lower is better)  {verdict}")  # fmt: skip
    for line in extra:
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few instances, one repeat")
    parser.add_argument("--repeat", type=int, help="fresh server runs per target (default 3, 1 with --quick)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    parser.add_argument("--no-sync", action="store_true", help="SyncStorageArea false in both servers")
    parser.add_argument("--no-qr", action="store_true", help="skip the C-FIND and C-MOVE cases")
    parser.add_argument("--tiny", type=int, help="tiny instances per case and run (default 1000, 120 with --quick)")
    parser.add_argument("--ct", type=int, help="CT instances per case and run (default 200, 40 with --quick)")
    parser.add_argument(
        "--moved", type=int, help="instances of the study moved by movescu (default 500, 50 with --quick)"
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    os.environ["TCP_NODELAY"] = "1"  # inherited by storescu and Orthanc
    tool = dcmtk_tool("storescu")
    if tool is None:
        print("DCMTK storescu not found")
        return 1
    options = {"SyncStorageArea": False} if args.no_sync else {}
    servers: list[tuple[str, Callable[..., AbstractContextManager[Server]]]] = []
    if args.only != "orthanc":
        servers.append(("ours", partial(our_node, jobs=False)))
    if args.only != "ours":
        if orthanc_binary() is None:
            print("Orthanc binary not found: measuring our node only")
        else:
            servers.append(("Orthanc", orthanc))
    sizes = (
        {"tiny": 120, "ct": 40, "studies": 100, "moved": 50}
        if args.quick
        else {"tiny": 1000, "ct": 200, "studies": 1000, "moved": 500}
    )
    sizes["tiny"] = args.tiny or sizes["tiny"]
    sizes["ct"] = args.ct or sizes["ct"]
    sizes["moved"] = args.moved or sizes["moved"]
    cases = [Case(kind, n) for kind in ("tiny", "ct") for n in (1, 4)]
    results: Results = {}
    setup: dict[str, list[float]] = {}
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-dimse-") as temporary:
        folder = Path(temporary)
        print(f"generating {sizes['tiny']} tiny and {sizes['ct']} CT instances per case and run ...", flush=True)
        for run in range(repeat):
            for label, start in servers:
                files = {}
                for number, case in enumerate(cases):  # fresh UIDs for every run: every store is a new one
                    make = tiny_instances if case.kind == "tiny" else ct_instances
                    files[case] = write_files(
                        folder / f"r{run}-{label}-{number}", make(sizes[case.kind], f"{run}{number}")
                    )
                run_folder = folder / f"run{run}-{label}"
                run_folder.mkdir()
                with start(run_folder, options) as server:
                    measures = run_server(server, cases, files, tool)
                    setup.setdefault(label, []).append(association_ms(server))
                for case, measure in measures.items():
                    results.setdefault(label, {}).setdefault(case, []).append(measure)
                shown = ", ".join(f"{c.name.split(' ', 1)[1]} {m.rate:.0f}/s" for c, m in measures.items())
                print(f"run {run + 1}/{repeat} {label}: {shown}, association {setup[label][-1]:.2f} ms", flush=True)
        if not args.no_qr:
            sink_port = free_port()
            (folder / "sink").mkdir()
            sink = run_sink(folder / "sink", sink_port)
            try:
                moved = tiny_instances(sizes["moved"], "moved")
                found: dict[str, list[tuple[float, float]]] = {}
                with ExitStack() as stack:  # both at once, measured in turns (the machine's load weighs alike)
                    running = []
                    for label, start in servers:
                        (folder / f"qr-{label}").mkdir()
                        server = stack.enter_context(
                            start(folder / f"qr-{label}", {**options, **qr_options(sink_port)})
                        )
                        running.append((label, server, qr_setup(server, sizes["studies"], moved)))
                    for turn in range(repeat):
                        for label, server, study_uid in running if turn % 2 == 0 else running[::-1]:
                            found.setdefault(label, []).append(query_retrieve(server, study_uid, len(moved)))
                finds = {label: [m[0] for m in measures] for label, measures in found.items()}
                moves = {label: [m[1] for m in measures] for label, measures in found.items()}
                a, b = median(finds.get("ours", [])), median(finds.get("Orthanc", []))
                extra.append(
                    f"findscu, {sizes['studies']} studies: ours {fmt(a, '.0f')} ms {spread(finds.get('ours'))}, "
                    f"Orthanc {fmt(b, '.0f')} ms {spread(finds.get('Orthanc'))}, ratio (time) {fmt(ratio(a, b), '.2f')}"
                )
                a, b = median(moves.get("ours", [])), median(moves.get("Orthanc", []))
                extra.append(
                    f"movescu, {sizes['moved']} instances to storescp: ours {fmt(a, '.0f')}/s {spread(moves.get('ours'))}, "
                    f"Orthanc {fmt(b, '.0f')}/s {spread(moves.get('Orthanc'))}, ratio {fmt(ratio(a, b), '.2f')}"
                )
            finally:
                sink.terminate()
                sink.wait()
        if any(label == "Orthanc" for label, _ in servers):
            check = folder / "check"
            check.mkdir()
            batches = [
                write_files(check / str(clients), tiny_instances(sizes["tiny"], f"chk{clients}"))
                for clients in LOAD_CHECK_CLIENTS
            ]
            (check / "orthanc").mkdir()
            with orthanc(check / "orthanc", options) as server:
                storescu(server, batches[0][:20], 1, tool)
                rates = [storescu(server, b, n, tool).rate for b, n in zip(batches, LOAD_CHECK_CLIENTS, strict=True)]
            shown = ", ".join(f"{n} storescu {rate:.0f}/s" for n, rate in zip(LOAD_CHECK_CLIENTS, rates, strict=True))
            extra.append(f"load generator check, Orthanc tiny: {shown}")
        if args.only != "orthanc":
            aborts = [abort_after_sigterm_ms(folder / "abort" / str(n)) for n in range(3)]
            extra.append(f"A-ABORT after SIGTERM (ours, whole node stopping): median {statistics.median(aborts):.1f} ms"
                         f" of {len(aborts)} (target < {ABORT_TARGET_MS:.0f} ms)")  # fmt: skip
    report(cases, results, setup, extra)
    durability = "SyncStorageArea off in both" if args.no_sync else "default durability in both"
    print(
        f"\nmedians of {repeat} run(s) on {os.cpu_count()} CPUs, {durability}; the load generator runs on this machine."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
