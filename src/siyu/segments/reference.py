"""A plain-Python evaluator of segment rules over raw rows: the specification that the SQL
compiler is checked against (property tests run both on random data and random rules).

Deliberately naive: it reads raw events and orders, never the day counters, and walks
every customer. Not for production use.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from siyu.segments import rules as r


@dataclass
class Data:
    """Everything a rule can look at, for the live customers of one workspace."""

    customers: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)  # customer_id, name, properties, occurred_at
    orders: list[dict[str, Any]] = field(default_factory=list)  # customer_id, status, paid/refund_fen, items, paid_at
    tags: list[tuple[int, int]] = field(default_factory=list)  # (customer_id, tag_id)
    relations: list[dict[str, Any]] = field(default_factory=list)  # customer_id, staff_id, staff_unit_id, status
    identities: list[tuple[int, str]] = field(default_factory=list)  # (customer_id, type)
    consents: list[dict[str, Any]] = field(default_factory=list)  # customer_id, channel, purpose, status
    follows: list[dict[str, Any]] = field(default_factory=list)  # customer_id, subscribed
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)
    unit_paths: dict[int, str] = field(default_factory=dict)  # org unit id -> path


def evaluate(rule: r.Rule, data: Data, *, today: dt.date, time_zone: str, segments: dict[int, r.Rule]) -> set[int]:
    evaluator = _Evaluator(data, today, ZoneInfo(time_zone), segments)
    return {c["id"] for c in data.customers if evaluator.test(rule.match, c)}


def json_equal(stored: Any, wanted: Any) -> bool:
    """JSON equality by type: true is not 1, "1" is not 1, 1 equals 1.0."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return isinstance(wanted, bool) and isinstance(stored, bool) and stored == wanted
    if isinstance(wanted, str) or isinstance(stored, str):
        return isinstance(wanted, str) and isinstance(stored, str) and stored == wanted
    return isinstance(stored, int | float) and stored == wanted


def json_test(doc: dict[str, Any] | None, key: str, op: str, value: Any) -> bool:
    present = isinstance(doc, dict) and key in doc and doc[key] is not None
    stored = doc.get(key) if present else None
    number = isinstance(stored, int | float) and not isinstance(stored, bool)
    if op == "is_set":
        return present
    if op == "not_set":
        return not present
    if op == "eq":
        return present and json_equal(stored, value)
    if op == "ne":
        return present and not json_equal(stored, value)
    if op == "in":
        return present and any(json_equal(stored, v) for v in value)
    if op == "not_in":
        return present and not any(json_equal(stored, v) for v in value)
    if op == "contains":
        return isinstance(stored, str) and value in stored
    return number and compare(stored, op, value)


