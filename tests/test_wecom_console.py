"""The 企业微信 / 公众号 设置 console (admins only), its setup check against the fake WeCom
server, the sync button and API / callback logs; the WeCom periodic jobs; and the fake
server's 「联系我」 routes the channel codes rely on."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client

import tests.fakes.wecom_contact_way  # noqa: F401  (registers the contact-way routes)
from siyu.channels.crypto import decrypt_secrets
from siyu.org.models import AuditEntry, Membership, Role
from siyu.wecom.client import WecomClient, WecomError, reset_shared_state
from siyu.wecom.models import ApiCallLog, CallbackReceipt, OfficialAccountApp, WecomApp
from siyu.wecom.services import configure_wecom
from siyu.wecom.sync_models import SyncRun
from tests.conftest import PASSWORD
from tests.fakes.wecom import FakeWecom, Follow

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OTHER_AES_KEY = "Zq9x8w7v6u5t4s3r2q1p0oNmLkJiHgFeDcBa987654A"
SECRET = "console-secret-0123456789abcdef"
URL = "/settings/wecom/"
LOGS = "/settings/wecom/logs/"


@pytest.fixture(autouse=True)
def fresh_client_state():
    reset_shared_state()
    yield
    reset_shared_state()


@pytest.fixture
def fake():
    with FakeWecom() as server:
        server.add_contact("wmEXT1", "张三", [Follow("wangxm", createtime=1_760_000_000)])
        yield server


@pytest.fixture
def app(brand, fake):
    return configure_wecom(
        brand.workspace,
        corp_id=fake.corp_id,
        agent_id="1000002",
        secret=fake.secret,
        token="consoleToken",
        aes_key=AES_KEY,
        base_url=fake.url,
    )


@pytest.fixture
def operator(brand, django_user_model):
    user = django_user_model.objects.create_user(username="ops", password=PASSWORD)
    Membership.objects.create(user=user, workspace=brand.workspace, role=Role.OPERATOR)
    return user


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def wecom_post(**changes) -> dict[str, str]:
    data = {
        "action": "save_wecom",
        "wecom-corp_id": "ww0123456789abcdef",
        "wecom-agent_id": "1000002",
        "wecom-secret": SECRET,
        "wecom-token": "consoleToken",
        "wecom-aes_key": AES_KEY,
    }
    data.update({f"wecom-{k}" if not k.startswith("action") else k: v for k, v in changes.items()})
    return data


def field_error(html: str, name: str) -> str:
    match = re.search(rf'data-error-for="{re.escape(name)}">([^<]*)<', html)
    return match.group(1) if match else ""


def check_items(html: str) -> dict[str, bool]:
    return {key: ok == "1" for key, ok in re.findall(r'data-testid="check-item" data-key="(\w+)" data-ok="(\d)"', html)}


# ---- access ------------------------------------------------------------------------------


def test_operator_and_store_staff_get_403_and_change_nothing(personas, operator):
    for user in (operator, personas.manager_a, personas.clerk_a, personas.analyst):
        client = login(user)
        assert client.get(URL).status_code == 403
        assert client.get(LOGS).status_code == 403
        assert client.get("/settings/wecom/sync/").status_code == 403
        assert client.post(URL, wecom_post()).status_code == 403
    assert not WecomApp.objects.exists()
    assert "/settings/wecom/" not in login(operator).get("/").content.decode()


def test_admin_sees_the_settings_menu_and_an_empty_page_that_explains_what_to_do(personas):
    client = login(personas.hq_admin)
    assert "/settings/wecom/" in client.get("/").content.decode()
    html = client.get(URL).content.decode()
    assert 'data-testid="not-configured"' in html
    assert "/callbacks/wecom/acme/" in html and "/callbacks/oa/acme/" in html
    assert 'data-testid="sync-never"' in html


# ---- WeCom app form ----------------------------------------------------------------------


def test_admin_configures_wecom_with_the_secret_stored_encrypted_and_audited(personas, brand):
    client = login(personas.hq_admin)
    response = client.post(URL, wecom_post())
    assert response.status_code == 302
    app = WecomApp.objects.get(workspace=brand.workspace)
    assert (app.corp_id, app.agent_id, app.callback_token) == ("ww0123456789abcdef", "1000002", "consoleToken")
    assert SECRET not in app.secret and AES_KEY not in app.secret
    assert decrypt_secrets(app.secret) == {"secret": SECRET, "aes_key": AES_KEY}
    html = client.get(URL).content.decode()
    assert SECRET not in html and AES_KEY not in html  # write-only
    assert app.secret_hint in html and 'data-testid="hint-wecom-secret"' in html
    [entry] = AuditEntry.objects.filter(workspace=brand.workspace, action="wecom.configure")
    assert entry.user == personas.hq_admin
    assert set(entry.details["changed"]) == {"agent_id", "aes_key", "callback_token", "corp_id", "secret"}
    assert SECRET not in json.dumps(entry.details) and AES_KEY not in json.dumps(entry.details)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"corp_id": "bad corp id!"}, "wecom-corp_id", "企业 ID"),
        ({"agent_id": "abc"}, "wecom-agent_id", "AgentId"),
        ({"token": "has space"}, "wecom-token", "Token"),
        ({"aes_key": "short"}, "wecom-aes_key", "43"),
        ({"secret": ""}, "wecom-secret", "Secret"),
    ],
)
def test_bad_input_is_shown_next_to_its_field(personas, brand, changes, field, words):
    response = login(personas.hq_admin).post(URL, wecom_post(**changes))
    assert response.status_code == 400
    assert words in field_error(response.content.decode(), field)
    assert not WecomApp.objects.exists()
    assert not AuditEntry.objects.filter(action="wecom.configure").exists()


def test_empty_secret_keeps_the_stored_one_and_a_verified_callback_stays_verified(personas, brand):
    client = login(personas.hq_admin)
    client.post(URL, wecom_post())
    verified = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    WecomApp.objects.update(callback_verified_at=verified)
    response = client.post(URL, wecom_post(agent_id="1000003", secret="", aes_key=""))
    assert response.status_code == 302
    app = WecomApp.objects.get()
    assert app.agent_id == "1000003"
    assert decrypt_secrets(app.secret) == {"secret": SECRET, "aes_key": AES_KEY}
    assert app.callback_verified_at == verified  # Token, key and corp id unchanged
    assert AuditEntry.objects.filter(action="wecom.configure").latest("pk").details["changed"] == ["agent_id"]
    # A new Token means WeCom must verify the URL again.
    client.post(URL, wecom_post(token="newToken2", secret="", aes_key=""))
    assert WecomApp.objects.get().callback_verified_at is None


def test_changing_the_corp_id_requires_the_secret_again(personas, brand):
    client = login(personas.hq_admin)
    client.post(URL, wecom_post())
    response = client.post(URL, wecom_post(corp_id="wwOTHERcorp", secret="", aes_key=""))
    assert response.status_code == 400
    assert "Secret" in field_error(response.content.decode(), "wecom-secret")
    assert WecomApp.objects.get().corp_id == "ww0123456789abcdef"
    response = client.post(URL, wecom_post(corp_id="wwOTHERcorp", secret="another-secret-42", aes_key=OTHER_AES_KEY))
    assert response.status_code == 302
    app = WecomApp.objects.get()
    assert app.corp_id == "wwOTHERcorp"
    assert decrypt_secrets(app.secret) == {"secret": "another-secret-42", "aes_key": OTHER_AES_KEY}


def test_editing_keeps_the_api_base_url(personas, brand, app, fake):
    login(personas.hq_admin).post(URL, wecom_post(corp_id=fake.corp_id, secret="", aes_key=""))
    assert WecomApp.objects.get().base_url == fake.url


# ---- Official Account form -------------------------------------------------------------


def oa_post(**changes) -> dict[str, str]:
    data = {"action": "save_oa", "oa-app_id": "wx0123456789abcdef", "oa-secret": "oa-secret-9876543210",
            "oa-token": "oaToken", "oa-encrypted": "1", "oa-aes_key": AES_KEY}  # fmt: skip
    data.update({f"oa-{k}": v for k, v in changes.items()})
    return data


def test_admin_configures_the_official_account_in_safe_or_plaintext_mode(personas, brand):
    client = login(personas.hq_admin)
    assert client.post(URL, oa_post()).status_code == 302
    oa = OfficialAccountApp.objects.get(workspace=brand.workspace)
    assert oa.encrypted and "oa-secret-9876543210" not in oa.secret
    assert decrypt_secrets(oa.secret) == {"secret": "oa-secret-9876543210", "aes_key": AES_KEY}
    # Plaintext mode drops the key; the secret left empty is kept.
    assert client.post(URL, oa_post(secret="", aes_key="", encrypted="0")).status_code == 302
    oa.refresh_from_db()
    assert not oa.encrypted and decrypt_secrets(oa.secret) == {"secret": "oa-secret-9876543210", "aes_key": ""}
    # Back to safe mode needs a key again.
    response = client.post(URL, oa_post(secret="", aes_key="", encrypted="1"))
    assert response.status_code == 400
    assert "EncodingAESKey" in field_error(response.content.decode(), "oa-aes_key")
    actions = list(AuditEntry.objects.filter(action="oa.configure").values_list("details", flat=True))
    assert len(actions) == 2 and all("oa-secret-9876543210" not in json.dumps(d) for d in actions)


# ---- the setup check -------------------------------------------------------------------


def test_check_passes_every_item_when_wecom_is_set_up(personas, brand, app, fake):
    WecomApp.objects.update(callback_verified_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    html = login(personas.hq_admin).post(URL, {"action": "check"}).content.decode()
    assert check_items(html) == {"token": True, "customer_contact": True, "callback": True}
    assert "1 名成员已开通客户联系" in html
    app.refresh_from_db()
    assert app.status == "ok" and app.last_check_ok is True
    # The stored result is shown on the next visit.
    again = login(personas.hq_admin).get(URL).content.decode()
    assert check_items(again) == {"token": True, "customer_contact": True, "callback": True}


def test_check_names_a_wrong_secret(personas, brand, fake):
    configure_wecom(brand.workspace, corp_id=fake.corp_id, agent_id="1", secret="wrong-secret-000", token="t1",
                    aes_key=AES_KEY, base_url=fake.url)  # fmt: skip
    html = login(personas.hq_admin).post(URL, {"action": "check"}).content.decode()
    assert check_items(html) == {"token": False, "customer_contact": False, "callback": False}
    assert "errcode 40001 · Secret 不正确" in html
    assert "应用管理" in html and "封禁 1 小时" in html
    assert WecomApp.objects.get().status == "failing"


def test_check_names_the_untrusted_ip_and_where_to_add_it(personas, brand, app, fake):
    fake.untrusted_ip = True
    html = login(personas.hq_admin).post(URL, {"action": "check"}).content.decode()
    items = check_items(html)
    assert items["token"] is True and items["customer_contact"] is False
    assert "errcode 60020" in html
    assert "企业微信看到的调用来自 127.0.0.1" in html and "中加入 127.0.0.1" in html and "企业可信IP" in html


def test_cli_check_names_the_ip_to_trust_too(brand, app, fake):
    from click.testing import CliRunner

    from siyu.cli import main

    fake.untrusted_ip = True
    result = CliRunner().invoke(main, ["wecom", "check", "--workspace", "acme"])
    assert result.exit_code == 1
    assert "企业微信看到的调用来自 127.0.0.1" in result.output and "企业可信IP" in result.output


@pytest.mark.parametrize("errcode", [48002, 84074])
def test_check_says_which_app_to_authorise_for_customer_contact(personas, brand, app, fake, errcode):
    fake.forbidden = errcode
    html = login(personas.hq_admin).post(URL, {"action": "check"}).content.decode()
    assert check_items(html)["customer_contact"] is False
    assert f"errcode {errcode}" in html and "可调用接口的应用" in html


def test_check_reports_an_unverified_callback_url_with_the_url_to_paste(personas, brand, app, fake):
    html = login(personas.hq_admin).post(URL, {"action": "check"}).content.decode()
    assert check_items(html)["callback"] is False
    assert "回调 URL 尚未通过验证" in html and "/callbacks/wecom/acme/" in html


# ---- sync ------------------------------------------------------------------------------


def test_sync_button_queues_a_reconciliation_whose_run_shows_up(personas, brand, app, fake):
    client = login(personas.hq_admin)
    response = client.post(URL, {"action": "sync"})
    assert response.status_code == 302
    [run] = SyncRun.objects.filter(workspace=brand.workspace)  # the immediate backend ran it
    assert run.status == "ok" and run.counts["customers_created"] == 1
    assert fake.api_calls("externalcontact/batch/get_by_user")
    assert AuditEntry.objects.filter(action="wecom.sync.queue", user=personas.hq_admin).count() == 1
    html = client.get(URL).content.decode()
    assert 'data-testid="sync-run" data-status="ok"' in html and "新建客户 1" in html
    partial = client.get("/settings/wecom/sync/").content.decode()
    assert 'data-testid="sync-last"' in partial and "data-polling" not in partial


def test_sync_progress_polls_while_a_run_is_running_and_refuses_a_second_one(personas, brand, app):
    from siyu.core import clock

    SyncRun.objects.create(workspace=brand.workspace, started_at=clock.now())
    client = login(personas.hq_admin)
    partial = client.get("/settings/wecom/sync/").content.decode()
    assert "data-polling" in partial and "同步进行中" in partial
    client.post(URL, {"action": "sync"})
    assert SyncRun.objects.count() == 1
    assert not AuditEntry.objects.filter(action="wecom.sync.queue").exists()


def test_a_queued_sync_shows_as_queued_until_it_starts(personas, brand, app):
    from siyu.org.services import audit

    audit(workspace=brand.workspace, action="wecom.sync.queue", user=personas.hq_admin)
    partial = login(personas.hq_admin).get("/settings/wecom/sync/").content.decode()
    assert 'data-testid="sync-queued"' in partial and "data-polling" in partial


# ---- API call log and callback receipts --------------------------------------------------


def log_call(workspace, errcode, *, api="externalcontact/get_follow_user_list", ago=dt.timedelta(minutes=5), msg=""):
    from siyu.core import clock

    ApiCallLog.objects.create(workspace=workspace, api=api, errcode=errcode, errmsg=msg, duration_ms=42,
                              at=clock.now() - ago)  # fmt: skip


def test_api_log_shows_errcode_meanings_counts_and_an_errors_only_filter(personas, brand, app):
    ws = brand.workspace
    for _ in range(3):
        log_call(ws, 0)
    log_call(ws, 60020, msg="not allow to access from your ip, from ip: 10.1.2.3")
    log_call(ws, 45009, api="externalcontact/batch/get_by_user")
    log_call(ws, None)
    log_call(ws, 40001, ago=dt.timedelta(days=2))  # outside the 24-hour counts
    client = login(personas.hq_admin)
    html = client.get(LOGS).content.decode()
    assert html.count('data-testid="api-call"') == 7
    assert "服务器 IP 不在企业可信 IP 中" in html and "server IP not trusted" in html
    assert "接口调用超过频率限制" in html and "没有收到答复" in html
    counts = dict(re.findall(r'data-testid="errcode-count" data-errcode="([\w-]+)">[^<]*· (\d+) ', html))
    assert counts == {"0": "3", "60020": "1", "45009": "1", "none": "1"}
    errors = client.get(LOGS, {"errors": "1"}).content.decode()
    assert sorted(re.findall(r'data-testid="api-call" data-errcode="([\w-]+)"', errors)) == [
        "40001", "45009", "60020", "none"]  # fmt: skip
    partial = client.get(LOGS, {"errors": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<nav" not in partial and 'data-testid="api-calls"' in partial


def test_api_log_of_another_workspace_is_not_shown(personas, brand, other_workspace):
    log_call(other_workspace, 60020)
    html = login(personas.hq_admin).get(LOGS).content.decode()
    assert 'data-testid="api-call"' not in html and 'data-testid="no-calls"' in html


def test_callback_receipts_count_today_and_list_failures(personas, brand, app):
    from siyu.core import clock

    now = clock.now()

    def receipt(key, *, processed=True, error="", ago=dt.timedelta(minutes=1), gave_up=False):
        CallbackReceipt.objects.create(
            workspace=brand.workspace, source="wecom", dedupe_key=key, event_type="change_external_contact",
            change_type="add_external_contact", received_at=now - ago, processed_at=now if processed else None,
            error=error, failed_at=now if gave_up else None)  # fmt: skip

    receipt("a")
    receipt("b")
    receipt("c", processed=False, error="IntegrityError: boom", gave_up=True)
    receipt("d", processed=False, error="WecomError: busy")  # the inbox will try again
    receipt("old", processed=False, error="KeyError: gone", ago=dt.timedelta(days=3), gave_up=True)
    html = login(personas.hq_admin).get(URL).content.decode()
    assert re.search(r'data-testid="receipts-today">4<', html)
    assert re.search(r'data-testid="receipts-failed">1<', html)
    assert re.search(r'data-testid="receipts-retrying">1<', html)
    assert "IntegrityError: boom" in html and "KeyError: gone" in html
    logs = login(personas.hq_admin).get(LOGS).content.decode()
    assert logs.count('data-testid="receipt-failure"') == 3


# ---- errcode wording -------------------------------------------------------------------


def test_errcode_table_covers_the_protocol_codes_in_both_languages():
    from siyu.wecom import errcodes

    protocol = [-1, 40001, 40013, 40014, 42001, 40058, 40096, 41045, 41048, 41050, 41051, 41096, 41053, 41054,
                41063, 45009, 45033, 48002, 60011, 60020, 84074, 81017, 84061]  # fmt: skip
    for code in protocol:
        meaning = errcodes.meaning(code)
        assert meaning is not errcodes.UNKNOWN, code
        assert meaning.zh and meaning.en
    assert errcodes.meaning(99999) is errcodes.UNKNOWN
    assert errcodes.ip_from_errmsg("not allow to access from your ip, hint: [x], from ip: 1.2.3.4, more info") == (
        "1.2.3.4"
    )
    assert errcodes.ip_from_errmsg("api forbidden") == ""


# ---- periodic jobs -----------------------------------------------------------------------


def test_reconcile_job_runs_each_configured_workspace(brand, app, fake, other_workspace):
    from siyu.wecom.jobs import reconcile_all

    result = reconcile_all()
    assert set(result) == {"acme"}
    assert result["acme"]["status"] == "ok" and result["acme"]["fixes"] >= 1
    assert SyncRun.objects.filter(workspace=brand.workspace, status="ok").count() == 1
    assert not SyncRun.objects.filter(workspace=other_workspace).exists()


def test_reconcile_job_records_a_failing_workspace_and_goes_on(brand, app, fake):
    from siyu.wecom.jobs import reconcile_all

    fake.untrusted_ip = True
    result = reconcile_all()
    assert result["acme"]["status"] == "failed" and "可信" in result["acme"]["error"]


def test_jobs_are_registered_with_their_periods(settings):
    from siyu.core.schedule import jobs
    from siyu.wecom.jobs import sync_hours

    registered = jobs()
    assert registered["wecom.reconcile"].every == 6 * 3600
    assert registered["wecom.prune_api_logs"].every == 24 * 3600
    assert registered["wecom.rebalance_channel_codes"].every == 300
    settings.WECOM_SYNC_HOURS = 2
    assert sync_hours() == 2.0
    settings.WECOM_SYNC_HOURS = 0  # nonsense falls back to the default
    assert sync_hours() == 6.0


def test_prune_job_drops_logs_older_than_30_days(brand):
    from siyu.core.schedule import jobs, run_job

    log_call(brand.workspace, 0, ago=dt.timedelta(days=31))
    log_call(brand.workspace, 0, ago=dt.timedelta(days=29))
    ok, result = run_job(jobs()["wecom.prune_api_logs"])
    assert ok and result == {"deleted": 1}
    assert ApiCallLog.objects.count() == 1


def test_rebalance_job_repushes_a_rotating_code_when_a_staff_member_hits_the_daily_cap(
    brand, app, fake, monkeypatch, other_workspace
):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import CodeInput, StaffEntryInput, create_code
    from siyu.customers.models import Customer
    from siyu.wecom.jobs import rebalance_channel_codes

    now = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)  # 11:00 in Shanghai
    monkeypatch.setattr("siyu.core.clock.now", lambda: now)
    code = create_code(
        brand.workspace,
        CodeInput(name="轮流", kind="rotating",
                  staff=[StaffEntryInput(brand.clerk_a.pk, daily_cap=1), StaffEntryInput(brand.clerk_a2.pk)]),
    )  # fmt: skip
    assert fake.contact_ways[code.config_id]["user"] == ["wangxm", "lina"]
    assert rebalance_channel_codes() == {
        "acme": {"checked": 1, "calls": 0, "changed": [], "unavailable": 0, "errors": {}}
    }
    customer = Customer.objects.create(workspace=brand.workspace, name="甲", created_at=now, updated_at=now)
    ChannelCodeAdd.objects.create(workspace=brand.workspace, code=code, customer=customer, staff=brand.clerk_a, at=now)
    result = rebalance_channel_codes()
    assert result["acme"]["calls"] == 1 and result["acme"]["changed"] == [code.pk]
    assert fake.contact_ways[code.config_id]["user"] == ["lina"]  # WeCom has the new list
    # Local midnight resets the caps: the next day's run puts her back.
    monkeypatch.setattr("siyu.core.clock.now", lambda: now + dt.timedelta(days=1))
    assert rebalance_channel_codes()["acme"]["changed"] == [code.pk]
    assert fake.contact_ways[code.config_id]["user"] == ["wangxm", "lina"]


# ---- the fake server's 「联系我」 routes ---------------------------------------------------


def test_fake_contact_way_routes_check_like_wecom(fake):
    with WecomClient(fake.corp_id, fake.secret, base_url=fake.url) as client:
        made = client.post("externalcontact/add_contact_way",
                           {"type": 2, "scene": 2, "state": "s1", "user": ["a", "b"], "remark": "r"})  # fmt: skip
        config_id = made["config_id"]
        way = client.post("externalcontact/get_contact_way", {"config_id": config_id})["contact_way"]
        assert (way["user"], way["state"], way["type"]) == (["a", "b"], "s1", 2)
        client.post("externalcontact/update_contact_way", {"config_id": config_id, "user": ["c"]})
        assert fake.contact_ways[config_id]["user"] == ["c"]  # replaced, not merged
        for body, code in [
            ({"config_id": "nope", "user": ["a"]}, 41044),
            ({"user": ["a"]}, 41043),
            ({"config_id": config_id, "state": "x" * 31}, 40058),
        ]:
            with pytest.raises(WecomError) as refused:
                client.post("externalcontact/update_contact_way", body)
            assert refused.value.errcode == code
        single = client.post("externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": ["a"]})["config_id"]
        with pytest.raises(WecomError) as refused:
            client.post("externalcontact/update_contact_way", {"config_id": single, "user": ["a", "b"]})
        assert refused.value.errcode == 40058
        first = client.post("externalcontact/list_contact_way", {"limit": 1})
        assert [w["config_id"] for w in first["contact_way"]] == [config_id] and first["next_cursor"]
        second = client.post("externalcontact/list_contact_way", {"limit": 1, "cursor": first["next_cursor"]})
        assert [w["config_id"] for w in second["contact_way"]] == [single] and second["next_cursor"] == ""
        client.post("externalcontact/del_contact_way", {"config_id": config_id})
        with pytest.raises(WecomError) as refused:
            client.post("externalcontact/get_contact_way", {"config_id": config_id})
        assert refused.value.errcode == 41044


def test_configuring_again_with_the_same_callback_values_keeps_the_verification(brand):
    """`siyu wecom configure` re-run (e.g. to rotate the app secret) must not make the operator
    re-verify the callback URL; a new Token or EncodingAESKey must."""
    workspace = brand.workspace
    configure_wecom(workspace, corp_id="ww_fake_corp", agent_id="1000002", secret=SECRET, token="tok1", aes_key=AES_KEY)
    verified = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    WecomApp.objects.update(callback_verified_at=verified)
    configure_wecom(
        workspace, corp_id="ww_fake_corp", agent_id="1000002", secret="rotated", token="tok1", aes_key=AES_KEY
    )
    assert WecomApp.objects.get().callback_verified_at == verified
    configure_wecom(
        workspace, corp_id="ww_fake_corp", agent_id="1000002", secret="rotated", token="tok1", aes_key="b" * 43
    )
    assert WecomApp.objects.get().callback_verified_at is None
