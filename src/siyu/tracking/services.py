"""Ingesting events and orders: validated item by item, stored set-based.

Each item names its customer by ``customer_id`` (a merged id resolves to the
survivor) or by one identity (an unknown identity creates a customer). Events
with a client ``event_id`` and orders (by ``order_no``) are idempotent: a retried
batch never stores a row twice.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import transaction

from siyu.core import clock
from siyu.core.batch import BatchResult, validate_items
from siyu.core.errors import InvalidInput
from siyu.core.sql import ColumnType, RawJson, insert_rows, update_from_values
from siyu.customers.services import (
    Entry,
    live_customer_ids,
    lookup_identities,
    mark_changed,
    normalize_keys,
    place_entries,
)
from siyu.messaging.services import emit_domain_events
from siyu.org.models import OrgUnit, Workspace
from siyu.tracking.counters import add_event_counts, rebuild_order_days
from siyu.tracking.models import Event, Order
from siyu.tracking.schemas import CustomerRef, EventItem, OrderItem

MAX_PROPERTIES_BYTES = 32 * 1024
EVENT_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "name": "text",
    "properties": "json",
    "occurred_at": "datetime",
    "received_at": "datetime",
    "source": "text",
    "event_id": "text",
}
# Clocks drift; a time further ahead than this is a client bug, not an event.
MAX_FUTURE = dt.timedelta(days=1)


def ingest_events(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw ``EventItem`` dicts and store the good ones; retried event_ids are not duplicated."""
    result = BatchResult(ids=[None] * len(items))
    now = clock.now()
    parsed: list[tuple[int, EventItem, dt.datetime]] = []
    for index, item in validate_items(EventItem, items, result):
        assert isinstance(item, EventItem)
        try:
            occurred_at = read_time(item.timestamp, workspace, now, "timestamp")
            properties = RawJson(json.dumps(item.properties, ensure_ascii=False, default=str))
            if len(properties) > MAX_PROPERTIES_BYTES:
                raise InvalidInput(f"properties are larger than {MAX_PROPERTIES_BYTES // 1024} KB", field="properties")
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
            continue
        item.properties = properties
        parsed.append((index, item, occurred_at))

    customers = resolve_customers(workspace, [(i, item) for i, item, _ in parsed], result, source=source)
    parsed = [(i, item, at) for i, item, at in parsed if i in customers]

    # Client event ids already stored (or repeated within this batch) are duplicates, not new rows.
    wanted_ids = [item.event_id for _, item, _ in parsed if item.event_id]
    seen: set[str] = set()
    for start in range(0, len(wanted_ids), 500):
        seen.update(
            Event.objects.filter(workspace=workspace, event_id__in=wanted_ids[start : start + 500]).values_list(
                "event_id", flat=True
            )
        )
    rows = []
    latest: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for index, item, occurred_at in parsed:
        if item.event_id:
            if item.event_id in seen:
                result.duplicates += 1
                result.accepted += 1
                continue
            seen.add(item.event_id)
        customer_id = customers[index]
        rows.append((workspace.pk, customer_id, item.name, item.properties, occurred_at, now, source, item.event_id))
        lo, hi = latest.get(customer_id, (occurred_at, occurred_at))
        latest[customer_id] = (min(lo, occurred_at), max(hi, occurred_at))
        result.accepted += 1
    with transaction.atomic():
        # Rows without a client id cannot collide (COPY on PostgreSQL); with one, ON CONFLICT
        # DO NOTHING lets a concurrent retry of the same event_id lose the race quietly.
        insert_rows("tracking_event", EVENT_COLUMNS, [r for r in rows if r[-1] is None])
        insert_rows("tracking_event", EVENT_COLUMNS, [r for r in rows if r[-1] is not None], ignore_conflicts=True)
        # (A concurrent retry that loses the event_id race above would still be counted here;
        # the pre-check against stored ids makes that a narrow window, not the retry path.)
        add_event_counts(workspace.pk, workspace.time_zone, ((r[1], r[2], r[4]) for r in rows))
        touch_seen(latest)
        mark_changed(workspace.pk, latest)
    result.errors.sort(key=lambda e: e.index)
    return result


