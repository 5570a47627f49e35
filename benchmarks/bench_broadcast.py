"""A broadcast at scale: audience → outbox rows → compliance gate → sandbox SMS channel.

    .venv/bin/python benchmarks/bench_broadcast.py --customers 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/bench_broadcast [--workers 1 2] [--repeat 2]
    .venv/bin/python benchmarks/bench_broadcast.py --customers 2000 --database-url sqlite:////tmp/bench_bc.sqlite3

THE DATABASE NAMED BY ``--database-url`` IS DROPPED AND RECREATED (SQLite: the file is deleted).

One workspace (Asia/Shanghai) is filled set-based in SQL (not timed): N customers in 10 stores with
30 staff, all carrying the tag 会员 (the audience), phone identities (1 % have none), SMS marketing
consent (10 % never granted, 2 % revoked), 5 % opted out, and marketing already sent today or this
week so caps bite: 4 % got an SMS today (SMS cap 1/day), 4 % got two e-mails today (cap 2/day across
channels), 2 % got five e-mails earlier this week (cap 5/week). One sandbox SMS account at
100,000 messages/s; a broadcast to the tag with a 10 % holdout and one template that uses the
customer's name, store and staff and a tracked link.

Per run (the outbox is emptied between runs; the clock is pinned to 2026-11-23 12:00 local and
moves on with real time, so quiet hours and "today" are the same in every run):

(a) ``broadcasts.send`` (one INSERT ... SELECT: audience → outbox rows, holdout assigned);
(b) dispatch until nothing is claimable: ``dispatch.run_once`` in a loop, in 1 process, and in 2
    processes sharing the work through ``FOR UPDATE SKIP LOCKED``;
(c) end to end = (a) + (b).

messages/s = rows decided (delivered + suppressed) / seconds. The reference is a raw bulk insert of
the same number of rows (body, address, states) into an unindexed table of the outbox's shape.
After each run: every non-holdout row is delivered or suppressed with a reason, the sandbox
holds exactly the delivered rows, nobody is over a cap, and the delivered count equals an
independent count from the generated data. A last run at 22:30 (outside the 08:00-21:00 window)
shows what night does: every marketing message that passes consent is held.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PG_ADMIN_URL, machine, migrate, setup_django

TZ = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=TZ)
NIGHT = dt.datetime(2026, 11, 23, 22, 30, tzinfo=TZ)
N_STORES = 10
STAFF_PER_STORE = 3
DAILY_CAP, WEEKLY_CAP, SMS_DAY_CAP, SMS_WEEK_CAP = 2, 5, 1, 3
HOLDOUT_PERCENT = 10
TEMPLATE = (
    "{{ customer.name }}您好，{{ store.name }}的{{ staff.name }}为您留了冬季新品，点击 https://shop.example.com/w 查看"
)
# Who is who, by customer id (the same rules feed the independent check of the delivered count).
# ``%%`` is SQL's modulo once the driver has substituted the parameters.
NO_PHONE = "id %% 100 = 7"
NO_CONSENT = "id %% 10 = 0"
REVOKED = "id %% 50 = 1"
OPTED_OUT = "id %% 20 = 3"
SMS_TODAY = "id %% 25 = 4"  # one SMS today → SMS cap (1/day)
EMAIL_TODAY_2 = "id %% 25 = 9"  # two e-mails today → cross-channel cap (2/day)
EMAIL_WEEK_5 = "id %% 50 = 17"  # five e-mails on earlier days this week → weekly cap (5)


# -- database ---------------------------------------------------------------------------------------


def fresh_database(url: str) -> str:
    """Drop and create the database of ``url`` (PostgreSQL) or delete the file (SQLite)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return url
    import psycopg

    name = url.rsplit("/", 1)[1]
    if name in ("test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop database '{name}'")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url


def series(pg: bool, n: int) -> str:
    """Rows g = 1..n."""
    if pg:
        return f"(SELECT g FROM generate_series(1, {int(n)}) AS g) s"
    return f"(WITH RECURSIVE t(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM t WHERE g < {int(n)}) SELECT g FROM t) s"


