"""Scenarios of /modify and /anonymize: the files they make, compared tag for tag (UIDs the
servers generate are compared by position: the same UID in the same places), and the resources
they create."""

from __future__ import annotations

from typing import Any

from tests.support.compat import Deviation, Scenario, Step, get, post, upload
from tests.support.compat_data import STUDY

INSTANCE = "/instances/{file[ID]}"
NEW_SERIES_ORDER = "the series of a modified study come in another order (the same series)"
OUR_FILE_META = "the files we write carry our own file meta header (implementation UID and name), a few bytes longer"
# Replacing PatientID takes Force, with both servers (see "anonymize with a new PatientID").
FIXED_PATIENT = {"PatientName": "ANON^PATIENT", "PatientID": "ANON-ID"}
ANONYMIZED = {"Replace": FIXED_PATIENT, "Force": True}


def modified_file(action: str, body: dict[str, Any]) -> Step:
    return post(f"{INSTANCE}/{action}", body, kind="dicom", name=f"{action} {body}")


def instance_rewrites(
    name: str, data: bytes | str, *bodies: dict[str, Any], action: str = "modify", **options: Any
) -> Scenario:
    """The files that ``action`` makes of one uploaded instance, for each request body."""
    steps = (upload("file", data), *(modified_file(action, body) for body in bodies))
    return Scenario(name, steps, generated=True, **options)


SCENARIOS = [
    instance_rewrites(
        "modify an instance",
        STUDY["ct1"],
        {"Replace": {"PatientName": "NEW^NAME", "StudyDescription": "changed"}, "Remove": ["InstitutionName"]},
        {"Replace": {"StudyInstanceUID": "1.2.3.4"}, "Force": True},
        {"Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"], "Force": True},
        {"Replace": {"PatientBirthDate": "19991231"}, "RemovePrivateTags": True},
        {"Replace": {"0010,1000": "other id"}, "Remove": ["0008,1032"]},
    ),
    instance_rewrites(
        "modify inside a sequence",
        STUDY["ct1"],
        {"Replace": {"ProcedureCodeSequence[0].CodeMeaning": "changed"}},
        {"Remove": ["ProcedureCodeSequence[0].CodeMeaning"]},
    ),
    instance_rewrites(
        "modify a whole sequence",
        STUDY["ct1"],
        {"Replace": {"ProcedureCodeSequence": [{"CodeValue": "P2", "CodeMeaning": "other"}]}},
        {"Remove": ["SourceImageSequence"]},
    ),
    instance_rewrites(
        "modify a real file",
        "DummyCT.dcm",
        {"Replace": {"PatientName": "X"}, "Keep": ["SOPInstanceUID"], "Force": True},
        {"Remove": ["ReferencedImageSequence"], "Replace": {"StationName": "S"}},
    ),
    instance_rewrites(
        "anonymize an instance",
        STUDY["ct1"],
        ANONYMIZED,
        {**ANONYMIZED, "Keep": ["StudyDescription", "SeriesDescription", "InstitutionName"]},
        {**ANONYMIZED, "DicomVersion": "2008"},
        {**ANONYMIZED, "KeepPrivateTags": True},
        action="anonymize",
    ),
    instance_rewrites(
        "anonymize a real file with nested sequences",
        "DummyCT.dcm",
        ANONYMIZED,
        action="anonymize",
    ),
    instance_rewrites(
        "anonymize private tags",
        "PrivateMDNTags.dcm",
        ANONYMIZED,
        {**ANONYMIZED, "KeepPrivateTags": True},
        action="anonymize",
        deviations=(
            Deviation(
                "*",
                "/body/dataset/????0000",
                "ours writes no group length elements (retired); Orthanc keeps those of the source, recomputed",
            ),
        ),
    ),
    instance_rewrites(
        "anonymize a structured report",
        "HierarchicalAnonymization/StructuredReports/IM631",
        ANONYMIZED,
        action="anonymize",
    ),
    Scenario(
        "modify a study",
        (
            *(upload(name, data) for name, data in STUDY.items()),
            post("/studies/{ct1[ParentStudy]}/modify", {"Replace": {"StudyDescription": "changed"}}, name="modify"),
            get("/studies/{modify[ID]}/series?expand"),  # first: the new series are named in a sorted list
            get("/studies/{modify[ID]}"),
            get("/patients/{modify[PatientID]}/studies"),
            get("/statistics"),
        ),
        generated=True,
        deviations=(
            Deviation("GET /studies/{modify[ID]}/series?expand", "/body", NEW_SERIES_ORDER, unordered=True),
            Deviation("GET /studies/{modify[ID]}", "/body/Series", NEW_SERIES_ORDER, unordered=True),
            Deviation("GET /patients/{modify[PatientID]}/studies", "/body/*/Series", NEW_SERIES_ORDER, unordered=True),
            Deviation("GET /statistics", "/body/Total*Size", OUR_FILE_META),
        ),
    ),
    Scenario(
        "anonymize a study",
        (
            *(upload(name, data) for name, data in STUDY.items()),
            post("/studies/{ct1[ParentStudy]}/anonymize", ANONYMIZED, name="anonymize"),
            get("/studies/{anonymize[ID]}"),
            get("/patients/{anonymize[PatientID]}"),
            get("/studies/{anonymize[ID]}/shared-tags?simplify"),
        ),
        generated=True,
    ),
    Scenario(
        "anonymize a patient's real study",
        (
            upload("cr", "HierarchicalAnonymization/2019-03-28/CR000000.dcm"),
            upload("pr", "HierarchicalAnonymization/2019-03-28/PR000000.dcm"),
            post("/patients/{cr[ParentPatient]}/anonymize", ANONYMIZED, name="anonymize"),
            get("/patients/{anonymize[ID]}/shared-tags?simplify"),
            get("/patients/{anonymize[ID]}/studies"),
        ),
        generated=True,
    ),
    instance_rewrites(
        "anonymize with a new PatientID",
        STUDY["ct1"],
        {"Replace": FIXED_PATIENT},
        action="anonymize",
    ),
    Scenario(
        "modify errors",
        (
            upload("file", STUDY["ct1"]),
            post(f"{INSTANCE}/modify", {"Replace": {"SOPInstanceUID": "1.2.3"}}),
            post(f"{INSTANCE}/modify", {"Replace": {"NoSuchTag": "x"}}),
            post(f"{INSTANCE}/modify", {"Remove": "PatientName"}),
            post(f"{INSTANCE}/modify", "not json", name="modify with a bad body"),
            post("/studies/{file[ParentStudy]}/modify", {"Replace": {"PatientID": "other"}}),
            post(f"{INSTANCE}/anonymize", {"Keep": ["NoSuchTag"]}),
            post(f"{INSTANCE}/anonymize", {"DicomVersion": "1999"}),
        ),
    ),
]
