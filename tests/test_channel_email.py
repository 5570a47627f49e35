"""The SMTP channel against a real local SMTP server (aiosmtpd), and the one-click unsubscribe page."""

from __future__ import annotations

import socket

import pytest
from django.test import Client

from siyu.channels.base import AccountConfig, Outcome, OutMessage, SettingsError
from siyu.channels.email.channel import (
    EmailChannel,
    message_id_header,
    parse_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)
from tests.fakes.smtp import FakeSMTPServer

channel = EmailChannel()


@pytest.fixture
def smtp():
    server = FakeSMTPServer().start()
    yield server
    server.stop()


def account(server: FakeSMTPServer, *, secrets=None, **settings) -> AccountConfig:
    return AccountConfig(
        id=3,
        workspace_id=1,
        provider="smtp",
        medium="email",
        settings=server.settings(**settings),
        secrets=server.secrets() if secrets is None else secrets,
        callback_token="unused",
    )


def mail(n: int, *, to: str | None = None, purpose: str = "marketing") -> OutMessage:
    return OutMessage(
        id=n,
        to_address=to or f"lin{n}@example.com",
        subject="双十一会员专享",
        body=f"林女士您好，第 {n} 封：满 300 减 50。",
        purpose=purpose,
        idempotency_key=f"bc:1:{n}",
    )


# ---- sending ----------------------------------------------------------------------------------


def test_a_marketing_mail_is_sent_with_one_click_unsubscribe_headers(smtp, settings):
    settings.PUBLIC_URL = "https://siyu.acme.example"
    results = channel.send(account(smtp, unsubscribe_mailto="unsub@acme.example"), [mail(41)])

    [result] = results
    assert result.outcome is Outcome.SENT
    [got] = smtp.received
    assert (got.mail_from, got.rcpt_tos, got.login) == ("news@acme.example", ["lin41@example.com"], "mailer")
    headers = got.message
    assert result.provider_ref == headers["Message-ID"] == message_id_header(41, "news@acme.example")
    assert headers["Message-ID"].endswith("@acme.example>")
    assert headers["List-Unsubscribe"] == (
        f"<https://siyu.acme.example/u/{unsubscribe_token(41)}>, <mailto:unsub@acme.example?subject=unsubscribe>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["From"].addresses[0].display_name == "Acme 美妆"
    assert headers["Subject"] == "双十一会员专享"
    assert headers.get_content().strip() == "林女士您好，第 41 封：满 300 减 50。"


def test_a_service_mail_has_no_unsubscribe_header_and_a_resend_keeps_its_message_id(smtp):
    channel.send(account(smtp, reply_to="care@acme.example"), [mail(5, purpose="service")])
    channel.send(account(smtp), [mail(5, purpose="service")])
    first, second = (r.message for r in smtp.received)
    assert "List-Unsubscribe" not in first and "List-Unsubscribe-Post" not in first
    assert first["Reply-To"] == "care@acme.example"
    assert first["Message-ID"] == second["Message-ID"]


def test_a_batch_uses_one_connection_and_one_transaction_per_message(smtp):
    results = channel.send(account(smtp), [mail(1), mail(2), mail(3)])
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert smtp.auth_attempts == 1
    assert [r.rcpt_tos for r in smtp.received] == [["lin1@example.com"], ["lin2@example.com"], ["lin3@example.com"]]


def test_an_unknown_mailbox_bounces_and_the_rest_of_the_batch_is_sent(smtp):
    smtp.faults.unknown_mailboxes.add("gone@example.com")
    results = channel.send(account(smtp), [mail(1), mail(2, to="gone@example.com"), mail(3)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.BOUNCED, Outcome.SENT]
    assert results[1].error_code == "smtp:550" and "does not exist" in results[1].error_message
    assert [r.rcpt_tos[0] for r in smtp.received] == ["lin1@example.com", "lin3@example.com"]


def test_content_refused_at_data_is_rejected_for_that_message_only(smtp):
    smtp.faults.data_554 = 1
    results = channel.send(account(smtp), [mail(1), mail(2)])
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.REJECTED, "smtp:554"), (Outcome.SENT, "")]
    assert len(smtp.received) == 1


