"""The compliance gate on a 10,000-message batch, against per-message ORM lookups.

    .venv/bin/python benchmarks/bench_gate.py --customers 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/bench_gate [--repeat 7]
    .venv/bin/python benchmarks/bench_gate.py --customers 2000 --batch 500 --database-url sqlite:////tmp/bench_gate.sqlite3

THE DATABASE NAMED BY ``--database-url`` IS DROPPED AND RECREATED (SQLite: the file is deleted).

The data is ``bench_broadcast.populate``'s (consent, opt-outs, missing phones, marketing already sent
today and this week so every gate rule fires). ``--batch`` customers drawn at random each get one
queued marketing SMS; then, median of ``--repeat`` runs after a warm-up:

1. ``gate.evaluate`` over the batch, its candidates named by id as ``dispatch.claim`` names them;
2. ``dispatch.claim`` for the same batch (row locks, gate, decisions written), rolled back each time;
3. the naive reference: a Python loop doing the same checks with per-message ORM queries (customer,
   newest phone, opt-out, revoked / granted consent, four cap counts) for a sample of 500 messages,
   EXTRAPOLATED linearly to the batch. Its decisions must equal the gate's for those 500.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, migrate, setup_django
from bench_broadcast import NOON, fresh_database, pin_clock, populate

NAIVE_SAMPLE = 500


def naive_reason(message, policy, ws: int, now: dt.datetime) -> str:
    """The gate's rules for one message, one ORM query at a time."""
    from siyu.channels import gate
    from siyu.channels.models import OptOut
    from siyu.customers.models import Consent, Customer, Identity
    from siyu.messaging.models import OutboundMessage

    if not Customer.objects.filter(pk=message.customer_id).exists():
        return "no_customer"
    address = message.to_address or (
        Identity.objects.filter(customer_id=message.customer_id, type=gate.ADDRESS_TYPES[message.medium])
        .order_by("-id")
        .values_list("value", flat=True)
        .first()
    )
    if not address:
        return "no_address"
    if OptOut.objects.filter(workspace_id=ws, customer_id=message.customer_id).exists():
        return "opted_out"
    consents = Consent.objects.filter(customer_id=message.customer_id, channel=message.medium, purpose="marketing")
    if consents.filter(status="revoked").exists():
        return "consent_revoked"
    if not consents.filter(status="granted").exists():
        return "no_consent"
    if not gate.in_window(policy, now):
        return "quiet_hours"
    day_start, week_start = gate.cap_bounds(policy, now)
    sent = OutboundMessage.objects.filter(
        customer_id=message.customer_id, purpose="marketing", state__in=gate.COUNTED_STATES
    ).exclude(pk=message.pk)
    medium_sent = sent.filter(medium=message.medium)
    limits = policy.channel_caps.get(message.medium, {})
    if policy.daily_cap and sent.filter(gated_at__gte=day_start).count() + 1 > policy.daily_cap:
        return "cap_day"
    if policy.weekly_cap and sent.filter(gated_at__gte=week_start).count() + 1 > policy.weekly_cap:
        return "cap_week"
    if limits.get("day") and medium_sent.filter(gated_at__gte=day_start).count() + 1 > limits["day"]:
        return "channel_cap_day"
    if limits.get("week") and medium_sent.filter(gated_at__gte=week_start).count() + 1 > limits["week"]:
        return "channel_cap_week"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_gate")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    setup_django(fresh_database(args.database_url))
    migrate()
    from django.db import connection, transaction

    from siyu.channels import gate
    from siyu.channels.models import ChannelAccount
    from siyu.core.sql import adapt, id_list_condition
    from siyu.messaging import dispatch
    from siyu.messaging.models import OutboundMessage

    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version" if pg else "SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    print(
        f"machine: {machine()} (shared); backend: {connection.vendor} {version}; customers {args.customers:,}; "
        f"batch {args.batch:,}",
        flush=True,
    )
    started = time.perf_counter()
    ids = populate(args.customers)
    print(f"populated in {time.perf_counter() - started:.1f}s", flush=True)
    ws, account = ids["workspace"], ChannelAccount.objects.get(pk=ids["account"])
    pin_clock(NOON)
    now = NOON
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_outboundmessage (workspace_id, customer_id, account_id, medium, purpose, "
            "idempotency_key, to_address, subject, body, payload, state, reason, quiet_policy, attempts, claimed_by, "
            "provider_ref, error_code, error_message, created_at, updated_at) "
            "SELECT %s, c.id, %s, 'sms', 'marketing', 'gate:' || "
            + ("c.id::text" if pg else "CAST(c.id AS TEXT)")
            + ", '', '', '{{ customer.name }}您好', "
            + ("'{}'::jsonb" if pg else "'{}'")
            + ", 'queued', '', 'hold', 0, '', '', '', '', %s, %s "
            "FROM (SELECT id FROM customers_customer WHERE workspace_id = %s ORDER BY random() LIMIT %s) c",
            [ws, account.pk, adapt(now, "datetime"), adapt(now, "datetime"), ws, args.batch],
        )
        cursor.execute("ANALYZE messaging_outboundmessage" if pg else "ANALYZE")
        cursor.execute("SELECT id FROM messaging_outboundmessage WHERE state = 'queued' ORDER BY id")
        batch = [row[0] for row in cursor.fetchall()]
    policy = dispatch._policy(ws)
    cond_o, params_o = id_list_condition("o.id", batch)
    cond_g, params_g = id_list_condition("g.id", batch)

    def evaluate():
        return gate.evaluate(
            policy,
            workspace_id=ws,
            candidates_sql=(
                "SELECT o.id, o.customer_id, o.medium, o.purpose, o.to_address "
                f"FROM messaging_outboundmessage o WHERE {cond_o}"
            ),
            candidates_params=params_o,
            exclude_sql=cond_g,
            exclude_params=params_g,
            now=now,
        )

    def claim():
        with transaction.atomic():
            _claimed, stats = dispatch.claim(account, "bench-gate", args.batch, now)
            transaction.set_rollback(True)
        return stats

    def timed(fn) -> tuple[list[float], object]:
        result = fn()  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        return times, result

    def ms(times: list[float]) -> str:
        values = [t * 1000 for t in times]
        return f"{statistics.median(values):,.0f} ms (min {min(values):,.0f}, max {max(values):,.0f}, n={len(values)})"

    eval_times, decisions = timed(evaluate)
    by_reason: dict[str, int] = {}
    for _mid, _cid, _address, reason in decisions:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    print(f"decisions: {dict(sorted(by_reason.items(), key=lambda kv: -kv[1]))}", flush=True)
    claim_times, stats = timed(claim)
    if stats.claimed != len(batch):
        raise SystemExit(f"claim picked {stats.claimed} of {len(batch)}")

    sample_ids = batch[:: max(1, len(batch) // NAIVE_SAMPLE)][:NAIVE_SAMPLE]
    decided = {mid: reason for mid, _cid, _address, reason in decisions}
    naive_times = []
    disagree = 0
    for _attempt in range(2):
        t0 = time.perf_counter()
        sample = list(OutboundMessage.objects.filter(pk__in=sample_ids))
        ws_policy = dispatch._policy(ws)
        naive = {m.pk: naive_reason(m, ws_policy, ws, now) for m in sample}
        naive_times.append(time.perf_counter() - t0)
        disagree = sum(1 for mid, reason in naive.items() if decided[mid] != reason)
    naive_ms = statistics.median(naive_times) * 1000 * len(batch) / len(sample_ids)
    gate_ms = statistics.median(eval_times) * 1000
    print(f"\n== gate on {len(batch):,} queued marketing SMS, {args.customers:,} customers ({connection.vendor}) ==")
    print(f"gate.evaluate (one SQL statement)         : {ms(eval_times)}")
    print(f"dispatch.claim (lock + gate + write)      : {ms(claim_times)}")
    print(
        f"naive per-message ORM, {len(sample_ids)} sampled     : {statistics.median(naive_times) * 1000:,.0f} ms "
        f"(runs {', '.join(f'{t * 1000:,.0f}' for t in naive_times)}) → EXTRAPOLATED to {len(batch):,}: "
        f"{naive_ms:,.0f} ms; gate is {naive_ms / gate_ms:.0f}× faster"
    )
    print(f"naive decisions equal the gate's for {len(sample_ids) - disagree} of {len(sample_ids)} sampled messages")
    connection.close()
    if disagree:
        raise SystemExit("the gate and the naive reference DISAGREE")


if __name__ == "__main__":
    main()
