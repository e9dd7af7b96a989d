"""Scenarios of failing requests: status, Orthanc's error body, and the headers that go with it;
and of the HTTP conventions around them (method override, compression, revisions)."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, Step, delete, get, post, put, upload
from tests.support.compat_data import STUDY

INSTANCE = "/instances/{ct1[ID]}"
NOT_A_TAG = (
    "a content path that is not a tag: Orthanc answers 500 Unknown DICOM tag (an internal error), ours 404 "
    "as for any path that names nothing"
)


def method_not_allowed(method: str, path: str) -> Step:
    return Step(method, path, compared_headers=("content-type", "allow"))


SCENARIOS = [
    Scenario(
        "unknown routes and resources",
        (
            get("/nothing"),
            get("/patients/nothing"),
            get("/studies/nothing/series"),
            get("/instances/nothing/tags"),
            delete("/series/nothing"),
            get("/instances/nothing/file", kind="bytes"),
            get("/instances/nothing/simplified-tags"),
            get("/instances/nothing/header"),
            get("/instances/nothing/content/0010-0010"),
            get("/series/nothing/statistics"),
            get("/patients/nothing/protected"),
        ),
    ),
    Scenario(
        "methods not allowed",
        (
            method_not_allowed("PUT", "/system"),
            method_not_allowed("DELETE", "/statistics"),
            method_not_allowed("POST", "/patients"),
            method_not_allowed("GET", "/tools/find"),
            method_not_allowed("PUT", "/instances"),
        ),
    ),
    Scenario(
        "bad uploads",
        (
            post("/instances", "not DICOM", name="upload text"),
            post("/instances", b"", name="upload nothing"),
            post("/instances", b"\0" * 128 + b"DICM" + b"\0" * 16, name="upload a truncated header"),
        ),
        deviations=(
            Deviation(
                "upload a truncated header",
                "/body/*",
                "both refuse a broken file with 400; Orthanc's error code and words come from DCMTK's parser",
            ),
        ),
    ),
    Scenario(
        "bad bodies and arguments",
        (
            upload("ct1", STUDY["ct1"]),
            post("/tools/lookup", ""),
            post("/tools/find", "{", name="find with broken JSON"),
            get("/tools/generate-uid?level=nothing"),
            get("/tools/generate-uid"),
            get(f"{INSTANCE}/content/zzzz-zzzz"),
            get("/patients?expand=nothing"),
            get("/instances?since=x&limit=1"),
            put("/tools/default-encoding", "NoSuchEncoding"),
            put("/patients/{ct1[ParentPatient]}/protected", "maybe"),
        ),
        deviations=(
            Deviation("GET /instances/{ct1[ID]}/content/zzzz-zzzz", "/status", NOT_A_TAG),
            Deviation("GET /instances/{ct1[ID]}/content/zzzz-zzzz", "/body", NOT_A_TAG),
        ),
    ),
    Scenario(
        "protection and switches take the words of a boolean",
        (
            upload("ct1", STUDY["ct1"]),
            *(
                step
                for word in ("true", " 0 ", "1", "false", "TRUE", "")
                for step in (
                    put("/patients/{ct1[ParentPatient]}/protected", word, kind="text", name=f"protect {word!r}"),
                    get("/patients/{ct1[ParentPatient]}/protected", kind="text", name=f"protected after {word!r}"),
                )
            ),
            get("/patients/{ct1[ParentPatient]}"),
            put("/tools/metrics", "True", name="metrics True"),
            put("/tools/metrics", " false", kind="text", name="metrics false"),
            get("/tools/metrics", kind="text"),
            put("/tools/metrics", "1", kind="text", name="metrics 1"),
        ),
    ),
    Scenario(
        "method override",
        (
            upload("ct1", STUDY["ct1"]),
            post(INSTANCE, headers={"X-HTTP-Method-Override": "DELETE"}, name="override header"),
            get("/instances"),
        ),
    ),
    Scenario(
        "method override in the query",
        (
            upload("ct1", STUDY["ct1"]),
            get(f"{INSTANCE}?_method=DELETE", name="override argument"),
            get("/instances"),
        ),
    ),
    Scenario(
        "compressed answers",
        (
            upload("ct1", STUDY["ct1"]),
            get(
                "/instances?expand",
                headers={"Accept-Encoding": "gzip"},
                compared_headers=("content-type", "content-encoding"),
            ),
            get("/system", headers={"Accept-Encoding": "deflate"}, compared_headers=("content-encoding",), kind="none"),
            get(
                f"{INSTANCE}/file",
                headers={"Accept-Encoding": "gzip"},
                compared_headers=("content-encoding",),
                kind="bytes",
            ),
        ),
    ),
    Scenario(
        "revisions of metadata",
        (
            upload("ct1", STUDY["ct1"]),
            put(f"{INSTANCE}/metadata/Sample", "one", compared_headers=("content-type", "etag")),
            get(f"{INSTANCE}/metadata/Sample", kind="text", compared_headers=("content-type", "etag")),
            put(f"{INSTANCE}/metadata/Sample", "two", headers={"If-Match": "0"}, name="stale revision"),
            get(f"{INSTANCE}/attachments/dicom/data", kind="bytes", compared_headers=("content-type", "etag")),
        ),
    ),
    Scenario(
        "Orthanc Explorer upload",
        (
            Step(
                "POST",
                "/instances",
                b'--XXX\r\nContent-Disposition: form-data; name="files[]"; filename="a.dcm"\r\n'
                b"Content-Type: application/dicom\r\n\r\n" + STUDY["ct1"] + b"\r\n--XXX--\r\n",
                headers={
                    "Content-Type": "multipart/form-data; boundary=XXX",
                    "X-Requested-With": "XMLHttpRequest",
                    "X-File-Size": str(len(STUDY["ct1"])),
                    "X-File-Name": "a.dcm",
                },
                name="explorer upload",
            ),
            get("/instances"),
        ),
        bugs=(),
    ),
    Scenario(
        "disabled features",
        (
            post("/tools/execute-script", "print(42)", name="lua"),
            get("/webdav/", name="webdav", kind="none"),
        ),
    ),
]
