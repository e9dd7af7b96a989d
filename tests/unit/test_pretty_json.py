"""Answers are pretty-printed by our own writer: it must match json.dumps(indent=3) exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.http.answers import pretty_json

CASES: list[Any] = [
    {},
    [],
    "",
    None,
    {"ID": "a", "Nested": {"Empty": {}, "List": [], "Values": [1, -2, 10**20, 1.5, -0.0, True, False, None]}},
    [{"Name": "PatientName", "Type": "String", "Value": "Wang^XiaoDong=王^小東="}, ['a"b\\c\n\x00', ("t", 1)]],
    {"NotANumber": float("nan"), "Infinite": float("-inf")},  # left to the json module
    {1: "non-string key"},  # idem
]


@pytest.mark.parametrize("data", CASES)
def test_same_text_as_json_dumps_with_indent_3(data: Any) -> None:
    assert pretty_json(data) == json.dumps(data, indent=3)
