"""Console: customer segments (客户分群) — list, builder with a live count, detail, export.

Who sees what: HQ operators (owner, admin, operator) build, tag, archive and export; an analyst
views and exports (phones masked unless the membership allows PII); a store manager views
sizes and members of their own stores only; store clerks have no segment pages.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from siyu.console import charts
from siyu.console.access import console_view
from siyu.console.templatetags.console_tags import EVENT_LABELS
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.customers.models import Customer, Identity
from siyu.org.models import OrgUnit, Role, Staff
from siyu.org.rules import mask_phone
from siyu.org.services import audit
from siyu.segments import queries, services
from siyu.segments import rules as r
from siyu.segments.models import Segment, SegmentMembership, SegmentSize, SegmentTagRule
from siyu.segments.rule_text import (
    CHANNEL_LABELS,
    FIELD_LABELS,
    LAYER_CODE_LABELS,
    LAYER_LABELS,
    ORDER_MEASURES,
    Names,
    describe_rule,
)
from siyu.tags.models import Tag

EDITOR_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
EMPTY_RULE = {"version": r.RULE_VERSION, "match": {"type": "and", "conditions": []}}
TREND_DAYS = 30
SPARK_DAYS = 14
EXPORT_CHUNK = 2000
# Spreadsheet apps run cells that start with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CONDITION_KINDS = [
    ("field", gettext_lazy("属性")),
    ("tags", gettext_lazy("标签")),
    ("reach", gettext_lazy("可触达")),
    ("org", gettext_lazy("组织")),
    ("event", gettext_lazy("行为事件")),
    ("orders", gettext_lazy("订单")),
    ("bought", gettext_lazy("购买商品")),
    ("layer", gettext_lazy("分层")),
    ("segment", gettext_lazy("其他分群")),
]
FIELD_OPS = [
    ("eq", gettext_lazy("等于")),
    ("ne", gettext_lazy("不等于")),
    ("in", gettext_lazy("属于（逗号分隔）")),
    ("not_in", gettext_lazy("不属于（逗号分隔）")),
    ("contains", gettext_lazy("包含")),
    ("gt", gettext_lazy("大于 / 晚于")),
    ("gte", gettext_lazy("大于等于")),
    ("lt", gettext_lazy("小于 / 早于")),
    ("lte", gettext_lazy("小于等于")),
    ("is_set", gettext_lazy("已填写")),
    ("not_set", gettext_lazy("未填写")),
]
COUNT_OPS = [
    ("gte", "≥"),
    ("gt", ">"),
    ("eq", "="),
    ("ne", "≠"),
    ("lte", "≤"),
    ("lt", "<"),
]


def can_view(access) -> bool:
    return access.scope.kind in ("all", "units")


def can_edit(access) -> bool:
    return access.scope.kind == "all" and access.role in EDITOR_ROLES


def can_export(access) -> bool:
    # Exports leave the system: HQ-wide roles only (the analyst's phones are masked).
    return access.scope.kind == "all"


def segment_view(check: Callable[[Any], bool]):
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


def segment_or_404(request: HttpRequest, segment_id: int) -> Segment:
    try:
        return queries.get_segment(request.access.workspace, segment_id)
    except NotFound:
        raise Http404(_("分群不存在")) from None


def int_or_none(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if valid_id(number) else None


# -- list ------------------------------------------------------------------------------------


@segment_view(can_view)
def segment_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    if request.method == "POST":
        if not can_edit(access):
            return render(request, "console/forbidden.html", status=403)
        report = services.refresh_workspace(access.workspace)
        messages.success(
            request,
            _("刷新完成：%(segments)s 个分群，进入 %(entered)s 人，退出 %(exited)s 人，用时 %(seconds).1f 秒")
            % {
                "segments": len(report.segments),
                "entered": f"{report.entered:,}",
                "exited": f"{report.exited:,}",
                "seconds": report.seconds,
            },
        )
        return redirect("console:segments")
    segments = list(
        Segment.objects.filter(workspace=access.workspace)
        .prefetch_related("tag_rules__tag")
        .order_by("archived_at", "name")
    )
    live = [s for s in segments if s.archived_at is None]
    scoped = access.scope.kind != "all"
    sizes = queries.scoped_sizes(access.scope, live) if scoped else {s.pk: s.member_count for s in live}
    trends = {} if scoped else recent_sizes(access.workspace, live)
    rows = [
        {
            "segment": s,
            "size": sizes.get(s.pk, 0),
            "spark": sparkline([p.size for p in trends.get(s.pk, [])]),
            "change": week_change(trends.get(s.pk, [])),
            "tag_rules": [t for t in s.tag_rules.all() if t.active],
        }
        for s in live
    ]
    context = {
        "rows": rows,
        "archived": [s for s in segments if s.archived_at is not None],
        "editor": can_edit(access),
        "scoped": scoped,
    }
    return render(request, "console/segments/list.html", context)


def recent_sizes(workspace, segments: list[Segment]) -> dict[int, list[SegmentSize]]:
    """The last days of size history for every listed segment (one query, not one per row)."""
    since = services.local_today(workspace, clock.now()) - dt.timedelta(days=SPARK_DAYS)
    by_segment: dict[int, list[SegmentSize]] = {}
    for size in SegmentSize.objects.filter(segment__in=segments, day__gte=since).order_by("day"):
        by_segment.setdefault(size.segment_id, []).append(size)
    return by_segment


def sparkline(values: list[int], width: int = 100, height: int = 24) -> str:
    """SVG polyline points for a tiny trend line (empty below two points)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values))


