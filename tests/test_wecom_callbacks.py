"""The WeCom and Official Account callback endpoints, driven through Django's HTTP stack with
pushes built exactly as the platforms build them (tests/fakes). The endpoint only stores a
receipt; ``apply()`` runs the worker's inbox (``siyu.wecom.inbox``) to act on it."""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

import pytest

from siyu.customers.models import Customer, Identity, OfficialAccountFollow, StaffRelation
from siyu.org.models import Staff
from siyu.tracking.models import Event
from siyu.wecom import endpoints, inbox
from siyu.wecom.crypto import MsgCrypt, signature
from siyu.wecom.models import CallbackReceipt, OfficialAccountApp, WecomApp
from siyu.wecom.services import configure_oa, configure_wecom
from tests.fakes import official_account as oa_fake
from tests.fakes.wecom import encrypted_callback, event_xml, verification_query

CORP = "ww_acme_corp_0001"
TOKEN = "AcmeToken2026"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
URL = "/callbacks/wecom/acme/"
OA_APP = "wxacmeofficial0001"
OA_TOKEN = "AcmeOaToken"
OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_URL = "/callbacks/oa/acme/"


@pytest.fixture(autouse=True)
def fresh_endpoint_cache():
    endpoints.invalidate()
    yield
    endpoints.invalidate()


@pytest.fixture
def wecom_app(brand):
    return configure_wecom(
        brand.workspace,
        corp_id=CORP,
        agent_id="1000002",
        secret="app-secret-abcdef123456",
        token=TOKEN,
        aes_key=AES_KEY,
    )


@pytest.fixture
def crypt():
    return MsgCrypt(TOKEN, AES_KEY, CORP)


def post(client, query, body, url=URL):
    return client.post(f"{url}?{urlencode(query)}", data=body, content_type="text/xml")


def push(client, crypt, xml):
    query, body = encrypted_callback(crypt, xml)
    return post(client, query, body)


def apply():
    """The worker's inbox, until nothing is due."""
    return inbox.process_all()


def add_event(
    userid="wangxm", external="wmEXTzhangsan0001", state="store-SH01", change="add_external_contact", at=None
):
    return event_xml(
        CORP,
        "change_external_contact",
        change,
        create_time=at or 1_790_000_000,
        UserID=userid,
        ExternalUserID=external,
        State=state,
        WelcomeCode="WELCOMECODE",
    )


def nothing_recorded():
    return (
        CallbackReceipt.objects.count() == 0
        and Customer.objects.count() == 0
        and StaffRelation.objects.count() == 0
        and Event.objects.count() == 0
    )


# ---- URL verification -------------------------------------------------------------------


def test_url_verification_answers_the_bare_plaintext_and_is_remembered(client, wecom_app, crypt):
    query, _ = verification_query(crypt, "1616140317555161061")
    response = client.get(URL, query)
    assert response.status_code == 200
    assert response.content == b"1616140317555161061"  # no quotes, BOM or newline
    wecom_app.refresh_from_db()
    assert wecom_app.callback_verified_at is not None


def test_url_verification_with_a_forged_signature_is_refused(client, wecom_app, crypt):
    query, _ = verification_query(crypt)
    query["msg_signature"] = "0" * 40
    assert client.get(URL, query).status_code == 403
    wecom_app.refresh_from_db()
    assert wecom_app.callback_verified_at is None


# ---- add / delete friends -----------------------------------------------------------------


def test_add_external_contact_creates_customer_identity_relation_and_timeline(client, brand, wecom_app, crypt):
    response = push(client, crypt, add_event())
    assert response.status_code == 200 and response.content == b""
    receipt = CallbackReceipt.objects.get()
    assert receipt.processed_at is None and Customer.objects.count() == 0  # stored, not applied yet
    assert apply().processed == 1
    identity = Identity.objects.get(type="wecom_external_userid", value="wmEXTzhangsan0001")
    customer = Customer.objects.get(pk=identity.customer_id)
    assert customer.source_channel == "wecom"
    assert customer.owner_staff_id == brand.clerk_a.pk
    relation = StaffRelation.objects.get(customer=customer)
    assert (relation.staff_id, relation.state, relation.status) == (brand.clerk_a.pk, "store-SH01", "active")
    assert relation.added_at.timestamp() == 1_790_000_000
    event = Event.objects.get(customer=customer)
    assert event.name == "wecom_friend_added"
    assert event.properties["state"] == "store-SH01" and event.properties["userid"] == "wangxm"
    receipt = CallbackReceipt.objects.get()
    assert receipt.processed_at is not None and receipt.change_type == "add_external_contact"


