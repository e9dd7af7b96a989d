"""A rewritten instance is encoded by our writer byte for byte as pydicom's save_as would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from node.dicom.parse import read_dataset
from node.dicom.part10 import encode_file, encode_with_pydicom
from node.errors import OrthancError
from tests.support.datasets import SHARED_TESTDATA, make_dataset, to_bytes


def _edit(dataset: Dataset) -> None:
    """What a modification does: a replaced text value and a new UID."""
    dataset.StudyDescription = "Rewritten"
    dataset.SOPInstanceUID = "1.2.3.4.5.6"


def _in_syntax(syntax: str) -> bytes:
    ds = make_dataset(pixels=b"\x01\x02" * 8, PatientComments="odd")
    ds.file_meta.TransferSyntaxUID = syntax
    return to_bytes(ds)


def _new_charset(dataset: Dataset) -> None:
    dataset.SpecificCharacterSet = "ISO_IR 192"  # every text value is re-encoded
    dataset.PatientName = "Wang^XiaoDong=王^小東="


SYNTHETIC: list[tuple[str, Callable[[], bytes], Callable[[Dataset], None]]] = [
    ("explicit little", lambda: _in_syntax(pydicom.uid.ExplicitVRLittleEndian), _edit),
    ("implicit little", lambda: _in_syntax(ImplicitVRLittleEndian), _edit),
    ("explicit big", lambda: _in_syntax(ExplicitVRBigEndian), _edit),
    ("deflated", lambda: _in_syntax(DeflatedExplicitVRLittleEndian), _edit),
    ("new character set", lambda: _in_syntax(pydicom.uid.ExplicitVRLittleEndian), _new_charset),
    ("no SOP instance", lambda: _in_syntax(pydicom.uid.ExplicitVRLittleEndian), lambda ds: ds.pop("SOPClassUID")),
]


def _compare(data: bytes, edit: Callable[[Dataset], None]) -> None:
    ours, theirs = read_dataset(data), read_dataset(data)
    edit(ours)
    edit(theirs)
    assert encode_file(ours) == encode_with_pydicom(theirs)


@pytest.mark.parametrize(("name", "make", "edit"), SYNTHETIC, ids=[case[0] for case in SYNTHETIC])
def test_same_bytes_as_pydicom(name: str, make: Callable[[], bytes], edit: Callable[[Dataset], None]) -> None:
    _compare(make(), edit)


def _testdata_files() -> list[Path]:
    if not SHARED_TESTDATA.is_dir():
        return []
    folders = ("TransferSyntaxes", "Encodings", "Comunix", "Knee")
    found = (p for folder in folders for p in (SHARED_TESTDATA / folder).rglob("*"))
    return sorted(p for p in found if p.is_file() and p.suffix not in (".png", ".raw"))


@pytest.mark.skipif(not SHARED_TESTDATA.is_dir(), reason=f"shared test data not found at {SHARED_TESTDATA}")
def test_same_bytes_as_pydicom_for_scanner_files() -> None:
    compared = 0
    for path in _testdata_files():
        data = path.read_bytes()
        try:
            read_dataset(data)
        except OrthancError:  # refused at ingest: never rewritten
            continue
        _compare(data, _edit)
        compared += 1
    assert compared > 20
