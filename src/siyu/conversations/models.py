"""Conversation messages between staff and customers (会话存档). Later features tag
customers from the keywords customers use here, and flag risky staff messages."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Customer
from siyu.org.models import Staff, Workspace


class Message(models.Model):
    class Direction(models.TextChoices):
        FROM_CUSTOMER = "in", "客户发送"
        FROM_STAFF = "out", "员工发送"

    class Type(models.TextChoices):
        TEXT = "text", "文本"
        IMAGE = "image", "图片"
        VOICE = "voice", "语音"
        LINK = "link", "链接"
        MINIPROGRAM = "miniprogram", "小程序"
        FILE = "file", "文件"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages", db_index=False)
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    msg_type = models.CharField(max_length=16, choices=Type.choices, default=Type.TEXT)
    text = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField()
    # WeCom msgaudit msgid: replays of the archive are not stored twice.
    external_msgid = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_msgid"],
                condition=Q(external_msgid__isnull=False),
                name="message_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["customer", "-sent_at"], name="message_customer_time")]


class RiskRule(models.Model):
    """Sensitive words in staff messages (私下收款, competitor names, insults) that raise an alert."""

    class Category(models.TextChoices):
        PRIVATE_PAYMENT = "private_payment", _("私下收款")
        COMPETITOR = "competitor", _("竞品")
        ABUSE = "abuse", _("辱骂")
        OTHER = "other", _("其他")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.OTHER)
    words = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "updated_at"], name="risk_rule_revision")]

    def __str__(self) -> str:
        return self.name


class RiskAlert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "待处理"
        HANDLED = "handled", "已处理"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(RiskRule, on_delete=models.CASCADE, related_name="alerts")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    matched_words = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "message"], name="risk_alert_unique")]
        # The console lists a workspace's open alerts newest first.
        indexes = [models.Index(fields=["workspace", "status", "-id"], name="risk_alert_queue")]
