"""The figures of the side-by-side table: what each measures, on one server at a time.

Each group of figures is a function ``(run, server)`` that measures its figures through
:meth:`Run.measure`, which adds the server's CPU seconds and peak resident memory of that
measure to the figure's value. The harness calls every group on both servers in turns.

Where a figure's load comes from several client processes, the reference server (Orthanc,
or ours when Orthanc is absent) is measured once more with one more client process
(:meth:`Run.check`): the report flags the figure if that raised the rate.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import trio
from pydicom import dcmread

from bench import archive, images, jobs, modify, transfers
from bench.client import cpu_seconds
from bench.common import PeakMemory, Server, ct_instances, tiny_instances, upload
from bench.load import Request, children_cpu, http_load, storescu_load
from bench.report import OURS, Figure, Sample
from tests.support.dcmtk import without_nagle

SINK_AET = "SINK"
RECEIVER = "receiver"
FIND_RUNS = 3  # findscu listings per measure, the median is kept
HTTP_TIMEOUT = 600.0  # s for one untimed set-up request (an upload, a deletion)
_MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """How much of everything one run measures: ``--quick`` or the full run."""

    repeat: int  # measures of each figure on each server
    tiny: int  # instances per ingest measure
    ct: int
    ingest_clients: tuple[int, ...]
    studies: int  # in the C-FIND list
    archive_slices: int
    modify_instances: int
    transfer_tiny: int
    transfer_ct: int
    peer: int
    request_seconds: float  # length of each GET measure
    image_clients: tuple[int, ...]
    rest_jobs: int  # jobs for the scheduler overhead over REST
    queued: int  # jobs queued ahead of the high-priority one
    in_process_jobs: int  # no-op jobs for our in-process scheduler overhead
    sweep_steps: tuple[int, ...]
    sweep_seconds: float
    stores_per_association: int
    job_steps: tuple[int, ...]  # ConcurrentJobs of the jobs sweep
    jobs_per_step: int
    job_study: int  # tiny instances in the study each sweep job works on
    deployment_cases: tuple[tuple[str, int], ...]  # (method, clients) of bench.deployments: "rest" or "cstore"


QUICK = Sizes(
    repeat=1, tiny=160, ct=32, ingest_clients=(1, 4), studies=1000, archive_slices=60, modify_instances=200,
    transfer_tiny=100, transfer_ct=20, peer=100, request_seconds=1.0, image_clients=(1, 4), rest_jobs=40,
    queued=200, in_process_jobs=1000, sweep_steps=(1, 4, 16, 64), sweep_seconds=1.0, stores_per_association=4,
    job_steps=(1, 4), jobs_per_step=8, job_study=40, deployment_cases=(("rest", 4),),
)  # fmt: skip
FULL = Sizes(
    repeat=3, tiny=480, ct=96, ingest_clients=(1, 4, 16), studies=1000, archive_slices=300, modify_instances=500,
    transfer_tiny=500, transfer_ct=100, peer=300, request_seconds=2.0, image_clients=(1, 4), rest_jobs=200,
    queued=200, in_process_jobs=2000, sweep_steps=(1, 2, 4, 8, 16, 32, 64), sweep_seconds=2.0,
    stores_per_association=8, job_steps=(1, 2, 4, 8), jobs_per_step=8, job_study=100,
    deployment_cases=(("rest", 4), ("rest", 16), ("cstore", 4)),
)  # fmt: skip


@dataclass(frozen=True)
class FileSet:
    """Instances written as files (storescu and the client processes read them), one study."""

    files: list[Path]
    study_uid: str
    size: int  # bytes, all files


def write_set(folder: Path, instances: list[bytes]) -> FileSet:
    folder.mkdir(parents=True)
    files = []
    for number, data in enumerate(instances):
        path = folder / f"{number:05d}.dcm"
        path.write_bytes(data)
        files.append(path)
    study = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    return FileSet(files, study, sum(len(data) for data in instances))


@dataclass
class Data:
    """What both servers get: the same generated instances."""

    ingest: dict[str, FileSet]  # "tiny", "ct": stored, then deleted, by every ingest measure
    sweep: FileSet  # what the associations of the DICOM sweep store
    find_studies: list[bytes]  # one instance each
    archive: list[bytes]
    modify: list[bytes]
    transfer: dict[str, list[bytes]]  # "tiny", "ct", "peer"
    images: dict[str, bytes]  # preview cases

    @property
    def archive_bytes(self) -> int:
        return sum(len(data) for data in self.archive)


def generate(folder: Path, sizes: Sizes) -> Data:
    return Data(
        ingest={
            "tiny": write_set(folder / "ingest-tiny", tiny_instances(sizes.tiny, "INGEST")),
            "ct": write_set(folder / "ingest-ct", ct_instances(sizes.ct, "INGEST")),
        },
        sweep=write_set(
            folder / "sweep", tiny_instances(max(sizes.sweep_steps) * sizes.stores_per_association, "SWEEP")
        ),
        find_studies=[tiny_instances(1, f"F{n:05d}")[0] for n in range(sizes.studies)],
        archive=list(archive.study_slices(sizes.archive_slices)),
        modify=tiny_instances(sizes.modify_instances, "MODIFY"),
        transfer={
            "tiny": tiny_instances(sizes.transfer_tiny, "SEND"),
            "ct": ct_instances(sizes.transfer_ct, "SEND"),
            "peer": tiny_instances(sizes.peer, "PEER"),
        },
        images={"CT 16-bit": images.ct_file(), "JPEG 8-bit": images.jpeg_file()},
    )


@dataclass
class Loaded:
    """The Orthanc identifiers of what one server was given before the figures."""

    archive_study: str
    ct_instance: str
    modify_study: str
    transfer: dict[str, str]
    images: dict[str, str]


def load(server: Server, data: Data) -> Loaded:
    """Every study the figures read, stored untimed (4 HTTP clients)."""
    url = server.http_url
    trio.run(upload, url, data.find_studies)
    archive_study = trio.run(upload, url, data.archive)
    ct_instance = httpx.get(f"{url}/studies/{archive_study}/instances", timeout=HTTP_TIMEOUT).json()[0]["ID"]
    image_ids = {}
    for name, content in data.images.items():
        answer = httpx.post(f"{url}/instances", content=content, timeout=HTTP_TIMEOUT)
        answer.raise_for_status()
        image_ids[name] = answer.json()["ID"]
    return Loaded(
        archive_study=archive_study,
        ct_instance=ct_instance,
        modify_study=trio.run(upload, url, data.modify),
        transfer={kind: trio.run(upload, url, instances) for kind, instances in data.transfer.items()},
        images=image_ids,
    )


def delete_study(server: Server, study_uid: str) -> None:
    """Untimed: the study an ingest measure stored, so that the next one stores it anew."""
    answer = httpx.post(f"{server.http_url}/tools/lookup", content=study_uid, timeout=HTTP_TIMEOUT)
    answer.raise_for_status()
    for item in answer.json():
        if item["Type"] == "Study":
            httpx.delete(f"{server.http_url}/studies/{item['ID']}", timeout=HTTP_TIMEOUT).raise_for_status()


Outcome = tuple[float, float | None]  # the figure's value, the clients' CPU seconds (None: the harness was the client)


@dataclass
class Run:
    """The state of one harness run that the figures share."""

    folder: Path
    sizes: Sizes
    data: Data
    loaded: dict[str, Loaded]  # by server name
    tools: dict[str, str | None]  # DCMTK tools found
    receiver_url: str | None  # the Orthanc that peer stores go to
    reference: str  # the server measured again with one more client
    figures: dict[str, Figure] = field(default_factory=dict)
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    checks: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def measure(self, figure: Figure, server: Server, action: Callable[[], Outcome]) -> Sample:
        """The figure's value, with the server's CPU and peak memory during ``action``."""
        cpu, own = server.cpu_seconds(), cpu_seconds()
        with PeakMemory(server.pid) as memory:
            value, client_cpu = action()
        if client_cpu is None:  # the harness itself was the client (one request, or the polling of jobs)
            client_cpu = cpu_seconds() - own
        sample = Sample(value, server.cpu_seconds() - cpu, memory.peak_kb / 1024, client_cpu)
        return self.record(figure, server.name, sample)

    def record(self, figure: Figure, server: str, sample: Sample) -> Sample:
        """A sample measured otherwise: a second figure of the same measure, or one taken in-process."""
        self.figures.setdefault(figure.key, figure)
        self.samples.setdefault((figure.key, server), []).append(sample)
        return sample

    def measure_clients(
        self, figure: Figure, server: Server, send: Callable[[int], Outcome], after: Callable[[], None] | None = None
    ) -> None:
        """A figure whose load comes from ``figure.clients`` client processes (``send(n)``); on the
        reference server, and if there are several, measured again with one process more.
        ``after`` undoes what a measure stored, so that the next one stores it anew."""
        clients = figure.clients or 1
        sample = self.measure(figure, server, partial(send, clients))
        if after is not None:
            after()
        if clients > 1 and server.name == self.reference:
            base, more = self.checks.setdefault(figure.key, ([], []))
            base.append(sample.value)
            more.append(send(clients + 1)[0])
            if after is not None:
                after()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


# -- ingest -------------------------------------------------------------------------------------------


def rest_load(server: Server, requests: Sequence[Request], seconds: float | None, processes: int) -> Outcome:
    load = http_load(server.http_url, requests, processes=processes, seconds=seconds).check()
    return load.rate, load.client_cpu


def cstore_load(server: Server, files: list[Path], tool: str, processes: int) -> Outcome:
    load = storescu_load(server, files, processes, tool).check()
    return load.rate, load.client_cpu


def ingest(run: Run, server: Server) -> None:
    """REST and C-STORE ingest, tiny and CT, with each number of client processes."""
    tool = run.tools["storescu"]
    for kind, fileset in run.data.ingest.items():
        after = partial(delete_study, server, fileset.study_uid)
        methods: list[tuple[str, str, Callable[[int], Outcome]]] = [
            ("rest", "REST", partial(rest_load, server, [("POST", "/instances", path) for path in fileset.files], None))
        ]
        if tool is not None:
            methods.append(("cstore", "C-STORE (storescu)", partial(cstore_load, server, fileset.files, tool)))
        for clients in run.sizes.ingest_clients:
            for method, name, send in methods:
                figure = Figure(
                    f"ingest-{method}-{kind}-x{clients}", f"{name} ingest, {kind}, {clients} client(s)", "instances/s",
                    group=f"ingest-{method}", clients=clients,
                )  # fmt: skip
                run.measure_clients(figure, server, send, after)


# -- reads --------------------------------------------------------------------------------------------

READ_CLIENTS = 4


def reads(run: Run, server: Server) -> None:
    """GET /instances/{id}/file and /tags of a 0.5 MB CT slice, 4 client processes."""
    instance = run.loaded[server.name].ct_instance
    for route in ("file", "tags"):
        figure = Figure(
            f"get-{route}", f"GET /instances/{{id}}/{route}, CT slice, {READ_CLIENTS} clients", "requests/s",
            group="reads", clients=READ_CLIENTS,
        )  # fmt: skip
        requests = [("GET", f"/instances/{instance}/{route}", None)]
        run.measure_clients(figure, server, partial(rest_load, server, requests, run.sizes.request_seconds))


def _peer_arguments(server: Server) -> list[str]:
    return ["-aet", "BENCH", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)]


def find(run: Run, server: Server) -> None:
    """findscu listing every study (the 1,000 loaded and the few others): ms, median of 3 runs."""
    tool = run.tools["findscu"]
    if tool is None:
        return
    command = [tool, "-S", "-k", "0008,0052=STUDY", "-k", "StudyInstanceUID", *_peer_arguments(server)]

    def action() -> Outcome:
        cpu, times = children_cpu(), []
        for _ in range(FIND_RUNS):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=without_nagle())
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times), (children_cpu() - cpu) / FIND_RUNS

    figure = Figure(
        "cfind-studies", f"C-FIND (findscu) of the {run.sizes.studies}-study list", "ms", higher_is_better=False,
        group="dicom",
    )  # fmt: skip
    run.measure(figure, server, action)


# -- jobs on one study: archive, modify ------------------------------------------------------------


def study_jobs(run: Run, server: Server) -> None:
    """Synchronous ZIP of the CT study (MB/s of DICOM, peak RSS) and modify of the tiny study."""
    loaded = run.loaded[server.name]
    peak: list[float] = []

    def archive_action() -> Outcome:
        result = archive.archive_once(server.http_url, loaded.archive_study, server.pid)
        peak.append(result.peak_mb)
        return run.data.archive_bytes / _MB / result.seconds, None

    figure = Figure("archive-mbps", f"study archive (ZIP), {len(run.data.archive)} CT slices", "MB/s", group="jobs")
    run.measure(figure, server, archive_action)
    rss = Figure("archive-rss", "peak RSS during the archive", "MB", higher_is_better=False, group="memory")
    run.record(rss, server.name, Sample(peak[-1]))

    count = len(run.data.modify)
    figure = Figure("modify", f"study modification, {count} tiny instances", "instances/s", group="jobs")
    number = len(run.samples.get((figure.key, server.name), [])) + 1
    run.measure(figure, server, partial(_modify, server, loaded.modify_study, count, number))


def _modify(server: Server, study: str, count: int, number: int) -> Outcome:
    return modify.modify_once(server, study, count, number).rate, None


# -- transfers ------------------------------------------------------------------------------------------


def _store(server: Server, route: str, study: str, count: int) -> Outcome:
    """A synchronous store job of ``study`` (the route names the remote): instances/s."""
    return transfers.store_rate(server, route, study, count), None


def _move(command: list[str], count: int) -> Outcome:
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=without_nagle())
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "Failed" in done.stderr:
        raise RuntimeError(f"movescu failed: {done.stderr[-2000:]}")
    return count / seconds, children_cpu() - cpu


def sends(run: Run, server: Server) -> None:
    """C-STORE SCU to storescp (tiny, CT), C-MOVE by movescu to storescp, peer store to an Orthanc."""
    studies = run.loaded[server.name].transfer
    sizes = {"tiny": run.sizes.transfer_tiny, "ct": run.sizes.transfer_ct, "peer": run.sizes.peer}
    for kind in ("tiny", "ct"):
        figure = Figure(f"scu-{kind}", f"C-STORE SCU to storescp, {kind}", "instances/s", group="transfers")
        run.measure(figure, server, partial(_store, server, "/modalities/sink/store", studies[kind], sizes[kind]))
    movescu = run.tools["movescu"]
    if movescu is not None:
        tags = httpx.get(f"{server.http_url}/studies/{studies['tiny']}", timeout=HTTP_TIMEOUT).json()
        uid = tags["MainDicomTags"]["StudyInstanceUID"]
        command = [movescu, "-S", "-aem", SINK_AET, "-k", "0008,0052=STUDY", "-k", f"StudyInstanceUID={uid}"]
        figure = Figure("cmove-tiny", "C-MOVE (movescu) to storescp, tiny", "instances/s", group="transfers")
        run.measure(figure, server, partial(_move, [*command, *_peer_arguments(server)], sizes["tiny"]))
    if run.receiver_url is not None:
        transfers.empty_receiver(run.receiver_url)
        figure = Figure("peer-store", "peer store to an Orthanc, tiny", "instances/s", group="transfers")
        run.measure(figure, server, partial(_store, server, f"/peers/{RECEIVER}/store", studies["peer"], sizes["peer"]))


# -- image rendering ------------------------------------------------------------------------------------


def rendering(run: Run, server: Server) -> None:
    """GET /instances/{id}/preview (PNG) of a 16-bit CT and of an 8-bit JPEG slice."""
    for name, instance in run.loaded[server.name].images.items():
        requests = [("GET", f"/instances/{instance}/preview", None)]
        for clients in run.sizes.image_clients:
            figure = Figure(
                f"preview-{name.split()[0].lower()}-x{clients}", f"preview PNG of a {name} slice, {clients} client(s)",
                "images/s", group="images", clients=clients,
            )  # fmt: skip
            run.measure_clients(figure, server, partial(rest_load, server, requests, run.sizes.request_seconds))


# -- the scheduler ------------------------------------------------------------------------------------


def scheduler(run: Run, server: Server) -> None:
    """Over REST: ms per one-instance modify job, and the latency of a priority-10 job behind
    ``queued`` ones (until it leaves Pending). Ours also in-process: ms per no-op job."""
    found: list[jobs.RestFigures] = []

    def per_job() -> Outcome:
        found.append(jobs.rest_figures(server, run.sizes.rest_jobs, run.sizes.queued))
        return found[-1].ms_per_job, None

    figure = Figure(
        "job-overhead-rest", f"ms per job, {run.sizes.rest_jobs} one-instance modify jobs over REST", "ms",
        higher_is_better=False, group="scheduler",
    )  # fmt: skip
    run.measure(figure, server, per_job)
    label = f"priority-10 job behind {run.sizes.queued} queued ones, until it starts (median of {jobs.PRIORITY_TRIALS})"
    figure = Figure("job-priority-latency", label, "ms", higher_is_better=False, group="scheduler")
    run.record(figure, server.name, Sample(found[-1].priority_latency_ms))
    if server.name == OURS:
        folder = run.folder / f"engine-{len(run.samples.get(('job-overhead-engine', OURS), []))}"
        folder.mkdir()
        figure = Figure(
            "job-overhead-engine", f"ms per no-op job, {run.sizes.in_process_jobs} in the engine (ours only)", "ms",
            higher_is_better=False, group="scheduler",
        )  # fmt: skip
        value = trio.run(jobs.scheduler_overhead, folder, run.sizes.in_process_jobs, False)
        run.record(figure, OURS, Sample(value))


GROUPS: tuple[Callable[[Run, Server], None], ...] = (ingest, reads, find, study_jobs, sends, rendering, scheduler)
