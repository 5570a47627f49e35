"""Console pages. Views parse the request, call queries/services with the viewer's scope,
and render; out-of-scope customers are 404 here exactly as in the API."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.cache import cache
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.console import charts
from siyu.console.access import SESSION_KEY, admin_view, console_view
from siyu.core.errors import NotFound
from siyu.core.limits import valid_id
from siyu.customers import queries
from siyu.customers.models import IdentityConflict
from siyu.customers.services import dismiss_conflict, merge_by_operator
from siyu.messaging.views_console import reach_card
from siyu.org.models import ApiKey, Membership, OrgUnit, Staff
from siyu.org.services import create_api_key, revoke_api_key
from siyu.segments.layer_queries import customer_layers
from siyu.segments.queries import customer_segments
from siyu.tags.models import Tag
from siyu.tags.services import add_tag, remove_tag

CHANNEL_LABELS = {
    "store_code": gettext_lazy("门店活码"),
    "official_account": gettext_lazy("公众号"),
    "mini_program": gettext_lazy("小程序"),
    "fission": gettext_lazy("裂变海报"),
    "order_import": gettext_lazy("电商导入"),
    "import": gettext_lazy("文件导入"),
    "api": "API",
    "": gettext_lazy("未知"),
}
DASHBOARD_CACHE_SECONDS = 300


def channel_label(code: str) -> str:
    return str(CHANNEL_LABELS.get(code, code))


@console_view
def dashboard(request: HttpRequest) -> HttpResponse:
    access = request.access
    scope = access.scope
    key = f"dash:{request.LANGUAGE_CODE}:{scope.workspace_id}:{scope.kind}:{scope.unit_path}:{scope.staff_id}"
    context = cache.get(key)
    if context is None:
        stats = queries.pool_stats(scope, time_zone=access.workspace.time_zone)
        channels = [(channel_label(c), n) for c, n in stats["by_channel"]]
        context = {
            "stats": stats,
            "fig_per_day": charts.new_per_day(stats["per_day"], _("新客户")) if stats["per_day"] else None,
            "fig_channel": charts.by_channel(channels) if channels else None,
            "fig_store": charts.by_store(stats["by_store"]) if stats["by_store"] else None,
        }
        cache.set(key, context, DASHBOARD_CACHE_SECONDS)
    return render(request, "console/dashboard.html", context)


def parse_int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if valid_id(number) else None


@console_view
def customer_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    scope = access.scope
    params = request.GET
    filters = {
        "q": params.get("q", "").strip()[:100] or None,
        "tag_id": parse_int(params.get("tag")),
        "store_id": parse_int(params.get("store")),
        "staff_id": parse_int(params.get("staff")),
        "channel": params.get("channel") or None,
    }
    page = queries.list_customers(scope, **filters, after=parse_int(params.get("after")), limit=50)
    stores = OrgUnit.objects.filter(workspace=access.workspace, kind=OrgUnit.Kind.STORE)
    staff = Staff.objects.filter(workspace=access.workspace, status=Staff.Status.ACTIVE)
    if scope.kind == "units":
        stores = stores.filter(path__startswith=scope.unit_path)
        staff = staff.filter(org_unit__path__startswith=scope.unit_path)
    elif scope.kind == "staff":
        stores = stores.filter(staff__id=scope.staff_id)
        staff = staff.filter(pk=scope.staff_id)
    next_query = request.GET.copy()
    if page.next_after is not None:
        next_query["after"] = str(page.next_after)
    context = {
        "page": page,
        "rows": [(c, channel_label(c.source_channel)) for c in page.items],
        "filters": filters,
        "filtered": any(v is not None for v in filters.values()),
        "first_page": params.get("after") in (None, ""),
        "next_url": f"?{next_query.urlencode()}" if page.next_after is not None else None,
        "tags": Tag.objects.filter(workspace=access.workspace).select_related("group").order_by("group__sort", "sort"),
        "stores": stores.order_by("code"),
        "staff_members": staff.select_related("org_unit").order_by("org_unit__code", "name")[:500],
        "channels": [(code, channel_label(code)) for code in CHANNEL_LABELS if code],
    }
    template = (
        "console/customers/_rows.html" if request.htmx and not request.htmx.boosted else "console/customers/list.html"
    )
    return render(request, template, context)


def customer_or_404(request: HttpRequest, customer_id: int):
    try:
        return queries.get_customer(request.access.scope, customer_id)
    except NotFound:
        raise Http404(_("客户不存在或不在您的数据范围内")) from None


@console_view
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_or_404(request, customer_id)
    if customer.pk != customer_id:
        return redirect("console:customer", customer_id=customer.pk)
    scope = request.access.scope
    profile = queries.customer_profile(scope, customer)
    return render(
        request,
        "console/customers/detail.html",
        {
            "customer": customer,
            "profile": profile,
            "channel": channel_label(customer.source_channel),
            "orders": queries.recent_orders(customer),
            "timeline": queries.timeline(scope, customer, limit=50),
            "layers": customer_layers(customer.pk),
            "segments": customer_segments(customer) if scope.kind != "staff" else None,
            **tag_context(request, customer, profile),
            **reach_card(request.access, customer, profile.get("merged_ids") or ()),
        },
    )


def tag_context(request: HttpRequest, customer, profile) -> dict:
    carried = {t["id"] for t in profile["tags"]}
    available = (
        Tag.objects.filter(workspace=request.access.workspace)
        .exclude(pk__in=carried)
        .select_related("group")
        .order_by("group__sort", "group__name", "sort", "name")
    )
    return {"customer": customer, "tags": profile["tags"], "available_tags": available}


@console_view
def customer_timeline(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_or_404(request, customer_id)
    before = request.GET.get("before")
    try:
        before_at = dt.datetime.fromisoformat(before) if before else None
    except ValueError:
        return HttpResponseBadRequest("bad 'before'")
    entries = queries.timeline(request.access.scope, customer, before=before_at, limit=50)
    return render(request, "console/customers/_timeline.html", {"customer": customer, "timeline": entries})


@require_POST
@console_view
def customer_tags(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_or_404(request, customer_id)
    access = request.access
    tag_id = parse_int(request.POST.get("tag"))
    if tag_id is None:
        return HttpResponseBadRequest(_("请选择标签"))
    staff_id = access.scope.staff_id if access.scope.kind == "staff" else None
    try:
        if request.POST.get("action") == "remove":
            remove_tag(access.workspace, customer, tag_id, user=request.user)
        else:
            add_tag(access.workspace, customer, tag_id, user=request.user, staff_id=staff_id)
    except NotFound:
        raise Http404(_("标签不存在")) from None
    profile = queries.customer_profile(access.scope, customer)
    if request.htmx:
        return render(request, "console/customers/_tags.html", tag_context(request, customer, profile))
    return redirect("console:customer", customer_id=customer.pk)


@admin_view
def org(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    units = list(
        OrgUnit.objects.filter(workspace=workspace)
        .annotate(staff_count=Count("staff", filter=Q(staff__status=Staff.Status.ACTIVE)))
        .order_by("path")
    )
    customer_counts = dict(
        queries.scoped_customers(request.access.scope)
        .exclude(store_id=None)
        .values_list("store_id")
        .annotate(Count("id"))
    )
    for unit in units:
        unit.depth = unit.path.count("/") - 2
        unit.customer_count = customer_counts.get(unit.pk)
    return render(request, "console/org.html", {"units": units})


@admin_view
def staff(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    store_id = parse_int(request.GET.get("store"))
    members = (
        Staff.objects.filter(workspace=workspace)
        .select_related("org_unit")
        .order_by("org_unit__code", "-title", "name")
    )
    if store_id:
        members = members.filter(org_unit_id=store_id)
    stores = OrgUnit.objects.filter(workspace=workspace, kind=OrgUnit.Kind.STORE).order_by("code")
    linked = dict(
        Membership.objects.filter(workspace=workspace, staff__isnull=False).values_list("staff_id", "user__username")
    )
    rows = [(member, linked.get(member.pk)) for member in members[:1000]]
    return render(request, "console/staff.html", {"rows": rows, "stores": stores, "store_id": store_id})


@admin_view
def api_keys(request: HttpRequest) -> HttpResponse:
    workspace = request.access.workspace
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            try:
                revoke_api_key(workspace=workspace, key_id=int(request.POST.get("key", "0")), user=request.user)
                messages.success(request, _("密钥已吊销"))
            except (NotFound, ValueError):
                messages.error(request, _("密钥不存在或已吊销"))
            return redirect("console:api_keys")
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            messages.error(request, _("请填写密钥名称"))
            return redirect("console:api_keys")
        _key, new_key = create_api_key(workspace_slug=workspace.slug, name=name, user=request.user)
    keys = ApiKey.objects.filter(workspace=workspace).select_related("created_by").order_by("-created_at")
    return render(request, "console/api_keys.html", {"keys": keys, "new_key": new_key})


@console_view
def conflicts(request: HttpRequest) -> HttpResponse:
    access = request.access
    if not access.can_review_conflicts:
        return render(request, "console/forbidden.html", status=403)
    if request.method == "POST":
        conflict_id = parse_int(request.POST.get("conflict"))
        try:
            if request.POST.get("action") == "merge":
                merge_by_operator(access.workspace, conflict_id or 0, user=request.user)
                messages.success(request, _("已合并为同一客户"))
            else:
                dismiss_conflict(access.workspace, conflict_id or 0, user=request.user)
                messages.success(request, _("已标记为不同客户"))
        except NotFound:
            messages.error(request, _("该冲突已处理"))
        return redirect("console:conflicts")
    open_conflicts = (
        IdentityConflict.objects.filter(workspace=access.workspace, status=IdentityConflict.Status.OPEN)
        .select_related("customer", "other_customer")
        .order_by("-created_at")[:200]
    )
    return render(request, "console/conflicts.html", {"conflicts": open_conflicts})


@console_view
def switch_workspace(request: HttpRequest) -> HttpResponse:
    workspace_id = parse_int(request.POST.get("workspace") if request.method == "POST" else None)
    if workspace_id and (
        request.user.is_superuser or any(m.workspace_id == workspace_id for m in request.access.memberships)
    ):
        request.session[SESSION_KEY] = workspace_id
    return redirect(reverse("console:dashboard"))
