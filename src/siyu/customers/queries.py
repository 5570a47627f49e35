"""Scoped reads of customers, shared by the console and the API.

Every read starts from ``scoped_customers(scope)``, so a store clerk, a store manager
and HQ see exactly their slice everywhere; a customer outside the slice is a NotFound,
indistinguishable from one that does not exist. Lists page by keyset (id descending):
no OFFSET and no COUNT on the hot path, so the first and the 10,000th page cost the same.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q, QuerySet, Sum

from siyu.conversations.models import Message
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.models import Customer, CustomerMerge, Identity, StaffRelation
from siyu.customers.rules import APP_SCOPED_TYPES, IDENTITY_TYPES, normalize_phone
from siyu.customers.services import live_customer_id
from siyu.org.models import OrgUnit
from siyu.org.rules import Scope, mask_identity
from siyu.tags.models import CustomerTag
from siyu.tracking.models import Event, Order

MAX_PAGE = 200
SEARCHABLE_TYPES = sorted(set(IDENTITY_TYPES) - APP_SCOPED_TYPES)
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-()]{7,20}$")
_ID_LIKE = re.compile(r"^[\w.@+\-]{4,200}$", re.ASCII)


@dataclass
class Page:
    items: list[Customer]
    next_after: int | None


def scoped_customers(scope: Scope) -> QuerySet[Customer]:
    """Live customers of the workspace that this scope may see."""
    qs = Customer.objects.filter(workspace_id=scope.workspace_id, merged_into__isnull=True)
    if scope.kind == "units":
        units = OrgUnit.objects.filter(workspace_id=scope.workspace_id, path__startswith=scope.unit_path)
        qs = qs.filter(store_id__in=units.values("id"))
    elif scope.kind == "staff":
        qs = qs.filter(Q(owner_staff_id=scope.staff_id) | Q(id__in=friends_of(scope.staff_id)))
    return qs


def scope_sql(scope: Scope) -> tuple[str, list[Any]]:
    """``scoped_customers`` as an SQL condition over ``c`` (prefixed with AND), for raw set-based
    reads such as segment members. Keep the two in step: they are the same rule."""
    if scope.kind == "units":
        return (
            " AND c.store_id IN (SELECT u.id FROM org_orgunit u WHERE u.workspace_id = %s AND u.path LIKE %s)",
            [scope.workspace_id, scope.unit_path.replace("%", "") + "%"],
        )
    if scope.kind == "staff":
        return (
            " AND (c.owner_staff_id = %s OR c.id IN (SELECT sr.customer_id FROM customers_staffrelation sr "
            "WHERE sr.staff_id = %s AND sr.status = 'active'))",
            [scope.staff_id or -1, scope.staff_id or -1],
        )
    return "", []


def friends_of(staff_id: int | None) -> QuerySet:
    return StaffRelation.objects.filter(staff_id=staff_id, status=StaffRelation.Status.ACTIVE).values("customer_id")


def identity_matches(workspace_id: int, q: str) -> QuerySet | None:
    """Customer ids whose identity equals the search text, or None if it cannot be an identity."""
    text = q.strip()
    if _PHONE_LIKE.match(text):
        try:
            value = normalize_phone(text)
        except InvalidInput:
            value = text
        return Identity.objects.filter(workspace_id=workspace_id, type="phone", app_id="", value=value).values(
            "customer_id"
        )
    if _ID_LIKE.match(text):
        # Every type without an app id, as index seeks on (workspace, type, app_id, value).
        return Identity.objects.filter(
            workspace_id=workspace_id, type__in=SEARCHABLE_TYPES, app_id="", value__in={text, text.lower()}
        ).values("customer_id")
    return None


def list_customers(
    scope: Scope,
    *,
    q: str | None = None,
    tag_id: int | None = None,
    store_id: int | None = None,
    staff_id: int | None = None,
    channel: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    qs = scoped_customers(scope).select_related("store", "owner_staff")
    if q and q.replace("\x00", "").strip():
        text = q.replace("\x00", "").strip()
        by_identity = identity_matches(scope.workspace_id, text)
        matched = list(by_identity.values_list("customer_id", flat=True)[:MAX_PAGE]) if by_identity is not None else []
        if matched or _PHONE_LIKE.match(text):
            # An exact identity (phone, member no., external user id ...) names the customer.
            qs = qs.filter(id__in=matched)
        else:
            # Name prefix as an index range (LIKE cannot use the index on SQLite), then the exact test.
            qs = qs.filter(name__gte=text, name__lt=text + "\U0010ffff", name__startswith=text)
    if tag_id is not None:
        qs = qs.filter(id__in=CustomerTag.objects.filter(tag_id=tag_id).values("customer_id"))
    if store_id is not None:
        qs = qs.filter(store_id=store_id)
    if staff_id is not None:
        qs = qs.filter(Q(owner_staff_id=staff_id) | Q(id__in=friends_of(staff_id)))
    if channel and "\x00" not in channel:
        qs = qs.filter(source_channel=channel)
    elif channel:
        qs = qs.none()  # no channel name holds a NUL
    if after is not None:
        qs = qs.filter(id__lt=after)
    rows = list(qs.order_by("-id")[: limit + 1])
    next_after = rows[limit - 1].pk if len(rows) > limit else None
    return Page(items=rows[:limit], next_after=next_after)


def get_customer(scope: Scope, customer_id: int) -> Customer:
    """The live customer this id resolves to (a merged id follows to its survivor), if in scope."""
    live = live_customer_id(scope.workspace_id, customer_id)
    customer = (
        scoped_customers(scope).select_related("store", "owner_staff").filter(pk=live).first()
        if live is not None
        else None
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
    return customer


def customer_summary(scope: Scope, customer: Customer) -> dict[str, Any]:
    """The fields a list row shows."""
    return {
        "id": customer.pk,
        "name": customer.name,
        "gender": customer.gender,
        "city": customer.city,
        "source_channel": customer.source_channel,
        "store": {"id": customer.store_id, "name": customer.store.name} if customer.store_id else None,
        "owner_staff": (
            {"id": customer.owner_staff_id, "name": customer.owner_staff.name} if customer.owner_staff_id else None
        ),
        "first_seen_at": customer.first_seen_at,
        "last_seen_at": customer.last_seen_at,
    }


def customer_profile(scope: Scope, customer: Customer) -> dict[str, Any]:
    """Everything the profile page and ``GET /customers/{id}`` show, masked for the scope."""
    identities = [
        {
            "type": identity.type,
            "app_id": identity.app_id,
            "value": identity.value if scope.can_view_pii else mask_identity(identity.type, identity.value),
            "source": identity.source,
            "created_at": identity.created_at,
        }
        for identity in Identity.objects.filter(customer=customer).order_by("type", "id")
    ]
    tags = [
        {
            "id": ct.tag_id,
            "name": ct.tag.name,
            "group": ct.tag.group.name,
            "source": ct.source,
            "source_ref": ct.source_ref,
            "added_at": ct.created_at,
        }
        for ct in CustomerTag.objects.filter(customer=customer)
        .select_related("tag__group")
        .order_by("tag__group__sort", "tag__group__name", "tag__sort", "tag__name")
    ]
    relations = [
        {
            "staff": {"id": rel.staff_id, "name": rel.staff.name, "wecom_userid": rel.staff.wecom_userid},
            "store": rel.staff.org_unit.name,
            "added_at": rel.added_at,
            "add_way": rel.add_way,
            "state": rel.state,
            "remark": rel.remark,
            "status": rel.status,
        }
        for rel in StaffRelation.objects.filter(customer=customer)
        .select_related("staff__org_unit")
        .order_by("-added_at")
    ]
    orders = Order.objects.filter(customer=customer).aggregate(
        count=Count("id"),
        paid_fen=Sum("paid_fen"),
        refund_fen=Sum("refund_fen"),
        last_paid_at=Max("paid_at"),
    )
    return {
        **customer_summary(scope, customer),
        "birthday": customer.birthday,
        "province": customer.province,
        "attributes": customer.attributes,
        "source_detail": customer.source_detail,
        "created_at": customer.created_at,
        "identities": identities,
        "tags": tags,
        "relations": relations,
        "orders": {
            "count": orders["count"],
            "paid_fen": orders["paid_fen"] or 0,
            "refund_fen": orders["refund_fen"] or 0,
            "net_fen": (orders["paid_fen"] or 0) - (orders["refund_fen"] or 0),
            "last_paid_at": orders["last_paid_at"],
        },
        "merged_ids": list(
            CustomerMerge.objects.filter(survivor=customer).order_by("merged_id").values_list("merged_id", flat=True)
        ),
    }


def recent_orders(customer: Customer, limit: int = 20) -> list[Order]:
    return list(Order.objects.filter(customer=customer).select_related("store").order_by("-paid_at")[:limit])


def timeline(scope: Scope, customer: Customer, *, before: dt.datetime | None = None, limit: int = 50) -> list[dict]:
    """Events, orders and messages, newest first; page with ``before`` = the last entry's time."""
    limit = max(1, min(limit, MAX_PAGE))
    events = Event.objects.filter(customer=customer)
    orders = Order.objects.filter(customer=customer)
    messages = Message.objects.filter(customer=customer).select_related("staff")
    if before is not None:
        events = events.filter(occurred_at__lt=before)
        orders = orders.filter(paid_at__lt=before)
        messages = messages.filter(sent_at__lt=before)
    entries: list[dict[str, Any]] = []
    for event in events.order_by("-occurred_at")[:limit]:
        entries.append(
            {
                "kind": "event",
                "at": event.occurred_at,
                "title": event.name,
                "detail": {**event.properties, "source": event.source},
            }
        )
    for order in orders.order_by("-paid_at")[:limit]:
        entries.append(
            {
                "kind": "order",
                "at": order.paid_at,
                "title": order.order_no,
                "detail": {
                    "status": order.status,
                    "paid_fen": order.paid_fen,
                    "refund_fen": order.refund_fen,
                    "items": order.items,
                    "channel": order.channel,
                },
            }
        )
    for message in messages.order_by("-sent_at")[:limit]:
        entries.append(
            {
                "kind": "message",
                "at": message.sent_at,
                "title": message.text[:200],
                "detail": {
                    "direction": message.direction,
                    "msg_type": message.msg_type,
                    "staff": message.staff.name if message.staff_id else None,
                },
            }
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


def pool_stats(scope: Scope, *, time_zone: str, days: int = 90, top_stores: int = 15) -> dict[str, Any]:
    """The dashboard's numbers: pool size, friends, new customers per day, by channel, by store."""
    from django.db import connection
    from django.db.models.expressions import RawSQL

    from siyu.core import clock

    customers = scoped_customers(scope)
    now = clock.now()
    since = now - dt.timedelta(days=days)
    if connection.vendor == "postgresql":
        day = RawSQL("(customers_customer.first_seen_at AT TIME ZONE %s)::date", [time_zone])
    else:
        # SQLite stores UTC text; shift by the zone's current offset (China has no DST).
        offset = now.astimezone(ZoneInfo(time_zone)).utcoffset() or dt.timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        day = RawSQL(f"date(customers_customer.first_seen_at, '{minutes:+d} minutes')", [])
    per_day = (
        customers.filter(first_seen_at__gte=since)
        .annotate(day=day)
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    by_channel = customers.values("source_channel").annotate(n=Count("id")).order_by("-n")
    by_store = customers.exclude(store_id=None).values("store_id").annotate(n=Count("id")).order_by("-n")[:top_stores]
    store_names = dict(OrgUnit.objects.filter(pk__in=[r["store_id"] for r in by_store]).values_list("pk", "name"))
    total = customers.count()
    return {
        "total": total,
        "new_7d": customers.filter(first_seen_at__gte=now - dt.timedelta(days=7)).count(),
        "friends": count_friends(scope, customers) if total else 0,
        "per_day": [(str(r["day"]), r["n"]) for r in per_day],
        "by_channel": [(r["source_channel"] or "", r["n"]) for r in by_channel],
        "by_store": [(store_names.get(r["store_id"], str(r["store_id"])), r["n"]) for r in by_store],
        "as_of": now,
    }


def count_friends(scope: Scope, customers: QuerySet[Customer]) -> int:
    """Customers in scope with at least one active WeCom relation."""
    active = StaffRelation.objects.filter(workspace_id=scope.workspace_id, status=StaffRelation.Status.ACTIVE)
    if scope.kind == "all":
        # Relations only ever point at live customers (merges move them): no join needed.
        return active.values("customer_id").distinct().count()
    return customers.filter(id__in=active.values("customer_id")).count()
