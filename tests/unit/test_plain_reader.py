"""The quick path of ingest (node/dicom/plain_reader.py) describes a file exactly as pydicom's
path does, or leaves it to that path: never a different answer, never a file that path refuses."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from node.dicom.parse import ParsedInstance, describe_instance, describe_plain, parse_instance, read_dataset
from node.errors import ErrorCode, OrthancError
from tests.support.datasets import SHARED_TESTDATA, dataset_part, make_dataset, make_dicom, needs_testdata, to_bytes

MUTANTS = 400  # mutated files per run: bounded, seeded
MAX_FILE = 3_000_000  # bytes: larger shared files only slow the mutations down
_PREAMBLE_AND_MAGIC = 132


def _pydicom_path(data: bytes) -> ParsedInstance | OrthancError:
    try:
        return describe_instance(data, read_dataset(data))
    except OrthancError as error:
        return error


def _same(quick: ParsedInstance, data: bytes) -> None:
    reference = _pydicom_path(data)
    assert isinstance(reference, ParsedInstance), f"the quick path accepted a file refused with {reference}"
    assert dataclasses.asdict(quick) == dataclasses.asdict(reference)


def _shared_files() -> list[bytes]:
    paths = [p for p in sorted(SHARED_TESTDATA.rglob("*")) if p.is_file() and p.stat().st_size <= MAX_FILE]
    return [p.read_bytes() for p in paths]


@needs_testdata
def test_real_files_read_alike() -> None:
    files = _shared_files()
    quick = [(data, described) for data in files if (described := describe_plain(data)) is not None]
    for data, described in quick:
        _same(described, data)
    assert len(quick) > len(files) // 2  # plain, compressed and nested files take the quick path


@needs_testdata
def test_mutated_files_read_alike_or_are_left_to_pydicom() -> None:
    rng = random.Random(20260506)
    files = [data for data in _shared_files() if describe_plain(data) is not None]
    files.append(make_dicom(pixels=bytes(512), ReferencedImageSequence=Sequence([Dataset()])))
    accepted = 0
    for _ in range(MUTANTS):
        data = bytearray(rng.choice(files))
        if rng.random() < 0.3:
            data = data[: rng.randrange(_PREAMBLE_AND_MAGIC, len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(_PREAMBLE_AND_MAGIC, min(len(data), 3000))] = rng.randrange(256)
        described = describe_plain(bytes(data))
        if described is not None:
            accepted += 1
            _same(described, bytes(data))
    assert accepted  # some mutants stay readable: the comparison did run


def test_files_left_to_pydicom_still_parse() -> None:
    private = make_dataset()
    private.add_new(0x00091010, "LO", "private value")
    private.add_new(0x00090010, "LO", "CREATOR")
    implicit_private = to_bytes(_with_syntax(private, ImplicitVRLittleEndian))
    big_endian = to_bytes(_with_syntax(make_dataset(), ExplicitVRBigEndian))
    two_charsets = make_dicom(SpecificCharacterSet=["ISO 2022 IR 6", "ISO 2022 IR 87"])
    bare = make_dicom()[_PREAMBLE_AND_MAGIC:]
    for data in (implicit_private, big_endian, two_charsets, bare):
        assert describe_plain(data) is None
        assert parse_instance(data).dicom_ids[0] == "PAT1"


def test_plain_file_is_described_from_its_bytes() -> None:
    data = make_dicom(pixels=bytes(64), PatientName="Müller^Hans", SpecificCharacterSet="ISO_IR 100")
    described = describe_plain(data)
    assert described is not None
    assert described.tags[0]["0010,0010"] == "Müller^Hans"
    _same(described, data)


def test_header_cut_short_in_a_sequence_is_error_15() -> None:
    """pydicom raises struct.error there: a bad file, not a failure of the node."""
    good = make_dicom()
    sequence = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    cut = struct.pack("<HH2sH", 0x0008, 0x1150, b"OB", 0) + b"\x01\x00"  # a 32-bit length cut to 2 bytes
    with pytest.raises(OrthancError) as refused:
        parse_instance(good + sequence + item + cut)
    assert refused.value.code == ErrorCode.BAD_FILE_FORMAT


def _with_syntax(ds: Dataset, syntax: str) -> Dataset:
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


# -- generated edge cases: each file is described by the quick path exactly as by pydicom's, or
# left to pydicom; which of the two is pinned, so that a faster reader defers the same files.

_LONG_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"])
_UNDEFINED = 0xFFFFFFFF
_BASE = {
    0x00080016: ("UI", b"1.2.840.10008.5.1.4.1.1.7\0"),
    0x00080018: ("UI", b"1.2.3.4.5"),  # odd length, unpadded
    0x00100010: ("PN", b"DOE^JOHN"),
    0x00100020: ("LO", b"PAT1"),
    0x0020000D: ("UI", b"1.2.3.4\0"),
    0x0020000E: ("UI", b"1.2.3.4.1\0"),
}
Raw = tuple[str, bytes] | None  # None: left out


def _element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    group, number = tag >> 16, tag & 0xFFFF
    length = _UNDEFINED if vr == "SQ" and value.endswith(b"\xfe\xff\xdd\xe0\0\0\0\0") else len(value)
    if implicit:
        return struct.pack("<HHI", group, number, length) + value
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, number, vr.encode(), 0, length) + value
    return struct.pack("<HH2sH", group, number, vr.encode(), length) + value


def _meta(syntax: str) -> bytes:
    data = to_bytes(_with_syntax(make_dataset(), syntax))
    return data[: len(data) - len(dataset_part(data))]


def _file(
    extra: dict[int, Raw], *, implicit: bool = False, syntax: str | None = None, syntax_vr: bytes = b"UI"
) -> bytes:
    elements = {tag: raw for tag, raw in {**_BASE, **extra}.items() if raw is not None}
    body = b"".join(_element(tag, *elements[tag], implicit) for tag in sorted(elements))
    meta = _meta(syntax or (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian))
    return meta.replace(b"\x02\x00\x10\x00UI", b"\x02\x00\x10\x00" + syntax_vr, 1) + body


def _item(*elements: tuple[int, str, bytes]) -> bytes:
    body = b"".join(_element(tag, vr, value, False) for tag, vr, value in elements)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


_SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_EMOJI = "\U0001f600"
EDGE_CASES: dict[str, tuple[bytes, bool]] = {  # name -> (file, described by the quick path)
    "latin-1": (
        _file({0x00080005: ("CS", b"ISO_IR 100"), 0x00100010: ("PN", "Müller^Jürgen".encode("latin-1"))}),
        True,
    ),
    "default charset, non-ascii": (_file({0x00081030: ("LO", "Étude".encode("latin-1") + b" ")}), True),
    "utf-8": (_file({0x00080005: ("CS", b"ISO_IR 192"), 0x00100010: ("PN", "王^小東=".encode())}), True),
    "utf-8 broken": (_file({0x00080005: ("CS", b"ISO_IR 192"), 0x00081030: ("LO", b"\xff\xfe ")}), False),
    "jis x 0201": (_file({0x00080005: ("CS", b"ISO_IR 13"), 0x00081030: ("LO", b"A\\B~C ")}), True),
    "escape sequences": (
        _file({0x00080005: ("CS", b"ISO 2022 IR 87"), 0x00100010: ("PN", b"\x1b$B;3ED\x1b(B")}),
        False,
    ),
    "two charsets": (_file({0x00080005: ("CS", b"\\ISO 2022 IR 87")}), False),
    "empty charset": (_file({0x00080005: ("CS", b"")}), True),
    # pydicom reads these values by the VR written, which its reader then cannot use as a name
    "charset of a number vr": (_file({0x00080005: ("IS", b"1 ")}), False),
    "charset of a name vr": (_file({0x00080005: ("PN", b"ISO_IR 100")}), False),
    "transfer syntax of another vr": (_file({}, syntax_vr=b"AE"), False),
    "transfer syntax of a number vr": (_file({}, syntax_vr=b"FL"), False),
    "gb18030": (_file({0x00080005: ("CS", b"GB18030 "), 0x00100010: ("PN", "张^三".encode("gb18030"))}), False),
    "multi-valued": (
        _file(
            {
                0x00080008: ("CS", b"ORIGINAL\\PRIMARY "),
                0x00081030: ("LO", b"one \\ two\\"),
                0x00200032: ("DS", b" 1.5\\-2e3 \\.5 "),
                0x00200037: ("DS", b"1\\0\\0\\0\\1\\0 "),
                0x00200012: ("IS", b"+1\\ 2"),
                0x00280030: ("DS", b"0.5\\0.5 "),
                0x00180088: ("DS", b"1.\\"),
                0x00181310: ("US", struct.pack("<4H", 0, 64, 64, 0)),
                0x00189306: ("FD", struct.pack("<2d", 0.6, -1e300)),
            }
        ),
        True,
    ),
    "names": (_file({0x00100010: ("PN", b"A^B\\C^D"), 0x00081070: ("PN", b"X^Y== ")}), False),
    "empty values": (
        _file({0x00100010: ("PN", b""), 0x00100030: ("DA", b""), 0x00080050: ("SH", b""), 0x00080080: ("LO", b"")}),
        True,
    ),
    "empty number string": (_file({0x00200013: ("IS", b"")}), False),
    "empty binary number": (_file({0x00280010: ("US", b"")}), False),
    "empty patient id": (_file({0x00100020: ("LO", b"  ")}), True),
    "no patient id": (_file({0x00100020: None}), True),
    "empty sop instance uid": (_file({0x00080018: ("UI", b"")}), False),
    "odd lengths": (_file({0x00080050: ("SH", b"ABC"), 0x00200011: ("IS", b"7"), 0x00080060: ("CS", b"C")}), True),
    "bad numbers": (_file({0x00200013: ("IS", b"1.5"), 0x00201002: ("IS", b"x")}), False),
    "expected instances": (
        _file({0x00201002: ("IS", b"3 "), 0x00200105: ("IS", b"4 "), 0x00200013: ("IS", b" 12 ")}),
        True,
    ),
    "cardiac images": (_file({0x00181090: ("IS", b"20"), 0x00540081: ("US", struct.pack("<H", 5))}), True),
    "lut descriptor": (_file({0x00281101: ("US", struct.pack("<3H", 256, 0, 16))}), False),
    "unknown vr content": (_file({0x00091010: ("UN", b"abcd")}), False),
    "attribute tag": (_file({0x00209165: ("AT", struct.pack("<HH", 0x0020, 0x9056))}), False),
    "64-bit numbers": (
        _file({0x00720082: ("SV", struct.pack("<q", -5)), 0x00720083: ("UV", struct.pack("<Q", 7))}),
        True,
    ),
    "private tags": (_file({0x00090010: ("LO", b"CREATOR "), 0x00091010: ("LO", b"private value ")}), True),
    "too long": (_file({0x00081030: ("LO", b"x" * 300)}), True),
    "too long in utf-8": (
        _file(
            {
                0x00080005: ("CS", b"ISO_IR 192"),
                0x00081030: ("LO", (_EMOJI * 65).encode()),
                0x0008103E: ("LO", (_EMOJI * 64).encode()),
            }
        ),
        True,
    ),
    "ae with inner spaces": (_file({0x00080054: ("AE", b" AE  ONE ")}), True),
    "url": (_file({0x00081190: ("UR", b"http://x/y  ")}), True),
    "sequence": (
        _file({0x00081140: ("SQ", _item((0x00081150, "UI", b"1.2\0"), (0x00081155, "UI", b"1.3\0")))}),
        True,
    ),
    "sequence of undefined length": (
        _file({0x00081140: ("SQ", _item((0x00081150, "UI", b"1.2\0"), (0x00200013, "IS", b"2 ")) + _SEQUENCE_END)}),
        True,
    ),
    "sequence with bad number": (  # pydicom converts it in an item, with a warning
        _file({0x00081140: ("SQ", _item((0x00200013, "IS", b"x ")) + _SEQUENCE_END)}),
        True,
    ),
    "encapsulated pixels": (
        _file({0x7FE00010: ("OB", _item() + struct.pack("<HHI", 0xFFFE, 0xE000, 4) + b"\1\2\3\4" + _SEQUENCE_END)}),
        True,
    ),
    "pixel data written as a sequence": (_file({0x7FE00010: ("SQ", _item((0x00081150, "UI", b"1.2\0")))}), True),
    "empty pixel data": (_file({0x7FE00010: ("OB", b"")}), True),  # pydicom converts it: no raw offset
    "pixels": (_file({0x00280010: ("US", struct.pack("<H", 2)), 0x7FE00010: ("OW", bytes(8))}), True),
    "implicit vr": (
        _file(
            {0x00080060: ("CS", b"OT"), 0x00200013: ("IS", b"3 "), 0x00280010: ("US", struct.pack("<H", 2))},
            implicit=True,
        ),
        True,
    ),
    "implicit vr, empty name": (_file({0x00100010: ("PN", b"")}, implicit=True), False),
    "implicit vr, group length": (_file({0x00080000: ("UL", struct.pack("<I", 10))}, implicit=True), True),
    "implicit vr, private": (_file({0x00090010: ("LO", b"CREATOR ")}, implicit=True), False),
    "implicit vr, pixels": (_file({0x7FE00010: ("OW", bytes(8))}, implicit=True), False),
    "big endian": (to_bytes(_with_syntax(make_dataset(), ExplicitVRBigEndian)), False),
    "deflated": (to_bytes(_with_syntax(make_dataset(), DeflatedExplicitVRLittleEndian)), False),
    "tag twice": (_file({}) + _element(0x00100020, "LO", b"PAT2", False), False),
    "value past the end": (_file({})[:-2], False),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_read_alike(name: str) -> None:
    data, quick = EDGE_CASES[name]
    described = describe_plain(data)
    assert (described is not None) == quick
    if described is not None:
        _same(described, data)
    else:
        assert isinstance(_pydicom_path(data), (ParsedInstance, OrthancError))  # decided there, never a crash
