"""Phone numbers as each provider wants them, and the request-sized groups we send.

Outbox addresses are identity values (``customers.rules.normalize_phone``): 11 digits for
mainland numbers, ``+E.164`` otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar
from zoneinfo import ZoneInfo

from siyu.core.errors import InvalidInput
from siyu.customers.rules import normalize_phone

T = TypeVar("T")
CHINA = ZoneInfo("Asia/Shanghai")


def canonical(address: str) -> str:
    """The outbox form of a number; raises InvalidInput for something that is not one."""
    return normalize_phone(address or "")


def e164(address: str) -> str:
    number = canonical(address)
    return number if number.startswith("+") else f"+86{number}"


def aliyun_number(address: str) -> str:
    # Dysmsapi: mainland numbers bare, others as country code + number without "+" or "00".
    number = canonical(address)
    return number[1:] if number.startswith("+") else number


def from_provider(number: str, nationcode: str = "") -> str:
    """A number from a callback (``13800000000`` + ``86``, ``+86...``, ``852...``) in outbox form."""
    number = (number or "").strip()
    code = (nationcode or "").strip().lstrip("+")
    if code and code != "86" and not number.startswith("+"):
        number = f"+{code}{number}"
    try:
        return canonical(number)
    except InvalidInput:
        return canonical(f"+{number}") if number.isdigit() else number


def is_mainland(address: str) -> bool:
    return not canonical(address).startswith("+")


def unique_chunks(items: Iterable[T], size: int, number_of: Callable[[T], str]) -> Iterator[list[T]]:
    """Chunks of at most ``size`` with each number at most once per chunk.

    A provider answers per number, not per position, so two messages to one number in one
    request could not be told apart in its answer or in its delivery reports.
    """
    pending = list(items)
    while pending:
        chunk: list[T] = []
        seen: set[str] = set()
        rest: list[T] = []
        for item in pending:
            number = number_of(item)
            if len(chunk) < size and number not in seen:
                chunk.append(item)
                seen.add(number)
            else:
                rest.append(item)
        yield chunk
        pending = rest


def seconds_until_next(unit: str, now: dt.datetime) -> float:
    """Seconds until the next hour / day / month starts in China (where provider quotas reset)."""
    local = now.astimezone(CHINA)
    if unit == "hour":
        start = local.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    elif unit == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    elif unit == "month":
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        start = (first + dt.timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(unit)
    return max(1.0, (start - local).total_seconds())


def china_time(raw: object) -> dt.datetime | None:
    """``"2017-01-01 00:00:00"`` (Beijing time, as callbacks write it) to an aware datetime."""
    if not raw:
        return None
    try:
        return dt.datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise ValueError(f"bad time '{raw}' (want yyyy-MM-dd HH:mm:ss)") from None
