"""Channel accounts, compliance settings, consent and the global opt-out: the writes."""

from __future__ import annotations

import datetime as dt
import secrets as pysecrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from siyu.channels import crypto
from siyu.channels.base import AccountConfig, Health, SettingsError
from siyu.channels.models import ChannelAccount, ComplianceSettings, Medium, OptOut, WecomCapMode
from siyu.channels.registry import get_channel
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import adapt, id_list_condition, insert_rows
from siyu.customers.models import Consent, Identity
from siyu.customers.rules import normalize_identity
from siyu.customers.services import mark_changed
from siyu.org.models import Workspace
from siyu.org.services import audit
from siyu.tracking.services import record_system_events

DEFAULT_OPTOUT_KEYWORDS = ["R", "T", "TD", "退订"]
# Settings that say where credentials are sent: changing one requires the credentials again.
DESTINATION_SETTINGS = ("host", "port", "endpoint", "url")


# ---- accounts ------------------------------------------------------------------------


def create_account(
    workspace: Workspace,
    *,
    name: str,
    provider: str,
    medium: str,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    rate_per_second: float = 100.0,
    user=None,
) -> ChannelAccount:
    """Validate and store a channel account; the secrets are encrypted before they are stored."""
    try:
        channel = get_channel(provider)
    except LookupError as exc:
        raise InvalidInput(str(exc), field="provider") from None
    if medium not in Medium.values:
        raise InvalidInput(f"unknown medium '{medium}'", field="medium")
    if medium not in channel.media:
        raise InvalidInput(f"{provider} cannot send {medium} (only {', '.join(channel.media)})", field="medium")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("名称必填，最多 100 字 / a name of 1-100 characters is required", field="name")
    if not (0 < rate_per_second <= 100_000):
        raise InvalidInput("rate_per_second must be between 0 and 100000", field="rate_per_second")
    settings, secrets = dict(settings or {}), dict(secrets or {})
    _validate(channel, settings, secrets)
    # A WeCom message is not an API call (one add_msg_template carries up to 10,000): a low rate
    # would cut a staff member's customers into many small tasks, each one to confirm.
    rate_per_second = max(rate_per_second, float(getattr(channel, "min_rate_per_second", 0)))
    if hasattr(channel, "validate_workspace"):  # e.g. WeCom: the workspace's app must be configured
        try:
            channel.validate_workspace(workspace.pk)
        except SettingsError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
    if ChannelAccount.objects.filter(workspace=workspace, name=name).exists():
        raise InvalidInput(f"已有同名渠道账号 / an account named '{name}' exists", field="name")
    now = clock.now()
    account = ChannelAccount.objects.create(
        workspace=workspace,
        name=name,
        provider=provider,
        medium=medium,
        settings=settings,
        secret=crypto.encrypt_secrets(secrets) if secrets else "",
        secret_hint=_hint(secrets),
        callback_token=pysecrets.token_urlsafe(24),
        rate_per_second=rate_per_second,
        created_at=now,
        updated_at=now,
    )
    audit(workspace=workspace, action="channel_account.create", target=f"channel_account:{account.pk}", user=user)
    return account


def update_account(
    account: ChannelAccount,
    *,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    rate_per_second: float | None = None,
    user=None,
) -> ChannelAccount:
    """Change settings and/or credentials. Secret fields left out (or empty) keep their value."""
    channel = get_channel(account.provider)
    new_settings = dict(account.settings) if settings is None else dict(settings)
    moved = [k for k in DESTINATION_SETTINGS if new_settings.get(k) != account.settings.get(k)]
    fresh = {k: v for k, v in (secrets or {}).items() if v not in ("", None)}
    if moved and channel.secret_fields and set(fresh) < set(channel.secret_fields):
        # Otherwise whoever may edit settings could point the account at their own server and
        # have the next healthcheck or send hand it the stored password.
        raise InvalidInput(
            "修改服务器地址时须重新填写全部凭证 / re-enter every credential when the server address changes",
            field=f"secrets.{next(k for k in channel.secret_fields if k not in fresh)}",
        )
    new_secrets = crypto.decrypt_secrets(account.secret)
    new_secrets.update({k: v for k, v in (secrets or {}).items() if v not in ("", None)})
    _validate(channel, new_settings, new_secrets)
    if rate_per_second is not None:
        if not (0 < rate_per_second <= 100_000):
            raise InvalidInput("rate_per_second must be between 0 and 100000", field="rate_per_second")
        account.rate_per_second = rate_per_second
    account.settings = new_settings
    account.secret = crypto.encrypt_secrets(new_secrets) if new_secrets else ""
    account.secret_hint = _hint(new_secrets)
    account.updated_at = clock.now()
    account.save()
    audit(
        workspace=account.workspace, action="channel_account.update", target=f"channel_account:{account.pk}", user=user
    )
    return account