@pytest.mark.parametrize("stage", ["mail_421", "rcpt_421"])
def test_421_is_transient_for_the_rest_of_the_batch_and_a_retry_sends_each_once(smtp, stage):
    setattr(smtp.faults, stage, 1)
    first = channel.send(account(smtp), [mail(1), mail(2)])
    assert [(r.outcome, r.error_code) for r in first] == [(Outcome.TRANSIENT, "smtp:421")] * 2
    assert smtp.received == []

    again = channel.send(account(smtp), [mail(1), mail(2)])
    assert [r.outcome for r in again] == [Outcome.SENT, Outcome.SENT]
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["lin1@example.com", "lin2@example.com"]


def test_a_wrong_password_is_an_account_error_and_nothing_is_sent(smtp):
    results = channel.send(account(smtp, secrets={"username": "mailer", "password": "wrong"}), [mail(1), mail(2)])
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.ACCOUNT, "smtp:535")] * 2
    smtp.faults.auth_535 = 2  # smtplib tries PLAIN, then LOGIN
    assert [r.outcome for r in channel.send(account(smtp), [mail(3)])] == [Outcome.ACCOUNT]
    assert smtp.received == []


def test_an_unreachable_server_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    config = AccountConfig(
        id=1,
        workspace_id=1,
        provider="smtp",
        medium="email",
        settings={"host": "127.0.0.1", "port": port, "security": "none", "from_address": "a@acme.example"},
        secrets={},
        callback_token="x",
    )
    [result] = channel.send(config, [mail(1)])
    assert (result.outcome, result.error_code) == (Outcome.TRANSIENT, "network")
    assert not channel.healthcheck(config).ok


def test_starttls_configured_against_a_server_without_it_is_an_account_error(smtp):
    [result] = channel.send(account(smtp, security="starttls"), [mail(1)])
    assert (result.outcome, result.error_code) == (Outcome.ACCOUNT, "starttls")
    health = channel.healthcheck(account(smtp, security="starttls"))
    assert not health.ok and "STARTTLS" in health.detail


def test_a_header_injection_in_the_address_is_rejected_before_the_server_sees_it(smtp):
    results = channel.send(account(smtp), [mail(1, to="lin@example.com\r\nBcc: all@example.com"), mail(2)])
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.SENT]
    assert [r.rcpt_tos for r in smtp.received] == [["lin2@example.com"]]


def test_healthcheck_logs_in_and_reports(smtp):
    health = channel.healthcheck(account(smtp))
    assert health.ok and "已登录" in health.detail
    assert smtp.auth_attempts == 1
    assert not channel.healthcheck(account(smtp, secrets={"username": "mailer", "password": "x"})).ok


def test_recover_cannot_tell_so_every_message_becomes_unknown(smtp):
    assert channel.recover(account(smtp), [mail(1), mail(2)]) == {}


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"from_address": "a@acme.example"}, {}, "settings.host"),
        ({"host": "smtp.acme.example", "port": 0, "from_address": "a@acme.example"}, {}, "settings.port"),
        ({"host": "smtp.acme.example", "security": "tls", "from_address": "a@acme.example"}, {}, "settings.security"),
        ({"host": "smtp.acme.example"}, {}, "settings.from_address"),
        ({"host": "smtp.acme.example", "from_address": "not-an-address"}, {}, "settings.from_address"),
        ({"host": "smtp.acme.example", "from_address": "a@acme.example", "reply_to": "x"}, {}, "settings.reply_to"),
        (
            {"host": "smtp.acme.example", "from_address": "a@acme.example", "from_name": "A\nB"},
            {},
            "settings.from_name",
        ),
        ({"host": "smtp.acme.example", "from_address": "a@acme.example"}, {"username": "u"}, "secrets.password"),
    ],
)
def test_validate_names_the_bad_field(settings, secrets, field):
    with pytest.raises(SettingsError) as error:
        channel.validate(settings, secrets)
    assert error.value.field == field


def test_validate_accepts_a_complete_account():
    channel.validate(
        {"host": "smtp.exmail.qq.com", "port": 465, "security": "ssl", "from_address": "news@acme.example"},
        {"username": "news@acme.example", "password": "app-password"},
    )


# ---- unsubscribe tokens and page ----------------------------------------------------------------


