"""What the differential tests compare of an HTTP answer, made alike on both servers where they
legitimately differ, and the differences that remain.

An answer becomes a *view*: a JSON-like tree ``{"status": ..., "headers": {...}, "body": ...}``
whose body is parsed by kind (JSON, text, bytes digest, DICOM dataset, ZIP archive). The same
normalization is applied to both views: timestamps, generated identifiers (renamed by order of
first appearance, so that two answers that refer to the same generated thing in the same places
stay equal) and the sequence numbers of the change log (made relative to where the scenario
started). A deliberate deviation removes a path of the view from both sides.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import httpx
import pydicom

ANY = "<any>"
JSON_TYPE = "application/json"
MISSING = "<missing>"
# Values that say when something happened, or how long it took: never the same on two servers.
TIME_KEYS = frozenset({
    "LastUpdate", "Date", "CreationTime", "CompletionTime", "EffectiveRuntime", "Timestamp", "ReceptionDate",
})  # fmt: skip
# Names of the files each server gave what it stores: random on both.
FILE_KEYS = frozenset({"FileUuid", "Uuid"})
_TIMESTAMP = re.compile(r"\b\d{8}T\d{6}(?:\.\d+)?\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_ORTHANC_ID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{8}){4}\b")
# A DICOM time with a fraction: what a server writes for "now" into the files it creates.
_NOW_TIME = re.compile(r"^\d{6}\.\d{1,6}$")
# A DICOM UID outside the standard's own root (SOP classes, transfer syntaxes stay as they are).
_UID = re.compile(r"(?<![\d.])(?!1\.2\.840\.10008\.)\d+(?:\.\d+){3,}(?![\d.])")
# Keys of the change log and of the exports log that count from where the server started.
SEQUENCE_KEYS = frozenset({"Seq", "Last"})
# Elements of a DICOMDIR that are byte offsets in the file: they depend on how it was encoded.
_DICOMDIR_OFFSETS = frozenset({
    "OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity",
    "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity",
    "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity",
})  # fmt: skip
# File meta elements that name the writer of a file rather than what it holds.
_WRITER_META = frozenset({"00020000", "00020001", "00020012", "00020013", "00020016", "00020003"})
_DIGEST_CHARS = 16
HTTP_ERROR = 400


@dataclass
class Renamer:
    """Generated identifiers of one server, each renamed by the order it first appears in.

    Job IDs (UUIDs) are always generated. Resource IDs, DICOM UIDs and the times of creation
    written in DICOM files are renamed only in scenarios that create resources (modify,
    anonymize, create-dicom): elsewhere they come from the uploaded files and must be equal."""

    generated: bool
    names: dict[str, str] = field(default_factory=dict)

    def _rename(self, match: re.Match[str], kind: str) -> str:
        value = match.group(0)
        if value not in self.names:
            self.names[value] = f"<{kind}#{len(self.names) + 1}>"
        return self.names[value]

    def text(self, value: str) -> str:
        value = _TIMESTAMP.sub("<time>", value)
        if self.generated and _NOW_TIME.match(value):
            return "<time>"
        value = _UUID.sub(lambda m: self._rename(m, "uuid"), value)
        if self.generated:
            value = _ORTHANC_ID.sub(lambda m: self._rename(m, "id"), value)
            value = _UID.sub(lambda m: self._rename(m, "uid"), value)
        return value


@dataclass(frozen=True)
class Normalizer:
    renamer: Renamer
    sequence_base: int  # the last change sequence number before the scenario began

    def json(self, value: Any, key: str = "") -> Any:
        if (key in TIME_KEYS or key in FILE_KEYS) and value is not None:
            return ANY
        if key in SEQUENCE_KEYS and isinstance(value, int) and not isinstance(value, bool):
            return value - self.sequence_base
        if isinstance(value, dict):
            return {self.renamer.text(k): self.json(v, k) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, str):
            return self.renamer.text(value)
        return value


def digest(data: bytes) -> str:
    return f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]}"


def dataset_view(data: bytes) -> Any:
    """A DICOM file element by element (DICOM JSON, binary values as digests), without the
    file meta elements that only name the program that wrote it."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        meta = {k: v for k, v in ds.file_meta.to_json_dict().items() if k not in _WRITER_META}
        body = ds.to_json_dict(bulk_data_threshold=1 << 30)
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as error:
        return {"unreadable": f"{type(error).__name__}: {error}"[:200], "raw": digest(data)}
    return {"meta": _digest_binaries(meta), "dataset": _digest_binaries(body)}


