"""The inbox's batch path (``siyu.wecom.batch_apply`` + ``acquisition.attribution_batch``) against
the per-event path it replaces in bursts: the same random callback sequence applied both ways,
into two identically set-up workspaces, must leave the same customers, relations, owners,
follows, tags, attribution, timeline and welcome messages. Plus: a failing batch falls back to
the per-event path without losing or repeating anything."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest

from siyu.acquisition.models import ChannelCode, ChannelCodeAdd
from siyu.customers.models import Customer, Identity, OfficialAccountFollow, StaffRelation
from siyu.customers.rules import normalize_identity
from siyu.customers.services import Entry, place_entries
from siyu.org.models import OrgUnit, Staff
from siyu.org.services import create_org_unit, create_workspace
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.tracking.models import Event
from siyu.wecom import batch_apply, inbox, services
from siyu.wecom.models import CallbackReceipt

OA_APP = "wxbatchtestapp0001"
BASE = 1_790_000_000
USERIDS = ["wangxm", "lina", "zhaomin", "newbie1", "newbie2"]  # the last two are unknown to siyu
STATES = ["c-staff", "c-store", "c-rot", "c-oa", "nope", "", ""]
EXTERNALS = [f"wm{n:02d}" for n in range(14)] + ["wmP1", "wmP2"]
OPENIDS = [f"o{n:02d}" for n in range(8)] + ["oP1", "oP3"]


def build(slug: str):
    """A workspace with stores, staff, tags, four channel codes and three known customers (one
    holding a WeCom contact and an OA follower: two subjects, one customer)."""
    workspace = create_workspace(slug=slug, name="Batch 美妆")
    hq = OrgUnit.objects.get(workspace=workspace, kind=OrgUnit.Kind.HQ)
    store_a = create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.STORE, name="南京路店", code="SH01")
    store_b = create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.STORE, name="湖滨店", code="HZ01")
    for userid, unit in (("wangxm", store_a), ("lina", store_a), ("zhaomin", store_b)):
        Staff.objects.create(workspace=workspace, org_unit=unit, name=f"员工{userid}", wecom_userid=userid)
    group = TagGroup.objects.create(workspace=workspace, name="渠道")
    t1 = Tag.objects.create(workspace=workspace, group=group, name="门店码")
    t2 = Tag.objects.create(workspace=workspace, group=group, name="公众号")
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    codes = [
        ("c-staff", "staff", store_a, [t1], "{{ customer.name or '您' }}好，我是{{ staff.name }}"),
        ("c-store", "store", store_b, [t1, t2], ""),
        ("c-rot", "rotating", None, [], "欢迎光临{{ store.name }}"),
        ("c-oa", "oa_qr", None, [t2], "感谢关注"),
    ]
    for state, kind, store, tags, text in codes:
        code = ChannelCode.objects.create(
            workspace=workspace, name=f"码{state}", kind=kind, state=state, store=store, welcome_text=text,
            created_at=now, updated_at=now,
        )  # fmt: skip
        code.tags.set(tags)
    wangxm = Staff.objects.get(workspace=workspace, wecom_userid="wangxm")
    known = [
        (["wmP1", ("oP1", OA_APP)], {"name": "老客甲", "source_channel": "import"}),
        (["wmP2"], {"name": "老客乙", "owner_staff_id": wangxm.pk}),
        ([("oP3", OA_APP)], {"name": "老客丙"}),
    ]
    entries = []
    for n, (ids, profile) in enumerate(known):
        keys = [
            normalize_identity("wechat_openid", i[0], i[1]) if isinstance(i, tuple)
            else normalize_identity("wecom_external_userid", i)
            for i in ids
        ]  # fmt: skip
        entries.append(Entry(index=n, keys=keys, profile=profile))
    place_entries(workspace, entries, source="import")
    return workspace


def random_payloads(seed: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        at = str(BASE + rng.randrange(0, 400))  # out of order on purpose
        roll = rng.random()
        if roll < 0.55:
            change = rng.choice(["add_external_contact"] * 4 + ["add_half_external_contact"])
            payload = {
                "ToUserName": "corp", "MsgType": "event", "Event": "change_external_contact", "ChangeType": change,
                "UserID": rng.choice(USERIDS), "ExternalUserID": rng.choice(EXTERNALS), "State": rng.choice(STATES),
                "WelcomeCode": rng.choice(["WC" + at, ""]), "CreateTime": at,
            }  # fmt: skip
            out.append(("wecom", payload))
        elif roll < 0.7:
            payload = {
                "ToUserName": "corp", "MsgType": "event", "Event": "change_external_contact",
                "ChangeType": rng.choice(["del_external_contact", "del_follow_user"]),
                "UserID": rng.choice(USERIDS), "ExternalUserID": rng.choice(EXTERNALS), "CreateTime": at,
            }  # fmt: skip
            out.append(("wecom", payload))
        else:
            event = rng.choice(["subscribe", "subscribe", "SCAN", "unsubscribe", "CLICK"])
            state = rng.choice(STATES)
            key = {"subscribe": f"qrscene_{state}" if state else "", "SCAN": state}.get(event, "")
            payload = {
                "ToUserName": "gh_batch", "FromUserName": rng.choice(OPENIDS), "CreateTime": at,
                "MsgType": "event", "Event": event, "EventKey": key,
            }  # fmt: skip
            out.append(("oa", payload))
    return out


def store(workspace, payloads) -> None:
    endpoints = {"wecom": services.Endpoint(workspace, 0, "t", "corp", None)}
    endpoints["oa"] = services.Endpoint(workspace, 0, "t", OA_APP, None)
    for source, payload in payloads:
        services.store_receipt(endpoints[source], source, payload)


def snapshot(workspace) -> dict[str, Any]:
    """Everything the events changed, with ids replaced by what names them in both workspaces."""
    ws = workspace.pk
    userid = dict(Staff.objects.filter(workspace_id=ws).values_list("pk", "wecom_userid"))
    state = dict(ChannelCode.objects.filter(workspace_id=ws).values_list("pk", "state"))
    units = dict(OrgUnit.objects.filter(workspace_id=ws).values_list("pk", "name"))
    tag_name = dict(Tag.objects.filter(workspace_id=ws).values_list("pk", "name"))
    signature: dict[int, tuple] = {}
    for cid, type_, value in Identity.objects.filter(workspace_id=ws).values_list("customer_id", "type", "value"):
        signature[cid] = tuple(sorted((*signature.get(cid, ()), f"{type_}:{value}")))

    def plain(properties: dict[str, Any]) -> tuple:
        props = dict(properties)
        if props.get("staff_id"):
            props["staff_id"] = userid[props["staff_id"]]
        if props.get("code_id"):
            props["code_id"] = state[props["code_id"]]
        return tuple(sorted((k, str(v)) for k, v in props.items()))

    customers = {}
    for c in Customer.objects.filter(workspace_id=ws, merged_into__isnull=True):
        attributes = dict(c.attributes or {})
        if "latest_source" in attributes:
            attributes["latest_source"] = plain(attributes["latest_source"])
        customers[signature.get(c.pk)] = (
            c.name, c.source_channel, c.source_detail, userid.get(c.owner_staff_id), units.get(c.store_id),
            tuple(sorted(attributes.items())),
        )  # fmt: skip
    return {
        "staff": sorted(Staff.objects.filter(workspace_id=ws).values_list("wecom_userid", "name", "org_unit__kind")),
        "customers": customers,
        "relations": sorted(
            (
                signature[r.customer_id],
                userid[r.staff_id],
                r.state,
                r.status,
                r.added_at,
                r.status_changed_at,
                r.add_way,
            )
            for r in StaffRelation.objects.filter(workspace_id=ws)
        ),
        "follows": sorted(
            (f.app_id, f.openid, signature[f.customer_id], f.subscribed, f.scene, f.subscribed_at, f.unsubscribed_at)
            for f in OfficialAccountFollow.objects.filter(workspace_id=ws)
        ),
        "tags": sorted(
            (signature[t.customer_id], tag_name[t.tag_id], t.source, t.source_ref.split(":")[0], t.created_at)
            for t in CustomerTag.objects.filter(workspace_id=ws)
        ),
        "adds": sorted(
            (state[a.code_id], signature[a.customer_id], userid.get(a.staff_id) or "", a.at, a.first_touch)
            for a in ChannelCodeAdd.objects.filter(workspace_id=ws)
        ),
        "timeline": Counter(
            (signature[e.customer_id], e.name, plain(e.properties), e.occurred_at, e.source)
            for e in Event.objects.filter(workspace_id=ws)
        ),
        "receipts": sorted(
            CallbackReceipt.objects.filter(workspace_id=ws).values_list("dedupe_key", "processed_at", "failed_at")
        ),
    }


@pytest.fixture
def welcomes(monkeypatch):
    """Welcome messages queued, per workspace (the task itself would call WeCom)."""
    from siyu.wecom import tasks

    sent: dict[int, list] = {}

    class Queue:
        @staticmethod
        def enqueue(workspace_id, body):
            sent.setdefault(workspace_id, []).append(body)

    monkeypatch.setattr(tasks, "send_welcome_task", Queue)
    return sent


@pytest.fixture
def spy(monkeypatch):
    """The batches batch_apply really applied (so a silent fallback cannot pass the test)."""
    calls = {"batched": 0, "handed_back": 0, "failed": 0}
    real = batch_apply.apply

    def apply(workspace, receipts, others=()):
        try:
            back = real(workspace, receipts, others)
        except Exception:
            calls["failed"] += 1
            raise
        calls["batched"] += len(receipts) - len(back)
        calls["handed_back"] += len(back)
        return back

    monkeypatch.setattr(batch_apply, "apply", apply)
    return calls


def run(workspace, payloads, monkeypatch, *, batch_min: int, limit: int, capture) -> None:
    monkeypatch.setattr(inbox, "BATCH_MIN", batch_min)
    store(workspace, payloads)
    with capture(execute=True):
        inbox.process_all(limit=limit)


def without_receipt_times(snap: dict[str, Any]) -> dict[str, Any]:
    return {**snap, "receipts": [(key, done is not None, failed) for key, done, failed in snap["receipts"]]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_leave_exactly_what_the_per_event_path_leaves(
    db, seed, monkeypatch, welcomes, spy, django_capture_on_commit_callbacks
):
    one_by_one, batched = build("per-event"), build("batched")
    payloads = random_payloads(seed, 400)
    run(one_by_one, payloads, monkeypatch, batch_min=10**9, limit=500, capture=django_capture_on_commit_callbacks)
    assert spy["batched"] == 0
    run(batched, payloads, monkeypatch, batch_min=1, limit=60, capture=django_capture_on_commit_callbacks)
    assert spy["failed"] == 0 and spy["batched"] > 300  # the batch path did the work
    expected, got = without_receipt_times(snapshot(one_by_one)), without_receipt_times(snapshot(batched))
    assert got["customers"] and got["adds"] and got["follows"] and got["tags"]  # the scenario covers them
    for part in expected:
        assert got[part] == expected[part], part
    assert all(done for _, done, failed in got["receipts"])
    sent = {ws: sorted(map(repr, bodies)) for ws, bodies in welcomes.items()}
    assert sent[batched.pk] == sent[one_by_one.pk] and sent[batched.pk]


def test_one_customer_reached_through_two_subjects_in_one_batch_keeps_arrival_order(
    db, monkeypatch, welcomes, spy, django_capture_on_commit_callbacks
):
    """wmP1 (WeCom) and oP1 (OA) are one customer: the OA follow is handed back and applied
    after the WeCom add (attribution, latest source and owner as one by one)."""
    workspace = build("two-subjects")
    payloads = [
        ("wecom", {"Event": "change_external_contact", "ChangeType": "add_external_contact", "UserID": "lina",
                   "ExternalUserID": "wmP1", "State": "c-staff", "WelcomeCode": "WC1", "CreateTime": str(BASE)}),
        ("oa", {"FromUserName": "oP1", "CreateTime": str(BASE + 1), "MsgType": "event", "Event": "subscribe",
                "EventKey": "qrscene_c-oa"}),
    ]  # fmt: skip
    run(workspace, payloads, monkeypatch, batch_min=1, limit=500, capture=django_capture_on_commit_callbacks)
    assert (spy["batched"], spy["handed_back"]) == (1, 1)
    adds = ChannelCodeAdd.objects.filter(workspace=workspace).order_by("at")
    assert [(a.code.state, a.first_touch) for a in adds] == [("c-staff", False), ("c-oa", False)]
    customer = Customer.objects.get(identities__value="wmP1")
    assert customer.source_channel == "import" and customer.attributes["latest_source"]["state"] == "c-oa"
    assert customer.owner_staff.wecom_userid == "lina"
    assert [b["welcome_code"] for b in welcomes[workspace.pk]] == ["WC1"]


def test_a_failing_batch_is_applied_one_by_one_and_nothing_is_lost_or_doubled(
    db, monkeypatch, welcomes, django_capture_on_commit_callbacks
):
    """The batch writes, then fails: its savepoint is rolled back and every receipt goes the
    per-event path, where only the bad one fails (and backs off)."""
    workspace = build("fallback")
    payloads = [
        ("wecom", {"Event": "change_external_contact", "ChangeType": "add_external_contact", "UserID": "wangxm",
                   "ExternalUserID": f"wmF{n}", "State": "c-staff", "WelcomeCode": f"WC{n}",
                   "CreateTime": str(BASE + n)})
        for n in range(12)
    ]  # fmt: skip
    real_apply, real_handle = batch_apply.apply, services.handle_event

    def apply_then_fail(workspace, receipts, others=()):
        real_apply(workspace, receipts, others)  # customers, relations, timeline, tags written...
        raise RuntimeError("database hiccup")  # ... then rolled back

    def handle(workspace, event):
        if event.external_user_id == "wmF5":
            raise RuntimeError("this one is bad")
        real_handle(workspace, event)

    monkeypatch.setattr(batch_apply, "apply", apply_then_fail)
    monkeypatch.setattr(services, "handle_event", handle)
    monkeypatch.setattr(inbox, "BATCH_MIN", 1)
    store(workspace, payloads)
    with django_capture_on_commit_callbacks(execute=True):
        stats = inbox.process_pending()
    assert (stats.processed, stats.retrying) == (11, 1)
    assert StaffRelation.objects.filter(workspace=workspace).count() == 11
    assert Event.objects.filter(workspace=workspace, name="wecom_friend_added").count() == 11
    assert ChannelCodeAdd.objects.filter(workspace=workspace).count() == 11
    assert CustomerTag.objects.filter(workspace=workspace).count() == 11
    bad = CallbackReceipt.objects.get(workspace=workspace, processed_at__isnull=True)
    assert bad.attempts == 1 and "this one is bad" in bad.error and bad.next_attempt_at is not None
    assert sorted(b["welcome_code"] for b in welcomes[workspace.pk]) == sorted(f"WC{n}" for n in range(12) if n != 5)


def test_a_burst_is_applied_in_a_constant_number_of_statements(
    db, monkeypatch, welcomes, spy, django_capture_on_commit_callbacks
):
    """Twice the adds, not twice the statements: the batch's SQL does not grow with its size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    workspace = build("constant")
    monkeypatch.setattr(inbox, "BATCH_MIN", 1)
    counts = []
    for size, offset in ((20, 0), (80, 100)):
        payloads = [
            ("wecom", {"Event": "change_external_contact", "ChangeType": "add_external_contact",
                       "UserID": USERIDS[n % 3], "ExternalUserID": f"wmC{offset + n}", "State": STATES[n % 3],
                       "WelcomeCode": f"W{n}", "CreateTime": str(BASE + offset + n)})
            for n in range(size)
        ]  # fmt: skip
        store(workspace, payloads)
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
            assert inbox.process_pending().processed == size
        counts.append(len(queries))
    assert counts[1] <= counts[0] + 2, counts
    assert StaffRelation.objects.filter(workspace=workspace).count() == 100


