"""Snapshots of the SQL that representative rules compile to, on both databases, so a change
in a generated query shows up in review. Refresh with SIYU_UPDATE_SNAPSHOTS=1 after checking the diff."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from siyu.segments.compiler import Context, compile_rule
from siyu.segments.rules import parse_rule

SNAPSHOTS = Path(__file__).parent / "snapshots" / "segment_sql.json"
TODAY = dt.date(2026, 11, 23)
RULES = {
    "profile_and_attribute": {
        "type": "and",
        "conditions": [
            {"type": "field", "field": "city", "op": "in", "value": ["上海", "杭州"]},
            {"type": "field", "field": "attributes.level", "op": "gte", "value": 3},
            {"type": "field", "field": "first_seen_at", "op": "gte", "value": "2026-11-01"},
        ],
    },
    "viewed_3_times_in_30_days_but_never_bought": {
        "type": "and",
        "conditions": [
            {"type": "event", "name": "view_product", "count": {"op": "gte", "value": 3}, "window": {"last_days": 30}},
            {"type": "orders", "measure": "count", "op": "eq", "value": 0},
        ],
    },
    "event_with_property_filter": {
        "type": "event",
        "name": "view_product",
        "where": [{"property": "category", "op": "eq", "value": "护肤"}],
        "window": {"from": "2026-11-01", "to": "2026-11-11"},
    },
    "tags_all_and_not_any": {
        "type": "and",
        "conditions": [
            {"type": "tags", "match": "all", "tag_ids": [3, 1]},
            {"type": "not", "condition": {"type": "tags", "match": "any", "tag_ids": [9]}},
        ],
    },
    "reachable_by_wecom_store_or_sms": {
        "type": "or",
        "conditions": [{"type": "reach", "channel": "wecom", "store_id": 5}, {"type": "reach", "channel": "sms"}],
    },
    "lapsed_buyers_in_a_region": {
        "type": "and",
        "conditions": [
            {"type": "orders", "measure": "days_since_last", "op": "gt", "value": 90},
            {"type": "orders", "measure": "average_fen", "op": "gte", "value": 20000, "window": {"last_days": 365}},
            {"type": "org", "level": "region", "ids": [2]},
        ],
    },
    "bought_category_and_layer": {
        "type": "and",
        "conditions": [
            {"type": "bought", "category": "防晒", "window": {"last_days": 90}},
            {"type": "layer", "layer": "rfm_cell", "op": "in", "value": ["important_value", "important_keep"]},
        ],
    },
}


def compiled(vendor: str) -> dict[str, dict]:
    out = {}
    for name, match in RULES.items():
        ctx = Context(vendor=vendor, workspace_id=1, today=TODAY)
        result = compile_rule(parse_rule({"version": 1, "match": match}), ctx)
        sql, params = result.select(1)
        out[name] = {"sql": sql, "params": [str(p) for p in params]}
    return out


@pytest.mark.parametrize("vendor", ["sqlite", "postgresql"])
def test_generated_sql_matches_the_snapshot(vendor):
    current = compiled(vendor)
    stored = json.loads(SNAPSHOTS.read_text(encoding="utf-8")) if SNAPSHOTS.exists() else {}
    if os.environ.get("SIYU_UPDATE_SNAPSHOTS") == "1":
        stored[vendor] = current
        SNAPSHOTS.write_text(json.dumps(stored, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert current == stored[vendor]