def text(pg: bool, expr: str) -> str:
    return f"({expr})::text" if pg else f"CAST({expr} AS TEXT)"


def table_indexes(cursor, pg: bool, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's plain indexes (not those backing constraints)."""
    if pg:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)",
            [table],
        )
    else:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
        )
    return list(cursor.fetchall())


def populate(n: int) -> dict:
    """Fill a workspace; returns ids of what the runs need. Not timed."""
    from django.db import connection, transaction

    from siyu.channels.services import create_account, update_compliance_settings
    from siyu.core.sql import adapt
    from siyu.org.models import OrgUnit, Staff
    from siyu.org.services import create_org_unit, create_workspace
    from siyu.tags.models import Tag, TagGroup

    pg = connection.vendor == "postgresql"
    workspace = create_workspace(slug="bench-bc", name="Bench 群发")
    ws = workspace.pk
    hq = OrgUnit.objects.get(workspace=workspace, kind=OrgUnit.Kind.HQ)
    stores, staff = [], []
    for k in range(N_STORES):
        store = create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.STORE, name=f"门店{k}", code=f"S{k}")
        stores.append(store.pk)
        for j in range(STAFF_PER_STORE):
            staff.append(Staff.objects.create(workspace=workspace, org_unit=store, name=f"导购{k}-{j}").pk)
    tag = Tag.objects.create(
        workspace=workspace, group=TagGroup.objects.create(workspace=workspace, name="会员"), name="会员"
    )
    update_compliance_settings(
        workspace,
        daily_cap=DAILY_CAP,
        weekly_cap=WEEKLY_CAP,
        channel_caps={"sms": {"day": SMS_DAY_CAP, "week": SMS_WEEK_CAP}},
    )
    sms = create_account(workspace, name="沙箱短信", provider="sandbox", medium="sms", rate_per_second=100_000)
    email = create_account(workspace, name="沙箱邮件", provider="sandbox", medium="email", rate_per_second=100_000)
    store_of = "CASE g %% 10 " + " ".join(f"WHEN {k} THEN {s}" for k, s in enumerate(stores)) + " END"
    staff_of = "CASE g %% 30 " + " ".join(f"WHEN {k} THEN {s}" for k, s in enumerate(staff)) + " END"
    created = adapt(NOON - dt.timedelta(days=30), "datetime")
    today_9 = adapt(NOON.replace(hour=9), "datetime")
    today_10 = adapt(NOON.replace(hour=10), "datetime")
    payload = "'{}'::jsonb" if pg else "'{}'"

    def prior(medium: str, account: int, condition: str, key: str, at) -> tuple[str, list]:
        return (
            "INSERT INTO messaging_outboundmessage (workspace_id, customer_id, account_id, medium, purpose, "
            "idempotency_key, to_address, subject, body, payload, state, reason, quiet_policy, attempts, claimed_by, "
            "gated_at, provider_ref, error_code, error_message, created_at, sent_at, delivered_at, updated_at) "
            f"SELECT %s, id, %s, '{medium}', 'marketing', 'prior:{key}:' || {text(pg, 'id')}, 'x', '', '早前的营销', "
            f"{payload}, 'delivered', '', 'hold', 1, '', %s, '', '', '', %s, %s, %s, %s "
            f"FROM customers_customer WHERE workspace_id = %s AND {condition}",
            [ws, account, at, at, at, at, at, ws],
        )

    first_week_day = [adapt(NOON - dt.timedelta(days=d), "datetime") for d in range(1, 6)]
    statements: list[tuple[str, str, list]] = [
        (
            "customers_customer",
            "INSERT INTO customers_customer (workspace_id, name, gender, province, city, attributes, source_channel, "
            "source_detail, store_id, owner_staff_id, first_seen_at, last_seen_at, created_at, updated_at) "
            f"SELECT %s, '客户' || {text(pg, 'g')}, 'f', '', '上海', {payload}, 'api', '', "
            f"CASE WHEN g %% 10 <> 9 THEN {store_of} END, CASE WHEN g %% 10 <> 9 THEN {staff_of} END, "
            f"%s, %s, %s, %s FROM {series(pg, n)}",
            [ws, created, created, created, created],
        ),
        (
            "customers_identity",
            "INSERT INTO customers_identity (workspace_id, customer_id, type, app_id, value, source, created_at) "
            f"SELECT %s, id, 'phone', '', '1' || {text(pg, '3000000000 + id')}, "
            f"'bench', %s FROM customers_customer WHERE workspace_id = %s AND NOT ({NO_PHONE})",
            [ws, created, ws],
        ),
        (
            "customers_consent",
            "INSERT INTO customers_consent (workspace_id, customer_id, channel, purpose, status, source, updated_at) "
            f"SELECT %s, id, 'sms', 'marketing', CASE WHEN {REVOKED} THEN 'revoked' ELSE 'granted' END, 'bench', %s "
            f"FROM customers_customer WHERE workspace_id = %s AND NOT ({NO_CONSENT})",
            [ws, created, ws],
        ),
        (
            "channels_optout",
            "INSERT INTO channels_optout (workspace_id, customer_id, source, detail, created_at) "
            f"SELECT %s, id, 'sms_reply', '', %s FROM customers_customer WHERE workspace_id = %s AND {OPTED_OUT}",
            [ws, created, ws],
        ),
        (
            "tags_customertag",
            "INSERT INTO tags_customertag (workspace_id, customer_id, tag_id, source, source_ref, created_at) "
            "SELECT %s, id, %s, 'manual', '', %s FROM customers_customer WHERE workspace_id = %s",
            [ws, tag.pk, created, ws],
        ),
        ("messaging_outboundmessage", *prior("sms", sms.pk, SMS_TODAY, "sms", today_9)),
        ("messaging_outboundmessage", *prior("email", email.pk, EMAIL_TODAY_2, "e1", today_9)),
        ("messaging_outboundmessage", *prior("email", email.pk, EMAIL_TODAY_2, "e2", today_10)),
    ]
    for k, at in enumerate(first_week_day):
        statements.append(("messaging_outboundmessage", *prior("email", email.pk, EMAIL_WEEK_5, f"w{k}", at)))
    big = {"customers_customer", "customers_identity", "customers_consent", "tags_customertag"}
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            # Rows are consistent by construction: skip the per-row foreign-key triggers.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SET LOCAL synchronous_commit = off")
        dropped = []
        for table in sorted(big):  # plain indexes are rebuilt once at the end
            for name, ddl in table_indexes(cursor, pg, table):
                cursor.execute(f'DROP INDEX "{name}"')
                dropped.append(ddl)
        for table, sql, params in statements:
            started = time.perf_counter()
            cursor.execute(sql, params)
            print(f"  {table}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for ddl in dropped:
            cursor.execute(ddl)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if pg else "ANALYZE")
    return {"workspace": ws, "tag": tag.pk, "account": sms.pk}


