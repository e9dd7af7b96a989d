"""Changing the transfer syntax of an instance: decode its pixel data, encode it again.

Pure: a Part-10 file (or a pydicom dataset) in, a Part-10 file out; CPU-heavy, so callers
run it in a worker thread. Decoding goes through pydicom 3's pixel backends (the pylibjpeg
plugins for JPEG, JPEG 2000 and RLE, pyjpegls for JPEG-LS); encoding through pydicom's
``compress`` with the same plugins, and Pillow for JPEG baseline.

Targets (:data:`ENCODABLE`): the uncompressed syntaxes (implicit and explicit little
endian, explicit big endian, deflated), RLE lossless, JPEG-LS lossless and near-lossless,
JPEG 2000 lossless and lossy, and JPEG baseline for 8-bit images. Anything else, or a
source that cannot be decoded, raises :class:`CannotTranscode`: Orthanc's internal error
with the syntax named; callers that keep the original file in that case (archives, jobs,
peers, ingest) catch it.

A lossy target marks the result as Orthanc does (through DCMTK): LossyImageCompression
"01", the ratio and method appended to those already there, the first value of ImageType
"DERIVED", a DerivationDescription, the source named in SourceImageSequence, a
DerivationCodeSequence item, and a new SOP Instance UID. That UID is derived from the
source's and the target's parameters rather than drawn: the same instance transcoded the
same way gets the same UID, so a job step redone after a crash finds its result stored.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.multival import MultiValue
from pydicom.pixels.utils import set_pixel_data
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from ..errors import ErrorCode, OrthancError
from .parse import read_dataset
from .part10 import encode_file
from .tag_numbers import PIXEL_DATA

DEFAULT_QUALITY = 90  # DicomLossyTranscodingQuality's default
JPEG_LS_NEAR = 2  # the largest error of a near-lossless JPEG-LS pixel (DCMTK's default, hence Orthanc's)
RATIO_DIGITS = 5  # significant digits of LossyImageCompressionRatio, as DCMTK writes it
MAX_SHORT_TEXT = 1024  # characters of an ST value (DerivationDescription)

UNCOMPRESSED = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian})
NATIVE = UNCOMPRESSED | {DeflatedExplicitVRLittleEndian}  # pixel data not encapsulated
LOSSY = frozenset({JPEGBaseline8Bit, JPEGLSNearLossless, JPEG2000})
ENCODABLE = NATIVE | {RLELossless, JPEGLSLossless, JPEG2000Lossless} | LOSSY
_YBR = frozenset({"YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "YBR_PARTIAL_422"})

# What a lossy target records: LossyImageCompressionMethod, and the start of DerivationDescription.
_LOSSY_METHOD = {JPEGBaseline8Bit: "ISO_10918_1", JPEGLSNearLossless: "ISO_14495_1", JPEG2000: "ISO_15444_1"}
_LOSSY_CODE = ("113040", "DCM", "Lossy Compression")  # DerivationCodeSequence
_PREDECESSOR_CODE = ("121320", "DCM", "Uncompressed predecessor")  # purpose of the SourceImageSequence item


class CannotTranscode(OrthancError):
    """The target syntax cannot be written, or the source cannot be decoded: Orthanc's error -1."""

    def __init__(self, target: str, reason: str = "") -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, f"Cannot transcode to transfer syntax: {target}")
        self.target = target
        self.reason = reason  # for the logs: what exactly failed

    def __reduce__(self) -> tuple[type[CannotTranscode], tuple[str, str]]:
        """Rebuilt from its own arguments when it crosses a process boundary."""
        return CannotTranscode, (self.target, self.reason)


@dataclass(frozen=True)
class Transcoded:
    data: bytes  # the Part-10 file
    changed: bool  # False: the source was in the target syntax already, ``data`` is the source


def j2k_ratio(quality: int) -> float:
    """The compression ratio of lossy JPEG 2000 for a quality of 1 to 100 (no quality factor
    exists there as in JPEG): 100 gives 1:1, 90 (the default) 11:1, 1 gives 100:1."""
    return float(101 - max(1, min(100, quality)))


