"""The segment rule format (version 1): parsing and validation, no database.

A rule is a JSON document ``{"version": 1, "match": NODE}``. Every node has a ``type``:

- ``and`` / ``or`` with ``conditions`` (a list of nodes); ``not`` with one ``condition``;
- ``field``: a profile field or a custom attribute (``attributes.KEY``) compared with ``op``
  (``eq ne in not_in contains is_set not_set`` for text; ``gt gte lt lte`` for dates and numbers);
- ``tags``: ``match`` ``any`` / ``all`` / ``none`` of ``tag_ids``;
- ``reach``: ``channel`` ``wecom`` (optionally ``staff_id`` / ``store_id``), ``sms`` (a phone and
  marketing consent), ``email``, ``official_account`` (a current follower);
- ``org``: ``level`` ``store`` / ``region`` / ``staff`` (owner) in ``ids``;
- ``event``: did ``name`` (with optional property filters ``where``) ``count`` {op, value} times
  in a ``window`` (``{"last_days": D}`` or ``{"from": DATE, "to": DATE}``; none = ever).
  "never" is ``count`` ``eq 0``;
- ``orders``: ``measure`` ``count`` / ``total_fen`` / ``average_fen`` in a window,
  ``days_since_last``, or ``first_order_date``;
- ``bought``: a paid order with an item of ``sku`` or ``category``, optionally in a window;
- ``layer``: ``r_score f_score m_score community_score`` (numbers) or ``rfm_cell lifecycle
  value_tier community_tier`` (codes);
- ``segment``: a member of another segment (its rule is inlined; cycles are refused).

Semantics that the SQL compiler and the reference evaluator share: a leaf is true only for a
customer who has the value it talks about (an unset field is neither equal nor unequal to
anything), so ``not`` is a plain complement. Day windows are calendar days in the workspace's
time zone, today included.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from siyu.core.errors import InvalidInput

RULE_VERSION = 1
# Conditions in a rule, counted with every referenced segment inlined.
MAX_NODES = 200
# Dates a rule may name (anything else is a typo, and far dates overflow time arithmetic).
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2200, 12, 31)
MAX_DAYS = 36_500
MAX_LIST = 500
ATTRIBUTE_KEY = re.compile(r"[\w\u4e00-\u9fff-]{1,64}")  # used with fullmatch

TEXT_FIELDS = ("name", "gender", "province", "city", "source_channel", "source_detail")
DATE_FIELDS = ("birthday",)
DATETIME_FIELDS = ("first_seen_at", "last_seen_at", "created_at")
COMPARE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "is_set", "not_set")
ORDER_OPS = ("gt", "gte", "lt", "lte")
NUMERIC_LAYERS = ("r_score", "f_score", "m_score", "community_score")
CODE_LAYERS = ("rfm_cell", "lifecycle", "value_tier", "community_tier")

Scalar = str | int | float | bool
FieldOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "is_set", "not_set"]
CountOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    last_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def one_kind(self) -> Window:
        dated = self.from_ is not None or self.to is not None
        if self.last_days is not None and dated:
            raise ValueError("give either last_days or from/to, not both")
        if self.last_days is None and not dated:
            raise ValueError("give last_days, or from and/or to")
        for day in (self.from_, self.to):
            if day is not None and not MIN_DATE <= day <= MAX_DATE:
                raise ValueError(f"dates must be between {MIN_DATE} and {MAX_DATE}")
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from is after to")
        return self

    def days(self, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
        """First and last local day of the window (None = open)."""
        if self.last_days is not None:
            return today - dt.timedelta(days=self.last_days - 1), None
        return self.from_, self.to


def check_value(op: str, value: Any, *, kind: str) -> Any:
    """Shared value checks for comparisons; ``kind`` is text, date, datetime, json or code."""
    if op in ("is_set", "not_set"):
        if value is not None:
            raise ValueError(f"{op} takes no value")
        return None
    if value is None:
        raise ValueError(f"{op} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise ValueError(f"{op} needs a list of 1 to {MAX_LIST} values")
        items = [check_value("eq", item, kind=kind) for item in value]
        if kind == "json" and len({type(v) is str for v in items}) > 1:
            raise ValueError(f"{op} needs all strings or all numbers")
        return items
    if op == "contains":
        if not isinstance(value, str) or not value:
            raise ValueError("contains needs a non-empty text")
        return value
    if kind in ("text", "code"):
        if op not in ("eq", "ne"):
            raise ValueError(f"{op} does not apply to text; use eq, ne, in, not_in, contains, is_set or not_set")
        if not isinstance(value, str) or not value:
            raise ValueError("needs a non-empty text")
        return value
    if kind in ("date", "datetime"):
        if op == "ne" and kind == "datetime":
            raise ValueError("ne does not apply to a time; use lt/gt")
        try:
            day = dt.date.fromisoformat(value) if isinstance(value, str) else _not_date()
        except ValueError:
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None
        if not MIN_DATE <= day <= MAX_DATE:
            raise ValueError(f"dates must be between {MIN_DATE} and {MAX_DATE}")
        return day
    # JSON values: text, whole or decimal numbers, true/false.
    if isinstance(value, bool):
        if op not in ("eq", "ne"):
            raise ValueError(f"{op} does not apply to true/false")
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise ValueError("number is too large or not a number")
        return value
    if isinstance(value, str):
        if op not in ("eq", "ne"):
            raise ValueError(f"{op} compares numbers; give a number")
        if not value:
            raise ValueError("needs a non-empty text")
        return value
    raise ValueError("value must be text, a number or true/false")


def _not_date() -> dt.date:
    raise ValueError


class PropertyFilter(Strict):
    property: str
    op: FieldOp
    value: Any = None

    @field_validator("property")
    @classmethod
    def key_ok(cls, value: str) -> str:
        if not ATTRIBUTE_KEY.fullmatch(value):
            raise ValueError("property names are letters, digits, _ or - (up to 64)")
        return value

    @model_validator(mode="after")
    def value_ok(self) -> PropertyFilter:
        object.__setattr__(self, "value", check_value(self.op, self.value, kind="json"))
        return self


class FieldCondition(Strict):
    type: Literal["field"]
    field: str
    op: FieldOp
    value: Any = None

    @property
    def attribute(self) -> str | None:
        return self.field.removeprefix("attributes.") if self.field.startswith("attributes.") else None

    @property
    def kind(self) -> str:
        if self.attribute is not None:
            return "json"
        if self.field in DATE_FIELDS:
            return "date"
        if self.field in DATETIME_FIELDS:
            return "datetime"
        return "text"

    @model_validator(mode="after")
    def valid(self) -> FieldCondition:
        if self.attribute is not None:
            if not ATTRIBUTE_KEY.fullmatch(self.attribute):
                raise ValueError("attribute names are letters, digits, _ or - (up to 64)")
        elif self.field not in (*TEXT_FIELDS, *DATE_FIELDS, *DATETIME_FIELDS):
            known = ", ".join((*TEXT_FIELDS, *DATE_FIELDS, *DATETIME_FIELDS))
            raise ValueError(f"unknown field '{self.field}' (one of {known}, or attributes.KEY)")
        if self.kind in ("date", "datetime") and self.op in ("in", "not_in", "contains"):
            raise ValueError(f"{self.op} does not apply to dates")
        object.__setattr__(self, "value", check_value(self.op, self.value, kind=self.kind))
        return self


class TagsCondition(Strict):
    type: Literal["tags"]
    match: Literal["any", "all", "none"]
    tag_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=MAX_LIST)


class ReachCondition(Strict):
    type: Literal["reach"]
    channel: Literal["wecom", "sms", "email", "official_account"]
    staff_id: int | None = Field(default=None, ge=1, le=2**62)
    store_id: int | None = Field(default=None, ge=1, le=2**62)

    @model_validator(mode="after")
    def wecom_only(self) -> ReachCondition:
        if self.channel != "wecom" and (self.staff_id or self.store_id):
            raise ValueError("staff_id and store_id only apply to the wecom channel")
        return self


class OrgCondition(Strict):
    type: Literal["org"]
    level: Literal["store", "region", "staff"]
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=MAX_LIST)


class Count(Strict):
    op: CountOp
    value: int = Field(ge=0, le=1_000_000)


class EventCondition(Strict):
    type: Literal["event"]
    name: str = Field(min_length=1, max_length=100)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    count: Count = Count(op="gte", value=1)
    window: Window | None = None


class OrdersCondition(Strict):
    type: Literal["orders"]
    measure: Literal["count", "total_fen", "average_fen", "days_since_last", "first_order_date"]
    op: CountOp
    value: Any
    window: Window | None = None

    @model_validator(mode="after")
    def valid(self) -> OrdersCondition:
        if self.measure in ("days_since_last", "first_order_date") and self.window is not None:
            raise ValueError(f"{self.measure} takes no window")
        if self.measure == "first_order_date":
            if self.op == "ne":
                raise ValueError("ne does not apply to a date; use lt/gt")
            object.__setattr__(self, "value", check_value(self.op, self.value, kind="date"))
        elif isinstance(self.value, bool) or not isinstance(self.value, int) or not 0 <= self.value <= 10**13:
            raise ValueError(f"{self.measure} needs a whole number ≥ 0 (amounts in fen)")
        elif self.measure == "days_since_last" and self.value > MAX_DAYS:
            raise ValueError(f"days_since_last is at most {MAX_DAYS}")
        return self


class BoughtCondition(Strict):
    type: Literal["bought"]
    sku: str | None = Field(default=None, min_length=1, max_length=100)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    window: Window | None = None

    @model_validator(mode="after")
    def one_of(self) -> BoughtCondition:
        if (self.sku is None) == (self.category is None):
            raise ValueError("give either sku or category")
        return self


class LayerCondition(Strict):
    type: Literal["layer"]
    layer: Literal[
        "r_score", "f_score", "m_score", "community_score", "rfm_cell", "lifecycle", "value_tier", "community_tier"
    ]
    op: FieldOp
    value: Any = None

    @model_validator(mode="after")
    def valid(self) -> LayerCondition:
        if self.op in ("is_set", "not_set", "contains"):
            raise ValueError(f"{self.op} does not apply to layers")
        if self.layer in NUMERIC_LAYERS:
            values = self.value if self.op in ("in", "not_in") and isinstance(self.value, list) else [self.value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{self.layer} is compared with whole numbers")
            object.__setattr__(self, "value", check_value(self.op, self.value, kind="json"))
        else:
            object.__setattr__(self, "value", check_value(self.op, self.value, kind="code"))
        return self


class SegmentCondition(Strict):
    type: Literal["segment"]
    segment_id: int = Field(ge=1, le=2**62)


class AndNode(Strict):
    type: Literal["and"]
    conditions: list[Node] = Field(min_length=1, max_length=50)


class OrNode(Strict):
    type: Literal["or"]
    conditions: list[Node] = Field(min_length=1, max_length=50)


class NotNode(Strict):
    type: Literal["not"]
    condition: Node


Node = Annotated[
    AndNode
    | OrNode
    | NotNode
    | FieldCondition
    | TagsCondition
    | ReachCondition
    | OrgCondition
    | EventCondition
    | OrdersCondition
    | BoughtCondition
    | LayerCondition
    | SegmentCondition,
    Field(discriminator="type"),
]
NODE_TYPES = ("and", "or", "not", "field", "tags", "reach", "org", "event", "orders", "bought", "layer", "segment")


class Rule(Strict):
    version: Literal[1]
    match: Node


for _model in (AndNode, OrNode, NotNode, Rule):
    _model.model_rebuild()


def parse_rule(document: Any) -> Rule:
    """Validate a rule document; errors name the offending node, e.g. ``match.conditions.1.count.value``."""
    if not isinstance(document, dict):
        raise InvalidInput("a rule is a JSON object with version and match", field="rule")
    bad = find_bad_text(document)
    if bad is not None:
        raise InvalidInput("text contains a NUL character or an invalid Unicode sequence", field=bad or "rule")
    try:
        rule = Rule.model_validate(document)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "field required"
        elif err["type"] == "union_tag_invalid":
            message = f"unknown condition type (one of {', '.join(NODE_TYPES)})"
        elif err["type"] == "union_tag_not_found":
            message = "each condition needs a type"
        raise InvalidInput(message, field=error_path(err["loc"])) from None
    if count_nodes(rule.match) > MAX_NODES:
        raise InvalidInput(f"a rule has at most {MAX_NODES} conditions", field="match")
    return rule


def find_bad_text(value: Any, path: str = "") -> str | None:
    """The path of the first string or key the databases cannot store (NUL, lone surrogates)."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = find_bad_text(str(key), where) or find_bad_text(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = find_bad_text(item, f"{path}.{n}" if path else str(n))
            if found is not None:
                return found
    return None


