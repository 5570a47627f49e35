"""The outbox, the compliance gate and dispatch, through the sandbox channel and a scripted
test channel (for provider errors)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from siyu.channels.base import Health, Outcome, SendResult
from siyu.channels.models import ChannelAccount, OptOut, SandboxMessage
from siyu.channels.registry import CHANNELS
from siyu.channels.services import create_account, record_opt_out, set_consent, update_compliance_settings
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, Identity
from siyu.messaging import dispatch
from siyu.messaging.models import OutboundMessage
from siyu.messaging.services import NewMessage, enqueue

SH = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SH)
NIGHT = dt.datetime(2026, 11, 23, 22, 30, tzinfo=SH)


@pytest.fixture
def clock_at(monkeypatch):
    """Pin siyu's clock; returns a setter."""
    state = {"now": NOON}

    def now():
        return state["now"]

    monkeypatch.setattr("siyu.core.clock.now", now)

    def set_now(value):
        state["now"] = value

    return set_now


def make_customer(ws, name, phone=None, consent=True, store=None, staff=None):
    customer = Customer.objects.create(
        workspace=ws, name=name, store=store, owner_staff=staff, created_at=NOON, updated_at=NOON
    )
    if phone:
        Identity.objects.create(workspace=ws, customer=customer, type="phone", value=phone, created_at=NOON)
    if consent:
        set_consent(ws.pk, customer.pk, channel="sms", purpose="marketing", granted=True, source="test")
    return customer


@pytest.fixture
def sandbox(brand):
    return create_account(brand.workspace, name="沙箱短信", provider="sandbox", medium="sms", rate_per_second=10_000)


def run(now=None):
    return dispatch.run_once("test-worker", now=now)


def states(**filters):
    return dict(OutboundMessage.objects.filter(**filters).values_list("customer_id", "state"))


def test_marketing_sms_is_rendered_with_suffix_and_recorded(brand, sandbox, clock_at):
    alice = make_customer(brand.workspace, "张丽", "13800000001", store=brand.store_a, staff=brand.clerk_a)
    queued, dupes = enqueue(
        sandbox,
        [NewMessage(alice.pk, "k1", "{{ customer.name }}您好，{{ store.name }}的{{ staff.name }}为您留了新品试用。")],
        purpose="marketing",
    )
    assert (queued, dupes) == (1, 0)
    stats = run()
    assert stats.delivered == 1
    record = SandboxMessage.objects.get()
    assert record.to_address == "13800000001"
    assert record.body == "张丽您好，上海南京路店的王小美为您留了新品试用。拒收请回复R"
    message = OutboundMessage.objects.get()
    assert message.state == "delivered" and message.body == record.body and message.gated_at is not None


def test_same_idempotency_key_is_queued_once(brand, sandbox, clock_at):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    assert enqueue(sandbox, [NewMessage(alice.pk, "order-1", "hi")], purpose="service") == (1, 0)
    assert enqueue(sandbox, [NewMessage(alice.pk, "order-1", "hi again")], purpose="service") == (0, 1)
    run()
    run()
    assert SandboxMessage.objects.count() == 1


def test_bad_templates_are_refused_before_anything_is_queued(brand, sandbox):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    with pytest.raises(InvalidInput) as err:
        enqueue(
            sandbox,
            [NewMessage(alice.pk, "a", "ok"), NewMessage(alice.pk, "b", "{{ customer.password }}")],
            purpose="marketing",
        )
    assert err.value.field == "items.1.body"
    with pytest.raises(InvalidInput) as err:
        enqueue(sandbox, [NewMessage(alice.pk, "c", "{{ secret_var }}")], purpose="marketing")
    assert "secret_var" in err.value.message
    with pytest.raises(InvalidInput) as err:
        enqueue(sandbox, [NewMessage(alice.pk, "d", "{% for x in %}")], purpose="marketing")
    assert err.value.field == "items.0.body"
    with pytest.raises(InvalidInput):
        enqueue(sandbox, [NewMessage(alice.pk, "e", "长" * 3000)], purpose="marketing")
    assert OutboundMessage.objects.count() == 0


