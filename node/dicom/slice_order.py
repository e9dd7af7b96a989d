"""The order of the instances of a series as a volume, as Orthanc sorts them for /series/{id}/numpy.

Along the normal of the series' orientation when every instance has a position (and an
orientation parallel to the series'), and no two lie at the same place; otherwise by
their index in the series; otherwise the series cannot be ordered (Orthanc's error 2040).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..errors import ErrorCode, OrthancError

IMAGE_POSITION_PATIENT: Final = "0020,0032"
IMAGE_ORIENTATION_PATIENT: Final = "0020,0037"
NUMBER_OF_FRAMES: Final = "0028,0008"
_EPSILON: Final = 10.0 * float(np.finfo(np.float32).eps)
_POSITION_VALUES: Final = 3
_ORIENTATION_VALUES: Final = 6


@dataclass(frozen=True)
class Slice:
    """One instance of the series: its ID, main DICOM tags and IndexInSeries metadata."""

    public_id: str
    main_tags: Mapping[str, str]
    index_in_series: str | None

    def frames(self) -> int:
        try:
            return int(self.main_tags.get(NUMBER_OF_FRAMES, "1").strip())
        except ValueError:
            return 1


def _vector(tags: Mapping[str, str], key: str, size: int) -> np.ndarray | None:
    tokens = tags.get(key, "").split("\\")
    if len(tokens) != size:
        return None
    try:
        return np.array([float(t.strip()) for t in tokens], dtype=np.float32)
    except ValueError:
        return None


def normal_of(tags: Mapping[str, str]) -> np.ndarray | None:
    cosines = _vector(tags, IMAGE_ORIENTATION_PATIENT, _ORIENTATION_VALUES)
    return None if cosines is None else np.cross(cosines[:3], cosines[3:])


def _parallel(u: np.ndarray, v: np.ndarray) -> bool:
    norms = float(np.linalg.norm(u.astype(np.float64)) * np.linalg.norm(v.astype(np.float64)))
    if abs(norms) < _EPSILON:
        return False
    cosine = float(np.dot(u.astype(np.float64), v.astype(np.float64))) / norms
    return abs(abs(cosine) - 1.0) < _EPSILON


def _by_position(slices: Sequence[Slice], normal: np.ndarray | None) -> list[Slice] | None:
    if normal is None:
        return None
    places: list[tuple[float, Slice]] = []
    for item in slices:
        position = _vector(item.main_tags, IMAGE_POSITION_PATIENT, _POSITION_VALUES)
        own = normal_of(item.main_tags)
        if position is None or (own is not None and not _parallel(own, normal)):
            return None
        places.append((float(np.float32(np.dot(normal, position))), item))
    places.sort(key=lambda place: place[0])
    if any(abs(b[0] - a[0]) <= _EPSILON for a, b in itertools.pairwise(places)):
        return None
    return [item for _, item in places]


def _by_index(slices: Sequence[Slice]) -> list[Slice] | None:
    indexed: list[tuple[int, Slice]] = []
    for item in slices:
        try:
            indexed.append((int(item.index_in_series or ""), item))
        except ValueError:
            return None
    indexed.sort(key=lambda pair: pair[0])
    return [item for _, item in indexed]


def order_slices(series_id: str, series_tags: Mapping[str, str], slices: Sequence[Slice]) -> list[Slice]:
    if len(slices) <= 1:
        return list(slices)
    ordered = _by_position(slices, normal_of(series_tags)) or _by_index(slices)
    if ordered is None:
        raise OrthancError(ErrorCode.CANNOT_ORDER_SLICES, f"The slices of the series {series_id} have no order")
    return ordered