def test_welcomes_are_queued_in_one_insert_as_the_database_backend_queues_each(db, settings):
    """With ``django_tasks_db`` (production) the batch writes the same task rows
    ``send_welcome_task.enqueue`` writes, with one INSERT."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tasks_db.models import DBTaskResult

    from siyu.wecom.tasks import send_welcome_task

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    workspace = build("queued")
    send_welcome_task.enqueue(workspace.pk, {"welcome_code": "W0", "text": {"content": "一个"}})
    bodies = [{"welcome_code": f"W{n}", "text": {"content": f"欢迎 {n}"}} for n in range(1, 6)]
    with CaptureQueriesContext(connection) as queries:
        batch_apply.enqueue_welcomes(workspace.pk, bodies)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "django_tasks_database')]
    assert len(inserts) == 1
    fields = ("status", "args_kwargs", "priority", "task_path", "queue_name", "run_after", "backend_name")
    rows = {row["args_kwargs"]["args"][1]["welcome_code"]: row for row in DBTaskResult.objects.values(*fields)}
    assert sorted(rows) == [f"W{n}" for n in range(6)]
    one_by_one = rows.pop("W0")
    for body in bodies:
        row = rows[body["welcome_code"]]
        assert row["args_kwargs"] == {"args": [workspace.pk, body], "kwargs": {}}
        assert {k: v for k, v in row.items() if k != "args_kwargs"} == {
            k: v for k, v in one_by_one.items() if k != "args_kwargs"
        }


def test_an_event_on_the_customer_of_an_earlier_edit_waits_for_the_edit(
    db, monkeypatch, welcomes, spy, django_capture_on_commit_callbacks
):
    """wmA and wmB are one customer. An edit of wmA (applied one by one: it reads the API)
    arrived before the add of wmB: the add is handed back and applied after the edit."""
    from siyu.wecom import handlers

    workspace = build("after-edit")
    keys = [normalize_identity("wecom_external_userid", v) for v in ("wmA", "wmB")]
    place_entries(workspace, [Entry(index=0, keys=keys)], source="import")
    order = []
    real_handle = services.handle_event
    monkeypatch.setattr(handlers, "contact_edited", lambda ws, event: order.append(("edit", event.external_user_id)))

    def handle(ws, event):
        real_handle(ws, event)
        if event.change_type.startswith("add"):
            order.append(("add", event.external_user_id))

    monkeypatch.setattr(services, "handle_event", handle)

    def contact(change, external, at):
        return ("wecom", {"Event": "change_external_contact", "ChangeType": change, "UserID": "lina",
                          "ExternalUserID": external, "CreateTime": str(at)})  # fmt: skip

    payloads = [contact("add_external_contact", "wmZ0", BASE), contact("edit_external_contact", "wmA", BASE + 1)]
    payloads += [contact("add_external_contact", "wmB", BASE + 2), contact("add_external_contact", "wmZ1", BASE + 3)]
    run(workspace, payloads, monkeypatch, batch_min=1, limit=500, capture=django_capture_on_commit_callbacks)
    assert (spy["batched"], spy["handed_back"]) == (2, 1)
    assert order == [("edit", "wmA"), ("add", "wmB")]  # wmZ0 and wmZ1 went in the batch
    assert StaffRelation.objects.filter(workspace=workspace, customer__identities__value="wmB").count() == 1
    assert CallbackReceipt.objects.filter(workspace=workspace, processed_at__isnull=True).count() == 0


def test_with_the_database_backend_welcomes_commit_with_the_callbacks_or_not_at_all(
    db, settings, django_capture_on_commit_callbacks
):
    """A worker dying between the inbox's commit and an on_commit enqueue would lose the
    welcome for good (20 s, once): with the database backend the task rows are written in the
    same transaction instead, and roll back with it."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    workspace = build("atomic-welcome")
    body = {"welcome_code": "W1", "text": {"content": "欢迎"}}

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        batch_apply.queue_welcomes(workspace.pk, [body])
        raise Boom
    assert not DBTaskResult.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        batch_apply.queue_welcomes(workspace.pk, [body])
        assert DBTaskResult.objects.count() == 1  # written before the commit, not after it
    assert callbacks == []