def test_gate_reasons(brand, sandbox, clock_at):
    ws = brand.workspace
    ok = make_customer(ws, "可发", "13800000001")
    no_consent = make_customer(ws, "未授权", "13800000002", consent=False)
    revoked = make_customer(ws, "已撤回", "13800000003")
    set_consent(ws.pk, revoked.pk, channel="sms", purpose="marketing", granted=False, source="test")
    opted = make_customer(ws, "已退订", "13800000004")
    record_opt_out(ws.pk, [opted.pk], source="console")
    no_phone = make_customer(ws, "无手机", None)
    enqueue(
        sandbox,
        [NewMessage(c.pk, f"m{c.pk}", "新品上市") for c in (ok, no_consent, revoked, opted, no_phone)],
        purpose="marketing",
    )
    run()
    reasons = dict(OutboundMessage.objects.values_list("customer_id", "reason"))
    assert states()[ok.pk] == "delivered"
    assert reasons == {ok.pk: "", no_consent.pk: "no_consent", revoked.pk: "consent_revoked",
                       opted.pk: "opted_out", no_phone.pk: "no_address"}  # fmt: skip
    # A service message (the transactional override) still reaches the opted-out customer...
    enqueue(sandbox, [NewMessage(opted.pk, "svc", "您的订单已发货")], purpose="service")
    run()
    assert OutboundMessage.objects.get(idempotency_key="svc").state == "delivered"
    # ...without the marketing opt-out suffix.
    assert SandboxMessage.objects.get(message_id=OutboundMessage.objects.get(idempotency_key="svc").pk).body == (
        "您的订单已发货"
    )


def test_caps_across_channels_and_per_channel(brand, sandbox, clock_at):
    ws = brand.workspace
    update_compliance_settings(ws, daily_cap=2, weekly_cap=3, channel_caps={"email": {"day": 1}})
    email = create_account(ws, name="沙箱邮件", provider="sandbox", medium="email", rate_per_second=10_000)
    alice = make_customer(ws, "张丽", "13800000001")
    Identity.objects.create(workspace=ws, customer=alice, type="email", value="li@example.com", created_at=NOON)
    set_consent(ws.pk, alice.pk, channel="email", purpose="marketing", granted=True, source="test")
    enqueue(email, [NewMessage(alice.pk, "e1", "a", subject="s"), NewMessage(alice.pk, "e2", "b", subject="s")],
            purpose="marketing")  # fmt: skip
    run()
    assert OutboundMessage.objects.get(idempotency_key="e1").state == "delivered"
    assert OutboundMessage.objects.get(idempotency_key="e2").reason == "channel_cap_day"
    # Three SMS in one batch: one fits under the cross-channel daily cap of 2.
    enqueue(sandbox, [NewMessage(alice.pk, f"s{n}", "x") for n in range(3)], purpose="marketing")
    run()
    assert [OutboundMessage.objects.get(idempotency_key=f"s{n}").reason for n in range(3)] == ["", "cap_day", "cap_day"]
    # The next local day the daily cap is fresh, but the 7-day cap of 3 is reached after one more.
    clock_at(NOON + dt.timedelta(days=1))
    enqueue(sandbox, [NewMessage(alice.pk, "d2a", "x"), NewMessage(alice.pk, "d2b", "x")], purpose="marketing")
    run()
    assert OutboundMessage.objects.get(idempotency_key="d2a").state == "delivered"
    assert OutboundMessage.objects.get(idempotency_key="d2b").reason == "cap_week"
    # Service messages are never capped.
    enqueue(sandbox, [NewMessage(alice.pk, f"svc{n}", "x") for n in range(4)], purpose="service")
    run()
    assert OutboundMessage.objects.filter(idempotency_key__startswith="svc", state="delivered").count() == 4


def test_quiet_hours_hold_until_window_or_skip(brand, sandbox, clock_at):
    ws = brand.workspace
    clock_at(NIGHT)
    alice = make_customer(ws, "张丽", "13800000001")
    bob = make_customer(ws, "王强", "13800000002")
    enqueue(sandbox, [NewMessage(alice.pk, "hold", "晚安优惠")], purpose="marketing")
    enqueue(sandbox, [NewMessage(bob.pk, "skip", "晚安优惠")], purpose="marketing", quiet_policy="skip")
    enqueue(sandbox, [NewMessage(bob.pk, "svc", "验证码 1234")], purpose="service")
    run(now=NIGHT)
    held = OutboundMessage.objects.get(idempotency_key="hold")
    assert held.state == "held" and held.reason == "quiet_hours"
    assert held.not_before == dt.datetime(2026, 11, 24, 8, 0, tzinfo=SH)
    assert OutboundMessage.objects.get(idempotency_key="skip").state == "suppressed"
    assert OutboundMessage.objects.get(idempotency_key="svc").state == "delivered"
    # Still night at 07:59: nothing moves. At 08:00 the held message goes.
    run(now=dt.datetime(2026, 11, 24, 7, 59, tzinfo=SH))
    assert OutboundMessage.objects.get(idempotency_key="hold").state == "held"
    clock_at(dt.datetime(2026, 11, 24, 8, 0, tzinfo=SH))
    run()
    held.refresh_from_db()
    assert held.state == "delivered" and held.reason == ""


