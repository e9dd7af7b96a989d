"""node.dicom.transcode: every pair of syntaxes we encode, round trips, lossy marks and refusals.

Lossless targets must give back the very pixels (decode(encode(x)) == x) from whatever syntax
the instance was in; lossy ones must stay above a stated PSNR and carry Orthanc's marks of a
lossy compression.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from node.dicom.transcode import (
    ENCODABLE,
    JPEG_LS_NEAR,
    LOSSY,
    CannotTranscode,
    j2k_ratio,
    lossy_instance_uid,
    transcode,
)
from node.errors import ErrorCode
from node.services.transcoding import TranscodingSettings, transcoded_or_original
from tests.support.datasets import to_bytes
from tests.support.images import image_dataset, psnr

LOSSLESS = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
]
SIDE, FRAMES = 32, 2
# Bounds of the lossy targets at the default quality, on the smooth noisy images below.
JPEG_BASELINE_PSNR = 33.0  # dB, 8-bit, IJG quality 90 (4:2:2 chroma for colour)
JPEG_2000_PSNR = 45.0  # dB against the stored bits' range, ratio 11:1


def _pixels(kind: str) -> np.ndarray:
    """Two frames of smooth content with noise: "ct" (signed 16-bit), "grey8", "rgb"."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    frames = []
    for n in range(FRAMES):
        base = x * 5.0 + y * 3.0 + n * 17
        if kind == "ct":
            frames.append((base * 8 - 1000 + rng.normal(0, 3, base.shape)).astype(np.int16))
        elif kind == "grey8":
            frames.append(np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8))
        else:
            planes = [base, 255 - base, (x * 6.0 + n * 9) % 256]
            noisy = [np.clip(p + rng.normal(0, 2, base.shape), 0, 255) for p in planes]
            frames.append(np.stack(noisy, axis=-1).astype(np.uint8))
    return np.stack(frames)


def _file(kind: str) -> bytes:
    return to_bytes(image_dataset(_pixels(kind), ImageType=["ORIGINAL", "PRIMARY", "AXIAL"]))


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


@pytest.mark.parametrize("kind", ["ct", "grey8", "rgb"])
def test_every_lossless_pair_gives_the_pixels_back(kind: str) -> None:
    original = _file(kind)
    expected = _pixels(kind)
    sources = {syntax: transcode(original, syntax).data for syntax in LOSSLESS}
    for source, target in itertools.product(LOSSLESS, LOSSLESS):
        result = transcode(sources[source], target)
        ds = _read(result.data)
        assert ds.file_meta.TransferSyntaxUID == target
        assert np.array_equal(ds.pixel_array, expected), (kind, source, target)
        assert "LossyImageCompression" not in ds and ds.SOPInstanceUID == _read(original).SOPInstanceUID


def test_the_same_syntax_gives_the_file_itself() -> None:
    original = _file("ct")
    result = transcode(original, ExplicitVRLittleEndian)
    assert result.data is original and not result.changed


@pytest.mark.parametrize("kind", ["grey8", "rgb"])
def test_jpeg_baseline_within_its_bound_and_marked_lossy(kind: str) -> None:
    original = _file(kind)
    source = _read(original)
    for start in (original, transcode(original, JPEG2000Lossless).data):
        ds = _read(transcode(start, JPEGBaseline8Bit).data)
        assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
        assert psnr(_pixels(kind), ds.pixel_array, 255) > JPEG_BASELINE_PSNR
        assert ds.PhotometricInterpretation == ("YBR_FULL_422" if kind == "rgb" else "MONOCHROME2")
        assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod == "ISO_10918_1"
        assert float(ds.LossyImageCompressionRatio) > 1
        assert ds.DerivationDescription.startswith("Lossy compression with JPEG baseline, IJG quality factor 90")
        assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "AXIAL"]
        reference = ds.SourceImageSequence[0]
        assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121320"
        assert ds.DerivationCodeSequence[0].CodeValue == "113040"
        assert ds.SOPInstanceUID == lossy_instance_uid(source.SOPInstanceUID, JPEGBaseline8Bit, 90)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_lossy_jpeg_2000_and_jpeg_ls() -> None:
    original = _file("ct")
    expected = _pixels("ct")
    j2k = _read(transcode(original, JPEG2000).data)
    assert psnr(expected, j2k.pixel_array, 2**16 - 1) > JPEG_2000_PSNR
    assert j2k.LossyImageCompressionMethod == "ISO_15444_1"
    near = _read(transcode(original, JPEGLSNearLossless).data)
    assert np.abs(near.pixel_array.astype(int) - expected).max() <= JPEG_LS_NEAR
    assert near.DerivationDescription.endswith(f"(NEAR={JPEG_LS_NEAR})")
    assert near.LossyImageCompressionMethod == "ISO_14495_1"
    # Lossy again: the ratios and methods pile up, as DCMTK writes them.
    again = _read(transcode(transcode(original, JPEG2000).data, JPEGLSNearLossless).data)
    assert list(again.LossyImageCompressionMethod) == ["ISO_15444_1", "ISO_14495_1"]
    assert len(again.LossyImageCompressionRatio) == 2 and len(again.SourceImageSequence) == 2
    assert again.DerivationDescription.count("[") == 1  # the first derivation, in brackets


