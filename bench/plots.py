"""The PNG plots of a results folder (matplotlib, drawn off-screen).

* ``ratios.png``: every figure's ratio (above 1: ours better), client-bound ones hatched;
* ``ingest.png``: ingest rates by number of clients, REST and C-STORE, tiny and CT;
* ``resources.png``: the servers' CPU seconds and peak memory per figure;
* ``sweep-<name>.png``: throughput and p99 latency against concurrency, knees marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

from bench.report import CLIENT_BOUND, ORTHANC, OURS, SERVERS, Row, SweepPoint, knees

COLOURS = {OURS: "tab:blue", ORTHANC: "tab:orange"}
DPI = 90
RATIO_TICKS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def ratios(rows: Sequence[Row], path: Path) -> Path | None:
    shown = [row for row in rows if row.ratio is not None]
    if not shown:
        return None
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(shown) + 1.2))
    labels = [row.figure.label for row in shown]
    values = [row.ratio or 0.0 for row in shown]
    colours = ["tab:green" if value >= 1 else "tab:red" for value in values]
    bars = axes.barh(labels, values, color=colours)
    for bar, row in zip(bars, shown, strict=True):
        if CLIENT_BOUND in row.flags:
            bar.set_hatch("//")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xscale("log")
    low, high = min(*values, 1.0), max(*values, 1.0)
    axes.set_xticks([t for t in RATIO_TICKS if low / 2 <= t <= high * 2], minor=False)
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.invert_yaxis()
    axes.set_xlabel("ratio, log scale (above 1: ours better; hatched: client-bound)")
    axes.tick_params(axis="y", labelsize=7)
    return _save(figure, path)


def ingest(rows: Sequence[Row], path: Path) -> Path | None:
    panels = sorted({row.figure.key.rsplit("-x", 1)[0] for row in rows if row.figure.group.startswith("ingest")})
    if not panels:
        return None
    figure, grid = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for axes, panel in zip(grid[0], panels, strict=True):
        chosen = [row for row in rows if row.figure.key.rsplit("-x", 1)[0] == panel]
        for server in SERVERS:
            points = [(row.figure.clients, row.medians[server]) for row in chosen if row.medians[server] is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", color=COLOURS[server], label=server)
        axes.set_title(panel.removeprefix("ingest-"), fontsize=9)
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({row.figure.clients or 1 for row in chosen}))
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.set_xlabel("client processes")
        axes.set_ylabel("instances/s")
        axes.legend(fontsize=7)
    return _save(figure, path)


def resources(rows: Sequence[Row], path: Path) -> Path | None:
    shown = [row for row in rows if any(row.server_cpu[s] is not None for s in SERVERS)]
    if not shown:
        return None
    figure, (cpu, memory) = plt.subplots(1, 2, figsize=(12, 0.3 * len(shown) + 1.5), sharey=True)
    positions = range(len(shown))
    height = 0.4
    for offset, server in enumerate(SERVERS):
        ys = [y + offset * height for y in positions]
        cpu.barh(ys, [row.server_cpu[server] or 0 for row in shown], height, color=COLOURS[server], label=server)
        memory.barh(ys, [row.peak_rss_mb[server] or 0 for row in shown], height, color=COLOURS[server])
    cpu.set_yticks([y + height / 2 for y in positions], [row.figure.label for row in shown], fontsize=7)
    cpu.invert_yaxis()
    cpu.set_xlabel("server CPU seconds per measure")
    memory.set_xlabel("server peak RSS, MB")
    cpu.legend(fontsize=7)
    return _save(figure, path)


def sweeps(points: Sequence[SweepPoint], folder: Path) -> list[Path]:
    found = knees(points)
    drawn = []
    for name in dict.fromkeys(p.sweep for p in points):
        figure, (rate, latency) = plt.subplots(1, 2, figsize=(10, 3.6))
        for server in SERVERS:
            curve = sorted((p for p in points if p.sweep == name and p.server == server), key=lambda p: p.concurrency)
            if not curve:
                continue
            xs = [p.concurrency for p in curve]
            rate.plot(xs, [p.rate for p in curve], marker="o", color=COLOURS[server], label=server)
            latency.plot(
                xs, [p.p99_ms or float("nan") for p in curve], marker="o", color=COLOURS[server], label=f"{server} p99"
            )
            latency.plot(
                xs,
                [p.p50_ms or float("nan") for p in curve],
                linestyle=":",
                color=COLOURS[server],
                label=f"{server} p50",
            )
            knee = found.get((name, server))
            if knee is not None:
                rate.axvline(knee, color=COLOURS[server], linestyle="--", linewidth=1)
        for axes in (rate, latency):
            axes.set_xscale("log", base=2)
            axes.set_xticks(sorted({p.concurrency for p in points if p.sweep == name}))
            axes.xaxis.set_major_formatter(ScalarFormatter())
            axes.set_xlabel("ConcurrentJobs" if name.startswith("jobs") else "concurrent clients")
            axes.legend(fontsize=7)
        rate.set_ylabel("per second (dashed: knee)")
        latency.set_ylabel("latency, ms")
        latency.set_yscale("log")
        figure.suptitle(name)
        drawn.append(_save(figure, folder / f"sweep-{name.lower().replace(' ', '-').replace('/', '')}.png"))
    return drawn


def draw_all(folder: Path, rows: Sequence[Row], points: Sequence[SweepPoint]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [
        ratios(rows, folder / "ratios.png"),
        ingest(rows, folder / "ingest.png"),
        resources(rows, folder / "resources.png"),
    ]
    return [path for path in drawn if path is not None] + sweeps(points, folder)
