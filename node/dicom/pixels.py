"""One frame of an instance's pixel data, decoded into the pixel layouts Orthanc's images have.

Decoding is split in two so that the shared, parsed dataset is held only briefly:
:func:`frame_of` copies out of the dataset what one frame needs (its encoded bytes, the
Image Pixel attributes, the palette) and :func:`decode` turns that into a numpy array,
alone, on any thread. Native (uncompressed) frames are cut out of the pixel data by
pydicom already as arrays (a copy of one frame, no codec involved); encapsulated frames
keep their codestream and are decoded by pydicom's decoders (pylibjpeg's libjpeg,
openjpeg and RLE plugins, pyjpegls, Pillow).

The arrays follow Orthanc's pixel formats: a 2-D ``uint8``/``uint16``/``int16`` array for a
grayscale frame (8-bit signed samples widened to ``int16``, 32-bit ones kept), a
``(rows, columns, 3)`` ``uint8`` array for a colour one (YBR frames converted to RGB,
palette indices looked up), ``uint16`` for a 16-bit colour one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian

from ..errors import ErrorCode, OrthancError

JPEG_BASELINE: Final = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED: Final = "1.2.840.10008.1.2.4.51"
JPEG_2000_SYNTAXES: Final = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})
# Videos: their fragments are one stream, so they count as one frame whatever NumberOfFrames says.
VIDEO_SYNTAXES: Final = frozenset(
    {
        "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
    }
)  # fmt: skip
MIME_JPEG: Final = "image/jpeg"
MIME_JPEG_2000: Final = "image/jp2"
MIME_BINARY: Final = "application/octet-stream"

PALETTE: Final = "PALETTE COLOR"
MONOCHROME1: Final = "MONOCHROME1"
_COLOUR_SAMPLES: Final = 3
_SOS_MARKER: Final = b"\xff\xda"
_LAST_DCT_COEFFICIENT: Final = 63
# Pillow decodes 8-bit JPEG with libjpeg-turbo, whose output is IJG's to the value (the
# decoder DCMTK and so Orthanc use); pydicom's other plugins round differently.
_PREFERRED_PLUGIN: Final = {JPEG_BASELINE: "pillow", JPEG_EXTENDED: "pillow"}
_PILLOW_JPEG_BITS: Final = 8
# Failures of the codecs on a corrupt or unexpected codestream: they fail the frame only.
_CODEC_ERRORS: Final = (ValueError, RuntimeError, TypeError, IndexError, KeyError, AttributeError, OSError)


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel attributes that say how to read one frame."""

    transfer_syntax: str
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int

    def decode_options(self) -> dict[str, Any]:
        """pydicom's decoding options for one frame given as a buffer."""
        return {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "pixel_representation": int(self.signed),
            "photometric_interpretation": self.photometric,
            "planar_configuration": self.planar,
            "number_of_frames": 1,
            "pixel_keyword": "PixelData",
        }


@dataclass(frozen=True)
class Frame:
    """What decoding one frame needs, independent of the dataset it came from.

    ``native`` holds the frame of an uncompressed file as pydicom cut it out; ``codestream``
    the encoded frame of a compressed one. ``palette`` maps each stored index to its RGB
    value (PALETTE COLOR only)."""

    description: PixelDescription
    native: np.ndarray | None = None
    codestream: bytes = b""
    palette: np.ndarray | None = None


def _int(dataset: Dataset, keyword: str, default: int | None = None) -> int:
    value = dataset.get(keyword)
    if isinstance(value, MultiValue):
        value = value[0] if value else None
    if value is None or value == "":
        if default is None:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"The image has no {keyword}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"The image has a bad {keyword}") from None


def transfer_syntax(dataset: Dataset) -> str:
    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return str(uid) if uid else ExplicitVRLittleEndian


def frame_count(dataset: Dataset) -> int:
    """The frames of the instance as Orthanc counts them: NumberOfFrames, 1 without it, 1 for a video."""
    if transfer_syntax(dataset) in VIDEO_SYNTAXES:
        return 1
    value = dataset.get("NumberOfFrames")
    if isinstance(value, MultiValue):
        value = value[0] if value else None
    if value is None or value == "":
        return 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if count < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "NumberOfFrames is not a count")
    return count


def describe(dataset: Dataset) -> PixelDescription:
    if "PixelData" not in dataset:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "The instance has no pixel data")
    bits_allocated = _int(dataset, "BitsAllocated")
    return PixelDescription(
        transfer_syntax=transfer_syntax(dataset),
        rows=_int(dataset, "Rows"),
        columns=_int(dataset, "Columns"),
        samples=_int(dataset, "SamplesPerPixel", 1),
        bits_allocated=bits_allocated,
        bits_stored=_int(dataset, "BitsStored", bits_allocated),
        signed=_int(dataset, "PixelRepresentation", 0) == 1,
        photometric=str(dataset.get("PhotometricInterpretation") or "MONOCHROME2").strip(),
        planar=_int(dataset, "PlanarConfiguration", 0),
    )


def _check_index(dataset: Dataset, index: int) -> int:
    count = frame_count(dataset)
    if not 0 <= index < count:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    return count


def _encapsulated(dataset: Dataset) -> bool:
    return bool(UID(transfer_syntax(dataset)).is_compressed)


def _codestream(dataset: Dataset, index: int, count: int) -> bytes:
    try:
        return bytes(get_frame(dataset.PixelData, index, number_of_frames=count))
    except _CODEC_ERRORS as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot find frame {index} in the pixel data: {exc}") from None


