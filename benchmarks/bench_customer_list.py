"""Customer list at a million customers: first page and a deep page, server time.

    .venv/bin/python benchmarks/bench_customer_list.py --backend sqlite --sqlite /tmp/demo1m.sqlite3
    .venv/bin/python benchmarks/bench_customer_list.py --backend postgres [--customers 1000000]

SQLite uses a demo database (`siyu demo --customers 1000000 --no-serve --db /tmp/demo1m.sqlite3`);
PostgreSQL gets a fresh database filled set-based (generate_series) with the demo's org tree.
Each path is timed as the server sees it (the console page through Django's test client, the
API list, and the scoped query alone) and set against the bare keyset SQL in the same run.
Goal: < 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_pg_database, machine, migrate, setup_django

RAW = (
    "SELECT id, name, city, source_channel, store_id, owner_staff_id, last_seen_at FROM customers_customer "
    "WHERE workspace_id = %s AND merged_into_id IS NULL AND id < %s ORDER BY id DESC LIMIT 51"
)


def populate_pg(n: int) -> None:
    """The demo's org and users, then n customers with phones and WeCom relations, set-based."""
    from django.db import connection

    from siyu.demo.services import build_demo

    build_demo(n_customers=10, seed=1, echo=lambda _: None)
    with connection.cursor() as c:
        c.execute("SELECT id FROM org_workspace WHERE slug = 'demo'")
        ws = c.fetchone()[0]
        c.execute(
            """
            INSERT INTO customers_customer (workspace_id, name, gender, province, city, attributes, source_channel,
                source_detail, store_id, owner_staff_id, first_seen_at, last_seen_at, created_at, updated_at)
            SELECT %s, '客户' || g, 'f', '', '上海', '{}', (ARRAY['store_code','official_account','mini_program',
                'fission','order_import'])[1 + g %% 5], '', s.id, st.id,
                now() - (g %% 180) * interval '1 day', now(), now(), now()
            FROM generate_series(1, %s) g
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM org_orgunit
                  WHERE workspace_id = %s AND kind = 'store') s ON s.k = g %% 29
            JOIN (SELECT id, org_unit_id, row_number() OVER (PARTITION BY org_unit_id ORDER BY id) - 1 AS k
                  FROM org_staff) st ON st.org_unit_id = s.id AND st.k = (g / 29) %% 10
            """,
            [ws, n, ws],
        )
        c.execute(
            """INSERT INTO customers_identity (workspace_id, customer_id, type, app_id, value, source, created_at)
               SELECT workspace_id, id, 'phone', '', '166' || lpad(id::text, 8, '0'), 'bench', now()
               FROM customers_customer c WHERE workspace_id = %s
               AND NOT EXISTS (SELECT 1 FROM customers_identity i WHERE i.customer_id = c.id)""",
            [ws],
        )
        c.execute(
            """INSERT INTO customers_staffrelation (workspace_id, customer_id, staff_id, added_at, add_way, state,
                   remark, description, status)
               SELECT workspace_id, id, owner_staff_id, now(), 1, '', '', '', 'active'
               FROM customers_customer c WHERE workspace_id = %s AND id %% 10 < 6 AND owner_staff_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM customers_staffrelation r WHERE r.customer_id = c.id)""",
            [ws],
        )
        c.execute("ANALYZE")


def measure(fn, repeat: int = 7) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--sqlite", default="/tmp/demo1m.sqlite3")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()

    if args.backend == "sqlite":
        if not Path(args.sqlite).exists():
            sys.exit(f"{args.sqlite} missing: siyu demo --customers 1000000 --no-serve --db {args.sqlite}")
        setup_django(f"sqlite:///{args.sqlite}")
        migrate()
    else:
        setup_django(fresh_pg_database("siyu_bench_list"))
        migrate()
        start = time.perf_counter()
        populate_pg(args.customers)
        print(f"populated {args.customers:,} customers in {time.perf_counter() - start:.1f}s")

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from siyu.customers.models import Customer
    from siyu.customers.queries import list_customers
    from siyu.org.models import Membership
    from siyu.org.rules import api_key_scope, scope_for
    from siyu.org.services import create_api_key

    ws = Customer.objects.values_list("workspace_id", flat=True).first()
    total = Customer.objects.filter(workspace_id=ws, merged_into__isnull=True).count()
    deep_after = (
        Customer.objects.filter(workspace_id=ws, merged_into__isnull=True)
        .order_by("-id")
        .values_list("id", flat=True)[total // 2]
    )
    hq = api_key_scope(ws)
    manager = Membership.objects.select_related("org_unit").get(user__username="dianzhang")
    clerk = Membership.objects.get(user__username="daogou")
    manager_scope = scope_for(
        workspace_id=ws, role="store_manager", can_view_pii=False, unit_path=manager.org_unit.path, staff_id=None
    )
    clerk_scope = scope_for(workspace_id=ws, role="staff", can_view_pii=False, unit_path=None, staff_id=clerk.staff_id)
    User = get_user_model()
    admin = User.objects.get(username="admin")
    console = Client()
    console.force_login(admin)
    _, key = create_api_key(workspace_slug="demo", name="bench-list")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    name_prefix = (Customer.objects.get(pk=deep_after).name or "客")[:1]
    some_phone = (
        Customer.objects.get(pk=deep_after).identities.filter(type="phone").values_list("value", flat=True).first()
    )

    def raw(after: int) -> None:
        with connection.cursor() as c:
            c.execute(RAW, [ws, after])
            c.fetchall()

    big = 2**62
    rows = [
        ("raw keyset SQL, first page", lambda: raw(big)),
        ("raw keyset SQL, deep page", lambda: raw(deep_after)),
        ("query HQ, first page", lambda: list_customers(hq)),
        ("query HQ, deep page", lambda: list_customers(hq, after=deep_after)),
        ("query store manager, first page", lambda: list_customers(manager_scope)),
        ("query store manager, deep page", lambda: list_customers(manager_scope, after=deep_after)),
        ("query clerk, first page", lambda: list_customers(clerk_scope)),
        ("query HQ, channel filter", lambda: list_customers(hq, channel="fission", after=deep_after)),
        ("query HQ, phone search", lambda: list_customers(hq, q=some_phone or "13900000000")),
        ("query HQ, name prefix search", lambda: list_customers(hq, q=name_prefix)),
        ("console page, first page", lambda: console.get("/customers/")),
        ("console page, deep page", lambda: console.get(f"/customers/?after={deep_after}")),
        ("API list, first page", lambda: api.get("/api/v1/customers")),
        ("API list, deep page", lambda: api.get(f"/api/v1/customers?after={deep_after}")),
    ]
    print(
        f"machine: {machine()}; backend: {connection.vendor}; live customers: {total:,}; deep page after id {deep_after}"
    )
    results = {}
    for label, fn in rows:
        results[label] = measure(fn)
    reference = results["raw keyset SQL, first page"]
    reference_deep = results["raw keyset SQL, deep page"]
    for label, ms in results.items():
        ref = reference_deep if "deep" in label else reference
        print(f"{label:<34} {ms:8.2f} ms   ratio to raw SQL {ms / ref:6.1f}x")


if __name__ == "__main__":
    main()
