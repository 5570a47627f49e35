"""The signed webhook channel against a local receiver that verifies signatures and dedupes."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import time

import pytest

from siyu.channels.base import AccountConfig, Outcome, OutMessage, SettingsError
from siyu.channels.webhook import signing
from siyu.channels.webhook.channel import WebhookChannel, retry_after_seconds, webhook_id
from tests.fakes.webhook_receiver import FakeWebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"siyu-test-signing-key-0123456789").decode()
channel = WebhookChannel()


@pytest.fixture
def receiver():
    fake = FakeWebhookReceiver(SECRET).start()
    yield fake
    fake.stop()


def account(url: str, *, secret: str = SECRET, timeout: float = 5, events=None) -> AccountConfig:
    return AccountConfig(
        id=7,
        workspace_id=1,
        provider="webhook",
        medium="app",
        settings={"url": url, "events": events or [], "timeout": timeout},
        secrets={"signing_secret": secret},
        callback_token="unused",
    )


def message(n: int, **kw) -> OutMessage:
    defaults = dict(
        id=n,
        to_address=f"app:{100 + n}",
        subject="双十一",
        body=f"第 {n} 条：满 300 减 50",
        purpose="marketing",
        idempotency_key=f"bc:3:{100 + n}",
        payload={"customer_id": 100 + n, "links": ["https://acme.example/sale"]},
    )
    return OutMessage(**{**defaults, **kw})


# ---- signatures -------------------------------------------------------------------------------


def test_signature_reproduces_the_standard_webhooks_test_vector():
    # Published with the Standard Webhooks reference libraries (and Svix's): secret, id,
    # timestamp, body and the expected header value.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, msg_id, timestamp, body) == expected
    # The prefix is optional; the key is the base64-decoded bytes either way.
    assert signing.sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id, timestamp, body) == expected
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": expected}
    signing.verify(secret, headers, body, now=timestamp + 10)


def test_verify_rejects_tampering_a_wrong_secret_and_stale_or_future_timestamps():
    body = b'{"type":"order.paid"}'
    now = int(time.time())
    headers = signing.signed_headers(SECRET, "evt:7:order.paid:A1", body, timestamp=now)
    signing.verify(SECRET, headers, body)
    # A rotated key: one of several signatures matching is enough.
    both = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    signing.verify(SECRET, {k.upper(): v for k, v in both.items()}, body)
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SECRET, headers, body + b" ")
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(signing.new_secret(), headers, body)
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SECRET, headers, body, now=now + 301)
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SECRET, headers, body, now=now - 301)
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SECRET, {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}, body)


def test_new_secrets_decode_to_32_random_bytes():
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_") and len(signing.decode_secret(a)) == 32


# ---- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"url": "ftp://crm.example/x"}, {"signing_secret": SECRET}, "settings.url"),
        ({}, {"signing_secret": SECRET}, "settings.url"),
        ({"url": "https://crm.example/x", "events": ["order.shipped"]}, {"signing_secret": SECRET}, "settings.events"),
        ({"url": "https://crm.example/x", "events": "order.paid"}, {"signing_secret": SECRET}, "settings.events"),
        ({"url": "https://crm.example/x", "timeout": 0}, {"signing_secret": SECRET}, "settings.timeout"),
        ({"url": "https://crm.example/x", "timeout": "5"}, {"signing_secret": SECRET}, "settings.timeout"),
        ({"url": "https://crm.example/x"}, {}, "secrets.signing_secret"),
        ({"url": "https://crm.example/x"}, {"signing_secret": "short"}, "secrets.signing_secret"),
        # Base64 of 16 bytes: too short a key.
        (
            {"url": "https://crm.example/x"},
            {"signing_secret": "whsec_AAAAAAAAAAAAAAAAAAAAAA=="},
            "secrets.signing_secret",
        ),
        (
            {"url": "https://crm.example/x"},
            {"signing_secret": "not base64 at all, but long enough!!"},
            "secrets.signing_secret",
        ),
    ],
)
def test_validate_names_the_bad_field(settings, secrets, field):
    with pytest.raises(SettingsError) as error:
        channel.validate(settings, secrets)
    assert error.value.field == field


def test_a_webhook_account_is_created_with_its_secret_encrypted(brand):
    from siyu.channels.models import ChannelAccount
    from siyu.channels.services import account_config, create_account
    from siyu.core.errors import InvalidInput

    created = create_account(
        brand.workspace,
        name="自有 App 推送",
        provider="webhook",
        medium="app",
        settings={"url": "https://push.acme.example/siyu", "events": ["order.paid", "tag.added"], "timeout": 3},
        secrets={"signing_secret": SECRET},
    )
    stored = ChannelAccount.objects.get(pk=created.pk)
    assert SECRET not in stored.secret
    assert account_config(stored).secrets["signing_secret"] == SECRET
    with pytest.raises(InvalidInput) as error:
        create_account(brand.workspace, name="短信？", provider="webhook", medium="sms", settings={}, secrets={})
    assert error.value.field == "medium"


# ---- sending ----------------------------------------------------------------------------------


def test_messages_are_posted_signed_once_each_and_delivered(receiver):
    results = channel.send(account(receiver.url), [message(1), message(2)])

    assert [(r.message_id, r.outcome) for r in results] == [(1, Outcome.DELIVERED), (2, Outcome.DELIVERED)]
    assert results[0].provider_ref == "req-bc:3:101"
    assert receiver.order == ["bc:3:101", "bc:3:102"]
    assert receiver.bad_signatures == 0 and receiver.duplicates == 0
    assert receiver.processed["bc:3:101"] == {
        "type": "message",
        "message_id": 1,
        "customer_id": 101,
        "to": "app:101",
        "subject": "双十一",
        "body": "第 1 条：满 300 减 50",
        "purpose": "marketing",
        "links": ["https://acme.example/sale"],
    }
    sent = receiver.headers[0]
    assert sent["content-type"] == "application/json"
    assert abs(int(sent["webhook-timestamp"]) - time.time()) < 300


def test_a_domain_event_row_is_posted_as_the_event_json_it_holds(receiver):
    event = {"type": "order.paid", "occurred_at": "2026-11-11T00:00:01+00:00", "data": {"order_no": "A1"}}
    body = json.dumps(event, ensure_ascii=False)
    row = message(9, purpose="system", body=body, subject="", idempotency_key="evt:7:order.paid:A1", payload={})
    [result] = channel.send(account(receiver.url), [row])
    assert result.outcome is Outcome.DELIVERED
    assert receiver.processed["evt:7:order.paid:A1"] == event


def test_the_signature_is_what_an_independent_hmac_of_the_spec_gives(receiver):
    channel.send(account(receiver.url), [message(1)])
    sent = receiver.headers[0]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    body = json.dumps(receiver.processed["bc:3:101"], ensure_ascii=False, separators=(",", ":")).encode()
    signed = f"{sent['webhook-id']}.{sent['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert sent["webhook-signature"] == f"v1,{expected}"


def test_5xx_and_429_are_transient_with_retry_after_and_the_retry_arrives_once(receiver):
    receiver.fail_next(500)
    receiver.fail_next(429, retry_after="17")
    first = channel.send(account(receiver.url), [message(1), message(2), message(3)])
    assert [r.outcome for r in first] == [Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.DELIVERED]
    assert (first[0].error_code, first[0].retry_after) == ("http:500", None)
    assert (first[1].error_code, first[1].retry_after) == ("http:429", 17.0)

    again = channel.send(account(receiver.url), [message(1), message(2)])
    assert [r.outcome for r in again] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert sorted(receiver.order) == ["bc:3:101", "bc:3:102", "bc:3:103"]
    assert receiver.duplicates == 0


def test_410_gone_stops_the_account_and_nothing_more_is_posted(receiver):
    receiver.fail_next(410)
    results = channel.send(account(receiver.url), [message(1), message(2), message(3)])
    assert [r.outcome for r in results] == [Outcome.ACCOUNT] * 3
    assert results[0].error_code == "http:410" and "410" in results[0].error_message
    assert receiver.attempts == 1 and receiver.processed == {}


def test_a_secret_the_receiver_does_not_share_is_an_account_error(receiver):
    results = channel.send(account(receiver.url, secret=signing.new_secret()), [message(1), message(2)])
    assert [r.outcome for r in results] == [Outcome.ACCOUNT, Outcome.ACCOUNT]
    assert results[0].error_code == "http:401"
    assert receiver.bad_signatures == 1 and receiver.processed == {}


def test_another_4xx_refuses_only_that_message(receiver):
    receiver.fail_next(422)
    results = channel.send(account(receiver.url), [message(1), message(2)])
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.DELIVERED]
    assert results[0].error_code == "http:422"


def test_a_slow_receiver_times_out_as_transient_and_the_resend_is_deduped_by_webhook_id(receiver):
    receiver.slow_next()
    [first] = channel.send(account(receiver.url, timeout=0.2), [message(1)])
    assert (first.outcome, first.error_code) == (Outcome.TRANSIENT, "timeout")
    receiver.release.set()

    [again] = channel.send(account(receiver.url), [message(1)])
    assert again.outcome is Outcome.DELIVERED
    # The receiver acted on the first attempt; the resend carried the same id and was dropped.
    assert receiver.order == ["bc:3:101"] and receiver.duplicates == 1


def test_an_unreachable_endpoint_is_transient():
    fake = FakeWebhookReceiver(SECRET).start()
    url = fake.url
    fake.stop()  # nothing listens on that port now
    [result] = channel.send(account(url), [message(1)])
    assert (result.outcome, result.error_code) == (Outcome.TRANSIENT, "network")


def test_recover_says_every_in_flight_message_is_safe_to_post_again():
    assert channel.recover(account("https://x.example/"), [message(1), message(2)]) == {1: None, 2: None}


def test_healthcheck_posts_a_signed_ping(receiver):
    health = channel.healthcheck(account(receiver.url))
    assert health.ok, health.detail
    assert receiver.processed[receiver.order[0]]["type"] == "siyu.ping"
    receiver.fail_next(403)
    assert not channel.healthcheck(account(receiver.url)).ok


def test_webhook_ids_fit_a_header_and_stay_stable():
    assert webhook_id("evt:3:order.paid:A-1") == "evt:3:order.paid:A-1"
    odd = webhook_id("活动 1 / 张三")
    assert odd.startswith("h_") and odd == webhook_id("活动 1 / 张三") and odd.isascii()


def test_retry_after_takes_seconds_or_an_http_date():
    assert retry_after_seconds("120") == 120.0
    later = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90), usegmt=True)
    assert 0 < retry_after_seconds(later) <= 90
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
