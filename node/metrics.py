"""Orthanc's metrics registry, plus Prometheus histograms and counters of our own.

Orthanc's part behaves as Orthanc's: a metric appears once updated, each keeps the
time of its last update, timers feed "max over 10 s" values, and disabling stops
recording while keeping old values. Our extras (request latency histogram, jobs
by type and outcome) use prometheus_client so dashboards get percentiles.
Thread-safe: storage timers run in worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

MAX_WINDOW_S = 10


def _format_value(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.9g}"


class Metrics:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float]] = {}  # name -> (value, unix time of update)
        self._active_requests = 0
        self.registry = CollectorRegistry()
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
            "Writes of the saved jobs to the index (SaveJobs): a burst of changes makes one",
            registry=self.registry,
        )

    def set_gauge(self, name: str, value: float, when: float | None = None) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._values[name] = (value, time.time() if when is None else when)

    def update_max(self, name: str, value: float) -> None:
        """Keep the largest value of the last 10 s (Orthanc compares whole seconds)."""
        if not self.enabled:
            return
        now = time.time()
        with self._lock:
            stored = self._values.get(name)
            if stored is None or value > stored[0] or int(now) - int(stored[1]) > MAX_WINDOW_S:
                self._values[name] = (value, now)

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.update_max(name, int((time.perf_counter() - start) * 1000))

    def request_started(self) -> None:
        with self._lock:
            self._active_requests += 1
            active = self._active_requests
        self.set_gauge("orthanc_rest_api_active_requests", active)

    def request_finished(self, method: str, seconds: float) -> None:
        with self._lock:
            self._active_requests -= 1
            active = self._active_requests
        self.set_gauge("orthanc_rest_api_active_requests", active)
        self.update_max("orthanc_rest_api_duration_ms", int(seconds * 1000))
        if self.enabled:
            self.request_seconds.labels(method=method).observe(seconds)

    def job_finished(self, job_type: str, state: str) -> None:
        if self.enabled:
            self.jobs_finished.labels(type=job_type, state=state).inc()

    def jobs_saved(self) -> None:
        if self.enabled:
            self.jobs_saves.inc()

    def render(self) -> str:
        """Orthanc's lines sorted by name, then our Prometheus families."""
        if not self.enabled:
            return ""
        with self._lock:
            items = sorted(self._values.items())
        lines = [f"{name} {_format_value(value)} {int(when * 1000)}\n" for name, (value, when) in items]
        return "".join(lines) + generate_latest(self.registry).decode("utf-8")