def week_change(points: list[SegmentSize]) -> int | None:
    """Size now minus size a week before the last refresh (None without that history)."""
    if not points:
        return None
    last = points[-1]
    before = [p for p in points if p.day <= last.day - dt.timedelta(days=7)]
    return last.size - before[-1].size if before else None


# -- builder ---------------------------------------------------------------------------------


@segment_view(can_edit)
def segment_edit(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    access = request.access
    segment = segment_or_404(request, segment_id) if segment_id is not None else None
    values = {
        "name": segment.name if segment else "",
        "description": segment.description if segment else "",
        "rule": json.dumps(segment.rule if segment else EMPTY_RULE, ensure_ascii=False, indent=2),
    }
    error = None
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in ("name", "description", "rule")}
        try:
            saved = services.save_segment(
                access.workspace,
                name=values["name"],
                description=values["description"].strip(),
                rule=parse_json(values["rule"]),
                segment_id=segment.pk if segment else None,
                user=request.user,
            )
        except (InvalidInput, NotFound) as exc:
            error = rule_error(exc)
        else:
            messages.success(request, _("分群已保存，点击“立即刷新”或等待定时刷新后生成成员"))
            return redirect("console:segment", segment_id=saved.pk)
    context = {"segment": segment, "values": values, "error": error, **builder_options(access, segment)}
    return render(request, "console/segments/form.html", context, status=422 if error else 200)


# Rule errors come from the validator in English; the commonest get a Chinese hint for operators.
ERROR_HINTS = [
    ("List should have at least 1 item", gettext_lazy("请至少选择一项")),
    ("field required", gettext_lazy("缺少必填项")),
    ("needs a value", gettext_lazy("请填写值")),
    ("needs a non-empty text", gettext_lazy("请填写值")),
    ("valid integer", gettext_lazy("请填写整数")),
    ("greater than or equal to", gettext_lazy("数值太小")),
    ("less than or equal to", gettext_lazy("数值太大")),
    ("is not a date", gettext_lazy("请填写日期")),
    ("give either sku or category", gettext_lazy("请填写品类或 SKU")),
    ("loop", gettext_lazy("分群之间不能互相引用")),
]


def rule_error(exc: InvalidInput | NotFound) -> dict[str, Any]:
    """The message, a Chinese hint when known, and which condition row (1-based) it is about."""
    hint = next((str(h) for needle, h in ERROR_HINTS if needle in exc.message), "")
    parts = (exc.field or "").split(".")
    row = int(parts[2]) + 1 if len(parts) > 2 and parts[:2] == ["match", "conditions"] and parts[2].isdigit() else None
    return {"message": exc.message, "field": exc.field, "hint": hint, "row": row}


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(_("规则不是有效的 JSON：%(error)s") % {"error": exc}, field="rule") from None


