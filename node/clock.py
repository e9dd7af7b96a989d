"""Orthanc's timestamp formats (always UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


ORTHANC_DATE_FORMAT = "%Y%m%dT%H%M%S"


# The text of the current second (every store writes it a few times) and that second.
_this_second: tuple[int, str] = (-1, "")


def orthanc_date(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS`, as in LastUpdate, ReceptionDate and changes. The current time's is
    formatted once a second: a store asks for it as it writes its rows, where building and
    formatting a datetime each time took some 2% of a small store's time on the event loop."""
    global _this_second
    if moment is not None:
        return moment.strftime(ORTHANC_DATE_FORMAT)
    second = int(time.time())
    if _this_second[0] != second:
        _this_second = (second, datetime.fromtimestamp(second, UTC).strftime(ORTHANC_DATE_FORMAT))
    return _this_second[1]


def parse_orthanc_date(text: str) -> datetime:
    """The UTC moment of an :func:`orthanc_date` text (ValueError if it is not one)."""
    return datetime.strptime(text, ORTHANC_DATE_FORMAT).replace(tzinfo=UTC)


def orthanc_timestamp(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS.ffffff` of jobs; the fraction is left out when it is zero."""
    moment = moment or utc_now()
    text = moment.strftime(ORTHANC_DATE_FORMAT)
    return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text
