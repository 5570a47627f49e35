"""Dispatch: claim due outbox rows, run the compliance gate, render, send, record.

One round for one channel account:

1. **Claim and gate** (one short transaction): pick due rows (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so workers never pick the same row), decide them all in one gate query, and
   write the decisions: suppressed (with the reason), held until the window opens, or
   ``sending`` under this worker's lease. The gate runs under a per-workspace advisory lock
   so two workers cannot both let through the message that reaches a cap.
2. **Send** (no transaction open): render each message, hand them to the channel in batches
   at the account's rate, and record each answer, guarded by ``state = 'sending' AND
   claimed_by = me`` so a late worker can never overwrite a recovered row.
3. **Recover**: a row still ``sending`` after its lease expired belonged to a worker that
   died. The channel is asked what the provider has (``Channel.recover``): sent rows are
   recorded as sent, rows the provider certainly lacks are queued again, and rows it cannot
   tell become ``unknown`` — never resent automatically, so nothing goes out twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from siyu.channels import gate
from siyu.channels.base import Outcome, OutMessage, SendResult
from siyu.channels.models import ChannelAccount
from siyu.channels.registry import get_channel
from siyu.channels.services import account_config, compliance_settings, disable_account, record_opt_out
from siyu.content.rendering import RenderContext, customer_values, render
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.core.sql import ColumnType, adapt, id_list_condition, update_from_values
from siyu.messaging.models import Broadcast, BroadcastVariant
from siyu.org.models import Workspace

log = logging.getLogger("siyu.dispatch")

LEASE = dt.timedelta(seconds=settings.DISPATCH_LEASE_SECONDS)
MAX_ATTEMPTS = 8
# One account's turn in a round: after this, other accounts go before it continues.
ACCOUNT_BUDGET_SECONDS = 10.0
GATE_LOCK = 4242  # first key of the per-workspace advisory lock
RESULT_COLUMNS: dict[str, ColumnType] = {
    "id": "int",
    "state": "text",
    "reason": "text",
    "provider_ref": "text",
    "error_code": "text",
    "error_message": "text",
    "subject": "text",
    "body": "text",
    "payload": "json",
    "not_before": "datetime",
    "sent_at": "datetime",
    "delivered_at": "datetime",
    "attempts": "int",
}


def worker_name() -> str:
    """Unique per process; only letters, digits, ``.:-`` (it is written into SQL as a literal)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:40] or "host"
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _check_worker(worker: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,64}", worker):
        raise ValueError(f"bad worker name {worker!r}")
    return worker


