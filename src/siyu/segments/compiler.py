"""Segment rule -> one SQL statement, for SQLite and PostgreSQL. Pure: no database access.

Every leaf compiles to a boolean expression over ``c`` (a row of ``customers_customer``)
that is never NULL, so ``NOT`` is an exact complement. Behaviour reads the per-customer
day counters (``tracking_eventdaily``, ``tracking_orderdaily``) unless a condition needs
raw event properties or order items. "At most"-style counts (which 0 satisfies) compile to
``NOT IN (those above the bound)`` so customers without any row count as 0.

Values are always parameters; identifiers come only from the fixed tables below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from siyu.segments import rules as r

SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Events that only exist on the timeline (written by the refresher itself): no day counters.
RAW_ONLY_EVENT_PREFIX = "segment_"


@dataclass(frozen=True)
class Context:
    vendor: str  # "sqlite" or "postgresql"
    workspace_id: int
    today: dt.date  # in the workspace's time zone
    time_zone: str = "Asia/Shanghai"
    # Rules of other segments of the workspace, for membership conditions (inlined).
    segments: dict[int, r.Rule] = field(default_factory=dict)
    # The caller restricts the answer to a few customers (an incremental refresh): every leaf
    # becomes a correlated per-customer lookup (EXISTS ... WHERE x.customer_id = c.id) that
    # probes the per-customer indexes, so the cost follows the customers, not the workspace.
    per_customer: bool = False

    @property
    def pg(self) -> bool:
        return self.vendor == "postgresql"


@dataclass(frozen=True)
class Dependency:
    """A rolling window the answer depends on: when the day moves on, customers with activity
    on the days that just left the window must be re-evaluated."""

    source: str  # "event", "event_raw", "orders"
    name: str  # event name, or "" for orders
    days: int  # window length in days (for days_since_last: the threshold)


@dataclass
class Compiled:
    condition: str  # boolean SQL over c
    params: list[Any]
    dependencies: list[Dependency]

    def select(self, workspace_id: int, *, extra: str = "", extra_params: list[Any] | None = None) -> tuple[str, list]:
        """``SELECT c.id`` of the live customers matching, optionally narrowed by ``extra``."""
        sql = f"SELECT c.id FROM customers_customer c WHERE c.workspace_id = %s AND c.merged_into_id IS NULL{extra}"
        return f"{sql} AND {self.condition}", [workspace_id, *(extra_params or []), *self.params]


def json_path(key: str) -> str:
    # Keys are restricted to word characters and '-' by the rule format: no quoting needed.
    return '$."' + key + '"'


class CompileError(ValueError):
    """A rule that cannot be compiled in this context (e.g. a membership cycle)."""


def compile_rule(rule: r.Rule, ctx: Context) -> Compiled:
    state = _State(ctx)
    condition = state.node(rule.match, stack=())
    if ctx.per_customer:
        # Every "c.id [NOT] IN (SELECT x.customer_id ... WHERE x.customer_id = c.id ...)" leaf is
        # correlated already; EXISTS says so to the planner (no parameters in the replaced text).
        condition = condition.replace("c.id NOT IN (SELECT", "NOT EXISTS (SELECT").replace(
            "c.id IN (SELECT", "EXISTS (SELECT"
        )
    return Compiled(condition, state.params, state.dependencies)


class _State:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.params: list[Any] = []
        self.dependencies: list[Dependency] = []

    # -- parameters -------------------------------------------------------------------
    def p(self, value: Any) -> str:
        self.params.append(value)
        if self.ctx.pg:
            if isinstance(value, bool):
                return "%s::boolean"
            if isinstance(value, int):
                return "%s::bigint"
            if isinstance(value, float):
                return "%s::numeric"
            if isinstance(value, dt.datetime):
                return "%s::timestamptz"
            if isinstance(value, dt.date):
                return "%s::date"
            return "%s::text"
        return "%s"

    def day(self, value: dt.date) -> str:
        return self.p(value if self.ctx.pg else value.isoformat())

    def instant(self, day: dt.date) -> str:
        """Local midnight of ``day`` as a stored UTC instant."""
        at = dt.datetime.combine(day, dt.time(), ZoneInfo(self.ctx.time_zone)).astimezone(dt.UTC)
        return self.p(at if self.ctx.pg else str(at.replace(tzinfo=None)))

    def where(self, alias: str) -> str:
        """``WHERE`` for a subquery over ``alias``, limited to the context's customers if any."""
        if not self.ctx.per_customer:
            return "WHERE "
        return f"WHERE {alias}.customer_id = c.id AND "

    def sum(self, column: str) -> str:
        # PostgreSQL sums bigints as numeric, whose arithmetic is several times slower; the
        # sums here (counts, fen per customer) fit a bigint with room to spare.
        return f"SUM({column})::bigint" if self.ctx.pg else f"SUM({column})"

    def ws(self) -> str:
        return self.p(self.ctx.workspace_id)

    def ids(self, values: list[int]) -> str:
        return "(" + ", ".join(self.p(int(v)) for v in sorted(set(values))) + ")"

    # -- nodes --------------------------------------------------------------------------
    def node(self, node: Any, stack: tuple[int, ...]) -> str:
        if isinstance(node, r.AndNode):
            return "(" + " AND ".join(self.node(n, stack) for n in node.conditions) + ")"
        if isinstance(node, r.OrNode):
            return "(" + " OR ".join(self.node(n, stack) for n in node.conditions) + ")"
        if isinstance(node, r.NotNode):
            return f"(NOT {self.node(node.condition, stack)})"
        if isinstance(node, r.SegmentCondition):
            if node.segment_id in stack:
                raise CompileError(f"segment {node.segment_id} refers to itself")
            other = self.ctx.segments.get(node.segment_id)
            if other is None:
                raise CompileError(f"no segment with id {node.segment_id}")
            return self.node(other.match, (*stack, node.segment_id))
        handler = {
            r.FieldCondition: self.field,
            r.TagsCondition: self.tags,
            r.ReachCondition: self.reach,
            r.OrgCondition: self.org,
            r.EventCondition: self.event,
            r.OrdersCondition: self.orders,
            r.BoughtCondition: self.bought,
            r.LayerCondition: self.layer,
        }[type(node)]
        return handler(node)

    # -- profile ------------------------------------------------------------------------
    def field(self, node: r.FieldCondition) -> str:
        if node.attribute is not None:
            return self.json_compare("c.attributes", node.attribute, node.op, node.value)
        column = f"c.{node.field}"
        if node.kind == "text":
            return self.text_compare(column, node.op, node.value)
        if node.op == "is_set":
            return f"({column} IS NOT NULL)"
        if node.op == "not_set":
            return f"({column} IS NULL)"
        day: dt.date = node.value
        if node.kind == "date":
            return f"COALESCE({column} {SQL_OPS[node.op]} {self.day(day)}, FALSE)"
        return self.instant_compare(column, node.op, day)

    def text_compare(self, column: str, op: str, value: Any) -> str:
        if op == "is_set":
            return f"({column} <> '')"
        if op == "not_set":
            return f"({column} = '')"
        if op == "eq":
            return f"({column} = {self.p(value)})"
        if op == "ne":
            return f"({column} <> '' AND {column} <> {self.p(value)})"
        if op == "in":
            return f"({column} IN ({', '.join(self.p(v) for v in value)}))"
        if op == "not_in":
            return f"({column} <> '' AND {column} NOT IN ({', '.join(self.p(v) for v in value)}))"
        return f"({self.contains(column, value)})"

    def contains(self, column: str, value: str) -> str:
        # Case-sensitive substring on both databases (LIKE differs between them).
        return f"strpos({column}, {self.p(value)}) > 0" if self.ctx.pg else f"instr({column}, {self.p(value)}) > 0"

    def instant_compare(self, column: str, op: str, day: dt.date) -> str:
        """A stored instant against a local calendar day."""
        next_day = day + dt.timedelta(days=1)
        if op == "eq":
            return f"COALESCE({column} >= {self.instant(day)} AND {column} < {self.instant(next_day)}, FALSE)"
        bound, sql_op = {
            "gte": (day, ">="),
            "gt": (next_day, ">="),
            "lt": (day, "<"),
            "lte": (next_day, "<"),
        }[op]
        return f"COALESCE({column} {sql_op} {self.instant(bound)}, FALSE)"

    # -- JSON values (custom attributes, event properties) ---------------------------------
    def json_typed(self, doc: str, key: str, kind: str) -> str:
        """The value at ``key`` if it has JSON type ``kind`` (text / number / true / false), else NULL."""
        if self.ctx.pg:
            k = self.p(key)
            if kind == "text":
                return f"(CASE WHEN jsonb_typeof({doc} -> {k}) = 'string' THEN {doc} ->> {self.p(key)} END)"
            if kind == "number":
                return f"(CASE WHEN jsonb_typeof({doc} -> {k}) = 'number' THEN ({doc} ->> {self.p(key)})::numeric END)"
            return f"(CASE WHEN ({doc} -> {k}) = {self.p(kind)}::jsonb THEN 1 END)"
        path = json_path(key)
        k = self.p(path)
        if kind == "text":
            return f"(CASE WHEN json_type({doc}, {k}) = 'text' THEN json_extract({doc}, {self.p(path)}) END)"
        if kind == "number":
            return (
                f"(CASE WHEN json_type({doc}, {k}) IN ('integer', 'real') THEN json_extract({doc}, {self.p(path)}) END)"
            )
        return f"(CASE WHEN json_type({doc}, {k}) = {self.p(kind)} THEN 1 END)"

    def json_is_set(self, doc: str, key: str) -> str:
        if self.ctx.pg:
            return f"COALESCE(jsonb_typeof({doc} -> {self.p(key)}) <> 'null', FALSE)"
        return f"COALESCE(json_type({doc}, {self.p(json_path(key))}) <> 'null', FALSE)"

    def json_eq(self, doc: str, key: str, value: Any) -> str:
        if isinstance(value, bool):
            return f"({self.json_typed(doc, key, 'true' if value else 'false')} IS NOT NULL)"
        if isinstance(value, str):
            return f"COALESCE({self.json_typed(doc, key, 'text')} = {self.p(value)}, FALSE)"
        return f"COALESCE({self.json_typed(doc, key, 'number')} = {self.p(value)}, FALSE)"

    def json_compare(self, doc: str, key: str, op: str, value: Any) -> str:
        if op == "is_set":
            return self.json_is_set(doc, key)
        if op == "not_set":
            return f"(NOT {self.json_is_set(doc, key)})"
        if op == "eq":
            return self.json_eq(doc, key, value)
        if op == "ne":
            return f"({self.json_is_set(doc, key)} AND NOT {self.json_eq(doc, key, value)})"
        if op == "in":
            return "(" + " OR ".join(self.json_eq(doc, key, v) for v in value) + ")"
        if op == "not_in":
            is_set = self.json_is_set(doc, key)  # first: parameters follow the text order
            anyof = " OR ".join(self.json_eq(doc, key, v) for v in value)
            return f"({is_set} AND NOT ({anyof}))"
        if op == "contains":
            typed = self.json_typed(doc, key, "text")
            return f"COALESCE({self.contains(typed, value)}, FALSE)"
        return f"COALESCE({self.json_typed(doc, key, 'number')} {SQL_OPS[op]} {self.p(value)}, FALSE)"

    # -- tags, reach, org -------------------------------------------------------------------
    def tags(self, node: r.TagsCondition) -> str:
        ids = sorted(set(node.tag_ids))
        base = f"SELECT ct.customer_id FROM tags_customertag ct {self.where('ct')}ct.tag_id IN {self.ids(ids)}"
        if node.match == "any":
            return f"(c.id IN ({base}))"
        if node.match == "none":
            return f"(c.id NOT IN ({base}))"
        return f"(c.id IN ({base} GROUP BY ct.customer_id HAVING COUNT(*) = {self.p(len(ids))}))"

    def reach(self, node: r.ReachCondition) -> str:
        if node.channel == "wecom":
            sql = (
                "SELECT sr.customer_id FROM customers_staffrelation sr "
                f"{self.where('sr')}sr.workspace_id = {self.ws()} AND sr.status = 'active'"
            )
            if node.staff_id:
                sql += f" AND sr.staff_id = {self.p(node.staff_id)}"
            if node.store_id:
                sql += f" AND sr.staff_id IN (SELECT st.id FROM org_staff st WHERE st.org_unit_id = {self.p(node.store_id)})"
            return f"(c.id IN ({sql}))"
        if node.channel == "official_account":
            return (
                "(c.id IN (SELECT f.customer_id FROM customers_officialaccountfollow f "
                f"{self.where('f')}f.workspace_id = {self.ws()} AND f.subscribed = {self.p(True)}))"
            )
        identity = "phone" if node.channel == "sms" else "email"
        sql = (
            "(c.id IN (SELECT i.customer_id FROM customers_identity i "
            f"{self.where('i')}i.workspace_id = {self.ws()} AND i.type = {self.p(identity)}))"
        )
        if node.channel == "sms":
            sql += (
                f" AND (c.id IN (SELECT k.customer_id FROM customers_consent k {self.where('k')}k.workspace_id = "
                f"{self.ws()} AND k.channel = 'sms' AND k.purpose = 'marketing' AND k.status = 'granted'))"
            )
        return f"({sql})"

    def org(self, node: r.OrgCondition) -> str:
        if node.level == "store":
            return f"COALESCE(c.store_id IN {self.ids(node.ids)}, FALSE)"
        if node.level == "staff":
            return f"COALESCE(c.owner_staff_id IN {self.ids(node.ids)}, FALSE)"
        return (
            "COALESCE(c.store_id IN (SELECT u.id FROM org_orgunit u JOIN org_orgunit rg "
            f"ON u.path LIKE rg.path || '%%' WHERE rg.workspace_id = {self.ws()} AND rg.id IN {self.ids(node.ids)}), FALSE)"
        )

    # -- behaviour ----------------------------------------------------------------------------
    def window_sql(self, window: r.Window | None, day_column: str | None, time_column: str | None) -> str:
        """Conditions bounding a day column (counters) or an instant column (raw rows)."""
        if window is None:
            return ""
        first, last = window.days(self.ctx.today)
        sql = ""
        if first is not None:
            sql += (
                f" AND {day_column} >= {self.day(first)}"
                if day_column
                else f" AND {time_column} >= {self.instant(first)}"
            )
        if last is not None:
            if day_column:
                sql += f" AND {day_column} <= {self.day(last)}"
            else:
                sql += f" AND {time_column} < {self.instant(last + dt.timedelta(days=1))}"
        return sql

    def counted(self, subquery: str, total: str, op: str, value: int) -> str:
        """Customers whose ``total`` (an aggregate over ``subquery`` rows, 0 if none) satisfies op value."""
        zero_ok = {"eq": value == 0, "ne": value != 0, "gt": False, "gte": value == 0, "lt": value > 0, "lte": True}[op]
        if not zero_ok:
            return f"(c.id IN ({subquery} HAVING {total} {SQL_OPS[op]} {self.p(value)}))"
        # 0 satisfies the condition: everyone except those whose total breaks it.
        negated = {"eq": "<>", "ne": "=", "gte": "<", "lt": ">=", "lte": ">"}[op]
        return f"(c.id NOT IN ({subquery} HAVING {total} {negated} {self.p(value)}))"

    def event(self, node: r.EventCondition) -> str:
        raw = bool(node.where) or node.name.startswith(RAW_ONLY_EVENT_PREFIX)
        if node.window is not None and node.window.last_days is not None:
            self.dependencies.append(Dependency("event_raw" if raw else "event", node.name, node.window.last_days))
        if raw:
            # Parameters are collected in the order they appear in the text.
            sql = (
                f"SELECT e.customer_id FROM tracking_event e {self.where('e')}e.workspace_id = {self.ws()} "
                f"AND e.name = {self.p(node.name)}{self.window_sql(node.window, None, 'e.occurred_at')}"
            )
            for f in node.where:
                sql += " AND " + self.json_compare("e.properties", f.property, f.op, f.value)
            sql += " GROUP BY e.customer_id"
            return self.counted(sql, "COUNT(*)", node.count.op, node.count.value)
        sql = (
            f"SELECT d.customer_id FROM tracking_eventdaily d {self.where('d')}d.workspace_id = {self.ws()} "
            f"AND d.name = {self.p(node.name)}{self.window_sql(node.window, 'd.day', None)} GROUP BY d.customer_id"
        )
        return self.counted(sql, self.sum("d.count"), node.count.op, node.count.value)

    def orders(self, node: r.OrdersCondition) -> str:
        base = f"SELECT o.customer_id FROM tracking_orderdaily o {self.where('o')}o.workspace_id = {self.ws()}"
        if node.window is not None and node.window.last_days is not None:
            self.dependencies.append(Dependency("orders", "", node.window.last_days))
        if node.measure in ("count", "total_fen"):
            sql = f"{base}{self.window_sql(node.window, 'o.day', None)} GROUP BY o.customer_id"
            total = self.sum("o.orders") if node.measure == "count" else self.sum("o.amount_fen")
            return self.counted(sql, total, node.op, node.value)
        if node.measure == "average_fen":
            # No division: integer division differs between the databases.
            sql = f"{base}{self.window_sql(node.window, 'o.day', None)} GROUP BY o.customer_id"
            orders, amount = self.sum("o.orders"), self.sum("o.amount_fen")
            having = f"{orders} > 0 AND {amount} {SQL_OPS[node.op]} {self.p(node.value)} * {orders}"
            return f"(c.id IN ({sql} HAVING {having}))"
        if node.measure == "days_since_last":
            self.dependencies.append(Dependency("orders", "", node.value + 1))
            # today - MAX(day) op N  <=>  MAX(day) (mirrored op) today - N
            mirrored = {"eq": "=", "ne": "<>", "gt": "<", "gte": "<=", "lt": ">", "lte": ">="}[node.op]
            bound = self.ctx.today - dt.timedelta(days=node.value)
            return f"(c.id IN ({base} GROUP BY o.customer_id HAVING MAX(o.day) {mirrored} {self.day(bound)}))"
        return f"(c.id IN ({base} GROUP BY o.customer_id HAVING MIN(o.day) {SQL_OPS[node.op]} {self.day(node.value)}))"

    def bought(self, node: r.BoughtCondition) -> str:
        key, value = ("sku", node.sku) if node.sku is not None else ("category", node.category)
        if node.window is not None and node.window.last_days is not None:
            self.dependencies.append(Dependency("orders", "", node.window.last_days))
        sql = (
            f"SELECT o.customer_id FROM tracking_order o {self.where('o')}o.workspace_id = {self.ws()} "
            f"AND o.status = 'paid'{self.window_sql(node.window, None, 'o.paid_at')}"
        )
        if self.ctx.pg:
            item = (
                f"EXISTS (SELECT 1 FROM jsonb_array_elements(o.items) it WHERE it ->> {self.p(key)} = {self.p(value)})"
            )
        else:
            item = (
                "EXISTS (SELECT 1 FROM json_each(o.items) it "
                f"WHERE json_extract(it.value, {self.p('$.' + key)}) = {self.p(value)})"
            )
        return f"(c.id IN ({sql} AND {item}))"

    def layer(self, node: r.LayerCondition) -> str:
        column = f"l.{node.layer}"
        sql = f"SELECT l.customer_id FROM segments_customerlayer l {self.where('l')}l.workspace_id = {self.ws()} AND "
        if node.layer in r.CODE_LAYERS:
            sql += f"{column} <> '' AND "
        if node.op in ("in", "not_in"):
            values = ", ".join(self.p(v) for v in node.value)
            sql += f"{column} {'IN' if node.op == 'in' else 'NOT IN'} ({values})"
        else:
            sql += f"{column} {SQL_OPS[node.op]} {self.p(node.value)}"
        return f"(c.id IN ({sql}))"
