"""An index made by an earlier version keeps working: its tables stay as they were made (rows
numbered beside their key, identifiers with no key), and every write and read of the new
version runs on them, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.dicom.ids import Level
from node.storage.index.base import Attachment
from tests.support.index_layouts import open_earlier_index
from tests.support.index_rows import PATIENT, STUDY, new_instance


async def test_an_index_of_the_earlier_layout_stores_finds_and_deletes(
    index_backend: dict[str, Any] | None, tmp_path: Path
) -> None:
    index = await open_earlier_index(index_backend, tmp_path / "index")
    try:
        first = new_instance("1.1", index_in_series=1, expected=2)
        second = new_instance("1.2", index_in_series=2, expected=2)
        assert (await index.store(first, overwrite=False)).created == [Level.PATIENT, Level.STUDY, Level.SERIES]
        assert (await index.store(second, overwrite=False)).series_completed
        assert not (await index.store(second, overwrite=True)).already_stored
        ids = first.ids
        assert await index.lookup_identifier(PATIENT) == [(ids[0], Level.PATIENT)]
        assert await index.lookup_identifier_at(Level.STUDY, "0020,000d", STUDY) == [ids[1]]
        await index.set_main_tags(ids[3], first.tags, {**first.identifiers, Level.PATIENT: {"0010,0020": "OTHER"}})
        assert await index.lookup_identifier("OTHER") == [(ids[0], Level.PATIENT)]
        assert await index.lookup_identifier(PATIENT) == []
        await index.set_metadata(ids[3], "1024", "kept")
        assert await index.set_attachment(ids[3], Attachment(1025, "uuid-extra", 5, 5, "a", "a")) is None
        record = await index.resource(ids[3])
        assert record is not None and record.metadata["1024"] == "kept" and record.metadata["IndexInSeries"] == "1"
        assert set(await index.attachments(ids[3])) == {1, 1025}
        assert await index.known_attachments(["uuid-1.1", "uuid-extra", "missing"]) == {"uuid-1.1", "uuid-extra"}
        gone = await index.delete(ids[0], Level.PATIENT)
        assert gone is not None and sorted(gone.removed_files) == ["uuid-1.1", "uuid-1.2", "uuid-extra"]
        assert (await index.statistics())["CountInstances"] == 0
        assert await index.lookup_identifier("OTHER") == []
    finally:
        await index.close()
