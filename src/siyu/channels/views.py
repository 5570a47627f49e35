"""Console: channel accounts (渠道账号), compliance settings (合规设置) and the opt-out list.

Accounts hold provider credentials and compliance settings bind every message the brand
sends, so both are for owners and admins only (``admin_view``; others get 403). The opt-out
list is for HQ roles that see the whole workspace; phone numbers are masked unless the
viewer may see personal data.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch
from django.utils.translation import gettext as _

from siyu.channels import forms as channel_forms
from siyu.channels.models import ChannelAccount, Medium, OptOut
from siyu.channels.registry import CHANNELS
from siyu.channels.services import (
    check_account,
    compliance_settings,
    create_account,
    customer_for_address,
    enable_account,
    update_account,
    update_compliance_settings,
)
from siyu.console.access import admin_view, console_view
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.models import Identity
from siyu.org.rules import mask_phone

OPTOUT_PAGE = 100


def provider_label(provider: str) -> str:
    channel = CHANNELS.get(provider)
    return str(channel.label) if channel is not None else provider


def medium_label(medium: str) -> str:
    return str(Medium(medium).label) if medium in Medium.values else medium


# ---- accounts ---------------------------------------------------------------------------------------


@admin_view
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = ChannelAccount.objects.filter(workspace=request.access.workspace).order_by("status", "name")
    rows = [{"account": a, "provider": provider_label(a.provider), "medium": medium_label(a.medium)} for a in accounts]
    return render(request, "console/reach/account_list.html", {"rows": rows, "providers": provider_choices()})


def provider_choices() -> list[dict[str, Any]]:
    return [
        {"code": code, "label": str(c.label), "media": "、".join(medium_label(m) for m in c.media)}
        for code, c in CHANNELS.items()
    ]


@admin_view
def account_new(request: HttpRequest) -> HttpResponse:
    provider = request.POST.get("provider") or request.GET.get("provider") or ""
    channel = CHANNELS.get(provider)
    if channel is None:
        return render(request, "console/reach/account_providers.html", {"providers": provider_choices()})
    form = channel_forms.account_form(channel, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        settings, secrets = channel_forms.account_values(form, channel)
        try:
            account = create_account(
                request.access.workspace,
                name=form.cleaned_data["name"],
                provider=provider,
                medium=form.cleaned_data["medium"],
                settings=settings,
                secrets=secrets,
                rate_per_second=form.cleaned_data["rate_per_second"],
                user=request.user,
            )
        except InvalidInput as exc:
            channel_forms.add_service_error(form, exc.field, exc.message)
        else:
            messages.success(request, _("渠道账号已添加。建议点“检测连接”确认账号可用。"))
            return redirect("console:channel_account", account_id=account.pk)
    context = {"form": form, "provider": provider, "provider_label": provider_label(provider), "account": None}
    return render(request, "console/reach/account_form.html", context)


@admin_view
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    account = ChannelAccount.objects.filter(workspace=request.access.workspace, pk=account_id).first()
    if account is None:
        raise Http404(_("渠道账号不存在"))
    channel = CHANNELS.get(account.provider)
    if channel is None:
        raise Http404(_("这个渠道已不再支持"))
    action = request.POST.get("action", "save") if request.method == "POST" else ""
    if action == "check":
        health = check_account(account)
        if health.ok:
            messages.success(request, _("连接正常：%(detail)s") % {"detail": health.detail})
        else:
            messages.error(request, _("连接失败：%(detail)s") % {"detail": health.detail})
        return redirect("console:channel_account", account_id=account.pk)
    if action == "enable":
        enable_account(account, user=request.user)
        messages.success(request, _("账号已重新启用，排队中的消息会继续发送。"))
        return redirect("console:channel_account", account_id=account.pk)
    form = channel_forms.account_form(channel, account=account, data=request.POST if action == "save" else None)
    if action == "save" and form.is_valid():
        settings, secrets = channel_forms.account_values(form, channel)
        try:
            update_account(
                account,
                settings=settings,
                secrets=secrets,
                rate_per_second=form.cleaned_data["rate_per_second"],
                user=request.user,
            )
        except InvalidInput as exc:
            channel_forms.add_service_error(form, exc.field, exc.message)
            account.refresh_from_db()
        else:
            messages.success(request, _("已保存"))
            return redirect("console:channel_account", account_id=account.pk)
    context = {
        "form": form,
        "account": account,
        "provider": account.provider,
        "provider_label": provider_label(account.provider),
        "medium_label": medium_label(account.medium),
        "callbacks": callback_rows(account),
        "unsubscribe": email_unsubscribe_info(account),
    }
    return render(request, "console/reach/account_form.html", context)


CALLBACK_LABELS = {
    "report": _("回执（状态报告）地址"),
    "status": _("回执（状态报告）地址"),
    "reply": _("上行短信（客户回复）地址"),
}


def callback_rows(account: ChannelAccount) -> list[tuple[str, str]]:
    """The URLs to paste into the provider's console, if the provider calls us back."""
    try:
        from siyu.channels.sms.urls import callback_urls
    except ImportError:  # the SMS channels are optional
        return []
    try:
        urls = callback_urls(account)
    except NoReverseMatch:  # the callback routes are not mounted in this deployment
        return []
    return [(str(CALLBACK_LABELS.get(kind, kind)), url) for kind, url in urls.items()]


