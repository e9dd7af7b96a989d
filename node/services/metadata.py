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


# What an attachment's data is served as, unless UserContentType says otherwise.
OCTET_STREAM = "application/octet-stream"
_BUILTIN_MIME = {1: "application/dicom", 2: "application/json", 3: "application/dicom"}


class AttachmentNames:
    """Names, numbers and MIME types of attachments: the built-in ones, and those declared in
    ``UserContentType`` (a name for a number, or for ``[number, "mime/type"]``)."""

    def __init__(self, user_content_types: Mapping[str, object]) -> None:
        self._numbers = dict(_ATTACHMENT_NUMBERS)
        self._mime = dict(_BUILTIN_MIME)
        for name, declared in user_content_types.items():
            number, mime = declared if isinstance(declared, list) and len(declared) == 2 else (declared, OCTET_STREAM)
            if isinstance(number, bool) or not isinstance(number, int) or not is_user_number(number):
                raise OrthancError(
                    ErrorCode.PARAMETER_OUT_OF_RANGE,
                    f'UserContentType "{name}" must be a number between {USER_FIRST} and {USER_LAST}',
                )
            if not isinstance(mime, str):
                raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f'UserContentType "{name}": the MIME type is a string')
            self._numbers[name] = number
            self._mime[number] = mime
        self._names = {number: name for name, number in reversed(self._numbers.items())}

    def number(self, name: str) -> int:
        """The content type a URL names (`dicom`, a declared name, a number...), or error 7."""
        if name in self._numbers:
            return self._numbers[name]
        number = _as_number(name)
        if number is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM)
        return number

    def name(self, number: int) -> str:
        return self._names.get(number, str(number))

    def mime_type(self, number: int) -> str:
        return self._mime.get(number, OCTET_STREAM)
