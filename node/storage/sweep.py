"""The start-up sweep of the storage area: files that no index entry points at.

A store renames its file into place (or fills a reserved one) before the index commits, and a
deletion commits before it removes the files; a crash between the two leaves a file nobody will
ever read, as does a crash with reserved files still empty.
The sweep runs in the background while the node serves, so it only takes files older than
:data:`ORPHAN_MIN_AGE_SECONDS`: a write in progress is always younger.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..offload import offload
from .files import FileStore
from .index import Index

log = logging.getLogger(__name__)

# A file is indexed within seconds of being written; an hour also covers a wall clock set back.
ORPHAN_MIN_AGE_SECONDS = 3600.0
# UUIDs asked of the index at once: one short query each, however large the storage area.
_LOOKUP_BATCH = 500


@dataclass
class SweepResult:
    orphans: int = 0  # complete files that no index entry points at
    temporaries: int = 0  # files left half-written


async def sweep_storage(files: FileStore, index: Index, min_age: float = ORPHAN_MIN_AGE_SECONDS) -> SweepResult:
    """Remove the old files of the storage area that the index does not know, one top-level folder at a time."""
    modified_before = time.time() - min_age
    result = SweepResult()
    for top in await offload(files.top_folders):
        scan = await offload(files.scan, top, modified_before)
        await offload(files.remove_paths, scan.temporaries)
        result.temporaries += len(scan.temporaries)
        for start in range(0, len(scan.files), _LOOKUP_BATCH):
            batch = scan.files[start : start + _LOOKUP_BATCH]
            known = await index.known_attachments(batch)
            orphans = [file_uuid for file_uuid in batch if file_uuid not in known]
            result.orphans += await offload(files.remove_orphans, orphans, modified_before)
    if result.orphans or result.temporaries:
        log.warning(
            "storage sweep: removed %d files unknown to the index and %d half-written files, left by a crash",
            result.orphans,
            result.temporaries,
        )
    return result
