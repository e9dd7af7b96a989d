"""The real Orthanc 1.10.1 as a counterpart: the reference of the differential tests, a C-MOVE destination.

The process itself is managed by :mod:`bench.orthanc_process`, which the benchmarks share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.orthanc_process import RunningOrthanc, orthanc_binary, orthanc_process

_MISSING = "the Orthanc binary is not installed (apt-get install orthanc)"
needs_orthanc = pytest.mark.skipif(orthanc_binary() is None, reason=_MISSING)


@contextmanager
def running_orthanc(folder: Path, *, aet: str, overrides: dict[str, Any] | None = None) -> Iterator[RunningOrthanc]:
    """Orthanc on free loopback ports, its files in ``folder`` (created empty), stopped when the
    block ends; the test is skipped when Orthanc is not installed."""
    if orthanc_binary() is None:
        pytest.skip(_MISSING)
    folder.mkdir(parents=True, exist_ok=True)
    with orthanc_process(folder, aet=aet, overrides=overrides) as running:
        yield running
