"""The segments console (客户分群): list, builder preview, detail, export, roles, profile."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from siyu.customers.services import upsert_customers
from siyu.org.models import AuditEntry
from siyu.segments.models import Segment
from siyu.segments.rule_text import Names, describe_rule
from siyu.segments.services import refresh_workspace, save_segment
from siyu.tags.models import CustomerTag, Tag, TagGroup
from tests.conftest import PASSWORD

CITY_SHANGHAI = {
    "version": 1,
    "match": {"type": "and", "conditions": [{"type": "field", "field": "city", "op": "eq", "value": "上海"}]},
}


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def shoppers(brand):
    """Three customers in Shanghai (two at store A, one at store B) and one in Hangzhou."""
    items = [
        {"name": "王芳", "city": "上海", "store_code": "SH01", "owner_wecom_userid": "wangxm", "phone": "13800000001"},
        {"name": "陈红", "city": "上海", "store_code": "SH01", "owner_wecom_userid": "lina", "phone": "13800000002"},
        {"name": "刘洋", "city": "上海", "store_code": "HZ01", "owner_wecom_userid": "zhaomin", "phone": "13800000003"},
        {"name": "李静", "city": "杭州", "store_code": "HZ01", "owner_wecom_userid": "zhaomin", "phone": "13800000004"},
    ]
    for item in items:
        item["identities"] = [{"type": "phone", "value": item.pop("phone")}]
    ids = upsert_customers(brand.workspace, items, source="test").ids
    return dict(zip(["wang", "chen", "liu", "li"], ids, strict=True))


@pytest.fixture
def shanghai(brand, shoppers):
    segment = save_segment(brand.workspace, name="上海客户", description="在上海的客户", rule=CITY_SHANGHAI)
    refresh_workspace(brand.workspace)
    segment.refresh_from_db()
    return segment


def test_empty_list_explains_segments_and_offers_to_create_one(personas):
    html = login(personas.hq_admin).get("/segments/").content.decode()
    assert 'data-testid="segments-empty"' in html
    assert "按条件自动圈选出的一组客户" in html and "/segments/new/" in html


def test_segment_created_through_the_form_is_listed(brand, personas, shoppers):
    client = login(personas.hq_admin)
    response = client.post("/segments/new/", {"name": "上海客户", "description": "", "rule": json.dumps(CITY_SHANGHAI)})
    segment = Segment.objects.get(workspace=brand.workspace, name="上海客户")
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.pk}/"
    client.post("/segments/")  # 立即刷新
    html = client.get("/segments/").content.decode()
    assert "上海客户" in html and 'data-testid="segment-size">3<' in html
    assert AuditEntry.objects.filter(action="segment.create", target=f"segment:{segment.pk}").exists()


def test_refresh_button_reports_who_entered(personas, shanghai, shoppers, brand):
    from siyu.customers.models import Customer

    Customer.objects.filter(pk=shoppers["li"]).update(city="上海")
    from siyu.customers.models import CustomerChange

    CustomerChange.objects.create(customer_id=shoppers["li"], workspace=brand.workspace)
    html = login(personas.hq_admin).post("/segments/", follow=True).content.decode()
    assert "进入 1 人，退出 0 人" in html


def test_preview_counts_the_customers_a_rule_selects(personas, shoppers):
    client = login(personas.hq_admin)
    response = client.post("/segments/preview/", {"rule": json.dumps(CITY_SHANGHAI)})
    html = response.content.decode()
    assert 'data-count="3"' in html
    assert "王芳" in html and "上海南京路店" in html and "李静" not in html
    assert f"/customers/{shoppers['wang']}/" in html


def test_invalid_rule_shows_the_field_path_and_nothing_is_saved(brand, personas, shoppers):
    rule = {
        "version": 1,
        "match": {
            "type": "and",
            "conditions": [
                {"type": "field", "field": "city", "op": "eq", "value": "上海"},
                {"type": "event", "name": "view_product", "count": {"op": "gte", "value": -1}},
            ],
        },
    }
    client = login(personas.hq_admin)
    preview = client.post("/segments/preview/", {"rule": json.dumps(rule)}).content.decode()
    assert 'data-error-field="match.conditions.1.count.value"' in preview
    saved = client.post("/segments/new/", {"name": "坏规则", "rule": json.dumps(rule)})
    html = saved.content.decode()
    assert saved.status_code == 422 and "match.conditions.1.count.value" in html
    assert "坏规则" in html  # the input is kept
    assert not Segment.objects.filter(workspace=brand.workspace).exists()
    not_json = client.post("/segments/new/", {"name": "x", "rule": "{oops"}).content.decode()
    assert "不是有效的 JSON" in not_json


def test_detail_shows_members_rule_in_words_and_trend(personas, shanghai, shoppers):
    html = login(personas.hq_admin).get(f"/segments/{shanghai.pk}/").content.decode()
    assert html.count('data-testid="member-row"') == 3
    assert "王芳" in html and "刘洋" in html and "李静" not in html
    assert "城市 = 上海" in html
    assert "data-figure" in html


def test_export_masks_phones_for_the_analyst_and_is_audited(personas, shanghai):
    def export(user) -> list[list[str]]:
        response = login(user).get(f"/segments/{shanghai.pk}/export.csv")
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.reader(io.StringIO(text)))

    analyst = export(personas.analyst)
    assert len(analyst) == 4
    phones = {row[6] for row in analyst[1:]}
    assert phones == {"138****0001", "138****0002", "138****0003"}
    owner = export(personas.hq_admin)
    assert {row[6] for row in owner[1:]} == {"13800000001", "13800000002", "13800000003"}
    assert {row[3] for row in owner[1:]} == {"上海南京路店", "杭州湖滨店"}
    entries = AuditEntry.objects.filter(action="segment.export", target=f"segment:{shanghai.pk}")
    assert [e.details["rows"] for e in entries] == [3, 3]
    assert {e.user_id for e in entries} == {personas.analyst.pk, personas.hq_admin.pk}


def test_store_manager_sees_only_their_stores_members_and_cannot_edit(personas, shanghai):
    client = login(personas.manager_a)
    listing = client.get("/segments/").content.decode()
    assert 'data-testid="segment-size">2<' in listing and "新建分群" not in listing
    html = client.get(f"/segments/{shanghai.pk}/").content.decode()
    assert html.count('data-testid="member-row"') == 2 and "刘洋" not in html
    assert client.get("/segments/new/").status_code == 403
    assert client.get(f"/segments/{shanghai.pk}/export.csv").status_code == 403
    assert client.post(f"/segments/{shanghai.pk}/", {"action": "archive"}).status_code == 403


def test_store_clerk_gets_403_everywhere(personas, shanghai):
    client = login(personas.clerk_a)
    for url in ("/segments/", f"/segments/{shanghai.pk}/", "/segments/new/", f"/segments/{shanghai.pk}/export.csv"):
        assert client.get(url).status_code == 403, url
    assert "/segments/" not in client.get("/").content.decode()


def test_analyst_views_but_cannot_change(personas, shanghai):
    client = login(personas.analyst)
    html = client.get(f"/segments/{shanghai.pk}/").content.decode()
    assert "导出 CSV" in html and "批量打标签" not in html
    assert client.post("/segments/preview/", {"rule": json.dumps(CITY_SHANGHAI)}).status_code == 403


def test_bulk_tag_and_tag_rule_from_the_detail_page(brand, personas, shanghai, shoppers):
    group = TagGroup.objects.create(workspace=brand.workspace, name="运营")
    tag = Tag.objects.create(workspace=brand.workspace, group=group, name="上海活动")
    client = login(personas.hq_admin)
    page = client.post(f"/segments/{shanghai.pk}/", {"action": "tag", "tag": tag.pk}, follow=True)
    assert "已为 3 位成员打上标签" in page.content.decode()
    assert CustomerTag.objects.filter(tag=tag).count() == 3
    client.post(f"/segments/{shanghai.pk}/", {"action": "untag", "tag": tag.pk})
    assert CustomerTag.objects.filter(tag=tag).count() == 0
    client.post(f"/segments/{shanghai.pk}/", {"action": "tag_rule", "tag": tag.pk})
    assert CustomerTag.objects.filter(tag=tag).count() == 3
    assert "上海活动" in client.get("/segments/").content.decode()


def test_archive_is_refused_while_another_segment_uses_it(brand, personas, shanghai):
    rule = {"version": 1, "match": {"type": "segment", "segment_id": shanghai.pk}}
    save_segment(brand.workspace, name="引用上海", rule=rule)
    client = login(personas.hq_admin)
    html = client.post(f"/segments/{shanghai.pk}/", {"action": "archive"}, follow=True).content.decode()
    assert "操作失败" in html and "引用上海" in html
    shanghai.refresh_from_db()
    assert shanghai.archived_at is None


def test_customer_profile_lists_current_segments(personas, shanghai, shoppers):
    html = login(personas.hq_admin).get(f"/customers/{shoppers['wang']}/").content.decode()
    assert "所在分群" in html and f"/segments/{shanghai.pk}/" in html and "上海客户" in html
    other = login(personas.hq_admin).get(f"/customers/{shoppers['li']}/").content.decode()
    assert "上海客户" not in other


def test_rule_in_words_reads_like_an_operator_would_say_it():
    rule = {
        "version": 1,
        "match": {
            "type": "and",
            "conditions": [
                {
                    "type": "event",
                    "name": "view_product",
                    "count": {"op": "gte", "value": 3},
                    "window": {"last_days": 30},
                },
                {"type": "field", "field": "city", "op": "eq", "value": "上海"},
                {"type": "not", "condition": {"type": "tags", "match": "any", "tag_ids": [7]}},
            ],
        },
    }
    text = describe_rule(rule, Names(tags={7: "已购"}))
    assert text == "近 30 天 浏览商品 ≥ 3 次 且 城市 = 上海 且 不满足［有标签 已购］"


def test_pages_do_not_query_per_segment_or_per_member(brand, personas, shanghai, django_assert_max_num_queries):
    for n in range(5):
        save_segment(brand.workspace, name=f"分群 {n}", rule=CITY_SHANGHAI)
    refresh_workspace(brand.workspace)
    client = login(personas.hq_admin)
    with django_assert_max_num_queries(12):
        assert client.get("/segments/").status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get(f"/segments/{shanghai.pk}/").status_code == 200
    with django_assert_max_num_queries(14):
        response = client.get(f"/segments/{shanghai.pk}/export.csv")
        b"".join(response.streaming_content)
