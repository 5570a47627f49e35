"""Pure rules of staff turnover: WeCom's transfer limit, how customers are shared among several
takeover staff, and what WeCom's answers mean. No database here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from siyu.customers.models import StaffRelation

T = TypeVar("T")

# 「90个自然日内，在职成员的每位客户仅可被转接2次」 [D WeCom 96325]. The documentation states it
# for on-job transfers only; resigned transfers neither count nor are blocked here.
TRANSFER_LIMIT = 2
LIMIT_WINDOW = dt.timedelta(days=90)
CHUNK = 100  # external_userid[] per transfer_customer call
MESSAGE_MAX = 200  # transfer_success_msg
MAX_TAKEOVERS = 50
LEASE = dt.timedelta(minutes=10)  # a claimed row is sent again after this (the sender died)
STALE_AFTER = dt.timedelta(hours=72)  # WeCom lists no result for a started row this long: failed

PLANNED, BLOCKED_LIMIT, STARTED, WAITING = "planned", "blocked_limit", "started", "waiting"
DONE, REFUSED, TAKEOVER_AT_CAP, FAILED = "done", "refused", "takeover_at_cap", "failed"
PENDING = (PLANNED, STARTED, WAITING)
IN_FLIGHT = (STARTED, WAITING)  # WeCom has the transfer; transfer_result tells how it ends
COUNTED = (STARTED, WAITING, DONE)  # count toward the 90-day limit
TERMINAL = (BLOCKED_LIMIT, DONE, REFUSED, TAKEOVER_AT_CAP, FAILED)

# Per-customer errcodes of transfer_customer / resigned/transfer_customer (global errcode list).
ERR_LIMIT = 40128  # 客户转接过于频繁（90 天内同一客户最多转接两次）
ERR_TAKEOVER_AT_CAP = 40099  # 接替成员的外部联系人数量已达上限
ERR_NOT_RESIGNED = 40097  # 该成员尚未离职 (resigned transfer of someone WeCom still employs)
# "Already transferring": an earlier send of ours (a retried chunk) started it.
ERR_IN_PROGRESS = frozenset({40100, 40129})

# transfer_result ``status``: 1 done, 2 waiting, 3 refused, 4 takeover at cap, 5 no record.
RESULT_STATUS = {1: DONE, 2: WAITING, 3: REFUSED, 4: TAKEOVER_AT_CAP, 5: FAILED}
# transfer_fail callback ``FailReason``.
FAIL_REASONS = {"customer_refused": REFUSED, "customer_limit_exceed": TAKEOVER_AT_CAP}

# What the handover staff member's relation becomes once the customer has moved. The customers
# app has no "transferred" relation status yet; WeCom itself reports the end of an on-job
# transfer as del_external_contact with Source=DELETE_BY_TRANSFER, i.e. deleted by the staff
# member, so that is the status until a dedicated one exists.
HANDOVER_RELATION_STATUS: str = getattr(StaffRelation.Status, "TRANSFERRED", StaffRelation.Status.DELETED_BY_STAFF)

REASONS = {
    "limit": "90 天内已被转接 2 次 / transferred twice in the last 90 days",
    "in_progress": "已有进行中的转接 / a transfer of this customer is already running",
    "no_external_userid": "没有企业微信外部联系人 ID / no WeCom external_userid known",
}


def next_allowed_at(requested: Iterable[dt.datetime], now: dt.datetime) -> dt.datetime | None:
    """When a customer with on-job transfers requested at ``requested`` may be transferred
    again, or None if now. The limit frees up when the oldest of the last two leaves the window."""
    recent = sorted((t for t in requested if t > now - LIMIT_WINDOW), reverse=True)
    if len(recent) < TRANSFER_LIMIT:
        return None
    return recent[TRANSFER_LIMIT - 1] + LIMIT_WINDOW


def distribute(customer_ids: Sequence[int], takeover_ids: Sequence[int]) -> dict[int, int]:
    """Customer → takeover staff, round robin in customer order: counts differ by at most one,
    and the same input always gives the same split (preview and start agree)."""
    if not takeover_ids:
        return {}
    return {cid: takeover_ids[n % len(takeover_ids)] for n, cid in enumerate(sorted(customer_ids))}


def status_for_errcode(errcode: int) -> str:
    """What a per-customer errcode of a transfer request means for that customer."""
    if errcode == 0 or errcode in ERR_IN_PROGRESS:
        return STARTED
    if errcode == ERR_LIMIT:
        return BLOCKED_LIMIT
    if errcode == ERR_TAKEOVER_AT_CAP:
        return TAKEOVER_AT_CAP
    return FAILED


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
