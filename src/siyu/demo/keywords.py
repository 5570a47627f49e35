"""The demo brand's keyword rules and risk rules, run over its conversations.

The customer lines in ``catalog.CUSTOMER_LINES`` say 敏感肌, 美白, 孕期, 价格 …; the
rules here tag them through the real services, and a handful of risky staff messages
(private payment, a competitor) give the risk page something to show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from siyu.conversations.models import Message
from siyu.conversations.services import create_risk_rule, ingest_messages
from siyu.org.models import Workspace
from siyu.tags.keyword_rules import apply_keyword_rules_to_history, create_rule
from siyu.tags.models import Tag

# (name, keywords, tag (group, name), min_matches, window_days)
KEYWORD_RULES: list[tuple[str, list[str], tuple[str, str], int, int | None]] = [
    ("敏感肌咨询", ["敏感肌", "泛红", "过敏"], ("肤质", "敏感肌"), 1, None),
    ("美白需求", ["美白", "提亮", "亮白"], ("关注", "美白"), 1, None),
    ("孕期护肤", ["孕期", "怀孕", "孕妇"], ("人生阶段", "孕期"), 1, None),
    ("价格敏感", ["价格", "优惠", "便宜", "贵"], ("关注", "价格敏感"), 2, 30),
    ("祛痘需求", ["长痘", "祛痘", "痘痘"], ("关注", "祛痘"), 1, None),
    ("抗老需求", ["细纹", "抗老", "抗衰"], ("关注", "抗老"), 1, None),
]
RISK_RULES: list[tuple[str, str, list[str]]] = [
    ("私下收款", "private_payment", ["私下转账", "加我微信", "私人收款码", "微信转我"]),
    ("竞品提及", "competitor", ["雅诗兰黛", "兰蔻", "欧莱雅", "完美日记"]),
    ("辱骂客户", "abuse", ["神经病", "滚蛋", "有病吧"]),
]
RISKY_LINES = [
    "亲，私下转账给我可以再便宜50，走店里系统要原价",
    "这边扫我的私人收款码就行，不用走小程序",
    "其实跟兰蔻的小黑瓶差不多，我们这个便宜一半",
    "雅诗兰黛那款也可以，看您预算",
    "加我微信，我私下给您留货",
]


def build_keyword_rules(workspace: Workspace, now: dt.datetime, echo: Callable[[str], None] = print) -> None:
    tags = {(t.group.name, t.name): t.pk for t in Tag.objects.filter(workspace=workspace).select_related("group")}
    for name, words, tag, min_matches, window_days in KEYWORD_RULES:
        if tag in tags:
            create_rule(
                workspace,
                {
                    "name": name,
                    "keywords": words,
                    "min_matches": min_matches,
                    "window_days": window_days,
                    "tag_ids": [tags[tag]],
                },
            )
    for name, category, words in RISK_RULES:
        create_risk_rule(workspace, {"name": name, "category": category, "words": words})
    # A few risky replies from staff who already talk to customers, so the risk page has alerts.
    pairs = list(
        Message.objects.filter(workspace=workspace, direction=Message.Direction.FROM_STAFF, staff__isnull=False)
        .order_by("pk")
        .values_list("customer_id", "staff_id")[: len(RISKY_LINES) * 7 : 7]
    )
    items = [
        {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "direction": "out",
            "text": text,
            "sent_at": (now - dt.timedelta(hours=3 * n + 1)).isoformat(),
            "external_msgid": f"demo-risk-{n}",
        }
        for n, ((customer_id, staff_id), text) in enumerate(zip(pairs, RISKY_LINES, strict=False))
    ]
    if items:
        ingest_messages(workspace, items, source="demo")
    result = apply_keyword_rules_to_history(workspace)
    echo(
        f"关键词规则 / keyword rules: {len(KEYWORD_RULES)} rules, {result.matches:,} matching messages, "
        f"{result.tagged:,} tags added; {len(RISK_RULES)} risk rules, {len(items)} alerts"
    )
