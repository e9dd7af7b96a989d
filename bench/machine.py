"""The machine a benchmark ran on, written next to its figures: they mean little without it.

Cores, memory, CPU model, the load average before and after (another process loading the
machine shows there), the file system the servers stored on, the versions of Python, our
node, Orthanc and DCMTK, and the command lines the harness ran.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def _file_system(folder: Path) -> str:
    """The mount that holds ``folder``: device, type and mount point."""
    best = ("?", "?", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        if str(folder).startswith(mount) and len(mount) >= len(best[2]):
            best = (device, kind, mount)
    return f"{best[0]} ({best[1]}) on {best[2]}"


def describe(storage: Path, orthanc: str | None, storescu: str | None) -> dict[str, Any]:
    """Everything but the load average after the run and the commands, which the harness adds."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_mb": _memory_mb(),
        "kernel": platform.release(),
        "load_average_before": os.getloadavg(),
        "storage": _file_system(storage.resolve()),
        "python": sys.version.split()[0],
        "our_commit": _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "our_worktree_changed": bool(_first_line(["git", "-C", str(ROOT), "status", "--porcelain"])),
        "orthanc": _first_line([orthanc, "--version"]) if orthanc else None,
        "dcmtk": _first_line([storescu, "--version"]) if storescu else None,
    }


def markdown(machine: dict[str, Any]) -> str:
    lines = ["| Machine | |", "|---|---|"]
    for key, value in machine.items():
        if key == "commands":
            continue
        lines.append(f"| {key.replace('_', ' ')} | {value} |")
    lines.append("")
    lines.append("Commands:")
    lines.append("")
    lines += [f"- `{command}`" for command in machine.get("commands", [])]
    return "\n".join(lines) + "\n"
