"""OneID: upsert by any identity, merges, conflicts, and ingestion that follows merges."""

from __future__ import annotations

import pytest

from siyu.conversations.models import Message
from siyu.core import clock
from siyu.customers.models import Customer, CustomerMerge, Identity, IdentityConflict, StaffRelation
from siyu.customers.services import link_identities, live_customer_id, merge_by_operator, upsert_customers
from siyu.tags.models import CustomerTag
from siyu.tracking.models import Event, Order
from siyu.tracking.services import ingest_events, ingest_orders


def ident(type_, value, app_id=""):
    out = {"type": type_, "value": value}
    if app_id:
        out["app_id"] = app_id
    return out


def upsert_one(ws, *identities, **profile):
    result = upsert_customers(ws, [{"identities": list(identities), **profile}], source="api")
    assert not result.errors, result.errors
    return result.ids[0]


def test_upsert_by_any_identity_finds_the_same_customer(brand):
    ws = brand.workspace
    a = upsert_one(ws, ident("phone", "+86 138-0013-8000"), name="林黛玉")
    assert upsert_one(ws, ident("phone", "13800138000")) == a
    b = upsert_one(ws, ident("phone", "13800138000"), ident("email", "Lin@Example.com"))
    assert b == a
    assert upsert_one(ws, ident("email", "lin@example.com")) == a
    customer = Customer.objects.get(pk=a)
    assert customer.name == "林黛玉"
    assert set(Identity.objects.filter(customer=customer).values_list("type", "value")) == {
        ("phone", "13800138000"),
        ("email", "lin@example.com"),
    }


def test_bad_items_are_reported_by_index_and_field_and_good_ones_stored(brand):
    result = upsert_customers(
        brand.workspace,
        [
            {"identities": [ident("phone", "13800138001")]},
            {"identities": [ident("phone", "12345")]},
            {"identities": [], "name": "x"},
            {"identities": [ident("fax", "1")]},
            {"identities": [ident("member_no", "M1")], "store_code": "NOPE"},
            {"identities": [ident("member_no", "M2")], "nickname": "x"},
            "not an object",
            {"identities": [ident("wechat_openid", "o1")]},
            {"identities": [ident("member_no", "M3"), ident("member_no", "M4")]},
            {"identities": [ident("member_no", "M5")], "store_code": "SH01", "tags": ["肤质/敏感肌", "VIP"]},
        ],
        source="api",
    )
    assert result.accepted == 2
    fields = {(e.index, e.field) for e in result.errors}
    assert fields == {
        (1, "identities.0.value"),
        (2, "identities"),
        (3, "identities.0.type"),
        (4, "store_code"),
        (5, "nickname"),
        (6, ""),
        (7, "identities.0.app_id"),
        (8, "identities"),
    }
    assert Customer.objects.filter(workspace=brand.workspace).count() == 2
    tagged = Customer.objects.get(pk=result.ids[9])
    assert tagged.store_id == brand.store_a.pk
    assert set(CustomerTag.objects.filter(customer=tagged).values_list("tag__group__name", "tag__name")) == {
        ("默认", "VIP"),
        ("肤质", "敏感肌"),
    }


def test_link_merges_two_profiles_and_moves_everything(brand):
    ws = brand.workspace
    phone_only = upsert_one(ws, ident("phone", "13900000001"), name="")
    wecom_only = upsert_one(ws, ident("wecom_external_userid", "wmABC"), name="薛宝钗", city="苏州")
    now = clock.now()
    ingest_events(ws, [{"customer_id": phone_only, "name": "view", "timestamp": "2026-11-01T10:00:00"}], source="t")
    ingest_orders(
        ws,
        [{"customer_id": wecom_only, "order_no": "O1", "total_fen": 19900, "paid_at": "2026-11-02T10:00:00+08:00"}],
        source="t",
    )
    Message.objects.create(workspace=ws, customer_id=phone_only, direction="in", text="敏感肌能用吗", sent_at=now)
    StaffRelation.objects.create(workspace=ws, customer_id=phone_only, staff=brand.clerk_a, added_at=now)
    StaffRelation.objects.create(workspace=ws, customer_id=wecom_only, staff=brand.clerk_a, added_at=now)

    answer = link_identities(
        ws, {"identities": [ident("phone", "13900000001"), ident("wecom_external_userid", "wmABC")]}, source="api"
    )
    survivor, merged = answer["customer_id"], answer["merged_ids"]
    assert survivor == min(phone_only, wecom_only) and merged == [max(phone_only, wecom_only)]
    assert live_customer_id(ws.pk, merged[0]) == survivor
    assert Identity.objects.filter(customer_id=survivor).count() == 2
    assert Event.objects.filter(customer_id=survivor).count() == 1
    assert Order.objects.filter(customer_id=survivor).count() == 1
    assert Message.objects.filter(customer_id=survivor).count() == 1
    assert StaffRelation.objects.filter(customer_id=survivor).count() == 1  # same staff twice folds to one
    kept = Customer.objects.get(pk=survivor)
    assert kept.name == "薛宝钗" and kept.city == "苏州"
    assert CustomerMerge.objects.filter(survivor_id=survivor, merged_id=merged[0]).exists()
    # New activity addressed to the old id lands on the survivor.
    ingest_events(ws, [{"customer_id": merged[0], "name": "view", "timestamp": "2026-11-03T10:00:00"}], source="t")
    assert Event.objects.filter(customer_id=survivor).count() == 2


