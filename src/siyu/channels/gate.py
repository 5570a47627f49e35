"""The compliance gate: one set of rules in front of every channel, decided per batch in SQL.

For each candidate message the gate answers with a reason ('' = may go now):

1. ``no_customer`` / ``no_address`` — nobody to send to on this medium;
2. ``opted_out`` — the customer refused marketing (binds every channel; service messages
   still go: a refund notice is not an advert);
3. ``consent_revoked`` — consent for this medium and purpose was withdrawn;
4. ``no_consent`` — marketing needs an explicit grant for the medium;
5. ``quiet_hours`` — marketing outside the workspace's window (held or skipped per send);
6. ``cap_day`` / ``cap_week`` — marketing over the per-customer cap across all channels;
   ``channel_cap_day`` / ``channel_cap_week`` — over the cap for this medium;
   ``wecom_cap`` — a WeCom mass message over WeCom's own per-customer cap (the days of the
   local calendar month by default, or 7 per 7 days, or 1 a day: ``wecom_cap_mode``). WeCom
   enforces it too (send result status 3), but only after a staff member confirmed the task.

Service messages (the transactional override) pass 2, 5 and 6. ``system`` messages (domain
events to a brand's own webhook) reach no person and pass everything.

``not_friend`` is not decided here: a WeCom message without a staff member whose friend the
customer is gets suppressed when the broadcast writes its rows (``messaging.wecom_mass``).

Caps count marketing messages that passed the gate (``gated_at``) and were not found
undeliverable, plus the ones ahead of it in the same batch that go (window functions), so a
batch can never overshoot. Days and weeks are the workspace's local calendar days; the
week is the last seven of them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from siyu.channels.models import ComplianceSettings
from siyu.core.sql import adapt

REASONS = {
    "no_customer": "无客户",
    "no_address": "无可用联系方式",
    "opted_out": "已退订",
    "consent_revoked": "已撤回授权",
    "no_consent": "未获营销授权",
    "quiet_hours": "免打扰时段",
    "cap_day": "超出每日上限",
    "cap_week": "超出每周上限",
    "channel_cap_day": "超出该渠道每日上限",
    "channel_cap_week": "超出该渠道每周上限",
    "render_error": "内容无法生成",
    "provider_blocked": "运营商拦截/黑名单",
    "retries_exhausted": "多次重试失败",
    "cancelled": "群发已取消",
    "wecom_cap": "超出企业微信群发上限",
    "not_friend": "非员工好友",
}
# The identity that addresses a customer on each medium.
ADDRESS_TYPES = {
    "sms": "phone",
    "email": "email",
    "app": "app_user_id",
    "wecom": "wecom_external_userid",
    "official_account": "wechat_openid",
}
# States of a marketing message that count against caps once it passed the gate.
COUNTED_STATES = ("sending", "sent", "delivered", "unknown")


@dataclass(frozen=True)
class GatePolicy:
    time_zone: str
    daily_cap: int
    weekly_cap: int
    channel_caps: dict[str, dict[str, int]] = field(default_factory=dict)
    window_start: dt.time = dt.time(8, 0)
    window_end: dt.time = dt.time(21, 0)
    sms_suffix: str = "拒收请回复R"
    wecom_cap_mode: str = "month"

    @classmethod
    def of(cls, settings: ComplianceSettings, time_zone: str) -> GatePolicy:
        return cls(
            time_zone=time_zone,
            daily_cap=settings.daily_cap,
            weekly_cap=settings.weekly_cap,
            channel_caps={k: dict(v) for k, v in (settings.channel_caps or {}).items()},
            window_start=_as_time(settings.window_start),
            window_end=_as_time(settings.window_end),
            sms_suffix=settings.sms_optout_suffix,
            wecom_cap_mode=settings.wecom_cap_mode or "month",
        )


def _as_time(value: Any) -> dt.time:
    return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))


# ---- pure time rules ---------------------------------------------------------------------


def in_window(policy: GatePolicy, now: dt.datetime) -> bool:
    """Is ``now`` inside the marketing window (a window may wrap past midnight)?"""
    local = now.astimezone(ZoneInfo(policy.time_zone)).time()
    start, end = policy.window_start, policy.window_end
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_window_start(policy: GatePolicy, now: dt.datetime) -> dt.datetime:
    """The first moment at or after ``now`` inside the window."""
    if in_window(policy, now):
        return now
    tz = ZoneInfo(policy.time_zone)
    local = now.astimezone(tz)
    # The whole start time, seconds included: settings accept "08:00:30", and a hold until
    # 08:00:00 would find the window still shut and hold the message for another day.
    start = policy.window_start
    candidate = local.replace(hour=start.hour, minute=start.minute, second=start.second, microsecond=start.microsecond)
    if candidate <= local:
        candidate = (local + dt.timedelta(days=1)).replace(
            hour=start.hour, minute=start.minute, second=start.second, microsecond=start.microsecond
        )
    # Rebuild through the zone so a DST change in between lands on the right wall time.
    return dt.datetime.combine(candidate.date(), candidate.time(), tzinfo=tz)


def cap_bounds(policy: GatePolicy, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Start of today and of the 7-day week (today and the six days before), local time."""
    tz = ZoneInfo(policy.time_zone)
    today = now.astimezone(tz).date()
    day_start = dt.datetime.combine(today, dt.time(0), tzinfo=tz)
    week_start = dt.datetime.combine(today - dt.timedelta(days=6), dt.time(0), tzinfo=tz)
    return day_start, week_start


