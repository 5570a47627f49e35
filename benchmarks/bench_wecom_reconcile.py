"""Reconciliation of N WeCom external contacts against the local fake WeCom server: time, and API
calls used versus the minimum the API allows.

    .venv/bin/python benchmarks/bench_wecom_reconcile.py --contacts 100000 --staff 200
    .venv/bin/python benchmarks/bench_wecom_reconcile.py --contacts 20000 --database-url sqlite:////tmp/rec.sqlite3

Without ``--database-url`` THE DATABASE ``bench_wecom_reconcile`` IS DROPPED AND RECREATED. With
one, it is migrated and a new workspace is created in it (its other data is left alone).

The fake (``tests.fakes.wecom.BulkFakeWecom``, in this process, on 127.0.0.1) holds N contacts
spread over ``--staff`` members (every 10th also followed by a second member, so relations ≈
1.1 N; every 3rd tagged with one of 10 corp tags; every 5th with a unionid) and ``--groups``
customer groups of 20 members. Three runs through ``reconcile`` with the workspace's real client
(token cache, buckets, the API call log):

1. initial import into the empty workspace;
2. again with no change (must fix nothing);
3. after 1% of contacts were added, 1% of relations removed and 1% re-tagged in WeCom
   (must fix exactly those).

Reported per run: seconds, contacts/s, API calls vs the minimum, and the share of the time spent
waiting for the fake's answers (from the API call log), which on this machine shares the CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import fresh_pg_database, machine, migrate, setup_django

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TAGS = [f"etBENCH{n:02d}" for n in range(10)]


def seed_groups(fake, groups: int, staff: int) -> None:
    from tests.fakes.wecom import GroupChat, GroupMember

    for g in range(groups):
        owner = f"staff{g % staff:04d}"
        members = [GroupMember(owner, type=1, join_scene=1)]
        members += [
            GroupMember(f"wmB{(g * 19 + m) % max(len(fake.contacts), 1):08d}", join_scene=3, invitor=owner)
            for m in range(19)
        ]
        fake.add_group_chat(GroupChat(f"wrBENCH{g:05d}", f"群{g}", owner=owner, members=members))


def change_one_percent(fake, contacts: int) -> dict[str, int]:
    """Add, remove and re-tag 1% each, as operations made through the API (no callbacks)."""
    from tests.fakes.wecom import Contact, Follow

    step = 100
    added = removed = retagged = untagged = 0
    for n in range(0, contacts, step):
        ext = f"wmNEW{n:08d}"
        fake.contacts[ext] = Contact(ext, f"新客{n}", [Follow(f"staff{n % 7:04d}", createtime=1_790_000_000 + n)])
        added += 1
    for n in range(1, contacts, step):
        contact = fake.contacts[f"wmB{n:08d}"]
        untagged += bool(contact.follows[0].tag_ids)
        contact.follows = contact.follows[1:]  # its first member deleted it
        removed += 1
    for n in range(3, contacts, step * 3):  # every 3rd contact carries a tag; move n=3, 303, ...
        follow = fake.contacts[f"wmB{n:08d}"].follows[0]
        follow.tag_ids = [TAGS[(TAGS.index(follow.tag_ids[0]) + 1) % len(TAGS)]] if follow.tag_ids else [TAGS[0]]
        retagged += 1
    fake.reindex()
    return {"added": added, "removed": removed, "retagged": retagged, "untagged": untagged}


def run_once(workspace, label: str, contacts: int) -> dict:
    from django.db.models import Sum

    from siyu.wecom.models import ApiCallLog
    from siyu.wecom.sync import reconcile

    since = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    report = reconcile(workspace)
    seconds = time.perf_counter() - start
    waited = ApiCallLog.objects.filter(workspace=workspace, at__gte=since).aggregate(ms=Sum("duration_ms"))["ms"] or 0
    print(
        f"{label:<24} {seconds:8.1f} s  {contacts / seconds:9.0f} contacts/s  "
        f"API calls {report.api_calls} (minimum {report.api_calls_min}, tokens {report.token_calls})  "
        f"waiting for the fake {waited / 1000:.1f} s ({100 * waited / 1000 / seconds:.0f}%)  fixes {report.fixes}"
    )
    if report.status != "ok":
        raise SystemExit(f"run {label} ended {report.status}: {report.error}")
    return {"seconds": seconds, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    url = args.database_url or fresh_pg_database("bench_wecom_reconcile")
    setup_django(url)
    migrate()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    from django.db import connection
    from tests.fakes.wecom import BulkFakeWecom

    from siyu.customers.models import StaffRelation
    from siyu.org.services import create_workspace
    from siyu.tags.models import CustomerTag
    from siyu.wecom.services import configure_wecom

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{machine()}, {connection.vendor}, commit {commit}")
    print(f"{args.contacts} contacts, {args.staff} members, {args.groups} groups of 20")
    with BulkFakeWecom() as fake:
        start = time.perf_counter()
        fake.tag_groups = [
            {"group_id": "etBENCHGROUP", "group_name": "基准", "order": 1,
             "tag": [{"id": t, "name": f"标签{n}", "order": n} for n, t in enumerate(TAGS)]},
        ]  # fmt: skip
        fake.seed_bulk(args.contacts, args.staff, tag_ids=TAGS)
        seed_groups(fake, args.groups, args.staff)
        relations = sum(len(c.follows) for c in fake.contacts.values())
        print(f"seeded the fake in {time.perf_counter() - start:.1f} s ({relations} relations)")

        workspace = create_workspace(slug=f"bench-{int(time.time())}", name="Reconcile bench")
        configure_wecom(
            workspace,
            corp_id=fake.corp_id,
            agent_id="1000002",
            secret=fake.secret,
            token="benchToken",
            aes_key=AES_KEY,
            base_url=fake.url,
        )
        first = run_once(workspace, "initial import", args.contacts)
        second = run_once(workspace, "again, no change", args.contacts)
        assert second["report"].fixes == 0, second["report"].lines()
        changed = change_one_percent(fake, args.contacts)
        third = run_once(workspace, "after 1% changes", args.contacts + changed["added"])
        counts = third["report"].counts
        assert counts["customers_created"] == changed["added"], counts
        assert counts["relations_deleted"] == changed["removed"], counts
        assert counts["tags_added"] == changed["retagged"], counts
        assert counts["tags_removed"] == changed["retagged"] + changed["untagged"], counts

        stored = StaffRelation.objects.filter(workspace=workspace, status="active").count()
        wanted = sum(len(c.follows) for c in fake.contacts.values())
        tags = CustomerTag.objects.filter(workspace=workspace, source="wecom").count()
        print(f"check: active relations {stored} = WeCom's {wanted}; wecom tags {tags}; changes {changed}")
        assert stored == wanted
        print("first report:")
        for line in first["report"].lines():
            print("  " + line)


if __name__ == "__main__":
    main()