def test_different_unique_ids_are_not_merged_but_conflict(brand):
    ws = brand.workspace
    a = upsert_one(ws, ident("member_no", "M100"), ident("phone", "13700000001"))
    b = upsert_one(ws, ident("member_no", "M200"), ident("email", "b@example.com"))
    answer = link_identities(
        ws, {"identities": [ident("phone", "13700000001"), ident("email", "b@example.com")]}, source="api"
    )
    assert answer["merged_ids"] == []
    assert answer["customer_id"] in {a, b}
    [conflict] = IdentityConflict.objects.filter(workspace=ws)
    assert {conflict.customer_id, conflict.other_customer_id} == {a, b}
    assert conflict.identity_type == "member_no"
    assert answer["conflicts"] == [conflict.pk]
    assert Customer.objects.filter(workspace=ws, merged_into__isnull=True).count() == 2
    # An operator decides they are one person after all.
    merge_by_operator(ws, conflict.pk)
    conflict.refresh_from_db()
    assert conflict.status == "merged"
    assert live_customer_id(ws.pk, b) == live_customer_id(ws.pk, a) == min(a, b)


def test_new_identity_clashing_with_a_unique_slot_starts_its_own_profile(brand):
    ws = brand.workspace
    a = upsert_one(ws, ident("phone", "13600000001"), ident("member_no", "M1"))
    result = upsert_customers(
        ws, [{"identities": [ident("phone", "13600000001"), ident("member_no", "M2")]}], source="api"
    )
    assert result.ids[0] == a
    holder = Identity.objects.get(workspace=ws, type="member_no", value="M2").customer_id
    assert holder != a
    assert IdentityConflict.objects.filter(customer_id=a, other_customer_id=holder).exists()


def test_anonymous_profile_folds_into_identified_one(brand):
    ws = brand.workspace
    anon = upsert_one(ws, ident("anonymous_id", "dev-1"))
    known = upsert_one(ws, ident("app_user_id", "u-9"))
    assert anon < known
    answer = link_identities(
        ws, {"identities": [ident("anonymous_id", "dev-1"), ident("app_user_id", "u-9")]}, source="api"
    )
    assert answer["customer_id"] == known  # identified wins over older anonymous
    assert answer["merged_ids"] == [anon]


def test_events_by_unknown_identity_create_the_customer_and_event_ids_dedupe(brand):
    ws = brand.workspace
    batch = [
        {
            "identity": ident("anonymous_id", "d-1"),
            "name": "open_app",
            "timestamp": "2026-11-20T08:00:00Z",
            "event_id": "e1",
        },
        {
            "identity": ident("anonymous_id", "d-1"),
            "name": "open_app",
            "timestamp": "2026-11-20T09:00:00Z",
            "event_id": "e2",
        },
        {"identity": ident("anonymous_id", "d-1"), "name": "open_app", "timestamp": "not a time"},
        {"customer_id": 999999, "name": "x", "timestamp": "2026-11-20T09:00:00Z"},
        {"name": "x", "timestamp": "2026-11-20T09:00:00Z"},
        {"identity": ident("anonymous_id", "d-1"), "name": "x", "timestamp": "2099-01-01T00:00:00Z"},
    ]
    first = ingest_events(ws, batch, source="api")
    assert first.accepted == 2
    assert {(e.index, e.field) for e in first.errors} == {
        (2, "timestamp"),
        (3, "customer_id"),
        (4, ""),
        (5, "timestamp"),
    }
    again = ingest_events(ws, batch[:2], source="api")
    assert again.accepted == 2 and again.duplicates == 2
    assert Event.objects.filter(workspace=ws).count() == 2
    customer = Identity.objects.get(workspace=ws, value="d-1").customer
    assert customer.last_seen_at.isoformat().startswith("2026-11-20T09:00")
    assert customer.first_seen_at.isoformat().startswith("2026-11-20T08:00")


