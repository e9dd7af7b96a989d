"""A small archive for the query/retrieve tests: four patients, five studies, seven series,
made with pydicom (fixed UIDs, so queries can name them), and the identifiers that query it.

Chosen to exercise Orthanc's matching: dates and an empty date, accents in Latin-1 and a
Cyrillic name in UTF-8, names in both cases, a patient named otherwise in its second study, two modalities in one study, a non-main tag
(PatientWeight, ImageType), a sequence, an instance without InstanceNumber.
"""

from __future__ import annotations

from pydicom import config as pydicom_config
from pydicom import datadict
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .datasets import make_dataset, to_bytes

ROOT = "1.2.826.0.1.3680043.8.498.77"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def uid(*parts: int) -> str:
    return ".".join([ROOT, *map(str, parts)])


STUDY_CHEST, STUDY_BRAIN, STUDY_KNEE, STUDY_EMPTY_DATE, STUDY_US = (uid(n) for n in range(1, 6))


def _referenced_images() -> Sequence:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = uid(1, 1, 1, 1)
    return Sequence([item])


def corpus() -> list[bytes]:
    """The files, in storage order."""
    doe = {"patient_id": "PAT1", "patient_name": "DOE^JOHN", "PatientBirthDate": "19700101", "PatientSex": "M"}
    chest = {**doe, "study_uid": STUDY_CHEST, "StudyDate": "20200101", "StudyTime": "101500",
             "AccessionNumber": "ACC1", "StudyDescription": "Chest CT", "ReferringPhysicianName": "HOUSE^G"}  # fmt: skip
    brain = {**doe, "patient_name": "DOE^JOHN^^JR", "study_uid": STUDY_BRAIN, "StudyDate": "20210615", "AccessionNumber": "acc2",
             "StudyDescription": "Brain MR"}  # fmt: skip
    knee = {"patient_id": "pat2", "patient_name": "Müller^Jürgen", "SpecificCharacterSet": "ISO_IR 100",
            "study_uid": STUDY_KNEE, "StudyDate": "20200315", "AccessionNumber": "ACC3", "StudyDescription": "Knee"}  # fmt: skip
    empty_date = {"patient_id": "PAT3", "patient_name": "Иванов^Иван", "SpecificCharacterSet": "ISO_IR 192",
                  "study_uid": STUDY_EMPTY_DATE, "StudyDate": "", "StudyDescription": "Без даты"}  # fmt: skip
    ultrasound = {"patient_id": "PAT4", "patient_name": "smith^anna", "study_uid": STUDY_US, "StudyDate": "20191231",
                  "AccessionNumber": "ACC5", "StudyDescription": "Abdomen"}  # fmt: skip
    datasets = [
        make_dataset(**chest, series_uid=uid(1, 1), sop_uid=uid(1, 1, 1), modality="CT", SeriesNumber=1,
                     SeriesDescription="Axial", ImageType=["ORIGINAL", "PRIMARY", "AXIAL"], PatientWeight="82.5"),
        make_dataset(**chest, series_uid=uid(1, 1), sop_uid=uid(1, 1, 2), modality="CT", SeriesNumber=1,
                     SeriesDescription="Axial", ImageType=["DERIVED", "SECONDARY"], PatientWeight="82.5",
                     instance_number=2),
        make_dataset(**chest, series_uid=uid(1, 2), sop_uid=uid(1, 2, 1), modality="PT", SeriesNumber=2,
                     SeriesDescription="PET", instance_number=None),
        make_dataset(**brain, series_uid=uid(2, 1), sop_uid=uid(2, 1, 1), modality="MR", SeriesNumber=1,
                     SeriesDescription="T1", ReferencedImageSequence=_referenced_images()),
        make_dataset(**knee, series_uid=uid(3, 1), sop_uid=uid(3, 1, 1), modality="MR", SeriesNumber=3,
                     SeriesDescription="Sagittal"),
        make_dataset(**empty_date, series_uid=uid(4, 1), sop_uid=uid(4, 1, 1), modality="CT", SeriesNumber=1),
        make_dataset(**ultrasound, series_uid=uid(5, 1), sop_uid=uid(5, 1, 1), modality="US", SeriesNumber=1),
    ]  # fmt: skip
    datasets[-1].SOPClassUID = datasets[-1].file_meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
    return [to_bytes(ds) for ds in datasets]


def identifier(level: str | None, **keys: object) -> Dataset:
    """A C-FIND/C-MOVE identifier: keys by keyword (a list value makes a sequence key), values
    kept as given even where the VR forbids them (wildcards in a CS...)."""
    ds = Dataset()
    if level is not None:
        keys = {"QueryRetrieveLevel": level, **keys}
    for keyword, value in keys.items():
        tag = datadict.tag_for_keyword(keyword)
        assert tag is not None, keyword
        vr = datadict.dictionary_VR(tag)
        element = Sequence(value) if isinstance(value, list) else value
        ds.add(DataElement(tag, vr, element, validation_mode=pydicom_config.IGNORE))
    return ds

