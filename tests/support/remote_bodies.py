"""Bodies of PUT /modalities/{id} and PUT /peers/{id}, each with the answer Orthanc 1.10.1 gives it.

The REST tests check our answers against these expectations; the differential test sends
the same bodies to real Orthanc and checks that its answers are these too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from .rest import assert_error

BAD_FILE_FORMAT, PARAMETER_OUT_OF_RANGE = 15, 3


@dataclass(frozen=True)
class Case:
    """A body (JSON-encoded unless it is already text) and the answer: accepted with this public object,
    refused with this Orthanc error code and Details (None: no Details), or a bare 404."""

    body: Any
    status: int = 200
    code: int | None = None
    details: str | None = None
    shown: dict[str, Any] | None = None  # the configuration object, when accepted

    def content(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


def accepted(body: Any, shown: dict[str, Any]) -> Case:
    return Case(body, shown=shown)


def unanswered(body: Any) -> Case:
    """Refused with a bare 404: Orthanc's answer to a peer's body that is not JSON."""
    return Case(body, 404)


def refused(body: Any, details: str | None = None) -> Case:
    """Refused with error 15 (Bad file format), with these Details (None: none)."""
    return Case(body, 400, BAD_FILE_FORMAT, details)


def out_of_range(body: Any, details: str) -> Case:
    """Refused with error 3 (Parameter out of range)."""
    return Case(body, 400, PARAMETER_OUT_OF_RANGE, details)


def _modality(**fields: Any) -> dict[str, Any]:
    """The configuration object of a modality: Orthanc's defaults, ``fields`` over them."""
    flags = ("Echo", "EventReport", "Find", "FindWorklist", "Get", "Move", "NAction", "Store")
    shown: dict[str, Any] = {f"Allow{flag}": True for flag in flags}
    shown.update(AllowTranscoding=True, LocalAet="", Manufacturer="Generic", Timeout=0, UseDicomTls=False)
    shown.update(fields)
    return dict(sorted(shown.items()))


def _port_range(found: int) -> str:
    return f"A TCP port number must be in range [1..65534], but found: {found}"


MODALITY_CASES = [
    accepted(["A", "127.0.0.1", 104], _modality(AET="A", Host="127.0.0.1", Port=104)),
    accepted(["B", "h", "0105", "GE"], _modality(AET="B", Host="h", Port=105, Manufacturer="GE")),
    accepted(
        ["B", "h", "+7", "SyngoVia"], _modality(AET="B", Host="h", Port=7, Manufacturer="GenericNoWildcardInDates")
    ),
    accepted(["B", "h", 65534, "ClearCanvas"], _modality(AET="B", Host="h", Port=65534)),
    accepted(
        {"AET": "C", "Host": "h", "Port": "106", "AllowStorageCommitment": False, "AllowNAction": True, "Other": 1.5},
        _modality(AET="C", Host="h", Port=106, AllowNAction=False, AllowEventReport=False),
    ),
    accepted(
        {
            "AET": "C",
            "Host": "h",
            "Port": 1,
            "AllowEventReport": False,
            "AllowFind": False,
            "LocalAet": "ME",
            "Timeout": 7,
            "Manufacturer": "Vitrea",
            "UseDicomTls": True,
            "AllowTranscoding": False,
        },
        _modality(
            AET="C",
            Host="h",
            Port=1,
            AllowEventReport=False,
            AllowFind=False,
            LocalAet="ME",
            Timeout=7,
            Manufacturer="Vitrea",
            UseDicomTls=True,
            AllowTranscoding=False,
        ),
    ),
    accepted({"AET": "", "Host": "", "Port": 1}, _modality(AET="", Host="", Port=1)),
    out_of_range(["A", "h", 0], _port_range(0)),
    out_of_range(["A", "h", 65535], _port_range(65535)),
    out_of_range(["A", "h", "-5"], _port_range(-5)),
    refused(["A", "h", "abc"]),
    refused(["A", "h", " 106"]),
    refused(["A", "h", "99999999999"]),
    refused(["A", "h", 1.5]),
    refused(["A", "h", True]),
    out_of_range(["A", "h", 1, "Foo"], 'Unknown modality manufacturer: "Foo"'),
    out_of_range(["A", "h", 1, "generic"], 'Unknown modality manufacturer: "generic"'),
    refused(["A", "h", 1, 5]),
    refused(["A", "h"]),
    refused(["A", "h", 1, "GE", "x"]),
    refused([1, "h", 1]),
    refused(["A", 2, 1]),
    refused({}, "String value expected in field: AET"),
    refused({"AET": "a"}, "String value expected in field: Host"),
    refused({"AET": 3, "Host": "h", "Port": 1}, "String value expected in field: AET"),
    refused({"AET": "a", "Host": "h"}),
    refused({"AET": "a", "Host": "h", "Port": "x", "Manufacturer": "Foo"}),
    out_of_range({"AET": "a", "Host": "h", "Port": 0, "Manufacturer": "Foo"}, _port_range(0)),
    refused({"AET": "a", "Host": "h", "Port": 1, "Manufacturer": 5}, "String value expected in field: Manufacturer"),
    out_of_range(
        {"AET": "a", "Host": "h", "Port": 1, "Manufacturer": "Foo", "AllowEcho": 3},
        'Unknown modality manufacturer: "Foo"',
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "AllowGet": 3, "AllowFindWorklist": 3},
        "Boolean value expected in field: AllowFindWorklist",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "AllowStore": 3, "AllowGet": 3},
        "Boolean value expected in field: AllowStore",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "AllowStorageCommitment": 3, "AllowNAction": 3},
        "Boolean value expected in field: AllowNAction",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "AllowStorageCommitment": 3, "AllowTranscoding": 3},
        "Boolean value expected in field: AllowStorageCommitment",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "AllowTranscoding": None},
        "Boolean value expected in field: AllowTranscoding",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "UseDicomTls": 3, "LocalAet": 3},
        "Boolean value expected in field: UseDicomTls",
    ),
    refused(
        {"AET": "a", "Host": "h", "Port": 1, "Timeout": -1, "LocalAet": 3},
        "String value expected in field: LocalAet",
    ),
    refused({"AET": "a", "Host": "h", "Port": 1, "Timeout": "3"}, "Integer value expected in field: Timeout"),
    refused({"AET": "a", "Host": "h", "Port": 1, "Timeout": 2.5}, "Integer value expected in field: Timeout"),
    refused({"AET": "a", "Host": "h", "Port": 1, "Timeout": -3}, "Unsigned integer value expected in field: Timeout"),
    refused("notjson"),
    refused(""),
    refused('"str"'),
    refused("5"),
    refused([]),
]


