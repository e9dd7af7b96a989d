"""Frames and images of instances: /instances/{id}/frames..., /preview, /rendered, /numpy, /matlab.

The image routes (preview, rendered, image-uint8/uint16/int16) answer as Orthanc's: an empty
404 when there is nothing to show (unknown instance, frame out of range or not a number, a
bad argument, no acceptable format), an empty 415 when the frame cannot become the image
asked for (or a redirection to Orthanc Explorer's placeholder with ``returnUnsupportedImage``).
The numpy, Matlab and raw routes answer errors as JSON, as any other route.
"""

from __future__ import annotations

import gzip
import math
import re
from typing import Final

from quart import Blueprint, Response, request

from ...dicom.rendering import Extraction, ImageFormat, RenderRequest, Unrenderable
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...offload import offload
from ...services.images import Images
from ..answers import empty, json_answer, node, text_answer

blueprint = Blueprint("images", __name__)

DEFAULT_QUALITY: Final = 90
QUALITIES: Final = range(1, 101)
UNSUPPORTED_IMAGE: Final = "app/images/unsupported.png"
HTTP_UNSUPPORTED_MEDIA_TYPE: Final = 415
HTTP_MOVED_PERMANENTLY: Final = 301
# The formats an image route can answer with, in the order that wins a tie (the first: PNG).
IMAGE_FORMATS: Final = (ImageFormat.PNG, ImageFormat.JPEG, ImageFormat.PAM)
FRAME_ROUTES: Final = [
    "image-int16", "image-uint16", "image-uint8", "matlab", "numpy", "preview", "raw", "raw.gz", "rendered",
]  # fmt: skip
_INTEGER: Final = re.compile(r"-?[0-9]+")
_UNSIGNED: Final = re.compile(r"[0-9]+")
_UINT32_LIMIT: Final = 1 << 32
_TRUE: Final = ("true", "1")
_FALSE: Final = ("false", "0")
_SPECIFIC, _SUBTYPE_WILDCARD, _WILDCARD = 2, 1, 0


class _Unsupported(Exception):
    """The frame cannot be answered as this image: 415."""


def _images() -> Images:
    return node().services.images


def _frame_number(text: str) -> int | None:
    """The frame of the URI as Orthanc reads it for most routes: a 32-bit count, a negative one
    wrapping around (and so out of range); None for anything else."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    if not -_UINT32_LIMIT < value < _UINT32_LIMIT:
        return None
    return value % _UINT32_LIMIT


def _strict_frame_number(text: str) -> int:
    """The frame of a numpy route: digits only, else Orthanc's error 3."""
    if not _UNSIGNED.fullmatch(text) or int(text) >= _UINT32_LIMIT:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, 'Expected an unsigned integer for the "frame" argument')
    return int(text)


def _boolean_argument(name: str, default: bool) -> bool:
    """A true/false/1/0 argument; present without a value, it is true."""
    value = request.args.get(name)
    if value is None:
        return default
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OrthancError(
        ErrorCode.PARAMETER_OUT_OF_RANGE, f'Expected a Boolean for GET argument "{name}", found: {value}'
    )


def _quality() -> int:
    text = request.args.get("quality", str(DEFAULT_QUALITY))
    if not _UNSIGNED.fullmatch(text) or int(text) not in QUALITIES:
        raise _Unsupported
    return int(text)


def _accepted_formats(header: str) -> list[tuple[float, int, ImageFormat]]:
    """(quality, specificity, format) of each media range of an Accept header that names one of ours."""
    found = []
    for entry in header.split(","):
        media, *parameters = (part.strip() for part in entry.split(";"))
        if "/" not in media:
            continue
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind, subtype = media.lower().split("/", 1)
        for image_format in IMAGE_FORMATS:
            candidate_kind, candidate_subtype = image_format.value.split("/")
            if (kind, subtype) == (candidate_kind, candidate_subtype):
                found.append((quality, _SPECIFIC, image_format))
                break
            if kind == candidate_kind and subtype == "*":
                found.append((quality, _SUBTYPE_WILDCARD, image_format))
                break
            if (kind, subtype) == ("*", "*"):
                found.append((quality, _WILDCARD, image_format))
                break
    return found


def _negotiated_format() -> ImageFormat:
    """The format the Accept header prefers (PNG without one); no acceptable format, no answer."""
    header = request.headers.get("Accept", "").strip()
    if not header:
        return ImageFormat.PNG
    best: tuple[float, int, ImageFormat] | None = None
    for candidate in _accepted_formats(header):
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        raise NoAnswer()
    return best[2]


def _number_argument(name: str) -> float | None:
    text = request.args.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise NoAnswer() from None
    if math.isnan(value):
        raise NoAnswer()
    return value


def _size_argument(name: str) -> int:
    text = request.args.get(name)
    if text is None:
        return 0
    if not _INTEGER.fullmatch(text) or int(text) < 0 or int(text) >= _UINT32_LIMIT:
        raise NoAnswer()
    return int(text)


