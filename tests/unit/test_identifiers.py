"""Query/retrieve identifiers: our shortcuts give pydicom's bytes and pydicom's values exactly.

Written identifiers are compared with pynetdicom's encoder (pydicom's writer) byte for byte,
in both little endian syntaxes; read ones with pydicom's reader, every element decoded; what
pydicom cannot decode still fails the read at once.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import IS, DSfloat, PersonName
from pynetdicom.dsutils import decode, encode

from node.errors import OrthancError
from node.net.ul import identifiers
from node.net.ul.identifiers import decode_identifier, encode_identifier
from node.net.ul.presentation import AcceptedContext

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def _query() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = "TINY-P"
    ds.PatientName = "Doe^John^^"
    ds.StudyDate = "20200101-20201231"
    ds.StudyInstanceUID = ""
    ds.AccessionNumber = None
    ds.StudyDescription = "odd"
    return ds


def _answer() -> Dataset:
    ds = _query()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"  # odd length: padded with a NUL
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.SOPClassesInStudy = ["1.2.3", "1.2.34"]
    ds.NumberOfStudyRelatedInstances = IS("0012")
    ds.NumberOfStudyRelatedSeries = 3
    ds.RetrieveAETitle = "SOURCE"
    ds.StudyComments = "a\\b kept in one value"  # LT
    ds.add_new(0x00291010, "UT", "a long text")
    ds.add_new(0x00291011, "UC", ["one", "two"])
    ds.PatientWeight = DSfloat("70.50")
    ds.add_new(0x00291012, "DS", [1.5, "2"])
    return ds


def _with(**values: object) -> Callable[[], Dataset]:
    def make() -> Dataset:
        ds = _query()
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        return ds

    return make


def _with_sequence() -> Dataset:
    ds = _query()
    item = Dataset()
    item.CodeValue = "X"
    ds.ProcedureCodeSequence = Sequence([item])
    return ds


def _read_name() -> Dataset:
    """A name decoded from bytes keeps them: pydicom writes those."""
    ds = decode_identifier(_context(ExplicitVRLittleEndian), encode(_query(), False, True))
    assert ds.PatientName.original_string  # decoded from its bytes, which it keeps
    return ds


IDENTIFIERS: dict[str, Callable[[], Dataset]] = {
    "query": _query,
    "answer": _answer,
    "non-ASCII": _with(PatientName="Müller^Jörg"),
    "two names": _with(PatientName=["A^B", "C^D"]),
    "binary": _with(PixelPaddingValue=0),
    "sequence": _with_sequence,
    "read name": _read_name,
    "a name with groups": _with(PatientName=PersonName("Yamada^Tarou=山田^太郎")),
    "long text": _with(StudyDescription="x" * 70_001),
}


PLAIN = ("query", "answer", "two names")


def _context(syntax: str) -> AcceptedContext:
    return AcceptedContext(1, STUDY_FIND, syntax, as_scu=True, as_scp=False)


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("case", sorted(IDENTIFIERS))
def test_written_as_pydicom_writes(case: str, syntax: str) -> None:
    implicit = syntax == ImplicitVRLittleEndian
    expected = encode(IDENTIFIERS[case](), implicit, True)
    assert encode_identifier(_context(syntax), IDENTIFIERS[case]()) == expected
    if case in PLAIN:  # written by the shortcut, not handed to pydicom
        assert identifiers._encode_plain(IDENTIFIERS[case](), implicit) == expected


def _decoded_values(ds: Dataset) -> list[tuple[int, str, object]]:
    return [(int(element.tag), element.VR, element.value) for element in ds]


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("case", ["query", "answer", "non-ASCII", "sequence", "two names"])
def test_read_as_pydicom_reads(case: str, syntax: str) -> None:
    implicit = syntax == ImplicitVRLittleEndian
    data = encode(IDENTIFIERS[case](), implicit, True)
    expected = decode(BytesIO(data), implicit, True)
    assert _decoded_values(decode_identifier(_context(syntax), data)) == _decoded_values(expected)


@pytest.mark.parametrize(
    "element",
    [
        b"\x08\x00\x20\x00DA\x08\x0020200101\x28\x00\x10\x00US\x01\x00\x01\x00",  # a 2-byte number of 1 byte
        b"\x10\x00\x10\x00FD\x04\x00abcd",  # an 8-byte number of 4 bytes
    ],
)
def test_unreadable_identifiers_fail_at_once(element: bytes) -> None:
    with pytest.raises(OrthancError):
        decode_identifier(_context(ExplicitVRLittleEndian), element)