def email_unsubscribe_info(account: ChannelAccount) -> dict[str, str] | None:
    if account.medium != Medium.EMAIL:
        return None
    return {
        "link": f"{django_settings.PUBLIC_URL}/u/…",
        "mailto": str(account.settings.get("unsubscribe_mailto") or ""),
    }


# ---- compliance ---------------------------------------------------------------------------------------


@admin_view
def compliance(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    current = compliance_settings(workspace.pk)
    if request.method == "POST":
        form = channel_forms.ComplianceForm(request.POST)
        if form.is_valid():
            try:
                update_compliance_settings(workspace, user=request.user, **form.changes())
            except InvalidInput as exc:
                form.add_service_error(exc.field, exc.message)
            else:
                messages.success(request, _("合规设置已保存，之后发送的消息按新设置检查。"))
                return redirect("console:compliance")
    else:
        form = channel_forms.ComplianceForm.from_settings(current)
    return render(request, "console/reach/compliance.html", {"form": form, "settings": current})


@console_view
def opt_outs(request: HttpRequest) -> HttpResponse:
    access = request.access
    if access.scope.kind != "all":
        return render(request, "console/forbidden.html", status=403)
    workspace = access.workspace
    found = OptOut.objects.filter(workspace=workspace)
    query = request.GET.get("phone", "").strip()[:32]
    if query:
        try:
            ids = customer_for_address(workspace.pk, "sms", query)
        except NotFound:
            ids = []
        found = found.filter(customer_id__in=ids)
    rows = list(found.select_related("customer").order_by("-created_at")[:OPTOUT_PAGE])
    phones: dict[int, str] = {}
    for customer_id, value in (
        Identity.objects.filter(workspace=workspace, type="phone", customer_id__in=[r.customer_id for r in rows])
        .order_by("id")
        .values_list("customer_id", "value")
    ):
        phones[customer_id] = value if access.scope.can_view_pii else mask_phone(value)
    labels = dict(OptOut.Source.choices)
    by_source = [
        (labels.get(source, source), n)
        for source, n in OptOut.objects.filter(workspace=workspace)
        .values_list("source")
        .annotate(n=Count("id"))
        .order_by("-n")
    ]
    context = {
        "rows": [(r, phones.get(r.customer_id, "")) for r in rows],
        "by_source": by_source,
        "total": sum(n for _, n in by_source),
        "query": query,
    }
    return render(request, "console/reach/opt_outs.html", context)