def ingest_orders(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw ``OrderItem`` dicts and upsert the good ones by order_no (idempotent).

    An order number seen before updates that order (status, amounts, refund) and is
    counted in ``duplicates``; it never creates a second order.
    """
    result = BatchResult(ids=[None] * len(items))
    now = clock.now()
    stores = {u.code: u.pk for u in OrgUnit.objects.filter(workspace=workspace).exclude(code="").only("code")}
    parsed: list[tuple[int, OrderItem, dict[str, Any]]] = []
    for index, item in validate_items(OrderItem, items, result):
        assert isinstance(item, OrderItem)
        try:
            parsed.append((index, item, order_fields(item, workspace, now, stores)))
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
    customers = resolve_customers(workspace, [(i, item) for i, item, _ in parsed], result, source=source)
    # The last item for an order number wins; earlier ones in the same batch are duplicates.
    final: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, item, fields in parsed:
        if index not in customers:
            continue
        if item.order_no in final:
            result.duplicates += 1
        final[item.order_no] = (index, {**fields, "customer_id": customers[index]})
        result.accepted += 1

    with transaction.atomic():
        existing = {}
        numbers = sorted(final)
        for start in range(0, len(numbers), 500):
            for order in Order.objects.select_for_update().filter(
                workspace=workspace, order_no__in=numbers[start : start + 500]
            ):
                existing[order.order_no] = order
        new_rows, changed, became_paid = [], [], []
        for order_no, (_, fields) in final.items():
            order = existing.get(order_no)
            if order is None:
                new_rows.append(Order(workspace=workspace, order_no=order_no, created_at=now, updated_at=now, **fields))
                continue
            result.duplicates += 1
            if order.status != Order.Status.PAID and fields["status"] == Order.Status.PAID:
                became_paid.append(order)
            for name, value in fields.items():
                setattr(order, name, value)
            order.updated_at = now
            changed.append(order)
        Order.objects.bulk_create(new_rows, batch_size=1000)
        if changed:
            Order.objects.bulk_update(changed, [*ORDER_FIELDS, "customer_id", "updated_at"], batch_size=500)
        seen: dict[int, tuple[dt.datetime, dt.datetime]] = {}
        for _, fields in final.values():
            cid, at = fields["customer_id"], fields["paid_at"]
            lo, hi = seen.get(cid, (at, at))
            seen[cid] = (min(lo, at), max(hi, at))
        # An updated order may have moved to another customer: rebuild both.
        touched = set(seen) | {order.customer_id for order in existing.values()}
        rebuild_order_days(workspace.pk, workspace.time_zone, sorted(touched))
        touch_seen(seen)
        mark_changed(workspace.pk, touched)
        paid = [o for o in new_rows if o.status == Order.Status.PAID] + became_paid
        emit_domain_events(
            workspace.pk, "order.paid", [paid_event(o) for o in paid], keys=[f"order.paid:{o.order_no}" for o in paid]
        )
    result.errors.sort(key=lambda e: e.index)
    return result


def paid_event(order: Order) -> dict[str, Any]:
    """What a webhook subscriber to ``order.paid`` receives about the order."""
    return {
        "order_id": order.pk,
        "order_no": order.order_no,
        "customer_id": order.customer_id,
        "total_fen": order.total_fen,
        "paid_fen": order.paid_fen,
        "currency": order.currency,
        "paid_at": order.paid_at.astimezone(dt.UTC).isoformat(),
        "store_id": order.store_id,
        "channel": order.channel,
    }


ORDER_FIELDS = (
    "status",
    "total_fen",
    "discount_fen",
    "paid_fen",
    "refund_fen",
    "currency",
    "items",
    "store_id",
    "channel",
    "paid_at",
    "refunded_at",
)


def order_fields(item: OrderItem, workspace: Workspace, now: dt.datetime, stores: dict[str, int]) -> dict[str, Any]:
    paid_fen = item.paid_fen if item.paid_fen is not None else item.total_fen - item.discount_fen
    if item.discount_fen > item.total_fen:
        raise InvalidInput("discount_fen is larger than total_fen", field="discount_fen")
    if paid_fen < 0:
        raise InvalidInput("paid_fen cannot be negative", field="paid_fen")
    if item.refund_fen > paid_fen:
        raise InvalidInput("refund_fen is larger than paid_fen", field="refund_fen")
    if item.status == "refunded" and not item.refund_fen:
        refund_fen = paid_fen  # a refunded order without an amount was refunded in full
    else:
        refund_fen = item.refund_fen
    paid_at = read_time(item.paid_at, workspace, now, "paid_at")
    refunded_at = read_time(item.refunded_at, workspace, now, "refunded_at") if item.refunded_at else None
    if item.status == "refunded" and refunded_at is None:
        refunded_at = paid_at
    store_id = None
    if item.store_code:
        if item.store_code not in stores:
            raise InvalidInput(f"no store with code '{item.store_code}'", field="store_code")
        store_id = stores[item.store_code]
    return {
        "status": item.status,
        "total_fen": item.total_fen,
        "discount_fen": item.discount_fen,
        "paid_fen": paid_fen,
        "refund_fen": refund_fen,
        "currency": item.currency.upper(),
        "items": [line.model_dump() for line in item.items],
        "store_id": store_id,
        "channel": item.channel,
        "paid_at": paid_at,
        "refunded_at": refunded_at,
    }


def read_time(raw: str, workspace: Workspace, now: dt.datetime, field: str) -> dt.datetime:
    try:
        value = clock.parse_timestamp(raw, workspace.time_zone)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    if value - now > MAX_FUTURE:
        raise InvalidInput(f"{field} {raw} is more than a day in the future", field=field)
    return value


def resolve_customers(
    workspace: Workspace, refs: list[tuple[int, CustomerRef]], result: BatchResult, *, source: str
) -> dict[int, int]:
    """Item index -> live customer id; unknown customer ids are rejected, unknown identities create customers."""
    out: dict[int, int] = {}
    by_id = [(i, ref) for i, ref in refs if ref.customer_id is not None]
    live = live_customer_ids(workspace.pk, sorted({ref.customer_id for _, ref in by_id}))
    for index, ref in by_id:
        if ref.customer_id in live:
            out[index] = live[ref.customer_id]
        else:
            result.reject(index, "customer_id", f"no customer with id {ref.customer_id} in this workspace")
    entries: dict[Any, list[int]] = {}
    for index, ref in refs:
        if ref.identity is None:
            continue
        try:
            [key] = normalize_keys([ref.identity], field_prefix="identity")
        except InvalidInput as exc:
            result.reject(index, (exc.field or "identity").replace("identity.0.", "identity."), exc.message)
            continue
        entries.setdefault(key, []).append(index)
    known = lookup_identities(workspace.pk, list(entries)) if entries else {}
    for key, customer_id in known.items():
        for index in entries.pop(key):
            out[index] = customer_id
    if entries:
        # Identities nobody holds yet: new customers (through OneID, which handles races).
        keys = list(entries)
        placements = place_entries(
            workspace, [Entry(index=n, keys=[key]) for n, key in enumerate(keys)], source=source, mark_seen=False
        )
        for key, placement in zip(keys, placements, strict=True):
            for index in entries[key]:
                out[index] = placement.customer_id
    return out


def touch_seen(seen: dict[int, tuple[dt.datetime, dt.datetime]]) -> None:
    """Widen customers' first/last seen to cover new activity, set-based."""
    update_from_values(
        "customers_customer",
        {"id": "int", "lo": "datetime", "hi": "datetime"},
        [(cid, lo, hi) for cid, (lo, hi) in sorted(seen.items())],
        assignments={
            "last_seen_at": "CASE WHEN {t}.last_seen_at IS NULL OR {t}.last_seen_at < v.hi "
            "THEN v.hi ELSE {t}.last_seen_at END",
            "first_seen_at": "CASE WHEN {t}.first_seen_at IS NULL OR {t}.first_seen_at > v.lo "
            "THEN v.lo ELSE {t}.first_seen_at END",
        },
        where="{t}.last_seen_at IS NULL OR {t}.last_seen_at < v.hi OR {t}.first_seen_at IS NULL "
        "OR {t}.first_seen_at > v.lo",
    )


def record_system_events(
    workspace_id: int,
    rows: list[tuple[int, str, dict[str, Any], dt.datetime]],
    *,
    source: str,
    event_ids: list[str | None] | None = None,
) -> int:
    """Timeline events siyu itself observes (opt-outs, link clicks, deliveries): stored, counted
    into the day counters and marked for segment refresh, like ingested events.

    ``rows`` are ``(customer_id, name, properties, occurred_at)``. With ``event_ids`` a
    repeated event (e.g. a provider retrying a callback) is stored once. Returns how many
    were stored.
    """
    if not rows:
        return 0
    time_zone = Workspace.objects.filter(pk=workspace_id).values_list("time_zone", flat=True).first() or "UTC"
    now = clock.now()
    ids = event_ids or [None] * len(rows)
    with transaction.atomic():
        stored = rows
        if event_ids:
            present = set(
                Event.objects.filter(workspace_id=workspace_id, event_id__in=[i for i in ids if i]).values_list(
                    "event_id", flat=True
                )
            )
            keep = [n for n, i in enumerate(ids) if not i or i not in present]
            stored = [rows[n] for n in keep]
            ids = [ids[n] for n in keep]
        insert_rows(
            "tracking_event",
            EVENT_COLUMNS,
            [
                (workspace_id, cid, name, props, at, now, source, event_id)
                for (cid, name, props, at), event_id in zip(stored, ids, strict=True)
            ],
        )
        add_event_counts(workspace_id, time_zone, [(cid, name, at) for cid, name, _p, at in stored])
        mark_changed(workspace_id, {cid for cid, *_ in stored})
    return len(stored)
