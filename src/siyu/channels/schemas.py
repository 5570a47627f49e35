"""API shapes of channel accounts, compliance settings, opt-outs and consent.

Account answers never carry credentials: only ``secret_hint`` (the last characters of one
secret), so a leaked API response or log line cannot be used to send as the brand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.urls import NoReverseMatch
from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from siyu.channels.models import ChannelAccount, ComplianceSettings, OptOut
from siyu.core.batch import find_nul
from siyu.core.errors import InvalidInput
from siyu.core.limits import MAX_ID


def reject_nul(body: Schema) -> None:
    """PostgreSQL text and JSON cannot hold NUL: answer a field error instead of a 500."""
    where = find_nul(body.model_dump())
    if where is not None:
        raise InvalidInput("contains a NUL (\\u0000) character", field=where)


class AccountIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    provider: str = Field(max_length=32, description="a provider key, e.g. sandbox, aliyun_sms, tencent_sms, smtp")
    medium: str = Field(max_length=24, description="sms, email, app, wecom or official_account")
    settings: dict[str, Any] = Field(default_factory=dict, description="what may be shown: sign name, endpoint, …")
    secrets: dict[str, Any] = Field(
        default_factory=dict, description="credentials; stored encrypted and never answered back"
    )
    rate_per_second: float = Field(default=100.0, gt=0, le=100_000)


class AccountPatch(Schema):
    """Fields left out keep their value; a secret left out or empty keeps the stored one."""

    model_config = ConfigDict(extra="forbid")
    settings: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)


class AccountOut(Schema):
    id: int
    name: str
    provider: str
    medium: str
    settings: dict[str, Any]
    secret_hint: str
    rate_per_second: float
    status: str
    disabled_reason: str
    disabled_at: dt.datetime | None
    last_check_at: dt.datetime | None
    last_check_ok: bool | None
    last_check_detail: str
    callback_urls: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


def account_out(account: ChannelAccount) -> dict[str, Any]:
    return {
        "id": account.pk,
        "name": account.name,
        "provider": account.provider,
        "medium": account.medium,
        "settings": account.settings,
        "secret_hint": account.secret_hint,
        "rate_per_second": account.rate_per_second,
        "status": account.status,
        "disabled_reason": account.disabled_reason,
        "disabled_at": account.disabled_at,
        "last_check_at": account.last_check_at,
        "last_check_ok": account.last_check_ok,
        "last_check_detail": account.last_check_detail,
        "callback_urls": callback_urls(account),
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


def callback_urls(account: ChannelAccount) -> dict[str, str]:
    """What the operator pastes into the provider's console (SMS receipts and replies); ``{}`` otherwise."""
    try:
        from siyu.channels.sms.urls import callback_urls as sms_callback_urls
    except ImportError:  # the SMS channels are optional
        return {}
    try:
        return dict(sms_callback_urls(account))
    except NoReverseMatch:  # the callback routes are not mounted in this deployment
        return {}


class HealthOut(Schema):
    ok: bool
    detail: str
    checked_at: dt.datetime | None


class ComplianceIn(Schema):
    """Fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")
    daily_cap: int | None = Field(default=None, description="marketing messages per customer per day, all channels")
    weekly_cap: int | None = Field(default=None, description="… per 7 local days; 0 = no cap")
    channel_caps: dict[str, dict[str, int]] | None = Field(default=None, description='{"sms": {"day": 1, "week": 3}}')
    window_start: str | None = Field(default=None, max_length=16, description="HH:MM, workspace time zone")
    window_end: str | None = Field(default=None, max_length=16, description="HH:MM")
    sms_optout_suffix: str | None = Field(default=None, max_length=32)
    optout_keywords: list[str] | None = Field(default=None, max_length=50)
    wecom_cap_mode: str | None = Field(
        default=None,
        max_length=8,
        description="WeCom mass messages per customer: month (days in the month, WeCom's default), week (7 per 7 days) "
        "or day (1 a day)",
    )


class ComplianceOut(Schema):
    daily_cap: int
    weekly_cap: int
    channel_caps: dict[str, dict[str, int]]
    window_start: str
    window_end: str
    time_zone: str
    sms_optout_suffix: str
    optout_keywords: list[str]
    wecom_cap_mode: str
    updated_at: dt.datetime


def compliance_out(obj: ComplianceSettings, time_zone: str) -> dict[str, Any]:
    return {
        "daily_cap": obj.daily_cap,
        "weekly_cap": obj.weekly_cap,
        "channel_caps": obj.channel_caps or {},
        "window_start": _hhmm(obj.window_start),
        "window_end": _hhmm(obj.window_end),
        "time_zone": time_zone,
        "sms_optout_suffix": obj.sms_optout_suffix,
        "optout_keywords": list(obj.optout_keywords or []),
        "wecom_cap_mode": obj.wecom_cap_mode,
        "updated_at": obj.updated_at,
    }


def _hhmm(value: Any) -> str:
    # A fresh row may still hold the model's string default until it is read back.
    return value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)[:5]


class OptOutItem(Schema):
    """One person to opt out: by customer id, or by the phone or email they hold."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    source: Literal["api", "console", "sms_reply", "email_link", "provider"] = "api"
    detail: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _one_address(self) -> OptOutItem:
        given = [name for name in ("customer_id", "phone", "email") if getattr(self, name) not in (None, "")]
        if len(given) != 1:
            raise ValueError("give exactly one of customer_id, phone or email")
        return self


class OptOutOut(Schema):
    customer_id: int
    source: str
    detail: str
    created_at: dt.datetime


class OptOutPage(Schema):
    items: list[OptOutOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last")


def opt_out_out(row: OptOut) -> dict[str, Any]:
    return {"customer_id": row.customer_id, "source": row.source, "detail": row.detail, "created_at": row.created_at}


class ConsentItem(Schema):
    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1, le=MAX_ID)
    channel: Literal["sms", "email", "wecom", "official_account", "app"]
    purpose: Literal["marketing", "service"] = "marketing"
    granted: bool
    source: str = Field(min_length=1, max_length=64, description="where the consent was given, e.g. 'mini-program'")
