"""API: the content library — materials, scripts (话术), message templates and their preview."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import ConfigDict, Field

from siyu.api import scope_of
from siyu.content import queries, services
from siyu.content.rendering import VARIABLES
from siyu.content.schemas import (
    MaterialIn,
    MaterialOut,
    MaterialPage,
    PreviewIn,
    PreviewOut,
    ScriptIn,
    ScriptOut,
    ScriptPage,
    TemplateIn,
    TemplateOut,
    material_out,
    script_out,
    template_out,
)
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import MAX_ID

router = Router(tags=["content"])


class ListQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(default=None, max_length=100, description="words in the title, text or keywords")
    archived: bool = False
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="`next_after` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class MaterialQuery(ListQuery):
    category: str | None = Field(default=None, max_length=32)
    kind: str | None = Field(default=None, max_length=16)


class ScriptQuery(ListQuery):
    scenario: str | None = Field(default=None, max_length=32)


def _id(value: int, field: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no object with this id ({field})", field=field)
    return value


# -- materials -------------------------------------------------------------------------------


@router.get("/materials", response=MaterialPage)
def list_materials(request: HttpRequest, filters: Query[MaterialQuery]):
    """Materials, newest first, keyset-paginated; filter by category or kind, search with `q`."""
    page = queries.list_materials(
        request.workspace,
        category=filters.category,
        kind=filters.kind,
        q=filters.q,
        archived=filters.archived,
        after=filters.after,
        limit=filters.limit,
    )
    return {"items": [material_out(m) for m in page.items], "next_after": page.next_after}


@router.post("/materials", response={201: MaterialOut})
def create_material(request: HttpRequest, body: MaterialIn):
    """A text, link or mini-program card material."""
    fields = services.MaterialInput(**body.model_dump())
    return Status(201, material_out(services.create_material(request.workspace, fields)))


@router.post("/materials/upload", response={201: MaterialOut})
def upload_material(
    request: HttpRequest,
    file: File[UploadedFile],
    kind: Form[str],
    title: Form[str],
    category: Form[str] = "other",
    text: Form[str] = "",
    keywords: Form[str] = "",
):
    """An image (PNG/JPG/GIF/WebP) or a file (PDF, Office, ZIP, MP4, TXT, CSV), up to 10 MB, as multipart form data."""
    fields = services.MaterialInput(kind=kind, title=title, category=category, text=text, keywords=keywords)
    return Status(201, material_out(services.create_material(request.workspace, fields, upload=file)))


@router.get("/materials/{material_id}", response=MaterialOut)
def get_material(request: HttpRequest, material_id: int):
    return material_out(queries.get_material(request.workspace, _id(material_id, "material_id")))


@router.put("/materials/{material_id}", response=MaterialOut)
def update_material(request: HttpRequest, material_id: int, body: MaterialIn):
    """Change a material's fields (an image or file keeps its stored file)."""
    fields = services.MaterialInput(**body.model_dump())
    return material_out(services.update_material(request.workspace, _id(material_id, "material_id"), fields))


@router.delete("/materials/{material_id}", response={204: None})
def archive_material(request: HttpRequest, material_id: int):
    services.archive_material(request.workspace, _id(material_id, "material_id"))
    return Status(204, None)


# -- scripts ---------------------------------------------------------------------------------


@router.get("/scripts", response=ScriptPage)
def list_scripts(request: HttpRequest, filters: Query[ScriptQuery]):
    """Scripts, newest first; `q` matches every word against title, content and keywords."""
    page = queries.list_scripts(
        request.workspace,
        scenario=filters.scenario,
        q=filters.q,
        archived=filters.archived,
        after=filters.after,
        limit=filters.limit,
    )
    return {"items": [script_out(s) for s in page.items], "next_after": page.next_after}


def _script_input(body: ScriptIn) -> services.ScriptInput:
    data = body.model_dump()
    return services.ScriptInput(**{**data, "material_ids": tuple(data["material_ids"])})