def existing() -> dict | None:
    """The ids ``populate`` returned, when an earlier run filled this database (``--reuse``)."""
    from siyu.channels.models import ChannelAccount
    from siyu.org.models import Workspace
    from siyu.tags.models import Tag

    workspace = Workspace.objects.filter(slug="bench-bc").first()
    if workspace is None:
        return None
    tag = Tag.objects.get(workspace=workspace, name="会员")
    account = ChannelAccount.objects.get(workspace=workspace, medium="sms")
    return {"workspace": workspace.pk, "tag": tag.pk, "account": account.pk}


# -- one run ----------------------------------------------------------------------------------------


def pin_clock(start: dt.datetime) -> None:
    """siyu's clock starts at ``start`` and moves on with real time (in this process and its forks)."""
    from siyu.core import clock

    origin = time.monotonic()
    clock.now = lambda: start + dt.timedelta(seconds=time.monotonic() - origin)


def reset_outbox() -> None:
    """Forget earlier runs' broadcasts (the prior messages stay)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM messaging_outboundmessage WHERE broadcast_id IS NOT NULL")
        cursor.execute("DELETE FROM channels_sandboxmessage")
        cursor.execute("DELETE FROM messaging_broadcastvariant")
        cursor.execute("DELETE FROM messaging_broadcast")
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE messaging_outboundmessage")
            cursor.execute("VACUUM ANALYZE channels_sandboxmessage")


def _drain(worker: str, batch: int, start: dt.datetime | None, out) -> None:
    """Worker body: run_once until nothing is claimable (in a forked process when ``out`` is a queue)."""
    from django.db import connections

    from siyu.messaging import dispatch

    if out is not None:
        connections.close_all()  # never share the parent's socket
    if start is not None:
        pin_clock(start)
    from siyu.core import clock

    totals = dispatch.Stats()
    rounds = 0
    while True:
        stats = dispatch.run_once(worker, now=clock.now(), batch=batch)
        totals.add(stats)
        rounds += 1
        if stats.claimed == 0:
            break
    result = (totals.claimed, totals.delivered, totals.suppressed, totals.held, rounds)
    if out is not None:
        connections.close_all()
        out.put(result)
    return result


def dispatch_all(workers: int, batch: int, start: dt.datetime) -> tuple[int, int, int, int]:
    from django.db import connections

    if workers == 1:
        return _drain("bench-w0", batch, None, None)
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(f"bench-w{k}", batch, start, queue)) for k in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"worker exited with {p.exitcode}")
    return tuple(sum(r[k] for r in results) for k in range(5))


def make_broadcast(ids: dict):
    from siyu.messaging import broadcasts
    from siyu.org.models import Workspace

    workspace = Workspace.objects.get(pk=ids["workspace"])
    return broadcasts.create_broadcast(
        workspace,
        name="冬季新品",
        account_id=ids["account"],
        variants=[broadcasts.VariantIn(label="A", body=TEMPLATE)],
        tags_any=[ids["tag"]],
        holdout_percent=HOLDOUT_PERCENT,
    )


def one_run(ids: dict, *, workers: int, batch: int, start: dt.datetime) -> dict:
    from siyu.core import clock
    from siyu.messaging import broadcasts

    reset_outbox()
    pin_clock(start)
    broadcast = make_broadcast(ids)
    t0 = time.perf_counter()
    broadcasts.send(broadcast, now=clock.now())
    t1 = time.perf_counter()
    claimed, delivered, suppressed, held, rounds = dispatch_all(workers, batch, start + dt.timedelta(seconds=t1 - t0))
    t2 = time.perf_counter()
    broadcast.refresh_from_db()
    return {
        "broadcast": broadcast,
        "materialize": t1 - t0,
        "dispatch": t2 - t1,
        "total": t2 - t0,
        "claimed": claimed,
        "delivered": delivered,
        "suppressed": suppressed,
        "held": held,
        "rounds": rounds,
    }


# -- checks -----------------------------------------------------------------------------------------


def verify(ids: dict, broadcast, *, night: bool) -> list[str]:
    """Problems found (empty = all good)."""
    from django.db import connection

    from siyu.channels import gate
    from siyu.core.sql import adapt

    problems = []
    b = broadcast.pk
    day_start, _week = gate.cap_bounds(gate.GatePolicy("Asia/Shanghai", DAILY_CAP, WEEKLY_CAP), NOON)
    counted = "('sending', 'sent', 'delivered', 'unknown')"
    with connection.cursor() as cursor:

        def one(sql: str, params=()) -> int:
            cursor.execute(sql, list(params))
            return cursor.fetchone()[0]

        open_states = "('queued', 'sending')" if night else "('queued', 'held', 'sending')"
        if n := one(
            f"SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s AND state IN {open_states}", [b]
        ):
            problems.append(f"{n} rows still open")
        if n := one(
            "SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s "
            "AND state NOT IN ('delivered', 'suppressed', 'holdout', 'held')",
            [b],
        ):
            problems.append(f"{n} rows in another state (failed?)")
        if n := one(
            "SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s AND state = 'suppressed' "
            "AND reason = ''",
            [b],
        ):
            problems.append(f"{n} suppressed without a reason")
        delivered = one(
            "SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s AND state = 'delivered'", [b]
        )
        sandbox = one("SELECT COUNT(*) FROM channels_sandboxmessage")
        if sandbox != delivered:
            problems.append(f"sandbox holds {sandbox:,} messages, outbox says {delivered:,} delivered")
        over = one(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM messaging_outboundmessage WHERE purpose = 'marketing' "
            f"AND gated_at >= %s AND state IN {counted} GROUP BY customer_id HAVING COUNT(*) > %s) x",
            [adapt(day_start, "datetime"), DAILY_CAP],
        )
        over_sms = one(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM messaging_outboundmessage WHERE purpose = 'marketing' "
            f"AND medium = 'sms' AND gated_at >= %s AND state IN {counted} GROUP BY customer_id HAVING COUNT(*) > %s) x",
            [adapt(day_start, "datetime"), SMS_DAY_CAP],
        )
        if over or over_sms:
            problems.append(f"{over} customers over the daily cap, {over_sms} over the SMS daily cap")
        # Independently, from the generation rules: who may receive it.
        # At night the quiet-hours rule comes before the caps: capped customers are held too.
        may = f"NOT ({NO_PHONE}) AND NOT ({NO_CONSENT}) AND NOT ({REVOKED}) AND NOT ({OPTED_OUT})"
        if not night:
            may += f" AND NOT ({SMS_TODAY}) AND NOT ({EMAIL_TODAY_2}) AND NOT ({EMAIL_WEEK_5})"
        may = may.replace("id %%", "o.customer_id %%")
        expected = one(
            f"SELECT COUNT(*) FROM messaging_outboundmessage o WHERE o.broadcast_id = %s AND o.state <> 'holdout' "
            f"AND {may}",
            [b],
        )
        target_state = "held" if night else "delivered"
        got = one(
            "SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s AND state = %s", [b, target_state]
        )
        if got != expected:
            problems.append(f"{got:,} {target_state}, the generation rules say {expected:,}")
    return problems


# -- reference --------------------------------------------------------------------------------------


def raw_insert(rows: int) -> float:
    """Seconds to bulk-insert ``rows`` rows of the outbox's shape into an unindexed plain table."""
    from django.db import connection, transaction

    pg = connection.vendor == "postgresql"
    body = (
        "'客户' || "
        + text(pg, "g")
        + " || '您好，门店0的导购0-0为您留了冬季新品，点击 https://x.example/l/abc 查看拒收请回复R'"
    )
    now = "now()" if pg else "datetime('now')"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_outbox")
        if pg:
            cursor.execute("CREATE TABLE bench_raw_outbox (LIKE messaging_outboundmessage INCLUDING DEFAULTS)")
        else:
            cursor.execute("CREATE TABLE bench_raw_outbox AS SELECT * FROM messaging_outboundmessage WHERE 0")
    payload = "'{}'::jsonb" if pg else "'{}'"
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_raw_outbox (id, workspace_id, customer_id, account_id, medium, purpose, idempotency_key, "
            "to_address, subject, body, payload, state, reason, quiet_policy, attempts, claimed_by, gated_at, "
            "provider_ref, error_code, error_message, created_at, sent_at, delivered_at, updated_at) "
            f"SELECT g, 1, g, 1, 'sms', 'marketing', 'bc:1:' || {text(pg, 'g')}, "
            f"'1' || {text(pg, '3000000000 + g')}, '', {body}, {payload}, 'delivered', '', 'hold', 1, 'w', {now}, "
            f"'sandbox-' || {text(pg, 'g')}, '', '', {now}, {now}, {now}, {now} FROM {series(pg, rows)}"
        )
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_raw_outbox")
    return seconds


