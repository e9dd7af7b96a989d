"""Every option the code reads has its code default in one place, config.DEFAULTS.

Options are read only as config["Key"] (Config has no .get), with the name written out,
in the ``from_config`` of a subsystem's settings. An option missing from DEFAULTS would
fail with a KeyError at start, and one read under a computed name could not be checked
at all: the sources are checked here instead.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest

import node
from node.config import DEFAULTS, Config
from node.errors import OrthancError
from node.net.scp import Peers
from node.remotes.modality import parse_modality
from node.remotes.registry import RemotesSettings
from node.settings import NodeSettings

ROOT = Path(node.__file__).parent
README = ROOT.parent / "README.md"
# In DEFAULTS so that Orthanc configuration files load, but nothing acts on them.
NOT_ACTED_ON: frozenset[str] = frozenset()


# Orthanc's option names; Quart's own app.config keys (MAX_CONTENT_LENGTH...) are not of this form.
_OPTION_NAME = re.compile(r"[A-Z][A-Za-z0-9]+")


def _is_option_read(subscript: ast.Subscript) -> bool:
    """``config[...]``, ``self._config[...]``, ``context.config[...]``: with an option's name or a computed key."""
    target = subscript.value
    name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
    key = subscript.slice
    named = isinstance(key, ast.Constant) and isinstance(key.value, str)
    return name.lstrip("_") == "config" and (not named or _OPTION_NAME.fullmatch(key.value) is not None)


class _OptionReads(ast.NodeVisitor):
    """Every option read in a module, with the function it is in."""

    def __init__(self) -> None:
        self.functions = ["<module>"]
        self.reads: list[tuple[str, ast.expr]] = []

    def _inside(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(function.name)
        self.generic_visit(function)
        self.functions.pop()

    def visit_FunctionDef(self, function: ast.FunctionDef) -> None:
        self._inside(function)

    def visit_AsyncFunctionDef(self, function: ast.AsyncFunctionDef) -> None:
        self._inside(function)

    def visit_Subscript(self, subscript: ast.Subscript) -> None:
        if _is_option_read(subscript):
            self.reads.append((self.functions[-1], subscript.slice))
        self.generic_visit(subscript)


def _option_reads() -> list[tuple[str, str, ast.expr]]:
    """(module, function, key expression) of every option read in the sources."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        visitor = _OptionReads()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += [(str(path.relative_to(ROOT)), function, key) for function, key in visitor.reads]
    return found


def _options_read_in_sources() -> set[str]:
    return {key.value for _, _, key in _option_reads() if isinstance(key, ast.Constant) and isinstance(key.value, str)}


def test_every_option_read_has_a_default() -> None:
    read = _options_read_in_sources()
    assert "DicomAet" in read  # the scan does see the sources
    assert read - DEFAULTS.keys() == set()


def test_options_are_read_by_name_in_from_config_only() -> None:
    misplaced = [
        f"{module}:{key.lineno} in {function}: config[{ast.unparse(key)}]"
        for module, function, key in _option_reads()
        if function != "from_config" or not (isinstance(key, ast.Constant) and isinstance(key.value, str))
    ]
    assert misplaced == []


def test_options_not_acted_on_are_said_so_in_the_readme() -> None:
    assert DEFAULTS.keys() - _options_read_in_sources() == NOT_ACTED_ON
    rows = README.read_text(encoding="utf-8").splitlines()
    for name in NOT_ACTED_ON:
        assert any(row.startswith(f"| `{name}`") and "not acted on" in row for row in rows), name


def test_every_option_is_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    assert [name for name in DEFAULTS if f"`{name}`" not in readme] == []


def test_dicom_permissions_have_the_documented_defaults() -> None:
    peers = Peers.from_config(Config())
    assert peers.always_allowed == frozenset(["Echo", "Store"])
    assert peers.check_host is False
    flags = ("Echo", "Find", "FindWorklist", "Get", "Move", "Store")
    assert {f"DicomAlwaysAllow{flag}" for flag in flags} <= _options_read_in_sources() & DEFAULTS.keys()


def test_an_option_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(OrthancError):
        Config({"DicomAlwaysAllowMove": "yes"})


def test_move_destinations_come_from_the_declared_modalities() -> None:
    declared = [
        parse_modality(["STORESCP", "127.0.0.1", 11112]),
        parse_modality({"AET": "Viewer", "Host": "10.0.0.7", "Port": "104", "AllowMove": False}),
        parse_modality(["storescp", "127.0.0.2", 11113]),
    ]
    lenient = replace(Peers.from_config(Config()), modalities=lambda: declared)
    assert lenient.destination("STORESCP") is declared[0]
    assert lenient.destination("viewer  ") is declared[1]
    assert lenient.destination("NOBODY") is None
    strict = replace(Peers.from_config(Config({"StrictAetComparison": True})), modalities=lambda: declared)
    assert strict.destination("storescp") is declared[2]
    assert strict.destination("VIEWER") is None


def test_a_broken_modality_in_the_configuration_is_named_at_start() -> None:
    config = Config({"DicomModalities": {"broken": {"AET": "BROKEN", "Host": "10.0.0.8", "Port": "none"}}})
    with pytest.raises(OrthancError, match="'broken' of DicomModalities"):
        RemotesSettings.from_config(config)


@pytest.mark.parametrize("members", [-1, 65])
def test_a_members_count_out_of_range_is_refused_at_start(members: int) -> None:
    with pytest.raises(OrthancError, match="Members must be between 0"):
        NodeSettings.from_config(Config({"Members": members}))
