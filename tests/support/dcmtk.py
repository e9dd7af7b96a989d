"""DCMTK's command line tools (storescu, findscu, storescp...), as real peers of the node."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import trio


def dcmtk_tool(name: str) -> str | None:
    """A DCMTK binary by absolute path, skipping the venv's same-named scripts (pynetdicom's)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return shutil.which(name, path=path)


def needs_dcmtk(*tools: str | None) -> pytest.MarkDecorator:
    """Skip, saying why, when one of ``tools`` (as :func:`dcmtk_tool` found them) is missing."""
    return pytest.mark.skipif(None in tools, reason="a DCMTK tool was not found outside the venv (apt-get install dcmtk)")


def without_nagle() -> dict[str, str]:
    """The environment for a DCMTK process: DCMTK leaves Nagle's algorithm on unless TCP_NODELAY is set,
    which makes each small PDU wait for the acknowledgement of the one before."""
    return {**os.environ, "TCP_NODELAY": "1"}


async def run_dcmtk(tool: str | None, *args: str) -> trio.CompletedProcess[bytes]:
    """Run a DCMTK tool to its end, output captured (check ``returncode`` and ``stderr``)."""
    assert tool is not None
    return await trio.run_process(
        [tool, *args], env=without_nagle(), capture_stdout=True, capture_stderr=True, check=False
    )
