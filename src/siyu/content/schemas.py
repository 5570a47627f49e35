"""API shapes of the content library: what clients send and what they get back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from siyu.content.models import Material, MessageTemplate, Script
from siyu.core.limits import MAX_ID


class MaterialIn(Schema):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="text, link or miniprogram (images and files: `POST /materials/upload`)")
    title: str = Field(max_length=200)
    category: str = Field(default=Material.Category.OTHER, description=", ".join(Material.Category.values))
    text: str = ""
    url: str = Field(default="", description="link materials: an http(s) URL")
    payload: dict[str, Any] = Field(
        default_factory=dict, description='mini-program cards: {"appid": "wx…", "pagepath": "pages/…", "thumb_url": …}'
    )
    keywords: str = Field(default="", description="comma- or space-separated")


class MaterialOut(Schema):
    id: int
    kind: str
    category: str
    title: str
    text: str
    url: str
    file_url: str
    payload: dict[str, Any]
    keywords: list[str]
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def material_out(material: Material) -> dict[str, Any]:
    return {
        "id": material.pk,
        "kind": material.kind,
        "category": material.category,
        "title": material.title,
        "text": material.text,
        "url": material.url,
        "file_url": material.file.url if material.file else "",
        "payload": material.payload,
        "keywords": _words(material.keywords),
        "archived": material.archived,
        "created_at": material.created_at,
        "updated_at": material.updated_at,
    }


class ScriptIn(Schema):
    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(default=Script.Scenario.OTHER, description=", ".join(Script.Scenario.values))
    title: str = Field(max_length=200)
    content: str
    keywords: str = ""
    material_ids: list[int] = Field(default_factory=list, max_length=20)


class ScriptOut(Schema):
    id: int
    scenario: str
    title: str
    content: str
    keywords: list[str]
    material_ids: list[int]
    use_count: int
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def script_out(script: Script) -> dict[str, Any]:
    return {
        "id": script.pk,
        "scenario": script.scenario,
        "title": script.title,
        "content": script.content,
        "keywords": _words(script.keywords),
        "material_ids": sorted(m.pk for m in script.materials.all()),
        "use_count": script.use_count,
        "archived": script.archived,
        "created_at": script.created_at,
        "updated_at": script.updated_at,
    }


class TemplateFieldsIn(Schema):
    model_config = ConfigDict(extra="forbid")
    medium: str = Field(description=", ".join(MessageTemplate.Medium.values))
    purpose: str = Field(default=MessageTemplate.Purpose.MARKETING, description="marketing or service")
    subject: str = Field(default="", description="email (required) and app push (optional)")
    body: str = Field(description="sandboxed Jinja, e.g. `{{ customer.name }}，您好`; see `GET /templates/variables`")
    provider_template: str = Field(default="", description="SMS: the provider's approved template code")
    provider_params: dict[str, str] = Field(
        default_factory=dict, description='SMS: parameter name -> Jinja, e.g. {"name": "{{ customer.name }}"}'
    )


class TemplateIn(TemplateFieldsIn):
    name: str = Field(max_length=100)


class TemplateOut(Schema):
    id: int
    name: str
    medium: str
    purpose: str
    subject: str
    body: str
    provider_template: str
    provider_params: dict[str, str]
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def template_out(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.pk,
        "name": template.name,
        "medium": template.medium,
        "purpose": template.purpose,
        "subject": template.subject,
        "body": template.body,
        "provider_template": template.provider_template,
        "provider_params": template.provider_params,
        "archived": template.archived,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }


class PreviewIn(Schema):
    """Either a saved ``template_id`` or unsaved ``template`` fields, and a customer."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1, le=MAX_ID)
    template_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    template: TemplateFieldsIn | None = None


class PreviewOut(Schema):
    customer_id: int
    subject: str
    body: str
    params: dict[str, str]
    links: list[str]
    length: int
    suffix_added: bool
    warnings: list[str]


class PageOut(Schema):
    next_after: int | None


class MaterialPage(PageOut):
    items: list[MaterialOut]


class ScriptPage(PageOut):
    items: list[ScriptOut]


def _words(keywords: str) -> list[str]:
    return [w for w in keywords.split(",") if w]
