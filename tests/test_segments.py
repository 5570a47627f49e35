"""Segments: definitions, freshness (incremental refresh, expiring windows, rebuilds),
history on the timeline, tag rules, and the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from siyu.core import clock
from siyu.customers.models import Customer, CustomerChange
from siyu.customers.services import mark_changed, merge_customers, upsert_customers
from siyu.org.rules import scope_for
from siyu.org.services import create_api_key
from siyu.segments import queries, services
from siyu.segments.models import Segment, SegmentMembership, SegmentSize
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.tags.services import remove_tag
from siyu.tracking.models import Event, EventDaily, OrderDaily
from siyu.tracking.services import ingest_events, ingest_orders

VIEWED_3_IN_30 = {
    "version": 1,
    "match": {"type": "event", "name": "view_product", "count": {"op": "gte", "value": 3}, "window": {"last_days": 30}},
}


def make_customer(brand, name, **fields):
    now = clock.now()
    return Customer.objects.create(workspace=brand.workspace, name=name, created_at=now, updated_at=now, **fields)


def views(brand, customer, n, at):
    items = [{"customer_id": customer.pk, "name": "view_product", "timestamp": at.isoformat()} for _ in range(n)]
    assert not ingest_events(brand.workspace, items, source="test").errors


def members(segment):
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list("customer_id", flat=True)
    )


@pytest.fixture
def tag(brand):
    group = TagGroup.objects.create(workspace=brand.workspace, name="兴趣")
    return Tag.objects.create(workspace=brand.workspace, group=group, name="敏感肌")


def test_event_counters_use_the_workspace_local_day(brand):
    lin = make_customer(brand, "林")
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    views(brand, lin, 2, dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC))
    views(brand, lin, 1, dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.UTC))
    rows = list(EventDaily.objects.filter(customer=lin).values_list("name", "day", "count"))
    assert rows == [("view_product", dt.date(2026, 11, 21), 3)]


def test_order_day_rows_follow_refunds(brand):
    lin = make_customer(brand, "林")
    order = {"customer_id": lin.pk, "order_no": "A1", "total_fen": 10000, "paid_at": "2026-11-20T10:00:00+08:00"}
    ingest_orders(brand.workspace, [order], source="test")
    assert list(OrderDaily.objects.filter(customer=lin).values_list("orders", "amount_fen")) == [(1, 10000)]
    ingest_orders(brand.workspace, [{**order, "refund_fen": 2500}], source="test")
    assert list(OrderDaily.objects.filter(customer=lin).values_list("orders", "amount_fen")) == [(1, 7500)]
    ingest_orders(brand.workspace, [{**order, "status": "refunded"}], source="test")
    assert not OrderDaily.objects.filter(customer=lin).exists()


def test_a_customer_enters_on_the_third_view_and_it_lands_on_the_timeline(brand):
    segment = services.save_segment(brand.workspace, name="近30天浏览3次", rule=VIEWED_3_IN_30)
    lin, wang = make_customer(brand, "林"), make_customer(brand, "王")
    now = clock.now()
    views(brand, lin, 2, now - dt.timedelta(hours=1))
    views(brand, wang, 1, now - dt.timedelta(hours=1))
    first = services.refresh_workspace(brand.workspace, now=now)
    assert first.segments[0].rebuilt and members(segment) == set()

    views(brand, lin, 1, now)
    report = services.refresh_workspace(brand.workspace, now=now)
    diff = report.segments[0]
    assert not diff.rebuilt and diff.candidates == 1 and diff.entered == 1
    assert members(segment) == {lin.pk}
    entered = Event.objects.get(customer=lin, name="segment_entered")
    assert entered.properties == {"segment_id": segment.pk, "segment": "近30天浏览3次"}
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert SegmentSize.objects.get(segment=segment).size == 1
    # Nothing changed: nothing is re-evaluated.
    assert services.refresh_workspace(brand.workspace, now=now).segments[0].candidates == 0


def test_members_leave_when_their_views_age_out_of_the_window(brand):
    segment = services.save_segment(brand.workspace, name="近30天浏览3次", rule=VIEWED_3_IN_30)
    lin, wang = make_customer(brand, "林"), make_customer(brand, "王")
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    views(brand, lin, 3, now - dt.timedelta(days=10))
    views(brand, wang, 3, now - dt.timedelta(days=2))
    services.refresh_workspace(brand.workspace, now=now)
    assert members(segment) == {lin.pk, wang.pk}

    later = now + dt.timedelta(days=21)  # lin's views are now 31 days old; wang's 23
    diff = services.refresh_workspace(brand.workspace, now=later).segments[0]
    assert not diff.rebuilt
    assert diff.candidates == 1  # only the customer with activity on the days that left the window
    assert members(segment) == {wang.pk}
    stay = SegmentMembership.objects.get(segment=segment, customer=lin)
    assert stay.exited_at == later
    assert Event.objects.filter(customer=lin, name="segment_exited").count() == 1


def test_a_changed_definition_rebuilds_and_keeps_history(brand):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin, wang = make_customer(brand, "林", city="上海"), make_customer(brand, "王", city="杭州")
    now = clock.now()
    services.refresh_workspace(brand.workspace, now=now)
    assert members(segment) == {lin.pk}
    services.save_segment(brand.workspace, name="上海", rule=_city("杭州"), segment_id=segment.pk)
    segment.refresh_from_db()
    assert segment.revision == 2
    diff = services.refresh_workspace(brand.workspace, now=now + dt.timedelta(minutes=1)).segments[0]
    assert diff.rebuilt and (diff.entered, diff.exited) == (1, 1)
    assert members(segment) == {wang.pk}
    assert SegmentMembership.objects.filter(segment=segment, customer=lin, exited_at__isnull=False).count() == 1


def test_saving_the_same_rule_does_not_bump_the_revision(brand):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    services.save_segment(brand.workspace, name="上海客户", rule=_city("上海"), segment_id=segment.pk)
    segment.refresh_from_db()
    assert (segment.revision, segment.name) == (1, "上海客户")


def test_profile_updates_tag_changes_and_merges_are_picked_up(brand, tag):
    segment = services.save_segment(
        brand.workspace,
        name="上海敏感肌",
        rule={
            "version": 1,
            "match": {
                "type": "and",
                "conditions": [_city("上海")["match"], {"type": "tags", "match": "any", "tag_ids": [tag.pk]}],
            },
        },
    )
    result = upsert_customers(
        brand.workspace,
        [{"identities": [{"type": "phone", "value": "13800138000"}], "city": "上海", "tags": ["兴趣/敏感肌"]}],
        source="test",
    )
    lin = Customer.objects.get(pk=result.ids[0])
    services.refresh_workspace(brand.workspace)
    assert members(segment) == {lin.pk}
    remove_tag(brand.workspace, lin, tag.pk)
    assert CustomerChange.objects.filter(customer_id=lin.pk).exists()
    services.refresh_workspace(brand.workspace)
    assert members(segment) == set()

    other = make_customer(brand, "林二", city="上海")
    CustomerTag.objects.create(workspace=brand.workspace, customer=other, tag=tag, created_at=clock.now())
    services.refresh_workspace(brand.workspace, full=True)
    assert members(segment) == {other.pk}
    merge_customers(brand.workspace.pk, survivor=lin.pk, merged=other.pk, reason="test")
    services.refresh_workspace(brand.workspace)
    assert members(segment) == {lin.pk}  # the survivor got the tag; the merged profile left


def test_merges_move_day_counters_to_the_survivor(brand):
    lin, lin2 = make_customer(brand, "林"), make_customer(brand, "林二")
    views(brand, lin, 1, clock.now())
    views(brand, lin2, 2, clock.now())
    merge_customers(brand.workspace.pk, survivor=lin.pk, merged=lin2.pk, reason="test")
    assert sum(EventDaily.objects.filter(customer=lin).values_list("count", flat=True)) == 3
    assert not EventDaily.objects.filter(customer=lin2).exists()


def test_a_tag_rule_keeps_the_tag_equal_to_the_members(brand, tag):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin, wang = make_customer(brand, "林", city="上海"), make_customer(brand, "王", city="杭州")
    services.refresh_workspace(brand.workspace)
    services.save_tag_rule(brand.workspace, segment_id=segment.pk, tag_id=tag.pk)
    assert set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True)) == {lin.pk}
    Customer.objects.filter(pk=wang.pk).update(city="上海")
    Customer.objects.filter(pk=lin.pk).update(city="北京")
    mark_changed(brand.workspace.pk, [lin.pk, wang.pk])
    services.refresh_workspace(brand.workspace)
    holders = CustomerTag.objects.filter(tag=tag)
    assert set(holders.values_list("customer_id", flat=True)) == {wang.pk}
    assert holders.get().source_ref == f"segment:{segment.pk}"


def test_bulk_tag_and_untag_all_members(brand, tag):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    shanghai = [make_customer(brand, f"客{n}", city="上海") for n in range(3)]
    make_customer(brand, "杭", city="杭州")
    services.refresh_workspace(brand.workspace)
    assert services.bulk_tag(brand.workspace, segment.pk, tag.pk) == 3
    assert set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True)) == {c.pk for c in shanghai}
    assert services.bulk_tag(brand.workspace, segment.pk, tag.pk, remove=True) == 3
    assert not CustomerTag.objects.filter(tag=tag).exists()


def test_membership_of_another_segment_and_cycles(brand):
    shanghai = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    female = services.save_segment(
        brand.workspace,
        name="上海女性",
        rule={
            "version": 1,
            "match": {
                "type": "and",
                "conditions": [
                    {"type": "segment", "segment_id": shanghai.pk},
                    {"type": "field", "field": "gender", "op": "eq", "value": "f"},
                ],
            },
        },
    )
    lin = make_customer(brand, "林", city="上海", gender="f")
    make_customer(brand, "王", city="上海", gender="m")
    services.refresh_workspace(brand.workspace)
    assert members(female) == {lin.pk}
    loop = {"version": 1, "match": {"type": "segment", "segment_id": female.pk}}
    with pytest.raises(services.InvalidInput) as err:
        services.save_segment(brand.workspace, name="上海", rule=loop, segment_id=shanghai.pk)
    assert "loop" in err.value.message
    with pytest.raises(services.InvalidInput) as err:
        services.archive_segment(brand.workspace, shanghai.pk)
    assert "上海女性" in err.value.message


def test_references_to_other_workspaces_are_field_errors(brand, other_workspace):
    group = TagGroup.objects.create(workspace=other_workspace, name="g")
    foreign = Tag.objects.create(workspace=other_workspace, group=group, name="t")
    rule = {
        "version": 1,
        "match": {
            "type": "or",
            "conditions": [_city("上海")["match"], {"type": "tags", "match": "any", "tag_ids": [foreign.pk]}],
        },
    }
    with pytest.raises(services.InvalidInput) as err:
        services.save_segment(brand.workspace, name="x", rule=rule)
    assert err.value.field == "match.conditions.1.tag_ids"
    store_rule = {"version": 1, "match": {"type": "org", "level": "store", "ids": [brand.region.pk]}}
    with pytest.raises(services.InvalidInput) as err:
        services.save_segment(brand.workspace, name="x", rule=store_rule)
    assert err.value.field == "match.ids"


def test_member_pages_respect_the_viewers_scope(brand):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    in_a = [make_customer(brand, f"A{n}", city="上海", store=brand.store_a) for n in range(3)]
    make_customer(brand, "B", city="上海", store=brand.store_b)
    services.refresh_workspace(brand.workspace)
    manager = scope_for(
        workspace_id=brand.workspace.pk,
        role="store_manager",
        can_view_pii=False,
        unit_path=brand.store_a.path,
        staff_id=None,
    )
    page, after = queries.member_page(manager, segment, limit=2)
    assert [c.pk for c, _ in page] == sorted((c.pk for c in in_a), reverse=True)[:2]
    rest, end = queries.member_page(manager, segment, after=after, limit=2)
    assert [c.pk for c, _ in rest] == [min(c.pk for c in in_a)] and end is None
    assert queries.preview(brand.workspace, manager, services.validate_rule(brand.workspace, _city("上海"))).count == 3


# -- API -----------------------------------------------------------------------------------------


@pytest.fixture
def api(client, brand):
    key = create_api_key(workspace_slug=brand.workspace.slug, name="test")[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def test_api_invalid_rules_point_at_the_offending_node(api):
    rule = {
        "version": 1,
        "match": {
            "type": "and",
            "conditions": [_city("上海")["match"], {"type": "event", "name": "x", "count": {"op": "gte", "value": -1}}],
        },
    }
    answer = api.post("/api/v1/segments", {"name": "x", "rule": rule}, content_type="application/json")
    assert answer.status_code == 422
    assert answer.json()["field"] == "rule.match.conditions.1.count.value"
    unknown = {"version": 1, "match": {"type": "colour", "value": "red"}}
    answer = api.post("/api/v1/segments/preview", {"rule": unknown}, content_type="application/json")
    assert answer.status_code == 422 and answer.json()["field"] == "rule.match"
    assert not Segment.objects.exists()


def test_api_create_preview_refresh_and_page_members(api, brand, django_capture_on_commit_callbacks):
    customers = [make_customer(brand, f"客{n}", city="上海") for n in range(3)]
    answer = api.post("/api/v1/segments/preview", {"rule": VIEWED_3_IN_30}, content_type="application/json")
    assert answer.json() == {"count": 0, "sample": []}
    created = api.post(
        "/api/v1/segments", {"name": "近30天浏览3次", "rule": VIEWED_3_IN_30}, content_type="application/json"
    )
    assert created.status_code == 201
    segment_id = created.json()["id"]
    at = clock.now().isoformat()
    events = [{"customer_id": c.pk, "name": "view_product", "timestamp": at} for c in customers[:2] for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/v1/events/batch", {"items": events}, content_type="application/json")
    assert answer.json()["accepted"] == 6
    # The ingestion queued a refresh (run inline by the test task backend): members are already there.
    page = api.get(f"/api/v1/segments/{segment_id}/members?limit=1").json()
    assert [item["id"] for item in page["items"]] == [customers[1].pk]
    page = api.get(f"/api/v1/segments/{segment_id}/members?limit=1&after={page['next_after']}").json()
    assert [item["id"] for item in page["items"]] == [customers[0].pk] and page["next_after"] is None
    assert api.get(f"/api/v1/segments/{segment_id}").json()["member_count"] == 2
    preview = api.post(
        "/api/v1/segments/preview", {"rule": VIEWED_3_IN_30, "sample": 5}, content_type="application/json"
    )
    assert preview.json()["count"] == 2
    assert api.get("/api/v1/segments/999999").status_code == 404
    assert api.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    assert api.get("/api/v1/segments").json() == []


def test_api_tag_rules_and_bulk_tagging(api, brand, tag):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin = make_customer(brand, "林", city="上海")
    services.refresh_workspace(brand.workspace)
    answer = api.post(
        "/api/v1/segment-tag-rules", {"segment_id": segment.pk, "tag_id": tag.pk}, content_type="application/json"
    )
    assert answer.status_code == 200 and CustomerTag.objects.filter(tag=tag, customer=lin).exists()
    assert api.get("/api/v1/segment-tag-rules").json()[0]["segment_id"] == segment.pk
    answer = api.post(
        f"/api/v1/segments/{segment.pk}/tags", {"tag_id": tag.pk, "remove": True}, content_type="application/json"
    )
    assert answer.json() == {"changed": 1}


def _city(city):
    return {"version": 1, "match": {"type": "field", "field": "city", "op": "eq", "value": city}}


def test_a_broken_stored_rule_is_reported_and_the_other_segments_still_refresh(brand):
    broken = services.save_segment(brand.workspace, name="坏", rule=_city("杭州"))
    shanghai = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin = make_customer(brand, "林", city="上海")
    Segment.objects.filter(pk=broken.pk).update(rule={"version": 1, "match": {"type": "segment", "segment_id": 424242}})
    report = services.refresh_workspace(brand.workspace)
    assert list(report.failed) == [broken.pk] and "424242" in report.failed[broken.pk]
    assert members(shanghai) == {lin.pk}
    assert not CustomerChange.objects.exists()


def test_changing_a_referenced_segment_rebuilds_the_segments_that_use_it(brand):
    city = services.save_segment(brand.workspace, name="城市", rule=_city("上海"))
    user = services.save_segment(
        brand.workspace, name="城市里的客户", rule={"version": 1, "match": {"type": "segment", "segment_id": city.pk}}
    )
    lin, wang = make_customer(brand, "林", city="上海"), make_customer(brand, "王", city="杭州")
    services.refresh_workspace(brand.workspace)
    assert members(user) == {lin.pk}
    services.save_segment(brand.workspace, name="城市", rule=_city("杭州"), segment_id=city.pk)
    services.refresh_workspace(brand.workspace)
    assert members(city) == members(user) == {wang.pk}


def test_a_restored_segment_catches_up_with_changes_made_while_archived(brand):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin = make_customer(brand, "林", city="上海")
    services.refresh_workspace(brand.workspace)
    services.archive_segment(brand.workspace, segment.pk)
    Customer.objects.filter(pk=lin.pk).update(city="杭州")
    mark_changed(brand.workspace.pk, [lin.pk])
    services.refresh_workspace(brand.workspace)  # drains the mark while the segment is archived
    services.save_segment(brand.workspace, name="上海", rule=_city("上海"), segment_id=segment.pk)
    services.refresh_workspace(brand.workspace)
    assert members(segment) == set()


def test_rules_on_segment_events_see_who_just_moved(brand):
    shanghai = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    entered = services.save_segment(
        brand.workspace,
        name="今天进过分群",
        rule={"version": 1, "match": {"type": "event", "name": "segment_entered", "window": {"last_days": 1}}},
    )
    lin = make_customer(brand, "林", city="上海")
    services.refresh_workspace(brand.workspace)
    assert members(shanghai) == {lin.pk}
    services.refresh_workspace(brand.workspace)  # the move of the first refresh is a change
    assert lin.pk in members(entered)


def test_tag_rules_leave_hand_set_tags_alone(brand, tag):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    lin, wang = make_customer(brand, "林", city="上海"), make_customer(brand, "王", city="杭州")
    CustomerTag.objects.create(workspace=brand.workspace, customer=wang, tag=tag, created_at=clock.now())
    services.refresh_workspace(brand.workspace)
    services.save_tag_rule(brand.workspace, segment_id=segment.pk, tag_id=tag.pk)
    assert set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True)) == {lin.pk, wang.pk}
    assert set(CustomerChange.objects.values_list("customer_id", flat=True)) == {lin.pk}
    Customer.objects.filter(pk=lin.pk).update(city="北京")
    mark_changed(brand.workspace.pk, [lin.pk])
    services.refresh_workspace(brand.workspace)
    assert set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True)) == {wang.pk}


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"type": "field", "field": "attributes.level", "op": "lt", "value": float("nan")}, "match"),
        ({"type": "field", "field": "created_at", "op": "gt", "value": "9999-12-31"}, "match"),
        ({"type": "event", "name": "x", "window": {"from": "0001-01-01"}}, "match.window"),
        ({"type": "orders", "measure": "days_since_last", "op": "gt", "value": 800000}, "match"),
        ({"type": "field", "field": "city", "op": "eq", "value": "上\x00海"}, "match.value"),
        ({"type": "field", "field": "city", "op": "eq", "value": "\ud800"}, "match.value"),
        ({"type": "field", "field": "attributes.level\n", "op": "is_set"}, "match"),
    ],
)
def test_values_the_databases_cannot_take_are_field_errors(brand, match, field):
    with pytest.raises(services.InvalidInput) as err:
        services.save_segment(brand.workspace, name="x", rule={"version": 1, "match": match})
    assert err.value.field == field
    assert not Segment.objects.exists()


def test_nested_segments_cannot_blow_up_the_compiled_statement(brand):
    base = services.save_segment(brand.workspace, name="s0", rule=_city("上海"))
    fan_out = {"type": "or", "conditions": [{"type": "segment", "segment_id": base.pk}] * 50}
    wide = services.save_segment(brand.workspace, name="s1", rule={"version": 1, "match": fan_out})
    again = {"type": "or", "conditions": [{"type": "segment", "segment_id": wide.pk}] * 50}
    with pytest.raises(services.InvalidInput) as err:
        services.save_segment(brand.workspace, name="s2", rule={"version": 1, "match": again})
    assert "at most" in err.value.message


def test_a_bulk_backfill_of_counters_matches_counting_at_ingest(brand):
    from siyu.tracking.counters import rebuild_workspace_counters

    lin, wang = make_customer(brand, "林"), make_customer(brand, "王")
    views(brand, lin, 2, dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC))
    views(brand, wang, 1, dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.UTC))
    ingest_orders(
        brand.workspace,
        [
            {
                "customer_id": lin.pk,
                "order_no": "A1",
                "total_fen": 9900,
                "refund_fen": 900,
                "paid_at": "2026-11-20T23:59:00+08:00",
            }
        ],
        source="test",
    )
    at_ingest = set(EventDaily.objects.values_list("customer_id", "name", "day", "count"))
    orders_at_ingest = set(OrderDaily.objects.values_list("customer_id", "day", "orders", "amount_fen"))
    rebuild_workspace_counters(brand.workspace.pk, brand.workspace.time_zone)
    assert set(EventDaily.objects.values_list("customer_id", "name", "day", "count")) == at_ingest
    assert set(OrderDaily.objects.values_list("customer_id", "day", "orders", "amount_fen")) == orders_at_ingest
    assert (wang.pk, "view_product", dt.date(2026, 11, 20), 1) in at_ingest
    assert orders_at_ingest == {(lin.pk, dt.date(2026, 11, 20), 1, 9000)}


def test_member_pages_give_aware_entry_times(brand):
    segment = services.save_segment(brand.workspace, name="上海", rule=_city("上海"))
    make_customer(brand, "林", city="上海")
    now = clock.now()
    services.refresh_workspace(brand.workspace, now=now)
    everyone = scope_for(
        workspace_id=brand.workspace.pk, role="owner", can_view_pii=True, unit_path=None, staff_id=None
    )
    [(_, entered_at)] = queries.member_page(everyone, segment)[0]
    assert entered_at == now and entered_at.tzinfo is not None


def test_the_sql_form_of_a_scope_selects_what_scoped_customers_selects(brand):
    from siyu.customers.models import StaffRelation
    from siyu.customers.queries import scope_sql, scoped_customers

    in_a = make_customer(brand, "A", store=brand.store_a)
    make_customer(brand, "B", store=brand.store_b, owner_staff=brand.clerk_b)
    friend = make_customer(brand, "好友", store=brand.store_b)
    make_customer(brand, "无门店")
    StaffRelation.objects.create(workspace=brand.workspace, customer=friend, staff=brand.clerk_a, added_at=clock.now())
    scopes = [
        scope_for(workspace_id=brand.workspace.pk, role=role, can_view_pii=False, unit_path=path, staff_id=staff)
        for role, path, staff in (
            ("owner", None, None),
            ("store_manager", brand.store_a.path, None),
            ("store_manager", brand.region.path, None),
            ("staff", None, brand.clerk_a.pk),
            ("staff", None, None),
        )
    ]
    for scope in scopes:
        extra, params = scope_sql(scope)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id FROM customers_customer c WHERE c.workspace_id = %s AND c.merged_into_id IS NULL{extra}",
                [brand.workspace.pk, *params],
            )
            raw = {row[0] for row in cursor.fetchall()}
        assert raw == set(scoped_customers(scope).values_list("pk", flat=True)), scope
    assert raw == set()  # the last scope: a clerk without a staff record sees nobody
    assert in_a.pk in set(scoped_customers(scopes[1]).values_list("pk", flat=True))
