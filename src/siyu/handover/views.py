"""Console: 离职继承 / 在职转接 — pick the handover staff member and one or several takeover
staff, preview (with every blocked customer explained), start, then follow the results.

HQ operators (owner, admin, operator) hand over anyone's customers; a store manager hands over
within their unit; analysts and clerks get 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from siyu.console.access import console_view
from siyu.core.errors import DomainError, InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.handover import queries, results, rules, services
from siyu.handover.models import HandoverBatch, HandoverTransfer, Kind
from siyu.handover.tasks import send_handover_task
from siyu.org.models import Staff

STATUS_ORDER = [s for s, _label in HandoverTransfer.Status.choices]
BADGES = {
    "planned": "text-bg-light border",
    "started": "text-bg-info",
    "waiting": "text-bg-info",
    "done": "text-bg-success",
    "refused": "text-bg-warning",
    "blocked_limit": "text-bg-secondary",
    "takeover_at_cap": "text-bg-warning",
    "failed": "text-bg-danger",
}


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", status=403)


def _ids(values: list[str]) -> list[int]:
    out = []
    for value in values:
        try:
            number = int(value)
        except ValueError:
            continue
        if valid_id(number):
            out.append(number)
    return out


def _form(request: HttpRequest) -> dict[str, Any]:
    data = request.POST if request.method == "POST" else request.GET
    kind = data.get("kind") or Kind.ON_JOB
    return {
        "kind": kind if kind in Kind.values else Kind.ON_JOB,
        "handover_staff_id": (_ids([data.get("handover_staff_id", "")]) or [0])[0],
        "takeover_staff_ids": _ids(data.getlist("takeover_staff_ids")),
        "transfer_success_msg": (data.get("transfer_success_msg") or "").strip(),
    }


@console_view
@require_http_methods(["GET", "POST"])
def handover_list(request: HttpRequest) -> HttpResponse:
    """The form (GET, or POST with action=preview / start) and the recent handovers."""
    access = request.access
    if not queries.may_hand_over(access.scope):
        return _forbidden(request)
    staff = list(
        queries.staff_in_scope(access.workspace, access.scope)
        .exclude(wecom_userid=None)
        .order_by("org_unit__name", "name")
    )
    form = _form(request)
    plan, errors = None, {}
    if request.method == "POST":
        try:
            queries.check_staff(access.workspace, access.scope, form["handover_staff_id"], form["takeover_staff_ids"])
            if request.POST.get("action") == "start":
                batch = services.start_handover(access.workspace, user=request.user, **form)
                messages.success(request, _("已发起转接，企业微信会在客户确认或 24 小时后完成接替。"))
                return redirect("console:handover", batch_id=batch.pk)
            plan = services.preview(access.workspace, **form)
        except InvalidInput as exc:
            errors[exc.field or "form"] = exc.message
        except DomainError as exc:
            errors["form"] = exc.message
    names = {s.pk: s for s in staff}
    batches = list(
        queries.visible_batches(access.workspace, access.scope).select_related("handover_staff").order_by("-id")[:50]
    )
    context = {
        "staff": staff,
        "active_staff": [s for s in staff if s.status == Staff.Status.ACTIVE],
        "form": form,
        "errors": errors,
        "plan": plan,
        "per_takeover": [(names.get(t), n) for t, n in plan.per_takeover.items()] if plan else [],
        "blocked": [(b, rules.REASONS[b.reason]) for b in plan.blocked[: services.PREVIEW_LIST]] if plan else [],
        "reasons": rules.REASONS,
        "kinds": Kind.choices,
        "batches": [{"batch": b, "progress": _progress(b)} for b in batches],
        "message_max": rules.MESSAGE_MAX,
    }
    return render(request, "console/handover/list.html", context)


def _progress(batch: HandoverBatch) -> int:
    counts = batch.counts or {}
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in rules.TERMINAL)
    return round(finished * 100 / total) if total else 100


@console_view
@require_http_methods(["GET", "POST"])
def handover_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Counts, progress and the results table; POST asks WeCom for this batch's latest results."""
    access = request.access
    if not queries.may_hand_over(access.scope):
        return _forbidden(request)
    try:
        batch = queries.access_batch(access.workspace, access.scope, batch_id)
    except NotFound:
        raise Http404("no such handover") from None
    if request.method == "POST":
        try:
            if batch.transfers.filter(status=rules.PLANNED).exists():
                # Still being sent: the background sender (again, if it died; leases keep
                # chunks from being sent twice) rather than up to 200 calls in this request.
                send_handover_task.enqueue(access.workspace.pk, batch.pk)
            report = results.poll_batch(access.workspace, batch)
            if report.errors:
                messages.warning(request, "；".join(report.errors[:3]))
            else:
                messages.success(request, _("已从企业微信刷新接替结果。"))
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("console:handover", batch_id=batch.pk)
    status = request.GET.get("status") or ""
    rows = (
        HandoverTransfer.objects.filter(batch=batch)
        .select_related("customer", "takeover_staff")
        .order_by("customer_id")
    )
    if status in STATUS_ORDER:
        rows = rows.filter(status=status)
    counts = batch.counts or {}
    context = {
        "batch": batch,
        "takeovers": list(batch.takeover_staff.order_by("name")),
        "counts": [
            (s, label, counts.get(s, 0), BADGES[s]) for s, label in HandoverTransfer.Status.choices if counts.get(s)
        ],
        "progress": _progress(batch),
        # Rows not yet sent to WeCom: a large handover is sent in the background.
        "sending": counts.get(rules.PLANNED, 0),
        "rows": list(rows[:500]),
        "status": status if status in STATUS_ORDER else "",
        "badges": BADGES,
    }
    return render(request, "console/handover/detail.html", context)
