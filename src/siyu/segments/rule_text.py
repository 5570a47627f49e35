"""A segment rule in words, for operators: "近 30 天 浏览商品 ≥ 3 次 且 城市 = 上海".

Pure: the caller passes the names of the tags, stores, staff and segments the rule refers to
(ids it cannot name are shown as ``#id``), so nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.console.templatetags.console_tags import EVENT_LABELS
from siyu.core.errors import InvalidInput
from siyu.segments import layer_rules as lr
from siyu.segments import rules as r

FIELD_LABELS = {
    "name": gettext_lazy("姓名"),
    "gender": gettext_lazy("性别"),
    "province": gettext_lazy("省份"),
    "city": gettext_lazy("城市"),
    "source_channel": gettext_lazy("来源渠道"),
    "source_detail": gettext_lazy("来源详情"),
    "birthday": gettext_lazy("生日"),
    "first_seen_at": gettext_lazy("首次出现"),
    "last_seen_at": gettext_lazy("最近活跃"),
    "created_at": gettext_lazy("建档时间"),
}
GENDER_LABELS = {"m": gettext_lazy("男"), "f": gettext_lazy("女")}
OP_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
OP_WORDS = {
    "in": gettext_lazy("属于"),
    "not_in": gettext_lazy("不属于"),
    "contains": gettext_lazy("包含"),
    "is_set": gettext_lazy("已填写"),
    "not_set": gettext_lazy("未填写"),
}
CHANNEL_LABELS = {
    "wecom": gettext_lazy("企微"),
    "sms": gettext_lazy("短信"),
    "email": gettext_lazy("邮件"),
    "official_account": gettext_lazy("公众号"),
}
ORDER_MEASURES = {
    "count": gettext_lazy("订单数"),
    "total_fen": gettext_lazy("消费金额"),
    "average_fen": gettext_lazy("客单价"),
    "days_since_last": gettext_lazy("距上次下单天数"),
    "first_order_date": gettext_lazy("首单日期"),
}
LAYER_LABELS = {
    "r_score": gettext_lazy("R 分"),
    "f_score": gettext_lazy("F 分"),
    "m_score": gettext_lazy("M 分"),
    "community_score": gettext_lazy("社群参与分"),
    "rfm_cell": gettext_lazy("RFM 分层"),
    "lifecycle": gettext_lazy("生命周期"),
    "value_tier": gettext_lazy("价值等级"),
    "community_tier": gettext_lazy("社群等级"),
}
LAYER_CODE_LABELS: dict[str, Mapping[str, Any]] = {
    "rfm_cell": lr.RFM_CELL_LABELS,
    "lifecycle": lr.LIFECYCLE_LABELS,
    "value_tier": lr.VALUE_TIER_LABELS,
    "community_tier": lr.COMMUNITY_TIER_LABELS,
}


@dataclass
class Names:
    """Display names by id for what a rule refers to."""

    tags: dict[int, str] = field(default_factory=dict)
    stores: dict[int, str] = field(default_factory=dict)
    regions: dict[int, str] = field(default_factory=dict)
    staff: dict[int, str] = field(default_factory=dict)
    segments: dict[int, str] = field(default_factory=dict)


def describe_rule(document: Any, names: Names | None = None) -> str:
    """The rule in one line of words; a rule that does not parse is described as such."""
    try:
        rule = r.parse_rule(document)
    except InvalidInput:  # a stored rule the current format rejects is still shown
        return _("（规则无法识别）")
    return describe(rule.match, names or Names(), top=True)


def describe(node: Any, names: Names, *, top: bool = False) -> str:
    if isinstance(node, r.AndNode | r.OrNode):
        joiner = _(" 且 ") if isinstance(node, r.AndNode) else _(" 或 ")
        text = joiner.join(describe(child, names) for child in node.conditions)
        return text if top or len(node.conditions) == 1 else f"（{text}）"
    if isinstance(node, r.NotNode):
        return _("不满足［%(text)s］") % {"text": describe(node.condition, names, top=True)}
    describer = LEAVES.get(type(node))
    return describer(node, names) if describer else str(node.type)


def _value(value: Any, labels: Mapping[str, Any] | None = None) -> str:
    if isinstance(value, list):
        return "、".join(_value(v, labels) for v in value)
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if labels and isinstance(value, str) and value in labels:
        return str(labels[value])
    return str(value)


def _compare(label: str, op: str, value: Any, labels: Mapping[str, Any] | None = None) -> str:
    if op in ("is_set", "not_set"):
        return f"{label} {OP_WORDS[op]}"
    word = OP_SYMBOLS.get(op) or str(OP_WORDS[op])
    return f"{label} {word} {_value(value, labels)}"


def window_text(window: r.Window | None) -> str:
    if window is None:
        return _("累计")
    if window.last_days is not None:
        return _("近 %(days)s 天") % {"days": window.last_days}
    start = window.from_.isoformat() if window.from_ else "…"
    end = window.to.isoformat() if window.to else "…"
    return f"{start} ~ {end}"


def named(ids: list[int], table: dict[int, str]) -> str:
    return "、".join(table.get(i, f"#{i}") for i in ids)


def yuan(fen: int) -> str:
    whole, cents = divmod(fen, 100)
    return f"¥{whole:,}.{cents:02d}"


def _field(node: r.FieldCondition, names: Names) -> str:
    if node.attribute is not None:
        label = _("属性 %(key)s") % {"key": node.attribute}
    else:
        label = str(FIELD_LABELS.get(node.field, node.field))
    value = node.value.isoformat() if hasattr(node.value, "isoformat") else node.value
    return _compare(label, node.op, value, GENDER_LABELS if node.field == "gender" else None)


def _tags(node: r.TagsCondition, names: Names) -> str:
    text = named(node.tag_ids, names.tags)
    if node.match == "all":
        return _("同时有标签 %(tags)s") % {"tags": text}
    if node.match == "none":
        return _("没有标签 %(tags)s") % {"tags": text}
    return (
        _("有标签 %(tags)s") % {"tags": text} if len(node.tag_ids) == 1 else _("有任一标签 %(tags)s") % {"tags": text}
    )


def _reach(node: r.ReachCondition, names: Names) -> str:
    text = _("可通过%(channel)s触达") % {"channel": CHANNEL_LABELS[node.channel]}
    via = []
    if node.staff_id:
        via.append(_("员工 %(name)s") % {"name": names.staff.get(node.staff_id, f"#{node.staff_id}")})
    if node.store_id:
        via.append(_("门店 %(name)s") % {"name": names.stores.get(node.store_id, f"#{node.store_id}")})
    return f"{text}（{'，'.join(via)}）" if via else text


def _org(node: r.OrgCondition, names: Names) -> str:
    if node.level == "store":
        return _("门店属于 %(names)s") % {"names": named(node.ids, names.stores)}
    if node.level == "region":
        return _("区域属于 %(names)s") % {"names": named(node.ids, names.regions)}
    return _("归属员工属于 %(names)s") % {"names": named(node.ids, names.staff)}


def _event(node: r.EventCondition, names: Names) -> str:
    label = str(EVENT_LABELS.get(node.name, node.name))
    if node.where:
        label += "（" + "，".join(_compare(w.property, w.op, w.value) for w in node.where) + "）"
    when = window_text(node.window)
    if node.count.op == "eq" and node.count.value == 0:
        return _("%(when)s 没有 %(event)s") % {"when": when, "event": label}
    symbol = OP_SYMBOLS[node.count.op]
    return _("%(when)s %(event)s %(op)s %(n)s 次") % {"when": when, "event": label, "op": symbol, "n": node.count.value}


def _orders(node: r.OrdersCondition, names: Names) -> str:
    label = str(ORDER_MEASURES[node.measure])
    symbol = OP_SYMBOLS[node.op]
    if node.measure == "first_order_date":
        return f"{label} {symbol} {node.value.isoformat()}"
    if node.measure == "days_since_last":
        return _("距上次下单 %(op)s %(n)s 天") % {"op": symbol, "n": node.value}
    value = str(node.value) if node.measure == "count" else yuan(node.value)
    return f"{window_text(node.window)} {label} {symbol} {value}"


def _bought(node: r.BoughtCondition, names: Names) -> str:
    what = _("商品 %(sku)s") % {"sku": node.sku} if node.sku else _("品类 %(category)s") % {"category": node.category}
    return _("%(when)s 买过 %(what)s") % {"when": window_text(node.window), "what": what}


def _layer(node: r.LayerCondition, names: Names) -> str:
    return _compare(str(LAYER_LABELS[node.layer]), node.op, node.value, LAYER_CODE_LABELS.get(node.layer))


def _segment(node: r.SegmentCondition, names: Names) -> str:
    return _("属于分群「%(name)s」") % {"name": names.segments.get(node.segment_id, f"#{node.segment_id}")}


LEAVES = {
    r.FieldCondition: _field,
    r.TagsCondition: _tags,
    r.ReachCondition: _reach,
    r.OrgCondition: _org,
    r.EventCondition: _event,
    r.OrdersCondition: _orders,
    r.BoughtCondition: _bought,
    r.LayerCondition: _layer,
    r.SegmentCondition: _segment,
}
