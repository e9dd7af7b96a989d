"""Scenarios of ZIP archives and DICOMDIR media: entry names, the instance in each entry, and the
records of the DICOMDIR."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, Step, get, job_done, post, upload
from tests.support.compat_data import LATIN1_PATIENT, OTHER_STUDY, STUDY

CORPUS = (*(upload(name, data) for name, data in STUDY.items()), upload("other", OTHER_STUDY))
ZIP_HEADERS = ("content-type", "content-disposition")
ZIP_SIZE = Deviation(
    "GET /jobs/{submit[ID]}",
    "/body/Content/ArchiveSize",
    "each server writes its own ZIP (headers, compression): the same entries, another size",
)
RECORDS = "/body/entries/DICOMDIR/records/*"
# Orthanc strips the letters outside ASCII from DICOMDIR records; ours keeps them, in UTF-8, which
# it declares in each record and in the DICOMDIR's own header.
NON_ASCII = "ours keeps the letters outside ASCII in DICOMDIR records (in UTF-8, declared); Orthanc strips them"
NON_ASCII_NAMES = (
    Deviation("*", f"{RECORDS}/PatientName", NON_ASCII),
    Deviation("*", f"{RECORDS}/SpecificCharacterSet", NON_ASCII),
    Deviation("*", "/body/entries/DICOMDIR/header/SpecificCharacterSet", NON_ASCII),
)
# A study without StudyTime gets, in its DICOMDIR record, the time the DICOMDIR is made: each
# server's own second.
MADE_AT = Deviation("*", f"{RECORDS}/StudyTime", "the time a DICOMDIR was made, where a study has none", volatile=True)


def archive(path: str) -> Step:
    return get(path, kind="zip", compared_headers=ZIP_HEADERS)


def created(tool: str, body: object) -> Step:
    return post(f"/tools/{tool}", body, kind="zip", compared_headers=ZIP_HEADERS, name=tool)


SCENARIOS = [
    Scenario(
        "archives of each level",
        (
            *CORPUS,
            archive("/patients/{ct1[ParentPatient]}/archive"),
            archive("/studies/{ct1[ParentStudy]}/archive"),
            archive("/series/{ct1[ParentSeries]}/archive"),
        ),
    ),
    Scenario(
        "media of each level",
        (
            *CORPUS,
            archive("/patients/{ct1[ParentPatient]}/media"),
            archive("/studies/{ct1[ParentStudy]}/media?extended"),
            archive("/series/{ct1[ParentSeries]}/media"),
        ),
        deviations=(MADE_AT,),
    ),
    Scenario(
        "archives of several resources",
        (
            *CORPUS,
            upload("latin1", LATIN1_PATIENT),
            created("create-archive", ["{ct1[ParentStudy]}", "{other[ID]}", "{latin1[ParentPatient]}"]),
            created("create-media", {"Resources": ["{ct1[ParentPatient]}", "{latin1[ParentPatient]}"]}),
            created("create-media-extended", ["{mr1[ParentSeries]}"]),
        ),
        deviations=(*NON_ASCII_NAMES, MADE_AT),
    ),
    Scenario(
        "media of real files",
        (
            upload("knee", "Knee/T1/IM-0001-0001.dcm"),
            upload("knee2", "Knee/T2/IM-0001-0001.dcm"),
            upload("pdf", "sample-pdf.dcm"),
            upload("arab", "Encodings/Lena-arabic.dcm"),
            created("create-media", ["{knee[ParentPatient]}", "{pdf[ParentPatient]}", "{arab[ParentPatient]}"]),
        ),
        deviations=NON_ASCII_NAMES,
    ),
    Scenario(
        "archive errors",
        (
            *CORPUS,
            post("/tools/create-archive", {"Resources": ["nothing"]}),
            post("/tools/create-archive", {"Resources": "x"}),
            post("/tools/create-archive", {}),
            get("/studies/nothing/archive"),
        ),
    ),
    Scenario(
        "asynchronous archive",
        (
            *CORPUS,
            post("/studies/{ct1[ParentStudy]}/archive", {"Asynchronous": True}, name="submit"),
            get("/jobs/{submit[ID]}", until=job_done),
            archive("/jobs/{submit[ID]}/archive"),
        ),
        deviations=(ZIP_SIZE,),
    ),
]