def wecom_cap(policy: GatePolicy, now: dt.datetime) -> tuple[dt.datetime, int]:
    """Start of the WeCom cap's period and the cap: the local calendar month and its number
    of days, the 7-day week and 7, or today and 1."""
    day_start, week_start = cap_bounds(policy, now)
    if policy.wecom_cap_mode == "day":
        return day_start, 1
    if policy.wecom_cap_mode == "week":
        return week_start, 7
    tz = ZoneInfo(policy.time_zone)
    today = now.astimezone(tz).date()
    month_start = dt.datetime.combine(today.replace(day=1), dt.time(0), tzinfo=tz)
    return month_start, calendar.monthrange(today.year, today.month)[1]


# ---- the SQL -------------------------------------------------------------------------------


def _cap_expr(policy: GatePolicy, period: str) -> str:
    """SQL for this medium's cap in ``period`` (0 = none): a CASE over the medium.

    Media and caps are inlined as literals: media come from ``Medium`` (checked when the
    settings are saved, and again here) and caps are ints.
    """
    cases = []
    for medium, limits in sorted(policy.channel_caps.items()):
        value = int(limits.get(period, 0) or 0)
        if value and medium in ADDRESS_TYPES:
            cases.append(f"WHEN r.medium = '{medium}' THEN {value}")
    return f"(CASE {' '.join(cases)} ELSE 0 END)" if cases else "0"


