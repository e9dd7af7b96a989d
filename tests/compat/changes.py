"""Scenarios of the change log: what each action logs, since/limit/last, and deletions."""

from __future__ import annotations

from tests.support.compat import Scenario, delete, get, put, upload
from tests.support.compat_data import OTHER_STUDY, STUDY

UPLOAD_STUDY = tuple(upload(name, data) for name, data in STUDY.items())

SCENARIOS = [
    Scenario(
        "changes of uploads",
        (
            *UPLOAD_STUDY,
            get("/changes"),
            get("/changes?limit=3"),
            get("/changes?since={seq[3]}&limit=4"),
            get("/changes?last"),
            get("/changes?limit=0"),
        ),
    ),
    Scenario(
        "changes of metadata and attachments",
        (
            upload("ct1", STUDY["ct1"]),
            put("/instances/{ct1[ID]}/metadata/Sample", "x"),
            put("/studies/{ct1[ParentStudy]}/attachments/1025", "x"),
            get("/changes?since={seq[4]}"),
        ),
    ),
    Scenario(
        "changes after a deletion",
        (
            *UPLOAD_STUDY,
            upload("other", OTHER_STUDY),
            delete("/studies/{other[ParentStudy]}"),
            get("/changes"),
            delete("/patients/{ct1[ParentPatient]}"),
            get("/changes"),
        ),
    ),
    Scenario(
        "changes cleared",
        (upload("ct1", STUDY["ct1"]), delete("/changes"), get("/changes"), get("/changes?last")),
    ),
    Scenario(
        "exports log",
        (get("/exports"), delete("/exports"), get("/exports?limit=1")),
    ),
]
