"""Channel codes (渠道活码): trackable QR codes that add a customer to a staff member (or one of
several, in rotation), or make them follow the Official Account, and the record of every add
they brought (the attribution that the report counts).

A WeCom code is a 「联系我」 contact way made through the API. Those are invisible in the WeCom
admin console, so ``config_id`` is the only handle siyu has on it: losing it leaks the way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from siyu.content.models import Material
from siyu.customers.models import Customer
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.tags.models import Tag

STATE_MAX = 30  # WeCom's limit on contact_way.state (OA scene_str allows 64; the tighter one wins)


class ChannelCode(models.Model):
    class Kind(models.TextChoices):
        STAFF = "staff", "单人活码"
        ROTATING = "rotating", "多人轮流活码"
        STORE = "store", "门店活码"
        OA_QR = "oa_qr", "公众号参数二维码"

    class Status(models.TextChoices):
        ACTIVE = "active", "启用"
        PAUSED = "paused", "已暂停"
        ARCHIVED = "archived", "已归档"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What WeCom echoes as ``State`` on the add event; for OA codes it is the QR's ``scene_str``.
    state = models.CharField(max_length=STATE_MAX)
    tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    welcome_text = models.TextField(blank=True, default="")
    # WeCom-shaped attachments: [{"msgtype": "image"|"link"|"miniprogram", "<msgtype>": {...}}].
    welcome_attachments = models.JSONField(default=list, blank=True)
    # An image material holding a group's invite QR, appended as an image attachment.
    group_qr_material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    store = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cost_fen = models.BigIntegerField(default=0)
    skip_verify = models.BooleanField(default=True)
    # WeCom: the contact way's config_id; OA: the QR ticket.
    config_id = models.CharField(max_length=200, blank=True, default="")
    qr_code = models.URLField(max_length=500, blank=True, default="")  # the platform's QR image
    qr_content = models.CharField(max_length=500, blank=True, default="")  # what a redrawn QR encodes
    # The WeCom userids on the contact way now: rebalance calls WeCom only when this changes.
    current_userids = models.JSONField(default=list, blank=True)
    rotation_note = models.CharField(max_length=300, blank=True, default="")
    synced_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "state"], name="channel_code_state_unique")]
        indexes = [models.Index(fields=["workspace", "status", "-id"], name="channel_code_status")]

    def __str__(self) -> str:
        return self.name


class ChannelCodeStaff(models.Model):
    """One staff member on a code: order, daily add cap, backup flag and schedule.

    ``schedule``: ``{"weekdays": [1..7] (ISO, Monday 1; empty = every day), "ranges":
    [["09:00", "18:00"], ["22:00", "02:00"]] (workspace time zone; empty = all day; a range
    ending before it starts crosses midnight and belongs to the weekday it starts on)}``.
    """

    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="staff_entries")
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    daily_cap = models.PositiveIntegerField(default=0)  # adds per local day; 0 = no cap
    is_backup = models.BooleanField(default=False)
    schedule = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "staff"], name="channel_code_staff_unique")]
        ordering = ["position", "pk"]


class ChannelCodeAdd(models.Model):
    """A customer added (or followed) through a code: the attribution record."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="adds", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    first_touch = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # A retried callback records the add once.
            models.UniqueConstraint(fields=["code", "customer", "at"], name="channel_code_add_unique"),
        ]
        indexes = [
            # The report and the daily caps walk one code's adds by time.
            models.Index(fields=["code", "at"], name="channel_code_add_time"),
            models.Index(fields=["customer"], name="channel_code_add_customer"),
        ]
