"""Layers (RFM, lifecycle, 1-9-90) recomputed for a whole workspace. Goal: 1M customers < 10 s.

    .venv/bin/python benchmarks/bench_layers.py --backend postgres [--customers 1000000]
    .venv/bin/python benchmarks/bench_layers.py --backend sqlite [--customers 1000000]

A fresh database (PostgreSQL: ``h2``, dropped and recreated; SQLite: a temp file) is filled
set-based: customers, ~3 paid orders each over two years (5 % refunded, some partly), share /
invite / page-view events and messages in the last four months, a few group owners and admins.
The day counters (``tracking_orderdaily``, ``tracking_eventdaily``), which ingestion keeps
up to date, are then rebuilt from the raw rows. Generation is not timed. Then
``recompute_layers`` is timed three times: a first run inserts every layer row; a second run
the same day over unchanged data writes nothing; a daily run the next day writes only the rows
that moved (orders leaving the window, lifecycle stages ageing). The first two are set against
the same RFM quintile computation written by hand in DuckDB over the raw order rows, exported
in the same run; the DuckDB scores are checked against the stored ones.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_pg_database, machine, migrate, setup_django

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
ORDERS_PER_CUSTOMER = 3
EVENTS_PER_CUSTOMER = 1
MESSAGES_PER_CUSTOMER = 1

# Row generators: {series} yields x = 1..{count}; {c} is the customer the row belongs to.
PG_SERIES = "generate_series(1, %(count)s) AS s(x)"
SQLITE_SERIES = "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < %(count)s) SELECT x FROM s)"


def populate(n: int) -> int:
    """Fill a workspace with n customers and their behaviour; returns the workspace id."""
    from django.db import connection, transaction

    from siyu.org.services import create_workspace

    pg = connection.vendor == "postgresql"
    workspace = create_workspace(slug="bench", name="Bench 美妆")
    ws = workspace.pk
    now_utc = NOW.astimezone(dt.UTC).replace(tzinfo=None)
    series = PG_SERIES if pg else SQLITE_SERIES
    js = "::jsonb" if pg else ""

    def ago(seconds_expr: str) -> str:
        """A timestamp seconds_expr seconds before NOW, in the backend's storage form."""
        if pg:
            return f"(%(now)s::timestamptz - ({seconds_expr}) * interval '1 second')"
        return f"datetime(%(now)s, '-' || ({seconds_expr}) || ' seconds')"

    # A cheap deterministic scramble of x, so customers, days and amounts are not in lockstep.
    def mix(salt: int) -> str:
        return f"((x * 2654435761 + {salt}) %% 4294967291)"

    customer = f"(%(first)s + {mix(7)} %% %(n)s)"
    now_param = now_utc if pg else now_utc.isoformat(sep=" ")
    statements = [
        (
            "customers_customer (workspace_id, name, gender, province, city, attributes, source_channel, "
            "source_detail, first_seen_at, last_seen_at, created_at, updated_at)",
            f"SELECT %(ws)s, 'c' || x, 'f', '', '', CASE WHEN x %% 1000 = 0 THEN '{{\"group_role\": \"owner\"}}' "
            f"WHEN x %% 1000 = 1 THEN '{{\"group_role\": \"admin\"}}' ELSE '{{}}' END{js}, 'api', '', "
            f"{ago(f'86400 * 400 + {mix(1)} %% (86400 * 400)')}, {ago(f'{mix(2)} %% (86400 * 400)')}, "
            f"%(now)s, %(now)s FROM {series}",
            n,
        ),
        (
            "tracking_order (workspace_id, customer_id, order_no, status, total_fen, discount_fen, paid_fen, "
            "refund_fen, currency, items, channel, paid_at, created_at, updated_at)",
            f"SELECT %(ws)s, {customer}, 'B' || x, CASE WHEN x %% 20 = 0 THEN 'refunded' ELSE 'paid' END, "
            f"5000 + {mix(3)} %% 200000, 0, 5000 + {mix(3)} %% 200000, CASE WHEN x %% 17 = 0 THEN 2000 ELSE 0 END, "
            f"'CNY', '[]'{js}, 'mall', {ago(f'{mix(4)} %% (86400 * 730)')}, %(now)s, %(now)s FROM {series}",
            n * ORDERS_PER_CUSTOMER,
        ),
        (
            "tracking_event (workspace_id, customer_id, name, properties, occurred_at, received_at, source)",
            f"SELECT %(ws)s, {customer}, CASE WHEN x %% 10 < 3 THEN 'share_poster' WHEN x %% 10 = 3 THEN 'invite' "
            f"ELSE 'page_view' END, '{{}}'{js}, {ago(f'{mix(5)} %% (86400 * 120)')}, %(now)s, 'bench' FROM {series}",
            n * EVENTS_PER_CUSTOMER,
        ),
        (
            "conversations_message (workspace_id, customer_id, direction, msg_type, text, sent_at)",
            f"SELECT %(ws)s, {customer}, CASE WHEN x %% 3 = 0 THEN 'out' ELSE 'in' END, 'text', '', "
            f"{ago(f'{mix(6)} %% (86400 * 120)')} FROM {series}",
            n * MESSAGES_PER_CUSTOMER,
        ),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM customers_customer")
        first = cursor.fetchone()[0]
        for target, select, count in statements:
            started = time.perf_counter()
            params = {"ws": ws, "now": now_param, "n": n, "first": first, "count": count}
            cursor.execute(f"INSERT INTO {target} {select}", params)
            print(f"  generated {count:,} rows of {target.split()[0]} in {time.perf_counter() - started:.1f}s")
    from siyu.tracking.counters import rebuild_workspace_counters

    started = time.perf_counter()
    with transaction.atomic():
        rebuild_workspace_counters(ws, workspace.time_zone)
    print(f"  rebuilt the day counters in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ws


def export_orders(path: Path, ws: int) -> int:
    """Write the workspace's orders (customer, status, paid epoch seconds, net fen) to CSV."""
    from django.db import connection

    if connection.vendor == "postgresql":
        sql = (
            "COPY (SELECT customer_id, status, EXTRACT(EPOCH FROM paid_at)::bigint, paid_fen - refund_fen "
            f"FROM tracking_order WHERE workspace_id = {int(ws)}) TO STDOUT WITH (FORMAT csv)"
        )
        rows = 0
        with connection.cursor() as cursor, path.open("wb") as out:
            with cursor.cursor.copy(sql) as copy:
                for block in copy:
                    out.write(block)
            cursor.execute("SELECT COUNT(*) FROM tracking_order WHERE workspace_id = %s", [ws])
            rows = cursor.fetchone()[0]
        return rows
    with connection.cursor() as cursor, path.open("w", newline="") as out:
        cursor.execute(
            "SELECT customer_id, status, CAST(strftime('%%s', paid_at) AS INTEGER), paid_fen - refund_fen "
            "FROM tracking_order WHERE workspace_id = %s",
            [ws],
        )
        writer = csv.writer(out)
        rows = 0
        while batch := cursor.fetchmany(50_000):
            writer.writerows(batch)
            rows += len(batch)
    return rows


def duckdb_rfm(orders_csv: Path, midnight: int, rfm_start: int) -> tuple[float, dict[int, tuple[int, int, int]]]:
    """The RFM quintiles by hand in DuckDB: same window, same tie rule. Returns (seconds, scores)."""
    import duckdb

    db = duckdb.connect()
    db.execute(
        f"CREATE TABLE orders AS SELECT * FROM read_csv('{orders_csv}', header=false, "
        "columns={'customer_id': 'BIGINT', 'status': 'VARCHAR', 'paid_epoch': 'BIGINT', 'net_fen': 'BIGINT'})"
    )
    started = time.perf_counter()
    db.execute(
        f"""
        CREATE TABLE rfm AS
        WITH paid AS (
            SELECT customer_id, MAX(paid_epoch) AS last_paid,
                SUM(CASE WHEN paid_epoch >= {rfm_start} THEN 1 ELSE 0 END) AS frequency,
                SUM(CASE WHEN paid_epoch >= {rfm_start} THEN net_fen ELSE 0 END) AS monetary
            FROM orders WHERE status = 'paid' GROUP BY customer_id
        ), bought AS (
            SELECT customer_id, frequency, monetary, GREATEST(({midnight} - last_paid - 1) // 86400, 0) AS days
            FROM paid WHERE frequency > 0
        )
        SELECT customer_id,
            1 + 5 * (RANK() OVER (ORDER BY days DESC) - 1) // COUNT(*) OVER () AS r,
            1 + 5 * (RANK() OVER (ORDER BY frequency) - 1) // COUNT(*) OVER () AS f,
            1 + 5 * (RANK() OVER (ORDER BY monetary) - 1) // COUNT(*) OVER () AS m
        FROM bought
        """
    )
    seconds = time.perf_counter() - started
    scores = {cid: (r, f, m) for cid, r, f, m in db.execute("SELECT * FROM rfm").fetchall()}
    return seconds, scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--pg-database", default="h2")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="siyu-bench-layers-"))
    if args.backend == "sqlite":
        setup_django(f"sqlite:///{workdir / 'bench.sqlite3'}")
    else:
        setup_django(fresh_pg_database(args.pg_database))
    migrate()

    from django.db import connection

    from siyu.org.models import Workspace
    from siyu.segments import layers
    from siyu.segments.models import CustomerLayer

    print(f"machine: {machine()}; backend: {connection.vendor}; customers: {args.customers:,}")
    started = time.perf_counter()
    ws = populate(args.customers)
    print(f"populated in {time.perf_counter() - started:.1f}s")
    workspace = Workspace.objects.get(pk=ws)

    first = layers.recompute_layers(workspace, now=NOW)
    second = layers.recompute_layers(workspace, now=NOW)
    for label, report in (("first run (insert)", first), ("second run (same day)", second)):
        print(
            f"recompute_layers, {label}: {report.seconds:.2f}s  ({report.customers:,} customers, "
            f"{report.changed:,} changed, {report.written:,} rows written)"
        )
    print(f"  RFM cells: {dict(sorted(first.rfm_cells.items()))}")
    print(f"  lifecycle: {first.lifecycles}; community: {first.community_tiers}")

    orders_csv = workdir / "orders.csv"
    rows = export_orders(orders_csv, ws)
    today = NOW.date()
    midnight = int(layers.local_midnight(today + dt.timedelta(days=1), TZ).timestamp())
    rfm_start = int(layers.local_midnight(today - dt.timedelta(days=364), TZ).timestamp())
    duck_seconds, duck = duckdb_rfm(orders_csv, midnight, rfm_start)
    stored = {
        cid: (r, f, m)
        for cid, r, f, m in CustomerLayer.objects.filter(workspace_id=ws, r_score__gt=0).values_list(
            "customer_id", "r_score", "f_score", "m_score"
        )
    }
    print(f"DuckDB RFM quintiles by hand over {rows:,} exported orders: {duck_seconds:.2f}s")
    print(f"  scores agree with the stored ones: {stored == duck} ({len(duck):,} scored customers)")
    daily = layers.recompute_layers(workspace, now=NOW + dt.timedelta(days=1))
    print(
        f"recompute_layers, daily run (next day): {daily.seconds:.2f}s  ({daily.customers:,} customers, "
        f"{daily.changed:,} changed, {daily.written:,} rows written)"
    )
    for label, report in (("first", first), ("second", second), ("daily", daily)):
        print(f"ratio recompute ({label} run) / DuckDB RFM: {report.seconds / duck_seconds:.1f}x")


if __name__ == "__main__":
    main()
