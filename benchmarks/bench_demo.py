"""`siyu demo` at the default size: total wall time, against a raw insert of the same number
of bare customer rows in the same run (the floor for "write N customers").

    .venv/bin/python benchmarks/bench_demo.py [--customers 50000]

Goal: < 60 s for the default 50,000 customers (migrations, org, users and six months of
history included).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if k != "SIYU_DATABASE_URL"}
    start = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "siyu"),
            "demo",
            "--customers",
            str(args.customers),
            "--no-serve",
            "--db",
            str(tmp / "demo.sqlite3"),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    demo_seconds = time.perf_counter() - start

    start = time.perf_counter()
    conn = sqlite3.connect(tmp / "raw.sqlite3")
    conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, city TEXT, first_seen TEXT)")
    conn.executemany(
        "INSERT INTO customer (name, city, first_seen) VALUES (?, ?, ?)",
        [(f"客户{i}", "上海", "2026-11-01 00:00:00") for i in range(args.customers)],
    )
    conn.commit()
    raw_seconds = time.perf_counter() - start
    print(f"machine: {machine()}; customers: {args.customers:,}")
    print(f"siyu demo --no-serve       : {demo_seconds:7.1f} s")
    print(f"raw insert of bare rows    : {raw_seconds:7.2f} s")
    print(
        f"ratio                      : {demo_seconds / raw_seconds:7.0f}x (the demo also writes ~15 rows per customer)"
    )


if __name__ == "__main__":
    main()