# Binary VRs whose values are sequences of numbers of this many bytes: their byte order
# follows the transfer syntax (Pixel Data: the size of BitsAllocated instead).
_WORD_SIZES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}


def _word_swapped(data: bytes, size: int) -> bytes:
    """``data`` with the bytes of each ``size``-byte word reversed (little <-> big endian)."""
    if size <= 1:
        return data
    usable = len(data) - len(data) % size
    swapped = np.frombuffer(data[:usable], dtype=f"<u{size}").byteswap().tobytes()
    return swapped + data[usable:]


def _swap_byte_order(dataset: Dataset) -> None:
    """Reverse the byte order of the binary values of ``dataset`` and its items, in place.

    pydicom converts numbers (US, SL, FD...) when it writes another endianness, but copies
    OW-like values as they are: moving between little and big endian swaps them here.
    """
    bits = int(dataset.get("BitsAllocated", 8))
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                _swap_byte_order(item)
        elif isinstance(element.value, bytes) and not element.is_undefined_length:
            size = bits // 8 if element.tag == PIXEL_DATA else _WORD_SIZES.get(element.VR, 1)
            element.value = _word_swapped(element.value, size)


def _pixel_vr(dataset: Dataset, syntax: UID) -> str:
    return "OB" if dataset.get("BitsAllocated", 16) <= 8 and not syntax.is_implicit_VR else "OW"


def _as_native_little(dataset: Dataset, *, interleaved: bool) -> None:
    """Decode the pixel data in place into native little endian frames (Explicit VR Little Endian).

    Encapsulated data is decompressed (colour ends up RGB); native big endian data is swapped.
    ``interleaved`` (compressed targets): colour data also becomes RGB, sample-interleaved.
    """
    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax.is_compressed:
        dataset.decompress(generate_instance_uid=False)
        return
    if not syntax.is_little_endian:
        _swap_byte_order(dataset)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    samples = int(dataset.get("SamplesPerPixel", 1))
    colour = str(dataset.get("PhotometricInterpretation", ""))
    if interleaved and samples > 1 and (colour in _YBR or dataset.get("PlanarConfiguration", 0) == 1):
        pixels = dataset.pixel_array  # pydicom: colour made RGB, planes interleaved
        photometric = "RGB" if colour in _YBR else colour
        set_pixel_data(dataset, pixels, photometric, int(dataset.BitsStored), generate_instance_uid=False)


def _frames(dataset: Dataset) -> list[np.ndarray]:
    """The frames of native pixel data, each (rows, columns) or (rows, columns, samples)."""
    pixels = dataset.pixel_array
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        return list(pixels)
    return [pixels]


def _jpeg_baseline_frames(dataset: Dataset, quality: int) -> list[bytes]:
    """Each frame as a JPEG baseline codestream (Pillow): 8-bit unsigned grey or RGB only;
    colour is written as YCbCr with 4:2:2 chroma subsampling (YBR_FULL_422)."""
    photometric = str(dataset.get("PhotometricInterpretation", ""))
    samples = int(dataset.get("SamplesPerPixel", 1))
    grey = samples == 1 and photometric in ("MONOCHROME1", "MONOCHROME2")
    colour = samples == 3 and photometric == "RGB"
    if dataset.get("BitsAllocated") != 8 or dataset.get("PixelRepresentation", 0) != 0 or not (grey or colour):
        raise ValueError("JPEG baseline needs 8-bit unsigned greyscale or RGB pixels")
    encoded = []
    for frame in _frames(dataset):
        buffer = io.BytesIO()
        image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB" if colour else "L")
        image.save(buffer, "JPEG", quality=quality, subsampling=1 if colour else 0)  # 1: 4:2:2
        encoded.append(buffer.getvalue())
    if colour:
        dataset.PhotometricInterpretation = "YBR_FULL_422"
    return encoded


