"""WeCom / Official Account services: configuration, the callback receiver (one deduplicated
insert into the inbox), the event dispatch the inbox calls and the handlers that need no API
read, the API client factory and the setup check the CLI and the console share.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from siyu.channels.crypto import decrypt_secrets, encrypt_secrets, hint
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.models import Customer, OfficialAccountFollow, StaffRelation
from siyu.customers.rules import IdentityKey, normalize_identity
from siyu.customers.services import Entry, lookup_identities, mark_changed, place_entries
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.org.services import get_workspace
from siyu.tracking.services import record_system_events
from siyu.wecom import endpoints, rules
from siyu.wecom.client import (
    DEFAULT_BASE_URL,
    ConfigError,
    Limits,
    NetworkError,
    RateLimited,
    WecomClient,
    WecomError,
)
from siyu.wecom.crypto import MsgCrypt, valid_aes_key, valid_token
from siyu.wecom.models import ApiCallLog, CallbackReceipt, OfficialAccountApp, WecomApp

log = logging.getLogger("siyu.wecom")
CORP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
AGENT_ID = re.compile(r"^\d{1,20}$")
API_LOG_DAYS = 30


# ---- configuration -------------------------------------------------------------------------


def _check_callback_fields(token: str, aes_key: str, *, aes_required: bool) -> None:
    if not valid_token(token):
        raise InvalidInput("Token 应为 1–32 位字母或数字 / the token must be 1-32 letters or digits", field="token")
    if (aes_key or aes_required) and not valid_aes_key(aes_key):
        raise InvalidInput(
            "EncodingAESKey 应为 43 位字母或数字 / the EncodingAESKey must be 43 letters or digits", field="aes_key"
        )


def _aes_key(stored: str) -> str | None:
    """The stored EncodingAESKey, or None when the stored secrets cannot be read."""
    try:
        return decrypt_secrets(stored).get("aes_key", "")
    except Exception:  # a rotated credentials key: treat as changed
        return None


def configure_wecom(
    workspace: Workspace,
    *,
    corp_id: str,
    agent_id: str,
    secret: str,
    token: str,
    aes_key: str,
    base_url: str | None = None,
) -> WecomApp:
    """Store (or replace) the workspace's WeCom self-built app; the secret and key encrypted."""
    corp_id, agent_id, secret = corp_id.strip(), str(agent_id).strip(), secret.strip()
    if not CORP_ID.match(corp_id):
        raise InvalidInput("企业 ID 格式不正确 / the corp id looks wrong (e.g. ww0123456789abcdef)", field="corp_id")
    if not AGENT_ID.match(agent_id):
        raise InvalidInput("AgentId 应为数字 / the agent id is a number", field="agent_id")
    if not secret or len(secret) > 200:
        raise InvalidInput("请填写应用 Secret / the app secret is required", field="secret")
    _check_callback_fields(token, aes_key, aes_required=True)
    if base_url is not None and not re.match(r"^https?://[^\s/]+(:\d+)?/?$", base_url):
        raise InvalidInput("base URL must be like https://qyapi.weixin.qq.com", field="base_url")
    now = clock.now()
    values = {
        "corp_id": corp_id,
        "agent_id": agent_id,
        "secret": encrypt_secrets({"secret": secret, "aes_key": aes_key}),
        "secret_hint": hint(secret),
        "callback_token": token,
        "base_url": (base_url or DEFAULT_BASE_URL).rstrip("/"),
        "status": WecomApp.Status.UNCHECKED,
        "updated_at": now,
    }
    previous = WecomApp.objects.filter(workspace=workspace).first()
    if previous is None or (previous.corp_id, previous.callback_token, _aes_key(previous.secret)) != (
        corp_id,
        token,
        aes_key,
    ):
        values["callback_verified_at"] = None  # a new token / key needs WeCom to verify the URL again
    app, _ = WecomApp.objects.update_or_create(
        workspace=workspace, defaults=values, create_defaults={**values, "created_at": now}
    )
    endpoints.invalidate(CallbackReceipt.Source.WECOM, workspace.slug)
    return app


