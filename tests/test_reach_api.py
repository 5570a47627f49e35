"""The reach API: channel accounts, compliance, opt-outs, consent, messages and broadcasts,
driven through HTTP with a workspace API key and dispatched through the sandbox channel."""

from __future__ import annotations

import datetime as dt
import json
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.channels.base import Health, SettingsError
from siyu.channels.models import ChannelAccount, OptOut, SandboxMessage
from siyu.channels.registry import CHANNELS
from siyu.channels.services import account_config, create_account, set_consent
from siyu.content.services import TemplateInput, save_template
from siyu.customers.models import Consent, Customer, Identity
from siyu.messaging import dispatch
from siyu.messaging.models import Broadcast, OutboundMessage
from siyu.messaging.rules import holdout_bucket
from siyu.org.services import create_api_key
from siyu.tags.models import CustomerTag, Tag, TagGroup

SH = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SH)
RAW_SECRET = "sk-LIVE-4f9c2a7e1b3d5f60"
NEW_SECRET = "sk-ROTATED-9a8b7c6d5e4f3a2b"


@pytest.fixture(autouse=True)
def clock_at_noon(monkeypatch):
    """Inside the marketing window (08:00-21:00 Shanghai) whatever the wall clock says."""
    monkeypatch.setattr("siyu.core.clock.now", lambda: NOON)


