"""WeCom as a delivery channel: a broadcast to WeCom customers becomes one mass-send task per
staff member (add_msg_template with their own customers), a staff task each; the member
confirms in WeCom, polling writes each customer's result back; the gate keeps WeCom's
per-customer cap; token expiry, 45009 and a dead worker change nothing that was sent."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.channels.models import ComplianceSettings
from siyu.channels.services import compliance_settings, create_account, set_consent, update_compliance_settings
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, Identity, StaffRelation
from siyu.messaging import broadcasts, dispatch, wecom_mass, wecom_poll
from siyu.messaging.broadcasts import VariantIn
from siyu.messaging.jobs import poll_group_messages
from siyu.messaging.models import OutboundMessage, WecomMassTask
from siyu.messaging.wecom_poll import poll_workspace, remind
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.workbench.models import StaffTask
from tests.fakes.wecom import Follow
from tests.fakes.wecom_groupmsg import confirm_group_message, group_msgs, received_elsewhere
from tests.test_acquisition import wecom  # noqa: F401  (fixture)
from tests.test_outbox import NOON, clock_at  # noqa: F401  (fixture)

TEXT = "双十二会员日，全场 8 折，回复 1 预约到店"


@pytest.fixture
def fake(wecom, clock_at):  # noqa: F811
    """The fake WeCom on siyu's pinned clock (task times, the monthly cap)."""
    wecom.now = lambda: clock.now().timestamp()
    return wecom


@pytest.fixture
def tag(brand):
    group = TagGroup.objects.create(workspace=brand.workspace, name="活动")
    return Tag.objects.create(workspace=brand.workspace, group=group, name="双十二")


@pytest.fixture
def account(brand, fake):
    return create_account(brand.workspace, name="企业微信群发", provider="wecom", medium="wecom")


def customer(brand, fake, tag, ext, *, friends=(), owner=None, on_wecom=None):
    """A tagged customer with a WeCom identity and marketing consent, friend (in our records) of
    ``friends`` (oldest first); ``on_wecom`` overrides who they follow on the fake."""
    ws = brand.workspace
    c = Customer.objects.create(workspace=ws, name=ext, owner_staff=owner, created_at=NOON, updated_at=NOON)
    Identity.objects.create(workspace=ws, customer=c, type="wecom_external_userid", value=ext, created_at=NOON)
    set_consent(ws.pk, c.pk, channel="wecom", purpose="marketing", granted=True, source="test")
    CustomerTag.objects.create(workspace=ws, customer=c, tag=tag, created_at=NOON)
    for n, staff in enumerate(friends):
        StaffRelation.objects.create(
            workspace=ws, customer=c, staff=staff, added_at=NOON - dt.timedelta(days=30 - n), status="active"
        )
    follows = [s.wecom_userid for s in (friends if on_wecom is None else on_wecom)]
    fake.add_contact(ext, ext, [Follow(u) for u in follows])
    return c


def broadcast(brand, account, tag, body=TEXT, name="双十二会员日"):
    made = broadcasts.create_broadcast(
        brand.workspace, name=name, account_id=account.pk, tags_any=[tag.pk], variants=[VariantIn("A", 1, body=body)]
    )
    return broadcasts.send(made)


def run():
    return dispatch.run_once("test-worker")


def templates(fake):
    return [c for c in fake.calls if c.api == "externalcontact/add_msg_template" and c.errcode == 0]


def by_ext():
    return {
        m.to_address or m.customer.name: m for m in OutboundMessage.objects.select_related("customer").order_by("id")
    }


