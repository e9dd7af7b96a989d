"""Generated images: datasets made from numpy arrays, written in any transfer syntax, and the
decoding of the answers of the image routes.

Everything is made here with numpy, pydicom and Pillow, independently of the node's own
encoders, so that a test of decoding does not rest on the code it checks.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, JPEGBaseline8Bit

from .datasets import make_dataset

STUDY_UID = "1.2.826.0.1.3680043.8.498.77"  # one study for every generated image: series group as asked
JPEG_QUALITY = 95
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422")


def _is_colour(pixels: np.ndarray, photometric: str | None) -> bool:
    if photometric is not None:
        return photometric in _COLOUR
    return pixels.dtype == np.uint8 and pixels.ndim >= 3 and pixels.shape[-1] == 3


def image_dataset(
    pixels: np.ndarray,
    *,
    bits_stored: int | None = None,
    photometric: str | None = None,
    series_uid: str | None = None,
    instance_number: int | None = 1,
    **tags: Any,
) -> Dataset:
    """A dataset (Explicit VR Little Endian, file meta included) holding ``pixels``: (rows, columns)
    or (frames, rows, columns) greyscale, (rows, columns, 3) or (frames, rows, columns, 3) colour."""
    colour = _is_colour(pixels, photometric)
    frames = pixels.ndim - (3 if colour else 2)
    ds = make_dataset(study_uid=STUDY_UID, series_uid=series_uid, instance_number=instance_number, **tags)
    shape = pixels.shape[frames:]
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if np.issubdtype(pixels.dtype, np.signedinteger) else 0
    if frames:
        ds.NumberOfFrames = int(pixels.shape[0])
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def written(dataset: Dataset, syntax: str) -> bytes:
    """``dataset`` as a Part-10 file in a native (not encapsulated) syntax."""
    ds = copy.deepcopy(dataset)
    uid = UID(syntax)
    if uid == ExplicitVRBigEndian and ds.BitsAllocated > 8:
        size = ds.BitsAllocated // 8
        ds.PixelData = np.frombuffer(ds.PixelData, dtype=f"<u{size}").byteswap().tobytes()
    ds.file_meta.TransferSyntaxUID = uid
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=uid.is_implicit_VR, little_endian=uid.is_little_endian)
    return buffer.getvalue()


def compressed(dataset: Dataset, syntax: str, **options: Any) -> Dataset:
    """``dataset`` compressed in place by pydicom's encoders (RLE, JPEG-LS, JPEG 2000)."""
    dataset.compress(syntax, generate_instance_uid=False, **options)
    return dataset


def jpeg_baseline(dataset: Dataset, pixels: np.ndarray) -> Dataset:
    """``dataset`` with ``pixels`` (one 8-bit frame) as JPEG baseline, encoded by Pillow."""
    colour = pixels.ndim == 3
    buffer = io.BytesIO()
    # 4:4:4: no chroma subsampling, so that sharp colour ramps survive within the tests' bounds
    Image.fromarray(pixels, "RGB" if colour else "L").save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset["PixelData"].VR, dataset["PixelData"].is_undefined_length = "OB", True
    if colour:
        dataset.PhotometricInterpretation = "YBR_FULL_422"
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return dataset


def decoded_image(content: bytes) -> np.ndarray:
    """The pixels of a PNG or JPEG answer."""
    return np.array(Image.open(io.BytesIO(content)))


def loaded_numpy(content: bytes) -> np.ndarray:
    """The array of a /numpy answer (a .npy file)."""
    return np.load(io.BytesIO(content), allow_pickle=False)


def psnr(reference: np.ndarray, other: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB of ``other`` against ``reference``."""
    error = np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(peak**2 / error))
