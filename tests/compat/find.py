"""Scenarios of /tools/find and /tools/lookup."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, Step, post, upload
from tests.support.compat_data import LATIN1_PATIENT, OTHER_STUDY, SERIES_UIDS, STUDY, STUDY_UID

CORPUS = (
    *(upload(name, data) for name, data in STUDY.items()),
    upload("other", OTHER_STUDY),
    upload("latin1", LATIN1_PATIENT),
)


# Orthanc answers in the order of its SQL lookup; ours in the index's order: the same resources.
ANY_ORDER = Deviation("*", "/body", "the answers of a lookup come in another order (the same set)", unordered=True)


def find(body: dict[str, object]) -> Step:
    return post("/tools/find", body, name=f"find {body}")


SCENARIOS = [
    Scenario(
        "find at each level",
        (
            *CORPUS,
            find({"Level": "Patient", "Query": {}}),
            find({"Level": "Study", "Query": {"PatientID": "COMPAT1"}}),
            find({"Level": "Series", "Query": {"Modality": "MR"}}),
            find({"Level": "Instance", "Query": {"SOPInstanceUID": "*.1.1.*"}}),
            find({"Level": "Study", "Query": {"PatientName": "doe*"}, "Expand": True}),
            find({"Level": "Patient", "Query": {"PatientName": "MÜLLER*"}, "Expand": True}),
        ),
    ),
    Scenario(
        "find options",
        (
            *CORPUS,
            find({"Level": "Instance", "Query": {}, "Limit": 2, "Since": 1}),
            find({"Level": "Study", "Query": {"StudyDate": "20230101-"}, "Expand": True}),
            find({"Level": "Study", "Query": {"StudyDate": "-20230401"}}),
            find({"Level": "Study", "Query": {"PatientName": "DOE^jane"}, "CaseSensitive": True}),
            find({"Level": "Study", "Query": {"PatientName": "DOE^jane"}, "CaseSensitive": False}),
            find({"Level": "Series", "Query": {"SeriesDescription": "series ?"}, "Expand": True}),
            find({"Level": "Study", "Query": {"AccessionNumber": "ACC1\\ACC2"}}),
            find({"Level": "Study", "Query": {}, "RequestedTags": ["PatientName", "StudyDate"], "Expand": True}),
            find({"Level": "Instance", "Query": {"InstanceNumber": "2"}, "Expand": True, "Short": True}),
        ),
        deviations=(ANY_ORDER,),
    ),
    Scenario(
        "find with a study-level key on the study",
        (*CORPUS, find({"Level": "Study", "Query": {"ModalitiesInStudy": "MR"}})),
    ),
    Scenario(
        "find errors",
        (
            *CORPUS,
            find({"Level": "Nothing", "Query": {}}),
            find({"Query": {}}),
            find({"Level": "Study"}),
            find({"Level": "Study", "Query": {"PatientName": 3}}),
            find({"Level": "Study", "Query": {}, "Limit": -1}),
            find({"Level": "Nothing", "Query": {}, "Since": -1}),
            find({"Level": "Study", "Query": {}, "Limit": -1, "Since": "x"}),
            find({"Level": "Study", "Query": {}, "Limit": True}),
            post("/tools/find", "[1, 2]", name="find with a list"),
        ),
    ),
    Scenario(
        "lookup",
        (
            *CORPUS,
            post("/tools/lookup", STUDY_UID, name="lookup a study"),
            post("/tools/lookup", "COMPAT1", name="lookup a patient"),
            post("/tools/lookup", SERIES_UIDS[0], name="lookup a series"),
            post("/tools/lookup", f"{SERIES_UIDS[0]}.1", name="lookup an instance"),
            post("/tools/lookup", "1.2.3.4", name="lookup nothing"),
            post("/tools/lookup", f"  {STUDY_UID}\n", name="lookup with spaces around"),
            post("/tools/lookup", "", name="lookup of nothing at all"),
            post("/tools/lookup", "doe^jane", name="lookup a patient name"),
        ),
    ),
]