def _validate(channel, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
    for key in settings:
        if key not in channel.setting_fields:
            raise InvalidInput(f"unknown setting '{key}'", field=f"settings.{key}")
    for key in secrets:
        if key not in channel.secret_fields:
            raise InvalidInput(f"unknown credential '{key}'", field=f"secrets.{key}")
    try:
        channel.validate(settings, secrets)
    except SettingsError as exc:
        raise InvalidInput(exc.message, field=exc.field) from None


def _hint(secrets: dict[str, Any]) -> str:
    values = [str(v) for v in secrets.values() if v]
    return crypto.hint(values[-1]) if values else ""


def account_config(account: ChannelAccount) -> AccountConfig:
    return AccountConfig(
        id=account.pk,
        workspace_id=account.workspace_id,
        provider=account.provider,
        medium=account.medium,
        settings=dict(account.settings),
        secrets=crypto.decrypt_secrets(account.secret),
        callback_token=account.callback_token,
    )


def disable_account(account_id: int, reason: str) -> None:
    """A permanent provider error: stop the account and tell the operator (its queue waits)."""
    now = clock.now()
    updated = ChannelAccount.objects.filter(pk=account_id, status=ChannelAccount.Status.ACTIVE).update(
        status=ChannelAccount.Status.DISABLED, disabled_reason=reason[:500], disabled_at=now, updated_at=now
    )
    if updated:
        account = ChannelAccount.objects.select_related("workspace").get(pk=account_id)
        audit(
            workspace=account.workspace,
            action="channel_account.disabled",
            target=f"channel_account:{account_id}",
            details={"reason": reason[:500]},
        )


def enable_account(account: ChannelAccount, *, user=None) -> None:
    account.status = ChannelAccount.Status.ACTIVE
    account.disabled_reason = ""
    account.disabled_at = None
    account.updated_at = clock.now()
    account.save()
    audit(
        workspace=account.workspace, action="channel_account.enable", target=f"channel_account:{account.pk}", user=user
    )


def check_account(account: ChannelAccount) -> Health:
    """Run the channel's healthcheck and remember the answer for the console."""
    try:
        health = get_channel(account.provider).healthcheck(account_config(account))
    except Exception as exc:  # a healthcheck must report, never crash the page
        health = Health(False, f"{type(exc).__name__}: {exc}"[:500])
    account.last_check_at = clock.now()
    account.last_check_ok = health.ok
    account.last_check_detail = health.detail[:500]
    account.save(update_fields=["last_check_at", "last_check_ok", "last_check_detail"])
    return health


def account_by_callback_token(provider: str, token: str) -> ChannelAccount | None:
    """The account an inbound callback URL names; None for a wrong or unknown token."""
    if not token or len(token) > 64:
        return None
    account = ChannelAccount.objects.filter(callback_token=token, provider=provider).first()
    if account is None or not pysecrets.compare_digest(account.callback_token, token):
        return None
    return account


# ---- compliance settings ---------------------------------------------------------------


def compliance_settings(workspace_id: int) -> ComplianceSettings:
    found = ComplianceSettings.objects.filter(workspace_id=workspace_id).first()
    if found is not None:
        return found
    obj, _ = ComplianceSettings.objects.get_or_create(
        workspace_id=workspace_id,
        defaults={"optout_keywords": list(DEFAULT_OPTOUT_KEYWORDS), "updated_at": clock.now()},
    )
    return obj


def update_compliance_settings(workspace: Workspace, *, user=None, **changes: Any) -> ComplianceSettings:
    obj = compliance_settings(workspace.pk)
    for name in ("daily_cap", "weekly_cap"):
        if name in changes:
            value = changes[name]
            if not isinstance(value, int) or isinstance(value, bool) or not (0 <= value <= 1000):
                raise InvalidInput("must be a whole number from 0 (no cap) to 1000", field=name)
            setattr(obj, name, value)
    if "channel_caps" in changes:
        caps = changes["channel_caps"] or {}
        if not isinstance(caps, dict):
            raise InvalidInput('must be an object like {"sms": {"day": 1, "week": 3}}', field="channel_caps")
        for medium, limits in caps.items():
            if medium not in Medium.values:
                raise InvalidInput(f"unknown channel '{medium}'", field=f"channel_caps.{medium}")
            if not isinstance(limits, dict) or set(limits) - {"day", "week"}:
                raise InvalidInput("give day and/or week", field=f"channel_caps.{medium}")
            for period, value in limits.items():
                if not isinstance(value, int) or isinstance(value, bool) or not (0 <= value <= 1000):
                    raise InvalidInput("must be a whole number 0-1000", field=f"channel_caps.{medium}.{period}")
        obj.channel_caps = caps
    for name in ("window_start", "window_end"):
        if name in changes:
            value = changes[name]
            if isinstance(value, str):
                try:
                    value = dt.time.fromisoformat(value)
                except ValueError:
                    raise InvalidInput("use HH:MM, e.g. 08:00", field=name) from None
            if not isinstance(value, dt.time):
                raise InvalidInput("use HH:MM, e.g. 08:00", field=name)
            setattr(obj, name, value)
    if obj.window_start == obj.window_end:
        raise InvalidInput("the window must not start and end at the same time", field="window_end")
    if "wecom_cap_mode" in changes:
        if changes["wecom_cap_mode"] not in WecomCapMode.values:
            raise InvalidInput("须为 month / week / day / must be month, week or day", field="wecom_cap_mode")
        obj.wecom_cap_mode = changes["wecom_cap_mode"]
    if "sms_optout_suffix" in changes:
        suffix = str(changes["sms_optout_suffix"] or "").strip()
        if not suffix or len(suffix) > 32:
            raise InvalidInput("营销短信必须带退订方式（1-32 字）/ 1-32 characters required", field="sms_optout_suffix")
        obj.sms_optout_suffix = suffix
    if "optout_keywords" in changes:
        words = [str(w).strip() for w in changes["optout_keywords"] or [] if str(w).strip()]
        if not words or any(len(w) > 16 for w in words):
            raise InvalidInput("give 1 or more keywords of at most 16 characters", field="optout_keywords")
        obj.optout_keywords = words
    obj.updated_at = clock.now()
    obj.save()
    audit(workspace=workspace, action="compliance.update", target="compliance", user=user, details=_jsonable(changes))
    return obj


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.time) else v) for k, v in changes.items()}