def raw_frame(dataset: Dataset, index: int) -> tuple[bytes, str]:
    """The frame as stored (a codestream, or the native bytes) and its media type."""
    count = _check_index(dataset, index)
    syntax = transfer_syntax(dataset)
    if "PixelData" not in dataset:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "The instance has no pixel data")
    if _encapsulated(dataset):
        data = _codestream(dataset, index, count)
    else:
        description = describe(dataset)
        size = description.rows * description.columns * description.samples * description.bits_allocated // 8
        pixels = dataset.PixelData
        if len(pixels) < size * count:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The pixel data is shorter than its frames")
        data = bytes(pixels[index * size : (index + 1) * size])
    if syntax == JPEG_BASELINE:
        return data, MIME_JPEG
    return data, MIME_JPEG_2000 if syntax in JPEG_2000_SYNTAXES else MIME_BINARY


def _palette(dataset: Dataset, description: PixelDescription) -> np.ndarray:
    """Every index the frame may hold (its stored bits) -> its RGB value, as pydicom reads the LUTs."""
    indices = np.arange(
        1 << min(description.bits_stored, 16), dtype=np.uint16 if description.bits_stored > 8 else np.uint8
    )
    try:
        table = apply_color_lut(indices, dataset)
    except _CODEC_ERRORS as exc:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"Unusable palette color lookup table: {exc}") from None
    if description.bits_allocated == 8 and table.dtype == np.uint16:
        # 8-bit answers keep the top 8 of the bits the LUT descriptor says its entries use.
        descriptor = dataset.get("RedPaletteColorLookupTableDescriptor") or [0, 0, 16]
        table = (table >> max(int(descriptor[2]) - 8, 0)).astype(np.uint8)
    return np.ascontiguousarray(table)


def check_decodable(dataset: Dataset, index: int) -> int:
    """The frame count, if frame ``index`` exists; else, as Orthanc fails to decode it, error 3 for
    native data and error 15 for encapsulated data (whose codec finds no such frame)."""
    try:
        return _check_index(dataset, index)
    except OrthancError as error:
        if error.code == ErrorCode.PARAMETER_OUT_OF_RANGE and _encapsulated(dataset):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"The pixel data has no frame {index}") from None
        raise


def frame_of(dataset: Dataset, index: int) -> Frame:
    """Copy out of ``dataset`` what decoding frame ``index`` needs (see :func:`check_decodable`)."""
    count = check_decodable(dataset, index)
    description = describe(dataset)
    palette = _palette(dataset, description) if description.photometric == PALETTE else None
    if _encapsulated(dataset):
        return Frame(description, codestream=_codestream(dataset, index, count), palette=palette)
    try:
        native = pixel_array(dataset, index=index if count > 1 else None)
    except _CODEC_ERRORS as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot read the pixel data: {exc}") from None
    return Frame(description, native=np.array(native, copy=True), palette=palette)


def _sequential_scan_fixed(codestream: bytes) -> bytes:
    """The codestream with the spectral selection of its first scan set to 0..63.

    A sequential (non-progressive) JPEG scan always codes all 64 coefficients, so the field
    means nothing there; some encoders write 0..0. IJG's decoder ignores it, libjpeg refuses it.
    """
    at = codestream.find(_SOS_MARKER)
    if at < 0 or at + 5 >= len(codestream):
        return codestream
    components = codestream[at + 4]
    end_of_selection = at + 5 + 2 * components + 1
    if end_of_selection >= len(codestream) or codestream[end_of_selection] == _LAST_DCT_COEFFICIENT:
        return codestream
    fixed = bytearray(codestream)
    fixed[end_of_selection] = _LAST_DCT_COEFFICIENT
    return bytes(fixed)


def _decode_codestream(description: PixelDescription, codestream: bytes) -> np.ndarray:
    syntax = description.transfer_syntax
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"No decoder for the transfer syntax {syntax}") from None
    if not decoder.is_available:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"No decoder installed for the transfer syntax {syntax}")
    plugin = _PREFERRED_PLUGIN.get(syntax, "") if description.bits_stored <= _PILLOW_JPEG_BITS else ""
    if syntax in _PREFERRED_PLUGIN:
        codestream = _sequential_scan_fixed(codestream)
    try:
        array, _ = decoder.as_array(
            encapsulate([codestream]), index=0, decoding_plugin=plugin, **description.decode_options()
        )
    except _CODEC_ERRORS as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot decode the frame: {exc}") from None
    return array


def decode(frame: Frame) -> np.ndarray:
    """The frame's pixels in Orthanc's layout (see the module's docstring)."""
    description = frame.description
    array = frame.native if frame.native is not None else _decode_codestream(description, frame.codestream)
    if frame.palette is not None:
        indices = array if array.ndim == 2 else array[..., 0]
        return frame.palette[np.clip(indices, 0, len(frame.palette) - 1)]
    if description.samples == _COLOUR_SAMPLES and array.ndim == 3 and array.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(array)
    if description.samples != 1 or array.ndim != 2 or array.dtype.kind not in "ui":
        raise OrthancError(
            ErrorCode.NOT_IMPLEMENTED,
            f"Unsupported image: {description.samples} samples of {description.bits_stored} bits, {description.photometric}",
        )
    if array.dtype == np.int8:
        return array.astype(np.int16)
    return np.ascontiguousarray(array)
