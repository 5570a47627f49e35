"""The outbox (every outbound message is a row first) and broadcasts (群发)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from siyu.channels.models import ChannelAccount
from siyu.content.models import MessageTemplate
from siyu.customers.models import Customer
from siyu.org.models import Workspace
from siyu.segments.models import Segment


class Purpose(models.TextChoices):
    MARKETING = "marketing", "营销"
    SERVICE = "service", "服务通知"
    # Machine-to-machine: domain events pushed to a brand's webhook; no person, no gate.
    SYSTEM = "system", "系统事件"


class QuietPolicy(models.TextChoices):
    HOLD = "hold", "顺延到可发送时段"
    SKIP = "skip", "跳过不发"


class Broadcast(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        SCHEDULED = "scheduled", "已定时"
        SENDING = "sending", "发送中"
        SENT = "sent", "已完成"
        CANCELLED = "cancelled", "已取消"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Audience: a segment, or tags (any of ``tags_any`` and all of ``tags_all``).
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tags_any = models.JSONField(default=list, blank=True)
    tags_all = models.JSONField(default=list, blank=True)
    account = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    quiet_policy = models.CharField(max_length=8, choices=QuietPolicy.choices, default=QuietPolicy.HOLD)
    # Share of the audience deliberately not sent, in basis points (1000 = 10 %).
    holdout_bp = models.PositiveIntegerField(default=0)
    coupon_code = models.CharField(max_length=64, blank=True, default="")
    conversion_days = models.PositiveIntegerField(default=7)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    audience_size = models.IntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-id"], name="broadcast_recent"),
            models.Index(fields=["status", "scheduled_at"], name="broadcast_due"),
        ]

    def __str__(self) -> str:
        return self.name


class BroadcastVariant(models.Model):
    """One content variant of a broadcast; recipients are split by ``weight``.

    The text is copied from the template when the variant is saved, so editing the template
    later does not change what a broadcast sent.
    """

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=16)
    weight = models.PositiveIntegerField(default=1)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    provider_template = models.CharField(max_length=64, blank=True, default="")
    provider_params = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broadcast", "label"], name="variant_label")]


class OutboundMessage(models.Model):
    """One message to one recipient on one channel account.

    ``idempotency_key`` is unique per workspace, so the same logical message can never be
    queued twice. States move forward only, guarded in SQL:
    queued → (held →) sending → sent → delivered | failed | bounced; or suppressed (with a
    reason); ``unknown`` when a worker died mid-send and the provider cannot tell us;
    ``holdout`` for broadcast control-group members, who are deliberately never sent.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "排队中"
        HELD = "held", "等待可发送时段"
        SENDING = "sending", "发送中"
        SENT = "sent", "已发送"
        DELIVERED = "delivered", "已送达"
        FAILED = "failed", "失败"
        BOUNCED = "bounced", "退信"
        SUPPRESSED = "suppressed", "已拦截"
        UNKNOWN = "unknown", "结果未知"
        HOLDOUT = "holdout", "对照组"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="+", db_index=False)
    medium = models.CharField(max_length=24)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    idempotency_key = models.CharField(max_length=200)
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(BroadcastVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_address = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(blank=True, default="")
    # Template source when rendered at dispatch, per-recipient variables, provider params, links.
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    reason = models.CharField(max_length=32, blank=True, default="")
    quiet_policy = models.CharField(max_length=8, choices=QuietPolicy.choices, default=QuietPolicy.HOLD)
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the message passed the gate: what frequency caps count.
    gated_at = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # First click on any of the message's tracked links.
    clicked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "idempotency_key"], name="outbound_idempotency"),
        ]
        indexes = [
            # What workers claim: due rows, oldest first.
            models.Index(
                fields=["account", "id"], condition=Q(state__in=["queued", "held"]), name="outbound_claimable"
            ),
            # Expired leases to recover.
            models.Index(fields=["lease_until"], condition=Q(state="sending"), name="outbound_leased"),
            # Frequency caps: a customer's marketing messages that passed the gate.
            models.Index(
                fields=["customer", "gated_at"],
                condition=Q(purpose="marketing", gated_at__isnull=False),
                name="outbound_caps",
            ),
            models.Index(fields=["broadcast", "state"], name="outbound_broadcast"),
            models.Index(fields=["account", "provider_ref"], condition=~Q(provider_ref=""), name="outbound_ref"),
            models.Index(fields=["workspace", "-id"], name="outbound_recent"),
            models.Index(fields=["customer", "-id"], name="outbound_customer"),
        ]


class WecomMassTask(models.Model):
    """One WeCom mass-send task (``add_msg_template``): one staff member, their own customers.

    Written *before* the call (``msgid`` empty, status ``creating``, with the outbox ids it
    carries) so a worker that dies between WeCom's answer and our record leaves a trace that
    recovery can match against ``get_groupmsg_list_v2`` instead of creating a second task.
    Polling (``messaging.wecom_poll``) fills in the counts and closes it.
    """

    class Status(models.TextChoices):
        CREATING = "creating", "创建中"
        OPEN = "open", "待员工确认"
        SENT = "sent", "员工已发送"
        EXPIRED = "expired", "超时未确认"
        CANCELLED = "cancelled", "已取消"
        FAILED = "failed", "创建失败"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+", db_index=False)
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sender = models.ForeignKey("org.Staff", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sender_userid = models.CharField(max_length=64)
    msgid = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CREATING)
    text = models.TextField(blank=True, default="")
    message_ids = models.JSONField(default=list, blank=True)  # outbox rows this task carries
    fail_list = models.JSONField(default=list, blank=True)  # external_userids WeCom refused at creation
    recipients = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    not_friend = models.IntegerField(default=0)
    cap_hit = models.IntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)  # when the staff member sent it
    reminded_at = models.JSONField(default=list, blank=True)  # ISO times of remind_groupmsg_send
    created_at = models.DateTimeField()
    last_polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["msgid"], condition=~Q(msgid=""), name="wecom_mass_msgid"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="wecom_mass_open"),
            models.Index(fields=["broadcast"], name="wecom_mass_broadcast"),
            models.Index(fields=["account", "created_at"], name="wecom_mass_account"),
        ]
