"""Channel accounts (one provider login per workspace), the compliance settings the gate
enforces, the global opt-out list, and what the sandbox channel recorded."""

from __future__ import annotations

from django.db import models

from siyu.customers.models import Customer
from siyu.org.models import Workspace


class Medium(models.TextChoices):
    """How a message reaches a person; consent and per-channel caps are kept per medium."""

    SMS = "sms", "短信"
    EMAIL = "email", "邮件"
    APP = "app", "App 推送"
    WECOM = "wecom", "企业微信"
    OFFICIAL_ACCOUNT = "official_account", "公众号"


class WecomCapMode(models.TextChoices):
    MONTH = "month", "每月（当月天数）"
    WEEK = "week", "每 7 天 7 条"
    DAY = "day", "每天 1 条"


class ChannelAccount(models.Model):
    """A provider account a workspace sends through, e.g. its Aliyun SMS signature.

    ``settings`` holds what may be shown (endpoint, sign name, sender address); ``secret``
    holds the credentials, encrypted (``channels.crypto``), and is never shown back in full.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "正常"
        DISABLED = "disabled", "已停用"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=32)  # a key of channels.registry
    medium = models.CharField(max_length=24, choices=Medium.choices)
    settings = models.JSONField(default=dict, blank=True)
    secret = models.TextField(blank=True, default="")
    secret_hint = models.CharField(max_length=16, blank=True, default="")
    # Part of inbound callback URLs (receipts, replies); unguessable, compared in constant time.
    callback_token = models.CharField(max_length=64, unique=True)
    rate_per_second = models.FloatField(default=100.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_detail = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="channel_account_name")]

    def __str__(self) -> str:
        return self.name


class ComplianceSettings(models.Model):
    """What the compliance gate enforces for one workspace (created with defaults on first use)."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    # Marketing messages per customer across all channels (0 = no cap).
    daily_cap = models.PositiveIntegerField(default=2)
    weekly_cap = models.PositiveIntegerField(default=5)
    # Per medium: {"sms": {"day": 1, "week": 3}}.
    channel_caps = models.JSONField(default=dict, blank=True)
    # Marketing window in the workspace's time zone; outside it marketing is held or skipped.
    window_start = models.TimeField(default="08:00")
    window_end = models.TimeField(default="21:00")
    sms_optout_suffix = models.CharField(max_length=32, default="拒收请回复R")
    optout_keywords = models.JSONField(default=list, blank=True)
    # WeCom's own per-customer cap on mass messages (群发), kept by the gate too so a send
    # WeCom would refuse (status 3) never becomes a staff task: "month" = as many as the days
    # in the local calendar month (WeCom's default), "week" = 7 per 7 days, "day" = 1 a day.
    wecom_cap_mode = models.CharField(max_length=8, choices=WecomCapMode.choices, default="month")
    updated_at = models.DateTimeField()


class OptOut(models.Model):
    """A customer who refused marketing: binds every channel until they opt in again."""

    class Source(models.TextChoices):
        SMS_REPLY = "sms_reply", "短信回复退订"
        EMAIL_LINK = "email_link", "邮件退订链接"
        API = "api", "API"
        CONSOLE = "console", "控制台"
        PROVIDER = "provider", "运营商黑名单"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    detail = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "customer"], name="optout_unique")]


class SandboxMessage(models.Model):
    """What the sandbox channel "sent": the demo's and the tests' record of deliveries."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+", db_index=False)
    message_id = models.BigIntegerField(unique=True)
    to_address = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(blank=True, default="")
    recorded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="sandbox_recent")]