def expanded_size(rule: Rule, rules: dict[int, Rule], limit: int = MAX_NODES) -> int:
    """Conditions with referenced segments inlined (stops counting past ``limit``)."""
    total = 0
    for node in walk(rule.match):
        total += 1
        if isinstance(node, SegmentCondition) and node.segment_id in rules and total <= limit:
            total += expanded_size(rules[node.segment_id], rules, limit - total)
        if total > limit:
            return total
    return total


def error_path(loc: tuple[Any, ...]) -> str:
    """pydantic's location without the discriminator steps it inserts after each node."""
    parts: list[str] = []
    previous: Any = None
    for part in loc:
        is_tag = isinstance(part, str) and part in NODE_TYPES
        if is_tag and (previous in ("match", "condition") or isinstance(previous, int)):
            previous = part
            continue
        if isinstance(part, str) and part == "from_":
            part = "from"
        parts.append(str(part))
        previous = part
    return ".".join(parts)


def walk(node: Any):
    """Every node of a rule tree, parents first."""
    yield node
    if isinstance(node, AndNode | OrNode):
        for child in node.conditions:
            yield from walk(child)
    elif isinstance(node, NotNode):
        yield from walk(node.condition)


def count_nodes(node: Any) -> int:
    return sum(1 for _ in walk(node))


def referenced_segments(rule: Rule) -> set[int]:
    return {n.segment_id for n in walk(rule.match) if isinstance(n, SegmentCondition)}


def referenced_tags(rule: Rule) -> set[int]:
    return {t for n in walk(rule.match) if isinstance(n, TagsCondition) for t in n.tag_ids}


def find_cycle(start: int, rules: dict[int, Rule], edits: dict[int, Rule] | None = None) -> list[int] | None:
    """The chain of segment ids that leads back to ``start``, if membership references loop."""
    graph = {**rules, **(edits or {})}
    path: list[int] = []

    def visit(segment_id: int) -> list[int] | None:
        if segment_id in path:
            return [*path[path.index(segment_id) :], segment_id]
        rule = graph.get(segment_id)
        if rule is None:
            return None
        path.append(segment_id)
        for ref in sorted(referenced_segments(rule)):
            found = visit(ref)
            if found:
                return found
        path.pop()
        return None

    return visit(start)
