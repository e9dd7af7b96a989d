"""Scenarios of an instance's tags in every format, and of the raw content tree."""

from __future__ import annotations

from tests.support.compat import Bug, Deviation, Scenario, get, upload
from tests.support.compat_data import LATIN1_PATIENT, STUDY

INSTANCE = "{file[ID]}"
# The meta header of this file declares a group length that covers the dataset's first element
# (0008,0000) too. DCMTK follows the declared length and reads that element as part of the meta
# header (Orthanc shows it under /header, not /tags); ours ends the meta header with its last
# group 0002 element, as the standard lays a file out, and shows 0008,0000 with the dataset.
GROUP_LENGTH_IN_META = "a meta header whose group length covers 0008,0000: Orthanc reads it there, ours in the dataset"
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
    tags_of("private MDN tags", "PrivateMDNTags.dcm"),
    tags_of("a file without pixel data", "Issue22-NoPixelData.dcm"),
    tags_of("a palette in implicit VR", "Implicit-vr-us-palette.dcm"),
    Scenario(
        "tags of a JPEG file",
        (upload("file", "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm"), *TAG_FORMATS),
        deviations=(Deviation("*", "/body/0008,0000", GROUP_LENGTH_IN_META),),
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