def test_one_task_per_staff_member_then_confirm_poll_and_deliver(brand, fake, tag, account):
    a = brand.clerk_a  # wangxm
    b = brand.clerk_b  # zhaomin
    customer(brand, fake, tag, "wmA1", friends=[a], owner=a)
    customer(brand, fake, tag, "wmA2", friends=[a])
    customer(brand, fake, tag, "wmB1", friends=[b], owner=b)
    # Friends of both; the owner (b) sends although a added them more recently.
    customer(brand, fake, tag, "wmAB", friends=[b, a], owner=b)
    # Friends of both, owner unknown: the most recently added friend (a) sends.
    customer(brand, fake, tag, "wmBA", friends=[b, a])
    customer(brand, fake, tag, "wmNone")  # nobody's friend: suppressed before any call
    customer(brand, fake, tag, "wmGone", friends=[a], on_wecom=[])  # deleted a on WeCom: fail_list
    sent = broadcast(brand, account, tag)
    assert sent.audience_size == 7
    run()

    calls = sorted(templates(fake), key=lambda c: c.body["sender"])
    assert [(c.body["sender"], sorted(c.body["external_userid"])) for c in calls] == [
        ("wangxm", ["wmA1", "wmA2", "wmBA", "wmGone"]),
        ("zhaomin", ["wmAB", "wmB1"]),
    ]
    assert {c.body["chat_type"] for c in calls} == {"single"}
    assert {c.body["text"]["content"] for c in calls} == {TEXT}
    rows = by_ext()
    msgid_a = next(m for m in group_msgs(fake).values() if m.creator == "wangxm").msgid
    msgid_b = next(m for m in group_msgs(fake).values() if m.creator == "zhaomin").msgid
    assert {k: (m.state, m.provider_ref) for k, m in rows.items() if m.state == "sent"} == {
        "wmA1": ("sent", msgid_a), "wmA2": ("sent", msgid_a), "wmBA": ("sent", msgid_a),
        "wmB1": ("sent", msgid_b), "wmAB": ("sent", msgid_b),
    }  # fmt: skip
    assert (rows["wmGone"].state, rows["wmGone"].error_code) == ("failed", "not_friend")
    assert (rows["wmNone"].state, rows["wmNone"].reason) == ("suppressed", "not_friend")
    assert rows["wmA1"].payload["sender"] == "wangxm"

    tasks = {t.staff_id: t for t in StaffTask.objects.all()}
    assert set(tasks) == {a.pk, b.pk}
    assert (tasks[a.pk].kind, tasks[a.pk].source_type, tasks[a.pk].source_id) == (
        "group_message", "wecom_group_msg", msgid_a,
    )  # fmt: skip
    assert tasks[a.pk].audience == 3 and tasks[a.pk].script == TEXT and "双十二会员日" in tasks[a.pk].title
    assert {t.status for t in tasks.values()} == {"pending"}

    # Nothing sent yet: a poll changes nothing.
    assert poll_group_messages()["changed"] == 0
    # Staff member a confirms in WeCom; the next poll delivers a's customers and closes a's task.
    confirm_group_message(fake, msgid_a, "wangxm")
    summary = poll_group_messages()
    assert summary["changed"] == 3 and summary["sent"] == 1
    rows = by_ext()
    assert {k: m.state for k, m in rows.items()} == {
        "wmA1": "delivered", "wmA2": "delivered", "wmBA": "delivered", "wmB1": "sent", "wmAB": "sent",
        "wmGone": "failed", "wmNone": "suppressed",
    }  # fmt: skip
    assert StaffTask.objects.get(staff=a).status == "done" and StaffTask.objects.get(staff=a).done_via == "wecom"
    assert StaffTask.objects.get(staff=b).status == "pending"
    task_a = WecomMassTask.objects.get(msgid=msgid_a)
    assert (task_a.status, task_a.delivered, task_a.not_friend, task_a.cap_hit) == ("sent", 3, 0, 0)
    # A finished task is not asked about again.
    before = len(fake.api_calls("externalcontact/get_groupmsg_task"))
    poll_group_messages()
    assert [c.body["msgid"] for c in fake.api_calls("externalcontact/get_groupmsg_task")[before:]] == [msgid_b]