def _digest_binaries(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (digest(v.encode()) if k == "InlineBinary" and isinstance(v, str) else _digest_binaries(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_digest_binaries(v) for v in value]
    return value


def dicomdir_view(data: bytes) -> Any:
    """The records of a DICOMDIR, in file order, without byte offsets."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        records = [
            {e.keyword or str(e.tag): _element_value(e) for e in record if e.keyword not in _DICOMDIR_OFFSETS}
            for record in ds.get("DirectoryRecordSequence", [])
        ]
        header = {
            e.keyword: _element_value(e)
            for e in ds
            if e.keyword not in _DICOMDIR_OFFSETS and e.keyword != "DirectoryRecordSequence"
        }
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as error:
        return {"unreadable": f"{type(error).__name__}: {error}"[:200]}
    return {"header": header, "records": records}


def _element_value(element: Any) -> Any:
    if element.VR == "SQ":
        return [{e.keyword or str(e.tag): _element_value(e) for e in item} for item in element.value]
    value = element.value
    if isinstance(value, bytes):
        return digest(value)
    if isinstance(value, list | pydicom.multival.MultiValue):
        return [str(v) for v in value]
    return str(value) if value is not None else None


def zip_view(data: bytes) -> Any:
    """Entry names in archive order; each DICOM entry by its SOP Instance UID; DICOMDIR's records."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        return {"unreadable": str(error), "raw": digest(data)}
    entries: dict[str, Any] = {}
    for info in archive.infolist():
        content = archive.read(info)
        if info.filename.rsplit("/", 1)[-1] == "DICOMDIR":
            entries[info.filename] = dicomdir_view(content)
        elif info.is_dir():
            entries[info.filename] = "directory"
        else:
            entries[info.filename] = _sop_instance_uid(content)
    return {"names": [info.filename for info in archive.infolist()], "entries": entries}


def _sop_instance_uid(data: bytes) -> str:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        return str(ds.SOPInstanceUID)
    except (ValueError, TypeError, KeyError, AttributeError, OSError):
        return digest(data)


def body_view(answer: httpx.Response, kind: str) -> Any:
    """The body as ``kind`` says it is compared: json, text, bytes, dicom, zip, none."""
    if kind == "none":
        return None
    # Orthanc sends its JSON error bodies without a Content-Type: an error is read as JSON whatever
    # body the step expects, so that both servers' errors compare field by field.
    labelled_json = "json" in answer.headers.get("content-type", "")
    if kind == "json" or answer.status_code >= HTTP_ERROR or (kind != "text" and labelled_json):
        try:
            return answer.json()
        except ValueError:
            return {"not JSON": answer.text[:300]}
    if kind == "text":
        return answer.text
    if answer.status_code >= 300 or kind == "bytes":
        return digest(answer.content)
    return {"dicom": dataset_view, "zip": zip_view}[kind](answer.content)


def content_type(value: str | None) -> str | None:
    """Media type and parameters, in one spelling; JSON is UTF-8 whether or not it says so."""
    if value is None:
        return None
    value = value.replace(" ", "").lower()
    return JSON_TYPE if value == f"{JSON_TYPE};charset=utf-8" else value


def answer_view(answer: httpx.Response, kind: str, headers: tuple[str, ...]) -> dict[str, Any]:
    """What is compared of an answer, before normalization."""
    shown = {name: answer.headers.get(name) for name in headers}
    if "content-type" in shown:
        shown["content-type"] = content_type(shown["content-type"])
    return {"status": answer.status_code, "headers": shown, "body": body_view(answer, kind)}


def differences(ours: Any, orthanc: Any, path: str = "") -> Iterator[str]:
    """Each place where the two views differ, as ``path: ours … / Orthanc …``."""
    if isinstance(ours, dict) and isinstance(orthanc, dict):
        for key in sorted(set(ours) | set(orthanc), key=str):
            yield from differences(ours.get(key, MISSING), orthanc.get(key, MISSING), f"{path}/{key}")
    elif isinstance(ours, list) and isinstance(orthanc, list) and len(ours) == len(orthanc):
        for index, (a, b) in enumerate(zip(ours, orthanc, strict=True)):
            yield from differences(a, b, f"{path}/{index}")
    elif ours != orthanc:
        yield f"{path or '/'}: ours {_short(ours)} / Orthanc {_short(orthanc)}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _matching_keys(node: dict[str, Any], segment: str) -> list[str]:
    return [key for key in node if fnmatchcase(str(key), segment)]


def _matching_indices(node: list[Any], segment: str) -> list[int]:
    if segment == "*":
        return list(range(len(node)))
    return [int(segment)] if segment.isdigit() and int(segment) < len(node) else []


def remove_path(view: Any, pattern: list[str]) -> bool:
    """Drop what ``pattern`` names (path segments, shell wildcards matching keys, ``*`` any index);
    whether anything was."""
    if not pattern:
        return False
    head, rest = pattern[0], pattern[1:]
    if isinstance(view, dict):
        keys: list[Any] = _matching_keys(view, head)
    elif isinstance(view, list):
        keys = _matching_indices(view, head)
    else:
        return False
    if rest:
        return any([remove_path(view[key], rest) for key in keys])
    for key in reversed(keys):
        del view[key]
    return bool(keys)


def _order_key(item: Any, masked: bool) -> str:
    """An item's content without what each server makes its own way: times (a modified study's
    two series may be stored on either side of a second's change, in either order), UUIDs
    (stored file names) and, ``masked``, resource IDs and UIDs where the servers generated them."""
    text = _UUID.sub("", _TIMESTAMP.sub("", json.dumps(item, sort_keys=True, default=str)))
    return _UID.sub("", _ORTHANC_ID.sub("", text)) if masked else text


def sort_lists(view: Any, pattern: list[str], *, masked: bool) -> None:
    """Sort in place each list that ``pattern`` names, so that its order no longer counts."""
    for found in pick(view, pattern):
        if isinstance(found, list):
            found.sort(key=lambda item: _order_key(item, masked))


def pick(view: Any, pattern: list[str]) -> list[Any]:
    """Every value that ``pattern`` names."""
    if not pattern:
        return [view]
    head, rest = pattern[0], pattern[1:]
    if isinstance(view, dict):
        return [v for key in _matching_keys(view, head) for v in pick(view[key], rest)]
    if isinstance(view, list):
        return [v for index in _matching_indices(view, head) for v in pick(view[index], rest)]
    return []
