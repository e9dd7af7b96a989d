"""Frames of stored instances, decoded and rendered for the image routes.

Each answer takes two steps. The first, on the instance's parsed file (shared through the
cache of parsed files, and so under its lock), copies out one frame and the attributes that
render it: it is short. The second decodes and renders that frame on its own; it is the
heavy part (codecs, PNG/JPEG encoding), and runs in a worker thread through
:func:`node.offload.offload`, at most :data:`DECODING_THREADS` at once for the whole node,
as Orthanc limits its own. A request holds at most one decoded frame beyond its answer:
numpy answers of many frames decode them one at a time, each appended to the answer before
the next is decoded, and a cancelled request stops between two frames (the frame being
decoded finishes in its thread, its result dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import trio
from pydicom.dataset import Dataset

from ..dicom import pixels, rendering
from ..dicom.ids import Level
from ..dicom.rendering import Extraction, ImageFormat, RenderRequest
from ..dicom.slice_order import Slice, order_slices
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from .resources import Resources

T = TypeVar("T")

DECODING_THREADS: Final = 4
# The largest numpy answer built in memory (a series of 1000 512x512 float slices is 1 GiB).
MAX_NUMPY_BYTES: Final = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class FrameToRender:
    """One frame copied out of its file, with what rendering it needs from the file."""

    frame: pixels.Frame
    invert: bool  # MONOCHROME1
    window: tuple[float, float]  # center, width
    rescale: tuple[float, float]  # intercept, slope


def frame_to_render(dataset: Dataset, index: int) -> FrameToRender:
    return FrameToRender(
        frame=pixels.frame_of(dataset, index),
        invert=str(dataset.get("PhotometricInterpretation", "")).strip() == pixels.MONOCHROME1,
        window=rendering.window_of(dataset, index),
        rescale=rendering.rescale_of(dataset, index),
    )


def _image(source: FrameToRender, extraction: Extraction, image_format: ImageFormat, quality: int) -> bytes:
    image = rendering.extract(pixels.decode(source.frame), extraction, invert=source.invert)
    return rendering.encode(image, image_format, quality)


def _rendered(source: FrameToRender, request: RenderRequest, image_format: ImageFormat, quality: int) -> bytes:
    image = rendering.render(
        pixels.decode(source.frame), request, window=source.window, rescale=source.rescale, invert=source.invert
    )
    return rendering.encode(image, image_format, quality)


def _matlab(source: FrameToRender) -> str:
    return rendering.matlab(pixels.decode(source.frame))


def _numpy_values(source: FrameToRender, rescale: bool) -> np.ndarray:
    return rendering.numpy_values(pixels.decode(source.frame), source.rescale if rescale else None)


class _NumpyAnswer:
    """A numpy answer built frame by frame: every frame must have the first one's size and type."""

    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.chunks: list[bytes] = []
        self.layout: tuple[tuple[int, ...], np.dtype] | None = None  # of the first frame
        self.size = 0

    def add(self, values: np.ndarray) -> None:
        if self.layout is None:
            self.layout = (values.shape, values.dtype)
            self.chunks.append(rendering.numpy_header(rendering.numpy_shape(values, self.depth), values.dtype))
        elif values.shape != self.layout[0]:
            raise OrthancError(ErrorCode.INCOMPATIBLE_IMAGE_SIZE, "The frames do not all have the same size")
        elif values.dtype != self.layout[1]:
            raise OrthancError(ErrorCode.INCOMPATIBLE_IMAGE_FORMAT, "The frames do not all have the same pixel format")
        self.size += values.nbytes
        if self.size > MAX_NUMPY_BYTES:
            raise OrthancError(ErrorCode.NOT_ENOUGH_MEMORY, "The numpy answer would be too large")
        self.chunks.append(values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes())


class Images:
    """The image routes' operations on stored instances."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._decoding = trio.CapacityLimiter(DECODING_THREADS)

    async def _decoded(self, fn: Callable[..., T], *args: object) -> T:
        async with self._decoding:
            return await offload(fn, *args)

    async def source(self, public_id: str, index: int) -> FrameToRender:
        """Frame ``index`` copied out of its file, with Orthanc's error when it cannot be decoded
        because it does not exist (see :func:`~node.dicom.pixels.check_decodable`)."""
        return await self._resources.read_instance(public_id, frame_to_render, index)

    async def frame_count(self, public_id: str) -> int:
        return await self._resources.read_instance(public_id, pixels.frame_count)

    async def raw_frame(self, public_id: str, index: int) -> tuple[bytes, str]:
        return await self._resources.read_instance(public_id, pixels.raw_frame, index)

    async def image(
        self, source: FrameToRender, extraction: Extraction, image_format: ImageFormat, quality: int
    ) -> bytes:
        return await self._decoded(_image, source, extraction, image_format, quality)

    async def rendered(
        self, source: FrameToRender, request: RenderRequest, image_format: ImageFormat, quality: int
    ) -> bytes:
        return await self._decoded(_rendered, source, request, image_format, quality)

    async def matlab(self, public_id: str, index: int) -> str:
        return await self._decoded(_matlab, await self.source(public_id, index))

    async def _add_frames(self, answer: _NumpyAnswer, public_id: str, frames: range, rescale: bool) -> None:
        for index in frames:
            source = await self.source(public_id, index)
            answer.add(await self._decoded(_numpy_values, source, rescale))

    async def numpy_frame(self, public_id: str, index: int, *, rescale: bool, compress: bool) -> bytes:
        answer = _NumpyAnswer(depth=None)
        await self._add_frames(answer, public_id, range(index, index + 1), rescale)
        return await offload(rendering.numpy_answer, answer.chunks, compress)

    async def numpy_instance(self, public_id: str, *, rescale: bool, compress: bool) -> bytes:
        count = await self.frame_count(public_id)
        if count == 0:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The instance has no frame")
        answer = _NumpyAnswer(depth=count)
        await self._add_frames(answer, public_id, range(count), rescale)
        return await offload(rendering.numpy_answer, answer.chunks, compress)

    async def numpy_series(self, series_id: str, *, rescale: bool, compress: bool) -> bytes:
        series = await self._resources.get(series_id, Level.SERIES)
        records = await self._resources.index.resources(series.children)
        slices = [Slice(r.public_id, r.main_tags, r.metadata.get("IndexInSeries")) for r in records]
        ordered = order_slices(series_id, series.main_tags, slices)
        answer = _NumpyAnswer(depth=sum(item.frames() for item in ordered))
        for item in ordered:
            await self._add_frames(answer, item.public_id, range(item.frames()), rescale)
        if answer.layout is None:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "The series has no frame")
        return await offload(rendering.numpy_answer, answer.chunks, compress)
