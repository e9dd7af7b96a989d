"""Scenarios of the resource routes: lists, one resource, its children and parents, statistics,
shared tags, modules, headers, the tags of every instance, and /system."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, delete, get, upload
from tests.support.compat_data import LATIN1_PATIENT, OTHER_STUDY, STUDY

# Orthanc lists the instances of several series in its database's internal order; ours by series,
# then in the order they came: the same instances.
CHILD_ORDER = "the instances of several series come in another order (the same set)"
UPLOAD_STUDY = tuple(upload(name, data) for name, data in STUDY.items())
PATIENT, STUDY_ID, SERIES, INSTANCE = "{ct1[ParentPatient]}", "{ct1[ParentStudy]}", "{ct1[ParentSeries]}", "{ct1[ID]}"

SCENARIOS = [
    Scenario(
        "system",
        (get("/system"),),
        deviations=(
            Deviation("GET /system", "/body/Product", "ours names itself beside the Orthanc version it answers as"),
            Deviation("GET /system", "/body/PluginsEnabled", "ours has no plugin mechanism"),
            Deviation("GET /system", "/body/HttpPort", "each server listens on its own free port"),
            Deviation("GET /system", "/body/DicomPort", "each server listens on its own free port"),
            Deviation("GET /system", "/body/Name", "the reference is named in its configuration file"),
        ),
    ),
    Scenario(
        "resource lists",
        (
            *UPLOAD_STUDY,
            upload("other", OTHER_STUDY),
            upload("latin1", LATIN1_PATIENT),
            get("/patients"),
            get("/studies"),
            get("/series"),
            get("/instances"),
        ),
    ),
    Scenario(
        "resource lists expanded",
        (
            *UPLOAD_STUDY,
            upload("latin1", LATIN1_PATIENT),
            get("/patients?expand"),
            get("/studies?expand"),
            get("/series?expand"),
            get("/instances?expand"),
        ),
    ),
    Scenario(
        "resource lists since and limit",
        (
            *UPLOAD_STUDY,
            get("/instances?since=1&limit=2"),
            get("/instances?since=0&limit=1&expand"),
            get("/instances?since=10&limit=2"),
            get("/instances?since=0&limit=0"),
        ),
    ),
    Scenario(
        "since without limit, limit without since",
        (*UPLOAD_STUDY, get("/series?since=1"), get("/instances?limit=0")),
    ),
    Scenario(
        "one resource at each level",
        (
            *UPLOAD_STUDY,
            get(f"/patients/{PATIENT}"),
            get(f"/studies/{STUDY_ID}"),
            get(f"/series/{SERIES}"),
            get(f"/instances/{INSTANCE}"),
        ),
    ),
    Scenario(
        "children and parents",
        (
            *UPLOAD_STUDY,
            get(f"/patients/{PATIENT}/studies"),
            get(f"/patients/{PATIENT}/series"),
            get(f"/patients/{PATIENT}/instances"),
            get(f"/studies/{STUDY_ID}/series"),
            get(f"/studies/{STUDY_ID}/instances"),
            get(f"/studies/{STUDY_ID}/patient"),
            get(f"/series/{SERIES}/instances"),
            get(f"/series/{SERIES}/study"),
            get(f"/series/{SERIES}/patient"),
            get(f"/instances/{INSTANCE}/series"),
            get(f"/instances/{INSTANCE}/study"),
            get(f"/instances/{INSTANCE}/patient"),
        ),
        deviations=(
            Deviation("GET /patients/{ct1[ParentPatient]}/instances", "/body", CHILD_ORDER, unordered=True),
            Deviation("GET /studies/{ct1[ParentStudy]}/instances", "/body", CHILD_ORDER, unordered=True),
        ),
    ),
    Scenario(
        "statistics",
        (
            *UPLOAD_STUDY,
            get("/statistics"),
            get(f"/patients/{PATIENT}/statistics"),
            get(f"/studies/{STUDY_ID}/statistics"),
            get(f"/series/{SERIES}/statistics"),
            get(f"/instances/{INSTANCE}/statistics"),
        ),
    ),
    Scenario(
        "shared tags and instances tags",
        (
            *UPLOAD_STUDY,
            get(f"/studies/{STUDY_ID}/shared-tags"),
            get(f"/studies/{STUDY_ID}/shared-tags?simplify"),
            get(f"/series/{SERIES}/shared-tags?short"),
            get(f"/series/{SERIES}/instances-tags"),
            get(f"/series/{SERIES}/instances-tags?simplify"),
            get(f"/patients/{PATIENT}/instances-tags?short"),
        ),
    ),
    Scenario(
        "modules",
        (
            *UPLOAD_STUDY,
            get(f"/patients/{PATIENT}/module"),
            get(f"/studies/{STUDY_ID}/module"),
            get(f"/studies/{STUDY_ID}/module?simplify"),
            get(f"/studies/{STUDY_ID}/module-patient"),
            get(f"/series/{SERIES}/module?short"),
            get(f"/instances/{INSTANCE}/module"),
        ),
    ),
    Scenario(
        "header",
        (
            *UPLOAD_STUDY,
            get(f"/instances/{INSTANCE}/header"),
            get(f"/instances/{INSTANCE}/header?simplify"),
            get(f"/instances/{INSTANCE}/header?short"),
        ),
    ),
    Scenario(
        "delete each level",
        (
            *UPLOAD_STUDY,
            upload("other", OTHER_STUDY),
            delete(f"/instances/{INSTANCE}"),
            delete("/series/{ct2[ParentSeries]}"),
            get("/series"),
            delete("/studies/{other[ParentStudy]}"),
            get("/studies"),
            delete(f"/patients/{PATIENT}"),
            get("/patients"),
            get("/statistics"),
        ),
    ),
    Scenario(
        "real files of several modalities",
        (
            upload("knee", "Knee/T1/IM-0001-0001.dcm"),
            upload("brainix", "Brainix/Flair/IM-0001-0001.dcm"),
            upload("ct", "DummyCT.dcm"),
            get("/patients?expand"),
            get("/studies?expand"),
            get("/series?expand"),
            get("/instances?expand"),
        ),
    ),
]
