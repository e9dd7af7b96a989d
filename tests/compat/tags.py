"""Scenarios of an instance's tags in every format, and of the raw content tree."""

from __future__ import annotations

from tests.support.compat import Bug, Deviation, Scenario, get, upload
from tests.support.compat_data import LATIN1_PATIENT, STUDY

INSTANCE = "{file[ID]}"
UNKNOWN_PRIVATE = (
    "private elements of an unknown creator in implicit VR: Orthanc shows their values as null and the "
    "private group lengths as text, ours the other way round"
)
PALETTE_DESCRIPTORS = "palette descriptors (US or SS) in implicit VR: Orthanc shows null, ours the values"
NOT_A_TAG = (
    "a content path that is not a tag: Orthanc answers 500 Unknown DICOM tag (an internal error), ours 404 "
    "as for any path that names nothing"
)
TAG_FORMATS = (
    get(f"/instances/{INSTANCE}/tags"),
    get(f"/instances/{INSTANCE}/tags?simplify"),
    get(f"/instances/{INSTANCE}/tags?short"),
    get(f"/instances/{INSTANCE}/simplified-tags"),
)


def tags_of(name: str, data: bytes | str, *bugs: Bug) -> Scenario:
    """Every rendering of the tags of one uploaded file."""
    return Scenario(f"tags of {name}", (upload("file", data), *TAG_FORMATS), bugs=bugs)


SCENARIOS = [
    tags_of("a generated CT", STUDY["ct1"]),
    tags_of("a Latin-1 patient", LATIN1_PATIENT),
    tags_of("DummyCT", "DummyCT.dcm"),
    tags_of("a UTF-8 file", "Encodings/Lena-utf8.dcm"),
    tags_of("a Shift-JIS file", "Encodings/Lena-shift-jis.dcm"),
    tags_of("an Encapsulated PDF", "sample-pdf.dcm"),
    tags_of("private tags", "PrivateTags.dcm"),
    tags_of(
        "private MDN tags",
        "PrivateMDNTags.dcm",
        Bug("*", "/body/00e1,*", UNKNOWN_PRIVATE),
        Bug("*", "/body/7053,*", UNKNOWN_PRIVATE),
        Bug("*", "/body/Unknown Tag & Data", UNKNOWN_PRIVATE),
    ),
    tags_of("a file without pixel data", "Issue22-NoPixelData.dcm"),
    tags_of(
        "a palette in implicit VR",
        "Implicit-vr-us-palette.dcm",
        Bug("*", "/body/0028,110?", PALETTE_DESCRIPTORS),
        Bug("*", "/body/*PaletteColorLookupTableDescriptor", PALETTE_DESCRIPTORS),
    ),
    tags_of(
        "a JPEG file",
        "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm",
        Bug(
            "*", "/body/0008,0000", "ours shows the group length (0008,0000) of this file, Orthanc 1.10.1 leaves it out"
        ),
    ),
    tags_of("a big endian file", "TransferSyntaxes/1.2.840.10008.1.2.2.dcm"),
    Scenario(
        "content paths",
        (
            upload("file", STUDY["ct1"]),
            get(f"/instances/{INSTANCE}/content"),
            get(f"/instances/{INSTANCE}/content/0010-0010", kind="text"),
            get(f"/instances/{INSTANCE}/content/0008-1032"),
            get(f"/instances/{INSTANCE}/content/0008-1032/0"),
            get(f"/instances/{INSTANCE}/content/0008-1032/0/0008-0100", kind="text"),
            get(f"/instances/{INSTANCE}/content/0008-1032/1"),
            get(f"/instances/{INSTANCE}/content/0008-2112/0/0008-1155", kind="text"),
            get(f"/instances/{INSTANCE}/content/0020-0032", kind="text"),
            get(f"/instances/{INSTANCE}/content/0010-1010"),
            get(f"/instances/{INSTANCE}/content/nonsense"),
        ),
        deviations=(
            Deviation("GET /instances/{file[ID]}/content/nonsense", "/status", NOT_A_TAG),
            Deviation("GET /instances/{file[ID]}/content/nonsense", "/body", NOT_A_TAG),
        ),
    ),
    Scenario(
        "content of pixel data",
        (
            upload("file", STUDY["ct1"]),
            get(f"/instances/{INSTANCE}/content/7fe0-0010"),
            get(f"/instances/{INSTANCE}/content/7fe0-0010/0", kind="bytes"),
        ),
    ),
    Scenario(
        "content of a nested sequence",
        (
            upload("file", "DummyCT.dcm"),
            get(f"/instances/{INSTANCE}/content"),
            get(f"/instances/{INSTANCE}/content/0008-1140"),
            get(f"/instances/{INSTANCE}/content/0008-1140/0"),
            get(f"/instances/{INSTANCE}/content/0008-1140/1/0008-1155", kind="text"),
        ),
    ),
    Scenario(
        "file and frames",
        (
            upload("file", STUDY["ct1"]),
            get(f"/instances/{INSTANCE}/file", kind="bytes"),
            get(f"/instances/{INSTANCE}/frames"),
        ),
    ),
]