@dataclass
class Stats:
    claimed: int = 0
    suppressed: int = 0
    held: int = 0
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    unknown: int = 0
    accounts_disabled: list[int] = field(default_factory=list)

    def add(self, other: Stats) -> None:
        for name in ("claimed", "suppressed", "held", "sent", "delivered", "retried", "failed", "recovered", "unknown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.accounts_disabled += other.accounts_disabled


@dataclass
class Claimed:
    id: int
    customer_id: int | None
    purpose: str
    to_address: str
    subject: str
    body: str
    payload: dict[str, Any]
    broadcast_id: int | None
    variant_id: int | None
    idempotency_key: str
    attempts: int


class RateLimiter:
    """A token bucket per account, in this process (each worker keeps its own)."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    def available(self, account_id: int, rate: float, burst: float) -> int:
        tokens, at = self._buckets.get(account_id, (burst, time.monotonic()))
        now = time.monotonic()
        tokens = min(burst, tokens + (now - at) * rate)
        self._buckets[account_id] = (tokens, now)
        return int(tokens)

    def take(self, account_id: int, n: int) -> None:
        tokens, at = self._buckets.get(account_id, (0.0, time.monotonic()))
        self._buckets[account_id] = (tokens - n, at)

    def wait_for(self, account_id: int, rate: float, n: int, burst: float) -> None:
        while self.available(account_id, rate, burst) < min(n, burst):
            time.sleep(min(1.0, max(0.001, (min(n, burst) - self._buckets[account_id][0]) / rate)))
        self.take(account_id, n)


_limiter = RateLimiter()


# ---- 1. claim and gate ------------------------------------------------------------------------


def _policy(workspace_id: int) -> gate.GatePolicy:
    time_zone = Workspace.objects.filter(pk=workspace_id).values_list("time_zone", flat=True).first() or "UTC"
    return gate.GatePolicy.of(compliance_settings(workspace_id), time_zone)


def claim(account: ChannelAccount, worker: str, limit: int, now: dt.datetime) -> tuple[list[Claimed], Stats]:
    """Pick up to ``limit`` due messages of ``account``, gate them, lease the ones that pass."""
    stats = Stats()
    _check_worker(worker)
    pg = connection.vendor == "postgresql"
    policy = _policy(account.workspace_id)
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [GATE_LOCK, account.workspace_id])
        cursor.execute(
            "SELECT id FROM messaging_outboundmessage WHERE account_id = %s AND state IN ('queued', 'held') "
            "AND (not_before IS NULL OR not_before <= %s) ORDER BY id LIMIT %s"
            + (" FOR UPDATE SKIP LOCKED" if pg else ""),
            [account.pk, adapt(now, "datetime"), limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return [], stats
        cond_o, params_o = id_list_condition("o.id", ids)
        cond_g, params_g = id_list_condition("g.id", ids)
        decisions = gate.evaluate(
            policy,
            workspace_id=account.workspace_id,
            candidates_sql=(
                "SELECT o.id, o.customer_id, o.medium, o.purpose, o.to_address "
                f"FROM messaging_outboundmessage o WHERE {cond_o}"
            ),
            candidates_params=params_o,
            exclude_sql=cond_g,
            exclude_params=params_g,
            now=now,
        )
        hold_until = gate.next_window_start(policy, now)
        rows = [(mid, reason, address or "") for mid, _cid, address, reason in decisions]
        lease = max(now, clock.now()) + LEASE
        update_from_values(
            "messaging_outboundmessage",
            {"id": "int", "reason": "text", "address": "text"},
            rows,
            assignments={
                "state": "CASE WHEN v.reason = '' THEN 'sending' "
                "WHEN v.reason = 'quiet_hours' AND {t}.quiet_policy = 'hold' THEN 'held' ELSE 'suppressed' END",
                "reason": "v.reason",
                # A held row keeps what it had: its address is looked up again when it is released.
                "to_address": "CASE WHEN v.reason = 'quiet_hours' THEN {t}.to_address ELSE v.address END",
                "not_before": "CASE WHEN v.reason = 'quiet_hours' AND {t}.quiet_policy = 'hold' THEN "
                + _param_literal(hold_until)
                + " ELSE {t}.not_before END",
                "gated_at": f"CASE WHEN v.reason = '' THEN {_param_literal(now)} ELSE {{t}}.gated_at END",
                "claimed_by": f"CASE WHEN v.reason = '' THEN '{worker}' ELSE {{t}}.claimed_by END",
                "lease_until": f"CASE WHEN v.reason = '' THEN {_param_literal(lease)} ELSE NULL END",
                "attempts": "CASE WHEN v.reason = '' THEN {t}.attempts + 1 ELSE {t}.attempts END",
                "updated_at": _param_literal(now),
            },
        )
        passed = [mid for mid, reason, _a in rows if reason == ""]
        stats.claimed = len(ids)
        for _mid, reason, _a in rows:
            if reason == "quiet_hours":
                stats.held += 1  # counted as held or skipped below
            elif reason:
                stats.suppressed += 1
        if not passed:
            return [], stats
        cond, params = id_list_condition("id", passed)
        cursor.execute(
            "SELECT id, customer_id, purpose, to_address, subject, body, payload, broadcast_id, variant_id, "
            f"idempotency_key, attempts FROM messaging_outboundmessage WHERE {cond} ORDER BY id",
            params,
        )
        claimed = [
            Claimed(r[0], r[1], r[2], r[3], r[4], r[5], _json(r[6]), r[7], r[8], r[9], r[10]) for r in cursor.fetchall()
        ]
    return claimed, stats


def _param_literal(value: dt.datetime) -> str:
    """A datetime as an SQL literal (for CASE branches inside update_from_values)."""
    adapted = adapt(value, "datetime")
    text = adapted.isoformat() if isinstance(adapted, dt.datetime) else str(adapted)
    return f"CAST('{text}' AS {'timestamptz' if connection.vendor == 'postgresql' else 'text'})"


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value or {}


def _unsubscribe_url(message_id: int) -> str:
    """The one-click unsubscribe link of an email (List-Unsubscribe and ``{{ unsubscribe_url }}``)."""
    from siyu.channels.email.channel import unsubscribe_url

    return unsubscribe_url(message_id)


# ---- 2. render and send ---------------------------------------------------------------------------


@dataclass
class _Context:
    customers: dict[int, dict[str, Any]]
    stores: dict[int, dict[str, Any]]
    staff: dict[int, dict[str, Any]]
    brand: dict[str, Any]
    variants: dict[int, BroadcastVariant]
    coupons: dict[int, str]


def _load_context(workspace_id: int, claimed: Sequence[Claimed]) -> _Context:
    customer_ids = sorted({c.customer_id for c in claimed if c.customer_id})
    customers: dict[int, dict[str, Any]] = {}
    stores: dict[int, dict[str, Any]] = {}
    staff: dict[int, dict[str, Any]] = {}
    if customer_ids:
        cond, params = id_list_condition("c.id", customer_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.id, c.name, c.city, c.province, c.gender, c.attributes, c.store_id, c.owner_staff_id, "
                "s.name, s.city, st.name FROM customers_customer c "
                "LEFT JOIN org_orgunit s ON s.id = c.store_id LEFT JOIN org_staff st ON st.id = c.owner_staff_id "
                f"WHERE {cond}",
                params,
            )
            for cid, name, city, province, gender, attrs, store_id, staff_id, s_name, s_city, st_name in cursor:
                values = customer_values(
                    id=cid, name=name, city=city, province=province, gender=gender, attributes=_json(attrs)
                )
                customers[cid] = {**values, "_store": store_id, "_staff": staff_id}
                if store_id:
                    stores[store_id] = {"name": s_name or "", "city": s_city or ""}
                if staff_id:
                    staff[staff_id] = {"name": st_name or ""}
    variant_ids = {c.variant_id for c in claimed if c.variant_id}
    variants = {v.pk: v for v in BroadcastVariant.objects.filter(pk__in=variant_ids)}
    broadcast_ids = {c.broadcast_id for c in claimed if c.broadcast_id}
    coupons = dict(Broadcast.objects.filter(pk__in=broadcast_ids).values_list("id", "coupon_code"))
    brand_name = Workspace.objects.filter(pk=workspace_id).values_list("name", flat=True).first() or ""
    return _Context(customers, stores, staff, {"name": brand_name}, variants, coupons)


def _render_one(
    message: Claimed, ctx: _Context, *, medium: str, suffix: str, unsubscribe
) -> tuple[OutMessage | None, dict[str, Any], str]:
    """The message to hand to the channel, the payload to store, or an error text."""
    payload = dict(message.payload)
    if message.purpose == "system":
        return (
            OutMessage(
                message.id, message.to_address, "", message.body, message.purpose, message.idempotency_key, payload
            ),
            payload,
            "",
        )
    template = payload.get("template") or {}
    if message.variant_id and message.variant_id in ctx.variants:
        v = ctx.variants[message.variant_id]
        template = {
            "body": v.body,
            "subject": v.subject,
            "provider_template": v.provider_template,
            "provider_params": v.provider_params,
        }
    customer = ctx.customers.get(message.customer_id or 0)
    if customer is None:
        return None, payload, "customer not found"
    variables = payload.get("vars") or {}
    render_ctx = RenderContext(
        customer={k: v for k, v in customer.items() if not k.startswith("_")},
        staff=ctx.staff.get(customer["_staff"]),
        store=ctx.stores.get(customer["_store"]),
        brand=ctx.brand,
        coupon_code=str(variables.get("coupon_code") or ctx.coupons.get(message.broadcast_id or 0, "")),
        message_id=message.id,
        unsubscribe_url=unsubscribe(message.id) if unsubscribe else "",
    )
    try:
        rendered = render(
            body=template.get("body", ""),
            subject=template.get("subject", ""),
            params=template.get("provider_params") or {},
            ctx=render_ctx,
            medium=medium,
            suffix=suffix if (medium == "sms" and message.purpose == "marketing") else "",
        )
    except InvalidInput as exc:
        return None, payload, f"{exc.field}: {exc.message}"
    if (
        medium == "sms"
        and message.purpose == "marketing"
        and template.get("provider_template")
        and suffix
        and not str(template.get("body", "")).rstrip().endswith(suffix)
    ):
        # The suffix setting changed after the template was approved: the provider would send
        # the approved text without the opt-out method, so this message must not go.
        return None, payload, f"body: 营销短信模板未以「{suffix}」结尾 / the approved template lacks the opt-out text"
    # ``attempt`` > 1 tells a channel this may be a retry of a send whose answer was lost.
    channel_payload = {"links": rendered.links, "customer_id": message.customer_id, "attempt": message.attempts}
    if template.get("provider_template"):
        channel_payload["provider_template"] = template["provider_template"]
        channel_payload["params"] = rendered.params
    if "param_order" in template:
        channel_payload["param_order"] = template["param_order"]
    if render_ctx.unsubscribe_url:
        channel_payload["unsubscribe_url"] = render_ctx.unsubscribe_url
    payload["links"] = rendered.links
    out = OutMessage(
        message.id,
        message.to_address,
        rendered.subject,
        rendered.body,
        message.purpose,
        message.idempotency_key,
        channel_payload,
    )
    return out, payload, ""


def send_claimed(account: ChannelAccount, claimed: Sequence[Claimed], worker: str, now: dt.datetime) -> Stats:
    stats = Stats()
    if not claimed:
        return stats
    channel = get_channel(account.provider)
    config = account_config(account)
    policy = _policy(account.workspace_id)
    ctx = _load_context(account.workspace_id, claimed)
    unsubscribe = _unsubscribe_url if account.medium == "email" else None
    by_id = {c.id: c for c in claimed}
    rows: list[tuple] = []
    ready: list[OutMessage] = []
    stored_payload: dict[int, dict[str, Any]] = {}
    for message in claimed:
        out, payload, error = _render_one(
            message, ctx, medium=account.medium, suffix=policy.sms_suffix, unsubscribe=unsubscribe
        )
        if out is None:
            rows.append(_result_row(message, "failed", "render_error", error_message=error))
            stats.failed += 1
            continue
        stored_payload[message.id] = payload
        ready.append(out)
    blocked_customers: list[int] = []
    size = max(1, channel.batch_size)
    disabled = False
    _apply(rows, worker)  # render failures
    for start in range(0, len(ready), size):
        chunk = ready[start : start + size]
        rows = []
        if disabled:
            _apply([_requeue_row(by_id[m.id]) for m in chunk], worker)
            continue
        _limiter.wait_for(account.pk, account.rate_per_second, len(chunk), burst=max(1.0, account.rate_per_second))
        # Renew the lease right before the provider call and send only the rows still ours: a
        # worker that stalled past its lease may have been declared dead and its rows recovered.
        still_ours = _renew_lease(worker, [m.id for m in chunk])
        chunk = [m for m in chunk if m.id in still_ours]
        if not chunk:
            continue
        try:
            results = channel.send(config, chunk)
        except Exception as exc:
            # A channel bug mid-chunk: some messages may already be with the provider, so none
            # of the chunk is resent automatically; the operator sees them as "unknown".
            log.exception("channel %s raised on send", account.provider)
            results = [
                SendResult(m.id, Outcome.UNKNOWN, error_code="exception", error_message=str(exc)[:500]) for m in chunk
            ]
        answered = {r.message_id: r for r in results}
        sent_at = clock.now()
        for out in chunk:
            result = answered.get(out.id) or SendResult(out.id, Outcome.TRANSIENT, error_code="no_answer")
            message = by_id[out.id]
            if result.outcome is Outcome.ACCOUNT:
                if not disabled:
                    disable_account(account.pk, f"{result.error_code}: {result.error_message}"[:500])
                    stats.accounts_disabled.append(account.pk)
                    disabled = True
                rows.append(_requeue_row(message, error_code=result.error_code, error_message=result.error_message))
                continue
            row, kind = _row_for(message, out, result, stored_payload.get(out.id, {}), sent_at, now)
            rows.append(row)
            setattr(stats, kind, getattr(stats, kind) + 1)
            if result.outcome is Outcome.BLOCKED and message.customer_id:
                blocked_customers.append(message.customer_id)
        # Record each provider call's answers at once: a crash loses at most one chunk's
        # answers, and recovery asks the provider about exactly those.
        _apply(rows, worker)
    if blocked_customers:
        record_opt_out(account.workspace_id, blocked_customers, source="provider", detail=account.provider)
    return stats


def _renew_lease(worker: str, ids: list[int]) -> set[int]:
    _check_worker(worker)
    cond, params = id_list_condition("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE messaging_outboundmessage SET lease_until = %s WHERE {cond} "
            "AND state = 'sending' AND claimed_by = %s RETURNING id",
            [adapt(clock.now() + LEASE, "datetime"), *params, worker],
        )
        return {row[0] for row in cursor.fetchall()}


def _row_for(
    message: Claimed, out: OutMessage, result: SendResult, payload: dict, sent_at: dt.datetime, now: dt.datetime
) -> tuple[tuple, str]:
    common = {
        "provider_ref": result.provider_ref,
        "error_code": result.error_code,
        "error_message": result.error_message,
    }
    if result.outcome in (Outcome.SENT, Outcome.DELIVERED):
        delivered = result.outcome is Outcome.DELIVERED
        return (
            _result_row(
                message,
                "delivered" if delivered else "sent",
                "",
                subject=out.subject,
                body=out.body,
                payload=payload,
                sent_at=sent_at,
                delivered_at=sent_at if delivered else None,
                **common,
            ),
            "delivered" if delivered else "sent",
        )
    if result.outcome is Outcome.TRANSIENT:
        if message.attempts >= MAX_ATTEMPTS:
            return _result_row(message, "failed", "retries_exhausted", **common), "failed"
        delay = result.retry_after if result.retry_after is not None else backoff(message.attempts)
        return (
            _result_row(message, "queued", "", not_before=now + dt.timedelta(seconds=delay), **common),
            "retried",
        )
    if result.outcome is Outcome.UNKNOWN:
        return _result_row(
            message, "unknown", "", subject=out.subject, body=out.body, payload=payload, sent_at=sent_at, **common
        ), "unknown"
    state = "bounced" if result.outcome is Outcome.BOUNCED else "failed"
    reason = "provider_blocked" if result.outcome is Outcome.BLOCKED else ""
    return _result_row(message, state, reason, subject=out.subject, body=out.body, payload=payload, **common), "failed"


def backoff(attempts: int) -> float:
    """Seconds before retry ``attempts`` + 1: 30 s doubling to an hour, with ±20 % jitter."""
    base = min(3600.0, 30.0 * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


def _result_row(
    message: Claimed,
    state: str,
    reason: str,
    *,
    provider_ref: str = "",
    error_code: str = "",
    error_message: str = "",
    subject: str | None = None,
    body: str | None = None,
    payload: dict | None = None,
    not_before: dt.datetime | None = None,
    sent_at: dt.datetime | None = None,
    delivered_at: dt.datetime | None = None,
    attempts: int | None = None,
) -> tuple:
    return (
        message.id,
        state,
        reason,
        provider_ref[:100],
        error_code[:64],
        error_message[:500],
        message.subject if subject is None else subject[:200],
        message.body if body is None else body,
        message.payload if payload is None else payload,
        not_before,
        sent_at,
        delivered_at,
        message.attempts if attempts is None else attempts,
    )


def _requeue_row(message: Claimed, *, error_code: str = "", error_message: str = "") -> tuple:
    """Back to the queue without charging an attempt (the account, not the message, failed)."""
    return _result_row(
        message,
        "queued",
        "",
        error_code=error_code,
        error_message=error_message,
        attempts=max(0, message.attempts - 1),
    )


def _apply(rows: list[tuple], worker: str) -> int:
    _check_worker(worker)
    if not rows:
        return 0
    now = clock.now()
    return update_from_values(
        "messaging_outboundmessage",
        RESULT_COLUMNS,
        rows,
        assignments={
            # A delivery report can overtake the worker's own record: keep the report's state.
            "state": "CASE WHEN {t}.state = 'sending' THEN v.state ELSE {t}.state END",
            "reason": "v.reason",
            "provider_ref": "v.provider_ref",
            "error_code": "CASE WHEN {t}.state = 'sending' THEN v.error_code ELSE {t}.error_code END",
            "error_message": "CASE WHEN {t}.state = 'sending' THEN v.error_message ELSE {t}.error_message END",
            "subject": "v.subject",
            "body": "v.body",
            "payload": "v.payload",
            "not_before": "v.not_before",
            "sent_at": "v.sent_at",
            "delivered_at": "COALESCE({t}.delivered_at, v.delivered_at)",
            "attempts": "v.attempts",
            "lease_until": "NULL",
            "updated_at": _param_literal(now),
        },
        where=f"{{t}}.claimed_by = '{worker}' AND ({{t}}.state = 'sending' OR "
        f"({{t}}.state IN ('delivered', 'failed', 'bounced') AND {{t}}.sent_at IS NULL AND {{t}}.lease_until IS NOT NULL))",
    )


# ---- 3. recover -------------------------------------------------------------------------------------


def recover_expired(worker: str, now: dt.datetime, limit: int = 1000) -> Stats:
    """Settle rows whose worker died mid-send (lease expired while ``sending``)."""
    stats = Stats()
    pg = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM messaging_outboundmessage WHERE state = 'sending' AND lease_until < %s "
            "ORDER BY id LIMIT %s" + (" FOR UPDATE SKIP LOCKED" if pg else ""),
            [adapt(now, "datetime"), limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return stats
        cond, params = id_list_condition("id", ids)
        cursor.execute(
            f"UPDATE messaging_outboundmessage SET claimed_by = %s, lease_until = %s WHERE {cond}",
            [worker, adapt(now + LEASE, "datetime"), *params],
        )
        cursor.execute(
            "SELECT id, account_id, customer_id, purpose, to_address, subject, body, payload, broadcast_id, "
            f"variant_id, idempotency_key, attempts, gated_at FROM messaging_outboundmessage WHERE {cond}",
            params,
        )
        found = cursor.fetchall()
    by_account: dict[int, list] = defaultdict(list)
    for row in found:
        by_account[row[1]].append(row)
    rows: list[tuple] = []
    for account_id, items in by_account.items():
        account = ChannelAccount.objects.get(pk=account_id)
        channel = get_channel(account.provider)
        claimed = {
            r[0]: Claimed(r[0], r[2], r[3], r[4], r[5], r[6], _json(r[7]), r[8], r[9], r[10], r[11]) for r in items
        }
        probes = [
            OutMessage(
                c.id,
                c.to_address,
                c.subject,
                c.body,
                c.purpose,
                c.idempotency_key,
                {"attempted_at": (r[12] or now).isoformat() if isinstance(r[12], dt.datetime) else str(r[12] or now)},
            )
            for c, r in zip(claimed.values(), items, strict=True)
        ]
        try:
            answers = channel.recover(account_config(account), probes)
        except Exception:
            log.exception("channel %s raised on recover", account.provider)
            answers = {}
        for mid, message in claimed.items():
            if mid not in answers:
                rows.append(
                    _result_row(message, "unknown", "", error_message="worker died mid-send; provider cannot tell")
                )
                stats.unknown += 1
            elif answers[mid] is None:
                rows.append(_requeue_row(message))
                stats.recovered += 1
            else:
                result = answers[mid]
                delivered = result.outcome is Outcome.DELIVERED
                if result.outcome in (Outcome.SENT, Outcome.DELIVERED):
                    state = "delivered" if delivered else "sent"
                else:  # the provider has it, and refused it (e.g. Aliyun SendStatus 2, Tencent FAIL)
                    state = "bounced" if result.outcome is Outcome.BOUNCED else "failed"
                rows.append(
                    _result_row(
                        message,
                        state,
                        "",
                        provider_ref=result.provider_ref,
                        error_code=result.error_code,
                        error_message=result.error_message,
                        sent_at=now,
                        delivered_at=now if delivered else None,
                    )
                )
                stats.recovered += 1
    _apply(rows, worker)
    return stats


# ---- the loop -------------------------------------------------------------------------------------


def run_once(worker: str, *, now: dt.datetime | None = None, batch: int = 5000) -> Stats:
    """One pass over every active account with due messages; returns what happened."""
    from siyu.messaging import broadcasts

    now = now or clock.now()
    stats = Stats()
    broadcasts.start_due(now)
    stats.add(recover_expired(worker, now))
    accounts = ChannelAccount.objects.filter(status=ChannelAccount.Status.ACTIVE)
    for account in accounts:
        try:
            channel = get_channel(account.provider)
            account_config(account)  # credentials that cannot be decrypted stop the account, not the round
        except (LookupError, ValueError) as exc:
            disable_account(account.pk, f"配置不可用 / unusable configuration: {exc}")
            stats.accounts_disabled.append(account.pk)
            continue
        started = time.monotonic()
        while True:
            budget = _limiter.available(account.pk, account.rate_per_second, burst=max(1.0, account.rate_per_second))
            limit = max(1, min(batch, max(channel.batch_size, 1) * 4, budget or 1))
            claimed, claim_stats = claim(account, worker, limit, now)
            stats.add(claim_stats)
            try:
                stats.add(send_claimed(account, claimed, worker, now))
            except Exception:
                # Whatever was claimed and not yet handed to the provider goes back to the queue.
                log.exception("dispatch for account %s failed; unsent messages are queued again", account.pk)
                _release(worker, [c.id for c in claimed])
                raise
            account.refresh_from_db(fields=["status"])
            if claim_stats.claimed < limit or account.status != ChannelAccount.Status.ACTIVE:
                break
            if time.monotonic() - started > ACCOUNT_BUDGET_SECONDS:
                break  # let the other accounts have their turn; this one continues next round
            now = clock.now()
    broadcasts.finish_done(now)
    return stats


def _release(worker: str, ids: list[int]) -> None:
    """Rows this worker claimed but never handed to a provider: back to the queue, attempt not charged."""
    if not ids:
        return
    cond, params = id_list_condition("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_outboundmessage SET state = 'queued', lease_until = NULL, "
            "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
            f"WHERE {cond} AND state = 'sending' AND claimed_by = %s AND sent_at IS NULL",
            [*params, worker],
        )


def run_forever(stop: threading.Event | None = None, *, idle_seconds: float = 1.0, batch: int = 5000) -> None:
    """The dispatcher loop run by ``siyu worker`` (and ``siyu dispatch``)."""
    worker = worker_name()
    stop = stop or threading.Event()
    log.info("dispatcher %s started", worker)
    while not stop.is_set():
        try:
            stats = run_once(worker, batch=batch)
        except Exception:
            log.exception("dispatch round failed; retrying")
            stats = Stats()
        finally:
            connection.close_if_unusable_or_obsolete()
        if stats.claimed == 0 and stats.recovered == 0 and stats.unknown == 0:
            stop.wait(idle_seconds)
