"""Scoped reads of segments: previews of unsaved rules, member pages, sizes and trends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from siyu.core import clock
from siyu.core.errors import NotFound
from siyu.customers.models import Customer
from siyu.customers.queries import scope_sql
from siyu.org.models import Workspace
from siyu.org.rules import Scope
from siyu.segments import rules as r
from siyu.segments.models import Segment, SegmentMembership, SegmentSize
from siyu.segments.services import compile_for

MAX_PAGE = 200


@dataclass
class Preview:
    count: int
    sample: list[Customer]


def preview(
    workspace: Workspace, scope: Scope, rule: r.Rule, *, sample: int = 10, now: dt.datetime | None = None
) -> Preview:
    """How many customers (in the viewer's slice) an unsaved rule selects, and the newest few of them."""
    compiled = compile_for(workspace, rule, now=now or clock.now())
    extra, extra_params = scope_sql(scope)
    select, params = compiled.select(workspace.pk, extra=extra, extra_params=extra_params)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # "Never did" / "none of" compile to NOT IN, fast only as a hashed subplan (see refresh).
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(f"SELECT COUNT(*) FROM ({select}) s", params)
        count = cursor.fetchone()[0]
        cursor.execute(f"{select} ORDER BY c.id DESC LIMIT %s", [*params, sample])
        ids = [row[0] for row in cursor.fetchall()]
    by_id = Customer.objects.in_bulk(ids)
    return Preview(count, [by_id[i] for i in ids if i in by_id])


def get_segment(workspace: Workspace, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
    if segment is None:
        raise NotFound("no segment with this id", field="segment_id")
    return segment


def _members_sql(scope: Scope, segment: Segment, after: int | None, columns: str) -> tuple[str, list[Any]]:
    """Current members visible to ``scope`` below the keyset cursor ``after``, newest id first."""
    extra, extra_params = scope_sql(scope)
    sql = (
        f"SELECT {columns} FROM segments_segmentmembership m JOIN customers_customer c ON c.id = m.customer_id "
        f"WHERE m.segment_id = %s AND m.exited_at IS NULL AND c.merged_into_id IS NULL{extra}"
    )
    params: list[Any] = [segment.pk, *extra_params]
    if after is not None:
        sql += " AND m.customer_id < %s"
        params.append(after)
    return sql + " ORDER BY m.customer_id DESC LIMIT %s", params


def member_page(
    scope: Scope, segment: Segment, *, after: int | None = None, limit: int = 50
) -> tuple[list[tuple[Customer, dt.datetime]], int | None]:
    """Current members visible to ``scope``, newest customer id first, by keyset (``after`` = last id seen)."""
    limit = max(1, min(limit, MAX_PAGE))
    sql, params = _members_sql(scope, segment, after, "c.id, m.entered_at")
    rows = _fetch(sql, [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    customers = Customer.objects.in_bulk([cid for cid, _ in rows])
    items = [(customers[cid], entered) for cid, entered in rows if cid in customers]
    return items, (rows[-1][0] if more and rows else None)


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(cid, _aware(at)) for cid, at in cursor.fetchall()]


def _aware(at: Any) -> dt.datetime | None:
    """SQLite hands back naive UTC (as text or datetime) from a raw query; PostgreSQL aware times."""
    if isinstance(at, str):
        at = parse_datetime(at)
    return at.replace(tzinfo=dt.UTC) if at is not None and at.tzinfo is None else at


def iter_member_ids(scope: Scope, segment: Segment, chunk: int = 5000):
    """Every current member visible to ``scope``, in chunks (for exports)."""
    after = None
    while True:
        sql, params = _members_sql(scope, segment, after, "c.id")
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, chunk])
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        yield ids
        after = ids[-1]


def segment_trend(segment: Segment, days: int = 30) -> list[SegmentSize]:
    return list(SegmentSize.objects.filter(segment=segment).order_by("-day")[:days])[::-1]


def customer_segments(customer: Customer) -> list[dict[str, Any]]:
    """Segments a customer is in now, with when they entered (for the profile)."""
    rows = (
        SegmentMembership.objects.filter(customer=customer, exited_at__isnull=True, segment__archived_at__isnull=True)
        .select_related("segment")
        .order_by("segment__name")
    )
    return [{"id": m.segment_id, "name": m.segment.name, "entered_at": m.entered_at} for m in rows]


def scoped_sizes(scope: Scope, segments: list[Segment]) -> dict[int, int]:
    """Current members per segment within the viewer's slice, in one statement."""
    if not segments:
        return {}
    extra, extra_params = scope_sql(scope)
    marks = ", ".join(["%s"] * len(segments))
    sql = (
        "SELECT m.segment_id, COUNT(*) FROM segments_segmentmembership m "
        "JOIN customers_customer c ON c.id = m.customer_id "
        f"WHERE m.segment_id IN ({marks}) AND m.exited_at IS NULL AND c.merged_into_id IS NULL{extra} "
        "GROUP BY m.segment_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(s.pk for s in segments), *extra_params])
        return dict(cursor.fetchall())
