"""Scenarios of the /tools routes that read or set the node's settings, and of the routes of
Orthanc 1.10.1 that only answer about the server itself."""

from __future__ import annotations

from tests.support.compat import Deviation, Scenario, get, put

SCENARIOS = [
    Scenario(
        "settings tools",
        (
            get("/tools/default-encoding", kind="text"),
            get("/tools/accepted-transfer-syntaxes"),
            get("/tools/unknown-sop-class-accepted", kind="text"),
            get("/tools/metrics", kind="text"),
            get("/tools/now", kind="text"),
            get("/tools/now-local", kind="text"),
            get("/tools/generate-uid?level=study", kind="text"),
        ),
        generated=True,
        deviations=(
            Deviation(
                "GET /tools/accepted-transfer-syntaxes",
                "/body",
                "ours knows the transfer syntaxes added to DICOM after DCMTK 3.6.7 (HTJ2K, JPEG XL, deflated frames...)",
            ),
        ),
    ),
    Scenario(
        "settings tools written",
        (
            put("/tools/default-encoding", "Utf8", kind="text"),
            get("/tools/default-encoding", kind="text"),
            put("/tools/default-encoding", "Latin1", kind="text"),
            put("/tools/unknown-sop-class-accepted", "1", kind="text"),
            put("/tools/unknown-sop-class-accepted", "0", kind="text"),
        ),
    ),
    Scenario(
        "server routes",
        (
            get("/plugins"),
            get("/tools/log-level", kind="text"),
            get("/tools/dicom-conformance", kind="text"),
            get("/tools"),
        ),
        deviations=(
            Deviation(
                "GET /tools/dicom-conformance",
                "/body",
                "a conformance statement of our own words, listing what this node accepts",
            ),
        ),
    ),
]
