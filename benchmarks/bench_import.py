"""CSV import throughput (customers/s) vs a raw insert of the same rows, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_import.py --backend sqlite [--customers 100000]
    .venv/bin/python benchmarks/bench_import.py --backend postgres [--customers 100000]

Writes a CSV of N customers (phone, member no., name, city, store, tags, one attribute),
imports it with `import_csv` into a fresh database, then writes the same customers and
identities into fresh tables with plain executemany (SQLite) / COPY (PostgreSQL) in the
same run. Goal: ≥ 10,000 customers/s.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_pg_database, machine, migrate, setup_django

CITIES = ["上海", "杭州", "北京", "广州", "深圳", "成都"]
NAMES = "王李张刘陈杨黄赵吴周"


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(5)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "member_no", "name", "gender", "city", "store_code", "tags", "attr.level"])
        for i in range(n):
            writer.writerow(
                [
                    f"137{i:08d}",
                    f"M{i:09d}",
                    rng.choice(NAMES) + "女士",
                    "女",
                    rng.choice(CITIES),
                    "S01",
                    "肤质/干皮|VIP" if i % 3 == 0 else "",
                    rng.choice(["gold", "silver"]),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.backend == "sqlite":
        setup_django(f"sqlite:///{tmp / 'import.sqlite3'}")
    else:
        setup_django(fresh_pg_database("siyu_bench_import"))
    migrate()
    from django.db import connection, transaction

    from siyu.org.models import OrgUnit
    from siyu.org.services import create_org_unit, create_workspace
    from siyu.tracking.imports import import_csv

    ws = create_workspace(slug="bench", name="Bench")
    hq = OrgUnit.objects.get(workspace=ws)
    create_org_unit(workspace=ws, parent=hq, kind="store", name="一号店", code="S01")
    path = tmp / "customers.csv"
    write_csv(path, args.customers)

    start = time.perf_counter()
    report = import_csv(kind="customers", path=path, workspace_slug="bench")
    import_seconds = time.perf_counter() - start
    assert report.accepted == args.customers and not report.errors, (report.accepted, report.errors[:3])

    # Reference: the same customers and identities, straight into bare tables.
    with connection.cursor() as c:
        c.execute("CREATE TABLE raw_customer (id INTEGER PRIMARY KEY, name TEXT, gender TEXT, city TEXT, attrs TEXT)")
        c.execute("CREATE TABLE raw_identity (customer_id INTEGER, type TEXT, value TEXT, UNIQUE (type, value))")
    rows = list(csv.reader(path.open(encoding="utf-8")))[1:]
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        if connection.vendor == "postgresql":
            with c.cursor.copy("COPY raw_customer (id, name, gender, city, attrs) FROM STDIN") as copy:
                for i, r in enumerate(rows):
                    copy.write_row((i, r[2], "f", r[4], f'{{"level": "{r[7]}"}}'))
            with c.cursor.copy("COPY raw_identity (customer_id, type, value) FROM STDIN") as copy:
                for i, r in enumerate(rows):
                    copy.write_row((i, "phone", r[0]))
                    copy.write_row((i, "member_no", r[1]))
        else:
            c.executemany(
                "INSERT INTO raw_customer (id, name, gender, city, attrs) VALUES (%s, %s, %s, %s, %s)",
                [(i, r[2], "f", r[4], f'{{"level": "{r[7]}"}}') for i, r in enumerate(rows)],
            )
            c.executemany(
                "INSERT INTO raw_identity (customer_id, type, value) VALUES (%s, %s, %s)",
                [(i, t, v) for i, r in enumerate(rows) for t, v in (("phone", r[0]), ("member_no", r[1]))],
            )
    raw_seconds = time.perf_counter() - start
    n = args.customers
    print(f"machine: {machine()}; backend: {connection.vendor}; customers: {n:,}")
    print(f"siyu import customers : {n / import_seconds:>9,.0f} customers/s  ({import_seconds:.2f} s)")
    print(f"raw insert reference  : {n / raw_seconds:>9,.0f} customers/s  ({raw_seconds:.2f} s)")
    print(f"ratio import/raw      : {raw_seconds / import_seconds:.2f}")


if __name__ == "__main__":
    main()
