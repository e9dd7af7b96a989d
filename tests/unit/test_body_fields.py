"""node.body_fields: each check returns its value or raises the caller's code and message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from node.body_fields import boolean, integer, json_object, optional_string, string, string_list
from node.errors import ErrorCode, OrthancError

Check = Callable[[Any, ErrorCode, str], Any]

# (check, accepted values, refused values)
CASES: list[tuple[Check, list[Any], list[Any]]] = [
    (json_object, [{}, {"a": 1}], [None, [], "x", 1]),
    (boolean, [True, False], [None, 0, 1, "true"]),
    (integer, [0, -3, 10**12], [True, False, 1.5, "1", None]),
    (string, ["", "x"], [None, 1, ["x"], b"x"]),
    (optional_string, [None, "", "x"], [1, ["x"], False]),
    (string_list, [[], ["a", "b"]], [None, "a", ["a", 1], ("a",)]),
]


@pytest.mark.parametrize(("check", "accepted", "refused"), CASES, ids=[case[0].__name__ for case in CASES])
def test_accepts_its_type_and_refuses_others_with_the_callers_error(
    check: Check, accepted: list[Any], refused: list[Any]
) -> None:
    for value in accepted:
        assert check(value, ErrorCode.BAD_REQUEST, "unused") == value
    for value in refused:
        with pytest.raises(OrthancError) as raised:
            check(value, ErrorCode.BAD_FILE_FORMAT, f"Wrong value: {value!r}")
        assert raised.value.code is ErrorCode.BAD_FILE_FORMAT
        assert raised.value.details == f"Wrong value: {value!r}"


def test_without_a_message_the_error_has_no_details() -> None:
    with pytest.raises(OrthancError) as raised:
        string_list(["a", 2], ErrorCode.BAD_REQUEST)
    assert raised.value.code is ErrorCode.BAD_REQUEST and raised.value.details == ""