class ScriptedChannel:
    """A channel whose answers the test scripts: a list of outcomes per send call."""

    provider: ClassVar[str] = "scripted"
    label: ClassVar[str] = "scripted"
    media: ClassVar[tuple[str, ...]] = ("sms",)
    setting_fields: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 100

    def __init__(self):
        self.script: list[Outcome] = []
        self.sent: list[int] = []
        self.known: set[int] = set()

    def validate(self, settings, secrets):
        return None

    def send(self, account, messages):
        outcome = self.script.pop(0) if self.script else Outcome.SENT
        results = []
        for m in messages:
            if outcome in (Outcome.SENT, Outcome.DELIVERED):
                self.sent.append(m.id)
                self.known.add(m.id)
            results.append(SendResult(m.id, outcome, provider_ref=f"ref-{m.id}", error_code=outcome.value))
        return results

    def recover(self, account, messages):
        return {m.id: (SendResult(m.id, Outcome.SENT, provider_ref=f"ref-{m.id}") if m.id in self.known else None)
                for m in messages}  # fmt: skip

    def healthcheck(self, account):
        return Health(True, "ok")


@pytest.fixture
def scripted(brand, monkeypatch):
    channel = ScriptedChannel()
    monkeypatch.setitem(CHANNELS, "scripted", channel)
    account = create_account(brand.workspace, name="scripted", provider="scripted", medium="sms", rate_per_second=1000)
    return channel, account


def test_transient_errors_retry_with_backoff_then_give_up(brand, scripted, clock_at):
    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "t", "hi")], purpose="service")
    channel.script = [Outcome.TRANSIENT]
    run()
    message = OutboundMessage.objects.get()
    assert message.state == "queued" and message.attempts == 1
    assert NOON + dt.timedelta(seconds=20) <= message.not_before <= NOON + dt.timedelta(seconds=40)
    run()  # not due yet
    assert OutboundMessage.objects.get().attempts == 1
    clock_at(NOON + dt.timedelta(minutes=1))
    run()
    message.refresh_from_db()
    assert message.state == "sent" and message.attempts == 2 and channel.sent == [message.pk]
    # A message that keeps failing stops after MAX_ATTEMPTS.
    enqueue(account, [NewMessage(alice.pk, "t2", "hi")], purpose="service")
    channel.script = [Outcome.TRANSIENT] * dispatch.MAX_ATTEMPTS
    later = NOON
    for _ in range(dispatch.MAX_ATTEMPTS):
        later += dt.timedelta(hours=2)
        clock_at(later)
        run()
    failed = OutboundMessage.objects.get(idempotency_key="t2")
    assert failed.state == "failed" and failed.reason == "retries_exhausted"


def test_permanent_account_error_stops_the_account_and_keeps_the_queue(brand, scripted, clock_at):
    channel, account = scripted
    people = [make_customer(brand.workspace, f"c{n}", f"1380000000{n}") for n in range(3)]
    enqueue(account, [NewMessage(c.pk, f"k{c.pk}", "hi") for c in people], purpose="service")
    channel.script = [Outcome.ACCOUNT]
    stats = run()
    account.refresh_from_db()
    assert account.status == "disabled" and "account" in account.disabled_reason
    assert stats.accounts_disabled == [account.pk]
    assert set(states().values()) == {"queued"}
    assert all(m.attempts == 0 for m in OutboundMessage.objects.all())
    run()  # a disabled account is not dispatched
    assert channel.sent == []
    from siyu.org.models import AuditEntry

    assert AuditEntry.objects.filter(action="channel_account.disabled").exists()


def test_blocked_recipient_fails_and_is_opted_out(brand, scripted, clock_at):
    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "b", "hi")], purpose="marketing")
    channel.script = [Outcome.BLOCKED]
    run()
    message = OutboundMessage.objects.get()
    assert (message.state, message.reason) == ("failed", "provider_blocked")
    assert OptOut.objects.get(customer=alice).source == "provider"