@router.post("/scripts", response={201: ScriptOut})
def create_script(request: HttpRequest, body: ScriptIn):
    script = services.save_script(request.workspace, _script_input(body))
    return Status(201, script_out(queries.get_script(request.workspace, script.pk)))


@router.get("/scripts/{script_id}", response=ScriptOut)
def get_script(request: HttpRequest, script_id: int):
    return script_out(queries.get_script(request.workspace, _id(script_id, "script_id")))


@router.put("/scripts/{script_id}", response=ScriptOut)
def update_script(request: HttpRequest, script_id: int, body: ScriptIn):
    script = services.save_script(request.workspace, _script_input(body), script_id=_id(script_id, "script_id"))
    return script_out(queries.get_script(request.workspace, script.pk))


@router.post("/scripts/{script_id}/use", response=dict[str, int])
def use_script(request: HttpRequest, script_id: int):
    """Count one use of a script (staff copied or sent it)."""
    return {"use_count": services.use_script(request.workspace, _id(script_id, "script_id"))}


@router.delete("/scripts/{script_id}", response={204: None})
def archive_script(request: HttpRequest, script_id: int):
    services.archive_script(request.workspace, _id(script_id, "script_id"))
    return Status(204, None)


# -- templates -------------------------------------------------------------------------------


@router.get("/templates", response=list[TemplateOut])
def list_templates(request: HttpRequest, medium: str | None = None, archived: bool = False):
    qs = queries.templates(request.workspace, medium=medium, archived=archived).order_by("name")
    return [template_out(t) for t in qs]


@router.get("/templates/variables", response=dict[str, list[str] | None])
def template_variables(request: HttpRequest):
    """The variables a template may use, with the fields each one has."""
    return {name: list(fields) if fields is not None else None for name, fields in VARIABLES.items()}


@router.post("/templates/preview", response=PreviewOut)
def preview_template(request: HttpRequest, body: PreviewIn):
    """Render a saved template (`template_id`) or unsaved fields (`template`) for one customer; nothing is sent.

    Links are shown as written (untracked); `coupon_code` and `unsubscribe_url` show stand-ins."""
    if (body.template_id is None) == (body.template is None):
        raise InvalidInput("give either template_id or template", field="template_id")
    if body.template_id is not None:
        template = queries.get_template(request.workspace, body.template_id)
    else:
        template = services.TemplateInput(name="preview", **body.template.model_dump())
    result = queries.preview_template(request.workspace, template, body.customer_id, scope=scope_of(request))
    return {
        "customer_id": result.customer_id,
        "subject": result.subject,
        "body": result.body,
        "params": result.params,
        "links": result.links,
        "length": result.length,
        "suffix_added": result.suffix_added,
        "warnings": result.warnings,
    }


def _template_input(body: TemplateIn) -> services.TemplateInput:
    return services.TemplateInput(**body.model_dump())


@router.post("/templates", response={201: TemplateOut})
def create_template(request: HttpRequest, body: TemplateIn):
    """Create a template; unknown variables, bad syntax and oversize text are field errors (422)."""
    return Status(201, template_out(services.save_template(request.workspace, _template_input(body))))


@router.get("/templates/{template_id}", response=TemplateOut)
def get_template(request: HttpRequest, template_id: int):
    return template_out(queries.get_template(request.workspace, _id(template_id, "template_id")))


@router.put("/templates/{template_id}", response=TemplateOut)
def update_template(request: HttpRequest, template_id: int, body: TemplateIn):
    template = services.save_template(
        request.workspace, _template_input(body), template_id=_id(template_id, "template_id")
    )
    return template_out(template)


@router.delete("/templates/{template_id}", response={204: None})
def archive_template(request: HttpRequest, template_id: int):
    services.archive_template(request.workspace, _id(template_id, "template_id"))
    return Status(204, None)
