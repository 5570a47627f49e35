"""WeCom callbacks through the real HTTP endpoint: signature check, AES decryption, dedupe,
and the add_external_contact handler (customer, identity, relation, timeline), on PostgreSQL.

    .venv/bin/python benchmarks/bench_wecom_callbacks.py --events 5000 [--clients 16] [--web-workers 2]

THE DATABASE ``bench_wecom_callbacks`` IS DROPPED AND RECREATED.

A workspace with a configured WeCom app and 50 staff; N distinct ``add_external_contact``
events are encrypted and signed beforehand (not timed), then POSTed by ``--clients`` threads
to ``siyu serve`` (gunicorn, ``--web-workers`` processes) on 127.0.0.1. events/s = N / wall
time. References measured in the same run: the same N decryptions alone in one process (the
crypto's share), and N GETs of the login page (the HTTP stack's share). Then every event is
checked: one customer, one relation and one receipt each, and a replay of 200 events is
acknowledged without new rows.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, SECRET, fresh_pg_database, machine, migrate, setup_django

CORP = "ww0123456789abcdef"
TOKEN = "benchToken2026"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8191)
    args = parser.parse_args()

    url = fresh_pg_database("bench_wecom_callbacks")
    setup_django(url)
    migrate()
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)

    from tests.fakes.wecom import encrypted_callback, event_xml

    from siyu.org.models import OrgUnit, Staff
    from siyu.org.services import create_workspace
    from siyu.wecom.crypto import MsgCrypt
    from siyu.wecom.services import configure_wecom

    ws = create_workspace(slug="bench", name="Bench")
    hq = OrgUnit.objects.get(workspace=ws, kind=OrgUnit.Kind.HQ)
    staff = [Staff(workspace=ws, org_unit=hq, name=f"导购{n}", wecom_userid=f"staff{n}") for n in range(50)]
    Staff.objects.bulk_create(staff)
    configure_wecom(ws, corp_id=CORP, agent_id="1000002", secret="bench-secret", token=TOKEN, aes_key=AES_KEY)
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP)
    base = int(time.time())
    payloads = []
    for n in range(args.events):
        xml = event_xml(
            CORP,
            "change_external_contact",
            "add_external_contact",
            create_time=base + n,
            UserID=f"staff{n % 50}",
            ExternalUserID=f"wmBench{n:08d}",
            State=f"c{n % 7}",
            WelcomeCode=f"wc{n}",
        )
        payloads.append(encrypted_callback(crypt, xml))

    # Reference 1: the crypto alone, in this process.
    start = time.perf_counter()
    for query, body in payloads:
        encrypt = body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        crypt.open(query["msg_signature"], query["timestamp"], query["nonce"], encrypt)
    crypto_seconds = time.perf_counter() - start

    env = {
        **os.environ,
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": SECRET,
        "SIYU_LOG_LEVEL": "WARNING",
        "SIYU_WEB_WORKERS": str(args.web_workers),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "siyu"), "serve", "--port", str(args.port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{args.port}/callbacks/wecom/bench/"
    try:
        with httpx.Client(timeout=5) as probe:
            for _ in range(100):
                try:
                    probe.get(f"http://127.0.0.1:{args.port}/login/")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)

        def post_all(items):
            with httpx.Client(timeout=30) as client:
                codes = []
                for query, body in items:
                    codes.append(client.post(endpoint, params=query, content=body).status_code)
                return codes

        def get_all(count):
            with httpx.Client(timeout=30) as client:
                return [client.get(f"http://127.0.0.1:{args.port}/login/").status_code for _ in range(count)]

        chunks = [payloads[i :: args.clients] for i in range(args.clients)]
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            codes = [c for part in pool.map(post_all, chunks) for c in part]
        http_seconds = time.perf_counter() - start

        # Reference 2: the same number of plain page requests (HTTP stack, sessions, templates).
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            get_codes = [c for part in pool.map(get_all, [len(c) for c in chunks]) for c in part]
        get_seconds = time.perf_counter() - start

        # A replay of 200 events: acknowledged, nothing new stored.
        replay_codes = post_all(payloads[:200])
    finally:
        server.terminate()
        server.wait(timeout=30)

    from siyu.customers.models import Customer, StaffRelation
    from siyu.wecom.models import CallbackReceipt

    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    assert set(get_codes) == {200} and set(replay_codes) == {200}
    customers = Customer.objects.filter(workspace=ws).count()
    relations = StaffRelation.objects.filter(workspace=ws).count()
    receipts = CallbackReceipt.objects.filter(workspace=ws).count()
    assert customers == relations == receipts == args.events, (customers, relations, receipts)

    n = args.events
    print(f"machine: {machine()}; {n:,} add_external_contact events, {args.clients} clients, "
          f"{args.web_workers} gunicorn workers, PostgreSQL")  # fmt: skip
    print(f"callbacks through HTTP:      {n / http_seconds:8,.0f} events/s  ({http_seconds:.2f} s)")
    print(f"reference, login page GETs:  {n / get_seconds:8,.0f} req/s     ({get_seconds:.2f} s)"
          f"  → callbacks at {get_seconds / http_seconds:.2f}× the plain page rate")  # fmt: skip
    print(f"reference, decryption alone: {n / crypto_seconds:8,.0f} events/s  ({crypto_seconds:.2f} s, 1 process)")
    print(
        f"checked: {customers:,} customers, {relations:,} relations, {receipts:,} receipts; a replay of 200 stored nothing new"
    )


if __name__ == "__main__":
    main()