def test_unsubscribe_tokens_round_trip_and_refuse_forgeries():
    token = unsubscribe_token(123456)
    assert parse_unsubscribe_token(token) == 123456
    head, sig = token.split("-")
    assert parse_unsubscribe_token(f"{head}-{sig[:-1]}{'0' if sig[-1] != '0' else '1'}") is None
    assert parse_unsubscribe_token(f"{int(head, 36) + 1:x}-{sig}") is None
    for garbled in ("", "-", "abc", "zz-zz", token + "x", "-" + sig):
        assert parse_unsubscribe_token(garbled) is None


@pytest.fixture
def sent_marketing(brand):
    """An outbox row for a customer, as a broadcast leaves it."""
    from siyu.channels.services import create_account
    from siyu.core import clock
    from siyu.customers.models import Customer
    from siyu.messaging.models import OutboundMessage
    from siyu.messaging.services import NewMessage, enqueue

    now = clock.now()
    lin = Customer.objects.create(workspace=brand.workspace, name="林", created_at=now, updated_at=now)
    smtp_account = create_account(
        brand.workspace,
        name="会员邮件",
        provider="smtp",
        medium="email",
        settings={"host": "smtp.acme.example", "from_address": "news@acme.example"},
        secrets={"username": "news", "password": "pw"},
    )
    enqueue(smtp_account, [NewMessage(customer_id=lin.pk, idempotency_key="bc:9:lin", body="hi")], purpose="marketing")
    return OutboundMessage.objects.get(idempotency_key="bc:9:lin"), lin


def opt_outs(brand):
    from siyu.channels.models import OptOut

    return list(OptOut.objects.filter(workspace=brand.workspace).values_list("customer_id", "source", "detail"))


def test_get_shows_a_chinese_confirmation_and_does_not_opt_out(brand, sent_marketing):
    row, _ = sent_marketing
    response = Client().get(f"/u/{unsubscribe_token(row.pk)}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme 美妆" in page and "确认退订" in page and 'method="post"' in page
    assert response["Cache-Control"] == "no-store"
    assert opt_outs(brand) == []


def test_one_click_post_from_a_mail_provider_opts_out_once_without_a_csrf_token(brand, sent_marketing):
    row, lin = sent_marketing
    client = Client(enforce_csrf_checks=True)  # a mail provider has no cookie and no token
    url = unsubscribe_url(row.pk).removeprefix("http://127.0.0.1:8000")
    for _ in range(2):
        response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200 and "您已退订" in response.content.decode()
    assert opt_outs(brand) == [(lin.pk, "email_link", f"message:{row.pk} one-click")]
    # Opted out, the page says so on a later visit.
    assert "您已退订" in Client().get(url).content.decode()


def test_the_button_opts_out_too(brand, sent_marketing):
    row, lin = sent_marketing
    response = Client(enforce_csrf_checks=True).post(f"/u/{unsubscribe_token(row.pk)}", {"confirm": "1"})
    assert response.status_code == 200
    assert opt_outs(brand) == [(lin.pk, "email_link", f"message:{row.pk} page")]


def test_a_forged_or_unknown_token_is_404_and_records_nothing(brand, sent_marketing):
    row, _ = sent_marketing
    token = unsubscribe_token(row.pk)
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    client = Client(enforce_csrf_checks=True)
    for bad in (forged, "garbage", unsubscribe_token(row.pk + 1000)):
        assert client.post(f"/u/{bad}", "List-Unsubscribe=One-Click", content_type="text/plain").status_code == 404
        assert client.get(f"/u/{bad}").status_code == 404
    assert opt_outs(brand) == []


def test_the_opt_out_follows_a_merge_to_the_surviving_profile(brand, sent_marketing):
    from siyu.core import clock
    from siyu.customers.models import Customer
    from siyu.customers.services import merge_customers

    row, lin = sent_marketing
    now = clock.now()
    survivor = Customer.objects.create(workspace=brand.workspace, name="林（会员）", created_at=now, updated_at=now)
    merge_customers(brand.workspace.pk, survivor=survivor.pk, merged=lin.pk, reason="test")
    Client().post(f"/u/{unsubscribe_token(row.pk)}", {"confirm": "1"})
    assert [c for c, _, _ in opt_outs(brand)] == [survivor.pk]
