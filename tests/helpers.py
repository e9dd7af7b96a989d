"""Test data made with pydicom, and the DCMTK tools found outside the venv."""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SHARED_TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


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


def make_dicom(**kwargs: object) -> bytes:
    return to_bytes(make_dataset(**kwargs))  # type: ignore[arg-type]


def dcmtk_tool(name: str) -> str | None:
    """A DCMTK binary by absolute path, skipping the venv's same-named scripts."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return shutil.which(name, path=path)
