"""Console: the content library — 素材库, 话术库 and 消息模板 with a live per-customer preview.

Who does what: everyone in the workspace reads the library (clerks copy scripts and send
materials every day). Store managers and HQ operators (owner, admin, operator) curate
materials and scripts. Message templates drive broadcasts and carry compliance text, so
only HQ operators edit them; everyone may preview them for customers they can see.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.console.access import Access, console_view
from siyu.content import queries, services
from siyu.content.models import Material, MessageTemplate, Script
from siyu.content.rendering import VARIABLES
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.org.models import Role

LIBRARY_EDITORS = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.STORE_MANAGER})
TEMPLATE_EDITORS = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
KIND_ICONS = {"text": "📝", "image": "🖼️", "link": "🔗", "miniprogram": "🧩", "file": "📎"}
PAGE_SIZE = 48
# What each variable is for, shown in the editor's cheat-sheet.
VARIABLE_HELP = {
    "customer": "客户：姓名、城市、省份、性别、自定义属性（attributes.xxx）、ID",
    "staff": "客户的归属导购",
    "store": "客户的归属门店",
    "brand": "品牌（工作空间）名称",
    "coupon_code": "发送时为每位客户发放的券码",
    "link": "link('https://…')：为每位客户生成可追踪的短链接",
    "unsubscribe_url": "邮件退订链接",
}


def can_edit_library(access: Access) -> bool:
    return access.role in LIBRARY_EDITORS or access.scope.can_admin


def can_edit_templates(access: Access) -> bool:
    return access.scope.kind == "all" and (access.role in TEMPLATE_EDITORS or access.scope.can_admin)


def editor_only(check: Callable[[Access], bool]):
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


def field_errors(exc: InvalidInput | NotFound) -> dict[str, dict[str, str]]:
    """{input name: {message, field}}: ``provider_params.name`` lands under the parameters box,
    ``payload.appid`` under the AppID input; the form also lists it at the top."""
    field = exc.field or ""
    slot = field.split(".", 1)[1] if field.startswith("payload.") else field.split(".", 1)[0]
    return {slot or "form": {"message": exc.message, "field": field}}


# -- 素材库 ----------------------------------------------------------------------------------


@console_view
def material_list(request: HttpRequest) -> HttpResponse:
    """The library as a grid (or list), filtered by category chips, kind and search; editors upload here."""
    access = request.access
    editor = can_edit_library(access)
    values: dict[str, Any] = {"kind": "text", "category": request.GET.get("category") or "other"}
    errors: dict[str, dict[str, str]] = {}
    if request.method == "POST":
        if not editor:
            return render(request, "console/forbidden.html", status=403)
        values = material_values(request)
        try:
            saved = services.create_material(
                access.workspace,
                services.MaterialInput(**values),
                upload=request.FILES.get("file"),
                user=request.user,
            )
        except InvalidInput as exc:
            errors = field_errors(exc)
        else:
            messages.success(request, _("素材「%(title)s」已添加") % {"title": saved.title})
            return redirect(f"{request.path}?category={saved.category}")
    category = request.GET.get("category") or None
    category = category if category in Material.Category.values else None
    kind = request.GET.get("kind") or None
    kind = kind if kind in Material.Kind.values else None
    q = (request.GET.get("q") or "").strip()[:100]
    page = queries.list_materials(
        access.workspace,
        category=category,
        kind=kind,
        q=q,
        after=int_or_none(request.GET.get("after")),
        limit=PAGE_SIZE,
    )
    counts = queries.category_counts(access.workspace)
    context = {
        "items": [{"material": m, "icon": KIND_ICONS[m.kind]} for m in page.items],
        "next_after": page.next_after,
        "chips": [(value, label, counts.get(value, 0)) for value, label in Material.Category.choices],
        "total": sum(counts.values()),
        "category": category,
        "kind": kind,
        "q": q,
        "layout": "list" if request.GET.get("layout") == "list" else "grid",
        "kinds": [(value, label, KIND_ICONS[value]) for value, label in Material.Kind.choices],
        "categories": Material.Category.choices,
        "editor": editor,
        "values": values,
        "errors": errors,
        "max_mb": services.MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "console/content/materials.html", context, status=422 if errors else 200)


def material_values(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    kind = post.get("kind", "")
    payload = {}
    if kind == Material.Kind.MINIPROGRAM:
        payload = {key: post.get(key, "") for key in ("appid", "pagepath", "thumb_url") if post.get(key, "")}
    return {
        "kind": kind,
        "category": post.get("category", "other"),
        "title": post.get("title", ""),
        "text": post.get("text", ""),
        "url": post.get("url", "") if kind == Material.Kind.LINK else "",
        "payload": payload,
        "keywords": post.get("keywords", ""),
    }


@editor_only(can_edit_library)
def material_edit(request: HttpRequest, material_id: int) -> HttpResponse:
    access = request.access
    try:
        material = queries.get_material(access.workspace, material_id)
    except NotFound:
        raise Http404(_("素材不存在")) from None
    values: dict[str, Any] = {
        "kind": material.kind,
        "category": material.category,
        "title": material.title,
        "text": material.text,
        "url": material.url,
        "payload": material.payload,
        "keywords": material.keywords,
    }
    errors: dict[str, dict[str, str]] = {}
    if request.method == "POST":
        if request.POST.get("action") == "archive":
            services.archive_material(access.workspace, material.pk, user=request.user)
            messages.success(request, _("素材已归档，不再出现在素材库中"))
            return redirect("console:materials")
        values = {**material_values(request), "kind": material.kind}
        try:
            services.update_material(
                access.workspace,
                material.pk,
                services.MaterialInput(**values),
                upload=request.FILES.get("file"),
                user=request.user,
            )
        except InvalidInput as exc:
            errors = field_errors(exc)
        else:
            messages.success(request, _("素材已保存"))
            return redirect("console:materials")
    context = {
        "material": material,
        "icon": KIND_ICONS[material.kind],
        "values": values,
        "errors": errors,
        "categories": Material.Category.choices,
        "max_mb": services.MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "console/content/material_form.html", context, status=422 if errors else 200)


# -- 话术库 ----------------------------------------------------------------------------------


@console_view
def script_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    q = (request.GET.get("q") or "").strip()[:100]
    groups = queries.scripts_by_scenario(access.workspace, q=q)
    context = {
        "groups": groups,
        "q": q,
        "editor": can_edit_library(access),
        "any_scripts": bool(groups) or (bool(q) and queries.scripts(access.workspace).exists()),
    }
    return render(request, "console/content/scripts.html", context)


@console_view
def script_use(request: HttpRequest, script_id: int) -> HttpResponse:
    """Counts a copy (htmx POST from the copy button); answers the new count."""
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        count = services.use_script(request.access.workspace, script_id)
    except NotFound:
        raise Http404(_("话术不存在")) from None
    return render(request, "console/content/_script_uses.html", {"count": count})


@editor_only(can_edit_library)
def script_edit(request: HttpRequest, script_id: int | None = None) -> HttpResponse:
    access = request.access
    script = None
    if script_id is not None:
        try:
            script = queries.get_script(access.workspace, script_id)
        except NotFound:
            raise Http404(_("话术不存在")) from None
    values: dict[str, Any] = {
        "scenario": script.scenario if script else Script.Scenario.GREETING,
        "title": script.title if script else "",
        "content": script.content if script else "",
        "keywords": script.keywords if script else "",
        "material_ids": [m.pk for m in script.materials.all()] if script else [],
    }
    errors: dict[str, dict[str, str]] = {}
    if request.method == "POST":
        if script is not None and request.POST.get("action") == "archive":
            services.archive_script(access.workspace, script.pk, user=request.user)
            messages.success(request, _("话术已归档"))
            return redirect("console:scripts")
        post = request.POST
        values = {
            "scenario": post.get("scenario", ""),
            "title": post.get("title", ""),
            "content": post.get("content", ""),
            "keywords": post.get("keywords", ""),
            "material_ids": [n for n in (int_or_none(v) for v in post.getlist("materials")) if n is not None],
        }
        try:
            services.save_script(
                access.workspace,
                services.ScriptInput(**{**values, "material_ids": tuple(values["material_ids"])}),
                script_id=script.pk if script else None,
                user=request.user,
            )
        except (InvalidInput, NotFound) as exc:
            errors = field_errors(exc)
        else:
            messages.success(request, _("话术已保存"))
            return redirect("console:scripts")
    context = {
        "script": script,
        "values": values,
        "errors": errors,
        "scenarios": Script.Scenario.choices,
        "materials": queries.materials(access.workspace).order_by("-pk")[:200],
    }
    return render(request, "console/content/script_form.html", context, status=422 if errors else 200)


# -- 消息模板 --------------------------------------------------------------------------------


@console_view
def template_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    medium = request.GET.get("medium") or None
    medium = medium if medium in MessageTemplate.Medium.values else None
    rows = queries.templates(access.workspace, medium=medium).order_by("name")
    context = {
        "templates": rows,
        "medium": medium,
        "media": MessageTemplate.Medium.choices,
        "editor": can_edit_templates(access),
        "any_templates": bool(rows) or queries.templates(access.workspace).exists(),
    }
    return render(request, "console/content/templates.html", context)


def template_values(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    return {
        "name": post.get("name", ""),
        "medium": post.get("medium", ""),
        "purpose": post.get("purpose", MessageTemplate.Purpose.MARKETING),
        "subject": post.get("subject", ""),
        "body": post.get("body", ""),
        "provider_template": post.get("provider_template", ""),
        "params_text": post.get("params_text", ""),
    }


def parse_params(text: str) -> dict[str, str]:
    """The console writes provider parameters one per line as ``name = {{ expression }}``."""
    params: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, source = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                _("第 %(n)s 行应写成 参数名 = 表达式") % {"n": number},
                field="provider_params",
            )
        params[name.strip()] = source.strip()
    return params


def template_input(values: dict[str, Any], *, name: str) -> services.TemplateInput:
    return services.TemplateInput(
        name=name,
        medium=values["medium"],
        purpose=values["purpose"],
        subject=values["subject"],
        body=values["body"],
        provider_template=values["provider_template"],
        provider_params=parse_params(values["params_text"]),
    )


@console_view
def template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    """The editor (HQ operators) or, for everyone else, the same page read-only with the preview."""
    access = request.access
    editor = can_edit_templates(access)
    if template_id is None and not editor:
        return render(request, "console/forbidden.html", status=403)
    template = None
    if template_id is not None:
        try:
            template = queries.get_template(access.workspace, template_id)
        except NotFound:
            raise Http404(_("模板不存在")) from None
    values: dict[str, Any] = {
        "name": template.name if template else "",
        "medium": template.medium if template else MessageTemplate.Medium.SMS,
        "purpose": template.purpose if template else MessageTemplate.Purpose.MARKETING,
        "subject": template.subject if template else "",
        "body": template.body if template else "",
        "provider_template": template.provider_template if template else "",
        "params_text": "\n".join(f"{k} = {v}" for k, v in (template.provider_params if template else {}).items()),
    }
    errors: dict[str, dict[str, str]] = {}
    if request.method == "POST":
        if not editor:
            return render(request, "console/forbidden.html", status=403)
        if template is not None and request.POST.get("action") == "archive":
            services.archive_template(access.workspace, template.pk, user=request.user)
            messages.success(request, _("模板已归档，不能再用于新的发送"))
            return redirect("console:message_templates")
        values = template_values(request)
        try:
            saved = services.save_template(
                access.workspace,
                template_input(values, name=values["name"]),
                template_id=template.pk if template else None,
                user=request.user,
            )
        except (InvalidInput, NotFound) as exc:
            errors = field_errors(exc)
        else:
            messages.success(request, _("模板已保存"))
            return redirect("console:message_template", template_id=saved.pk)
    customers = queries.sample_customers(access.scope, queries.MAX_SAMPLE)
    context = {
        "template": template,
        "values": values,
        "errors": errors,
        "editor": editor,
        "media": MessageTemplate.Medium.choices,
        "purposes": MessageTemplate.Purpose.choices,
        "variables": [(name, fields or (), VARIABLE_HELP.get(name, "")) for name, fields in VARIABLES.items()],
        "customers": customers,
    }
    return render(request, "console/content/template_form.html", context, status=422 if errors else 200)


@console_view
def template_preview(request: HttpRequest) -> HttpResponse:
    """The live preview (htmx): the form's unsaved fields rendered for the chosen customer, or
    for a sample of customers in the viewer's scope when none is chosen."""
    access = request.access
    if request.method != "POST":
        return HttpResponse(status=405)
    values = template_values(request)
    # A typed id wins over the chosen sample customer.
    raw_customer = (request.POST.get("customer_id_typed") or request.POST.get("customer_id") or "").strip()
    customer_id = int_or_none(raw_customer)
    context: dict[str, Any] = {"medium": values["medium"]}
    try:
        fields = template_input(values, name="preview")
        if customer_id is not None:
            context["preview"] = queries.preview_template(access.workspace, fields, customer_id, scope=access.scope)
        elif raw_customer:
            raise NotFound("not an id", field="customer_id")
        else:
            context["rows"] = queries.preview_sample(access.workspace, fields, scope=access.scope)
    except InvalidInput as exc:
        context["error"] = exc
    except NotFound:
        context["error"] = NotFound(_("客户不存在或不在您的可见范围内"), field="customer_id")
    return render(request, "console/content/_template_preview.html", context)