def test_a_second_staff_member_adding_the_same_customer_reuses_the_profile(client, brand, wecom_app, crypt):
    push(client, crypt, add_event("wangxm"))
    push(client, crypt, add_event("zhaomin", state="store-HZ01"))
    apply()
    assert Customer.objects.count() == 1
    relations = dict(StaffRelation.objects.values_list("staff__wecom_userid", "state"))
    assert relations == {"wangxm": "store-SH01", "zhaomin": "store-HZ01"}
    assert Customer.objects.get().owner_staff_id == brand.clerk_a.pk  # the first friend keeps ownership


def test_a_retried_callback_is_acknowledged_and_processed_once(client, wecom_app, crypt):
    xml = add_event()
    first = push(client, crypt, xml)
    again = push(client, crypt, xml)  # WeCom re-sends the same event (new nonce and signature)
    assert first.status_code == again.status_code == 200
    assert apply().processed == 1
    late = push(client, crypt, xml)  # ... and once more after it was applied
    assert late.status_code == 200 and late.content == b""
    assert apply().claimed == 0
    assert CallbackReceipt.objects.count() == 1
    assert Event.objects.filter(name="wecom_friend_added").count() == 1
    assert StaffRelation.objects.count() == 1


def test_an_unknown_staff_member_is_created_at_headquarters(client, brand, wecom_app, crypt):
    push(client, crypt, add_event("newbie01", change="add_half_external_contact"))
    apply()
    staff = Staff.objects.get(wecom_userid="newbie01")
    assert staff.org_unit_id == brand.hq.pk
    assert Event.objects.get().properties["half"] is True


def test_del_follow_user_and_del_external_contact_mark_the_relation(client, brand, wecom_app, crypt):
    push(client, crypt, add_event("wangxm"))
    push(client, crypt, add_event("lina"))
    push(client, crypt, add_event("wangxm", change="del_follow_user", at=1_790_000_100))
    push(client, crypt, add_event("lina", change="del_external_contact", at=1_790_000_200))
    apply()
    statuses = dict(StaffRelation.objects.values_list("staff__wecom_userid", "status"))
    assert statuses == {"wangxm": "deleted_by_customer", "lina": "deleted_by_staff"}
    deleted = Event.objects.filter(name="wecom_friend_deleted").order_by("occurred_at")
    assert [e.properties["by"] for e in deleted] == ["deleted_by_customer", "deleted_by_staff"]
    # Adding again reactivates the relation.
    push(client, crypt, add_event("wangxm", at=1_790_000_300))
    apply()
    assert StaffRelation.objects.get(staff=brand.clerk_a).status == "active"


def test_other_events_are_stored_and_acknowledged(client, wecom_app, crypt):
    xml = event_xml(CORP, "batch_job_result", BatchJob="<JobId>j1</JobId>", AgentID="1000002")
    assert push(client, crypt, xml).status_code == 200
    assert apply().processed == 1
    receipt = CallbackReceipt.objects.get()
    assert receipt.event_type == "batch_job_result" and receipt.processed_at is not None
    assert receipt.payload["AgentID"] == "1000002" and receipt.receiver == CORP
    assert Customer.objects.count() == 0


def test_a_push_costs_one_insert_once_the_endpoint_is_cached(client, wecom_app, crypt, django_assert_num_queries):
    push(client, crypt, add_event(at=1_790_000_000))  # loads the endpoint
    with django_assert_num_queries(1):
        assert push(client, crypt, add_event(at=1_790_000_001)).status_code == 200
    with django_assert_num_queries(1):  # a duplicate: the same INSERT, which stores nothing
        assert push(client, crypt, add_event(at=1_790_000_001)).status_code == 200
    assert CallbackReceipt.objects.count() == 2


# ---- rejected pushes ----------------------------------------------------------------------


def _forged(crypt, query, body):
    return {**query, "msg_signature": signature("guessed-token", query["timestamp"], query["nonce"], "x")}, body


def _tampered(crypt, query, body):
    text = body.decode()
    start = text.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    flipped = "A" if text[start + 10] != "A" else "B"
    return query, (text[: start + 10] + flipped + text[start + 11 :]).encode()


def _resigned_garbage(crypt, query, body):
    # Someone holding the token but not the AES key: the signature is right, the plaintext is not.
    garbage = base64.b64encode(b"\x07" * 64).decode()
    q = {**query, "msg_signature": signature(TOKEN, query["timestamp"], query["nonce"], garbage)}
    return q, f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>".encode()


def _other_corp(crypt, query, body):
    other = MsgCrypt(TOKEN, AES_KEY, "ww_someone_else")
    return encrypted_callback(other, add_event())


def _doctype(crypt, query, body):
    return query, b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'


