"""node.dicom.rendering.png: PNG files that decode to the image given, in every layout the image
routes answer with (8-bit gray and RGB, 16-bit gray unsigned or signed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from node.dicom.rendering import png

_RNG = np.random.default_rng(7)


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


@pytest.mark.parametrize(
    "image",
    [
        _RNG.integers(0, 256, (37, 53), dtype=np.uint8),
        _RNG.integers(0, 256, (21, 17, 3), dtype=np.uint8),
        _RNG.integers(0, 1 << 16, (19, 23), dtype=np.uint16),
        np.zeros((1, 1), dtype=np.uint8),
        np.arange(300, dtype=np.uint16).reshape(1, 300),
    ],
    ids=["gray8", "rgb", "gray16", "one-pixel", "one-row"],
)
def test_the_file_decodes_to_the_image(image: np.ndarray) -> None:
    decoded = _decoded(png(image))
    assert decoded.shape == image.shape
    assert np.array_equal(decoded.astype(np.int64), image.astype(np.int64))


def test_signed_samples_keep_their_twos_complement_bits() -> None:
    image = _RNG.integers(-(1 << 15), 1 << 15, (13, 29), dtype=np.int16)
    assert np.array_equal(_decoded(png(image)).astype(np.uint16), image.view(np.uint16))


def test_smooth_images_are_compressed() -> None:
    rows, columns = np.mgrid[0:256, 0:256]
    image = ((rows + columns) // 2).astype(np.uint8)
    assert len(png(image)) < image.nbytes // 4
