"""Console forms for channel accounts and compliance settings.

The account form is generated from the channel's ``setting_fields`` / ``secret_fields`` (the
registry is the one list of what a provider needs); ``FIELD_SPECS`` only adds a readable label,
a type and a hint. Fields are named ``settings.<name>`` / ``secrets.<name>``, exactly as the
services name them in ``InvalidInput.field``, so a service error lands on its input.
Validation beyond types stays in the services and the channel's ``validate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.channels.base import Channel
from siyu.channels.models import ChannelAccount, ComplianceSettings, Medium, WecomCapMode


@dataclass(frozen=True)
class FieldSpec:
    label: Any
    kind: str = "text"  # text | int | float | list | choice
    help: Any = ""
    choices: tuple[str, ...] = ()


FIELD_SPECS: dict[str, FieldSpec] = {
    # email (SMTP)
    "host": FieldSpec(_("SMTP 服务器"), help=_("例如 smtp.exmail.qq.com")),
    "port": FieldSpec(_("端口"), "int", _("STARTTLS 一般为 587，SSL 为 465")),
    "security": FieldSpec(_("加密方式"), "choice", choices=("starttls", "ssl", "none")),
    "from_address": FieldSpec(_("发件人地址"), help=_("例如 news@brand.com")),
    "from_name": FieldSpec(_("发件人名称")),
    "reply_to": FieldSpec(_("回复地址（可选）")),
    "unsubscribe_mailto": FieldSpec(_("退订邮箱（可选）"), help=_("收件人也可以发邮件到这个地址退订")),
    "timeout": FieldSpec(_("超时（秒）"), "float"),
    "username": FieldSpec(_("用户名")),
    "password": FieldSpec(_("密码 / 授权码")),
    # SMS
    "endpoint": FieldSpec(_("接口地址（可选）"), help=_("留空使用服务商默认地址")),
    "sign_name": FieldSpec(_("短信签名"), help=_("已在服务商控制台审核通过的签名，例如【某某品牌】中的“某某品牌”")),
    "region": FieldSpec(_("地域（可选）"), help=_("例如 cn-hangzhou / ap-guangzhou")),
    "sdk_app_id": FieldSpec(_("SdkAppId"), help=_("腾讯云短信应用 ID")),
    "access_key_id": FieldSpec("AccessKey ID"),
    "access_key_secret": FieldSpec("AccessKey Secret"),
    "secret_id": FieldSpec("SecretId"),
    "secret_key": FieldSpec("SecretKey"),
    # webhook
    "url": FieldSpec(_("接收地址"), help=_("http(s):// 开头，消息以签名的 POST 请求送达")),
    "events": FieldSpec(_("推送的事件（可选）"), "list", _("多个用逗号分隔")),
    "signing_secret": FieldSpec(_("签名密钥")),
}


def _spec(name: str) -> FieldSpec:
    return FIELD_SPECS.get(name, FieldSpec(name))


def _setting_field(spec: FieldSpec) -> forms.Field:
    common = {"label": spec.label, "help_text": spec.help, "required": False}
    if spec.kind == "int":
        return forms.IntegerField(**common)
    if spec.kind == "float":
        return forms.FloatField(**common)
    if spec.kind == "choice":
        return forms.ChoiceField(choices=[("", "—"), *((c, c) for c in spec.choices)], **common)
    return forms.CharField(max_length=2000, **common)


def account_form(channel: Channel, *, account: ChannelAccount | None = None, data=None) -> forms.Form:
    """A form for a new account of ``channel`` or for editing ``account`` (name and medium fixed)."""
    fields: dict[str, forms.Field] = {}
    if account is None:
        fields["name"] = forms.CharField(label=_("账号名称"), max_length=100, help_text=_("例如：品牌营销短信"))
        fields["medium"] = forms.ChoiceField(
            label=_("用于"), choices=[(m, Medium(m).label) for m in channel.media if m in Medium.values]
        )
    fields["rate_per_second"] = forms.FloatField(
        label=_("每秒最多发送"), initial=100, help_text=_("按服务商给的并发上限填写")
    )
    for name in channel.setting_fields:
        fields[f"settings.{name}"] = _setting_field(_spec(name))
    for name in channel.secret_fields:
        spec = _spec(name)
        hint = (
            _("已保存（%(hint)s），留空则不修改") % {"hint": account.secret_hint}
            if account is not None and account.secret
            else spec.help
        )
        fields[f"secrets.{name}"] = forms.CharField(
            label=spec.label,
            required=False,
            max_length=4000,
            help_text=hint,
            # Never rendered back: the page must not carry a credential.
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
    form_class = type("AccountForm", (forms.Form,), fields)
    initial: dict[str, Any] = {"rate_per_second": 100}
    if account is not None:
        initial["rate_per_second"] = account.rate_per_second
        for name in channel.setting_fields:
            value = account.settings.get(name)
            initial[f"settings.{name}"] = ", ".join(value) if isinstance(value, list) else value
    return form_class(data=data, initial=initial)


def account_values(form: forms.Form, channel: Channel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cleaned settings (empty ones left out, so defaults apply) and secrets."""
    settings: dict[str, Any] = {}
    for name in channel.setting_fields:
        value = form.cleaned_data.get(f"settings.{name}")
        if value in (None, ""):
            continue
        if _spec(name).kind == "list":
            value = [part for part in re.split(r"[,，\s]+", str(value)) if part]
        settings[name] = value
    secrets = {
        name: form.cleaned_data.get(f"secrets.{name}") or ""
        for name in channel.secret_fields
        if form.cleaned_data.get(f"secrets.{name}")
    }
    return settings, secrets


