"""Staff turnover (离职继承 / 在职转接) against the fake WeCom server: the 90-day limit in the
preview, chunked transfer requests, result polling and what a done transfer moves, refusals,
the resigned flow, the transfer_fail hook, the API and the console.

Times are explicit: DAY0 is 2026-09-01 10:00 in Shanghai; siyu's clock and the fake's are pinned.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

TZ = ZoneInfo("Asia/Shanghai")
DAY0 = dt.datetime(2026, 9, 1, 10, 0, tzinfo=TZ)
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def clock(monkeypatch):
    """Pin siyu's clock at DAY0; ``clock.set(t)`` moves it (and the fake's, once attached)."""

    class Clock:
        now = DAY0
        fake = None

        def set(self, value):
            self.now = value
            if self.fake is not None:
                self.fake.now = lambda: value.timestamp()

    state = Clock()
    monkeypatch.setattr("siyu.core.clock.now", lambda: state.now)
    return state


@pytest.fixture
def wecom(brand, clock):
    from siyu.wecom.client import reset_shared_state
    from siyu.wecom.services import configure_wecom
    from tests.fakes import wecom_transfer  # noqa: F401  (adds the transfer routes)
    from tests.fakes.wecom import FakeWecom

    reset_shared_state()
    with FakeWecom() as fake:
        fake.expires_in = 10**9  # tokens outlive the pinned clock's jumps
        fake.follow_users.extend(["wangxm", "lina", "zhaomin"])
        clock.fake = fake
        clock.set(clock.now)
        configure_wecom(
            brand.workspace,
            corp_id=fake.corp_id,
            agent_id="1000002",
            secret=fake.secret,
            token="AcmeToken2026",
            aes_key=AES_KEY,
            base_url=fake.url,
        )
        yield fake
    reset_shared_state()


def seed(brand, fake, staff, count, prefix="wmC"):
    """``count`` customers who are WeCom friends of ``staff`` (owned by them), here and in the fake."""
    from siyu.customers.models import Customer, Identity, StaffRelation
    from tests.fakes.wecom import Follow

    ws = brand.workspace
    customers = Customer.objects.bulk_create(
        [
            Customer(workspace=ws, name=f"客户{n}", owner_staff=staff, created_at=DAY0, updated_at=DAY0)
            for n in range(count)
        ]
    )
    if customers[0].pk is None:  # backends that do not return ids from bulk inserts
        customers = list(Customer.objects.filter(workspace=ws, owner_staff=staff).order_by("pk"))[-count:]
    externals = [f"{prefix}{n:05d}" for n in range(count)]
    Identity.objects.bulk_create(
        [
            Identity(workspace=ws, customer=c, type="wecom_external_userid", value=e, created_at=DAY0)
            for c, e in zip(customers, externals, strict=True)
        ]
    )
    StaffRelation.objects.bulk_create(
        [StaffRelation(workspace=ws, customer=c, staff=staff, added_at=DAY0) for c in customers]
    )
    if fake is not None:
        for ext, customer in zip(externals, customers, strict=True):
            fake.add_contact(ext, customer.name, [Follow(staff.wecom_userid)])
    return customers, externals


def transfer_calls(fake, kind="transfer_customer"):
    return [c for c in fake.calls if c.api == f"externalcontact/{kind}"]


# ---- rules -------------------------------------------------------------------------------------


def test_next_allowed_after_two_transfers_is_when_the_older_leaves_the_window():
    from siyu.handover import rules

    first, second = DAY0, DAY0 + dt.timedelta(days=10)
    assert rules.next_allowed_at([first], DAY0) is None
    assert rules.next_allowed_at([first, second], DAY0 + dt.timedelta(days=11)) == first + dt.timedelta(days=90)
    assert rules.next_allowed_at([first, second], DAY0 + dt.timedelta(days=91)) is None


def test_distribution_is_even_and_stable():
    from siyu.handover import rules

    split = rules.distribute([5, 3, 9, 1, 7], [20, 10])
    assert split == {1: 20, 3: 10, 5: 20, 7: 10, 9: 20}
    assert rules.distribute([1, 2], []) == {}


# ---- preview and the 90-day limit --------------------------------------------------------------


def _past_transfer(brand, customer, external, requested_at, status="done"):
    from siyu.handover.models import HandoverBatch, HandoverTransfer

    batch = HandoverBatch.objects.create(
        workspace=brand.workspace,
        kind="on_job",
        handover_staff=brand.clerk_b,
        created_at=requested_at,
        updated_at=requested_at,
        status="finished",
    )
    HandoverTransfer.objects.create(
        workspace=brand.workspace,
        batch=batch,
        kind="on_job",
        customer=customer,
        external_userid=external,
        handover_staff=brand.clerk_b,
        takeover_staff=brand.clerk_a,
        status=status,
        requested_at=requested_at,
        finished_at=requested_at,
    )


def test_preview_blocks_the_third_transfer_within_90_days_and_allows_it_on_day_91(brand, clock):
    from siyu.handover.services import preview

    customers, externals = seed(brand, None, brand.clerk_a, 3)
    _past_transfer(brand, customers[0], externals[0], DAY0)
    _past_transfer(brand, customers[0], externals[0], DAY0 + dt.timedelta(days=1))
    _past_transfer(brand, customers[1], externals[1], DAY0)  # once: still allowed
    _past_transfer(brand, customers[2], externals[2], DAY0, status="refused")  # refused: not counted
    _past_transfer(brand, customers[2], externals[2], DAY0, status="failed")

    args = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    day_89 = preview(brand.workspace, now=DAY0 + dt.timedelta(days=89), **args)
    assert [b.customer_id for b in day_89.blocked] == [customers[0].pk]
    [blocked] = day_89.blocked
    assert blocked.reason == "limit" and blocked.next_allowed_at == DAY0 + dt.timedelta(days=90)
    assert day_89.movable == 2 and day_89.per_takeover == {brand.clerk_a2.pk: 2}
    assert day_89.blocked_counts == {"limit": 1}

    day_91 = preview(brand.workspace, now=DAY0 + dt.timedelta(days=91, minutes=1), **args)
    assert day_91.blocked == () and day_91.movable == 3
    # A resigned handover is not subject to the on-job limit.
    resigned = preview(brand.workspace, now=DAY0 + dt.timedelta(days=89), **{**args, "kind": "resigned"})
    assert resigned.blocked == ()


def test_preview_splits_evenly_and_explains_customers_it_cannot_move(brand, clock):
    from siyu.customers.models import Identity
    from siyu.handover.services import preview

    customers, _ = seed(brand, None, brand.clerk_a, 5)
    Identity.objects.filter(customer=customers[4]).delete()
    plan = preview(
        brand.workspace,
        kind="on_job",
        handover_staff_id=brand.clerk_a.pk,
        takeover_staff_ids=[brand.clerk_a2.pk, brand.clerk_b.pk],
    )
    assert plan.per_takeover == {brand.clerk_a2.pk: 2, brand.clerk_b.pk: 2}
    assert plan.blocked_counts == {"no_external_userid": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "fired"}, "kind"),
        ({"takeover_staff_ids": []}, "takeover_staff_ids"),
        ({"takeover_staff_ids": ["self"]}, "takeover_staff_ids"),
        ({"transfer_success_msg": "长" * 201}, "transfer_success_msg"),
        ({"kind": "resigned", "transfer_success_msg": "hi"}, "transfer_success_msg"),
        ({"handover_staff_id": 10**12}, "handover_staff_id"),
    ],
)
def test_preview_names_the_bad_field(brand, change, field):
    from siyu.core.errors import InvalidInput
    from siyu.handover.services import preview

    args = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    args.update(change)
    if args["takeover_staff_ids"] == ["self"]:
        args["takeover_staff_ids"] = [brand.clerk_a.pk]
    with pytest.raises(InvalidInput) as error:
        preview(brand.workspace, **args)
    assert error.value.field == field


# ---- on-job transfer: chunks, polling, what moves ----------------------------------------------


def test_on_job_transfer_of_250_customers_is_sent_in_chunks_polled_and_moves_everything(brand, wecom, clock):
    from siyu.customers.models import Customer, StaffRelation
    from siyu.handover.jobs import poll_results
    from siyu.handover.models import HandoverTransfer
    from siyu.handover.services import start_handover
    from siyu.org.models import AuditEntry
    from siyu.tracking.models import Event

    customers, externals = seed(brand, wecom, brand.clerk_a, 250)
    batch = start_handover(
        brand.workspace,
        kind="on_job",
        handover_staff_id=brand.clerk_a.pk,
        takeover_staff_ids=[brand.clerk_a2.pk],
        transfer_success_msg="您好，后续由李娜为您服务。",
    )
    calls = transfer_calls(wecom)
    assert [len(c.body["external_userid"]) for c in calls] == [100, 100, 50]
    assert {c.body["takeover_userid"] for c in calls} == {"lina"}
    assert calls[0].body["transfer_success_msg"] == "您好，后续由李娜为您服务。"
    assert sorted(e for c in calls for e in c.body["external_userid"]) == externals
    assert batch.counts == {"started": 250} and batch.status == "running"
    assert AuditEntry.objects.filter(action="handover.start", target=f"handover:{batch.pk}").exists()

    summary = poll_results()  # the customers have not answered yet
    assert summary["changed"] == {"waiting": 250}
    assert StaffRelation.objects.filter(staff=brand.clerk_a2).count() == 0

    clock.set(DAY0 + dt.timedelta(hours=25))  # WeCom completes unanswered transfers after 24 h
    summary = poll_results()
    assert summary["changed"] == {"done": 250} and not summary["errors"]
    batch.refresh_from_db()
    assert batch.counts == {"done": 250} and batch.status == "finished"
    ids = [c.pk for c in customers]
    assert StaffRelation.objects.filter(staff=brand.clerk_a2, customer_id__in=ids, status="active").count() == 250
    assert StaffRelation.objects.filter(staff=brand.clerk_a, status="active").count() == 0
    assert set(Customer.objects.filter(pk__in=ids).values_list("owner_staff_id", flat=True)) == {brand.clerk_a2.pk}
    events = Event.objects.filter(workspace=brand.workspace, name="wecom_transferred")
    assert events.count() == 250
    assert events.first().properties["to_staff_id"] == brand.clerk_a2.pk
    taken = HandoverTransfer.objects.filter(batch=batch).values_list("takeover_at", flat=True).distinct()
    assert list(taken) == [DAY0 + dt.timedelta(hours=24)]
    assert [f.userid for f in wecom.contacts[externals[0]].follows] == ["lina"]

    assert poll_results()["calls"] == 0  # nothing left to follow
    assert Event.objects.filter(workspace=brand.workspace, name="wecom_transferred").count() == 250


def test_a_refused_transfer_keeps_the_customer_and_the_accepted_ones_move(brand, wecom, clock):
    from siyu.customers.models import Customer, StaffRelation
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover
    from tests.fakes.wecom_transfer import complete_transfers

    customers, externals = seed(brand, wecom, brand.clerk_a, 3)
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_b.pk]
    )
    complete_transfers(wecom, [externals[0]], accept=False)
    complete_transfers(wecom, externals[1:])
    report = poll_workspace(brand.workspace)
    assert dict(report.changed) == {"refused": 1, "done": 2}
    batch.refresh_from_db()
    assert batch.counts == {"refused": 1, "done": 2} and batch.status == "finished"
    assert Customer.objects.get(pk=customers[0].pk).owner_staff_id == brand.clerk_a.pk
    assert StaffRelation.objects.get(staff=brand.clerk_a, customer=customers[0]).status == "active"
    assert Customer.objects.get(pk=customers[1].pk).owner_staff_id == brand.clerk_b.pk


def test_wecom_refusals_per_customer_are_recorded_with_their_errcode(brand, wecom, clock):
    from siyu.handover.models import HandoverTransfer
    from siyu.handover.services import start_handover
    from tests.fakes.wecom_transfer import Transfer, transfers

    _customers, externals = seed(brand, wecom, brand.clerk_a, 3)
    # Transferred twice outside siyu: WeCom refuses with 40128 although the preview allowed it.
    transfers(wecom).extend(
        Transfer("on_job", "x", "y", externals[0], DAY0.timestamp() - 3600 * k, status=1) for k in (1, 2)
    )
    wecom.contacts[externals[1]].follows = []  # no longer wangxm's customer in WeCom: 40131
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    rows = dict(HandoverTransfer.objects.filter(batch=batch).values_list("external_userid", "status"))
    codes = dict(HandoverTransfer.objects.filter(batch=batch).values_list("external_userid", "errcode"))
    assert rows == {externals[0]: "blocked_limit", externals[1]: "failed", externals[2]: "started"}
    assert codes == {externals[0]: 40128, externals[1]: 40131, externals[2]: None}


def test_a_takeover_at_its_customer_cap_is_reported(brand, wecom, clock):
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover
    from tests.fakes.wecom_transfer import transfer_caps

    seed(brand, wecom, brand.clerk_a, 2)
    transfer_caps(wecom)["lina"] = 0
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    clock.set(DAY0 + dt.timedelta(hours=25))
    poll_workspace(brand.workspace)
    batch.refresh_from_db()
    assert batch.counts == {"takeover_at_cap": 2}


def test_a_second_start_of_the_same_customers_is_refused(brand, wecom, clock):
    from siyu.core.errors import InvalidInput
    from siyu.handover.services import start_handover

    seed(brand, wecom, brand.clerk_a, 2)
    args = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    start_handover(brand.workspace, **args)
    with pytest.raises(InvalidInput) as error:
        start_handover(brand.workspace, **args)  # both are in progress: nothing to move
    assert error.value.field == "handover_staff_id"
    assert len(transfer_calls(wecom)) == 1


def test_a_rate_limited_start_keeps_rows_planned_and_the_poll_sends_them(brand, wecom, clock):
    from siyu.handover.models import HandoverTransfer
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover

    seed(brand, wecom, brand.clerk_a, 2)
    wecom.storm(1)  # the first transfer call gets 45009
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    assert batch.counts == {"planned": 2} and "限流" in batch.last_error
    from siyu.wecom.client import reset_shared_state

    reset_shared_state()  # the minute block is over
    poll_workspace(brand.workspace)
    assert set(HandoverTransfer.objects.filter(batch=batch).values_list("status", flat=True)) == {"waiting"}
    assert [len(c.body["external_userid"]) for c in transfer_calls(wecom) if c.errcode == 0] == [2]


def test_start_writes_the_preview_split_and_the_blocked_rows_in_sql(brand, wecom, clock, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from siyu.customers.models import Identity
    from siyu.handover import rules, services
    from siyu.handover.models import HandoverTransfer

    customers, externals = seed(brand, wecom, brand.clerk_a, 7)
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=5))
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=4))
    Identity.objects.filter(customer=customers[6]).delete()
    args = {
        "kind": "on_job",
        "handover_staff_id": brand.clerk_a.pk,
        "takeover_staff_ids": [brand.clerk_a2.pk, brand.clerk_b.pk],
    }
    monkeypatch.setattr(services, "PREVIEW_LIST", 1)
    plan = services.preview(brand.workspace, **args)
    assert plan.movable == 5 and plan.per_takeover == {brand.clerk_a2.pk: 3, brand.clerk_b.pk: 2}
    assert plan.blocked_counts == {"limit": 1, "no_external_userid": 1}  # all counted,
    assert [b.customer_id for b in plan.blocked] == [customers[0].pk]  # a bounded sample listed
    with CaptureQueriesContext(connection) as queries:
        batch = services.start_handover(brand.workspace, **args)
    inserts = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT INTO handover_handovertransfer")
    ]
    assert len(inserts) == 1 and "SELECT" in inserts[0]  # one INSERT ... SELECT, no rows from Python
    rows = list(
        HandoverTransfer.objects.filter(batch=batch)
        .order_by("customer_id")
        .values_list("customer_id", "takeover_staff_id", "status", "finished_at")
    )
    movable = [c.pk for c in customers[1:6]]
    split = rules.distribute(movable, [brand.clerk_a2.pk, brand.clerk_b.pk])
    assert rows[0] == (customers[0].pk, None, "blocked_limit", DAY0)
    assert [(cid, takeover) for cid, takeover, _s, _f in rows[1:]] == [(cid, split[cid]) for cid in movable]
    assert {status for _c, _t, status, _f in rows[1:]} == {"started"} and len(rows) == 6


def test_a_large_start_is_queued_and_the_batch_page_shows_the_sending(personas, brand, wecom, clock, monkeypatch):
    from siyu.handover import services, tasks, views
    from siyu.handover.models import HandoverBatch

    queued = []

    class Queue:
        @staticmethod
        def enqueue(*args):
            queued.append(args)

    monkeypatch.setattr(services, "INLINE_CHUNKS", 1)
    monkeypatch.setattr(tasks, "send_handover_task", Queue)
    monkeypatch.setattr(views, "send_handover_task", Queue)
    seed(brand, wecom, brand.clerk_a, 150)  # two calls: more than one inline chunk
    client = login(personas.manager_a)
    form = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    started = client.post("/handovers/", {**form, "action": "start"})
    batch = HandoverBatch.objects.latest("pk")
    assert started.status_code == 302 and queued == [(brand.workspace.pk, batch.pk)]
    assert not transfer_calls(wecom)  # nothing sent inside the request
    page = client.get(f"/handovers/{batch.pk}/").content.decode()
    assert 'data-testid="sending"' in page and "150 / 150" in page

    monkeypatch.undo()  # the worker runs the real task
    assert tasks.send_handover_task.call(brand.workspace.pk, batch.pk) == {"calls": 2}
    assert [len(c.body["external_userid"]) for c in transfer_calls(wecom)] == [100, 50]
    page = login(personas.manager_a).get(f"/handovers/{batch.pk}/").content.decode()
    assert 'data-testid="sending"' not in page and 'data-testid="count-started"' in page


def test_refresh_reads_only_this_batch_and_closes_its_client(personas, brand, wecom, clock, monkeypatch):
    from siyu.handover.services import start_handover
    from siyu.org.models import Staff
    from siyu.wecom.client import WecomClient

    seed(brand, wecom, brand.clerk_a, 2)
    seed(brand, wecom, brand.clerk_b, 2, prefix="wmB")
    ours = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_b.pk, takeover_staff_ids=[brand.clerk_a.pk]
    )
    Staff.objects.filter(pk=brand.clerk_b.pk).update(wecom_userid=None)  # store B's pair cannot be read
    closed = []
    original = WecomClient.close
    monkeypatch.setattr(WecomClient, "close", lambda self: (closed.append(self), original(self)))
    wecom.calls.clear()
    answer = login(personas.manager_a).post(f"/handovers/{ours.pk}/", follow=True)
    page = answer.content.decode()
    results = [(c.body["handover_userid"], c.body["takeover_userid"]) for c in transfer_calls(wecom, "transfer_result")]
    assert results == [("wangxm", "lina")]
    assert "has no WeCom userid" not in page  # store B's problem is not shown to store A's manager
    assert "已从企业微信刷新接替结果" in page
    assert closed  # the request's client was closed
    ours.refresh_from_db()
    assert ours.counts == {"waiting": 2}


def test_a_transfer_wecom_stops_listing_fails_after_72_hours_and_the_listed_ones_do_not(brand, wecom, clock):
    from siyu.handover.models import HandoverTransfer
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover
    from tests.fakes.wecom_transfer import transfers

    _customers, externals = seed(brand, wecom, brand.clerk_a, 3)
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    wecom.transfer_result_page = 1  # one customer per page: seen across pages, not per page
    transfers(wecom)[:] = [t for t in transfers(wecom) if t.external_userid != externals[1]]  # WeCom lost it
    later = DAY0 + dt.timedelta(hours=73)
    clock.now = later  # siyu's clock only: in the fake the other two are still waiting
    report = poll_workspace(brand.workspace)
    assert report.calls == 2 and dict(report.changed) == {"waiting": 2, "failed": 1}
    rows = {e: (s, seen) for e, s, seen in batch.transfers.values_list("external_userid", "status", "seen_at")}
    assert rows == {externals[0]: ("waiting", later), externals[1]: ("failed", None), externals[2]: ("waiting", later)}
    assert HandoverTransfer.objects.filter(status="failed", finished_at=later).count() == 1


# ---- resigned ----------------------------------------------------------------------------------


def test_resigned_handover_marks_the_member_left_and_completes_after_24_hours(brand, wecom, clock):
    from siyu.customers.models import Customer
    from siyu.handover.results import poll_workspace, unassigned
    from siyu.handover.services import start_handover
    from siyu.org.models import Staff
    from tests.fakes.wecom_transfer import resign

    customers, _externals = seed(brand, wecom, brand.clerk_a, 4)
    resign(wecom, "wangxm")
    assert unassigned(brand.workspace) == {"wangxm": 4}
    batch = start_handover(
        brand.workspace,
        kind="resigned",
        handover_staff_id=brand.clerk_a.pk,
        takeover_staff_ids=[brand.clerk_a2.pk, brand.clerk_b.pk],
    )
    assert Staff.objects.get(pk=brand.clerk_a.pk).status == "left"
    calls = transfer_calls(wecom, "resigned/transfer_customer")
    assert sorted((c.body["takeover_userid"], len(c.body["external_userid"])) for c in calls) == [
        ("lina", 2),
        ("zhaomin", 2),
    ]
    assert "transfer_success_msg" not in calls[0].body
    assert not transfer_calls(wecom)
    assert unassigned(brand.workspace) == {}
    clock.set(DAY0 + dt.timedelta(hours=24))
    poll_workspace(brand.workspace)
    batch.refresh_from_db()
    assert batch.counts == {"done": 4}
    assert transfer_calls(wecom, "resigned/transfer_result")
    owners = sorted(Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("owner_staff_id", flat=True))
    assert owners == sorted([brand.clerk_a2.pk] * 2 + [brand.clerk_b.pk] * 2)


def test_resigned_handover_of_someone_wecom_still_employs_fails_with_40097(brand, wecom, clock):
    from siyu.handover.services import start_handover

    seed(brand, wecom, brand.clerk_a, 2)
    batch = start_handover(
        brand.workspace, kind="resigned", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    assert batch.counts == {"failed": 2} and batch.status == "finished"
    assert "40097" in batch.last_error
    assert set(batch.transfers.values_list("errcode", flat=True)) == {40097}


# ---- transfer_fail callback hook ---------------------------------------------------------------


def test_transfer_failed_marks_the_pending_transfer(brand, wecom, clock):
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover, transfer_failed

    _customers, externals = seed(brand, wecom, brand.clerk_a, 2)
    batch = start_handover(
        brand.workspace, kind="on_job", handover_staff_id=brand.clerk_a.pk, takeover_staff_ids=[brand.clerk_a2.pk]
    )
    at = DAY0 + dt.timedelta(hours=2)
    kw = {"takeover_userid": "lina", "at": at}
    assert transfer_failed(brand.workspace, external_userid=externals[0], reason="customer_refused", **kw) == 1
    assert transfer_failed(brand.workspace, external_userid=externals[1], reason="customer_limit_exceed", **kw) == 1
    assert transfer_failed(brand.workspace, external_userid=externals[1], reason="customer_refused", **kw) == 0
    assert (
        transfer_failed(
            brand.workspace, external_userid=externals[0], reason="customer_refused", takeover_userid="zhaomin", at=at
        )
        == 0
    )
    batch.refresh_from_db()
    assert batch.counts == {"refused": 1, "takeover_at_cap": 1} and batch.status == "finished"
    assert batch.transfers.get(external_userid=externals[0]).finished_at == at
    poll_workspace(brand.workspace)  # nothing left in flight: no result call
    assert not transfer_calls(wecom, "transfer_result")


# ---- API ---------------------------------------------------------------------------------------


@pytest.fixture
def api(api_key):
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def call(method, path, body=None, **query):
        url = f"/api/v1{path}"
        if method == "get":
            return client.get(url, query)
        return client.post(url, data=body or {}, content_type="application/json")

    return call


def test_api_dry_run_previews_without_writing_and_start_answers_the_batch(api, brand, wecom, clock):
    from siyu.handover.models import HandoverBatch

    customers, externals = seed(brand, wecom, brand.clerk_a, 3)
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=5))
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=4))
    body = {
        "kind": "on_job",
        "handover_staff_id": brand.clerk_a.pk,
        "takeover_staff_ids": [brand.clerk_a2.pk],
        "dry_run": True,
    }
    answer = api("post", "/handovers", body)
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["movable"] == 2 and data["blocked_counts"] == {"limit": 1}
    assert data["blocked"][0]["customer_id"] == customers[0].pk and data["blocked"][0]["next_allowed_at"]
    assert HandoverBatch.objects.count() == 2 and not transfer_calls(wecom)  # only the two past ones

    started = api("post", "/handovers", {**body, "dry_run": False})
    assert started.status_code == 201, started.content
    batch_id = started.json()["id"]
    assert started.json()["counts"] == {"started": 2, "blocked_limit": 1}
    assert len(transfer_calls(wecom)) == 1
    listed = api("get", "/handovers").json()
    assert listed[0]["id"] == batch_id
    detail = api("get", f"/handovers/{batch_id}", status="blocked_limit").json()
    assert [t["customer_id"] for t in detail["transfers"]] == [customers[0].pk]
    assert api("get", "/handovers/999999").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"takeover_staff_ids": []}, "takeover_staff_ids"),
        ({"transfer_success_msg": "长" * 201}, "transfer_success_msg"),
        ({"kind": "fired"}, "kind"),
        ({"handover_staff_id": 999999}, "handover_staff_id"),
    ],
)
def test_api_answers_field_errors(api, brand, change, field):
    body = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    answer = api("post", "/handovers", {**body, **change, "dry_run": True})
    assert answer.status_code == 422
    data = answer.json()
    fields = data.get("field") or [d["field"] for d in data["detail"]]
    assert field in fields


# ---- console -----------------------------------------------------------------------------------


def login(user):
    from django.test import Client

    from tests.conftest import PASSWORD

    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_console_page_is_scoped_to_the_store_manager_unit_and_closed_to_clerks(personas, brand):
    hq = login(personas.hq_admin).get("/handovers/")
    assert hq.status_code == 200
    assert "赵敏" in hq.content.decode() and "还没有转接记录" in hq.content.decode()
    manager = login(personas.manager_a).get("/handovers/")
    assert manager.status_code == 200
    page = manager.content.decode()
    assert "王小美" in page and "李娜" in page and "赵敏" not in page
    assert login(personas.clerk_a).get("/handovers/").status_code == 403
    assert login(personas.analyst).get("/handovers/").status_code == 403
    # A manager cannot reach staff outside their unit by posting ids.
    answer = login(personas.manager_a).post(
        "/handovers/",
        {
            "action": "preview",
            "kind": "on_job",
            "handover_staff_id": brand.clerk_b.pk,
            "takeover_staff_ids": [brand.clerk_a2.pk],
        },
    )
    assert answer.status_code == 200 and "员工不存在" in answer.content.decode()


def test_console_preview_explains_blocked_customers_then_starts_and_shows_results(personas, brand, wecom, clock):
    from siyu.handover.models import HandoverBatch

    customers, externals = seed(brand, wecom, brand.clerk_a, 3)
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=5))
    _past_transfer(brand, customers[0], externals[0], DAY0 - dt.timedelta(days=4))
    client = login(personas.manager_a)
    form = {"kind": "on_job", "handover_staff_id": brand.clerk_a.pk, "takeover_staff_ids": [brand.clerk_a2.pk]}
    page = client.post("/handovers/", {**form, "action": "preview"}).content.decode()
    assert "2 位客户将被转接" in page and "90 天内已被转接 2 次" in page and "客户0" in page
    started = client.post("/handovers/", {**form, "action": "start"})
    batch = HandoverBatch.objects.latest("pk")
    assert started.status_code == 302 and started["Location"] == f"/handovers/{batch.pk}/"
    detail = client.get(f"/handovers/{batch.pk}/").content.decode()
    assert 'data-testid="count-started"' in detail and "客户1" in detail
    clock.set(DAY0 + dt.timedelta(hours=25))
    assert client.post(f"/handovers/{batch.pk}/").status_code == 302
    detail = client.get(f"/handovers/{batch.pk}/").content.decode()
    assert 'data-testid="count-done"' in detail and "100%" in detail
    other = HandoverBatch.objects.create(
        workspace=brand.workspace, kind="on_job", handover_staff=brand.clerk_b, created_at=DAY0, updated_at=DAY0
    )
    assert client.get(f"/handovers/{other.pk}/").status_code == 404  # store B's handover


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_dry_run_and_start(brand, wecom, clock):
    from click.testing import CliRunner

    from siyu.cli import main

    seed(brand, wecom, brand.clerk_a, 3)
    runner = CliRunner()
    args = ["wecom", "transfer", "--workspace", "acme", "--from", "wangxm", "--to", "lina,zhaomin"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "movable: 3" in dry.output and "lina: 2" in dry.output and not transfer_calls(wecom)
    real = runner.invoke(main, args)
    assert real.exit_code == 0, real.output
    assert "started" in real.output and len(transfer_calls(wecom)) == 2
    bad = runner.invoke(main, ["wecom", "transfer", "--workspace", "acme", "--from", "nobody", "--to", "lina"])
    assert bad.exit_code != 0 and "nobody" in bad.output


def test_a_sender_that_dies_after_wecom_accepted_is_resent_after_its_lease_without_a_second_transfer(
    brand, wecom, clock
):
    from siyu.handover.models import HandoverTransfer
    from siyu.handover.results import poll_workspace
    from siyu.handover.services import start_handover
    from siyu.wecom.services import client_for
    from tests.fakes.wecom_transfer import transfers

    _, _externals = seed(brand, wecom, brand.clerk_a, 3)

    class DiesAfterSending:
        def __init__(self, client):
            self.client = client

        def post(self, path, json, **kw):
            self.client.post(path, json, **kw)
            raise RuntimeError("worker killed before recording the answer")

    with pytest.raises(RuntimeError):
        start_handover(
            brand.workspace,
            kind="on_job",
            handover_staff_id=brand.clerk_a.pk,
            takeover_staff_ids=[brand.clerk_a2.pk],
            client=DiesAfterSending(client_for(brand.workspace)),
        )
    assert set(HandoverTransfer.objects.values_list("status", flat=True)) == {"planned"}
    assert len(transfers(wecom)) == 3  # WeCom did start them

    clock.set(DAY0 + dt.timedelta(minutes=5))  # the dead sender's lease still holds
    assert poll_workspace(brand.workspace).sent_calls == 0
    clock.set(DAY0 + dt.timedelta(minutes=11))
    assert poll_workspace(brand.workspace).sent_calls == 1
    rows = HandoverTransfer.objects.values_list("status", "errcode")
    assert set(rows) == {("waiting", 40129)}  # "already transferring": started by the first send
    assert len(transfers(wecom)) == 3 and len(transfer_calls(wecom)) == 2
