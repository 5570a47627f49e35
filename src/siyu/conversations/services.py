"""Archived conversations: ingesting messages, and the risk rules that watch staff messages.

``ingest_messages`` follows ``tracking.services.ingest_events``: items are validated one
by one (a bad item rejects only itself), stored set-based, and ``external_msgid`` makes a
replayed archive harmless. In the same transaction, new inbound text messages go through
the keyword rules (``siyu.tags.keyword_rules``) and new outbound ones through the risk
rules, so a message is never stored without being judged, nor judged twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max
from pydantic import ValidationError

from siyu.conversations.models import Message, RiskAlert, RiskRule
from siyu.conversations.schemas import MessageItem, RiskRuleIn
from siyu.core import clock
from siyu.core.batch import BatchResult, validate_items, validation_errors
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.core.sql import ColumnType, RawJson, insert_rows, text_list_condition
from siyu.customers.services import mark_changed
from siyu.org.models import Staff, Workspace
from siyu.org.services import audit
from siyu.tags.keyword_rules import MessageRef, tag_from_messages
from siyu.tags.keywords import Matcher, MatcherCache, RuleWords
from siyu.tracking.services import read_time, resolve_customers, touch_seen

MESSAGE_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "staff_id": "int",
    "direction": "text",
    "msg_type": "text",
    "text": "text",
    "sent_at": "datetime",
    "external_msgid": "text",
}
ALERT_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "rule_id": "int",
    "message_id": "int",
    "staff_id": "int",
    "customer_id": "int",
    "matched_words": "json",
    "status": "text",
    "created_at": "datetime",
}
_risk_cache = MatcherCache()


@dataclass(frozen=True)
class StaffMessage:
    """An outbound text message as the risk rules see it."""

    message_id: int
    customer_id: int
    staff_id: int | None
    text: str


@dataclass(frozen=True)
class _Parsed:
    index: int
    item: MessageItem
    sent_at: dt.datetime
    staff_id: int | None


def ingest_messages(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw ``MessageItem`` dicts, store the good ones and run the rules on the new ones.

    Steps: validate each item (time, staff); resolve customers (an unknown identity creates
    one); drop external_msgids already stored or repeated in the batch (``duplicates``);
    insert; then, in the same transaction, keyword rules on new inbound text, risk rules on
    new outbound text, and first/last seen for customers who wrote.
    """
    result = BatchResult(ids=[None] * len(items))
    now = clock.now()
    valid = [(i, item) for i, item in validate_items(MessageItem, items, result) if isinstance(item, MessageItem)]
    staff = _staff_lookup(workspace, [item for _, item in valid])
    parsed: list[_Parsed] = []
    for index, item in valid:
        try:
            sent_at = read_time(item.sent_at, workspace, now, "sent_at")
            staff_id = _staff_of(item, staff)
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
            continue
        parsed.append(_Parsed(index, item, sent_at, staff_id))

    customers = resolve_customers(workspace, [(p.index, p.item) for p in parsed], result, source=source)
    parsed = [p for p in parsed if p.index in customers]
    stored = _stored_msgids(workspace.pk, [p.item.external_msgid for p in parsed if p.item.external_msgid])
    fresh: list[_Parsed] = []
    seen: set[str] = set()
    for p in parsed:
        msgid = p.item.external_msgid
        result.accepted += 1
        if msgid and (msgid in stored or msgid in seen):
            result.duplicates += 1
            result.ids[p.index] = stored.get(msgid)
            continue
        if msgid:
            seen.add(msgid)
        fresh.append(p)

    ws = workspace.pk
    with transaction.atomic():
        rows = [
            (ws, customers[p.index], p.staff_id, p.item.direction, p.item.msg_type, p.item.text, p.sent_at, None)
            for p in fresh
            if not p.item.external_msgid
        ]
        new_ids = insert_rows("conversations_message", MESSAGE_COLUMNS, rows, returning_id=True)
        keyed = [p for p in fresh if p.item.external_msgid]
        insert_rows(
            "conversations_message",
            MESSAGE_COLUMNS,
            [
                (ws, customers[p.index], p.staff_id, p.item.direction, p.item.msg_type, p.item.text, p.sent_at, msgid)
                for p in keyed
                if (msgid := p.item.external_msgid)
            ],
            ignore_conflicts=True,
        )
        # ON CONFLICT DO NOTHING returns no ids: read them back by msgid. A concurrent writer
        # that won the race on a msgid makes us judge its row too, which the unique
        # (rule, message) constraints on matches and alerts make harmless.
        by_msgid = _stored_msgids(ws, [p.item.external_msgid for p in keyed if p.item.external_msgid])
        ids = iter(new_ids)
        for p in fresh:
            result.ids[p.index] = by_msgid.get(p.item.external_msgid) if p.item.external_msgid else next(ids)

        inbound, outbound = [], []
        seen_at: dict[int, tuple[dt.datetime, dt.datetime]] = {}
        for p in fresh:
            message_id, customer_id = result.ids[p.index], customers[p.index]
            if message_id is None:
                continue
            if p.item.direction == "in":
                lo, hi = seen_at.get(customer_id, (p.sent_at, p.sent_at))
                seen_at[customer_id] = (min(lo, p.sent_at), max(hi, p.sent_at))
            if p.item.msg_type != "text" or not p.item.text:
                continue
            if p.item.direction == "in":
                inbound.append(MessageRef(message_id, customer_id, p.item.text, p.sent_at))
            else:
                outbound.append(StaffMessage(message_id, customer_id, p.staff_id, p.item.text))
        tag_from_messages(workspace, inbound)
        raise_risk_alerts(workspace, outbound, now=now)
        touch_seen(seen_at)
        mark_changed(ws, seen_at)
    result.errors.sort(key=lambda e: e.index)
    return result


