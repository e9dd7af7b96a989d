"""Fixtures of the jobs tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.job_types import JOURNAL


@pytest.fixture(autouse=True)
def clear_journal() -> None:
    """Each test reads the journal of the test-only jobs from empty."""
    JOURNAL.clear()


@pytest.fixture
def shared_index(index_backend: dict[str, Any] | None) -> dict[str, Any]:
    """The members' options for each index backend in turn: the index.sqlite of their shared
    storage folder, then a fresh PostgreSQL database."""
    return {} if index_backend is None else {"PostgreSQL": index_backend}
