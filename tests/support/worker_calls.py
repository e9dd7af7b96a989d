"""Functions for the tests of node.worker_processes to run in a worker process (a spawned process
imports them by name, so they live in a module, not in a test)."""

from __future__ import annotations

import os

from node.dicom.transcode import CannotTranscode
from node.errors import ErrorCode, OrthancError


def own_pid() -> int:
    return os.getpid()


def read_fifo(path: str) -> bytes:
    """Blocks until a writer opens the FIFO ``path`` (the test then knows the call has started),
    then until it closes it."""
    with open(path, "rb") as fifo:
        return fifo.read()


def fail_with_value_error(message: str) -> None:
    raise ValueError(message)


def fail_cannot_transcode(target: str) -> None:
    raise CannotTranscode(target, "a reason")


def fail_with_orthanc_error() -> None:
    """An exception whose arguments do not rebuild it."""
    raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "detail")


def crash() -> None:
    os._exit(3)
