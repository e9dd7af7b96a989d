"""Orthanc's timestamp formats (always UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


ORTHANC_DATE_FORMAT = "%Y%m%dT%H%M%S"


def orthanc_date(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS`, as in LastUpdate, ReceptionDate and changes."""
    return (moment or utc_now()).strftime(ORTHANC_DATE_FORMAT)


def parse_orthanc_date(text: str) -> datetime:
    """The UTC moment of an :func:`orthanc_date` text (ValueError if it is not one)."""
    return datetime.strptime(text, ORTHANC_DATE_FORMAT).replace(tzinfo=UTC)


def orthanc_timestamp(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS.ffffff` of jobs; the fraction is left out when it is zero."""
    moment = moment or utc_now()
    text = moment.strftime(ORTHANC_DATE_FORMAT)
    return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text
