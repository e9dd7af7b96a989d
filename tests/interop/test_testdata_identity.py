"""Real scanner files get the same IDs and main tags from us as from Orthanc 1.10.1.

The reference (tests/data/orthanc_reference.json) was recorded by
bench/orthanc_reference.py against the real Orthanc binary; here the same files
are uploaded, in the same order, to our node and every answer is compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.datasets import SHARED_TESTDATA, make_dicom, needs_testdata

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "orthanc_reference.json").read_text(encoding="utf-8"))
LEVELS = (("Patient", "patients", "ParentPatient"), ("Study", "studies", "ParentStudy"))
LEVELS += (("Series", "series", "ParentSeries"), ("Instance", "instances", "ID"))
UPLOAD_KEYS = ("Status", "ID", "ParentPatient", "ParentStudy", "ParentSeries")

# (file, tag name) -> why we deliberately answer differently.
KNOWN_DIFFERENCES = {
    ("Encodings/DavidClunie/SCSH32", "PatientName"): (
        "with 'ISO 2022 IR 13\\ISO 2022 IR 87', Orthanc 1.10.1 drops the escape sequences and shows "
        "the JIS X 0208 bytes as ASCII; we decode the kanji, as Orthanc itself does for SCSH31"
    ),
}

async def _upload_all(http: httpx.AsyncClient) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Every file Orthanc was sent, in the order it received them."""
    answers: dict[str, dict[str, Any]] = {}
    refused: dict[str, int] = {}
    for relative in sorted([*REFERENCE["Files"], *REFERENCE["Rejected"]]):
        answer = await http.post("/instances", content=(SHARED_TESTDATA / relative).read_bytes())
        if answer.status_code == 200:
            answers[relative] = answer.json()
        else:
            refused[relative] = answer.status_code
    return answers, refused


def _differences(expected: dict[str, Any], actual: dict[str, Any], file: str, where: str) -> list[str]:
    out = []
    for key in sorted(set(expected) | set(actual)):
        theirs, ours = expected.get(key, "<absent>"), actual.get(key, "<absent>")
        if theirs != ours and (file, key) not in KNOWN_DIFFERENCES:
            out.append(f"{file} {where}.{key}: Orthanc {theirs!r}, ours {ours!r}")
    return out


@needs_testdata
async def test_same_ids_tags_and_counts_as_orthanc(http: httpx.AsyncClient) -> None:
    answers, refused = await _upload_all(http)
    problems = _differences(REFERENCE["Rejected"], refused, "", "refused files")
    for relative, expected in REFERENCE["Files"].items():
        answer = answers.get(relative)
        if answer is None:
            continue  # already listed with the refused files
        problems += _differences(
            {k: expected[k] for k in UPLOAD_KEYS}, {k: answer[k] for k in UPLOAD_KEYS}, relative, "upload"
        )
        for title, plural, key in LEVELS:
            resource = (await http.get(f"/{plural}/{answer[key]}")).json()
            problems += _differences(expected[title]["MainDicomTags"], resource["MainDicomTags"], relative, title)
            if title == "Study":
                problems += _differences(
                    expected[title]["PatientMainDicomTags"], resource["PatientMainDicomTags"], relative, "Study.Patient"
                )
    statistics = (await http.get("/statistics")).json()
    problems += _differences(REFERENCE["Counts"], {k: statistics[k] for k in REFERENCE["Counts"]}, "", "statistics")
    assert not problems, f"{len(problems)} differences from Orthanc:\n" + "\n".join(problems)


@needs_testdata
async def test_deeply_nested_sequence_is_refused(http: httpx.AsyncClient) -> None:
    """This file crashes Orthanc 1.10.1; we answer 400 and keep serving."""
    (name,) = REFERENCE["Excluded"]
    answer = await http.post("/instances", content=(SHARED_TESTDATA / name).read_bytes())
    assert answer.status_code == 400
    assert answer.json()["OrthancStatus"] == 15
    assert (await http.get("/statistics")).json()["CountInstances"] == 0
    assert (await http.get("/system")).status_code == 200


# DICOM identifiers -> Orthanc IDs, as real Orthanc computed them for files of the test data
# (Phenix, ColorTestMalaterre, TransferSyntaxes/1.2.840.10008.1.2.4.50): no test data needed.
KNOWN_PAIRS = [
    (
        ("Vafk,T,6", "2.16.840.1.113669.632.20.1211.10000098591", "1.2.840.113704.1.111.5692.1127828999.2",
         "1.2.840.113704.7.1.1.6632.1127829031.2"),
        ("2f74083e-9b042648-10edac14-b26950f8-f82ec3a0", "49974143-ec23cb52-6b2a1c46-14d5daa0-0822ce1a",
         "37836232-d13a2350-fa1dedc5-962b31aa-010f8e52", "6582b1c0-292ad5ab-ba0f088f-f7a1766f-9a29a54f"),
    ),
    (
        ("", "1.2.826.0.1.3680043.2.1125.3188809812631103481511202817111514545",
         "1.2.826.0.1.3680043.2.1125.8664714685565466411741001882184353009",
         "1.3.6.1.4.35045.18261995305699781737780109724229932137"),
        ("da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709", "0c62fe81-16340104-03c4294f-c2b94187-2b07e2fa",
         "473a4354-eb20df2e-7161c188-0a497c4f-1bda13a6", "322b315a-50cfd8f5-3d2c6541-489df116-4b772350"),
    ),
    (
        ("00/03/29:115116", "1.2.840.113663.1298.6234813.1.298.20000329.1115122",
         "1.2.840.113663.1298.6234813.2.299.20000329.1115132", "1.2.840.113663.1298.1.3.715.20000329.1115326"),
        ("59076767-daecd31b-f837a6d7-fab38fbe-0b9fbfa5", "d387c1b9-0c8909bf-f045b433-0338e6dd-de52ae9c",
         "375a34d0-1babcc73-cefabfcb-8347f7c8-c85396a2", "f5a85d80-457e251b-7cd9912b-cc47f2e7-cdc5fa6e"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("dicom_ids", "orthanc_ids"), KNOWN_PAIRS)
async def test_known_identifier_pairs(
    http: httpx.AsyncClient, dicom_ids: tuple[str, ...], orthanc_ids: tuple[str, ...]
) -> None:
    patient, study, series, sop = dicom_ids
    data = make_dicom(patient_id=patient, study_uid=study, series_uid=series, sop_uid=sop)
    answer = (await http.post("/instances", content=data)).json()
    assert (answer["ParentPatient"], answer["ParentStudy"], answer["ParentSeries"], answer["ID"]) == orthanc_ids