def add_service_error(form: forms.Form, field: str | None, message: str) -> None:
    """Show a service's ``InvalidInput`` at its input (or above the form)."""
    form.add_error(field if field in form.fields else None, message)


# ---- compliance settings -----------------------------------------------------------------------


def _hhmm(value: Any) -> str:
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)[:5]


CAP_MEDIA = [(m, Medium(m).label) for m in Medium.values]


class ComplianceForm(forms.Form):
    daily_cap = forms.IntegerField(label=_("每人每天最多"), help_text=_("所有渠道合计的营销消息条数；0 表示不限"))
    weekly_cap = forms.IntegerField(label=_("每人每 7 天最多"), help_text=_("所有渠道合计；0 表示不限"))
    window_start = forms.TimeField(
        label=_("可发送时段开始"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    window_end = forms.TimeField(
        label=_("可发送时段结束"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    sms_optout_suffix = forms.CharField(
        label=_("营销短信退订提示"),
        max_length=32,
        help_text=_("自动加在每条营销短信末尾，例如“拒收请回复R”"),
    )
    wecom_cap_mode = forms.ChoiceField(
        label=_("企业微信群发上限（每位客户）"),
        choices=WecomCapMode.choices,
        required=False,  # left out: unchanged
        help_text=_("与企业微信管理后台「客户联系 → 群发」的设置保持一致；超出的客户不生成群发任务"),
    )
    optout_keywords = forms.CharField(
        label=_("退订关键词"),
        max_length=500,
        help_text=_("客户回复这些词之一即退订，多个用逗号或空格分隔，不区分大小写"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for medium, label in CAP_MEDIA:
            for period, period_label in (("day", _("每天")), ("week", _("每 7 天"))):
                self.fields[f"cap_{medium}_{period}"] = forms.IntegerField(
                    label=f"{label} {period_label}", required=False
                )

    @classmethod
    def from_settings(cls, settings: ComplianceSettings) -> ComplianceForm:
        initial: dict[str, Any] = {
            "daily_cap": settings.daily_cap,
            "weekly_cap": settings.weekly_cap,
            "window_start": _hhmm(settings.window_start),
            "window_end": _hhmm(settings.window_end),
            "sms_optout_suffix": settings.sms_optout_suffix,
            "optout_keywords": ", ".join(settings.optout_keywords or []),
            "wecom_cap_mode": settings.wecom_cap_mode,
        }
        for medium, limits in (settings.channel_caps or {}).items():
            for period, value in limits.items():
                initial[f"cap_{medium}_{period}"] = value
        return cls(initial=initial)

    def cap_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(label, self[f"cap_{m}_day"], self[f"cap_{m}_week"]) for m, label in CAP_MEDIA]

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for ``update_compliance_settings``."""
        data = self.cleaned_data
        caps: dict[str, dict[str, int]] = {}
        for medium, _label in CAP_MEDIA:
            for period in ("day", "week"):
                value = data.get(f"cap_{medium}_{period}")
                if value is not None:
                    caps.setdefault(medium, {})[period] = value
        return {
            "daily_cap": data["daily_cap"],
            "weekly_cap": data["weekly_cap"],
            "window_start": data["window_start"],
            "window_end": data["window_end"],
            "sms_optout_suffix": data["sms_optout_suffix"],
            "optout_keywords": [w for w in re.split(r"[,，、\s]+", data["optout_keywords"]) if w],
            "channel_caps": caps,
            **({"wecom_cap_mode": data["wecom_cap_mode"]} if data.get("wecom_cap_mode") else {}),
        }

    def add_service_error(self, field: str | None, message: str) -> None:
        """``channel_caps.sms.day`` → the SMS per-day input; the rest by name."""
        parts = (field or "").split(".")
        if parts[0] == "channel_caps" and len(parts) >= 2:
            field = f"cap_{parts[1]}_{parts[2] if len(parts) > 2 else 'day'}"
        self.add_error(field if field in self.fields else None, message)