def caller(raw_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def call(method, path, body=None):
        if body is None:
            return getattr(client, method)(f"/api/v1{path}")
        return getattr(client, method)(f"/api/v1{path}", json.dumps(body), content_type="application/json")

    return call


@pytest.fixture
def api(api_key):
    return caller(api_key)


class VaultChannel:
    """A provider with real credentials to keep secret (no network: checks only the key's shape)."""

    provider: ClassVar[str] = "vault_sms"
    label: ClassVar[str] = "vault"
    media: ClassVar[tuple[str, ...]] = ("sms",)
    setting_fields: ClassVar[tuple[str, ...]] = ("sign_name",)
    secret_fields: ClassVar[tuple[str, ...]] = ("access_key_id", "access_key_secret")
    batch_size: ClassVar[int] = 100

    def validate(self, settings, secrets):
        if not str(secrets.get("access_key_secret", "")).startswith("sk-"):
            raise SettingsError("access_key_secret must start with sk-", field="secrets.access_key_secret")

    def send(self, account, messages):  # pragma: no cover - never dispatched in these tests
        return []

    def recover(self, account, messages):  # pragma: no cover
        return {}

    def healthcheck(self, account):
        ok = account.secrets.get("access_key_secret") in (RAW_SECRET, NEW_SECRET)
        return Health(ok, "凭证有效" if ok else "凭证无效")


@pytest.fixture
def vault(monkeypatch):
    monkeypatch.setitem(CHANNELS, VaultChannel.provider, VaultChannel())


@pytest.fixture
def sandbox(brand):
    return create_account(brand.workspace, name="沙箱短信", provider="sandbox", medium="sms", rate_per_second=10_000)


def make_customer(ws, name, phone, consent=True):
    customer = Customer.objects.create(workspace=ws, name=name, created_at=NOON, updated_at=NOON)
    Identity.objects.create(workspace=ws, customer=customer, type="phone", value=phone, created_at=NOON)
    if consent:
        set_consent(ws.pk, customer.pk, channel="sms", purpose="marketing", granted=True, source="test")
    return customer


def test_reach_endpoints_need_an_api_key(brand):
    anonymous = Client()
    for method, path in [
        ("get", "/channel-accounts"),
        ("get", "/compliance"),
        ("get", "/opt-outs"),
        ("post", "/opt-outs"),
        ("post", "/consents"),
        ("get", "/messages"),
        ("post", "/messages"),
        ("get", "/broadcasts"),
        ("post", "/broadcasts"),
    ]:
        response = getattr(anonymous, method)(f"/api/v1{path}")
        assert response.status_code == 401, (method, path)
        assert "API key" in response.json()["detail"]


def test_credentials_never_appear_in_any_answer(api, brand, vault):
    created = api(
        "post",
        "/channel-accounts",
        {
            "name": "阿里云短信",
            "provider": "vault_sms",
            "medium": "sms",
            "settings": {"sign_name": "Acme美妆"},
            "secrets": {"access_key_id": "LTAI-visible-id", "access_key_secret": RAW_SECRET},
        },
    )
    assert created.status_code == 201
    account_id = created.json()["id"]
    assert created.json()["secret_hint"] and created.json()["settings"] == {"sign_name": "Acme美妆"}
    answers = [
        created,
        api("get", "/channel-accounts"),
        api("get", f"/channel-accounts/{account_id}"),
        api("post", f"/channel-accounts/{account_id}/check"),
    ]
    assert answers[-1].json()["ok"] is True
    # Rotating only the secret keeps the key id; the answer shows neither in full.
    patched = api("patch", f"/channel-accounts/{account_id}", {"secrets": {"access_key_secret": NEW_SECRET}})
    assert patched.status_code == 200
    answers += [patched, api("post", f"/channel-accounts/{account_id}/enable")]
    for response in answers:
        text = response.content.decode()
        assert RAW_SECRET not in text and NEW_SECRET not in text and "LTAI-visible-id" not in text
        assert "access_key_secret" not in text
    stored = account_config(ChannelAccount.objects.get(pk=account_id)).secrets
    assert stored == {"access_key_id": "LTAI-visible-id", "access_key_secret": NEW_SECRET}
    assert RAW_SECRET not in ChannelAccount.objects.get(pk=account_id).secret  # encrypted at rest


def test_account_errors_name_the_field(api, brand, vault):
    bad = api("post", "/channel-accounts", {"name": "x", "provider": "no_such", "medium": "sms"})
    assert (bad.status_code, bad.json()["field"]) == (422, "provider")
    bad = api(
        "post",
        "/channel-accounts",
        {"name": "x", "provider": "vault_sms", "medium": "sms", "secrets": {"access_key_secret": "nope"}},
    )
    assert (bad.status_code, bad.json()["field"]) == (422, "secrets.access_key_secret")
    bad = api("post", "/channel-accounts", {"name": "x", "provider": "sandbox", "medium": "sms", "settings": {"a": 1}})
    assert (bad.status_code, bad.json()["field"]) == (422, "settings.a")
    assert not ChannelAccount.objects.exists()


def test_disabled_account_shows_why_and_can_be_enabled(api, brand, sandbox):
    from siyu.channels.services import disable_account

    disable_account(sandbox.pk, "签名未审核 isv.SMS_SIGNATURE_ILLEGAL")
    shown = api("get", f"/channel-accounts/{sandbox.pk}").json()
    assert shown["status"] == "disabled" and "SMS_SIGNATURE_ILLEGAL" in shown["disabled_reason"]
    enabled = api("post", f"/channel-accounts/{sandbox.pk}/enable").json()
    assert enabled["status"] == "active" and enabled["disabled_reason"] == ""
    assert ChannelAccount.objects.get(pk=sandbox.pk).status == "active"


def test_compliance_settings_read_and_change(api, brand):
    before = api("get", "/compliance").json()
    assert before["window_start"] == "08:00" and before["time_zone"] == "Asia/Shanghai"
    changed = api(
        "put",
        "/compliance",
        {"daily_cap": 1, "channel_caps": {"sms": {"week": 2}}, "window_end": "20:30", "optout_keywords": ["TD"]},
    )
    assert changed.status_code == 200
    body = api("get", "/compliance").json()
    assert (body["daily_cap"], body["weekly_cap"], body["window_end"]) == (1, before["weekly_cap"], "20:30")
    assert body["channel_caps"] == {"sms": {"week": 2}} and body["optout_keywords"] == ["TD"]
    bad = api("put", "/compliance", {"window_start": "8 o'clock"})
    assert (bad.status_code, bad.json()["field"]) == (422, "window_start")
    bad = api("put", "/compliance", {"channel_caps": {"fax": {"day": 1}}})
    assert (bad.status_code, bad.json()["field"]) == (422, "channel_caps.fax")


def test_another_workspaces_objects_are_not_found(api, brand, other_workspace):
    foreign_account = create_account(other_workspace, name="别家短信", provider="sandbox", medium="sms")
    stranger = make_customer(other_workspace, "外人", "13900000009")
    api_other = caller(create_api_key(workspace_slug=other_workspace.slug, name="other")[1])
    queued = api_other(
        "post",
        "/messages",
        {"account_id": foreign_account.pk, "purpose": "service", "items": [
            {"customer_id": stranger.pk, "idempotency_key": "o1", "body": "hi"}]},
    ).json()  # fmt: skip
    message_id = queued["ids"][0]
    broadcast = api_other(
        "post",
        "/broadcasts",
        {"name": "别家群发", "account_id": foreign_account.pk, "tags_any": [_tag(other_workspace).pk],
         "variants": [{"label": "A", "body": "hi"}]},
    ).json()  # fmt: skip
    for path in [
        f"/channel-accounts/{foreign_account.pk}",
        f"/messages/{message_id}",
        f"/broadcasts/{broadcast['id']}",
        f"/broadcasts/{broadcast['id']}/report",
    ]:
        assert api("get", path).status_code == 404, path
    for path in ["check", "enable"]:
        assert api("post", f"/channel-accounts/{foreign_account.pk}/{path}").status_code == 404
    for path in ["preview", "send", "cancel"]:
        assert api("post", f"/broadcasts/{broadcast['id']}/{path}").status_code == 404
    assert api("patch", f"/channel-accounts/{foreign_account.pk}", {"rate_per_second": 1}).status_code == 404
    assert api("delete", f"/opt-outs/{stranger.pk}").status_code == 404
    # Sending through their account, or to their customer, is refused too.
    through = api("post", "/messages", {"account_id": foreign_account.pk, "purpose": "service",
                                        "items": [{"customer_id": stranger.pk, "idempotency_key": "x", "body": "x"}]})  # fmt: skip
    assert (through.status_code, through.json()["field"]) == (404, "account_id")
    mine = create_account(brand.workspace, name="沙箱", provider="sandbox", medium="sms")
    to_them = api("post", "/messages", {"account_id": mine.pk, "purpose": "service",
                                        "items": [{"customer_id": stranger.pk, "idempotency_key": "x", "body": "x"}]})  # fmt: skip
    assert to_them.json()["rejected"] == [{"index": 0, "field": "customer_id", "message": to_them.json()["rejected"][0]["message"]}]  # fmt: skip
    assert api("get", "/messages").json()["items"] == [] and api("get", "/broadcasts").json()["items"] == []
    assert Broadcast.objects.get(pk=broadcast["id"]).status == "draft"


def _tag(ws, name="会员"):
    group, _ = TagGroup.objects.get_or_create(workspace=ws, name="等级")
    return Tag.objects.create(workspace=ws, group=group, name=name)


def test_bad_template_in_second_variant_is_a_field_error(api, brand, sandbox):
    tag = _tag(brand.workspace)
    response = api(
        "post",
        "/broadcasts",
        {
            "name": "双十一预热",
            "account_id": sandbox.pk,
            "tags_any": [tag.pk],
            "variants": [
                {"label": "A", "body": "{{ customer.name }}，双十一提前购"},
                {"label": "B", "body": "{{ customer.password }}"},
            ],
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "variants.1.body"
    assert not Broadcast.objects.exists()
    shape = api("post", "/broadcasts", {"name": "x", "account_id": sandbox.pk, "tags_any": [tag.pk],
                                        "variants": [{"label": "A", "body": "hi"}, {"body": "no label"}]})  # fmt: skip
    assert shape.status_code == 422
    assert {"field": "variants.1.label", "message": "field required"} in shape.json()["detail"]


def test_messages_batch_queues_good_items_and_reports_bad_ones(api, brand, sandbox):
    ws = brand.workspace
    alice = make_customer(ws, "张丽", "13800000001")
    bob = make_customer(ws, "王强", "13800000002")
    template = save_template(ws, TemplateInput(name="发货通知", medium="sms", purpose="service",
                                               body="{{ customer.name }}，您的订单已发货，券码 {{ coupon_code }}"))  # fmt: skip
    email_template = save_template(ws, TemplateInput(name="邮件", medium="email", subject="s", body="b"))
    items = [
        {"customer_id": alice.pk, "idempotency_key": "order-1", "template_id": template.pk,
         "variables": {"coupon_code": "GIFT88"}},
        {"customer_id": bob.pk, "idempotency_key": "order-2", "body": "{{ customer.password }}"},
        {"customer_id": 999_999, "idempotency_key": "order-3", "body": "hi"},
        {"customer_id": bob.pk, "body": "no key"},
        {"customer_id": bob.pk, "idempotency_key": "order-5", "template_id": email_template.pk},
        {"customer_id": bob.pk, "idempotency_key": "order-6", "body": "hi", "variables": {"password": "x"}},
        {"customer_id": bob.pk, "idempotency_key": "order-7", "body": "{{ customer.name }}，您的包裹已签收"},
        "not an object",
    ]  # fmt: skip
    response = api("post", "/messages", {"account_id": sandbox.pk, "purpose": "service", "items": items})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (3, "idempotency_key"),
        (5, ""),
        (7, ""),
        (1, "body"),
        (2, "customer_id"),
        (4, "template_id"),
    ]
    assert "customer.password" in next(r["message"] for r in body["rejected"] if r["index"] == 1)
    assert set(OutboundMessage.objects.values_list("idempotency_key", flat=True)) == {"order-1", "order-7"}
    assert body["ids"][0] == OutboundMessage.objects.get(idempotency_key="order-1").pk
    assert body["ids"][6] == OutboundMessage.objects.get(idempotency_key="order-7").pk
    assert [body["ids"][i] for i in (1, 2, 3, 4, 5, 7)] == [None] * 6

    dispatch.run_once("w")
    detail = api("get", f"/messages/{body['ids'][0]}").json()
    assert detail["state"] == "delivered" and detail["reason"] == ""
    assert detail["body"] == "张丽，您的订单已发货，券码 GIFT88"
    assert detail["provider_ref"] == f"sandbox-{body['ids'][0]}" and detail["sent_at"] is not None
    assert SandboxMessage.objects.get(message_id=body["ids"][0]).body == detail["body"]


def test_repeated_messages_batch_reports_duplicates_and_sends_once(api, brand, sandbox):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    request = {
        "account_id": sandbox.pk,
        "purpose": "service",
        "items": [
            {"customer_id": alice.pk, "idempotency_key": "pay-1", "body": "支付成功"},
            {"customer_id": alice.pk, "idempotency_key": "pay-2", "body": "积分到账"},
        ],
    }
    first = api("post", "/messages", request).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (2, 0, [])
    again = api("post", "/messages", request).json()
    assert (again["accepted"], again["duplicates"]) == (2, 2)
    assert again["ids"] == first["ids"]
    # A key repeated inside one batch is queued once too.
    twice = {**request, "items": [{"customer_id": alice.pk, "idempotency_key": "pay-3", "body": "x"}] * 2}
    answer = api("post", "/messages", twice).json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 1) and answer["ids"][0] == answer["ids"][1]
    assert OutboundMessage.objects.count() == 3
    dispatch.run_once("w")
    dispatch.run_once("w")
    assert SandboxMessage.objects.count() == 3


def test_broadcast_preview_send_dispatch_report(api, brand, sandbox):
    ws = brand.workspace
    tag = _tag(ws)
    members = [make_customer(ws, f"会员{n}", f"138000001{n:02d}") for n in range(24)]
    no_consent = make_customer(ws, "未授权", "13800000199", consent=False)
    for customer in [*members, no_consent]:
        CustomerTag.objects.create(workspace=ws, customer=customer, tag=tag, created_at=NOON)
    created = api(
        "post",
        "/broadcasts",
        {
            "name": "会员日",
            "account_id": sandbox.pk,
            "tags_any": [tag.pk],
            "holdout_percent": 25,
            "variants": [{"label": "A", "body": "{{ customer.name }}，会员日满减"}, {"label": "B", "body": "会员日到"}],
        },
    )
    assert created.status_code == 201
    broadcast = created.json()
    assert broadcast["status"] == "draft" and [v["label"] for v in broadcast["variants"]] == ["A", "B"]
    everyone = [*members, no_consent]
    held_out = {c.pk for c in everyone if holdout_bucket(c.pk, broadcast["id"]) < 2500}
    treated = [c for c in everyone if c.pk not in held_out]

    preview = api("post", f"/broadcasts/{broadcast['id']}/preview").json()
    assert preview["audience"] == len(everyone) and preview["holdout"] == len(held_out)
    expect_no_consent = 0 if no_consent.pk in held_out else 1
    assert preview["suppressed"] == ({"no_consent": 1} if expect_no_consent else {})
    assert preview["would_send"] == len(treated) - expect_no_consent

    sent = api("post", f"/broadcasts/{broadcast['id']}/send").json()
    assert sent["status"] == "sending" and sent["audience_size"] == len(everyone)
    dispatch.run_once("w")

    report = api("get", f"/broadcasts/{broadcast['id']}/report").json()
    assert report["holdout"] == len(held_out) and report["sent"] == preview["would_send"]
    assert report["delivered"] == preview["would_send"] and report["suppressed_total"] == expect_no_consent
    assert sum(v["sent"] for v in report["variants"]) == report["sent"]
    assert SandboxMessage.objects.count() == report["sent"]
    detail = api("get", f"/broadcasts/{broadcast['id']}").json()
    assert detail["status"] == "sent"
    assert detail["counts"]["holdout"] == len(held_out) and detail["counts"]["delivered"] == report["sent"]
    listed = api("get", f"/messages?broadcast_id={broadcast['id']}&state=holdout&limit=200").json()
    assert {m["customer_id"] for m in listed["items"]} == held_out
    again = api("post", f"/broadcasts/{broadcast['id']}/send")
    assert (again.status_code, again.json()["field"]) == (422, "status")


def test_cancel_stops_a_draft_once(api, brand, sandbox):
    tag = _tag(brand.workspace)
    created = api("post", "/broadcasts", {"name": "x", "account_id": sandbox.pk, "tags_all": [tag.pk],
                                          "variants": [{"label": "A", "body": "hi"}]}).json()  # fmt: skip
    cancelled = api("post", f"/broadcasts/{created['id']}/cancel").json()
    assert cancelled["broadcast"]["status"] == "cancelled" and cancelled["stopped"] == 0
    twice = api("post", f"/broadcasts/{created['id']}/cancel")
    assert (twice.status_code, twice.json()["field"]) == (422, "status")
    assert [b["status"] for b in api("get", "/broadcasts?status=cancelled").json()["items"]] == ["cancelled"]


def test_opt_out_through_the_api_suppresses_marketing(api, brand, sandbox):
    ws = brand.workspace
    alice = make_customer(ws, "张丽", "13800000001", consent=False)
    granted = api(
        "post",
        "/consents",
        {"items": [{"customer_id": alice.pk, "channel": "sms", "purpose": "marketing", "granted": True,
                    "source": "小程序授权弹窗"}]},
    ).json()  # fmt: skip
    assert granted["accepted"] == 1
    assert Consent.objects.get(customer=alice, channel="sms").status == "granted"
    opted = api("post", "/opt-outs", {"items": [{"phone": "138 0000 0001", "detail": "客服来电"}]}).json()
    assert (opted["accepted"], opted["duplicates"], opted["ids"]) == (1, 0, [alice.pk])
    assert OptOut.objects.get(customer=alice).source == "api"
    queued = api(
        "post",
        "/messages",
        {"account_id": sandbox.pk, "purpose": "marketing", "items": [
            {"customer_id": alice.pk, "idempotency_key": "promo-1", "body": "新品上市"}]},
    ).json()  # fmt: skip
    dispatch.run_once("w")
    message = api("get", f"/messages/{queued['ids'][0]}").json()
    assert (message["state"], message["reason"]) == ("suppressed", "opted_out")
    assert not SandboxMessage.objects.exists()
    page = api("get", "/opt-outs").json()
    assert [(o["customer_id"], o["source"], o["detail"]) for o in page["items"]] == [(alice.pk, "api", "客服来电")]
    assert api("get", f"/messages?customer_id={alice.pk}&state=suppressed").json()["items"][0]["reason"] == "opted_out"
    # Opting in again through the API lifts it; a second withdrawal has nothing to lift.
    assert api("delete", f"/opt-outs/{alice.pk}").status_code == 204
    assert api("delete", f"/opt-outs/{alice.pk}").status_code == 404
    assert not OptOut.objects.exists()


def test_opt_out_and_consent_batches_report_unknown_customers_per_item(api, brand, other_workspace):
    ws = brand.workspace
    alice = make_customer(ws, "张丽", "13800000001")
    bob = make_customer(ws, "王强", "13800000002")
    stranger = make_customer(other_workspace, "外人", "13900000009")
    Identity.objects.create(workspace=ws, customer=bob, type="email", value="bob@example.com", created_at=NOON)
    opted = api(
        "post",
        "/opt-outs",
        {"items": [{"customer_id": alice.pk}, {"customer_id": stranger.pk}, {"phone": "13900000009"},
                   {"email": "BOB@example.com"}, {"customer_id": alice.pk, "phone": "13800000001"},
                   {"customer_id": alice.pk, "source": "sms_reply"}, {"source": "fax"}]},
    ).json()  # fmt: skip
    assert opted["accepted"] == 3 and opted["duplicates"] == 1
    assert [(r["index"], r["field"]) for r in opted["rejected"]] == [(4, ""), (6, "source"), (1, "customer_id"),
                                                                    (2, "phone")]  # fmt: skip
    assert set(OptOut.objects.values_list("customer_id", flat=True)) == {alice.pk, bob.pk}
    consents = api(
        "post",
        "/consents",
        {"items": [{"customer_id": bob.pk, "channel": "email", "purpose": "marketing", "granted": False,
                    "source": "退订链接"},
                   {"customer_id": stranger.pk, "channel": "sms", "granted": True, "source": "x"},
                   {"customer_id": bob.pk, "channel": "fax", "granted": True, "source": "x"},
                   {"customer_id": bob.pk, "channel": "sms", "granted": True}]},
    ).json()  # fmt: skip
    assert consents["accepted"] == 1
    assert [(r["index"], r["field"]) for r in consents["rejected"]] == [(2, "channel"), (3, "source"),
                                                                       (1, "customer_id")]  # fmt: skip
    assert Consent.objects.get(customer=bob, channel="email").status == "revoked"
    assert not Consent.objects.filter(customer=stranger, source="x").exists()
    too_many = api("post", "/consents", {"items": [{}] * 1001})
    assert too_many.status_code == 413


def test_message_list_pages_newest_first(api, brand, sandbox):
    alice = make_customer(brand.workspace, "张丽", "13800000001")
    api("post", "/messages", {"account_id": sandbox.pk, "purpose": "service",
                              "items": [{"customer_id": alice.pk, "idempotency_key": f"k{n}", "body": "x"} for n in range(5)]})  # fmt: skip
    seen, after = [], None
    while True:
        page = api("get", "/messages?limit=2" + (f"&after={after}" if after else "")).json()
        seen += [m["idempotency_key"] for m in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ["k4", "k3", "k2", "k1", "k0"]
    assert api("get", "/messages?state=nonsense").status_code == 422
    assert api("get", "/messages/0").status_code == 404


def test_sms_accounts_show_their_callback_urls(api, brand, vault, monkeypatch):
    sms_urls = pytest.importorskip("siyu.channels.sms.urls")
    monkeypatch.setitem(sms_urls.CALLBACK_NAMES, "vault_sms", {"report": "aliyun_report", "reply": "aliyun_reply"})
    created = api("post", "/channel-accounts", {"name": "短信", "provider": "vault_sms", "medium": "sms",
                                                "secrets": {"access_key_secret": RAW_SECRET}}).json()  # fmt: skip
    token = ChannelAccount.objects.get(pk=created["id"]).callback_token
    assert created["callback_urls"]["report"].endswith(f"/callbacks/sms/aliyun/{token}/report")
    assert set(api("get", f"/channel-accounts/{created['id']}").json()["callback_urls"]) == {"report", "reply"}
    sandbox = api("post", "/channel-accounts", {"name": "沙箱", "provider": "sandbox", "medium": "sms"}).json()
    assert sandbox["callback_urls"] == {}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["\x00", "a\x00b", "13800000001", "{{ customer.name }}", "{% if %}", "sms", "sandbox"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
KEYS = ["name", "provider", "medium", "settings", "secrets", "rate_per_second", "account_id", "purpose", "items",
        "customer_id", "idempotency_key", "body", "template_id", "variables", "phone", "email", "channel", "granted",
        "source", "tags_any", "tags_all", "segment_id", "holdout_percent", "scheduled_at", "variants", "label",
        "daily_cap", "channel_caps", "window_start", "optout_keywords"]  # fmt: skip
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
bodies = st.one_of(
    json_values,
    shaped,
    st.fixed_dictionaries(
        {"items": st.lists(shaped, max_size=3)},
        optional={"account_id": st.just("ACCOUNT") | json_values, "purpose": st.sampled_from(["marketing", "x"])},
    ),
    st.fixed_dictionaries(
        {"variants": st.lists(shaped, max_size=3), "account_id": st.just("ACCOUNT") | json_values},
        optional={"name": json_values, "tags_any": json_values},
    ),
)
WRITES = [
    ("post", "/channel-accounts"),
    ("put", "/compliance"),
    ("post", "/opt-outs"),
    ("post", "/consents"),
    ("post", "/messages"),
    ("post", "/broadcasts"),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, target=st.sampled_from(WRITES))
def test_random_json_never_causes_a_500(api, brand, sandbox, body, target):
    method, path = target
    if isinstance(body, dict) and body.get("account_id") == "ACCOUNT":
        body = {**body, "account_id": sandbox.pk}
    response = api(method, path, body)
    assert response.status_code < 500, response.content
