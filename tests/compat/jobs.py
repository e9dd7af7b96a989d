"""Scenarios of jobs: what submitting answers, the shape of /jobs/{id} once done, its outputs,
and the errors of the jobs routes."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, delete, get, job_done, post, upload
from tests.support.compat_data import STUDY

from .archives import ZIP_SIZE

UPLOAD_STUDY = tuple(upload(name, data) for name, data in STUDY.items())
JOB = "/jobs/{submit[ID]}"
LATER_DELETE = "ours has DELETE /jobs/{id} of later Orthanc versions (1.10.1 answers 405): an unknown job is a 404"

SCENARIOS = [
    Scenario(
        "asynchronous modify job",
        (
            *UPLOAD_STUDY,
            post(
                "/studies/{ct1[ParentStudy]}/modify",
                {"Replace": {"StudyDescription": "x"}, "Asynchronous": True},
                name="submit",
            ),
            get(JOB, until=job_done),
            get(f"{JOB}?expand"),
        ),
        generated=True,
    ),
    Scenario(
        "asynchronous anonymize job",
        (
            *UPLOAD_STUDY,
            post(
                "/series/{ct1[ParentSeries]}/anonymize",
                {"Replace": {"PatientName": "A", "PatientID": "A"}, "Force": True, "Asynchronous": True, "Priority": 3},
                name="submit",
            ),
            get(JOB, until=job_done),
        ),
        generated=True,
    ),
    Scenario(
        "finished job actions",
        (
            *UPLOAD_STUDY,
            post("/studies/{ct1[ParentStudy]}/archive", {"Asynchronous": True}, name="submit"),
            get(JOB, until=job_done),
            post(f"{JOB}/pause", {}),
            post(f"{JOB}/cancel", {}),
            post(f"{JOB}/resume", {}),
            get(f"{JOB}/nothing"),
        ),
        deviations=(ZIP_SIZE,),
    ),
    Scenario(
        "jobs errors",
        (
            get("/jobs/nothing"),
            post("/jobs/nothing/cancel", {}),
            post("/jobs/nothing/pause", {}),
            delete("/jobs/nothing"),
            get("/jobs/nothing/archive"),
            post("/studies/nothing/archive", {"Asynchronous": "yes"}, name="archive with a bad flag"),
        ),
        deviations=(
            Deviation("DELETE /jobs/nothing", "/status", LATER_DELETE),
            Deviation("DELETE /jobs/nothing", "/body", LATER_DELETE),
        ),
    ),
]
