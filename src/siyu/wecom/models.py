"""WeCom (企业微信) and Official Account (公众号) connections of a workspace, the callbacks they
pushed (a dedupe log), and every server-API call made for the operator to read.

Secrets (the app secret, the EncodingAESKey) are stored encrypted with ``channels.crypto``;
only a hint is ever shown back.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from siyu.org.models import Workspace

PENDING = Q(processed_at__isnull=True, failed_at__isnull=True)


class WecomApp(models.Model):
    """The self-built WeCom app a workspace uses for 客户联系 (one per workspace)."""

    class Status(models.TextChoices):
        UNCHECKED = "unchecked", "未检查"
        OK = "ok", "正常"
        FAILING = "failing", "异常"

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="wecom_app")
    corp_id = models.CharField(max_length=64)
    agent_id = models.CharField(max_length=32)
    # {"secret": ..., "aes_key": ...} encrypted (channels.crypto.encrypt_secrets).
    secret = models.TextField()
    secret_hint = models.CharField(max_length=16, blank=True, default="")
    callback_token = models.CharField(max_length=32)
    base_url = models.CharField(max_length=200, default="https://qyapi.weixin.qq.com")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNCHECKED)
    # Set when WeCom verified the callback URL (a GET with a valid signature was answered).
    callback_verified_at = models.DateTimeField(null=True, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_detail = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.corp_id}/{self.agent_id}"


class OfficialAccountApp(models.Model):
    """A WeChat Official Account (service account) connected to a workspace."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="official_account")
    app_id = models.CharField(max_length=64)
    # {"secret": ..., "aes_key": ...} encrypted; aes_key is empty in plaintext mode.
    secret = models.TextField()
    secret_hint = models.CharField(max_length=16, blank=True, default="")
    callback_token = models.CharField(max_length=32)
    encrypted = models.BooleanField(default=False)  # safe mode (an EncodingAESKey is configured)
    callback_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.app_id


class CallbackReceipt(models.Model):
    """One callback event as received: the inbox the worker applies, and the dedupe log that
    makes platform retries harmless.

    ``dedupe_key`` is built from the fields the platforms document as identifying an event
    (WeCom: Event, ChangeType, UserID, ExternalUserID, CreateTime; OA: FromUserName,
    CreateTime, Event or MsgId). The endpoint only inserts (a duplicate is acknowledged and
    dropped by the unique constraint); ``siyu.wecom.inbox`` applies pending receipts. A receipt
    with ``processed_at`` set is never handled again; one whose handling failed keeps the
    error, counts ``attempts`` and waits until ``next_attempt_at``; after the last attempt it
    gets ``failed_at`` and stays for the operator. ``subject`` (the external contact, chat, tag
    or follower the event is about) keeps one subject's events in arrival order.
    """

    class Source(models.TextChoices):
        WECOM = "wecom", "企业微信"
        OA = "oa", "公众号"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    source = models.CharField(max_length=8, choices=Source.choices)
    dedupe_key = models.CharField(max_length=300)
    event_type = models.CharField(max_length=64, blank=True, default="")
    change_type = models.CharField(max_length=64, blank=True, default="")
    # The corp id / app id the push was addressed to (checked by decryption, or the configured
    # app id in the Official Account's plaintext mode): OA events are parsed with it.
    receiver = models.CharField(max_length=64, blank=True, default="")
    subject = models.CharField(max_length=128, blank=True, default="")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    error = models.CharField(max_length=500, blank=True, default="")
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # None: due now
    failed_at = models.DateTimeField(null=True, blank=True)  # gave up: the operator's to look at

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "dedupe_key"], name="callback_receipt_unique"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-received_at"], name="callback_receipt_recent"),
            # The inbox's claim scans pending rows in id order; both indexes hold pending rows only.
            models.Index(fields=["id"], condition=PENDING, name="callback_receipt_pending"),
            models.Index(
                fields=["workspace", "source", "subject", "id"],
                condition=PENDING & ~Q(subject=""),
                name="callback_receipt_subject",
            ),
        ]


class ApiCallLog(models.Model):
    """One server-API call and its errcode (one insert per call, no update).

    Prune policy: keep 30 days. ``services.prune_api_logs`` deletes older rows in one
    statement; it is meant for the worker's daily housekeeping. The operator reads recent rows.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    api = models.CharField(max_length=100)  # path without the query string (it holds the token)
    errcode = models.IntegerField(null=True, blank=True)  # None: no answer (network error)
    errmsg = models.CharField(max_length=200, blank=True, default="")
    duration_ms = models.IntegerField()
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "-at"], name="api_call_recent")]


from siyu.wecom.sync_models import ExternalGroup, ExternalGroupMember, SyncRun  # noqa: E402,F401
