"""Names of the folders and files inside a ZIP archive of stored resources.

Folders are named after two main tags of their resource, files after the series'
modality and a counter, as Orthanc does, reduced to characters every file system
accepts; and no entry path may lead out of the folder the archive is extracted to.
"""

from __future__ import annotations

import re

from ..errors import ErrorCode, OrthancError

_KEPT = re.compile(r"[^A-Za-z0-9._\s]")
_SPACES = re.compile(r"\s+")
_DOTS_AND_SPACES = re.compile(r"[. ]*")
# What a component of an entry path never contains: separators of any system, a drive
# letter's colon, control characters (NUL included).
_UNSAFE_IN_COMPONENT = re.compile(r"[/\\:\x00-\x1f\x7f]")


def check_entry_path(path: str) -> None:
    """Refuse (error -1: names are made safe before) a path that is absolute, has an empty,
    `.` or `..` component (or one that some systems trim down to those), or a component
    holding a separator or a control character."""
    for component in path.split("/"):
        if _DOTS_AND_SPACES.fullmatch(component) or _UNSAFE_IN_COMPONENT.search(component):
            raise OrthancError(ErrorCode.INTERNAL_ERROR, f"Unsafe entry name in an archive: {path!r}")


def folder_name(first: str, second: str, fallback: str) -> str:
    """Two main tags joined by a space, reduced to portable characters.

    Orthanc keeps a name made only of dots, so that a patient whose PatientID is `..`
    yields an entry `../…` that a naive extractor writes outside its folder; such a name,
    like an empty one, becomes ``fallback`` here.
    """
    text = f"{first} {second}".encode("ascii", "ignore").decode("ascii")
    text = _SPACES.sub(" ", _KEPT.sub("", text.replace("^", " "))).strip()
    return fallback if _DOTS_AND_SPACES.fullmatch(text) else text


def file_name(modality: str, counter: int) -> str:
    """``MR000000.dcm``: a modality prefix and a per-series counter, 8 characters in all."""
    letters = re.sub(r"[^A-Za-z0-9]", "", modality).upper()
    if len(letters) >= 2:
        return f"{letters[:2]}{counter:06d}.dcm"
    if letters:
        return f"{letters}{counter:07d}.dcm"
    return f"{counter:08d}.dcm"


class UniqueNames:
    """Names already used in one folder; a repeated one gets ``-2``, ``-3``…"""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, name: str) -> str:
        candidate, suffix = name, 1
        while candidate in self._used:
            suffix += 1
            candidate = f"{name}-{suffix}"
        self._used.add(candidate)
        return candidate