def test_customers_over_the_wecom_cap_are_suppressed_by_our_gate(brand, fake, tag, account):
    a = brand.clerk_a
    update_compliance_settings(brand.workspace, daily_cap=0, weekly_cap=0)  # only WeCom's cap applies
    full = customer(brand, fake, tag, "wmFull", friends=[a])
    customer(brand, fake, tag, "wmFree", friends=[a])
    # November has 30 days: 30 WeCom mass messages this month reached wmFull already.
    OutboundMessage.objects.bulk_create(
        [
            OutboundMessage(
                workspace=brand.workspace, customer=full, account=account, medium="wecom", purpose="marketing",
                idempotency_key=f"old{n}", state="delivered", gated_at=NOON - dt.timedelta(hours=n * 12),
                created_at=NOON, updated_at=NOON,
            )
            for n in range(1, 31)
        ]
    )  # fmt: skip
    broadcast(brand, account, tag)
    run()
    [call] = templates(fake)
    assert call.body["external_userid"] == ["wmFree"]  # no API call for the capped customer
    rows = {m.customer_id: m for m in OutboundMessage.objects.filter(broadcast__isnull=False)}
    assert (rows[full.pk].state, rows[full.pk].reason) == ("suppressed", "wecom_cap")

    # 1 a day: today's message now stops the next broadcast to wmFree.
    update_compliance_settings(brand.workspace, wecom_cap_mode="day")
    assert compliance_settings(brand.workspace.pk).wecom_cap_mode == "day"
    with pytest.raises(InvalidInput) as bad:
        update_compliance_settings(brand.workspace, wecom_cap_mode="year")
    assert bad.value.field == "wecom_cap_mode"
    broadcast(brand, account, tag, name="第二波")
    run()
    assert len(templates(fake)) == 1
    assert set(OutboundMessage.objects.filter(broadcast__name="第二波").values_list("reason", flat=True)) == {
        "wecom_cap"
    }


def test_send_results_cap_hit_not_friend_and_not_confirmed(brand, fake, tag, account, clock_at):  # noqa: F811
    a, b = brand.clerk_a, brand.clerk_b
    customer(brand, fake, tag, "wmOk", friends=[a])
    customer(brand, fake, tag, "wmCapped", friends=[a])
    customer(brand, fake, tag, "wmLeft", friends=[a])
    customer(brand, fake, tag, "wmLate", friends=[b])
    broadcast(brand, account, tag)
    run()
    msgid_a = next(m for m in group_msgs(fake).values() if m.creator == "wangxm").msgid
    received_elsewhere(fake, "wmCapped", 30)  # WeCom's own cap: another tool's mass messages
    fake.contacts["wmLeft"].follows = []  # deleted the staff member after the task was created
    assert confirm_group_message(fake, msgid_a, "wangxm") == {"wmOk": 1, "wmCapped": 3, "wmLeft": 2}
    poll_group_messages()
    rows = by_ext()
    assert (rows["wmOk"].state, rows["wmOk"].error_code) == ("delivered", "")
    assert (rows["wmCapped"].state, rows["wmCapped"].error_code) == ("failed", "wecom_cap_hit")
    assert "cap hit" in rows["wmCapped"].error_message
    assert (rows["wmLeft"].state, rows["wmLeft"].error_code) == ("failed", "not_friend")
    task = WecomMassTask.objects.get(msgid=msgid_a)
    assert (task.delivered, task.cap_hit, task.not_friend) == (1, 1, 1)

    # b never confirms: after 72 hours the message fails as not confirmed and the task expires.
    clock_at(NOON + dt.timedelta(hours=71))
    poll_group_messages()
    assert by_ext()["wmLate"].state == "sent"
    clock_at(NOON + dt.timedelta(hours=73))
    assert poll_group_messages()["expired"] == 1
    late = by_ext()["wmLate"]
    assert (late.state, late.error_code) == ("failed", "not_confirmed")
    assert StaffTask.objects.get(staff=b).status == "expired"
    assert WecomMassTask.objects.get(sender_userid="zhaomin").status == "expired"


def test_token_expiry_and_a_45009_storm_while_polling(brand, fake, tag, account, monkeypatch):
    from tests.fakes import wecom as fake_module

    customer(brand, fake, tag, "wmT1", friends=[brand.clerk_a])
    customer(brand, fake, tag, "wmT2", friends=[brand.clerk_b])
    broadcast(brand, account, tag)
    original = fake_module.ROUTES[("POST", "externalcontact/add_msg_template")]

    def then_expire(fake_, query, body):
        answer = original(fake_, query, body)
        fake_.expire_tokens()  # WeCom revokes the token between the two staff members' tasks
        return answer

    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), then_expire)
    run()
    assert [c.errcode for c in fake.calls if c.api == "externalcontact/add_msg_template"] == [0, 42001, 0]
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {"sent"}
    assert WecomMassTask.objects.filter(status="open").count() == 2
    msgid = next(m.msgid for m in group_msgs(fake).values() if m.creator == "wangxm")
    confirm_group_message(fake, msgid, "wangxm")

    fake.expire_tokens()
    fake.storm(1)
    # A longer block than the poll will wait: the round stops, nothing is lost.
    t = [10_000_000.0]
    opts = {"clock": lambda: t[0], "sleep": lambda s: t.__setitem__(0, t[0] + s)}
    summary = poll_workspace(brand.workspace, max_wait=0, **opts)
    assert summary["rate_limited"] is True and summary["changed"] == 0
    assert by_ext()["wmT1"].state == "sent"
    assert WecomMassTask.objects.filter(last_polled_at__isnull=False).count() == 0
    # The block ends (its minute passed on the client's clock): the next round delivers.
    t[0] += 61
    assert poll_workspace(brand.workspace, max_wait=0, **opts)["changed"] == 1
    assert by_ext()["wmT1"].state == "delivered"
    codes = [c.errcode for c in fake.calls if c.api == "externalcontact/get_groupmsg_task"]
    assert 45009 in codes and 42001 in codes and codes[-1] == 0


