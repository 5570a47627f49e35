"""The one clock. Domain code takes ``now`` as an argument; callers get it here."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

MIN_YEAR, MAX_YEAR = 2000, 2100


def now() -> datetime:
    return timezone.now()


def parse_timestamp(raw: str, time_zone: str) -> datetime:
    """ISO 8601 to an aware datetime; a value without an offset is read in ``time_zone``.

    Raises ValueError with a readable message.
    """
    text = raw.strip()
    if not text:
        raise ValueError("timestamp is empty")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{raw}' is not an ISO 8601 time (e.g. 2026-11-23T10:30:00+08:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(time_zone))
    if not (MIN_YEAR <= value.year <= MAX_YEAR):
        raise ValueError(f"'{raw}' is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return value
