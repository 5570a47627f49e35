"""Per-customer day counters that segment rules read instead of raw rows.

``tracking_eventdaily`` counts events per (customer, name, local day); it is incremented
as events are stored. ``tracking_orderdaily`` sums paid orders per (customer, local day);
it is rebuilt for the customers whose orders changed, since an update (a refund) can
change any past day. Days are calendar days in the workspace's time zone, so "the last 7
days" means the same thing to a counter, a raw row and an operator in Shanghai.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from django.db import connection

from siyu.core.sql import ColumnType, id_list_condition, insert_rows, pg_records, record_columns
from siyu.tracking.models import Event, Order

EVENT_DAILY_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "name": "text",
    "day": "date",
    "count": "int",
}
ORDER_DAILY_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "day": "date",
    "orders": "int",
    "amount_fen": "int",
}


def local_day_of(time_zone: str):
    tz = ZoneInfo(time_zone)
    return lambda at: at.astimezone(tz).date()


def add_event_counts(workspace_id: int, time_zone: str, events: Iterable[tuple[int, str, dt.datetime]]) -> None:
    """Count stored ``(customer_id, name, occurred_at)`` events into the day counters (upsert)."""
    day_of = local_day_of(time_zone)
    counts = Counter((cid, name, day_of(at)) for cid, name, at in events)
    if not counts:
        return
    rows = [(workspace_id, cid, name, day, n) for (cid, name, day), n in sorted(counts.items())]
    upsert = "ON CONFLICT (customer_id, name, day) DO UPDATE SET count = tracking_eventdaily.count + excluded.count"
    names = ", ".join(EVENT_DAILY_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO tracking_eventdaily ({names}) SELECT {names} FROM json_to_recordset(%s::json) "
                f"AS v({record_columns(EVENT_DAILY_COLUMNS)}) {upsert}",
                [pg_records(list(EVENT_DAILY_COLUMNS), rows)],
            )
            return
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            params = [v.isoformat() if isinstance(v, dt.date) else v for row in chunk for v in row]
            cursor.execute(
                f"INSERT INTO tracking_eventdaily ({names}) VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(chunk))} "
                f"{upsert}",
                params,
            )


def rebuild_event_counts(workspace_id: int, time_zone: str, customer_ids: Sequence[int]) -> None:
    """Recount these customers' events from the raw rows (after a merge moved events)."""
    if not customer_ids:
        return
    condition, params = id_list_condition("customer_id", customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM tracking_eventdaily WHERE {condition}", params)
    events = Event.objects.filter(customer_id__in=list(customer_ids)).values_list("customer_id", "name", "occurred_at")
    add_event_counts(workspace_id, time_zone, events.iterator(chunk_size=5000))


def rebuild_order_days(workspace_id: int, time_zone: str, customer_ids: Sequence[int]) -> None:
    """Rewrite these customers' order day rows from their paid orders."""
    if not customer_ids:
        return
    ids = sorted(set(customer_ids))
    day_of = local_day_of(time_zone)
    totals: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    if connection.vendor == "postgresql":
        # Two batches touching the same customer would each delete and re-insert its day rows;
        # lock the customers (in id order, so batches cannot deadlock) to take turns.
        condition, params = id_list_condition("id", ids)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM customers_customer WHERE {condition} ORDER BY id FOR UPDATE", params)
    orders = Order.objects.filter(status=Order.Status.PAID).values_list(
        "customer_id", "paid_at", "paid_fen", "refund_fen"
    )
    for start in range(0, len(ids), 5000):
        for cid, paid_at, paid, refund in orders.filter(customer_id__in=ids[start : start + 5000]):
            cell = totals[(cid, day_of(paid_at))]
            cell[0] += 1
            cell[1] += paid - refund
    condition, params = id_list_condition("customer_id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM tracking_orderdaily WHERE {condition}", params)
    rows = [(workspace_id, cid, day, n, amount) for (cid, day), (n, amount) in sorted(totals.items())]
    insert_rows("tracking_orderdaily", ORDER_DAILY_COLUMNS, rows)


def fixed_offset_seconds(time_zone: str, first: dt.datetime, last: dt.datetime) -> int | None:
    """The zone's UTC offset if it is the same over the whole range (no DST in between), else None."""
    tz = ZoneInfo(time_zone)
    offsets = set()
    year = first.year
    while year <= last.year:
        for month in (1, 4, 7, 10):
            offsets.add(dt.datetime(year, month, 1, tzinfo=tz).utcoffset())
        year += 1
    offsets |= {first.astimezone(tz).utcoffset(), last.astimezone(tz).utcoffset()}
    return int(offsets.pop().total_seconds()) if len(offsets) == 1 else None


def rebuild_workspace_counters(workspace_id: int, time_zone: str) -> None:
    """Recount every day counter of a workspace from the raw rows, set-based (after bulk loads
    that wrote events and orders directly, e.g. the demo)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracking_eventdaily WHERE workspace_id = %s", [workspace_id])
        cursor.execute("DELETE FROM tracking_orderdaily WHERE workspace_id = %s", [workspace_id])
        if connection.vendor == "postgresql":
            day = "(({col}) AT TIME ZONE %s)::date"
            params_day: list = [time_zone]
        else:
            cursor.execute(
                "SELECT MIN(t), MAX(t) FROM (SELECT MIN(occurred_at) t FROM tracking_event WHERE workspace_id = %s "
                "UNION ALL SELECT MAX(occurred_at) FROM tracking_event WHERE workspace_id = %s "
                "UNION ALL SELECT MIN(paid_at) FROM tracking_order WHERE workspace_id = %s "
                "UNION ALL SELECT MAX(paid_at) FROM tracking_order WHERE workspace_id = %s) x",
                [workspace_id] * 4,
            )
            lo, hi = cursor.fetchone()
            if lo is None:
                return
            parse = dt.datetime.fromisoformat
            offset = fixed_offset_seconds(time_zone, parse(lo).replace(tzinfo=dt.UTC), parse(hi).replace(tzinfo=dt.UTC))
            if offset is None:
                # A zone with daylight saving: day boundaries move, so count in Python per customer chunk.
                ids = list(
                    Event.objects.filter(workspace_id=workspace_id).values_list("customer_id", flat=True).distinct()
                )
                for start in range(0, len(ids), 5000):
                    rebuild_event_counts(workspace_id, time_zone, ids[start : start + 5000])
                ids = list(
                    Order.objects.filter(workspace_id=workspace_id).values_list("customer_id", flat=True).distinct()
                )
                rebuild_order_days(workspace_id, time_zone, ids)
                return
            day = "date({col}, %s)"
            params_day = [f"{offset:+d} seconds"]
        cursor.execute(
            "INSERT INTO tracking_eventdaily (workspace_id, customer_id, name, day, count) "
            f"SELECT workspace_id, customer_id, name, {day.format(col='occurred_at')}, COUNT(*) FROM tracking_event "
            "WHERE workspace_id = %s GROUP BY 1, 2, 3, 4",
            [*params_day, workspace_id],
        )
        cursor.execute(
            "INSERT INTO tracking_orderdaily (workspace_id, customer_id, day, orders, amount_fen) "
            f"SELECT workspace_id, customer_id, {day.format(col='paid_at')}, COUNT(*), SUM(paid_fen - refund_fen) "
            "FROM tracking_order WHERE workspace_id = %s AND status = 'paid' GROUP BY 1, 2, 3",
            [*params_day, workspace_id],
        )