def _staff_lookup(workspace: Workspace, items: list[MessageItem]) -> dict[tuple[str, Any], int]:
    """("id", staff_id) / ("wecom", userid) -> staff id, for the staff this batch names."""
    ids = sorted({i.staff_id for i in items if i.staff_id is not None})
    userids = sorted({i.staff_wecom_userid for i in items if i.staff_wecom_userid})
    out: dict[tuple[str, Any], int] = {}
    for start in range(0, len(ids), 500):
        for pk in Staff.objects.filter(workspace=workspace, pk__in=ids[start : start + 500]).values_list(
            "pk", flat=True
        ):
            out[("id", pk)] = pk
    for start in range(0, len(userids), 500):
        for userid, pk in Staff.objects.filter(
            workspace=workspace, wecom_userid__in=userids[start : start + 500]
        ).values_list("wecom_userid", "pk"):
            out[("wecom", userid)] = pk
    return out


def _staff_of(item: MessageItem, staff: dict[tuple[str, Any], int]) -> int | None:
    if item.staff_id is not None:
        if ("id", item.staff_id) not in staff:
            raise InvalidInput(f"no staff member with id {item.staff_id} in this workspace", field="staff_id")
        return staff[("id", item.staff_id)]
    if item.staff_wecom_userid is not None:
        if ("wecom", item.staff_wecom_userid) not in staff:
            raise InvalidInput(
                f"no staff member with WeCom userid '{item.staff_wecom_userid}'", field="staff_wecom_userid"
            )
        return staff[("wecom", item.staff_wecom_userid)]
    if item.direction == "out":
        raise InvalidInput("a staff message names its sender: staff_id or staff_wecom_userid", field="staff_id")
    return None


def _stored_msgids(workspace_id: int, msgids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    wanted = sorted(set(msgids))
    for start in range(0, len(wanted), 1000):
        condition, params = text_list_condition("external_msgid", wanted[start : start + 1000])
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_msgid, id FROM conversations_message WHERE workspace_id = %s AND {condition}",
                [workspace_id, *params],
            )
            out.update(cursor.fetchall())
    return out


def inbound_text_after(workspace_id: int, after_id: int, limit: int) -> list[MessageRef]:
    """Stored customer text messages with id > ``after_id``, in id order (history runs page on this)."""
    rows = (
        Message.objects.filter(
            workspace_id=workspace_id,
            pk__gt=after_id,
            direction=Message.Direction.FROM_CUSTOMER,
            msg_type=Message.Type.TEXT,
        )
        .order_by("pk")
        .values_list("pk", "customer_id", "text", "sent_at")[:limit]
    )
    return [MessageRef(*row) for row in rows]


