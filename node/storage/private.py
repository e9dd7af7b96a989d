"""Files and folders that only the node's own account can read: they hold patient data.

The modes are given explicitly when a file or folder is created rather than left to the
process umask, which the node does not control (an embedding program or a test may have set
it to anything); a umask can only narrow them further. Folders that already exist keep the
mode their administrator gave them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
# O_EXCL: a new file only, so a name planted in advance (a link to elsewhere) is refused, not followed.
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def make_folders(path: str | os.PathLike[str]) -> list[str]:
    """Create ``path`` and its missing parents, each private; the folders created, outermost first."""
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created: list[str] = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another thread: fine if it is a folder
            if not os.path.isdir(folder):
                raise
        else:
            created.append(folder)
    return created


def create_file(path: str | os.PathLike[str]) -> int:
    """Open a file that must not exist yet, for writing; its descriptor."""
    return os.open(path, _NEW_FILE_FLAGS, FILE_MODE)


def create_empty_file(path: Path) -> None:
    """Create ``path`` empty and private unless it exists (e.g. before a library opens it with its own mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(create_file(path))
