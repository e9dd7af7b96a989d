"""Every differential scenario: the same requests to real Orthanc 1.10.1 and to our node give the
same answers, but for the deviations each scenario writes down with their reason."""

from __future__ import annotations

import pytest

from tests.support.compat import Scenario, Servers, run_scenario
from tests.support.orthanc import needs_orthanc

from . import archives, changes, create_dicom, errors, find, jobs, metadata, modify, resources, tags, tools

SCENARIOS: list[Scenario] = [
    scenario
    for family in (resources, tags, find, metadata, changes, modify, archives, create_dicom, jobs, errors, tools)
    for scenario in family.SCENARIOS
]


@needs_orthanc
@pytest.mark.parametrize("scenario", [s.param() for s in SCENARIOS])
async def test_same_answers_as_orthanc(scenario: Scenario, servers: Servers) -> None:
    result = await run_scenario(scenario, servers.ours, servers.orthanc, orthanc_sequence=servers.orthanc_sequence)
    problems = result.unexpected + result.stale
    assert not problems, "\n".join(problems)
    if result.known:
        pytest.xfail("; ".join(bug.reason for bug in scenario.bugs))


def test_scenario_names_are_unique() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