def _render_request() -> RenderRequest:
    smooth = request.args.get("smooth", _FALSE[0])
    if smooth not in _TRUE + _FALSE:
        raise _Unsupported
    return RenderRequest(
        window_center=_number_argument("window-center"),
        window_width=_number_argument("window-width"),
        width=_size_argument("width"),
        height=_size_argument("height"),
        smooth=smooth in _TRUE,
    )


def _unsupported_answer() -> Response:
    if "returnUnsupportedImage" in request.args:
        depth = len([part for part in request.path.split("/") if part]) - 1
        return empty(HTTP_MOVED_PERMANENTLY, {"Location": "../" * depth + UNSUPPORTED_IMAGE})
    return empty(HTTP_UNSUPPORTED_MEDIA_TYPE)


async def _image_answer(public_id: str, frame: str, extraction: Extraction | None) -> Response:
    """The answer of an image route; ``extraction`` None for /rendered."""
    index = _frame_number(frame)
    if index is None:
        raise NoAnswer()
    images = _images()
    try:
        source = await images.source(public_id, index)  # before the arguments, as Orthanc decodes first
        render = _render_request() if extraction is None else None
        quality = _quality()
        image_format = _negotiated_format()
        if image_format is ImageFormat.JPEG and extraction not in (None, Extraction.PREVIEW, Extraction.UINT8):
            raise NoAnswer()  # JPEG holds 8-bit samples only
        if render is not None:
            data = await images.rendered(source, render, image_format, quality)
        else:
            assert extraction is not None
            data = await images.image(source, extraction, image_format, quality)
    except OrthancError as error:
        if error.code in (ErrorCode.PARAMETER_OUT_OF_RANGE, ErrorCode.UNKNOWN_RESOURCE):
            raise NoAnswer() from None
        return _unsupported_answer()
    except (_Unsupported, Unrenderable):
        return _unsupported_answer()
    return Response(data, content_type=image_format.value)


def _image_route(extraction: Extraction | None, name: str) -> None:
    async def first_frame(public_id: str) -> Response:
        return await _image_answer(public_id, "0", extraction)

    async def one_frame(public_id: str, frame: str) -> Response:
        return await _image_answer(public_id, frame, extraction)

    blueprint.add_url_rule(f"/instances/<public_id>/{name}", f"instance_{name}", first_frame)
    blueprint.add_url_rule(f"/instances/<public_id>/frames/<frame>/{name}", f"frame_{name}", one_frame)


for _extraction in Extraction:
    _image_route(_extraction, _extraction.value)
_image_route(None, "rendered")


@blueprint.route("/instances/<public_id>/frames")
async def frames(public_id: str) -> Response:
    return json_answer(list(range(await _images().frame_count(public_id))))


@blueprint.route("/instances/<public_id>/frames/<frame>")
async def frame_routes(public_id: str, frame: str) -> Response:
    return json_answer(FRAME_ROUTES)


async def _raw_frame(public_id: str, frame: str) -> tuple[bytes, str]:
    index = _frame_number(frame)
    if index is None:
        raise NoAnswer()
    return await _images().raw_frame(public_id, index)


@blueprint.route("/instances/<public_id>/frames/<frame>/raw")
async def raw_frame(public_id: str, frame: str) -> Response:
    data, mime = await _raw_frame(public_id, frame)
    return Response(data, content_type=mime)


@blueprint.route("/instances/<public_id>/frames/<frame>/raw.gz")
async def raw_frame_gzip(public_id: str, frame: str) -> Response:
    data, _ = await _raw_frame(public_id, frame)
    return Response(await offload(gzip.compress, data), content_type="application/gzip")


@blueprint.route("/instances/<public_id>/matlab")
@blueprint.route("/instances/<public_id>/frames/<frame>/matlab")
async def matlab(public_id: str, frame: str = "0") -> Response:
    index = _frame_number(frame)
    if index is None:
        raise NoAnswer()
    return text_answer(await _images().matlab(public_id, index))


def _numpy_options() -> tuple[bool, bool]:
    compress = _boolean_argument("compress", False)
    return compress, _boolean_argument("rescale", True)


def _numpy_response(data: bytes) -> Response:
    return Response(data, content_type="application/octet-stream")


@blueprint.route("/instances/<public_id>/frames/<frame>/numpy")
async def frame_numpy(public_id: str, frame: str) -> Response:
    compress, rescale = _numpy_options()
    index = _strict_frame_number(frame)
    return _numpy_response(await _images().numpy_frame(public_id, index, rescale=rescale, compress=compress))


@blueprint.route("/instances/<public_id>/numpy")
async def instance_numpy(public_id: str) -> Response:
    compress, rescale = _numpy_options()
    return _numpy_response(await _images().numpy_instance(public_id, rescale=rescale, compress=compress))


@blueprint.route("/series/<public_id>/numpy")
async def series_numpy(public_id: str) -> Response:
    compress, rescale = _numpy_options()
    return _numpy_response(await _images().numpy_series(public_id, rescale=rescale, compress=compress))
