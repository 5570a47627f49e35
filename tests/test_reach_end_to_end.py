"""Whole paths through the dispatcher to the local fakes: queue → gate → render → provider →
receipts / unsubscribes feeding back into the gate."""

from __future__ import annotations

import re

import pytest

from siyu.channels.models import OptOut
from siyu.channels.services import create_account, set_consent
from siyu.channels.webhook.signing import new_secret
from siyu.customers.models import Identity
from siyu.messaging import dispatch
from siyu.messaging.models import OutboundMessage
from siyu.messaging.services import NewMessage, enqueue
from tests.fakes.smtp import FakeSMTPServer
from tests.fakes.webhook_receiver import FakeWebhookReceiver
from tests.test_outbox import NOON, clock_at, make_customer  # noqa: F401  (fixture)


@pytest.fixture
def smtp():
    server = FakeSMTPServer().start()
    yield server
    server.stop()


def test_email_marketing_carries_one_click_unsubscribe_that_binds_every_channel(brand, smtp, client, clock_at):  # noqa: F811
    ws = brand.workspace
    account = create_account(
        ws, name="邮件", provider="smtp", medium="email", settings=smtp.settings(), secrets=smtp.secrets()
    )
    sms = create_account(ws, name="短信", provider="sandbox", medium="sms", rate_per_second=1000)
    alice = make_customer(ws, "林女士", "13800000001")
    Identity.objects.create(workspace=ws, customer=alice, type="email", value="lin@example.com", created_at=NOON)
    set_consent(ws.pk, alice.pk, channel="email", purpose="marketing", granted=True, source="test")
    enqueue(
        account,
        [NewMessage(alice.pk, "news-1", "{{ customer.name }}您好\n不想再收到？{{ unsubscribe_url }}", subject="月刊")],
        purpose="marketing",
    )
    stats = dispatch.run_once("w")
    assert stats.sent == 1
    [received] = smtp.received
    assert received.rcpt_tos == ["lin@example.com"]
    header = received.message["List-Unsubscribe"]
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.search(r"<(https?://[^>]+/u/[^>]+)>", header).group(1)
    assert link in received.message.get_content()  # the body's {{ unsubscribe_url }} is the same link
    # The mail provider's one-click POST (no cookies, no CSRF token).
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert OptOut.objects.get(customer=alice).source == "email_link"
    # The opt-out binds the SMS channel too.
    enqueue(sms, [NewMessage(alice.pk, "sms-1", "新品")], purpose="marketing")
    dispatch.run_once("w")
    assert OutboundMessage.objects.get(idempotency_key="sms-1").reason == "opted_out"


def test_webhook_push_is_signed_and_names_the_customer(brand, clock_at):  # noqa: F811
    ws = brand.workspace
    receiver = FakeWebhookReceiver(new_secret()).start()
    try:
        account = create_account(
            ws,
            name="App 推送",
            provider="webhook",
            medium="app",
            settings={"url": receiver.url},
            secrets={"signing_secret": receiver.secret},
        )
        alice = make_customer(ws, "林女士", None, consent=False)
        set_consent(ws.pk, alice.pk, channel="app", purpose="marketing", granted=True, source="app")
        enqueue(account, [NewMessage(alice.pk, "push-1", "{{ link('https://m.example.com/x') }}")], purpose="marketing")
        stats = dispatch.run_once("w")
        assert stats.delivered == 1
        [event] = receiver.processed.values()
        assert event["customer_id"] == alice.pk and event["links"] == ["https://m.example.com/x"]
        assert receiver.duplicates == 0 and receiver.bad_signatures == 0
    finally:
        receiver.stop()
