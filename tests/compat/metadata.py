"""Scenarios of metadata and attachments: list, read, write, delete, at each level."""

from __future__ import annotations

from tests.support.compat import Scenario, delete, get, post, put, upload
from tests.support.compat_data import STUDY

INSTANCE, STUDY_ID = "/instances/{ct1[ID]}", "/studies/{ct1[ParentStudy]}"
# The metadata every stored instance gets; the ones that say when (ReceptionDate, LastUpdate)
# are normalized, the others must match.
SYSTEM_METADATA = ("IndexInSeries", "Origin", "RemoteAET", "SopClassUid", "TransferSyntax", "ReceptionDate")

SCENARIOS = [
    Scenario(
        "metadata of an instance",
        (
            upload("ct1", STUDY["ct1"]),
            get(f"{INSTANCE}/metadata"),
            get(f"{INSTANCE}/metadata?expand"),
            *(get(f"{INSTANCE}/metadata/{name}", kind="text") for name in SYSTEM_METADATA),
            get(f"{INSTANCE}/metadata/RemoteIP", kind="text"),
            get(f"{INSTANCE}/metadata/CalledAET", kind="text"),
            get(f"{STUDY_ID}/metadata?expand"),
            get("/series/{ct1[ParentSeries]}/metadata?expand"),
            get("/patients/{ct1[ParentPatient]}/metadata?expand"),
        ),
    ),
    Scenario(
        "user metadata written and deleted",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{INSTANCE}/metadata/Sample", "hello"),
            get(f"{INSTANCE}/metadata/Sample", kind="text"),
            put(f"{STUDY_ID}/metadata/1025", "by number"),
            get(f"{STUDY_ID}/metadata/Other", kind="text"),
            get(f"{STUDY_ID}/metadata?expand"),
            put(f"{STUDY_ID}/metadata/2000", "free number"),
            get(f"{STUDY_ID}/metadata/2000", kind="text"),
            delete(f"{INSTANCE}/metadata/Sample"),
            get(f"{INSTANCE}/metadata/Sample"),
            delete(f"{INSTANCE}/metadata/Sample"),
            get(f"{INSTANCE}/metadata"),
        ),
    ),
    Scenario(
        "metadata errors",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{INSTANCE}/metadata/Unknown", "x"),
            put(f"{INSTANCE}/metadata/ReceptionDate", "x"),
            delete(f"{INSTANCE}/metadata/Origin"),
            put(f"{INSTANCE}/metadata/70000", "x"),
            get(f"{INSTANCE}/metadata/Nothing"),
            get("/instances/nothing/metadata"),
        ),
    ),
    Scenario(
        "attachments of an instance",
        (
            upload("ct1", STUDY["ct1"]),
            get(f"{INSTANCE}/attachments"),
            get(f"{INSTANCE}/attachments?full"),
            get(f"{INSTANCE}/attachments/dicom"),
            get(f"{INSTANCE}/attachments/dicom/info"),
            get(f"{INSTANCE}/attachments/dicom/size", kind="text"),
            get(f"{INSTANCE}/attachments/dicom/compressed-size", kind="text"),
            get(f"{INSTANCE}/attachments/dicom/md5", kind="text"),
            get(f"{INSTANCE}/attachments/dicom/compressed-md5", kind="text"),
            get(f"{INSTANCE}/attachments/dicom/is-compressed", kind="text"),
            get(f"{INSTANCE}/attachments/dicom/data", kind="bytes"),
            get(f"{INSTANCE}/attachments/dicom/compressed-data", kind="bytes"),
            post(f"{INSTANCE}/attachments/dicom/verify-md5", ""),
            get(f"{INSTANCE}/attachments/1", kind="none"),
        ),
    ),
    Scenario(
        "user attachments written and deleted",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{STUDY_ID}/attachments/1025", "some report", headers={"Content-Type": "text/plain"}),
            get(f"{STUDY_ID}/attachments"),
            get(f"{STUDY_ID}/attachments/1025/data", kind="text"),
            get(f"{STUDY_ID}/attachments/1025/info"),
            delete(f"{STUDY_ID}/attachments/1025"),
            get(f"{STUDY_ID}/attachments"),
        ),
    ),
    Scenario(
        "attachment named in UserContentType",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{STUDY_ID}/attachments/report", "%PDF-1.4 not really", headers={"Content-Type": "application/pdf"}),
            get(f"{STUDY_ID}/attachments"),
            get(f"{STUDY_ID}/attachments/report/info"),
            get(f"{STUDY_ID}/attachments/1030/data", kind="text"),
        ),
    ),
    Scenario(
        "attachment errors",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{STUDY_ID}/attachments/dicom", "x"),
            put(f"{STUDY_ID}/attachments/unknown", "x"),
            put(f"{STUDY_ID}/attachments/70000", "x"),
            delete(f"{INSTANCE}/attachments/dicom"),
            get(f"{STUDY_ID}/attachments/1025"),
            delete(f"{STUDY_ID}/attachments/1025"),
        ),
    ),
]