def builder_options(access, segment: Segment | None) -> dict[str, Any]:
    """Everything the condition rows offer in their selects, from this workspace."""
    workspace = access.workspace
    units = OrgUnit.objects.filter(workspace=workspace).order_by("path")
    others = Segment.objects.filter(workspace=workspace, archived_at__isnull=True).order_by("name")
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    return {
        "kinds": CONDITION_KINDS,
        "fields": list(FIELD_LABELS.items()),
        "date_fields": [*r.DATE_FIELDS, *r.DATETIME_FIELDS],
        "field_ops": FIELD_OPS,
        "count_ops": COUNT_OPS,
        "channels": list(CHANNEL_LABELS.items()),
        "order_measures": list(ORDER_MEASURES.items()),
        "numeric_layers": [(key, LAYER_LABELS[key]) for key in r.NUMERIC_LAYERS],
        "code_layers": [(key, LAYER_LABELS[key], list(LAYER_CODE_LABELS[key].items())) for key in r.CODE_LAYERS],
        "events": list(EVENT_LABELS.items()),
        "tags": Tag.objects.filter(workspace=workspace).select_related("group").order_by("group__sort", "sort"),
        "stores": [u for u in units if u.kind == OrgUnit.Kind.STORE],
        "regions": [u for u in units if u.kind == OrgUnit.Kind.REGION],
        "staff_members": Staff.objects.filter(workspace=workspace, status=Staff.Status.ACTIVE)
        .select_related("org_unit")
        .order_by("org_unit__code", "name")[:2000],
        "other_segments": others,
    }


@segment_view(can_edit)
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count and a sample for the rule being built (POSTed by the builder, not saved)."""
    access = request.access
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        document = parse_json(request.POST.get("rule", ""))
        rule = services.validate_rule(
            access.workspace, document, segment_id=int_or_none(request.POST.get("segment_id"))
        )
        result = queries.preview(access.workspace, access.scope, rule)
    except InvalidInput as exc:
        return render(request, "console/segments/_preview.html", {"error": rule_error(exc)})
    stores = store_names(result.sample)
    sample = [{"customer": c, "store": stores.get(c.store_id, "")} for c in result.sample]
    return render(request, "console/segments/_preview.html", {"count": result.count, "sample": sample})


def store_names(customers: list[Customer]) -> dict[int, str]:
    ids = {c.store_id for c in customers if c.store_id}
    return dict(OrgUnit.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}


# -- detail ----------------------------------------------------------------------------------


@segment_view(can_view)
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    access = request.access
    segment = segment_or_404(request, segment_id)
    if request.method == "POST":
        if not can_edit(access):
            return render(request, "console/forbidden.html", status=403)
        return segment_action(request, segment)
    scoped = access.scope.kind != "all"
    after = int_or_none(request.GET.get("after"))
    items, next_after = queries.member_page(access.scope, segment, after=after, limit=50)
    customers = [c for c, _ in items]
    stores = store_names(customers)
    owners = staff_names(customers)
    members = [
        {
            "customer": c,
            "entered_at": at,
            "store": stores.get(c.store_id, ""),
            "owner": owners.get(c.owner_staff_id, ""),
        }
        for c, at in items
    ]
    trend = [] if scoped else queries.segment_trend(segment, TREND_DAYS)
    context = {
        "segment": segment,
        "size": queries.scoped_sizes(access.scope, [segment]).get(segment.pk, 0) if scoped else segment.member_count,
        "scoped": scoped,
        "rule_text": describe_rule(segment.rule, rule_names(access.workspace, segment.rule)),
        "rule_json": json.dumps(segment.rule, ensure_ascii=False, indent=2),
        "fig_trend": trend_figure(trend) if trend else None,
        "members": members,
        "first_page": after is None,
        "next_url": f"?after={next_after}" if next_after is not None else None,
        "editor": can_edit(access),
        "exporter": can_export(access),
        "tags": Tag.objects.filter(workspace=access.workspace).select_related("group").order_by("group__sort", "sort"),
        "tag_rules": SegmentTagRule.objects.filter(segment=segment, active=True).select_related("tag__group"),
    }
    return render(request, "console/segments/detail.html", context)


def trend_figure(trend: list[SegmentSize]) -> str:
    points = [(p.day.isoformat(), p.size, p.entered, p.exited) for p in trend]
    return charts.segment_trend(points, (_("成员数"), _("进入"), pgettext("segment", "离开")))


def segment_action(request: HttpRequest, segment: Segment) -> HttpResponse:
    """Bulk tag / untag, tag rules and archiving; each calls its service and reports back."""
    access = request.access
    action = request.POST.get("action")
    tag_id = int_or_none(request.POST.get("tag"))
    try:
        if action in ("tag", "untag"):
            if tag_id is None:
                raise InvalidInput(_("请选择标签"), field="tag")
            changed = services.bulk_tag(
                access.workspace, segment.pk, tag_id, remove=action == "untag", user=request.user
            )
            done = _("已为 %(n)s 位成员打上标签") if action == "tag" else _("已为 %(n)s 位成员移除标签")
            messages.success(request, done % {"n": f"{changed:,}"})
        elif action in ("tag_rule", "tag_rule_off"):
            if tag_id is None:
                raise InvalidInput(_("请选择标签"), field="tag")
            services.save_tag_rule(access.workspace, segment_id=segment.pk, tag_id=tag_id, active=action == "tag_rule")
            messages.success(
                request,
                _("已开启：标签将与分群成员保持一致") if action == "tag_rule" else _("已停止同步该标签"),
            )
        elif action == "archive":
            services.archive_segment(access.workspace, segment.pk, user=request.user)
            messages.success(request, _("分群已归档，不再刷新；历史成员记录保留"))
            return redirect("console:segments")
    except (InvalidInput, NotFound) as exc:
        messages.error(request, _("操作失败：%(message)s") % {"message": exc.message})
    return redirect("console:segment", segment_id=segment.pk)


def staff_names(customers: list[Customer]) -> dict[int, str]:
    ids = {c.owner_staff_id for c in customers if c.owner_staff_id}
    return dict(Staff.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}


def rule_names(workspace, document: Any) -> Names:
    """Names of the tags, org units, staff and segments a stored rule refers to."""
    try:
        rule = r.parse_rule(document)
    except InvalidInput:
        return Names()
    ids: dict[str, set[int]] = {"tags": set(), "units": set(), "staff": set()}
    for node in r.walk(rule.match):
        if isinstance(node, r.TagsCondition):
            ids["tags"].update(node.tag_ids)
        elif isinstance(node, r.OrgCondition):
            ids["staff" if node.level == "staff" else "units"].update(node.ids)
        elif isinstance(node, r.ReachCondition):
            ids["staff"].update([node.staff_id] if node.staff_id else [])
            ids["units"].update([node.store_id] if node.store_id else [])
    units = dict(OrgUnit.objects.filter(workspace=workspace, pk__in=ids["units"]).values_list("pk", "name"))
    return Names(
        tags=dict(Tag.objects.filter(workspace=workspace, pk__in=ids["tags"]).values_list("pk", "name")),
        stores=units,
        regions=units,
        staff=dict(Staff.objects.filter(workspace=workspace, pk__in=ids["staff"]).values_list("pk", "name")),
        segments=dict(
            Segment.objects.filter(workspace=workspace, pk__in=r.referenced_segments(rule)).values_list("pk", "name")
        ),
    )


# -- export ----------------------------------------------------------------------------------


class Echo:
    """A file-like object whose ``write`` hands the line back, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


