"""What reconciliation with WeCom keeps: one row per run (what it fixed, the API calls it used
against the minimum), and the customer groups (客户群) with their members.

Imported at the end of ``siyu.wecom.models`` so the app registry and migrations see them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from siyu.customers.models import Customer
from siyu.org.models import Staff, Workspace


class SyncRun(models.Model):
    """One reconciliation run of a workspace against WeCom.

    ``counts`` holds what the run found and fixed (``SyncReport.counts``); ``fixes`` is their
    sum, so "nothing to fix" is ``fixes == 0``. ``api_calls`` are the business calls made
    (retries and failures included, token fetches not); ``api_calls_min`` the fewest calls the
    API allows for the data seen.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "进行中"
        OK = "ok", "完成"
        PARTIAL = "partial", "部分完成"
        FAILED = "failed", "失败"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    fixes = models.IntegerField(default=0)
    api_calls = models.IntegerField(default=0)
    api_calls_min = models.IntegerField(default=0)
    duration_ms = models.IntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["workspace", "-started_at"], name="sync_run_recent")]


class ExternalGroup(models.Model):
    """A WeCom customer group (客户群) as ``groupchat/get`` last described it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    chat_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    owner_userid = models.CharField(max_length=64, blank=True, default="")
    owner_staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notice = models.TextField(blank=True, default="")
    # groupchat/list status: 0 normal, 1 owner left (to inherit), 2 inheriting, 3 inherited.
    wecom_status = models.IntegerField(default=0)
    member_version = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)  # WeCom's create_time
    synced_at = models.DateTimeField()
    dismissed_at = models.DateTimeField(null=True, blank=True)  # gone from groupchat/list

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "chat_id"], name="external_group_unique")]

    def __str__(self) -> str:
        return self.name or self.chat_id


class ExternalGroupMember(models.Model):
    """A member of a customer group: a staff member (type 1) or an external contact (type 2).

    ``left_at`` is set when a reconciliation no longer finds the member; a member who comes
    back gets it cleared and the new ``join_time``.
    """

    class Type(models.IntegerChoices):
        STAFF = 1, "企业成员"
        EXTERNAL = 2, "外部联系人"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    group = models.ForeignKey(ExternalGroup, on_delete=models.CASCADE, related_name="members", db_index=False)
    member_id = models.CharField(max_length=64)  # userid (type 1) or external_userid (type 2)
    type = models.IntegerField(choices=Type.choices, default=Type.EXTERNAL)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    join_time = models.DateTimeField(null=True, blank=True)
    join_scene = models.IntegerField(default=0)  # 1 invited, 2 link, 3 QR code
    invitor = models.CharField(max_length=64, blank=True, default="")
    unionid = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="")
    group_nickname = models.CharField(max_length=100, blank=True, default="")
    name = models.CharField(max_length=100, blank=True, default="")
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "member_id"], name="external_group_member_unique")]
        indexes = [
            models.Index(fields=["customer"], condition=Q(customer__isnull=False), name="group_member_customer"),
        ]
