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

from node.dicom.json_elements import set_from_json
from node.dicom.query import AnswerBuilder, parse_find
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
        assert identifiers._write_plain(identifiers._plain_elements(IDENTIFIERS[case]()) or [], implicit) == expected


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


# Values of a stored study, as the index gives them, for the answers built below.
STUDY_VALUES = {
    "0010,0010": "Doe^John",
    "0010,0020": "P1",
    "0008,0020": "20240115",
    "0008,0061": "CT\\MR",
    "0020,000d": "1.2.826.0.1.3680043.8.498.1",  # odd length: padded with a NUL
    "0008,1030": "",
}


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("charset", ["ISO_IR 6", "ISO_IR 100", "ISO_IR 192"])
def test_plain_answers_are_written_as_pydicom_writes_them(syntax: str, charset: str) -> None:
    """An answer of ASCII text is written without pydicom, byte for byte as pydicom writes the
    same answer made element by element from JSON (the way of answers that are not plain)."""
    query = parse_find(_with(ModalitiesInStudy="", StudyDescription="", AccessionNumber="")(), case_sensitive_pn=False)
    answer = AnswerBuilder(query, "OURS", charset, lambda *_: None).build(STUDY_VALUES, {})
    assert answer.plain is not None
    made = Dataset()
    for tag, _, text in answer.plain:
        set_from_json(made, tag, text, ["iso8859"], "")
    implicit = syntax == ImplicitVRLittleEndian
    assert encode_identifier(_context(syntax), answer) == encode(made, implicit, True)
    assert encode(answer.dataset, implicit, True) == encode(made, implicit, True)


def test_an_answer_with_a_number_or_other_letters_is_not_plain() -> None:
    query = parse_find(_with(NumberOfStudyRelatedInstances="")(), case_sensitive_pn=False)
    builder = AnswerBuilder(query, "OURS", "ISO_IR 100", lambda *_: None)
    assert builder.build(STUDY_VALUES, {0x00201208: "3"}).plain is None
    assert builder.build({**STUDY_VALUES, "0010,0010": "Müller"}, {}).plain is None