def configure_oa(
    workspace: Workspace, *, app_id: str, secret: str, token: str, aes_key: str = ""
) -> OfficialAccountApp:
    """Store (or replace) the workspace's Official Account; plaintext mode without an AES key."""
    app_id, secret, aes_key = app_id.strip(), secret.strip(), (aes_key or "").strip()
    if not APP_ID.match(app_id):
        raise InvalidInput("AppID 格式不正确 / the app id looks wrong (e.g. wx0123456789abcdef)", field="app_id")
    if not secret or len(secret) > 200:
        raise InvalidInput("请填写 AppSecret / the app secret is required", field="secret")
    _check_callback_fields(token, aes_key, aes_required=False)
    now = clock.now()
    values = {
        "app_id": app_id,
        "secret": encrypt_secrets({"secret": secret, "aes_key": aes_key}),
        "secret_hint": hint(secret),
        "callback_token": token,
        "encrypted": bool(aes_key),
        "updated_at": now,
    }
    previous = OfficialAccountApp.objects.filter(workspace=workspace).first()
    if previous is None or (previous.app_id, previous.callback_token, _aes_key(previous.secret)) != (
        app_id,
        token,
        aes_key,
    ):
        values["callback_verified_at"] = None
    app, _ = OfficialAccountApp.objects.update_or_create(
        workspace=workspace, defaults=values, create_defaults={**values, "created_at": now}
    )
    endpoints.invalidate(CallbackReceipt.Source.OA, workspace.slug)
    return app


def callback_url(kind: str, workspace: Workspace) -> str:
    """The URL to paste into WeCom (``kind="wecom"``) or the OA console (``"oa"``)."""
    return f"{settings.PUBLIC_URL}/callbacks/{kind}/{workspace.slug}/"


# ---- callback endpoints ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """What a callback view needs to authenticate a push for one workspace."""

    workspace: Workspace
    app_pk: int
    token: str
    receive_id: str  # corp id (WeCom) or app id (OA)
    crypt: MsgCrypt | None  # None: an OA in plaintext mode


def wecom_endpoint(slug: str) -> tuple[Endpoint, dt.datetime] | None:
    """The endpoint of ``slug`` and the app row's ``updated_at`` (uncached: views go through
    ``siyu.wecom.endpoints``)."""
    app = WecomApp.objects.select_related("workspace").filter(workspace__slug=slug).first()
    if app is None:
        return None
    aes_key = decrypt_secrets(app.secret).get("aes_key", "")
    crypt = MsgCrypt(app.callback_token, aes_key, app.corp_id)
    return Endpoint(app.workspace, app.pk, app.callback_token, app.corp_id, crypt), app.updated_at


def oa_endpoint(slug: str) -> tuple[Endpoint, dt.datetime] | None:
    app = OfficialAccountApp.objects.select_related("workspace").filter(workspace__slug=slug).first()
    if app is None:
        return None
    aes_key = decrypt_secrets(app.secret).get("aes_key", "")
    crypt = MsgCrypt(app.callback_token, aes_key, app.app_id) if aes_key else None
    return Endpoint(app.workspace, app.pk, app.callback_token, app.app_id, crypt), app.updated_at


def record_verification(source: str, endpoint: Endpoint) -> None:
    """WeCom / WeChat checked the callback URL and we answered: the setup check reads this."""
    model = WecomApp if source == CallbackReceipt.Source.WECOM else OfficialAccountApp
    model.objects.filter(pk=endpoint.app_pk).update(callback_verified_at=clock.now())


CHAT_SETTLE = dt.timedelta(seconds=2)


def store_receipt(endpoint: Endpoint, source: str, payload: dict[str, Any]) -> bool:
    """Put one authenticated push in the inbox: one INSERT that the dedupe key's unique
    constraint turns into nothing for a platform retry. True if it was new.

    No parsing beyond the dedupe key and no handler: ``siyu.wecom.inbox`` applies it, so the
    platform gets its answer within milliseconds whatever the event needs (API reads, the
    OneID placement, welcome messages). Written on the caller's connection; the HTTP endpoint
    uses ``receipts.store``, which shares one commit among pushes arriving together."""
    from siyu.wecom.receipts import insert_sql, row  # receipts builds on this module

    with connection.cursor() as cursor:
        cursor.execute(insert_sql(1, connection.vendor), row(endpoint, source, payload))
        return cursor.rowcount == 1


def parse_receipt(source: str, receiver: str, payload: dict[str, Any]) -> rules.Event:
    """The typed event of a stored receipt."""
    if source == CallbackReceipt.Source.WECOM:
        return rules.parse_wecom_event(payload)
    return rules.parse_oa_event(payload, receiver)


# ---- event handlers --------------------------------------------------------------------