def test_naive_timestamps_are_read_in_the_workspace_time_zone(brand):
    ws = brand.workspace
    cid = upsert_one(ws, ident("phone", "13500000000"))
    ingest_events(ws, [{"customer_id": cid, "name": "x", "timestamp": "2026-11-20T08:00:00"}], source="api")
    event = Event.objects.get(customer_id=cid)
    assert event.occurred_at.isoformat() == "2026-11-20T00:00:00+00:00"


def test_orders_are_idempotent_by_order_no_and_validated(brand):
    ws = brand.workspace
    cid = upsert_one(ws, ident("phone", "13400000000"))
    order = {
        "customer_id": cid,
        "order_no": "SO-1",
        "total_fen": 29900,
        "discount_fen": 1000,
        "paid_at": "2026-11-01T12:00:00+08:00",
    }
    assert ingest_orders(ws, [order], source="api").accepted == 1
    refund = {**order, "status": "refunded", "refunded_at": "2026-11-05T12:00:00+08:00"}
    result = ingest_orders(
        ws,
        [refund, {**order, "order_no": "SO-2", "total_fen": 12.5}, {**order, "order_no": "SO-3", "refund_fen": 10**9}],
        source="api",
    )
    assert result.accepted == 1 and result.duplicates == 1
    assert {(e.index, e.field) for e in result.errors} == {(1, "total_fen"), (2, "refund_fen")}
    [stored] = Order.objects.filter(workspace=ws)
    assert stored.status == "refunded" and stored.paid_fen == 28900 and stored.refund_fen == 28900


@pytest.mark.parametrize("value", ["", "   ", None, 5])
def test_identity_values_must_be_non_empty_strings(brand, value):
    result = upsert_customers(brand.workspace, [{"identities": [{"type": "phone", "value": value}]}], source="api")
    assert result.accepted == 0 and result.errors[0].field.startswith("identities.0")


def test_upsert_updates_given_fields_keeps_the_rest_and_merges_attributes(brand):
    ws = brand.workspace
    cid = upsert_one(
        ws,
        ident("phone", "13300000000"),
        name="旧名",
        city="上海",
        source_channel="store_code",
        attributes={"a": 1, "b": 2},
    )
    again = upsert_one(
        ws,
        ident("phone", "13300000000"),
        name="新名",
        source_channel="official_account",
        store_code="HZ01",
        owner_wecom_userid="zhaomin",
        birthday="1990-05-01",
        attributes={"b": 3, "c": "x"},
    )
    assert again == cid
    customer = Customer.objects.get(pk=cid)
    assert customer.name == "新名" and customer.city == "上海"
    assert customer.source_channel == "store_code"  # first touch wins
    assert customer.store_id == brand.store_b.pk and customer.owner_staff_id == brand.clerk_b.pk
    assert str(customer.birthday) == "1990-05-01"
    assert customer.attributes == {"a": 1, "b": 3, "c": "x"}
    bad = upsert_customers(
        ws, [{"identities": [ident("phone", "13300000000")], "owner_wecom_userid": "ghost"}], source="api"
    )
    assert [(e.index, e.field) for e in bad.errors] == [(0, "owner_wecom_userid")]


def test_operator_can_dismiss_a_conflict_once(brand):
    from siyu.core.errors import NotFound
    from siyu.customers.services import dismiss_conflict

    ws = brand.workspace
    upsert_one(ws, ident("member_no", "M1"), ident("phone", "13200000001"))
    upsert_one(ws, ident("member_no", "M2"), ident("phone", "13200000002"))
    link_identities(ws, {"identities": [ident("phone", "13200000001"), ident("phone", "13200000002")]}, source="api")
    conflict = IdentityConflict.objects.get(workspace=ws)
    dismiss_conflict(ws, conflict.pk)
    conflict.refresh_from_db()
    assert conflict.status == "dismissed" and conflict.resolved_at is not None
    with pytest.raises(NotFound):
        dismiss_conflict(ws, conflict.pk)
    with pytest.raises(NotFound):
        merge_by_operator(ws, conflict.pk)
    # Linking them again does not reopen what the operator decided.
    link_identities(ws, {"identities": [ident("phone", "13200000001"), ident("phone", "13200000002")]}, source="api")
    assert list(IdentityConflict.objects.filter(workspace=ws).values_list("status", flat=True)) == ["dismissed"]
