"""Event ingestion through the HTTP batch API (real gunicorn server, PostgreSQL) vs a raw COPY.

    .venv/bin/python benchmarks/bench_ingest.py [--events 200000] [--clients 4] [--customers 20000]

Creates a fresh database `siyu_bench_ingest`, a workspace with customers and an API key,
starts `siyu serve`, and posts batches of 1,000 events (half by customer_id, half by
phone identity) from several client threads. The reference is the same number of rows
written straight into tracking_event with COPY in the same run. Goal: ≥ 20,000 events/s,
ratio ≥ 0.5.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SECRET, fresh_pg_database, machine, migrate, setup_django


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    url = fresh_pg_database("siyu_bench_ingest")
    setup_django(url)
    migrate()
    from siyu.customers.services import upsert_customers
    from siyu.org.services import create_api_key, create_workspace

    ws = create_workspace(slug="bench", name="Bench")
    ids: list[int] = []
    for start in range(0, args.customers, 1000):
        items = [{"identities": [{"type": "phone", "value": f"138{i:08d}"}]} for i in range(start, start + 1000)]
        ids += upsert_customers(ws, items, source="bench").ids
    _, key = create_api_key(workspace_slug="bench", name="bench")

    rng = random.Random(1)
    now = dt.datetime.now(dt.UTC)
    n_batches = args.events // 1000
    bodies = []
    for b in range(n_batches):
        items = []
        for k in range(1000):
            n = rng.randrange(args.customers)
            ref = {"customer_id": ids[n]} if k % 2 else {"identity": {"type": "phone", "value": f"138{n:08d}"}}
            items.append(
                {
                    **ref,
                    "name": rng.choice(["page_view", "view_product", "add_to_cart"]),
                    # Live traffic: events from the last minute, as an SDK sends them.
                    "timestamp": (now - dt.timedelta(seconds=rng.randrange(60))).isoformat(),
                    "properties": {"sku": f"SK-{k % 40:03d}", "page": "/item"},
                    "event_id": f"b{b}-{k}" if k % 4 == 0 else None,
                }
            )
        for item in items:
            if item["event_id"] is None:
                del item["event_id"]
        bodies.append(json.dumps({"items": items}).encode())

    port = free_port()
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_SECRET_KEY": SECRET, "SIYU_WEB_WORKERS": str(args.workers)}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "siyu"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/v1/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        # Warm up each worker (imports, connections).
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for body in bodies[:4]:
                client.post("/api/v1/events/batch", content=body)
        queue = list(range(4, n_batches))
        lock = threading.Lock()
        accepted = [0]
        failures: list[str] = []

        def worker() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                while True:
                    with lock:
                        if not queue:
                            return
                        b = queue.pop()
                    response = client.post("/api/v1/events/batch", content=bodies[b])
                    if response.status_code != 200 or response.json()["rejected"]:
                        failures.append(response.text[:200])
                    with lock:
                        accepted[0] += response.json().get("accepted", 0) if response.status_code == 200 else 0

        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        http_seconds = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(10)

    sent = (n_batches - 4) * 1000
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_event")
        stored = cursor.fetchone()[0]
    # Reference: the same rows, COPYed straight into the table.
    rows = []
    for body in bodies[4:]:
        for item in json.loads(body)["items"]:
            rows.append((ws.pk, ids[0], item["name"], json.dumps(item["properties"]), "2026-11-01T00:00:00+08:00"))
    start = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY tracking_event (workspace_id, customer_id, name, properties, occurred_at, received_at, source) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row((*row, row[4], "raw"))
    connection.commit() if not connection.get_autocommit() else None
    raw_seconds = time.perf_counter() - start

    http_rate = sent / http_seconds
    raw_rate = len(rows) / raw_seconds
    print(f"machine: {machine()}; server: {args.workers} gunicorn workers x 4 threads; clients: {args.clients}")
    print(
        f"events sent: {sent:,}; accepted: {accepted[0]:,}; stored (incl. warm-up): {stored:,}; failures: {len(failures)}"
    )
    print(f"HTTP batch API : {http_rate:>10,.0f} events/s  ({http_seconds:.2f} s)")
    print(f"raw COPY       : {raw_rate:>10,.0f} events/s  ({raw_seconds:.2f} s)")
    print(f"ratio HTTP/raw : {http_rate / raw_rate:.2f}")
    if failures:
        print("first failure:", failures[0])


if __name__ == "__main__":
    main()