def handle_event(workspace: Workspace, event: rules.Event) -> None:
    """The one dispatch from a parsed callback to what it changes (called by the inbox, inside
    the transaction that marks the receipt processed).

    Here: WeCom add / add_half / del external contact and del_follow_user; OA subscribe /
    unsubscribe / SCAN. In ``siyu.wecom.handlers`` (they read the API first): edit_external_contact,
    transfer_fail, change_external_chat and change_external_tag. Anything else stays in its
    receipt only.
    """
    from siyu.wecom import handlers

    if isinstance(event, rules.ExternalContactEvent):
        if not event.user_id or not event.external_user_id:
            return
        if event.change_type in ("add_external_contact", "add_half_external_contact"):
            friend_added(workspace, event)
        elif event.change_type == "del_external_contact":
            friend_deleted(workspace, event, StaffRelation.Status.DELETED_BY_STAFF)
        elif event.change_type == "del_follow_user":
            friend_deleted(workspace, event, StaffRelation.Status.DELETED_BY_CUSTOMER)
        elif event.change_type == "edit_external_contact":
            handlers.contact_edited(workspace, event)
        elif event.change_type == "transfer_fail":
            handlers.transfer_failed(workspace, event)
    elif isinstance(event, rules.ExternalChatEvent) and event.chat_id:
        handlers.chat_changed(workspace, event)
    elif isinstance(event, rules.ExternalTagEvent):
        handlers.corp_tags_changed(workspace, event)
    elif isinstance(event, rules.OaEvent) and event.openid and event.app_id:
        if event.event in ("subscribe", "scan"):
            oa_followed(workspace, event)
        elif event.event == "unsubscribe":
            oa_unfollowed(workspace, event)


def staff_for_userid(workspace: Workspace, userid: str) -> Staff:
    """The staff member with this WeCom userid; WeCom vouches for members siyu has not
    imported yet, so they are created at headquarters (named by userid until synced)."""
    staff = Staff.objects.filter(workspace=workspace, wecom_userid=userid).first()
    if staff is not None:
        return staff
    hq = OrgUnit.objects.filter(workspace=workspace, kind=OrgUnit.Kind.HQ).order_by("pk").first()
    if hq is None:
        raise NotFound(f"workspace {workspace.slug} has no headquarters unit")
    staff, _ = Staff.objects.get_or_create(
        workspace=workspace, wecom_userid=userid, defaults={"org_unit": hq, "name": userid[:100]}
    )
    return staff


def _place(workspace: Workspace, key: IdentityKey, source_channel: str) -> int:
    [placement] = place_entries(
        workspace, [Entry(index=0, keys=[key], profile={"source_channel": source_channel})], source=source_channel
    )
    return placement.customer_id


def friend_added(workspace: Workspace, event: rules.ExternalContactEvent) -> int:
    """A customer and a staff member became WeCom friends: resolve or create the customer by
    external_userid, (re)activate the relation with its ``state``, make the staff member the
    owner if the customer has none, and put ``wecom_friend_added`` on the timeline."""
    at = event.at or clock.now()
    staff = staff_for_userid(workspace, event.user_id)
    customer_id = _place(workspace, normalize_identity("wecom_external_userid", event.external_user_id), "wecom")
    StaffRelation.objects.update_or_create(
        staff=staff,
        customer_id=customer_id,
        defaults={
            "workspace": workspace,
            "added_at": at,
            "state": event.state[:64],
            "status": StaffRelation.Status.ACTIVE,
            "status_changed_at": at,
        },
    )
    Customer.objects.filter(pk=customer_id, owner_staff__isnull=True).update(owner_staff=staff)
    properties = {
        "staff_id": staff.pk,
        "userid": event.user_id,
        "state": event.state,
        "half": event.change_type == "add_half_external_contact",
    }
    record_system_events(workspace.pk, [(customer_id, "wecom_friend_added", properties, at)], source="wecom")
    if event.state:
        _attribute(workspace, state=event.state, customer_id=customer_id, staff_id=staff.pk, at=at,
                   welcome_code=event.welcome_code)  # fmt: skip
    return customer_id


def _attribute(
    workspace: Workspace, *, state: str, customer_id: int, staff_id: int | None, at, welcome_code: str = ""
) -> None:
    """Credit the add to the channel code with this ``state`` (tags, owner, first touch) and,
    for a WeCom add with a welcome code, queue the code's welcome message with what this
    transaction commits (``batch_apply.queue_welcomes``)."""
    from siyu.acquisition.services import record_add
    from siyu.wecom.batch_apply import queue_welcomes

    welcome = record_add(workspace, state=state, customer_id=customer_id, staff_id=staff_id, at=at)
    if welcome is not None and welcome_code:
        body = welcome.body(welcome_code)
        queue_welcomes(workspace.pk, [body])