# -- main -------------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:,.0f} (min {min(values):,.0f}, max {max(values):,.0f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_broadcast")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to measure")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5000, help="run_once(batch=...): rows claimed per round")
    parser.add_argument("--reuse", action="store_true", help="keep the database and its data if already filled")
    parser.add_argument("--no-night", action="store_true", help="skip the run at 22:30")
    args = parser.parse_args()

    setup_django(args.database_url if args.reuse else fresh_database(args.database_url))
    migrate()
    from django.db import connection

    from siyu.messaging import broadcasts

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    print(
        f"machine: {machine()} (shared); backend: {connection.vendor} {version}; customers {args.customers:,}; "
        f"batch {args.batch:,}",
        flush=True,
    )
    started = time.perf_counter()
    ids = existing() if args.reuse else None
    if ids is None:
        ids = populate(args.customers)
        print(f"populated in {time.perf_counter() - started:.1f}s", flush=True)
    else:
        print("reusing the data of an earlier run (--reuse)", flush=True)

    runs: dict[int, list[dict]] = {w: [] for w in args.workers}
    failed = False
    for attempt in range(args.repeat):
        for workers in args.workers:
            r = one_run(ids, workers=workers, batch=args.batch, start=NOON)
            decided = r["delivered"] + r["suppressed"]
            problems = verify(ids, r["broadcast"], night=False)
            failed |= bool(problems)
            r["decided"] = decided
            runs[workers].append(r)
            print(
                f"run {attempt + 1}, {workers} worker(s): materialize {r['materialize']:.2f}s "
                f"({r['broadcast'].audience_size:,} rows); dispatch {r['dispatch']:.2f}s in {r['rounds']} run_once "
                f"calls ({r['delivered']:,} delivered, {r['suppressed']:,} suppressed, {r['held']:,} held) = "
                f"{decided / r['dispatch']:,.0f} msg/s; end to end {decided / r['total']:,.0f} msg/s; "
                f"checks: {'OK' if not problems else '; '.join(problems)}",
                flush=True,
            )
    last = runs[args.workers[-1]][-1]
    report = broadcasts.report(last["broadcast"])
    print(
        f"last run's report: audience {report['audience']:,}, holdout {report['holdout']:,}, "
        f"delivered {report['delivered']:,}, suppressed {report['suppressed']}",
        flush=True,
    )
    decided = last["decided"]
    raw = [raw_insert(decided) for _ in range(args.repeat)]
    raw_rate = [decided / s for s in raw]
    print(f"\nraw bulk insert of {decided:,} rows into an unindexed outbox-shaped table: {spread(raw_rate)} rows/s")
    print(f"\n== {args.customers:,} customers; rows decided per run ~{decided:,}; medians over {args.repeat} runs ==")
    raw_med = statistics.median(raw_rate)
    for workers, items in runs.items():
        mat = [r["broadcast"].audience_size / r["materialize"] for r in items]
        disp = [r["decided"] / r["dispatch"] for r in items]
        e2e = [r["decided"] / r["total"] for r in items]
        print(f"{workers} worker(s):")
        print(f"  (a) materialize   : {spread(mat)} rows/s")
        print(
            f"  (b) dispatch      : {spread(disp)} msg/s, ratio to raw insert {statistics.median(disp) / raw_med:.2f}"
        )
        print(f"  (c) end to end    : {spread(e2e)} msg/s, ratio to raw insert {statistics.median(e2e) / raw_med:.2f}")

    if not args.no_night:
        r = one_run(ids, workers=1, batch=args.batch, start=NIGHT)
        problems = verify(ids, r["broadcast"], night=True)
        failed |= bool(problems)
        decided = r["held"] + r["suppressed"]
        print(
            f"\nnight run (22:30, 1 worker): materialize {r['materialize']:.2f}s; dispatch {r['dispatch']:.2f}s: "
            f"{r['delivered']:,} delivered, {r['held']:,} held until 08:00, {r['suppressed']:,} suppressed = "
            f"{decided / r['dispatch']:,.0f} decisions/s; checks: {'OK' if not problems else '; '.join(problems)}"
        )
    connection.close()
    if failed:
        raise SystemExit("correctness checks FAILED")


if __name__ == "__main__":
    main()
