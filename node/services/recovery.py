"""Start-up recovery of the stores a crash took from the index but not from the disk.

A store whose file has a journaled name commits without flushing the index (see
SqliteIndex.enable_file_recovery): its file is durable when the store is acknowledged, its
index entry only at the next flush. After a power cut, the journal still holds the names of
the stores whose commits were lost: their files are indexed again here, before the node
serves and before the storage sweep could take them for orphans. Names never written (empty
files, or files already gone) are dropped. A file flushed whose store never committed (the
crash came first) is indexed too: its sender was never told it was stored, and the next store
of the same instance replaces it (see RECOVERED_ORIGIN).
"""

from __future__ import annotations

import logging

from ..errors import OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Index
from ..storage.index.base import RECOVERED_ORIGIN
from .ingest import Ingest, Origin

log = logging.getLogger(__name__)

RECOVERED = Origin(kind=RECOVERED_ORIGIN)


async def recover_lost_stores(index: Index, files: FileStore, ingest: Ingest) -> int:
    """Index the written files of the journaled names that the index does not know, remove
    the empty ones, then empty the journal; how many were indexed. A file that cannot be read
    as DICOM (a write the crash cut short, never acknowledged) is left to the storage sweep."""
    names = await index.journaled_names()
    known = await index.known_attachments(names) if names else set()
    recovered = 0
    for name in names:
        if name in known:
            continue
        try:
            data = await offload(files.read_raw, name)
        except FileNotFoundError:  # removed after a failed store, or at the last clean stop
            continue
        if not data:  # reserved, never written
            await offload(files.remove, name)
            continue
        try:
            result = await ingest.adopt(name, data, RECOVERED)
        except OrthancError as error:
            log.error("file %s, written before a crash, cannot be indexed: %s", name, error)
            continue
        recovered += result.status == "Success"
    if names:
        await index.forget_journaled_names()  # durably: the recovered entries are flushed with it
    if recovered:
        log.warning("indexed again %d stored files whose index entries a crash had lost", recovered)
    return recovered
