"""Two members sharing one index track the instances each received: one series arriving
through both becomes stable once, when its last instance is old enough."""

from __future__ import annotations

from pathlib import Path

import trio
from pydicom.uid import generate_uid

from node.context import NodeContext
from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node

STABLE_AGE = 1
STABLE_TIMEOUT = 20.0


async def _stable_everywhere(nodes: list[NodeContext], resources: list[str]) -> None:
    """Until every tracker has recorded (or found recorded) the stability of each resource."""
    with trio.fail_after(STABLE_TIMEOUT):  # real seconds: the trackers wait StableAge of wall time
        while not all(node.resources.stability.is_stable(r) for node in nodes for r in resources):
            await trio.sleep(0.05)


async def test_a_series_arriving_through_two_members_is_stable_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    storage = str(tmp_path / "shared")
    nodes = [
        await start_node(
            nursery, node_config(tmp_path / member, StorageDirectory=storage, StableAge=STABLE_AGE, MemberId=member)
        )
        for member in ("1", "2")
    ]
    study, series_uid = generate_uid(), generate_uid()
    stored: dict[str, str] = {}
    for number, node in enumerate([*nodes, *nodes]):
        async with client_of(node) as http:
            data = make_dicom(study_uid=study, series_uid=series_uid, instance_number=number + 1)
            stored = (await http.post("/instances", content=data)).json()
    series = stored["ParentSeries"]
    await _stable_everywhere(nodes, [series, stored["ParentStudy"], stored["ParentPatient"]])
    async with client_of(nodes[0]) as http:
        changes = (await http.get("/changes", params={"limit": 100})).json()["Changes"]
    kinds = [change["ChangeType"] for change in changes if change["ID"] == series]
    assert kinds.count("StableSeries") == 1
    assert [c["ChangeType"] for c in changes].count("StableStudy") == 1
