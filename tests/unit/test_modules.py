"""node.dicom.modules: the tags of each level's module, as /{level}/{id}/module shows them."""

from __future__ import annotations

from pydicom.dataset import Dataset

from node.dicom.ids import Level
from node.dicom.modules import MODULE_TAGS, module_of, select
from tests.support.datasets import make_dataset


def rich_instance() -> Dataset:
    ds = make_dataset(
        patient_id="PAT",
        StudyDate="20200101",
        SeriesNumber=3,
        PatientPosition="HFS",
        Manufacturer="ACME",
        SliceThickness="1.5",
        PatientBirthTime="101010",
    )
    reference = Dataset()
    reference.PatientID = "INSIDE"  # a patient tag inside a sequence is not the patient's
    ds.ReferencedImageSequence = [reference]
    return ds


def keywords(ds: Dataset) -> set[str]:
    return {element.keyword for element in ds}


def test_each_level_gets_its_own_module() -> None:
    ds = rich_instance()
    assert keywords(module_of(ds, Level.PATIENT)) == {"PatientName", "PatientID", "PatientBirthTime"}
    assert keywords(module_of(ds, Level.STUDY)) == {"StudyDate", "StudyDescription", "StudyInstanceUID"}
    # PatientPosition belongs to the series module, though it is no main tag of the series.
    assert keywords(module_of(ds, Level.SERIES)) == {"Modality", "SeriesInstanceUID", "SeriesNumber", "PatientPosition"}
    assert keywords(module_of(ds, Level.INSTANCE)) == {"SOPClassUID", "SOPInstanceUID", "InstanceNumber"}


def test_values_are_the_instances_own() -> None:
    ds = rich_instance()
    patient = module_of(ds, Level.PATIENT)
    assert patient.PatientID == "PAT" and patient["PatientID"] is ds["PatientID"]
    assert "ReferencedImageSequence" not in patient and "Manufacturer" not in module_of(ds, Level.SERIES)


def test_the_levels_share_no_tag() -> None:
    levels = list(MODULE_TAGS.values())
    for position, tags in enumerate(levels):
        for other in levels[position + 1 :]:
            assert not tags & other


def test_select_keeps_the_order_and_ignores_absent_tags() -> None:
    ds = rich_instance()
    chosen = select(ds, [0x00200011, 0x00100020, 0x00991000])  # SeriesNumber, PatientID, absent
    assert [element.keyword for element in chosen] == ["PatientID", "SeriesNumber"]
    assert len(select(ds, [])) == 0
