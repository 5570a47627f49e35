"""Reads of the computed layers, in the viewer's scope: distributions for the console page and
one customer's layers for the profile. Frozen dataclasses out, no ORM objects."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Max

from siyu.core import clock
from siyu.customers.queries import scoped_customers
from siyu.org.rules import Scope
from siyu.segments import layer_rules as lr
from siyu.segments.models import CustomerLayer, LayerSettings

Bucket = tuple[str, str, int]  # code, display label, customers


@dataclass(frozen=True)
class Distribution:
    total: int
    computed_at: dt.datetime | None
    rfm_cells: list[Bucket]
    lifecycles: list[Bucket]
    value_tiers: list[Bucket]
    community_tiers: list[Bucket]
    without_rfm: int

    @property
    def with_rfm(self) -> int:
        return self.total - self.without_rfm


@dataclass(frozen=True)
class CustomerLayers:
    r_score: int
    f_score: int
    m_score: int
    rfm_cell: str
    rfm_cell_label: str
    last_order_day: dt.date | None
    # Whole local days from the last paid order to today (None = never bought).
    recency_days: int | None
    frequency: int
    monetary_fen: int
    lifecycle: str
    lifecycle_label: str
    value_tier: str
    value_tier_label: str
    community_score: int
    community_tier: str
    community_tier_label: str
    computed_at: dt.datetime


def _buckets(counts: Counter, labels: dict) -> list[Bucket]:
    return [(code, str(label), counts.get(code, 0)) for code, label in labels.items()]


def layer_distribution(scope: Scope) -> Distribution:
    """How the customers this scope may see spread over each layer (one grouped query)."""
    rows = (
        CustomerLayer.objects.filter(
            workspace_id=scope.workspace_id, customer_id__in=scoped_customers(scope).values("id")
        )
        .values_list("rfm_cell", "lifecycle", "value_tier", "community_tier")
        .annotate(n=Count("*"), at=Max("computed_at"))
        .order_by()
    )
    cells, stages, tiers, community = Counter(), Counter(), Counter(), Counter()
    computed_at = None
    for cell, stage, tier, group, n, at in rows:  # at most 9 x 6 x 4 x 4 groups, not customers
        cells[cell] += n
        stages[stage] += n
        tiers[tier] += n
        community[group] += n
        computed_at = max(computed_at, at) if computed_at else at
    # Rows are rewritten only when they change, so the latest recompute is stamped on the settings.
    computed_at = last_recompute(scope.workspace_id) or computed_at
    return Distribution(
        total=sum(stages.values()),
        computed_at=computed_at,
        rfm_cells=_buckets(cells, lr.RFM_CELL_LABELS),
        lifecycles=_buckets(stages, lr.LIFECYCLE_LABELS),
        value_tiers=_buckets(tiers, lr.VALUE_TIER_LABELS),
        community_tiers=_buckets(community, lr.COMMUNITY_TIER_LABELS),
        without_rfm=cells.get("", 0),
    )


def last_recompute(workspace_id: int) -> dt.datetime | None:
    return LayerSettings.objects.filter(workspace_id=workspace_id).values_list("computed_at", flat=True).first()


def customer_layers(customer_id: int, *, now: dt.datetime | None = None) -> CustomerLayers | None:
    """One customer's layers as last computed (the caller has already checked scope)."""
    row = CustomerLayer.objects.filter(customer_id=customer_id).select_related("workspace").first()
    if row is None:
        return None
    today = (now or clock.now()).astimezone(ZoneInfo(row.workspace.time_zone)).date()
    last_day = row.last_order_day
    return CustomerLayers(
        r_score=row.r_score,
        f_score=row.f_score,
        m_score=row.m_score,
        rfm_cell=row.rfm_cell,
        rfm_cell_label=str(lr.RFM_CELL_LABELS.get(row.rfm_cell, "")),
        last_order_day=last_day,
        recency_days=None if last_day is None else max((today - last_day).days, 0),
        frequency=row.frequency,
        monetary_fen=row.monetary_fen,
        lifecycle=row.lifecycle,
        lifecycle_label=str(lr.LIFECYCLE_LABELS.get(row.lifecycle, "")),
        value_tier=row.value_tier,
        value_tier_label=str(lr.VALUE_TIER_LABELS.get(row.value_tier, "")),
        community_score=row.community_score,
        community_tier=row.community_tier,
        community_tier_label=str(lr.COMMUNITY_TIER_LABELS.get(row.community_tier, "")),
        computed_at=last_recompute(row.workspace_id) or row.computed_at,
    )