def test_lossy_quality_is_a_parameter() -> None:
    original = _file("grey8")
    low = transcode(original, JPEGBaseline8Bit, quality=10).data
    high = transcode(original, JPEGBaseline8Bit, quality=100).data
    assert len(low) < len(high)
    assert j2k_ratio(90) == 11 and j2k_ratio(100) == 1 and j2k_ratio(1) == 100


def test_refusals_are_orthancs_internal_error() -> None:
    original = _file("ct")
    for target in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, MPEG2MPML):  # 16-bit; no encoders
        with pytest.raises(CannotTranscode) as refused:
            transcode(original, target)
        assert refused.value.code == ErrorCode.INTERNAL_ERROR
        assert refused.value.details == f"Cannot transcode to transfer syntax: {target}"
    with pytest.raises(CannotTranscode):
        transcode(_file("grey8"), JPEGBaseline8Bit, lossy=False)  # a C-STORE may not change the UID
    corrupt = _read(transcode(original, JPEG2000Lossless).data)
    corrupt.PixelData = corrupt.PixelData[:40] + b"\0" * (len(corrupt.PixelData) - 40)
    with pytest.raises(CannotTranscode):
        transcode(to_bytes(corrupt), ExplicitVRLittleEndian)
    assert transcoded_or_original(original, JPEGBaseline8Bit, 90) is original  # the callers that keep it
    assert JPEGLosslessSV1 not in ENCODABLE and RLELossless in ENCODABLE and JPEG2000 in LOSSY


def test_an_instance_without_pixels_is_only_relabelled() -> None:
    ds = image_dataset(_pixels("grey8"))
    del ds.PixelData
    for target in (ImplicitVRLittleEndian, JPEGLSLossless, ExplicitVRBigEndian):
        result = _read(transcode(to_bytes(ds), target).data)
        assert result.file_meta.TransferSyntaxUID == target and result.PatientID == ds.PatientID


def test_binary_values_follow_big_endian() -> None:
    ds = image_dataset(_pixels("grey8")[0])
    ds.RedPaletteColorLookupTableData = np.arange(4, dtype="<u2").tobytes()
    ds["RedPaletteColorLookupTableData"].VR = "OW"
    big = transcode(to_bytes(ds), ExplicitVRBigEndian).data
    assert np.frombuffer(_read(big).RedPaletteColorLookupTableData, ">u2").tolist() == [0, 1, 2, 3]
    back = _read(transcode(big, ExplicitVRLittleEndian).data)
    assert back.RedPaletteColorLookupTableData == ds.RedPaletteColorLookupTableData


def test_ingest_transcoding_rules() -> None:
    settings = TranscodingSettings(ingest_syntax=JPEGLSLossless, ingest_compressed=False)
    assert settings.ingest_target(ExplicitVRLittleEndian) == JPEGLSLossless
    assert settings.ingest_target(JPEGLSLossless) is None  # already there
    assert settings.ingest_target(JPEG2000Lossless) is None  # compressed ones left alone
    assert settings.ingest_target(MPEG2MPML) is None  # video: never
    assert TranscodingSettings().ingest_target(ExplicitVRLittleEndian) is None
