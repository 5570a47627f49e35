"""Staff turnover (客户继承): a batch hands one staff member's WeCom customers to one or more
colleagues, and one row per customer follows that transfer until WeCom says how it ended.

The transfer rows are also the memory for WeCom's rule that a customer may be transferred at
most twice in 90 days (on-job transfers): the preview counts them, so they are never deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from siyu.customers.models import Customer
from siyu.org.models import Staff, Workspace


class Kind(models.TextChoices):
    ON_JOB = "on_job", "在职转接"
    RESIGNED = "resigned", "离职继承"


class HandoverBatch(models.Model):
    """One handover as the operator started it: who leaves, who takes over, the message."""

    class Status(models.TextChoices):
        RUNNING = "running", "进行中"
        FINISHED = "finished", "已结束"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    handover_staff = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="+")
    takeover_staff = models.ManyToManyField(Staff, related_name="+")
    # Sent by WeCom to each customer of an on-job transfer (empty: WeCom's default text).
    transfer_success_msg = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    total = models.IntegerField(default=0)
    # {status: count} over the batch's transfers, refreshed after every send and poll.
    counts = models.JSONField(default=dict, blank=True)
    # The last whole-call failure (rate limit, network, configuration), for the operator.
    last_error = models.CharField(max_length=300, blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="handover_batch_recent")]


class HandoverTransfer(models.Model):
    """One customer moving from the handover staff member to one takeover staff member."""

    class Status(models.TextChoices):
        PLANNED = "planned", "待发起"
        BLOCKED_LIMIT = "blocked_limit", "90 天内已转接 2 次"
        STARTED = "started", "已发起"
        WAITING = "waiting", "等待接替"
        DONE = "done", "接替完毕"
        REFUSED = "refused", "客户拒绝"
        TAKEOVER_AT_CAP = "takeover_at_cap", "接替成员客户已达上限"
        FAILED = "failed", "失败"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    batch = models.ForeignKey(HandoverBatch, on_delete=models.CASCADE, related_name="transfers")
    kind = models.CharField(max_length=16, choices=Kind.choices)  # the batch's, for the 90-day count
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    external_userid = models.CharField(max_length=128)
    handover_staff = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="+", db_index=False)
    takeover_staff = models.ForeignKey(Staff, null=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    errcode = models.IntegerField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)  # WeCom accepted the request (errcode 0)
    takeover_at = models.DateTimeField(null=True, blank=True)  # WeCom's takeover_time
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who is sending this row now (a worker's token) and since when: a lease, so a worker that
    # dies mid-call leaves the row to be sent again, and WeCom's "already transferring"
    # answer (40129 / 40100) makes the second send harmless.
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a transfer_result poll last listed this row: rows in flight that no poll has listed
    # since long after the request are failed by one UPDATE (WeCom has no such transfer).
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A customer is in at most one unfinished transfer away from a staff member, so two
            # operators starting the same handover at once cannot both send it.
            models.UniqueConstraint(
                fields=["handover_staff", "customer"],
                condition=Q(status__in=["planned", "started", "waiting"]),
                name="handover_one_pending",
            ),
        ]
        indexes = [
            # "Transfers of these customers in the last 90 days" (the WeCom limit).
            models.Index(
                fields=["workspace", "customer", "-requested_at"],
                condition=Q(status__in=["started", "waiting", "done"]),
                name="handover_customer_recent",
            ),
            models.Index(fields=["batch", "status"], name="handover_batch_status"),
            # transfer_fail callbacks name the customer and the takeover member only.
            models.Index(
                fields=["workspace", "external_userid"],
                condition=Q(status__in=["started", "waiting"]),
                name="handover_inflight_external",
            ),
            # The poller's work list: unfinished rows by WeCom pair.
            models.Index(
                fields=["workspace", "handover_staff", "takeover_staff"],
                condition=Q(status__in=["planned", "started", "waiting"]),
                name="handover_pending",
            ),
        ]