def gate_sql(
    policy: GatePolicy,
    *,
    workspace_id: int,
    candidates_sql: str,
    candidates_params: Sequence[Any],
    exclude_sql: str,
    exclude_params: Sequence[Any],
    now: dt.datetime,
) -> tuple[str, list[Any]]:
    """A SELECT of ``(id, customer_id, address, reason)`` for every candidate.

    ``candidates_sql`` selects ``id, customer_id, medium, purpose, to_address`` (the
    messages to decide, or a would-be audience for a preview). ``exclude_sql`` is a condition
    on ``g.id`` naming those same messages, so caps don't count them twice.
    """
    quiet = not in_window(policy, now)
    day_start, week_start = cap_bounds(policy, now)
    wecom_start, wecom_limit = wecom_cap(policy, now)
    pg = connection.vendor == "postgresql"
    params: list[Any] = list(candidates_params)
    address_cases = " ".join(f"WHEN '{medium}' THEN '{kind}'" for medium, kind in ADDRESS_TYPES.items())
    # The newest identity of the medium's type, unless the message names its address.
    address = (
        "COALESCE(NULLIF(c.to_address, ''), (SELECT i.value FROM customers_identity i "
        f"WHERE i.customer_id = c.customer_id AND i.type = (CASE c.medium {address_cases} END) "
        "ORDER BY i.id DESC LIMIT 1), CASE WHEN c.medium = 'app' AND c.customer_id IS NOT NULL "
        f"THEN {'%s || c.customer_id::text' if pg else '%s || c.customer_id'} END)"
    )
    # Performance (benchmarks/bench_broadcast.py, bench_gate.py at 1M customers): ``base`` is
    # MATERIALIZED so the address subquery runs once per row, not once per mention of
    # ``address``; opt-out and consent are scalar subqueries with LIMIT 1, one index probe each
    # (as EXISTS inside a CASE the planner may pick a "hashed" subplan that scans every revoked
    # consent in the database per batch); consent is unique per customer, medium and purpose,
    # so one read answers both 'revoked' and 'granted'.
    sql = [
        f"WITH cand AS ({candidates_sql}), ",
        "base AS MATERIALIZED (SELECT c.id, c.customer_id, c.medium, c.purpose, ",
        "CASE WHEN c.purpose = 'system' THEN COALESCE(NULLIF(c.to_address, ''), '') ELSE ",
        address,
        " END AS address, ",
        "(SELECT 1 FROM channels_optout x WHERE x.workspace_id = %s AND x.customer_id = c.customer_id LIMIT 1) "
        "AS opted_out, ",
        "(SELECT k.status FROM customers_consent k WHERE k.customer_id = c.customer_id AND k.channel = c.medium "
        "AND k.purpose = c.purpose LIMIT 1) AS consent FROM cand c), ",
    ]
    params.extend(["customer:", workspace_id])
    sql.append(
        "decided AS (SELECT b.id, b.customer_id, b.medium, b.purpose, b.address, CASE "
        "WHEN b.purpose = 'system' THEN '' "
        "WHEN b.customer_id IS NULL THEN 'no_customer' "
        "WHEN b.address IS NULL OR b.address = '' THEN 'no_address' "
        "WHEN b.purpose = 'marketing' AND b.opted_out IS NOT NULL THEN 'opted_out' "
        "WHEN b.consent = 'revoked' THEN 'consent_revoked' "
        "WHEN b.purpose = 'marketing' AND (b.consent IS NULL OR b.consent <> 'granted') THEN 'no_consent' "
        "WHEN b.purpose = 'marketing' AND %s THEN 'quiet_hours' "
        "ELSE '' END AS reason FROM base b), "
    )
    params.append(quiet)
    counted = ", ".join(f"'{s}'" for s in COUNTED_STATES)
    # Performance: the batch's passing marketing rows and the earlier counted messages of the
    # same customers go into one list, and every count comes from window functions over it.
    # (Joining per-customer totals to the batch instead let the planner, which cannot estimate
    # the rows of a CTE filtered on a computed column, pick nested loops: 2-3 s per 5,000-row
    # batch at 1M customers.) Earlier rows have ``is_mine = 0`` and a NULL id, so they add
    # nothing to the running row numbers wherever NULL sorts.
    sql.append(
        "mine AS (SELECT d.id, d.customer_id, d.medium FROM decided d WHERE d.reason = '' AND d.purpose = 'marketing'), "
        "tally AS (SELECT m.id, m.customer_id, m.medium, 0 AS p_day, 0 AS p_week, 0 AS p_wecom, 1 AS is_mine "
        "FROM mine m UNION ALL SELECT NULL, g.customer_id, g.medium, CASE WHEN g.gated_at >= %s THEN 1 ELSE 0 END, "
        "CASE WHEN g.gated_at >= %s THEN 1 ELSE 0 END, "
        "CASE WHEN g.medium = 'wecom' AND g.gated_at >= %s THEN 1 ELSE 0 END, 0 "
        "FROM messaging_outboundmessage g WHERE g.customer_id IN (SELECT m.customer_id FROM mine m) "
        f"AND g.purpose = 'marketing' AND g.gated_at IS NOT NULL AND g.gated_at >= %s AND g.state IN ({counted}) "
        "AND (g.gated_at >= %s OR g.medium = 'wecom') "
        f"AND NOT ({exclude_sql})), "
    )
    earliest = min(week_start, wecom_start)
    params.extend(
        [
            adapt(day_start, "datetime"),
            adapt(week_start, "datetime"),
            adapt(wecom_start, "datetime"),
            adapt(earliest, "datetime"),
            adapt(week_start, "datetime"),
            *exclude_params,
        ]
    )
    channel_day = _cap_expr(policy, "day")
    channel_week = _cap_expr(policy, "week")
    # Only the messages ahead that actually go count against a cap: one stopped by its
    # channel's cap must not use up the customer's cross-channel cap (it used to, so an SMS
    # was refused as 'cap_day' behind an email refused as 'channel_cap_day'). Before the
    # cross-channel cap is reached, every message ahead on the same medium went until the
    # medium's room ran out: ``room`` is the least room its caps leave (the channel's day and
    # week caps, and WeCom's cap on WeCom rows), so ``went_m`` of the ``rn_medium - 1`` ahead
    # on the medium went, and a message fits its medium when fewer than ``room`` are ahead.
    # (Counting every row ahead instead named the wrong cap behind a message another cap
    # stopped.) ``fits_before`` counts the messages ahead that fit their medium, of which the
    # first ``room`` of the cross-channel caps go.
    big = 1_000_000
    rooms = [
        f"(CASE WHEN {cap} > 0 THEN (CASE WHEN {cap} > {used} THEN {cap} - {used} ELSE 0 END) ELSE {big} END)"
        for cap, used in (("s.ch_day", "s.m_day"), ("s.ch_week", "s.m_week"), ("s.w_cap", "s.w_used"))
    ]
    least = rooms[0]
    for term in rooms[1:]:
        least = f"(CASE WHEN {least} < {term} THEN {least} ELSE {term} END)"
    fits = "(CASE WHEN f.rn_medium - 1 < f.room THEN 1 ELSE 0 END)"
    sql.append(
        "sums AS (SELECT r.id, r.customer_id, r.is_mine, "
        "SUM(r.is_mine) OVER (PARTITION BY r.customer_id, r.medium ORDER BY r.id ROWS UNBOUNDED PRECEDING) "
        "AS rn_medium, SUM(r.p_day) OVER (PARTITION BY r.customer_id) AS t_day, "
        "SUM(r.p_week) OVER (PARTITION BY r.customer_id) AS t_week, "
        "SUM(r.p_day) OVER (PARTITION BY r.customer_id, r.medium) AS m_day, "
        "SUM(r.p_week) OVER (PARTITION BY r.customer_id, r.medium) AS m_week, "
        "SUM(r.p_wecom) OVER (PARTITION BY r.customer_id, r.medium) AS w_used, "
        f"(CASE WHEN r.medium = 'wecom' THEN {int(wecom_limit)} ELSE 0 END) AS w_cap, "
        f"{channel_day} AS ch_day, {channel_week} AS ch_week FROM tally r), "
        "fitted AS (SELECT s.id, s.customer_id, s.rn_medium, s.t_day, s.t_week, s.m_day, s.m_week, s.ch_day, "
        f"s.ch_week, s.w_used, s.w_cap, {least} AS room FROM sums s WHERE s.is_mine = 1), "
        f"counted AS (SELECT f.*, (CASE WHEN f.rn_medium - 1 < f.room THEN f.rn_medium - 1 ELSE f.room END) "
        f"AS went_m, SUM({fits}) OVER (PARTITION BY f.customer_id ORDER BY f.id "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - {fits} AS fits_before FROM fitted f), "
    )
    # Messages ahead that went: fits_before, but no more than the room the caps left.
    went = "c.fits_before"
    for cap, used in ((int(policy.daily_cap), "c.t_day"), (int(policy.weekly_cap), "c.t_week")):
        if cap > 0:
            room = f"(CASE WHEN {cap} > {used} THEN {cap} - {used} ELSE 0 END)"
            went = f"(CASE WHEN {went} < {room} THEN {went} ELSE {room} END)"
    sql.append(
        "capped AS (SELECT c.id, CASE "
        f"WHEN %s > 0 AND c.t_day + {went} >= %s THEN 'cap_day' "
        f"WHEN %s > 0 AND c.t_week + {went} >= %s THEN 'cap_week' "
        "WHEN c.ch_day > 0 AND c.m_day + c.went_m >= c.ch_day THEN 'channel_cap_day' "
        "WHEN c.ch_week > 0 AND c.m_week + c.went_m >= c.ch_week THEN 'channel_cap_week' "
        "WHEN c.w_cap > 0 AND c.w_used + c.went_m >= c.w_cap THEN 'wecom_cap' "
        "ELSE '' END AS reason FROM counted c) "
    )
    params += [policy.daily_cap, policy.daily_cap, policy.weekly_cap, policy.weekly_cap]
    sql.append(
        "SELECT d.id, d.customer_id, d.address, "
        "CASE WHEN d.reason <> '' THEN d.reason ELSE COALESCE(cp.reason, '') END AS reason "
        "FROM decided d LEFT JOIN capped cp ON cp.id = d.id"
    )
    return "".join(sql), params


def evaluate(
    policy: GatePolicy,
    *,
    workspace_id: int,
    candidates_sql: str,
    candidates_params: Sequence[Any],
    exclude_sql: str = "1 = 0",
    exclude_params: Sequence[Any] = (),
    now: dt.datetime,
) -> list[tuple[int, int | None, str | None, str]]:
    """Run the gate and return ``(id, customer_id, address, reason)`` rows."""
    sql, params = gate_sql(
        policy,
        workspace_id=workspace_id,
        candidates_sql=candidates_sql,
        candidates_params=candidates_params,
        exclude_sql=exclude_sql,
        exclude_params=exclude_params,
        now=now,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # JIT compiling this query cost ~0.5 s per 5,000-row batch and saved nothing.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.fetchall()
