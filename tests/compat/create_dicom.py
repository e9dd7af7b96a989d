"""Scenarios of /tools/create-dicom: the answer, and the file it makes tag for tag."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.support.compat import Deviation, Scenario, get, post
from tests.support.compat_data import PIXELS

CREATED = "/instances/{created[ID]}"
# Orthanc 1.10.1 moves the bytes of a data URI given for EncapsulatedDocument into PixelData (OW)
# and writes no EncapsulatedDocument; ours writes them where the request put them, which is what
# a client that names the element expects to read back.
DATA_URI = "a data URI for EncapsulatedDocument: Orthanc 1.10.1 writes it as PixelData, ours as asked"


def _png() -> bytes:
    """A 4x2 8-bit grayscale PNG: both servers decode the same pixels from it."""
    buffer = io.BytesIO()
    Image.frombytes("L", (4, 2), bytes(range(0, 256, 32))).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


PRIVATE_VALUE = {"PatientName": "PRIVATE", "0009,1001": "value"}
# A private element is attributed to its block by the creator in the block's slot: a file
# without it cannot be read back by name. Orthanc 1.10.1 writes the element alone; ours writes
# the slot too, and refuses a private element whose creator it is not told.
CREATOR_SLOT = "the PrivateCreator option: ours writes it into the block's slot (0009,0010), Orthanc 1.10.1 does not"
NO_CREATOR = "a private element without any creator: Orthanc 1.10.1 writes it unattributed, ours refuses (400, 8)"
OUR_FILE_META = Deviation(
    "GET /instances/{created[ID]}",
    "/body/FileSize",
    "the files we write carry our own file meta header (implementation UID and name), a few bytes longer",
)


def created(name: str, body: dict[str, object], deviations: tuple[Deviation, ...] = ()) -> Scenario:
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
        deviations=(OUR_FILE_META, *deviations),
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
        deviations=(
            Deviation("GET /instances/{created[ID]}/file", "/body/dataset/7FE00010", DATA_URI),
            Deviation("GET /instances/{created[ID]}/file", "/body/dataset/00420011", DATA_URI),
            Deviation("GET /instances/{created[ID]}/tags?simplify", "/body/PixelData", DATA_URI),
            Deviation("GET /instances/{created[ID]}/tags?simplify", "/body/EncapsulatedDocument", DATA_URI),
        ),
    ),
    created(
        "with a private tag",
        {
            "Tags": {"PatientName": "PRIVATE", "0009,0010": "MY CREATOR", "0009,1001": "value"},
            "PrivateCreator": "MY CREATOR",
        },
    ),
    Scenario(
        "create-dicom of private tags without their creator slot",
        (
            post("/tools/create-dicom", {"Tags": PRIVATE_VALUE, "PrivateCreator": "MY CREATOR"}, name="created"),
            get(f"{CREATED}/file", kind="dicom"),
            post("/tools/create-dicom", {"Tags": PRIVATE_VALUE}, name="no creator at all"),
        ),
        generated=True,
        deviations=(
            Deviation("GET /instances/{created[ID]}/file", "/body/dataset/00090010", CREATOR_SLOT),
            Deviation("no creator at all", "/status", NO_CREATOR),
            Deviation("no creator at all", "/body", NO_CREATOR),
        ),
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
    ),
]
