"""What every index backend answers alike: each test runs on SQLite and on PostgreSQL
(``any_index``), through the Index interface only."""

from __future__ import annotations

import trio

from node.dicom.ids import Level
from node.storage.index import Index
from node.storage.index.base import Attachment
from tests.support.index_rows import PATIENT, STUDY, new_instance


async def test_a_store_creates_the_hierarchy_once(any_index: Index) -> None:
    first = await any_index.store(new_instance("1.1"), overwrite=False)
    second = await any_index.store(new_instance("1.2"), overwrite=False)
    again = await any_index.store(new_instance("1.2"), overwrite=False)
    assert first.created == [Level.PATIENT, Level.STUDY, Level.SERIES] and not first.already_stored
    assert second.created == [] and again.already_stored
    ids = new_instance("1.1").ids
    assert await any_index.list_ids(Level.INSTANCE) == [ids[3], new_instance("1.2").ids[3]]
    assert await any_index.list_ids(Level.INSTANCE, since=1, limit=5) == [new_instance("1.2").ids[3]]
    series = await any_index.resource(ids[2], Level.SERIES)
    assert series is not None and series.parent == ids[1] and len(series.children) == 2
    assert series.metadata["LastUpdate"] == "20240101T120000"
    study = await any_index.resource(ids[1])
    assert study is not None and study.patient_tags["0010,0010"] == "DOE^JOHN"
    assert await any_index.resource(ids[1], Level.SERIES) is None
    assert await any_index.level_of(ids[0]) == Level.PATIENT
    assert await any_index.descendants(ids[0], Level.INSTANCE) == [ids[3], new_instance("1.2").ids[3]]
    assert await any_index.descendants(ids[1], Level.INSTANCE, of=Level.STUDY) == [ids[3], new_instance("1.2").ids[3]]
    assert await any_index.descendants(ids[1], Level.INSTANCE, of=Level.SERIES) == []  # not a series
    assert await any_index.statistics() == {
        "CountPatients": 1, "CountStudies": 1, "CountSeries": 1, "CountInstances": 2,
        "DiskSize": 160, "UncompressedSize": 200,
    }  # fmt: skip
    assert (await any_index.resource_statistics(ids[1], Level.STUDY))["CountInstances"] == 2
    kinds = [change.change_type for change in (await any_index.changes(0, 100))[0]]
    assert kinds == ["NewInstance", "NewSeries", "NewStudy", "NewPatient", "NewInstance"]


async def test_lookups_and_find_material(any_index: Index) -> None:
    await any_index.store(new_instance("2.1"), overwrite=False)
    await any_index.store(new_instance("2.2", series_uid="1.2.840.1.2", modality="MR"), overwrite=False)
    ids = new_instance("2.1").ids
    # A study's copy of PatientID does not make the study answer for it.
    assert await any_index.lookup_identifier(PATIENT) == [(ids[0], Level.PATIENT)]
    assert await any_index.lookup_identifier_at(Level.STUDY, "0020,000d", STUDY) == [ids[1]]
    [(series_id, tags), _] = await any_index.all_tags_of_level(Level.SERIES)
    assert series_id == ids[2] and tags["0010,0010"] == "DOE^JOHN" and tags["0008,0060"] == "CT"
    summaries = await any_index.descendant_summaries([ids[1], "missing"], Level.STUDY)
    assert list(summaries) == [ids[1]]
    summary = summaries[ids[1]]
    assert summary.counts == {Level.SERIES: 2, Level.INSTANCE: 2}
    assert summary.modalities == ["CT", "MR"] and summary.sop_classes == ["1.2.840.10008.5.1.4.1.1.2"]
    assert summary.first_instance == ids[3]


async def test_delete_takes_empty_ancestors_and_their_changes(any_index: Index) -> None:
    kept, other = new_instance("3.1"), new_instance("3.2", series_uid="1.2.840.1.2")
    await any_index.store(kept, overwrite=False)
    await any_index.store(other, overwrite=False)
    gone = other.ids
    result = await any_index.delete(gone[3], Level.INSTANCE)
    assert result is not None
    assert result.remaining_ancestor == (kept.ids[1], Level.STUDY) and result.removed_files == ["uuid-3.2"]
    assert await any_index.delete(gone[3], Level.INSTANCE) is None
    assert {c.public_id for c in (await any_index.changes(0, 100))[0]} == set(kept.ids)
    whole = await any_index.delete(kept.ids[0], Level.PATIENT)
    assert whole is not None and whole.remaining_ancestor is None and whole.removed_files == ["uuid-3.1"]
    assert (await any_index.statistics())["CountPatients"] == 0
    assert await any_index.last_seq() >= 5  # numbers given are not taken back


async def test_overwrite_replaces_the_instance(any_index: Index) -> None:
    await any_index.store(new_instance("4.1"), overwrite=False)
    replaced = await any_index.store(new_instance("4.1"), overwrite=True)
    assert not replaced.already_stored and replaced.removed_files == ["uuid-4.1"]
    assert (await any_index.statistics())["CountInstances"] == 1


