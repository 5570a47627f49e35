"""The JSON API: auth, partial batches, idempotency, scoping, errors that are never 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.customers.models import Customer
from siyu.tracking.models import Event, Order


@pytest.fixture
def api(api_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def call(method, path, body=None, raw=None, **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        return (
            getattr(client, method)(f"/api/v1{path}", data, **kwargs, **extra)
            if data is not None
            else getattr(client, method)(f"/api/v1{path}", **extra)
        )

    return call


def phone(value):
    return {"type": "phone", "value": value}


def test_requests_without_a_valid_key_are_401(brand, api_key):
    client = Client()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": f"Basic {api_key}"}):
        response = client.get("/api/v1/customers", **headers)
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]


def test_revoked_key_is_refused(brand, api_key):
    from siyu.org.models import ApiKey
    from siyu.org.services import revoke_api_key

    key = ApiKey.objects.get(workspace=brand.workspace)
    revoke_api_key(workspace=brand.workspace, key_id=key.pk)
    assert Client().get("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_customer_batch_is_partially_successful(api, brand):
    response = api(
        "post",
        "/customers/batch",
        {
            "items": [
                {"identities": [phone("13800138000")], "name": "林黛玉", "store_code": "SH01"},
                {"identities": [phone("42")]},
                {"identities": [phone("13800138001")], "age": 3},
                {"identities": [phone("13800138002")], "birthday": "not a date"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "identities.0.value"),
        (2, "age"),
        (3, "birthday"),
    ]
    assert all(r["message"] for r in body["rejected"])
    assert body["ids"][0] is not None and body["ids"][1:] == [None, None, None]
    assert Customer.objects.get(pk=body["ids"][0]).name == "林黛玉"


def test_events_are_idempotent_by_event_id(api, brand):
    cid = api("post", "/customers/batch", {"items": [{"identities": [phone("13800138000")]}]}).json()["ids"][0]
    items = [
        {"customer_id": cid, "name": "view_product", "timestamp": "2026-11-20T10:00:00+08:00", "event_id": "e-1"},
        {"identity": phone("13900139000"), "name": "scan", "timestamp": "2026-11-20T10:00:00", "event_id": "e-2"},
        {"customer_id": cid, "name": "", "timestamp": "2026-11-20T10:00:00"},
    ]
    first = api("post", "/events/batch", {"items": items}).json()
    assert first["accepted"] == 2 and first["duplicates"] == 0 and [r["index"] for r in first["rejected"]] == [2]
    again = api("post", "/events/batch", {"items": items[:2]}).json()
    assert again["accepted"] == 2 and again["duplicates"] == 2
    assert Event.objects.filter(workspace=brand.workspace).count() == 2


def test_orders_are_idempotent_by_order_no(api, brand):
    order = {"identity": phone("13800138000"), "order_no": "SO-9", "total_fen": 19900, "paid_at": "2026-11-20T10:00:00"}
    assert api("post", "/orders/batch", {"items": [order]}).json()["accepted"] == 1
    second = api("post", "/orders/batch", {"items": [{**order, "status": "refunded"}]}).json()
    assert second["duplicates"] == 1
    [stored] = Order.objects.filter(workspace=brand.workspace)
    assert stored.status == "refunded"


def test_identify_merges_and_old_id_resolves(api, brand):
    a = api("post", "/customers/batch", {"items": [{"identities": [phone("13800138000")]}]}).json()["ids"][0]
    b = api("post", "/customers/batch", {"items": [{"identities": [{"type": "member_no", "value": "M7"}]}]}).json()[
        "ids"
    ][0]
    answer = api("post", "/identify", {"identities": [phone("13800138000"), {"type": "member_no", "value": "M7"}]})
    assert answer.status_code == 200
    assert answer.json()["customer_id"] == a and answer.json()["merged_ids"] == [b]
    detail = api("get", f"/customers/{b}").json()
    assert detail["id"] == a and b in detail["merged_ids"]
    assert {i["type"] for i in detail["identities"]} == {"phone", "member_no"}


def test_list_detail_timeline_and_pagination(api, brand):
    ids = api(
        "post",
        "/customers/batch",
        {"items": [{"identities": [phone(f"1380013{n:04d}")], "name": f"客户{n}"} for n in range(7)]},
    ).json()["ids"]
    page = api("get", "/customers?limit=5").json()
    assert [c["id"] for c in page["items"]] == sorted(ids, reverse=True)[:5]
    rest = api("get", f"/customers?limit=5&after={page['next_after']}").json()
    assert len(rest["items"]) == 2 and rest["next_after"] is None
    assert [c["id"] for c in api("get", "/customers?q=13800130003").json()["items"]] == [ids[3]]
    api("post", "/events/batch", {"items": [{"customer_id": ids[0], "name": "open", "timestamp": "2026-11-01T00:00"}]})
    timeline = api("get", f"/customers/{ids[0]}/timeline").json()
    assert [e["kind"] for e in timeline] == ["event"]
    assert api("get", "/customers?limit=0").status_code == 422


def test_other_workspace_customer_is_404(api, brand, other_workspace):
    from siyu.customers.services import upsert_customers

    theirs = upsert_customers(other_workspace, [{"identities": [phone("13800138000")]}], source="t").ids[0]
    assert api("get", f"/customers/{theirs}").status_code == 404
    assert api("get", f"/customers/{theirs}/timeline").status_code == 404
    events = api("post", "/events/batch", {"items": [{"customer_id": theirs, "name": "x", "timestamp": "2026-11-01"}]})
    assert events.json()["rejected"][0]["field"] == "customer_id"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{not json", 400),
        ("[]", 422),
        ('{"items": "x"}', 422),
        ('{"items": [], "extra": 1}', 422),
        ('{"items": []}', 422),
        ("null", 422),
    ],
)
def test_malformed_bodies_are_4xx(api, brand, raw, status):
    for path in ("/customers/batch", "/events/batch", "/orders/batch"):
        response = api("post", path, raw=raw)
        assert response.status_code == status, (path, response.content)
        assert "detail" in response.json()


def test_oversize_batch_is_413_before_any_work(api, brand):
    items = [{"identities": [phone(f"138{n:08d}")]} for n in range(1001)]
    response = api("post", "/customers/batch", {"items": items})
    assert response.status_code == 413 and "1000" in response.json()["detail"]
    assert not Customer.objects.filter(workspace=brand.workspace).exists()


def test_openapi_documents_paths_and_item_shapes(brand):
    spec = Client().get("/api/v1/openapi.json").json()
    assert {"/api/v1/customers/batch", "/api/v1/events/batch", "/api/v1/orders/batch", "/api/v1/identify"} <= set(
        spec["paths"]
    )
    body = spec["paths"]["/api/v1/events/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "timestamp" in body["properties"]["items"]["items"]["properties"]
    assert Client().get("/api/v1/docs").status_code == 200


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["\x00", "a\x00b", "13800138000"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"items": st.lists(json_values, max_size=5)}),
    st.fixed_dictionaries(
        {
            "items": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "identities": st.lists(
                            st.fixed_dictionaries(
                                {"type": st.sampled_from(["phone", "member_no", "x"]), "value": json_values}
                            ),
                            max_size=3,
                        ),
                        "identity": st.fixed_dictionaries(
                            {"type": st.sampled_from(["phone", "anonymous_id"]), "value": json_values}
                        ),
                        "customer_id": json_values,
                        "name": json_values,
                        "timestamp": st.one_of(json_values, st.just("2026-11-01T00:00:00")),
                        "order_no": json_values,
                        "total_fen": json_values,
                        "paid_at": json_values,
                        "properties": json_values,
                    },
                ),
                max_size=4,
            )
        }
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["/customers/batch", "/events/batch", "/orders/batch", "/identify"]))
def test_random_json_never_causes_a_500(api, brand, body, path):
    response = api("post", path, raw=json.dumps(body))
    assert response.status_code < 500, response.content


def test_ids_and_amounts_beyond_64_bits_are_4xx_not_500(api, brand):
    big = 10**20
    for path in (f"/customers/{big}", f"/customers/{big}/timeline", f"/customers?after={big}", f"/customers?tag={big}"):
        assert 400 <= api("get", path).status_code < 500, path
    events = api("post", "/events/batch", {"items": [{"customer_id": big, "name": "x", "timestamp": "2026-11-01"}]})
    assert events.json()["rejected"][0]["field"] == "customer_id"
    order = {"identity": phone("13800138000"), "order_no": "x", "total_fen": big, "paid_at": "2026-11-01"}
    assert api("post", "/orders/batch", {"items": [order]}).json()["rejected"][0]["field"] == "total_fen"
    assert api("post", "/identify", {"identities": [phone("13800138000")], "customer_id": big}).status_code == 422


def test_nul_characters_are_field_errors_not_500(api, brand):
    customer = {"identities": [{"type": "member_no", "value": "ok"}], "name": "x\x00y"}
    body = api("post", "/customers/batch", {"items": [customer]}).json()
    assert body["rejected"] == [{"index": 0, "field": "name", "message": "contains a NUL (\\u0000) character"}]
    event = {"identity": phone("13800138000"), "name": "x", "timestamp": "2026-11-01", "properties": {"a": "\x00"}}
    assert api("post", "/events/batch", {"items": [event]}).json()["rejected"][0]["field"] == "properties.a"
    assert api("post", "/identify", {"identities": [{"type": "member_no", "value": "a\x00"}]}).status_code == 422
    for path in ("/customers?q=%00", "/customers?channel=a%00b", "/customers?q=a%00b"):
        assert api("get", path).status_code == 200
