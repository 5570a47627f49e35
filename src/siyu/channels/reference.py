"""A plain-Python compliance gate over plain data: the specification that the SQL gate in
``siyu.channels.gate`` is checked against (property tests run both on random data).

Deliberately naive and independent of the SQL: candidates are decided one after another in
id order, local days come from converting each timestamp to the workspace's zone, and a
message counts against a cap only once it actually passed. Not for production use.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from siyu.channels.gate import GatePolicy

# Which identity addresses a customer on each medium (newest wins).
IDENTITY_FOR = {
    "sms": "phone",
    "email": "email",
    "app": "app_user_id",
    "wecom": "wecom_external_userid",
    "official_account": "wechat_openid",
}
# A marketing message that passed the gate counts against caps unless it was found
# undeliverable (failed, bounced) or never left (suppressed, queued/held again).
COUNTING_STATES = frozenset({"sending", "sent", "delivered", "unknown"})


@dataclass(frozen=True)
class Candidate:
    id: int
    customer_id: int | None
    medium: str
    purpose: str  # marketing / service / system
    to_address: str = ""


@dataclass(frozen=True)
class PriorMessage:
    customer_id: int | None
    medium: str
    purpose: str
    state: str
    gated_at: dt.datetime | None


@dataclass
class Audience:
    """What the gate may look at about the people in a batch."""

    identities: list[tuple[int, int, str, str]] = field(default_factory=list)  # (id, customer_id, type, value)
    consents: dict[tuple[int, str, str], str] = field(default_factory=dict)  # (customer, channel, purpose) -> status
    opted_out: set[int] = field(default_factory=set)


def in_window(policy: GatePolicy, now: dt.datetime) -> bool:
    """Minutes into the window, modulo a day, are fewer than the window's length."""
    local = now.astimezone(ZoneInfo(policy.time_zone))
    day = dt.timedelta(days=1)
    elapsed = _since_midnight(local.time())
    start, end = _since_midnight(policy.window_start), _since_midnight(policy.window_end)
    return (elapsed - start) % day < (end - start) % day


def _since_midnight(t: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def address_of(candidate: Candidate, audience: Audience) -> str | None:
    if candidate.purpose == "system":
        return candidate.to_address
    if candidate.to_address:
        return candidate.to_address
    wanted = IDENTITY_FOR.get(candidate.medium)
    newest = max(
        (i for i in audience.identities if i[1] == candidate.customer_id and i[2] == wanted),
        key=lambda i: i[0],
        default=None,
    )
    if newest is not None:
        return newest[3]
    # App pushes go to the brand's app by customer id when no app user id is known.
    if candidate.medium == "app" and candidate.customer_id is not None:
        return f"customer:{candidate.customer_id}"
    return None


def _rule_reason(candidate: Candidate, address: str | None, audience: Audience, open_now: bool) -> str:
    """Rules 1-5 of the gate, which do not depend on other messages."""
    c = candidate
    if c.purpose == "system":
        return ""
    if c.customer_id is None:
        return "no_customer"
    if not address:
        return "no_address"
    marketing = c.purpose == "marketing"
    if marketing and c.customer_id in audience.opted_out:
        return "opted_out"
    if audience.consents.get((c.customer_id, c.medium, c.purpose)) == "revoked":
        return "consent_revoked"
    if marketing and audience.consents.get((c.customer_id, c.medium, "marketing")) != "granted":
        return "no_consent"
    if marketing and not open_now:
        return "quiet_hours"
    return ""


def decide(
    policy: GatePolicy,
    *,
    audience: Audience,
    prior: Iterable[PriorMessage],
    candidates: Iterable[Candidate],
    now: dt.datetime,
) -> list[tuple[int, str | None, str]]:
    """``(id, address, reason)`` for every candidate, in id order."""
    tz = ZoneInfo(policy.time_zone)
    today = now.astimezone(tz).date()
    week = {today - dt.timedelta(days=n) for n in range(7)}
    in_wecom_period, wecom_limit = _wecom_period(policy.wecom_cap_mode, today, week)
    wecom_count: Counter[int | None] = Counter()
    day_count: Counter[tuple[int | None, str | None]] = Counter()  # (customer, medium or None for all)
    week_count: Counter[tuple[int | None, str | None]] = Counter()
    for m in prior:
        if m.purpose != "marketing" or m.gated_at is None or m.state not in COUNTING_STATES:
            continue
        local_day = m.gated_at.astimezone(tz).date()
        for key in ((m.customer_id, None), (m.customer_id, m.medium)):
            week_count[key] += local_day in week
            day_count[key] += local_day == today
        if m.medium == "wecom":
            wecom_count[m.customer_id] += in_wecom_period(local_day)
    open_now = in_window(policy, now)
    decisions = []
    for c in sorted(candidates, key=lambda c: c.id):
        address = address_of(c, audience)
        reason = _rule_reason(c, address, audience, open_now)
        if not reason and c.purpose == "marketing":
            reason = _cap_reason(policy, c, day_count, week_count)
            if not reason and c.medium == "wecom" and wecom_count[c.customer_id] >= wecom_limit:
                reason = "wecom_cap"
            if not reason:  # it goes, so it counts for the messages after it
                for key in ((c.customer_id, None), (c.customer_id, c.medium)):
                    day_count[key] += 1
                    week_count[key] += 1
                if c.medium == "wecom":
                    wecom_count[c.customer_id] += 1
        decisions.append((c.id, address, reason))
    return decisions


def _wecom_period(mode: str, today: dt.date, week: set[dt.date]):
    """(is this local day in WeCom's cap period, the cap): the calendar month and its day
    count, the 7-day week and 7, or today and 1."""
    if mode == "day":
        return (lambda d: d == today), 1
    if mode == "week":
        return (lambda d: d in week), 7
    return (lambda d: (d.year, d.month) == (today.year, today.month)), calendar.monthrange(today.year, today.month)[1]


def _cap_reason(policy: GatePolicy, c: Candidate, day: Counter, week: Counter) -> str:
    limits = policy.channel_caps.get(c.medium, {})
    checks = (
        ("cap_day", policy.daily_cap, day[c.customer_id, None]),
        ("cap_week", policy.weekly_cap, week[c.customer_id, None]),
        ("channel_cap_day", limits.get("day", 0), day[c.customer_id, c.medium]),
        ("channel_cap_week", limits.get("week", 0), week[c.customer_id, c.medium]),
    )
    for reason, cap, sent in checks:
        if cap and sent >= cap:
            return reason
    return ""
