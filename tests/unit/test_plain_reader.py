"""The quick path of ingest (node/dicom/plain_reader.py) describes a file exactly as pydicom's
path does, or leaves it to that path: never a different answer, never a file that path refuses."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from node.dicom.parse import ParsedInstance, describe_instance, describe_plain, parse_instance, read_dataset
from node.errors import ErrorCode, OrthancError
from tests.support.datasets import SHARED_TESTDATA, make_dataset, make_dicom, needs_testdata, to_bytes

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
