"""The image routes on generated images: frames, decoding of every transfer syntax, the preview,
/rendered's windowing and resizing, the extractions, numpy and Matlab answers.

The expected values are computed here from the rules Orthanc 1.10.1 applies (checked against
it on the shared test data by tests/interop/test_images_orthanc.py)."""

from __future__ import annotations

import gzip

import httpx
import numpy as np
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from tests.support.frames import (
    compressed,
    decoded_image,
    frames_dataset,
    jpeg_baseline,
    loaded_numpy,
    psnr,
    written,
)
from tests.support.rest import assert_error, get_json, upload

RAMP = (np.arange(64 * 48, dtype=np.int64).reshape(48, 64) * 7 % 4000).astype(np.uint16)
SIGNED = (RAMP.astype(np.int32) - 1500).astype(np.int16)
RGB = np.stack([RAMP % 256, (RAMP // 3) % 256, 255 - RAMP % 256], axis=-1).astype(np.uint8)
_ROWS, _COLUMNS = np.mgrid[0:48, 0:64]
SMOOTH_RGB = np.stack([_COLUMNS * 4, _ROWS * 5, 255 - _COLUMNS * 2], axis=-1).astype(np.uint8)
LOSSY_PSNR = 40.0  # dB, for the lossy codecs (JPEG baseline: on a smooth image)
# A gzip stream of stored deflate blocks: 10 bytes of header, 8 of trailer, 5 per block of up to 64 KiB - 1.
GZIP_FRAMING, STORED_HEADER, STORED_BLOCK = 18, 5, 65535


async def stored(http: httpx.AsyncClient, data: object) -> str:
    return str((await upload(http, data))["ID"])  # type: ignore[arg-type]


async def numpy_of(http: httpx.AsyncClient, path: str) -> np.ndarray:
    answer = await http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    return loaded_numpy(answer.content)


async def image_of(http: httpx.AsyncClient, path: str, accept: str = "image/png") -> np.ndarray:
    answer = await http.get(path, headers={"Accept": accept})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == accept
    return decoded_image(answer.content)


def stretched(values: np.ndarray) -> np.ndarray:
    """The preview's stretch of a grayscale frame to 0..255, rounding half away from zero."""
    low, high = int(values.min()), int(values.max())
    return np.floor((values.astype(np.float64) - low) * 255.0 / (high - low) + 0.5).astype(np.uint8)


async def test_frames_of_a_multiframe_instance(http: httpx.AsyncClient) -> None:
    frames = np.stack([RAMP, RAMP // 2, RAMP // 4])
    instance = await stored(http, frames_dataset(frames))
    assert await get_json(http, f"/instances/{instance}/frames") == [0, 1, 2]
    assert "preview" in await get_json(http, f"/instances/{instance}/frames/1")
    for n in range(3):
        values = await numpy_of(http, f"/instances/{instance}/frames/{n}/numpy?rescale=false")
        assert values.shape == (48, 64, 1) and values.dtype == np.uint16
        assert np.array_equal(values[..., 0], frames[n])
        assert np.array_equal(await image_of(http, f"/instances/{instance}/frames/{n}/image-uint16"), frames[n])
    whole = await numpy_of(http, f"/instances/{instance}/numpy?rescale=0")
    assert whole.shape == (3, 48, 64, 1) and np.array_equal(whole[..., 0], frames)
    raw = await http.get(f"/instances/{instance}/frames/2/raw")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content == frames[2].astype("<u2").tobytes()
    gzipped = await http.get(f"/instances/{instance}/frames/2/raw.gz")
    assert gzipped.headers["content-type"] == "application/gzip"
    assert gzip.decompress(gzipped.content) == raw.content


@pytest.mark.parametrize(
    "syntax",
    [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian],
)
@pytest.mark.parametrize("pixels", [RAMP, SIGNED, RGB, (RAMP % 256).astype(np.uint8)], ids=["u16", "s16", "rgb", "u8"])
async def test_native_syntaxes_decode_exactly(http: httpx.AsyncClient, syntax: str, pixels: np.ndarray) -> None:
    instance = await stored(http, written(frames_dataset(pixels), syntax))
    values = await numpy_of(http, f"/instances/{instance}/frames/0/numpy?rescale=0")
    assert values.dtype == pixels.dtype
    assert np.array_equal(values.reshape(pixels.shape), pixels)


@pytest.mark.parametrize(
    ("syntax", "options"),
    [
        (RLELossless, {}),
        (JPEGLSLossless, {}),
        (JPEG2000Lossless, {}),
    ],
)
@pytest.mark.parametrize("pixels", [RAMP, SIGNED, RGB], ids=["u16", "s16", "rgb"])
async def test_lossless_codecs_decode_exactly(
    http: httpx.AsyncClient, syntax: str, options: dict[str, object], pixels: np.ndarray
) -> None:
    instance = await stored(http, compressed(frames_dataset(pixels), syntax, **options))
    values = await numpy_of(http, f"/instances/{instance}/frames/0/numpy?rescale=0")
    assert np.array_equal(values.reshape(pixels.shape), pixels)
    raw = await http.get(f"/instances/{instance}/frames/0/raw")
    expected = "image/jp2" if syntax == JPEG2000Lossless else "application/octet-stream"
    assert raw.headers["content-type"] == expected


@pytest.mark.parametrize(
    ("syntax", "options"),
    [(JPEGLSNearLossless, {"jls_error": 3}), (JPEG2000, {"j2k_psnr": [60]})],
)
async def test_lossy_codecs_decode_closely(http: httpx.AsyncClient, syntax: str, options: dict[str, object]) -> None:
    instance = await stored(http, compressed(frames_dataset(RAMP, bits_stored=12), syntax, **options))
    values = (await numpy_of(http, f"/instances/{instance}/frames/0/numpy?rescale=0"))[..., 0]
    assert psnr(RAMP, values, 4095) > LOSSY_PSNR


async def test_jpeg_baseline_colour_and_grayscale(http: httpx.AsyncClient) -> None:
    colour = await stored(http, jpeg_baseline(frames_dataset(SMOOTH_RGB), SMOOTH_RGB))
    decoded = await image_of(http, f"/instances/{colour}/preview")
    assert decoded.shape == SMOOTH_RGB.shape and psnr(SMOOTH_RGB, decoded, 255) > LOSSY_PSNR
    raw = await http.get(f"/instances/{colour}/frames/0/raw")
    assert raw.headers["content-type"] == "image/jpeg" and raw.content[:2] == b"\xff\xd8"
    gray = SMOOTH_RGB[..., 0]
    mono = await stored(http, jpeg_baseline(frames_dataset(gray), gray))
    assert psnr(gray, await image_of(http, f"/instances/{mono}/image-uint8"), 255) > LOSSY_PSNR


async def test_preview_stretches_and_inverts_monochrome1(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(SIGNED))
    assert np.array_equal(await image_of(http, f"/instances/{instance}/preview"), stretched(SIGNED))
    inverted = await stored(http, frames_dataset(SIGNED, photometric="MONOCHROME1"))
    assert np.array_equal(await image_of(http, f"/instances/{inverted}/preview"), 255 - stretched(SIGNED))
    flat = await stored(http, frames_dataset(np.full((4, 4), 700, np.uint16)))
    assert not (await image_of(http, f"/instances/{flat}/preview")).any()


async def test_image_answers_are_gzipped_as_orthanc_does_without_deflating_them_again(
    http: httpx.AsyncClient,
) -> None:
    instance = await stored(http, frames_dataset(SIGNED))
    answer = await http.get(f"/instances/{instance}/preview", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    blocks = -(-len(answer.content) // STORED_BLOCK)
    assert int(answer.headers["content-length"]) == len(answer.content) + GZIP_FRAMING + STORED_HEADER * blocks


async def test_extractions_saturate(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(SIGNED, photometric="MONOCHROME1"))
    base = f"/instances/{instance}"
    assert np.array_equal(await image_of(http, f"{base}/image-uint8"), np.clip(SIGNED, 0, 255))
    assert np.array_equal(await image_of(http, f"{base}/image-uint16"), np.clip(SIGNED, 0, None))
    int16 = (await image_of(http, f"{base}/image-int16")).astype(np.uint16).view(np.int16)
    assert np.array_equal(int16, SIGNED)  # a 16-bit PNG of the two's complement bits
    pam = await http.get(f"{base}/image-int16", headers={"Accept": "image/x-portable-arbitrarymap"})
    header = b"P7\nWIDTH 64\nHEIGHT 48\nDEPTH 1\nMAXVAL 65535\nTUPLTYPE GRAYSCALE\nENDHDR\n"
    assert pam.content == header + SIGNED.astype(">i2").tobytes()


async def test_rendered_applies_rescale_and_window(http: httpx.AsyncClient) -> None:
    dataset = frames_dataset(
        RAMP, RescaleSlope="2", RescaleIntercept="-1000", WindowCenter="1000\\50", WindowWidth="2000"
    )
    instance = await stored(http, dataset)
    expected = np.clip(np.floor((RAMP * 2.0 - 1000 - 0) * 255 / 2000), 0, 255).astype(np.uint8)
    found = await image_of(http, f"/instances/{instance}/rendered")
    assert np.abs(found.astype(int) - expected).max() <= 1  # float32 arithmetic at the floor
    narrow = await image_of(http, f"/instances/{instance}/rendered?window-center=3000&window-width=10")
    assert set(np.unique(narrow)) <= {0, 255} or narrow.max() == 255


async def test_rendered_without_window_uses_the_stored_bits(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(RAMP, bits_stored=12))
    found = await image_of(http, f"/instances/{instance}/rendered")
    assert np.array_equal(found, np.floor(RAMP.astype(np.float64) * 255 / 4096).astype(np.uint8))


async def test_rendered_resizes_keeping_the_ratio(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(RAMP))
    base = f"/instances/{instance}/rendered"
    assert (await image_of(http, f"{base}?width=32")).shape == (24, 32)
    assert (await image_of(http, f"{base}?height=96")).shape == (96, 128)
    assert (await image_of(http, f"{base}?width=32&height=6")).shape == (6, 8)
    smooth = await image_of(http, f"{base}?width=16&smooth=1")
    sharp = await image_of(http, f"{base}?width=16&smooth=0")
    assert smooth.shape == sharp.shape == (12, 16) and not np.array_equal(smooth, sharp)
    colour = await stored(http, frames_dataset(RGB))
    assert (await image_of(http, f"/instances/{colour}/rendered?width=16")).shape == (12, 16, 3)


async def test_colour_photometric_interpretations(http: httpx.AsyncClient) -> None:
    rgb = await stored(http, frames_dataset(RGB))
    assert np.array_equal(await image_of(http, f"/instances/{rgb}/preview"), RGB)
    for route in ("image-uint8", "image-uint16", "image-int16"):
        assert (await http.get(f"/instances/{rgb}/{route}")).status_code == 415
    ycbcr = frames_dataset(RGB, photometric="YBR_FULL")
    ycbcr.PixelData = _to_ybr_full(RGB).tobytes()
    decoded = await image_of(http, f"/instances/{await stored(http, ycbcr)}/preview")
    assert np.abs(decoded.astype(int) - RGB).max() <= 2


def _to_ybr_full(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.round(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


async def test_palette_colour(http: httpx.AsyncClient) -> None:
    indices = (RAMP % 256).astype(np.uint8)
    dataset = frames_dataset(indices, photometric="PALETTE COLOR")
    ramp = np.arange(256, dtype=np.uint16)
    for colour, lut in (("Red", ramp * 257), ("Green", (255 - ramp) * 257), ("Blue", (ramp // 2) * 257)):
        setattr(dataset, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(dataset, f"{colour}PaletteColorLookupTableData", lut.astype("<u2").tobytes())
    instance = await stored(http, dataset)
    expected = np.stack([indices, 255 - indices, indices // 2], axis=-1)
    assert np.array_equal(await image_of(http, f"/instances/{instance}/preview"), expected)
    assert np.array_equal(await numpy_of(http, f"/instances/{instance}/numpy?rescale=1"), expected[np.newaxis])


async def test_numpy_rescale_and_compression(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(RAMP, RescaleSlope="0.5", RescaleIntercept="-10"))
    rescaled = await numpy_of(http, f"/instances/{instance}/frames/0/numpy")
    assert rescaled.dtype == np.float32
    assert np.array_equal(rescaled[..., 0], np.floor(RAMP * np.float32(0.5) + np.float32(-10)))
    packed = await numpy_of(http, f"/instances/{instance}/numpy?compress&rescale=false")
    assert packed.shape == (1, 48, 64, 1) and np.array_equal(packed[0, ..., 0], RAMP)


async def test_matlab_expression(http: httpx.AsyncClient) -> None:
    gray = await stored(http, frames_dataset(np.array([[1, 2, 3], [4, 5, 6]], np.uint16)))
    answer = await http.get(f"/instances/{gray}/matlab")
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "double([ 1 2 3 ; 4 5 6 ])"
    colour = await stored(http, frames_dataset(np.arange(12, dtype=np.uint8).reshape(1, 4, 3)))
    answer = await http.get(f"/instances/{colour}/frames/0/matlab")
    assert answer.text == "double(permute(reshape([ 0 1 2 3 4 5 6 7 8 9 10 11 ], [ 3 1 4 ]), [ 3 2 1 ]))"


async def test_content_negotiation(http: httpx.AsyncClient) -> None:
    instance = await stored(http, frames_dataset(RAMP))
    preview = f"/instances/{instance}/preview"
    cases = {
        "": "image/png",
        "*/*": "image/png",
        "image/*, image/jpeg": "image/jpeg",
        "image/png;q=0.5, image/jpeg": "image/jpeg",
        "image/png, image/jpeg": "image/png",
        "image/x-portable-arbitrarymap": "image/x-portable-arbitrarymap",
    }
    for accept, expected in cases.items():
        answer = await http.get(preview, headers={"Accept": accept})
        assert (answer.status_code, answer.headers["content-type"]) == (200, expected), accept
    unacceptable = await http.get(preview, headers={"Accept": "text/html"})
    assert (unacceptable.status_code, unacceptable.content) == (404, b"")
    no_jpeg_of_16_bits = await http.get(f"/instances/{instance}/image-uint16", headers={"Accept": "image/jpeg"})
    assert no_jpeg_of_16_bits.status_code == 404
    small = await http.get(f"{preview}?quality=10", headers={"Accept": "image/jpeg"})
    large = await http.get(f"{preview}?quality=100", headers={"Accept": "image/jpeg"})
    assert len(small.content) < len(large.content)


async def test_series_numpy_follows_the_slice_positions(http: httpx.AsyncClient) -> None:
    study, series = "1.2.3.4.5.6.6", "1.2.3.4.5.6.7"
    positions = [30.0, 10.0, 20.0]
    for n, z in enumerate(positions):
        dataset = frames_dataset(
            np.full((4, 4), n, np.uint16),
            study_uid=study,
            series_uid=series,
            instance_number=n + 1,
            ImagePositionPatient=[0, 0, z],
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
        )
        series_id = (await upload(http, dataset))["ParentSeries"]
    volume = await numpy_of(http, f"/series/{series_id}/numpy?rescale=0")
    assert volume.shape == (3, 4, 4, 1)
    assert [int(volume[k, 0, 0, 0]) for k in range(3)] == [1, 2, 0]


async def test_series_without_order(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        dataset = frames_dataset(RAMP, study_uid="1.2.3.4.5.6.9", series_uid="1.2.3.4.5.6.8", instance_number=None)
        series_id = (await upload(http, dataset))["ParentSeries"]
    assert_error(await http.get(f"/series/{series_id}/numpy"), 500, 2040)


async def test_raw_frames_of_encapsulated_data(http: httpx.AsyncClient) -> None:
    frames = np.stack([RAMP, RAMP // 3])
    dataset = compressed(frames_dataset(frames), RLELossless)
    codestreams = list(generate_frames(dataset.PixelData, number_of_frames=2))
    instance = await stored(http, dataset)
    for n, codestream in enumerate(codestreams):
        assert (await http.get(f"/instances/{instance}/frames/{n}/raw")).content == codestream
    assert np.array_equal((await numpy_of(http, f"/instances/{instance}/numpy?rescale=0"))[..., 0], frames)
