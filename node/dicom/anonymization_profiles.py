"""The Basic Profile versions that /anonymize can apply, loaded from the package's data file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .. import ORTHANC_VERSION

DEFAULT_PROFILE = "2021b"


def _tag_key(text: str) -> int:
    group, element = text.split(",")
    return (int(group, 16) << 16) | int(element, 16)


@dataclass(frozen=True)
class Profile:
    """One version of the Basic Profile (data/anonymization-profiles.json)."""

    name: str
    remove: frozenset[int]
    clear: frozenset[int]
    uid: frozenset[int]
    # (first group, last group, first element, last element), inclusive
    remove_ranges: tuple[tuple[int, int, int, int], ...]

    @property
    def method(self) -> str:
        """The DeidentificationMethod Orthanc writes for this profile."""
        suffix = "" if self.name == "2008" else " Basic Profile"
        # The version /system reports is part of the method, as Orthanc writes it.
        return f"Orthanc {ORTHANC_VERSION} - PS 3.15-{self.name} Table E.1-1{suffix}"


@cache
def profiles() -> dict[str, Profile]:
    text = resources.files(__package__).joinpath("data/anonymization-profiles.json").read_text("utf-8")
    loaded: dict[str, Profile] = {}
    for name, lists in json.loads(text)["profiles"].items():
        ranges = tuple(
            (int(r["group"][0], 16), int(r["group"][1], 16), int(r["element"][0], 16), int(r["element"][1], 16))
            for r in lists.get("removeRanges", [])
        )
        loaded[name] = Profile(
            name=name,
            remove=frozenset(map(_tag_key, lists.get("remove", []))),
            clear=frozenset(map(_tag_key, lists.get("clear", []))),
            uid=frozenset(map(_tag_key, lists.get("uid", []))),
            remove_ranges=ranges,
        )
    return loaded
