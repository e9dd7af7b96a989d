"""The cluster's options: a lease too short to be renewed is refused at start."""

from __future__ import annotations

import pytest

from node.config import Config
from node.errors import ErrorCode, OrthancError
from node.jobs.engine import EngineSettings


@pytest.mark.parametrize("seconds", [0, -5])
def test_a_lease_shorter_than_a_second_is_refused(seconds: int) -> None:
    with pytest.raises(OrthancError, match="JobsLeaseTimeout") as refused:
        EngineSettings.from_config(Config({"MemberId": "a", "JobsLeaseTimeout": seconds}))
    assert refused.value.code is ErrorCode.BAD_FILE_FORMAT


def test_a_lease_of_a_second_is_accepted() -> None:
    assert EngineSettings.from_config(Config({"MemberId": "a", "JobsLeaseTimeout": 1})).lease_ttl == 1.0