# ---- risk rules --------------------------------------------------------------------------


def risk_matcher(workspace_id: int) -> Matcher:
    revision = tuple(
        RiskRule.objects.filter(workspace_id=workspace_id)
        .aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
        .values()
    )

    def build() -> Matcher:
        rules = RiskRule.objects.filter(workspace_id=workspace_id, active=True).values_list("pk", "words")
        return Matcher(RuleWords(pk, tuple(words)) for pk, words in rules)

    return _risk_cache.get(("risk", workspace_id), revision, build)  # type: ignore[return-value]


def forget_compiled_risk_rules() -> None:
    _risk_cache.clear()


def raise_risk_alerts(workspace: Workspace, messages: Sequence[StaffMessage], *, now: dt.datetime) -> int:
    """One open alert per (rule, message) whose words occur in a staff message; replays add none."""
    if not messages:
        return 0
    matcher = risk_matcher(workspace.pk)
    if not matcher.size:
        return 0
    rows = []
    for m in messages:
        for rule_id, words in matcher.match_words(m.text).items():
            rows.append(
                (
                    workspace.pk,
                    rule_id,
                    m.message_id,
                    m.staff_id,
                    m.customer_id,
                    RawJson(json.dumps(words)),
                    "open",
                    now,
                )
            )
    insert_rows("conversations_riskalert", ALERT_COLUMNS, rows, ignore_conflicts=True)
    return len(rows)


def parse_risk_rule(raw: Any) -> RiskRuleIn:
    try:
        return RiskRuleIn.model_validate(raw)
    except ValidationError as exc:
        loc, msg = validation_errors(exc)[0]
        raise InvalidInput(msg, field=loc) from None


def get_risk_rule(workspace: Workspace, rule_id: int) -> RiskRule:
    rule = RiskRule.objects.filter(workspace=workspace, pk=rule_id).first() if valid_id(rule_id) else None
    if rule is None:
        raise NotFound("risk rule not found", field="rule_id")
    return rule


def create_risk_rule(workspace: Workspace, raw: Any, *, user=None) -> RiskRule:
    data = parse_risk_rule(raw)
    now = clock.now()
    with transaction.atomic():
        rule = RiskRule.objects.create(workspace=workspace, **data.model_dump(), created_at=now, updated_at=now)
        audit(workspace=workspace, action="risk_rule.create", target=f"risk_rule:{rule.pk}", user=user)
    return rule


def update_risk_rule(workspace: Workspace, rule_id: int, raw: Any, *, user=None) -> RiskRule:
    data = parse_risk_rule(raw)
    with transaction.atomic():
        rule = get_risk_rule(workspace, rule_id)
        for name, value in data.model_dump().items():
            setattr(rule, name, value)
        # updated_at is the matcher cache's revision: every edit must move it.
        rule.updated_at = max(clock.now(), rule.updated_at + dt.timedelta(microseconds=1))
        rule.save()
        audit(workspace=workspace, action="risk_rule.update", target=f"risk_rule:{rule.pk}", user=user)
    return rule


def delete_risk_rule(workspace: Workspace, rule_id: int, *, user=None) -> None:
    """Delete a rule together with its alerts."""
    with transaction.atomic():
        rule = get_risk_rule(workspace, rule_id)
        rule.delete()
        audit(workspace=workspace, action="risk_rule.delete", target=f"risk_rule:{rule_id}", user=user)


def handle_alert(workspace: Workspace, alert: RiskAlert, *, user=None) -> bool:
    """Mark an open alert handled; False if someone else already did (guarded in SQL)."""
    with transaction.atomic():
        done = RiskAlert.objects.filter(workspace=workspace, pk=alert.pk, status=RiskAlert.Status.OPEN).update(
            status=RiskAlert.Status.HANDLED, handled_by=user, handled_at=clock.now()
        )
        if done:
            audit(workspace=workspace, action="risk_alert.handle", target=f"risk_alert:{alert.pk}", user=user)
    return bool(done)
