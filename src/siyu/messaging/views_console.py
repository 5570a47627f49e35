"""Console: broadcasts (群发) and the reach card on the customer profile (messages, consent, opt-out).

Who may do what with broadcasts:

* HQ operators (owner, admin, operator — roles that see the whole workspace and edit) create,
  send and cancel. A broadcast goes to customers of every store, so starting one is an HQ call.
* Analysts and store managers see the list, previews and reports, read-only: a store manager
  wants to know what his customers were sent, but cannot send to the whole brand.
* Store clerks (导购) have no broadcast pages (403).

On the profile card anyone who may see the customer (except read-only analysts) may opt them
out or record a withdrawn consent — the cautious direction. Undoing an opt-out or recording a
grant makes messages flow again, so only owners, admins, operators and store managers may.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from django.contrib import messages
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from siyu.channels import gate
from siyu.channels.models import ChannelAccount, Medium, OptOut
from siyu.channels.registry import CHANNELS
from siyu.channels.services import record_opt_out, set_consent, withdraw_opt_out
from siyu.console import charts
from siyu.console.access import Access, console_view
from siyu.content.models import MessageTemplate
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.core.sql import adapt
from siyu.customers import queries as customer_queries
from siyu.customers.models import Consent
from siyu.messaging import broadcasts, wecom_poll
from siyu.messaging.broadcasts import MAX_VARIANTS, VariantIn
from siyu.messaging.models import Broadcast, OutboundMessage, Purpose, QuietPolicy, WecomMassTask
from siyu.org.models import Role
from siyu.org.rules import mask_identity
from siyu.segments.models import Segment
from siyu.tags.models import Tag

SENDER_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
RESTORE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.STORE_MANAGER})
DEFAULT_HOLDOUT = 10
LIST_LIMIT = 100
POLL_SECONDS = 3
# htmx stops polling when the answer has this status (the broadcast has finished).
HTMX_STOP_POLLING = 286
# Reasons a broadcast row is stopped that the gate does not decide.
EXTRA_REASONS = {"cancelled": "群发已取消"}
STATUS_BADGES = {
    Broadcast.Status.DRAFT: "text-bg-secondary",
    Broadcast.Status.SCHEDULED: "text-bg-info",
    Broadcast.Status.SENDING: "text-bg-warning",
    Broadcast.Status.SENT: "text-bg-success",
    Broadcast.Status.CANCELLED: "text-bg-light border",
}
VARIANT_FIELDS = ("label", "weight", "template_id", "subject", "body", "provider_template", "provider_params")


def can_view(access: Access) -> bool:
    return access.scope.kind in ("all", "units")


def can_send(access: Access) -> bool:
    return access.scope.kind == "all" and access.role in SENDER_ROLES


def reason_label(code: str) -> str:
    return EXTRA_REASONS.get(code) or gate.REASONS.get(code) or code


def broadcast_view(check: Callable[[Access], bool]):
    """``console_view`` plus a role check; the others get the 403 page."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @console_view
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not check(request.access):
                return render(request, "console/forbidden.html", status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def int_or_none(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if valid_id(number) else None


# ---- list -------------------------------------------------------------------------------------


@broadcast_view(can_view)
def broadcast_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    rows = list(
        Broadcast.objects.filter(workspace=access.workspace)
        .select_related("account", "segment", "created_by")
        .order_by("-id")[:LIST_LIMIT]
    )
    stats = list_stats(rows)
    tag_names = dict(Tag.objects.filter(workspace=access.workspace).values_list("pk", "name"))
    context = {
        "rows": [
            {
                "broadcast": b,
                "badge": STATUS_BADGES.get(b.status, "text-bg-light"),
                "audience": audience_text(b, tag_names),
                "medium": Medium(b.account.medium).label if b.account.medium in Medium.values else b.account.medium,
                **stats.get(b.pk, {}),
            }
            for b in rows
        ],
        "can_send": can_send(access),
    }
    return render(request, "console/reach/broadcast_list.html", context)


def list_stats(rows: list[Broadcast]) -> dict[int, dict[str, int]]:
    """Sent / delivered / clicked / converted for the listed broadcasts: two queries in all.

    Conversion counts treated members with an order paid in the broadcast's window, as
    ``broadcasts.report`` does; the per-broadcast windows are one ``UNION ALL``.
    """
    ids = [b.pk for b in rows]
    out: dict[int, dict[str, int]] = {i: {"sent": 0, "delivered": 0, "clicked": 0, "converted": 0} for i in ids}
    if not ids:
        return out
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT broadcast_id, "
            "SUM(CASE WHEN state IN ('sent', 'delivered', 'unknown', 'bounced') THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END) "
            f"FROM messaging_outboundmessage WHERE broadcast_id IN ({marks}) GROUP BY broadcast_id",
            ids,
        )
        for broadcast_id, sent, delivered, clicked in cursor.fetchall():
            out[broadcast_id].update(sent=int(sent or 0), delivered=int(delivered or 0), clicked=int(clicked or 0))
        started = [b for b in rows if b.started_at is not None]
        if started:
            parts, params = [], []
            for b in started:
                parts.append(
                    "SELECT %s, COUNT(*) FROM messaging_outboundmessage o WHERE o.broadcast_id = %s "
                    "AND o.state <> 'holdout' AND EXISTS (SELECT 1 FROM tracking_order r WHERE r.workspace_id = %s "
                    "AND r.customer_id = o.customer_id AND r.paid_at >= %s AND r.paid_at < %s)"
                )
                end = b.started_at + dt.timedelta(days=b.conversion_days)
                params += [b.pk, b.pk, b.workspace_id, adapt(b.started_at, "datetime"), adapt(end, "datetime")]
            cursor.execute(" UNION ALL ".join(parts), params)
            for broadcast_id, converted in cursor.fetchall():
                out[broadcast_id]["converted"] = int(converted or 0)
    return out


def audience_text(broadcast: Broadcast, tag_names: dict[int, str]) -> str:
    parts = []
    if broadcast.segment_id:
        parts.append(_("分群「%(name)s」") % {"name": broadcast.segment.name})
    if broadcast.tags_any:
        names = "、".join(tag_names.get(int(t), str(t)) for t in broadcast.tags_any)
        parts.append(_("任一标签：%(names)s") % {"names": names})
    if broadcast.tags_all:
        names = "、".join(tag_names.get(int(t), str(t)) for t in broadcast.tags_all)
        parts.append(_("全部标签：%(names)s") % {"names": names})
    return "；".join(parts)


# ---- create -----------------------------------------------------------------------------------


@broadcast_view(can_send)
def broadcast_new(request: HttpRequest) -> HttpResponse:
    access = request.access
    workspace = access.workspace
    errors: dict[str, str] = {}
    if request.method == "POST":
        parsed, errors, row_of = parse_broadcast_form(request.POST, workspace.time_zone)
        if not errors:
            try:
                broadcast = broadcasts.create_broadcast(workspace, **parsed, user=request.user)
            except InvalidInput as exc:
                errors[form_field(exc.field, row_of)] = exc.message
            else:
                messages.success(request, _("群发已保存为草稿。请查看下面的预估，确认后再发送。"))
                return redirect("console:broadcast", broadcast_id=broadcast.pk)
        values = request.POST
    else:
        values = None
    return render(request, "console/reach/broadcast_form.html", form_context(access, values, errors))


def form_field(field: str | None, row_of: list[int]) -> str:
    """Where a service error is shown: ``variants.1.body`` → the body of the form's row 1."""
    if not field:
        return "__all__"
    parts = field.split(".")
    if parts[0] == "variants" and len(parts) >= 3 and parts[1].isdigit():
        index = int(parts[1])
        row = row_of[index] if index < len(row_of) else index
        return f"variants.{row}.{parts[2]}"
    return {"account_id": "account", "segment_id": "audience"}.get(parts[0], parts[0])


def parse_broadcast_form(post, time_zone: str) -> tuple[dict[str, Any], dict[str, str], list[int]]:
    """Form fields → ``create_broadcast`` arguments, errors by form field, and variant rows used."""
    errors: dict[str, str] = {}

    def number(name: str, kind, default, low, high):
        raw = (post.get(name) or "").strip()
        if raw == "":
            return default
        try:
            value = kind(raw)
        except ValueError:
            errors[name] = _("请填写数字")
            return default
        if not (low <= value <= high):
            errors[name] = _("须在 %(low)s 到 %(high)s 之间") % {"low": low, "high": high}
        return value

    parsed: dict[str, Any] = {
        "name": post.get("name", ""),
        "account_id": int_or_none(post.get("account")) or 0,
        "purpose": post.get("purpose", Purpose.MARKETING),
        "quiet_policy": post.get("quiet_policy", QuietPolicy.HOLD),
        "holdout_percent": number("holdout_percent", float, 0.0, 0, 50),
        "conversion_days": number("conversion_days", int, 7, 1, 90),
        "coupon_code": (post.get("coupon_code") or "").strip(),
    }
    if post.get("audience") == "tags":
        parsed["tags_any"] = [t for t in (int_or_none(v) for v in post.getlist("tags_any")) if t]
        parsed["tags_all"] = [t for t in (int_or_none(v) for v in post.getlist("tags_all")) if t]
        if not parsed["tags_any"] and not parsed["tags_all"]:
            errors["audience"] = _("请至少选择一个标签")
    else:
        parsed["segment_id"] = int_or_none(post.get("segment"))
    if post.get("timing") == "later":
        raw = (post.get("scheduled_at") or "").strip()
        try:
            local = dt.datetime.fromisoformat(raw)
        except ValueError:
            errors["scheduled_at"] = _("请选择发送时间")
        else:
            when = local.replace(tzinfo=ZoneInfo(time_zone)) if local.tzinfo is None else local
            if when <= clock.now():
                errors["scheduled_at"] = _("发送时间已过，请选择将来的时间")
            parsed["scheduled_at"] = when
    variants, row_of = [], []
    for n in range(MAX_VARIANTS):
        get = lambda key, n=n: (post.get(f"variants.{n}.{key}") or "").strip()  # noqa: E731
        filled = any(get(k) for k in ("label", "template_id", "subject", "body", "provider_template"))
        if n > 0 and not filled:
            continue
        params: dict[str, str] = {}
        for line in get("provider_params").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                errors[f"variants.{n}.provider_params"] = _("每行一个参数，格式：参数名=内容")
                break
            params[key.strip()] = value.strip()
        weight = get("weight")
        variants.append(
            VariantIn(
                label=get("label"),
                weight=int(weight) if weight.isdigit() else 0 if weight else 1,
                template_id=int_or_none(get("template_id")),
                subject=get("subject"),
                body=post.get(f"variants.{n}.body") or "",
                provider_template=get("provider_template"),
                provider_params=params,
            )
        )
        row_of.append(n)
    parsed["variants"] = variants
    return parsed, errors, row_of


def form_context(access: Access, values, errors: dict[str, str]) -> dict[str, Any]:
    workspace = access.workspace
    accounts = list(ChannelAccount.objects.filter(workspace=workspace).order_by("status", "name"))
    get = (lambda k, d="": values.get(k, d)) if values is not None else (lambda k, d="": d)
    rows = []
    for n in range(MAX_VARIANTS):
        row = {f: get(f"variants.{n}.{f}") for f in VARIANT_FIELDS}
        if values is None and n == 0:
            row.update(label="A", weight="1")
        row["n"] = n
        row["errors"] = {f: errors.get(f"variants.{n}.{f}") for f in VARIANT_FIELDS}
        row["shown"] = (
            n == 0 or any(row[f] for f in ("label", "body", "template_id", "subject")) or any(row["errors"].values())
        )
        rows.append(row)
    return {
        "values": {
            "name": get("name"),
            "audience": get("audience", "segment"),
            "segment": get("segment"),
            "tags_any": values.getlist("tags_any") if values is not None else [],
            "tags_all": values.getlist("tags_all") if values is not None else [],
            "account": get("account", str(accounts[0].pk) if accounts else ""),
            "purpose": get("purpose", Purpose.MARKETING),
            "holdout_percent": get("holdout_percent", str(DEFAULT_HOLDOUT)),
            "quiet_policy": get("quiet_policy", QuietPolicy.HOLD),
            "timing": get("timing", "now"),
            "scheduled_at": get("scheduled_at"),
            "coupon_code": get("coupon_code"),
            "conversion_days": get("conversion_days", "7"),
        },
        "errors": errors,
        "other_errors": {k: v for k, v in errors.items() if not k.startswith("variants.") and k not in FORM_FIELDS},
        "variant_rows": rows,
        "segments": Segment.objects.filter(workspace=workspace, archived_at__isnull=True).order_by("name"),
        "tags": Tag.objects.filter(workspace=workspace).select_related("group").order_by("group__sort", "sort"),
        "accounts": [(a, provider_label(a.provider), Medium(a.medium).label) for a in accounts],
        "templates": MessageTemplate.objects.filter(workspace=workspace, archived=False).order_by("medium", "name"),
        "purposes": [(Purpose.MARKETING, Purpose.MARKETING.label), (Purpose.SERVICE, Purpose.SERVICE.label)],
        "quiet_policies": QuietPolicy.choices,
        "time_zone": workspace.time_zone,
    }


FORM_FIELDS = frozenset(
    {
        "name",
        "audience",
        "tags_any",
        "tags_all",
        "account",
        "purpose",
        "quiet_policy",
        "holdout_percent",
        "scheduled_at",
        "coupon_code",
        "conversion_days",
        "variants",
    }
)


def provider_label(provider: str) -> str:
    channel = CHANNELS.get(provider)
    return str(channel.label) if channel is not None else provider


# ---- detail: preview, send, progress, report ------------------------------------------------


@broadcast_view(can_view)
def broadcast_detail(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    access = request.access
    try:
        broadcast = broadcasts.get_broadcast(access.workspace, broadcast_id)
    except NotFound:
        raise Http404(_("群发不存在")) from None
    if request.method == "POST":
        if not can_send(access):
            return render(request, "console/forbidden.html", status=403)
        try:
            if request.POST.get("action") in ("remind", "cancel_task"):
                return wecom_task_action(request, broadcast)
            if request.POST.get("action") == "cancel":
                stopped = broadcasts.cancel(broadcast, user=request.user)
                messages.success(request, _("群发已取消，%(n)s 条未发出的消息不再发送。") % {"n": f"{stopped:,}"})
            else:
                broadcast = broadcasts.send(broadcast, user=request.user)
                if broadcast.status == Broadcast.Status.SCHEDULED:
                    messages.success(request, _("已定时，到时间后自动发送。"))
                else:
                    messages.success(request, _("已开始发送：消息已排队，由后台逐批发出。"))
        except InvalidInput as exc:
            messages.error(request, exc.message)
        return redirect("console:broadcast", broadcast_id=broadcast.pk)
    context = detail_context(broadcast)
    context["can_send"] = can_send(access)
    if broadcast.account.medium == "wecom" and broadcast.started_at is not None:
        context["wecom_tasks"] = wecom_task_rows(broadcast, access)
    if request.htmx and request.GET.get("part") == "report":
        if broadcast.status == Broadcast.Status.SENDING:
            return render(request, "console/reach/_broadcast_report.html", context)
        # Done: stop polling and reload once, so the header (status, buttons) is current too.
        response = render(request, "console/reach/_broadcast_report.html", context, status=HTMX_STOP_POLLING)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "console/reach/broadcast_detail.html", context)


def wecom_task_rows(broadcast: Broadcast, access: Access) -> list[dict[str, Any]]:
    """Per staff member: their WeCom mass-send task, its status and results (a store manager
    sees the staff of their stores)."""
    tasks = WecomMassTask.objects.filter(broadcast=broadcast).exclude(msgid="").select_related("sender")
    if access.scope.kind != "all":
        tasks = tasks.filter(sender__org_unit__path__startswith=access.scope.unit_path)
    return [
        {
            "task": t,
            "name": t.sender.name if t.sender else t.sender_userid,
            "status": _("已发送") if t.sent_at else t.get_status_display() if t.status != "open" else _("待确认"),
            "sent": t.sent_at is not None,
            "reminders_left": wecom_poll.reminders_left(t),
            "can_remind": t.status == WecomMassTask.Status.OPEN and t.sent_at is None,
        }
        for t in tasks.order_by("id")
    ]


def wecom_task_action(request: HttpRequest, broadcast: Broadcast) -> HttpResponse:
    """提醒员工 (WeCom reminds the sender, ≤3 times per 24 hours) or 取消任务 (withdraw a task
    not yet sent)."""
    task = WecomMassTask.objects.filter(broadcast=broadcast, pk=int_or_none(request.POST.get("task")) or 0).first()
    if task is None:
        raise Http404(_("群发任务不存在"))
    try:
        if request.POST.get("action") == "cancel_task":
            changed = wecom_poll.cancel(task, user=request.user)
            messages.success(request, _("群发任务已取消，%(n)s 位客户不会收到。") % {"n": changed})
        else:
            left = wecom_poll.remind(task, user=request.user)
            messages.success(request, _("已提醒员工确认发送，24 小时内还可提醒 %(n)s 次。") % {"n": left})
    except InvalidInput as exc:
        messages.error(request, exc.message)
    return redirect("console:broadcast", broadcast_id=broadcast.pk)


def detail_context(broadcast: Broadcast) -> dict[str, Any]:
    tag_names = dict(Tag.objects.filter(workspace_id=broadcast.workspace_id).values_list("pk", "name"))
    context: dict[str, Any] = {
        "broadcast": broadcast,
        "badge": STATUS_BADGES.get(broadcast.status, "text-bg-light"),
        "audience": audience_text(broadcast, tag_names),
        "variants": list(broadcast.variants.order_by("id")),
        "holdout_percent": broadcast.holdout_bp / 100,
        "account_label": provider_label(broadcast.account.provider),
        "poll_seconds": POLL_SECONDS,
        "time_zone": broadcast.workspace.time_zone,
    }
    if broadcast.status in (Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED) and broadcast.started_at is None:
        preview = broadcasts.preview(broadcast)
        suppressed = [(reason_label(k), n) for k, n in preview["suppressed"].items()]
        context.update(
            preview=preview,
            suppressed_rows=suppressed,
            fig_suppressed=charts.by_store(suppressed) if suppressed else None,
        )
        return context
    report = broadcasts.report(broadcast)
    suppressed = [(reason_label(k), n) for k, n in report["suppressed"].items()]
    sendable = report["audience"] - report["holdout"]
    done = sendable - report["queued"]
    context.update(
        report=report,
        suppressed_rows=suppressed,
        fig_suppressed=charts.by_store(suppressed) if suppressed else None,
        fig_funnel=funnel(
            [
                (_("发送对象"), sendable),
                (_("已发送"), report["sent"]),
                (_("已送达"), report["delivered"]),
                (_("点击"), report["clicked"]),
                (_("转化"), report["converted"]),
            ]
        )
        if sendable
        else None,
        progress={"done": done, "total": sendable, "percent": round(100 * done / sendable) if sendable else 100},
        lift_text=lift_text(report["lift"]),
        variant_rows=[
            {**v, "rate_pct": f"{v['rate'] * 100:.1f}%", "lift_text": lift_text(v["lift"], short=True)}
            for v in report["variants"]
        ],
        control_rate_pct=f"{report['control']['rate'] * 100:.1f}%",
    )
    return context


def funnel(points: list[tuple[str, int]]) -> str:
    """Audience → sent → delivered → clicked → converted, each as a share of the first step."""
    fig = go.Figure(
        go.Funnel(
            y=[label for label, _ in points],
            x=[n for _, n in points],
            marker={"color": charts.PALETTE[: len(points)]},
            textinfo="value+percent initial",
            hovertemplate="%{y}<br>%{x:,}<extra></extra>",
        )
    )
    fig.update_layout(**{**charts.LAYOUT, "margin": {"l": 90, "r": 16, "t": 8, "b": 20}})
    return fig.to_json()


def lift_text(lift: dict[str, Any] | None, *, short: bool = False) -> str:
    """The lift against the holdout in words, in percentage points with the 95 % interval."""
    if lift is None:
        return _("无对照组") if short else _("没有对照组，无法计算提升（创建群发时设置对照组比例）。")
    points = abs(lift["difference"]) * 100
    # Round first, then add 0.0: "-0.0" reads like a sign error.
    low, high = round(lift["low"] * 100, 1) + 0.0, round(lift["high"] * 100, 1) + 0.0
    if short:
        verdict = _("显著") if lift["significant"] else _("不显著")
        return f"{round(lift['difference'] * 100, 1) + 0.0:+.1f} pp（{low:.1f}–{high:.1f}）{verdict}"
    values = {"points": f"{points:.1f}", "low": f"{low:.1f}", "high": f"{high:.1f}"}
    if lift["difference"] >= 0:
        text = _("比对照组转化率高 %(points)s 个百分点（95%% 置信区间 %(low)s–%(high)s）") % values
    else:
        text = _("比对照组转化率低 %(points)s 个百分点（95%% 置信区间 %(low)s–%(high)s）") % values
    separator = pgettext("list separator", "，")
    return text + separator + (_("显著") if lift["significant"] else _("差异不显著"))


# ---- the reach card on the customer profile ------------------------------------------------------


def can_reduce_reach(access: Access) -> bool:
    return access.role != Role.ANALYST


def can_restore_reach(access: Access) -> bool:
    return access.role in RESTORE_ROLES or access.scope.can_admin


def reach_card(access: Access, customer, merged_ids: list[int] | tuple[int, ...] = ()) -> dict[str, Any]:
    """Recent messages (state, reason in Chinese), consent per channel, and the opt-out status."""
    ids = [customer.pk, *merged_ids]
    recent = list(
        OutboundMessage.objects.filter(workspace=access.workspace, customer_id__in=ids)
        .exclude(state=OutboundMessage.State.HOLDOUT)
        .select_related("broadcast")
        .order_by("-id")[:10]
    )
    address_kinds = gate.ADDRESS_TYPES
    message_rows = [
        {
            "message": m,
            "medium": Medium(m.medium).label if m.medium in Medium.values else m.medium,
            "reason": reason_label(m.reason) if m.reason else "",
            "address": m.to_address
            if access.scope.can_view_pii or not m.to_address
            else mask_identity(address_kinds.get(m.medium, ""), m.to_address),
        }
        for m in recent
    ]
    consents: dict[str, dict[str, Consent]] = {}
    for consent in Consent.objects.filter(customer_id=customer.pk).order_by("updated_at"):
        consents.setdefault(consent.channel, {})[consent.purpose] = consent
    consent_rows = [
        {
            "channel": code,
            "label": label,
            "marketing": consents.get(code, {}).get(Consent.Purpose.MARKETING),
            "service": consents.get(code, {}).get(Consent.Purpose.SERVICE),
        }
        for code, label in Consent.Channel.choices
    ]
    return {
        "reach_messages": message_rows,
        "reach_consents": consent_rows,
        "reach_optout": OptOut.objects.filter(workspace=access.workspace, customer_id=customer.pk).first(),
        "reach_can_reduce": can_reduce_reach(access),
        "reach_can_restore": can_restore_reach(access),
    }


@console_view
def customer_reach(request: HttpRequest, customer_id: int) -> HttpResponse:
    """POST: opt out / withdraw the opt-out / grant or revoke marketing consent on one channel."""
    if request.method != "POST":
        return redirect("console:customer", customer_id=customer_id)
    access = request.access
    try:
        customer = customer_queries.get_customer(access.scope, customer_id)
    except NotFound:
        raise Http404(_("客户不存在或不在您的数据范围内")) from None
    action = request.POST.get("action", "")
    restoring = action in ("opt_in", "grant")
    if not (can_restore_reach(access) if restoring else can_reduce_reach(access)):
        return render(request, "console/forbidden.html", status=403)
    source = f"console:{request.user.get_username()}"[:64]
    workspace_id = access.workspace.pk
    try:
        if action == "opt_out":
            record_opt_out(workspace_id, [customer.pk], source=OptOut.Source.CONSOLE, detail=source)
            messages.success(request, _("已退订：该客户不再收到任何渠道的营销消息（服务通知照常）。"))
        elif action == "opt_in":
            withdraw_opt_out(workspace_id, customer.pk, source=OptOut.Source.CONSOLE)
            messages.success(request, _("已恢复接收营销消息。"))
        elif action in ("grant", "revoke"):
            set_consent(
                workspace_id,
                customer.pk,
                channel=request.POST.get("channel", ""),
                purpose=Consent.Purpose.MARKETING,
                granted=action == "grant",
                source=source,
            )
            messages.success(request, _("已记录授权变更。"))
        else:
            messages.error(request, _("未知操作"))
    except InvalidInput as exc:
        messages.error(request, exc.message)
    return redirect("console:customer", customer_id=customer.pk)
