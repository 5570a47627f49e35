"""Console: 企业微信 / 公众号 设置 — the apps' forms (secrets write-only), the callback URLs to
paste, the setup check item by item, reconciliation runs with a 立即同步 button, and the API
call and callback logs the operator reads when something stops working.

Credentials and the sync trigger are for owners and admins only (``admin_view``; others 403).
Views parse the forms and call ``setup_actions`` / ``services``; they hold no rules.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.console.access import admin_view
from siyu.core.errors import InvalidInput
from siyu.wecom import errcodes, services, setup_actions, setup_queries
from siyu.wecom.models import OfficialAccountApp, WecomApp

SYNC_POLL_SECONDS = 2
CHECK_TIMEOUT_SECONDS = 5.0
CHECK_LABELS = {
    "configured": gettext_lazy("应用配置"),
    "token": gettext_lazy("Secret 与企业 ID"),
    "customer_contact": gettext_lazy("客户联系权限、可信 IP 与可见范围"),
    "callback": gettext_lazy("回调 URL 验证"),
}


def _secret_input() -> forms.PasswordInput:
    # Never rendered back: the page must not carry a credential.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class WecomAppForm(forms.Form):
    prefix = "wecom"
    corp_id = forms.CharField(label=gettext_lazy("企业 ID（CorpID）"), max_length=64)
    agent_id = forms.CharField(label=gettext_lazy("应用 AgentId"), max_length=32)
    secret = forms.CharField(label=gettext_lazy("应用 Secret"), max_length=200, required=False, widget=_secret_input())
    token = forms.CharField(label="Token", max_length=32)
    aes_key = forms.CharField(label="EncodingAESKey", max_length=43, required=False)


class OaForm(forms.Form):
    prefix = "oa"
    app_id = forms.CharField(label=gettext_lazy("开发者 ID（AppID）"), max_length=64)
    secret = forms.CharField(
        label=gettext_lazy("开发者密码（AppSecret）"), max_length=200, required=False, widget=_secret_input()
    )
    token = forms.CharField(label=gettext_lazy("令牌（Token）"), max_length=32)
    encrypted = forms.TypedChoiceField(
        label=gettext_lazy("消息加解密方式"),
        choices=[("0", gettext_lazy("明文模式")), ("1", gettext_lazy("安全模式（推荐）"))],
        coerce=lambda value: value == "1",
        initial="1",
    )
    aes_key = forms.CharField(label="EncodingAESKey", max_length=43, required=False)


def _wecom_form(app: WecomApp | None, data=None) -> WecomAppForm:
    initial = {}
    if app is not None:
        initial = {"corp_id": app.corp_id, "agent_id": app.agent_id, "token": app.callback_token}
    return WecomAppForm(data=data, initial=initial)


def _oa_form(app: OfficialAccountApp | None, data=None) -> OaForm:
    initial = {}
    if app is not None:
        initial = {"app_id": app.app_id, "token": app.callback_token, "encrypted": "1" if app.encrypted else "0"}
    return OaForm(data=data, initial=initial)


def _add_error(form: forms.Form, exc: InvalidInput) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@admin_view
def wecom_settings(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    app = WecomApp.objects.filter(workspace=workspace).first()
    oa = OfficialAccountApp.objects.filter(workspace=workspace).first()
    action = request.POST.get("action", "") if request.method == "POST" else ""
    wecom_form, oa_form = _wecom_form(app), _oa_form(oa)
    check_items = None
    status = 200
    if action == "save_wecom":
        wecom_form = _wecom_form(app, request.POST)
        if wecom_form.is_valid():
            data = wecom_form.cleaned_data
            try:
                setup_actions.save_wecom(workspace, setup_actions.WecomFields(**data), user=request.user)
            except InvalidInput as exc:
                _add_error(wecom_form, exc)
            else:
                messages.success(request, _("企业微信应用已保存。请把回调 URL 填到企业微信后台，然后点“检查配置”。"))
                return redirect("console:wecom_settings")
        status = 400
    elif action == "save_oa":
        oa_form = _oa_form(oa, request.POST)
        if oa_form.is_valid():
            try:
                setup_actions.save_oa(workspace, setup_actions.OaFields(**oa_form.cleaned_data), user=request.user)
            except InvalidInput as exc:
                _add_error(oa_form, exc)
            else:
                messages.success(request, _("公众号已保存。请把服务器地址填到公众号后台「基本配置 → 服务器配置」。"))
                return redirect("console:wecom_settings")
        status = 400
    elif action == "check":
        # A shorter timeout than the worker's: the operator is waiting on this request.
        report = services.check(workspace, timeout=CHECK_TIMEOUT_SECONDS)
        check_items = [_item_row(errcodes.explain(item)) for item in report.items]
        app = WecomApp.objects.filter(workspace=workspace).first()
    elif action == "sync":
        try:
            setup_actions.queue_sync(workspace, user=request.user)
        except InvalidInput as exc:
            messages.error(request, exc.message)
        else:
            messages.info(request, _("已加入后台同步队列，本页会显示进度和结果。"))
        return redirect("console:wecom_settings")
    context = {
        "app": app,
        "oa": oa,
        "wecom_form": wecom_form,
        "oa_form": oa_form,
        "wecom_url": services.callback_url("wecom", workspace),
        "oa_url": services.callback_url("oa", workspace),
        "check_items": check_items,
        "last_check": _stored_check(app),
        "receipts": setup_queries.receipt_stats(workspace),
        **_sync_context(workspace),
    }
    return render(request, "console/wecom/settings.html", context, status=status)


def _item_row(item: services.CheckItem) -> dict:
    return {
        "key": item.key,
        "label": CHECK_LABELS.get(item.key, item.key),
        "ok": item.ok,
        "message": item.message_zh,
        "message_en": item.message_en,
        "errcode": item.errcode,
        "meaning": errcodes.meaning(item.errcode) if item.errcode is not None else None,
        "detail": item.detail,
    }


def _stored_check(app: WecomApp | None) -> list[dict]:
    """The last check as stored on the app, with the same sharpened wording as a fresh one."""
    if app is None or not app.last_check_detail:
        return []
    rows = []
    for raw in app.last_check_detail:
        item = services.CheckItem(
            str(raw.get("key", "")),
            bool(raw.get("ok")),
            str(raw.get("message", "")),
            "",
            raw.get("errcode"),
            str(raw.get("detail", "")),
        )
        rows.append(_item_row(errcodes.explain(item)))
    return rows


def _sync_context(workspace) -> dict:
    state = setup_actions.sync_state(workspace)
    return {"sync": state, "runs": setup_queries.sync_runs(workspace), "poll_seconds": SYNC_POLL_SECONDS}


@admin_view
def wecom_sync_status(request: HttpRequest) -> HttpResponse:
    """The sync card alone, for htmx to refresh while a run is queued or running."""
    context = {"app": WecomApp.objects.filter(workspace=request.access.workspace).first()}
    context |= _sync_context(request.access.workspace)
    return render(request, "console/wecom/_sync.html", context)


@admin_view
def wecom_logs(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    errors_only = request.GET.get("errors") == "1"
    context = {
        "errors_only": errors_only,
        "calls": setup_queries.api_calls(workspace, errors_only=errors_only),
        "counts": setup_queries.errcode_counts(workspace),
        "receipts": setup_queries.receipt_stats(workspace),
        "configured": WecomApp.objects.filter(workspace=workspace).exists(),
    }
    if request.htmx:
        return render(request, "console/wecom/_calls.html", context)
    return render(request, "console/wecom/logs.html", context)