@pytest.mark.parametrize(
    ("mutate", "status"),
    [(_forged, 403), (_tampered, 403), (_resigned_garbage, 400), (_other_corp, 403), (_doctype, 400)],
    ids=["forged-signature", "tampered-ciphertext", "undecryptable", "wrong-corp", "doctype"],
)
def test_bad_pushes_are_refused_and_change_nothing(client, wecom_app, crypt, mutate, status, caplog):
    query, body = mutate(crypt, *encrypted_callback(crypt, add_event()))
    with caplog.at_level("WARNING", logger="siyu.wecom.callbacks"):
        response = post(client, query, body)
    assert response.status_code == status
    apply()
    assert nothing_recorded()
    assert any("rejected wecom callback" in r.getMessage() for r in caplog.records)


def test_an_unknown_workspace_is_refused(client, wecom_app, crypt):
    query, body = encrypted_callback(crypt, add_event())
    assert post(client, query, body, url="/callbacks/wecom/nobody/").status_code == 403
    assert client.get("/callbacks/wecom/nobody/", verification_query(crypt)[0]).status_code == 403
    assert nothing_recorded()


def test_an_oversized_body_is_refused_before_reading(client, wecom_app, crypt):
    query, _ = encrypted_callback(crypt, add_event())
    assert post(client, query, b"<xml>" + b" " * 70_000 + b"</xml>").status_code == 413
    assert nothing_recorded()


def test_the_first_push_counts_as_a_verified_url(wecom_app, crypt, client):
    from siyu.wecom.services import check

    push(client, crypt, add_event())
    apply()
    WecomApp.objects.filter(pk=wecom_app.pk).update(base_url="http://127.0.0.1:1")  # nothing listens there
    report = check(wecom_app.workspace, timeout=0.5)
    assert [i.key for i in report.items if not i.ok] == ["token", "customer_contact"]
    assert [i.ok for i in report.items if i.key == "callback"] == [True]


# ---- Official Account --------------------------------------------------------------------


@pytest.fixture
def oa_app(brand):
    return configure_oa(brand.workspace, app_id=OA_APP, secret="oa-secret-1234567890", token=OA_TOKEN, aes_key=OA_KEY)


def test_oa_server_verification_echoes_echostr(client, oa_app):
    query, echo = oa_fake.verification_query(OA_TOKEN)
    response = client.get(OA_URL, query)
    assert response.status_code == 200 and response.content == echo.encode()
    oa_app.refresh_from_db()
    assert oa_app.callback_verified_at is not None
    query["signature"] = "f" * 40
    assert client.get(OA_URL, query).status_code == 403


def test_oa_subscribe_with_scene_creates_follow_identity_and_timeline(client, brand, oa_app):
    oa = oa_fake.FakeOfficialAccount(app_id=OA_APP)
    crypt = MsgCrypt(OA_TOKEN, OA_KEY, OA_APP)
    ticket = oa.create_qr("store-SH01")
    response = post(client, *oa.scan(ticket, "oOPENIDlisi0001", token=OA_TOKEN, crypt=crypt), url=OA_URL)
    assert response.status_code == 200 and response.content == b"success"
    apply()
    identity = Identity.objects.get(type="wechat_openid", app_id=OA_APP, value="oOPENIDlisi0001")
    follow = OfficialAccountFollow.objects.get()
    assert (follow.customer_id, follow.subscribed, follow.scene) == (identity.customer_id, True, "store-SH01")
    assert Customer.objects.get().source_channel == "official_account"
    event = Event.objects.get(name="oa_subscribed")
    assert event.properties == {"app_id": OA_APP, "scene": "store-SH01"}

    # Scanning another code while following: SCAN, the subscription scene stays.
    other = oa.create_qr("poster-618")
    post(
        client,
        *oa.scan(other, "oOPENIDlisi0001", token=OA_TOKEN, crypt=crypt, create_time=int(time.time()) + 5),
        url=OA_URL,
    )
    apply()
    follow.refresh_from_db()
    assert follow.scene == "store-SH01"
    assert Event.objects.get(name="oa_scanned").properties["scene"] == "poster-618"

    post(client, *oa.unsubscribe("oOPENIDlisi0001", token=OA_TOKEN, crypt=crypt), url=OA_URL)
    apply()
    follow.refresh_from_db()
    assert follow.subscribed is False and follow.unsubscribed_at is not None
    assert Event.objects.filter(name="oa_unsubscribed").count() == 1
    assert Customer.objects.count() == 1


