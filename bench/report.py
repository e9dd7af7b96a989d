"""What the harness computes from its measures, and how it writes them: no server, no clock.

A :class:`Figure` is one thing measured on both servers (say "REST ingest, tiny, 4 clients,
instances/s"); each measure of it on one server is a :class:`Sample`. :func:`summarize`
reduces the samples of every figure to a :class:`Row` (medians, spread, ratio, flags), and
:func:`markdown_table` / :func:`csv_rows` write the rows. The ratio always reads "better
than 1 is ours ahead": ours / Orthanc for rates, Orthanc / ours for times.

Two checks keep the figures honest:

* :func:`client_bound`: the reference server is measured again with one more client
  process; if its rate rises, the clients, not the server, set the figure.
* :func:`knee`: in a concurrency sweep, the concurrency up to which each doubling still
  raises the throughput and the p99 latency stays within 10x of one client's.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

OURS, ORTHANC = "ours", "Orthanc"
SERVERS = (OURS, ORTHANC)
SATURATION_TOLERANCE = 0.10  # a rise of the rate beyond this, with one more client, flags the figure
KNEE_GROWTH = 0.05  # a doubling of the clients that gains less than this has passed the knee
KNEE_LATENCY_FACTOR = 10.0  # p99 beyond this many times the one-client p99: past the knee
CLIENT_BOUND = "client-bound"


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class Figure:
    key: str  # unique, stable across runs: the CSV's and the plots' name for it
    label: str  # for people
    unit: str
    higher_is_better: bool = True
    group: str = ""  # figures plotted together
    clients: int | None = None  # client processes, where the figure has any


@dataclass(frozen=True)
class Sample:
    """One measure of one figure on one server."""

    value: float
    server_cpu: float | None = None  # CPU seconds of the server process during the measure
    peak_rss_mb: float | None = None  # the server's peak resident memory during the measure
    client_cpu: float | None = None  # CPU seconds of the load generator's processes


def oriented_ratio(figure: Figure, ours: float | None, theirs: float | None) -> float | None:
    """Above 1 when ours is better: ours / theirs for a rate, theirs / ours for a time."""
    if ours is None or theirs is None:
        return None
    numerator, denominator = (ours, theirs) if figure.higher_is_better else (theirs, ours)
    return numerator / denominator if denominator else None


def client_bound(
    at_n: Sequence[float], at_n_plus_one: Sequence[float], tolerance: float = SATURATION_TOLERANCE
) -> bool:
    """Whether one more client process raised the reference server's rate: then the measure
    at ``n`` clients was limited by the clients."""
    base, more = median(at_n), median(at_n_plus_one)
    return base is not None and more is not None and more > base * (1 + tolerance)


def knee(steps: Sequence[int], rates: Sequence[float], p99s: Sequence[float | None]) -> int | None:
    """The highest concurrency reached while every step up still gained throughput and the
    p99 latency stayed within :data:`KNEE_LATENCY_FACTOR` of the first step's."""
    if not steps:
        return None
    first_p99 = p99s[0]
    best = steps[0]
    for index in range(1, len(steps)):
        grew = rates[index] >= rates[index - 1] * (1 + KNEE_GROWTH)
        p99 = p99s[index]
        slow = first_p99 is not None and p99 is not None and p99 > first_p99 * KNEE_LATENCY_FACTOR
        if not grew or slow:
            break
        best = steps[index]
    return best


@dataclass
class Row:
    figure: Figure
    medians: dict[str, float | None]
    spreads: dict[str, tuple[float, float] | None]  # min, max of the repeats
    repeats: dict[str, int]
    server_cpu: dict[str, float | None]  # median CPU seconds per measure
    peak_rss_mb: dict[str, float | None]  # highest of the repeats
    client_cpu: dict[str, float | None]  # median CPU seconds of the clients per measure
    ratio: float | None
    flags: list[str] = field(default_factory=list)


def _field(samples: Iterable[Sample], name: str) -> list[float]:
    return [value for sample in samples if (value := getattr(sample, name)) is not None]


def summarize(
    figures: Sequence[Figure],
    samples: dict[tuple[str, str], list[Sample]],
    checks: dict[str, tuple[list[float], list[float]]],
) -> list[Row]:
    """One row per figure measured; ``checks`` maps a figure's key to the reference server's
    rates at its client count and with one client process more."""
    rows = []
    for figure in figures:
        by_server = {server: samples.get((figure.key, server), []) for server in SERVERS}
        if not any(by_server.values()):
            continue
        medians = {s: median([x.value for x in v]) for s, v in by_server.items()}
        rss = {s: _field(v, "peak_rss_mb") for s, v in by_server.items()}
        row = Row(
            figure=figure,
            medians=medians,
            spreads={
                s: (min(x.value for x in v), max(x.value for x in v)) if v else None for s, v in by_server.items()
            },
            repeats={s: len(v) for s, v in by_server.items()},
            server_cpu={s: median(_field(v, "server_cpu")) for s, v in by_server.items()},
            peak_rss_mb={s: max(values) if values else None for s, values in rss.items()},
            client_cpu={s: median(_field(v, "client_cpu")) for s, v in by_server.items()},
            ratio=oriented_ratio(figure, medians[OURS], medians[ORTHANC]),
        )
        if figure.key in checks and client_bound(*checks[figure.key]):
            row.flags.append(CLIENT_BOUND)
        rows.append(row)
    return rows


