"""Scenarios of /tools/create-dicom: the answer, and the file it makes tag for tag."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.support.compat import Bug, Deviation, Scenario, get, post
from tests.support.compat_data import PIXELS

CREATED = "/instances/{created[ID]}"
DATA_URI = (
    "a data URI given for EncapsulatedDocument: Orthanc 1.10.1 stores its bytes as Pixel Data (OW), ours in "
    "EncapsulatedDocument"
)


def _png() -> bytes:
    """A 4x2 8-bit grayscale PNG: both servers decode the same pixels from it."""
    buffer = io.BytesIO()
    Image.frombytes("L", (4, 2), bytes(range(0, 256, 32))).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


OUR_FILE_META = Deviation(
    "GET /instances/{created[ID]}",
    "/body/FileSize",
    "the files we write carry our own file meta header (implementation UID and name), a few bytes longer",
)


def created(name: str, body: dict[str, object], *bugs: Bug) -> Scenario:
    """One instance made from ``body``, then read back."""
    return Scenario(
        f"create-dicom {name}",
        (
            post("/tools/create-dicom", body, name="created"),
            get(f"{CREATED}/file", kind="dicom"),
            get(f"{CREATED}/tags?simplify"),
            get(CREATED),
        ),
        generated=True,
        deviations=(OUR_FILE_META,),
        bugs=bugs,
    )


SCENARIOS = [
    created("of a few tags", {"Tags": {"PatientName": "CREATED^ONE", "PatientID": "C1", "Modality": "OT"}}),
    created(
        "with a sequence and UTF-8",
        {
            "Tags": {
                "PatientName": "CREATED^TWO",
                "StudyDescription": "made",
                "SpecificCharacterSet": "ISO_IR 192",
                "InstitutionName": "Zürich",
                "ProcedureCodeSequence": [{"CodeValue": "X", "CodeMeaning": "y"}],
            }
        },
    ),
    created("of a PNG image", {"Tags": {"PatientName": "IMAGE"}, "Content": data_uri("image/png", _png())}),
    created(
        "of a PDF",
        {
            "Tags": {"PatientName": "PDF", "Modality": "OT"},
            "Content": data_uri("application/pdf", b"%PDF-1.4\n%%EOF\n"),
        },
    ),
    created(
        "with a binary data URI",
        {"Tags": {"PatientName": "BINARY", "EncapsulatedDocument": data_uri("application/octet-stream", PIXELS)}},
        Bug("GET /instances/{created[ID]}/file", "/body/dataset/*", DATA_URI),
        Bug("GET /instances/{created[ID]}/tags?simplify", "/body/*", DATA_URI),
    ),
    created(
        "with a private tag",
        {
            "Tags": {"PatientName": "PRIVATE", "0009,0010": "MY CREATOR", "0009,1001": "value"},
            "PrivateCreator": "MY CREATOR",
        },
    ),
    Scenario(
        "create-dicom errors",
        (
            post("/tools/create-dicom", {"Tags": {"NoSuchTag": "x"}}),
            post("/tools/create-dicom", {"Tags": "x"}),
            post("/tools/create-dicom", {"Parent": "nothing", "Tags": {}}),
            post("/tools/create-dicom", {"Tags": {}, "Content": "data:image/png;base64,AAAA"}),
            post("/tools/create-dicom", "not json", name="create-dicom with a bad body"),
        ),
        bugs=(
            Bug(
                "create-dicom with a bad body",
                "/body/*",
                "a body that is not JSON: Orthanc BadRequest (8), ours BadFileFormat (15)",
            ),
        ),
    ),
]