def is_optout_reply(workspace_id: int, text: str) -> bool:
    """An SMS reply that means "stop": one of the keywords, alone (case and spaces ignored)."""
    words = compliance_settings(workspace_id).optout_keywords or DEFAULT_OPTOUT_KEYWORDS
    normalized = "".join(text.split()).upper()
    return normalized in {w.upper() for w in words}


# ---- opt-out and consent ---------------------------------------------------------------


def record_opt_out(workspace_id: int, customer_ids: Iterable[int], *, source: str, detail: str = "") -> int:
    """Opt these customers out of all marketing, on every channel. Returns how many were new."""
    ids = sorted({int(c) for c in customer_ids})
    if not ids:
        return 0
    now = clock.now()
    with transaction.atomic():
        condition, params = id_list_condition("customer_id", ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id FROM channels_optout WHERE workspace_id = %s AND {condition}",
                [workspace_id, *params],
            )
            already = {row[0] for row in cursor.fetchall()}
        new = [c for c in ids if c not in already]
        insert_rows(
            "channels_optout",
            {"workspace_id": "int", "customer_id": "int", "source": "text", "detail": "text", "created_at": "datetime"},
            [(workspace_id, c, source, detail[:200], now) for c in new],
            ignore_conflicts=True,
        )
        if new:
            _timeline(workspace_id, new, "opted_out", {"source": source, "detail": detail[:200]}, now)
            mark_changed(workspace_id, new)
            from siyu.messaging.services import emit_domain_events

            emit_domain_events(
                workspace_id,
                "customer.opted_out",
                [{"customer_id": c, "source": source, "at": now.isoformat()} for c in new],
                keys=[f"customer.opted_out:{c}:{now.timestamp():.0f}" for c in new],
            )
    return len(new)


def withdraw_opt_out(workspace_id: int, customer_id: int, *, source: str) -> bool:
    """The customer asked to hear from us again (e.g. re-subscribed in the console)."""
    with transaction.atomic():
        deleted, _ = OptOut.objects.filter(workspace_id=workspace_id, customer_id=customer_id).delete()
        if deleted:
            now = clock.now()
            _timeline(workspace_id, [customer_id], "opted_in", {"source": source}, now)
            mark_changed(workspace_id, [customer_id])
    return bool(deleted)