def test_a_45009_within_the_wait_is_slept_through(brand, fake, tag, account):
    customer(brand, fake, tag, "wmS1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    run()
    confirm_group_message(fake, next(iter(group_msgs(fake))), "wangxm")
    fake.storm(1)
    t = [20_000_000.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        t[0] += seconds

    summary = poll_workspace(brand.workspace, max_wait=120, clock=lambda: t[0], sleep=sleep)
    assert summary["rate_limited"] is False and summary["changed"] == 1
    assert 60 in [round(s) for s in slept]


created = wecom_mass.created
intent = wecom_mass._intent


class WorkerDied(BaseException):
    """The process ends here (not an Exception: nothing in dispatch may catch it)."""


def test_a_worker_dying_after_the_task_was_created_creates_no_second_task(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    a = brand.clerk_a
    customer(brand, fake, tag, "wmD1", friends=[a])
    customer(brand, fake, tag, "wmD2", friends=[a])
    broadcast(brand, account, tag)

    def die(*args, **kwargs):
        raise WorkerDied

    monkeypatch.setattr(wecom_mass, "created", die)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(wecom_mass, "created", created)
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    assert len(templates(fake)) == 1
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {"sending"}
    stats = run()
    assert stats.recovered == 2
    assert len(templates(fake)) == 1  # matched in get_groupmsg_list_v2, not created again
    msgid = next(iter(group_msgs(fake)))
    assert set(OutboundMessage.objects.values_list("state", "provider_ref")) == {("sent", msgid)}
    assert WecomMassTask.objects.get().msgid == msgid
    assert StaffTask.objects.get(staff=a).source_id == msgid
    run()
    assert len(templates(fake)) == 1


def test_a_dead_worker_before_the_call_sends_again(brand, fake, tag, account, monkeypatch, clock_at):  # noqa: F811
    customer(brand, fake, tag, "wmE1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)

    def die(*args, **kwargs):
        raise WorkerDied

    monkeypatch.setattr(wecom_mass, "_intent", die)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(wecom_mass, "_intent", intent)
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()
    assert len(templates(fake)) == 1 and by_ext()["wmE1"].state == "sent"


def test_account_needs_the_workspace_wecom_app(brand):
    with pytest.raises(InvalidInput) as bad:
        create_account(brand.workspace, name="企微", provider="wecom", medium="wecom")
    assert bad.value.field == "provider"


def test_remind_at_most_three_times_a_day(brand, fake, tag, account, clock_at):  # noqa: F811
    customer(brand, fake, tag, "wmR1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    run()
    task = WecomMassTask.objects.get()
    assert [remind(task) for _ in range(3)] == [2, 1, 0]
    with pytest.raises(InvalidInput) as bad:
        remind(task)
    assert "3" in bad.value.message
    assert len(fake.api_calls("externalcontact/remind_groupmsg_send")) == 3
    clock_at(NOON + dt.timedelta(hours=25))
    assert remind(task) == 2


def test_default_cap_mode_is_the_month(brand):
    assert compliance_settings(brand.workspace.pk).wecom_cap_mode == "month"
    assert ComplianceSettings._meta.get_field("wecom_cap_mode").default == "month"


# ---- console -----------------------------------------------------------------------------------------


def test_console_compliance_form_sets_the_wecom_cap(personas, brand):
    from tests.test_reach_console import login

    client = login(personas.hq_admin)
    html = client.get("/compliance/").content.decode()
    assert 'data-testid="wecom-cap-mode"' in html and '<option value="month" selected>' in html
    form = {
        "daily_cap": "2", "weekly_cap": "5", "window_start": "08:00", "window_end": "21:00",
        "sms_optout_suffix": "拒收请回复R", "optout_keywords": "T", "wecom_cap_mode": "week",
    }  # fmt: skip
    assert client.post("/compliance/", form).status_code == 302
    assert compliance_settings(brand.workspace.pk).wecom_cap_mode == "week"
    html = client.post("/compliance/", {**form, "wecom_cap_mode": "year"}).content.decode()
    assert 'data-error-for="wecom_cap_mode"' in html
    assert compliance_settings(brand.workspace.pk).wecom_cap_mode == "week"


def test_broadcast_page_shows_staff_tasks_and_reminds(personas, brand, fake, tag, account):
    from tests.test_reach_console import login

    customer(brand, fake, tag, "wmC1", friends=[brand.clerk_a])
    customer(brand, fake, tag, "wmC2", friends=[brand.clerk_b])
    customer(brand, fake, tag, "wmC3", friends=[brand.clerk_b])
    sent = broadcast(brand, account, tag)
    client = login(personas.hq_admin)
    html = client.get(f"/broadcasts/{sent.pk}/").content.decode()
    assert 'data-testid="no-wecom-tasks"' in html  # queued, no task yet
    run()
    msgid_a = next(m.msgid for m in group_msgs(fake).values() if m.creator == "wangxm")
    received_elsewhere(fake, "wmC1", 30)
    confirm_group_message(fake, msgid_a, "wangxm")
    poll_group_messages()
    html = client.get(f"/broadcasts/{sent.pk}/").content.decode()
    assert html.count('data-testid="wecom-task-row"') == 2
    assert "王小美" in html and "赵敏" in html and "已发送" in html and "待确认" in html
    assert html.count('data-testid="remind"') == 1  # only the task still waiting
    task_b = WecomMassTask.objects.get(sender=brand.clerk_b)
    for left in (2, 1, 0):
        response = client.post(f"/broadcasts/{sent.pk}/", {"action": "remind", "task": task_b.pk}, follow=True)
        assert f"还可提醒 {left} 次" in response.content.decode()
    response = client.post(f"/broadcasts/{sent.pk}/", {"action": "remind", "task": task_b.pk}, follow=True)
    assert "24 小时内最多提醒 3 次" in response.content.decode()
    assert len(fake.api_calls("externalcontact/remind_groupmsg_send")) == 3
    # A store manager sees their store's staff only, and cannot remind.
    html = login(personas.manager_a).get(f"/broadcasts/{sent.pk}/").content.decode()
    assert html.count('data-testid="wecom-task-row"') == 1 and "赵敏" not in html
    assert 'data-testid="remind"' not in html
    assert (
        login(personas.manager_a).post(f"/broadcasts/{sent.pk}/", {"action": "remind", "task": task_b.pk}).status_code
        == 403
    )
    # Withdrawn: b's customers will not get it, b's to-do is cancelled, WeCom was told.
    response = client.post(f"/broadcasts/{sent.pk}/", {"action": "cancel_task", "task": task_b.pk}, follow=True)
    assert "2 位客户不会收到" in response.content.decode()
    assert [c.body for c in fake.api_calls("externalcontact/cancel_groupmsg_send")] == [{"msgid": task_b.msgid}]
    assert {by_ext()[k].error_code for k in ("wmC2", "wmC3")} == {"cancelled"}
    assert StaffTask.objects.get(staff=brand.clerk_b).status == "cancelled"
    response = client.post(f"/broadcasts/{sent.pk}/", {"action": "cancel_task", "task": task_b.pk}, follow=True)
    assert "只能取消员工尚未发送的任务" in response.content.decode()


def test_preview_counts_non_friends_and_personal_text_is_refused(brand, fake, tag, account):
    customer(brand, fake, tag, "wmP1", friends=[brand.clerk_a])
    customer(brand, fake, tag, "wmP2")  # nobody's friend
    draft = broadcasts.create_broadcast(
        brand.workspace, name="预览", account_id=account.pk, tags_any=[tag.pk], variants=[VariantIn("A", 1, body=TEXT)]
    )
    shown = broadcasts.preview(draft)
    assert (shown["would_send"], shown["suppressed"]) == (1, {"not_friend": 1})
    for body in ("{{ customer.name }}，双十二见", "点击 {{ link('https://acme.example/s') }}", "字" * 1400):
        with pytest.raises(InvalidInput) as bad:
            broadcasts.create_broadcast(
                brand.workspace, name="个性化", account_id=account.pk, tags_any=[tag.pk],
                variants=[VariantIn("A", 1, body=body)],
            )  # fmt: skip
        assert bad.value.field == "variants.0.body"


def test_a_lost_answer_is_unknown_until_polling_finds_the_task(brand, fake, tag, account, monkeypatch, clock_at):  # noqa: F811
    from tests.fakes import wecom as fake_module

    customer(brand, fake, tag, "wmL1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    original = fake_module.ROUTES[("POST", "externalcontact/add_msg_template")]

    def created_then_hang_up(fake_, query, body):
        original(fake_, query, body)  # WeCom creates the task; the connection drops before the answer
        raise ConnectionAbortedError("answer lost")

    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), created_then_hang_up)
    run()
    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), original)
    assert by_ext()["wmL1"].state == "unknown"
    clock_at(NOON + dt.timedelta(hours=2))
    run()
    assert len(group_msgs(fake)) == 1  # never resent
    assert poll_group_messages()["found"] == 1
    msgid = next(iter(group_msgs(fake)))
    assert (by_ext()["wmL1"].state, by_ext()["wmL1"].provider_ref) == ("sent", msgid)
    assert StaffTask.objects.get(staff=brand.clerk_a).source_id == msgid
    confirm_group_message(fake, msgid, "wangxm")
    poll_group_messages()
    assert by_ext()["wmL1"].state == "delivered"


def test_claims_hold_whole_runs_of_one_staff_members_customers(brand, fake, tag, account):
    # Customers of a and b arrive interleaved; the outbox rows are written in sender order, so
    # claims of 6 give each staff member one task (interleaved ids would give each two).
    for n in range(6):
        customer(brand, fake, tag, f"wmI{n}a", friends=[brand.clerk_a])
        customer(brand, fake, tag, f"wmI{n}b", friends=[brand.clerk_b])
    assert account.rate_per_second >= 10_000  # a low rate would make small claims, so many tasks
    broadcast(brand, account, tag)
    dispatch.run_once("test-worker", batch=6)
    assert sorted((c.body["sender"], len(c.body["external_userid"])) for c in templates(fake)) == [
        ("wangxm", 6), ("zhaomin", 6),
    ]  # fmt: skip


def test_api_reads_and_changes_the_wecom_cap_mode(api_key, brand):
    from tests.test_reach_api import caller

    api = caller(api_key)
    assert api("get", "/compliance").json()["wecom_cap_mode"] == "month"
    assert api("put", "/compliance", {"wecom_cap_mode": "day"}).json()["wecom_cap_mode"] == "day"
    bad = api("put", "/compliance", {"wecom_cap_mode": "year"})
    assert (bad.status_code, bad.json()["field"]) == (422, "wecom_cap_mode")
    assert compliance_settings(brand.workspace.pk).wecom_cap_mode == "day"


# ---- review findings: crashes, cancel after sending, lost creations, matching -----------------------


def test_results_polled_before_recovery_are_not_lost_when_the_worker_dies_after_creation(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    # WeCom created the task and created() ran; the worker dies before dispatch records the
    # answers. The member sends at once and a poll runs while the lease still holds.
    a = brand.clerk_a
    customer(brand, fake, tag, "wmX1", friends=[a])
    customer(brand, fake, tag, "wmX2", friends=[a])
    broadcast(brand, account, tag)

    def die(*args, **kwargs):
        raise WorkerDied

    results_for = wecom_mass._results_for
    monkeypatch.setattr(wecom_mass, "_results_for", die)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(wecom_mass, "_results_for", results_for)
    msgid = next(iter(group_msgs(fake)))
    assert set(OutboundMessage.objects.values_list("state", "provider_ref")) == {("sending", msgid)}
    assert StaffTask.objects.get(staff=a).source_id == msgid
    confirm_group_message(fake, msgid, "wangxm")
    poll_group_messages()
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {"delivered"}
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()  # recovery finds nothing left 'sending'; the delivered rows stay delivered
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {"delivered"}
    assert WecomMassTask.objects.get().status == "sent"
    assert len(templates(fake)) == 1


def test_a_poll_does_not_finish_a_task_whose_messages_are_still_sending(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    # Rows that carry no msgid yet (recorded before the stamp existed, or any other gap): the
    # task stays open until recovery has recorded them, then the next poll delivers them.
    customer(brand, fake, tag, "wmY1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)

    def die(*args, **kwargs):
        raise WorkerDied

    results_for = wecom_mass._results_for
    monkeypatch.setattr(wecom_mass, "_results_for", die)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(wecom_mass, "_results_for", results_for)
    OutboundMessage.objects.update(provider_ref="")
    msgid = next(iter(group_msgs(fake)))
    confirm_group_message(fake, msgid, "wangxm")
    poll_group_messages()
    assert WecomMassTask.objects.get().status == "open"
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()
    assert by_ext()["wmY1"].state == "sent"
    poll_group_messages()
    assert by_ext()["wmY1"].state == "delivered"
    assert WecomMassTask.objects.get().status == "sent"


def test_a_worker_dying_before_the_staff_task_is_written_still_gets_one(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    from siyu.workbench import services as workbench

    a = brand.clerk_a
    customer(brand, fake, tag, "wmZ1", friends=[a])
    broadcast(brand, account, tag)

    def die(*args, **kwargs):
        raise WorkerDied

    upsert = workbench.upsert_tasks
    monkeypatch.setattr(workbench, "upsert_tasks", die)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(workbench, "upsert_tasks", upsert)
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()
    msgid = next(iter(group_msgs(fake)))
    assert len(templates(fake)) == 1
    assert (by_ext()["wmZ1"].state, by_ext()["wmZ1"].provider_ref) == ("sent", msgid)
    assert StaffTask.objects.get(staff=a).source_id == msgid


def test_cancel_after_the_member_sent_polls_and_refuses(brand, fake, tag, account):
    from siyu.messaging.wecom_poll import cancel

    customer(brand, fake, tag, "wmK1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    run()
    task = WecomMassTask.objects.get()
    confirm_group_message(fake, task.msgid, "wangxm")  # sent after the last poll
    with pytest.raises(InvalidInput) as bad:
        cancel(task)
    assert bad.value.field == "task" and "已发送" in bad.value.message
    assert fake.api_calls("externalcontact/cancel_groupmsg_send") == []
    assert by_ext()["wmK1"].state == "delivered"
    assert WecomMassTask.objects.get().status == "sent"


def test_a_task_wecom_never_created_is_sent_again_not_unknown_forever(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    from tests.fakes import wecom as fake_module

    customer(brand, fake, tag, "wmU1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    original = fake_module.ROUTES[("POST", "externalcontact/add_msg_template")]

    def never_arrives(fake_, query, body):
        raise ConnectionAbortedError("the request never reached WeCom")

    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), never_arrives)
    run()
    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), original)
    assert by_ext()["wmU1"].state == "unknown"
    # Too early to tell (the list may lag): still unknown, nothing resent.
    clock_at(NOON + wecom_poll.UNANSWERED_AFTER + dt.timedelta(seconds=1))
    poll_group_messages()
    assert by_ext()["wmU1"].state == "unknown"
    clock_at(NOON + wecom_mass.NOT_CREATED_AFTER + dt.timedelta(seconds=1))
    poll_group_messages()
    assert by_ext()["wmU1"].state == "queued"
    first = WecomMassTask.objects.order_by("id").first()
    assert first.status == "failed" and first.msgid == ""
    run()
    assert len(group_msgs(fake)) == 1
    assert (by_ext()["wmU1"].state, by_ext()["wmU1"].provider_ref) == ("sent", next(iter(group_msgs(fake))))


def test_a_worker_dying_before_the_call_is_sent_again_once_the_list_shows_nothing(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    from siyu.wecom import client as client_module

    customer(brand, fake, tag, "wmV1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    real_post = client_module.WecomClient.post

    def die_before_template(self, api, *args, **kwargs):
        if api == "externalcontact/add_msg_template":
            raise WorkerDied
        return real_post(self, api, *args, **kwargs)

    monkeypatch.setattr(client_module.WecomClient, "post", die_before_template)
    with pytest.raises(WorkerDied):
        run()
    monkeypatch.setattr(client_module.WecomClient, "post", real_post)
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()  # the intent row is there but the list has nothing yet: cannot tell
    assert by_ext()["wmV1"].state == "unknown"
    clock_at(NOON + wecom_mass.NOT_CREATED_AFTER + dt.timedelta(seconds=1))
    poll_group_messages()
    run()
    assert len(templates(fake)) == 1 and by_ext()["wmV1"].state == "sent"


def test_two_matching_tasks_stay_unknown(brand, fake, tag, account, monkeypatch, clock_at):  # noqa: F811
    from tests.fakes import wecom as fake_module

    customer(brand, fake, tag, "wmW1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    original = fake_module.ROUTES[("POST", "externalcontact/add_msg_template")]

    def created_twice_then_hang_up(fake_, query, body):
        original(fake_, query, body)
        original(fake_, query, body)
        raise ConnectionAbortedError("answer lost")

    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), created_twice_then_hang_up)
    run()
    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), original)
    clock_at(NOON + wecom_mass.NOT_CREATED_AFTER + dt.timedelta(hours=1))
    poll_group_messages()
    assert by_ext()["wmW1"].state == "unknown"
    assert WecomMassTask.objects.get().status == "creating"


def test_a_console_task_with_the_same_text_is_not_taken_for_ours(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    from tests.fakes import wecom as fake_module
    from tests.fakes.wecom_groupmsg import GroupMsg

    customer(brand, fake, tag, "wmM1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)

    def never_arrives(fake_, query, body):
        raise ConnectionAbortedError("the request never reached WeCom")

    original = fake_module.ROUTES[("POST", "externalcontact/add_msg_template")]
    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), never_arrives)
    run()
    monkeypatch.setitem(fake_module.ROUTES, ("POST", "externalcontact/add_msg_template"), original)
    at = int(clock.now().timestamp())
    clock_at(NOON + dt.timedelta(minutes=5))
    # The member made one with the same text in WeCom itself (create_type 1) ...
    group_msgs(fake)["msgConsole"] = GroupMsg("msgConsole", "wangxm", at, TEXT, [], ["wmM1"], create_type=1)
    assert poll_group_messages()["found"] == 0
    # ... or through the API with the same text and an image ours did not have.
    del group_msgs(fake)["msgConsole"]
    image = [{"msgtype": "image", "image": {"media_id": "MEDIA1"}}]
    group_msgs(fake)["msgImage"] = GroupMsg("msgImage", "wangxm", at, TEXT, image, ["wmM1"])
    assert poll_group_messages()["found"] == 0
    assert WecomMassTask.objects.get().msgid == ""
    assert by_ext()["wmM1"].state == "unknown"


def test_a_task_wecom_keeps_refusing_to_answer_about_expires_the_staff_task(
    brand,
    fake,
    tag,
    account,
    monkeypatch,
    clock_at,  # noqa: F811
):
    from tests.fakes import wecom as fake_module
    from tests.fakes.wecom import error

    customer(brand, fake, tag, "wmQ1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    run()
    monkeypatch.setitem(
        fake_module.ROUTES,
        ("POST", "externalcontact/get_groupmsg_task"),
        lambda fake_, query, body: error(40058, "invalid msgid"),
    )
    clock_at(NOON + wecom_poll.task_window() + dt.timedelta(days=1, hours=1))
    poll_group_messages()
    assert WecomMassTask.objects.get().status == "expired"
    assert (by_ext()["wmQ1"].state, by_ext()["wmQ1"].error_code) == ("failed", "not_confirmed")
    assert StaffTask.objects.get(staff=brand.clerk_a).status == "expired"


def test_results_polled_before_dispatch_records_its_answer_are_kept(brand, fake, tag, account, monkeypatch):
    # The member sends and a poll runs between created() and the dispatcher's own record: the
    # record (guarded by state = 'sending') must not turn delivered back into sent.
    customer(brand, fake, tag, "wmF1", friends=[brand.clerk_a])
    broadcast(brand, account, tag)
    results_for = wecom_mass._results_for

    def confirm_and_poll_first(chunk, msgid, fail_list):
        confirm_group_message(fake, msgid, "wangxm")
        poll_group_messages()
        return results_for(chunk, msgid, fail_list)

    monkeypatch.setattr(wecom_mass, "_results_for", confirm_and_poll_first)
    run()
    row = by_ext()["wmF1"]
    assert (row.state, row.provider_ref) == ("delivered", WecomMassTask.objects.get().msgid)
    assert row.sent_at is not None and row.lease_until is None
    assert WecomMassTask.objects.get().status == "sent"
