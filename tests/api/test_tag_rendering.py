"""Values and names read the same in MainDicomTags and /tags, as Orthanc 1.10.1 shows them.

The expected values were checked against the real Orthanc 1.10.1 with the same files.
Values are given as bytes so that pydicom writes them exactly as they stand.
"""

from __future__ import annotations

import io

import httpx
import pydicom
import pytest
from pydicom.dataelem import DataElement

from node.dicom.json_view import TagFormat, dataset_to_json
from tests.support.datasets import make_dataset, to_bytes
from tests.support.rest import upload

# Over-long values are the point of some files here.
pytestmark = pytest.mark.filterwarnings("ignore:The value length:UserWarning")


def raw_dicom(charset: str, **values: tuple[str, bytes]) -> bytes:
    """An instance whose ``values`` (keyword -> (VR, bytes)) are written byte for byte."""
    dataset = make_dataset(SpecificCharacterSet=charset)
    for keyword, (vr, value) in values.items():
        dataset.add(DataElement(pydicom.datadict.tag_for_keyword(keyword), vr, value))
    return to_bytes(dataset)


async def test_main_tags_leave_out_values_over_256_bytes_of_utf8(http: httpx.AsyncClient) -> None:
    """Orthanc counts the UTF-8 bytes: 128 `é` (256 bytes) stay, 129 (258 bytes) go."""
    data = raw_dicom(
        "ISO_IR 100",
        StudyDescription=("LO", "é".encode("latin-1") * 129),
        InstitutionName=("LO", "é".encode("latin-1") * 128),
        StudyID=("SH", b"1" * 256),
        SeriesDescription=("LO", b"S" * 257),
    )
    ids = await upload(http, data)
    study = (await http.get(f"/studies/{ids['ParentStudy']}")).json()["MainDicomTags"]
    assert "StudyDescription" not in study
    assert study["InstitutionName"] == "é" * 128
    assert study["StudyID"] == "1" * 256
    series = (await http.get(f"/series/{ids['ParentSeries']}")).json()["MainDicomTags"]
    assert "SeriesDescription" not in series
    tags = (await http.get(f"/instances/{ids['ID']}/tags")).json()
    assert tags["0008,1030"] == {"Name": "StudyDescription", "Type": "TooLong", "Value": None}


async def test_iso_ir_13_shows_yen_signs_in_every_view(http: httpx.AsyncClient) -> None:
    data = raw_dicom(
        "ISO_IR 13",
        StudyDescription=("LO", b"A\\B~C"),
        ImageType=("CS", b"ORIGINAL\\PRIMARY"),
        PatientName=("PN", b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3"),
    )
    ids = await upload(http, data)
    study = (await http.get(f"/studies/{ids['ParentStudy']}")).json()
    assert study["MainDicomTags"]["StudyDescription"] == "A\u00a5B\u203eC"
    assert study["PatientMainDicomTags"]["PatientName"] == "ﾔﾏﾀﾞ^ﾀﾛｳ"
    simplified = (await http.get(f"/instances/{ids['ID']}/simplified-tags")).json()
    assert simplified["StudyDescription"] == "A\u00a5B\u203eC"
    assert simplified["ImageType"] == "ORIGINAL\u00a5PRIMARY"
    assert simplified["PatientName"] == "ﾔﾏﾀﾞ^ﾀﾛｳ"


async def test_retired_tags_are_named_as_orthanc_names_them(http: httpx.AsyncClient) -> None:
    data = raw_dicom(
        "ISO_IR 100",
        NetworkID=("AE", b"NETID "),
        ImagePosition=("DS", b"1\\2\\3 "),
        OtherPatientIDs=("LO", b"OTHER1"),  # retired, but Orthanc keeps its plain name
    )
    ids = await upload(http, data)
    tags = (await http.get(f"/instances/{ids['ID']}/tags")).json()
    assert tags["0008,1000"]["Name"] == "RETIRED_NetworkID"
    assert tags["0020,0030"]["Name"] == "RETIRED_ImagePosition"
    assert tags["0010,1000"]["Name"] == "OtherPatientIDs"
    simplified = (await http.get(f"/instances/{ids['ID']}/simplified-tags")).json()
    assert simplified["RETIRED_NetworkID"] == "NETID"
    patient = (await http.get(f"/patients/{ids['ParentPatient']}")).json()["MainDicomTags"]
    assert patient["OtherPatientIDs"] == "OTHER1"
    # The names given are accepted back in requests.
    found = await http.post("/tools/find", json={"Level": "Instance", "Query": {"RETIRED_NetworkID": "NETID"}})
    assert found.json() == [ids["ID"]]


async def test_person_names_keep_empty_trailing_groups_in_main_tags(http: httpx.AsyncClient) -> None:
    data = raw_dicom("ISO_IR 192", PatientName=("PN", "Wang^XiaoDong=王^小東=".encode()))
    ids = await upload(http, data)
    patient = (await http.get(f"/patients/{ids['ParentPatient']}")).json()["MainDicomTags"]
    assert patient["PatientName"] == "Wang^XiaoDong=王^小東="


def test_tag_json_of_a_dataset_read_raw_shows_values_as_written() -> None:
    """The same rendering as main tags: the `=` of empty name groups, and AE spaces but the last ones."""
    data = raw_dicom(
        "ISO_IR 192",
        PatientName=("PN", "Wang^XiaoDong=王^小東=".encode()),
        RetrieveAETitle=("AE", b" AE1  \\ AE2 "),
    )
    tags = dataset_to_json(pydicom.dcmread(io.BytesIO(data)), TagFormat.SHORT)
    assert tags["0010,0010"] == "Wang^XiaoDong=王^小東="
    assert tags["0008,0054"] == " AE1  \\ AE2"


NAMES_AS_WRITTEN = [
    ("ISO_IR 192", "Wang^XiaoDong=王^小東=".encode(), "Wang^XiaoDong=王^小東="),  # read from the bytes
    (  # with escape sequences: decoded by pydicom
        "ISO 2022 IR 6\\ISO 2022 IR 87",
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=",
        "Yamada^Tarou=山田^太郎=",
    ),
]


@pytest.mark.parametrize(("charset", "written", "shown"), NAMES_AS_WRITTEN)
async def test_tags_of_a_stored_instance_show_values_as_written(
    http: httpx.AsyncClient, charset: str, written: bytes, shown: str
) -> None:
    """/tags reads the stored file raw, as the main tags were, so both show what Orthanc shows."""
    data = raw_dicom(charset, PatientName=("PN", written), RetrieveAETitle=("AE", b" AE1  \\ AE2 "))
    ids = await upload(http, data)
    tags = (await http.get(f"/instances/{ids['ID']}/tags", params={"short": ""})).json()
    patient = (await http.get(f"/patients/{ids['ParentPatient']}")).json()["MainDicomTags"]
    assert tags["0010,0010"] == patient["PatientName"] == shown
    assert tags["0008,0054"] == " AE1  \\ AE2"