@segment_view(can_export)
def segment_export(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Members in the viewer's scope as CSV, phones masked without PII rights.

    The audit entry is written before the first byte with the member count, so an export
    the client abandons half-way is still on record.
    """
    access = request.access
    segment = segment_or_404(request, segment_id)
    rows = queries.scoped_sizes(access.scope, [segment]).get(segment.pk, 0)
    audit(
        workspace=access.workspace,
        action="segment.export",
        target=f"segment:{segment.pk}",
        user=request.user,
        details={"rows": rows, "masked": not access.scope.can_view_pii},
    )
    lines = export_lines(access, segment)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"segment-{segment.pk}-{clock.now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_lines(access, segment: Segment) -> Iterator[str]:
    writer = csv.writer(Echo())
    tz = ZoneInfo(access.workspace.time_zone)
    unmasked = access.scope.can_view_pii
    # The BOM makes Excel read the file as UTF-8 (Chinese names otherwise come out garbled).
    yield "\ufeff" + writer.writerow(
        [_("客户ID"), _("姓名"), _("城市"), _("门店"), _("归属员工"), _("进入分群时间"), _("手机号")]
    )
    for ids in queries.iter_member_ids(access.scope, segment, chunk=EXPORT_CHUNK):
        # Three queries per chunk: customers with their store and owner, entry times, phones.
        customers = Customer.objects.select_related("store", "owner_staff").in_bulk(ids)
        entered = dict(
            SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True, customer_id__in=ids).values_list(
                "customer_id", "entered_at"
            )
        )
        phones: dict[int, str] = {}
        for customer_id, value in (
            Identity.objects.filter(customer_id__in=ids, type="phone", app_id="")
            .order_by("id")
            .values_list("customer_id", "value")
        ):
            phones.setdefault(customer_id, value)
        for customer_id in ids:
            c = customers.get(customer_id)
            if c is None:
                continue
            phone = phones.get(customer_id, "")
            at = entered.get(customer_id)
            yield writer.writerow(
                [
                    c.pk,
                    cell(c.name),
                    cell(c.city),
                    cell(c.store.name if c.store else ""),
                    cell(c.owner_staff.name if c.owner_staff else ""),
                    at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "",
                    (phone if unmasked else mask_phone(phone)) if phone else "",
                ]
            )


def cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value
