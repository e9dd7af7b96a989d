"""Whole studies uploaded over REST, and the Orthanc IDs of what they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydicom.uid import generate_uid

from .datasets import make_dicom
from .rest import upload


@dataclass
class Study:
    patient: str
    study: str
    series: dict[str, list[str]]  # series ID -> its instances, in upload order

    @property
    def instances(self) -> list[str]:
        return [i for instances in self.series.values() for i in instances]


async def upload_study(
    http: httpx.AsyncClient, *, patient: str = "PAT", series: int = 2, per_series: int = 2, **tags: Any
) -> Study:
    """A study of ``series`` x ``per_series`` CT instances of ``patient``, ``tags`` in each."""
    study_uid = generate_uid()
    answers = []
    for _ in range(series):
        series_uid = generate_uid()
        for number in range(1, per_series + 1):
            data = make_dicom(
                patient_id=patient, study_uid=study_uid, series_uid=series_uid, instance_number=number, **tags
            )
            answers.append(await upload(http, data))
    by_series: dict[str, list[str]] = {}
    for answer in answers:
        by_series.setdefault(answer["ParentSeries"], []).append(answer["ID"])
    return Study(answers[0]["ParentPatient"], answers[0]["ParentStudy"], by_series)
