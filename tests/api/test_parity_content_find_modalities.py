"""/tools/find with ModalitiesInStudy, as Orthanc 1.10.1 answers it (checked with the same studies).

At study level a study matches when one of its series has one of the modalities asked
(a list, whose items may hold wildcards); at the other levels nothing matches. Two
patients sharing a PatientID under different names stay apart at study level: each
study is matched on the name its own files give.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.support.datasets import make_dataset
from tests.support.rest import post, upload


async def found(http: httpx.AsyncClient, level: str, query: dict[str, str]) -> list[str]:
    answer = await post(http, "/tools/find", {"Level": level, "Query": query, "Expand": True})
    assert answer.status_code == 200, answer.text
    studies: list[dict[str, Any]] = answer.json()
    return sorted(s.get("PatientMainDicomTags", s["MainDicomTags"]).get("PatientName", s["ID"]) for s in studies)


@pytest.fixture
async def studies(http: httpx.AsyncClient) -> None:
    """ALPHA: one CT study; BETA (same PatientID): one study with an MR and a CT series; GAMMA: US."""
    alpha, beta, gamma = generate_uid(), generate_uid(), generate_uid()
    for name, patient, study, modality in (
        ("ALPHA^A", "SHARED", alpha, "CT"),
        ("BETA^B", "SHARED", beta, "MR"),
        ("BETA^B", "SHARED", beta, "CT"),
        ("GAMMA^C", "OTHER", gamma, "US"),
    ):
        await upload(http, make_dataset(patient_id=patient, patient_name=name, study_uid=study, modality=modality))


@pytest.mark.parametrize(
    ("modalities", "names"),
    [
        ("CT", ["ALPHA^A", "BETA^B"]),
        ("MR", ["BETA^B"]),
        ("CT\\US", ["ALPHA^A", "BETA^B", "GAMMA^C"]),
        ("C*", ["ALPHA^A", "BETA^B"]),
        ("ct", ["ALPHA^A", "BETA^B"]),  # case-insensitive by default
        ("XA", []),
    ],
)
async def test_modalities_in_study_at_study_level(
    http: httpx.AsyncClient, studies: None, modalities: str, names: list[str]
) -> None:
    assert await found(http, "Study", {"ModalitiesInStudy": modalities}) == names


async def test_modalities_in_study_matches_nothing_at_other_levels(http: httpx.AsyncClient, studies: None) -> None:
    for level in ("Patient", "Series", "Instance"):
        assert await found(http, level, {"ModalitiesInStudy": "CT"}) == []


async def test_patients_sharing_an_id_are_told_apart_by_name(http: httpx.AsyncClient, studies: None) -> None:
    assert await found(http, "Study", {"PatientID": "SHARED", "PatientName": "BETA*"}) == ["BETA^B"]
    assert await found(http, "Study", {"PatientName": "ALPHA^A", "ModalitiesInStudy": "MR"}) == []
    assert len(await found(http, "Series", {"PatientName": "BETA^B"})) == 2
    patients = await found(http, "Patient", {"PatientID": "SHARED"})
    assert patients == ["ALPHA^A"]  # the patient keeps the name of its first instance
