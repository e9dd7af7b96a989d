"""Every option the code reads has its code default in one place, config.DEFAULTS.

Code reads options only as config["Key"] (Config has no .get), so an option missing
from DEFAULTS would fail with a KeyError on the first request that reads it, possibly
on a path no other test takes: the sources are checked here instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import node
from node.config import DEFAULTS, Config
from node.errors import OrthancError
from node.net.scp import Peers

_READ = re.compile(r"""config\[["']([A-Z][A-Za-z0-9]+)["']\]""")


def _options_read_in_sources() -> set[str]:
    root = Path(node.__file__).parent
    return {name for path in root.rglob("*.py") for name in _READ.findall(path.read_text(encoding="utf-8"))}


def test_every_option_read_has_a_default() -> None:
    read = _options_read_in_sources()
    assert "DicomAet" in read  # the scan does see the sources
    assert read - DEFAULTS.keys() == set()


def test_dicom_permissions_have_the_documented_defaults() -> None:
    peers = Peers.from_config(Config())
    assert peers.always_allowed == frozenset(["Echo", "Store"])
    assert peers.check_host is False
    flags = ("Echo", "Find", "FindWorklist", "Get", "Move", "Store")  # read as f"DicomAlwaysAllow{flag}"
    assert {f"DicomAlwaysAllow{flag}" for flag in flags} <= DEFAULTS.keys()


def test_an_option_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(OrthancError):
        Config({"DicomAlwaysAllowMove": "yes"})


def test_move_destinations_come_from_the_declared_modalities() -> None:
    modalities = {
        "array": ["STORESCP", "127.0.0.1", 11112],
        "object": {"AET": "Viewer", "Host": "10.0.0.7", "Port": "104", "AllowMove": False},
        "broken": {"AET": "BROKEN", "Host": "10.0.0.8", "Port": "none"},
        "second": ["storescp", "127.0.0.2", 11113],
    }
    lenient = Peers.from_config(Config({"DicomModalities": modalities}))
    assert lenient.destination("STORESCP") == ("127.0.0.1", 11112)
    assert lenient.destination("viewer  ") == ("10.0.0.7", 104)
    assert lenient.destination("BROKEN") is None
    assert lenient.destination("NOBODY") is None
    strict = Peers.from_config(Config({"DicomModalities": modalities, "StrictAetComparison": True}))
    assert strict.destination("storescp") == ("127.0.0.2", 11113)
    assert strict.destination("VIEWER") is None
