"""node.dicom.media: the DICOMDIR of a media archive, read back with pydicom record by record."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MediaStorageDirectoryStorage

from node.dicom.media import ORTHANC_FILE_SET_ID, DicomDir, media_entry
from tests.support.datasets import CT_IMAGE_STORAGE, make_dataset

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)  # when the DICOMDIRs of these tests are written


def instance(patient: str, study: str, series: str, number: int, **tags: object) -> Dataset:
    return make_dataset(
        patient_id=patient,
        study_uid=study,
        series_uid=series,
        sop_uid=f"{series}.{number}",
        instance_number=number,
        **tags,
    )


def read(dicomdir: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(dicomdir))


def tree(ds: Dataset) -> list[tuple[str, list]]:
    """The records as the offsets link them: (type, children) from the first root record on."""
    by_offset = {record.seq_item_tell: record for record in ds.DirectoryRecordSequence}

    def siblings(offset: int) -> list[tuple[str, list]]:
        found = []
        while offset:
            record = by_offset[offset]
            found.append((record.DirectoryRecordType, siblings(record.OffsetOfReferencedLowerLevelDirectoryEntity)))
            offset = record.OffsetOfTheNextDirectoryRecord
        return found

    return siblings(ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity)


def test_an_empty_directory() -> None:
    ds = read(DicomDir().encode())
    assert ds.file_meta.MediaStorageSOPClassUID == MediaStorageDirectoryStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.FileSetID == ORTHANC_FILE_SET_ID
    assert ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity == 0
    assert ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity == 0
    assert ds.FileSetConsistencyFlag == 0
    assert len(ds.DirectoryRecordSequence) == 0


def test_each_entity_once_linked_in_the_order_added() -> None:
    directory = DicomDir()
    files = [
        instance("P1", "1.1", "1.1.1", 1),
        instance("P1", "1.1", "1.1.1", 2),
        instance("P1", "1.1", "1.1.2", 1),
        instance("P2", "2.1", "2.1.1", 1),
    ]
    for number, ds in enumerate(files):
        directory.add(media_entry(ds, ("IMAGES", f"IM{number}"), extended=False, now=NOW))
    ds = read(directory.encode())
    image, series = ("IMAGE", []), "SERIES"
    assert tree(ds) == [
        ("PATIENT", [("STUDY", [(series, [image, image]), (series, [image])])]),
        ("PATIENT", [("STUDY", [(series, [image])])]),
    ]
    records = ds.DirectoryRecordSequence
    assert len(records) == 11  # 2 patients, 2 studies, 3 series, 4 images
    last_root = ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity
    assert [r.PatientID for r in records if r.seq_item_tell == last_root] == ["P2"]
    images = [r for r in records if r.DirectoryRecordType == "IMAGE"]
    assert [list(r.ReferencedFileID) for r in images] == [["IMAGES", f"IM{n}"] for n in range(4)]
    assert [r.ReferencedSOPInstanceUIDInFile for r in images] == ["1.1.1.1", "1.1.1.2", "1.1.2.1", "2.1.1.1"]
    assert {r.ReferencedSOPClassUIDInFile for r in images} == {CT_IMAGE_STORAGE}


def test_record_attributes_fallbacks_and_empty_values() -> None:
    ds = instance("P1", "1.1", "1.1.1", 7, SeriesDate="20200102", SeriesDescription="Axial")
    del ds.StudyDescription
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    directory = DicomDir()
    directory.add(media_entry(ds, ("IMAGES", "IM0"), extended=False, now=NOW))
    patient, study, series, image = read(directory.encode()).DirectoryRecordSequence
    assert (patient.PatientID, patient.PatientName) == ("P1", "DOE^JOHN")
    assert study.StudyDate == "20200102"  # no StudyDate: the series date stands in
    assert "StudyDescription" in study and study.StudyDescription == ""  # present, empty
    assert study.StudyInstanceUID == "1.1"
    assert (series.Modality, series.SeriesInstanceUID) == ("CT", "1.1.1")
    assert "SeriesDescription" not in series  # only in the extended profile
    assert image.InstanceNumber == 7
    assert image.ReferencedTransferSyntaxUIDInFile == ImplicitVRLittleEndian


def test_the_extended_profile_adds_the_series_description() -> None:
    directory = DicomDir()
    directory.add(
        media_entry(instance("P1", "1.1", "1.1.1", 1, SeriesDescription="Axial"), ("IM0",), extended=True, now=NOW)
    )
    directory.add(media_entry(instance("P1", "1.1", "1.1.2", 1), ("IM1",), extended=True, now=NOW))
    records = read(directory.encode()).DirectoryRecordSequence
    assert [r.get("SeriesDescription") for r in records if r.DirectoryRecordType == "SERIES"] == ["Axial", None]


def test_text_beyond_ascii_is_written_in_utf8_and_declared() -> None:
    """Records of text beyond ASCII, whatever the instance's character set, are UTF-8 and say
    so, and so does the directory itself; records of ASCII text declare nothing."""
    ds = instance("P1", "1.1", "1.1.1", 1, SpecificCharacterSet="ISO_IR 100", patient_name="Müller^Jürgen")
    directory = DicomDir()
    directory.add(media_entry(ds, ("IM0",), extended=False, now=NOW))
    dicomdir = read(directory.encode())
    assert dicomdir.SpecificCharacterSet == "ISO_IR 192"
    patient, study = dicomdir.DirectoryRecordSequence[:2]
    assert patient.SpecificCharacterSet == "ISO_IR 192"
    assert patient.PatientName == "Müller^Jürgen"
    assert "SpecificCharacterSet" not in study


def test_a_directory_of_ascii_text_declares_no_character_set() -> None:
    directory = DicomDir()
    directory.add(
        media_entry(
            instance("P1", "1.1", "1.1.1", 1, SpecificCharacterSet="ISO_IR 100"), ("IM0",), extended=False, now=NOW
        )
    )
    dicomdir = read(directory.encode())
    assert "SpecificCharacterSet" not in dicomdir
    assert not any("SpecificCharacterSet" in record for record in dicomdir.DirectoryRecordSequence)
