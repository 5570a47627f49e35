"""The SMS channels against local fakes of Aliyun Dysmsapi and Tencent Cloud SMS, and the
inbound callbacks (delivery reports, replies feeding the opt-out)."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from django.test import Client

from siyu.channels.base import Outcome, OutMessage
from siyu.channels.models import OptOut
from siyu.channels.services import account_config, create_account
from siyu.channels.sms import aliyun as aliyun_module
from siyu.channels.sms.aliyun import AliyunSmsChannel
from siyu.channels.sms.tencent import TencentSmsChannel, _fit_session, session_context, session_ids_contain
from siyu.channels.sms.urls import callback_urls
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.messaging.models import OutboundMessage
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.tencent_sms import FakeTencentSms

TIMEOUT = 0.4  # client timeout in these tests; faults sleep past it


def message(id_: int, phone: str, template: str = "SMS_1001", **params: str) -> OutMessage:
    return OutMessage(
        id=id_,
        to_address=phone,
        subject="",
        body="",
        purpose="marketing",
        idempotency_key=f"k{id_}",
        payload={"provider_template": template, "params": params or {"name": "张三"}},
    )


def by_id(results):
    assert len({r.message_id for r in results}) == len(results), "one result per message"
    return {r.message_id: r for r in results}


# ---- Aliyun ------------------------------------------------------------------------------


@pytest.fixture
def aliyun():
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def aliyun_account(brand, aliyun):
    return create_account(
        brand.workspace,
        name="阿里云短信",
        provider="aliyun_sms",
        medium="sms",
        settings={"endpoint": aliyun.url, "sign_name": "阿里云短信测试"},
        secrets={"access_key_id": aliyun.access_key_id, "access_key_secret": aliyun.access_key_secret},
    )


@pytest.fixture
def aliyun_config(aliyun_account):
    return account_config(aliyun_account)


def test_aliyun_single_message_is_a_signed_send_sms_with_our_id_as_out_id(aliyun, aliyun_config):
    results = AliyunSmsChannel(timeout=TIMEOUT).send(
        aliyun_config, [message(7, "+86 138-0000-0001", name="张三", coupon="A8")]
    )
    [sent] = aliyun.sends
    assert (sent.action, sent.phone, sent.template, sent.out_id) == ("SendSms", "13800000001", "SMS_1001", "7")
    assert sent.params == {"name": "张三", "coupon": "A8"}
    assert sent.sign_name == "阿里云短信测试"
    assert results == [results[0]] and results[0].outcome == Outcome.SENT
    assert results[0].provider_ref == sent.biz_id


def test_aliyun_same_template_goes_in_batches_of_100_and_other_templates_apart(aliyun, aliyun_config):
    messages = [message(n, f"139{n:08d}", name=f"顾客{n}") for n in range(1, 151)]
    messages.append(message(500, "+85261234567", template="SMS_2002"))
    results = by_id(AliyunSmsChannel(timeout=TIMEOUT).send(aliyun_config, messages))

    batch_calls = [r for r in aliyun.requests if r["Action"] == "SendBatchSms"]
    assert [len(json.loads(r["PhoneNumberJson"])) for r in batch_calls] == [100, 50]
    assert all(
        json.loads(r["SignNameJson"]) == ["阿里云短信测试"] * len(json.loads(r["PhoneNumberJson"])) for r in batch_calls
    )
    assert len(aliyun.sends) == 151 and len({s.phone for s in aliyun.sends}) == 151
    assert aliyun.sent_to("13900000042")[0].params == {"name": "顾客42"}
    assert results[42].provider_ref == aliyun.sent_to("13900000042")[0].biz_id
    assert results[42].provider_ref == results[1].provider_ref != results[120].provider_ref
    # International numbers: country code without "+", sent alone with OutId.
    [hk] = aliyun.sent_to("85261234567")
    assert (hk.action, hk.template, hk.out_id) == ("SendSms", "SMS_2002", "500")
    assert all(r.outcome == Outcome.SENT for r in results.values())


def test_aliyun_two_messages_to_one_number_never_share_a_batch(aliyun, aliyun_config):
    messages = [message(1, "13800000001"), message(2, "13800000001"), message(3, "13800000002")]
    by_id(AliyunSmsChannel(timeout=TIMEOUT).send(aliyun_config, messages))
    for request in aliyun.requests:
        if request["Action"] == "SendBatchSms":
            numbers = json.loads(request["PhoneNumberJson"])
            assert len(numbers) == len(set(numbers))
    assert len(aliyun.sent_to("13800000001")) == 2


def test_aliyun_wrong_secret_gets_signature_error_and_stops_the_account(aliyun, aliyun_config):
    config = account_config_with(aliyun_config, secrets={**aliyun_config.secrets, "access_key_secret": "wrong"})
    [result] = AliyunSmsChannel(timeout=TIMEOUT).send(config, [message(1, "13800000001")])
    assert (result.outcome, result.error_code) == (Outcome.ACCOUNT, "SignatureDoesNotMatch")
    assert aliyun.sends == []


def account_config_with(config, **changes):
    from dataclasses import replace

    return replace(config, **changes)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"code": "isv.BUSINESS_LIMIT_CONTROL", "message": "触发小时级流控Permits:5"}, Outcome.TRANSIENT),
        ({"code": "Throttling.User", "message": "Request was denied due to user flow control."}, Outcome.TRANSIENT),
        ({"status": 503}, Outcome.TRANSIENT),
        ({"code": "isv.DAY_LIMIT_CONTROL"}, Outcome.TRANSIENT),
        ({"code": "isv.MONTH_LIMIT_CONTROL"}, Outcome.TRANSIENT),
        ({"code": "isv.MOBILE_NUMBER_ILLEGAL"}, Outcome.REJECTED),
        ({"code": "isv.BLACK_KEY_CONTROL_LIMIT"}, Outcome.REJECTED),
        ({"code": "InvalidAccessKeyId.NotFound"}, Outcome.ACCOUNT),
        ({"code": "isv.SMS_TEMPLATE_ILLEGAL"}, Outcome.ACCOUNT),
        ({"code": "isv.SMS_SIGNATURE_ILLEGAL"}, Outcome.ACCOUNT),
        ({"code": "isv.OUT_OF_SERVICE"}, Outcome.ACCOUNT),
        ({"code": "isv.DENY_IP_RANGE"}, Outcome.ACCOUNT),
    ],
)
def test_aliyun_error_codes_map_to_outcomes(aliyun, aliyun_config, fault, outcome):
    aliyun.fail_next(**fault)
    [result] = AliyunSmsChannel(timeout=TIMEOUT).send(aliyun_config, [message(1, "13800000001")])
    assert result.outcome == outcome
    assert result.error_code == fault.get("code", "http_503")
    assert aliyun.sends == []


def test_aliyun_flow_control_and_quotas_say_how_long_to_wait(aliyun, aliyun_config):
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    aliyun.fail_next(code="isv.BUSINESS_LIMIT_CONTROL", message="触发小时级流控Permits:5")
    aliyun.fail_next(code="isv.DAY_LIMIT_CONTROL")
    aliyun.fail_next(code="isv.MONTH_LIMIT_CONTROL")
    hour, day, month = (channel.send(aliyun_config, [message(n, "13800000001")])[0] for n in (1, 2, 3))
    assert hour.retry_after == 3600
    china = clock.now().astimezone(dt.timezone(dt.timedelta(hours=8)))
    midnight = (china + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(day.retry_after - (midnight - china).total_seconds()) < 5
    assert day.retry_after <= month.retry_after <= 31 * 86400


def test_aliyun_timeout_is_transient_and_the_retry_sends_once(aliyun, aliyun_config):
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    aliyun.fail_next(delay=TIMEOUT * 2)
    [first] = channel.send(aliyun_config, [message(1, "13800000001")])
    assert first.outcome == Outcome.TRANSIENT and first.error_code == "timeout"
    assert first.retry_after == aliyun_module.RECHECK_AFTER_SECONDS
    [second] = channel.send(aliyun_config, [retry(message(1, "13800000001"))])
    assert second.outcome == Outcome.SENT
    assert len(aliyun.sent_to("13800000001")) == 1


def test_aliyun_retry_after_a_late_acceptance_is_found_by_out_id_not_resent(aliyun, aliyun_config):
    """The first attempt's answer was lost and Aliyun's records lagged; the retry looks the
    message up by OutId first and finds it, so nothing is sent twice."""
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    channel.send(aliyun_config, [message(5, "13800000005")])  # stands in for the accepted first attempt
    [again] = channel.send(aliyun_config, [retry(message(5, "13800000005"))])
    assert again.outcome == Outcome.SENT
    assert len(aliyun.sent_to("13800000005")) == 1


def retry(m: OutMessage) -> OutMessage:
    return OutMessage(m.id, m.to_address, m.subject, m.body, m.purpose, m.idempotency_key, {**m.payload, "attempt": 2})


def test_aliyun_lost_answer_is_confirmed_by_out_id_instead_of_resent(aliyun, aliyun_config):
    aliyun.fail_next(delay=TIMEOUT * 2, accept=True)  # accepted, answer too late
    [result] = AliyunSmsChannel(timeout=TIMEOUT).send(aliyun_config, [message(9, "13800000001")])
    assert result.outcome == Outcome.SENT
    assert [s.out_id for s in aliyun.sends] == ["9"]


def test_aliyun_batch_refused_for_one_number_is_retried_one_by_one(aliyun, aliyun_config):
    aliyun.fail_next(code="isv.MOBILE_NUMBER_ILLEGAL")  # the batch as a whole
    aliyun.fail_next(code="isv.MOBILE_NUMBER_ILLEGAL")  # then the first single
    results = by_id(
        AliyunSmsChannel(timeout=TIMEOUT).send(
            aliyun_config, [message(1, "13800000001"), message(2, "13800000002"), message(3, "13800000003")]
        )
    )
    assert [results[n].outcome for n in (1, 2, 3)] == [Outcome.REJECTED, Outcome.SENT, Outcome.SENT]
    assert sorted((s.phone, s.out_id) for s in aliyun.sends) == [("13800000002", "2"), ("13800000003", "3")]


def test_aliyun_message_without_template_or_number_is_rejected_without_a_call(aliyun, aliyun_config):
    bad = OutMessage(1, "13800000001", "", "hi", "marketing", "k1", payload={})
    results = by_id(AliyunSmsChannel(timeout=TIMEOUT).send(aliyun_config, [bad, message(2, "12345")]))
    assert results[1].outcome == results[2].outcome == Outcome.REJECTED
    assert aliyun.requests == []


def test_aliyun_recover_finds_a_sent_message_and_reports_an_unsent_one_as_safe(aliyun, aliyun_config):
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    sent, unsent = message(11, "13800000001"), message(12, "13800000002")
    channel.send(aliyun_config, [sent])
    found = channel.recover(aliyun_config, [sent, unsent])
    assert found[11] is not None and found[11].outcome == Outcome.SENT
    assert found[12] is None
    aliyun.fail_next(status=503)
    assert channel.recover(aliyun_config, [unsent]) == {}  # the query failed: cannot tell


def test_aliyun_recover_leaves_a_batched_message_unknown(aliyun, aliyun_config):
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    batch = [message(21, "13800000001"), message(22, "13800000002")]
    channel.send(aliyun_config, batch)
    assert channel.recover(aliyun_config, batch) == {}  # no OutId in a batch: never resent blindly


def test_aliyun_recover_without_the_template_still_leaves_a_batched_message_unknown(aliyun, aliyun_config):
    """The dispatcher's recovery probes carry no provider template: a batch record (no OutId)
    of any template to the number must still count as "cannot tell", never as "not sent"."""
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    batch = [message(31, "13800000003"), message(32, "13800000004")]
    channel.send(aliyun_config, batch)
    probes = [
        OutMessage(m.id, m.to_address, "", m.body, m.purpose, m.idempotency_key, {"attempted_at": "x"}) for m in batch
    ]
    assert channel.recover(aliyun_config, probes) == {}
    assert len(aliyun.sends) == 2


def test_aliyun_healthcheck_tells_bad_credentials_from_an_unreachable_endpoint(aliyun, aliyun_config):
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    assert channel.healthcheck(aliyun_config).ok
    bad = channel.healthcheck(
        account_config_with(aliyun_config, secrets={**aliyun_config.secrets, "access_key_id": "LTAIunknown"})
    )
    assert not bad.ok and "凭证无效" in bad.detail and "InvalidAccessKeyId.NotFound" in bad.detail
    down = channel.healthcheck(
        account_config_with(aliyun_config, settings={**aliyun_config.settings, "endpoint": closed_url()})
    )
    assert not down.ok and "无法连接" in down.detail


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"sign_name": "测试"}, {"access_key_id": "id"}, "secrets.access_key_secret"),
        ({}, {"access_key_id": "id", "access_key_secret": "s"}, "settings.sign_name"),
        ({"sign_name": "测试", "endpoint": "ftp://dysmsapi.aliyuncs.com"}, None, "settings.endpoint"),
        ({"sign_name": "测试", "endpoint": "http://dysmsapi.aliyuncs.com"}, None, "settings.endpoint"),
        ({"sign_name": "测试", "region": "Hangzhou!"}, None, "settings.region"),
    ],
)
def test_aliyun_settings_are_checked_before_anything_is_stored(brand, settings, secrets, field):
    with pytest.raises(InvalidInput) as caught:
        create_account(
            brand.workspace,
            name="x",
            provider="aliyun_sms",
            medium="sms",
            settings=settings,
            secrets=secrets or {"access_key_id": "id", "access_key_secret": "s"},
        )
    assert caught.value.field == field


# ---- Tencent -----------------------------------------------------------------------------


@pytest.fixture
def tencent():
    with FakeTencentSms() as fake:
        yield fake


@pytest.fixture
def tencent_account(brand, tencent):
    return create_account(
        brand.workspace,
        name="腾讯云短信",
        provider="tencent_sms",
        medium="sms",
        settings={"endpoint": tencent.url, "sdk_app_id": tencent.sdk_app_id, "sign_name": "腾讯云测试"},
        secrets={"secret_id": tencent.secret_id, "secret_key": tencent.secret_key},
    )


@pytest.fixture
def tencent_config(tencent_account):
    return account_config(tencent_account)


def tmessage(id_: int, phone: str, params: dict[str, str] | None = None, order=None, template="1110") -> OutMessage:
    payload = {"provider_template": template, "params": params if params is not None else {"1": "张三"}}
    if order is not None:
        payload["param_order"] = order
    return OutMessage(id_, phone, "", "", "marketing", f"k{id_}", payload=payload)


def test_tencent_single_send_uses_e164_param_order_and_message_id_as_session(tencent, tencent_config):
    msg = tmessage(31, "13800000001", {"minutes": "5", "code": "1234"}, order=["code", "minutes"])
    [result] = TencentSmsChannel(timeout=TIMEOUT).send(tencent_config, [msg])
    [sent] = tencent.sends
    assert (sent.phone, sent.template, sent.params, sent.session_context) == (
        "+8613800000001",
        "1110",
        ["1234", "5"],
        "31",
    )
    assert (result.outcome, result.provider_ref) == (Outcome.SENT, sent.serial_no)


def test_tencent_params_without_order_follow_numeric_then_sorted_keys():
    from siyu.channels.sms.tencent import template_param_set

    assert template_param_set({"params": {"10": "j", "2": "b", "1": "a"}}) == ["a", "b", "j"]
    assert template_param_set({"params": {"name": "n", "code": "c"}}) == ["c", "n"]
    with pytest.raises(InvalidInput):
        template_param_set({"params": {"a": "1"}, "param_order": ["a", "b"]})


def test_tencent_batches_share_params_and_answer_per_number(tencent, tencent_config):
    tencent.number_codes.update(
        {
            "+8613800000002": "FailedOperation.PhoneNumberInBlacklist",
            "+8613800000003": "LimitExceeded.PhoneNumberDailyLimit",
            "+8613800000004": "InvalidParameterValue.IncorrectPhoneNumber",
        }
    )
    messages = [tmessage(40 + n, f"1380000000{n}", {"1": "双十一"}) for n in range(1, 5)]
    messages.append(tmessage(50, "13800000005", {"1": "别的参数"}))
    results = by_id(TencentSmsChannel(timeout=TIMEOUT).send(tencent_config, messages))
    sends = [body for action, body in tencent.requests if action == "SendSms"]
    assert [len(b["PhoneNumberSet"]) for b in sends] == [4, 1]
    assert all(session_ids_contain(sends[0]["SessionContext"], n) for n in (41, 42, 43, 44))
    assert not session_ids_contain(sends[0]["SessionContext"], 50)
    assert results[41].outcome == Outcome.SENT
    assert results[42].outcome == Outcome.BLOCKED
    assert results[43].outcome == Outcome.TRANSIENT and results[43].retry_after > 0
    assert results[44].outcome == Outcome.REJECTED
    assert results[50].outcome == Outcome.SENT and sends[1]["TemplateParamSet"] == ["别的参数"]
    assert sorted(s.phone for s in tencent.sends) == ["+8613800000001", "+8613800000005"]


def test_tencent_cuts_at_200_numbers_and_keeps_session_context_within_512_bytes(tencent, tencent_config):
    messages = [tmessage(1000 + n, f"139{n:08d}") for n in range(250)]
    by_id(TencentSmsChannel(timeout=TIMEOUT).send(tencent_config, messages))
    sends = [body for action, body in tencent.requests if action == "SendSms"]
    assert [len(b["PhoneNumberSet"]) for b in sends] == [200, 50]
    assert len(tencent.sends) == 250
    # Scattered ids (no runs) are cut further, every part's context still naming its members.
    scattered = [(tmessage(10_000_000 + 7 * n, f"139{n:08d}"), f"+86139{n:08d}") for n in range(200)]
    parts = _fit_session(scattered)
    assert len(parts) > 1 and sum(len(p) for p in parts) == 200
    for part in parts:
        context = session_context([m.id for m, _n in part])
        assert len(context.encode()) <= 512
        assert all(session_ids_contain(context, m.id) for m, _n in part)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("AuthFailure.SecretIdNotFound", Outcome.ACCOUNT),
        ("FailedOperation.SignatureIncorrectOrUnapproved", Outcome.ACCOUNT),
        ("FailedOperation.TemplateIncorrectOrUnapproved", Outcome.ACCOUNT),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", Outcome.ACCOUNT),
        ("InternalError.Timeout", Outcome.TRANSIENT),
        ("RequestLimitExceeded", Outcome.TRANSIENT),
    ],
)
def test_tencent_top_level_errors_apply_to_every_message(tencent, tencent_config, code, outcome):
    tencent.fail_next(code=code)
    results = TencentSmsChannel(timeout=TIMEOUT).send(
        tencent_config, [tmessage(1, "13800000001"), tmessage(2, "13800000002")]
    )
    assert [r.outcome for r in results] == [outcome, outcome]
    assert {r.error_code for r in results} == {code}
    assert tencent.sends == []


def test_tencent_5xx_is_transient_and_a_lost_answer_is_unknown_not_resent(tencent, tencent_config):
    channel = TencentSmsChannel(timeout=TIMEOUT)
    tencent.fail_next(status=502)
    assert channel.send(tencent_config, [tmessage(1, "13800000001")])[0].outcome == Outcome.TRANSIENT
    assert channel.send(tencent_config, [tmessage(1, "13800000001")])[0].outcome == Outcome.SENT
    # The request was written and the answer never came: Tencent cannot be asked whether it
    # accepted it, so the message is "unknown" (the dispatcher never resends those).
    tencent.fail_next(delay=TIMEOUT * 2, accept=True)
    [timed_out] = channel.send(tencent_config, [tmessage(2, "13800000002")])
    assert (timed_out.outcome, timed_out.error_code) == (Outcome.UNKNOWN, "timeout")
    assert len([s for s in tencent.sends if s.phone.endswith("13800000001")]) == 1


def test_tencent_wrong_secret_and_stale_clock_are_refused_by_signature_checks(tencent, tencent_config, monkeypatch):
    channel = TencentSmsChannel(timeout=TIMEOUT)
    wrong = account_config_with(tencent_config, secrets={**tencent_config.secrets, "secret_key": "nope"})
    [result] = channel.send(wrong, [tmessage(1, "13800000001")])
    assert (result.outcome, result.error_code) == (Outcome.ACCOUNT, "AuthFailure.SignatureFailure")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - dt.timedelta(minutes=6))
    [result] = channel.send(tencent_config, [tmessage(1, "13800000001")])
    assert (result.outcome, result.error_code) == (Outcome.ACCOUNT, "AuthFailure.SignatureExpire")
    assert tencent.sends == []


def test_tencent_recover_finds_a_reported_message_and_cannot_vouch_for_silence(tencent, tencent_config):
    channel = TencentSmsChannel(timeout=TIMEOUT)
    sent, silent = tmessage(61, "13800000001"), tmessage(62, "13800000002")
    channel.send(tencent_config, [sent])
    found = channel.recover(tencent_config, [sent, silent])
    assert found[61].outcome == Outcome.DELIVERED and found[61].provider_ref == tencent.sends[0].serial_no
    assert 62 not in found  # no report is not proof of no send: unknown, never resent blindly


def test_tencent_healthcheck_reports_bad_credentials(tencent, tencent_config):
    channel = TencentSmsChannel(timeout=TIMEOUT)
    assert channel.healthcheck(tencent_config).ok
    bad = channel.healthcheck(
        account_config_with(tencent_config, secrets={**tencent_config.secrets, "secret_id": "AKIDx"})
    )
    assert not bad.ok and "AuthFailure.SecretIdNotFound" in bad.detail and "凭证无效" in bad.detail


def test_tencent_settings_need_a_numeric_sdk_app_id(brand):
    with pytest.raises(InvalidInput) as caught:
        create_account(
            brand.workspace,
            name="t",
            provider="tencent_sms",
            medium="sms",
            settings={"sdk_app_id": "app-1", "sign_name": "腾讯云测试"},
            secrets={"secret_id": "a", "secret_key": "b"},
        )
    assert caught.value.field == "settings.sdk_app_id"


# ---- callbacks ---------------------------------------------------------------------------


def outbox_row(account, *, phone: str, ref: str, state: str = "sent", key: str = ""):
    now = clock.now()
    return OutboundMessage.objects.create(
        workspace_id=account.workspace_id,
        account=account,
        medium="sms",
        purpose="marketing",
        idempotency_key=key or f"{phone}:{ref}:{OutboundMessage.objects.count()}",
        to_address=phone,
        state=state,
        provider_ref=ref,
        created_at=now,
        updated_at=now,
        sent_at=now,
    )


def customer_with_phone(workspace, phone: str) -> int:
    from siyu.customers.services import upsert_customers

    result = upsert_customers(workspace, [{"identities": [{"type": "phone", "value": phone}]}], source="test")
    return result.ids[0]


def post(url: str, body) -> tuple[int, dict]:
    response = Client().post(url, data=json.dumps(body, ensure_ascii=False), content_type="application/json")
    return response.status_code, response.json()


def states(*rows):
    for row in rows:
        row.refresh_from_db()
    return [row.state for row in rows]


def test_callback_urls_are_absolute_and_name_the_account_token(aliyun_account, settings):
    settings.PUBLIC_URL = "https://crm.example.com"
    urls = callback_urls(aliyun_account)
    token = aliyun_account.callback_token
    assert urls == {
        "report": f"https://crm.example.com/callbacks/sms/aliyun/{token}/report",
        "reply": f"https://crm.example.com/callbacks/sms/aliyun/{token}/reply",
    }


def test_aliyun_reports_move_sent_rows_to_delivered_and_failed(aliyun, aliyun_account, aliyun_config):
    # Rows as the dispatcher leaves them: sent, with the provider's BizId as provider_ref.
    one, two, three = (outbox_row(aliyun_account, phone=f"1380000000{n}", ref="") for n in (1, 2, 3))
    channel = AliyunSmsChannel(timeout=TIMEOUT)
    results = channel.send(aliyun_config, [message(one.pk, one.to_address)])
    results += channel.send(aliyun_config, [message(row.pk, row.to_address) for row in (two, three)])
    for result in results:
        OutboundMessage.objects.filter(pk=result.message_id).update(provider_ref=result.provider_ref)
    single, first, second = aliyun.sends
    assert single.out_id == str(one.pk) and first.out_id == second.out_id == ""  # batch: BizId + phone
    items = [aliyun.report_item(single), aliyun.report_item(first), aliyun.report_item(second, success=False)]
    status, body = post(callback_urls(aliyun_account)["report"], items)
    assert (status, body) == (200, {"code": 0, "msg": "接收成功"})
    assert states(one, two, three) == ["delivered", "delivered", "failed"]
    assert three.error_code == "MOBILE_NOT_ON_SERVICE"
    # A retried push changes nothing more.
    assert post(callback_urls(aliyun_account)["report"], items)[0] == 200
    assert states(one, two, three) == ["delivered", "delivered", "failed"]


def test_forged_callbacks_get_403_and_change_nothing(aliyun_account, tencent_account):
    row = outbox_row(aliyun_account, phone="13800000001", ref="900^0")
    item = {"phone_number": "13800000001", "success": True, "biz_id": "900^0", "out_id": str(row.pk)}
    assert post("/callbacks/sms/aliyun/not-the-token/report", [item])[0] == 403
    # Another provider's token does not open this endpoint either.
    assert post(f"/callbacks/sms/aliyun/{tencent_account.callback_token}/report", [item])[0] == 403
    status, body = post("/callbacks/sms/tencent/wrong/status", [])
    assert status == 403 and body["result"] != 0
    assert states(row) == ["sent"]


def test_malformed_reports_get_400_and_only_valid_items_apply(aliyun_account):
    url = callback_urls(aliyun_account)["report"]
    row = outbox_row(aliyun_account, phone="13800000001", ref="901^0")
    response = Client().post(url, data=b"{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["msg"]
    assert post(url, {"phone_number": "13800000001"})[0] == 400  # an object, not an array
    good = {"phone_number": "13800000001", "success": True, "biz_id": "901^0", "out_id": "", "err_code": "DELIVERED"}
    status, body = post(url, [good, {"phone_number": "1", "success": "yes"}])
    assert status == 400 and "[1]" in body["msg"]
    assert states(row) == ["delivered"]


def test_reports_for_unknown_messages_change_nothing(aliyun_account, tencent_account):
    row = outbox_row(aliyun_account, phone="13800000001", ref="902^0")
    other = {"phone_number": "13800000009", "success": False, "biz_id": "902^0", "out_id": ""}
    foreign = {"phone_number": "13800000001", "success": False, "biz_id": "777^0", "out_id": "999999"}
    assert post(callback_urls(aliyun_account)["report"], [other, foreign])[0] == 200
    tencent_row = outbox_row(tencent_account, phone="13800000001", ref="2645:1")
    item = {"report_status": "FAIL", "sid": "2645:does-not-exist", "mobile": "13800000001", "nationcode": "86"}
    assert post(callback_urls(tencent_account)["status"], [item]) == (200, {"result": 0, "errmsg": "OK"})
    assert states(row, tencent_row) == ["sent", "sent"]


def test_tencent_status_callbacks_map_each_number_by_serial_no(tencent, tencent_account, tencent_config):
    tencent.fail_numbers.add("+8613800000002")
    results = by_id(
        TencentSmsChannel(timeout=TIMEOUT).send(
            tencent_config, [tmessage(1, "13800000001"), tmessage(2, "13800000002")]
        )
    )
    ok = outbox_row(tencent_account, phone="13800000001", ref=results[1].provider_ref)
    failed = outbox_row(tencent_account, phone="13800000002", ref=results[2].provider_ref)
    items = [tencent.status_item(s) for s in tencent.sends]
    assert post(callback_urls(tencent_account)["status"], items) == (200, {"result": 0, "errmsg": "OK"})
    assert states(ok, failed) == ["delivered", "failed"]
    assert failed.error_code == "MK:0001"


@pytest.mark.parametrize("text", ["退订", "td", " T D "])
def test_aliyun_optout_reply_opts_the_customer_out(brand, aliyun_account, text):
    customer = customer_with_phone(brand.workspace, "13800000001")
    item = FakeAliyunSms.reply_item("13800000001", text, sequence_id=123)
    assert post(callback_urls(aliyun_account)["reply"], [item]) == (200, {"code": 0, "msg": "接收成功"})
    optout = OptOut.objects.get(workspace=brand.workspace, customer_id=customer)
    assert optout.source == "sms_reply" and optout.detail == text


def test_normal_reply_is_a_timeline_event_recorded_once_and_no_optout(brand, aliyun_account):
    from siyu.tracking.models import Event

    customer = customer_with_phone(brand.workspace, "13800000001")
    url = callback_urls(aliyun_account)["reply"]
    items = [
        FakeAliyunSms.reply_item("13800000001", "好的，周末去店里", sequence_id=555),
        FakeAliyunSms.reply_item("13900000000", "陌生号码", sequence_id=556),  # no such customer
    ]
    assert post(url, items)[0] == 200
    assert post(url, items)[0] == 200  # Aliyun retries the push
    events = Event.objects.filter(workspace=brand.workspace, name="sms_replied")
    assert [(e.customer_id, e.properties["content"]) for e in events] == [(customer, "好的，周末去店里")]
    assert not OptOut.objects.filter(workspace=brand.workspace).exists()


def test_tencent_reply_object_with_r_opts_out_and_is_idempotent(brand, tencent_account):
    from siyu.tracking.models import Event

    customer = customer_with_phone(brand.workspace, "13800000001")
    url = callback_urls(tencent_account)["reply"]
    item = FakeTencentSms.reply_item("13800000001", "R", when=1_760_000_000)
    assert post(url, item) == (200, {"result": 0, "errmsg": "OK"})
    assert post(url, item)[0] == 200
    assert OptOut.objects.filter(workspace=brand.workspace, customer_id=customer).count() == 1
    assert Event.objects.filter(workspace=brand.workspace, name="sms_replied", customer_id=customer).count() == 1
    assert post(url, {"mobile": "13800000001"})[0] == 400  # no text / time
