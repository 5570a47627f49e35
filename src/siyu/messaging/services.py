"""The outbox: queueing messages (one row each, idempotent), provider receipts, and domain
events for webhook subscribers. Dispatch lives in ``messaging.dispatch``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from siyu.channels.base import Receipt
from siyu.channels.models import ChannelAccount
from siyu.content.rendering import check_template
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.core.sql import ColumnType, insert_rows, update_from_values
from siyu.messaging.models import OutboundMessage, Purpose, QuietPolicy

OUTBOUND_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "account_id": "int",
    "medium": "text",
    "purpose": "text",
    "idempotency_key": "text",
    "broadcast_id": "int",
    "variant_id": "int",
    "to_address": "text",
    "subject": "text",
    "body": "text",
    "payload": "json",
    "state": "text",
    "reason": "text",
    "quiet_policy": "text",
    "not_before": "datetime",
    "attempts": "int",
    "claimed_by": "text",
    "provider_ref": "text",
    "error_code": "text",
    "error_message": "text",
    "created_at": "datetime",
    "updated_at": "datetime",
}
# The states a message leaves only through dispatch.
OPEN_STATES = ("queued", "held", "sending")
# Domain events a webhook account can subscribe to (settings["events"]).
DOMAIN_EVENTS = ("customer.created", "tag.added", "order.paid", "segment.entered", "customer.opted_out")


@dataclass(frozen=True)
class NewMessage:
    """One message to queue. ``body`` / ``subject`` are templates, rendered at dispatch."""

    customer_id: int
    idempotency_key: str
    body: str
    subject: str = ""
    variables: dict[str, Any] | None = None
    provider_template: str = ""
    provider_params: dict[str, str] | None = None


def enqueue(
    account: ChannelAccount,
    messages: Sequence[NewMessage],
    *,
    purpose: str,
    quiet_policy: str = QuietPolicy.HOLD,
    not_before: dt.datetime | None = None,
) -> tuple[int, int]:
    """Queue messages for customers; returns (queued, duplicates).

    A key already used in this workspace is a duplicate and queues nothing, so a retried
    request can never send twice. Templates are checked before anything is stored.
    """
    if purpose not in (Purpose.MARKETING, Purpose.SERVICE):
        raise InvalidInput("purpose must be marketing or service", field="purpose")
    if quiet_policy not in QuietPolicy.values:
        raise InvalidInput("quiet_policy must be hold or skip", field="quiet_policy")
    for n, message in enumerate(messages):
        if not message.idempotency_key or len(message.idempotency_key) > 200:
            raise InvalidInput("1-200 characters required", field=f"items.{n}.idempotency_key")
        check_template(message.body, field=f"items.{n}.body", medium=account.medium)
        if message.subject:
            check_template(message.subject, field=f"items.{n}.subject", medium=account.medium, max_length=200)
        for key, src in (message.provider_params or {}).items():
            check_template(src, field=f"items.{n}.provider_params.{key}", medium=account.medium)
        if account.medium == "sms" and purpose == Purpose.MARKETING and message.provider_template:
            # An approved provider template is sent as approved: the opt-out text must be in it.
            from siyu.channels.services import compliance_settings  # channels.services imports this module

            suffix = compliance_settings(account.workspace_id).sms_optout_suffix
            if not message.body.rstrip().endswith(suffix):
                raise InvalidInput(
                    f"营销短信模板须以「{suffix}」结尾 / marketing SMS templates must end with the opt-out text",
                    field=f"items.{n}.body",
                )
    now = clock.now()
    rows = [
        _row(
            account,
            customer_id=m.customer_id,
            purpose=purpose,
            key=m.idempotency_key,
            payload=_payload(m.body, m.subject, m.variables, m.provider_template, m.provider_params),
            quiet_policy=quiet_policy,
            not_before=not_before,
            now=now,
        )
        for m in messages
    ]
    with transaction.atomic():
        before = _count_keys(account.workspace_id, [m.idempotency_key for m in messages])
        insert_rows("messaging_outboundmessage", OUTBOUND_COLUMNS, rows, ignore_conflicts=True)
    return len(rows) - before, before


def _payload(body: str, subject: str, variables, provider_template: str, provider_params) -> dict[str, Any]:
    payload: dict[str, Any] = {"template": {"body": body, "subject": subject}}
    if variables:
        payload["vars"] = variables
    if provider_template:
        payload["template"]["provider_template"] = provider_template
        payload["template"]["provider_params"] = provider_params or {}
    return payload


def _row(
    account,
    *,
    customer_id,
    purpose,
    key,
    payload,
    quiet_policy,
    not_before,
    now,
    broadcast_id=None,
    variant_id=None,
    state="queued",
    to_address="",
    body="",
    subject="",
) -> tuple:
    return (
        account.workspace_id,
        customer_id,
        account.pk if isinstance(account, ChannelAccount) else account.id,
        account.medium,
        purpose,
        key,
        broadcast_id,
        variant_id,
        to_address,
        subject,
        body,
        payload,
        state,
        "",
        quiet_policy,
        not_before,
        0,
        "",
        "",
        "",
        "",
        now,
        now,
    )


def _count_keys(workspace_id: int, keys: list[str]) -> int:
    if not keys:
        return 0
    return OutboundMessage.objects.filter(workspace_id=workspace_id, idempotency_key__in=keys).count()


# ---- receipts ------------------------------------------------------------------------------


def record_receipts(account_id: int, receipts: Sequence[Receipt]) -> int:
    """Apply delivery reports. Only moves a message forward (sent/unknown → delivered/failed/
    bounced); a report for an unknown message, or a repeat, changes nothing. Returns how many
    messages changed."""
    if not receipts:
        return 0
    now = clock.now()
    by_id = [r for r in receipts if r.message_id is not None]
    by_ref = [r for r in receipts if r.message_id is None and r.provider_ref]
    changed = 0
    columns: dict[str, ColumnType] = {
        "id": "int",
        "state": "text",
        "error_code": "text",
        "error_message": "text",
        "delivered_at": "datetime",
    }
    with transaction.atomic():
        rows = []
        if by_id:
            rows += [
                (int(r.message_id), r.status, r.error_code[:64], r.error_message[:500], r.at or now)
                for r in by_id
                if r.status in ("delivered", "failed", "bounced")
            ]
        if by_ref:
            refs = {(r.provider_ref, r.to_address) for r in by_ref}
            found = dict(
                ((ref, addr), pk)
                for pk, ref, addr in OutboundMessage.objects.filter(
                    account_id=account_id, provider_ref__in=[ref for ref, _ in refs]
                ).values_list("id", "provider_ref", "to_address")
            )
            for r in by_ref:
                pk = found.get((r.provider_ref, r.to_address))
                if pk is None and not r.to_address:
                    pk = next((v for (ref, _a), v in found.items() if ref == r.provider_ref), None)
                if pk is not None and r.status in ("delivered", "failed", "bounced"):
                    rows.append((pk, r.status, r.error_code[:64], r.error_message[:500], r.at or now))
        if rows:
            changed = update_from_values(
                "messaging_outboundmessage",
                columns,
                rows,
                assignments={
                    "state": "v.state",
                    "error_code": "v.error_code",
                    "error_message": "v.error_message",
                    "delivered_at": "CASE WHEN v.state = 'delivered' THEN v.delivered_at ELSE {t}.delivered_at END",
                    "updated_at": "v.delivered_at",
                },
                where=f"{{t}}.account_id = {int(account_id)} AND {{t}}.state IN ('sent', 'unknown', 'sending')",
            )
    return changed


# ---- domain events for webhooks ---------------------------------------------------------------


def emit_domain_events(
    workspace_id: int, event_type: str, items: Sequence[dict[str, Any]], *, keys: Sequence[str]
) -> int:
    """Queue ``event_type`` for every active webhook account subscribed to it.

    ``keys`` (one per item) make each event idempotent per account, e.g. ``order.paid:<order id>``.
    Cheap when nobody subscribes: one indexed lookup.
    """
    if event_type not in DOMAIN_EVENTS:
        raise ValueError(f"unknown domain event {event_type}")
    if not items:
        return 0
    accounts = [
        a
        for a in ChannelAccount.objects.filter(
            workspace_id=workspace_id, provider="webhook", status=ChannelAccount.Status.ACTIVE
        )
        if event_type in (a.settings.get("events") or [])
    ]
    if not accounts:
        return 0
    now = clock.now()
    rows = []
    for account in accounts:
        for item, key in zip(items, keys, strict=True):
            payload = {"event": {"type": event_type, "occurred_at": now.isoformat(), "data": item}}
            rows.append(
                _row(
                    account,
                    customer_id=item.get("customer_id"),
                    purpose=Purpose.SYSTEM,
                    key=f"evt:{account.pk}:{key}"[:200],
                    payload=payload,
                    quiet_policy=QuietPolicy.HOLD,
                    not_before=None,
                    now=now,
                    body=json.dumps(payload["event"], ensure_ascii=False),
                )
            )
    insert_rows("messaging_outboundmessage", OUTBOUND_COLUMNS, rows, ignore_conflicts=True)
    return len(rows)


def outbox_counts(workspace_id: int) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, COUNT(*) FROM messaging_outboundmessage WHERE workspace_id = %s GROUP BY state",
            [workspace_id],
        )
        return dict(cursor.fetchall())


# ---- tracked links ------------------------------------------------------------------------------


def record_click(message_id: int, index: int, *, user_agent: str = "") -> str | None:
    """The target of the message's ``index``-th link, after recording the click; None if unknown.

    The click lands on the customer's timeline as ``link_clicked`` (with the message, broadcast
    and URL) and the message's first click is kept in ``clicked_at`` for reports.
    """
    from siyu.tracking.services import record_system_events

    row = (
        OutboundMessage.objects.filter(pk=message_id)
        .values("workspace_id", "customer_id", "broadcast_id", "payload", "clicked_at")
        .first()
    )
    if row is None:
        return None
    links = (row["payload"] or {}).get("links") or []
    if not (0 <= index < len(links)):
        return None
    url = links[index]
    now = clock.now()
    with transaction.atomic():
        if row["clicked_at"] is None:
            OutboundMessage.objects.filter(pk=message_id, clicked_at__isnull=True).update(clicked_at=now)
        if row["customer_id"]:
            record_system_events(
                row["workspace_id"],
                [
                    (
                        row["customer_id"],
                        "link_clicked",
                        {
                            "message_id": message_id,
                            "broadcast_id": row["broadcast_id"],
                            "url": url,
                            "user_agent": user_agent,
                        },
                        now,
                    )
                ],
                source="link",
            )
    return url