def number(value: float | None) -> str:
    """Three significant digits or so; '-' for what was not measured."""
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _spread(spread: tuple[float, float] | None) -> str:
    return "" if spread is None else f"{number(spread[0])}–{number(spread[1])}"


def _pair(values: dict[str, float | None]) -> str:
    return " / ".join(number(values[s]) for s in SERVERS)


MARKDOWN_HEADER = (
    "| Figure | Unit | Ours | Orthanc | Ratio | Ours spread | Orthanc spread | N | "
    "Server CPU s (ours / Orthanc) | Peak RSS MB (ours / Orthanc) | Client CPU s (ours / Orthanc) | Flags |"
)


def markdown_table(rows: Sequence[Row]) -> str:
    """The table of the results: medians, ratio (above 1: ours better), spreads (min–max of the
    repeats), the servers' CPU and memory and the clients' CPU per measure, and the flags."""
    lines = [MARKDOWN_HEADER, "|" + "---|" * MARKDOWN_HEADER.count(" | ") + "---|"]
    for row in rows:
        unit = row.figure.unit + ("" if row.figure.higher_is_better else " (lower is better)")
        repeats = "/".join(str(row.repeats[s]) for s in SERVERS)
        cells = [
            row.figure.label,
            unit,
            number(row.medians[OURS]),
            number(row.medians[ORTHANC]),
            number(row.ratio),
            _spread(row.spreads[OURS]),
            _spread(row.spreads[ORTHANC]),
            repeats,
            _pair(row.server_cpu),
            _pair(row.peak_rss_mb),
            _pair(row.client_cpu),
            ", ".join(row.flags),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "figure",
    "label",
    "unit",
    "higher_is_better",
    "clients",
    "ours",
    "orthanc",
    "ratio",
    "ours_min",
    "ours_max",
    "orthanc_min",
    "orthanc_max",
    "ours_repeats",
    "orthanc_repeats",
    "ours_server_cpu_s",
    "orthanc_server_cpu_s",
    "ours_peak_rss_mb",
    "orthanc_peak_rss_mb",
    "ours_client_cpu_s",
    "orthanc_client_cpu_s",
    "flags",
)


def csv_text(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        spreads = [row.spreads[s] for s in SERVERS]
        writer.writerow(
            [
                row.figure.key,
                row.figure.label,
                row.figure.unit,
                row.figure.higher_is_better,
                row.figure.clients if row.figure.clients is not None else "",
                *(_raw(row.medians[s]) for s in SERVERS),
                _raw(row.ratio),
                *(_raw(bound) for spread in spreads for bound in (spread or (None, None))),
                *(row.repeats[s] for s in SERVERS),
                *(_raw(row.server_cpu[s]) for s in SERVERS),
                *(_raw(row.peak_rss_mb[s]) for s in SERVERS),
                *(_raw(row.client_cpu[s]) for s in SERVERS),
                ";".join(row.flags),
            ]
        )
    return out.getvalue()


def _raw(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


# -- the concurrency sweep ----------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    sweep: str  # "http", "dicom", "jobs archive", ...
    server: str
    concurrency: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]
    client_cpu: float | None = None


def knees(points: Sequence[SweepPoint]) -> dict[tuple[str, str], int | None]:
    """The knee of every (sweep, server) curve of ``points``."""
    curves: dict[tuple[str, str], list[SweepPoint]] = {}
    for point in points:
        curves.setdefault((point.sweep, point.server), []).append(point)
    found = {}
    for key, curve in curves.items():
        curve.sort(key=lambda p: p.concurrency)
        found[key] = knee([p.concurrency for p in curve], [p.rate for p in curve], [p.p99_ms for p in curve])
    return found


SWEEP_COLUMNS = ("sweep", "server", "concurrency", "rate", "p50_ms", "p99_ms", "errors", "client_cpu_s")


def sweep_csv_text(points: Sequence[SweepPoint]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SWEEP_COLUMNS)
    for p in points:
        errors = ";".join(f"{kind}={count}" for kind, count in sorted(p.errors.items()))
        writer.writerow(
            [p.sweep, p.server, p.concurrency, _raw(p.rate), _raw(p.p50_ms), _raw(p.p99_ms), errors, _raw(p.client_cpu)]
        )
    return out.getvalue()


def sweep_markdown(points: Sequence[SweepPoint], unit: dict[str, str]) -> str:
    """Per sweep: each step's rate and p50/p99 for both servers, errors, and the knees."""
    found = knees(points)
    sections = []
    for sweep in dict.fromkeys(p.sweep for p in points):
        steps = sorted({p.concurrency for p in points if p.sweep == sweep})
        at = {(p.server, p.concurrency): p for p in points if p.sweep == sweep}
        lines = [
            f"**{sweep}** ({unit.get(sweep, 'per s')}); knee: ours "
            f"{found.get((sweep, OURS), '-')}, Orthanc {found.get((sweep, ORTHANC), '-')}",
            "",
            "| Concurrency | Ours rate | Ours p50 / p99 ms | Ours errors | Orthanc rate | Orthanc p50 / p99 ms "
            "| Orthanc errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for step in steps:
            cells = [str(step)]
            for server in SERVERS:
                point = at.get((server, step))
                if point is None:
                    cells += ["-", "-", ""]
                    continue
                errors = ", ".join(f"{kind} {count}" for kind, count in sorted(point.errors.items()))
                cells += [number(point.rate), f"{number(point.p50_ms)} / {number(point.p99_ms)}", errors]
            lines.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
