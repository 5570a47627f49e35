"""Console: channel codes (渠道活码) — the list with each code's report, the create/edit form
(staff rows with cap, backup and schedule; tags; welcome text with a live preview; cost), and
the detail page with the QR, the poster and their downloads.

Who does what: HQ operators (owner, admin, operator) manage every code; analysts read them;
store managers manage their stores' codes; clerks see the codes they are on, read-only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from siyu.acquisition import images, queries, services
from siyu.acquisition.models import ChannelCode
from siyu.acquisition.welcome import welcome_payload
from siyu.console.access import console_view
from siyu.content.models import Material
from siyu.core import clock
from siyu.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from siyu.core.limits import valid_id
from siyu.customers.models import Customer
from siyu.org.models import OrgUnit, Staff
from siyu.tags.models import Tag

WEEKDAYS = [
    (1, pgettext_lazy("weekday", "周一")),
    (2, pgettext_lazy("weekday", "周二")),
    (3, pgettext_lazy("weekday", "周三")),
    (4, pgettext_lazy("weekday", "周四")),
    (5, pgettext_lazy("weekday", "周五")),
    (6, pgettext_lazy("weekday", "周六")),
    (7, pgettext_lazy("weekday", "周日")),
]
RANGE_CHOICES = [("", "全部时间"), ("7", "近 7 天"), ("30", "近 30 天"), ("90", "近 90 天")]


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", status=403)


def _code_or_none(request: HttpRequest, code_id: int, *, manage: bool = False) -> ChannelCode | None:
    if not valid_id(code_id):
        return None
    return queries.access_code(request.access.workspace, request.access.scope, code_id, manage=manage)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else f"¥{fen / 100:,.2f}"


def _report_cells(figures: queries.CodeReport | None) -> dict[str, Any]:
    if figures is None:
        return {}
    return {
        "adds": figures.adds,
        "customers": figures.customers,
        "retention_7": _pct(figures.retention(7)),
        "retention_30": _pct(figures.retention(30)),
        "cost": _yuan(figures.cost_fen),
        "cost_per_customer": _yuan(figures.cost_per_customer_fen),
        "conversion": _pct(figures.conversion),
    }


@console_view
def code_list(request: HttpRequest) -> HttpResponse:
    """Every code the viewer may see, with adds, retention, cost per customer and conversion."""
    access = request.access
    days = request.GET.get("days") or ""
    days = days if days in dict(RANGE_CHOICES) else ""
    start = clock.now() - dt.timedelta(days=int(days)) if days else None
    archived = request.GET.get("archived") == "1"
    codes = queries.visible_codes(access.workspace, access.scope)
    if not archived:
        codes = codes.exclude(status=ChannelCode.Status.ARCHIVED)
    codes = list(codes.select_related("store").order_by("-id")[:300])
    figures = queries.report(access.workspace, start=start, code_ids=[c.pk for c in codes]) if codes else {}
    rows = [{"code": c, **_report_cells(figures.get(c.pk))} for c in codes]
    context = {
        "rows": rows,
        "can_create": queries.can_manage(access.scope),
        "days": days,
        "ranges": RANGE_CHOICES,
        "archived": archived,
    }
    return render(request, "console/acquisition/list.html", context)


def _staff_choices(request: HttpRequest) -> list[Staff]:
    access = request.access
    staff = Staff.objects.filter(workspace=access.workspace, status=Staff.Status.ACTIVE).select_related("org_unit")
    if access.scope.kind == "units":
        staff = staff.filter(org_unit__path__startswith=access.scope.unit_path)
    return list(staff.order_by("org_unit__name", "name"))


def _store_choices(request: HttpRequest) -> list[OrgUnit]:
    access = request.access
    stores = OrgUnit.objects.filter(workspace=access.workspace, kind=OrgUnit.Kind.STORE)
    if access.scope.kind == "units":
        stores = stores.filter(path__startswith=access.scope.unit_path)
    return list(stores.order_by("name"))


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(str(value or "").strip() or default)
    except ValueError:
        return -1


def _ranges(text: str) -> list[list[str]]:
    out = []
    for part in text.replace("，", ",").split(","):
        part = part.strip().replace("～", "-").replace("~", "-")
        if part:
            start, _sep, end = part.partition("-")
            out.append([start.strip(), end.strip()] if _sep else [part])
    return out


def _form_values(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    rows = []
    for index in range(_int(post.get("staff_rows"), 0)):
        staff_id = _int(post.get(f"staff-{index}-staff_id"))
        if staff_id <= 0:
            continue
        weekdays = [int(d) for d in post.getlist(f"staff-{index}-weekdays") if d.isdigit()]
        ranges = _ranges(post.get(f"staff-{index}-ranges", ""))
        schedule = {"weekdays": weekdays, "ranges": ranges} if weekdays or ranges else None
        rows.append(
            {
                "staff_id": staff_id,
                "daily_cap": _int(post.get(f"staff-{index}-daily_cap")),
                "is_backup": post.get(f"staff-{index}-is_backup") == "1",
                "schedule": schedule,
                "ranges_text": post.get(f"staff-{index}-ranges", ""),
            }
        )
    cost_text = (post.get("cost_yuan") or "0").strip()
    try:
        cost_fen = round(float(cost_text) * 100)
    except ValueError:
        cost_fen = -1
    return {
        "name": post.get("name", ""),
        "kind": post.get("kind", ""),
        "state": post.get("state", ""),
        "store_id": _int(post.get("store_id")) or None,
        "tag_ids": [int(t) for t in post.getlist("tag_ids") if t.isdigit()],
        "welcome_text": post.get("welcome_text", ""),
        "group_qr_material_id": _int(post.get("group_qr_material_id")) or None,
        "cost_fen": cost_fen,
        "cost_yuan": cost_text,
        "skip_verify": post.get("skip_verify") == "1",
        "staff": rows,
    }


def _values_of(code: ChannelCode) -> dict[str, Any]:
    return {
        "name": code.name,
        "kind": code.kind,
        "state": code.state,
        "store_id": code.store_id,
        "tag_ids": list(code.tags.values_list("pk", flat=True)),
        "welcome_text": code.welcome_text,
        "welcome_attachments": code.welcome_attachments,
        "group_qr_material_id": code.group_qr_material_id,
        "cost_fen": code.cost_fen,
        "cost_yuan": f"{code.cost_fen / 100:.2f}",
        "skip_verify": code.skip_verify,
        "staff": [
            {
                "staff_id": e.staff_id,
                "daily_cap": e.daily_cap,
                "is_backup": e.is_backup,
                "schedule": e.schedule,
                "weekdays": (e.schedule or {}).get("weekdays", []),
                "ranges_text": ", ".join(f"{s}-{t}" for s, t in (e.schedule or {}).get("ranges", [])),
            }
            for e in code.staff_entries.all()
        ],
    }


def _input(values: dict[str, Any], code: ChannelCode | None) -> services.CodeInput:
    return services.CodeInput(
        name=values["name"],
        kind=values["kind"],
        state=values["state"],
        staff=[
            services.StaffEntryInput(r["staff_id"], r["daily_cap"], r["is_backup"], r["schedule"])
            for r in values["staff"]
        ],
        tag_ids=values["tag_ids"],
        welcome_text=values["welcome_text"],
        # Attachments are edited through the API; the form keeps what the code has.
        welcome_attachments=code.welcome_attachments if code else [],
        group_qr_material_id=values["group_qr_material_id"],
        store_id=values["store_id"],
        cost_fen=values["cost_fen"],
        skip_verify=values["skip_verify"],
    )


@console_view
def code_edit(request: HttpRequest, code_id: int | None = None) -> HttpResponse:
    access = request.access
    code = None
    try:
        if code_id is not None:
            code = _code_or_none(request, code_id, manage=True)
            if code is None:
                return render(request, "console/forbidden.html", status=404)
        elif not queries.can_manage(access.scope):
            return _forbidden(request)
    except NotFound:
        return render(request, "console/forbidden.html", status=404)
    except PermissionDenied:
        return _forbidden(request)
    errors: dict[str, dict[str, str]] = {}
    values = _values_of(code) if code else {"kind": "rotating", "skip_verify": True, "staff": [], "cost_yuan": "0"}
    if request.method == "POST":
        values = _form_values(request)
        try:
            fields = _input(values, code)
            if code is None:
                code = services.create_code(access.workspace, fields, user=request.user, scope=access.scope)
            else:
                services.update_code(access.workspace, code.pk, fields, user=request.user, scope=access.scope)
        except DomainError as exc:
            field = exc.field or "form"
            errors[field.split(".", 1)[0]] = {"message": exc.message, "field": field}
        else:
            messages.success(request, _("活码「%(name)s」已保存") % {"name": code.name})
            return redirect("console:channel_code", code.pk)
    rows = list(values.get("staff") or [])
    for row in rows:
        row.setdefault("weekdays", (row.get("schedule") or {}).get("weekdays", []))
    rows += [{"staff_id": None, "daily_cap": 0, "is_backup": False, "weekdays": [], "ranges_text": ""}] * max(
        0, max(3, len(rows) + 2) - len(rows)
    )
    context = {
        "code": code,
        "values": values,
        "errors": errors,
        "rows": rows,
        "kinds": ChannelCode.Kind.choices,
        "staff_choices": _staff_choices(request),
        "store_choices": _store_choices(request),
        "tags": Tag.objects.filter(workspace=access.workspace).select_related("group").order_by("group__name", "name"),
        "materials": Material.objects.filter(workspace=access.workspace, kind=Material.Kind.IMAGE, archived=False),
        "weekdays": WEEKDAYS,
    }
    return render(request, "console/acquisition/form.html", context, status=422 if errors else 200)


@console_view
def welcome_preview(request: HttpRequest) -> HttpResponse:
    """htmx: the welcome text rendered for a sample customer (or the first visible one)."""
    access = request.access
    text = request.POST.get("welcome_text", "")[:4000]
    staff = Staff.objects.filter(workspace=access.workspace, pk=_int(request.POST.get("staff-0-staff_id"))).first()
    store = OrgUnit.objects.filter(workspace=access.workspace, pk=_int(request.POST.get("store_id"))).first()
    sample = Customer(name=_("张三"), city=_("上海"))
    code = ChannelCode(workspace=access.workspace, name="preview", kind="staff", welcome_text=text, store=store)
    try:
        rendered, error = welcome_payload(code, sample, staff).text, ""
    except InvalidInput as exc:
        rendered, error = "", exc.message
    return render(request, "console/acquisition/_preview.html", {"rendered": rendered, "error": error})


@console_view
def code_detail(request: HttpRequest, code_id: int) -> HttpResponse:
    access = request.access
    try:
        code = _code_or_none(request, code_id)
    except NotFound:
        code = None
    if code is None:
        return render(request, "console/forbidden.html", status=404)
    manage = queries.can_manage(access.scope, code)
    if request.method == "POST":
        if not manage:
            return _forbidden(request)
        _act(request, code, request.POST.get("action", ""))
        return redirect("console:channel_code", code.pk)
    figures = queries.report(access.workspace, code_ids=[code.pk]).get(code.pk)
    local = ZoneInfo(access.workspace.time_zone)
    context = {
        "code": code,
        "manage": manage,
        "entries": code.staff_entries.select_related("staff", "staff__org_unit"),
        "tags": code.tags.select_related("group"),
        "report": _report_cells(figures),
        "qr_content": services.qr_content(code),
        "synced_at": code.synced_at.astimezone(local) if code.synced_at else None,
        "weekday_names": dict(WEEKDAYS),
    }
    return render(request, "console/acquisition/detail.html", context)


def _act(request: HttpRequest, code: ChannelCode, action: str) -> None:
    workspace = request.access.workspace
    try:
        if action == "pause":
            services.pause_code(workspace, code.pk, user=request.user)
            messages.success(request, _("已暂停：企业微信中的「联系我」已删除，已印刷的二维码不再可用"))
        elif action == "resume":
            services.resume_code(workspace, code.pk, user=request.user)
            messages.success(request, _("已恢复：已生成新的二维码，请重新下载"))
        elif action == "archive":
            services.archive_code(workspace, code.pk, user=request.user)
            messages.success(request, _("已归档"))
        elif action == "rebalance":
            report = services.rebalance(workspace, code_ids=[code.pk])
            if report.errors:
                messages.error(request, report.errors[code.pk])
            elif report.unavailable:
                messages.warning(request, report.unavailable[code.pk])
            else:
                messages.success(request, _("已重新分配（调用企业微信 %(n)s 次）") % {"n": report.calls})
    except DomainError as exc:
        messages.error(request, exc.message)


def _image(request: HttpRequest, code_id: int, kind: str) -> HttpResponse:
    try:
        code = _code_or_none(request, code_id)
    except NotFound:
        code = None
    if code is None:
        return render(request, "console/forbidden.html", status=404)
    if kind == "svg":
        data, content_type, name = images.qr_svg(services.qr_content(code)), "image/svg+xml", f"{code.state}.svg"
    elif kind == "poster":
        background = request.GET.get("background", "")
        background = background if len(background) == 7 and background.startswith("#") else ""
        data, content_type = services.poster_for(request.access.workspace, code, background=background), "image/png"
        name = f"{code.state}-poster.png"
    else:
        data, content_type, name = images.qr_png(services.qr_content(code)), "image/png", f"{code.state}.png"
    response = HttpResponse(data, content_type=content_type)
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@console_view
def code_qr_png(request: HttpRequest, code_id: int) -> HttpResponse:
    return _image(request, code_id, "png")


@console_view
def code_qr_svg(request: HttpRequest, code_id: int) -> HttpResponse:
    return _image(request, code_id, "svg")


@console_view
def code_poster(request: HttpRequest, code_id: int) -> HttpResponse:
    return _image(request, code_id, "poster")
