"""Pure rules behind the layers: RFM cells, value tiers, lifecycle stages, the 1-9-90 pyramid.

No database, no clock. ``segments/layers.py`` renders the SQL ``CASE`` expressions from the
tables below, so the SQL and the Python answer come from one definition (the tests check both).

Scores
    R, F and M are 1-5 by quintile of rank within the workspace, among customers with a paid
    order in the RFM window (0 = none): ``score = 1 + 5 * (rank - 1) // n`` where ``rank`` is
    SQL ``RANK()`` (ties share the lowest rank). Equal values therefore always get equal
    scores, so two customers who behaved the same never land in different segments by id;
    the price is that a heavily tied value (most customers buy once) fills the lower
    quintiles together. Recency ranks the most days ago first, so recent buyers score high.

High / low cut
    A dimension is *high* when its score is at least ``RFM_HIGH_FROM`` (4): above the mean
    of a uniform 1-5 score (3), the usual "above average" reading of the eight-cell model.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from siyu.core.errors import InvalidInput

QUINTILES = 5
RFM_HIGH_FROM = 4

# (recency high, frequency high, monetary high) -> short code stored in CustomerLayer.rfm_cell.
RFM_CELLS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (True, False, True): "important_grow",
    (False, True, True): "important_keep",
    (False, False, True): "important_retain",
    (True, True, False): "general_value",
    (True, False, False): "general_grow",
    (False, True, False): "general_keep",
    (False, False, False): "general_retain",
}
RFM_CELL_LABELS = {
    "important_value": _("重要价值客户"),
    "important_grow": _("重要发展客户"),
    "important_keep": _("重要保持客户"),
    "important_retain": _("重要挽留客户"),
    "general_value": _("一般价值客户"),
    "general_grow": _("一般发展客户"),
    "general_keep": _("一般保持客户"),
    "general_retain": _("一般挽留客户"),
}

# Value tier from the M score alone: the top quintile is high value, the middle three medium.
VALUE_TIERS: tuple[tuple[int, str], ...] = ((5, "high"), (3, "medium"), (1, "low"))
VALUE_TIER_LABELS = {"high": _("高价值"), "medium": _("中价值"), "low": _("低价值")}

LIFECYCLES = ("new", "active", "at_risk", "dormant", "churned")
LIFECYCLE_LABELS = {
    "new": _("新客"),
    "active": _("活跃"),
    "at_risk": _("风险"),
    "dormant": _("沉睡"),
    "churned": _("流失"),
}

# Community participation score over the community window. An invite brings a new member in,
# the strongest signal of advocacy; sharing content spreads the brand; a message is the
# lightest form of participation. Running a group (owner) or helping run it (admin) is a
# standing role, so it is a flat bonus rather than a count.
INVITE_EVENTS = ("invite", "invite_accepted")
SHARE_EVENTS = ("share_poster", "share_content", "share_article")
INVITE_WEIGHT = 5
SHARE_WEIGHT = 3
MESSAGE_WEIGHT = 1
GROUP_ROLE_BONUS = {"owner": 20, "admin": 10}
# Cumulative shares of the workspace's live customers: the top 1% are seeds, the next 9% KOCs.
SEED_PERCENT = 1
KOC_PERCENT = 10  # seeds + KOCs
COMMUNITY_TIERS = ("seed", "koc", "ordinary")
COMMUNITY_TIER_LABELS = {"seed": _("种子用户"), "koc": _("KOC"), "ordinary": _("普通成员")}

SETTING_LIMITS = {
    "rfm_window_days": (1, 3650),
    "new_days": (1, 3650),
    "active_days": (1, 3650),
    "at_risk_days": (1, 3650),
    "dormant_days": (1, 3650),
    "community_window_days": (1, 3650),
}


def quintile(rank: int, total: int) -> int:
    """The 1-5 score of the ``rank``-th (1-based, ties sharing the lowest rank) of ``total``."""
    return 1 + QUINTILES * (rank - 1) // total


def is_high(score: int) -> bool:
    return score >= RFM_HIGH_FROM


def rfm_cell(r: int, f: int, m: int) -> str:
    """The named cell of a customer's scores; "" without a paid order in the window (scores 0)."""
    if min(r, f, m) <= 0:
        return ""
    return RFM_CELLS[(is_high(r), is_high(f), is_high(m))]


def value_tier(m: int) -> str:
    return next((tier for floor, tier in VALUE_TIERS if m >= floor), "")


