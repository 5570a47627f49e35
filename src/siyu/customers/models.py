"""One customer profile across every carrier (OneID): customers, their identities,
merges, identity conflicts and WeCom staff relations."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from siyu.org.models import OrgUnit, Staff, Workspace


class Customer(models.Model):
    class Gender(models.TextChoices):
        UNKNOWN = "", "未知"
        MALE = "m", "男"
        FEMALE = "f", "女"

    # No separate index on workspace (here and on the other high-volume tables): every
    # composite index below starts with it, and each extra index slows ingestion.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="customers", db_index=False)
    name = models.CharField(max_length=100, blank=True, default="")
    gender = models.CharField(max_length=1, blank=True, default="", choices=Gender.choices)
    birthday = models.DateField(null=True, blank=True)
    province = models.CharField(max_length=32, blank=True, default="")
    city = models.CharField(max_length=32, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    # First-touch acquisition channel (store_code, official_account, mini_program, fission, import, api ...).
    source_channel = models.CharField(max_length=32, blank=True, default="")
    source_detail = models.CharField(max_length=200, blank=True, default="")
    store = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    owner_staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # Set when this profile was merged into another; the id keeps resolving to the survivor.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        # Partial indexes on live rows (merged_into IS NULL): every list query
        # filters on that, and keyset pagination walks id descending.
        indexes = [
            models.Index(fields=["workspace", "-id"], condition=Q(merged_into__isnull=True), name="cust_live_id"),
            models.Index(
                fields=["workspace", "store", "-id"], condition=Q(merged_into__isnull=True), name="cust_store_id"
            ),
            models.Index(
                fields=["workspace", "owner_staff", "-id"],
                condition=Q(merged_into__isnull=True),
                name="cust_staff_id",
            ),
            models.Index(
                fields=["workspace", "source_channel", "-id"],
                condition=Q(merged_into__isnull=True),
                name="cust_channel_id",
            ),
            models.Index(fields=["workspace", "name"], name="cust_name"),
            # New customers per day (dashboard): covering for live rows.
            models.Index(
                fields=["workspace", "first_seen_at"], condition=Q(merged_into__isnull=True), name="cust_first_seen"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


class IdentityType(models.TextChoices):
    PHONE = "phone", "手机号"
    EMAIL = "email", "邮箱"
    WECOM_EXTERNAL_USERID = "wecom_external_userid", "企微外部联系人"
    WECHAT_UNIONID = "wechat_unionid", "微信 UnionID"
    WECHAT_OPENID = "wechat_openid", "微信 OpenID"
    APP_USER_ID = "app_user_id", "App 用户"
    MEMBER_NO = "member_no", "会员号"
    ANONYMOUS_ID = "anonymous_id", "匿名设备"


class Identity(models.Model):
    """One way to recognise a customer. ``(type, app_id, value)`` is unique per workspace;
    ``app_id`` is only set for openids, which are per Official Account / mini program."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities", db_index=False)
    type = models.CharField(max_length=32, choices=IdentityType.choices)
    app_id = models.CharField(max_length=64, blank=True, default="")
    value = models.CharField(max_length=200)
    source = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "type", "app_id", "value"], name="identity_unique"),
        ]
        indexes = [models.Index(fields=["customer", "type"], name="identity_customer")]
        verbose_name_plural = "identities"


class CustomerMerge(models.Model):
    """A kept record of one profile folded into another, with what moved."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200, blank=True, default="")
    moved = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"])]


class IdentityConflict(models.Model):
    """Two profiles that a record says are one person, but that each hold a different
    value of an identity type that a person can have only one of. An operator decides."""

    class Status(models.TextChoices):
        OPEN = "open", "待处理"
        MERGED = "merged", "已合并"
        DISMISSED = "dismissed", "已忽略"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    other_customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    identity_type = models.CharField(max_length=32)
    app_id = models.CharField(max_length=64, blank=True, default="")
    value = models.CharField(max_length=200, blank=True, default="")
    other_value = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "status", "-created_at"])]


class StaffRelation(models.Model):
    """A WeCom friendship between a staff member and a customer (external contact follow info)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "正常"
        DELETED_BY_STAFF = "deleted_by_staff", "员工删除"
        DELETED_BY_CUSTOMER = "deleted_by_customer", "客户删除"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="relations")
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="relations")
    added_at = models.DateTimeField()
    # WeCom add_way: 0 unknown, 1 scanned QR, 2 searched phone, 3 shared card, 4 group chat, ...
    add_way = models.IntegerField(default=0)
    state = models.CharField(max_length=64, blank=True, default="")
    remark = models.CharField(max_length=100, blank=True, default="")
    description = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["staff", "customer"], name="relation_unique")]
        indexes = [
            models.Index(fields=["customer"], name="relation_customer"),
            models.Index(fields=["workspace", "staff", "status"], name="relation_staff_status"),
        ]


class Consent(models.Model):
    """Whether a customer may be reached on a channel for a purpose, and how we know.

    Marketing needs an explicit grant; service (transactional) messages are allowed unless
    revoked. The compliance gate reads this table; segments read it for reachability.
    """

    class Channel(models.TextChoices):
        SMS = "sms", "短信"
        EMAIL = "email", "邮件"
        WECOM = "wecom", "企业微信"
        OFFICIAL_ACCOUNT = "official_account", "公众号"
        APP = "app", "App 推送"

    class Purpose(models.TextChoices):
        MARKETING = "marketing", "营销"
        SERVICE = "service", "服务"

    class Status(models.TextChoices):
        GRANTED = "granted", "已同意"
        REVOKED = "revoked", "已撤回"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents", db_index=False)
    channel = models.CharField(max_length=24, choices=Channel.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "channel", "purpose"], name="consent_unique")]
        indexes = [models.Index(fields=["workspace", "channel", "purpose", "status"], name="consent_lookup")]


class OfficialAccountFollow(models.Model):
    """A customer's follow of an Official Account (subscribe / unsubscribe events)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="oa_follows", db_index=False)
    app_id = models.CharField(max_length=64)
    openid = models.CharField(max_length=128)
    subscribed = models.BooleanField(default=True)
    scene = models.CharField(max_length=64, blank=True, default="")
    subscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "app_id", "openid"], name="oa_follow_unique")]
        indexes = [models.Index(fields=["customer"], name="oa_follow_customer")]


class CustomerChange(models.Model):
    """Customers whose data changed since segments last looked at them (a set, not a log).

    Every write path that can change a segment answer (events, orders, profile, tags,
    relations, consent, layers, merges) adds the customer here with ``INSERT ... ON
    CONFLICT DO NOTHING``; the segment refresher drains the workspace's rows in the same
    transaction that re-evaluates them, so a crash loses nothing.
    """

    customer_id = models.BigIntegerField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
