"""Risk control: sensitive words in staff messages raise alerts that managers of that store and
HQ see in the console and the API; clerks and other stores' managers do not."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from siyu.conversations.models import RiskAlert
from siyu.conversations.services import create_risk_rule, forget_compiled_risk_rules, ingest_messages
from tests.conftest import PASSWORD

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fresh_rules():
    forget_compiled_risk_rules()
    yield
    forget_compiled_risk_rules()


@pytest.fixture
def rules(brand):
    return {
        "pay": create_risk_rule(
            brand.workspace, {"name": "私下收款", "category": "private_payment", "words": ["私下转账", "加我微信"]}
        ),
        "rival": create_risk_rule(brand.workspace, {"name": "竞品", "category": "competitor", "words": ["雅诗兰黛"]}),
    }


def staff_msg(text, staff, *, phone="13800000001", msgid=None, direction="out"):
    item = {
        "identity": {"type": "phone", "value": phone},
        "direction": direction,
        "text": text,
        "sent_at": T0.isoformat(),
        "staff_id": staff.pk,
    }
    if msgid:
        item["external_msgid"] = msgid
    return item


def login(user):
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_a_staff_message_with_sensitive_words_raises_one_alert_per_rule(brand, rules):
    result = ingest_messages(
        brand.workspace,
        [
            staff_msg("亲，私下转账给我可以便宜，加我微信", brand.clerk_a),
            staff_msg("比雅诗兰黛的小棕瓶温和", brand.clerk_b),
            staff_msg("本周会员日满299减50", brand.clerk_a),
        ],
        source="api",
    )
    assert not result.errors
    pay = RiskAlert.objects.get(rule=rules["pay"])
    assert (pay.message_id, pay.staff, pay.status) == (result.ids[0], brand.clerk_a, "open")
    assert pay.matched_words == ["私下转账", "加我微信"]
    assert RiskAlert.objects.get(rule=rules["rival"]).staff == brand.clerk_b
    assert RiskAlert.objects.count() == 2


def test_customer_messages_and_replays_raise_nothing_new(brand, rules):
    ingest_messages(brand.workspace, [staff_msg("加我微信", brand.clerk_a, msgid="w-1")], source="api")
    again = ingest_messages(brand.workspace, [staff_msg("加我微信", brand.clerk_a, msgid="w-1")], source="api")
    assert again.duplicates == 1
    ingest_messages(brand.workspace, [staff_msg("加我微信吧", brand.clerk_a, direction="in")], source="api")
    assert RiskAlert.objects.count() == 1


def test_store_manager_sees_alerts_of_their_store_only_and_can_handle_them(brand, personas, rules):
    ingest_messages(
        brand.workspace,
        [staff_msg("私下转账更优惠", brand.clerk_a), staff_msg("雅诗兰黛也不错", brand.clerk_b)],
        source="api",
    )
    alert_a = RiskAlert.objects.get(staff=brand.clerk_a)
    alert_b = RiskAlert.objects.get(staff=brand.clerk_b)

    manager = login(personas.manager_a)
    html = manager.get("/risk/").content.decode()
    assert "私下转账更优惠" in html and "王小美" in html and "上海南京路店" in html
    assert "雅诗兰黛也不错" not in html
    # Another store's alert cannot be handled, even by guessing its id.
    assert manager.post("/risk/", {"action": "handle", "alert": alert_b.pk}).status_code == 404
    manager.post("/risk/", {"action": "handle", "alert": alert_a.pk})
    alert_a.refresh_from_db()
    assert alert_a.status == "handled" and alert_a.handled_by == personas.manager_a
    assert "私下转账更优惠" not in manager.get("/risk/").content.decode()

    hq = login(personas.hq_admin).get("/risk/").content.decode()
    assert "雅诗兰黛也不错" in hq


def test_a_manager_of_another_store_does_not_see_the_alert(brand, personas, rules):
    from django.contrib.auth import get_user_model

    from siyu.org.models import Membership, Role

    user = get_user_model().objects.create_user(username="manager_b", password=PASSWORD)
    Membership.objects.create(user=user, workspace=brand.workspace, role=Role.STORE_MANAGER, org_unit=brand.store_b)
    ingest_messages(brand.workspace, [staff_msg("私下转账更优惠", brand.clerk_a)], source="api")
    html = login(user).get("/risk/").content.decode()
    assert "私下转账更优惠" not in html
    assert "私下转账更优惠" in login(personas.manager_a).get("/risk/").content.decode()


def test_store_clerks_do_not_see_the_risk_page(personas, rules):
    client = login(personas.clerk_a)
    assert client.get("/risk/").status_code == 403
    assert "/risk/" not in client.get("/").content.decode()


def test_hq_creates_and_disables_risk_rules_in_the_console(brand, personas):
    client = login(personas.hq_admin)
    client.post("/risk/", {"action": "create", "name": "辱骂", "category": "abuse", "words": "滚\n神经病"})
    ingest_messages(brand.workspace, [staff_msg("你是不是神经病", brand.clerk_a)], source="api")
    alert = RiskAlert.objects.get()
    assert alert.matched_words == ["神经病"]
    client.post("/risk/", {"action": "toggle", "rule": alert.rule_id})
    ingest_messages(brand.workspace, [staff_msg("滚", brand.clerk_a)], source="api")
    assert RiskAlert.objects.count() == 1
    # Store managers see the rules but may not change them.
    manager = login(personas.manager_a)
    assert manager.post("/risk/", {"action": "toggle", "rule": alert.rule_id}).status_code == 403


@pytest.fixture
def api(api_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def call(method, path, body=None):
        if body is None:
            return getattr(client, method)(f"/api/v1{path}")
        return getattr(client, method)(f"/api/v1{path}", json.dumps(body), content_type="application/json")

    return call


def test_risk_rules_and_alerts_through_the_api(api, brand):
    created = api("post", "/risk-rules", {"name": "竞品", "category": "competitor", "words": ["兰蔻"]})
    assert created.status_code == 201
    rule_id = created.json()["id"]
    assert api("put", f"/risk-rules/{rule_id}", {"name": "竞品", "words": ["兰蔻", "雅诗兰黛"]}).status_code == 200
    batch = api("post", "/messages/batch", {"items": [staff_msg("雅诗兰黛在打折", brand.clerk_a)]})
    assert batch.json()["accepted"] == 1
    page = api("get", "/risk-alerts").json()
    assert [a["matched_words"] for a in page["items"]] == [["雅诗兰黛"]]
    assert page["items"][0]["staff"]["store"] == "上海南京路店"
    alert_id = page["items"][0]["id"]
    assert api("post", f"/risk-alerts/{alert_id}/handle").json()["status"] == "handled"
    assert api("get", "/risk-alerts").json()["items"] == []
    assert len(api("get", "/risk-alerts?status=handled").json()["items"]) == 1
    assert api("delete", f"/risk-rules/{rule_id}").status_code == 204
    assert api("get", f"/risk-rules/{rule_id}").status_code == 404


def test_risk_api_validation_errors_name_the_field(api, brand):
    for body, field in [
        ({"name": "x", "words": []}, "words"),
        ({"name": "x", "words": ["a"], "category": "gossip"}, "category"),
        ({"words": ["a"]}, "name"),
    ]:
        response = api("post", "/risk-rules", body)
        assert response.status_code == 422
        assert field in [d["field"] for d in response.json()["detail"]]
    batch = api("post", "/messages/batch", {"items": [{**staff_msg("hi", brand.clerk_a), "staff_id": 10**6}]})
    assert batch.json()["rejected"] == [
        {"index": 0, "field": "staff_id", "message": "no staff member with id 1000000 in this workspace"}
    ]
    assert api("get", "/risk-alerts?status=weird").status_code == 422
