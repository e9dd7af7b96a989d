"""The job's new identifiers and their encoding, computed without pydicom's helpers, equal what those give.

A saved job derives its UIDs again after a restart: the derivation must not change (the
values of every earlier run depend on it), and the bytes of an edited UID must be those that
pydicom writes, as the whole-dataset path does.
"""

from __future__ import annotations

import random

import pytest
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import generate_uid

from node.dicom.rewrite import UidMap
from node.dicom.tag_numbers import SERIES_INSTANCE_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID
from node.dicom.top_level_edit import _encoded

SAMPLES = 2000
MAX_UID_DIGITS = 62


def _originals(count: int) -> list[str]:
    """UIDs of every length, and texts no UID would be (the map takes any original)."""
    draw = random.Random(7)
    uids = [
        "1." + "".join(draw.choice("0123456789.") for _ in range(draw.randint(0, MAX_UID_DIGITS))) for _ in range(count)
    ]
    return [*uids, "", " ", "é", "1.2.3\\4.5"]


def test_the_uid_map_derives_what_pydicom_generate_uid_derives() -> None:
    for original in _originals(SAMPLES):
        uids = UidMap()
        assert uids.uid(original) == generate_uid(entropy_srcs=[uids.seed, original])


def test_a_saved_seed_still_gives_the_same_uid() -> None:
    uids = UidMap.from_json({"Seed": "00112233445566778899aabbccddeeff"})
    assert uids.uid("1.2.3") == "1.2.826.0.1.3680043.8.498.47900271895161626089629505551993636767"


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("tag", [STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID])
def test_an_edited_uid_is_encoded_as_pydicom_writes_it(implicit: bool, tag: int) -> None:
    for value in [*_originals(SAMPLES // 10), UidMap().uid("1.2.3")]:
        element = DataElement(tag, "UI", value, validation_mode=config.IGNORE)  # odd values on purpose
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = implicit, True
        write_data_element(buffer, element, "iso8859")
        assert _encoded(element, implicit, "iso8859") == buffer.getvalue(), value
