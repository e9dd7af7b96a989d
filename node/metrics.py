"""Orthanc's metrics registry, plus Prometheus histograms and counters of our own.

Orthanc's part behaves as Orthanc's: a metric appears once updated, each keeps the
time of its last update, timers feed "max over 10 s" values, and disabling stops
recording while keeping old values. Our extras (request latency histogram, jobs
by type and outcome) use prometheus_client so dashboards get percentiles.
Thread-safe: storage timers run in worker threads.

A member of several processes (MemberId) keeps its values in prometheus_client's
multiprocess files (the supervisor names their folder in PROMETHEUS_MULTIPROC_DIR), so
that the member answering a scrape shows the whole group: our families summed over every
member that ever ran, Orthanc's values merged as one node would show them (the active
requests and cache sizes added up, the "max over 10 s" durations the largest recent one).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MAX_WINDOW_S = 10
MULTIPROCESS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
# Orthanc's values of each member, one per name and field ("value", "time": unix time of the update)
# and per process (a `pid` label): how to merge them ("sum" or "max") is a label too.
MEMBER_VALUES = "trionode_member_orthanc_value"
ACTIVE_REQUESTS = "orthanc_rest_api_active_requests"
REQUEST_DURATION = "orthanc_rest_api_duration_ms"
_SUM, _MAX = "sum", "max"


def _format_value(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.9g}"


class _Families:
    """Metric families already collected, as a collector a registry can render."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _merge_member_values(samples: Iterable[Any]) -> dict[str, tuple[float, float]]:
    """Orthanc's values of every live member, merged: summed (stamped with the latest update), or
    the largest of those updated within MAX_WINDOW_S of the latest update."""
    by_name: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    merges: dict[str, str] = {}
    for sample in samples:
        labels = sample.labels
        by_name[labels["name"]][labels["pid"]][labels["field"]] = sample.value
        merges[labels["name"]] = labels["merge"]
    merged = {}
    for name, members in by_name.items():
        pairs = [(fields["value"], fields["time"]) for fields in members.values() if len(fields) == 2]
        if not pairs:
            continue
        newest = max(when for _, when in pairs)
        if merges[name] == _SUM:
            merged[name] = (sum(value for value, _ in pairs), newest)
        else:
            merged[name] = (max(value for value, when in pairs if when >= newest - MAX_WINDOW_S), newest)
    return merged


