"""The callback inbox applying a burst of stored events: set-based batches (``siyu.wecom.batch_apply``)
against the per-event path (``services.handle_event`` per receipt), same run, same data shape,
on PostgreSQL, in one process.

    .venv/bin/python benchmarks/bench_wecom_inbox.py [--events 20000] [--per-event-events 2000]
        [--database h6]

THE DATABASE (default ``h6``) IS DROPPED AND RECREATED.

Setup (not timed): two identical workspaces (50 staff, 4 stores, channel codes with tags and
welcome texts, 2,000 known customers). One event list is generated: 80 % WeCom adds (a new
contact each, a third of them through a channel code ``state`` with a welcome code, 5 % half
adds, 10 % of the adds by existing customers), 8 % deletes of contacts added earlier in the
burst (they wait for their add: per-subject order), 12 % Official Account subscribes (half of
them through a parametric QR code). The receipts are inserted as the endpoint inserts them.

Timed: ``inbox.process_all()`` from the first claim until nothing is due, including the welcome
tasks queued on commit (``django_tasks_db``, the production backend):

- batched: all ``--events`` receipts, ``--batch`` (default ``inbox.BATCH``, 1,000) a round;
- per event: the first ``--per-event-events`` of the same list (the per-event path takes
  minutes for 20,000), with batching switched off (``BATCH_MIN`` above any claim).

Prints events/s and adds/s for both, the ratio, and the batched rounds' durations: a round's
welcome messages are queued when it commits, so its duration bounds how long an add waits.
Afterwards both workspaces are checked to hold one relation per applied add that was not deleted
and no pending receipt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import fresh_pg_database, machine, migrate, setup_django

STAFF = 50
OA_APP = "wxbenchinbox00001"
CORP = "wwbenchinbox00001"
BASE = 1_790_000_000


def build_workspace(slug: str):
    from siyu.acquisition.models import ChannelCode
    from siyu.customers.rules import normalize_identity
    from siyu.customers.services import Entry, place_entries
    from siyu.org.models import OrgUnit, Staff
    from siyu.org.services import create_org_unit, create_workspace
    from siyu.tags.models import Tag, TagGroup

    workspace = create_workspace(slug=slug, name="Bench 美妆")
    hq = OrgUnit.objects.get(workspace=workspace, kind=OrgUnit.Kind.HQ)
    stores = [
        create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.STORE, name=f"门店{n}", code=f"S{n:02d}")
        for n in range(4)
    ]
    Staff.objects.bulk_create(
        Staff(workspace=workspace, org_unit=stores[n % 4], name=f"员工{n}", wecom_userid=f"staff{n:03d}")
        for n in range(STAFF)
    )
    group = TagGroup.objects.create(workspace=workspace, name="渠道")
    tags = [Tag.objects.create(workspace=workspace, group=group, name=f"渠道{n}") for n in range(4)]
    now = dt.datetime.now(dt.UTC)
    for n in range(8):
        code = ChannelCode.objects.create(
            workspace=workspace,
            name=f"活码{n}",
            kind="oa_qr" if n >= 6 else ("store" if n % 2 else "staff"),
            state=f"code-{n}",
            store=stores[n % 4] if n < 6 else None,
            welcome_text=""
            if n == 5
            else "{{ customer.name or '您' }}好，我是{{ staff.name }}，欢迎光临{{ store.name }}",
            created_at=now,
            updated_at=now,
        )
        code.tags.set(tags[: 1 + n % 3])
    entries = [
        Entry(
            index=n, keys=[normalize_identity("wecom_external_userid", f"wmOLD{n:05d}")], profile={"name": f"老客{n}"}
        )
        for n in range(2000)
    ]
    place_entries(workspace, entries, source="import")
    return workspace


def make_events(count: int, seed: int = 7) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out: list[tuple[str, dict]] = []
    added: list[tuple[str, str]] = []
    for n in range(count):
        at = str(BASE + n // 50)
        roll = rng.random()
        if roll < 0.08 and added:
            userid, external = added[rng.randrange(len(added))]
            change = rng.choice(["del_external_contact", "del_follow_user"])
            payload = {"Event": "change_external_contact", "ChangeType": change, "UserID": userid}
            out.append(("wecom", {**payload, "ExternalUserID": external, "CreateTime": at}))
        elif roll < 0.20:
            state = f"code-{rng.choice([6, 7])}" if rng.random() < 0.5 else ""
            payload = {"FromUserName": f"oBENCH{n:06d}", "CreateTime": at, "MsgType": "event", "Event": "subscribe"}
            out.append(("oa", {**payload, "EventKey": f"qrscene_{state}" if state else ""}))
        else:
            userid = f"staff{rng.randrange(STAFF):03d}"
            external = f"wmOLD{rng.randrange(2000):05d}" if rng.random() < 0.1 else f"wmNEW{n:06d}"
            state = f"code-{rng.randrange(6)}" if rng.random() < 0.33 else ""
            payload = {
                "Event": "change_external_contact",
                "ChangeType": "add_half_external_contact" if rng.random() < 0.05 else "add_external_contact",
                "UserID": userid,
                "ExternalUserID": external,
                "State": state,
                "WelcomeCode": f"WC{n}" if state else "",
                "CreateTime": at,
            }
            out.append(("wecom", payload))
            added.append((userid, external))
    return out


def store(workspace, events: list[tuple[str, dict]]) -> None:
    from django.db import connection, transaction

    from siyu.wecom.services import Endpoint, store_receipt

    endpoints = {"wecom": Endpoint(workspace, 0, "t", CORP, None), "oa": Endpoint(workspace, 0, "t", OA_APP, None)}
    with transaction.atomic():
        for source, payload in events:
            store_receipt(endpoints[source], source, payload)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run(label: str, workspace, events, *, batched: bool, limit: int) -> dict:
    from django.db import connection

    from siyu.wecom import inbox

    store(workspace, events)
    rounds: list[float] = []
    real = inbox.process_pending
    inbox.BATCH_MIN = 8 if batched else 10**9

    def timed_round(limit: int = limit):
        start = time.perf_counter()
        stats = real(limit)
        rounds.append(time.perf_counter() - start)
        return stats

    inbox.process_pending = timed_round
    try:
        start = time.perf_counter()
        stats = inbox.process_all(limit)
        seconds = time.perf_counter() - start
    finally:
        inbox.process_pending = real
    adds = sum(1 for source, p in events if source == "wecom" and p["ChangeType"].startswith("add"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM wecom_callbackreceipt WHERE workspace_id = %s AND processed_at IS NULL",
            [workspace.pk],
        )
        pending = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM django_tasks_database_dbtaskresult")
        tasks = cursor.fetchone()[0]
    assert pending == 0 and stats.failed == 0 and stats.retrying == 0, (label, pending, stats)
    result = {
        "label": label,
        "events": len(events),
        "processed": stats.processed,
        "adds": adds,
        "seconds": seconds,
        "events_s": len(events) / seconds,
        "adds_s": adds / seconds,
        "rounds": [r for r in rounds if r > 0],
        "tasks_total": tasks,
    }
    print(
        f"{label:10s} {len(events):6d} events ({adds} adds) in {seconds:7.2f} s: "
        f"{result['events_s']:7.0f} events/s, {result['adds_s']:7.0f} adds/s, "
        f"{len(rounds) - 1} rounds; welcome tasks queued so far: {tasks}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-event-events", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=0, help="receipts claimed per round (inbox.BATCH)")
    parser.add_argument("--database", default="h6")
    args = parser.parse_args()
    setup_django(fresh_pg_database(args.database))
    migrate()
    import logging

    logging.getLogger("siyu.wecom.inbox").setLevel(logging.ERROR)
    print(f"bench_wecom_inbox: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}", flush=True)
    events = make_events(args.events)
    per_event_ws, batched_ws = build_workspace("per-event"), build_workspace("batched")
    from siyu.wecom import inbox

    limit = args.batch or inbox.BATCH
    one = run("per event", per_event_ws, events[: args.per_event_events], batched=False, limit=limit)
    many = run("batched", batched_ws, events, batched=True, limit=limit)
    rounds = many["rounds"]
    print(
        f"batched rounds: {len(rounds)}, median {statistics.median(rounds):.2f} s, "
        f"max {max(rounds):.2f} s (an add's welcome is queued when its round commits)"
    )
    print(f"ratio batched / per event: {many['events_s'] / one['events_s']:.1f}x events/s")
    _check(per_event_ws, events[: args.per_event_events])
    _check(batched_ws, events)


def _check(workspace, events) -> None:
    """Every add that no later delete undid left an active relation."""
    from siyu.customers.models import StaffRelation

    state: dict[tuple[str, str], bool] = {}
    for source, payload in events:
        if source == "wecom":
            state[(payload["UserID"], payload["ExternalUserID"])] = payload["ChangeType"].startswith("add")
    active = StaffRelation.objects.filter(workspace=workspace, status="active").count()
    assert active == sum(state.values()), (workspace.slug, active, sum(state.values()))
    from django.db import connection

    with connection.cursor() as cursor:  # one welcome task per credited WeCom add of a code with a text
        cursor.execute(
            "SELECT count(*) FROM acquisition_channelcodeadd a JOIN acquisition_channelcode c ON c.id = a.code_id "
            "WHERE a.workspace_id = %s AND a.staff_id IS NOT NULL AND c.welcome_text <> ''",
            [workspace.pk],
        )
        credited = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE (args_kwargs->'args'->>0)::int = %s",
            [workspace.pk],
        )
        queued = cursor.fetchone()[0]
    assert queued == credited, (workspace.slug, queued, credited)
    print(f"check {workspace.slug}: {active} active relations, as the events say; {queued} welcome tasks queued")


if __name__ == "__main__":
    main()