def compare(left: Any, op: str, right: Any) -> bool:
    return {
        "eq": left == right,
        "ne": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


class _Evaluator:
    def __init__(self, data: Data, today: dt.date, tz: ZoneInfo, segments: dict[int, r.Rule]) -> None:
        self.today, self.tz, self.segments, self.data = today, tz, segments, data
        self.events: dict[int, list[dict]] = defaultdict(list)
        for e in data.events:
            self.events[e["customer_id"]].append(e)
        self.orders: dict[int, list[dict]] = defaultdict(list)
        for o in data.orders:
            if o["status"] == "paid":
                self.orders[o["customer_id"]].append(o)
        self.tags: dict[int, set[int]] = defaultdict(set)
        for customer_id, tag_id in data.tags:
            self.tags[customer_id].add(tag_id)
        self.identity_types: dict[int, set[str]] = defaultdict(set)
        for customer_id, kind in data.identities:
            self.identity_types[customer_id].add(kind)

    def local_day(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.tz).date()

    def in_window(self, day: dt.date, window: r.Window | None) -> bool:
        if window is None:
            return True
        first, last = window.days(self.today)
        return (first is None or day >= first) and (last is None or day <= last)

    def test(self, node: Any, c: dict[str, Any], stack: tuple[int, ...] = ()) -> bool:
        if isinstance(node, r.AndNode):
            return all(self.test(n, c, stack) for n in node.conditions)
        if isinstance(node, r.OrNode):
            return any(self.test(n, c, stack) for n in node.conditions)
        if isinstance(node, r.NotNode):
            return not self.test(node.condition, c, stack)
        if isinstance(node, r.SegmentCondition):
            return self.test(self.segments[node.segment_id].match, c, (*stack, node.segment_id))
        return getattr(self, type(node).__name__)(node, c)

    def FieldCondition(self, node: r.FieldCondition, c: dict[str, Any]) -> bool:
        if node.attribute is not None:
            return json_test(c["attributes"], node.attribute, node.op, node.value)
        stored = c[node.field]
        if node.kind == "text":
            stored = stored or ""
            if node.op == "not_set":
                return stored == ""
            if stored == "":
                return False
            if node.op == "is_set":
                return True
            if node.op == "in":
                return stored in node.value
            if node.op == "not_in":
                return stored not in node.value
            if node.op == "contains":
                return node.value in stored
            return compare(stored, node.op, node.value)
        if node.op == "is_set":
            return stored is not None
        if node.op == "not_set":
            return stored is None
        if stored is None:
            return False
        day = self.local_day(stored) if node.kind == "datetime" else stored
        return compare(day, node.op, node.value)

    def TagsCondition(self, node: r.TagsCondition, c: dict[str, Any]) -> bool:
        held = self.tags.get(c["id"], set())
        wanted = set(node.tag_ids)
        if node.match == "any":
            return bool(held & wanted)
        if node.match == "none":
            return not held & wanted
        return wanted <= held

    def ReachCondition(self, node: r.ReachCondition, c: dict[str, Any]) -> bool:
        cid = c["id"]
        if node.channel == "wecom":
            return any(
                rel["customer_id"] == cid
                and rel["status"] == "active"
                and (node.staff_id is None or rel["staff_id"] == node.staff_id)
                and (node.store_id is None or rel["staff_unit_id"] == node.store_id)
                for rel in self.data.relations
            )
        if node.channel == "official_account":
            return any(f["customer_id"] == cid and f["subscribed"] for f in self.data.follows)
        if node.channel == "email":
            return "email" in self.identity_types.get(cid, set())
        return "phone" in self.identity_types.get(cid, set()) and any(
            k["customer_id"] == cid and (k["channel"], k["purpose"], k["status"]) == ("sms", "marketing", "granted")
            for k in self.data.consents
        )

    def OrgCondition(self, node: r.OrgCondition, c: dict[str, Any]) -> bool:
        if node.level == "store":
            return c["store_id"] in node.ids
        if node.level == "staff":
            return c["owner_staff_id"] in node.ids
        store_path = self.data.unit_paths.get(c["store_id"])
        return store_path is not None and any(
            uid in self.data.unit_paths and store_path.startswith(self.data.unit_paths[uid]) for uid in node.ids
        )

    def EventCondition(self, node: r.EventCondition, c: dict[str, Any]) -> bool:
        n = sum(
            1
            for e in self.events.get(c["id"], [])
            if e["name"] == node.name
            and self.in_window(self.local_day(e["occurred_at"]), node.window)
            and all(json_test(e["properties"], f.property, f.op, f.value) for f in node.where)
        )
        return compare(n, node.count.op, node.count.value)

    def OrdersCondition(self, node: r.OrdersCondition, c: dict[str, Any]) -> bool:
        orders = self.orders.get(c["id"], [])
        days = [self.local_day(o["paid_at"]) for o in orders]
        if node.measure == "days_since_last":
            return bool(days) and compare((self.today - max(days)).days, node.op, node.value)
        if node.measure == "first_order_date":
            return bool(days) and compare(min(days), node.op, node.value)
        chosen = [o for o, day in zip(orders, days, strict=True) if self.in_window(day, node.window)]
        total = sum(o["paid_fen"] - o["refund_fen"] for o in chosen)
        if node.measure == "count":
            return compare(len(chosen), node.op, node.value)
        if node.measure == "total_fen":
            return compare(total, node.op, node.value)
        return bool(chosen) and compare(total, node.op, node.value * len(chosen))

    def BoughtCondition(self, node: r.BoughtCondition, c: dict[str, Any]) -> bool:
        key, value = ("sku", node.sku) if node.sku is not None else ("category", node.category)
        return any(
            self.in_window(self.local_day(o["paid_at"]), node.window)
            and any(isinstance(item, dict) and item.get(key) == value for item in o["items"] or [])
            for o in self.orders.get(c["id"], [])
        )

    def LayerCondition(self, node: r.LayerCondition, c: dict[str, Any]) -> bool:
        layer = self.data.layers.get(c["id"])
        if layer is None:
            return False
        stored = layer[node.layer]
        if node.layer in r.CODE_LAYERS and not stored:
            return False
        if node.op == "in":
            return stored in node.value
        if node.op == "not_in":
            return stored not in node.value
        return compare(stored, node.op, node.value)