@dataclass(frozen=True)
class ConsentChange:
    customer_id: int
    channel: str
    purpose: str
    granted: bool
    source: str


def check_consent_change(change: ConsentChange) -> None:
    """Raise InvalidInput naming the bad field; no database."""
    if change.channel not in Consent.Channel.values:
        raise InvalidInput(f"unknown channel '{change.channel}'", field="channel")
    if change.purpose not in Consent.Purpose.values:
        raise InvalidInput(f"unknown purpose '{change.purpose}'", field="purpose")
    if not change.source or len(change.source) > 64:
        raise InvalidInput("source (1-64 characters) is required: where the consent was given", field="source")


def set_consents(workspace_id: int, changes: list[ConsentChange]) -> list[int]:
    """Record grants and withdrawals in one upsert (with source and time), put them on the
    timeline and mark the customers for segment refresh. Returns the consent ids in order.

    Each change must have passed ``check_consent_change``; for one customer, channel and
    purpose the last change in the list wins.
    """
    if not changes:
        return []
    now = clock.now()
    last = {(c.customer_id, c.channel, c.purpose): c for c in changes}
    rows = [
        (workspace_id, c.customer_id, c.channel, c.purpose, "granted" if c.granted else "revoked", c.source, now)
        for c in last.values()
    ]
    at = adapt(now, "datetime")
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            cursor.execute(
                "INSERT INTO customers_consent (workspace_id, customer_id, channel, purpose, status, source, updated_at) "
                f"VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s)'] * len(chunk))} "
                "ON CONFLICT (customer_id, channel, purpose) DO UPDATE SET status = excluded.status, "
                "source = excluded.source, updated_at = excluded.updated_at, workspace_id = excluded.workspace_id",
                [v if not isinstance(v, dt.datetime) else at for row in chunk for v in row],
            )
        ids = {
            (cid, channel, purpose): pk
            for pk, cid, channel, purpose in Consent.objects.filter(
                workspace_id=workspace_id, customer_id__in={c.customer_id for c in changes}
            ).values_list("id", "customer_id", "channel", "purpose")
        }
        record_system_events(
            workspace_id,
            [
                (
                    c.customer_id,
                    "consent_granted" if c.granted else "consent_revoked",
                    {"channel": c.channel, "purpose": c.purpose, "source": c.source},
                    now,
                )
                for c in last.values()
            ],
            source="compliance",
        )
        mark_changed(workspace_id, {c.customer_id for c in last.values()})
    return [ids[(c.customer_id, c.channel, c.purpose)] for c in changes]


def set_consent(
    workspace_id: int, customer_id: int, *, channel: str, purpose: str, granted: bool, source: str
) -> Consent:
    """Record one grant or withdrawal, with where it came from and when."""
    change = ConsentChange(customer_id, channel, purpose, granted, source)
    check_consent_change(change)
    [pk] = set_consents(workspace_id, [change])
    return Consent.objects.get(pk=pk)


def _timeline(workspace_id: int, customer_ids: list[int], name: str, properties: dict[str, Any], now) -> None:
    record_system_events(workspace_id, [(c, name, properties, now) for c in customer_ids], source="compliance")


ADDRESS_IDENTITY = {"sms": "phone", "email": "email"}


def customers_for_addresses(workspace_id: int, medium: str, addresses: list[str]) -> dict[str, list[int]]:
    """For each phone / email (as given), the customers holding it: one query for them all."""
    if medium not in ADDRESS_IDENTITY:
        raise NotFound(f"no address lookup for {medium}")
    normalized: dict[str, str] = {}
    for address in addresses:
        try:
            normalized[address] = normalize_identity(ADDRESS_IDENTITY[medium], address).value
        except InvalidInput:
            continue
    holders: dict[str, list[int]] = defaultdict(list)
    for value, customer_id in Identity.objects.filter(
        workspace_id=workspace_id, type=ADDRESS_IDENTITY[medium], app_id="", value__in=set(normalized.values())
    ).values_list("value", "customer_id"):
        holders[value].append(customer_id)
    return {address: holders.get(normalized.get(address, ""), []) for address in addresses}


def customer_for_address(workspace_id: int, medium: str, address: str) -> list[int]:
    """Customers holding this phone / email (normalised as identities are)."""
    return customers_for_addresses(workspace_id, medium, [address])[address]
