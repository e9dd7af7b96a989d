"""The `Dictionary` option: extra tags, mostly private ones, declared in the configuration.

Each entry gives a tag a VR and a name usable in request bodies (create-dicom,
modify). Public entries go into pydicom's dictionary, private ones into pydicom's
private dictionary under their creator, so that files read later get the right VR.
Names of private tags also live here: pydicom has no keyword lookup for them, and
Orthanc shows the names of this option, else those of DCMTK's private dictionary (a
copy of which is data/private-tag-names.tsv), not those of pydicom's. Installing is done once at start-up; installing again (tests start many
nodes in one process) first removes what the previous install added.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from pydicom import datadict
from pydicom.valuerep import VR

from ..errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)

PRIVATE_CREATOR_NAME = "PrivateCreator"
PRIVATE_GROUP_LENGTH_NAME = "PrivateGroupLength"
_VRS = frozenset(v.value for v in VR if len(v.value) == 2)
_KEY = re.compile(r"^([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})$")
# Odd groups that the standard reserves: they cannot hold private tags.
_NOT_PRIVATE_GROUPS = frozenset([0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF])


def is_private_group(group: int) -> bool:
    return group % 2 == 1 and group not in _NOT_PRIVATE_GROUPS


def is_creator_slot(tag: int) -> bool:
    """`gggg,0010`-`gggg,00ff` of a private group: where a block's creator is written."""
    return is_private_group(tag >> 16) and 0x10 <= (tag & 0xFFFF) <= 0xFF


def creator_slot(tag: int) -> int:
    """The creator slot of the block that holds a private data element."""
    return (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)


@dataclass(frozen=True)
class DictionaryEntry:
    tag: int
    vr: str
    name: str
    vm_min: int = 1
    vm_max: int = 1  # 0: unbounded
    private_creator: str | None = None

    @property
    def vm(self) -> str:
        """Multiplicity in pydicom's notation: `1`, `1-n`, `2-4`."""
        if self.vm_max == 0:
            return f"{self.vm_min}-n"
        return str(self.vm_min) if self.vm_min == self.vm_max else f"{self.vm_min}-{self.vm_max}"

    @property
    def is_private(self) -> bool:
        return is_private_group(self.tag >> 16)


def _parse_entry(key: str, value: Any) -> DictionaryEntry:
    invalid = OrthancError(ErrorCode.BAD_FILE_FORMAT, f"The definition of the '{key}' dictionary entry is invalid.")
    match = _KEY.match(key.strip())
    if not match or not isinstance(value, list) or not 2 <= len(value) <= 5:
        raise invalid
    vr, name, *rest = value
    vm_min = rest[0] if len(rest) > 0 else 1
    vm_max = rest[1] if len(rest) > 1 else 1
    creator = rest[2] if len(rest) > 2 else None
    integers = all(isinstance(n, int) and not isinstance(n, bool) for n in (vm_min, vm_max))
    if (
        vr not in _VRS
        or not isinstance(name, str)
        or not name.strip()
        or not integers
        or vm_min < 1
        or (vm_max != 0 and vm_max < vm_min)
        or not (creator is None or isinstance(creator, str))
    ):
        raise invalid
    tag = (int(match.group(1), 16) << 16) | int(match.group(2), 16)
    entry = DictionaryEntry(tag, vr, name.strip(), vm_min, vm_max, creator or None)
    if entry.private_creator is not None and not entry.is_private:
        raise OrthancError(
            ErrorCode.BAD_FILE_FORMAT, f"Private creator should not be given for the non-private tag {key}"
        )
    if entry.is_private and entry.private_creator is None and not is_creator_slot(tag):
        log.warning("the private tag %s of the Dictionary has no private creator", key)
    return entry


def parse_dictionary(option: Mapping[str, Any]) -> list[DictionaryEntry]:
    """The entries of the `Dictionary` option, or error 15 naming the first bad one."""
    return [_parse_entry(key, value) for key, value in option.items()]


@dataclass
class _Installed:
    """What the current install added, so that the next install can undo it."""

    by_name: dict[str, DictionaryEntry] = field(default_factory=dict)
    private: dict[tuple[int, int, str | None], DictionaryEntry] = field(default_factory=dict)
    # tag -> (pydicom's entry before ours, or None)
    public: dict[int, tuple[str, str, str, str, str] | None] = field(default_factory=dict)
    # (creator, pydicom key) -> pydicom's private entry before ours, or None
    private_saved: dict[tuple[str, str], tuple[str, str, str, str] | None] = field(default_factory=dict)