def _peer(url: str, **fields: Any) -> dict[str, Any]:
    shown: dict[str, Any] = {"HttpHeaders": [], "Pkcs11": False, "Timeout": 0, "Url": url, **fields}
    return dict(sorted(shown.items()))


_CREDENTIALS = {"Username": "u", "Password": None}

PEER_CASES = [
    accepted(["http://localhost:8043"], _peer("http://localhost:8043/")),
    accepted(["http://localhost:8043/", "u", "p"], _peer("http://localhost:8043/", **_CREDENTIALS)),
    accepted(["http://x", "", ""], _peer("http://x/")),
    accepted(["http://x", "u", True], _peer("http://x/", **_CREDENTIALS)),
    accepted(["localhost:8043"], _peer("localhost:8043/")),
    accepted({"URL": "https://x"}, _peer("https://x/")),
    accepted({"Url": "http://x", "URL": "http://y"}, _peer("http://x/")),
    accepted({"Url": "http://x", "Username": "u"}, _peer("http://x/", **_CREDENTIALS)),
    accepted({"Url": "http://x", "Username": ""}, _peer("http://x/")),
    accepted(
        {
            "Url": "http://x",
            "Username": "u",
            "Password": "secret",
            "HttpHeaders": {"B": "1", "A": ""},
            "Timeout": 5,
            "Pkcs11": True,
        },
        _peer("http://x/", HttpHeaders=["A", "B"], Timeout=5, Pkcs11=True, **_CREDENTIALS),
    ),
    accepted(
        {"Url": "http://x", "Other": 1, "Flag": True, "Name": "n"}, _peer("http://x/", Other="1", Flag="1", Name="n")
    ),
    refused(["ftp://x"], "Bad URL: ftp://x"),
    refused({"Url": "HTTP://x"}, "Bad URL: HTTP://x"),
    refused({}, "Empty URL"),
    refused({"Url": ""}, "Empty URL"),
    refused([None], "Empty URL"),
    refused({"Url": 5}),
    refused({"Url": None}),
    refused(["http://x", "u"]),
    refused([]),
    refused({"Url": "http://x", "Password": "p"}),
    refused({"Url": "http://x", "Username": "", "Password": "p"}),
    refused({"Url": "http://x", "Username": 5, "Password": "p"}),
    refused({"Url": "http://x", "Username": "u", "Password": None}),
    refused({"Url": "http://x", "HttpHeaders": {"A": 5}}),
    refused({"Url": "http://x", "HttpHeaders": []}),
    refused({"Url": "http://x", "Pkcs11": 5}),
    refused({"Url": "http://x", "Pkcs11": 5, "Zed": {}}),
    refused({"Url": "http://x", "Timeout": -1}, "Unsigned integer value expected in field: Timeout"),
    refused({"Url": "http://x", "Timeout": "5"}, "Integer value expected in field: Timeout"),
    refused({"Url": "http://x", "Timeout": 4294967295}),
    refused(
        {"Url": "http://x", "Timeout": -1, "Zed": {}},
        "User-defined properties associated with a Web service must be strings: Zed",
    ),
    refused(
        {"Url": "http://x", "A": None},
        "User-defined properties associated with a Web service must be strings: A",
    ),
    refused(
        {"Url": "http://x", "A": True, "B": 1.5},
        "User-defined properties associated with a Web service must be strings: B",
    ),
    refused({"Url": "ftp://x", "Zed": []}, "Bad URL: ftp://x"),
    refused('"http://x"'),
    unanswered("notjson"),
    unanswered(""),
]


async def check_put(http: httpx.AsyncClient, path: str, case: Case) -> None:
    """PUT the case's body at ``path`` (``/modalities/x``, ``/peers/x``, a name not used before) of a
    node or of Orthanc: the answer, and the configuration object after it, are the case's; a
    refused body creates nothing."""
    answer = await http.put(path, content=case.content())
    assert answer.status_code == case.status, (case, answer.status_code, answer.text)
    if case.shown is not None:
        assert answer.content == b"" and answer.headers["content-type"] == "text/plain", case
        assert (await http.get(f"{path}/configuration")).json() == case.shown, case
        return
    if case.code is None:
        assert answer.content == b"", case
    else:
        body = assert_error(answer, case.status, case.code, case.details)
        assert case.details is not None or "Details" not in body, (case, body)
    assert (await http.get(path)).status_code == 404, case