def friend_deleted(workspace: Workspace, event: rules.ExternalContactEvent, status: str) -> None:
    """The staff member deleted the customer (``deleted_by_staff``) or the customer deleted
    the staff member (``deleted_by_customer``). Unknown customers or staff change nothing."""
    key = normalize_identity("wecom_external_userid", event.external_user_id)
    customer_id = lookup_identities(workspace.pk, [key]).get(key)
    staff = Staff.objects.filter(workspace=workspace, wecom_userid=event.user_id).first()
    if customer_id is None or staff is None:
        return
    at = event.at or clock.now()
    changed = StaffRelation.objects.filter(staff=staff, customer_id=customer_id).update(
        status=status, status_changed_at=at
    )
    if not changed:
        return
    properties = {"staff_id": staff.pk, "userid": event.user_id, "by": status, "source": event.source}
    record_system_events(workspace.pk, [(customer_id, "wecom_friend_deleted", properties, at)], source="wecom")
    mark_changed(workspace.pk, [customer_id])


def oa_followed(workspace: Workspace, event: rules.OaEvent) -> int:
    """subscribe (possibly through a parametric QR code) or SCAN by a follower: the openid
    identity, the follow row (scene of the subscription), and ``oa_subscribed`` /
    ``oa_scanned`` on the timeline."""
    at = event.at or clock.now()
    customer_id = _place(workspace, normalize_identity("wechat_openid", event.openid, event.app_id), "official_account")
    follow = OfficialAccountFollow.objects.filter(workspace=workspace, app_id=event.app_id, openid=event.openid).first()
    subscribing = event.event == "subscribe"
    if follow is None:
        OfficialAccountFollow.objects.create(
            workspace=workspace,
            customer_id=customer_id,
            app_id=event.app_id,
            openid=event.openid,
            subscribed=True,
            scene=event.scene[:64],
            subscribed_at=at,
        )
    elif subscribing or not follow.subscribed:
        follow.customer_id = customer_id
        follow.subscribed, follow.subscribed_at, follow.unsubscribed_at = True, at, None
        follow.scene = event.scene[:64]
        follow.save(update_fields=["customer", "subscribed", "subscribed_at", "unsubscribed_at", "scene"])
    name = "oa_subscribed" if subscribing else "oa_scanned"
    properties = {"app_id": event.app_id, "scene": event.scene}
    record_system_events(workspace.pk, [(customer_id, name, properties, at)], source="official_account")
    if event.scene:
        _attribute(workspace, state=event.scene, customer_id=customer_id, staff_id=None, at=at)
    return customer_id


def oa_unfollowed(workspace: Workspace, event: rules.OaEvent) -> None:
    at = event.at or clock.now()
    changed = OfficialAccountFollow.objects.filter(
        workspace=workspace, app_id=event.app_id, openid=event.openid, subscribed=True
    ).update(subscribed=False, unsubscribed_at=at)
    if not changed:
        return
    key = normalize_identity("wechat_openid", event.openid, event.app_id)
    customer_id = lookup_identities(workspace.pk, [key]).get(key)
    if customer_id is not None:
        properties = {"app_id": event.app_id}
        record_system_events(
            workspace.pk, [(customer_id, "oa_unsubscribed", properties, at)], source="official_account"
        )


# ---- API client, logging, setup check ----------------------------------------------------


def client_for(workspace: Workspace, **options: Any) -> WecomClient:
    """A client for the workspace's app; every call lands in ``ApiCallLog``."""
    app = WecomApp.objects.filter(workspace=workspace).first()
    if app is None:
        raise NotFound("企业微信尚未配置 / WeCom is not configured: run siyu wecom configure")
    secret = decrypt_secrets(app.secret).get("secret", "")
    workspace_id = workspace.pk

    def record(api: str, errcode: int | None, errmsg: str, duration_ms: int) -> None:
        ApiCallLog.objects.create(
            workspace_id=workspace_id,
            api=api[:100],
            errcode=errcode,
            errmsg=errmsg,
            duration_ms=duration_ms,
            at=clock.now(),
        )

    options.setdefault("limits", Limits())
    return WecomClient(app.corp_id, secret, base_url=app.base_url, cache=cache, recorder=record, **options)