def _uncompressed_size(dataset: Dataset) -> int:
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1))
    return int(dataset.Rows) * int(dataset.Columns) * samples * frames * int(dataset.BitsAllocated) // 8


def _appended(dataset: Dataset, keyword: str, value: str, length: int) -> list[str]:
    """The values of a multi-valued element with ``value`` appended, padded to ``length`` values first."""
    current = dataset.get(keyword)
    if current is None or current == "":
        values: list[str] = []
    elif isinstance(current, (list, MultiValue)):
        values = [str(v) for v in current]
    else:
        values = [str(current)]
    return [*values, *[""] * (length - len(values)), value]


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _description(target: UID, quality: int, ratio: str) -> str:
    if target == JPEGBaseline8Bit:
        return f"Lossy compression with JPEG baseline, IJG quality factor {quality}, compression ratio {ratio}"
    if target == JPEGLSNearLossless:
        return f"near lossless JPEG-LS compression, factor {ratio} (NEAR={JPEG_LS_NEAR})"
    return f"Lossy compression with JPEG 2000, compression ratio {ratio}"


def lossy_instance_uid(source_uid: str, target: str, quality: int) -> str:
    """The SOP Instance UID of a lossy copy: the same for the same source, target and quality."""
    return str(generate_uid(entropy_srcs=[source_uid, target, str(quality)]))


def _mark_lossy(dataset: Dataset, target: UID, quality: int, ratio: float) -> None:
    """Record a lossy compression in the dataset as DCMTK does for Orthanc (see the module's docstring)."""
    text = f"{ratio:.{RATIO_DIGITS}g}"
    ratios = dataset.get("LossyImageCompressionRatio")
    count = 0 if ratios is None or ratios == "" else len(ratios) if isinstance(ratios, (list, MultiValue)) else 1
    dataset.LossyImageCompression = "01"
    dataset.LossyImageCompressionMethod = _appended(
        dataset, "LossyImageCompressionMethod", _LOSSY_METHOD[target], count
    )
    dataset.LossyImageCompressionRatio = _appended(dataset, "LossyImageCompressionRatio", text, count)
    image_type = dataset.get("ImageType")
    if image_type:
        values = list(image_type) if isinstance(image_type, (list, MultiValue)) else [str(image_type)]
        dataset.ImageType = ["DERIVED", *values[1:]]
    description = _description(target, quality, text)
    previous = dataset.get("DerivationDescription")
    if previous:  # the earlier derivation goes along, in brackets, within the length of an ST
        description = f"{description} [{previous}]"
        if len(description) > MAX_SHORT_TEXT:
            description = description[: MAX_SHORT_TEXT - 4] + "...]"
    dataset.DerivationDescription = description
    source = Dataset()
    source.ReferencedSOPClassUID = dataset.SOPClassUID
    source.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    source.PurposeOfReferenceCodeSequence = DicomSequence([_code_item(*_PREDECESSOR_CODE)])
    dataset.SourceImageSequence = DicomSequence([*dataset.get("SourceImageSequence", []), source])
    dataset.DerivationCodeSequence = DicomSequence(
        [*dataset.get("DerivationCodeSequence", []), _code_item(*_LOSSY_CODE)]
    )
    dataset.SOPInstanceUID = lossy_instance_uid(str(dataset.SOPInstanceUID), str(target), quality)


def _encapsulated(dataset: Dataset, target: UID, frames: Sequence[bytes]) -> None:
    dataset.PixelData = encapsulate(list(frames))
    element = dataset[PIXEL_DATA]
    element.VR, element.is_undefined_length = "OB", True
    dataset.file_meta.TransferSyntaxUID = target


# A context in which the JPEG 2000 encoder runs: pylibjpeg-openjpeg's crashes the process when
# two threads encode at once, so a caller running transcodings in threads passes a lock.
EncoderGuard = Callable[[], contextlib.AbstractContextManager[object]]
_J2K = frozenset({JPEG2000Lossless, JPEG2000})


