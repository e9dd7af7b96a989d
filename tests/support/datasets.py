"""DICOM files made with pydicom, and the real scanner files shared beside the repository."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SHARED_TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
needs_testdata = pytest.mark.skipif(
    not SHARED_TESTDATA.is_dir(), reason=f"shared test data not found at {SHARED_TESTDATA}"
)
_RANDOM_PIXEL_ROWS = 512
# A Part-10 file: a 128-byte preamble, "DICM", then the file meta group, whose first element
# (0002,0000), explicit VR, gives the length of the elements after it.
_META_LENGTH_AT = slice(140, 144)
_META_START = 144


def make_dataset(
    *,
    patient_id: str = "PAT1",
    patient_name: str = "DOE^JOHN",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    instance_number: int | None = 1,
    modality: str = "CT",
    pixels: bytes | None = None,
    **extra: object,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.StudyDescription = "Test study"
    if instance_number is not None:
        ds.InstanceNumber = instance_number
    for key, value in extra.items():
        setattr(ds, key, value)
    if pixels is not None:
        ds.Rows = 1
        ds.Columns = len(pixels) // 2
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = pixels
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_dicom(**kwargs: Any) -> bytes:
    return to_bytes(make_dataset(**kwargs))


def random_pixels(size: int, **tags: Any) -> Dataset:
    """A CT dataset with ``size`` bytes (a multiple of 1024) of random 16-bit pixels: incompressible,
    so what stores, compresses or archives it handles all of its size."""
    ds = make_dataset(pixels=b"\0\0", **tags)
    ds.Rows, ds.Columns = _RANDOM_PIXEL_ROWS, size // (2 * _RANDOM_PIXEL_ROWS)
    ds.PixelData = os.urandom(size)
    return ds


def dataset_part(data: bytes) -> bytes:
    """The dataset of a Part-10 file, without preamble and file meta: what a C-STORE carries, and
    what stays identical whoever wrote the meta header. A bare dataset is returned as it is."""
    if data[128:132] != b"DICM":
        return data
    (group_length,) = struct.unpack("<I", data[_META_LENGTH_AT])  # (0002,0000) UL
    return data[_META_START + group_length :]
