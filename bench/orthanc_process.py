"""Run the real Orthanc binary as a reference server, on free loopback ports.

    from bench.orthanc_process import orthanc_binary, orthanc_process

    with orthanc_process(folder) as orthanc:     # folder: an existing, empty directory
        httpx.get(f"{orthanc.http_url}/system")
        ... storescu 127.0.0.1 orthanc.dicom_port -aec orthanc.aet ...

The context manager writes a configuration into ``folder`` (storage, index and log
live there too, so a fresh folder means an empty server), starts Orthanc, waits
until ``GET /system`` answers, and on exit stops it with SIGTERM (SIGKILL after a
grace period). It is synchronous on purpose: benchmarks and reference scripts call
it around their own event loops. Orthanc 1.10 has no HTTP bind-address option: it
listens on every interface, but ``RemoteAccessAllowed: false`` makes it refuse any
client that is not local, and we only ever talk to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# Where Debian's orthanc package installs the server; PATH is searched first.
_KNOWN_LOCATIONS = ("/usr/sbin/Orthanc",)
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def orthanc_binary() -> str | None:
    """Path of the Orthanc executable, or None when it is not installed."""
    found = shutil.which("Orthanc")
    if found:
        return found
    return next((p for p in _KNOWN_LOCATIONS if Path(p).is_file()), None)


def free_port() -> int:
    """A port the kernel just handed out on loopback (free unless someone races us)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningOrthanc:
    http_url: str
    dicom_port: int
    aet: str
    log: Path
    process: subprocess.Popen[bytes]


def reference_config(folder: Path, http_port: int, dicom_port: int, aet: str) -> dict[str, Any]:
    """A minimal configuration: no plugins, no authentication, storage in ``folder``."""
    return {
        "Name": "orthanc-reference",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "TemporaryDirectory": str(folder / "tmp"),
        "StorageCompression": False,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "Plugins": [],
        "SaveJobs": False,
    }


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``GET /system`` answers: shared with the benchmarks that start our node."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; log {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not answering /system after {STARTUP_TIMEOUT} s; log {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def orthanc_process(
    folder: Path, *, aet: str = "ORTHANC", overrides: dict[str, Any] | None = None
) -> Iterator[RunningOrthanc]:
    """Start Orthanc with its files in ``folder``; ``overrides`` are merged into the config."""
    binary = orthanc_binary()
    if binary is None:
        raise RuntimeError("the Orthanc binary is not installed")
    http_port, dicom_port = free_port(), free_port()
    config = {**reference_config(folder, http_port, dicom_port, aet), **(overrides or {})}
    # Orthanc does not create its TemporaryDirectory, and answers 500 to asynchronous archives without it.
    Path(config["TemporaryDirectory"]).mkdir(parents=True, exist_ok=True)
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = folder / "orthanc.log"
    with open(log, "wb") as log_file:
        # TCP_NODELAY: DCMTK then disables Nagle's algorithm, which otherwise delays small PDUs by 40 ms.
        env = {**os.environ, "TCP_NODELAY": "1"}
        process = subprocess.Popen([binary, str(config_path)], cwd=folder, stdout=log_file, stderr=log_file, env=env)
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_ready(url, process, log)
        yield RunningOrthanc(http_url=url, dicom_port=dicom_port, aet=aet, log=log, process=process)
    finally:
        stop(process)
