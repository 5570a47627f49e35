"""The demo brand's segments: the ones an operator of a beauty brand builds first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection

from siyu.core.sql import adapt
from siyu.org.models import OrgUnit, Workspace
from siyu.segments.services import refresh_workspace, save_segment, save_tag_rule
from siyu.tags.models import Tag, TagGroup
from siyu.tracking.counters import rebuild_workspace_counters


def build_reach(workspace: Workspace, now: dt.datetime, oa_app_id: str) -> None:
    """Consent and Official Account follows, derived set-based from the demo's identities:
    four in five customers with a phone agreed to marketing SMS; OA openids follow (one in ten unfollowed)."""
    at = adapt(now, "datetime")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_consent (workspace_id, customer_id, channel, purpose, status, source, updated_at) "
            "SELECT i.workspace_id, i.customer_id, 'sms', 'marketing', "
            "CASE WHEN i.customer_id %% 5 = 0 THEN 'revoked' ELSE 'granted' END, 'demo', %s "
            "FROM customers_identity i WHERE i.workspace_id = %s AND i.type = 'phone' ON CONFLICT DO NOTHING",
            [at, workspace.pk],
        )
        cursor.execute(
            "INSERT INTO customers_officialaccountfollow "
            "(workspace_id, customer_id, app_id, openid, subscribed, scene, subscribed_at) "
            "SELECT i.workspace_id, i.customer_id, i.app_id, i.value, i.customer_id %% 10 <> 0, '', i.created_at "
            "FROM customers_identity i WHERE i.workspace_id = %s AND i.type = 'wechat_openid' AND i.app_id = %s "
            "ON CONFLICT DO NOTHING",
            [workspace.pk, oa_app_id],
        )


def build_segments(workspace: Workspace, now: dt.datetime, echo: Callable[[str], None], *, oa_app_id: str) -> None:
    rebuild_workspace_counters(workspace.pk, workspace.time_zone)
    build_reach(workspace, now, oa_app_id)
    tags = {(t.group.name, t.name): t.pk for t in Tag.objects.filter(workspace=workspace).select_related("group")}
    shanghai = OrgUnit.objects.filter(workspace=workspace, kind=OrgUnit.Kind.REGION).order_by("pk").first()

    def tag(group: str, name: str) -> list[int]:
        return [tags[(group, name)]] if (group, name) in tags else []

    definitions = [
        (
            "高意向未购",
            "近 30 天浏览商品 ≥ 3 次，但 90 天内没有下单：导购重点跟进",
            {
                "type": "and",
                "conditions": [
                    {
                        "type": "event",
                        "name": "view_product",
                        "count": {"op": "gte", "value": 3},
                        "window": {"last_days": 30},
                    },
                    {"type": "orders", "measure": "count", "op": "eq", "value": 0, "window": {"last_days": 90}},
                ],
            },
        ),
        (
            "沉睡老客",
            "买过、60 天没有再买：唤醒对象",
            {
                "type": "and",
                "conditions": [
                    {"type": "orders", "measure": "count", "op": "gte", "value": 1},
                    {"type": "orders", "measure": "days_since_last", "op": "gt", "value": 60},
                ],
            },
        ),
        (
            "近7天领券未用",
            "7 天内领过券，7 天内没有订单",
            {
                "type": "and",
                "conditions": [
                    {"type": "event", "name": "claim_coupon", "window": {"last_days": 7}},
                    {"type": "orders", "measure": "count", "op": "eq", "value": 0, "window": {"last_days": 7}},
                ],
            },
        ),
        (
            "企微可触达的敏感肌客户",
            "带「敏感肌」标签且是导购企微好友",
            {
                "type": "and",
                "conditions": [
                    {"type": "tags", "match": "any", "tag_ids": tag("肤质", "敏感肌")},
                    {"type": "reach", "channel": "wecom"},
                ],
            },
        ),
        (
            "短信可营销高价值",
            "RFM 重要价值/重要保持，且同意接收营销短信",
            {
                "type": "and",
                "conditions": [
                    {"type": "layer", "layer": "rfm_cell", "op": "in", "value": ["important_value", "important_keep"]},
                    {"type": "reach", "channel": "sms"},
                ],
            },
        ),
        (
            "华东公众号粉丝",
            "第一个大区门店的客户，且关注了公众号",
            {
                "type": "and",
                "conditions": [
                    {"type": "org", "level": "region", "ids": [shanghai.pk]}
                    if shanghai
                    else {"type": "reach", "channel": "official_account"},
                    {"type": "reach", "channel": "official_account"},
                ],
            },
        ),
    ]
    created = {}
    for name, description, match in definitions:
        if any(c.get("type") == "tags" and not c.get("tag_ids") for c in match.get("conditions", [])):
            continue
        created[name] = save_segment(workspace, name=name, description=description, rule={"version": 1, "match": match})
    report = refresh_workspace(workspace, now=now)
    group, _ = TagGroup.objects.get_or_create(workspace=workspace, name="自动分群")
    hot, _ = Tag.objects.get_or_create(workspace=workspace, group=group, name="高意向")
    save_tag_rule(workspace, segment_id=created["高意向未购"].pk, tag_id=hot.pk)
    echo(f"分群 / segments: {len(created)} built, {report.entered:,} memberships in {report.seconds:.1f}s")
