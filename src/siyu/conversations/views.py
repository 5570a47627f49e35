"""Console: risk control (风控). HQ manages the sensitive-word rules and sees every alert; a store
manager sees the alerts on staff of their store(s) and marks them handled; clerks have no page."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.console.access import console_view
from siyu.conversations import queries, services
from siyu.conversations.models import RiskAlert, RiskRule
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.org.models import Role

RULE_EDITORS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)


def can_edit_rules(access) -> bool:
    return access.scope.kind == "all" and access.role in RULE_EDITORS


def split_words(raw: str) -> list[str]:
    """One word per line, or separated by commas (either width)."""
    return [w.strip() for w in raw.replace("，", "\n").replace(",", "\n").splitlines() if w.strip()]


def post_id(request: HttpRequest, name: str) -> int:
    try:
        value = int(request.POST.get(name, ""))
    except ValueError:
        raise Http404 from None
    if not valid_id(value):
        raise Http404
    return value


@console_view
def risk(request: HttpRequest) -> HttpResponse:
    access = request.access
    if not queries.can_see_risk(access.scope):
        return render(request, "console/forbidden.html", status=403)
    editor = can_edit_rules(access)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "handle":
            try:
                alert = queries.access_alert(access.scope, post_id(request, "alert"))
            except NotFound:
                raise Http404 from None
            if services.handle_alert(access.workspace, alert, user=request.user):
                messages.success(request, _("已标记为已处理"))
            return redirect("console:risk")
        if action not in ("create", "toggle"):
            return redirect("console:risk")
        if not editor:
            return render(request, "console/forbidden.html", status=403)
        if action == "create":
            raw = {
                "name": request.POST.get("name", ""),
                "category": request.POST.get("category", "other"),
                "words": split_words(request.POST.get("words", "")),
            }
            try:
                services.create_risk_rule(access.workspace, raw, user=request.user)
                messages.success(request, _("风控规则已创建，之后的员工消息都会检查"))
            except InvalidInput as exc:
                messages.error(
                    request, _("无法保存：%(field)s %(message)s") % {"field": exc.field, "message": exc.message}
                )
        else:
            try:
                rule = services.get_risk_rule(access.workspace, post_id(request, "rule"))
            except NotFound:
                raise Http404 from None
            data = {"name": rule.name, "category": rule.category, "words": rule.words, "active": not rule.active}
            services.update_risk_rule(access.workspace, rule.pk, data, user=request.user)
        return redirect("console:risk")

    page = queries.list_alerts(access.scope, status=RiskAlert.Status.OPEN, after=None, limit=100)
    context = {
        "alerts": page.items,
        "more_alerts": page.next_after is not None,
        "rules": RiskRule.objects.filter(workspace=access.workspace).order_by("-active", "pk"),
        "categories": RiskRule.Category.choices,
        "editor": editor,
        "open_count": queries.alerts_for(access.scope).filter(status=RiskAlert.Status.OPEN).count(),
    }
    return render(request, "console/risk.html", context)
