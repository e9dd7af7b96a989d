"""Names and numbers of metadata and attachments, built-in or declared by the user.

Orthanc keys both by number; a name in a URL is a built-in name, a name declared in
`UserMetadata`, or a number. Numbers 1024-65535 belong to users, the rest to Orthanc,
which makes them read-only through the REST API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ErrorCode, OrthancError
from ..storage.index.base import ATTACHMENT_NAMES, METADATA_NUMBERS

USER_FIRST, USER_LAST = 1024, 65535
_ATTACHMENT_NUMBERS = {**ATTACHMENT_NAMES, "dicom-as-json": 2}


def is_user_number(number: int) -> bool:
    return USER_FIRST <= number <= USER_LAST


def _as_number(name: str) -> int | None:
    try:
        return int(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class MetadataKey:
    """A metadata as named in a URL: its number, and the key it is stored under in the index."""

    number: int
    stored_as: str

    @property
    def writable(self) -> bool:
        return is_user_number(self.number)


class MetadataNames:
    """Resolves names both ways; built-ins are stored by name, user metadata by number."""

    def __init__(self, user_metadata: Mapping[str, object]) -> None:
        self._user: dict[str, int] = {}
        for name, number in user_metadata.items():
            if isinstance(number, bool) or not isinstance(number, int) or not is_user_number(number):
                raise OrthancError(
                    ErrorCode.PARAMETER_OUT_OF_RANGE,
                    f'UserMetadata "{name}" must be a number between {USER_FIRST} and {USER_LAST}',
                )
            self._user[name] = number
        self._user_names = {number: name for name, number in self._user.items()}
        self._builtin_names = {number: name for name, number in METADATA_NUMBERS.items()}

    def key(self, name: str) -> MetadataKey:
        """The metadata a URL names, or error 7 for a name nobody declared."""
        if name in METADATA_NUMBERS:
            return MetadataKey(METADATA_NUMBERS[name], name)
        if name in self._user:
            return MetadataKey(self._user[name], str(self._user[name]))
        number = _as_number(name)
        if number is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM)
        return MetadataKey(number, self._builtin_names.get(number, str(number)))

    def number_of(self, stored_as: str) -> int:
        number = METADATA_NUMBERS.get(stored_as)
        if number is not None:
            return number
        parsed = _as_number(stored_as)
        return parsed if parsed is not None else USER_LAST + 1  # unknown keys sort last

    def display_name(self, stored_as: str) -> str:
        """The name Orthanc shows: built-in or declared name, else the number."""
        number = _as_number(stored_as)
        return stored_as if number is None else self._user_names.get(number, stored_as)

    def listing(self, stored: Mapping[str, str], *, numeric: bool = False) -> list[tuple[str, str]]:
        """(name or number, value) pairs in Orthanc's order: by metadata number."""
        keys = sorted(stored, key=self.number_of)
        return [(str(self.number_of(k)) if numeric else self.display_name(k), stored[k]) for k in keys]


def attachment_number(name: str) -> int:
    """The content type a URL names (`dicom`, a number...), or error 7."""
    if name in _ATTACHMENT_NUMBERS:
        return _ATTACHMENT_NUMBERS[name]
    number = _as_number(name)
    if number is None:
        raise OrthancError(ErrorCode.INEXISTENT_ITEM)
    return number


def attachment_name(number: int) -> str:
    names = {n: name for name, n in _ATTACHMENT_NUMBERS.items()}
    return names.get(number, str(number))
