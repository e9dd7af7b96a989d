"""Images made with pydicom and numpy in every transfer syntax the node decodes, for the image
routes' tests, and readers of those routes' answers (PNG/JPEG/PAM, .npy/.npz)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from .datasets import make_dataset

_COLOUR = 3
_NATIVE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian)


def frames_dataset(
    pixels: np.ndarray, *, photometric: str | None = None, bits_stored: int | None = None, **tags: Any
) -> Dataset:
    """An explicit little endian image of ``pixels``: (rows, columns), (frames, rows, columns), or either
    with a last axis of 3 samples; the sample type gives the bits and the signedness."""
    colour = pixels.shape[-1] == _COLOUR and pixels.ndim in (3, 4) and photometric != "MONOCHROME2"
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else None
    ds = make_dataset(**tags)
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = _COLOUR if colour else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    return ds


def compressed(ds: Dataset, syntax: str, **options: Any) -> Dataset:
    """``ds`` re-encoded by pydicom's encoders (RLE, JPEG-LS, JPEG 2000)."""
    ds.compress(syntax, **options)
    return ds


def jpeg_baseline(ds: Dataset, pixels: np.ndarray, quality: int = 95) -> Dataset:
    """``ds`` with ``pixels`` (8-bit, one frame) as a JPEG baseline codestream made by Pillow."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    if pixels.ndim == _COLOUR:
        ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return ds


def written(ds: Dataset, syntax: str) -> bytes:
    """The Part-10 file of a native ``ds`` in one of the uncompressed syntaxes (the big endian one
    with its samples swapped)."""
    assert syntax in _NATIVE, syntax
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax == ExplicitVRBigEndian and ds.BitsAllocated > 8:
        dtype = np.dtype(f"<u{ds.BitsAllocated // 8}")
        ds.PixelData = np.frombuffer(ds.PixelData, dtype).byteswap().tobytes()
    buffer = io.BytesIO()
    ds.save_as(
        buffer,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=syntax != ExplicitVRBigEndian,
        enforce_file_format=True,
    )
    return buffer.getvalue()


def decoded_image(content: bytes) -> np.ndarray:
    """The pixels of a PNG or JPEG answer."""
    return np.array(Image.open(io.BytesIO(content)))


def loaded_numpy(content: bytes) -> np.ndarray:
    """The array of a .npy answer, or of the one array of a .npz answer."""
    loaded = np.load(io.BytesIO(content))
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        (name,) = loaded.files
        return np.asarray(loaded[name])


def psnr(reference: np.ndarray, other: np.ndarray, peak: float) -> float:
    error = np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(peak**2 / error))
