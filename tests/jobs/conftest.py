"""Fixtures of the jobs tests."""

from __future__ import annotations

import pytest

from tests.support.job_types import JOURNAL


@pytest.fixture(autouse=True)
def clear_journal() -> None:
    """Each test reads the journal of the test-only jobs from empty."""
    JOURNAL.clear()
