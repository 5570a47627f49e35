"""A staff member's to-do list (员工任务): what a WeCom sidebar or the mobile task page shows.

Tasks are created by the features that need a person to act: a WeCom mass-send waiting for the
staff member to confirm it in the WeCom app (``group_message``), a Moments post to publish
(``moment``), a customer to follow up (``follow_up``). Each task names its source
(``source_type`` + ``source_id``), so creating it twice is harmless and the source can close
it when WeCom reports the staff member acted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop

from siyu.customers.models import Customer
from siyu.org.models import Staff, Workspace

# Sources whose tasks WeCom closes when the staff member really sent / published (a mass send
# confirmed in the WeCom app, a Moments post): a hand-made "done" would hide a task nobody did.
WECOM_TRACKED_SOURCES = ("wecom_group_msg", "moment")
# Where in the WeCom app such a task is done, for the task card.
WECOM_HINTS = {
    "moment": gettext_noop("请在企业微信「工作台 → 客户朋友圈」中发表，发表后任务自动完成。"),
    "group_message": gettext_noop("请在企业微信「消息 → 群发助手」中确认发送，发送后任务自动完成。"),
}


class StaffTask(models.Model):
    class Kind(models.TextChoices):
        GROUP_MESSAGE = "group_message", "群发确认"
        MOMENT = "moment", "发朋友圈"
        FOLLOW_UP = "follow_up", "跟进客户"
        OTHER = "other", "其他"

    class Status(models.TextChoices):
        PENDING = "pending", "待完成"
        DONE = "done", "已完成"
        EXPIRED = "expired", "已过期"
        CANCELLED = "cancelled", "已取消"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    title = models.CharField(max_length=200)
    # What to say / post: the script text, and the materials (content.Material ids) to use.
    script = models.TextField(blank=True, default="")
    materials = models.JSONField(default=list, blank=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # How many customers the task reaches (a mass send), for the list.
    audience = models.IntegerField(default=0)
    # The workspace-local day the task is for; it stays on the list until done or expired.
    due_on = models.DateField()
    source_type = models.CharField(max_length=32)  # e.g. "wecom_group_msg", "moment", "broadcast"
    source_id = models.CharField(max_length=100)  # e.g. the WeCom msgid
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "staff" (marked in siyu) or "wecom" (WeCom reported the send / post).
    done_via = models.CharField(max_length=12, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["staff", "source_type", "source_id"], name="staff_task_source"),
        ]
        indexes = [
            models.Index(fields=["staff", "due_on"], condition=Q(status="pending"), name="staff_task_pending"),
            models.Index(fields=["workspace", "source_type", "source_id"], name="staff_task_by_source"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def closed_by_wecom(self) -> bool:
        return self.source_type in WECOM_TRACKED_SOURCES

    @property
    def wecom_hint(self) -> str:
        """Untranslated (the template and the view translate it)."""
        return WECOM_HINTS.get(self.kind, WECOM_HINTS["group_message"])


class Moment(models.Model):
    """A Moments post (朋友圈) the company asks its staff to publish (``add_moment_task``).

    WeCom creates the post asynchronously: ``jobid`` first, then ``moment_id`` once the job is
    done. Each sender then publishes it from their own WeCom app; ``get_moment_task`` says who
    has, and each sender gets a ``StaffTask`` (source ``moment`` + this row's pk) that closes
    when they do.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        CREATING = "creating", "创建中"
        CREATED = "created", "已下发"
        FAILED = "failed", "失败"
        # Terminal: a week passed; no more polls, the senders' open tasks expired.
        CLOSED = "closed", "已结束"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    text = models.TextField(blank=True, default="")
    # content.Material ids: up to 9 images, or 1 video, or 1 link.
    attachments = models.JSONField(default=list, blank=True)
    # What the operator chose (siyu ids) ...
    staff_ids = models.JSONField(default=list, blank=True)
    org_unit_ids = models.JSONField(default=list, blank=True)
    tag_ids = models.JSONField(default=list, blank=True)
    # ... and what was sent to WeCom (userids, corp tag ids).
    sender_userids = models.JSONField(default=list, blank=True)
    wecom_tag_ids = models.JSONField(default=list, blank=True)
    jobid = models.CharField(max_length=128, blank=True, default="")
    moment_id = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    error = models.CharField(max_length=500, blank=True, default="")
    invalid_sender_list = models.JSONField(default=list, blank=True)
    invalid_external_contact_list = models.JSONField(default=list, blank=True)
    # {"senders": n, "published": n, "reached": n}: refreshed by each poll.
    counts = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-id"], name="moment_recent"),
            models.Index(fields=["status", "created_at"], name="moment_to_poll"),
        ]

    def __str__(self) -> str:
        return self.text[:30] or f"moment {self.pk}"
