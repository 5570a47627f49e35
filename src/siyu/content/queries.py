"""Content library reads: filtered, searchable lists, and template previews for real customers.

Lists page by keyset (id descending, ``after`` = the last id seen). A preview renders a
template exactly as the dispatcher will (same ``render``, same SMS suffix rule) for a
customer the viewer may see; links stay untracked because no message exists yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from siyu.channels.services import compliance_settings
from siyu.content.models import Material, MessageTemplate, Script
from siyu.content.rendering import RenderContext, customer_values_of, render
from siyu.content.services import TemplateInput, validate_template
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.models import Customer
from siyu.customers.queries import get_customer, scoped_customers
from siyu.org.models import Workspace
from siyu.org.rules import Scope

MAX_PAGE = 200
MAX_SAMPLE = 20
# Previews have no coupon pool or outbox row behind them: stand-ins show where the values go.
PREVIEW_COUPON = "COUPON8888"
PREVIEW_UNSUBSCRIBE = f"{settings.PUBLIC_URL}/u/preview"

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_after: int | None


def _page(qs: QuerySet, after: int | None, limit: int) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs.order_by("-pk")[: limit + 1])
    return Page(rows[:limit], rows[limit - 1].pk if len(rows) > limit else None)


def _search(qs: QuerySet, q: str | None, columns: tuple[str, ...]) -> QuerySet:
    """Every word of ``q`` must appear in one of ``columns``."""
    for word in (q or "").replace("\x00", "").split():
        condition = Q()
        for column in columns:
            condition |= Q(**{f"{column}__icontains": word})
        qs = qs.filter(condition)
    return qs


# -- materials -------------------------------------------------------------------------------


def materials(
    workspace: Workspace,
    *,
    category: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    archived: bool = False,
) -> QuerySet[Material]:
    qs = Material.objects.filter(workspace=workspace, archived=archived)
    if category:
        qs = qs.filter(category=category)
    if kind:
        qs = qs.filter(kind=kind)
    return _search(qs, q, ("title", "text", "keywords"))


def list_materials(workspace: Workspace, *, after: int | None = None, limit: int = 50, **filters: Any) -> Page:
    return _page(materials(workspace, **filters), after, limit)


def category_counts(workspace: Workspace) -> dict[str, int]:
    """Live materials per category, for the filter chips (one GROUP BY)."""
    rows = (
        Material.objects.filter(workspace=workspace, archived=False)
        .values_list("category")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return dict(rows)


def get_material(workspace: Workspace, material_id: int) -> Material:
    material = Material.objects.filter(workspace=workspace, pk=material_id).first()
    if material is None:
        raise NotFound("素材不存在 / no material with this id", field="material_id")
    return material


# -- scripts ---------------------------------------------------------------------------------


def scripts(
    workspace: Workspace, *, scenario: str | None = None, q: str | None = None, archived: bool = False
) -> QuerySet[Script]:
    qs = Script.objects.filter(workspace=workspace, archived=archived)
    if scenario:
        qs = qs.filter(scenario=scenario)
    return _search(qs, q, ("title", "content", "keywords"))


def list_scripts(workspace: Workspace, *, after: int | None = None, limit: int = 50, **filters: Any) -> Page:
    return _page(scripts(workspace, **filters).prefetch_related("materials"), after, limit)


@dataclass
class ScenarioGroup:
    scenario: str
    label: str
    scripts: list[Script] = field(default_factory=list)


def scripts_by_scenario(workspace: Workspace, *, q: str | None = None, limit: int = 500) -> list[ScenarioGroup]:
    """Live scripts matching ``q``, grouped by scenario in the scenarios' own order, most used first."""
    groups = {value: ScenarioGroup(value, label) for value, label in Script.Scenario.choices}
    rows = scripts(workspace, q=q).prefetch_related("materials").order_by("-use_count", "-pk")[:limit]
    for script in rows:
        groups[script.scenario].scripts.append(script)
    return [g for g in groups.values() if g.scripts]


def get_script(workspace: Workspace, script_id: int) -> Script:
    script = Script.objects.filter(workspace=workspace, pk=script_id).prefetch_related("materials").first()
    if script is None:
        raise NotFound("话术不存在 / no script with this id", field="script_id")
    return script


# -- templates -------------------------------------------------------------------------------


def templates(
    workspace: Workspace, *, medium: str | None = None, q: str | None = None, archived: bool = False
) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.filter(workspace=workspace, archived=archived)
    if medium:
        qs = qs.filter(medium=medium)
    return _search(qs, q, ("name", "subject", "body"))


