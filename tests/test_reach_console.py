"""The reach console (触达): broadcasts, channel accounts, compliance settings, opt-out list,
and the reach card on the customer profile — through the pages, as operators use them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from siyu.channels import crypto
from siyu.channels.models import ChannelAccount, ComplianceSettings, OptOut
from siyu.channels.services import create_account, disable_account, record_opt_out, set_consent
from siyu.customers.models import Customer, Identity
from siyu.messaging import broadcasts, dispatch
from siyu.messaging.broadcasts import VariantIn
from siyu.messaging.models import Broadcast, OutboundMessage
from siyu.messaging.rules import HOLDOUT_MULT
from siyu.messaging.services import NewMessage, enqueue
from siyu.org.models import AuditEntry
from siyu.tags.models import CustomerTag, Tag, TagGroup
from tests.conftest import PASSWORD
from tests.test_outbox import NOON, SH, clock_at  # noqa: F401  (fixture)

RAW_SECRET = "pa55-Very-Secret-7319"


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def number(html: str, testid: str) -> int:
    found = re.search(rf'data-testid="{testid}">([\d,]+)<', html)
    assert found, f"{testid} not on the page"
    return int(found.group(1).replace(",", ""))


@pytest.fixture
def sandbox(brand):
    return create_account(brand.workspace, name="沙箱短信", provider="sandbox", medium="sms", rate_per_second=10_000)


@pytest.fixture
def vip(brand):
    """A tag carried by 30 customers with phones; every third has no marketing consent."""
    ws = brand.workspace
    tag = Tag.objects.create(workspace=ws, group=TagGroup.objects.create(workspace=ws, name="等级"), name="VIP")
    for n in range(30):
        c = Customer.objects.create(
            workspace=ws, name=f"会员{n}", store=brand.store_a, created_at=NOON, updated_at=NOON
        )
        Identity.objects.create(workspace=ws, customer=c, type="phone", value=f"1390000{n:04d}", created_at=NOON)
        CustomerTag.objects.create(workspace=ws, customer=c, tag=tag, created_at=NOON)
        if n % 3:
            set_consent(ws.pk, c.pk, channel="sms", purpose="marketing", granted=True, source="test")
    return tag


def broadcast_form(sandbox, tag, **overrides) -> dict:
    data = {
        "name": "双十二预热",
        "audience": "tags",
        "tags_any": [str(tag.pk)],
        "account": str(sandbox.pk),
        "purpose": "marketing",
        "holdout_percent": "10",
        "quiet_policy": "hold",
        "timing": "now",
        "conversion_days": "7",
        "variants.0.label": "A",
        "variants.0.weight": "1",
        "variants.0.body": "{{ customer.name }}，双十二提前购",
        "variants.1.label": "B",
        "variants.1.weight": "1",
        "variants.1.body": "双十二好礼等你来",
    }
    data.update(overrides)
    return data


# ---- pages and roles -------------------------------------------------------------------------------


def test_every_page_renders_and_explains_itself_when_empty(personas):
    client = login(personas.hq_admin)
    html = client.get("/broadcasts/").content.decode()
    assert 'data-testid="broadcasts-empty"' in html and "一次性给一批客户发送同一条消息" in html
    assert "/broadcasts/new/" in html
    html = client.get("/broadcasts/new/").content.decode()
    assert 'data-testid="no-accounts"' in html
    html = client.get("/channel-accounts/").content.decode()
    assert 'data-testid="accounts-empty"' in html and "沙箱" in html
    assert "沙箱（只记录不发送）" in client.get("/channel-accounts/new/").content.decode()
    html = client.get("/compliance/").content.decode()
    assert 'value="拒收请回复R"' in html and 'value="08:00"' in html
    assert 'data-testid="optouts-empty"' in client.get("/compliance/opt-outs/").content.decode()
    # The navigation offers the reach group.
    assert "触达" in html and "/channel-accounts/" in html


def test_pages_render_with_data(personas, brand, sandbox, vip, clock_at):  # noqa: F811
    b = broadcasts.create_broadcast(
        brand.workspace, name="周末上新", account_id=sandbox.pk, tags_any=[vip.pk], variants=[VariantIn("A", body="hi")]
    )
    client = login(personas.hq_admin)
    html = client.get("/broadcasts/").content.decode()
    assert 'data-testid="broadcast-row"' in html and "周末上新" in html and "草稿" in html
    assert "任一标签：VIP" in html
    assert client.get(f"/broadcasts/{b.pk}/").status_code == 200
    html = client.get("/channel-accounts/").content.decode()
    assert "沙箱短信" in html and "沙箱（只记录不发送）" in html
    assert client.get(f"/channel-accounts/{sandbox.pk}/").status_code == 200


def test_roles(personas, brand, sandbox, vip, clock_at):  # noqa: F811
    b = broadcasts.create_broadcast(
        brand.workspace, name="周末上新", account_id=sandbox.pk, tags_any=[vip.pk], variants=[VariantIn("A", body="hi")]
    )
    clerk = login(personas.clerk_a)
    for url in ("/broadcasts/", "/broadcasts/new/", f"/broadcasts/{b.pk}/", "/channel-accounts/",
                f"/channel-accounts/{sandbox.pk}/", "/compliance/", "/compliance/opt-outs/"):  # fmt: skip
        assert clerk.get(url).status_code == 403, url
    # Store managers and analysts see broadcasts but cannot create or send them.
    for user in (personas.manager_a, personas.analyst):
        client = login(user)
        assert client.get("/broadcasts/").status_code == 200
        html = client.get(f"/broadcasts/{b.pk}/").content.decode()
        assert 'data-testid="confirm-send"' not in html
        assert client.get("/broadcasts/new/").status_code == 403
        assert client.post(f"/broadcasts/{b.pk}/", {"action": "send"}).status_code == 403
        assert client.get("/channel-accounts/").status_code == 403
    assert login(personas.manager_a).get("/compliance/opt-outs/").status_code == 403
    b.refresh_from_db()
    assert b.status == "draft"


def test_broadcasts_are_workspace_scoped(personas, other_workspace):
    account = create_account(other_workspace, name="沙箱", provider="sandbox", medium="sms")
    tag = Tag.objects.create(
        workspace=other_workspace, group=TagGroup.objects.create(workspace=other_workspace, name="g"), name="t"
    )
    other = broadcasts.create_broadcast(
        other_workspace,
        name="别家的群发",
        account_id=account.pk,
        tags_any=[tag.pk],
        variants=[VariantIn("A", body="x")],
    )
    client = login(personas.hq_admin)
    assert client.get(f"/broadcasts/{other.pk}/").status_code == 404
    assert client.get(f"/channel-accounts/{account.pk}/").status_code == 404
    assert "别家的群发" not in client.get("/broadcasts/").content.decode()


# ---- create, preview, send, report ------------------------------------------------------------------


def test_bad_variant_shows_the_error_at_its_field(personas, sandbox, vip, clock_at):  # noqa: F811
    client = login(personas.hq_admin)
    response = client.post(
        "/broadcasts/new/", broadcast_form(sandbox, vip, **{"variants.1.body": "{{ customer.password }}"})
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-error-for="variants.1.body"' in html and "is-invalid" in html
    assert "{{ customer.password }}</textarea>" in html  # what was typed is kept
    assert 'value="双十二预热"' in html
    assert Broadcast.objects.count() == 0
    # No audience: the error sits at the audience picker.
    html = client.post("/broadcasts/new/", broadcast_form(sandbox, vip, tags_any=[])).content.decode()
    assert 'data-error-for="audience"' in html


def test_variant_errors_follow_the_form_row_when_a_row_is_left_empty(personas, sandbox, vip, clock_at):  # noqa: F811
    form = broadcast_form(sandbox, vip, **{"variants.1.label": "", "variants.1.body": ""})
    form.update({"variants.2.label": "C", "variants.2.body": "{% for x in %}"})
    html = login(personas.hq_admin).post("/broadcasts/new/", form).content.decode()
    assert 'data-error-for="variants.2.body"' in html and 'data-error-for="variants.1.body"' not in html


def test_good_broadcast_previews_then_sends_and_reports(personas, brand, sandbox, vip, clock_at):  # noqa: F811
    client = login(personas.hq_admin)
    response = client.post("/broadcasts/new/", broadcast_form(sandbox, vip))
    b = Broadcast.objects.get(name="双十二预热")
    assert response.status_code == 302 and response["Location"] == f"/broadcasts/{b.pk}/"
    assert b.holdout_bp == 1000 and [v.label for v in b.variants.order_by("id")] == ["A", "B"]
    # Opt out a consenting member the holdout does not take (the split hashes ids, which differ
    # between databases), so the report must show them as suppressed for opting out.
    opted = next(
        c
        for c in Customer.objects.filter(name__in=[f"会员{n}" for n in range(30) if n % 3]).order_by("pk")
        if (c.pk * HOLDOUT_MULT + b.pk * 40503) % 10000 >= b.holdout_bp
    )
    record_opt_out(brand.workspace.pk, [opted.pk], source="console")
    preview = broadcasts.preview(b)
    html = client.get(response["Location"]).content.decode()
    assert number(html, "preview-audience") == 30
    assert number(html, "preview-holdout") == preview["holdout"]
    assert number(html, "preview-would-send") == preview["would_send"] > 0
    assert number(html, "preview-suppressed") == preview["suppressed_total"] > 0
    assert "未获营销授权" in html and 'data-testid="suppressed-chart"' in html
    assert 'data-testid="confirm-send"' in html

    response = client.post(f"/broadcasts/{b.pk}/", {"action": "send"})
    assert response.status_code == 302
    assert OutboundMessage.objects.filter(broadcast=b).count() == 30
    assert OutboundMessage.objects.filter(broadcast=b, state="queued").count() == 30 - preview["holdout"]
    sending = client.get(f"/broadcasts/{b.pk}/").content.decode()
    assert 'data-testid="progress"' in sending and 'hx-trigger="every 3s"' in sending
    assert client.get(f"/broadcasts/{b.pk}/?part=report", HTTP_HX_REQUEST="true").status_code == 200

    dispatch.run_once("w")
    b.refresh_from_db()
    assert b.status == "sent"
    html = client.get(f"/broadcasts/{b.pk}/").content.decode()
    assert number(html, "report-audience") == 30
    assert number(html, "report-sent") == number(html, "report-delivered") == preview["would_send"]
    assert 'data-testid="funnel-chart"' in html and "已退订" in html
    assert html.count('data-testid="variant-row"') == 2
    assert 'data-testid="progress"' not in html and "hx-trigger" not in html.split('id="report"')[1][:200]
    # The poller is told to stop once the broadcast is done.
    done = client.get(f"/broadcasts/{b.pk}/?part=report", HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and done["HX-Refresh"] == "true"
    html = client.get("/broadcasts/").content.decode()
    assert number(html, "broadcast-sent") == preview["would_send"] and "已完成" in html
    assert AuditEntry.objects.filter(action="broadcast.send", target=f"broadcast:{b.pk}").exists()


def test_report_states_the_lift_in_words(personas, brand, sandbox, vip, clock_at):  # noqa: F811
    from siyu.tracking.models import Order

    b = broadcasts.create_broadcast(
        brand.workspace, name="转化测试", account_id=sandbox.pk, tags_any=[vip.pk],
        variants=[VariantIn("A", body="hi")], holdout_percent=30,
    )  # fmt: skip
    broadcasts.send(b)
    dispatch.run_once("w")
    treated = list(
        OutboundMessage.objects.filter(broadcast=b).exclude(state="holdout").values_list("customer_id", flat=True)
    )
    for n, cid in enumerate(treated):
        Order.objects.create(workspace=brand.workspace, customer_id=cid, order_no=f"o{n}", total_fen=12345,
                             paid_fen=12345, paid_at=NOON + dt.timedelta(days=1), created_at=NOON, updated_at=NOON)  # fmt: skip
    html = login(personas.hq_admin).get(f"/broadcasts/{b.pk}/").content.decode()
    report = broadcasts.report(b)
    points = f"{report['lift']['difference'] * 100:.1f}"
    assert f"比对照组转化率高 {points} 个百分点（95% 置信区间" in html and "，显著" in html
    assert number(html, "report-converted") == len(treated)
    whole, cents = divmod(12345 * len(treated), 100)
    assert f'data-testid="report-revenue">¥{whole:,}.{cents:02d}<' in html


def test_schedule_uses_the_workspace_time_zone(personas, sandbox, vip, clock_at):  # noqa: F811
    client = login(personas.hq_admin)
    form = broadcast_form(sandbox, vip, timing="later", scheduled_at="2026-11-23T15:30")
    response = client.post("/broadcasts/new/", form)
    b = Broadcast.objects.get()
    assert response.status_code == 302
    assert b.scheduled_at == dt.datetime(2026, 11, 23, 15, 30, tzinfo=SH)
    client.post(f"/broadcasts/{b.pk}/", {"action": "send"})
    b.refresh_from_db()
    assert b.status == "scheduled" and OutboundMessage.objects.count() == 0
    client.post(f"/broadcasts/{b.pk}/", {"action": "cancel"})
    b.refresh_from_db()
    assert b.status == "cancelled"
    # A time already past is refused at the field.
    html = client.post("/broadcasts/new/", {**form, "scheduled_at": "2026-11-23T09:00"}).content.decode()
    assert 'data-error-for="scheduled_at"' in html


# ---- channel accounts ---------------------------------------------------------------------------------


def smtp_form(**overrides) -> dict:
    data = {
        "provider": "smtp",
        "action": "save",
        "name": "品牌邮件",
        "medium": "email",
        "rate_per_second": "10",
        "settings.host": "smtp.example.com",
        "settings.port": "587",
        "settings.security": "starttls",
        "settings.from_address": "news@example.com",
        "secrets.username": "news@example.com",
        "secrets.password": RAW_SECRET,
    }
    data.update(overrides)
    return data


def test_channel_account_keeps_the_secret_out_of_the_page(personas, brand):
    client = login(personas.hq_admin)
    # A form error re-renders the page without echoing the typed password.
    response = client.post("/channel-accounts/new/", smtp_form(**{"settings.host": ""}))
    html = response.content.decode()
    assert response.status_code == 200 and 'data-error-for="settings.host"' in html
    assert RAW_SECRET not in html
    response = client.post("/channel-accounts/new/", smtp_form())
    account = ChannelAccount.objects.get(workspace=brand.workspace, name="品牌邮件")
    assert response.status_code == 302 and response["Location"] == f"/channel-accounts/{account.pk}/"
    assert account.settings == {"host": "smtp.example.com", "port": 587, "security": "starttls",
                                "from_address": "news@example.com"}  # fmt: skip
    html = client.get(response["Location"]).content.decode()
    assert RAW_SECRET not in html and account.secret not in html
    assert account.secret_hint and account.secret_hint in html
    assert 'data-testid="unsubscribe-info"' in html and 'value="smtp.example.com"' in html
    assert RAW_SECRET not in client.get("/channel-accounts/").content.decode()
    # Editing with the password left blank keeps the stored one...
    edit = smtp_form(**{"settings.from_address": "hello@example.com", "secrets.password": ""})
    assert client.post(f"/channel-accounts/{account.pk}/", edit).status_code == 302
    account.refresh_from_db()
    assert account.settings["from_address"] == "hello@example.com"
    assert crypto.decrypt_secrets(account.secret)["password"] == RAW_SECRET
    # ...but not when the server changes: the stored password would go to the new server.
    moved = smtp_form(**{"settings.host": "smtp.attacker.example", "secrets.password": ""})
    response = client.post(f"/channel-accounts/{account.pk}/", moved)
    assert response.status_code == 200 and 'data-error-for="secrets.password"' in response.content.decode()
    account.refresh_from_db()
    assert account.settings["host"] == "smtp.example.com"


def test_sms_account_page_lists_the_callback_urls_to_paste(personas, brand):
    from siyu.channels.registry import CHANNELS

    if "aliyun_sms" not in CHANNELS:
        pytest.skip("the Aliyun SMS channel is not registered")
    client = login(personas.hq_admin)
    form = {
        "provider": "aliyun_sms",
        "action": "save",
        "name": "阿里云营销短信",
        "medium": "sms",
        "rate_per_second": "50",
        "settings.sign_name": "Acme美妆",
        "secrets.access_key_id": "LTAI-test-id",
        "secrets.access_key_secret": RAW_SECRET,
    }
    response = client.post("/channel-accounts/new/", form)
    account = ChannelAccount.objects.get(workspace=brand.workspace, name="阿里云营销短信")
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert 'data-testid="callbacks"' in html
    assert f"/callbacks/sms/aliyun/{account.callback_token}/report" in html
    assert f"/callbacks/sms/aliyun/{account.callback_token}/reply" in html
    assert RAW_SECRET not in html and "LTAI-test-id" not in html


def test_disabled_account_shows_why_and_can_be_enabled_and_checked(personas, sandbox):
    disable_account(sandbox.pk, "账号余额不足（isv.AMOUNT_NOT_ENOUGH）")
    client = login(personas.hq_admin)
    html = client.get("/channel-accounts/").content.decode()
    assert 'data-testid="disabled-reason">账号余额不足' in html and "重新启用" in html
    client.post(f"/channel-accounts/{sandbox.pk}/", {"action": "check"})
    sandbox.refresh_from_db()
    assert sandbox.last_check_ok is True
    assert "沙箱渠道只记录消息" in client.get(f"/channel-accounts/{sandbox.pk}/").content.decode()
    client.post(f"/channel-accounts/{sandbox.pk}/", {"action": "enable"})
    sandbox.refresh_from_db()
    assert sandbox.status == "active" and sandbox.disabled_reason == ""


# ---- compliance and opt-outs ----------------------------------------------------------------------------


def test_compliance_form_round_trip(personas, brand):
    client = login(personas.hq_admin)
    form = {
        "daily_cap": "1",
        "weekly_cap": "4",
        "window_start": "09:00",
        "window_end": "20:30",
        "sms_optout_suffix": "回T退订",
        "optout_keywords": "T, 退订，STOP",
        "cap_sms_day": "1",
        "cap_email_week": "2",
    }
    assert client.post("/compliance/", form).status_code == 302
    saved = ComplianceSettings.objects.get(workspace=brand.workspace)
    assert (saved.daily_cap, saved.weekly_cap) == (1, 4)
    assert (saved.window_start, saved.window_end) == (dt.time(9, 0), dt.time(20, 30))
    assert saved.optout_keywords == ["T", "退订", "STOP"]
    assert saved.channel_caps == {"sms": {"day": 1}, "email": {"week": 2}}
    html = client.get("/compliance/").content.decode()
    assert 'value="回T退订"' in html and 'value="09:00"' in html and 'value="T, 退订, STOP"' in html
    assert 'name="cap_sms_day" id="id_cap_sms_day" value="1"' in html
    # Errors from the service land on their fields; nothing is saved.
    html = client.post("/compliance/", {**form, "daily_cap": "5000", "window_end": "09:00"}).content.decode()
    assert 'data-error-for="daily_cap"' in html
    html = client.post("/compliance/", {**form, "window_end": "09:00"}).content.decode()
    assert 'data-error-for="window_end"' in html
    html = client.post("/compliance/", {**form, "cap_sms_day": "2000"}).content.decode()
    assert 'data-error-for="cap_sms_day"' in html
    saved.refresh_from_db()
    assert saved.window_end == dt.time(20, 30) and saved.channel_caps["sms"]["day"] == 1


def test_opt_out_list_counts_by_source_and_masks_phones(personas, brand):
    ws = brand.workspace
    people = []
    for n in range(3):
        c = Customer.objects.create(workspace=ws, name=f"客户{n}", created_at=NOON, updated_at=NOON)
        Identity.objects.create(workspace=ws, customer=c, type="phone", value=f"1380000000{n}", created_at=NOON)
        people.append(c)
    record_opt_out(ws.pk, [people[0].pk, people[1].pk], source="sms_reply", detail="回复 R")
    record_opt_out(ws.pk, [people[2].pk], source="console")
    html = login(personas.hq_admin).get("/compliance/opt-outs/").content.decode()
    assert "共 3 人" in html and "短信回复退订" in html and "13800000001" in html
    html = login(personas.analyst).get("/compliance/opt-outs/?phone=13800000001").content.decode()
    assert html.count('data-testid="optout-row"') == 1
    assert "138****0001" in html and "13800000001</td>" not in html
    html = login(personas.analyst).get("/compliance/opt-outs/?phone=13900000000").content.decode()
    assert 'data-testid="optouts-none"' in html


# ---- the customer profile ---------------------------------------------------------------------------------


def test_profile_card_shows_reason_in_chinese_and_the_opt_out_button_works(personas, brand, sandbox, clock_at):  # noqa: F811
    ws = brand.workspace
    c = Customer.objects.create(workspace=ws, name="张丽", store=brand.store_a, owner_staff=brand.clerk_a,
                                created_at=NOON, updated_at=NOON)  # fmt: skip
    Identity.objects.create(workspace=ws, customer=c, type="phone", value="13800000001", created_at=NOON)
    set_consent(ws.pk, c.pk, channel="email", purpose="marketing", granted=True, source="门店登记")
    enqueue(sandbox, [NewMessage(c.pk, "m1", "新品上市")], purpose="marketing")
    dispatch.run_once("w")
    assert OutboundMessage.objects.get().reason == "no_consent"

    owner = login(personas.hq_admin)
    html = owner.get(f"/customers/{c.pk}/").content.decode()
    assert 'data-testid="reach-reason">未获营销授权<' in html
    assert "门店登记" in html and 'data-testid="opt-out"' in html
    # The clerk who owns the customer opts them out; the page and the timeline say so.
    clerk = login(personas.clerk_a)
    response = clerk.post(f"/customers/{c.pk}/reach/", {"action": "opt_out"})
    assert response.status_code == 302
    assert OptOut.objects.get(customer=c).source == "console"
    html = clerk.get(f"/customers/{c.pk}/").content.decode()
    assert "已退订营销消息" in html and "退订 · opted_out" in html
    assert 'data-testid="opt-in"' not in html  # a clerk cannot undo it
    assert clerk.post(f"/customers/{c.pk}/reach/", {"action": "opt_in"}).status_code == 403
    assert OptOut.objects.filter(customer=c).exists()
    owner.post(f"/customers/{c.pk}/reach/", {"action": "opt_in"})
    assert not OptOut.objects.filter(customer=c).exists()
    # Consent recorded from the console names who recorded it.
    owner.post(f"/customers/{c.pk}/reach/", {"action": "grant", "channel": "sms"})
    html = owner.get(f"/customers/{c.pk}/").content.decode()
    assert "console:hq" in html and "授权 · consent_granted" in html
    # Another store's clerk cannot reach this customer at all.
    assert login(personas.clerk_b).post(f"/customers/{c.pk}/reach/", {"action": "opt_out"}).status_code == 404