def lifecycle(
    *,
    days_since_first_order: int | None,
    days_since_last_order: int | None,
    days_since_first_seen: int,
    days_since_last_seen: int,
    new_days: int,
    active_days: int,
    at_risk_days: int,
    dormant_days: int,
) -> str:
    """The lifecycle stage; days are whole local days before today.

    A buyer is ``new`` while their first paid order is at most ``new_days`` old, then staged
    by days since their last paid order. A never-buyer is ``new`` while first seen at most
    ``new_days`` ago, then staged by days since they were last seen (any interaction): an
    engaged prospect is active, a silent one drifts to churned like a lapsed buyer.
    """
    if days_since_last_order is not None and days_since_first_order is not None:
        first, last = days_since_first_order, days_since_last_order
    else:
        first, last = days_since_first_seen, days_since_last_seen
    if first <= new_days:
        return "new"
    for limit, stage in ((active_days, "active"), (at_risk_days, "at_risk"), (dormant_days, "dormant")):
        if last <= limit:
            return stage
    return "churned"


def community_score(*, invites: int, shares: int, messages: int, group_role: str | None) -> int:
    return (
        INVITE_WEIGHT * invites
        + SHARE_WEIGHT * shares
        + MESSAGE_WEIGHT * messages
        + GROUP_ROLE_BONUS.get(group_role or "", 0)
    )


def pyramid_cuts(live_customers: int) -> tuple[int, int]:
    """How many top-ranked scorers are seeds, and seeds + KOCs (ceil, so a small workspace has one)."""
    return math.ceil(live_customers * SEED_PERCENT / 100), math.ceil(live_customers * KOC_PERCENT / 100)


def community_tier(position: int | None, live_customers: int) -> str:
    """Tier of the customer ranked ``position`` (1-based, None when their score is 0)."""
    seeds, top = pyramid_cuts(live_customers)
    if position is None:
        return "ordinary"
    if position <= seeds:
        return "seed"
    if position <= top:
        return "koc"
    return "ordinary"


@dataclass(frozen=True)
class Thresholds:
    rfm_window_days: int = 365
    new_days: int = 30
    active_days: int = 90
    at_risk_days: int = 180
    dormant_days: int = 365
    community_window_days: int = 90


def check_thresholds(values: Thresholds) -> Thresholds:
    """Raise InvalidInput unless every window is in range and the lifecycle stages widen in order."""
    for name, (low, high) in SETTING_LIMITS.items():
        value = getattr(values, name)
        if not low <= value <= high:
            raise InvalidInput(f"must be between {low} and {high} days", field=name)
    order = ("new_days", "active_days", "at_risk_days", "dormant_days")
    for earlier, later in itertools.pairwise(order):
        if getattr(values, earlier) > getattr(values, later):
            raise InvalidInput(f"must be at least {earlier}", field=later)
    return values


# SQL renderings of the tables above; the column expressions are supplied by the caller.


def rfm_cell_sql(r: str, f: str, m: str) -> str:
    def test(expr: str, high: bool) -> str:
        return f"{expr} >= {RFM_HIGH_FROM}" if high else f"{expr} < {RFM_HIGH_FROM}"

    whens = " ".join(
        f"WHEN {test(r, rh)} AND {test(f, fh)} AND {test(m, mh)} THEN '{code}'"
        for (rh, fh, mh), code in RFM_CELLS.items()
    )
    return f"CASE WHEN {r} <= 0 OR {f} <= 0 OR {m} <= 0 THEN '' {whens} ELSE '' END"


def value_tier_sql(m: str) -> str:
    whens = " ".join(f"WHEN {m} >= {floor} THEN '{tier}'" for floor, tier in VALUE_TIERS)
    return f"CASE {whens} ELSE '' END"


def quintile_sql(rank: str, total: str) -> str:
    return f"(1 + {QUINTILES} * ({rank} - 1) / {total})"


def group_role_bonus_sql(group_role: str) -> str:
    bonus = " ".join(f"WHEN '{role}' THEN {points}" for role, points in GROUP_ROLE_BONUS.items())
    return f"CASE {group_role} {bonus} ELSE 0 END"


def community_score_sql(invites: str, shares: str, messages: str, bonus: str) -> str:
    """The score from the counts and the group role bonus (see ``group_role_bonus_sql``)."""
    return f"({INVITE_WEIGHT} * {invites} + {SHARE_WEIGHT} * {shares} + {MESSAGE_WEIGHT} * {messages} + {bonus})"


def pyramid_cuts_sql(live_customers: str) -> tuple[str, str]:
    """``pyramid_cuts`` in SQL integer arithmetic (ceil of n * p / 100)."""
    return (
        f"(({live_customers} * {SEED_PERCENT} + 99) / 100)",
        f"(({live_customers} * {KOC_PERCENT} + 99) / 100)",
    )