async def test_series_completion(any_index: Index) -> None:
    ids = new_instance("5.1").ids
    first = await any_index.store(new_instance("5.1", index_in_series=1, expected=2), overwrite=False)
    assert not first.series_completed and await any_index.series_status(ids[2]) == "Missing"
    last = await any_index.store(new_instance("5.2", index_in_series=2, expected=2), overwrite=False)
    assert last.series_completed and await any_index.series_status(ids[2]) == "Complete"
    assert await any_index.series_status("unknown") == "Unknown"


async def test_attachments_metadata_protection_properties(any_index: Index) -> None:
    await any_index.store(new_instance("6.1"), overwrite=False)
    instance = new_instance("6.1").ids[3]
    extra = Attachment(1025, "uuid-extra", 5, 5, "a", "a")
    assert await any_index.set_attachment(instance, extra) is None
    assert await any_index.set_attachment(instance, Attachment(1025, "uuid-newer", 6, 6, "b", "b")) == "uuid-extra"
    assert (await any_index.attachments(instance))[1025].uuid == "uuid-newer"
    assert await any_index.known_attachments(["uuid-newer", "uuid-extra", "uuid-6.1"]) == {"uuid-newer", "uuid-6.1"}
    assert await any_index.delete_attachment(instance, 1025) == "uuid-newer"
    await any_index.set_metadata(instance, "1024", "first")
    await any_index.set_metadata(instance, "1024", "second")
    assert (await any_index.resource(instance)).metadata["1024"] == "second"  # type: ignore[union-attr]
    assert await any_index.delete_metadata(instance, "1024") and not await any_index.delete_metadata(instance, "1024")
    await any_index.set_protected(new_instance("6.1").ids[0], True)
    assert await any_index.is_protected(new_instance("6.1").ids[0])
    await any_index.set_property("Setting", "one")
    await any_index.set_property("Setting", "two")
    assert await any_index.get_property("Setting") == "two" and await any_index.get_property("Other") is None


async def test_the_dicom_files_of_many_instances_in_one_call(any_index: Index) -> None:
    stored = [new_instance(f"8.{n}") for n in range(3)]
    for new in stored:
        await any_index.store(new, overwrite=False)
    await any_index.set_attachment(stored[0].ids[3], Attachment(1025, "uuid-other", 5, 5, "a", "a"))
    asked = [new.ids[3] for new in stored] + ["missing", stored[1].ids[2]]
    found = await any_index.dicom_attachments(asked)
    assert {public_id: a.uuid for public_id, a in found.items()} == {
        new.ids[3]: f"uuid-8.{n}" for n, new in enumerate(stored)
    }
    assert found[stored[2].ids[3]] == stored[2].attachment
    assert await any_index.dicom_attachments([]) == {}


async def test_changes_and_saved_jobs(any_index: Index) -> None:
    await any_index.store(new_instance("7.1"), overwrite=False)
    ids = new_instance("7.1").ids
    await any_index.log_change("StableSeries", ids[2], Level.SERIES, "20240101T130000")
    await any_index.log_change("StableSeries", "deleted-meanwhile", Level.SERIES, "20240101T130000")
    page, done = await any_index.changes(0, 2)
    assert len(page) == 2 and not done
    last = await any_index.last_change()
    assert last is not None and last.change_type == "StableSeries" and last.seq == await any_index.last_seq()
    await any_index.clear_changes()
    assert await any_index.last_change() is None and await any_index.last_seq() == last.seq
    await any_index.save_jobs({"a": '{"n": 1}', "b": '{"n": 2}'}, [])
    await any_index.save_jobs({"a": '{"n": 3}'}, ["b"])
    assert await any_index.saved_jobs() == {"a": '{"n": 3}'}
    await any_index.save_jobs({"c": "{}"}, [], clear=True)
    assert await any_index.saved_jobs() == {"c": "{}"}


async def test_concurrent_stores_of_one_series(any_index: Index) -> None:
    instances = [new_instance(f"8.{i}", index_in_series=i, expected=12) for i in range(1, 13)]

    async with trio.open_nursery() as nursery:
        for new in instances:
            nursery.start_soon(lambda new=new: any_index.store(new, overwrite=False))
    stats = await any_index.statistics()
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 1, 1, 12)
    kinds = [change.change_type for change in (await any_index.changes(0, 100))[0]]
    assert (kinds.count("NewPatient"), kinds.count("NewSeries"), kinds.count("NewInstance")) == (1, 1, 12)


async def test_a_resource_is_logged_stable_once_per_quiet_period(any_index: Index) -> None:
    """Two processes finding the same series stable log one change; after a new instance, one more."""
    await any_index.store(new_instance("9.1"), overwrite=False)
    series = new_instance("9.1").ids[2]
    for _ in range(2):
        await any_index.log_change("StableSeries", series, Level.SERIES, "20240101T130000")
    await any_index.set_metadata(series, "LastUpdate", "20240101T140000")  # an instance arrived since
    for _ in range(2):
        await any_index.log_change("StableSeries", series, Level.SERIES, "20240101T150000")
    await any_index.log_change("StableStudy", new_instance("9.1").ids[1], Level.STUDY, "20240101T150000")
    logged = [(c.change_type, c.date) for c in (await any_index.changes(0, 100))[0] if c.change_type.startswith("Stable")]
    assert logged == [("StableSeries", "20240101T130000"), ("StableSeries", "20240101T150000"), ("StableStudy", "20240101T150000")]
