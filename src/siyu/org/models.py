"""Workspaces (tenants), the org tree, staff, console memberships, API keys and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Workspace(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class OrgUnit(models.Model):
    """A node of the org tree: HQ > region > store.

    ``path`` is the materialised chain of ids (``/1/4/23/``) so "this unit and
    everything below it" is one indexed prefix match instead of a recursive query.
    """

    class Kind(models.TextChoices):
        HQ = "hq", "总部"
        REGION = "region", "大区"
        STORE = "store", "门店"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="org_units")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=64, blank=True, default="")
    city = models.CharField(max_length=64, blank=True, default="")
    path = models.CharField(max_length=255, blank=True, default="", db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "path"])]

    def __str__(self) -> str:
        return self.name


class Staff(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "在职"
        LEFT = "left", "离职"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="staff")
    org_unit = models.ForeignKey(OrgUnit, on_delete=models.PROTECT, related_name="staff")
    name = models.CharField(max_length=100)
    wecom_userid = models.CharField(max_length=64, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True, default="")
    title = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "wecom_userid"], name="staff_wecom_userid_unique"),
        ]
        indexes = [models.Index(fields=["workspace", "org_unit"])]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "所有者"
    ADMIN = "admin", "管理员"
    OPERATOR = "operator", "运营"
    STORE_MANAGER = "store_manager", "店长"
    STAFF = "staff", "导购"
    ANALYST = "analyst", "分析师"


class Membership(models.Model):
    """A console user's role in one workspace, and the slice of data that role sees."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    # Store managers see this unit and everything below it; staff see their own customers.
    org_unit = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.SET_NULL)
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL)
    # Unmasked phone numbers / emails. Owners and admins always have it.
    can_view_pii = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="membership_unique")]


class ApiKey(models.Model):
    """A bearer key for the JSON API, scoped to one workspace. Only its SHA-256 is stored."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class AuditEntry(models.Model):
    """Who did what to which object: exports, merges, key changes, permission changes."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"])]
