"""Console: Moments posts (朋友圈) — the list with status and reach, the create form (text,
materials, senders by staff or org unit, customer tags) and the detail page with each
sender's publish status. HQ operators and admins only (a post goes out in the brand's name)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.console.access import console_view
from siyu.content.models import Material
from siyu.core.errors import DomainError
from siyu.core.limits import valid_id
from siyu.org.models import OrgUnit, Role, Staff
from siyu.tags.models import Tag
from siyu.wecom.client import WecomError
from siyu.wecom.services import client_for
from siyu.workbench import moments as service
from siyu.workbench.models import Moment, StaffTask
from siyu.workbench.rules import moment_kind

MANAGERS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)


def _may_manage(request: HttpRequest) -> bool:
    access = request.access
    return access.scope.kind == "all" and (access.role in MANAGERS or request.user.is_superuser)


def _ids(request: HttpRequest, name: str) -> tuple[int, ...]:
    return tuple(int(v) for v in request.POST.getlist(name) if v.isdigit() and valid_id(int(v)))


@console_view
def moment_list(request: HttpRequest) -> HttpResponse:
    if not _may_manage(request):
        return render(request, "console/forbidden.html", status=403)
    rows = Moment.objects.filter(workspace=request.access.workspace).order_by("-id")[:200]
    return render(request, "workbench/moment_list.html", {"moments": rows})


def _choices(request: HttpRequest) -> dict[str, Any]:
    workspace = request.access.workspace
    materials = Material.objects.filter(
        workspace=workspace, archived=False, kind__in=[Material.Kind.IMAGE, Material.Kind.LINK, Material.Kind.FILE]
    ).order_by("-id")[:300]
    return {
        "materials": [m for m in materials if moment_kind(m.kind, m.file.name if m.file else "")],
        "staff_choices": Staff.objects.filter(workspace=workspace, status=Staff.Status.ACTIVE)
        .exclude(wecom_userid=None)
        .select_related("org_unit")
        .order_by("org_unit__name", "name"),
        "unit_choices": OrgUnit.objects.filter(workspace=workspace).order_by("path"),
        "tags": Tag.objects.filter(workspace=workspace).select_related("group").order_by("group__name", "name"),
    }


@console_view
def moment_new(request: HttpRequest) -> HttpResponse:
    if not _may_manage(request):
        return render(request, "console/forbidden.html", status=403)
    workspace = request.access.workspace
    errors: dict[str, dict[str, str]] = {}
    values: dict[str, Any] = {"text": "", "material_ids": (), "staff_ids": (), "org_unit_ids": (), "tag_ids": ()}
    if request.method == "POST":
        values = {
            "text": request.POST.get("text", "")[:5000],
            "material_ids": _ids(request, "material_ids"),
            "staff_ids": _ids(request, "staff_ids"),
            "org_unit_ids": _ids(request, "org_unit_ids"),
            "tag_ids": _ids(request, "tag_ids"),
        }
        try:
            moment = service.create_moment(workspace, service.MomentInput(**values), user=request.user)
        except DomainError as exc:
            field = exc.field or "form"
            errors[field] = {"message": exc.message, "field": field}
        else:
            moment = service.submit_moment(workspace, moment.pk)
            if moment.status == Moment.Status.FAILED:
                messages.error(request, _("企业微信未能创建朋友圈：%(e)s") % {"e": moment.error})
            elif moment.status == Moment.Status.DRAFT:
                messages.warning(request, _("企业微信限频，朋友圈已保存为草稿，几分钟内会自动重新提交"))
            else:
                messages.success(request, _("朋友圈任务已提交企业微信，员工将在企业微信中收到发表提醒"))
            return redirect("console:moment", moment.pk)
    context = {"values": values, "errors": errors, **_choices(request)}
    return render(request, "workbench/moment_form.html", context, status=422 if errors else 200)


@console_view
def moment_detail(request: HttpRequest, moment_id: int) -> HttpResponse:
    if not _may_manage(request):
        return render(request, "console/forbidden.html", status=403)
    workspace = request.access.workspace
    moment = Moment.objects.filter(workspace=workspace, pk=moment_id).first() if valid_id(moment_id) else None
    if moment is None:
        return render(request, "console/forbidden.html", status=404)
    if request.method == "POST" and request.POST.get("action") == "refresh":
        try:
            if moment.status in (Moment.Status.CREATING, Moment.Status.CREATED):
                with client_for(workspace) as client:
                    service.poll_moment(client, moment)
            messages.success(request, _("已从企业微信刷新"))
        except (WecomError, DomainError) as exc:
            messages.error(request, str(getattr(exc, "message", exc)))
        return redirect("console:moment", moment.pk)
    tasks = (
        StaffTask.objects.filter(workspace=workspace, source_type=service.SOURCE, source_id=str(moment.pk))
        .select_related("staff", "staff__org_unit")
        .order_by("staff__org_unit__name", "staff__name")
    )
    reached_by = moment.counts.get("reached_by") or {}
    rows = [{"task": t, "reached": reached_by.get(t.staff.wecom_userid or "", None)} for t in tasks]
    materials = Material.objects.filter(workspace=workspace, pk__in=moment.attachments)
    tags = Tag.objects.filter(workspace=workspace, pk__in=moment.tag_ids).select_related("group")
    context = {"moment": moment, "rows": rows, "materials": materials, "tags": tags}
    return render(request, "workbench/moment_detail.html", context)