def test_dead_worker_rows_are_recovered_without_double_send(brand, scripted, clock_at):
    channel, account = scripted
    people = [make_customer(brand.workspace, f"c{n}", f"1380000000{n}") for n in range(4)]
    enqueue(account, [NewMessage(c.pk, f"k{c.pk}", "hi") for c in people], purpose="service")
    # A worker claims all four, the provider takes two, and the worker dies before recording.
    claimed, _ = dispatch.claim(account, "dead-worker", 10, NOON)
    assert len(claimed) == 4 and set(states().values()) == {"sending"}
    channel.known = {claimed[0].id, claimed[1].id}
    channel.sent = [claimed[0].id, claimed[1].id]
    # Before the lease expires nobody touches them.
    run(now=NOON + dt.timedelta(minutes=1))
    assert set(states().values()) == {"sending"}
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    stats = run()
    assert stats.recovered == 4
    assert sorted(channel.sent) == sorted(m.id for m in claimed)  # each exactly once
    assert set(states().values()) == {"sent"}
    # The dead worker waking up later cannot overwrite the recovered rows.
    assert dispatch._apply([dispatch._result_row(claimed[0], "failed", "late")], "dead-worker") == 0


def test_a_lost_answer_is_unknown_and_never_resent(brand, scripted, clock_at):
    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "lost", "hi")], purpose="service")
    channel.script = [Outcome.UNKNOWN]
    run()
    message = OutboundMessage.objects.get()
    assert message.state == "unknown" and message.body == "hi"
    clock_at(NOON + dt.timedelta(hours=3))
    run()
    assert OutboundMessage.objects.get().state == "unknown" and channel.sent == []


def test_unknown_when_provider_cannot_tell(brand, scripted, clock_at, monkeypatch):
    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "u", "hi")], purpose="service")
    dispatch.claim(account, "dead-worker", 10, NOON)
    monkeypatch.setattr(channel, "recover", lambda account, messages: {})
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()
    assert OutboundMessage.objects.get().state == "unknown"
    run()
    assert channel.sent == []


def test_tracked_link_records_click_and_redirects(brand, sandbox, clock_at, client):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(
        sandbox, [NewMessage(alice.pk, "l", "领券 {{ link('https://shop.example.com/c?x=1') }}")], purpose="service"
    )
    run()
    message = OutboundMessage.objects.get()
    assert message.payload["links"] == ["https://shop.example.com/c?x=1"]
    url = message.body.split(" ")[1]
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 302 and response["Location"] == "https://shop.example.com/c?x=1"
    message.refresh_from_db()
    assert message.clicked_at is not None
    from siyu.tracking.models import Event

    event = Event.objects.get(name="link_clicked")
    assert event.customer_id == alice.pk and event.properties["message_id"] == message.pk
    assert client.get("/" + path[:-1] + ("0" if path[-1] != "0" else "1")).status_code == 404


def test_disabled_account_refuses_nothing_silently(brand, sandbox):
    sandbox.status = ChannelAccount.Status.DISABLED
    sandbox.save()
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(sandbox, [NewMessage(alice.pk, "q", "hi")], purpose="service")
    assert dispatch.run_once("w").claimed == 0
    assert OutboundMessage.objects.get().state == "queued"


def test_a_worker_stalled_past_its_lease_does_not_send_what_was_recovered(brand, scripted, clock_at):
    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "slow", "hi")], purpose="service")
    claimed, _ = dispatch.claim(account, "slow-worker", 10, NOON)
    # The slow worker stalls; its lease runs out and another worker recovers and sends.
    clock_at(NOON + dispatch.LEASE + dt.timedelta(seconds=1))
    run()
    assert channel.sent == [claimed[0].id]
    # The stalled worker wakes up and carries on: it must not send again.
    dispatch.send_claimed(account, claimed, "slow-worker", NOON)
    assert channel.sent == [claimed[0].id]
    assert OutboundMessage.objects.get().state == "sent"


def test_an_opt_out_survives_a_merge(brand, sandbox, clock_at):
    from siyu.customers.services import merge_customers

    ws = brand.workspace
    old = make_customer(ws, "旧档案", "13800000001")
    record_opt_out(ws.pk, [old.pk], source="sms_reply", detail="TD")
    new = make_customer(ws, "新档案", None)
    enqueue(sandbox, [NewMessage(old.pk, "queued-before-merge", "新品")], purpose="marketing")
    merge_customers(ws.pk, survivor=new.pk, merged=old.pk, reason="test")
    assert OptOut.objects.filter(customer=new).exists()
    enqueue(sandbox, [NewMessage(new.pk, "after-merge", "新品")], purpose="marketing")
    run()
    assert dict(OutboundMessage.objects.values_list("idempotency_key", "reason")) == {
        "queued-before-merge": "opted_out",
        "after-merge": "opted_out",
    }
    assert SandboxMessage.objects.count() == 0