_installed = _Installed()


def _uninstall() -> None:
    global _installed
    for tag, previous in _installed.public.items():
        datadict.keyword_dict.pop(datadict.DicomDictionary[tag][4], None)
        if previous is None:
            del datadict.DicomDictionary[tag]
        else:
            datadict.DicomDictionary[tag] = previous
            datadict.keyword_dict[previous[4]] = tag
    for (creator, key), saved in _installed.private_saved.items():
        entries = datadict.private_dictionaries[creator]
        if saved is None:
            del entries[key]
        else:
            entries[key] = saved
    _installed = _Installed()


def _install_public(entry: DictionaryEntry) -> None:
    current = datadict.DicomDictionary.get(entry.tag)
    _installed.public.setdefault(entry.tag, current)
    if current is not None:
        datadict.keyword_dict.pop(current[4], None)  # a redefined standard tag loses its old keyword
    datadict.add_dict_entries({entry.tag: (entry.vr, entry.vm, entry.name, "", entry.name)})


def _install_private(entry: DictionaryEntry) -> None:
    group, low = entry.tag >> 16, entry.tag & 0xFF
    _installed.private[(group, low, entry.private_creator)] = entry
    if entry.private_creator is not None and is_private_group(group):
        key = f"{group:04X}xx{low:02X}"  # pydicom's block-agnostic key
        current = datadict.private_dictionaries.get(entry.private_creator, {}).get(key)
        _installed.private_saved.setdefault((entry.private_creator, key), current)
        datadict.add_private_dict_entries(entry.private_creator, {entry.tag: (entry.vr, entry.vm, entry.name, "")})


def install(entries: list[DictionaryEntry]) -> None:
    """Make these entries the node's Dictionary (names, VRs), replacing a previous install."""
    _uninstall()
    for entry in entries:
        _installed.by_name[entry.name] = entry
        if (entry.tag >> 16) % 2 == 0:
            _install_public(entry)
        elif not is_creator_slot(entry.tag):
            _install_private(entry)  # pydicom knows creator slots (LO): only the name is kept


def install_option(option: Mapping[str, Any]) -> list[DictionaryEntry]:
    """Parse and install the `Dictionary` option: the one call made at start-up."""
    entries = parse_dictionary(option)
    install(entries)
    if entries:
        log.info("Dictionary: %d extra tags registered", len(entries))
    return entries


def entry_for_name(name: str) -> DictionaryEntry | None:
    """An entry of the Dictionary by the name it declares."""
    return _installed.by_name.get(name)


def private_entry(tag: int, creator: str | None) -> DictionaryEntry | None:
    """The Dictionary entry of a private data element under its block's creator."""
    return _installed.private.get((tag >> 16, tag & 0xFF, creator))


@cache
def _known_private_names() -> dict[tuple[str, int, int], str]:
    """(creator, group, element) -> name from the bundled private dictionary; an element of
    fewer than 0x100 is a low byte that any block of its creator may hold."""
    text = resources.files(__package__).joinpath("data/private-tag-names.tsv").read_text("utf-8")
    names: dict[tuple[str, int, int], str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        first, last, creator, element, name = line.split("\t")
        for group in range(int(first, 16), int(last, 16) + 1, 2):
            names[(creator, group, int(element, 16))] = name
    return names


def _known_private_name(tag: int, creator: str) -> str | None:
    names = _known_private_names()
    group, element = tag >> 16, tag & 0xFFFF
    return names.get((creator, group, element)) or names.get((creator, group, element & 0xFF))


def private_name(tag: int, creator: str | None) -> str | None:
    """The name Orthanc shows for a private tag: the Dictionary's, else the bundled private
    dictionary's (matched on the exact creator); None when neither knows it."""
    if (tag & 0xFFFF) == 0:
        return PRIVATE_GROUP_LENGTH_NAME
    if is_creator_slot(tag):
        return PRIVATE_CREATOR_NAME
    entry = private_entry(tag, creator)
    if entry is not None:
        return entry.name
    return _known_private_name(tag, creator) if creator else None
