"""The staff task page (``/m/tasks/``, what a WeCom sidebar opens), its 完成 button, the WeCom
OAuth entry that signs a staff member in, and the managers' completion report.

Who sees what: a user sees the tasks of the staff record their membership links to; a store
manager may look at (and complete) the tasks of staff at or below their unit with
``?staff=ID``, HQ roles at any; anybody else's task is a 404, as if it did not exist.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
from collections import defaultdict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.console.access import OAUTH_WORKSPACE_KEY, SESSION_KEY, console_view, resolve_access
from siyu.core.limits import valid_id
from siyu.org.models import Membership, Role, Staff
from siyu.wecom.client import WecomError
from siyu.wecom.models import WecomApp
from siyu.workbench import queries
from siyu.workbench.models import StaffTask
from siyu.workbench.services import complete_task

log = logging.getLogger("siyu.workbench")
# Roles a WeCom OAuth code never signs in, in any workspace the account belongs to: their
# accounts keep password sign-in only, so a WeCom account mix-up cannot hand out a workspace.
NO_OAUTH_ROLES = (Role.OWNER, Role.ADMIN)
OAUTH_SESSION = "siyu_wecom_oauth_state"
AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"


def _mobile(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, f"workbench/{template}", context, status=status)


def _notice(request: HttpRequest, title: str, text: str, status: int) -> HttpResponse:
    return _mobile(request, "notice.html", {"title": title, "text": text}, status)


def _viewer(request: HttpRequest):
    if not request.user.is_authenticated:
        return None, redirect_to_login(request.get_full_path())
    access = resolve_access(request)
    if access is None:
        return None, _notice(request, _("没有权限"), _("你的账号还没有加入任何品牌，请联系管理员。"), 403)
    request.access = access
    return access, None


def _staff_param(request: HttpRequest, access) -> tuple[Staff | None, HttpResponse | None]:
    own = queries.own_staff(access.memberships, access.workspace)
    raw = request.GET.get("staff", "")
    if not raw:
        if own is None:
            return None, _notice(
                request,
                _("没有绑定员工"),
                _(
                    "你的账号没有绑定员工身份，所以没有个人任务。请联系管理员在「员工」里为你的账号绑定员工；"
                    "店长可在任务完成情况页查看门店员工的任务。"
                ),
                403,
            )
        return own, None
    staff_id = int(raw) if raw.isdigit() else 0
    staff = (
        Staff.objects.filter(workspace=access.workspace, pk=staff_id).select_related("org_unit").first()
        if valid_id(staff_id)
        else None
    )
    if staff is None or not queries.may_act_on(access.scope, own, staff):
        return None, _notice(request, _("找不到该员工"), _("该员工不存在，或不在你的管理范围内。"), 404)
    return staff, None


@require_GET
def task_page(request: HttpRequest) -> HttpResponse:
    access, answer = _viewer(request)
    if answer is not None:
        return answer
    staff, answer = _staff_param(request, access)
    if answer is not None:
        return answer
    own = queries.own_staff(access.memberships, access.workspace)
    context = {
        "staff": staff,
        "viewing_other": own is None or own.pk != staff.pk,
        "can_complete": queries.may_act_on(access.scope, own, staff, change=True),
        "groups": queries.pending_groups(access.workspace, staff),
        "done": queries.recently_done(access.workspace, staff),
        "today": queries.today(access.workspace),
        "staff_query": "" if own is not None and own.pk == staff.pk else f"?staff={staff.pk}",
    }
    return _mobile(request, "tasks.html", context)


@require_POST
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    access, answer = _viewer(request)
    if answer is not None:
        return answer
    task = (
        StaffTask.objects.filter(workspace=access.workspace, pk=task_id).select_related("staff__org_unit").first()
        if valid_id(task_id)
        else None
    )
    own = queries.own_staff(access.memberships, access.workspace)
    if task is None or not queries.may_act_on(access.scope, own, task.staff, change=True):
        return _notice(request, _("找不到该任务"), _("该任务不存在，或不在你的管理范围内。"), 404)
    if task.closed_by_wecom:
        return _notice(request, _("在企业微信中发送后自动完成"), _(task.wecom_hint), 409)
    complete_task(access.workspace.pk, task.pk, user=request.user)
    task.refresh_from_db()
    if request.headers.get("HX-Request"):
        queries.attach_materials(access.workspace, [task])
        return _mobile(request, "_task_card.html", {"task": task, "today": queries.today(access.workspace)})
    target = reverse("console:staff_tasks")
    return redirect(target if own is not None and own.pk == task.staff_id else f"{target}?staff={task.staff_id}")


@require_GET
def wecom_start(request: HttpRequest, slug: str) -> HttpResponse:
    """``/m/wecom/start/<slug>/``: the address to configure in WeCom's sidebar (聊天工具栏). It
    sends the member through WeCom's OAuth with a one-time ``state`` kept in this browser's
    session, so a code cannot be replayed into somebody else's browser (login CSRF). WeCom
    accepts ``state`` as ``[a-zA-Z0-9]`` up to 128 bytes, so it is plain hex and the workspace
    slug stays in the session next to it."""
    app = WecomApp.objects.filter(workspace__slug=slug[:64]).select_related("workspace").first()
    if app is None:
        return _notice(request, _("无法登录"), _("该品牌尚未配置企业微信。"), 404)
    state = secrets.token_hex(16)
    request.session[OAUTH_SESSION] = {"state": state, "slug": app.workspace.slug}
    query = urlencode(
        {
            "appid": app.corp_id,
            "redirect_uri": settings.PUBLIC_URL + reverse("console:wecom_auth"),
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": app.agent_id,
        }
    )
    return redirect(f"{AUTHORIZE_URL}?{query}#wechat_redirect")


@require_GET
def wecom_auth(request: HttpRequest) -> HttpResponse:
    """``/m/wecom/auth/?code=…&state=…``: WeCom's OAuth redirect. The state must be the one
    this browser's session holds (it names the workspace); the code names the member
    (``auth/getuserinfo``); their staff record's linked console user is signed in."""
    code = request.GET.get("code", "")[:512]
    state = request.GET.get("state", "")[:128]
    expected = request.session.pop(OAUTH_SESSION, None)
    if not isinstance(expected, dict):
        expected = {}
    valid = state.isascii() and state.isalnum() and secrets.compare_digest(state, str(expected.get("state", "")))
    slug = str(expected.get("slug", "")) if valid else ""
    app = WecomApp.objects.filter(workspace__slug=slug).select_related("workspace").first() if slug else None
    if not code or app is None:
        return _notice(request, _("无法登录"), _("登录链接已失效或不完整，请从企业微信侧边栏重新打开。"), 400)
    workspace = app.workspace
    from siyu.wecom.services import client_for

    try:
        with client_for(workspace) as client:  # one httpx pool per sign-in, closed at once
            info = client.get("auth/getuserinfo", code=code)
    except WecomError as exc:
        log.info("wecom oauth refused: %s", exc)
        return _notice(request, _("无法登录"), _("企业微信授权已失效，请从企业微信侧边栏重新打开。"), 403)
    userid = str(info.get("userid") or "")
    staff = Staff.objects.filter(workspace=workspace, wecom_userid=userid).first() if userid else None
    membership = (
        Membership.objects.filter(workspace=workspace, staff=staff).select_related("user").order_by("pk").first()
        if staff is not None
        else None
    )
    if membership is None or not membership.user.is_active:
        return _notice(request, _("账号未开通"), _("你的企业微信账号还没有绑定运营台账号，请联系管理员开通。"), 403)
    user = membership.user
    if user.is_superuser or user.is_staff or Membership.objects.filter(user=user, role__in=NO_OAUTH_ROLES).exists():
        return _notice(request, _("请用密码登录"), _("管理员账号不支持企业微信免密登录，请在运营台用密码登录。"), 403)
    # login() rotates the session key (no fixation); the marker keeps this session to this
    # workspace (``resolve_access`` ignores the user's other memberships for it).
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[OAUTH_WORKSPACE_KEY] = workspace.pk
    request.session[SESSION_KEY] = workspace.pk
    return redirect("console:staff_tasks")


@console_view
def task_report(request: HttpRequest) -> HttpResponse:
    """Console: a day's task completion per store and staff member (HQ and store managers)."""
    access = request.access
    if access.scope.kind == "staff":
        return render(request, "console/forbidden.html", status=403)
    day = queries.today(access.workspace)
    raw = request.GET.get("day", "")
    if raw:
        with contextlib.suppress(ValueError):  # a bad date shows today
            day = dt.date.fromisoformat(raw)
    rows = queries.day_report(access.workspace, access.scope, day)
    stores: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        stores[row.store][0] += row.total
        stores[row.store][1] += row.done
    store_rows = [
        {"name": name, "total": t, "done": d, "rate": round(d * 100 / t) if t else 0}
        for name, (t, d) in sorted(stores.items())
    ]
    staff_rows = [{"row": r, "rate": round(r.rate * 100)} for r in rows]
    total, done = sum(r.total for r in rows), sum(r.done for r in rows)
    context = {
        "day": day,
        "store_rows": store_rows,
        "staff_rows": staff_rows,
        "total": total,
        "done": done,
        "rate": round(done * 100 / total) if total else 0,
    }
    return render(request, "workbench/report.html", context)
