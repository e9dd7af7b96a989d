"""The identifier an outgoing C-FIND carries, as Orthanc builds it (checked on 1.10.1 with a
capturing SCP): keys normalized to the level, identifier keys added, manufacturer quirks."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from node.dicom.ids import Level
from node.net.find_scu import find_identifier, find_model, parse_query_keys
from node.net.ul.negotiate import PATIENT_ROOT_FIND, STUDY_ROOT_FIND

LATIN1 = "ISO_IR 100"


def _sent(level: Level, query: dict[str, str], **options: Any) -> dict[str, Any]:
    options = {"normalize": True, "manufacturer": "Generic", "character_set": LATIN1, **options}
    identifier: Dataset = find_identifier(level, parse_query_keys(query), **options)
    return {element.keyword: element.value for element in identifier}


def test_normalized_series_query_keeps_the_keys_of_its_level_and_above() -> None:
    query = {"PatientName": "*", "StudyDate": "*", "Modality": "", "StudyDescription": "", "InstanceNumber": "",
             "NumberOfStudyRelatedSeries": "", "NumberOfSeriesRelatedInstances": ""}  # fmt: skip
    assert _sent(Level.SERIES, query) == {
        "SpecificCharacterSet": LATIN1,
        "StudyDate": "*",
        "AccessionNumber": "",
        "QueryRetrieveLevel": "SERIES",
        "Modality": "",
        "StudyDescription": "",
        "PatientName": "*",
        "PatientID": "",
        "StudyInstanceUID": "",
        "SeriesInstanceUID": "",
        "NumberOfSeriesRelatedInstances": "",
    }


def test_without_normalization_every_key_is_sent() -> None:
    sent = _sent(Level.INSTANCE, {"PatientName": "*", "InstanceNumber": "", "ImageType": "x"}, normalize=False)
    assert sent["ImageType"] == "x" and sent["QueryRetrieveLevel"] == "IMAGE"
    assert {"SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "AccessionNumber", "PatientID"} <= set(sent)


def test_patient_level_adds_only_the_patient_id_and_uses_patient_root() -> None:
    assert _sent(Level.PATIENT, {}) == {
        "SpecificCharacterSet": LATIN1,
        "QueryRetrieveLevel": "PATIENT",
        "PatientID": "",
    }
    assert find_model(Level.PATIENT) == PATIENT_ROOT_FIND
    assert {find_model(level) for level in (Level.STUDY, Level.SERIES, Level.INSTANCE)} == {STUDY_ROOT_FIND}


def test_manufacturer_quirks() -> None:
    query = {"PatientName": "*", "StudyDate": "*", "StudyDescription": "Knee*"}
    no_dates = _sent(Level.STUDY, query, manufacturer="GenericNoWildcardInDates")
    assert (no_dates["PatientName"], no_dates["StudyDate"], no_dates["StudyDescription"]) == ("*", "", "Knee*")
    no_universal = _sent(Level.STUDY, query, manufacturer="GenericNoUniversalWildcard")
    assert (no_universal["PatientName"], no_universal["StudyDate"], no_universal["StudyDescription"]) == (
        "",
        "",
        "Knee*",
    )
    ge = _sent(Level.STUDY, {"PatientID": "12"}, manufacturer="GE")
    assert (ge["PatientID"], ge["StudyInstanceUID"], ge["AccessionNumber"]) == ("12", "*", "*")
    unpatched = _sent(Level.STUDY, query, manufacturer="GenericNoUniversalWildcard", normalize=False)
    assert unpatched["PatientName"] == "*"


def test_text_in_the_configured_character_set() -> None:
    sent = _sent(Level.PATIENT, {"PatientName": "Müller*"}, character_set="ISO_IR 192")
    assert (sent["SpecificCharacterSet"], str(sent["PatientName"])) == ("ISO_IR 192", "Müller*")