def prune_api_logs(*, days: int = API_LOG_DAYS) -> int:
    """Drop API call logs older than ``days`` (one DELETE on the time index)."""
    deleted, _ = ApiCallLog.objects.filter(at__lt=clock.now() - dt.timedelta(days=days)).delete()
    return deleted


@dataclass(frozen=True)
class CheckItem:
    key: str  # configured / token / customer_contact / callback
    ok: bool
    message_zh: str
    message_en: str
    errcode: int | None = None
    detail: str = ""  # WeCom's errmsg, for the operator (e.g. the IP WeCom saw)


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    items: list[CheckItem] = field(default_factory=list)

    def failed(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]


SKIPPED = ("未检查：请先修复上一项。", "Not checked: fix the item above first.")


def _failure(key: str, exc: WecomError) -> CheckItem:
    if isinstance(exc, ConfigError):
        return CheckItem(key, False, exc.message_zh, exc.message_en, exc.errcode, exc.errmsg)
    if isinstance(exc, NetworkError):
        return CheckItem(
            key,
            False,
            "无法连接企业微信服务器，请检查网络与代理。",
            "Cannot reach the WeCom server: check the network.",
            None,
            exc.errmsg,
        )
    if isinstance(exc, RateLimited):
        return CheckItem(
            key,
            False,
            f"企业微信限流中，请 {int(exc.retry_after)} 秒后再试。",
            f"WeCom rate-limits this API: try again in {int(exc.retry_after)} s.",
            exc.errcode,
            exc.errmsg,
        )
    return CheckItem(
        key,
        False,
        f"企业微信返回错误码 {exc.errcode}。",
        f"WeCom answered errcode {exc.errcode}.",
        exc.errcode,
        exc.errmsg,
    )


def check(workspace: Workspace, **client_options: Any) -> CheckReport:
    """What is wrong with the workspace's WeCom setup, item by item, in Chinese and English:
    the app secret and corp id (a token), customer-contact permission, trusted IP and
    visibility (``get_follow_user_list``), and whether WeCom has verified the callback URL."""
    app = WecomApp.objects.filter(workspace=workspace).first()
    if app is None:
        item = CheckItem(
            "configured",
            False,
            "尚未配置企业微信：请运行 siyu wecom configure。",
            "WeCom is not configured: run siyu wecom configure.",
        )
        return CheckReport(False, [item])
    items: list[CheckItem] = []
    with client_for(workspace, **client_options) as client:
        try:
            client.token(refresh=True)
            items.append(CheckItem("token", True, "Secret 与企业 ID 正确。", "Secret and corp id are right."))
        except WecomError as exc:
            items.append(_failure("token", exc))
        if items[-1].ok:
            try:
                followers = client.get("externalcontact/get_follow_user_list").get("follow_user", [])
                items.append(
                    CheckItem(
                        "customer_contact",
                        True,
                        f"客户联系接口可用（{len(followers)} 名成员已开通客户联系）。",
                        f"Customer-contact API works ({len(followers)} members have customer contact).",
                    )
                )
            except WecomError as exc:
                items.append(_failure("customer_contact", exc))
        else:
            items.append(CheckItem("customer_contact", False, *SKIPPED))
    verified = (
        app.callback_verified_at is not None
        or CallbackReceipt.objects.filter(workspace=workspace, source=CallbackReceipt.Source.WECOM).exists()
    )
    if verified:
        items.append(
            CheckItem("callback", True, "回调 URL 已通过企业微信验证。", "WeCom has verified the callback URL.")
        )
    else:
        url = callback_url("wecom", workspace)
        items.append(
            CheckItem(
                "callback",
                False,
                f"回调 URL 尚未通过验证：请在自建应用「接收消息 → 设置API接收」填写 {url} 及相同的 Token、"
                "EncodingAESKey 并保存。",
                f"The callback URL was never verified: enter {url} with the same Token and EncodingAESKey under "
                "the app's 接收消息 → 设置API接收, and save.",
            )
        )
    report = CheckReport(all(item.ok for item in items), items)
    WecomApp.objects.filter(pk=app.pk).update(
        status=WecomApp.Status.OK if report.ok else WecomApp.Status.FAILING,
        last_check_at=clock.now(),
        last_check_ok=report.ok,
        last_check_detail=[
            {"key": i.key, "ok": i.ok, "errcode": i.errcode, "message": i.message_zh, "detail": i.detail} for i in items
        ],
    )
    return report


def check_workspace(slug: str, **client_options: Any) -> CheckReport:
    return check(get_workspace(slug), **client_options)