def _compress(dataset: Dataset, target: UID, quality: int, j2k_guard: EncoderGuard) -> list[bytes] | None:
    """Encode native little endian pixel data in place into ``target``; the encoded frames of
    a lossy target (to measure the ratio), else None."""
    if target == JPEGBaseline8Bit:
        frames = _jpeg_baseline_frames(dataset, quality)
        _encapsulated(dataset, target, frames)
        return frames
    with j2k_guard() if target in _J2K else contextlib.nullcontext():
        dataset.compress(
            target,
            generate_instance_uid=False,
            jls_error=JPEG_LS_NEAR if target == JPEGLSNearLossless else None,
            j2k_cr=[j2k_ratio(quality)] if target == JPEG2000 else None,
        )
    if target not in LOSSY:
        return None
    return list(generate_frames(dataset.PixelData, number_of_frames=int(dataset.get("NumberOfFrames", 1) or 1)))


def _to_native(dataset: Dataset, target: UID) -> None:
    """Native pixel data (decoded already, little endian) written in an uncompressed syntax."""
    if target == ExplicitVRBigEndian:
        _swap_byte_order(dataset)
    if PIXEL_DATA in dataset:
        element = dataset[PIXEL_DATA]
        element.VR, element.is_undefined_length = _pixel_vr(dataset, target), False
    dataset.file_meta.TransferSyntaxUID = target


# Failures of the codecs on data they cannot handle: refused, as Orthanc refuses them.
_CODEC_ERRORS = (ValueError, RuntimeError, NotImplementedError, TypeError, KeyError, AttributeError, OSError)


def transcode_dataset(
    dataset: Dataset,
    target: str,
    *,
    quality: int = DEFAULT_QUALITY,
    lossy: bool = True,
    j2k_guard: EncoderGuard = contextlib.nullcontext,
) -> bytes:
    """``dataset`` (changed in place) as a Part-10 file in ``target``.

    ``lossy`` False refuses a lossy target (a C-STORE may not give the instance a new UID).
    ``j2k_guard``: entered around the JPEG 2000 encoder (see :data:`EncoderGuard`).
    """
    syntax = UID(target)
    if syntax not in ENCODABLE or (syntax in LOSSY and not lossy):
        raise CannotTranscode(target, "no encoder for this syntax")
    try:
        if PIXEL_DATA not in dataset:  # nothing to encode: only the dataset's own encoding changes
            _to_native(dataset, syntax if syntax in NATIVE else ExplicitVRLittleEndian)
            dataset.file_meta.TransferSyntaxUID = syntax
        elif syntax in NATIVE:
            source = dataset.file_meta.TransferSyntaxUID
            if source.is_compressed or not source.is_little_endian:
                _as_native_little(dataset, interleaved=False)
            if syntax == DeflatedExplicitVRLittleEndian and not source.is_little_endian:
                # pydicom deflates only a dataset read in little endian: read it back in that encoding first
                dataset = read_dataset(encode_file(dataset))
            _to_native(dataset, syntax)
        else:
            _as_native_little(dataset, interleaved=True)
            uncompressed = _uncompressed_size(dataset)
            frames = _compress(dataset, syntax, quality, j2k_guard)
            if frames is not None:
                _mark_lossy(dataset, syntax, quality, uncompressed / max(1, sum(len(f) for f in frames)))
        return encode_file(dataset)
    except OrthancError:
        raise
    except _CODEC_ERRORS as error:
        raise CannotTranscode(target, f"{type(error).__name__}: {error}") from error


def transcode(
    data: bytes,
    target: str,
    *,
    quality: int = DEFAULT_QUALITY,
    lossy: bool = True,
    j2k_guard: EncoderGuard = contextlib.nullcontext,
) -> Transcoded:
    """The Part-10 file ``data`` in ``target``; itself when already in that syntax."""
    dataset = read_dataset(data)
    source = str(dataset.file_meta.get("TransferSyntaxUID", ""))
    if source == str(UID(target)):
        return Transcoded(data, changed=False)
    return Transcoded(
        transcode_dataset(dataset, target, quality=quality, lossy=lossy, j2k_guard=j2k_guard), changed=True
    )
