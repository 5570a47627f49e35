"""Segments (rule -> materialised membership with history), layers (RFM, lifecycle,
value tier, the 1-9-90 community pyramid) and segment-driven tag rules."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from siyu.customers.models import Customer
from siyu.org.models import Workspace
from siyu.tags.models import Tag


class Segment(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True, default="")
    # The rule document (see segments/rules.py for the format); validated before it is stored.
    rule = models.JSONField()
    # Bumped on every definition change; a segment whose refreshed_revision lags is rebuilt in full.
    revision = models.IntegerField(default=1)
    refreshed_revision = models.IntegerField(default=0)
    # The workspace-local day of the last refresh: when it moves on, rolling windows shift.
    refreshed_day = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    member_count = models.IntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="segment_name_unique")]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One stay of a customer in a segment. Current members have no ``exited_at``; rows of
    past stays are kept as history."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open stay; it doubles as the index for member lists and diffs.
            models.UniqueConstraint(
                fields=["segment", "customer"], condition=Q(exited_at__isnull=True), name="segment_member_open"
            ),
        ]
        indexes = [models.Index(fields=["customer", "segment"], name="segment_member_customer")]


class SegmentSize(models.Model):
    """Size of a segment at the end of each refresh day, for trend lines."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    day = models.DateField()
    size = models.IntegerField()
    entered = models.IntegerField(default=0)
    exited = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "day"], name="segment_size_day")]


class SegmentTagRule(models.Model):
    """Keep a tag equal to a segment's members: added on entry, removed on exit."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="tag_rules")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "tag"], name="segment_tag_rule_unique")]


class LayerSettings(models.Model):
    """Per-workspace thresholds for the layers; defaults suit a beauty brand."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="layer_settings")
    # RFM looks at paid orders in this many days.
    rfm_window_days = models.IntegerField(default=365)
    # Lifecycle, by days since the last paid order (or since first seen for never-buyers).
    new_days = models.IntegerField(default=30)
    active_days = models.IntegerField(default=90)
    at_risk_days = models.IntegerField(default=180)
    dormant_days = models.IntegerField(default=365)
    # Community participation looks back this many days.
    community_window_days = models.IntegerField(default=90)
    updated_at = models.DateTimeField(auto_now=True)
    # When the layers were last recomputed (rows that did not change keep their older stamp).
    computed_at = models.DateTimeField(null=True, blank=True)


class CustomerLayer(models.Model):
    """A customer's layers as last computed (one row per live customer)."""

    class Lifecycle(models.TextChoices):
        NEW = "new", "新客"
        ACTIVE = "active", "活跃"
        AT_RISK = "at_risk", "风险"
        DORMANT = "dormant", "沉睡"
        CHURNED = "churned", "流失"

    class CommunityTier(models.TextChoices):
        SEED = "seed", "种子用户 (1%)"
        KOC = "koc", "KOC (9%)"
        ORDINARY = "ordinary", "普通成员 (90%)"

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True, related_name="layer")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The local day of the last paid order (any time; None = never bought). Recency is days
    # before today, computed when read, so an unchanged customer's row stays unchanged.
    last_order_day = models.DateField(null=True, blank=True)
    frequency = models.IntegerField(default=0)
    monetary_fen = models.BigIntegerField(default=0)
    # 1-5 by quintile within the workspace; 0 = no paid order in the window.
    r_score = models.SmallIntegerField(default=0)
    f_score = models.SmallIntegerField(default=0)
    m_score = models.SmallIntegerField(default=0)
    rfm_cell = models.CharField(max_length=16, blank=True, default="")
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, blank=True, default="")
    value_tier = models.CharField(max_length=16, blank=True, default="")
    community_score = models.IntegerField(default=0)
    community_tier = models.CharField(max_length=16, choices=CommunityTier.choices, blank=True, default="")
    # The recompute that last changed this row (see LayerSettings.computed_at for the latest one).
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "rfm_cell"], name="layer_rfm_cell"),
            models.Index(fields=["workspace", "lifecycle"], name="layer_lifecycle"),
            models.Index(fields=["workspace", "community_tier"], name="layer_community"),
        ]