def get_template(workspace: Workspace, template_id: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(workspace=workspace, pk=template_id).first()
    if template is None:
        raise NotFound("模板不存在 / no template with this id", field="template_id")
    return template


# -- previews --------------------------------------------------------------------------------


@dataclass
class TemplatePreview:
    customer_id: int
    customer_name: str
    subject: str
    body: str
    params: dict[str, str]
    links: list[str]
    length: int
    suffix_added: bool = False
    # Variables that rendered empty for this customer (e.g. no store): worth a look before sending.
    warnings: list[str] = field(default_factory=list)


@dataclass
class SampleRow:
    customer: Customer
    preview: TemplatePreview | None = None
    error: InvalidInput | None = None


def render_context(workspace: Workspace, customer: Customer) -> RenderContext:
    """What a template sees of one customer: profile, their store, the staff who owns them, the brand."""
    store = customer.store
    return RenderContext(
        customer=customer_values_of(customer),
        staff={"name": customer.owner_staff.name} if customer.owner_staff_id else None,
        store={"name": store.name, "city": store.city} if store is not None else None,
        brand={"name": workspace.name},
        coupon_code=PREVIEW_COUPON,
        unsubscribe_url=PREVIEW_UNSUBSCRIBE,
    )


def _fields(workspace: Workspace, template: MessageTemplate | TemplateInput) -> dict[str, Any]:
    if isinstance(template, MessageTemplate):
        if template.workspace_id != workspace.pk:
            raise NotFound("模板不存在 / no template with this id", field="template_id")
        return {
            "medium": template.medium,
            "purpose": template.purpose,
            "subject": template.subject,
            "body": template.body,
            "provider_template": template.provider_template,
            "provider_params": template.provider_params,
        }
    return validate_template(workspace, template)


def _render_for(workspace: Workspace, values: dict[str, Any], customer: Customer, suffix: str) -> TemplatePreview:
    ctx = render_context(workspace, customer)
    # The dispatcher appends the opt-out suffix to plain marketing SMS; an approved provider
    # template already ends with it (checked when saved).
    add_suffix = values["medium"] == "sms" and values["purpose"] == "marketing" and not values["provider_template"]
    result = render(
        body=values["body"],
        subject=values["subject"],
        params=values["provider_params"],
        ctx=ctx,
        medium=values["medium"],
        suffix=suffix if add_suffix else "",
    )
    warnings = [
        label
        for label, used, value in (
            ("customer.name", "customer.name", customer.name),
            ("store", "store.", ctx.store),
            ("staff", "staff.", ctx.staff),
        )
        if _uses(values, used) and not value
    ]
    return TemplatePreview(
        customer_id=customer.pk,
        customer_name=customer.name,
        subject=result.subject,
        body=result.body,
        params=result.params,
        links=result.links,
        length=len(result.body),
        suffix_added=add_suffix and bool(suffix) and not values["body"].rstrip().endswith(suffix),
        warnings=warnings,
    )


def _uses(values: dict[str, Any], needle: str) -> bool:
    sources = [values["body"], values["subject"], *values["provider_params"].values()]
    return any(needle in source for source in sources)


def preview_template(
    workspace: Workspace,
    template: MessageTemplate | TemplateInput,
    customer_id: int,
    *,
    scope: Scope,
) -> TemplatePreview:
    """Render a saved template (or unsaved fields) for one customer the viewer may see.

    Raises NotFound(field="customer_id") for a customer outside ``scope``, and InvalidInput
    naming the template field for an invalid template or a value this customer lacks.
    """
    if scope.workspace_id != workspace.pk:
        raise NotFound("客户不存在 / customer not found", field="customer_id")
    values = _fields(workspace, template)
    customer = get_customer(scope, customer_id)
    suffix = compliance_settings(workspace.pk).sms_optout_suffix
    return _render_for(workspace, values, customer, suffix)


def preview_sample(
    workspace: Workspace, template: MessageTemplate | TemplateInput, *, scope: Scope, size: int = 5
) -> list[SampleRow]:
    """The template rendered for the newest ``size`` customers in scope; one customer's missing
    value is reported on that row and does not hide the others."""
    values = _fields(workspace, template)
    suffix = compliance_settings(workspace.pk).sms_optout_suffix
    customers = sample_customers(scope, size)
    rows = []
    for customer in customers:
        try:
            rows.append(SampleRow(customer, preview=_render_for(workspace, values, customer, suffix)))
        except InvalidInput as exc:
            rows.append(SampleRow(customer, error=exc))
    return rows


def sample_customers(scope: Scope, size: int = 5) -> list[Customer]:
    size = max(1, min(size, MAX_SAMPLE))
    return list(scoped_customers(scope).select_related("store", "owner_staff").order_by("-pk")[:size])
