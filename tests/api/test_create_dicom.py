"""POST /tools/create-dicom: tags, parents, PDFs, images, series, and every bad input."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image
from pydicom.uid import EncapsulatedPDFStorage as ENCAPSULATED_PDF_STORAGE

from tests.support.datasets import make_dicom
from tests.support.rest import assert_error, file_of, upload

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")


def encode_image(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


async def create(http: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await http.post("/tools/create-dicom", json=body)


async def created_ok(http: httpx.AsyncClient, body: Any) -> dict[str, Any]:
    answer = await create(http, body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def simplified(http: httpx.AsyncClient, instance_id: str) -> dict[str, Any]:
    return (await http.get(f"/instances/{instance_id}/simplified-tags")).json()


async def upload_parent(http: httpx.AsyncClient) -> dict[str, Any]:
    """An instance whose patient, study and series tags a created instance inherits."""
    data = make_dicom(
        patient_id="PDF-PAT",
        patient_name="PDF^TEST",
        AccessionNumber="ACC42",
        SeriesDescription="original",
        BodyPartExamined="HEAD",
        StationName="ST1",
    )
    return await upload(http, data)


# --- PDF ----------------------------------------------------------------------------------


async def test_pdf_under_a_study_with_the_curl_recipe(http: httpx.AsyncClient) -> None:
    """`curl -d '{"Tags":…,"Parent":…,"Content":"data:application/pdf;base64,…"}'`: no JSON content type."""
    original = await upload_parent(http)
    study = original["ParentStudy"]
    body = json.dumps({"Tags": {"Modality": "CT"}, "Parent": study, "Content": data_uri("application/pdf", PDF)})
    answer = await http.post(
        "/tools/create-dicom", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert set(created) == {"ID", "ParentPatient", "ParentSeries", "ParentStudy", "Path", "Status"}
    assert created["ParentStudy"] == study and created["ParentPatient"] == original["ParentPatient"]
    assert created["Path"] == f"/instances/{created['ID']}" and created["Status"] == "Success"

    series = (await http.get(f"/studies/{study}")).json()["Series"]
    assert sorted(series) == sorted([original["ParentSeries"], created["ParentSeries"]])

    tags = await simplified(http, created["ID"])
    assert tags["SOPClassUID"] == ENCAPSULATED_PDF_STORAGE
    assert tags["Modality"] == "CT" and tags["ConversionType"] == "WSD"
    assert tags["MIMETypeOfEncapsulatedDocument"] == "application/pdf"
    assert tags["PatientName"] == "PDF^TEST" and tags["PatientID"] == "PDF-PAT"
    assert tags["AccessionNumber"] == "ACC42" and tags["StudyDescription"] == "Test study"
    assert "SeriesDescription" not in tags and "BodyPartExamined" not in tags  # series module not inherited
    assert "StationName" not in tags  # not in the copied modules
    assert "StudyDate" not in tags and len(tags["SeriesDate"]) == 8  # study dates come from the parent

    pdf = await http.get(f"/instances/{created['ID']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == PDF
    meta = (await file_of(http, created["ID"])).file_meta
    assert meta.MediaStorageSOPClassUID == ENCAPSULATED_PDF_STORAGE


@pytest.mark.parametrize("pdf", [PDF + b"%", PDF[:-1], PDF[:-2] + b"\r\n"], ids=["odd", "even-no-eol", "crlf"])
async def test_pdf_comes_back_byte_for_byte(http: httpx.AsyncClient, pdf: bytes) -> None:
    created = await created_ok(http, {"Tags": {}, "Content": data_uri("application/pdf", pdf)})
    stored = (await file_of(http, created["ID"])).EncapsulatedDocument
    assert len(stored) % 2 == 0 and stored[: len(pdf)] == pdf
    assert (await http.get(f"/instances/{created['ID']}/pdf")).content == pdf


async def test_pdf_defaults_only_fill_absent_tags(http: httpx.AsyncClient) -> None:
    body = {"Tags": {"ConversionType": "SD", "PatientName": "X"}, "Content": data_uri("application/pdf", PDF)}
    tags = await simplified(http, (await created_ok(http, body))["ID"])
    assert tags["ConversionType"] == "SD" and tags["Modality"] == "OT"


# --- Tags, parents, dates -------------------------------------------------------------------


async def test_tags_by_name_and_hex_and_generated_identifiers(http: httpx.AsyncClient) -> None:
    body = {
        "Tags": {"PatientName": "Love^Sarah", "0008,1030": "By hex", "OtherPatientIDsSequence": [{"PatientID": "a"}]}
    }
    created = await created_ok(http, body)
    ds = await file_of(http, created["ID"])
    assert ds.PatientName == "Love^Sarah" and ds.StudyDescription == "By hex"
    assert ds.OtherPatientIDsSequence[0].PatientID == "a"
    assert len(ds.PatientID) == 36  # a random UUID
    assert ds.SpecificCharacterSet == "ISO_IR 100"  # DefaultEncoding Latin1
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        assert len(ds.data_element(keyword).value) == 8
    assert "SOPClassUID" not in ds and ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


async def test_override_needs_force(http: httpx.AsyncClient) -> None:
    assert_error(await create(http, {"Tags": {"SOPInstanceUID": "1.2.3"}}), 400, 2020, "SOPInstanceUID")
    created = await created_ok(http, {"Tags": {"SOPInstanceUID": "1.2.3", "StudyInstanceUID": "1.2.4"}, "Force": True})
    ds = await file_of(http, created["ID"])
    assert ds.SOPInstanceUID == "1.2.3" and ds.StudyInstanceUID == "1.2.4"
    # PatientID and the dates may always be set.
    created = await created_ok(http, {"Tags": {"PatientID": "P1", "StudyDate": "20000101", "ContentTime": "101010"}})
    ds = await file_of(http, created["ID"])
    assert ds.PatientID == "P1" and ds.StudyDate == "20000101" and ds.ContentTime == "101010"


async def test_parent_series_inherits_all_modules(http: httpx.AsyncClient) -> None:
    original = await upload_parent(http)
    parent = original["ParentSeries"]
    assert_error(await create(http, {"Parent": parent, "Tags": {"Modality": "MR"}}), 400, 2020, "Modality")
    created = await created_ok(http, {"Parent": parent, "Tags": {"ImageComments": "hello"}})
    assert created["ParentSeries"] == parent
    tags = await simplified(http, created["ID"])
    assert tags["SeriesDescription"] == "original" and tags["BodyPartExamined"] == "HEAD" and tags["Modality"] == "CT"
    assert "SeriesDate" not in tags and "StudyDate" not in tags
    forced = await created_ok(http, {"Parent": parent, "Tags": {"PatientName": "NEW"}, "Force": True})
    assert (await simplified(http, forced["ID"]))["PatientName"] == "NEW"


async def test_parent_patient_makes_a_new_study(http: httpx.AsyncClient) -> None:
    original = await upload_parent(http)
    created = await created_ok(http, {"Parent": original["ParentPatient"], "Tags": {}})
    assert created["ParentPatient"] == original["ParentPatient"]
    assert created["ParentStudy"] != original["ParentStudy"]
    tags = await simplified(http, created["ID"])
    assert tags["PatientName"] == "PDF^TEST" and "AccessionNumber" not in tags and len(tags["StudyDate"]) == 8


async def test_specific_character_set(http: httpx.AsyncClient) -> None:
    body = {"Tags": {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Été^Ωmega"}}
    created = await created_ok(http, body)
    tags = await simplified(http, created["ID"])
    assert tags["SpecificCharacterSet"] == "ISO_IR 192" and tags["PatientName"] == "Été^Ωmega"


async def test_binary_tags_and_interpret_binary_tags(http: httpx.AsyncClient) -> None:
    payload = data_uri("application/octet-stream", b"\x00\x01\x02\x03")
    created = await created_ok(http, {"Tags": {"EncapsulatedDocument": payload}})
    raw = await http.get(f"/instances/{created['ID']}/content/0042-0011")
    assert raw.content == b"\x00\x01\x02\x03"
    created = await created_ok(http, {"Tags": {"EncapsulatedDocument": payload}, "InterpretBinaryTags": False})
    raw = await http.get(f"/instances/{created['ID']}/content/0042-0011")
    assert raw.content.rstrip(b"\0") == payload.encode("ascii")  # stored as written, padded to even


async def test_legacy_flat_body(http: httpx.AsyncClient) -> None:
    png = encode_image(Image.new("L", (2, 2), 7), "PNG")
    body = {"PatientName": "Legacy", "SOPInstanceUID": "1.2.3.4", "PixelData": data_uri("image/png", png)}
    created = await created_ok(http, body)
    ds = await file_of(http, created["ID"])
    assert ds.PatientName == "Legacy" and ds.SOPInstanceUID == "1.2.3.4"
    assert ds.Rows == 2 and ds.PixelData == b"\x07" * 4
    assert "ContentDate" not in ds and "SpecificCharacterSet" not in ds


# --- Images -------------------------------------------------------------------------------


def _gradient(mode: str, size: tuple[int, int] = (3, 2)) -> Image.Image:
    image = Image.new(mode, size)
    for x in range(size[0]):
        for y in range(size[1]):
            value = x * 40 + y * 7
            image.putpixel((x, y), (value, 255 - value, 9, 128)[: len(mode)] if mode in ("RGB", "RGBA") else value)
    return image


@pytest.mark.parametrize(
    ("mode", "photometric", "samples", "bits", "expected"),
    [
        ("L", "MONOCHROME2", 1, 8, lambda im: im.tobytes()),
        ("RGB", "RGB", 3, 8, lambda im: im.tobytes()),
        ("RGBA", "RGB", 3, 8, lambda im: im.convert("RGB").tobytes()),
        ("I;16", "MONOCHROME2", 1, 16, lambda im: im.tobytes()),
    ],
)
async def test_png_images(http: httpx.AsyncClient, mode, photometric, samples, bits, expected) -> None:
    image = _gradient(mode)
    body = {"Tags": {"SOPClassUID": SECONDARY_CAPTURE}, "Content": data_uri("image/png", encode_image(image, "PNG"))}
    ds = await file_of(http, (await created_ok(http, body))["ID"])
    assert (ds.Columns, ds.Rows) == (3, 2)
    assert ds.PhotometricInterpretation == photometric and ds.SamplesPerPixel == samples
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (bits, bits, bits - 1, 0)
    assert ("PlanarConfiguration" in ds) == (samples == 3)
    assert ds.PixelData[: len(expected(image))] == expected(image)
    assert ds.SOPClassUID == SECONDARY_CAPTURE and ds.file_meta.MediaStorageSOPClassUID == SECONDARY_CAPTURE


@pytest.mark.parametrize(("mode", "photometric"), [("L", "MONOCHROME2"), ("RGB", "RGB")])
async def test_jpeg_images(http: httpx.AsyncClient, mode: str, photometric: str) -> None:
    jpeg = encode_image(Image.new(mode, (16, 8), 200 if mode == "L" else (200, 10, 10)), "JPEG")
    ds = await file_of(http, (await created_ok(http, {"Tags": {}, "Content": data_uri("image/jpeg", jpeg)}))["ID"])
    assert (ds.Columns, ds.Rows, ds.PhotometricInterpretation) == (16, 8, photometric)
    decoded = Image.open(io.BytesIO(jpeg)).tobytes()
    assert ds.PixelData == decoded


async def test_given_photometric_interpretation_is_kept_for_gray(http: httpx.AsyncClient) -> None:
    png = encode_image(_gradient("L"), "PNG")
    body = {"Tags": {"PhotometricInterpretation": "MONOCHROME1"}, "Content": data_uri("image/png", png)}
    ds = await file_of(http, (await created_ok(http, body))["ID"])
    assert ds.PhotometricInterpretation == "MONOCHROME1"


async def test_series_from_a_content_array(http: httpx.AsyncClient) -> None:
    png = data_uri("image/png", encode_image(_gradient("L"), "PNG"))
    body = {
        "Tags": {"PatientName": "Series^Test", "Modality": "OT"},
        "Content": [png, {"Content": data_uri("application/pdf", PDF), "Tags": {"ImageComments": "second"}}],
    }
    answer = await created_ok(http, body)
    assert set(answer) == {"ID", "Path", "Status"} and answer["Path"] == f"/series/{answer['ID']}"
    series = (await http.get(f"/series/{answer['ID']}")).json()
    assert len(series["Instances"]) == 2 and series["ExpectedNumberOfInstances"] == 2
    assert series["Status"] == "Complete"
    datasets = sorted([await file_of(http, i) for i in series["Instances"]], key=lambda d: d.InstanceNumber)
    assert [d.InstanceNumber for d in datasets] == [1, 2] and [d.ImageIndex for d in datasets] == [1, 2]
    assert datasets[0].SOPInstanceUID != datasets[1].SOPInstanceUID
    assert "PixelData" in datasets[0] and datasets[1].ImageComments == "second"
    assert datasets[1].SOPClassUID == ENCAPSULATED_PDF_STORAGE


async def test_empty_content_array_makes_one_instance(http: httpx.AsyncClient) -> None:
    answer = await created_ok(http, {"Tags": {"PatientName": "A"}, "Content": []})
    assert answer["Path"] == f"/instances/{answer['ID']}"


# --- Bad input: Orthanc's error, nothing stored ----------------------------------------------

PNG_BYTES = encode_image(Image.new("L", (2, 2)), "PNG")
BAD_INPUTS = [
    ([], 400, 8, None),
    ({"Tags": []}, 400, 8, None),
    ({"Tags": {}, "Force": "yes"}, 400, 8, None),
    ({"Tags": {}, "PrivateCreator": 3}, 400, 8, None),
    ({"Tags": {}, "InterpretBinaryTags": 1}, 400, 8, None),
    ({"Tags": {"NotATag": "x"}}, 500, 27, None),
    ({"Tags": {"PatientName": 3}}, 400, 5, "Bad Parameter type for tag 0010,0010"),
    ({"Tags": {"OtherPatientIDsSequence": [3]}}, 400, 5, None),
    ({"PatientName": 3}, 400, 2019, None),
    ({"PatientName": "X", "Content": "x"}, 500, 27, None),  # legacy form: Content is no tag
    (
        {"Tags": {"Rows": "abc"}},
        400,
        15,
        'While creating a DICOM instance, tag (0028,0010) has out-of-range value: "abc"',
    ),
    (
        {"Tags": {"Rows": "70000"}},
        400,
        15,
        'While creating a DICOM instance, tag (0028,0010) has out-of-range value: "70000"',
    ),
    ({"Tags": {"PixelData": "x"}}, 400, 2021, None),
    ({"Tags": {"SOPInstanceUID": "1.2"}}, 400, 2020, "SOPInstanceUID"),
    ({"Tags": {"SpecificCharacterSet": "FOO"}}, 400, 3, "Unknown specific character set: FOO"),
    ({"Tags": {}, "Parent": "nope"}, 400, 2024, None),
    ({"Tags": {}, "Parent": 3}, 400, 2024, None),
    ({"Tags": {}, "Content": 3}, 400, 2023, None),
    ({"Tags": {}, "Content": "hello"}, 400, 15, None),
    ({"Tags": {}, "Content": "data:application/pdf;base64,%%%"}, 400, 15, None),
    ({"Tags": {}, "Content": "data:application/pdf," + PDF.decode()}, 400, 15, None),
    ({"Tags": {}, "Content": data_uri("application/pdf", b"hello")}, 400, 15, "Not a PDF file"),
    ({"Tags": {}, "Content": data_uri("image/jpeg", PNG_BYTES)}, 400, 15, None),
    ({"Tags": {}, "Content": data_uri("image/png", b"not a png")}, 400, 15, None),
    ({"Tags": {}, "Content": data_uri("text/plain", b"hi")}, 500, 2, None),
    ({"Tags": {}, "Content": [data_uri("image/png", PNG_BYTES), {"Tags": {}}]}, 400, 2022, None),
    ({"Tags": {}, "Content": [data_uri("image/png", PNG_BYTES), {"Content": 3}]}, 400, 2023, None),
    ({"Tags": {}, "Content": [data_uri("image/png", PNG_BYTES), data_uri("image/png", b"broken")]}, 400, 15, None),
    ({"Tags": {"EncapsulatedDocument": "data:application/octet-stream;base64,@@"}}, 400, 15, None),
    ({"Tags": {"0009,1001": "x"}}, 400, 8, None),  # a private tag and no creator anywhere
]


@pytest.mark.parametrize(("body", "status", "code", "details"), BAD_INPUTS)
async def test_bad_input_stores_nothing(http: httpx.AsyncClient, body: Any, status: int, code: int, details) -> None:
    assert_error(await create(http, body), status, code, details)
    assert (await http.get("/instances")).json() == []


async def test_body_that_is_not_json(http: httpx.AsyncClient) -> None:
    answer = await http.post("/tools/create-dicom", content=b"{not json")
    assert answer.status_code == 400 and answer.json()["OrthancStatus"] == 8  # as Orthanc 1.10.1


async def test_parent_that_is_an_instance(http: httpx.AsyncClient) -> None:
    original = await upload_parent(http)
    assert_error(await create(http, {"Tags": {}, "Parent": original["ID"]}), 400, 2025)
    assert (await http.get("/instances")).json() == [original["ID"]]


async def test_series_store_failure_removes_only_the_new_instances(http: httpx.AsyncClient) -> None:
    """The second file cannot be indexed (empty StudyInstanceUID): its error, and the first one is gone."""
    original = await upload_parent(http)
    png = data_uri("image/png", PNG_BYTES)
    body = {
        "Parent": original["ParentSeries"],
        "Tags": {},
        "Force": True,
        "Content": [png, {"Content": png, "Tags": {"StudyInstanceUID": ""}}],
    }
    details = "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"
    assert_error(await create(http, body), 400, 15, details)
    assert (await http.get("/instances")).json() == [original["ID"]]
    assert (await http.get(f"/series/{original['ParentSeries']}")).status_code == 200


async def test_empty_sop_instance_uid(http: httpx.AsyncClient) -> None:
    body = {"Tags": {"SOPInstanceUID": ""}, "Force": True}
    assert_error(await create(http, body), 400, 15, "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
