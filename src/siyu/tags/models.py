"""Tag groups, tags, and which customer carries which tag, with where it came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Customer
from siyu.org.models import Staff, Workspace


class TagGroup(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tag_groups")
    name = models.CharField(max_length=100)
    sort = models.IntegerField(default=0)
    wecom_group_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="tag_group_unique")]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tags")
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)
    sort = models.IntegerField(default=0)
    wecom_tag_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="tag_unique")]

    def __str__(self) -> str:
        return self.name


class TagSource(models.TextChoices):
    MANUAL = "manual", "手动"
    IMPORT = "import", "导入"
    RULE = "rule", "规则"
    KEYWORD = "keyword", "关键词"
    WECOM = "wecom", "企微同步"
    API = "api", "API"


class CustomerTag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_tags", db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="customer_tags")
    source = models.CharField(max_length=16, choices=TagSource.choices, default=TagSource.MANUAL)
    # What added it: a rule id, a message id, an import file name ...
    source_ref = models.CharField(max_length=200, blank=True, default="")
    added_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_by_staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique")]
        # Filtering customers by tag walks (tag, customer).
        indexes = [models.Index(fields=["tag", "customer"], name="customer_tag_by_tag")]


class KeywordRule(models.Model):
    """Tag a customer who writes one of ``keywords`` at least ``min_matches`` times within
    ``window_days`` (any time when null). Each message counts once per rule."""

    class Mode(models.TextChoices):
        CONTAINS = "contains", _("包含关键词")
        EXACT = "exact", _("整句等于关键词")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="keyword_rules")
    name = models.CharField(max_length=100)
    keywords = models.JSONField(default=list)
    match_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CONTAINS)
    min_matches = models.PositiveIntegerField(default=1)
    window_days = models.PositiveIntegerField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, related_name="keyword_rules")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        # The matcher cache is keyed by (count, latest updated_at) of a workspace's rules.
        indexes = [models.Index(fields=["workspace", "updated_at"], name="keyword_rule_revision")]

    def __str__(self) -> str:
        return self.name


class KeywordMatch(models.Model):
    """One customer message that matched one rule: the evidence min_matches counts."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(KeywordRule, on_delete=models.CASCADE, related_name="matches", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="+")
    matched_at = models.DateTimeField()

    class Meta:
        constraints = [
            # A replayed message never counts twice.
            models.UniqueConstraint(fields=["rule", "message"], name="keyword_match_unique"),
        ]
        indexes = [
            models.Index(fields=["rule", "customer", "matched_at"], name="keyword_match_window"),
            models.Index(fields=["customer"], name="keyword_match_customer"),
        ]
