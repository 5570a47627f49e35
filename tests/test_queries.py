"""Scoped reads: who sees which customers, masking, keyset pages, search and filters."""

from __future__ import annotations

import pytest

from siyu.core import clock
from siyu.core.errors import NotFound
from siyu.customers.models import StaffRelation
from siyu.customers.queries import customer_profile, get_customer, list_customers, timeline
from siyu.customers.services import link_identities, upsert_customers
from siyu.org.rules import scope_for


def scope(brand, role, **kw):
    defaults = {"can_view_pii": False, "unit_path": None, "staff_id": None}
    return scope_for(workspace_id=brand.workspace.pk, role=role, **{**defaults, **kw})


def add(brand, phone, *, store=None, staff=None, name="", channel="", tags=None):
    item = {"identities": [{"type": "phone", "value": phone}], "name": name, "source_channel": channel}
    if store is not None:
        item["store_code"] = store.code
    if staff is not None:
        item["owner_wecom_userid"] = staff.wecom_userid
    if tags:
        item["tags"] = tags
    result = upsert_customers(brand.workspace, [item], source="test")
    assert not result.errors, result.errors
    return result.ids[0]


@pytest.fixture
def book(brand):
    ids = {
        "a_owned": add(
            brand, "13800000001", store=brand.store_a, staff=brand.clerk_a, name="王芳", channel="store_code"
        ),
        "a_other": add(brand, "13800000002", store=brand.store_a, staff=brand.clerk_a2, name="王丽", tags=["VIP"]),
        "b_owned": add(brand, "13800000003", store=brand.store_b, staff=brand.clerk_b, name="李静"),
        "nowhere": add(brand, "13800000004", name="张伟", channel="fission"),
    }
    # clerk A is WeCom friends with the store B customer too.
    StaffRelation.objects.create(
        workspace=brand.workspace, customer_id=ids["b_owned"], staff=brand.clerk_a, added_at=clock.now()
    )
    return ids


def visible(sc, **filters):
    return {c.pk for c in list_customers(sc, **filters).items}


def test_scopes(brand, book):
    hq = scope(brand, "owner")
    manager = scope(brand, "store_manager", unit_path=brand.store_a.path)
    region_manager = scope(brand, "store_manager", unit_path=brand.region.path)
    clerk = scope(brand, "staff", staff_id=brand.clerk_a.pk)
    assert visible(hq) == set(book.values())
    assert visible(manager) == {book["a_owned"], book["a_other"]}
    assert visible(region_manager) == {book["a_owned"], book["a_other"], book["b_owned"]}
    assert visible(clerk) == {book["a_owned"], book["b_owned"]}
    with pytest.raises(NotFound):
        get_customer(manager, book["b_owned"])
    with pytest.raises(NotFound):
        get_customer(clerk, book["a_other"])
    with pytest.raises(NotFound):
        get_customer(hq, 10**9)
    # A deleted friendship no longer grants sight.
    StaffRelation.objects.filter(staff=brand.clerk_a).update(status="deleted_by_customer")
    assert visible(clerk) == {book["a_owned"]}


def test_other_workspace_is_invisible(brand, book, other_workspace):
    outsider = scope_for(
        workspace_id=other_workspace.pk, role="owner", can_view_pii=True, unit_path=None, staff_id=None
    )
    assert visible(outsider) == set()
    with pytest.raises(NotFound):
        get_customer(outsider, book["a_owned"])


def test_masking_depends_on_permission(brand, book):
    analyst = scope(brand, "analyst")
    owner = scope(brand, "owner")
    masked = customer_profile(analyst, get_customer(analyst, book["a_owned"]))
    plain = customer_profile(owner, get_customer(owner, book["a_owned"]))
    assert [i["value"] for i in masked["identities"]] == ["138****0001"]
    assert [i["value"] for i in plain["identities"]] == ["13800000001"]


def test_merged_id_resolves_to_survivor(brand, book):
    hq = scope(brand, "owner")
    answer = link_identities(
        brand.workspace,
        {"identities": [{"type": "phone", "value": "13800000001"}, {"type": "phone", "value": "13800000004"}]},
        source="api",
    )
    merged = answer["merged_ids"][0]
    assert get_customer(hq, merged).pk == answer["customer_id"]
    assert merged in customer_profile(hq, get_customer(hq, merged))["merged_ids"]


def test_keyset_pages_cover_everyone_once(brand):
    ids = {add(brand, f"139{n:08d}") for n in range(23)}
    hq = scope(brand, "owner")
    seen, after = [], None
    while True:
        page = list_customers(hq, after=after, limit=5)
        seen += [c.pk for c in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert len(seen) == len(set(seen)) == 23 and set(seen) == ids
    assert seen == sorted(seen, reverse=True)


def test_search_and_filters(brand, book):
    hq = scope(brand, "owner")
    assert visible(hq, q="138 0000 0003") == {book["b_owned"]}
    assert visible(hq, q="+8613800000003") == {book["b_owned"]}
    assert visible(hq, q="王") == {book["a_owned"], book["a_other"]}
    assert visible(hq, q="不存在") == set()
    tag_id = customer_profile(hq, get_customer(hq, book["a_other"]))["tags"][0]["id"]
    assert visible(hq, tag_id=tag_id) == {book["a_other"]}
    assert visible(hq, store_id=brand.store_b.pk) == {book["b_owned"]}
    assert visible(hq, staff_id=brand.clerk_a.pk) == {book["a_owned"], book["b_owned"]}
    assert visible(hq, channel="fission") == {book["nowhere"]}


def test_timeline_merges_kinds_newest_first(brand, book):
    from siyu.tracking.services import ingest_events, ingest_orders

    cid = book["a_owned"]
    ingest_events(
        brand.workspace, [{"customer_id": cid, "name": "view", "timestamp": "2026-11-01T10:00:00"}], source="t"
    )
    ingest_orders(
        brand.workspace,
        [{"customer_id": cid, "order_no": "T1", "total_fen": 100, "paid_at": "2026-11-02T10:00:00"}],
        source="t",
    )
    hq = scope(brand, "owner")
    entries = timeline(hq, get_customer(hq, cid))
    assert [e["kind"] for e in entries] == ["order", "event"]
    older = timeline(hq, get_customer(hq, cid), before=entries[0]["at"])
    assert [e["kind"] for e in older] == ["event"]
