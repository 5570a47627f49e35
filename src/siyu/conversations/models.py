"""Conversation messages between staff and customers (会话存档). Later features tag
customers from the keywords customers use here, and flag risky staff messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

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
