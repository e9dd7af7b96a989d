"""Orthanc's timestamp formats (always UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def orthanc_date(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS`, as in LastUpdate, ReceptionDate and changes."""
    return (moment or utc_now()).strftime("%Y%m%dT%H%M%S")


def orthanc_timestamp(moment: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSS.ffffff` of jobs; the fraction is left out when it is zero."""
    moment = moment or utc_now()
    text = moment.strftime("%Y%m%dT%H%M%S")
    return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text