def test_credentials_that_cannot_be_decrypted_stop_the_account_and_keep_the_queue(brand, sandbox, clock_at):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(sandbox, [NewMessage(alice.pk, "k", "hi")], purpose="service")
    ChannelAccount.objects.filter(pk=sandbox.pk).update(secret="not-a-fernet-token")
    stats = run()
    sandbox.refresh_from_db()
    assert sandbox.status == "disabled" and "SIYU_CREDENTIALS_KEY" in sandbox.disabled_reason
    assert stats.accounts_disabled == [sandbox.pk]
    assert OutboundMessage.objects.get().state == "queued"


def test_a_receipt_that_overtakes_the_worker_keeps_the_sent_record(brand, scripted, clock_at):
    from siyu.channels.base import Receipt
    from siyu.messaging.services import record_receipts

    channel, account = scripted
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    enqueue(account, [NewMessage(alice.pk, "fast", "{{ link('https://a.example.com') }}")], purpose="service")
    claimed, _ = dispatch.claim(account, "w1", 10, NOON)
    send = channel.send

    def send_and_report(config, messages):
        results = send(config, messages)
        # The provider's delivery report reaches the callback before the worker records the send.
        record_receipts(account.pk, [Receipt(status="delivered", message_id=m.id) for m in messages])
        return results

    channel.send = send_and_report
    dispatch.send_claimed(account, claimed, "w1", NOON)
    message = OutboundMessage.objects.get()
    assert message.state == "delivered" and message.delivered_at is not None
    assert message.sent_at is not None and message.payload["links"] == ["https://a.example.com"]
    assert message.provider_ref == f"ref-{message.pk}"


def test_templates_that_could_hang_or_overflow_are_refused(brand, sandbox):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    slow = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
    for body, field in (
        (slow, "items.0.body"),
        ("{{ customer['nmae'] }}", "items.0.body"),
        ("长" * 600, "items.0.body"),
    ):
        with pytest.raises(InvalidInput) as err:
            enqueue(sandbox, [NewMessage(alice.pk, "x", body)], purpose="marketing")
        assert err.value.field == field
    enqueue(sandbox, [NewMessage(alice.pk, "boom", "{{ 'x' * 1000000000 }}")], purpose="service")
    run()
    message = OutboundMessage.objects.get(idempotency_key="boom")
    assert (message.state, message.reason) == ("failed", "render_error")


def test_marketing_sms_on_an_approved_template_must_carry_the_opt_out_text(brand, sandbox, clock_at):
    from siyu.channels.services import update_compliance_settings

    alice = make_customer(brand.workspace, "张丽", "13800000001")
    with pytest.raises(InvalidInput) as err:
        enqueue(sandbox, [NewMessage(alice.pk, "p", "新品上市", provider_template="SMS_1")], purpose="marketing")
    assert err.value.field == "items.0.body"
    enqueue(sandbox, [NewMessage(alice.pk, "p", "新品上市拒收请回复R", provider_template="SMS_1")], purpose="marketing")
    # The suffix setting changes after the template was approved: the message must not go out.
    update_compliance_settings(brand.workspace, sms_optout_suffix="回T退订")
    run()
    message = OutboundMessage.objects.get()
    assert (message.state, message.reason) == ("failed", "render_error")
    assert SandboxMessage.objects.count() == 0


def test_consents_are_recorded_in_one_batch_and_the_last_change_wins(brand, clock_at):
    from siyu.channels.services import ConsentChange, set_consents
    from siyu.customers.models import Consent
    from siyu.tracking.models import Event

    ws = brand.workspace
    a, b = make_customer(ws, "甲", "13800000001", consent=False), make_customer(ws, "乙", "13800000002", consent=False)
    ids = set_consents(
        ws.pk,
        [
            ConsentChange(a.pk, "sms", "marketing", True, "store_form"),
            ConsentChange(b.pk, "email", "marketing", True, "store_form"),
            ConsentChange(a.pk, "sms", "marketing", False, "sms_reply"),
        ],
    )
    assert ids[0] == ids[2] != ids[1]
    consent = Consent.objects.get(customer=a, channel="sms", purpose="marketing")
    assert (consent.status, consent.source) == ("revoked", "sms_reply")
    assert Consent.objects.get(customer=b).status == "granted"
    assert sorted(Event.objects.filter(name__startswith="consent_").values_list("customer_id", "name")) == sorted(
        [(a.pk, "consent_revoked"), (b.pk, "consent_granted")]
    )
