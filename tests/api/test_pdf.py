"""GET /instances/{id}/pdf: the encapsulated document of Encapsulated PDF instances only."""

from __future__ import annotations

import httpx
import pydicom
import pytest
from pydicom.uid import EncapsulatedPDFStorage as ENCAPSULATED_PDF_STORAGE

from node.dicom.create import extract_pdf
from tests.support.datasets import SHARED_TESTDATA, make_dataset, to_bytes
from tests.support.rest import upload

SAMPLE_PDF = SHARED_TESTDATA / "sample-pdf.dcm"


def pdf_dataset(document: bytes, mime: str = "application/pdf") -> pydicom.Dataset:
    ds = make_dataset(modality="OT", instance_number=None)
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.MIMETypeOfEncapsulatedDocument = mime
    ds.add_new(0x00420011, "OB", document)
    return ds


@pytest.mark.skipif(not SAMPLE_PDF.exists(), reason=f"shared test data not found: {SAMPLE_PDF}")
async def test_sample_pdf_from_a_scanner_archive(http: httpx.AsyncClient) -> None:
    data = SAMPLE_PDF.read_bytes()
    document = pydicom.dcmread(SAMPLE_PDF).EncapsulatedDocument
    instance = (await upload(http, data))["ID"]
    answer = await http.get(f"/instances/{instance}/pdf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-") and answer.content.endswith(b"%%EOF\n")
    assert answer.content == document[:-1] and document[-1:] == b"\0"  # the pad byte is dropped


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (b"%PDF-1.4\n%%EOF\n\0", b"%PDF-1.4\n%%EOF\n"),
        (b"%PDF-1.4\n%%EOF \n", b"%PDF-1.4\n%%EOF \n"),
        (b"%PDF-1.4\r\n%%EOF\r\n", b"%PDF-1.4\r\n%%EOF\r\n"),
        (b"%PDF-1.4\n%%%EOF ", b"%PDF-1.4\n%%%EOF"),
        (b"%PDF-1.4\n%%EOF", b"%PDF-1.4\n%%EOF"),  # even length: Orthanc would cut the F
    ],
    ids=["nul-pad", "lf", "crlf", "space-pad", "no-eol"],
)
async def test_trailing_pad_byte(http: httpx.AsyncClient, stored: bytes, expected: bytes) -> None:
    instance = (await upload(http, to_bytes(pdf_dataset(stored))))["ID"]
    assert (await http.get(f"/instances/{instance}/pdf")).content == expected


async def test_no_pdf_is_an_empty_404(http: httpx.AsyncClient) -> None:
    not_pdf_class = make_dataset()
    not_pdf_class.MIMETypeOfEncapsulatedDocument = "application/pdf"
    not_pdf_class.add_new(0x00420011, "OB", b"%PDF-1.4\n")
    for ds in (make_dataset(), pdf_dataset(b"<xml/>", mime="text/xml"), not_pdf_class):
        instance = (await upload(http, to_bytes(ds)))["ID"]
        answer = await http.get(f"/instances/{instance}/pdf")
        assert answer.status_code == 404 and answer.content == b""
    answer = await http.get("/instances/nope/pdf")
    assert answer.status_code == 404 and answer.content == b""


def test_extract_pdf_without_document() -> None:
    ds = pdf_dataset(b"%PDF-1.4\n")
    del ds.EncapsulatedDocument
    assert extract_pdf(ds) is None