class Metrics:
    def __init__(self, enabled: bool = True, *, member: str | None = None) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float]] = {}  # name -> (value, unix time of update)
        self._active_requests = 0
        # One member of several: values go to the multiprocess files, in no registry of this process.
        self.shared = member is not None and bool(os.environ.get(MULTIPROCESS_ENVIRONMENT))
        self._member = member
        self.registry: CollectorRegistry | None = None if self.shared else CollectorRegistry()
        self.request_seconds = Histogram(
            "trionode_rest_api_request_duration_seconds",
            "Time to handle one REST request",
            ["method"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "trionode_jobs_finished",
            "Jobs that reached a final state, by type and outcome",
            ["type", "state"],
            registry=self.registry,
        )
        self.jobs_saves = Counter(
            "trionode_jobs_saves",
            "Writes of the saved jobs to the index (SaveJobs): a burst of changes makes one, or a few for a large one",
            registry=self.registry,
        )
        self._member_values: Gauge | None = None
        self._member_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._request_observers: dict[str, Any] = {}  # method -> its child of request_seconds
        self.member_requests: Counter | None = None
        self._member_requests: Any = None  # this member's child of member_requests
        if self.shared:
            self._member_values = Gauge(
                MEMBER_VALUES, "Orthanc's values of each member", ["name", "merge", "field"],
                registry=None, multiprocess_mode="liveall",
            )  # fmt: skip
            self.member_requests = Counter(
                "trionode_member_rest_requests", "REST requests answered, by member", ["member"], registry=None
            )

    def _store(self, name: str, value: float, when: float, merge: str) -> None:
        """Keep an Orthanc value (the lock held), in the multiprocess files too for a member."""
        self._values[name] = (value, when)
        if self._member_values is None:
            return
        children = self._member_children.get((name, merge))
        if children is None:
            labelled = self._member_values.labels
            children = self._member_children[(name, merge)] = (
                labelled(name, merge, "value"),
                labelled(name, merge, "time"),
            )
        children[0].set(value)
        children[1].set(when)

    def set_gauge(self, name: str, value: float, when: float | None = None) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._store(name, value, time.time() if when is None else when, _SUM)

    def update_max(self, name: str, value: float) -> None:
        """Keep the largest value of the last 10 s (Orthanc compares whole seconds)."""
        if not self.enabled:
            return
        now = time.time()
        with self._lock:
            self._keep_max(name, value, now)

    def _keep_max(self, name: str, value: float, now: float) -> None:
        """:meth:`update_max`, the lock held."""
        stored = self._values.get(name)
        if stored is None or value > stored[0] or int(now) - int(stored[1]) > MAX_WINDOW_S:
            self._store(name, value, now, _MAX)

    def timer(self, name: str) -> _Timer:
        """``with metrics.timer(name):`` keeps the block's duration in ms (see :meth:`update_max`)."""
        return _Timer(self, name)

    # Called around every REST request: one lock and one clock reading each, the histogram's
    # child of each method looked up once.

    def request_started(self) -> None:
        with self._lock:
            self._active_requests += 1
            if self.enabled:
                self._store(ACTIVE_REQUESTS, self._active_requests, time.time(), _SUM)

    def request_finished(self, method: str, seconds: float) -> None:
        with self._lock:
            self._active_requests -= 1
            if not self.enabled:
                return
            now = time.time()
            self._store(ACTIVE_REQUESTS, self._active_requests, now, _SUM)
            self._keep_max(REQUEST_DURATION, int(seconds * 1000), now)
        observer = self._request_observers.get(method)
        if observer is None:
            observer = self._request_observers[method] = self.request_seconds.labels(method=method)
        observer.observe(seconds)
        if self.member_requests is not None:
            if self._member_requests is None:  # made at the first request: a member shows once it served
                self._member_requests = self.member_requests.labels(member=self._member)
            self._member_requests.inc()

    def job_finished(self, job_type: str, state: str) -> None:
        if self.enabled:
            self.jobs_finished.labels(type=job_type, state=state).inc()

    def jobs_saved(self) -> None:
        if self.enabled:
            self.jobs_saves.inc()

    def render(self, scraped: Mapping[str, float]) -> str:
        """Orthanc's lines sorted by name, ``scraped`` (values computed for this scrape) among
        them, then our Prometheus families. Blocking for a member (it reads the files of all)."""
        if not self.enabled:
            return ""
        if self.registry is not None:
            with self._lock:
                values = dict(self._values)
            families = generate_latest(self.registry)
        else:
            collected = list(MultiProcessCollector(None).collect())
            member_values = [family for family in collected if family.name == MEMBER_VALUES]
            values = _merge_member_values(sample for family in member_values for sample in family.samples)
            ours = CollectorRegistry(auto_describe=False)
            ours.register(_Families([family for family in collected if family.name != MEMBER_VALUES]))
            families = generate_latest(ours)
        now = time.time()
        values.update((name, (value, now)) for name, value in scraped.items())
        items = sorted(values.items())
        lines = [f"{name} {_format_value(value)} {int(when * 1000)}\n" for name, (value, when) in items]
        return "".join(lines) + families.decode("utf-8")


class _Timer:
    """The context of :meth:`Metrics.timer`: a plain class, as it wraps every storage read and
    write (a generator-based context manager cost more than reading a small file)."""

    __slots__ = ("_metrics", "_name", "_start")

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._metrics = metrics
        self._name = name
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        if self._metrics.enabled:
            self._metrics.update_max(self._name, int((time.perf_counter() - self._start) * 1000))