def test_oa_plaintext_mode_checks_the_plain_signature(client, brand):
    configure_oa(brand.workspace, app_id=OA_APP, secret="oa-secret-1234567890", token=OA_TOKEN)
    assert OfficialAccountApp.objects.get().encrypted is False
    oa = oa_fake.FakeOfficialAccount(app_id=OA_APP)
    ticket = oa.create_qr("store-HZ01")
    query, body = oa.scan(ticket, "oOPENIDwang0001", token=OA_TOKEN)
    assert post(client, {**query, "signature": "0" * 40}, body, url=OA_URL).status_code == 403
    assert OfficialAccountFollow.objects.count() == 0
    assert post(client, query, body, url=OA_URL).status_code == 200
    assert post(client, query, body, url=OA_URL).status_code == 200  # a retry
    apply()
    assert OfficialAccountFollow.objects.get().scene == "store-HZ01"
    assert Event.objects.filter(name="oa_subscribed").count() == 1


def test_oa_in_safe_mode_refuses_a_plaintext_push(client, oa_app):
    oa = oa_fake.FakeOfficialAccount(app_id=OA_APP)
    query, body = oa.scan(oa.create_qr("x"), "oOPENID", token=OA_TOKEN)  # correctly signed, not encrypted
    assert post(client, query, body, url=OA_URL).status_code == 400
    assert OfficialAccountFollow.objects.count() == 0 and CallbackReceipt.objects.count() == 0


def test_oa_encrypted_push_for_another_app_is_refused(client, oa_app):
    oa = oa_fake.FakeOfficialAccount(app_id="wxsomeoneelse0001")
    crypt = MsgCrypt(OA_TOKEN, OA_KEY, "wxsomeoneelse0001")
    ticket = oa.create_qr("x")
    assert post(client, *oa.scan(ticket, "oOPENID", token=OA_TOKEN, crypt=crypt), url=OA_URL).status_code == 403
    assert OfficialAccountFollow.objects.count() == 0 and CallbackReceipt.objects.count() == 0


def test_configuration_is_validated(brand):
    from siyu.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as bad_token:
        configure_wecom(brand.workspace, corp_id=CORP, agent_id="1", secret="s", token="has-dash", aes_key=AES_KEY)
    assert bad_token.value.field == "token"
    with pytest.raises(InvalidInput) as bad_key:
        configure_wecom(brand.workspace, corp_id=CORP, agent_id="1", secret="s", token=TOKEN, aes_key=AES_KEY[:42])
    assert bad_key.value.field == "aes_key"
    app = configure_wecom(
        brand.workspace, corp_id=CORP, agent_id="1", secret="secret-abcdef-987654", token=TOKEN, aes_key=AES_KEY
    )
    assert "secret-abcdef" not in app.secret and app.secret_hint == "••••7654"
    assert WecomApp.objects.count() == 1


# ---- parsing (pure) ------------------------------------------------------------------------


def test_group_and_tag_events_parse_into_typed_events():
    from siyu.wecom import rules

    chat = rules.parse_xml(
        b"<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        b"<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        b"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[CHAT_ID]]></ChatId>"
        b"<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
        b"<JoinScene>3</JoinScene><MemChangeCnt>2</MemChangeCnt>"
        b"<MemChangeList><Item>Jack</Item><Item>Rose</Item></MemChangeList>"
        b"<LastMemVer>9c3f</LastMemVer><CurMemVer>71217</CurMemVer></xml>"
    )
    event = rules.parse_wecom_event(chat)
    assert isinstance(event, rules.ExternalChatEvent)
    assert (event.change_type, event.chat_id, event.join_scene, event.member_changes) == (
        "update", "CHAT_ID", 3, ["Jack", "Rose"]
    )  # fmt: skip
    assert event.at is not None and event.at.timestamp() == 1403610513
    tag = rules.parse_wecom_event(
        {"Event": "change_external_tag", "ChangeType": "delete", "Id": "etTAG", "TagType": "tag", "CreateTime": "1"}
    )
    assert tag == rules.ExternalTagEvent("delete", "etTAG", "tag", at=tag.at)
    # Two groups created in the same second are two events.
    a = {"Event": "change_external_chat", "ChangeType": "create", "CreateTime": "1", "ChatId": "A"}
    assert rules.wecom_dedupe_key(a) != rules.wecom_dedupe_key({**a, "ChatId": "B"})


def test_oa_subscribe_without_a_code_has_no_scene():
    from siyu.wecom import rules

    event = rules.parse_oa_event(
        {"MsgType": "event", "Event": "subscribe", "FromUserName": "oX", "ToUserName": "gh_1", "CreateTime": "5"},
        "wxapp",
    )
    assert isinstance(event, rules.OaEvent) and (event.scene, event.app_id) == ("", "wxapp")
    scan = rules.parse_oa_event({"MsgType": "event", "Event": "SCAN", "EventKey": "poster-1", "FromUserName": "oX"})
    assert isinstance(scan, rules.OaEvent) and (scan.event, scan.scene) == ("scan", "poster-1")
